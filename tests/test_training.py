"""Training and evaluation: AUC targets, determinism, seeds, bad input."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

import servable
from tests.cli_helpers import assert_user_error, run_cli

pytestmark = pytest.mark.slow
TARGET_AUC = {"in": 0.95, "mlp": 0.90, "bdt": 0.90, "part": 0.90}


@pytest.mark.parametrize("kind", list(TARGET_AUC))
def test_four_epochs_reach_the_target_auc_on_an_independent_file(trained, test_file, kind):
    r = run_cli("evaluate", trained[kind], "--data", test_file, "--json")
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert {"accuracy", "roc_auc", "rejection_50", "rejection_30"} <= set(metrics)
    assert metrics["n_jets"] == 2000
    assert metrics["roc_auc"] > TARGET_AUC[kind]
    assert metrics["rejection_30"] >= metrics["rejection_50"] > 1


@pytest.mark.parametrize("kind", list(TARGET_AUC))
def test_training_writes_a_servable_directory(trained, kind):
    out = trained[kind]
    manifest = servable.load(out).manifest
    assert manifest["model"]["kind"] == kind
    prov = manifest["provenance"]
    assert prov["seed"] == 1 and prov["split"] == "random"
    assert len(prov["training"]["data"][0]["sha256"]) == 64
    assert (out / "loss.png").stat().st_size > 0 and (out / "roc.png").stat().st_size > 0
    weights = "model.json" if kind == "bdt" else "model.safetensors"
    assert (out / weights).exists() and not list(out.glob("*.pt*"))
    if kind != "bdt":
        assert manifest["model"]["config"]["preprocessing"]["tracks"]["features"][0] == \
            "track_ptrel"
        assert len(prov["training"]["history"]["epoch_seconds"]) >= 1


def test_predict_and_logits_through_the_python_api(trained, test_file):
    bundle = servable.load(trained["in"])
    jets = servable.read_jets(test_file)[:50]
    p, z = bundle.predict(jets), bundle.logits(jets)
    assert p.shape == (50, 2) and np.allclose(p.sum(1), 1, atol=1e-6)
    assert np.array_equal(p.argmax(1), z.argmax(1))


def test_bdt_logits_are_its_margin(trained, test_file):
    bundle = servable.load(trained["bdt"])
    jets = servable.read_jets(test_file)[:50]
    z = bundle.logits(jets)
    assert np.all(z[:, 0] == 0)
    np.testing.assert_allclose(bundle.predict(jets)[:, 1], 1 / (1 + np.exp(-z[:, 1])), rtol=1e-5)


def test_bdt_keeps_its_native_feature_importance(trained):
    importance = servable.load(trained["bdt"]).tagger.native_importance()
    assert set(importance) == set(servable.data.schema.JET_NAMES)
    assert max(importance.values()) > 0


@pytest.mark.parametrize("kind", ["in", "mlp"])
def test_training_twice_with_the_same_seed_gives_identical_weights(train_file, tmp_path, kind):
    weights = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        r = run_cli("train", "--model", kind, "--data", train_file, "--epochs", 1, "--seed", 7,
                    "--quiet", "-o", out)
        assert r.returncode == 0, r.stderr
        weights.append(load_file(out / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        np.testing.assert_array_equal(weights[0][key], weights[1][key])


def test_several_seeds_give_mean_std_and_a_p_value(train_file, tmp_path):
    out = tmp_path / "seeds"
    r = run_cli("train", "--model", "bdt", "--data", train_file, "--seeds", "1,2,3",
                "--reference-auc", "0.999", "--quiet", "-o", out)
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [1, 2, 3]
    auc = summary["metrics"]["roc_auc"]
    assert len(auc["values"]) == 3 and auc["std"] >= 0
    assert 0 <= summary["reference_auc"]["p_value_one_sided"] <= 1
    assert all((out / f"seed-{s}" / "servable.yaml").exists() for s in (1, 2, 3))
    assert "+-" in r.stdout


def test_split_by_files_needs_several_files(train_file, tmp_path):
    r = run_cli("train", "--model", "bdt", "--data", train_file, "--split", "files",
                "-o", tmp_path / "x")
    assert_user_error(r, "needs at least 2 files")


def test_kfold_split_by_file_trains(train_file, test_file, tmp_path):
    r = run_cli("train", "--model", "bdt", "--data", train_file, "--data", test_file,
                "--split", "kfold", "--folds", 2, "--fold", 1, "--quiet", "-o", tmp_path / "k")
    assert r.returncode == 0, r.stderr
    record = servable.load(tmp_path / "k").manifest["provenance"]["training"]
    # files are sorted by path (never glob order): fold 1 of 2 validates on the second one
    second = sorted([train_file, test_file])[1]
    assert record["n_val"] == len(servable.read_jets(second))


def test_training_on_a_missing_file_exits_2(tmp_path):
    assert_user_error(run_cli("train", "--data", tmp_path / "none.h5", "-o", tmp_path / "o"),
                      "no such file")


def test_training_on_a_file_of_the_wrong_layout_exits_2(tmp_path):
    import h5py

    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["training_subgroup/training_2"] = np.zeros((10, 12, 60), np.float32)
        f["training_subgroup/training_3"] = np.zeros((10, 14, 5), np.float32)
    assert_user_error(run_cli("train", "--data", bad, "-o", tmp_path / "o"), "expected (n, 30, 60)")


def test_training_on_empty_data_exits_2(train_file, tmp_path):
    empty = tmp_path / "empty.h5"
    servable.write_jets(empty, servable.read_jets(train_file)[:0])
    assert_user_error(run_cli("train", "--data", empty, "-o", tmp_path / "o"), "jets")


def test_evaluate_on_unlabelled_jets_exits_2(trained, train_file, tmp_path):
    jets = servable.read_jets(train_file)[:20]
    jets.labels = None
    unlabelled = tmp_path / "unlabelled.h5"
    servable.write_jets(unlabelled, jets)
    assert_user_error(run_cli("evaluate", trained["in"], "--data", unlabelled), "labels")
