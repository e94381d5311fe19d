"""The fast explanation paths give what the methods gave before the speed-ups.

The reference is `benchmarks/explain_baseline.py`: the method bodies as they were (Captum IG
over input-order batches, shap.GradientExplainer one jet at a time, one masked prediction per
feature set, unsorted ParT batches). Parity: 1e-6 on probabilities, 1e-5 (relative to the
largest relevance) on relevance. Jets are synthetic CMS-layout jets of varied multiplicity:
parity needs no physics, and they cost nothing to make.
"""

import importlib.util

import numpy as np
import pytest
import torch

import servable
from servable.bundle.bundle import save_bundle
from servable.data import schema
from servable.data.jets import Jets, filled_slots
from servable.explain.gradients import IntegratedGradients
from servable.explain.grouping import similar_multiplicity_groups
from servable.explain.masking import Masking, masked, replacement_values
from servable.explain.shap_methods import Shap
from servable.models.taggers import ParTTagger
from tests.conftest import ROOT


def _load_baseline():
    spec = importlib.util.spec_from_file_location(
        "explain_baseline", ROOT / "benchmarks" / "explain_baseline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


baseline = _load_baseline()


def synthetic_jets(n: int, seed: int) -> Jets:
    """CMS-layout jets: 1-45 tracks and 0-5 SVs filled first, features ~ N(0, 1) (track
    quality a small integer code), labels alternating."""
    rng = np.random.default_rng(seed)
    tracks = np.zeros((n, 30, 60), np.float32)
    vertices = np.zeros((n, 14, 5), np.float32)
    for j, (k, v) in enumerate(zip(rng.integers(1, 46, n), rng.integers(0, 6, n),
                                   strict=True)):
        tracks[j, :, :k] = rng.normal(size=(30, k))
        vertices[j, :, :v] = rng.normal(size=(14, v))
    quality = schema.TRACK_NAMES.index("track_quality")
    tracks[:, quality] = np.where(tracks[:, quality] != 0,
                                  rng.integers(1, 4, tracks[:, quality].shape), 0)
    labels = np.eye(2, dtype=np.float32)[np.arange(n) % 2]
    return Jets.cms(tracks, vertices, rng.normal(size=(n, 27)).astype(np.float32), labels)


@pytest.fixture(scope="module")
def jets():
    return synthetic_jets(48, seed=3)


@pytest.fixture(scope="module")
def models(published_bundle, tmp_path_factory):
    """The published IN and a small ParT with random weights (seed 0)."""
    torch.manual_seed(0)
    part = ParTTagger({"kind": "part", "hyperparameters": {
        "embed_dims": [32, 32], "pair_embed_dims": [16, 16], "num_layers": 1,
        "num_cls_layers": 1, "dropout": 0.0}})
    path = save_bundle(part, tmp_path_factory.mktemp("speed") / "part", name="part-random")
    return {"in": servable.load(published_bundle), "part": servable.load(path)}


def assert_relevance_equal(new: np.ndarray, old: np.ndarray):
    scale = max(float(np.abs(old).max()), 1e-12)
    assert np.abs(new - old).max() <= 1e-5 * scale


def test_similar_multiplicity_groups_cover_every_jet_once_in_rising_multiplicity(jets):
    inputs = {"tracks": jets.tracks}
    groups = similar_multiplicity_groups(inputs, copies=64)
    order = np.concatenate(groups)
    assert sorted(order) == list(range(len(jets)))
    assert np.all(np.diff(filled_slots(jets.tracks)[order]) >= 0)
    assert len(groups) > 1


def test_part_predicts_over_sorted_batches_what_it_predicts_over_input_order_batches(models,
                                                                                     jets):
    tagger = models["part"].tagger
    inputs = tagger.inputs(jets)
    np.testing.assert_allclose(tagger.predict_from_inputs(inputs),
                               baseline._predict(tagger, inputs), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["in", "part"])
def test_masked_copies_predicted_together_equal_one_set_at_a_time(models, jets, kind):
    method = Masking(models[kind])
    inputs = method.tagger.inputs(jets)
    values = replacement_values(inputs, method.spec, "mean")
    features = method.features()
    sets = [[features[0]], [f for f in features if f[0] == "vertices"], features[:5]]
    base = baseline._predict(method.tagger, inputs)[:, 1]
    new = method._predict_masked(inputs, sets, values, 1, base)
    for chosen, p in zip(sets, new, strict=True):
        old = baseline._predict(method.tagger, masked(inputs, chosen, values))[:, 1]
        np.testing.assert_allclose(p, old, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["in", "part"])
def test_masking_reports_the_auc_losses_and_fidelities_it_reported_before(models, jets, kind):
    method = Masking(models[kind])
    new = method.attribute(jets)
    old = baseline.masking(method, jets)
    np.testing.assert_allclose(new.output, old["output"], rtol=0, atol=1e-6)
    assert new.feature_relevance == pytest.approx(old["delta"], abs=1e-6)
    n_features = len(method.features())
    for a, b in zip(new.extras["cumulative"], old["cumulative"], strict=True):
        assert a["n_masked"] == b["n_masked"]
        assert a["fidelity"] == pytest.approx(b["fidelity"], abs=1e-6)
        if a["n_masked"] < n_features:  # all masked: jets of equal multiplicity tie exactly
            assert a["auc"] == pytest.approx(b["auc"], abs=1e-6)


@pytest.mark.parametrize(("kind", "reference"), [("in", "zero"), ("in", "mean"),
                                                 ("part", "zero"), ("part", "mean")])
def test_integrated_gradients_equal_captums_on_input_order_batches(models, jets, kind,
                                                                   reference):
    method = IntegratedGradients(models[kind])
    sample = jets[:16]
    new = method.attribute(sample, baseline=reference, n_steps=16)
    old = baseline.integrated_gradients(method, sample, baseline=reference, n_steps=16)
    for key in method.spec.names:
        assert_relevance_equal(getattr(new, method.spec[key].field), old["relevance"][key])
    # logits of up to ~90 in float32, bucketed with other jets: a few ulp (1e-6 relative)
    np.testing.assert_allclose(new.output, old["output"], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(new.extras["convergence_delta"], old["convergence_delta"],
                               rtol=0, atol=1e-4)


@pytest.mark.parametrize("kind", ["in", "part"])
def test_gradient_shap_equals_shaps_gradient_explainer(models, jets, kind):
    method = Shap(models[kind])
    sample = jets[:12]
    new = method.attribute(sample, background=8, nsamples=20, seed=4)
    old = baseline.shap_gradient(method, sample, background=8, nsamples=20, seed=4)
    for key in method.spec.names:
        assert_relevance_equal(getattr(new, method.spec[key].field), old["relevance"][key])
