"""Jets files by their format: HDF5 in the CMS or the JetClass layout (`servable.data.h5io`)
or JetClass ROOT (`servable.data.jetclass`, files ending in `.root`). The one entry point the
CLI, training, evaluation and prediction read jets through: `open_jets` gives a reader with
one interface for every format (`len`, `read(start, stop)`, `class_names`, `layout`,
`attrs`), so that splits and streaming are written once.
"""

from __future__ import annotations

import os
from pathlib import Path

from servable.data.jets import JETCLASS, Jets


def is_root(path) -> bool:
    """Whether `path` names a JetClass ROOT file (by its `.root` suffix; the file is not opened)."""
    return Path(path).suffix == ".root"


class RootJetFile:
    """A JetClass ROOT file read in entry ranges (the interface of `h5io.JetFile`): every
    chunk is read with uproot and completed with the derived particle channels and jet
    observables."""

    layout = JETCLASS
    attrs: dict = {}

    def __init__(self, path, tree: str = "tree"):
        from servable.data.jetclass import CLASS_NAMES, count_jets

        self.path, self.tree = Path(path), tree
        self.class_names = CLASS_NAMES
        self._n = count_jets(self.path, tree)

    def __len__(self) -> int:
        return self._n

    def read(self, start: int = 0, stop: int | None = None) -> Jets:
        """Jets `start` to `stop` (None: to the end)."""
        from servable.data.jetclass import read_jetclass

        stop = self._n if stop is None else min(stop, self._n)
        return read_jetclass(self.path, tree=self.tree, entry_start=start, entry_stop=stop)

    def close(self) -> None:
        """Nothing stays open between reads."""

    def __enter__(self) -> RootJetFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_jets(path):
    """A reader for one jets file: `RootJetFile` for `.root`, `h5io.JetFile` otherwise."""
    if is_root(path):
        return RootJetFile(path)
    from servable.data.h5io import JetFile

    return JetFile(path)


def read_jets(path_or_paths, start: int = 0, stop: int | None = None) -> Jets:
    """Jets `start` to `stop` (None: to the end) of one jets file (only those jets are read),
    or of several HDF5 files (concatenated in the order given)."""
    if isinstance(path_or_paths, (str, os.PathLike)):
        with open_jets(path_or_paths) as f:
            return f.read(start, stop)
    from servable.data import h5io

    return h5io.read_jets(path_or_paths, start, stop)
