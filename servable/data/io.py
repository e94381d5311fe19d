"""Jets files by their format: CMS-layout HDF5 (`servable.data.h5io`) or JetClass ROOT
(`servable.data.jetclass`, files ending in `.root`). The one entry point the CLI, training and
evaluation read jets through."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from servable.data.jets import Jets


def is_root(path) -> bool:
    return Path(path).suffix == ".root"


def read_jets(path_or_paths, start: int = 0, stop: int | None = None) -> Jets:
    """Jets `start` to `stop` (None: to the end) of a JetClass ROOT file, or of one or more
    CMS-layout HDF5 files (concatenated in the order given)."""
    if isinstance(path_or_paths, (str, os.PathLike)) and is_root(path_or_paths):
        from servable.data.jetclass import read_jetclass

        return read_jetclass(path_or_paths, entry_start=start, entry_stop=stop)
    from servable.data import h5io

    if isinstance(path_or_paths, (str, os.PathLike)):  # only the jets asked for
        with h5io.JetFile(path_or_paths) as f:
            return f.read(start, stop)
    return h5io.read_jets(path_or_paths, start, stop)


def iter_root_chunks(path, chunk_size: int) -> Iterator[Jets]:
    """A JetClass ROOT file's jets, `chunk_size` at a time."""
    from servable.data.jetclass import iter_jetclass

    yield from iter_jetclass(path, chunk_size)
