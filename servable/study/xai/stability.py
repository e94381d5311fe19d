"""Are the methods stable? Over bootstrap resamples of the jets (intervals, Kendall tau,
top-5 sets of each method's importances, from its stored per-jet relevance or masked scores:
nothing is recomputed) and over training seeds (Kendall tau and top-5 overlap over the pairs
of seeds, also with each correlated group collapsed to one entry)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from servable.explain import metrics as M
from servable.explain import uncertainty as U
from servable.study.xai.runs import MethodRun


def bootstrap_stability(runs: dict[str, MethodRun], n_jets: int, s) -> dict:
    """Per method with a bootstrap statistic: its importances with standard error and 95%
    bootstrap interval (`uncertainty.interval`) over `s.bootstraps` resamples of the jets,
    and the stability of its ranking over the resamples (`ranking_stability`: mean Kendall
    tau, top-5 agreement)."""
    out = {}
    for name, r in runs.items():
        if r.statistic is None:
            continue
        b = M.bootstrap_importance(r.statistic, n_jets, s.bootstraps, seed=s.seed)
        r.resamples = b["resamples"]
        out[name] = {k: b[k] for k in ("value", "std", "low", "high")}
        out[name].update(M.ranking_stability(b["resamples"]))
        out[name]["kendall"] = U.pair_stability(b["resamples"])["kendall"]
    return out


def seed_stability(per_seed: list[dict[str, MethodRun]],
                   groups: Sequence[Sequence[int]] = ()) -> dict:
    """Per method, how its ranking of the features changes between training seeds: Kendall
    tau and top-5 overlap over the pairs of seeds (each a band), the same Kendall tau with
    each correlated group collapsed to one entry (`group_kendall`: what correlated features
    cannot scramble), the legacy share of pairs with the same top 5 and `flagged` when any
    pair differs; methods run on fewer than 2 seeds, or with all-zero importances on the
    first (reference) seed, are left out."""
    out = {}
    for name in per_seed[0]:
        imps = [runs[name].importance for runs in per_seed if name in runs]
        if len(imps) < 2 or not np.any(imps[0]):
            continue
        x = np.stack(imps)
        st = M.ranking_stability(x)
        st["flagged"] = st.pop("top5_changed")
        st.update(U.pair_stability(x))
        st["group_kendall"] = U.pair_stability(np.stack(
            [U.group_importance(i, groups) for i in x]))["kendall"] if groups else st["kendall"]
        out[name] = st
    return out


