"""The state of a torch model that explanations must not change, and the `with` blocks that set
what a method needs and give the model back exactly as they found it (zennit's hygiene).

`preserved(net)` records, for every submodule, its mode (train/eval), its hooks (forward,
backward, pre-hooks, state-dict hooks: every hook dict torch keeps), its plain attributes
and its parameters and buffers (the objects, their values, `requires_grad` and `.grad`),
and restores them on exit, also when the block raises. `explaining(net)` is `preserved` with
the state an attribution needs inside: eval mode and no weight gradients (input gradients
only). Every `Method.attribute` runs inside `preserved` (see `servable.explain.base`), so a
method that calls `predict` (which switches to eval mode) or a library that registers hooks
leaves no trace either. Attributes named `*_cache` (e.g. the IN's folded weights, keyed on
the parameters' versions) are derived data, not state: they are kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

# module attributes that are containers we snapshot item by item, not plain attributes
_CONTAINERS = ("_parameters", "_buffers", "_modules")


def _hook_dicts(module: nn.Module) -> dict[str, dict]:
    """Every hook registry of `module` (torch keeps each kind in a dict attribute)."""
    return {k: v for k, v in vars(module).items() if "hooks" in k and isinstance(v, dict)}


def _plain_attributes(module: nn.Module) -> dict[str, object]:
    hooks = _hook_dicts(module)
    return {k: v for k, v in vars(module).items()
            if k not in _CONTAINERS and k not in hooks and not k.endswith("_cache")}


@dataclass
class _ModuleState:
    training: bool
    hooks: dict[str, dict]
    attributes: dict[str, object]
    parameters: dict[str, nn.Parameter | None]
    buffers: dict[str, torch.Tensor | None]


@dataclass
class ModelState:
    """A snapshot of everything an explanation could change in a torch model."""

    modules: list[tuple[nn.Module, _ModuleState]]
    tensors: list[tuple[torch.Tensor, bool, torch.Tensor | None, int, torch.Tensor]]

    @classmethod
    def of(cls, net: nn.Module) -> ModelState:
        """Record the state of `net` and of every submodule."""
        modules = [(m, _ModuleState(m.training, {k: dict(v) for k, v in _hook_dicts(m).items()},
                                    _plain_attributes(m), dict(m._parameters),
                                    dict(m._buffers)))
                   for m in net.modules()]
        seen, tensors = set(), []
        for t in [*net.parameters(), *net.buffers()]:
            if id(t) not in seen:
                seen.add(id(t))
                # the values are copied so that an in-place change can be undone; the version
                # counter tells whether one happened (copying back bumps it, so only then)
                tensors.append((t, t.requires_grad, t.grad, t._version, t.detach().clone()))
        return cls(modules, tensors)

    def restore(self) -> None:
        """Put every recorded module, hook, attribute and tensor back as it was."""
        for module, s in self.modules:
            module.training = s.training
            now = _hook_dicts(module)
            for name, saved in s.hooks.items():
                now[name].clear()  # the same dict object: hook handles refer to it
                now[name].update(saved)
            for name in set(now) - set(s.hooks):
                now[name].clear()
            attributes = _plain_attributes(module)
            for name in set(attributes) - set(s.attributes):
                delattr(module, name)
            for name, value in s.attributes.items():
                if attributes.get(name, _MISSING) is not value:
                    object.__setattr__(module, name, value)
            for current, saved in ((module._parameters, s.parameters),
                                   (module._buffers, s.buffers)):
                if current != saved or any(current[k] is not v for k, v in saved.items()):
                    current.clear()
                    current.update(saved)
        with torch.no_grad():
            for t, requires_grad, grad, version, values in self.tensors:
                if t._version != version:
                    t.copy_(values)
                if t.is_leaf:
                    t.requires_grad_(requires_grad)
                t.grad = grad


_MISSING = object()


@contextmanager
def preserved(net: nn.Module | None) -> Iterator[nn.Module | None]:
    """Run the block and give `net` back exactly as it was (see the module's docstring), also
    when the block raises; nothing to do for a model without a torch network (None)."""
    if net is None:
        yield net
        return
    state = ModelState.of(net)
    try:
        yield net
    finally:
        state.restore()


@contextmanager
def explaining(net: nn.Module) -> Iterator[nn.Module]:
    """`net` in eval mode with its parameters frozen (attributions need input gradients
    only: no weight gradients are computed), restored exactly on exit."""
    with preserved(net):
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        yield net
