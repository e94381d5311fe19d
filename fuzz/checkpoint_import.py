#!/usr/bin/env python3
"""Fuzz target: importing published checkpoints (`servable.bundle.checkpoint.import_checkpoint`:
the FAIR4HEP Interaction Network with its model_metadata.json, the official JetClass
ParticleNet) from hostile state dicts (fuzz/checkpoint_recipes.py: wrong shapes, dtypes,
NaN, extra, missing and renamed keys, odd metadata, or any bytes as the file).

    fuzz/checkpoint_import.py WORKDIR fuzz/corpus/checkpoint_import -max_total_time=60

Contract (fuzz/contract.py): a one-line ServableError and nothing written, or a bundle that
verifies and (an Interaction Network) predicts finite probabilities; the inputs are
unchanged.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["servable"]):
    import numpy as np

    from fuzz.checkpoint_recipes import write_recipe
    from fuzz.contract import obey, unchanged
    from fuzz.root_recipes import Bytes
    from servable.bundle.bundle import open_bundle
    from servable.bundle.checkpoint import import_checkpoint
    from servable.bundle.manifest import verify
    from servable.data.jets import Jets

WORK = Path(tempfile.mkdtemp(prefix="fuzz-checkpoint-"))
INPUTS = WORK / "inputs"


def check_bundle(out: Path) -> None:
    """An imported bundle verifies; an IN predicts finite probabilities that sum to one."""
    verify(out)
    bundle = open_bundle(out)
    if bundle.kind == "in":
        inputs = bundle.spec.example(4, seed=0)
        p = obey(lambda: bundle.predict(Jets.cms(inputs["tracks"], inputs["vertices"])))
        if p is not None:
            assert np.isfinite(p).all(), p
            np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)


def test_one_input(data: bytes) -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    INPUTS.mkdir(parents=True)
    checkpoint, metadata = write_recipe(INPUTS, data)
    feature_set = Bytes(data[-2:]).pick([None, None, None, "kin", "full", "bogus"])
    out = WORK / "bundle"
    with unchanged(INPUTS):
        made = obey(lambda: import_checkpoint(checkpoint, metadata, out,
                                              feature_set=feature_set))
    if made is None:
        assert not out.exists(), "a refused import left files behind"
    else:
        check_bundle(out)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
