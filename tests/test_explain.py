"""The explainability bench: physics sanity, completeness, additivity, padding, CLI matrix."""

import json
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import servable
from servable.explain import METHODS, MethodNotApplicable
from servable.explain.lrp import LRPRule, lrp_rule
from servable.models.interaction_network import InteractionNetwork
from tests.cli_helpers import assert_user_error, run_cli

pytestmark = pytest.mark.slow

IMPACT_PARAMETER = {"track_dz", "track_dzsig", "track_dxy", "track_dxysig", "trackBTag_Sip2dVal",
                    "trackBTag_Sip2dSig", "trackBTag_Sip3dVal", "trackBTag_Sip3dSig",
                    "trackBTag_JetDistVal"}
KINDS = ("in", "mlp", "bdt", "part")
# which method explains which model: written out, not read from the code under test
APPLIES = {
    "masking": {"in", "mlp", "bdt", "part"},   # model-agnostic: only calls predict
    "shap": {"in", "mlp", "bdt", "part"},      # DeepSHAP / KernelSHAP / TreeSHAP
    "lime": {"in", "mlp", "bdt", "part"},
    "lrp": {"in", "mlp"},                      # needs the layer-wise rules of the network
    "rna": {"in", "mlp"},                      # hidden-layer activity of IN / MLP layers
    "ig": {"in", "mlp", "part"},               # gradients: every torch model
    "saliency": {"in", "mlp", "part"},
    "attention": {"part"},                     # only the transformer has attention
    "probes": {"in", "part"},                  # stage representations of IN / ParT
    "edges": set(),                            # ParticleNet's EdgeConv edges only
}
PAIRS = [(k, m) for m, kinds in APPLIES.items() for k in KINDS if k in kinds]
REFUSED = [(k, m) for m, kinds in APPLIES.items() for k in KINDS if k not in kinds]
# fewer samples for the costly methods, so the matrix fits the suite's time
CHEAP = {"shap": ["nsamples=20"], "lime": ["num_samples=60"], "ig": ["n_steps=16"]}


def b_physics(name):
    return name in IMPACT_PARAMETER or name.startswith("sv_")


@pytest.fixture(scope="module")
def jets(test_file):
    return servable.read_jets(test_file)[:300]


@pytest.fixture(scope="module")
def servables(trained):
    return {kind: servable.load(trained[kind]) for kind in KINDS}


@pytest.mark.parametrize("method", ["masking", "lrp"])
def test_b_decay_features_lead_the_in_explanations(trained, jets, method):
    explanation = servable.load(trained["in"]).explain(jets, method=method)
    top = explanation.top(5)
    assert any(b_physics(name) for name in top), top


@pytest.fixture(scope="module")
def ig_in(servables, test_file):
    jets = servable.read_jets(test_file)[:200]
    return jets, servables["in"].explain(jets, method="ig", baseline="zero")


def _ig_total(e):
    n = len(e.tracks)
    return e.tracks.reshape(n, -1).sum(1) + e.vertices.reshape(n, -1).sum(1)


def test_integrated_gradients_sum_to_the_logit_minus_its_value_at_the_baseline(servables, ig_in):
    jets, e = ig_in
    logit = servables["in"].logits(jets)[:, 1]
    error = np.abs(_ig_total(e) - (logit - e.base_value)) / np.abs(logit - e.base_value)
    assert np.median(error) < 0.02


def test_integrated_gradients_report_the_completeness_error_of_each_jet(ig_in):
    _, e = ig_in
    gap = e.output - e.base_value
    np.testing.assert_allclose(e.extras["completeness_error"],
                               np.abs(_ig_total(e) - gap) / np.abs(gap), rtol=1e-3, atol=1e-6)


def test_integrated_gradients_give_the_categorical_track_quality_zero(ig_in):
    # track_quality keeps its value along the path: a path through codes that do not exist
    _, e = ig_in
    column = e.feature_names["tracks"].index("track_quality")
    assert np.all(e.tracks[:, column] == 0) and np.any(e.tracks != 0)


def test_tree_shap_plus_base_value_equals_the_bdt_margin(servables, jets):
    bundle = servables["bdt"]
    e = bundle.explain(jets, method="shap")
    margin = bundle.logits(jets)[:, 1]
    np.testing.assert_allclose(e.jet.sum(1) + e.base_value, margin, atol=1e-3)


def test_tree_shap_keeps_the_boosters_own_gain_importance(servables, jets):
    bundle = servables["bdt"]
    e = bundle.explain(jets[:20], method="shap")
    gain = bundle.tagger.booster.get_score(importance_type="gain")  # xgboost, unused: absent
    expected = {name: gain.get(name, 0.0) for name in jets.jet_feature_names}
    assert e.extras["native_importance_gain"] == pytest.approx(expected)
    assert max(expected.values()) > 0


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
        with lrp_rule(net, LRPRule(rule), forward) as with_rule:
            with_rule(xs, ys)[:, 1].sum().backward()
        relevance.append((xs * xs.grad).detach().numpy())
    np.testing.assert_allclose(relevance[0], relevance[1], atol=1e-9)


def test_an_lrp_rule_is_lifted_when_its_context_ends():
    torch.manual_seed(0)
    net = InteractionNetwork().double()
    x, y = torch.randn(3, 30, 60, dtype=torch.float64), torch.randn(3, 14, 5, dtype=torch.float64)

    def gradient(forward):
        xs = x.clone().requires_grad_()
        forward(xs, y)[:, 1].sum().backward()
        return xs.grad

    before = gradient(net)
    with lrp_rule(net, LRPRule("gamma")) as with_rule:
        assert not torch.allclose(gradient(with_rule), before)  # the rule changes the backward
        # the rule is passed to the forward it yields, not stored on the network
        assert not hasattr(net, "lrp_rule")
    torch.testing.assert_close(gradient(net), before, rtol=0, atol=1e-12)
    torch.testing.assert_close(gradient(net.forward), before, rtol=0, atol=1e-12)


def test_lrp_leaves_the_model_exactly_as_it_was(trained, jets):
    bundle = servable.load(trained["in"])
    before = bundle.logits(jets[:50])
    bundle.explain(jets[:50], method="lrp", rule="gamma")
    np.testing.assert_array_equal(bundle.logits(jets[:50]), before)
    assert not any(m._forward_hooks for m in bundle.tagger.net.modules())


def _hbb_with_zeroed(bundle, jets, names):
    """P(H->bb) with the named jet-level features set to zero in every jet, by hand."""
    features = jets.jet_features.copy()
    for name in names:
        features[:, jets.jet_feature_names.index(name)] = 0
    changed = jets[:]  # a copy of the groups: the fixture's jets stay as they are
    changed.jet_features = features
    return bundle.predict(changed)[:, 1]


@pytest.fixture(scope="module")
def bdt_masking(servables, jets):
    return servables["bdt"].explain(jets, method="masking", replacement="zero")


def test_masking_starts_from_the_auc_of_the_unmasked_model(servables, jets, bdt_masking):
    auc = roc_auc_score(jets.is_signal, servables["bdt"].predict(jets)[:, 1])
    assert bdt_masking.extras["auc"] == pytest.approx(auc, abs=1e-9)


def test_masking_one_feature_reports_the_auc_it_loses(servables, jets, bdt_masking):
    bundle, y = servables["bdt"], jets.is_signal
    auc = roc_auc_score(y, bundle.predict(jets)[:, 1])
    lost = {name: auc - roc_auc_score(y, _hbb_with_zeroed(bundle, jets, [name]))
            for name in jets.jet_feature_names}
    assert bdt_masking.feature_relevance == pytest.approx(lost, abs=1e-9)
    assert max(lost.values()) > 1e-3  # some feature matters, so the comparison means something


def test_cumulative_masking_reports_auc_and_fidelity_of_the_masked_model(servables, jets,
                                                                         bdt_masking):
    # each row masks every feature whose single-feature AUC loss is below the threshold;
    # fidelity = 1 - mean |p_masked - p| (paper Eq. 1)
    bundle, y = servables["bdt"], jets.is_signal
    p = bundle.predict(jets)[:, 1]
    rows = bdt_masking.extras["cumulative"]
    for row in rows:
        chosen = [n for n, lost in bdt_masking.feature_relevance.items()
                  if lost < row["threshold"]]
        masked = _hbb_with_zeroed(bundle, jets, chosen)
        expected = {"n_masked": len(chosen), "auc": roc_auc_score(y, masked),
                    "fidelity": 1 - np.mean(np.abs(masked - p))}
        assert {k: row[k] for k in expected} == pytest.approx(expected, abs=1e-6), row
    assert min(r["fidelity"] for r in rows) < 0.99  # some row masks features that matter


@pytest.fixture(scope="module")
def mlp_rna(servables, jets):
    return servables["mlp"].explain(jets, method="rna")


@pytest.fixture(scope="module")
def mlp_rna_by_hand(servables, jets):
    """RNA of the MLP's hidden layers from our own forward hooks: per class, each node's
    ReLU activation summed over the class's jets, over the layer's largest such sum."""
    bundle = servables["mlp"]
    hidden = [m for m in bundle.tagger.net.modules() if isinstance(m, torch.nn.Linear)][:-1]
    seen = [[] for _ in hidden]
    handles = [m.register_forward_hook(
        lambda module, args, out, i=i: seen[i].append(torch.relu(out).detach().clone()))
        for i, m in enumerate(hidden)]
    try:
        bundle.logits(jets)
    finally:
        for h in handles:
            h.remove()
    activations = [torch.cat(s).numpy() for s in seen]
    rna = {}
    for c, label in enumerate(("QCD", "Hbb")):
        totals = [a[jets.labels.argmax(1) == c].sum(0) for a in activations]
        rna[label] = [t / t.max() for t in totals]
    return rna


def test_rna_is_class_summed_activity_over_the_layers_most_active_node(mlp_rna,
                                                                        mlp_rna_by_hand):
    for label, layers in mlp_rna_by_hand.items():
        reported = list(mlp_rna.extras["rna"][label].values())
        assert len(reported) == len(layers) == 2, label
        for got, expected in zip(reported, layers, strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_rna_sparsity_is_the_share_of_nodes_below_a_fifth_of_the_maximum(mlp_rna,
                                                                         mlp_rna_by_hand):
    for label, layers in mlp_rna_by_hand.items():
        expected = [float(np.mean(r < 0.2)) for r in layers]
        assert list(mlp_rna.extras["sparsity"][label].values()) == pytest.approx(expected)


@pytest.fixture(scope="module")
def in_probes(servables, test_file):
    return servables["in"].explain(servable.read_jets(test_file)[:400], method="probes")


def test_probes_find_the_number_of_vertices_in_the_ins_track_vertex_stage(in_probes):
    assert in_probes.extras["r2"]["n_vertices"]["track-SV edges (fr3_pv)"] > 0.5


def test_probes_include_the_generator_truth_number_of_b_hadrons(in_probes):
    assert "n_b_hadrons" in in_probes.extras["r2"]


def test_the_applicability_table_lists_every_method():
    assert set(METHODS) == set(APPLIES)


@pytest.mark.parametrize("kind, method", REFUSED, ids=[f"{k}-{m}" for k, m in REFUSED])
def test_a_method_that_does_not_apply_names_the_models_it_applies_to(servables, jets, kind,
                                                                      method):
    with pytest.raises(MethodNotApplicable) as info:
        servables[kind].explain(jets[:5], method=method)
    message = str(info.value)
    assert f"'{method}' does not apply to a {kind} model" in message, message
    named = message.split("applies to", 1)[-1]
    assert set(re.findall(r"\b(?:in|mlp|bdt|part)\b", named)) == APPLIES[method], message


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
