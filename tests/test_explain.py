"""The explainability bench: physics sanity, completeness, additivity, padding, CLI matrix."""

import json

import numpy as np
import pytest
import torch

import servable
from servable.explain import METHODS, MethodNotApplicable
from servable.explain.lrp import LRPRule, lrp_rule
from servable.models.interaction_network import InteractionNetwork
from tests.cli_helpers import assert_user_error, run_cli

pytestmark = pytest.mark.slow

IMPACT_PARAMETER = {"track_dz", "track_dzsig", "track_dxy", "track_dxysig", "trackBTag_Sip2dVal",
                    "trackBTag_Sip2dSig", "trackBTag_Sip3dVal", "trackBTag_Sip3dSig",
                    "trackBTag_JetDistVal"}
APPLIES = {name: set(m.applies_to) for name, m in METHODS.items()}
# fewer samples for the costly methods, so the matrix fits the suite's time
CHEAP = {"shap": ["nsamples=20"], "lime": ["num_samples=60"], "ig": ["n_steps=16"]}


def b_physics(name):
    return name in IMPACT_PARAMETER or name.startswith("sv_")


@pytest.fixture(scope="module")
def jets(test_file):
    return servable.read_jets(test_file)[:300]


@pytest.mark.parametrize("method", ["masking", "lrp"])
def test_b_decay_features_lead_the_in_explanations(trained, jets, method):
    explanation = servable.load(trained["in"]).explain(jets, method=method)
    top = explanation.top(5)
    assert any(b_physics(name) for name in top), top


def test_integrated_gradients_are_complete_with_a_zero_baseline(trained, test_file):
    jets = servable.read_jets(test_file)[:200]
    e = servable.load(trained["in"]).explain(jets, method="ig", baseline="zero")
    assert e.extras["completeness_error_median"] < 0.02
    total = e.tracks.reshape(200, -1).sum(1) + e.vertices.reshape(200, -1).sum(1)
    # track_quality (categorical) keeps its value along the path: zero attribution
    assert np.median(np.abs(total - (e.output - e.base_value))
                     / np.abs(e.output - e.base_value)) < 0.02
    assert np.all(e.tracks[:, e.feature_names["tracks"].index("track_quality")] == 0)


def test_tree_shap_plus_base_value_equals_the_bdt_margin(trained, jets):
    bundle = servable.load(trained["bdt"])
    e = bundle.explain(jets, method="shap")
    margin = bundle.logits(jets)[:, 1]
    np.testing.assert_allclose(e.jet.sum(1) + e.base_value, margin, atol=1e-3)
    assert set(e.extras["native_importance_gain"]) == set(e.feature_names["jet"])


@pytest.mark.parametrize("kind, method", [("in", "lrp"), ("in", "ig"), ("in", "saliency"),
                                          ("mlp", "lrp"), ("part", "saliency"),
                                          ("part", "ig"), ("in", "shap")])
def test_padded_slots_get_exactly_zero_relevance(trained, jets, kind, method):
    params = {"ig": {"n_steps": 8}, "shap": {"nsamples": 10}}.get(method, {})
    e = servable.load(trained[kind]).explain(jets[:60], method=method, **params)
    for relevance, array in ((e.tracks, jets.tracks[:60]), (e.vertices, jets.vertices[:60])):
        if relevance is None:
            continue
        empty = ~np.any(array != 0, axis=1)  # (n, slots)
        assert np.all(relevance.transpose(0, 2, 1)[empty] == 0)
        assert np.any(relevance != 0)


@pytest.mark.parametrize("rule", ["epsilon", "gamma"])
def test_lrp_through_the_fast_path_equals_lrp_through_the_dense_formulation(rule):
    torch.manual_seed(0)
    net = InteractionNetwork().double()
    x = torch.zeros(6, 30, 60, dtype=torch.float64)
    y = torch.zeros(6, 14, 5, dtype=torch.float64)
    for i, (nt, nv) in enumerate([(60, 5), (1, 0), (12, 2), (30, 5), (3, 1), (0, 0)]):
        x[i, :, :nt] = torch.randn(30, nt, dtype=torch.float64)
        y[i, :, :nv] = torch.randn(14, nv, dtype=torch.float64)
    relevance = []
    for forward in (net.forward, net.dense_forward):
        xs, ys = x.clone().requires_grad_(), y.clone().requires_grad_()
        with lrp_rule(net, LRPRule(rule)):
            forward(xs, ys)[:, 1].sum().backward()
        relevance.append((xs * xs.grad).detach().numpy())
    np.testing.assert_allclose(relevance[0], relevance[1], atol=1e-9)
    assert net.lrp_rule is None and all(p.requires_grad for p in net.parameters())


def test_lrp_leaves_the_model_exactly_as_it_was(trained, jets):
    bundle = servable.load(trained["in"])
    before = bundle.logits(jets[:50])
    bundle.explain(jets[:50], method="lrp", rule="gamma")
    np.testing.assert_array_equal(bundle.logits(jets[:50]), before)
    assert not any(m._forward_hooks for m in bundle.tagger.net.modules())


def test_masking_reports_cumulative_auc_and_fidelity(trained, jets):
    e = servable.load(trained["bdt"]).explain(jets, method="masking", replacement="zero")
    rows = e.extras["cumulative"]
    assert [r["n_masked"] for r in rows] == sorted(r["n_masked"] for r in rows)
    assert rows[0]["fidelity"] <= 1 and rows[-1]["n_masked"] >= rows[0]["n_masked"]


def test_rna_gives_relative_activity_and_sparsity(trained, jets):
    e = servable.load(trained["in"]).explain(jets, method="rna")
    for label in ("QCD", "Hbb"):
        for layer, values in e.extras["rna"][label].items():
            assert np.isclose(np.max(values), 1.0), layer
        assert 0 <= e.extras["sparsity"][label]["fo3"] <= 1


def test_probes_find_the_number_of_vertices_in_the_ins_track_vertex_stage(trained, test_file):
    jets = servable.read_jets(test_file)[:400]
    e = servable.load(trained["in"]).explain(jets, method="probes")
    assert e.extras["r2"]["n_vertices"]["track-SV edges (fr3_pv)"] > 0.5
    assert "n_b_hadrons" in e.extras["r2"]


def test_a_method_that_does_not_apply_names_the_models_it_applies_to(trained, jets):
    for kind in ("in", "mlp", "bdt", "part"):
        bundle = servable.load(trained[kind])
        for method, kinds in APPLIES.items():
            if kind not in kinds:
                with pytest.raises(MethodNotApplicable, match=", ".join(sorted(kinds))[:2]):
                    bundle.explain(jets[:5], method=method)


PAIRS = [(k, m) for m, kinds in APPLIES.items() for k in ("in", "mlp", "bdt", "part")
         if k in kinds]


@pytest.mark.parametrize("kind, method", PAIRS, ids=[f"{k}-{m}" for k, m in PAIRS])
def test_every_method_model_pair_runs_through_the_cli_on_300_jets(trained, test_file, tmp_path,
                                                                  kind, method):
    params = [x for p in (CHEAP.get(method, []) if kind == "part" else []) for x in ("--param", p)]
    r = run_cli("explain", trained[kind], test_file, "--method", method, "--n-jets", 300,
                *params, "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "out" / "explanation.json").read_text())
    assert result["method"] == method and result["target"] == 1
    assert {"feature_names", "feature_relevance"} <= set(result)
    assert list((tmp_path / "out").glob("*.png"))


def test_the_cli_refuses_a_method_that_does_not_apply(trained, test_file, tmp_path):
    r = run_cli("explain", trained["bdt"], test_file, "--method", "lrp", "-o", tmp_path / "o")
    assert_user_error(r, "does not apply to a bdt model", "in, mlp")
