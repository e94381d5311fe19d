"""Tagger metrics of the FAIR paper: accuracy, ROC AUC, background rejection at fixed efficiency."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def rejection_at(y_true: np.ndarray, score: np.ndarray, efficiency: float) -> float:
    """1 / (background efficiency) at the given signal efficiency (interpolated ROC)."""
    fpr, tpr, _ = roc_curve(y_true, score)
    bkg = float(np.interp(efficiency, tpr, fpr))
    return float("inf") if bkg <= 0 else 1.0 / bkg


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    """y_true: class index per jet (1 = H->bb); probabilities: (n, 2)."""
    y_true = np.asarray(y_true).astype(int)
    score = probabilities[:, 1]
    if len(np.unique(y_true)) < 2:
        raise ValueError("metrics need jets of both classes")
    return {
        "n_jets": int(len(y_true)),
        "accuracy": float(np.mean(probabilities.argmax(1) == y_true)),
        "roc_auc": float(roc_auc_score(y_true, score)),
        "rejection_50": rejection_at(y_true, score, 0.5),
        "rejection_30": rejection_at(y_true, score, 0.3),
    }


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
    ax.set_xlabel("H->bb efficiency")
    ax.set_ylabel("QCD rejection (1 / efficiency)")
    ax.grid(alpha=0.3)
    ax.legend()
