"""Gradient-based attributions with Captum: integrated gradients (`ig`) and `saliency`.

Both explain the target class logit with respect to the standardised inputs the network core
sees (as LRP does): the preprocessing detects padding by exact zeros, so in raw space the
model jumps at a zero baseline. The IG baseline is `zero` (every filled feature at its
preprocessing centre, padding unchanged) or `mean` (the per-feature mean over filled slots,
placed only in the jet's own filled slots, so no baseline leaks into padding); categorical
features keep their own value in the baseline. For ParT the
particle kinematics and mask (pair features) are fixed arguments: attributions are for the
particle features given the kinematics. Completeness (sum of attributions = f(x) - f(baseline)) is
reported per jet in `extras["completeness_error"]`.
"""

from __future__ import annotations

import numpy as np
import torch

from servable.data.jets import Jets, filled_mask
from servable.explain.base import Explanation, Method, mask_padding_and_categorical
from servable.explain.grouping import similar_multiplicity_groups
from servable.explain.modelstate import explaining


class _GradientMethod(Method):
    applies_to = ("in", "mlp", "part", "particlenet")

    def _tensors(self, jets: Jets):
        """Raw inputs (numpy), standardised tensors and the fixed extra arguments."""
        inputs = self.tagger.inputs(jets)
        with torch.no_grad():
            std, extra = self.tagger.net.standardize(*(torch.from_numpy(inputs[k])
                                                       for k in self.spec.names))
        return inputs, tuple(s.detach() for s in std), tuple(extra)

    def _forward(self, *args):
        return self.tagger.net.core_forward(*args)

    def _finish(self, inputs, attributions, target, **kw) -> Explanation:
        relevance = {}
        for k, a in zip(self.spec.names, attributions, strict=True):
            a = a.detach().numpy().astype(np.float64)
            if a.ndim == 3 and a.shape[2] < inputs[k].shape[2]:  # ParT trims padded slots
                a = np.pad(a, ((0, 0), (0, 0), (0, inputs[k].shape[2] - a.shape[2])))
            relevance[k] = a
        excluded = mask_padding_and_categorical(relevance, inputs, self.spec)
        extras = kw.pop("extras", {})
        extras["excluded_categorical"] = sorted(set(excluded))
        return self.explanation(relevance, target, extras=extras, **kw)


class IntegratedGradients(_GradientMethod):
    """Integrated gradients (Captum) with a `zero` (training median) or `mean` baseline;
    the per-jet completeness error is in `extras`.
    """

    name = "ig"

    def attribute(self, jets: Jets, target: int = 1, baseline: str = "zero", n_steps: int = 64,
                  batch_size: int = 64) -> Explanation:
        """Captum's Gauss-Legendre IG over groups of jets of similar multiplicity (at most
        `batch_size` jets, and `GROUP_PAIRS` track pairs over all path points, a group): the
        IN's buckets fill and ParT trims each group to its own widest jet. A jet's
        attribution does not depend on the jets it shares a group with."""
        from captum.attr import IntegratedGradients as CaptumIG

        net, names = self.tagger.net, self.spec.names
        with explaining(net):
            means = self._baseline_means(jets, baseline)  # every jet's; None: zero baseline
            inputs = self.tagger.inputs(jets)
            relevance = {k: np.zeros(inputs[k].shape) for k in names}
            out, base, deltas = (np.zeros(len(jets), np.float32) for _ in range(3))
            ig = CaptumIG(self._forward)
            for idx in self._groups(inputs, n_steps, batch_size):
                with torch.no_grad():
                    std, extra = net.standardize(*(torch.from_numpy(inputs[k][idx])
                                                   for k in names))
                x = tuple(s.detach() for s in std)
                b = tuple(self._hold_categorical(self._baseline(xi, mean), xi, key)
                          for xi, mean, key in zip(x, means, names, strict=True))
                attr, delta = ig.attribute(
                    x, baselines=b, target=target, additional_forward_args=tuple(extra),
                    n_steps=n_steps, method="gausslegendre", return_convergence_delta=True)
                deltas[idx] = delta.detach().numpy()
                with torch.no_grad():
                    out[idx] = self._forward(*x, *extra)[:, target].numpy()
                    base[idx] = self._forward(*b, *extra)[:, target].numpy()
                for k, a in zip(names, attr, strict=True):
                    relevance[k][idx, ..., :a.shape[-1]] = a.detach().numpy()
        total = sum(r.reshape(len(jets), -1).sum(1) for r in relevance.values())
        error = np.abs(total - (out - base)) / np.maximum(np.abs(out - base), 1e-12)
        return self._finish(inputs, [torch.from_numpy(relevance[k]) for k in names], target,
                            output=out, base_value=base,
                            extras={"baseline": baseline, "n_steps": n_steps,
                                    "completeness_error": error,
                                    "completeness_error_median": float(np.median(error)),
                                    "convergence_delta": deltas,
                                    "relevance_label": "mean |IG attribution| over slots"})

    @staticmethod
    def _groups(inputs, n_steps: int, batch_size: int) -> list[np.ndarray]:
        """Jets of similar multiplicity, at most `batch_size` a group."""
        return [part for idx in similar_multiplicity_groups(inputs, copies=n_steps)
                for part in np.array_split(idx, -(-len(idx) // batch_size))]

    def _hold_categorical(self, baseline: torch.Tensor, x: torch.Tensor, key: str):
        """Categorical features keep their value along the path: a path through codes that
        do not exist means nothing, so their attribution is exactly zero and completeness
        holds for the rest."""
        columns = self.spec[key].categorical()
        if columns:
            baseline = baseline.clone()
            baseline[:, columns] = x[:, columns]
        return baseline

    def _baseline_means(self, jets: Jets, kind: str) -> list:
        """Per input, the per-feature mean over every jet (filled slots only) of a `mean`
        baseline in the standardised space; Nones for the `zero` baseline."""
        if kind == "zero":
            return [None] * len(self.spec.names)
        if kind != "mean":
            from servable.errors import ServableError

            raise ServableError(f"baseline must be 'zero' or 'mean', not {kind!r}")
        means = []
        for x in self._tensors(jets)[1]:
            if x.ndim == 2:
                means.append(x.mean(0, keepdim=True))
                continue
            mask = filled_mask(x, keepdims=True).to(x.dtype)
            means.append((x * mask).sum(dim=(0, 2)) / mask.sum(dim=(0, 2)).clamp(min=1))
        return means

    @staticmethod
    def _baseline(x: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
        """The baseline of jets `x` in the standardised space: zero, or `mean` (from
        `_baseline_means`) in the jets' own filled slots; padded slots stay zero."""
        if mean is None:
            return torch.zeros_like(x)
        if x.ndim == 2:
            return mean.expand_as(x).clone()
        return mean[None, :, None] * filled_mask(x, keepdims=True).to(x.dtype)


class Saliency(_GradientMethod):
    """Saliency: the mean absolute gradient of the target logit, in the standardised space."""

    name = "saliency"

    def attribute(self, jets: Jets, target: int = 1, batch_size: int = 256) -> Explanation:
        from captum.attr import Saliency as CaptumSaliency

        method = CaptumSaliency(self._forward)
        parts = []
        with explaining(self.tagger.net):
            inputs, xs, extra = self._tensors(jets)
            for s in range(0, len(jets), batch_size):
                batch = tuple(x[s:s + batch_size].clone().requires_grad_() for x in xs)
                parts.append(method.attribute(batch, target=target, abs=True,
                                              additional_forward_args=tuple(
                                                  e[s:s + batch_size] for e in extra)))
            with torch.no_grad():
                out = self._forward(*xs, *extra)[:, target].numpy()
        attributions = [torch.cat([p[i] for p in parts]) for i in range(len(xs))]
        return self._finish(inputs, attributions, target, output=out,
                            extras={"relevance_label": "mean |d logit / d input| over slots"})
