"""Faithfulness of feature rankings: deletion and insertion curves measured on jets the
ranking was not computed on, against a band of random orders and the greedy oracle, with a
bootstrap interval over the jets of the curve.

A method's order comes from one half of the jets (its importance statistic on that half) and
its curve is measured on the other half; masking's order is the AUC lost when a feature is
replaced by the same value the curve replaces it with, so its curve is flagged
(`shared_replacement`): it measures the order on the very operation that produced it.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from servable.errors import ServableError
from servable.explain import metrics as M
from servable.explain import uncertainty as U


def halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random split of n jets into the half that orders and the half that measures."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def _probs(score, order, steps, insertion=False) -> np.ndarray:
    """(steps, jets): the target probability after each step of the curve."""
    order = list(order)
    return np.stack([np.asarray(score(order[s:] if insertion else order[:s]), np.float64)
                     for s in steps])


def _area(probs: np.ndarray, fractions, y: np.ndarray, idx: np.ndarray) -> float:
    yy = y[idx]
    if yy.all() or not yy.any():
        return float("nan")
    return M.curve_area([roc_auc_score(yy, p[idx]) for p in probs], fractions)


def _normalised(area: float, random: float, best: float) -> float:
    if not np.isfinite(area) or abs(best - random) < 1e-9:
        return float("nan")
    return float((area - random) / (best - random))


def feature_curves(score, n_features: int, y: np.ndarray, orders: dict[str, list[int]],
                   shared: set[str], s) -> dict:
    """Deletion and insertion curves of each order, of `s.random_orders` random orders and of
    the greedy oracle, on the jets `score` predicts (the measuring half).

    Parameters
    ----------
    score : callable
        `score(removed) -> probabilities` of the measuring jets with features replaced.
    orders : dict
        Method -> feature order (most relevant first), computed on the other jets.
    shared : set of str
        The methods whose order was made with the curve's own replacement (masking).
    s : Settings
        `curve_points`, `random_orders`, `bootstraps`, `seed`.

    Returns
    -------
    dict
        `steps`, `curves` (per order, and `random`: the mean of the random orders' curves),
        `random_band` (per kind, the band of the random orders' areas), `scores` (per method
        and kind, the normalised score with its bootstrap interval: 0 the random orders'
        mean area, 1 the best area any order reached; `shared_replacement`).
    """
    y = np.asarray(y, bool)
    if y.all() or not y.any():
        raise ServableError("the faithfulness curves need jets of the target class and of "
                            "others among the first jets: shuffle the data or use more jets")
    steps = M.curve_steps(n_features, s.curve_points)
    fractions = [k / max(n_features, 1) for k in steps]
    rng = np.random.default_rng(s.seed)
    every = {"oracle": M.greedy_order(score, n_features, y, steps), **orders}
    randoms = [rng.permutation(n_features).tolist() for _ in range(s.random_orders)]
    probs = {kind: {k: _probs(score, o, steps, kind == "insertion") for k, o in every.items()}
             for kind in ("deletion", "insertion")}
    rprobs = {kind: [_probs(score, o, steps, kind == "insertion") for o in randoms]
              for kind in ("deletion", "insertion")}
    n = len(y)
    everyone = np.arange(n)

    def scores_on(idx):
        out = {}
        for kind, pick in (("deletion", min), ("insertion", max)):
            areas = {k: _area(p, fractions, y, idx) for k, p in probs[kind].items()}
            rand = float(np.mean([_area(p, fractions, y, idx) for p in rprobs[kind]]))
            best = pick(areas.values())
            out[kind] = {k: _normalised(a, rand, best) for k, a in areas.items()
                         if k != "oracle"}
        return out

    full = scores_on(everyone)
    draws = [scores_on(idx) for idx in U.resample_indices(n, s.bootstraps, s.seed)]
    scores = {k: {kind: U.interval(full[kind][k], [d[kind][k] for d in draws])
                  for kind in ("deletion", "insertion")} | {"shared_replacement": k in shared}
              for k in orders}
    curves = {}
    for k in every:
        curves[k] = {kind: _curve(probs[kind][k], fractions, y) for kind in probs}
    curves["random"] = {kind: _curve(np.mean(rprobs[kind], 0), fractions, y,
                                     aucs=np.mean([[roc_auc_score(y, p) for p in r]
                                                   for r in rprobs[kind]], 0))
                        for kind in rprobs}
    band = {kind: U.band([_area(p, fractions, y, everyone) for p in rprobs[kind]])
            for kind in rprobs}
    return {"n_jets": n, "steps": steps, "curves": curves, "scores": scores,
            "random_band": band}


def _curve(probs: np.ndarray, fractions, y, aucs=None) -> dict:
    auc = [float(roc_auc_score(y, p)) for p in probs] if aucs is None else \
        [float(a) for a in aucs]
    prob = [float(np.mean(p[y])) for p in probs]
    return {"fraction": list(fractions), "auc": auc, "prob": prob,
            "auc_area": M.curve_area(auc, fractions), "prob_area": M.curve_area(prob, fractions)}
