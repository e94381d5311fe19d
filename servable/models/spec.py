"""What a model reads: its input groups, each with feature names, units, slot count, padding
and preprocessing. One specification that the bundle manifest, the ONNX export, the
explanation methods and input validation all read (numpy only: no torch on this path).

A group is either per jet, (n, features), or slotted and channels-first,
(n, features, slots), zero-padded with the filled slots first. `select` picks a model's
features by name from full-layout jets and checks the slot count, the same way for every
runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from servable.data import schema
from servable.data.jets import InvalidJetsError, Jets, check_finite
from servable.data.particles import VECTORS
from servable.errors import ServableError

# the field of an Explanation that holds each group's relevance
EXPLANATION_FIELDS = {"tracks": "tracks", "vertices": "vertices", "jet_features": "jet",
                      "particles": "particles"}
LAYOUT = "channels-first (jets, features, slots)"
PADDING = "zero-padded slots after the filled ones; filled slots sorted by decreasing pT"


def _feature_entry(name: str) -> dict:
    try:
        f = schema.lookup(name)
    except KeyError:
        return {"name": name, "unit": "", "meaning": "", "categorical": False}
    return {"name": name, "unit": f.unit, "meaning": f.meaning, "categorical": f.categorical}


@dataclass(frozen=True)
class InputGroup:
    """One model input: `name` (tracks, vertices, particles, jet_features), its features in
    order, its slot count (None for a per-jet vector) and the preprocessing applied inside the
    model."""

    name: str
    features: tuple[str, ...]
    slots: int | None = None
    preprocessing: dict | None = field(default=None, compare=False)

    @property
    def shape(self) -> list:
        """The shape with a free jet axis: [None, features] or [None, features, slots]."""
        return [None, len(self.features)] + ([self.slots] if self.slots is not None else [])

    @property
    def field(self) -> str:
        """The Explanation field this group's relevance goes to (tracks, vertices, jet,
        particles)."""
        return EXPLANATION_FIELDS.get(self.name, self.name)

    def categorical(self) -> list[int]:
        """Columns of categorical features (codes, not quantities)."""
        return [i for i, n in enumerate(self.features) if _feature_entry(n)["categorical"]]

    def select(self, jets: Jets) -> np.ndarray:
        """This group's features, picked by name from `jets`; shape, dtype and slot count are
        checked here, at the point of use, so jets changed after construction are caught."""
        if not jets.has(self.name):
            raise InvalidJetsError(f"{self.name}: the model needs this input group, and these "
                                   f"{jets.layout}-layout jets hold only "
                                   f"{', '.join(jets.groups)}")
        group = jets.group(self.name)
        array, have = np.asarray(group.values), group.features
        expected = ("(jets, features)" if self.slots is None
                    else "(jets, features, slots)")
        if array.ndim != (2 if self.slots is None else 3) or array.shape[1] != len(have):
            raise InvalidJetsError(f"{self.name}: expected shape {expected} with "
                                   f"{len(have)} features, received {array.shape}")
        if not np.issubdtype(array.dtype, np.floating):
            raise InvalidJetsError(f"{self.name}: expected a floating-point array, received "
                                   f"dtype {array.dtype}")
        if self.slots is not None and array.shape[2] != self.slots:
            raise InvalidJetsError(
                f"{self.name}: the model takes {self.slots} slots per jet, the input has "
                f"{array.shape[2]}; zero-pad (or keep the {self.slots} leading by pT) to "
                f"{self.slots}")
        have, want = list(have), list(self.features)
        if have == want:
            return array
        missing = [w for w in want if w not in have]
        if missing:
            raise InvalidJetsError(
                f"{self.name}: the model needs features {missing[:3]}"
                f"{'...' if len(missing) > 3 else ''} which the input lacks (it has "
                f"{len(have)} features)")
        return np.ascontiguousarray(array[:, [have.index(w) for w in want]])

    def example(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Plausible inputs of varied multiplicity (filled slots first), for tracing; particle
        four-vectors are physical (E >= |p|)."""
        if self.slots is None:
            return rng.normal(size=(n, len(self.features))).astype(np.float32)
        a = np.zeros((n, len(self.features), self.slots), np.float32)
        for i in range(n):
            k = 1 + (i * 7) % self.slots
            a[i, :, :k] = np.abs(rng.normal(size=(len(self.features), k))) + 0.1
        if all(v in self.features for v in VECTORS):
            px, py, pz, e = (self.features.index(v) for v in VECTORS)
            filled = a[:, e] != 0
            a[:, e] = np.where(filled, np.sqrt(a[:, px] ** 2 + a[:, py] ** 2 + a[:, pz] ** 2)
                               + 0.1, 0.0)
        return a

    def to_manifest(self) -> dict:
        """The manifest entry: name, shape, dtype, features with units, layout and padding."""
        entry = {"name": self.name, "shape": self.shape, "dtype": "float32",
                 "features": [_feature_entry(n) for n in self.features]}
        if self.slots is not None:
            entry["layout"] = LAYOUT
            entry["padding"] = PADDING
        return entry

    @classmethod
    def from_manifest(cls, entry: dict) -> InputGroup:
        """The group a manifest entry describes."""
        shape = entry["shape"]
        return cls(entry["name"], tuple(f["name"] for f in entry["features"]),
                   shape[2] if len(shape) == 3 else None)


@dataclass(frozen=True)
class InputSpec:
    """A model's input groups, in the order the network (and its ONNX graph) takes them."""

    groups: tuple[InputGroup, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The group names, in input order."""
        return tuple(g.name for g in self.groups)

    def __getitem__(self, name: str) -> InputGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    def __iter__(self):
        return iter(self.groups)

    def select(self, jets: Jets) -> dict[str, np.ndarray]:
        """The arrays the model consumes, by group name: the one check at the point of use
        for every runtime (shapes against this spec, one jet count, finite values)."""
        arrays = {g.name: g.select(jets) for g in self.groups}
        counts = {name: len(a) for name, a in arrays.items()}
        if len(set(counts.values())) > 1:
            raise InvalidJetsError(f"jets: every input needs the same number of jets, "
                                   f"received {counts}")
        for name, array in arrays.items():
            check_finite(name, array)
        return arrays

    def feature_names(self) -> dict[str, list[str]]:
        """Feature names per Explanation field (tracks, vertices, jet)."""
        return {g.field: list(g.features) for g in self.groups}

    def example(self, n: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
        """Random inputs of `n` jets with this spec's shapes (for exports and smoke tests)."""
        rng = np.random.default_rng(seed)
        return {g.name: g.example(n, rng) for g in self.groups}

    def to_manifest(self) -> list[dict]:
        """The manifest's `inputs` entries."""
        return [g.to_manifest() for g in self.groups]

    @classmethod
    def from_manifest(cls, entries: list[dict]) -> InputSpec:
        """The spec a manifest's `inputs` describe."""
        return cls(tuple(InputGroup.from_manifest(e) for e in entries))


def leading_slotted(inputs: dict[str, np.ndarray]) -> np.ndarray | None:
    """The first slotted input (tracks or particles: the group whose multiplicity sets a
    model's cost), or None when every input is one vector per jet."""
    return next((v for v in inputs.values() if np.ndim(v) == 3), None)


def chosen_features(available: dict[str, Sequence[str]], keep: dict[str, Sequence[str] | None],
                    drop: Sequence[str] = ()) -> dict[str, list[str]]:
    """Per input group, the features a model trains on: those in `keep` (all `available`
    when None), in the data's order, less those named in `drop`.

    Parameters
    ----------
    available : the data's feature names per group (tracks, vertices, jet_features)
    keep : per group, the names to keep, or None for all
    drop : names to leave out, from any group

    Every name given must be one of the data's; every group keeps at least one feature.
    """
    known = {n for names in available.values() for n in names}
    unknown = [n for n in [*drop, *(n for k in keep.values() if k for n in k)] if n not in known]
    if unknown:
        raise ServableError(f"unknown feature names {', '.join(unknown[:5])}: the data has "
                            f"{', '.join(f'{len(v)} {g}' for g, v in available.items())} "
                            "features (see `servable data inspect`)")
    out = {}
    for group, names in available.items():
        wanted = keep.get(group)
        misplaced = [n for n in wanted or () if n not in names]
        if misplaced:
            raise ServableError(f"{', '.join(misplaced[:3])}: not {group} features")
        chosen = [n for n in names if (wanted is None or n in wanted) and n not in drop]
        if names and not chosen:  # a group the data lacks (JetClass: vertices) stays empty
            raise ServableError(f"no {group} features left: keep at least one")
        out[group] = chosen
    return out
