"""Metrics of the explainability benchmark: arrays in, numbers out.

Every function takes importances or attributions as numpy arrays (or a prediction callable
for the curves) and returns plain numbers or small dicts, so that they can be used on any
model and any method, inside or outside `servable xai-benchmark`:

- agreement: `rank_agreement` (Spearman rho, Kendall tau, top-k overlap, sign agreement of
  two global importance vectors), `per_jet_agreement` (the distribution over jets of the rank
  correlation of per-jet attributions);
- stability: `bootstrap_importance` (value, std and a 95% interval per feature with
  `uncertainty.bootstrap`, any importance statistic; `mean_over_jets` for per-jet
  attributions), `ranking_stability` (mean pairwise Kendall tau of several
  rankings and how often their top-k set is unchanged);
- faithfulness: `deletion_curve` / `insertion_curve` (features replaced or restored in a
  method's order), `slot_deletion_curve` (per jet, its most relevant slots removed),
  `curve_area`, `greedy_order` (the "oracle" order by measured AUC loss),
  `explanation_similarity` (the randomisation check of Adebayo et al. 2018);
- physics: `physics_association` (Spearman and mutual information), `truth_auc` (how well a
  per-slot relevance picks the slots the generator says come from the decay);
- correlated features: `correlated_groups` (connected groups of |Spearman rho| above a
  threshold).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from servable.errors import ServableError
from servable.explain import uncertainty as U


def _vector(name: str, values) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1 or a.size < 2:
        raise ServableError(f"{name}: expected a vector of at least 2 importances, received "
                            f"shape {a.shape}")
    if not np.isfinite(a).all():
        raise ServableError(f"{name}: {int((~np.isfinite(a)).sum())} NaN/Inf importances")
    return a


def top_k(importance, k: int) -> set[int]:
    """Indices of the k largest importances (ties broken by index)."""
    a = np.asarray(importance, dtype=np.float64)
    return set(np.argsort(-a, kind="stable")[:k].tolist())


def _correlation(fn, a: np.ndarray, b: np.ndarray) -> float:
    """A rank correlation; NaN when either side is constant (no ranking to compare)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(fn(a, b)[0])


def rank_agreement(a, b, ks: Sequence[int] = (5, 10), signed: bool = False) -> dict:
    """How two global importance vectors over the same features agree.

    Parameters
    ----------
    a, b : array-like (features,)
        Importances of the same features in the same order; rankings are by value, largest
        first. With `signed`, the values are signed and `sign_agreement` is reported.
    ks : sequence of int
        The k of the top-k overlaps (|top_k(a) & top_k(b)| / k).

    Returns
    -------
    dict
        `spearman`, `kendall` (NaN when a side is constant), `top{k}` per k and, if signed,
        `sign_agreement`: the share of features, nonzero on both sides, with the same sign.
    """
    a, b = _vector("a", a), _vector("b", b)
    if a.shape != b.shape:
        raise ServableError(f"importances of different features: {a.shape} vs {b.shape}")
    out = {"spearman": _correlation(stats.spearmanr, a, b),
           "kendall": _correlation(stats.kendalltau, a, b)}
    for k in ks:
        kk = min(k, a.size)
        out[f"top{k}"] = len(top_k(a, kk) & top_k(b, kk)) / kk
    if signed:
        both = (a != 0) & (b != 0)
        out["sign_agreement"] = float(np.mean(np.sign(a[both]) == np.sign(b[both]))) \
            if both.any() else float("nan")
    return out


def per_jet_agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """The distribution over jets of the Spearman correlation between two methods' per-jet
    attributions (n, features); jets where either side is constant are left out.

    Returns
    -------
    dict
        `median`, `q25`, `q75`, `mean` of the per-jet rho and `n_jets` used.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ServableError(f"per-jet attributions must both be (jets, features), received "
                            f"{a.shape} and {b.shape}")
    ok = (np.ptp(a, axis=1) > 0) & (np.ptp(b, axis=1) > 0)
    if not ok.any():
        return {"median": float("nan"), "q25": float("nan"), "q75": float("nan"),
                "mean": float("nan"), "n_jets": 0}
    ra = stats.rankdata(a[ok], axis=1)
    rb = stats.rankdata(b[ok], axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    rho = (ra * rb).sum(1) / np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    q25, median, q75 = np.percentile(rho, [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75),
            "mean": float(rho.mean()), "n_jets": int(ok.sum())}


def bootstrap_importance(statistic: Callable[[np.ndarray], np.ndarray], n_jets: int,
                         n_resamples: int = 20, confidence: float = 0.95, seed: int = 0
                         ) -> dict:
    """Each feature's importance with its spread over bootstrap resamples of the jets
    (`servable.explain.uncertainty.bootstrap`: the normal interval around the value, which
    always contains it).

    Parameters
    ----------
    statistic : callable
        `statistic(indices)` returns the importance vector (features,) measured on the jets
        at `indices` (with repeats): `mean_over_jets(per_jet)` for methods with per-jet
        attributions, an AUC loss for masking.
    n_jets : int
        The number of jets resampled.
    n_resamples : int
        Bootstrap resamples (at least 2).

    Returns
    -------
    dict
        Lists over features: `value` (the statistic on all jets), `std` (the bootstrap
        standard error), `low`, `high` (the interval); `resamples`: the statistic of each
        resample (n_resamples, features), for `ranking_stability`.
    """
    if n_resamples < 2:
        raise ServableError(f"n_resamples must be at least 2, not {n_resamples}")
    if n_jets < 2:
        raise ServableError(f"the bootstrap needs at least 2 jets, not {n_jets}")
    return U.bootstrap(statistic, n_jets, n_resamples, confidence, seed)


def mean_over_jets(per_jet: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The statistic of `bootstrap_importance` for per-jet attributions (jets, features): the
    mean over the chosen jets."""
    x = np.asarray(per_jet, np.float64)
    if x.ndim != 2:
        raise ServableError(f"per-jet attributions: expected (jets, features), received "
                            f"shape {x.shape}")
    return lambda idx: x[idx].mean(0)


def ranking_stability(importances: np.ndarray, k: int = 5) -> dict:
    """How stable a ranking is over repetitions (seeds or resamples): (repetitions, features).

    Returns
    -------
    dict
        `mean_kendall`: the mean Kendall tau over all pairs of repetitions; `top{k}_unchanged`:
        the share of pairs whose top-k sets are equal; `top{k}_changed`: whether any pair
        differs (the flag the report raises for seeds).
    """
    x = np.asarray(importances, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ServableError(f"stability needs at least 2 rankings (repetitions, features), "
                            f"received shape {x.shape}")
    taus, same = [], []
    for i, j in itertools.combinations(range(len(x)), 2):
        taus.append(_correlation(stats.kendalltau, x[i], x[j]))
        same.append(top_k(x[i], k) == top_k(x[j], k))
    taus = np.asarray(taus)
    return {"mean_kendall": float(np.nanmean(taus)) if np.isfinite(taus).any() else float("nan"),
            f"top{k}_unchanged": float(np.mean(same)), f"top{k}_changed": not all(same)}


# faithfulness -----------------------------------------------------------------------------
def curve_area(values: Sequence[float], fractions: Sequence[float] | None = None) -> float:
    """Area under a curve sampled at `fractions` of 0..1 (default: equally spaced), by
    trapezoids."""
    v = np.asarray(values, np.float64)
    if v.size < 2:
        raise ServableError("a curve needs at least 2 points")
    x = np.linspace(0, 1, v.size) if fractions is None else np.asarray(fractions, np.float64)
    if x.shape != v.shape:
        raise ServableError(f"{v.size} curve values at {x.size} fractions")
    return float(np.trapezoid(v, x))


def curve_steps(n: int, points: int = 11, fine: int = 0) -> list[int]:
    """At most `points` step counts from 0 to n, equally spaced (all of them when n is small),
    and every count up to `fine` (the top of an order measured feature by feature)."""
    return sorted({int(round(v)) for v in np.linspace(0, n, min(points, n + 1))}
                  | set(range(min(fine, n) + 1)))


def _score(p: np.ndarray, y: np.ndarray) -> dict:
    return {"auc": float(roc_auc_score(y, p)), "prob": float(np.mean(p[y]))}


def deletion_curve(score: Callable[[Sequence[int]], np.ndarray], order: Sequence[int],
                   y: np.ndarray, steps: Sequence[int] | None = None,
                   insertion: bool = False) -> dict:
    """Replace (deletion) or restore (insertion) features one by one in `order`.

    Parameters
    ----------
    score : callable
        `score(removed)` returns the target probability per jet with the features whose
        indices are in `removed` replaced (by their mean, say); `score([])` is the model.
    order : sequence of int
        Feature indices, most relevant first.
    y : numpy.ndarray of bool
        Whether each jet is of the target class.
    steps : sequence of int, optional
        How many features are changed at each point (default: every count 0..len(order)).
    insertion : bool
        Start with every feature replaced and restore them in `order`.

    Returns
    -------
    dict
        `fraction` (of the features changed), `auc` and `prob` (mean target probability of
        the target-class jets) at each step, and their areas `auc_area`, `prob_area` over
        the fraction of features changed.
    """
    order = list(order)
    y = np.asarray(y, bool)
    if y.all() or not y.any():
        raise ServableError("the curves follow a one-vs-rest AUC: they need jets of the "
                            "target class and of others")
    steps = list(range(len(order) + 1)) if steps is None else list(steps)
    rows = []
    for step in steps:
        removed = order[step:] if insertion else order[:step]
        rows.append(_score(np.asarray(score(removed)), y))
    return _curve(rows, [s / max(len(order), 1) for s in steps])


def _curve(rows: list[dict], fractions: list[float]) -> dict:
    auc = [r["auc"] for r in rows]
    prob = [r["prob"] for r in rows]
    return {"fraction": fractions, "auc": auc, "prob": prob,
            "auc_area": curve_area(auc, fractions), "prob_area": curve_area(prob, fractions)}


def insertion_curve(score, order, y, steps=None) -> dict:
    """`deletion_curve` the other way: every feature replaced, then restored in `order`."""
    return deletion_curve(score, order, y, steps, insertion=True)


def greedy_order(score: Callable[[Sequence[int]], np.ndarray], n_features: int, y: np.ndarray,
                 steps: Sequence[int] | None = None,
                 many: Callable[[list[list[int]]], list[np.ndarray]] | None = None
                 ) -> list[int]:
    """The "oracle" deletion order, found greedily by measured AUC loss: between two
    consecutive `steps` (counts of removed features, default every count), remove the
    features whose removal, each added alone to those already removed, lowers the AUC most.
    With every count as a step this is the plain greedy search (n(n+1)/2 evaluations).
    `many(sets)`, where given, scores all the candidate sets of a step in one call (the same
    numbers as `score` on each: a batched prediction)."""
    y = np.asarray(y, bool)
    steps = sorted(set(steps if steps is not None else range(n_features + 1)) | {n_features})
    remaining = list(range(n_features))
    chosen: list[int] = []
    for a, b in itertools.pairwise([0, *steps]):
        if b <= a or not remaining:
            continue
        sets = [chosen + [f] for f in remaining]
        probs = many(sets) if many is not None else [score(c) for c in sets]
        aucs = {f: U.auc(y, p) for f, p in zip(remaining, probs, strict=True)}
        best = sorted(remaining, key=lambda f: (aucs[f], f))[: b - a]
        chosen += best
        remaining = [f for f in remaining if f not in best]
    return chosen + remaining


def remove_slots(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Channels-first slots (n, features, slots) with the slots where `keep` (n, slots) is
    False zeroed and moved behind the kept ones (filled slots first, order kept)."""
    order = np.argsort(~keep, axis=1, kind="stable")
    out = np.where(keep[:, None, :], x, 0.0).astype(x.dtype)
    return np.take_along_axis(out, order[:, None, :], axis=2)


def slot_deletion_curve(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                        relevance: np.ndarray, y: np.ndarray, steps: int = 10,
                        seed: int | None = None) -> dict:
    """Per jet, remove its `steps` most relevant filled slots (tracks, particles) one by one
    and follow the target probability and AUC.

    Parameters
    ----------
    predict : callable
        `predict(x_modified)` returns the target probability per jet.
    x : numpy.ndarray (n, features, slots)
        The slot input (zero-padded, filled slots first).
    relevance : numpy.ndarray (n, slots)
        Per-slot relevance (e.g. summed |attribution| over features); with `seed` it is
        ignored and the slots are removed in a random order (the baseline).
    """
    filled = (x != 0).any(1)
    rel = np.asarray(relevance, np.float64)
    if rel.shape != filled.shape:
        raise ServableError(f"per-slot relevance must be (jets, slots) = {filled.shape}, "
                            f"received {rel.shape}")
    if seed is not None:
        rel = np.random.default_rng(seed).random(rel.shape)
    rank = np.argsort(np.argsort(-np.where(filled, rel, -np.inf), axis=1, kind="stable"),
                      axis=1)
    y = np.asarray(y, bool)
    rows = [_score(np.asarray(predict(x)), y)]
    for k in range(1, steps + 1):
        keep = filled & (rank >= k)
        rows.append(_score(np.asarray(predict(remove_slots(x, keep))), y))
    return _curve(rows, [k / steps for k in range(steps + 1)])


def explanation_similarity(original: np.ndarray, other: np.ndarray) -> float:
    """How similar two explanations of the same jets are: for per-jet attributions (jets,
    features), the mean over jets of the Spearman correlation of each jet's attributions on
    the features nonzero on either side (so that neither what scales a whole jet, like its
    number of tracks, nor the zeros every explanation shares, like empty SV slots or
    categorical features, counts); for a vector, its Spearman correlation. 1 when they are
    identical, even when constant (an explanation that does not move when the model is
    randomised keeps similarity 1 and fails the check); 0 when one side has no ranking."""
    a = np.asarray(original, np.float64)
    b = np.asarray(other, np.float64)
    if a.shape != b.shape:
        raise ServableError(f"explanations of different shapes: {a.shape} vs {b.shape}")
    if np.array_equal(a, b):
        return 1.0
    if a.ndim == 2:
        rhos = []
        for ra, rb in zip(a, b, strict=True):
            used = (ra != 0) | (rb != 0)
            if used.sum() >= 3:
                rhos.append(_correlation(stats.spearmanr, ra[used], rb[used]))
        rhos = [r for r in rhos if np.isfinite(r)]
        rho = float(np.mean(rhos)) if rhos else float("nan")
    else:
        rho = _correlation(stats.spearmanr, a.ravel(), b.ravel())
    return 0.0 if np.isnan(rho) else float(rho)


# physics ----------------------------------------------------------------------------------
def physics_association(relevance: np.ndarray, observable: np.ndarray, seed: int = 0) -> dict:
    """Spearman rho and mutual information (nats, `sklearn.feature_selection.
    mutual_info_regression`, k = 3 neighbours) between a per-jet relevance aggregate and a
    physics observable."""
    from sklearn.feature_selection import mutual_info_regression

    r = np.asarray(relevance, np.float64)
    o = np.asarray(observable, np.float64)
    if r.shape != o.shape or r.ndim != 1:
        raise ServableError(f"relevance and observable must be per-jet vectors of the same "
                            f"length, received {r.shape} and {o.shape}")
    ok = np.isfinite(r) & np.isfinite(o)
    r, o = r[ok], o[ok]
    if r.size < 5 or np.ptp(r) == 0 or np.ptp(o) == 0:
        return {"spearman": float("nan"), "mutual_information": float("nan"), "n": int(r.size)}
    mi = mutual_info_regression(r[:, None], o, n_neighbors=3, random_state=seed)[0]
    return {"spearman": float(stats.spearmanr(r, o)[0]), "mutual_information": float(mi),
            "n": int(r.size)}


def truth_auc(relevance: np.ndarray, truth: np.ndarray, filled: np.ndarray) -> float:
    """The ROC AUC with which per-slot relevance (n, slots) picks the slots whose truth is
    True (e.g. tracks from the b-hadron decays) among the filled slots: 0.5 is chance, 1 a
    perfect ground-truth explanation. NaN without both kinds of slot."""
    rel, truth, filled = (np.asarray(a) for a in (relevance, truth, filled))
    if not (rel.shape == truth.shape == filled.shape):
        raise ServableError(f"relevance, truth and filled must have one shape, received "
                            f"{rel.shape}, {truth.shape}, {filled.shape}")
    t = truth[filled].astype(bool)
    if t.all() or not t.any():
        return float("nan")
    return float(roc_auc_score(t, rel[filled]))


def correlated_groups(values: np.ndarray, names: Sequence[str], threshold: float = 0.8
                      ) -> list[dict]:
    """Groups of features linked by |Spearman rho| > threshold (connected components).

    Parameters
    ----------
    values : numpy.ndarray (samples, features)
        The features' values over objects (e.g. filled SV slots).

    Returns
    -------
    list of dict
        `features` (names) and `min_link_rho`: the smallest, over the members, of a member's
        strongest |rho| to another member (the weakest link holding the group together);
        groups of at least 2 features only.
    """
    x = np.asarray(values, np.float64)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ServableError(f"values must be (samples, {len(names)} features), received "
                            f"{x.shape}")
    varying = np.ptp(x, axis=0) > 0 if len(x) else np.zeros(x.shape[1], bool)
    idx = np.flatnonzero(varying)
    if len(idx) < 2 or len(x) < 3:
        return []
    rho = np.atleast_2d(stats.spearmanr(x[:, idx])[0])
    linked = np.abs(rho) > threshold
    parent = list(range(len(idx)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(linked, 1)), strict=True):
        parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(idx)):
        groups.setdefault(root(i), []).append(i)
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        sub = np.abs(rho[np.ix_(members, members)])
        strongest = [float(np.max(np.delete(sub[m], m))) for m in range(len(members))]
        out.append({"features": [names[idx[m]] for m in members],
                    "min_link_rho": float(min(strongest))})
    return out
