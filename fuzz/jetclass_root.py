#!/usr/bin/env python3
"""Fuzz target: the JetClass ROOT reader (`count_jets`, `read_jetclass`, `iter_jetclass`,
`read_provenance`, `servable.data.io.read_jets`) on hostile files.

    fuzz/jetclass_root.py WORKDIR fuzz/corpus/jetclass_root -max_total_time=60

An input whose first byte is even is the file itself (bytes as they are: truncated baskets,
flipped bits, a foreign format). One whose first byte is odd is a recipe (fuzz/root_recipes.py):
valid ring jets changed as it says (branches dropped, retyped, made jagged or flat, particle
branches whose lengths disagree, a jet with a huge particle count, NaN and Inf, labels that
are not one-hot, odd truth branches, no entries, another tree name, provenance that is not
JSON), written with uproot as a TTree or an RNTuple, then possibly truncated.
Contract (fuzz/contract.py): a one-line ServableError or valid jets; the file is unchanged.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["servable"]):
    from fuzz.contract import read_everything_root, unchanged
    from fuzz.root_recipes import write_recipe
    from servable.data import jetclass  # noqa: F401 - instrumented: the reader under test

WORK = Path(tempfile.mkdtemp(prefix="fuzz-root-"))


def test_one_input(data: bytes) -> None:
    path = WORK / "input.root"
    path.unlink(missing_ok=True)
    if data[:1] and data[0] % 2:
        write_recipe(path, data[1:])
    else:
        path.write_bytes(data[1:])
    with unchanged(path):
        read_everything_root(path)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
