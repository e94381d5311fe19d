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
    from fuzz.contract import read_everything, unchanged
    from servable.data import h5io  # noqa: F401 - instrumented: the reader under test

WORK = Path(tempfile.mkdtemp(prefix="fuzz-h5-"))


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
