"""Correlated features: the groups of a model's features correlated above a threshold (over
filled slots), their joint masking loss beside the sum of the members', how each method
shares a group's importance among its members, and the categorical features."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from servable.data.jets import filled_mask
from servable.explain import metrics as M
from servable.study.xai.runs import Context, MethodRun


def feature_groups(ctx: Context, s) -> list[list[int]]:
    """The correlated groups of the model's features (indices into `ctx.names`)."""
    out = []
    for g in ctx.bundle.tagger.input_spec():
        x = ctx.inputs[g.name]
        rows = x.transpose(0, 2, 1)[filled_mask(x)] if x.ndim == 3 else x
        rows = rows[np.random.default_rng(s.seed).permutation(len(rows))[:5000]]
        for grp in M.correlated_groups(rows, list(g.features), s.correlation_threshold):
            out.append([ctx.features.index((g.name, list(g.features).index(f)))
                        for f in grp["features"]])
    return out


def correlated(ctx: Context, runs: dict[str, MethodRun], s) -> dict:
    """Correlated groups per input (over filled slots), their joint masking loss beside the
    sum of the members', and the share of the group's importance on its top member per
    method (a method that splits importance evenly vs one that skews it)."""
    spec = ctx.bundle.tagger.input_spec()
    groups = []
    sub = np.arange(min(s.faithfulness_jets, len(ctx.jets)))
    y = ctx.y[sub]
    auc0 = roc_auc_score(y, ctx.masked_prob([], sub))
    for g in spec:
        x = ctx.inputs[g.name]
        rows = x.transpose(0, 2, 1)[filled_mask(x)] if x.ndim == 3 else x
        rng = np.random.default_rng(s.seed)
        rows = rows[rng.permutation(len(rows))[:5000]]
        for grp in M.correlated_groups(rows, list(g.features), s.correlation_threshold):
            idx = [ctx.names.index(n) for n in grp["features"]]
            joint = auc0 - roc_auc_score(y, ctx.masked_prob(idx, sub))
            per_method = {}
            for name, r in runs.items():
                vals = r.importance[idx]
                if np.sum(np.abs(vals)) > 0:
                    per_method[name] = {
                        "group_importance": float(np.sum(vals)),
                        "top_member_share": float(np.max(np.abs(vals)) / np.sum(np.abs(vals)))}
            single = runs["masking"].importance[idx].sum() if "masking" in runs else None
            groups.append({**grp, "input": g.name, "joint_masking_auc_loss": float(joint),
                           "sum_of_single_masking_losses": None if single is None else
                           float(single), "methods": per_method})
    categorical = [spec[k].features[i] for k, i in ctx.features if i in spec[k].categorical()]
    return {"threshold": s.correlation_threshold, "groups": groups, "categorical": categorical}


