"""Intervals and baselines of the explainability metrics: arrays in, numbers out.

The companions of `servable.explain.metrics` that turn single numbers into a value with an
interval and put a reference beside it:

- `bootstrap_scalar`: any scalar statistic of the jets with a percentile interval over
  bootstrap resamples (resamples where it is undefined are dropped and counted);
- `band`: mean and 2.5-97.5% band of repeated draws (random orders, seed pairs);
- `truth_auc_per_jet`: the distribution over jets of the within-jet truth AUC, so that a
  relevance that only scales whole jets cannot carry it;
- `pair_stability`: Kendall tau and top-k overlap over every pair of rankings, each with a
  band, and the same at the level of correlated groups (`group_importance`);
- `filled_mean`: per-feature relevance averaged over the filled slots of each jet, so that a
  track feature does not gain from the number of tracks;
- `degenerate`: an explanation with no ranking to compare (constant, or not finite).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from servable.errors import ServableError


def bootstrap_scalar(statistic: Callable[[np.ndarray], float], n: int,
                     n_resamples: int = 20, confidence: float = 0.95, seed: int = 0) -> dict:
    """A scalar statistic of `n` jets with its bootstrap spread.

    Parameters
    ----------
    statistic : callable
        `statistic(indices) -> float` measured on the jets at `indices` (with repeats).
    n : int
        The number of jets resampled.
    n_resamples : int
        Bootstrap resamples (at least 2). The indices drawn depend only on `n`,
        `n_resamples` and `seed`, so that two statistics bootstrapped with the same three
        share their resamples (their difference is paired).

    Returns
    -------
    dict
        `value` (on all jets), `low`, `high` (percentile interval), `std` and `n_resamples`
        (the resamples where the statistic was finite); NaN everywhere when it never is.
    """
    if n_resamples < 2 or n < 2:
        raise ServableError(f"the bootstrap needs at least 2 resamples of at least 2 jets, "
                            f"not {n_resamples} of {n}")
    value = float(statistic(np.arange(n)))
    draws = resample_indices(n, n_resamples, seed)
    values = np.array([float(statistic(idx)) for idx in draws])
    return interval(value, values, confidence)


def resample_indices(n: int, n_resamples: int, seed: int = 0) -> list[np.ndarray]:
    """The bootstrap resamples of `n` jets: the same for the same (n, n_resamples, seed)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n, n) for _ in range(n_resamples)]


def interval(value: float, values: Sequence[float], confidence: float = 0.95) -> dict:
    """`value` with the percentile interval of repeated measurements `values` (NaN dropped)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        nan = float("nan")
        return {"value": float(value), "low": nan, "high": nan, "std": nan, "n_resamples": 0}
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(v, [tail, 100 - tail])
    return {"value": float(value), "low": float(low), "high": float(high),
            "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n_resamples": int(v.size)}


def band(values: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean and percentile band of repeated draws (e.g. the areas of >= 10 random orders)."""
    v = np.asarray(values, np.float64)
    out = interval(float(np.nanmean(v)) if np.isfinite(v).any() else float("nan"), v,
                   confidence)
    out["n"] = int(np.isfinite(v).sum())
    return out


def degenerate(explanation) -> bool:
    """True for an explanation with no ranking to compare: not finite, or constant."""
    a = np.asarray(explanation, np.float64)
    return a.size == 0 or not np.isfinite(a).all() or float(np.ptp(a)) == 0.0


def truth_auc_per_jet(relevance: np.ndarray, truth: np.ndarray, filled: np.ndarray) -> dict:
    """The within-jet AUC with which per-slot relevance (jets, slots) picks the truth slots
    among each jet's filled slots, over the jets that have both kinds.

    Returns
    -------
    dict
        `median`, `q25`, `q75`, `mean` of the per-jet AUCs and `n_jets` used; `values`: the
        per-jet AUCs (NaN for jets without both kinds), for a bootstrap.
    """
    rel, t, f = (np.asarray(a) for a in (relevance, truth, filled))
    if not (rel.shape == t.shape == f.shape) or rel.ndim != 2:
        raise ServableError(f"relevance, truth and filled must be one (jets, slots) shape, "
                            f"received {rel.shape}, {t.shape}, {f.shape}")
    values = np.full(len(rel), np.nan)
    for i in range(len(rel)):
        tt = t[i][f[i]].astype(bool)
        if tt.any() and not tt.all():
            # the Mann-Whitney form of the AUC: ties count one half
            r = stats.rankdata(rel[i][f[i]])
            npos, nneg = tt.sum(), (~tt).sum()
            values[i] = (r[tt].sum() - npos * (npos + 1) / 2) / (npos * nneg)
    ok = np.isfinite(values)
    if not ok.any():
        nan = float("nan")
        return {"median": nan, "q25": nan, "q75": nan, "mean": nan, "n_jets": 0,
                "values": values}
    q25, median, q75 = np.percentile(values[ok], [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75),
            "mean": float(values[ok].mean()), "n_jets": int(ok.sum()), "values": values}


def pooled_truth_auc(relevance: np.ndarray, truth: np.ndarray, filled: np.ndarray,
                     jets: np.ndarray | None = None) -> float:
    """The pooled truth AUC over all filled slots of the jets at `jets` (default: all); NaN
    without both kinds of slot."""
    rel, t, f = (np.asarray(a) for a in (relevance, truth, filled))
    if jets is not None:
        rel, t, f = rel[jets], t[jets], f[jets]
    tt = t[f].astype(bool)
    if tt.all() or not tt.any():
        return float("nan")
    return float(roc_auc_score(tt, rel[f]))


def filled_mean(relevance: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Per jet and feature, |relevance| averaged over the jet's filled slots.

    Parameters
    ----------
    relevance : numpy.ndarray (jets, features, slots)
    filled : numpy.ndarray (jets, slots) of bool

    Returns
    -------
    numpy.ndarray (jets, features)
        0 for a jet without filled slots.
    """
    a = np.abs(np.asarray(relevance, np.float64))
    f = np.asarray(filled, bool)
    count = f.sum(1)
    total = (a * f[:, None, :]).sum(2)
    return total / np.maximum(count, 1)[:, None]


def group_importance(importance: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Importances with each correlated group collapsed to one entry (the sum of its members'
    |importance|), the ungrouped features kept: the ranking that correlated features cannot
    scramble."""
    a = np.abs(np.asarray(importance, np.float64))
    grouped = {i for g in groups for i in g}
    return np.array([a[list(g)].sum() for g in groups] +
                    [a[i] for i in range(len(a)) if i not in grouped])


def pair_stability(importances: np.ndarray, k: int = 5) -> dict:
    """How rankings over repetitions (seeds, resamples) agree, as continuous quantities.

    Parameters
    ----------
    importances : numpy.ndarray (repetitions, features)

    Returns
    -------
    dict
        `kendall` and `top{k}_overlap` (|top-k of a & top-k of b| / k), each a `band` over
        every pair of repetitions; a pair where one side is constant counts Kendall tau 0.
    """
    x = np.asarray(importances, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ServableError(f"stability needs at least 2 rankings (repetitions, features), "
                            f"received shape {x.shape}")
    kk = min(k, x.shape[1])
    taus, overlaps = [], []
    for i, j in itertools.combinations(range(len(x)), 2):
        constant = np.ptp(x[i]) == 0 or np.ptp(x[j]) == 0
        taus.append(0.0 if constant else float(stats.kendalltau(x[i], x[j])[0]))
        top_i = set(np.argsort(-x[i], kind="stable")[:kk].tolist())
        top_j = set(np.argsort(-x[j], kind="stable")[:kk].tolist())
        overlaps.append(len(top_i & top_j) / kk)
    return {"kendall": band(taus), f"top{k}_overlap": band(overlaps), "pairs": len(taus)}


def per_jet_similarity(original: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per jet, the Spearman correlation of two explanations (jets, features) on the features
    nonzero on either side (as `metrics.explanation_similarity` averages it); 1 for a jet
    whose two explanations are identical, NaN where fewer than 3 features are used or one
    side is constant."""
    a, b = np.asarray(original, np.float64), np.asarray(other, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ServableError(f"per-jet explanations must both be (jets, features), received "
                            f"{a.shape} and {b.shape}")
    out = np.full(len(a), np.nan)
    for i, (ra, rb) in enumerate(zip(a, b, strict=True)):
        if np.array_equal(ra, rb):
            out[i] = 1.0
            continue
        used = (ra != 0) | (rb != 0)
        if used.sum() >= 3 and np.ptp(ra[used]) > 0 and np.ptp(rb[used]) > 0:
            out[i] = stats.spearmanr(ra[used], rb[used])[0]
    return out


def mean_interval(values: np.ndarray, n_resamples: int = 20, seed: int = 0) -> dict:
    """The mean of per-jet values (NaN left out) with its bootstrap interval over the jets."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return interval(float(v.mean()) if v.size else float("nan"), [])
    return bootstrap_scalar(lambda idx: v[idx].mean(), v.size, n_resamples, seed=seed)
