"""Feature masking: the AUC lost when one feature is replaced (paper Figure 5, Table 9).

A masked feature takes the value `zero` or the population `mean` (over filled slots) in every
filled slot of every jet, or (`marginal`) in each filled slot the value of another filled slot
drawn from the same feature's distribution: one fixed permutation of the feature's values over
all filled slots of all jets, so that a feature independent of the label and of the other
inputs keeps its joint distribution with them when masked (mean replacement moves every jet
to one point the model never saw). Padded slots stay zero. Categorical features
(track_quality) take their most frequent value instead of a mean (with `zero` and `mean`).
Cumulative masking replaces, for each threshold, every feature whose single-feature dAUC
lies below it, and reports AUC and the fidelity F = 1 - mean |p_masked - p| against the
unmasked model (paper Eq. 1).
`extras["masked_scores"]` keeps, per feature, the target probability of every jet with that
feature masked (features x jets, in the order of `features()`), beside `output` (unmasked),
so that the AUC loss can be recomputed on any subset or resample of the jets without
predicting again (`auc_loss`).
Model-agnostic: it only calls `predict`, so it applies to every model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from servable.data.jets import Jets, filled_mask
from servable.errors import ServableError
from servable.explain.base import Explanation, Method
from servable.explain.uncertainty import auc
from servable.models.metrics import fidelity
from servable.models.spec import InputSpec

DEFAULT_THRESHOLDS = (0.0, 1e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2)
# input bytes of the masked copies predicted in one call
MASKED_BYTES = 1 << 28


REPLACEMENTS = ("zero", "mean", "marginal")


def replacement_values(inputs: dict[str, np.ndarray], spec: InputSpec, mode: str,
                       seed: int = 0) -> dict:
    """Per input, what a masked feature takes: a value per feature (zero, mean or, for a
    categorical feature, the mode), or with `marginal` an array shaped as the input holding,
    per feature, its filled values permuted over all filled slots of all jets (`seed`)."""
    if mode not in REPLACEMENTS:
        raise ServableError(f"replacement must be one of {', '.join(REPLACEMENTS)}, "
                            f"not {mode!r}")
    values = {}
    rng = np.random.default_rng(seed)
    for key, x in inputs.items():
        if mode == "zero":
            values[key] = np.zeros(x.shape[1], np.float32)
            continue
        mask = filled_mask(x) if x.ndim == 3 else np.ones(len(x), bool)
        per_feature = [x[:, i][mask] for i in range(x.shape[1])]
        if mode == "marginal":
            drawn = np.zeros_like(x)
            for i, f in enumerate(per_feature):
                drawn[:, i][mask] = rng.permutation(f)
            values[key] = drawn
            continue
        v = np.array([f.mean() if f.size else 0.0 for f in per_feature], np.float32)
        for col in spec[key].categorical():
            codes, counts = np.unique(per_feature[col], return_counts=True)
            v[col] = codes[np.argmax(counts)] if counts.size else 0.0
        values[key] = v
    return values


def subset_values(values: dict, jets: np.ndarray) -> dict:
    """`replacement_values` for a subset of the jets (per-jet `marginal` arrays are indexed;
    per-feature values are the same for every jet)."""
    return {k: v[jets] if v.ndim > 1 else v for k, v in values.items()}


def masked(inputs: dict[str, np.ndarray], features: list[tuple[str, int]],
           values: dict) -> dict[str, np.ndarray]:
    """A copy of the inputs with the given (input, column) features replaced by `values`
    (`replacement_values` of the same jets)."""
    out = {k: v.copy() for k, v in inputs.items()}
    for key, col in features:
        x, v = out[key], values[key]
        value = v[:, col] if v.ndim > 1 else v[col]
        if x.ndim == 3:
            x[:, col, :] = np.where(filled_mask(inputs[key]), value, 0.0)
        else:
            x[:, col] = value
    return out


class Masking(Method):
    """Feature masking: the one-vs-rest AUC of the target lost when a feature is replaced
    (`replacement`: zero, population mean or marginal draws), and cumulative masking by
    threshold with fidelity (paper Fig. 5, Table 9). All models; scored on the whole set
    (never split remotely).
    """

    name = "masking"
    splittable = False  # AUCs over the whole set

    @classmethod
    def figures(cls, explanation: Explanation, out, force: bool = False) -> list:
        return [*super().figures(explanation, out, force),
                _plot_cumulative(explanation, Path(out) / "cumulative_masking.png")]

    def attribute(self, jets: Jets, target: int = 1, replacement: str = "mean",
                  thresholds=DEFAULT_THRESHOLDS) -> Explanation:
        if jets.labels is None:
            raise ServableError("masking measures the AUC lost: it needs labelled jets")
        y = jets.labels.argmax(1) == target
        if y.all() or not y.any():
            name = self.tagger.config["class_names"][target]
            raise ServableError(f"masking measures the one-vs-rest AUC: it needs jets of the "
                                f"target class {name} and of others")
        inputs = self.tagger.inputs(jets)
        values = replacement_values(inputs, self.spec, replacement)
        features = self.features()
        names = [self.spec[k].features[i] for k, i in features]
        base = self.tagger.predict_from_inputs(inputs)[:, target]
        singles = self._predict_masked(inputs, [[f] for f in features], values, target, base)
        auc0 = roc_auc_score(y, base)
        delta = dict(zip(names, auc_loss(y, base, np.stack(singles)).tolist(), strict=True))
        chosen = [tuple(f for n, f in zip(names, features, strict=True) if delta[n] < t)
                  for t in thresholds]
        distinct = list(dict.fromkeys(c for c in chosen if c))  # each set predicted once
        predicted = dict(zip(distinct, self._predict_masked(inputs, distinct, values, target,
                                                                  base),
                             strict=True))
        cumulative = []
        for t, c in zip(thresholds, chosen, strict=True):
            p = predicted[c] if c else base
            cumulative.append({"threshold": t, "n_masked": len(c),
                               "auc": float(roc_auc_score(y, p)),
                               "fidelity": fidelity(p, base)})
        return Explanation(
            method=self.name, target=target, model=self.tagger.kind,
            feature_names=self.feature_names(), feature_relevance=delta, output=base,
            extras={"replacement": replacement, "auc": float(auc0), "cumulative": cumulative,
                    "masked_scores": np.stack(singles) if singles else
                    np.zeros((0, len(jets))),
                    "relevance_label": f"AUC lost when masked ({replacement})"})

    def _predict_masked(self, inputs: dict[str, np.ndarray], feature_sets, values: dict,
                        target: int, base: np.ndarray) -> list[np.ndarray]:
        """`predict_masked` with this method's model."""
        return predict_masked(self.tagger, inputs, feature_sets, values, target, base)


def auc_loss(y: np.ndarray, base: np.ndarray, masked_scores: np.ndarray,
             jets: np.ndarray | None = None) -> np.ndarray:
    """Per feature, the AUC lost when it is masked, from the unmasked scores `base` (jets,)
    and `masked_scores` (features, jets) of a masking Explanation (`output`,
    `extras["masked_scores"]`), on the jets at `jets` (default: all; repeats allowed, for a
    bootstrap); zeros where the jets lack one of the two classes."""
    y, base, scores = np.asarray(y, bool), np.asarray(base), np.asarray(masked_scores)
    if jets is not None:
        y, base, scores = y[jets], base[jets], scores[:, jets]
    if y.all() or not y.any():
        return np.zeros(len(scores))
    auc0 = auc(y, base)
    return np.array([auc0 - auc(y, s) for s in scores])


def predict_masked(tagger, inputs: dict[str, np.ndarray], feature_sets, values: dict,
                   target: int | None, base: np.ndarray) -> list[np.ndarray]:
    """The target's probability (every class's where `target` is None: `base` is then
    (jets, classes)) with each set of (input, column) features masked. The masked
    copies are predicted together, in as few calls as `MASKED_BYTES` allows (the models'
    batching, sorted by multiplicity, is faster on many jets than on one set at a time); a
    jet the mask leaves unchanged (an SV feature of a jet without SVs) keeps `base`."""
    out = [np.array(base, copy=True) for _ in feature_sets]
    pending, rows = [], []

    def flush():
        if not pending:
            return
        stacked = {k: np.concatenate([c[k] for c in pending]) for k in inputs}
        # the model's own batching: one batch of every copy (up to MASKED_BYTES of inputs,
        # ~30k JetClass jets) took ParticleNet's edge activations past 19 GB
        p = tagger.predict_from_inputs(stacked)
        p = p if target is None else p[:, target]
        start = 0
        for i, changed in rows:
            out[i][changed] = p[start:start + changed.size]
            start += changed.size
        pending.clear()
        rows.clear()

    for i, features in enumerate(feature_sets):
        if not len(features):
            continue
        copy = masked(inputs, list(features), values)
        changed = np.flatnonzero(np.any([(copy[k] != x).reshape(len(x), -1).any(1)
                                         for k, x in inputs.items()], axis=0))
        if not changed.size:
            continue
        pending.append({k: v[changed] for k, v in copy.items()})
        rows.append((i, changed))
        if sum(v.nbytes for c in pending for v in c.values()) >= MASKED_BYTES:
            flush()
    flush()
    return out


def _plot_cumulative(explanation: Explanation, path: Path, force: bool = False) -> Path:
    from servable.figures import figure

    rows = explanation.extras["cumulative"]
    with figure(path, (5.5, 3.8), force=force) as (fig, ax):
        n = [r["n_masked"] for r in rows]
        ax.plot(n, [r["auc"] for r in rows], marker="o", label="AUC")
        ax.plot(n, [r["fidelity"] for r in rows], marker="s", label="fidelity")
        ax.set_xlabel("features masked (all with dAUC below the threshold)")
        ax.set_ylabel("value")
        ax.set_title(f"{explanation.model}: cumulative masking "
                     f"({explanation.extras['replacement']})")
        ax.legend()
        ax.grid(alpha=0.3)
    return path
