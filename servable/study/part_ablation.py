"""Targeted ablation of a trained ParticleTransformer: single attention heads replaced by
zeros or by their mean output, whole blocks with every head zeroed or skipped, and a short
fine-tune with a head removed; per class the change in accuracy and, per named pair of
classes, in the rate at which one is taken for the other, each with a bootstrap interval over
jets (the same resamples for every configuration, so differences are paired).

A head's output is what it adds before the output projection mixes the heads (its
attention-weighted values): zero removes it, `mean` replaces it by its average over the
particles (or class tokens) of the jets measured (`head_means`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

from servable.data.jets import filled_slots
from servable.explain import uncertainty as U
from servable.explain.modelstate import explaining
from servable.models.batching import bucket_chunks, probabilities
from servable.models.particle_transformer import (
    attention_blocks,
    heads_replaced,
    recorded_head_outputs,
)
from servable.models.taggers import PART_PAIR_BUDGET

LOG_LIKELIHOOD = "log-likelihood"  # mean log p(true class)
NAMED_PAIRS = (("Hbb", "Hcc"), ("Hcc", "Hgg"), ("Zqq", "Wqq"), ("Tbqq", "Wqq"),
               ("H4q", "Tbqq"), ("QCD", "Hgg"))


class Prepared:
    """The jets' inputs to the blocks (`ParticleTransformer.prepare`: embedding and pair
    biases, which no head changes), computed once in batches of similar multiplicity, so
    that each ablation re-runs only the blocks."""

    def __init__(self, tagger, inputs: dict):
        net = tagger.net
        (x,) = (inputs[k] for k in tagger.input_names)
        self.core, self.n, self.chunks = net.core, len(x), []
        self.n_classes = tagger.config["n_classes"]
        with explaining(net), torch.no_grad():
            for idx, _ in bucket_chunks(filled_slots(x), PART_PAIR_BUDGET):
                xb = torch.from_numpy(np.ascontiguousarray(x[idx], np.float32))
                std, fixed = net.standardize(xb)
                self.chunks.append((idx, net.core.prepare(std[0][:, net.embedded], *fixed)))

    def probabilities(self) -> np.ndarray:
        """Class probabilities (jets, classes) with whatever hooks the blocks hold now."""
        out = np.zeros((self.n, self.n_classes), np.float32)
        with explaining(self.core), torch.no_grad():
            for idx, prepared in self.chunks:
                out[idx] = probabilities(self.core.blocks_forward(*prepared).numpy())
        return out


def head_means(prepared: Prepared) -> dict[tuple[int, int], torch.Tensor]:
    """(block, head) -> the head's mean output (head_dim,) over the real particles (particle
    blocks) or class tokens (class blocks) of the prepared jets."""
    with recorded_head_outputs(prepared.core) as (sums, counts):
        prepared.probabilities()
    return {(k, h): s / max(counts[k], 1) for (k, h), s in sums.items()}


def ablated_predictions(predict: Callable[[], np.ndarray], core, heads=(), mode: str = "zero",
                        means=None, skipped=()) -> np.ndarray:
    """`predict()` (class probabilities) with the heads (block, head) in `heads` of `core`
    zeroed (`mode` "zero") or mean-replaced ("mean", `means` from `head_means`) and the
    blocks in `skipped` skipped."""
    replace = {kh: None if mode == "zero" else means[kh] for kh in heads}
    with heads_replaced(core, replace, skipped):
        return predict()


def outcome(y: np.ndarray, pred: np.ndarray, class_names, pairs=NAMED_PAIRS) -> np.ndarray:
    """Per jet the columns that `effects` averages: correct (all), the log-probability of the
    true class (a finer measure than the argmax), correct per class (NaN off the class), and
    per pair whether a jet of the pair is taken for the other class (NaN
    off the pair)."""
    c = pred.argmax(1)
    n_classes = len(class_names)
    cols = [c == y, np.log(np.clip(pred[np.arange(len(y)), y], 1e-12, None))]
    cols += [np.where(y == k, c == k, np.nan) for k in range(n_classes)]
    for a, b in pairs:
        ia, ib = class_names.index(a), class_names.index(b)
        swap = ((y == ia) & (c == ib)) | ((y == ib) & (c == ia))
        cols.append(np.where((y == ia) | (y == ib), swap, np.nan))
    return np.stack(cols, 1).astype(np.float64)


def column_names(class_names, pairs=NAMED_PAIRS) -> list[str]:
    """The names of `outcome`'s columns."""
    return ["accuracy", LOG_LIKELIHOOD, *(f"accuracy {c}" for c in class_names),
            *(f"{a} <-> {b} confusion" for a, b in pairs)]


def effects(base: np.ndarray, other: np.ndarray, names: list[str], n_resamples: int = 200,
            seed: int = 0) -> dict[str, dict]:
    """name -> the change (other - base) of each `outcome` column's mean, with the
    normal interval (`uncertainty.interval`) over bootstrap resamples of the jets (the same
    resamples for the same number of jets and seed)."""
    def stat(idx):
        with np.errstate(invalid="ignore"):
            return np.nanmean(other[idx], 0) - np.nanmean(base[idx], 0)

    value = stat(np.arange(len(base)))
    draws = np.array([stat(idx) for idx in U.resample_indices(len(base), n_resamples, seed)])
    return {n: U.interval(value[i], draws[:, i]) for i, n in enumerate(names)}


def set_contrast(base: np.ndarray, relevant: list[np.ndarray], irrelevant: list[np.ndarray],
                 column: int = 0, n_resamples: int = 200, seed: int = 0) -> dict:
    """|mean change| of an `outcome` column (0: accuracy, 1: log-likelihood) when the
    relevant heads are ablated one at a time, minus that of the irrelevant ones, with the
    paired bootstrap interval; above zero: the relevant heads matter more."""
    def stat(idx):
        b = base[idx, column].mean()
        rel = np.mean([o[idx, column].mean() - b for o in relevant])
        irr = np.mean([o[idx, column].mean() - b for o in irrelevant])
        return abs(rel) - abs(irr)

    return U.bootstrap_scalar(stat, len(base), n_resamples, seed=seed)


def better(column: str, iv: dict) -> bool:
    """Whether a change is an improvement beyond its interval: accuracy or log-likelihood
    up, a confusion rate down."""
    return iv["high"] < 0 if column.endswith("confusion") else iv["low"] > 0


def fine_tuned(tagger, inputs: dict, y: np.ndarray, heads=(), epochs: int = 1,
               lr: float = 3e-4, batch_size: int = 32, seed: int = 0):
    """A copy of the tagger trained `epochs` more epochs (Adam, cross entropy) on `inputs`
    with the heads in `heads` zeroed throughout; the tagger itself is unchanged."""
    tuned = copy.deepcopy(tagger)
    net = tuned.net
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    (x,) = tuned.tensors(inputs)
    target = torch.from_numpy(np.asarray(y, np.int64))
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    with heads_replaced(net.core, dict.fromkeys(heads)):
        for _ in range(epochs):
            order = torch.from_numpy(rng.permutation(len(target)))
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(net(x[idx]), target[idx]).backward()
                optimizer.step()
    net.eval()
    return tuned


def ablation(tagger, inputs: dict, y: np.ndarray, class_names, n_resamples: int = 200,
             seed: int = 0, pairs=NAMED_PAIRS) -> dict:
    """Every single head zeroed and mean-replaced, every block with all heads zeroed and
    skipped: per configuration the `effects` against the intact network. Also returns the
    per-jet outcomes (`outcomes`, not for JSON) for the set contrasts."""
    class_names = list(class_names)
    pairs = [p for p in pairs if p[0] in class_names and p[1] in class_names]
    names = column_names(class_names, pairs)
    prepared = Prepared(tagger, inputs)
    base = outcome(y, prepared.probabilities(), class_names, pairs)
    means = head_means(prepared)
    core = tagger.net.core
    blocks = attention_blocks(core)
    rows, outcomes = [], {}

    def add(label, kind, block, head, mode, pred):
        o = outcome(y, pred, class_names, pairs)
        outcomes[label] = o
        rows.append({"label": label, "kind": kind, "block": block, "head": head, "mode": mode,
                     "effects": effects(base, o, names, n_resamples, seed)})

    predict = prepared.probabilities
    for k, block in enumerate(blocks):
        for h in range(block.num_heads):
            for mode in ("zero", "mean"):
                add(f"{k}:{h} {mode}", "head", k, h, mode,
                    ablated_predictions(predict, core, [(k, h)], mode, means))
        add(f"block {k} zero", "block", k, None, "zero",
            ablated_predictions(predict, core, [(k, h) for h in range(block.num_heads)]))
        add(f"block {k} skip", "block", k, None, "skip",
            ablated_predictions(predict, core, skipped=[k]))
    return {"columns": names, "pairs": [list(p) for p in pairs], "rows": rows,
            "base": {n: float(np.nanmean(base[:, i])) for i, n in enumerate(names)},
            "outcomes": outcomes, "base_outcome": base, "means": means,
            "predict": predict}


def improvements(rows: list[dict]) -> dict:
    """Every (configuration, column) whose interval shows an improvement (`better`), the
    number of tests, how many one-sided 2.5% tails chance alone would give, and the binomial
    p-value of finding at least as many by chance (tests taken as independent, which they
    are not: the columns share jets)."""
    from scipy.stats import binomtest

    found, tests = [], 0
    for row in rows:
        for col, iv in row["effects"].items():
            tests += 1
            if better(col, iv):
                found.append({"label": row["label"], "column": col, **iv})
    p = binomtest(len(found), tests, 0.025, alternative="greater").pvalue if tests else 1.0
    return {"found": found, "tests": tests, "expected_by_chance": 0.025 * tests,
            "p_value": float(p)}
