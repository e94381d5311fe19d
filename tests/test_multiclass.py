"""Training on JetClass data, ten classes: every kind on ring jets (from ROOT and from HDF5),
the class list in the bundle, the multi-class BDT, ONNX parity, predict, parity bench,
evaluate and the training summaries for K classes."""

import json
import statistics

import h5py
import numpy as np
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

import servable
from servable.data import jetobservables, schema
from servable.models import training
from servable.models.metrics import roc_curves
from tests.cli_helpers import assert_user_error, run_cli

KINDS = ("bdt", "mlp", "part", "particlenet")


@pytest.fixture(scope="module")
def test_jets(ring_files):
    return servable.read_jets(ring_files["test"])


@pytest.fixture(scope="module")
def bundles(ring_trained):
    return {kind: servable.load(path) for kind, (path, _) in ring_trained.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_two_epochs_on_ring_jets_are_far_above_chance_on_an_independent_file(bundles,
                                                                           test_jets, kind):
    """Each class owns a ring of dR (tests/ring_jets.py), which every model reads: chance is
    10% accuracy and a macro AUC of 0.5."""
    p = bundles[kind].predict(test_jets)
    y = test_jets.class_index
    assert p.shape == (300, 10)
    assert np.mean(p.argmax(1) == y) > 0.3
    assert np.mean([roc_auc_score(y == c, p[:, c]) for c in range(10)]) > 0.9


@pytest.mark.parametrize("kind", KINDS)
def test_a_jetclass_bundle_carries_the_class_list_and_is_named_after_its_task(bundles, kind):
    m = bundles[kind].manifest
    classes = list(schema.JETCLASS_CLASSES)
    assert m["outputs"][0]["classes"] == classes and m["outputs"][0]["shape"] == [None, 10]
    assert m["model"]["config"]["class_names"] == classes
    assert m["model"]["config"]["n_classes"] == 10
    # the ring ParticleNet reads the kin feature set, which its name says; full is unnamed
    assert m["name"] == f"jetclass-{kind}" + ("-kin" if kind == "particlenet" else "")
    assert m["task"].startswith("jet classification: 10 classes (QCD, Hbb,")
    assert "H->bb vs QCD" not in m["description"]
    assert m["metrics"]["class_names"] == classes and 0 < m["metrics"]["macro_auc"] <= 1


@pytest.mark.parametrize("kind", KINDS)
def test_training_prints_the_macro_auc_of_the_ten_classes(ring_trained, kind):
    path, stdout = ring_trained[kind]
    macro = servable.load(path).manifest["metrics"]["macro_auc"]
    assert f"validation macro AUC (10 classes) {macro:.4f}" in stdout, stdout


def test_the_roc_plot_and_loss_plot_join_the_bundle(ring_trained):
    for path, _ in ring_trained.values():
        assert (path / "roc.png").stat().st_size > 0 and (path / "loss.png").stat().st_size > 0


def test_models_read_only_the_groups_jetclass_data_has(bundles):
    inputs = {kind: [g["name"] for g in b.manifest["inputs"]] for kind, b in bundles.items()}
    assert inputs == {"bdt": ["jet_features"], "mlp": ["particles", "jet_features"],
                      "part": ["particles"], "particlenet": ["particles"]}
    mlp = bundles["mlp"].manifest["inputs"]
    assert [f["name"] for f in mlp[1]["features"]] == list(jetobservables.INPUTS)
    assert mlp[0]["shape"] == [None, 17, 128]  # the full feature set, 128 particles
    part = [f["name"] for f in bundles["part"].manifest["inputs"][0]["features"]]
    assert part[-4:] == ["part_px", "part_py", "part_pz", "part_energy"]  # pair features
    pnet = bundles["particlenet"].manifest["inputs"][0]["shape"]
    assert pnet == [None, 7, 128]  # --feature-set kin


def test_the_bdt_trains_multi_softprob_and_its_logits_are_xgboosts_margins(bundles,
                                                                          test_jets):
    bdt = bundles["bdt"]
    booster = bdt.tagger.booster
    assert json.loads(booster.save_config())["learner"]["objective"]["name"] == \
        "multi:softprob"
    x = xgb.DMatrix(test_jets.jet_features[:, [test_jets.jet_feature_names.index(n)
                                               for n in jetobservables.INPUTS]],
                    feature_names=list(jetobservables.INPUTS))
    np.testing.assert_allclose(bdt.logits(test_jets), booster.predict(x, output_margin=True),
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(bdt.predict(test_jets), booster.predict(x), rtol=0, atol=1e-6)
    importance = bdt.tagger.native_importance()
    assert set(importance) == set(jetobservables.INPUTS) and max(importance.values()) > 0


def test_training_from_root_and_from_its_hdf5_copy_gives_the_same_booster(ring_files):
    cfg = training.TrainConfig(model="bdt", hyperparameters={"n_estimators": 10})
    raw = [training.train([ring_files[source]], cfg, progress=False)[0].weights_bytes()
           for source in ("root", "h5")]
    assert raw[0] == raw[1]


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_runtime_gives_the_probabilities_of_the_native_model(bundles, test_jets, kind):
    b = bundles[kind]
    native, onnx = b.predict(test_jets), b.predict(test_jets, runtime="onnx")
    assert onnx.shape == (300, 10)
    assert np.max(np.abs(onnx - native)) < 1e-5


def test_the_parity_bench_compares_runtimes_over_ten_classes(ring_trained, ring_files,
                                                             bundles, test_jets):
    r = run_cli("bench", "parity", ring_trained["part"][0], "--data", ring_files["test"],
                "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["classes"] == 10 and report["n_jets"] == 300
    p, y = bundles["part"].predict(test_jets), test_jets.class_index
    macro = np.mean([roc_auc_score(y == c, p[:, c]) for c in range(10)])
    assert report["runtimes"]["torch"]["roc_auc"] == pytest.approx(macro, abs=1e-9)
    assert report["runtimes"]["onnx"]["max_abs_dp"] < 1e-5
    assert report["runtimes"]["onnx"]["fidelity"] > 1 - 1e-6


def test_predict_writes_one_named_column_per_class_from_a_root_file(ring_trained, ring_files,
                                                                    bundles, test_jets,
                                                                    tmp_path):
    out = tmp_path / "scores.h5"
    r = run_cli("predict", ring_trained["particlenet"][0], ring_files["test"], "-o", out,
                "--runtime", "onnx", "--quiet")
    assert r.returncode == 0, r.stderr
    with h5py.File(out) as f:
        scores = f["scores"][:]
        classes = [c.decode() if isinstance(c, bytes) else c for c in f["scores"].attrs["classes"]]
    assert classes == list(schema.JETCLASS_CLASSES) and scores.shape == (300, 10)
    np.testing.assert_allclose(scores, bundles["particlenet"].predict(test_jets), atol=1e-5)


def test_evaluate_prints_the_jetclass_table_of_a_trained_model(ring_trained, ring_files,
                                                               bundles, test_jets):
    r = run_cli("evaluate", ring_trained["mlp"][0], "--data", ring_files["test"], "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    p = bundles["mlp"].predict(test_jets)
    assert m["accuracy"] == pytest.approx(np.mean(p.argmax(1) == test_jets.class_index))
    assert m["absent"] == [] and set(m["rejection"]) == set(schema.JETCLASS_CLASSES[1:])


def test_the_in_refuses_jetclass_data_naming_what_it_lacks(ring_files, tmp_path):
    r = run_cli("train", "--model", "in", "--data", ring_files["h5"], "-o", tmp_path / "in")
    assert_user_error(r, "the IN reads secondary vertices, which JetClass data does not have")


def test_files_of_different_tasks_are_refused_together(ring_files, tmp_path):
    cms = servable.Jets.cms(np.zeros((4, 30, 60), np.float32), np.zeros((4, 14, 5), np.float32),
                        labels=np.eye(2, dtype=np.float32)[[0, 1, 0, 1]])
    servable.write_jets(tmp_path / "cms.h5", cms)
    r = run_cli("train", "--model", "bdt", "--data", ring_files["h5"], "--data",
                tmp_path / "cms.h5", "-o", tmp_path / "mixed")
    assert_user_error(r, "are not those of", "train on files of one task")


def test_roc_curves_of_many_classes_are_each_class_against_qcd():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([[0.7, 0.2, 0.1], [0.5, 0.1, 0.4], [0.2, 0.6, 0.2], [0.3, 0.3, 0.4],
                  [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]])
    curves = roc_curves(y, p, ["QCD", "Hbb", "Tbl"])
    assert list(curves) == ["Hbb", "Tbl"]
    truth, score = curves["Tbl"]  # QCD jets 0, 1 and Tbl jets 4, 5: p_Tbl / (p_Tbl + p_QCD)
    np.testing.assert_array_equal(truth, [False, False, True, True])
    np.testing.assert_allclose(score, [0.1 / 0.8, 0.4 / 0.9, 0.8 / 0.9, 0.2 / 0.8])


def test_the_seed_summary_of_many_classes_averages_macro_auc_and_each_rejection():
    from servable.bundle.train import seed_summary

    runs = [{"validation_metrics": {"class_names": ["QCD", "Hbb", "Tbl"], "accuracy": a,
                                    "macro_auc": m, "auc": {}, "absent": [],
                                    "rejection": {"Hbb": r, "Tbl": 2.0}}}
            for a, m, r in ((0.5, 0.90, 10.0), (0.6, 0.92, 14.0), (0.7, 0.97, 30.0))]
    summary = seed_summary(runs, [1, 2, 3], reference_auc=0.99)
    got = summary["metrics"]
    assert set(got) == {"accuracy", "macro_auc", "rejection_Hbb", "rejection_Tbl"}
    assert got["macro_auc"]["mean"] == pytest.approx(statistics.mean([0.90, 0.92, 0.97]))
    assert got["rejection_Hbb"]["std"] == pytest.approx(statistics.stdev([10.0, 14.0, 30.0]))
    z = (0.99 - statistics.mean([0.90, 0.92, 0.97])) / statistics.stdev([0.90, 0.92, 0.97])
    assert summary["reference_auc"]["z"] == pytest.approx(z)
