"""The explainability benchmark: its metrics on known answers, a model with ground truth, the
randomisation check, bootstrap intervals, and `servable xai-benchmark --quick` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from servable import load
from servable.data.io import read_jets
from servable.errors import ServableError
from servable.explain import metrics as M
from servable.study import xai_benchmark as X
from servable.study.xai import agreement as A
from servable.study.xai import faithfulness as F
from servable.study.xai import randomisation as R
from servable.study.xai import runs as XR
from tests.cli_helpers import assert_user_error, run_cli

# the two features the ground-truth labels depend on (every other feature is shuffled)
CARRIERS = ("fj_jetNTracks", "fj_trackSipdSig_0")


# metrics on inputs with known answers --------------------------------------------------------
def test_rank_agreement_of_identical_reversed_and_partly_shared_rankings():
    a = np.arange(10.0)
    same = M.rank_agreement(a, 2 * a + 1, signed=True)
    assert same["spearman"] == pytest.approx(1) and same["kendall"] == pytest.approx(1)
    assert same["top5"] == 1 and same["sign_agreement"] == 1
    rev = M.rank_agreement(a, -a, signed=True)
    assert rev["spearman"] == pytest.approx(-1) and rev["top5"] == 0
    assert rev["sign_agreement"] == pytest.approx(0.0)  # 9 nonzero pairs, all opposite
    b = a.copy()
    b[[9, 0]] = b[[0, 9]]  # the first feature swaps with the last: 4 of the top 5 stay
    assert M.rank_agreement(a, b)["top5"] == pytest.approx(0.8)
    with pytest.raises(ServableError, match="NaN"):
        M.rank_agreement([1.0, np.nan, 2.0], [1.0, 2.0, 3.0])


def test_per_jet_agreement_is_the_distribution_of_per_jet_rank_correlations():
    rng = np.random.default_rng(0)
    a = rng.random((50, 8))
    out = M.per_jet_agreement(a, a ** 3)  # monotone per jet: rho = 1 for every jet
    assert out["median"] == pytest.approx(1) and out["n_jets"] == 50
    flipped = a.copy()
    flipped[:25] = -a[:25]  # half the jets reversed
    out = M.per_jet_agreement(a, flipped)
    assert out["q25"] == pytest.approx(-1) and out["q75"] == pytest.approx(1)
    expected = stats.spearmanr(a[30], np.sin(a[30]))[0]
    assert M.per_jet_agreement(a[30:31], np.sin(a[30:31]))["mean"] == pytest.approx(expected)


def test_bootstrap_intervals_shrink_with_more_jets():
    rng = np.random.default_rng(1)
    per_jet = rng.exponential(size=(2000, 6)) * np.arange(1, 7)
    small = M.bootstrap_importance(M.mean_over_jets(per_jet[:500]), 500, 200)
    large = M.bootstrap_importance(M.mean_over_jets(per_jet), 2000, 200)
    width = {k: np.subtract(v["high"], v["low"]) for k, v in (("500", small), ("2000", large))}
    # the standard error falls as 1/sqrt(n): a quarter of the jets, twice the width
    assert np.all(width["2000"] < 0.75 * width["500"])
    assert np.all(np.array(large["low"]) < per_jet.mean(0))
    assert np.all(per_jet.mean(0) < np.array(large["high"]))
    assert large["resamples"].shape == (200, 6)


def test_ranking_stability_flags_a_changed_top_set():
    base = np.arange(10.0)
    assert M.ranking_stability(np.stack([base, base + 0.1]))["top5_changed"] is False
    other = base.copy()
    other[[9, 0]] = other[[0, 9]]
    st = M.ranking_stability(np.stack([base, base, other]))
    assert st["top5_changed"] is True
    assert st["top5_unchanged"] == pytest.approx(1 / 3)  # of the 3 pairs, one is the same


def test_greedy_order_and_the_curves_on_a_model_with_two_informative_features():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 6))
    y = (x[:, 4] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=400)) > 0

    def score(removed):
        z = x.copy()
        z[:, list(removed)] = 0.0  # replaced by the mean
        return 1 / (1 + np.exp(-(z[:, 4] + 0.5 * z[:, 1])))

    order = M.greedy_order(score, 6, y)
    assert order[:2] == [4, 1]
    good = M.deletion_curve(score, order, y)
    bad = M.deletion_curve(score, order[::-1], y)
    assert good["auc"][0] == pytest.approx(bad["auc"][0])  # nothing removed yet
    assert good["auc_area"] < bad["auc_area"] - 0.1
    ins = M.insertion_curve(score, order, y)
    assert ins["auc"][-1] == pytest.approx(good["auc"][0])  # everything restored
    assert ins["auc_area"] > M.insertion_curve(score, order[::-1], y)["auc_area"]


def test_slot_removal_keeps_filled_slots_first():
    x = np.zeros((1, 2, 5), np.float32)
    x[0, :, :4] = [[1, 2, 3, 4], [1, 1, 1, 1]]
    keep = np.array([[True, False, True, False, False]])
    out = M.remove_slots(x, keep)
    assert out[0, 0].tolist() == [1, 3, 0, 0, 0]


def test_truth_auc_and_correlated_groups():
    rel = np.array([[3.0, 2.0, 1.0, 0.0]])
    truth = np.array([[True, True, False, False]])
    filled = np.array([[True, True, True, False]])
    assert M.truth_auc(rel, truth, filled) == 1.0
    assert M.truth_auc(-rel, truth, filled) == 0.0
    rng = np.random.default_rng(3)
    a = rng.normal(size=300)
    values = np.stack([a, 2 * a + 0.05 * rng.normal(size=300), rng.normal(size=300),
                       np.exp(a)], 1)
    groups = M.correlated_groups(values, ["a", "twice a", "noise", "exp a"])
    assert [sorted(g["features"]) for g in groups] == [["a", "exp a", "twice a"]]


def test_sv_ptrel_sv_erel_and_sv_pt_form_one_correlated_group(test_file):
    """The paper's Figure 7: on real generated jets the SV pT, pT ratio and energy ratio are
    correlated above 0.8 and are reported as one group."""
    jets = read_jets(test_file)
    filled = (jets.vertices != 0).any(1)
    rows = jets.vertices.transpose(0, 2, 1)[filled]
    groups = M.correlated_groups(rows, list(jets.vertex_names))
    group = next(g for g in groups if "sv_ptrel" in g["features"])
    assert {"sv_erel", "sv_pt"} <= set(group["features"])


# a model with ground truth -----------------------------------------------------------------
def _ground_truth(jets, seed):
    """Labels that depend on CARRIERS only; every other jet feature is shuffled across jets
    and the tracks and SVs belong to other jets, so nothing else carries the label."""
    rng = np.random.default_rng(seed)
    jf = jets.jet_features.copy()
    cols = [jets.jet_feature_names.index(n) for n in CARRIERS]
    for i in range(jf.shape[1]):
        if i not in cols:
            jf[:, i] = jf[rng.permutation(len(jets)), i]
    score = stats.rankdata(jf[:, cols[0]]) + stats.rankdata(jf[:, cols[1]])
    labels = np.eye(2, dtype=np.float32)[(score > np.median(score)).astype(int)]
    perm = rng.permutation(len(jets))
    from servable.data.jets import Jets

    return Jets.cms(jets.tracks[perm], jets.vertices[perm], jf, labels, jets.spectators,
                    track_names=jets.track_names, vertex_names=jets.vertex_names,
                    jet_feature_names=jets.jet_feature_names, validate=False)


@pytest.fixture(scope="module")
def ground_truth(train_file, test_file, tmp_path_factory):
    from servable.data.h5io import write_jets

    root = tmp_path_factory.mktemp("ground-truth")
    train = write_jets(root / "train.h5", _ground_truth(read_jets(train_file), 1))
    r = run_cli("train", "--model", "mlp", "--data", train, "--epochs", 6, "--seed", 1,
                "--quiet", "-o", root / "mlp", timeout=600)
    assert r.returncode == 0, r.stderr
    return load(str(root / "mlp")), _ground_truth(read_jets(test_file, 0, 600), 2)


def test_faithful_methods_rank_the_label_carrying_features_first(ground_truth):
    bundle, jets = ground_truth
    ctx = XR.Context(bundle, jets, 1)
    runs = {m: XR.run_method(ctx, m) for m in ("masking", "saliency", "ig", "shap", "lrp")}
    # masking through Method.attribute: its per-jet masked scores give its AUC losses back,
    # on all jets and on any resample, without predicting again
    from servable.explain.masking import Masking, auc_loss

    expl = Masking(bundle).attribute(jets, thresholds=())
    assert expl.extras["masked_scores"].shape == (len(ctx.names), len(jets))
    np.testing.assert_allclose(runs["masking"].importance,
                               [expl.feature_relevance[n] for n in ctx.names], atol=1e-12)
    from sklearn.metrics import roc_auc_score

    idx = np.random.default_rng(0).integers(0, len(jets), len(jets))  # a resample
    y, scores = ctx.y[idx], expl.extras["masked_scores"][:, idx]
    np.testing.assert_allclose(runs["masking"].statistic(idx), [
        roc_auc_score(y, expl.output[idx]) - roc_auc_score(y, s) for s in scores], atol=1e-12)
    np.testing.assert_allclose(auc_loss(ctx.y, expl.output, expl.extras["masked_scores"]),
                               runs["masking"].importance, atol=1e-12)
    for name, run in runs.items():
        top = {ctx.names[i] for i in np.argsort(-run.importance)[:2]}
        assert top == set(CARRIERS), f"{name} ranks {top} first"
    pairs = {(p["a"], p["b"]): p for p in A.agreement(runs)["pairs"]}
    # IG and LRP-epsilon both decompose the logit: on this model they agree almost exactly
    assert pairs[("ig", "lrp")]["spearman"] > 0.95
    assert pairs[("ig", "lrp")]["per_jet"]["median"] > 0.9
    s = X.Settings(n_jets=600, faithfulness_jets=600, curve_points=6, random_orders=10)
    out = F.method_curves(ctx, runs, s)
    assert out["oracle_on"] == "ordering half"  # searched where the methods' orders are made
    curves = out["curves"]
    for name in runs:
        assert curves[name]["deletion"]["auc_area"] < curves["random"]["deletion"][
            "auc_area"] - 0.1, name
    # every method recovers the planted mechanism, and the verdicts call them faithful
    from servable.study.xai.verdicts import FAITHFUL, verdict

    for name, sc in out["scores"].items():
        d = sc["deletion"]
        assert verdict(d["value"], d["low"], d["high"], FAITHFUL)["status"] == "passes", name


def test_a_constant_explanation_fails_the_randomisation_check_and_saliency_passes(
        published_bundle, test_file):
    bundle = load(str(published_bundle))
    jets = read_jets(test_file, 0, 200)
    ctx = XR.Context(bundle, jets, 1)
    before = bundle.predict(jets[:20])
    saliency = R.randomisation_check(
        bundle, lambda b: XR.explanation_array(XR.run_method(ctx, "saliency", b)))
    assert saliency["passed"] and saliency["similarity"][-1] < 0.5
    assert saliency["similarity"][0] > saliency["similarity"][-1]
    constant = R.randomisation_check(bundle, lambda b: np.ones((len(jets), 10)))
    assert constant["similarity"] == [1.0] * len(constant["layers_randomised"])
    assert not constant["passed"]
    np.testing.assert_array_equal(bundle.predict(jets[:20]), before)  # copies were randomised
    # a ranking on the trained model and none on the randomised one: the similarity is
    # undefined, so the check cannot pass (it read 0.000 [0.000, 0.000] and passed before)
    ranking = np.tile(np.arange(10.0), (len(jets), 1))
    flat = R.randomisation_check(
        bundle, lambda b: ranking if b is bundle else np.zeros((len(jets), 10)))
    assert flat["randomised_degenerate"] and not flat["passed"]
    assert flat["final"]["low"] is None and flat["final"]["high"] is None


# the command -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_benchmark(trained, test_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("xai") / "quick"
    # both forms the help documents: several bundles after one --bundles, and --bundles again
    r = run_cli("xai-benchmark", "--bundles", trained["in"], trained["mlp"],
                "--bundles", trained["bdt"], "--data", test_file, "--quick",
                "--train-seeds", 2, "--train-epochs", 1, "-o", out, "--quiet", timeout=900)
    assert r.returncode == 0, r.stderr
    return out, r


def test_quick_benchmark_writes_a_valid_report_with_every_question_answered(quick_benchmark):
    from servable.study.xai_report import validate

    out, r = quick_benchmark
    results = json.loads((out / "results.json").read_text())
    validate(results)
    assert set(results["models"]) == {"in", "mlp", "bdt"} and results["n_jets"] == 300
    for label, model in results["models"].items():
        assert model["stability"]["n_seeds"] == 2, label
        assert model["stability"]["seeds"], label  # rankings compared across the two seeds
        assert model["verdicts"]["per_method"], label
        assert (out / "figures" / f"{label}_agreement.png").stat().st_size > 0
        assert (out / "figures" / f"{label}_curves.pdf").stat().st_size > 0
    bdt = results["models"]["bdt"]
    assert set(bdt["agreement"]["tree_shap_vs_native"]) == {"gain", "weight", "cover",
                                                             "total_gain"}
    in_model = results["models"]["in"]
    assert 0.5 < in_model["physics"]["truth_auc"]["lrp"]["value"] <= 1.0
    assert in_model["physics"]["best_baseline"]["value"] > 0.5  # the inputs alone do well
    assert in_model["faithfulness"]["randomisation"]["saliency"]["final"]["value"] < 0.5
    for label, model in results["models"].items():
        per_method = model["verdicts"]["per_method"]
        for question, cell in model["verdicts"]["use"].items():
            # a cell names a method only where it passes the question's criterion
            if cell["method"] is not None:
                assert per_method[cell["method"]][cell["criterion"]]["status"] == "passes", \
                    (label, question)
            for v in per_method.values():
                finds = v["finds_decay_tracks"]
                if finds is not None and finds["status"] == "passes":
                    assert finds["low"] > model["physics"]["best_baseline"]["value"]
    assert "probes_r2" in in_model["physics"]
    report = (out / "report.md").read_text()
    assert "Which method to use on this model" in report and "TreeSHAP" in report
    assert "<table>" in (out / "report.html").read_text()
    assert "global" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--target", "Hcc"], "--target 'Hcc'"),
    (["--methods", "lrp,tarot"], "unknown methods tarot"),
    (["--n-jets", "5"], "n_jets must be an integer >= 20, not 5"),
    (["--curve-replacement", "median"], "curve_replacement must be one of zero, mean, marginal"),
    (["--curve-fine", "-1"], "curve_fine must be an integer >= 0, not -1"),
])
def test_bad_options_give_one_line_and_exit_2(trained, test_file, tmp_path, args, message):
    out = tmp_path / "out"
    r = run_cli("xai-benchmark", "--bundles", trained["mlp"], "--data", test_file, *args,
                "-o", out, "--quiet")
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("form", ["after one flag", "flag repeated", "quoted, as older runs"])
def test_every_form_of_bundles_names_each_bundle(trained, test_file, tmp_path, form):
    """--bundles A B C, --bundles A --bundles B --bundles C and --bundles "A B C" all name
    the three bundles: A and B load, and the missing C is the one refused (not "unexpected
    extra argument")."""
    a, b, c = str(trained["in"]), str(trained["mlp"]), str(tmp_path / "missing-bundle")
    args = {"after one flag": ["--bundles", a, b, c],
            "flag repeated": ["--bundles", a, "--bundles", b, "--bundles", c],
            "quoted, as older runs": ["--bundles", f"{a} {b} {c}"]}[form]
    out = tmp_path / "out"
    r = run_cli("xai-benchmark", *args, "--data", test_file, "-o", out, "--quiet")
    assert_user_error(r, f"{c}: no such bundle directory")
    assert not out.exists()


def test_a_bundle_folder_with_a_space_in_its_name_is_one_bundle(trained, test_file, tmp_path):
    import shutil

    spaced = tmp_path / "my in"
    shutil.copytree(trained["in"], spaced)
    out = tmp_path / "out"
    r = run_cli("xai-benchmark", "--bundles", spaced, "--data", test_file, "--target", "Hcc",
                "-o", out, "--quiet")
    assert_user_error(r, "--target 'Hcc'")  # the bundle loaded: the next check is reached


def test_an_existing_report_is_not_overwritten(trained, test_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("mine")
    r = run_cli("xai-benchmark", "--bundles", trained["mlp"], "--data", test_file, "-o", out,
                "--quiet")
    assert r.returncode == 2 and "exists" in r.stderr
    assert (out / "report.md").read_text() == "mine"


def test_captum_metrics_repeat_the_parts_mask_with_the_perturbed_inputs(trained, test_file):
    """ParT's network takes a mask beside its inputs: infidelity and max-sensitivity perturb
    several copies of each jet, and the mask must follow them (it once did not)."""
    ctx = XR.Context(load(str(trained["part"])), read_jets(test_file, 0, 40), 1)
    out = F.captum_scores(ctx, ["saliency", "ig"], X.Settings(captum_jets=6))
    for name in ("saliency", "ig"):
        assert out[name]["n_jets"] == 6
        assert np.isfinite(out[name]["infidelity"]) and out[name]["max_sensitivity"] > 0
