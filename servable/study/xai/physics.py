"""Do the methods mean physics? Per-jet relevance shares (on SV features, displaced tracks,
the leading slots) against the jets' observables (`servable.data.jetobservables.
benchmark_observables`) beside a uniform explanation, the AUC with which per-slot relevance
picks the slots from the decay we want to see (`truth_of_slots`) beside model-free scores,
and the linear probes."""

from __future__ import annotations

import numpy as np

from servable.data.jetobservables import benchmark_observables, truth_of_slots
from servable.data.jets import filled_mask
from servable.explain import method_class
from servable.explain import metrics as M
from servable.explain import uncertainty as U
from servable.study.xai import baselines as B
from servable.study.xai.runs import Context, MethodRun


def _aggregates(ctx: Context, run: MethodRun) -> dict[str, np.ndarray]:
    """Per-jet shares of a method's relevance: on SV features, on displaced tracks
    (2D IP significance > 3), on the 3 leading slots."""
    def share(part, whole):
        return part / np.where(whole > 0, whole, 1.0)

    out = {}
    sv = [i for i, (k, _) in enumerate(ctx.features) if k == "vertices"]
    if run.per_jet is not None and sv:
        out["share on SV features"] = share(run.per_jet[:, sv].sum(1), run.per_jet.sum(1))
    if run.slot is not None:
        slot_total = run.slot.sum(1)
        out["share on the 3 leading slots"] = share(run.slot[:, :3].sum(1), slot_total)
        jets = ctx.jets
        if jets.has("tracks") and "trackBTag_Sip2dSig" in jets.track_names:
            sig = jets.tracks[:, jets.track_names.index("trackBTag_Sip2dSig")]
            displaced = (np.abs(sig) > 3) & filled_mask(jets.tracks)
            width = min(displaced.shape[1], run.slot.shape[1])
            out["share on displaced tracks"] = share(
                (run.slot[:, :width] * displaced[:, :width]).sum(1), slot_total)
    return out


def physics(ctx: Context, runs: dict[str, MethodRun], s) -> dict:
    """Whether each method's relevance means physics, beside what needs no model.

    Returns
    -------
    dict
        `associations`: Spearman rho and mutual information between each per-jet relevance
        share (on SV features, displaced tracks, the 3 leading slots) and each observable,
        with the rho of the uniform explanation (`null_spearman`: equal relevance on every
        filled slot and feature) and `exceeds_null`; `truth_auc`: per method with per-slot
        relevance, the pooled AUC with which it picks the slots from the decay we want to
        see, among the filled slots of target-class jets, with a bootstrap interval over
        jets; `truth_auc_per_jet`: the distribution over jets of the within-jet AUC;
        `baselines`: the same two numbers for each model-free score
        (`study.xai.baselines`), `best_baseline` the highest pooled one; `truth`: what that
        truth is (None for jets without truth); `probes_r2`: the linear probes' R^2 per
        observable and stage, for models the probes apply to.
    """
    obs = benchmark_observables(ctx.jets)
    truth = truth_of_slots(ctx.jets)
    lead = ctx.jets.leading_slotted()
    filled_all = filled_mask(lead.values) if lead is not None else None
    per_shape = (len(ctx.jets), len(ctx.names))
    per_jet0, slot0 = B.uniform_explanation(per_shape, filled_all)
    null = MethodRun("uniform", np.ones(len(ctx.names)), per_jet=per_jet0, slot=slot0)
    null_values = _aggregates(ctx, null)
    assoc = []
    for name, run in runs.items():
        for agg, values in _aggregates(ctx, run).items():
            for o, ov in obs.items():
                row = M.physics_association(values, ov, seed=s.seed)
                nv = null_values.get(agg)
                rho0 = M.physics_association(nv, ov, seed=s.seed)["spearman"] \
                    if nv is not None else float("nan")
                row["null_spearman"] = rho0
                row["exceeds_null"] = bool(np.isfinite(row["spearman"]) and (
                    not np.isfinite(rho0) or abs(row["spearman"]) > abs(rho0) + 0.1))
                assoc.append({"method": name, "aggregate": agg, "observable": o, **row})
    out = {"associations": assoc, "truth_auc": {}, "truth_auc_per_jet": {}, "baselines": {},
           "best_baseline": None, "truth": truth[1] if truth is not None else None}
    if truth is not None and filled_all is not None:
        t = truth[0]

        def measure(rel):
            width = min(t.shape[1], rel.shape[1])
            filled = filled_all[:, :width] & ctx.y[:, None]
            jets = np.flatnonzero(ctx.y)
            pooled = U.pooled_truth_auc_interval(rel[:, :width], t[:, :width], filled, jets,
                                                 s.bootstraps, seed=s.seed, bounds=(0.0, 1.0))
            per_jet = U.truth_auc_per_jet(rel[:, :width], t[:, :width], filled)
            per_jet.pop("values")
            return pooled, per_jet

        for name, run in runs.items():
            if run.slot is not None:
                out["truth_auc"][name], out["truth_auc_per_jet"][name] = measure(run.slot)
        for name, score in B.model_free_scores(ctx.jets).items():
            pooled, per_jet = measure(score)
            out["baselines"][name] = {"pooled": pooled, "per_jet": per_jet}
        finite = {k: v["pooled"]["value"] for k, v in out["baselines"].items()
                  if np.isfinite(v["pooled"]["value"])}
        if finite:
            best = max(finite, key=finite.get)
            out["best_baseline"] = {"name": best, "value": finite[best]}
    if ctx.bundle.kind in method_class("probes").applies_to:
        expl = method_class("probes")(ctx.bundle).attribute(ctx.jets, target=ctx.target)
        out["probes_r2"] = expl.extras["r2"]
    return out


