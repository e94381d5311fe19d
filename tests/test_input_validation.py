"""One validation at the point of use: whatever happened to jets after they were built, what
reaches a model is checked against its input spec (shapes, dtype, finite values), the same
for every runtime."""

import numpy as np
import pytest

from servable.bundle.bundle import open_bundle
from servable.data import schema
from servable.data.jets import InvalidJetsError, Jets

RUNTIMES = ("torch", "onnx")


@pytest.fixture(scope="module")
def bundle(published_bundle):
    return open_bundle(published_bundle)


def _jets(bundle, n=6) -> Jets:
    """Valid jets in the bundle's own layout (its spec's example inputs)."""
    x = bundle.spec.example(n)
    labels = np.eye(2, dtype=np.float32)[[0, 1] * (n // 2)]
    return Jets.cms(x["tracks"], x["vertices"], labels=labels)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_nan_set_after_construction_is_refused_not_scored(bundle, runtime):
    jets = _jets(bundle)
    assert np.isfinite(bundle.predict(jets, runtime=runtime)).all()
    jets.tracks[2, 0, 0] = np.nan
    with pytest.raises(InvalidJetsError, match=r"tracks: 1 NaN/Inf values \(first in jet 2\)"):
        bundle.predict(jets, runtime=runtime)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_inf_in_a_sliced_view_is_refused(bundle, runtime):
    jets = _jets(bundle)[1:4]  # slices skip construction-time validation
    jets.vertices[0, 1, 0] = -np.inf
    with pytest.raises(InvalidJetsError, match=r"vertices: 1 NaN/Inf values"):
        bundle.logits(jets, runtime=runtime)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_59_track_slots_are_refused_by_every_runtime_alike(bundle, runtime):
    jets = _jets(bundle)
    jets.tracks = np.ascontiguousarray(jets.tracks[:, :, :59])
    with pytest.raises(InvalidJetsError, match="the model takes 60 slots per jet, the input "
                                               "has 59"):
        bundle.predict(jets, runtime=runtime)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_an_array_replaced_by_one_of_another_shape_is_refused(bundle, runtime):
    jets = _jets(bundle)
    jets.tracks = jets.tracks[:, :, 0]  # (n, 30): one slot dimension lost
    with pytest.raises(InvalidJetsError, match=r"tracks: expected shape \(jets, features, "
                                               r"slots\) with 30 features, received \(6, 30\)"):
        bundle.predict(jets, runtime=runtime)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_inputs_of_different_jet_counts_are_refused(bundle, runtime):
    jets = _jets(bundle)
    jets.vertices = jets.vertices[:4]
    with pytest.raises(InvalidJetsError, match="every input needs the same number of jets"):
        bundle.predict(jets, runtime=runtime)


def test_the_xgboost_runtime_refuses_nan_instead_of_reading_it_as_missing():
    import xgboost as xgb

    from servable.models.taggers import build_tagger

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, len(schema.JET_NAMES))).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    bdt = build_tagger({"kind": "bdt"})
    bdt.booster = xgb.train({"max_depth": 1}, xgb.DMatrix(x, label=y,
                                                          feature_names=list(schema.JET_NAMES)),
                            num_boost_round=2)
    t = np.zeros((40, 30, 60), np.float32)
    jets = Jets.cms(t, np.zeros((40, 14, 5), np.float32), x)
    assert np.isfinite(bdt.predict(jets)).all()
    jets.jet_features[3, 5] = np.nan
    with pytest.raises(InvalidJetsError, match=r"jet_features: 1 NaN/Inf values \(first in "
                                               r"jet 3\)"):
        bdt.predict(jets)


def test_labels_that_are_not_one_hot_are_refused_by_evaluate_and_train(published_bundle,
                                                                       tmp_path):
    from servable.data.h5io import write_jets
    from tests.cli_helpers import assert_user_error, run_cli

    bundle = open_bundle(published_bundle)
    jets = _jets(bundle)
    jets.labels[1:4] = [[2, 0], [1, -1], [0.5, 0.5]]
    data = write_jets(tmp_path / "labels.h5", jets)
    before = data.read_bytes()
    assert_user_error(run_cli("evaluate", published_bundle, "--data", data),
                      "labels: expected one-hot rows", "[2.0, 0.0] for jet 1 (3 such jets)")
    assert_user_error(run_cli("train", "--model", "bdt", "--data", data, "--quiet",
                              "-o", tmp_path / "out"), "labels: expected one-hot rows")
    assert not (tmp_path / "out").exists()
    assert data.read_bytes() == before


def test_a_manifest_whose_inputs_disagree_with_model_onnx_is_refused_before_feeding(bundle):
    """Found by fuzz/bundle_loader.py: a manifest without the vertices group made ONNX
    Runtime fail with a KeyError; one with fewer features, with ONNX Runtime's own error."""
    from servable.runtimes import ModelMismatch
    from servable.runtimes.onnx_runtime import OnnxRuntime

    ort = OnnxRuntime(bundle.path / "model.onnx")
    x = bundle.spec.example(3)
    np.testing.assert_allclose(ort.logits(x), bundle.tagger.logits_from_inputs(x), atol=1e-4)
    with pytest.raises(ModelMismatch, match="model.onnx takes the inputs tracks, vertices, "
                                            "the manifest declares tracks;"):
        ort.logits({"tracks": x["tracks"]})
    with pytest.raises(ModelMismatch, match=r"model.onnx takes tracks of shape \(n, 30, 60\), "
                                            r"the manifest's input spec gives \(3, 29, 60\)"):
        ort.logits({"tracks": x["tracks"][:, 1:], "vertices": x["vertices"]})
