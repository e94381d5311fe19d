"""The explanation methods as they were before the speed-ups (servable 20ad57a), frozen: the
baseline `bench_explain.py` times against and the reference `tests/test_explain_speed.py`
compares the fast paths with. Deliberately a copy: nothing here calls the new code paths
(predictions go through `_logits`, today's unsorted batches of 4096 jets).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from servable.data.jets import filled_mask
from servable.explain.base import mask_padding_and_categorical
from servable.explain.gradients import IntegratedGradients
from servable.explain.masking import Masking, masked, replacement_values
from servable.explain.shap_methods import Shap, _Logit
from servable.models.batching import probabilities
from servable.models.metrics import fidelity


@contextmanager
def input_gradients_only(net):
    """Freeze the parameters (no weight gradients) and restore them afterwards (the helper
    servable.explain.base had then; the library now uses explain.modelstate.explaining)."""
    params = [p for p in net.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        yield net
    finally:
        for p in params:
            p.requires_grad_(True)


def _logits(tagger, inputs, batch_size=4096) -> np.ndarray:
    """TorchTagger.logits_from_inputs before the speed-ups: input order, 4096 jets a batch."""
    if tagger.framework != "torch":
        return tagger.logits_from_inputs(inputs)
    tensors = tagger.tensors(inputs)
    out = []
    with torch.inference_mode():
        for start in range(0, tensors[0].shape[0], batch_size):
            out.append(tagger.net(*(t[start:start + batch_size] for t in tensors)))
    return torch.cat(out).numpy()


def _predict(tagger, inputs) -> np.ndarray:
    return probabilities(_logits(tagger, inputs))


def masking(method: Masking, jets, target=1, replacement="mean", thresholds=None):
    """Masking.attribute: one prediction per single feature and per threshold."""
    from servable.explain.masking import DEFAULT_THRESHOLDS

    thresholds = DEFAULT_THRESHOLDS if thresholds is None else thresholds
    y = jets.labels.argmax(1) == target
    inputs = method.tagger.inputs(jets)
    values = replacement_values(inputs, method.spec, replacement)
    base = _predict(method.tagger, inputs)[:, target]
    auc0 = roc_auc_score(y, base)
    features = method.features()
    names = [method.spec[k].features[i] for k, i in features]
    delta = {}
    for name, feat in zip(names, features, strict=True):
        p = _predict(method.tagger, masked(inputs, [feat], values))[:, target]
        delta[name] = float(auc0 - roc_auc_score(y, p))
    cumulative = []
    for t in thresholds:
        chosen = [f for n, f in zip(names, features, strict=True) if delta[n] < t]
        p = _predict(method.tagger, masked(inputs, chosen, values))[:, target] \
            if chosen else base
        cumulative.append({"threshold": t, "n_masked": len(chosen),
                           "auc": float(roc_auc_score(y, p)), "fidelity": fidelity(p, base)})
    return {"delta": delta, "auc": float(auc0), "cumulative": cumulative, "output": base}


def _baseline(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "zero":
        return torch.zeros_like(x)
    if x.ndim == 2:
        return x.mean(0, keepdim=True).expand_as(x).clone()
    mask = filled_mask(x, keepdims=True).to(x.dtype)
    mean = (x * mask).sum(dim=(0, 2)) / mask.sum(dim=(0, 2)).clamp(min=1)
    return mean[None, :, None] * mask


def integrated_gradients(method: IntegratedGradients, jets, target=1, baseline="zero",
                         n_steps=64, batch_size=64):
    """IntegratedGradients.attribute: Captum over input-order batches of 64 jets, every jet
    at the width of the widest jet of the whole set (ParT)."""
    from captum.attr import IntegratedGradients as CaptumIG

    net, spec = method.tagger.net, method.spec
    inputs = method.tagger.inputs(jets)
    with torch.no_grad():
        std, extra = net.standardize(*(torch.from_numpy(inputs[k]) for k in spec.names))
    xs, extra = tuple(s.detach() for s in std), tuple(extra)
    baselines = []
    for x, key in zip(xs, spec.names, strict=True):
        b = _baseline(x, baseline)
        columns = spec[key].categorical()
        if columns:
            b = b.clone()
            b[:, columns] = x[:, columns]
        baselines.append(b)
    net.eval()
    ig = CaptumIG(net.core_forward)
    parts, deltas = [], []
    with input_gradients_only(net):
        for start in range(0, len(jets), batch_size):
            sl = slice(start, start + batch_size)
            attr, delta = ig.attribute(
                tuple(x[sl] for x in xs), baselines=tuple(b[sl] for b in baselines),
                target=target, additional_forward_args=tuple(e[sl] for e in extra),
                n_steps=n_steps, method="gausslegendre", return_convergence_delta=True)
            parts.append(attr)
            deltas.append(delta.detach())
    relevance = {}
    for i, k in enumerate(spec.names):
        a = torch.cat([p[i] for p in parts]).detach().numpy().astype(np.float64)
        if a.ndim == 3 and a.shape[2] < inputs[k].shape[2]:
            a = np.pad(a, ((0, 0), (0, 0), (0, inputs[k].shape[2] - a.shape[2])))
        relevance[k] = a
    mask_padding_and_categorical(relevance, inputs, spec)
    with torch.no_grad():
        out = net.core_forward(*xs, *extra)[:, target].numpy()
    return {"relevance": relevance, "output": out,
            "convergence_delta": torch.cat(deltas).numpy()}


def shap_gradient(method: Shap, jets, target=1, background=50, nsamples=100, seed=0):
    """Shap._gradient: shap.GradientExplainer, one jet at a time, 64 samples a batch."""
    import shap

    inputs = method.tagger.inputs(jets)
    names = method.spec.names
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(jets), size=min(background, len(jets)), replace=False)
    bg = [torch.from_numpy(inputs[k][pick]) for k in names]
    explainer = shap.GradientExplainer(_Logit(method.tagger.net, target), bg, batch_size=64)
    values = explainer.shap_values([torch.from_numpy(inputs[k]) for k in names],
                                   nsamples=nsamples, rseed=seed)
    values = values if isinstance(values, list) and len(values) == len(names) else [values]
    relevance = {}
    for k, v in zip(names, values, strict=True):
        v = np.asarray(v)
        relevance[k] = (v[..., 0] if v.ndim == inputs[k].ndim + 1 else v).astype(np.float64)
    mask_padding_and_categorical(relevance, inputs, method.spec)
    return {"relevance": relevance}


BASELINES = {"masking": masking, "ig": integrated_gradients, "shap": shap_gradient}
