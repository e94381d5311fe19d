"""OpenVINO beside PyTorch and ONNX Runtime, and the opt-in bf16 path (issue 35 items 2-3).

The reference is the published IN's own logits on 256 real jets (tests/fixtures/published-in,
computed upstream), so nothing here is checked against numbers the code under test made.
"""

import numpy as np
import pytest

from servable.models.precision import cpu_has_bf16
from tests.cli_helpers import assert_user_error, run_cli

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def reference(published_dir):
    z = np.load(published_dir / "gnn_baseline_best_reference.npz")
    return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def jets(reference):
    from servable.data.jets import Jets

    # labels: the published model's own ranking split at its median (both classes present),
    # so an AUC here measures agreement with it
    margin = reference["logits"][:, 1] - reference["logits"][:, 0]
    decided = (margin >= np.median(margin)).astype(int)
    return Jets.cms(reference["tracks"], reference["vertices"],
                    labels=np.eye(2, dtype=np.float32)[decided])


@pytest.fixture(scope="module")
def bundle(published_bundle):
    from servable import load

    return load(published_bundle)


def _close(got, want, rtol):
    return float(np.max(np.abs(got - want))) <= rtol * max(1.0, float(np.max(np.abs(want))))


def test_openvino_in_float32_reproduces_the_published_logits(bundle, jets, reference):
    assert _close(bundle.logits(jets, "openvino"), reference["logits"], 1e-4)
    runner = bundle.runtime("openvino")  # the CPU plugin's bf16 default is overridden
    import openvino

    assert runner.compiled.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32


def test_the_default_precision_is_float32_and_exact(bundle, jets, reference):
    default = bundle.logits(jets)
    assert np.array_equal(default, bundle.logits(jets, precision="f32"))
    assert default.dtype == np.float32 and _close(default, reference["logits"], 1e-5)


def test_the_bundle_records_the_runtimes_its_onnx_was_checked_on(bundle):
    runtimes = bundle.manifest["runtimes"]
    assert "checked" in runtimes["onnx"] and "checked" in runtimes["openvino"]
    assert "openvino" in bundle.manifest["dependencies"]


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16")
def test_bf16_parity_is_reported_and_within_its_stated_bound(bundle, jets):
    from servable.bundle.bench import format_parity, parity

    report = parity(bundle, jets, precision="bf16")
    assert report["runtimes"]["openvino"]["max_abs_dp"] < 1e-5  # float32 stays exact
    for name in ("torch-bf16", "openvino-bf16"):
        row = report["runtimes"][name]
        # bf16 keeps 8 mantissa bits: visibly different, within the bound docs/benchmarks.md
        # states (max |dp| < 0.1, fidelity > 0.995, |dAUC| < 0.005)
        assert 1e-5 < row["max_abs_dp"] < 0.1, row
        assert row["fidelity"] > 0.995 and abs(row["delta_auc"]) < 0.005, row
    text = format_parity(report)
    assert "torch-bf16" in text and "dAUC" in text


def test_reduced_precision_on_onnx_runtime_is_refused_naming_the_alternatives(bundle, jets):
    from servable.runtimes import RuntimeUnavailable

    with pytest.raises(RuntimeUnavailable, match="openvino or torch"):
        bundle.logits(jets, "onnx", precision="bf16")


def test_predict_refuses_an_unknown_precision_and_writes_nothing(published_bundle, tmp_path):
    out = tmp_path / "scores.h5"
    r = run_cli("predict", published_bundle, tmp_path / "jets.h5", "-o", out,
                "--precision", "fp8")
    assert_user_error(r, "--precision", "f32, bf16")
    assert not out.exists()
