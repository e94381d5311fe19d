"""`servable predict`: streamed scoring, safe output, bad input refused without writing."""

import hashlib

import h5py
import numpy as np
import pytest

import servable
from tests.cli_helpers import assert_user_error, run_cli

pytestmark = pytest.mark.slow


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_predict_writes_scores_and_row_index_and_leaves_the_input_alone(trained, test_file,
                                                                       tmp_path, runtime):
    before = _digest(test_file)
    out = tmp_path / "scores.h5"
    r = run_cli("predict", trained["in"], test_file, "-o", out, "--runtime", runtime,
                "--batch-size", 256, "--quiet")
    assert r.returncode == 0, r.stderr
    with h5py.File(out) as f:
        scores, rows = f["scores"][:], f["row_index"][:]
        assert f.attrs["runtime"] == runtime
    jets = servable.read_jets(test_file)
    np.testing.assert_allclose(scores, servable.load(trained["in"]).predict(jets), atol=1e-5)
    assert np.array_equal(rows, np.arange(len(jets)))
    assert _digest(test_file) == before


def test_predict_refuses_to_overwrite_without_force(trained, test_file, tmp_path):
    out = tmp_path / "scores.h5"
    out.write_bytes(b"earlier results")
    assert_user_error(run_cli("predict", trained["bdt"], test_file, "-o", out), "--force")
    assert out.read_bytes() == b"earlier results"
    r = run_cli("predict", trained["bdt"], test_file, "-o", out, "--force", "--quiet")
    assert r.returncode == 0, r.stderr


def test_predict_never_overwrites_its_input(trained, test_file, tmp_path):
    copy = tmp_path / "jets.h5"
    copy.write_bytes(test_file.read_bytes())
    assert_user_error(run_cli("predict", trained["in"], copy, "-o", copy, "--force"),
                      "overwrite the input")


def _bad_file(test_file, tmp_path, change):
    bad = tmp_path / "bad.h5"
    jets = servable.read_jets(test_file)[:50]
    with h5py.File(bad, "w") as f:
        tracks, vertices = change(jets.tracks.copy(), jets.vertices.copy())
        f["testing_subgroup/testing_2"] = tracks
        f["testing_subgroup/testing_3"] = vertices
        f["testing_subgroup/testing_0"] = jets.jet_features[..., None]
    return bad


@pytest.mark.parametrize("change, message", [
    (lambda t, v: (t[:, :29], v), "expected (n, 30, 60)"),
    (lambda t, v: (t[:, :, :50], v), "expected (n, 30, 60)"),
    (lambda t, v: (np.where(np.arange(60) == 0, np.nan, t).astype(np.float32), v), "NaN/Inf"),
    (lambda t, v: (t.astype(np.int32), v), "floating-point"),
    (lambda t, v: (t, v[:, :10]), "expected (n, 14, 5)"),
], ids=["feature-count", "slot-count", "nan", "dtype", "vertex-features"])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(trained, test_file, tmp_path,
                                                            change, message):
    bad = _bad_file(test_file, tmp_path, change)
    out = tmp_path / "scores.h5"
    assert_user_error(run_cli("predict", trained["in"], bad, "-o", out), message)
    assert not out.exists()
    assert not list(tmp_path.glob(".*part"))


def test_predict_with_a_tampered_bundle_exits_2(trained, test_file, tmp_path):
    import shutil

    copy = shutil.copytree(trained["mlp"], tmp_path / "b")
    (copy / "model.onnx").write_bytes(b"tampered")
    assert_user_error(run_cli("predict", copy, test_file, "-o", tmp_path / "s.h5"),
                      "model.onnx does not match")
