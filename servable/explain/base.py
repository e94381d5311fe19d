"""One result type and one call for every explanation method (captum's shape, zennit's hygiene).

`Method(bundle).attribute(jets, target=1, **params) -> Explanation`. Relevance arrays keep the
layout of the model's inputs, one per input group (`Explanation.relevance`, keyed like
`feature_names`: CMS `tracks` (n, P, 60), `vertices` (n, S, 5), `jet` (n, F); JetClass
`particles` (n, P, 128) and `jet`); padded slots get exactly zero relevance.
`feature_relevance` aggregates per feature as documented by each method (default: mean over
jets of the summed absolute relevance over slots).
Categorical features (track_quality) have no meaningful gradient: gradient-based methods
leave them out (zero, listed in `extras["excluded_categorical"]`); perturbation methods
replace them by their most frequent value instead of a mean.
"""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from servable.bundle.bundle import Bundle
from servable.data.jets import Jets, filled_mask
from servable.errors import ServableError
from servable.models.spec import InputSpec


class MethodNotApplicable(ServableError):
    """The explanation method does not apply to this model kind."""


@dataclass
class Explanation:
    """The result of every explanation method.

    Attributes
    ----------
    method, target, model : str, int, str
        Which method explained which class of which model kind.
    feature_names : dict
        Feature names per field (`tracks`, `vertices`, `particles`, `jet`: one per input group).
    feature_relevance : dict
        One number per feature, aggregated as the method documents (default: mean over jets
        of the summed absolute relevance over slots; masking: the AUC lost).
    relevance : dict
        Per-jet relevance per field, in the layout of the model's inputs; padded slots are
        exactly 0 (empty for methods without per-jet relevance). `tracks`, `vertices`, `jet`
        and `particles` read one field (None when absent).
    output : numpy.ndarray or None
        The explained output per jet.
    base_value : numpy.ndarray or float or None
        The reference value of additive methods (SHAP, IG).
    extras : dict
        Method-specific statistics (completeness, AUCs, excluded categorical features).
    """

    method: str
    target: int
    model: str
    feature_names: dict[str, list[str]]
    feature_relevance: dict[str, float]
    relevance: dict[str, np.ndarray] = field(default_factory=dict)
    output: np.ndarray | None = None
    base_value: np.ndarray | float | None = None
    extras: dict = field(default_factory=dict)

    tracks = property(lambda self: self.relevance.get("tracks"),
                      doc="Per-jet relevance of the CMS tracks (n, P, slots), or None.")
    vertices = property(lambda self: self.relevance.get("vertices"),
                        doc="Per-jet relevance of the CMS secondary vertices, or None.")
    particles = property(lambda self: self.relevance.get("particles"),
                         doc="Per-jet relevance of the JetClass particles, or None.")
    jet = property(lambda self: self.relevance.get("jet"),
                   doc="Per-jet relevance of the jet-level features (n, F), or None.")

    def slotted(self) -> np.ndarray | None:
        """The relevance of the first slotted group (tracks or particles), or None."""
        return next((r for r in self.relevance.values() if np.ndim(r) == 3), None)

    def top(self, k: int = 5) -> list[str]:
        """The `k` most relevant feature names, most relevant first."""
        ranked = sorted(self.feature_relevance.items(), key=lambda kv: -kv[1])
        return [name for name, _ in ranked[:k]]

    def to_dict(self, per_jet: bool = False) -> dict:
        """A JSON-ready summary; `per_jet` adds the per-jet arrays as lists."""
        out = {"method": self.method, "target": self.target, "model": self.model,
               "feature_names": self.feature_names,
               "feature_relevance": self.feature_relevance,
               "top_features": self.top(10),
               "extras": _plain(self.extras)}
        if self.output is not None:
            out["output_mean"] = float(np.mean(self.output))
        if self.base_value is not None:
            out["base_value"] = _plain(self.base_value)
        if per_jet:
            for name, value in self.relevance.items():
                out[name] = np.asarray(value).tolist()
            if self.output is not None:
                out["output"] = np.asarray(self.output).tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Explanation:
        """The Explanation that `to_dict(per_jet=True)` describes (per-jet values as lists or
        arrays); its `to_dict` gives `data` back. Derived keys (top_features, output_mean) are
        recomputed from what they derive from, so output_mean needs the per-jet output."""
        relevance = {name: np.asarray(data[name]) for name in data["feature_names"]
                     if data.get(name) is not None}
        output = None if data.get("output") is None else np.asarray(data["output"])
        return cls(method=data["method"], target=data["target"], model=data["model"],
                   feature_names=data["feature_names"],
                   feature_relevance=data["feature_relevance"], relevance=relevance,
                   output=output, base_value=data.get("base_value"),
                   extras=data.get("extras") or {})

    def to_json(self, path, per_jet: bool = False, force: bool = False) -> Path:
        """Write `to_dict(per_jet)` as strict JSON (see `servable.files`)."""
        from servable.files import write_json

        return write_json(path, self.to_dict(per_jet), force=force)

    def plot(self, path, k: int = 15, force: bool = False) -> Path:
        """Horizontal bar chart of the k most relevant features."""
        from servable.figures import figure

        ranked = sorted(self.feature_relevance.items(), key=lambda kv: -kv[1])[:k]
        with figure(path, (6, 0.3 * max(len(ranked), 3) + 1.2), force=force) as (fig, ax):
            if ranked:
                names, values = zip(*reversed(ranked), strict=True)
                colors = ["C1" if n.startswith("sv_") else "C2" if n.startswith("fj_") else
                          "C0" for n in names]
                ax.barh(names, values, color=colors)
            ax.set_xlabel(self.extras.get("relevance_label", "relevance"))
            ax.set_title(f"{self.model}: {self.method} (target {self.target})")
        return Path(path)


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Method(ABC):
    """Base class: subclasses set `name`, `applies_to` and implement `attribute`.

    A method declares whether its result for a set of jets is the concatenation of its
    results for parts of the set (`splittable`: remote execution may then split the jets
    across tasks), which figures it draws (`figures`) and its parameters (the keyword
    arguments of `attribute`, checked by `check_params`).

    Every subclass's `attribute` runs inside `modelstate.preserved(tagger.net)`: whatever it
    does to the network (mode, hooks, attributes, gradients), the model is given back
    exactly as it was, also when the method raises.
    """

    name: str = ""
    applies_to: tuple[str, ...] = ("in", "mlp", "bdt", "part", "particlenet")
    splittable: bool = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "attribute" in vars(cls):
            cls.attribute = _leaves_the_model_as_found(vars(cls)["attribute"])

    def __init__(self, bundle: Bundle):
        if bundle.kind not in self.applies_to:
            raise MethodNotApplicable(
                f"method '{self.name}' does not apply to a {bundle.kind} model; it applies to "
                f"{', '.join(self.applies_to)}")
        self.bundle = bundle
        self.tagger = bundle.tagger
        self.spec: InputSpec = self.tagger.input_spec()

    @abstractmethod
    def attribute(self, jets: Jets, target: int = 1, **params) -> Explanation:
        """Explain `target` for `jets`."""

    @classmethod
    def parameters(cls) -> dict:
        """The method's parameters and their defaults."""
        return {name: p.default for name, p in inspect.signature(cls.attribute).parameters.items()
                if name not in ("self", "jets", "target")}

    @classmethod
    def check_params(cls, params: dict) -> None:
        """Refuse parameters the method does not take, naming those it does."""
        accepted = cls.parameters()
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ServableError(f"method {cls.name} takes parameters "
                                f"{', '.join(accepted) or '(none)'}; not {', '.join(unknown)}")

    @classmethod
    def figures(cls, explanation: Explanation, out: Path, force: bool = False) -> list[Path]:
        """Draw the method's figures into `out` (over existing ones only with `force`): by
        default the relevance bar chart."""
        if not explanation.feature_relevance:
            return []
        return [explanation.plot(Path(out) / "relevance.png", force=force)]

    # helpers shared by methods ----------------------------------------------------------
    def feature_names(self) -> dict[str, list[str]]:
        """The model's feature names per Explanation field (tracks, vertices, particles,
        jet)."""
        return self.spec.feature_names()

    def features(self) -> list[tuple[str, int]]:
        """Every (input group, column) of the model, in input order."""
        return [(g.name, i) for g in self.spec for i in range(len(g.features))]

    def explanation(self, relevance: dict[str, np.ndarray], target: int, **kw) -> Explanation:
        """Wrap per-input relevance (keys: input group names) into an Explanation."""
        names = self.feature_names()
        fields = {self.spec[k].field: v for k, v in relevance.items()}
        aggregated = {}
        for key, rel in fields.items():
            per_feature = np.abs(rel).sum(axis=2) if rel.ndim == 3 else np.abs(rel)
            for name, value in zip(names[key], per_feature.mean(axis=0), strict=True):
                aggregated[name] = float(value)
        return Explanation(method=self.name, target=target, model=self.tagger.kind,
                           feature_names=names, feature_relevance=aggregated,
                           relevance=fields, **kw)


def _leaves_the_model_as_found(attribute):
    """`attribute` run inside `preserved` on the method's torch network (if it has one)."""
    @functools.wraps(attribute)
    def wrapper(self, *args, **kwargs):
        net = getattr(self.tagger, "net", None)
        if net is None:  # no torch network (the BDT): nothing to preserve, torch not imported
            return attribute(self, *args, **kwargs)
        from servable.explain.modelstate import preserved

        with preserved(net):
            return attribute(self, *args, **kwargs)
    return wrapper


def mask_padding_and_categorical(relevance: dict[str, np.ndarray], inputs,
                                 spec: InputSpec) -> list[str]:
    """Zero the relevance of padded slots and of categorical features (in place)."""
    excluded = []
    for key, rel in relevance.items():
        group = spec[key]
        if rel.ndim == 3:
            rel *= filled_mask(inputs[key], keepdims=True)
        for col in group.categorical():
            rel[:, col] = 0
            excluded.append(group.features[col])
    return excluded
