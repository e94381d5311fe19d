"""What every stage of the explainability benchmark reads: a model's jets and inputs
(`Context`, with the masking machinery the curves share) and each method's result on them
(`MethodRun`), made from the method's `Explanation` by `run_method`.

Every method, masking and attention included, runs through `Method.attribute`; a stage reads
the `Explanation`'s per-jet relevance (per feature, averaged over filled slots; per slot),
masking's per-jet masked scores (`extras["masked_scores"]`, so that its AUC loss is
recomputed on bootstrap resamples without predicting again) and the per-jet slot relevance
of the methods that have no feature ranking (`extras["slot_relevance"]`: attention,
ParticleNet's edges).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from servable.data.jets import Jets, filled_mask
from servable.explain import Servable, method_class
from servable.explain import metrics as M
from servable.explain import uncertainty as U
from servable.explain.masking import (
    auc_loss,
    predict_masked,
    replacement_values,
    subset_values,
)

# the benchmark's parameters of each method (cheaper than the defaults of a single run);
# masking without cumulative thresholds: the benchmark reads its single-feature losses only
PARAMS = {"shap": {"nsamples": 10, "background": 30}, "ig": {"n_steps": 16},
          "lime": {"num_samples": 100}, "masking": {"thresholds": (), "replacement": "mean"}}
SIGNED = {"ig", "shap", "lrp", "lime"}  # methods whose attributions carry a sign
NATIVE = ("gain", "weight", "cover", "total_gain")  # XGBoost's own importances


@dataclass
class MethodRun:
    """One method on one bundle: global importances, and per-jet arrays where it has them."""

    name: str
    importance: np.ndarray  # (features,) as the method aggregates
    per_jet: np.ndarray | None = None  # (jets, features) |attribution| over filled slots
    signed: np.ndarray | None = None  # (features,) mean signed attribution
    slot: np.ndarray | None = None  # (jets, slots) |attribution| of each slot
    statistic: object = None  # importance(indices), for the bootstrap
    seconds: float = 0.0
    group_totals: dict = field(default_factory=dict)  # input group -> mean total |relevance|
    resamples: np.ndarray | None = None  # the statistic on each bootstrap resample
    n_jets: int = 0  # the jets the statistic resamples


@dataclass
class Context:
    """The model, its jets and inputs, and the masking machinery shared by the stages: a
    removed feature takes `replacement` (`masking.replacement_values`; `marginal` by default:
    each filled slot a draw from the feature's own values over the context's jets, so that
    removing a feature that carries nothing costs nothing, where the mean would move every jet
    off the data). `memo` keeps every class's probabilities of each masked set it predicted
    (key: the jets, the removed features); one memo passed to the contexts of one model and
    jets for several target classes predicts each set once for all of them."""

    bundle: Servable
    jets: Jets
    target: int
    replacement: str = "marginal"
    seed: int = 0
    memo: dict = field(default_factory=dict)
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
        self.values = replacement_values(self.inputs, spec, self.replacement, self.seed)
        self.y = self.jets.labels.argmax(1) == self.target

    def _subset(self, subset: np.ndarray | None) -> tuple[dict, dict]:
        """The inputs and replacement values of the jets at `subset` (default: all)."""
        if subset is None:
            return self.inputs, self.values
        return {k: v[subset] for k, v in self.inputs.items()}, subset_values(self.values,
                                                                             subset)

    def prob(self, inputs=None) -> np.ndarray:
        """The model's probability of the target class per jet, on `inputs` (default: the
        context's own)."""
        return self.bundle.tagger.predict_from_inputs(inputs or self.inputs)[:, self.target]

    def masked_prob(self, removed: Sequence[int], subset: np.ndarray | None = None
                    ) -> np.ndarray:
        """The target-class probability per jet with the features at indices `removed` (into
        `features`) replaced (`replacement`; filled slots only, padding stays zero); `subset`
        selects jets."""
        return self.masked_probs([removed], subset)[0]

    def masked_probs(self, sets: Sequence[Sequence[int]], subset: np.ndarray | None = None
                     ) -> list[np.ndarray]:
        """`masked_prob` of each set of removed features: the sets not in `memo` predicted
        together (`masking.predict_masked`: the jets a mask leaves unchanged keep the
        unmasked probabilities)."""
        where = (self.replacement, self.seed,
                 None if subset is None else np.asarray(subset).tobytes())
        keys = [(*where, tuple(sorted(int(i) for i in c))) for c in sets]
        todo = [k for k in dict.fromkeys(keys) if k not in self.memo]
        if todo:
            inputs, values = self._subset(subset)
            none = (*where, ())
            if none not in self.memo:
                self.memo[none] = self.bundle.tagger.predict_from_inputs(inputs)
            fresh = [k for k in todo if k[-1]]
            probs = predict_masked(self.bundle.tagger, inputs,
                                   [[self.features[i] for i in k[-1]] for k in fresh], values,
                                   None, self.memo[none])
            self.memo.update(zip(fresh, probs, strict=True))
        return [self.memo[k][:, self.target] for k in keys]


def explanation_columns(expl, names: list[str], jets: Jets
                        ) -> tuple[np.ndarray, np.ndarray, dict] | None:
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
    """Run one method (on `bundle`, default the context's) with the benchmark's parameters,
    through its `Method.attribute`, and read what the stages need from the Explanation."""
    b = bundle or ctx.bundle
    t0 = time.perf_counter()
    expl = method_class(name)(b).attribute(ctx.jets, target=ctx.target, **PARAMS.get(name, {}))
    return from_explanation(expl, ctx, time.perf_counter() - t0)


def from_explanation(expl, ctx: Context, seconds: float = 0.0) -> MethodRun:
    """The MethodRun of an Explanation of the context's jets."""
    n = len(ctx.jets)
    if expl.method == "masking":  # the AUC loss, recomputed from the stored masked scores
        # masked_scores follow Method.features(): the context's feature order
        base, scores = np.asarray(expl.output), np.asarray(expl.extras["masked_scores"])

        def statistic(idx):
            return auc_loss(ctx.y, base, scores, idx)

        return MethodRun("masking", statistic(np.arange(n)), statistic=statistic,
                         seconds=seconds, n_jets=n)
    if "slot_relevance" in expl.extras:  # per slot only (attention, ParticleNet's edges):
        # no feature ranking; a slot's relevance is its magnitude (edges' sum is signed)
        return MethodRun(expl.method, np.zeros(len(ctx.names)),
                         slot=np.abs(np.asarray(expl.extras["slot_relevance"], np.float64)),
                         seconds=seconds, n_jets=n)
    slotted = expl.slotted()
    slot = np.abs(np.asarray(slotted, np.float64)).sum(1) if slotted is not None else None
    per_jet, signed, totals = explanation_columns(expl, ctx.names, ctx.jets) or (None, None, {})
    importance = per_jet.mean(0) if per_jet is not None else np.array(
        [expl.feature_relevance.get(c, 0.0) for c in ctx.names])
    return MethodRun(
        expl.method, importance, per_jet=per_jet, slot=slot, group_totals=totals,
        signed=signed.mean(0) if signed is not None and expl.method in SIGNED else None,
        statistic=M.mean_over_jets(per_jet) if per_jet is not None else None,
        seconds=seconds, n_jets=n)


def native_importances(bundle: Servable, names: list[str]) -> dict[str, np.ndarray]:
    """XGBoost's gain, weight, cover and total_gain importances of a BDT."""
    return {k: np.array([bundle.tagger.native_importance(k).get(n, 0.0) for n in names])
            for k in NATIVE}


def explanation_array(run: MethodRun) -> np.ndarray:
    """What the randomisation check compares: the per-jet attributions, else the global
    importances."""
    return run.per_jet if run.per_jet is not None else run.importance
