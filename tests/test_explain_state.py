"""Explanations give the model back exactly as they found it: the mode of every submodule,
its hooks, its attributes, the parameters' requires_grad, gradients and values; also when the
model was in train mode before, and when a method raises midway.

The state is recorded here by hand (not with servable.explain.modelstate, the code under
test) and compared before and after every method that applies to a torch model, on the IN,
MLP and ParT bundles of tests/conftest.py.
"""

import pytest
import torch
from torch import nn

import servable
from servable.explain import METHODS

pytestmark = pytest.mark.slow

TORCH_KINDS = ("in", "mlp", "part")
# every method that explains a torch model, on every torch kind it applies to: written out
# here, the applicability itself is checked in test_explain.py
PAIRS = [("in", m) for m in ("masking", "lrp", "rna", "shap", "lime", "ig", "saliency",
                              "probes")] + \
        [("mlp", m) for m in ("masking", "lrp", "rna", "shap", "lime", "ig", "saliency")] + \
        [("part", m) for m in ("masking", "shap", "lime", "ig", "saliency", "attention",
                                "probes")]
CHEAP = {"shap": {"nsamples": 8, "background": 16}, "lime": {"num_samples": 30},
         "ig": {"n_steps": 8}}


def test_the_pairs_cover_every_method_that_applies_to_a_torch_model():
    declared = {(k, m) for m in METHODS for k in METHODS[m].applies_to if k in TORCH_KINDS}
    assert declared == set(PAIRS)


def state(net: nn.Module) -> dict:
    """Everything an explanation could leave behind, recorded independently of the library:
    per module its mode, the number of hooks of each kind and its attributes (caches named
    *_cache excepted: derived from the parameters); per parameter and buffer its identity,
    requires_grad, gradient and values."""
    out = {}
    for name, m in net.named_modules():
        hooks = {k: len(v) for k, v in vars(m).items() if "hooks" in k and isinstance(v, dict)}
        attributes = {k: id(v) for k, v in vars(m).items()
                      if k not in ("_parameters", "_buffers", "_modules") and k not in hooks
                      and not k.endswith("_cache")}
        out[f"module {name}"] = (m.training, hooks, attributes)
    for name, t in [*net.named_parameters(), *net.named_buffers()]:
        out[f"tensor {name}"] = (id(t), t.requires_grad, t.grad is None,
                                 t.detach().clone().numpy().tobytes())
    return out


@pytest.fixture(scope="module")
def jets(test_file):
    return servable.read_jets(test_file)[:120]


@pytest.fixture(scope="module")
def bundles(trained):
    return {kind: servable.load(trained[kind]) for kind in TORCH_KINDS}


def _explain(bundle, jets, method):
    return bundle.explain(jets, method=method, target=1, **CHEAP.get(method, {}))


@pytest.mark.parametrize("kind,method", PAIRS)
def test_an_explanation_leaves_an_eval_model_as_it_found_it(bundles, jets, kind, method):
    net = bundles[kind].tagger.net
    before = state(net)
    _explain(bundles[kind], jets, method)
    assert state(net) == before


@pytest.mark.parametrize("kind,method", PAIRS)
def test_an_explanation_leaves_a_model_in_train_mode_with_user_hooks_as_it_found_it(
        bundles, jets, kind, method):
    net = bundles[kind].tagger.net
    calls = []
    handle = net.register_forward_hook(lambda module, args, output: calls.append(1))
    first = next(net.parameters())
    try:
        net.train()
        first.requires_grad_(False)  # a partly frozen model stays partly frozen
        before = state(net)
        explanation = _explain(bundles[kind], jets, method)
        assert state(net) == before
        assert net.training and all(m.training for m in net.modules())
        assert not first.requires_grad and all(p.requires_grad for p in net.parameters()
                                               if p is not first)
        # the model was explained in eval mode: the same result as from the eval model
        if method in ("lrp", "saliency", "ig"):
            net.eval()
            again = _explain(bundles[kind], jets, method)
            field = "tracks" if explanation.tracks is not None else "jet"
            torch.testing.assert_close(torch.as_tensor(getattr(again, field)),
                                       torch.as_tensor(getattr(explanation, field)))
    finally:
        handle.remove()
        first.requires_grad_(True)
        net.eval()


class Midway(Exception):
    pass


@pytest.mark.parametrize("kind,method", PAIRS)
def test_an_explanation_that_raises_midway_leaves_the_model_as_it_found_it(
        bundles, jets, kind, method):
    """A hook on the last linear layer raises on its first call inside the method (after the
    method has set the state it needs); the model comes back as it was, the hook included."""
    net = bundles[kind].tagger.net
    last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]

    def fail(module, args, output):
        raise Midway

    handle = last.register_forward_hook(fail)
    try:
        net.train()
        before = state(net)
        with pytest.raises(Midway):
            _explain(bundles[kind], jets, method)
        assert state(net) == before
    finally:
        handle.remove()
        net.eval()
