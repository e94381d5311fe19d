"""SHAP: TreeExplainer for the BDT (exact, in margin space), GradientExplainer otherwise.

For neural models SHAP's DeepExplainer has no rules for GELU and LayerNorm (ParT) and fails
or silently breaks additivity there; GradientExplainer (expected gradients) needs no
per-layer rules, so it serves every neural model. Its background jets must not leak into the
explained jet's padding: padded slots are set to zero relevance.
"""

from __future__ import annotations

import numpy as np
import torch

from servable.data.jets import Jets
from servable.explain.base import Explanation, Method, mask_padding_and_categorical


class Shap(Method):
    """SHAP values: exact TreeSHAP in log-odds for the BDT, expected gradients
    (`shap.GradientExplainer`) for the neural models.
    """

    name = "shap"

    def attribute(self, jets: Jets, target: int = 1, background: int = 50,
                  nsamples: int = 100, native: bool = True, seed: int = 0) -> Explanation:
        if self.tagger.framework == "xgboost":
            return self._tree(jets, target, native)
        return self._gradient(jets, target, background, nsamples, seed)

    def _tree(self, jets, target, native) -> Explanation:
        """Exact TreeSHAP of the margin of the target class. Two classes: one margin, the
        log-odds of class 1, so class 0 is explained by its negative; more: XGBoost's margin
        of each class (softmax space), explained class by class."""
        import shap

        x = self.tagger.inputs(jets)["jet_features"]
        explainer = shap.TreeExplainer(self.tagger.booster)
        values = np.asarray(explainer.shap_values(x), dtype=np.float64)
        names = self.tagger.config["class_names"]
        if len(names) > 2:  # (jets, features, classes)
            values = values[:, :, target] if values.ndim == 3 else values[target]
            base = float(np.ravel(explainer.expected_value)[target])
            margin, sign = self.tagger.logits(jets)[:, target], 1.0
            space = f"margin of class {names[target]} (softmax over {len(names)} margins)"
        else:
            base = float(np.ravel(explainer.expected_value)[0])
            margin = self.tagger.logits(jets)[:, 1]
            sign = 1.0 if target == 1 else -1.0  # the margin is the log-odds of class 1
            space = f"margin (log-odds of {names[1]})"
        extras = {"explainer": "shap.TreeExplainer", "space": space,
                  "additivity_max_error": float(np.max(np.abs(values.sum(1) + base - margin))),
                  "relevance_label": "mean |SHAP value| (margin)"}
        if native:
            extras["native_importance_gain"] = self.tagger.native_importance("gain")
        return self.explanation({"jet_features": sign * values}, target,
                                output=sign * margin, base_value=sign * base, extras=extras)

    def _gradient(self, jets, target, background, nsamples, seed) -> Explanation:
        import shap

        inputs = self.tagger.inputs(jets)
        names = self.spec.names
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(jets), size=min(background, len(jets)), replace=False)
        bg = [torch.from_numpy(inputs[k][pick]) for k in names]
        # the target's logit only: expected gradients of one output, not of every class; all
        # samples of a jet in one pass (the batch size does not change shap's random draws),
        # and no gradients of the weights
        from servable.explain.modelstate import explaining

        with explaining(self.tagger.net):
            explainer = shap.GradientExplainer(_Logit(self.tagger.net, target), bg,
                                               batch_size=max(nsamples, 1))
            values = explainer.shap_values([torch.from_numpy(inputs[k]) for k in names],
                                           nsamples=nsamples, rseed=seed)
        values = values if isinstance(values, list) and len(values) == len(names) else [values]
        relevance = {}
        for k, v in zip(names, values, strict=True):
            v = np.asarray(v)
            relevance[k] = (v[..., 0] if v.ndim == inputs[k].ndim + 1 else v).astype(np.float64)
        excluded = mask_padding_and_categorical(relevance, inputs, self.spec)
        with torch.no_grad():
            out = self.tagger.logits(jets)[:, target]
        return self.explanation(relevance, target, output=out, extras={
            "explainer": "shap.GradientExplainer (expected gradients)",
            "background_jets": int(len(pick)), "nsamples": nsamples,
            "excluded_categorical": sorted(set(excluded)),
            "relevance_label": "mean |SHAP value| (logit) over slots"})


class _Logit(torch.nn.Module):
    """The network's logit of one class, as an (n, 1) output."""

    def __init__(self, net, target: int):
        super().__init__()
        self.net, self.target = net, target

    def forward(self, *xs):
        return self.net(*xs)[:, self.target:self.target + 1]
