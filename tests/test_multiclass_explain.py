"""Explanations of 10-class JetClass models (the ring-jet bundles of `ring_trained`): any class
as the target, padded particle slots silent, RNA, attention and TreeSHAP per class."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import servable
from servable.data import schema
from servable.explain import write_plots
from tests.cli_helpers import run_cli

HCC = schema.JETCLASS_CLASSES.index("Hcc")  # 2: a target other than 1
CHEAP = {"ig": {"n_steps": 8}, "shap": {"nsamples": 10, "background": 20}}
PAIRS = [(k, m) for k in ("part", "particlenet") for m in ("masking", "ig", "saliency", "shap")]
PAIRS.append(("part", "attention"))


@pytest.fixture(scope="module")
def jets(ring_files):
    return servable.read_jets(ring_files["test"])[:60]


@pytest.fixture(scope="module")
def bundles(ring_trained):
    return {kind: servable.load(path) for kind, (path, _) in ring_trained.items()}


@pytest.mark.parametrize("kind, method", PAIRS, ids=[f"{k}-{m}" for k, m in PAIRS])
def test_a_named_target_is_explained_with_padded_slots_silent(bundles, jets, kind, method):
    e = bundles[kind].explain(jets, method=method, target="Hcc", **CHEAP.get(method, {}))
    assert e.target == HCC
    assert all(np.isfinite(v) for v in e.feature_relevance.values())
    empty = ~np.any(jets.group("particles").values != 0, axis=1)  # (jets, slots): padding
    assert empty.any()
    if method == "attention":
        slots = e.extras["slot_relevance"]
        assert np.all(slots[empty] == 0) and np.any(slots != 0)
    elif method != "masking":
        assert np.all(e.particles.transpose(0, 2, 1)[empty] == 0)
        assert np.any(e.particles != 0)


def test_gradients_follow_the_target_class(bundles, jets):
    part = bundles["part"]
    hcc = part.explain(jets, method="saliency", target=HCC)
    qcd = part.explain(jets, method="saliency", target="QCD")
    assert not np.allclose(hcc.particles, qcd.particles)
    with torch.no_grad():
        logits = part.logits(jets)
    np.testing.assert_allclose(hcc.output, logits[:, HCC], atol=1e-5)


def test_masking_scores_the_target_one_vs_rest(bundles, jets):
    pnet = bundles["particlenet"]
    e = pnet.explain(jets, method="masking", target="Tbl")
    y = jets.class_index == schema.JETCLASS_CLASSES.index("Tbl")
    p = pnet.predict(jets)[:, -1]
    assert e.extras["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-9)


def test_tree_shap_explains_the_margin_of_any_class(bundles, jets):
    bdt = bundles["bdt"]
    margins = bdt.logits(jets)
    hqql = schema.JETCLASS_CLASSES.index("Hqql")
    e = bdt.explain(jets, method="shap", target="Hqql")
    np.testing.assert_allclose(e.jet.sum(1) + e.base_value, margins[:, hqql], atol=1e-4)
    np.testing.assert_allclose(e.output, margins[:, hqql], atol=1e-6)
    other = bdt.explain(jets, method="shap", target=0, native=False)
    np.testing.assert_allclose(other.jet.sum(1) + other.base_value, margins[:, 0], atol=1e-4)
    assert not np.allclose(e.jet, other.jet)


@pytest.fixture(scope="module")
def mlp_rna(bundles, jets):
    return bundles["mlp"].explain(jets, method="rna")


def test_rna_is_kept_for_every_class_with_jets(mlp_rna, bundles, jets):
    """RNA per class = the class-summed ReLU activity of each node over the layer's most
    active node, here computed with our own hooks on the MLP's linear layers."""
    net = bundles["mlp"].tagger.net
    hidden = [m for m in net.mlp if isinstance(m, torch.nn.Linear)][:-1]
    seen = [[] for _ in hidden]
    handles = [m.register_forward_hook(lambda mod, a, out, i=i: seen[i].append(
        torch.relu(out.detach()))) for i, m in enumerate(hidden)]
    try:
        bundles["mlp"].logits(jets)
    finally:
        for h in handles:
            h.remove()
    acts = [torch.cat(s).numpy() for s in seen]
    present = [c for c in schema.JETCLASS_CLASSES if (jets.class_index ==
                                                     schema.JETCLASS_CLASSES.index(c)).any()]
    assert list(mlp_rna.extras["rna"]) == present and len(present) == 10
    for c in present:
        sel = jets.class_index == schema.JETCLASS_CLASSES.index(c)
        for got, a in zip(mlp_rna.extras["rna"][c].values(), acts, strict=True):
            total = a[sel].sum(0)
            np.testing.assert_allclose(got, total / total.max(), rtol=1e-5, atol=1e-7)


def test_the_nap_diagram_has_a_panel_per_class(mlp_rna, tmp_path):
    import matplotlib.image as mpimg

    (path,) = [p for p in write_plots(mlp_rna, tmp_path) if p.name == "nap.png"]
    height, width = mpimg.imread(path).shape[:2]
    assert width > height  # ten panels, five in a row: two rows


@pytest.fixture(scope="module")
def part_attention(bundles, jets):
    return bundles["part"].explain(jets, method="attention", target="Wqq")


def test_attention_maps_are_averaged_over_the_jets_of_each_class(part_attention, bundles,
                                                                 jets):
    net = bundles["part"].tagger.net
    x = torch.from_numpy(bundles["part"].inputs(jets)["particles"])
    with torch.no_grad():
        _, details = net(x, return_details=True)
    last = details["attention"][-1].numpy()  # class attention: (jets, heads, 1, 1 + slots)
    filled = np.any(jets.group("particles").values != 0, axis=1)[:, : last.shape[3] - 1]
    maps = part_attention.extras["maps"]
    assert len(maps) == 10 and part_attention.extras["jets_per_class"]["Wqq"] == \
        int((jets.class_index == 7).sum())
    for k, name in enumerate(schema.JETCLASS_CLASSES):
        sel = jets.class_index == k
        keys = np.concatenate([np.ones((sel.sum(), 1), bool), filled[sel]], axis=1)
        expected = last[sel].sum(0) / np.maximum(keys.sum(0), 1)[None, None, :]
        got = np.asarray(maps[name][-1])
        np.testing.assert_allclose(got, expected[..., : got.shape[2]], atol=1e-6)
        assert got.shape[2] == filled.sum(1).max() + 1  # cut at the widest jet


def test_explain_cli_writes_the_attention_figure_of_a_jetclass_model(ring_trained, ring_files,
                                                                     tmp_path):
    r = run_cli("explain", ring_trained["part"][0], ring_files["test"], "--method",
                "attention", "--target", "Tbqq", "--n-jets", 40, "-o", tmp_path / "att")
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "att" / "explanation.json").read_text())
    assert result["target"] == schema.JETCLASS_CLASSES.index("Tbqq")
    assert (tmp_path / "att" / "attention.png").stat().st_size > 0
