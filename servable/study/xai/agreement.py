"""Do the methods agree? Every pair of a model's methods (rank agreement of the global
importances, sign agreement, per-jet agreement), each method's mean Spearman with the others
with its bootstrap interval, the same method across models on their shared features, and a
BDT's TreeSHAP against XGBoost's native importances."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats

from servable.explain import metrics as M
from servable.explain import uncertainty as U
from servable.study.xai.runs import MethodRun


def agreement(runs: dict[str, MethodRun], native: dict[str, np.ndarray] | None = None) -> dict:
    """Every pair of methods with a feature ranking: rank agreement, and per-jet agreement
    where both have per-jet values; a BDT's TreeSHAP also against its native importances."""
    ranked = {k: r for k, r in runs.items() if np.any(r.importance)}
    pairs = []
    for a, b in itertools.combinations(ranked, 2):
        ra, rb = ranked[a], ranked[b]
        signed = ra.signed is not None and rb.signed is not None
        row = {"a": a, "b": b, **M.rank_agreement(ra.importance, rb.importance)}
        if signed:
            row["sign_agreement"] = M.rank_agreement(ra.signed, rb.signed,
                                                     signed=True)["sign_agreement"]
        if ra.per_jet is not None and rb.per_jet is not None:
            row["per_jet"] = M.per_jet_agreement(ra.per_jet, rb.per_jet)
        pairs.append(row)
    out = {"methods": list(ranked), "pairs": pairs}
    if native and "shap" in runs:
        out["tree_shap_vs_native"] = {k: M.rank_agreement(runs["shap"].importance, v)
                                      for k, v in native.items()}
    return out


def cross_model(results: dict) -> list[dict]:
    """The same method on two models, on the features both read."""
    rows = []
    for (ma, ra), (mb, rb) in itertools.combinations(results.items(), 2):
        shared = [n for n in ra["features"] if n in set(rb["features"])]
        if len(shared) < 3:
            continue
        for method in sorted(set(ra["importance"]) & set(rb["importance"])):
            ia = dict(zip(ra["features"], ra["importance"][method], strict=True))
            ib = dict(zip(rb["features"], rb["importance"][method], strict=True))
            va, vb = [ia[n] for n in shared], [ib[n] for n in shared]
            if np.ptp(va) == 0 or np.ptp(vb) == 0:
                continue
            rows.append({"a": ma, "b": mb, "method": method, "n_shared": len(shared),
                         **M.rank_agreement(va, vb)})
    return rows


def mean_spearman(runs: dict[str, MethodRun]) -> dict:
    """Per method, its mean Spearman rho with the other ranked methods, with the interval
    over the bootstrap resamples (the same resamples of the jets for every method, so the
    pairs are compared resample by resample); no interval where a side has no resamples."""
    ranked = {k: r for k, r in runs.items() if np.any(r.importance)}
    out = {}
    for m, r in ranked.items():
        others = [o for o in ranked if o != m]
        if not others:
            continue
        value = np.nanmean([M.rank_agreement(r.importance, ranked[o].importance)["spearman"]
                            for o in others])
        draws = []
        if r.resamples is not None and all(ranked[o].resamples is not None for o in others):
            for i in range(len(r.resamples)):
                rhos = [M._correlation(stats.spearmanr, r.resamples[i], ranked[o].resamples[i])
                        for o in others]
                draws.append(np.nanmean(rhos) if np.isfinite(rhos).any() else np.nan)
        out[m] = U.interval(float(value), draws)
    return out

