"""LIME with features as the interpretable units (lime's LimeBase, weighted ridge).

Each interpretable unit is one input feature (a track feature across all slots, an SV
feature, a jet-level feature). A perturbed sample switches units off by masking them as in
`masking` (population mean, mode for categorical), so LIME works for every model, on
jet-level or track-level inputs alike. Relevance is per jet and per feature (`jet`).
"""

from __future__ import annotations

import numpy as np

from servable.data.jets import Jets
from servable.explain.base import Explanation, Method
from servable.explain.masking import masked, replacement_values


class Lime(Method):
    """LIME: a weighted linear model of the prediction with whole features switched on and off
    (masked as in masking), per jet.
    """

    name = "lime"

    def attribute(self, jets: Jets, target: int = 1, num_samples: int = 200,
                  kernel_width: float = 0.75, seed: int = 0) -> Explanation:
        from lime.lime_base import LimeBase

        inputs = self.tagger.inputs(jets)
        values = replacement_values(inputs, self.spec, "mean")
        features = self.features()
        names = [self.spec[k].features[i] for k, i in features]
        d = len(features)
        rng = np.random.default_rng(seed)
        # one set of binary masks for all jets (row 0: nothing masked, as LIME requires)
        on = rng.random((num_samples, d)) < rng.random((num_samples, 1))
        on[0] = True
        distances = np.sqrt(((1 - on) ** 2).sum(1)) / np.sqrt(d)

        def kernel(dist):
            return np.sqrt(np.exp(-(dist ** 2) / kernel_width ** 2))

        base = LimeBase(kernel, random_state=seed)
        relevance = np.zeros((len(jets), d))
        intercept = np.zeros(len(jets))
        # predictions for every (sample, jet): mask the same features for all jets at once
        preds = np.empty((num_samples, len(jets)))
        for s in range(num_samples):
            chosen = [f for f, keep in zip(features, on[s], strict=True) if not keep]
            preds[s] = self.tagger.predict_from_inputs(masked(inputs, chosen, values))[:, target]
        for j in range(len(jets)):
            labels = np.stack([1 - preds[:, j], preds[:, j]], axis=1)
            icpt, exp, score, _ = base.explain_instance_with_data(
                on.astype(float), labels, distances, 1, d, feature_selection="none")
            for col, weight in exp:
                relevance[j, col] = weight
            intercept[j] = icpt
        agg = np.abs(relevance).mean(0)
        return Explanation(
            method=self.name, target=target, model=self.tagger.kind,
            feature_names={"jet": names}, feature_relevance=dict(
                zip(names, map(float, agg), strict=True)),
            relevance={"jet": relevance}, output=preds[0], base_value=intercept,
            extras={"num_samples": num_samples, "kernel_width": kernel_width,
                    "relevance_label": "mean |LIME weight| (probability per feature kept)"})
