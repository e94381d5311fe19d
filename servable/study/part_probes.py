"""Where the trained ParticleTransformer encodes physics, and which heads look at the decay:
linear probes with controls, and the truth AUC of every head's attention against a model-free
baseline.

Probes: a ridge regression (R^2) or a logistic regression (ROC AUC) from each block's
representation (the mean particle embedding after a particle block, the class token after a
class-attention block: `ParTNet.stages`) to soft-drop mass, tau21, tau32, the number of
prongs (generator truth) and b-hadron presence (generator truth; the class where there is
none). Each jet is scored by the probe fitted on the other folds; the score has a bootstrap
interval over jets. Beside it two controls: the same probe on the randomly initialised network
(same architecture and preprocessing, fresh weights from the training seed) and the same probe
with shuffled targets. A target is "encoded at block k" only where the trained network's
interval lies above both controls' intervals.

Attention: per block and head a per-particle score (class blocks: the class token's attention
to the particle; particle blocks: the attention the particle receives, averaged over the
jet's particles), and per class with a resonance the pooled AUC with which it picks the
resonance's decay products (generator truth) among the jet's particles, with a bootstrap
interval over jets; beside the best model-free score (pT rank and `study.xai.baselines`).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from servable.data.jets import Jets, filled_mask
from servable.errors import ServableError
from servable.explain import uncertainty as U
from servable.explain.activations import observables
from servable.explain.modelstate import explaining
from servable.models.batching import bucket_chunks
from servable.models.taggers import PART_PAIR_BUDGET
from servable.study.xai.baselines import model_free_scores

PROBED = {"jet_sdmass": "soft-drop mass", "jet_tau21": "tau21", "jet_tau32": "tau32"}
B_CLASSES = ("Hbb", "Tbqq", "Tbl")  # classes whose resonance decays to a b quark
B_HADRON_ORIGIN = 1  # schema.TRUTH_ORIGINS: from a b-hadron decay


def probe_targets(jets: Jets) -> dict[str, tuple[np.ndarray, str]]:
    """name -> (per-jet values, "r2" for a regression or "auc" for a binary target):
    soft-drop mass, tau21, tau32 (jet observables), the number of prongs (the resonance's
    decay products, generator truth) and b-hadron presence (a particle from a b-hadron decay
    by generator truth; else the class is Hbb, Tbqq or Tbl)."""
    obs = observables(jets)
    out = {label: (obs[name], "r2") for name, label in PROBED.items() if name in obs}
    if "aux_n_decay_products" in jets.extras:
        out["number of prongs"] = (np.asarray(jets.extras["aux_n_decay_products"], float), "r2")
    if "part_truth_origin" in jets.extras:
        origin = np.asarray(jets.extras["part_truth_origin"])
        filled = filled_mask(jets.leading_slotted().values)[:, : origin.shape[1]]
        out["b-hadron presence"] = (((origin[:, : filled.shape[1]] == B_HADRON_ORIGIN)
                                     & filled).any(1).astype(int), "auc")
    elif jets.labels is not None and jets.class_names is not None:
        b = [jets.class_names.index(c) for c in B_CLASSES if c in jets.class_names]
        out["b-hadron presence"] = (np.isin(jets.labels.argmax(1), b).astype(int), "auc")
    return {k: v for k, v in out.items() if np.std(v[0]) > 0}


def random_tagger(tagger, seed: int):
    """The tagger's architecture and preprocessing with fresh weights drawn after
    `torch.manual_seed(seed)` (the control network of the probes)."""
    torch.manual_seed(seed)
    fresh = type(tagger)(copy.deepcopy(tagger.config))
    fresh.net.eval()
    return fresh


def _chunks(tagger, jets: Jets):
    """(indices, tensor) of the particle group in batches of similar multiplicity."""
    (x,) = tagger.inputs(jets).values()
    for idx, _ in bucket_chunks(filled_mask(x).sum(1), PART_PAIR_BUDGET):
        yield idx, torch.from_numpy(np.ascontiguousarray(x[idx], np.float32))


def block_names(net) -> list[str]:
    """'block k (particle layer i)' / 'block k (class layer j)', in `attention_blocks` order."""
    n = len(net.core.blocks)
    return [f"block {k + 1} ({'particle' if k < n else 'class'} layer "
            f"{k + 1 if k < n else k - n + 1})"
            for k in range(n + len(net.core.cls_blocks))]


def representations(tagger, jets: Jets) -> dict[str, np.ndarray]:
    """Per block (`block_names`), the per-jet representation (jets, width) of `stages`."""
    out: dict[str, np.ndarray] = {}
    names = block_names(tagger.net)
    with explaining(tagger.net), torch.no_grad():
        for idx, xb in _chunks(tagger, jets):
            for name, value in zip(names, tagger.net.stages(xb).values(), strict=True):
                out.setdefault(name, np.zeros((len(jets), value.shape[1]), np.float32))
                out[name][idx] = value.numpy()
    return out


def _out_of_fold(x: np.ndarray, y: np.ndarray, kind: str, folds: int, seed: int) -> np.ndarray:
    """Each jet's probe output from the probe fitted on the other folds."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "r2":
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 7)))
        return cross_val_predict(model, x, y, cv=KFold(folds, shuffle=True, random_state=seed))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]


def probe_score(x: np.ndarray, y: np.ndarray, kind: str, folds: int = 5,
                n_resamples: int = 100, seed: int = 0) -> dict:
    """The cross-validated R^2 (kind "r2") or ROC AUC ("auc") of a linear probe from `x`
    (jets, width) to `y`, with its bootstrap interval over jets (`uncertainty.interval`)."""
    from sklearn.metrics import r2_score, roc_auc_score

    pred = _out_of_fold(np.asarray(x, np.float64), y, kind, folds, seed)
    metric = r2_score if kind == "r2" else roc_auc_score

    def statistic(idx):
        yy = y[idx]
        return metric(yy, pred[idx]) if np.std(yy) > 0 else np.nan

    return U.bootstrap_scalar(statistic, len(y), n_resamples, seed=seed)


def encoded(row: dict) -> bool:
    """Whether the trained network's probe beats both controls beyond their intervals."""
    return bool(row["trained"]["low"] > max(row["random"]["high"], row["shuffled"]["high"]))


def probes(trained: dict[str, np.ndarray], random: dict[str, np.ndarray],
           targets: dict[str, tuple[np.ndarray, str]], folds: int = 5, n_resamples: int = 100,
           seed: int = 0) -> dict:
    """Per target and block: the probe on the trained network, on the random one and with
    shuffled targets (each with its interval), and `encoded` (`encoded`)."""
    out = {}
    rng = np.random.default_rng(seed)
    for name, (y, kind) in targets.items():
        shuffled = rng.permutation(y)
        rows = {}
        for block, x in trained.items():
            row = {"trained": probe_score(x, y, kind, folds, n_resamples, seed),
                   "random": probe_score(random[block], y, kind, folds, n_resamples, seed),
                   "shuffled": probe_score(x, shuffled, kind, folds, n_resamples, seed)}
            rows[block] = {**row, "encoded": encoded(row)}
        out[name] = {"metric": "R^2" if kind == "r2" else "ROC AUC", "blocks": rows}
    return out


def _iv(d: dict) -> str:
    return f"{d['value']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"


def probe_sentences(result: dict) -> list[str]:
    """One sentence per target, generated from the numbers: the blocks where it is encoded
    (beyond both controls) with the first one's numbers, or that it is encoded at none."""
    lines = []
    for name, r in result.items():
        rows, metric = r["blocks"], r["metric"]
        yes = [b for b, row in rows.items() if row["encoded"]]
        if yes:
            first = rows[yes[0]]
            lines.append(
                f"{name} is encoded at {', '.join(yes)}: at {yes[0]} the probe's {metric} is "
                f"{_iv(first['trained'])} against {_iv(first['random'])} on the random-init "
                f"network and {_iv(first['shuffled'])} with shuffled targets (95% bootstrap "
                "intervals over jets).")
        else:
            best = max(rows, key=lambda b: rows[b]["trained"]["value"])
            row = rows[best]
            lines.append(
                f"{name} is not encoded beyond the controls at any block: the best probe, at "
                f"{best}, reaches {metric} {_iv(row['trained'])}, not above both the "
                f"random-init network's {_iv(row['random'])} and the shuffled targets' "
                f"{_iv(row['shuffled'])} beyond their intervals.")
        close = [b for b, row in rows.items() if row["random"]["high"] >= row["trained"]["low"]]
        if close:
            lines.append(f"For {name} the random-init network reaches the trained one within "
                         f"the intervals at {', '.join(close)}: there the inputs and the "
                         "architecture carry it without training.")
    return lines


# attention -------------------------------------------------------------------------------
def attention_scores(tagger, jets: Jets) -> dict[tuple[int, int], np.ndarray]:
    """(block, head) -> (jets, slots): the class token's attention to each particle (class
    blocks) or the attention each particle receives averaged over the jet's particles
    (particle blocks); zero on padded slots."""
    (x,) = tagger.inputs(jets).values()
    n_slots = x.shape[2]
    out: dict[tuple[int, int], np.ndarray] = {}
    with explaining(tagger.net), torch.no_grad():
        for idx, xb in _chunks(tagger, jets):
            _, details = tagger.net(xb, return_details=True)
            for k, w in enumerate(details["attention"]):
                width = w.shape[-1]
                if k >= len(tagger.net.core.blocks):  # class attention: class token, slots
                    per = w[:, :, 0, 1:]
                    width -= 1
                else:
                    real = filled_mask(xb)[:, :width].to(w.dtype)  # queries that are particles
                    per = (w * real[:, None, :, None]).sum(2) / real.sum(1).clamp(min=1)[
                        :, None, None]
                for h in range(per.shape[1]):
                    out.setdefault((k, h), np.zeros((len(jets), n_slots), np.float32))
                    out[(k, h)][idx, :width] = per[:, h].numpy()
    return out


def decay_truth(jets: Jets) -> np.ndarray:
    """Per particle slot, whether it descends from a decay product of the jet's resonance
    (generator truth); an error naming the missing truth for jets without it."""
    if "part_truth_decay_product" not in jets.extras:
        raise ServableError("the attention-vs-truth study needs JetClass-like jets with "
                            "generator truth (part_truth_decay_product): generate them with "
                            "`servable data generate --dataset jetclass`")
    return np.asarray(jets.extras["part_truth_decay_product"]) >= 0


def pt_rank(jets: Jets) -> np.ndarray:
    """Per particle slot, minus its pT rank in the jet (the hardest particle scores 0)."""
    g = jets.leading_slotted()
    pt = np.hypot(g.column("part_px"), g.column("part_py"))
    pt = np.where(filled_mask(g.values), pt, -np.inf)
    return -np.argsort(np.argsort(-pt, axis=1, kind="stable"), axis=1).astype(np.float64)


def attention_truth(scores: dict, jets: Jets, n_resamples: int = 100, seed: int = 0) -> dict:
    """Per head and per class with a resonance (and over all of them, `all`), the pooled truth
    AUC of the head's per-particle score with its interval; the same for the model-free
    scores (`baselines`) and, per class, the best of them (`best_baseline`). A head
    `attends_to_decay` in a class when its interval lies above the best baseline's, and
    `prefers_non_decay` when it lies below 0.5."""
    truth = decay_truth(jets)
    filled = filled_mask(jets.leading_slotted().values)
    width = min(truth.shape[1], filled.shape[1])
    truth, filled = truth[:, :width], filled[:, :width]
    cls = jets.labels.argmax(1)
    has = (truth & filled).any(1) & (~truth & filled).any(1)
    groups = {name: np.flatnonzero(has & (cls == c)) for c, name in enumerate(jets.class_names)}
    groups = {k: v for k, v in groups.items() if len(v) >= 2}
    groups["all"] = np.flatnonzero(has)
    if len(groups["all"]) < 2:
        raise ServableError("no jets with both decay products and other particles: the "
                            "attention-vs-truth study needs jets of resonance classes")
    free = {"pT rank": pt_rank(jets), **{k: v for k, v in model_free_scores(jets).items()
                                         if k not in ("uniform", "slot order")}}
    baselines = {name: {g: U.pooled_truth_auc_interval(s[:, :width], truth, filled, idx,
                                                        n_resamples, seed)
                        for g, idx in groups.items()} for name, s in free.items()}
    best = {g: max(baselines, key=lambda b: np.nan_to_num(baselines[b][g]["value"], nan=-1))
            for g in groups}
    heads = {}
    for (k, h), s in scores.items():
        per = {g: U.pooled_truth_auc_interval(s[:, :width], truth, filled, idx, n_resamples, seed)
               for g, idx in groups.items()}
        heads[f"{k}:{h}"] = {
            "block": k, "head": h, "classes": per,
            "attends_to_decay": [g for g in groups
                                 if per[g]["low"] > baselines[best[g]][g]["high"]],
            "prefers_non_decay": [g for g in groups if per[g]["high"] < 0.5]}
    return {"heads": heads, "baselines": baselines, "best_baseline": best,
            "jets": {g: int(len(idx)) for g, idx in groups.items()},
            "truth": "particle from a decay product of the jet's resonance (generator truth)"}


def select_heads(att: dict, n: int = 2) -> dict:
    """The heads the explanations call relevant (truth AUC over all resonance jets above the
    best baseline beyond the intervals, else above 0.5 beyond them) and irrelevant (below 0.5
    beyond the interval: attention on non-decay particles), at most `n` each, the most
    extreme first; where a set would be empty it takes the most extreme heads by AUC and says
    so in `rule`."""
    heads = att["heads"]
    auc = {k: v["classes"]["all"] for k, v in heads.items()}
    base = att["baselines"][att["best_baseline"]["all"]]["all"]
    order = sorted(auc, key=lambda k: auc[k]["value"])
    rules = {}
    relevant = [k for k in reversed(order) if auc[k]["low"] > base["high"]]
    rules["relevant"] = "truth AUC above the best model-free baseline beyond the intervals"
    if not relevant:
        relevant = [k for k in reversed(order) if auc[k]["low"] > 0.5]
        rules["relevant"] = "truth AUC above 0.5 beyond the interval (none beats the baseline)"
    if not relevant:
        relevant = list(reversed(order))
        rules["relevant"] = "highest truth AUC (none above 0.5 beyond its interval)"
    irrelevant = [k for k in order if auc[k]["high"] < 0.5 and k not in relevant[:n]]
    rules["irrelevant"] = "truth AUC below 0.5 beyond the interval (non-decay particles)"
    if not irrelevant:
        irrelevant = [k for k in order if k not in relevant[:n]]
        rules["irrelevant"] = "lowest truth AUC (none below 0.5 beyond its interval)"
    return {"relevant": relevant[:n], "irrelevant": irrelevant[:n], "rule": rules}


def attention_sentences(att: dict, names: list[str]) -> list[str]:
    """Per head, generated from the numbers: over all resonance jets its truth AUC beside the
    best baseline's, and the classes where it beats the baseline or prefers non-decay
    particles."""
    base_name = att["best_baseline"]["all"]
    base = att["baselines"][base_name]["all"]
    lines = [f"The best model-free score over all resonance jets, {base_name}, picks the decay "
             f"products with AUC {_iv(base)}."]
    for v in att["heads"].values():
        where = f"{names[v['block']]}, head {v['head'] + 1}"
        beats = v["attends_to_decay"]
        text = (f"attends to the decay products beyond the baseline in {', '.join(beats)}"
                if beats else "does not beat the baseline in any class")
        if v["prefers_non_decay"]:
            text += f"; prefers non-decay particles (AUC < 0.5) in " \
                    f"{', '.join(v['prefers_non_decay'])}"
        lines.append(f"{where}: truth AUC {_iv(v['classes']['all'])} over all resonance jets; "
                     f"{text}.")
    return lines
