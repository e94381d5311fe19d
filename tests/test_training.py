"""Training and evaluation: AUC targets, determinism, seeds, bad input."""

import json
import math
import statistics

import numpy as np
import pytest
from safetensors.numpy import load_file
from scipy import stats
from sklearn.metrics import roc_auc_score

import servable
from tests.cli_helpers import assert_user_error, run_cli

pytestmark = pytest.mark.slow
TARGET_AUC = {"in": 0.95, "mlp": 0.90, "bdt": 0.90, "part": 0.90}


@pytest.fixture(scope="module")
def test_jets(test_file):
    return servable.read_jets(test_file)


@pytest.mark.parametrize("kind", list(TARGET_AUC))
def test_four_epochs_reach_the_target_auc_on_an_independent_file(trained, test_jets, kind):
    p = servable.load(trained[kind]).predict(test_jets)[:, 1]
    assert roc_auc_score(test_jets.is_signal, p) > TARGET_AUC[kind]


@pytest.fixture(scope="module")
def mlp_evaluation(trained, test_file, test_jets):
    """What `servable evaluate --json` reports, and the bundle's own predictions."""
    r = run_cli("evaluate", trained["mlp"], "--data", test_file, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), servable.load(trained["mlp"]).predict(test_jets)


def test_evaluate_reports_the_accuracy_and_auc_of_the_bundles_predictions(mlp_evaluation,
                                                                          test_jets):
    metrics, p = mlp_evaluation
    y = test_jets.is_signal
    assert metrics["n_jets"] == len(test_jets) == 2000
    assert metrics["accuracy"] == pytest.approx(np.mean((p[:, 1] > p[:, 0]) == y), abs=1e-9)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p[:, 1]), abs=1e-6)


@pytest.mark.parametrize("efficiency", [0.5, 0.3])
def test_evaluate_reports_the_background_rejection_at_a_signal_efficiency(mlp_evaluation,
                                                                         test_jets, efficiency):
    metrics, p = mlp_evaluation
    rejection = metrics[f"rejection_{round(efficiency * 100)}"]
    signal, background = p[test_jets.is_signal, 1], p[~test_jets.is_signal, 1]
    cut = np.quantile(signal, 1 - efficiency)  # the cut that keeps that share of the signal
    passing = np.mean(background >= cut)
    # the code interpolates the ROC between neighbouring cuts: a jet or two either way
    assert abs(1 / rejection - passing) <= 2 / len(background), (rejection, passing)


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


REFERENCE_AUC = 0.999


@pytest.fixture(scope="module")
def seeds_run(train_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds") / "bdt"
    r = run_cli("train", "--model", "bdt", "--data", train_file, "--seeds", "1,2,3",
                "--reference-auc", REFERENCE_AUC, "--quiet", "-o", out)
    assert r.returncode == 0, r.stderr
    return out, r.stdout, json.loads((out / "summary.json").read_text())


def _seed_aucs(out):
    """Each seed's validation AUC, as its own bundle records it."""
    return [servable.load(out / f"seed-{s}").manifest["provenance"]["training"]
            ["validation_metrics"]["roc_auc"] for s in (1, 2, 3)]


def test_several_seeds_train_one_bundle_per_seed(seeds_run):
    out, _, summary = seeds_run
    assert summary["seeds"] == [1, 2, 3]
    assert summary["metrics"]["roc_auc"]["values"] == _seed_aucs(out)
    assert len(set(_seed_aucs(out))) == 3  # the seeds really differ


def test_several_seeds_report_the_mean_and_sample_standard_deviation(seeds_run):
    out, _, summary = seeds_run
    auc = _seed_aucs(out)
    reported = summary["metrics"]["roc_auc"]
    assert reported["mean"] == pytest.approx(statistics.mean(auc), rel=1e-12)
    assert reported["std"] == pytest.approx(statistics.stdev(auc), rel=1e-9)


def test_the_p_value_is_the_normal_tail_above_the_reference_auc(seeds_run):
    # one-sided: the chance that a seed of this training reaches the reference AUC, under a
    # normal distribution with the seeds' mean and sample standard deviation
    out, _, summary = seeds_run
    auc = _seed_aucs(out)
    z = (REFERENCE_AUC - statistics.mean(auc)) / statistics.stdev(auc)
    expected = 0.5 * math.erfc(z / math.sqrt(2))
    reported = summary["reference_auc"]
    assert reported["z"] == pytest.approx(z, rel=1e-9)
    assert reported["p_value_one_sided"] == pytest.approx(expected, rel=1e-6)
    assert reported["p_value_one_sided"] == pytest.approx(stats.norm.sf(z), rel=1e-6)


def test_several_seeds_print_mean_and_std(seeds_run):
    out, stdout, _ = seeds_run
    auc = _seed_aucs(out)
    line = f"{statistics.mean(auc):.4f} +- {statistics.stdev(auc):.4f}"
    assert line in stdout, stdout


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
