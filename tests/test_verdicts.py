"""Every verdict rule of the reproduction report (servable.study.verdicts.CHECKS) fed small
hand-made results: a case where the paper's finding must fail, and one where it must hold."""

import numpy as np
import pytest
from scipy import stats

from servable.study.paper import FINDINGS, RANGE3_Q95, SATURATION_GROWTH
from servable.study.verdicts import CHECKS, saturation_batch, verdict


def judged(key, part, results=None):
    return verdict(key, part, results or {}).holds


def test_every_finding_has_a_rule_and_a_reason_for_its_threshold():
    assert set(CHECKS) == set(FINDINGS)
    assert all(f.why and f.criterion for f in FINDINGS.values())


def test_the_range_quantile_is_that_of_three_normal_draws():
    assert RANGE3_Q95 == pytest.approx(stats.studentized_range.ppf(0.95, 3, np.inf), abs=1e-3)
    rng = np.random.default_rng(0)
    ranges = np.ptp(rng.standard_normal((200_000, 3)), axis=1)
    assert np.mean(ranges > RANGE3_Q95) == pytest.approx(0.05, abs=0.003)


def _table4(p_acc, p_auc):
    seeds = {"mean": 0.99, "std": 0.001, "values": [0.989, 0.991]}
    return {"table4": {"accuracy": seeds, "roc_auc": seeds, "epochs": [20, 31],
                       "reference": {"accuracy": {"value": 0.99, "p_value_one_sided": p_acc},
                                     "roc_auc": {"value": 0.99, "p_value_one_sided": p_auc}}}}


def test_table4_fails_when_either_p_value_is_at_most_five_percent():
    assert judged("table4", _table4(0.13, 0.09)) is True  # the paper's own p-values
    assert judged("table4", _table4(0.13, 0.0021)) is False  # the published AUC, our old run
    assert judged("table4", _table4(0.05, 0.5)) is False
    assert "epochs run 20-31" in verdict("table4", _table4(0.2, 0.2), {}).numbers


def test_table4_without_a_reference_is_not_judged():
    part = _table4(0.5, 0.5)
    del part["table4"]["reference"]
    assert judged("table4", part) is None


def _table5(aucs, std):
    return {"table5": {k: {"roc_auc": v} for k, v in zip(("random", "files", "kfold"), aucs,
                                                         strict=True)},
            "table4": {"roc_auc": {"std": std}}}


def test_table5_fails_when_the_splits_spread_beyond_the_seeds_scatter():
    assert judged("table5", _table5((0.9897, 0.9901, 0.9901), 0.0002)) is True  # the paper
    assert judged("table5", _table5((0.990, 0.985, 0.990), 0.001)) is False
    # a spread of 3.4 seed standard deviations: beyond the 95% quantile of three draws
    assert judged("table5", _table5((0.9900, 0.9934, 0.9910), 0.001)) is False


def _table8(d_auc, d_acc, fidelity):
    return {"table8": {"runtimes": {
        "torch": {"roc_auc": 0.99, "accuracy": 0.97},
        "onnx": {"roc_auc": 0.99 + d_auc, "accuracy": 0.97 + d_acc, "fidelity": fidelity}}}}


def test_table8_fails_when_onnx_differs_from_pytorch():
    assert judged("table8", _table8(0, 0, 1.0)) is True
    assert judged("table8", _table8(2e-4, 0, 1.0)) is False
    assert judged("table8", _table8(0, 2e-3, 1.0)) is False
    assert judged("table8", _table8(0, 0, 0.9998)) is False


def test_saturation_is_the_batch_after_which_throughput_grows_little():
    paper_gpu = {200: 13566, 400: 25481, 600: 29706, 800: 31855, 1000: 33596, 1200: 35701,
                 1400: 33967, 2000: 27405}
    # at 800 the peak is 35701 / 31855 = 12% higher, at 1000 6%: the paper's saturation batch
    assert saturation_batch(paper_gpu) == 1000
    assert saturation_batch({1: 10, 16: 100, 128: 1000}) is None  # still growing
    assert saturation_batch({1: 100, 16: 100 * (1 + SATURATION_GROWTH)}) == 1
    assert saturation_batch({1: 100, 16: 100 * (1 + SATURATION_GROWTH) + 1}) is None


def _figure4(medians):
    return {"figure4": {"runtimes": {"torch": {b: [v, v] for b, v in medians.items()}}}}


def test_figure4_fails_while_throughput_still_grows_or_never_rises():
    assert judged("figure4", _figure4({1: 100, 16: 1500, 128: 3000, 1024: 3100})) is True
    assert judged("figure4", _figure4({1: 100, 16: 1500, 128: 3000, 1024: 6000})) is False
    assert judged("figure4", _figure4({1: 100, 16: 150, 128: 160, 1024: 150})) is False


def _masking(delta, groups):
    return {"explain": {"masking": {"delta_auc": delta, "groups": groups}}}


def test_figure5_fails_without_an_sv_feature_at_the_top_or_enough_negligible_ones():
    names = [f"t{i}" for i in range(8)]
    groups = {n: "tracks" for n in names} | {"sv_pt": "vertices"}
    delta = {n: 0.0 for n in names[:4]} | {n: 0.01 for n in names[4:]}
    assert judged("figure5", _masking(delta | {"sv_pt": 0.2}, groups)) is True
    assert judged("figure5", _masking(delta | {"sv_pt": 0.001}, groups)) is False
    assert judged("figure5", _masking({n: 0.01 for n in names} | {"sv_pt": 0.2}, groups)) \
        is False


def _table9(f05, f1):
    return {"explain": {"masking": {"cumulative": [
        {"threshold": 0.05, "counts": {"tracks": 14, "vertices": 4}, "fidelity": f05,
         "auc": 0.98, "n_masked": 18},
        {"threshold": 1.0, "counts": {}, "fidelity": f1, "auc": 0.8, "n_masked": 33}]}}}


def test_table9_fails_when_masking_costs_too_much_fidelity_or_more_masking_costs_none():
    assert judged("table9", _table9(0.9712, 0.7083)) is True  # the paper's
    assert judged("table9", _table9(0.94, 0.70)) is False
    assert judged("table9", _table9(0.97, 0.98)) is False


def _lrp(qcd, hbb, lead, after):
    return {"explain": {"lrp": {"sv_share": {"QCD": qcd, "Hbb": hbb},
                                "leading_track_share": lead, "next_track_share": after}}}


def test_figure6_rules_fail_on_the_reversed_orderings():
    assert judged("figure6_sv", _lrp(0.03, 0.09, {}, {})) is True
    assert judged("figure6_sv", _lrp(0.09, 0.03, {}, {})) is False
    assert judged("figure6_slots", _lrp(0, 0, {"QCD": 0.5, "Hbb": 0.6},
                                        {"QCD": 0.2, "Hbb": 0.2})) is True
    assert judged("figure6_slots", _lrp(0, 0, {"QCD": 0.5, "Hbb": 0.1},
                                        {"QCD": 0.2, "Hbb": 0.2})) is False


def test_figure7_rules_fail_on_weak_correlations_and_different_distributions():
    strong = {"sv_ptrel-sv_pt": 0.85, "sv_erel-sv_pt": 0.85, "sv_ptrel-sv_erel": 0.95}
    assert judged("figure7_sv", {}, {"figure7": {"spearman": strong}}) is True
    weak = strong | {"sv_erel-sv_pt": 0.6}
    assert judged("figure7_sv", {}, {"figure7": {"spearman": weak}}) is False
    assert judged("figure7_quality", {}, {"figure7": {"track_quality": {"tv_distance": 0.05}}})
    assert judged("figure7_quality", {},
                  {"figure7": {"track_quality": {"tv_distance": 0.15}}}) is False


def _models(*rows):
    return {"explain": {"models": list(rows)}}


def _row(size, parameters, auc=0.99, sparsity=0.55, fo=0.99, rna=None):
    return {"size": size, "parameters": parameters, "roc_auc": auc, "fo_separation": fo,
            "sparsity": {"QCD": sparsity, "Hbb": sparsity}, "rna": rna}


def test_figure8_rules_fail_on_dense_activity_and_separation_before_f_o():
    assert judged("figure8_sparsity", _models(_row("60/20/24", 25554))) is True
    assert judged("figure8_sparsity", _models(_row("60/20/24", 25554, sparsity=0.45))) is False
    at_fo3 = {"QCD": {"fr1": [0.1, 0.2], "fo3": [0.0, 1.0]},
              "Hbb": {"fr1": [0.1, 0.3], "fo3": [1.0, 0.0]}}
    at_fr1 = {"QCD": {"fr1": [0.0, 1.0], "fo3": [0.5, 0.5]},
              "Hbb": {"fr1": [1.0, 0.0], "fo3": [0.5, 0.6]}}
    assert judged("figure8_layer", _models(_row("60/20/24", 1, rna=at_fo3))) is True
    assert judged("figure8_layer", _models(_row("60/20/24", 1, rna=at_fr1))) is False


def test_table10_rules_fail_on_a_lost_auc_and_a_sparser_small_model():
    base = _row("60/20/24", 25554, auc=0.9902, sparsity=0.56)
    paper = [_row("32/16/16", 8498, 0.9887, 0.52), _row("16/8/8", 2842, 0.9862, 0.40)]
    assert judged("table10_auc", _models(base, *paper)) is True
    assert judged("table10_auc", _models(base, _row("16/8/8", 2842, auc=0.98))) is False
    assert judged("table10_sparsity", _models(base, *paper)) is True
    assert judged("table10_sparsity", _models(base, _row("16/8/8", 2842, sparsity=0.6))) \
        is False
    assert judged("table10_auc", _models(base)) is None  # nothing to compare


def test_figure9_fails_when_an_ablated_model_separates_as_well_as_the_baseline():
    base = _row("60/20/24", 25554, fo=0.990)
    assert judged("figure9", _models(base, _row("32/8/8", 7178, fo=0.985),
                                     _row("16/8/8", 2842, fo=0.980))) is True
    assert judged("figure9", _models(base, _row("32/8/8", 7178, fo=0.985),
                                     _row("16/8/8", 2842, fo=0.990))) is False
    assert judged("figure9", _models(base, _row("16/8/8", 2842, fo=0.995))) is False
