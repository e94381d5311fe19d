"""The README's main job (`servable demo`, a library pipeline) and the installation smoke test
(`servable selftest`), each run small end to end."""

import h5py
import numpy as np
import pytest

from servable.errors import ServableError
from servable.remote.demo import DemoSettings, run_demo
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
