"""Layer-wise relevance propagation (epsilon and gamma rules) for the IN and the MLP.

Rules act through the "gradient trick": every linear layer keeps its forward value z, and
its gradient flows through the rule's weights scaled by z / stab(z_rule); the relevance of an
input is then input x gradient. Sums (over senders, vertices, nodes: the IN's interaction
matrices, paper Eqs. 5-6) pass relevance in proportion to their terms, exactly what LRP
prescribes for them. For the IN's split first layers the rule acts on each pair's summed
pre-activation (see `InteractionNetwork._forward_explicit`), so the fast exact path gives the
same relevance as the dense formulation. A context manager installs the rule (hooks, and the
rule passed to the IN's forward) and leaves the model exactly as it was. Relevance refers to
the standardised inputs the network sees.
"""

from __future__ import annotations

import functools
import inspect
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from servable.data.jets import Jets
from servable.errors import ServableError
from servable.explain.base import Explanation, Method, mask_padding_and_categorical
from servable.explain.modelstate import explaining


class LRPRule:
    """epsilon: z + eps sign(z); gamma: weights w + gamma w+ (and bias likewise)."""

    def __init__(self, kind: str = "epsilon", epsilon: float = 1e-6, gamma: float = 0.25):
        if kind not in ("epsilon", "gamma"):
            raise ServableError(f"LRP rule must be 'epsilon' or 'gamma', not {kind!r}")
        self.kind, self.epsilon, self.gamma = kind, epsilon, gamma

    def weights(self, w, b):
        """The weights and bias the rule propagates through: w + gamma w+ and b + gamma b+ for
        gamma, unchanged for epsilon."""
        if self.kind == "gamma":
            return w + self.gamma * w.clamp(min=0), b + self.gamma * b.clamp(min=0)
        return w, b

    def combine(self, z, z_rule):
        """Forward value z; gradient through z_rule scaled by z / stab(z_rule).

        stab(u) = u + eps sign(u) (eps = 1e-9 for gamma): for epsilon, where z_rule is z,
        the scale is |z| / (|z| + eps), computed without sign or branches.
        """
        with torch.no_grad():
            if z_rule is z:
                a = z.abs()
                scale = a / (a + self.epsilon)
            else:
                eps = self.epsilon if self.kind == "epsilon" else 1e-9
                scale = z / (z_rule + torch.where(z_rule >= 0, eps, -eps))
        return _RuleGradient.apply(z, z_rule, scale)

    def linear(self, x, w, b):
        """A linear layer under the rule: forward value F.linear(x, w, b), gradient through the
        rule's weights scaled as `combine` says."""
        z = F.linear(x, w, b)
        if self.kind == "epsilon":  # same weights: one matrix product serves both
            return self.combine(z, z)
        wr, br = self.weights(w, b)
        return self.combine(z, F.linear(x, wr, br))


class _RuleGradient(torch.autograd.Function):
    """Returns z; sends the incoming gradient, times `scale`, to z_rule (not to z)."""

    @staticmethod
    def forward(ctx, z, z_rule, scale):
        ctx.save_for_backward(scale)
        ctx.same = z is z_rule
        return z.clone()  # a fresh tensor: later in-place ReLUs must not touch a view

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved_tensors
        g = grad * scale
        return (g, None, None) if ctx.same else (None, g, None)


@contextmanager
def lrp_rule(net: nn.Module, rule: LRPRule, forward=None):
    """Install `rule` on every linear layer of `net` (forward hooks, removed on exit) and yield
    the forward to call: `forward` (default: a tagger network's `core_forward`, otherwise
    `net.forward`), given the rule as its `lrp_rule` argument where it takes one (the IN's
    split first layers, which no hook reaches). The network itself stores nothing."""
    forward = forward or getattr(net, "core_forward", net.forward)
    if "lrp_rule" in inspect.signature(forward).parameters:
        forward = functools.partial(forward, lrp_rule=rule)
    handles = []

    def hook(module, args, output):
        return rule.linear(args[0], module.weight, module.bias)

    try:
        for module in net.modules():
            if isinstance(module, nn.Linear):
                handles.append(module.register_forward_hook(hook))
        yield forward
    finally:
        for h in handles:
            h.remove()


class LRP(Method):
    """Layer-wise relevance propagation (epsilon or gamma rule) through the IN's interaction
    structure (paper Eqs. 2-6) or the MLP, in the standardised input space.
    """

    name = "lrp"
    applies_to = ("in", "mlp")

    def attribute(self, jets: Jets, target: int = 1, rule: str = "epsilon",
                  epsilon: float = 1e-6, gamma: float = 0.25,
                  batch_size: int = 1024) -> Explanation:
        net = self.tagger.net
        inputs = self.tagger.inputs(jets)
        names = self.spec.names
        the_rule = LRPRule(rule, epsilon, gamma)
        relevance = {k: np.zeros(inputs[k].shape) for k in names}
        outputs = []
        # eval mode, input gradients only; the rule's hooks and the mode undone on exit
        with explaining(net), lrp_rule(net, the_rule) as forward:
            for start in range(0, len(jets), batch_size):
                sl = slice(start, start + batch_size)
                with torch.no_grad():
                    std, _ = net.standardize(*(torch.from_numpy(inputs[k][sl]) for k in names))
                std = [s.clone().requires_grad_() for s in std]
                logits = forward(*std)
                logits[:, target].sum().backward()
                for k, s in zip(names, std, strict=True):
                    relevance[k][sl] = (s * s.grad).detach().numpy()
                outputs.append(logits[:, target].detach().numpy())
        excluded = mask_padding_and_categorical(relevance, inputs, self.spec)
        out = np.concatenate(outputs)
        total = sum(r.reshape(len(out), -1).sum(1) for r in relevance.values())
        return self.explanation(relevance, target, output=out, extras={
            "rule": rule, "epsilon": epsilon, "gamma": gamma,
            "excluded_categorical": sorted(set(excluded)),
            "relevance_conservation": float(np.median(total / np.where(out == 0, 1, out))),
            "relevance_label": "mean |LRP relevance| summed over slots"})
