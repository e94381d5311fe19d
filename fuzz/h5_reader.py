#!/usr/bin/env python3
"""Fuzz target: the HDF5 jet reader (`read_jets`, `iter_jets`, `JetFile.attrs`) on any bytes.

    python fuzz/h5_reader.py fuzz/corpus/h5_reader -max_total_time=60

Contract (fuzz/contract.py): a one-line ServableError or valid jets; the file is unchanged.
A crash of libhdf5 itself (a signal, not an exception) is a finding for the HDF5 library: see
docs/security.md.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["servable"]):
    from fuzz.contract import check_jets, obey, unchanged
    from servable.data.h5io import JetFile, iter_jets, read_jets

WORK = Path(tempfile.mkdtemp(prefix="fuzz-h5-"))


def read_everything(path: Path) -> None:
    jets = obey(lambda: read_jets(path))
    if jets is not None:
        check_jets(jets)
        chunks = obey(lambda: list(iter_jets(path, chunk_size=2)))
        assert chunks is not None and sum(map(len, chunks)) == len(jets)
        with JetFile(path) as f:
            f.attrs  # noqa: B018 - the file's attributes parse (provenance JSON)


def test_one_input(data: bytes) -> None:
    path = WORK / "input.h5"
    path.write_bytes(data)
    with unchanged(path):
        read_everything(path)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
