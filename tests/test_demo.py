"""The README's main job (`servable demo`, a library pipeline) and the installation smoke test
(`servable selftest`), each run small end to end."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from servable.bundle.bundle import open_bundle, save_bundle
from servable.bundle.selftest import FLOAT64_REFERENCE, selftest
from servable.errors import ServableError
from servable.models.interaction_network import InteractionNetwork
from servable.models.taggers import INTagger
from servable.remote.demo import DemoSettings, run_demo
from servable.runtimes import RuntimeUnavailable
from tests.cli_helpers import assert_user_error, run_cli


def test_the_demo_pipeline_writes_every_result_and_reports_each_step(tmp_path):
    lines = []
    result = run_demo(tmp_path / "demo", DemoSettings(signal=30, background=30, workers=1,
                                                      epochs=1), report=lines.append)
    out = tmp_path / "demo"
    for name in ("jets.h5", "test-jets.h5", "in-bundle/servable.yaml", "scores-torch.h5",
                 "scores-onnx.h5", "explain-masking/explanation.json",
                 "explain-lrp/explanation.json"):
        assert (out / name).is_file(), name
    with h5py.File(out / "scores-torch.h5") as f, h5py.File(out / "test-jets.h5") as t:
        assert f["scores"].shape == (len(t["target_subgroup/target"]), 2)
    assert result.bundle == out / "in-bundle" and "model.onnx" in result.bundle_files
    assert result.max_dp_torch_onnx < 1e-5  # the same model on two runtimes
    assert 0.0 <= result.test_auc <= 1.0 and 0.0 <= result.test_accuracy <= 1.0
    assert set(result.top_features) == {"masking", "lrp"}
    assert all(len(v) == 5 for v in result.top_features.values())
    assert [line[:5] for line in lines if line.startswith("[")] == \
        ["[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"]


@pytest.mark.parametrize("field, value, message", [
    ("signal", 5, "signal must be an integer >= 30, not 5"),
    ("epochs", 0, "epochs must be an integer >= 1, not 0"),
    ("seed", -1, "seed must be an integer >= 0, not -1"),
])
def test_demo_settings_refuse_bad_counts(field, value, message):
    with pytest.raises(ServableError, match=message):
        DemoSettings(**{field: value})


def test_selftest_runs_torch_and_onnx_and_keeps_the_bundle_when_asked(tmp_path):
    r = run_cli("selftest", "-o", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("selftest ok: 32 jets, torch and onnx agree to")
    assert (tmp_path / "selftest-bundle" / "servable.yaml").is_file()


def test_selftest_into_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    assert_user_error(run_cli("selftest", "-o", tmp_path / "file"))
    assert (tmp_path / "file").read_text() == "x"
    assert not np.any([p.name == "selftest-bundle" for p in tmp_path.iterdir()])


def without_onnxruntime(monkeypatch):
    """ONNX Runtime made unimportable, as in the ppc64le image (a None entry in sys.modules
    is how Python marks a module as absent: `import` raises ImportError, find_spec is None)."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)


def test_selftest_without_onnx_runtime_compares_with_the_float64_dense_reference(
        tmp_path, monkeypatch):
    without_onnxruntime(monkeypatch)
    result = selftest(tmp_path)
    assert result["comparison"] == FLOAT64_REFERENCE and result["n_jets"] == 32
    assert 0 < result["max_dp"] <= 1e-5  # float32 fast path vs float64 dense: close, not equal
    bundle = tmp_path / "selftest-bundle"
    assert not (bundle / "model.onnx").exists()  # nothing exported that nothing could check
    assert list(open_bundle(bundle).manifest["runtimes"]) == ["torch"]


def test_selftest_without_onnx_runtime_refuses_a_fast_path_that_disagrees(tmp_path,
                                                                           monkeypatch):
    without_onnxruntime(monkeypatch)
    fast = InteractionNetwork.forward

    def off_by_a_little(self, *args, **kwargs):  # a broken kernel: logits shifted by 0.02
        return fast(self, *args, **kwargs) + torch.tensor([0.01, -0.01])

    monkeypatch.setattr(InteractionNetwork, "forward", off_by_a_little)
    with pytest.raises(ServableError, match=r"selftest failed: max \|p_torch - p_float64\|"):
        selftest(tmp_path)


def test_selftest_command_says_which_comparison_ran_without_onnx_runtime(tmp_path):
    code = ("import sys; sys.modules['onnxruntime'] = None; from servable.cli import entry; "
            f"sys.argv = ['servable', 'selftest', '-o', {str(tmp_path)!r}]; entry()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("selftest ok: 32 jets, torch and the float64 dense reference "
                               "agree to ")
    assert r.stdout.rstrip().endswith("(ONNX Runtime is not installed)")


def test_saving_a_bundle_with_onnx_where_onnx_runtime_is_absent_is_refused_cleanly(
        tmp_path, monkeypatch):
    without_onnxruntime(monkeypatch)
    with pytest.raises(RuntimeUnavailable, match="ONNX Runtime, which is not installed"):
        save_bundle(INTagger({}), tmp_path / "b", name="b")
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind
