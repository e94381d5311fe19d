"""The explainability benchmark: do the methods agree, are they stable, are they faithful, do
they mean physics? (`servable xai-benchmark`.)

`benchmark(models, jets, settings)` runs every method of each model (a model: one bundle per
training seed, the first is the reference) and measures, with `servable.explain.metrics`:

1. agreement between every pair of methods (global rankings, top-k, signs, per jet), across
   models on their shared features, and TreeSHAP against XGBoost's native importances;
2. stability over bootstrap resamples of the jets (intervals, Kendall tau, top-5 sets) and
   over training seeds (a top-5 that changes between seeds is flagged);
3. faithfulness: deletion and insertion curves of features (against random orders and the
   greedy "oracle" order) and of each jet's most relevant slots, captum's infidelity and
   max-sensitivity for the gradient methods, and the cascading layer randomisation of
   Adebayo et al. (2018);
4. physics: per-jet relevance shares against observables, the AUC with which per-track
   relevance picks the tracks from b/c-hadron (or resonance) decays, linear probes;
5. correlated feature groups (|rho| > 0.8) with group-level importance, categorical features;
6. verdicts per method and the table "question -> method to use" per model.

The result is plain data (JSON-ready, see `servable/study/xai_benchmark.schema.json`);
`write_benchmark` writes report.md, report.html, results.json and the figures.
"""

from __future__ import annotations

import copy
import itertools
import numbers
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from servable.data.jets import Jets, filled_mask
from servable.errors import ServableError, check_int
from servable.explain import METHODS as METHOD_CLASSES
from servable.explain import Servable, method_class
from servable.explain import metrics as M
from servable.explain import uncertainty as U
from servable.explain.masking import masked, replacement_values
from servable.study.xai import baselines as B
from servable.study.xai import faithfulness as F
from servable.study.xai import verdicts as V
from servable.timing import StageTimer

SCHEMA = Path(__file__).with_name("xai_benchmark.schema.json")

# the methods each model kind runs by default, and the cheaper set of --quick
METHODS = {
    "bdt": ("shap", "masking", "lime"),
    "mlp": ("masking", "saliency", "ig", "shap", "lrp", "lime"),
    "in": ("masking", "saliency", "ig", "shap", "lrp", "lime"),
    "part": ("masking", "saliency", "ig", "shap", "attention"),
    "particlenet": ("masking", "saliency", "ig", "shap"),
}
QUICK_METHODS = {
    "bdt": ("shap", "masking"), "mlp": ("masking", "saliency", "ig", "lrp"),
    "in": ("masking", "saliency", "ig", "lrp"), "part": ("masking", "saliency", "attention"),
    "particlenet": ("masking", "saliency"),
}
# the benchmark's parameters of each method (cheaper than the defaults of a single run)
PARAMS = {"shap": {"nsamples": 10, "background": 30}, "ig": {"n_steps": 16},
          "lime": {"num_samples": 100}}
SIGNED = {"ig", "shap", "lrp", "lime"}  # methods whose attributions carry a sign
GRADIENT = ("saliency", "ig")  # captum's infidelity and max-sensitivity apply to these
RANDOMISED = ("saliency", "ig", "lrp", "shap", "masking")  # checked by layer randomisation
NATIVE = ("gain", "weight", "cover", "total_gain")  # XGBoost's own importances


@dataclass(frozen=True)
class Settings:
    """What the benchmark measures, and on how much."""

    n_jets: int = 2000
    bootstraps: int = 20
    methods: tuple[str, ...] | None = None  # default: METHODS (QUICK_METHODS with quick)
    target: int = 1
    quick: bool = False
    faithfulness_jets: int = 500
    curve_points: int = 11
    random_orders: int = 10
    slot_steps: int = 10
    captum_jets: int = 64
    randomisation_jets: int = 200
    correlation_threshold: float = 0.8
    seed: int = 0

    def __post_init__(self):
        """Refuse what `servable xai-benchmark` refuses, with the same one-line message (the
        CLI builds this object and prints its error)."""
        for name, minimum in COUNTS.items():
            check_int(getattr(self, name), name, minimum)
        check_int(self.target, "target", 0)
        check_int(self.seed, "seed", 0)
        if not isinstance(self.quick, bool):
            raise ServableError(f"quick must be True or False, not {self.quick!r}")
        c = self.correlation_threshold
        if isinstance(c, bool) or not isinstance(c, numbers.Real) or not 0 < c <= 1:
            raise ServableError(f"correlation_threshold must be a number in (0, 1], not {c!r}")
        if self.methods is not None:
            chosen = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
            unknown = [str(m) for m in chosen if m not in METHOD_CLASSES]
            if unknown or not chosen:
                raise ServableError(f"unknown methods {', '.join(unknown) or '(none given)'}; "
                                    f"choose from {', '.join(METHOD_CLASSES)}")
            object.__setattr__(self, "methods", chosen)


# the smallest value of each count of the Settings (n_jets, bootstraps: as the CLI declares)
COUNTS = {"n_jets": 20, "bootstraps": 2, "faithfulness_jets": 2, "curve_points": 2,
          "random_orders": 1, "slot_steps": 1, "captum_jets": 1, "randomisation_jets": 2}

QUICK = {"n_jets": 300, "bootstraps": 5, "quick": True, "faithfulness_jets": 300,
         "curve_points": 6, "random_orders": 10, "slot_steps": 5,
         "captum_jets": 16, "randomisation_jets": 60}


@dataclass
class MethodRun:
    """One method on one bundle: global importances, and per-jet arrays where it has them."""

    name: str
    importance: np.ndarray  # (features,) as the method aggregates
    per_jet: np.ndarray | None = None  # (jets, features) |attribution| summed over slots
    signed: np.ndarray | None = None  # (features,) mean signed attribution
    slot: np.ndarray | None = None  # (jets, slots) |attribution| of each slot
    statistic: object = None  # importance(indices), for the bootstrap
    seconds: float = 0.0
    group_totals: dict = field(default_factory=dict)  # input group -> mean total |relevance|
    resamples: np.ndarray | None = None  # the statistic on each bootstrap resample


@dataclass
class Context:
    """The model, its jets and inputs, and the masking machinery shared by the stages."""

    bundle: Servable
    jets: Jets
    target: int
    names: list[str] = field(init=False)
    features: list[tuple[str, int]] = field(init=False)
    inputs: dict = field(init=False)
    values: dict = field(init=False)
    y: np.ndarray = field(init=False)

    def __post_init__(self):
        spec = self.bundle.tagger.input_spec()
        self.features = [(g.name, i) for g in spec for i in range(len(g.features))]
        self.names = [spec[k].features[i] for k, i in self.features]
        self.inputs = self.bundle.tagger.inputs(self.jets)
        self.values = replacement_values(self.inputs, spec, "mean")
        self.y = self.jets.labels.argmax(1) == self.target

    def prob(self, inputs=None) -> np.ndarray:
        """The model's probability of the target class per jet, on `inputs` (default: the
        context's own)."""
        return self.bundle.tagger.predict_from_inputs(inputs or self.inputs)[:, self.target]

    def masked_prob(self, removed: Sequence[int], subset: np.ndarray | None = None
                    ) -> np.ndarray:
        """The target-class probability per jet with the features at indices `removed` (into
        `features`) set to their mean over the context's jets (filled slots only; padding stays
        zero); `subset` selects jets."""
        inputs = self.inputs if subset is None else {k: v[subset] for k, v in
                                                     self.inputs.items()}
        if not removed:
            return self.prob(inputs)
        return self.prob(masked(inputs, [self.features[i] for i in removed], self.values))


# methods ----------------------------------------------------------------------------------
def _columns(expl, names: list[str], jets: Jets) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """Per-jet |attribution| of each feature averaged over the jet's filled slots (so that a
    track feature gains nothing from the number of tracks), the signed sum over slots, and
    per input group the mean over jets of its total |attribution| (reported apart); None for
    a method without per-jet values."""
    cols, signed, totals = {}, {}, {}
    for fld, fnames in expl.feature_names.items():
        arr = getattr(expl, fld, None)
        if arr is None:
            continue
        a = np.asarray(arr, np.float64)
        if a.ndim == 3:
            source = jets.group(fld).values if jets.has(fld) else a
            width = min(source.shape[2], a.shape[2])
            filled = np.zeros(a.shape[::2], bool)
            filled[:, :width] = filled_mask(source)[:, :width]
            absolute = U.filled_mean(a, filled)
            totals[fld] = float(np.abs(a).sum((1, 2)).mean())
        else:
            absolute = np.abs(a)
            totals[fld] = float(absolute.sum(1).mean())
        total = a.sum(2) if a.ndim == 3 else a
        for j, n in enumerate(fnames):
            cols[n], signed[n] = absolute[:, j], total[:, j]
    if not all(n in cols for n in names):
        return None
    return (np.stack([cols[n] for n in names], 1), np.stack([signed[n] for n in names], 1),
            totals)


def run_method(ctx: Context, name: str, bundle: Servable | None = None) -> MethodRun:
    """Run one method (on `bundle`, default the context's) with the benchmark's parameters."""
    b = bundle or ctx.bundle
    t0 = time.perf_counter()
    if name == "masking":
        return _masking(ctx, b, t0)
    expl = method_class(name)(b).attribute(ctx.jets, target=ctx.target, **PARAMS.get(name, {}))
    if name == "attention":  # per slot only: no feature ranking
        return MethodRun(name, np.zeros(len(ctx.names)),
                         slot=np.asarray(expl.extras["slot_relevance"], np.float64),
                         seconds=time.perf_counter() - t0)
    slotted = expl.slotted()
    slot = np.abs(np.asarray(slotted, np.float64)).sum(1) if slotted is not None else None
    per_jet, signed, totals = _columns(expl, ctx.names, ctx.jets) or (None, None, {})
    importance = per_jet.mean(0) if per_jet is not None else np.array(
        [expl.feature_relevance.get(n, 0.0) for n in ctx.names])
    return MethodRun(
        name, importance, per_jet=per_jet, slot=slot, group_totals=totals,
        signed=signed.mean(0) if signed is not None and name in SIGNED else None,
        statistic=M.mean_over_jets(per_jet) if per_jet is not None else None,
        seconds=time.perf_counter() - t0)


def _masking(ctx: Context, bundle: Servable, t0: float) -> MethodRun:
    """Masking (population mean) with its masked scores kept, so that the AUC loss can be
    recomputed on bootstrap resamples without predicting again."""
    other = Context(bundle, ctx.jets, ctx.target) if bundle is not ctx.bundle else ctx
    base = other.prob()
    scores = np.stack([other.masked_prob([i]) for i in range(len(other.features))])
    y = other.y

    def statistic(idx):
        yy = y[idx]
        if yy.all() or not yy.any():
            return np.zeros(len(scores))
        auc0 = roc_auc_score(yy, base[idx])
        return np.array([auc0 - roc_auc_score(yy, s[idx]) for s in scores])

    return MethodRun("masking", statistic(np.arange(len(y))), statistic=statistic,
                     seconds=time.perf_counter() - t0)


def native_importances(bundle: Servable, names: list[str]) -> dict[str, np.ndarray]:
    """XGBoost's gain, weight, cover and total_gain importances of a BDT."""
    return {k: np.array([bundle.tagger.native_importance(k).get(n, 0.0) for n in names])
            for k in NATIVE}


# 1. agreement -----------------------------------------------------------------------------
def agreement(runs: dict[str, MethodRun], native: dict[str, np.ndarray] | None = None) -> dict:
    """Every pair of methods with a feature ranking: rank agreement, and per-jet agreement
    where both have per-jet values; a BDT's TreeSHAP also against its native importances."""
    ranked = {k: r for k, r in runs.items() if np.any(r.importance)}
    pairs = []
    for a, b in itertools.combinations(ranked, 2):
        ra, rb = ranked[a], ranked[b]
        signed = ra.signed is not None and rb.signed is not None
        row = {"a": a, "b": b, **M.rank_agreement(ra.importance, rb.importance)}
        if signed:
            row["sign_agreement"] = M.rank_agreement(ra.signed, rb.signed,
                                                     signed=True)["sign_agreement"]
        if ra.per_jet is not None and rb.per_jet is not None:
            row["per_jet"] = M.per_jet_agreement(ra.per_jet, rb.per_jet)
        pairs.append(row)
    out = {"methods": list(ranked), "pairs": pairs}
    if native and "shap" in runs:
        out["tree_shap_vs_native"] = {k: M.rank_agreement(runs["shap"].importance, v)
                                      for k, v in native.items()}
    return out


def cross_model(results: dict) -> list[dict]:
    """The same method on two models, on the features both read."""
    rows = []
    for (ma, ra), (mb, rb) in itertools.combinations(results.items(), 2):
        shared = [n for n in ra["features"] if n in set(rb["features"])]
        if len(shared) < 3:
            continue
        for method in sorted(set(ra["importance"]) & set(rb["importance"])):
            ia = dict(zip(ra["features"], ra["importance"][method], strict=True))
            ib = dict(zip(rb["features"], rb["importance"][method], strict=True))
            va, vb = [ia[n] for n in shared], [ib[n] for n in shared]
            if np.ptp(va) == 0 or np.ptp(vb) == 0:
                continue
            rows.append({"a": ma, "b": mb, "method": method, "n_shared": len(shared),
                         **M.rank_agreement(va, vb)})
    return rows


# 2. stability -----------------------------------------------------------------------------
def bootstrap_stability(runs: dict[str, MethodRun], n_jets: int, s: Settings) -> dict:
    """Per method with a bootstrap statistic: its importances with standard error and 95%
    percentile interval over `s.bootstraps` resamples of the jets, and the stability of its
    ranking over the resamples (`ranking_stability`: mean Kendall tau, top-5 agreement)."""
    out = {}
    for name, r in runs.items():
        if r.statistic is None:
            continue
        b = M.bootstrap_importance(r.statistic, n_jets, s.bootstraps, seed=s.seed)
        r.resamples = b["resamples"]
        out[name] = {k: b[k] for k in ("value", "std", "low", "high")}
        out[name].update(M.ranking_stability(b["resamples"]))
        out[name]["kendall"] = U.pair_stability(b["resamples"])["kendall"]
    return out


def mean_spearman(runs: dict[str, MethodRun]) -> dict:
    """Per method, its mean Spearman rho with the other ranked methods, with the interval
    over the bootstrap resamples (the same resamples of the jets for every method, so the
    pairs are compared resample by resample); no interval where a side has no resamples."""
    ranked = {k: r for k, r in runs.items() if np.any(r.importance)}
    out = {}
    for m, r in ranked.items():
        others = [o for o in ranked if o != m]
        if not others:
            continue
        value = np.nanmean([M.rank_agreement(r.importance, ranked[o].importance)["spearman"]
                            for o in others])
        draws = []
        if r.resamples is not None and all(ranked[o].resamples is not None for o in others):
            for i in range(len(r.resamples)):
                rhos = [M._correlation(stats.spearmanr, r.resamples[i], ranked[o].resamples[i])
                        for o in others]
                draws.append(np.nanmean(rhos) if np.isfinite(rhos).any() else np.nan)
        out[m] = U.interval(float(value), draws)
    return out


def seed_stability(per_seed: list[dict[str, MethodRun]],
                   groups: Sequence[Sequence[int]] = ()) -> dict:
    """Per method, how its ranking of the features changes between training seeds: Kendall
    tau and top-5 overlap over the pairs of seeds (each a band), the same Kendall tau with
    each correlated group collapsed to one entry (`group_kendall`: what correlated features
    cannot scramble), the legacy share of pairs with the same top 5 and `flagged` when any
    pair differs; methods run on fewer than 2 seeds, or with all-zero importances on the
    first (reference) seed, are left out."""
    out = {}
    for name in per_seed[0]:
        imps = [runs[name].importance for runs in per_seed if name in runs]
        if len(imps) < 2 or not np.any(imps[0]):
            continue
        x = np.stack(imps)
        st = M.ranking_stability(x)
        st["flagged"] = st.pop("top5_changed")
        st.update(U.pair_stability(x))
        st["group_kendall"] = U.pair_stability(np.stack(
            [U.group_importance(i, groups) for i in x]))["kendall"] if groups else st["kendall"]
        out[name] = st
    return out


def feature_groups(ctx: Context, s: Settings) -> list[list[int]]:
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


# 3. faithfulness --------------------------------------------------------------------------
def _order(importance: np.ndarray) -> list[int]:
    return np.argsort(-importance, kind="stable").tolist()


def feature_curves(ctx: Context, runs: dict[str, MethodRun], s: Settings) -> dict:
    """Deletion and insertion curves over the features (`study.xai.faithfulness`): each
    method's order from its importance on one half of the first `s.faithfulness_jets` jets,
    its curve on the other half; methods without a per-jet statistic order on all jets
    (`order_on_all_jets`)."""
    n_sub = min(s.faithfulness_jets, len(ctx.jets))
    order_half, curve_half = F.halves(n_sub, s.seed)
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

    out = F.feature_curves(score, len(ctx.features), y, orders,
                           {k for k in orders if k == "masking"}, s)
    out["order_on_all_jets"] = on_all
    return out


def slot_curves(ctx: Context, runs: dict[str, MethodRun], s: Settings) -> dict:
    """Per jet, its most relevant slots (tracks, particles) removed in each method's order,
    against a random order."""
    key = next((g.name for g in ctx.bundle.tagger.input_spec() if g.slots is not None
                and g.field == "tracks"), None)
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


def captum_scores(ctx: Context, methods: Sequence[str], s: Settings) -> dict:
    """captum.metrics.infidelity (Gaussian perturbations of 0.1 standard deviations of the
    filled slots) and sensitivity_max (uniform noise of radius 0.02 on the filled slots) of
    the gradient methods, on the target's logit in the model's standardised input space
    (the model in eval mode with its parameters frozen, given back as it was)."""
    from servable.explain.modelstate import explaining

    with explaining(ctx.bundle.tagger.net):
        return _captum_scores(ctx, methods, s)


def _captum_scores(ctx: Context, methods: Sequence[str], s: Settings) -> dict:
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
        kw = {"abs": False} if name == "saliency" else {"n_steps": 16}

        def explain(*xs, explainer=explainer, kw=kw, additional_forward_args=None):
            xs = xs[0] if len(xs) == 1 and isinstance(xs[0], tuple) else xs
            return explainer.attribute(tuple(xs), target=ctx.target,
                                       additional_forward_args=additional_forward_args, **kw)

        # captum repeats additional_forward_args with the inputs it perturbs
        more = tuple(extra) or None
        attributions = explain(*std, additional_forward_args=more)
        inf = infidelity(forward, perturb, std, attributions, additional_forward_args=more,
                         target=ctx.target, n_perturb_samples=4)
        sens = sensitivity_max(explain, std, perturb_func=nudge, perturb_radius=0.02,
                               n_perturb_samples=3, additional_forward_args=more)
        out[name] = {"infidelity": float(inf.mean()), "max_sensitivity": float(sens.mean()),
                     "n_jets": int(std[0].shape[0])}
    return out


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


def explanation_array(run: MethodRun) -> np.ndarray:
    """What the randomisation check compares: the per-jet attributions, else the global
    importances."""
    return run.per_jet if run.per_jet is not None else run.importance


def randomisation_check(bundle: Servable, explain, steps=None,
                        threshold: float = 0.5, seed: int = 0,
                        others: Sequence[Servable] = (), n_resamples: int = 20) -> dict:
    """Cascading randomisation (Adebayo et al. 2018): re-draw the layers top down and measure
    how similar the explanation stays (Spearman of the per-jet attributions), against the
    similarity of the same method on independently trained seeds of the model.

    Parameters
    ----------
    explain : callable
        `explain(bundle) -> numpy.ndarray`, the explanation of fixed jets by that bundle.
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
        explanation has no ranking: it fails), `threshold` (what `final` must stay below)
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
        sims.append(M.explanation_similarity(original, last))
    degenerate = U.degenerate(original)
    if original.ndim == 2:
        final = U.mean_interval(U.per_jet_similarity(original, last), n_resamples, seed)
    else:
        final = U.interval(sims[-1], [])
    scale = None
    if others:
        if original.ndim == 2:
            scale = U.mean_interval(np.concatenate(
                [U.per_jet_similarity(original, explain(o)) for o in others]), n_resamples,
                seed)
        else:
            scale = U.interval(float(np.mean([M.explanation_similarity(original, explain(o))
                                              for o in others])), [])
    if scale is not None and np.isfinite(scale["value"]):
        threshold = scale["value"]
    v = verdict(float("nan") if degenerate else final["value"], final["low"], final["high"],
                threshold, higher=False)
    return {"layers": n, "layers_randomised": steps, "similarity": sims, "final": final,
            "seed_similarity": scale, "degenerate": degenerate, "threshold": threshold,
            "passed": v["status"] == PASSES}


# 4. physics -------------------------------------------------------------------------------
def _jet_value(jets: Jets, *names: str) -> np.ndarray | None:
    """The first of `names` that the jets carry, as a spectator or a jet feature."""
    from servable.data.schema import SPECTATOR_NAMES

    for n in names:
        if jets.spectators is not None and n in SPECTATOR_NAMES:
            return jets.spectator(n).astype(float)
        if jets.jet_features is not None and n in jets.jet_feature_names:
            return jets.jet_features[:, jets.jet_feature_names.index(n)].astype(float)
    return None


def observables(jets: Jets) -> dict[str, np.ndarray]:
    """Per-jet physics observables the relevance is compared with (those the layout has)."""
    out = {}
    for label, names in {"soft-drop mass": ("fj_sdmass", "jet_sdmass"),
                         "jet pT": ("fj_pt", "jet_pt"), "tau21": ("fj_tau21",),
                         "tau32": ("fj_tau32",)}.items():
        v = _jet_value(jets, *names)
        if v is not None:
            out[label] = v
    taus = [_jet_value(jets, f"jet_tau{i}") for i in (1, 2, 3)]
    if all(t is not None for t in taus):
        with np.errstate(divide="ignore", invalid="ignore"):
            out["tau21"] = np.where(taus[0] > 0, taus[1] / taus[0], np.nan)
            out["tau32"] = np.where(taus[1] > 0, taus[2] / taus[1], np.nan)
    if jets.has("vertices"):
        out["number of SVs"] = jets.n_vertices.astype(float)
    if jets.has("tracks") and "trackBTag_Sip2dSig" in jets.track_names:
        sig = jets.tracks[:, jets.track_names.index("trackBTag_Sip2dSig")]
        out["leading IP significance"] = np.where(filled_mask(jets.tracks), sig,
                                                  -np.inf).max(1)
    if "n_b_hadrons" in jets.extras:
        out["number of b hadrons"] = jets.extras["n_b_hadrons"].astype(float)
    return out


def _aggregates(ctx: Context, run: MethodRun) -> dict[str, np.ndarray]:
    """Per-jet shares of a method's relevance: on SV features, on displaced tracks
    (2D IP significance > 3), on the 3 leading slots."""
    def share(part, whole):
        return part / np.where(whole > 0, whole, 1.0)

    out = {}
    sv = [i for i, (k, _) in enumerate(ctx.features) if k == "vertices"]
    if run.per_jet is not None and sv:
        out["share on SV features"] = share(run.per_jet[:, sv].sum(1), run.per_jet.sum(1))
    if run.slot is not None:
        slot_total = run.slot.sum(1)
        out["share on the 3 leading slots"] = share(run.slot[:, :3].sum(1), slot_total)
        jets = ctx.jets
        if jets.has("tracks") and "trackBTag_Sip2dSig" in jets.track_names:
            sig = jets.tracks[:, jets.track_names.index("trackBTag_Sip2dSig")]
            displaced = (np.abs(sig) > 3) & filled_mask(jets.tracks)
            width = min(displaced.shape[1], run.slot.shape[1])
            out["share on displaced tracks"] = share(
                (run.slot[:, :width] * displaced[:, :width]).sum(1), slot_total)
    return out


def truth_of_slots(jets: Jets) -> tuple[np.ndarray, str] | None:
    """Per slot: from the decay we want to see (b/c-hadron decay for CMS tracks; the
    resonance's decay products for JetClass particles)."""
    if "track_origin" in jets.extras:
        origin = np.asarray(jets.extras["track_origin"])
        return np.isin(origin, (1, 2)), "track from a b- or c-hadron decay"
    if "part_truth_decay_product" in jets.extras:
        return np.asarray(jets.extras["part_truth_decay_product"]) >= 0, \
            "particle from a decay product of the resonance"
    return None


def physics(ctx: Context, runs: dict[str, MethodRun], s: Settings) -> dict:
    """Whether each method's relevance means physics, beside what needs no model.

    Returns
    -------
    dict
        `associations`: Spearman rho and mutual information between each per-jet relevance
        share (on SV features, displaced tracks, the 3 leading slots) and each observable,
        with the rho of the uniform explanation (`null_spearman`: equal relevance on every
        filled slot and feature) and `exceeds_null`; `truth_auc`: per method with per-slot
        relevance, the pooled AUC with which it picks the slots from the decay we want to
        see, among the filled slots of target-class jets, with a bootstrap interval over
        jets; `truth_auc_per_jet`: the distribution over jets of the within-jet AUC;
        `baselines`: the same two numbers for each model-free score
        (`study.xai.baselines`), `best_baseline` the highest pooled one; `truth`: what that
        truth is (None for jets without truth); `probes_r2`: the linear probes' R^2 per
        observable and stage, for models the probes apply to.
    """
    obs = observables(ctx.jets)
    truth = truth_of_slots(ctx.jets)
    lead = ctx.jets.leading_slotted()
    filled_all = filled_mask(lead.values) if lead is not None else None
    per_shape = (len(ctx.jets), len(ctx.names))
    per_jet0, slot0 = B.uniform_explanation(per_shape, filled_all)
    null = MethodRun("uniform", np.ones(len(ctx.names)), per_jet=per_jet0, slot=slot0)
    null_values = _aggregates(ctx, null)
    assoc = []
    for name, run in runs.items():
        for agg, values in _aggregates(ctx, run).items():
            for o, ov in obs.items():
                row = M.physics_association(values, ov, seed=s.seed)
                nv = null_values.get(agg)
                rho0 = M.physics_association(nv, ov, seed=s.seed)["spearman"] \
                    if nv is not None else float("nan")
                row["null_spearman"] = rho0
                row["exceeds_null"] = bool(np.isfinite(row["spearman"]) and (
                    not np.isfinite(rho0) or abs(row["spearman"]) > abs(rho0) + 0.1))
                assoc.append({"method": name, "aggregate": agg, "observable": o, **row})
    out = {"associations": assoc, "truth_auc": {}, "truth_auc_per_jet": {}, "baselines": {},
           "best_baseline": None, "truth": truth[1] if truth is not None else None}
    if truth is not None and filled_all is not None:
        t = truth[0]

        def measure(rel):
            width = min(t.shape[1], rel.shape[1])
            filled = filled_all[:, :width] & ctx.y[:, None]
            jets = np.flatnonzero(ctx.y)
            pooled = U.bootstrap_scalar(
                lambda idx: U.pooled_truth_auc(rel[:, :width], t[:, :width], filled, jets[idx]),
                len(jets), s.bootstraps, seed=s.seed)
            per_jet = U.truth_auc_per_jet(rel[:, :width], t[:, :width], filled)
            per_jet.pop("values")
            return pooled, per_jet

        for name, run in runs.items():
            if run.slot is not None:
                out["truth_auc"][name], out["truth_auc_per_jet"][name] = measure(run.slot)
        for name, score in B.model_free_scores(ctx.jets).items():
            pooled, per_jet = measure(score)
            out["baselines"][name] = {"pooled": pooled, "per_jet": per_jet}
        finite = {k: v["pooled"]["value"] for k, v in out["baselines"].items()
                  if np.isfinite(v["pooled"]["value"])}
        if finite:
            best = max(finite, key=finite.get)
            out["best_baseline"] = {"name": best, "value": finite[best]}
    if ctx.bundle.kind in method_class("probes").applies_to:
        expl = method_class("probes")(ctx.bundle).attribute(ctx.jets, target=ctx.target)
        out["probes_r2"] = expl.extras["r2"]
    return out


# 5. correlated features -------------------------------------------------------------------
def correlated(ctx: Context, runs: dict[str, MethodRun], s: Settings) -> dict:
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


# 6. verdicts: study/xai/verdicts.py (three-valued, against the baselines measured above)
verdicts = V.verdicts


# the whole benchmark ----------------------------------------------------------------------
def methods_for(kind: str, s: Settings) -> list[str]:
    """The methods the benchmark runs on a model kind: `s.methods` where given (those that apply
    to the kind, in their order), else the kind's defaults (the cheaper set with `s.quick`)."""
    default = (QUICK_METHODS if s.quick else METHODS)[kind]
    if s.methods is None:
        return list(default)
    return [m for m in s.methods if kind in method_class(m).applies_to]


def benchmark(models: dict[str, list[Servable]], jets: Jets, s: Settings,
              progress: bool = True) -> dict:
    """Measure every model (label -> its bundles, one per training seed) on labelled jets."""
    from tqdm import tqdm

    if jets.labels is None:
        raise ServableError("the benchmark measures AUCs: it needs labelled jets")
    jets = jets[: s.n_jets]
    classes = list(jets.class_names)
    if not 0 <= s.target < len(classes):
        raise ServableError(f"target {s.target} out of range: the data has classes "
                            f"{', '.join(f'{i} = {c}' for i, c in enumerate(classes))}")
    present = np.bincount(jets.labels.argmax(1), minlength=len(classes))
    if present[s.target] == 0 or present[s.target] == len(jets):
        raise ServableError(f"the benchmark needs jets of class {classes[s.target]} and of "
                            "others in the first jets of the data")
    stages = StageTimer()
    t_start = time.perf_counter()
    results = {}
    total = sum(len(methods_for(b[0].kind, s)) * len(b) for b in models.values())
    bar = tqdm(total=total + 5 * len(models), desc="xai-benchmark", disable=not progress,
               unit="step")
    for label, bundles in models.items():
        ref = bundles[0]
        methods = methods_for(ref.kind, s)
        ctx = Context(ref, jets, s.target)
        per_seed = []
        for b in bundles:
            runs = {}
            for m in methods:
                bar.set_postfix_str(f"{label}: {m}" + (f" (seed {len(per_seed)})"
                                                        if per_seed else ""))
                runs[m] = stages.run("methods", run_method, ctx, m, b)
                bar.update()
            per_seed.append(runs)
        runs = per_seed[0]
        native = native_importances(ref, ctx.names) if ref.kind == "bdt" else None
        model = {"kind": ref.kind, "bundles": [b.name for b in bundles],
                 "features": ctx.names,
                 "importance": {m: r.importance.tolist() for m, r in runs.items()
                                if np.any(r.importance)},
                 "native_importance": {k: v.tolist() for k, v in (native or {}).items()},
                 "per_jet": {m: r.per_jet is not None for m, r in runs.items()},
                 "seconds_per_method": {m: r.seconds for m, r in runs.items()}}
        bar.set_postfix_str(f"{label}: agreement, stability")
        model["agreement"] = stages.run("agreement", agreement, runs, native)
        groups = stages.run("correlated", feature_groups, ctx, s)
        model["stability"] = {
            "bootstrap": stages.run("stability", bootstrap_stability, runs, len(jets), s),
            "seeds": stages.run("stability", seed_stability, per_seed, groups)
            if len(per_seed) > 1 else {}, "n_seeds": len(per_seed)}
        model["agreement"]["mean_spearman"] = mean_spearman(runs)
        model["group_totals"] = {m: r.group_totals for m, r in runs.items() if r.group_totals}
        bar.update()
        bar.set_postfix_str(f"{label}: faithfulness")
        faith = {"features": stages.run("faithfulness", feature_curves, ctx, runs, s),
                 "slots": stages.run("faithfulness", slot_curves, ctx, runs, s)}
        bar.update()
        if ref.kind != "bdt":
            faith["captum"] = stages.run("faithfulness", captum_scores, ctx, methods, s)
            faith["randomisation"] = stages.run("randomisation", _randomise_all, ctx, methods,
                                                s, bundles[1:])
        else:
            faith["captum"], faith["randomisation"] = {}, {}
        model["faithfulness"] = faith
        bar.update()
        bar.set_postfix_str(f"{label}: physics")
        model["physics"] = stages.run("physics", physics, ctx, runs, s)
        model["correlated"] = stages.run("correlated", correlated, ctx, runs, s)
        bar.update()
        model["verdicts"] = verdicts(model)
        bar.update()
        results[label] = model
    bar.close()
    return {"settings": asdict(s), "n_jets": len(jets), "classes": classes,
            "target": classes[s.target], "models": results,
            "cross_model": stages.run("agreement", cross_model, results),
            "seconds": {**stages.seconds, "total": time.perf_counter() - t_start}}


def _randomise_all(ctx: Context, methods: Sequence[str], s: Settings,
                   others: Sequence[Servable] = ()) -> dict:
    sub = ctx.jets[: s.randomisation_jets]
    small = Context(ctx.bundle, sub, ctx.target)
    if small.y.all() or not small.y.any():
        small = ctx
    out = {}
    for m in methods:
        if m not in RANDOMISED:
            continue
        out[m] = randomisation_check(
            ctx.bundle, lambda b, m=m: explanation_array(run_method(small, m, b)), seed=s.seed,
            others=others, n_resamples=s.bootstraps)
    return out


def check_models(bundles: Sequence[Servable]) -> dict[str, list[Servable]]:
    """Bundles grouped into models: bundles of one kind with the same inputs are seeds of
    one model (labelled by kind, with a suffix when a kind has several input sets)."""
    models: dict[str, list[Servable]] = {}
    inputs: dict[str, object] = {}
    for b in bundles:
        key = b.kind
        spec = b.manifest["inputs"]
        n = 2
        while key in inputs and inputs[key] != spec:
            key = f"{b.kind}-{n}"
            n += 1
        inputs.setdefault(key, spec)
        models.setdefault(key, []).append(b)
    return models


def train_more_seeds(bundles: list[Servable], k: int, out: Path, epochs: int | None = None,
                     force: bool = False, progress: bool = True) -> list[Servable]:
    """The model's bundles completed to `k` training seeds: the first bundle's recorded
    training configuration on its recorded files, with seeds after the recorded one."""
    import dataclasses as dc

    from servable.bundle.bundle import open_bundle
    from servable.bundle.train import train_seeds
    from servable.models.training import TrainConfig
    from servable.study.ablation import recorded_training

    ref = bundles[0]
    config, files = recorded_training(ref)
    if not files:
        raise ServableError(f"{ref.name} records no training files that are still there "
                            "unchanged: train the seeds yourself and give them with --seeds")
    known = {f.name for f in dc.fields(TrainConfig)}
    base = {key: v for key, v in config.items() if key in known}
    first = int(base.get("seed", 0))
    seeds = list(range(first + 1, first + 1 + max(k - len(bundles), 0)))
    cfg = TrainConfig(**{**base, **({"epochs": epochs} if epochs else {})})
    trained = train_seeds(files, cfg, seeds, [out / f"seed{s}" for s in seeds], force=force,
                          progress=progress)
    return [*bundles, *(open_bundle(path, cls=Servable) for path, _ in trained)]
