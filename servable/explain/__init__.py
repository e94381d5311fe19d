"""The explainability bench: every method behind one call, on a verified servable.

`servable.load(path)` returns a `Servable` (a bundle with `explain`); `METHODS` maps the
CLI names to the method classes; `explain_bundle` runs one and returns an `Explanation`.
"""

from __future__ import annotations

from pathlib import Path

from servable.bundle.bundle import Bundle
from servable.bundle.bundle import load as load_bundle
from servable.data.jets import Jets
from servable.explain.activations import LinearProbes, RelativeNeuralActivity
from servable.explain.attention import Attention
from servable.explain.base import Explanation, Method, MethodNotApplicable
from servable.explain.gradients import IntegratedGradients, Saliency
from servable.explain.lime_method import Lime
from servable.explain.lrp import LRP
from servable.explain.masking import Masking
from servable.explain.shap_methods import Shap

METHODS: dict[str, type[Method]] = {m.name: m for m in (
    Masking, LRP, RelativeNeuralActivity, Shap, Lime, IntegratedGradients, Saliency,
    Attention, LinearProbes)}


def explain_bundle(bundle: Bundle, jets: Jets, method: str, target: int = 1,
                   **params) -> Explanation:
    if method not in METHODS:
        raise MethodNotApplicable(f"unknown method {method!r}; choose one of "
                                  f"{', '.join(METHODS)}")
    return METHODS[method](bundle).attribute(jets, target=target, **params)


class Servable(Bundle):
    """A verified bundle that predicts and explains."""

    def explain(self, jets: Jets, method: str = "lrp", target: int = 1,
                **params) -> Explanation:
        return explain_bundle(self, jets, method, target, **params)


def load(path) -> Servable:
    bundle = load_bundle(path)
    return Servable(bundle.path, bundle.manifest, bundle.tagger)


def write_plots(explanation: Explanation, out: Path) -> list[Path]:
    """The method's own figures (NAP diagram, attention maps, probes) plus relevance bars."""
    from servable.explain.activations import plot_nap, plot_probes
    from servable.explain.attention import plot_attention

    paths = []
    special = {"rna": ("nap.png", plot_nap), "attention": ("attention.png", plot_attention),
               "probes": ("probes.png", plot_probes)}
    if explanation.method in special:
        name, fn = special[explanation.method]
        fn(explanation, out / name)
        paths.append(out / name)
    if explanation.feature_relevance:
        paths.append(explanation.plot(out / "relevance.png"))
    if explanation.method == "masking":
        paths.append(_plot_cumulative(explanation, out / "cumulative_masking.png"))
    return paths


def _plot_cumulative(explanation: Explanation, path: Path) -> Path:
    from servable.figures import figure

    rows = explanation.extras["cumulative"]
    with figure(path, (5.5, 3.8)) as (fig, ax):
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


__all__ = ["METHODS", "Explanation", "Method", "MethodNotApplicable", "Servable",
           "explain_bundle", "load", "write_plots"]
