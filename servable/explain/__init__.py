"""The explainability bench: every method behind one call, on a verified servable.

`servable.load(ref)` returns a `Servable` (a bundle that also explains); `METHODS` maps the
method names to their classes, imported on first use (so that loading a bundle and
predicting with ONNX Runtime never imports torch); `explain_bundle` checks the parameters
and runs one method; `write_plots` draws the figures the method declares.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from servable.bundle.bundle import Bundle
from servable.data.jets import Jets, class_index
from servable.errors import ServableError
from servable.explain.base import Explanation, Method, MethodNotApplicable

_WHERE = {
    "masking": "masking:Masking", "lrp": "lrp:LRP", "rna": "activations:RelativeNeuralActivity",
    "shap": "shap_methods:Shap", "lime": "lime_method:Lime",
    "ig": "gradients:IntegratedGradients", "saliency": "gradients:Saliency",
    "attention": "attention:Attention", "probes": "activations:LinearProbes",
    "edges": "graph:EdgeRelevance",
}


class _Methods(Mapping):
    """Method name -> class; a method's module is imported when it is first asked for."""

    def __getitem__(self, name: str) -> type[Method]:
        module, cls = _WHERE[name].split(":")
        return getattr(importlib.import_module(f"servable.explain.{module}"), cls)

    def __iter__(self):
        return iter(_WHERE)

    def __len__(self) -> int:
        return len(_WHERE)


METHODS: Mapping[str, type[Method]] = _Methods()
"""Method name -> its `Method` class; a method's module is imported when first asked for."""


def method_class(name: str) -> type[Method]:
    """The `Method` class of an explanation method, by name (its module imported on first use);
    an unknown name raises MethodNotApplicable listing the known ones."""
    if name not in METHODS:
        raise MethodNotApplicable(f"unknown method {name!r}; choose one of "
                                  f"{', '.join(METHODS)}")
    return METHODS[name]


def explain_bundle(bundle: Bundle, jets: Jets, method: str, target: int | str = 1,
                   **params) -> Explanation:
    """Explain `target` (a class index or name) with `method`."""
    cls = method_class(method)
    cls.check_params(params)
    target = class_index(target, bundle.manifest["outputs"][0]["classes"])
    if len(jets) == 0:
        raise ServableError("no jets to explain: give at least one jet")
    return cls(bundle).attribute(jets, target=target, **params)


class Servable(Bundle):
    """A verified bundle that predicts and explains."""

    def explain(self, jets: Jets, method: str = "lrp", target: int | str = 1,
                **params) -> Explanation:
        """Explain the model's output for `target` with `method`.

        Parameters
        ----------
        jets : Jets
            The jets to explain.
        method : str
            A name of `METHODS` (masking, lrp, rna, shap, lime, ig, saliency, attention, probes,
            edges).
        target : int or str
            The class to explain, by index or by name (1 or "Hbb" for H->bb).
        **params
            The method's parameters (`Method.parameters()`), e.g. `rule="gamma"` for LRP.

        Returns
        -------
        Explanation
            Relevance per feature (and per track and SV slot where the method has it).

        Raises
        ------
        ServableError
            An unknown method, one that does not apply to this model, a target out of range,
            unknown parameters or no jets.
        """
        return explain_bundle(self, jets, method, target, **params)


def write_plots(explanation: Explanation, out: Path, force: bool = False) -> list[Path]:
    """The figures the explanation's method draws (relevance bars, NAP diagram, ...), over
    existing files only with `force`."""
    return method_class(explanation.method).figures(explanation, Path(out), force)


__all__ = ["METHODS", "Explanation", "Method", "MethodNotApplicable", "Servable",
           "explain_bundle", "method_class", "write_plots"]
