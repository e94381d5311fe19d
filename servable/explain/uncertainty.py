"""Intervals and baselines of the explainability metrics: arrays in, numbers out.

The companions of `servable.explain.metrics` that turn single numbers into a value with an
interval and put a reference beside it:

- `bootstrap_scalar`: any scalar statistic of the jets with its bootstrap interval
  (resamples where it is undefined are dropped and counted);
- `interval`: the one definition of a bootstrap interval in the benchmark (below);
- `band`: mean and 2.5-97.5% band of repeated draws (random orders, seed pairs);
- `truth_auc_per_jet`: the distribution over jets of the within-jet truth AUC, so that a
  relevance that only scales whole jets cannot carry it;
- `pair_stability`: Kendall tau and top-k overlap over every pair of rankings, each with a
  band, and the same at the level of correlated groups (`group_importance`);
- `filled_mean`: per-feature relevance averaged over the filled slots of each jet, so that a
  track feature does not gain from the number of tracks;
- `degenerate`: an explanation with no ranking to compare (constant, or not finite);
- `auc`: the ROC AUC in its Mann-Whitney form, the number `sklearn.metrics.roc_auc_score`
  gives (ties count one half) without its per-call validation, which dominated the
  thousands of AUCs of a bootstrap of curves.

The interval of an estimate is the normal ("standard") bootstrap interval of Efron and
Tibshirani (1993, section 13.2): the statistic on all jets plus or minus z_{1-a/2} times
the standard deviation of the same statistic over the resamples. It is centred on the
reported value, so it always contains it; it is cut to the statistic's range where it has
one (an AUC, a correlation: `bounds`). The percentile interval used before does not:
with few resamples (5 in a quick run, where the 2.5-97.5% percentiles are about the
smallest and largest draw) or a statistic whose resampled values are biased (a score
normalised by the best of several orders, re-chosen on each resample), every draw can lie
on one side of the estimate, and the interval excluded its own value (IN masking deletion
0.122 [0.045, 0.099] in the committed quick run). The statistic resampled must be the
statistic reported: callers pass one function for both (`bootstrap_scalar`, `bootstrap`).
`band`, the spread of repeated draws (not an interval of an estimate), stays a percentile
band.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from servable.errors import ServableError

# how reports name the intervals of `interval`, `bootstrap_scalar` and `bootstrap`
INTERVALS = ("95% normal bootstrap intervals over jets (the value on all jets plus or minus "
             "1.96 standard deviations of its resampled values)")


def bootstrap_scalar(statistic: Callable[[np.ndarray], float], n: int,
                     n_resamples: int = 20, confidence: float = 0.95, seed: int = 0,
                     bounds: tuple[float, float] | None = None) -> dict:
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
    bounds : (float, float), optional
        The range the statistic cannot leave (an AUC: (0, 1); a correlation: (-1, 1)): the
        interval is cut to it.

    Returns
    -------
    dict
        `value` (on all jets), `low`, `high` (normal interval), `std` and `n_resamples`
        (the resamples where the statistic was finite); NaN everywhere when it never is.
    """
    if n_resamples < 2 or n < 2:
        raise ServableError(f"the bootstrap needs at least 2 resamples of at least 2 jets, "
                            f"not {n_resamples} of {n}")
    value = float(statistic(np.arange(n)))
    draws = resample_indices(n, n_resamples, seed)
    values = np.array([float(statistic(idx)) for idx in draws])
    return interval(value, values, confidence, bounds)


def bootstrap(statistic: Callable[[np.ndarray], np.ndarray], n: int, n_resamples: int = 20,
              confidence: float = 0.95, seed: int = 0) -> dict:
    """A vector statistic of `n` jets (e.g. one importance per feature) with its bootstrap
    interval per entry, as `bootstrap_scalar` (the same resamples for the same n,
    n_resamples and seed).

    Returns
    -------
    dict
        Lists over entries: `value` (on all jets), `low`, `high`, `std`; `resamples`: the
        statistic on each resample (n_resamples, entries), for ranking stability.
    """
    if n_resamples < 2 or n < 2:
        raise ServableError(f"the bootstrap needs at least 2 resamples of at least 2 jets, "
                            f"not {n_resamples} of {n}")
    value = np.atleast_1d(np.asarray(statistic(np.arange(n)), np.float64))
    draws = np.stack([np.atleast_1d(np.asarray(statistic(idx), np.float64))
                      for idx in resample_indices(n, n_resamples, seed)])
    rows = [interval(v, draws[:, j], confidence) for j, v in enumerate(value)]
    return {**{k: [r[k] for r in rows] for k in ("value", "low", "high", "std")},
            "resamples": draws}


def resample_indices(n: int, n_resamples: int, seed: int = 0) -> list[np.ndarray]:
    """The bootstrap resamples of `n` jets: the same for the same (n, n_resamples, seed)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n, n) for _ in range(n_resamples)]


def interval(value: float, values: Sequence[float], confidence: float = 0.95,
             bounds: tuple[float, float] | None = None) -> dict:
    """`value` with the normal bootstrap interval from its resampled values `values` (NaN
    dropped): value -/+ z * their standard deviation (see the module's text), cut to
    `bounds` where the statistic has a range; it contains `value` whenever `value` is finite
    (and within the bounds). No interval (NaN) from fewer than 2 finite values."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        nan = float("nan")
        return {"value": float(value), "low": nan, "high": nan, "std": nan,
                "n_resamples": int(v.size)}
    std = float(v.std(ddof=1))
    half = float(stats.norm.ppf(0.5 + confidence / 2)) * std
    low, high = float(value) - half, float(value) + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"value": float(value), "low": low, "high": high, "std": std,
            "n_resamples": int(v.size)}


def band(values: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean and percentile band of repeated draws (e.g. the areas of >= 10 random orders):
    where the draws fall, not an interval of the mean."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    nan = float("nan")
    if not v.size:
        return {"value": nan, "low": nan, "high": nan, "std": nan, "n_resamples": 0, "n": 0}
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(v, [tail, 100 - tail])
    return {"value": float(v.mean()), "low": float(low), "high": float(high),
            "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n_resamples": int(v.size),
            "n": int(v.size)}


def degenerate(explanation) -> bool:
    """True for an explanation with no ranking to compare: not finite, or constant."""
    a = np.asarray(explanation, np.float64)
    return a.size == 0 or not np.isfinite(a).all() or float(np.ptp(a)) == 0.0


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """The ROC AUC of `score` for the boolean labels `y` (the Mann-Whitney U statistic over
    n_pos * n_neg, ties counting one half: `roc_auc_score`'s value to rounding); NaN
    without both classes."""
    y = np.asarray(y, bool)
    npos = int(y.sum())
    nneg = y.size - npos
    if not npos or not nneg:
        return float("nan")
    r = stats.rankdata(np.asarray(score, np.float64))
    return float((r[y].sum() - npos * (npos + 1) / 2) / (npos * nneg))


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
        values[i] = auc(t[i][f[i]], rel[i][f[i]])
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


def pooled_truth_auc_interval(relevance: np.ndarray, truth: np.ndarray, filled: np.ndarray,
                              jets: np.ndarray, n_resamples: int = 20, seed: int = 0,
                              bounds: tuple[float, float] | None = None) -> dict:
    """`pooled_truth_auc` over the jets at `jets` with its interval over the bootstrap
    resamples `resample_indices(len(jets), n_resamples, seed)`: the numbers of
    `bootstrap_scalar` of it, from one sort (a resample weights each slot by how often its
    jet is drawn; ties count one half)."""
    m = len(jets)
    if n_resamples < 2 or m < 2:
        raise ServableError(f"the bootstrap needs at least 2 resamples of at least 2 jets, "
                            f"not {n_resamples} of {m}")
    f = np.asarray(filled)[jets]
    s, t = np.asarray(relevance, np.float64)[jets][f], np.asarray(truth)[jets][f].astype(bool)
    jet = np.nonzero(f)[0]
    order = np.argsort(s, kind="stable")
    s, t, jet = s[order], t[order], jet[order]
    group = np.concatenate([[0], np.cumsum(s[1:] != s[:-1])])

    def auc(weights):
        w = weights[jet]
        neg, pos = w * ~t, w * t
        tied = np.bincount(group, neg)
        below = np.cumsum(tied) - tied
        total = pos.sum() * neg.sum()
        return float((pos * (below[group] + 0.5 * tied[group])).sum() / total) if total > 0 \
            else float("nan")

    draws = [auc(np.bincount(i, minlength=m).astype(float))
             for i in resample_indices(m, n_resamples, seed)]
    return interval(auc(np.ones(m)), draws, bounds=bounds)


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


def mean_interval(values: np.ndarray, n_resamples: int = 20, seed: int = 0,
                  bounds: tuple[float, float] | None = None) -> dict:
    """The mean of per-jet values (NaN left out) with its bootstrap interval over the jets
    (cut to `bounds`, the values' range, where given)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return interval(float(v.mean()) if v.size else float("nan"), [])
    return bootstrap_scalar(lambda idx: v[idx].mean(), v.size, n_resamples, seed=seed,
                            bounds=bounds)
