"""Three-valued verdicts (passes, fails, inconclusive) against a baseline, per method and
question, and the decision table that follows from them.

A verdict is a dict: `status`, the `value` with its interval (`low`, `high`), the `threshold`
it is read against and, where the threshold is a baseline, which one (`baseline`). It passes
only when the whole interval is on the good side of the threshold, fails when the whole
interval is on the other side (or the explanation is degenerate: no value), and is
inconclusive when the interval straddles the threshold or is missing.
"""

from __future__ import annotations

import math

PASSES, FAILS, INCONCLUSIVE = "passes", "fails", "inconclusive"

# thresholds of the criteria that have no baseline of their own
AGREE = 0.5  # mean Spearman of a method's global ranking with the other methods'
STABLE = 0.5  # Kendall tau of the group-level rankings between training seeds
# top-K deletion score (0 random orders, 1 the oracle's first K features): most of what the
# K features the model uses carry; an order that finds one of two such features scores
# about 0.5 (the planted group task), one that finds both about 1
FAITHFUL = 0.75
RANDOMISATION = 0.5  # similarity after randomising every layer, without seeds to scale it

CRITERIA = {"agrees": "agrees with the other methods", "stable": "stable over seeds",
            "faithful": "faithful (top-K deletion)", "randomisation": "passes randomisation",
            "finds_decay_tracks": "finds the decay tracks"}


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def verdict(value, low, high, threshold: float, higher: bool = True,
            baseline: str | None = None) -> dict | None:
    """Read a value and its interval against a threshold.

    Parameters
    ----------
    value, low, high : float or None
        The measurement and its interval; `value` None means not measured (no verdict), NaN
        means degenerate (fails).
    threshold : float
        What the value must exceed (`higher`) or stay below (not `higher`).
    baseline : str, optional
        The name of the baseline the threshold is, for the report.

    Returns
    -------
    dict or None
        `status`, `value`, `low`, `high`, `threshold`, `baseline`.
    """
    if value is None:
        return None
    out = {"value": value, "low": low, "high": high, "threshold": threshold,
           "baseline": baseline}
    if not _finite(value) or not _finite(threshold):
        return {**out, "status": FAILS, "value": None}
    if not (_finite(low) and _finite(high)):
        return {**out, "status": INCONCLUSIVE}
    good, bad = (low > threshold, high <= threshold) if higher else \
        (high < threshold, low >= threshold)
    return {**out, "status": PASSES if good else FAILS if bad else INCONCLUSIVE}


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _interval_verdict(iv: dict | None, threshold, higher=True, baseline=None):
    if iv is None:
        return None
    return verdict(iv.get("value"), iv.get("low"), iv.get("high"), threshold, higher, baseline)


def method_verdicts(model: dict, method: str) -> dict:
    """The verdicts of one method on one model (results.json's model entry): each criterion
    of `CRITERIA`, None where it does not apply."""
    agrees = _interval_verdict(_get(model, "agreement", "mean_spearman", method), AGREE)
    seeds = _get(model, "stability", "seeds", method)
    stable = None
    if seeds is not None:
        k = seeds.get("group_kendall") or seeds.get("kendall")
        # one pair of seeds gives one number, not an interval: inconclusive
        spread = seeds.get("pairs", 0) >= 2
        stable = verdict(k["value"], k["low"] if spread else None,
                         k["high"] if spread else None, STABLE)
    faith = _interval_verdict(_get(model, "faithfulness", "features", "scores", method,
                                   "top"), FAITHFUL)
    steps = _get(model, "faithfulness", "features", "steps")
    if steps and _get(model, "faithfulness", "features", "top_k") == steps[-1]:
        faith = None  # K is every feature: no order differs from another, not measured
    rand = _get(model, "faithfulness", "randomisation", method)
    randomisation = None
    if rand is not None:
        final = rand["final"]
        scale = rand.get("seed_similarity")
        if rand.get("degenerate"):
            randomisation = verdict(float("nan"), None, None, RANDOMISATION, higher=False)
        elif scale is not None and _finite(scale.get("value")):
            randomisation = verdict(final["value"], final["low"], final["high"],
                                    scale["value"], higher=False,
                                    baseline="seed-to-seed similarity")
        else:
            randomisation = verdict(final["value"], final["low"], final["high"],
                                    RANDOMISATION, higher=False)
    truth = _get(model, "physics", "truth_auc", method)
    best = _get(model, "physics", "best_baseline")
    finds = None
    if truth is not None and best is not None:
        finds = verdict(truth["value"], truth["low"], truth["high"], best["value"],
                        baseline=best["name"])
    return {"agrees": agrees, "stable": stable, "faithful": faith,
            "randomisation": randomisation, "finds_decay_tracks": finds}


# each question of the decision table: the criteria a method must pass, the one whose value
# ranks the passing methods, and whether the method needs per-jet or per-slot relevance
QUESTIONS = {
    "which features matter (global)": (("faithful",), "faithful", None),
    "which features matter for one jet": (("faithful", "randomisation"), "faithful",
                                          "per_jet"),
    "which tracks are from the decay": (("finds_decay_tracks",), "finds_decay_tracks", None),
    "a ranking robust to retraining": (("stable", "faithful"), "stable", None),
}


def decide(model: dict, per_method: dict) -> dict:
    """The decision table of one model: per question, the passing method with the best value
    of the question's criterion, or none qualifies with the best value seen.

    Returns
    -------
    dict
        question -> `method` (None when none qualifies), `criterion`, `status`, `value`,
        `low`, `high` and `threshold` of the named method (or of the best one seen).
    """
    out = {}
    for q, (needed, rank_by, needs) in QUESTIONS.items():
        seen = {m: v[rank_by] for m, v in per_method.items() if v.get(rank_by) is not None
                and (needs is None or _get(model, needs, m))}
        passing = [m for m in seen if all((per_method[m].get(c) or {}).get("status") == PASSES
                                          for c in needed)]

        def key(m, seen=seen):
            return seen[m]["value"] if _finite(seen[m]["value"]) else -math.inf

        pick = max(passing, key=key) if passing else (max(seen, key=key) if seen else None)
        cell = {"method": pick if passing else None, "best_seen": pick, "criterion": rank_by,
                "status": None, "value": None, "low": None, "high": None, "threshold": None,
                "others": {c: (per_method[pick].get(c) or {}).get("status")
                           for c in needed if c != rank_by} if pick is not None else {}}
        if pick is not None:
            v = seen[pick]
            cell.update({k: v.get(k) for k in ("status", "value", "low", "high", "threshold")})
        out[q] = cell
    return out


def verdicts(model: dict) -> dict:
    """Per method its verdicts, and the decision table (`use`)."""
    methods = sorted(set(model.get("importance", {})) |
                     set(_get(model, "physics", "truth_auc") or {}) |
                     set(_get(model, "faithfulness", "randomisation") or {}))
    per_method = {m: method_verdicts(model, m) for m in methods}
    return {"per_method": per_method, "use": decide(model, per_method)}


def cell_text(cell: dict) -> str:
    """One decision-table cell as the report prints it."""
    def num(x):
        return "n/a" if not _finite(x) else f"{x:.3f}"

    if cell["best_seen"] is None:
        return "none qualifies (no method applies)"
    iv = f"{num(cell['value'])} [{num(cell['low'])}, {num(cell['high'])}]"
    if cell["method"] is not None:
        return f"{cell['method']}: {iv}"
    others = "".join(f"; {CRITERIA[c]}: {st or 'n/a'}"
                     for c, st in (cell.get("others") or {}).items())
    return (f"none qualifies (best: {cell['best_seen']} {iv}, {cell['status']} against "
            f"{num(cell['threshold'])}{others})")


def verdict_text(v: dict | None) -> str:
    """One verdict as the report prints it: status, value [interval] vs threshold."""
    if v is None:
        return "n/a"

    def num(x):
        return "n/a" if not _finite(x) else f"{x:.3f}"
    against = f"{v['baseline']} {num(v['threshold'])}" if v.get("baseline") else \
        num(v["threshold"])
    status = v["status"] if v["status"] == PASSES else f"**{v['status']}**"
    return f"{status} ({num(v['value'])} [{num(v['low'])}, {num(v['high'])}] vs {against})"
