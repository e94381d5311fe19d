"""Are the methods faithful? Deletion and insertion curves of feature rankings measured on
jets the ranking was not computed on, against a band of random orders and the greedy oracle
(searched on the same jets as the rankings),
with a bootstrap interval over the jets of the curve (`feature_curves`; on a model:
`method_curves`); per-jet slot deletion curves (`slot_curves`); captum's infidelity and
max-sensitivity of the gradient methods (`captum_scores`). Every set of masked features is
predicted once, the sets of a curve together (`Context.masked_probs`).

A method's order comes from one half of the jets (its importance statistic on that half) and
its curve is measured on the other half; where masking's order was made with the curve's own
replacement its curve is flagged (`shared_replacement`). The verdict reads the top-K score:
the AUC lost when an order's first K features are removed, 0 for the random orders' and 1
for the oracle's, K being the count at which the oracle has lost `TOP_SHARE` of its largest
loss. The area scores give every order credit for the whole curve: on the planted task of
two label-carrying features among 72, an order with them at ranks 5 and 7 scored 1.01 by
area and 0.02 at K = 2 (docs/results/xai-planted/planted.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from servable.errors import ServableError
from servable.explain import metrics as M
from servable.explain import uncertainty as U
from servable.study.xai.runs import PARAMS, Context, MethodRun

GRADIENT = ("saliency", "ig")  # captum's infidelity and max-sensitivity apply to these
CAPTUM_BATCH = 64  # IG's inputs through the network at a time there (jets x steps)
# the top of an order: as many features as the oracle needs to lose this share of its
# largest AUC loss (K); an order's top-K score is the AUC lost at K against the oracle's
TOP_SHARE = 0.9


def halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random split of n jets into the half that orders and the half that measures."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def _removed(order, step: int, insertion: bool) -> tuple[int, ...]:
    """The features replaced at a step of a deletion or insertion curve, as a sorted key."""
    order = list(order)
    return tuple(sorted(order[step:] if insertion else order[:step]))


def _scored(score, many, sets) -> dict[tuple, np.ndarray]:
    """The probabilities of each distinct set of removed features, each predicted once
    (every curve starts or ends with none or all features removed), all in one call of
    `many` where given."""
    distinct = list(dict.fromkeys(sets))
    probs = many([list(k) for k in distinct]) if many is not None else \
        [score(list(k)) for k in distinct]
    return {k: np.asarray(p, np.float64) for k, p in zip(distinct, probs, strict=True)}


def _auc(p: np.ndarray, y: np.ndarray, idx: np.ndarray) -> float:
    """The AUC of scores `p` on the jets at `idx`; NaN where they hold one class only."""
    yy = y[idx]
    return float("nan") if yy.all() or not yy.any() else U.auc(yy, p[idx])


def _area(probs: np.ndarray, fractions, y: np.ndarray, idx: np.ndarray) -> float:
    aucs = [_auc(p, y, idx) for p in probs]
    return M.curve_area(aucs, fractions) if np.isfinite(aucs[0]) else float("nan")


def _normalised(area: float, random: float, best: float) -> float:
    if not np.isfinite(area) or abs(best - random) < 1e-9:
        return float("nan")
    return float((area - random) / (best - random))


def feature_curves(score, n_features: int, y: np.ndarray, orders: dict[str, list[int]],
                   shared: set[str], s, many=None, oracle: list[int] | None = None) -> dict:
    """Deletion and insertion curves of each order, of `s.random_orders` random orders and of
    the greedy oracle, on the jets `score` predicts (the measuring half).

    Parameters
    ----------
    score : callable
        `score(removed) -> probabilities` of the measuring jets with features replaced.
    orders : dict
        Method -> feature order (most relevant first), computed on the other jets.
    shared : set of str
        The methods whose order was made with the curve's own replacement (masking).
    s : Settings
        `curve_points`, `random_orders`, `bootstraps`, `seed`.
    many : callable, optional
        `many(sets) -> [probabilities]`: `score` of several sets in one call (a batched
        prediction); every distinct set of the curves is scored once.
    oracle : list of int, optional
        The greedy order (`metrics.greedy_order`) found on other jets (`method_curves`: the
        half the methods' orders come from), so that the score's 1 is an order made as the
        methods' are, not one fitted to the measuring jets' noise; default: the greedy order
        on the measuring jets themselves.

    Returns
    -------
    dict
        `steps`, `curves` (per order, and `random`: the mean of the random orders' curves),
        `random_band` (per kind, the band of the random orders' areas), `scores` (per method
        and kind, the normalised score with its bootstrap interval: 0 the random orders'
        mean area, 1 the greedy oracle's area, both on the same jets of each resample;
        `shared_replacement`), `best_order` (per kind, the order with the best area on all
        the jets: the oracle or a method that beats it).
    """
    y = np.asarray(y, bool)
    if y.all() or not y.any():
        raise ServableError("the faithfulness curves need jets of the target class and of "
                            "others among the first jets: shuffle the data or use more jets")
    steps = M.curve_steps(n_features, s.curve_points, s.curve_fine)
    fractions = [k / max(n_features, 1) for k in steps]
    rng = np.random.default_rng(s.seed)
    if oracle is None:
        oracle = M.greedy_order(score, n_features, y, steps, many=many)
    every = {"oracle": list(oracle), **orders}
    randoms = [rng.permutation(n_features).tolist() for _ in range(s.random_orders)]
    kinds = ("deletion", "insertion")
    keys = {kind: {k: [_removed(o, st, kind == "insertion") for st in steps]
                   for k, o in [*every.items(), *enumerate(randoms)]} for kind in kinds}
    scored = _scored(score, many, [key for kind in kinds for ks in keys[kind].values()
                                   for key in ks])
    probs = {kind: {k: np.stack([scored[key] for key in keys[kind][k]]) for k in every}
             for kind in kinds}
    rprobs = {kind: [np.stack([scored[key] for key in keys[kind][i]])
                     for i in range(len(randoms))] for kind in kinds}
    n = len(y)
    everyone = np.arange(n)
    top = _top_step(probs["deletion"]["oracle"], y)
    # K = every feature: every order removes the same set there, no order can score
    measure_top = top is not None and steps[top] < n_features

    def at_top(p, idx):
        return _auc(p[top], y, idx)

    def scores_on(idx):
        # 1 is the oracle's area on the same jets: its order is fixed, so every method's
        # score varies over the resamples (a method's order may beat the greedy search: > 1)
        out = {}
        for kind in kinds:
            areas = {k: _area(p, fractions, y, idx) for k, p in probs[kind].items()}
            rand = float(np.mean([_area(p, fractions, y, idx) for p in rprobs[kind]]))
            out[kind] = {k: _normalised(a, rand, areas["oracle"]) for k, a in areas.items()
                         if k != "oracle"}
        if measure_top:  # the AUC left at the oracle's K, against random orders' at K
            rand = float(np.mean([at_top(p, idx) for p in rprobs["deletion"]]))
            best_k = at_top(probs["deletion"]["oracle"], idx)
            out["top"] = {k: _normalised(at_top(p, idx), rand, best_k)
                          for k, p in probs["deletion"].items() if k != "oracle"}
        return out

    full = scores_on(everyone)
    draws = [scores_on(idx) for idx in U.resample_indices(n, s.bootstraps, s.seed)]
    measured = [*kinds, *(["top"] if measure_top else [])]
    scores = {k: {kind: U.interval(full[kind][k], [d[kind][k] for d in draws])
                  for kind in measured} | {"shared_replacement": k in shared}
              for k in orders}
    curves = {}
    for k in every:
        curves[k] = {kind: _curve(probs[kind][k], fractions, y) for kind in probs}
    curves["random"] = {kind: _curve(np.mean(rprobs[kind], 0), fractions, y,
                                     aucs=np.mean([[U.auc(y, p) for p in r]
                                                   for r in rprobs[kind]], 0))
                        for kind in rprobs}
    band = {kind: U.band([_area(p, fractions, y, everyone) for p in rprobs[kind]])
            for kind in rprobs}
    best = {kind: pick(probs[kind], key=lambda k, kind=kind: _area(probs[kind][k], fractions,
                                                                   y, everyone))
            for kind, pick in (("deletion", min), ("insertion", max))}
    return {"n_jets": n, "steps": steps, "curves": curves, "scores": scores,
            "random_band": band, "best_order": best,
            "top_k": None if top is None else steps[top], "top_share": TOP_SHARE}


def _top_step(oracle_probs: np.ndarray, y: np.ndarray) -> int | None:
    """The first step of the curves at which the oracle's order has lost `TOP_SHARE` of the
    largest AUC loss its deletion curve reaches: its K most important features; None when
    removing features loses nothing."""
    aucs = np.array([U.auc(y, p) for p in oracle_probs])
    loss = aucs[0] - aucs
    if not loss.max() > 0:
        return None
    return int(np.flatnonzero(loss >= TOP_SHARE * loss.max())[0])


def _curve(probs: np.ndarray, fractions, y, aucs=None) -> dict:
    auc = [U.auc(y, p) for p in probs] if aucs is None else \
        [float(a) for a in aucs]
    prob = [float(np.mean(p[y])) for p in probs]
    return {"fraction": list(fractions), "auc": auc, "prob": prob,
            "auc_area": M.curve_area(auc, fractions), "prob_area": M.curve_area(prob, fractions)}


# the stages on a model -----------------------------------------------------------------
def _order(importance: np.ndarray) -> list[int]:
    return np.argsort(-importance, kind="stable").tolist()


def method_curves(ctx: Context, runs: dict[str, MethodRun], s) -> dict:
    """Deletion and insertion curves over the features (`feature_curves`): each
    method's order from its importance on one half of the first `s.faithfulness_jets` jets,
    its curve on the other half; methods without a per-jet statistic order on all jets
    (`order_on_all_jets`)."""
    reserved = {"random", "oracle"} & set(runs)  # the curves' own keys (the band, the oracle)
    if reserved:
        raise ServableError(f"a method run may not be named {', '.join(sorted(reserved))}: "
                            "the curves keep the random orders and the oracle under that name")
    n_sub = min(s.faithfulness_jets, len(ctx.jets))
    order_half, curve_half = halves(n_sub, s.seed)
    y = ctx.y[curve_half]
    orders, on_all = {}, []
    for k, r in runs.items():
        if not np.any(r.importance):
            continue
        imp = r.importance
        if r.statistic is not None and ctx.y[order_half].any() and not ctx.y[order_half].all():
            imp = np.asarray(r.statistic(order_half))
        else:
            on_all.append(k)
        orders[k] = _order(imp)

    def score(removed):
        return ctx.masked_prob(removed, curve_half)

    def many(sets):
        return ctx.masked_probs(sets, curve_half)

    # the oracle is searched on the ordering half, as every method's order is made there: on
    # the measuring jets the greedy search also fits their noise (an AUC pushed below 0.5 by
    # the choice of label-free features), which no order made elsewhere can match
    oracle = None
    if ctx.y[order_half].any() and not ctx.y[order_half].all():
        oracle = M.greedy_order(lambda removed: ctx.masked_prob(removed, order_half),
                                len(ctx.features), ctx.y[order_half],
                                M.curve_steps(len(ctx.features), s.curve_points,
                                              s.curve_fine),
                                many=lambda sets: ctx.masked_probs(sets, order_half))

    # masking's order shares the curve's operation when both replace alike
    shared = {k for k in orders if k == "masking"
              and PARAMS["masking"]["replacement"] == ctx.replacement}
    out = feature_curves(score, len(ctx.features), y, orders, shared, s, many=many,
                         oracle=oracle)
    out["order_on_all_jets"] = on_all
    out["oracle_on"] = "measuring half" if oracle is None else "ordering half"
    return out


def slot_curves(ctx: Context, runs: dict[str, MethodRun], s) -> dict:
    """Per jet, its most relevant slots (the jets' leading slotted group: CMS tracks, JetClass
    particles; the slots of `MethodRun.slot`) removed in each method's order, against a
    random order."""
    lead = ctx.jets.leading_slotted()
    key = lead.name if lead is not None and lead.name in ctx.inputs else None
    with_slots = {k: r for k, r in runs.items() if r.slot is not None}
    if key is None or not with_slots:
        return {}
    sub = np.arange(min(s.faithfulness_jets, len(ctx.jets)))
    inputs = {k: v[sub] for k, v in ctx.inputs.items()}
    y = ctx.y[sub]

    def predict(x):
        return ctx.prob({**inputs, key: x})

    x = inputs[key]
    out = {k: M.slot_deletion_curve(predict, x, r.slot[sub], y, s.slot_steps)
           for k, r in with_slots.items()}
    out["random"] = M.slot_deletion_curve(predict, x, np.zeros(x.shape[::2]), y, s.slot_steps,
                                          seed=s.seed)
    for k in with_slots:
        out[k]["auc_drop_vs_random"] = out["random"]["auc_area"] - out[k]["auc_area"]
    return {"input": key, "steps": s.slot_steps, "curves": out}


def captum_scores(ctx: Context, methods: Sequence[str], s) -> dict:
    """captum.metrics.infidelity (Gaussian perturbations of 0.1 standard deviations of the
    filled slots) and sensitivity_max (uniform noise of radius 0.02 on the filled slots) of
    the gradient methods, on the target's logit in the model's standardised input space
    (the model in eval mode with its parameters frozen, given back as it was)."""
    from servable.explain.modelstate import explaining

    with explaining(ctx.bundle.tagger.net):
        return _captum_scores(ctx, methods, s)


def _captum_scores(ctx: Context, methods: Sequence[str], s) -> dict:
    import torch
    from captum.attr import IntegratedGradients, Saliency
    from captum.metrics import infidelity, sensitivity_max

    tagger = ctx.bundle.tagger
    net = tagger.net
    sub = slice(0, min(s.captum_jets, len(ctx.jets)))
    names = tagger.input_spec().names
    with torch.no_grad():
        std, extra = net.standardize(*(torch.from_numpy(ctx.inputs[k][sub]) for k in names))
    std = tuple(t.detach() for t in std)
    gen = torch.Generator().manual_seed(s.seed)

    def forward(*args):  # the standardised inputs, then the fixed extras (e.g. ParT's mask)
        return net.core_forward(*args)

    def perturb(*xs):
        xs = xs[0] if len(xs) == 1 and isinstance(xs[0], tuple) else xs  # captum's calls vary
        noise = tuple(0.1 * torch.randn(x.shape, generator=gen)
                      * ((x != 0).any(1, keepdim=True) if x.ndim == 3 else 1.0) for x in xs)
        return noise, tuple(x - n for x, n in zip(xs, noise, strict=True))

    def nudge(xs, perturb_radius=0.02):
        """Uniform noise within the radius on the filled slots (padding stays padding)."""
        xs = xs if isinstance(xs, tuple) else (xs,)
        return tuple(x + (2 * torch.rand(x.shape, generator=gen) - 1) * perturb_radius
                     * ((x != 0).any(1, keepdim=True) if x.ndim == 3 else 1.0) for x in xs)

    out = {}
    for name in methods:
        if name not in GRADIENT:
            continue
        warnings.filterwarnings("ignore", "Input Tensor .* did not already require gradients")
        explainer = Saliency(forward) if name == "saliency" else IntegratedGradients(forward)
        # at most CAPTUM_BATCH inputs (IG: jets x steps) through the network at a time, and
        # one perturbation of the jets per batch of infidelity and max-sensitivity: all in
        # one batch, ParticleNet's EdgeConv activations (64 jets x 16 steps x 3) passed 20 GB
        kw = {"abs": False} if name == "saliency" else {"n_steps": 16,
                                                         "internal_batch_size": CAPTUM_BATCH}

        def explain(*xs, explainer=explainer, kw=kw, additional_forward_args=None):
            xs = xs[0] if len(xs) == 1 and isinstance(xs[0], tuple) else xs
            return explainer.attribute(tuple(xs), target=ctx.target,
                                       additional_forward_args=additional_forward_args, **kw)

        # captum repeats additional_forward_args with the inputs it perturbs
        more = tuple(extra) or None
        attributions = explain(*std, additional_forward_args=more)
        inf = infidelity(forward, perturb, std, attributions, additional_forward_args=more,
                         target=ctx.target, n_perturb_samples=4,
                         max_examples_per_batch=len(std[0]))
        sens = sensitivity_max(explain, std, perturb_func=nudge, perturb_radius=0.02,
                               n_perturb_samples=3, additional_forward_args=more,
                               max_examples_per_batch=len(std[0]))
        out[name] = {"infidelity": float(inf.mean()), "max_sensitivity": float(sens.mean()),
                     "n_jets": int(std[0].shape[0])}
    return out


