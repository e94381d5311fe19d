"""The ParT transparency study: head and block ablation hooks, probes with controls, the
truth AUC of attention, and report sentences that follow the numbers (a tiny ParT trained one
epoch on ring jets)."""

import copy

import numpy as np
import pytest
import torch

import servable
from servable.errors import ServableError
from servable.explain import uncertainty as U
from servable.models.particle_transformer import attention_blocks, heads_replaced
from servable.study import part_ablation as A
from servable.study import part_probes as P
from servable.study import part_transparency as T


@pytest.fixture(scope="module")
def bundle(ring_files, tmp_path_factory):
    from servable.bundle.train import train_bundle
    from servable.models.training import TrainConfig

    cfg = TrainConfig(model="part", epochs=1, batch_size=16, lr=5e-3, seed=1,
                      hyperparameters={"embed_dims": [32, 32], "pair_embed_dims": [8, 8],
                                       "num_heads": 4, "num_layers": 2, "num_cls_layers": 1,
                                       "dropout": 0.0})
    path, _ = train_bundle([ring_files["root"]], cfg, tmp_path_factory.mktemp("part") / "b",
                           progress=False)
    return servable.load(path)


@pytest.fixture(scope="module")
def jets(ring_files):
    return servable.read_jets(ring_files["test"])[:120]


@pytest.fixture(scope="module")
def logits(bundle, jets):
    return bundle.tagger.logits_from_inputs(bundle.tagger.inputs(jets))


def _logits(bundle, jets, replace=None, skipped=()):
    with heads_replaced(bundle.tagger.net.core, replace or {}, skipped):
        return bundle.tagger.logits_from_inputs(bundle.tagger.inputs(jets))


def test_ablating_nothing_leaves_the_logits_unchanged(bundle, jets, logits):
    np.testing.assert_array_equal(_logits(bundle, jets), logits)


def test_zeroing_a_head_changes_the_logits_and_the_hooks_go_away(bundle, jets, logits):
    ablated = _logits(bundle, jets, {(0, 1): None})
    assert np.abs(ablated - logits).max() > 1e-4
    np.testing.assert_array_equal(bundle.tagger.logits_from_inputs(
        bundle.tagger.inputs(jets)), logits)


def test_zeroing_a_head_is_zeroing_its_values(bundle, jets):
    """Independent of the hook: a head whose value projection is zero outputs zero."""
    block, head = 2, 3  # the class-attention block
    other = copy.deepcopy(bundle.tagger)
    attn = attention_blocks(other.net.core)[block].attn
    d = attn.head_dim
    dim = attn.in_proj_weight.shape[1]
    rows = slice(2 * dim + head * d, 2 * dim + (head + 1) * d)  # v of that head
    with torch.no_grad():
        attn.in_proj_weight[rows] = 0
        attn.in_proj_bias[rows] = 0
    expected = other.logits_from_inputs(other.inputs(jets))
    np.testing.assert_allclose(_logits(bundle, jets, {(block, head): None}), expected,
                               rtol=1e-5, atol=1e-5)


def test_the_prepared_blocks_predict_as_the_tagger_and_carry_the_hooks(bundle, jets):
    inputs = bundle.tagger.inputs(jets)
    prepared = A.Prepared(bundle.tagger, inputs)
    np.testing.assert_allclose(prepared.probabilities(),
                               bundle.tagger.predict_from_inputs(inputs), atol=1e-6)
    with heads_replaced(bundle.tagger.net.core, {(0, 2): None}):
        expected = bundle.tagger.predict_from_inputs(inputs)
    zeroed = A.ablated_predictions(prepared.probabilities, bundle.tagger.net.core, [(0, 2)])
    np.testing.assert_allclose(zeroed, expected, atol=1e-6)


def test_mean_replacement_and_block_skipping_change_the_logits(bundle, jets, logits):
    means = A.head_means(A.Prepared(bundle.tagger, bundle.tagger.inputs(jets)))
    assert set(means) == {(k, h) for k in range(3) for h in range(4)}
    mean = _logits(bundle, jets, {(1, 0): means[(1, 0)]})
    assert np.abs(mean - logits).max() > 1e-4
    assert np.abs(mean - _logits(bundle, jets, {(1, 0): None})).max() > 1e-6
    assert np.abs(_logits(bundle, jets, skipped=[2]) - logits).max() > 1e-4


def test_a_probe_scores_one_on_a_linear_function_of_the_embedding_and_zero_shuffled(
        bundle, jets):
    x = P.representations(bundle.tagger, jets)["block 2 (particle layer 2)"]
    y = x @ np.random.default_rng(0).normal(size=x.shape[1])
    fit = P.probe_score(x, y, "r2", n_resamples=20)
    shuffled = P.probe_score(x, np.random.default_rng(1).permutation(y), "r2", n_resamples=20)
    assert fit["value"] > 0.99 and fit["low"] > 0.98
    assert shuffled["value"] < 0.1 and shuffled["low"] < 0.05
    binary = P.probe_score(x, (y > np.median(y)).astype(int), "auc", n_resamples=20)
    assert binary["value"] > 0.95


def _row(trained, random, shuffled=(0.0, -0.05, 0.05)):
    iv = [dict(zip(("value", "low", "high"), v, strict=True)) for v in (trained, random,
                                                                       shuffled)]
    row = dict(zip(("trained", "random", "shuffled"), iv, strict=True))
    return {**row, "encoded": P.encoded(row)}


def test_the_encoded_sentence_is_generated_from_the_numbers():
    rows = {"block 1": _row((0.3, 0.2, 0.4), (0.3, 0.2, 0.4)),
            "block 2": _row((0.8, 0.75, 0.85), (0.3, 0.2, 0.4))}
    text = " ".join(P.probe_sentences({"tau21": {"metric": "R^2", "blocks": rows}}))
    assert "tau21 is encoded at block 2:" in text and "0.800 [0.750, 0.850]" in text
    rows["block 2"] = _row((0.8, 0.38, 0.85), (0.3, 0.2, 0.4))  # overlaps the random net
    text = " ".join(P.probe_sentences({"tau21": {"metric": "R^2", "blocks": rows}}))
    assert "tau21 is not encoded beyond the controls at any block" in text
    assert "encoded at block 2" not in text


def test_the_check_sentence_follows_the_contrast():
    iv = {"value": 0.01, "low": 0.005, "high": 0.02}
    selected = {"relevant": ["0:0"], "irrelevant": ["0:1"],
                "rule": {"relevant": "r", "irrelevant": "i"}}

    def text(contrast):
        s = {"zero": {"relevant one at a time": iv, "irrelevant one at a time": iv,
                      "relevant one at a time, log-likelihood": iv,
                      "irrelevant one at a time, log-likelihood": iv, "contrast": contrast,
                      "contrast, log-likelihood": {"value": 0.0, "low": -0.1, "high": 0.1}}}
        return T.check_sentence(s, selected, ["block 1"])[1]

    assert "as the explanations predict" in text({"value": 0.1, "low": 0.05, "high": 0.2})
    assert "contrary to the explanations" in text({"value": -0.1, "low": -0.2, "high": -0.05})
    assert "no difference is shown" in text({"value": 0.1, "low": -0.05, "high": 0.2})


def test_the_leave_one_out_sentence_says_when_one_head_carries_the_verdict():
    iv = {"value": 0.01, "low": 0.005, "high": 0.02}
    selected = {"relevant": ["0:0"], "irrelevant": ["0:1"],
                "rule": {"relevant": "r", "irrelevant": "i"}}

    def text(without_first):
        s = {"zero": {"relevant one at a time": iv, "irrelevant one at a time": iv,
                      "relevant one at a time, log-likelihood": iv,
                      "irrelevant one at a time, log-likelihood": iv, "contrast": iv,
                      "contrast, log-likelihood": iv,
                      "contrast leaving one head out": {"0:0": without_first, "0:1": iv}}}
        return " ".join(T.check_sentence(s, selected, ["block 1"]))

    assert "holds whichever head is left out" in text(iv)
    assert "it rests on one head" in text({"value": -0.01, "low": -0.02, "high": -0.001})


def test_the_fast_pooled_auc_interval_is_the_reference_bootstrap():
    rng = np.random.default_rng(0)
    score = np.round(rng.normal(size=(60, 15)), 1)  # ties
    truth, filled = rng.random((60, 15)) < 0.3, rng.random((60, 15)) < 0.8
    idx = np.arange(5, 55)
    fast = U.pooled_truth_auc_interval(score, truth, filled, idx, 15, seed=4)
    ref = U.bootstrap_scalar(lambda i: U.pooled_truth_auc(score, truth, filled, idx[i]),
                             len(idx), 15, seed=4)
    for key in ("value", "low", "high"):
        assert fast[key] == pytest.approx(ref[key], abs=1e-12)


def test_outcome_counts_pair_confusions_only_within_the_pair():
    names = ["QCD", "Hbb", "Hcc"]
    y = np.array([1, 1, 2, 0])
    pred = np.eye(3)[[2, 1, 1, 2]]  # Hbb->Hcc, ok, Hcc->Hbb, QCD->Hcc
    o = A.outcome(y, pred, names, [("Hbb", "Hcc")])
    np.testing.assert_array_equal(o[:, 0], [0, 1, 0, 0])
    np.testing.assert_allclose(o[:, 1], np.log(1e-12) * np.array([1, 0, 1, 1]))
    np.testing.assert_array_equal(o[:, -1][:3], [1, 0, 1])
    assert np.isnan(o[3, -1])


def test_run_writes_results_and_a_report_on_jets_with_truth(bundle, jets, tmp_path):
    rng = np.random.default_rng(0)
    x = jets.leading_slotted().values
    filled = np.abs(x).sum(1) > 0
    truth = np.where(filled & (rng.random(filled.shape) < 0.4), 0, -1)
    labelled = jets.replace(extras={"part_truth_decay_product": truth})[:80]
    result = T.run(bundle, labelled, tmp_path, labelled[:40], n_resamples=5, folds=3,
                   finetune_jets=40)
    assert (tmp_path / "results.json").is_file()
    report = (tmp_path / "report.md").read_text()
    assert "### Targeted ablation" in report and "After one epoch on" in report
    assert len(result["ablation"]["rows"]) == 3 * 4 * 2 + 3 * 2


def test_run_refuses_unlabelled_jets(bundle, jets, tmp_path):
    unlabelled = servable.Jets(jets.groups, class_names=jets.class_names)
    with pytest.raises(ServableError, match="labelled"):
        T.run(bundle, unlabelled, tmp_path)


def test_improvements_are_read_against_chance():
    def rows(n_better):
        up = {"value": 0.05, "low": 0.01, "high": 0.09}
        flat = {"value": 0.0, "low": -0.01, "high": 0.01}
        return [{"label": "0:0 zero", "kind": "head", "block": 0, "head": 0, "mode": "zero",
                 "effects": {f"accuracy c{i}": up if i < n_better else flat
                             for i in range(100)}}]

    for n_better, words in ((2, "no evidence"), (20, "more than the ~2 expected")):
        result = {"improvements": A.improvements(rows(n_better)), "blocks": ["block 1"],
                  "ablation": {"rows": rows(n_better)}, "fine_tune": None}
        assert len(result["improvements"]["found"]) == n_better
        assert words in T.improvement_sentences(result)[0]


def test_the_command_refuses_a_bundle_that_is_not_a_part(ring_trained, ring_files, tmp_path):
    from tests.cli_helpers import run_cli

    r = run_cli("part-transparency", ring_trained["bdt"][0], "--data", ring_files["test"],
                "-o", tmp_path / "out")
    assert r.returncode == 2 and "give a part bundle, not a bdt one" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()
