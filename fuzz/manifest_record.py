#!/usr/bin/env python3
"""Fuzz target: the manifest and metadata-record parsers on any bytes (`read_manifest`,
`verify` of a bundle directory holding only that manifest, `load_record`).

    fuzz/manifest_record.py WORKDIR fuzz/corpus/manifest_record -max_total_time=60

Contract (fuzz/contract.py): a one-line ServableError or a result; the file is unchanged.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["servable"]):
    from fuzz.contract import obey, unchanged
    from servable.bundle.manifest import MANIFEST, read_manifest, verify
    from servable.bundle.record import load_record, record_from_manifest, validate_record

WORK = Path(tempfile.mkdtemp(prefix="fuzz-manifest-"))
(WORK / "bundle").mkdir()


def test_one_input(data: bytes) -> None:
    manifest, record = WORK / "bundle" / MANIFEST, WORK / "record.yaml"
    manifest.write_bytes(data)
    record.write_bytes(data)
    with unchanged(WORK):
        if obey(lambda: read_manifest(manifest.parent)) is not None:
            m = obey(lambda: verify(manifest.parent))
            if m is not None:
                obey(lambda: validate_record(record_from_manifest(m)))
        obey(lambda: load_record(record))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
