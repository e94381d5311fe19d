#!/usr/bin/env python3
"""Fuzz target: the bundle loader on any manifest (`servable.yaml`) in an otherwise real bundle:
`open_bundle` (read, verify every checksum), then prediction with ONNX Runtime and PyTorch.

    fuzz/bundle_loader.py WORKDIR fuzz/corpus/bundle_loader -max_total_time=60

The base bundle is the published IN, imported at start-up (once: kept under
$SERVABLE_FUZZ_CACHE when set, as `make fuzz` does, since libFuzzer's fork mode starts the
target afresh for every job); its fresh manifest joins the seeds (in the working corpus), so
the fuzzer starts from a manifest whose checksums verify.
An input that starts with `#` is sealed anew before it is written (fuzz/contract.py
`reseal`), as a forger would, so the fuzzer reaches the manifest's validation and use, not
only the seal. Contract (fuzz/contract.py): a one-line ServableError or finite probabilities;
the bundle's files are unchanged.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["servable"]):
    import numpy as np

    from fuzz.contract import blank_documents, obey, reseal, unchanged
    from fuzz.seeds import base_bundle
    from servable import safe_yaml
    from servable.bundle.bundle import open_bundle
    from servable.bundle.manifest import MANIFEST
    from servable.data import schema
    from servable.data.jets import Jets
    from servable.errors import ServableError

def _base() -> Path:
    cache = os.environ.get("SERVABLE_FUZZ_CACHE")
    if not cache:
        return base_bundle(Path(tempfile.mkdtemp(prefix="fuzz-bundle-base-")))
    built = Path(cache) / "bundle"
    if not (built / MANIFEST).exists():
        shutil.rmtree(built, ignore_errors=True)
        base_bundle(Path(cache))
    return built


WORK = Path(tempfile.mkdtemp(prefix="fuzz-bundle-"))
BUNDLE = Path(shutil.copytree(_base(), WORK / "bundle"))
VALID = (BUNDLE / MANIFEST).read_bytes()
blank_documents(BUNDLE)


def _jets(n: int = 4) -> Jets:
    rng = np.random.default_rng(0)
    tracks = np.zeros((n, len(schema.TRACK_NAMES), schema.TRACK_SLOTS), np.float32)
    vertices = np.zeros((n, len(schema.VERTEX_NAMES), schema.VERTEX_SLOTS), np.float32)
    for i in range(n):
        tracks[i, :, :1 + 7 * i] = rng.normal(1, 0.3, (tracks.shape[1], 1 + 7 * i))
        vertices[i, :, :i % 3] = 1.0
    jet = rng.normal(size=(n, len(schema.JET_NAMES))).astype(np.float32)
    return Jets.cms(tracks, vertices, jet)


JETS = _jets()


def load_and_predict(path: Path) -> None:
    bundle = obey(lambda: open_bundle(path))
    if bundle is None:
        return
    for runtime in ("onnx", "torch"):
        p = obey(lambda runtime=runtime: bundle.predict(JETS, runtime=runtime))
        if p is not None:
            assert p.shape[0] == len(JETS) and np.isfinite(p).all(), p
            np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)


def test_one_input(data: bytes) -> None:
    """Half the inputs as they are (the seal check), half sealed anew (what comes after)."""
    if data[:1] == b"#":
        try:
            data = reseal(safe_yaml.load(data.decode("utf-8", "replace"), MANIFEST))
        except ServableError:
            pass
    (BUNDLE / MANIFEST).write_bytes(data)
    with unchanged(BUNDLE):
        load_and_predict(BUNDLE)


def main() -> None:
    argv = list(sys.argv)
    dirs = [i for i, a in enumerate(argv[1:], 1) if not a.startswith("-")]
    if dirs:  # the fresh valid manifest joins the working corpus (the first directory)
        Path(argv[dirs[0]]).mkdir(parents=True, exist_ok=True)
        (Path(argv[dirs[0]]) / "fresh-servable.yaml").write_bytes(VALID)
        (Path(argv[dirs[0]]) / "fresh-resealed.yaml").write_bytes(b"#\n" + VALID)
    atheris.Setup(argv, test_one_input)
    try:
        atheris.Fuzz()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
