"""Jets files by their format: CMS-layout HDF5 (`servable.data.h5io`) or JetClass ROOT
(`servable.data.jetclass`, files ending in `.root`). The one entry point the CLI, training and
evaluation read jets through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from servable.data.jets import Jets


def is_root(path) -> bool:
    return Path(path).suffix == ".root"


def read_jets(path, start: int = 0, stop: int | None = None) -> Jets:
    """Jets `start` to `stop` (None: to the end) of an HDF5 or JetClass ROOT file."""
    if is_root(path):
        from servable.data.jetclass import read_jetclass

        return read_jetclass(path, entry_start=start, entry_stop=stop)
    from servable.data.h5io import JetFile

    with JetFile(path) as f:
        return f.read(start, stop)


def iter_root_chunks(path, chunk_size: int) -> Iterator[Jets]:
    """A JetClass ROOT file's jets, `chunk_size` at a time."""
    from servable.data.jetclass import iter_jetclass

    yield from iter_jetclass(path, chunk_size)
