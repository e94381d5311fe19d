"""Jets in memory: named input groups (tracks, vertices, particles, jet features, ...), labels
and truth, plus their validation.

A layout is a set of groups: the CMS H->bb layout holds `tracks`, `vertices` and
`jet_features`; the JetClass layout holds `particles` and `jet_features`. Each group carries
its values, its feature names and (for slotted groups) its slot count, so a consumer asks for
a group by name and a new layout is a new set of groups, not a special case.

`validate_group` (and `validate_jets` for the CMS arrays) is the one input check that every
entry point (Python API, CLI, remote functions) goes through, in the spirit of
scikit-learn's `check_array`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from servable.data import schema
from servable.errors import ServableError

# the two layouts one Jets container serves, each a set of input groups
CMS, JETCLASS = "cms", "jetclass"
LAYOUTS: dict[str, tuple[str, ...]] = {
    CMS: ("tracks", "vertices", "jet_features"),
    JETCLASS: ("particles", "jet_features"),
}


class InvalidJetsError(ServableError, ValueError):
    """Input jets that do not follow the layout; the message names array, expected and received."""


def _as_float32(name: str, array, ndim: int) -> np.ndarray:
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidJetsError(
            f"{name}: expected a floating-point array, received dtype {array.dtype}"
        )
    if array.ndim != ndim:
        raise InvalidJetsError(
            f"{name}: expected {ndim} dimensions, received shape {array.shape}"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def check_finite(name: str, array: np.ndarray) -> None:
    """Refuse NaN or infinite values in `array`, naming the first jet that has one."""
    bad = ~np.isfinite(array)
    if bad.any():
        jet = int(np.argwhere(bad)[0][0])
        raise InvalidJetsError(
            f"{name}: {int(bad.sum())} NaN/Inf values (first in jet {jet}); "
            "replace them or drop those jets"
        )


def _check_one_hot(labels: np.ndarray) -> None:
    if labels.shape[1] < 2:
        raise InvalidJetsError(
            f"labels: expected one column per class (at least 2), received shape {labels.shape}"
        )
    bad = ~(((labels == 0) | (labels == 1)).all(axis=1) & (labels.sum(axis=1) == 1))
    if bad.any():
        jet = int(np.argmax(bad))
        raise InvalidJetsError(
            f"labels: expected one-hot rows (one 1, the rest 0), received "
            f"{labels[jet].tolist()} for jet {jet} ({int(bad.sum())} such jets)"
        )


def filled_mask(array, keepdims: bool = False):
    """Which slots hold an object: (n, slots) for a channels-first array (n, features, slots),
    (n, 1, slots) with `keepdims`. A slot is padding when all its features are exactly zero.
    Works on numpy arrays and torch tensors alike."""
    mask = (array != 0).any(1)
    return mask[:, None] if keepdims else mask


def filled_slots(array: np.ndarray) -> np.ndarray:
    """Per jet, how many slots hold an object (channels-first array (n, features, slots))."""
    return filled_mask(array).sum(1)


def leading_slots(counts: np.ndarray, slots: int) -> np.ndarray:
    """The (n, slots) mask of the first `counts[i]` slots of each jet: where filled slots
    stand when padding comes last."""
    return np.arange(slots)[None, :] < np.asarray(counts)[:, None]


def check_filled_first(name: str, array: np.ndarray) -> np.ndarray:
    """Per jet, how many slots hold an object (channels-first array (n, features, slots)),
    after checking that the filled slots come before the padding.

    Raises
    ------
    InvalidJetsError
        naming the first jet with an empty slot before a filled one.
    """
    occupied = filled_mask(array)  # (n, slots)
    count = occupied.sum(axis=1)
    broken = np.any(occupied != leading_slots(count, array.shape[2]), axis=1)
    if broken.any():
        jet = int(np.argmax(broken))
        raise InvalidJetsError(
            f"{name}: zero-padded slots must come after the filled ones; jet {jet} has an empty "
            "slot before a filled one (sort the slots, filled first)"
        )
    return count


def _check_channels(name: str, array: np.ndarray, names: Sequence[str], slots: int | None):
    if array.shape[1] != len(names):
        first = f" ({names[0]} ... {names[-1]})" if names else ""
        raise InvalidJetsError(
            f"{name}: expected {len(names)} features on axis 1{first}, "
            f"received {array.shape[1]} (shape {array.shape}); arrays are channels-first "
            "(jets, features, slots)"
        )
    if slots is not None and array.ndim == 3 and array.shape[2] != slots:
        raise InvalidJetsError(
            f"{name}: expected {slots} slots on axis 2, received {array.shape[2]} "
            f"(shape {array.shape})"
        )


def validate_group(name: str, values, features: Sequence[str], *, slotted: bool,
                   slots: int | None = None, check_padding: bool = True) -> np.ndarray:
    """One input group checked and returned as a contiguous float32 array.

    Parameters
    ----------
    name : the group's name, used in messages
    values : (n, features) per jet, or (n, features, slots) channels-first when `slotted`
    features : the feature names, one per channel
    slotted : whether the group has slots (tracks, vertices, particles)
    slots : the required slot count, or None for any
    check_padding : whether zero-padded slots must come after the filled ones

    Raises
    ------
    InvalidJetsError
        naming the group, what was expected and what was received.
    """
    array = _as_float32(name, values, 3 if slotted else 2)
    _check_channels(name, array, features, slots)
    check_finite(name, array)
    if slotted and check_padding:
        check_filled_first(name, array)
    return array


def validate_jets(
    tracks,
    vertices,
    jet_features=None,
    labels=None,
    spectators=None,
    *,
    track_names: Sequence[str] = schema.TRACK_NAMES,
    vertex_names: Sequence[str] = schema.VERTEX_NAMES,
    jet_feature_names: Sequence[str] = schema.JET_NAMES,
    track_slots: int | None = schema.TRACK_SLOTS,
    vertex_slots: int | None = schema.VERTEX_SLOTS,
    check_padding: bool = True,
) -> dict[str, np.ndarray | None]:
    """Check jets in the CMS layout against it and return them as contiguous float32 arrays.

    Returns
    -------
    dict
        tracks, vertices, jet_features, labels, spectators (None where not given).

    Raises
    ------
    InvalidJetsError
        naming the array, what was expected and what was received.
    """
    out: dict[str, np.ndarray | None] = {
        "tracks": validate_group("tracks", tracks, track_names, slotted=True, slots=track_slots,
                                 check_padding=check_padding),
        "vertices": validate_group("vertices", vertices, vertex_names, slotted=True,
                                   slots=vertex_slots, check_padding=check_padding),
        "jet_features": None if jet_features is None else validate_group(
            "jet_features", jet_features, jet_feature_names, slotted=False),
    }
    n = len(out["tracks"])
    for key, value in out.items():
        if value is not None and len(value) != n:
            raise InvalidJetsError(f"{key}: expected {n} jets like tracks, received {len(value)}")
    out.update(_validate_per_jet(n, labels, spectators))
    return out


def _validate_per_jet(n: int, labels, spectators) -> dict[str, np.ndarray | None]:
    out = {}
    for key, array, width in (("labels", labels, None),
                              ("spectators", spectators, len(schema.SPECTATOR_NAMES))):
        if array is None:
            out[key] = None
            continue
        a = _as_float32(key, array, 2)
        if len(a) != n:
            raise InvalidJetsError(f"{key}: expected {n} jets like the inputs, received {len(a)}")
        if width is not None and a.shape[1] != width:
            raise InvalidJetsError(
                f"{key}: expected {width} columns, received {a.shape[1]} (shape {a.shape})")
        check_finite(key, a)
        out[key] = a
    if out["labels"] is not None:
        _check_one_hot(out["labels"])
    return out


def class_index(target, class_names: Sequence[str]) -> int:
    """The index of a target class given as an index (int, or its digits as text) or a
    name: the one parser for the API, the CLI and remote calls.

    Raises
    ------
    InvalidJetsError
        one line naming the classes with their indices.
    """
    names = list(class_names)
    choices = ", ".join(f"{i} = {c}" for i, c in enumerate(names))
    index = None
    if isinstance(target, str):
        text = target.strip()
        if text in names:
            return names.index(text)
        if text.lstrip("+-").isdigit():
            index = int(text)
    elif isinstance(target, (int, np.integer)) and not isinstance(target, (bool, np.bool_)):
        index = int(target)
    if index is None or not 0 <= index < len(names):
        raise InvalidJetsError(f"target {target!r}: give a class index or name of {choices}")
    return index


@dataclass(frozen=True)
class Group:
    """One named input group of a batch of jets.

    Attributes
    ----------
    name : str
        What the group holds (tracks, vertices, particles, jet_features, ...).
    values : numpy.ndarray
        (n, features) for a per-jet group; (n, features, slots) channels-first, zero-padded
        after the filled slots, for a slotted one.
    features : tuple of str
        The feature names, one per channel.
    """

    name: str
    values: np.ndarray
    features: tuple[str, ...]

    @property
    def slotted(self) -> bool:
        """Whether the group has slots (objects per jet) rather than one vector per jet."""
        return np.ndim(self.values) == 3

    @property
    def slots(self) -> int | None:
        """The slot count, None for a per-jet group."""
        return int(np.shape(self.values)[2]) if self.slotted else None

    def column(self, feature: str) -> np.ndarray:
        """One feature's values: (n,) per jet or (n, slots)."""
        if feature not in self.features:
            raise InvalidJetsError(f"{self.name}: no feature {feature!r}; it has "
                                   f"{', '.join(self.features[:5])}"
                                   f"{' ...' if len(self.features) > 5 else ''}")
        return self.values[:, self.features.index(feature)]

    def filled(self) -> np.ndarray:
        """Per jet, how many slots hold an object (slotted groups only)."""
        if not self.slotted:
            raise InvalidJetsError(f"{self.name}: a per-jet group has no slots")
        return filled_slots(self.values)

    def with_features(self, names: Sequence[str], values: np.ndarray) -> Group:
        """This group with channels `names` (values (n, k[, slots])) appended."""
        return Group(self.name, np.concatenate([self.values, values], axis=1),
                     (*self.features, *names))


class Jets:
    """A batch of jets: named input groups, labels, spectators and generator truth.

    `Jets.cms(tracks, vertices, ...)` builds CMS-layout jets from arrays (what
    `Jets(tracks, vertices, ...)` did before groups were named).

    Parameters
    ----------
    groups : mapping of group name to `Group` or to a (values, feature names) pair; the CMS
        layout's are `tracks` (n, 30, 60), `vertices` (n, 14, 5) and, optionally,
        `jet_features` (n, 27); the JetClass layout's are `particles` (n, 23, 128) and
        `jet_features` (see `LAYOUTS`)
    labels : (n, classes) one-hot, in the order of `class_names`, optional
    spectators : (n, 11) float32 (CMS `spectator_subgroup`), optional
    class_names : the classes, one per label column ([QCD, Hbb] in the CMS layout; the ten
        JetClass classes for JetClass files): they come from the data and travel into bundles
    extras : per-jet arrays the inputs do not hold (e.g. generator truth)
    validate : check every array (shapes, dtypes, finite values, filled slots first)
    """

    def __init__(self, groups: Mapping[str, Group | tuple], labels=None, spectators=None, *,
                 class_names: Sequence[str] | None = None,
                 extras: Mapping[str, np.ndarray] | None = None, validate: bool = True):
        if not isinstance(groups, Mapping):
            raise TypeError("Jets(groups, ...) takes a mapping of group names to (values, "
                            "feature names); for CMS arrays use Jets.cms(tracks, vertices, ...)")
        self.groups: dict[str, Group] = {}
        for name, g in groups.items():
            values, features = (g.values, g.features) if isinstance(g, Group) else g
            features = tuple(features)
            if validate:
                values = validate_group(name, values, features, slotted=np.ndim(values) == 3)
            self.groups[name] = Group(name, values, features)
        if not self.groups:
            raise InvalidJetsError("jets need at least one input group")
        first, *others = self.groups.values()
        n = len(first.values)
        for g in others:
            if len(g.values) != n:
                raise InvalidJetsError(f"{g.name}: expected {n} jets like {first.name}, "
                                       f"received {len(g.values)}")
        if validate:
            checked = _validate_per_jet(n, labels, spectators)
            labels, spectators = checked["labels"], checked["spectators"]
        self.labels, self.spectators = labels, spectators
        default = schema.JETCLASS_CLASSES if self.layout == JETCLASS else schema.LABELS
        self.class_names = tuple(class_names if class_names is not None else default)
        self.extras: dict[str, np.ndarray] = dict(extras or {})
        if validate and labels is not None and np.shape(labels)[1] != len(self.class_names):
            raise InvalidJetsError(
                f"labels: {np.shape(labels)[1]} columns but {len(self.class_names)} class "
                f"names ({', '.join(self.class_names)}); give one name per label column")

    @classmethod
    def cms(cls, tracks, vertices, jet_features=None, labels=None, spectators=None, *,
            track_names: Sequence[str] = schema.TRACK_NAMES,
            vertex_names: Sequence[str] = schema.VERTEX_NAMES,
            jet_feature_names: Sequence[str] = schema.JET_NAMES,
            extras: Mapping[str, np.ndarray] | None = None, validate: bool = True,
            class_names: Sequence[str] = schema.LABELS) -> Jets:
        """CMS H->bb layout jets from arrays: tracks (n, P, slots), vertices (n, S, slots),
        jet features (n, F) when given, each channels-first and zero-padded."""
        groups = {"tracks": (tracks, track_names), "vertices": (vertices, vertex_names)}
        if jet_features is not None:
            groups["jet_features"] = (jet_features, jet_feature_names)
        return cls(groups, labels, spectators, class_names=class_names, extras=extras,
                   validate=validate)

    def __len__(self) -> int:
        return len(next(iter(self.groups.values())).values)

    def __repr__(self) -> str:
        groups = ", ".join(f"{g.name}{tuple(np.shape(g.values))}" for g in self.groups.values())
        return f"Jets({len(self)} jets, {self.layout} layout: {groups}; classes " \
               f"{', '.join(self.class_names)})"

    def __getitem__(self, index) -> Jets:
        if isinstance(index, (int, np.integer)):
            index = slice(index, index + 1) if index != -1 else slice(-1, None)

        def take(a):
            return None if a is None else a[index]

        return Jets({n: Group(n, g.values[index], g.features) for n, g in self.groups.items()},
                    take(self.labels), take(self.spectators), class_names=self.class_names,
                    extras={k: v[index] for k, v in self.extras.items()}, validate=False)

    def replace(self, *groups: Group, labels=None, extras=None) -> Jets:
        """These jets with `groups` added or replacing those of the same name (and new
        labels or extras when given); nothing is copied or checked again."""
        merged = dict(self.groups)
        merged.update({g.name: g for g in groups})
        return Jets(merged, self.labels if labels is None else labels, self.spectators,
                    class_names=self.class_names,
                    extras=dict(self.extras) if extras is None else extras, validate=False)

    @property
    def layout(self) -> str:
        """`jetclass` for particle-level jets (a `particles` group), `cms` otherwise."""
        return JETCLASS if "particles" in self.groups else CMS

    def leading_slotted(self) -> Group | None:
        """The first slotted group (CMS tracks, JetClass particles): the objects that
        per-slot relevance and generator truth refer to; None when no group has slots."""
        return next((g for g in self.groups.values() if g.slotted), None)

    def has(self, name: str) -> bool:
        """Whether these jets carry the input group `name`."""
        return name in self.groups

    def group(self, name: str) -> Group:
        """The input group `name` (its values, feature names and slots).

        Raises
        ------
        InvalidJetsError
            naming the groups these jets do hold.
        """
        if name not in self.groups:
            raise InvalidJetsError(
                f"no input group {name!r} in these {self.layout}-layout jets; they hold "
                f"{', '.join(self.groups)}")
        return self.groups[name]

    # shortcuts for the CMS layout's groups (a JetClass sample has none of these but
    # jet_features: it is read through group("particles"))
    @property
    def tracks(self) -> np.ndarray:
        """The CMS tracks, (n, P, slots)."""
        return self.group("tracks").values

    @property
    def vertices(self) -> np.ndarray:
        """The CMS secondary vertices, (n, S, slots)."""
        return self.group("vertices").values

    @property
    def jet_features(self) -> np.ndarray | None:
        """The jet-level features (n, F), None when the jets carry none."""
        return self.groups["jet_features"].values if "jet_features" in self.groups else None

    @tracks.setter
    def tracks(self, values) -> None:
        self._set("tracks", values)

    @vertices.setter
    def vertices(self, values) -> None:
        self._set("vertices", values)

    @jet_features.setter
    def jet_features(self, values) -> None:
        self._set("jet_features", values)

    def _set(self, name: str, values) -> None:
        """Replace a group's values, keeping its feature names (unchecked here, as any
        change after construction: the model's input spec checks them at the point of
        use)."""
        if values is None and name == "jet_features":  # the one optional CMS group
            self.groups.pop(name, None)
            return
        self.groups[name] = Group(name, values, self.group(name).features)

    @property
    def track_names(self) -> tuple[str, ...]:
        """The CMS track feature names."""
        return self.group("tracks").features

    @property
    def vertex_names(self) -> tuple[str, ...]:
        """The CMS secondary-vertex feature names."""
        return self.group("vertices").features

    @property
    def jet_feature_names(self) -> tuple[str, ...]:
        """The jet-level feature names (empty when the jets carry none)."""
        return self.groups["jet_features"].features if "jet_features" in self.groups else ()

    @property
    def n_tracks(self) -> np.ndarray:
        """Filled track slots per jet (CMS)."""
        return self.group("tracks").filled()

    @property
    def n_vertices(self) -> np.ndarray:
        """Filled secondary-vertex slots per jet (CMS)."""
        return self.group("vertices").filled()

    @property
    def is_signal(self) -> np.ndarray:
        """Boolean per jet: True for H->bb (requires labels)."""
        return self.is_class("Hbb")

    def is_class(self, name: str) -> np.ndarray:
        """Boolean per jet: True for jets of class `name` (requires labels)."""
        if self.labels is None:
            raise ValueError("these jets carry no labels")
        if name not in self.class_names:
            raise InvalidJetsError(f"no class {name!r}; these jets have "
                                   f"{', '.join(self.class_names)}")
        return self.labels[:, self.class_names.index(name)] > 0.5

    @property
    def class_index(self) -> np.ndarray:
        """The class of each jet as an index into `class_names` (requires labels)."""
        if self.labels is None:
            raise ValueError("these jets carry no labels")
        return self.labels.argmax(1)

    def spectator(self, name: str) -> np.ndarray:
        """One spectator (e.g. `fj_sdmass`) per jet."""
        if self.spectators is None:
            raise ValueError("these jets carry no spectators")
        return self.spectators[:, schema.SPECTATOR_NAMES.index(name)]

    @staticmethod
    def concatenate(parts: Sequence[Jets]) -> Jets:
        """Jets of several batches as one (same groups, feature and class names required)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        for p in parts[1:]:
            if list(p.groups) != list(first.groups):
                raise InvalidJetsError("cannot concatenate jets with different input groups "
                                       f"({', '.join(first.groups)} and {', '.join(p.groups)})")
            for name, g in p.groups.items():
                if g.features != first.groups[name].features:
                    raise InvalidJetsError(f"cannot concatenate jets with different {name} "
                                           "feature names")
            if p.class_names != first.class_names:
                raise InvalidJetsError("cannot concatenate jets with different class_names")

        def cat(values):
            return None if any(v is None for v in values) else np.concatenate(values)

        groups = {name: Group(name, np.concatenate([p.groups[name].values for p in parts]),
                              g.features) for name, g in first.groups.items()}
        extras = {k: np.concatenate([p.extras[k] for p in parts]) for k in first.extras
                  if all(k in p.extras for p in parts)}
        return Jets(groups, cat([p.labels for p in parts]), cat([p.spectators for p in parts]),
                    class_names=first.class_names, extras=extras, validate=False)
