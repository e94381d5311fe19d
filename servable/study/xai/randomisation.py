"""Does the explanation depend on the model? Cascading layer randomisation (Adebayo et al.
2018): the layers re-drawn top down, the explanation's similarity to the trained model's
read against the similarity between independently trained seeds of the model, with a
bootstrap interval over the jets for every method: per-jet attributions through their
per-jet similarity, masking through its AUC losses recomputed on each resample from the
stored masked scores (the same resamples on both sides)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from servable.explain import Servable
from servable.explain import metrics as M
from servable.explain import uncertainty as U
from servable.study.xai.runs import Context, MethodRun, explanation_array, run_method

RANDOMISED = ("saliency", "ig", "lrp", "shap", "masking")  # checked by layer randomisation


def torch_layers(net) -> list:
    """The modules with their own parameters, output side first (registration reversed)."""
    return [m for m in net.modules() if any(True for _ in m.parameters(recurse=False))][::-1]


def randomised(bundle: Servable, n_layers: int, seed: int = 0) -> Servable:
    """A copy of the bundle whose top `n_layers` parameterised layers are re-drawn at random
    (normal, the std of each weight tensor kept), the rest untouched."""
    import torch

    clone = copy.copy(bundle)
    clone._tagger = copy.deepcopy(bundle.tagger)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in torch_layers(clone._tagger.net)[:n_layers]:
            for p in module.parameters(recurse=False):
                scale = float(p.std()) if p.numel() > 1 and float(p.std()) > 0 else 0.1
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return clone


def randomisation_check(bundle: Servable, explain, steps=None,
                        threshold: float = 0.5, seed: int = 0,
                        others: Sequence[Servable] = (), n_resamples: int = 20) -> dict:
    """Cascading randomisation (Adebayo et al. 2018): re-draw the layers top down and measure
    how similar the explanation stays (Spearman of the per-jet attributions), against the
    similarity of the same method on independently trained seeds of the model.

    Parameters
    ----------
    explain : callable
        `explain(bundle) -> MethodRun or numpy.ndarray`, the explanation of fixed jets by
        that bundle (a MethodRun with a statistic and no per-jet values, like masking's,
        gets its interval from resamples of its statistic: `similarity_interval`).
    steps : sequence of int, optional
        How many top layers are randomised at each step (default: 1, half, all).
    others : sequence of Servable
        Other training seeds of the model: their similarity to the reference is the scale
        the randomised similarity is read against (the fixed `threshold` without them).

    Returns
    -------
    dict
        `layers_randomised`, `similarity` per step, `final` (the similarity after every layer
        is randomised, with its bootstrap interval over jets), `seed_similarity` (likewise,
        over the seeds' jets; None without seeds), `degenerate` (the trained model's
        explanation has no ranking: it fails), `randomised_degenerate` (the fully randomised
        model's explanation has none: no interval, inconclusive), `threshold` (what `final`
        must stay below)
        and `passed` (the whole interval below it and not degenerate).
    """
    from servable.study.xai.verdicts import PASSES, verdict

    n = len(torch_layers(bundle.tagger.net))
    steps = list(steps) if steps is not None else sorted({1, max(1, n // 2), n})
    original = explain(bundle)
    last = None
    sims = []
    for k in steps:
        last = explain(randomised(bundle, k, seed))
        sims.append(M.explanation_similarity(_array(original), _array(last)))
    degenerate = U.degenerate(_array(original))
    # a randomised model whose explanation has no ranking (a re-drawn ParT that predicts
    # one value for every jet gives masking no AUC loss anywhere) leaves the similarity
    # undefined: no pass on a number the comparison cannot give, the verdict is inconclusive
    randomised_degenerate = U.degenerate(_array(last))
    final = similarity_interval(original, [last], n_resamples, seed)
    if randomised_degenerate:
        final = {**final, "low": None, "high": None}
    scale = similarity_interval(original, [explain(o) for o in others], n_resamples, seed) \
        if others else None
    if scale is not None and np.isfinite(scale["value"]):
        threshold = scale["value"]
    v = verdict(float("nan") if degenerate else final["value"], final["low"], final["high"],
                threshold, higher=False)
    return {"layers": n, "layers_randomised": steps, "similarity": sims, "final": final,
            "seed_similarity": scale, "degenerate": degenerate,
            "randomised_degenerate": randomised_degenerate, "threshold": threshold,
            "passed": v["status"] == PASSES}


def _array(explanation) -> np.ndarray:
    return explanation_array(explanation) if isinstance(explanation, MethodRun) else \
        np.asarray(explanation, np.float64)


def similarity_interval(original, others: Sequence, n_resamples: int = 20, seed: int = 0
                        ) -> dict:
    """The similarity of an explanation to others of the same jets, with its bootstrap
    interval over the jets: per-jet attributions (jets, features) by the mean of their
    per-jet similarities (pooled over `others`); a MethodRun with a resampleable statistic
    and no per-jet values (masking) by the mean over `others` of the similarity of the two
    statistics recomputed on each resample; anything else by its single value (no
    interval)."""
    a = _array(original)
    if a.ndim == 2:
        return U.mean_interval(np.concatenate(
            [U.per_jet_similarity(a, _array(o)) for o in others]), n_resamples, seed,
            bounds=(-1.0, 1.0))
    runs = [original, *others]
    if all(isinstance(r, MethodRun) and r.statistic is not None for r in runs) and \
            original.n_jets >= 2:
        return U.bootstrap_scalar(
            lambda idx: np.mean([M.explanation_similarity(original.statistic(idx),
                                                          o.statistic(idx)) for o in others]),
            original.n_jets, n_resamples, seed=seed, bounds=(-1.0, 1.0))
    return U.interval(float(np.mean([M.explanation_similarity(a, _array(o))
                                     for o in others])), [])


def randomise_all(ctx: Context, methods: Sequence[str], s,
                  others: Sequence[Servable] = ()) -> dict:
    """The randomisation check of each method of `RANDOMISED` among `methods`, on the first
    `s.randomisation_jets` jets (all of them where those lack a class)."""
    sub = ctx.jets[: s.randomisation_jets]
    small = Context(ctx.bundle, sub, ctx.target, ctx.replacement, ctx.seed)
    if small.y.all() or not small.y.any():
        small = ctx
    out = {}
    for m in methods:
        if m not in RANDOMISED:
            continue
        out[m] = randomisation_check(
            ctx.bundle, lambda b, m=m: run_method(small, m, b), seed=s.seed,
            others=others, n_resamples=s.bootstraps)
    return out


