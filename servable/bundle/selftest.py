"""Smoke test of an installation (containers, endpoints): an untrained IN bundle is written,
verified and run on synthetic jets with PyTorch and ONNX Runtime, which must agree."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from servable.errors import ServableError

TOLERANCE = 1e-5  # max |p_torch - p_onnx| on the synthetic jets


def selftest(output=None, n_jets: int = 32) -> dict:
    """Run the smoke test; the bundle is kept in `output` when given (else a temporary
    folder).

    Returns
    -------
    dict
        n_jets and max_dp (the largest PyTorch/ONNX Runtime probability difference).

    Raises
    ------
    ServableError
        when the predictions are not finite or differ by more than TOLERANCE.
    """
    from servable.bundle.bundle import open_bundle, save_bundle
    from servable.data.jets import Jets
    from servable.models.taggers import INTagger

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(output) if output else Path(tmp)
        tagger = INTagger({})
        bundle_dir = save_bundle(tagger, root / "selftest-bundle", name="selftest-in",
                                 overwrite=True, description="untrained IN (selftest)")
        bundle = open_bundle(bundle_dir)
        inputs = tagger.input_spec().example(n_jets)
        jets = Jets.cms(inputs["tracks"], inputs["vertices"])
        p_torch, p_onnx = bundle.predict(jets), bundle.predict(jets, runtime="onnx")
    diff = float(np.abs(p_torch - p_onnx).max())
    if not np.isfinite(p_torch).all() or diff > TOLERANCE:
        raise ServableError(f"selftest failed: max |p_torch - p_onnx| = {diff:.2e}")
    return {"n_jets": len(jets), "max_dp": diff}
