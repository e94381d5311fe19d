"""Tagger metrics: those of the FAIR paper for H->bb vs QCD (accuracy, ROC AUC, background
rejection at fixed efficiency), and the JetClass table of the Particle Transformer paper
(arXiv:2202.03772, Table 2) for more than two classes: accuracy, macro one-vs-rest AUC, and per
signal class X the QCD rejection 1/eps_QCD of the discriminant p_X / (p_X + p_QCD) at 50% signal
efficiency (99% for Hqql, 99.5% for Tbl)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def rejection_at(y_true: np.ndarray, score: np.ndarray, efficiency: float) -> float:
    """1 / (background efficiency) at the given signal efficiency (interpolated ROC)."""
    fpr, tpr, _ = roc_curve(y_true, score)
    bkg = float(np.interp(efficiency, tpr, fpr))
    return float("inf") if bkg <= 0 else 1.0 / bkg


def fidelity(scores: np.ndarray, reference: np.ndarray) -> float:
    """How faithfully one model's scores follow another's on the same jets (FAIR paper Eq. 1):
    F = 1 - mean |y1 - y2|, with y the H->bb (target-class) score of each jet, or on (n, K)
    probabilities the mean over every class's score (the same number for two classes); 1 when
    equal."""
    return float(1 - np.mean(np.abs(np.asarray(scores) - np.asarray(reference))))


def reference_tail(reference: float, values) -> dict:
    """How a reference value sits in a distribution of repeated trainings (the seeds' AUCs):
    z = (reference - mean) / sd and the one-sided p-value P(X >= reference) under a normal
    distribution with the values' mean and sample standard deviation (FAIR paper Table 4)."""
    import math

    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean, sd = values.mean(), values.std(ddof=1)
    if sd > 0:
        return {"value": reference, "p_value_one_sided": float(stats.norm.sf(reference, mean, sd)),
                "z": float((reference - mean) / sd)}
    return {"value": reference, "p_value_one_sided": float(reference <= mean),
            "z": math.copysign(math.inf, reference - mean)}


def seed_statistics(rows: list[dict[str, float]]) -> dict[str, dict]:
    """Per metric over repeated trainings (one dict of metrics per run, e.g. per seed): the
    mean, the sample standard deviation (0 for a single run) and the values in run order."""
    out = {}
    for key in rows[0]:
        values = np.array([row[key] for row in rows], dtype=float)
        out[key] = {"mean": float(values.mean()),
                    "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                    "values": values.tolist()}
    return out


# signal efficiency of each class's working point in the JetClass table (default 50%)
JETCLASS_WORKING_POINTS = {"Hqql": 0.99, "Tbl": 0.995}
BACKGROUND = "QCD"


def summary_auc(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """The AUC a result is summarised by: class 1's ROC AUC for two classes, the macro
    one-vs-rest AUC over the classes that have jets for more; NaN when fewer than two
    classes have jets."""
    y = np.asarray(y_true).astype(int)
    k = probabilities.shape[1]
    present = [c for c in range(k) if 0 < (y == c).sum() < len(y)]
    if len(present) < 2:
        return float("nan")
    if k == 2:
        return float(roc_auc_score(y, probabilities[:, 1]))
    return float(np.mean([roc_auc_score(y == c, probabilities[:, c]) for c in present]))


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray,
                           class_names=None) -> dict:
    """y_true: class index per jet; probabilities: (n, classes). Two classes: the binary
    metrics (class 1 = signal); more: `multiclass_metrics`."""
    y_true = np.asarray(y_true).astype(int)
    if probabilities.shape[1] > 2:
        return multiclass_metrics(y_true, probabilities, class_names)
    score = probabilities[:, 1]
    if len(np.unique(y_true)) < 2:
        raise ValueError("metrics need jets of both classes")
    return {
        "n_jets": int(len(y_true)),
        "accuracy": float(np.mean(probabilities.argmax(1) == y_true)),
        "roc_auc": summary_auc(y_true, probabilities),
        "rejection_50": rejection_at(y_true, score, 0.5),
        "rejection_30": rejection_at(y_true, score, 0.3),
    }


def multiclass_metrics(y_true: np.ndarray, probabilities: np.ndarray, class_names) -> dict:
    """Accuracy, macro one-vs-rest AUC, and per class other than QCD its rejection of QCD at
    its working point (`rejection`: class -> 1/eps_QCD, `working_point`: class -> eps_sig).
    Classes without jets are listed in `absent` and left out of the AUCs and rejections."""
    y_true = np.asarray(y_true).astype(int)
    k = probabilities.shape[1]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{k} probability columns but {len(names)} class names")
    present = [c for c in range(k) if (y_true == c).any()]
    if len(present) < 2:
        raise ValueError("metrics need jets of at least two classes")
    auc = {names[c]: float(roc_auc_score(y_true == c, probabilities[:, c])) for c in present}
    out = {
        "n_jets": int(len(y_true)),
        "class_names": names,
        "absent": [names[c] for c in range(k) if c not in present],
        "accuracy": float(np.mean(probabilities.argmax(1) == y_true)),
        "macro_auc": float(np.mean(list(auc.values()))),
        "auc": auc,
        "rejection": {},
        "working_point": {},
    }
    if BACKGROUND in names and names.index(BACKGROUND) in present:
        q = names.index(BACKGROUND)
        for c in present:
            if c == q:
                continue
            sel = (y_true == c) | (y_true == q)
            score = probabilities[sel, c] / np.maximum(
                probabilities[sel, c] + probabilities[sel, q], 1e-30)
            wp = JETCLASS_WORKING_POINTS.get(names[c], 0.5)
            out["rejection"][names[c]] = rejection_at(y_true[sel] == c, score, wp)
            out["working_point"][names[c]] = wp
    return out


def headline(metrics: dict) -> dict[str, float]:
    """The scalar metrics of a result, flat: two classes, accuracy, roc_auc, rejection_50
    and rejection_30; more, accuracy, macro_auc and rejection_X per class X."""
    if "macro_auc" not in metrics:
        return {k: metrics[k] for k in ("accuracy", "roc_auc", "rejection_50", "rejection_30")}
    return {"accuracy": metrics["accuracy"], "macro_auc": metrics["macro_auc"],
            **{f"rejection_{c}": v for c, v in metrics["rejection"].items()}}


def auc_key(metrics: dict) -> str:
    """The AUC a result is summarised by: the ROC AUC (two classes) or the macro AUC."""
    return "macro_auc" if "macro_auc" in metrics else "roc_auc"


def metrics_table(metrics: dict, name: str = "") -> str:
    """The metrics as a Markdown row in the layout of the Particle Transformer paper's Table 2
    (rejection of QCD per class at its signal efficiency; "-" for classes without jets)."""
    classes = [c for c in metrics["class_names"] if c != BACKGROUND]
    wp = {c: JETCLASS_WORKING_POINTS.get(c, 0.5) for c in classes}
    head = ["model", "accuracy", "AUC", *(f"{c} ({wp[c]:.1%})".replace(".0%", "%")
                                          for c in classes)]

    def cell(c):
        v = metrics["rejection"].get(c)
        return "-" if v is None else "inf" if not np.isfinite(v) else f"{v:.0f}"

    row = [name or "model", f"{metrics['accuracy']:.3f}", f"{metrics['macro_auc']:.4f}",
           *map(cell, classes)]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + " --- |" * len(head),
                      "| " + " | ".join(row) + " |"])


def roc_curves(y_true: np.ndarray, probabilities: np.ndarray, class_names,
               name: str = "model") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The curves `plot_roc` draws: two classes, class 1 against class 0 (named `name`);
    more, each class present against QCD with the discriminant p_X / (p_X + p_QCD), as the
    JetClass table scores it (the first class stands in for QCD when none is named so)."""
    y_true = np.asarray(y_true).astype(int)
    names = list(class_names)
    if probabilities.shape[1] == 2:
        return {name: (y_true == 1, probabilities[:, 1])}
    q = names.index(BACKGROUND) if BACKGROUND in names else 0
    curves = {}
    for c, label in enumerate(names):
        sel = (y_true == c) | (y_true == q)
        if c == q or not (y_true[sel] == c).any() or not (y_true[sel] == q).any():
            continue
        p = probabilities[sel]
        curves[label] = (y_true[sel] == c, p[:, c] / np.maximum(p[:, c] + p[:, q], 1e-30))
    return curves


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path,
             force: bool = False) -> None:
    """Background rejection vs signal efficiency (log scale), one curve per name."""
    from servable.figures import figure

    with figure(path, (5, 4), force=force) as (fig, ax):
        _roc_axes(ax, curves)


def _roc_axes(ax, curves) -> None:
    for name, (y_true, score) in curves.items():
        fpr, tpr, _ = roc_curve(y_true, score)
        keep = fpr > 0
        auc = roc_auc_score(y_true, score)
        ax.plot(tpr[keep], 1 / fpr[keep], label=f"{name} (AUC {auc:.3f})")
    ax.set_yscale("log")
    ax.set_xlabel("signal efficiency")
    ax.set_ylabel("QCD rejection (1 / efficiency)")
    ax.grid(alpha=0.3)
    ax.legend()
