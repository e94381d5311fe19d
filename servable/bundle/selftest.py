"""Smoke test of an installation (containers, endpoints): an untrained IN bundle is written,
verified and run on synthetic jets with PyTorch, and the same jets computed a second,
independent way must agree: in ONNX Runtime where it is installed, else (the ppc64le image)
by the IN's published dense formulation in float64 on the bundle's weights."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np

from servable.errors import ServableError

TOLERANCE = 1e-5  # max |p_torch - p_other| on the synthetic jets
ONNX = "onnx"
FLOAT64_REFERENCE = "float64 reference"


def selftest(output=None, n_jets: int = 32) -> dict:
    """Run the smoke test; the bundle is kept in `output` when given (else a temporary
    folder).

    Returns
    -------
    dict
        n_jets, comparison (ONNX or FLOAT64_REFERENCE: what the PyTorch prediction was
        compared with) and max_dp (the largest probability difference between the two).

    Raises
    ------
    ServableError
        when the predictions are not finite or differ by more than TOLERANCE.
    """
    from servable.bundle.bundle import open_bundle, save_bundle
    from servable.data.jets import Jets
    from servable.models.taggers import INTagger
    from servable.runtimes.onnx_runtime import onnxruntime_installed

    comparison = ONNX if onnxruntime_installed() else FLOAT64_REFERENCE
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(output) if output else Path(tmp)
        tagger = INTagger({})
        bundle_dir = save_bundle(tagger, root / "selftest-bundle", name="selftest-in",
                                 overwrite=True, description="untrained IN (selftest)",
                                 onnx=comparison == ONNX)
        bundle = open_bundle(bundle_dir)
        inputs = tagger.input_spec().example(n_jets)
        jets = Jets.cms(inputs["tracks"], inputs["vertices"])
        p_torch = bundle.predict(jets)
        if comparison == ONNX:
            p_other = bundle.predict(jets, runtime="onnx")
        else:
            p_other = dense_float64_probabilities(bundle.tagger.net, bundle.inputs(jets))
    diff = float(np.abs(p_torch - p_other).max())
    if not (np.isfinite(p_torch).all() and np.isfinite(p_other).all()) or not diff <= TOLERANCE:
        raise ServableError(f"selftest failed: max |p_torch - p_{comparison.split()[0]}| = "
                            f"{diff:.2e} (tolerance {TOLERANCE:g})")
    return {"n_jets": len(jets), "comparison": comparison, "max_dp": diff}


def dense_float64_probabilities(net, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Class probabilities of an IN network (`INNet`) by the published dense formulation
    (`InteractionNetwork.dense_forward`: every padded slot an explicit node) in float64, on
    a copy of its weights: neither the fast path's folded weights and closed-form pads nor
    float32 arithmetic are shared with the prediction it checks."""
    import torch

    reference = copy.deepcopy(net).double().eval()
    tracks, vertices = (torch.from_numpy(np.asarray(inputs[k], dtype=np.float64))
                        for k in ("tracks", "vertices"))
    with torch.inference_mode():
        std, _ = reference.standardize(tracks, vertices)
        logits = reference.core.dense_forward(*std)
        return torch.softmax(logits, dim=1).numpy()
