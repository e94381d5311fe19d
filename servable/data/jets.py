"""Jets in memory: channels-first arrays as the CMS layout stores them, plus their validation.

`validate_jets` is the one input check that every entry point (Python API, CLI, remote
functions) goes through, in the spirit of scikit-learn's `check_array`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from servable.data import schema
from servable.errors import ServableError

# the input groups jets carry, and the attribute holding each group's feature names
GROUPS = {"tracks": "track_names", "vertices": "vertex_names",
          "jet_features": "jet_feature_names"}


# the two layouts one Jets container serves; JetClass particles carry part_energy
CMS, JETCLASS = "cms", "jetclass"
JETCLASS_MARKER = "part_energy"


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
        raise InvalidJetsError(
            f"{name}: expected {len(names)} features on axis 1 ({names[0]} ... {names[-1]}), "
            f"received {array.shape[1]} (shape {array.shape}); arrays are channels-first "
            "(jets, features, slots)"
        )
    if slots is not None and array.shape[2] != slots:
        raise InvalidJetsError(
            f"{name}: expected {slots} slots on axis 2, received {array.shape[2]} "
            f"(shape {array.shape})"
        )


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
    """Check jets against the layout and return them as contiguous float32 arrays.

    Raises
    ------
    InvalidJetsError
        naming the array, what was expected and what was received.
    """
    out: dict[str, np.ndarray | None] = {}
    out["tracks"] = t = _as_float32("tracks", tracks, 3)
    _check_channels("tracks", t, track_names, track_slots)
    out["vertices"] = v = _as_float32("vertices", vertices, 3)
    _check_channels("vertices", v, vertex_names, vertex_slots)
    n = len(t)
    if len(v) != n:
        raise InvalidJetsError(f"vertices: expected {n} jets like tracks, received {len(v)}")
    optional = {
        "jet_features": (jet_features, 2, len(jet_feature_names)),
        "labels": (labels, 2, None),
        "spectators": (spectators, 2, len(schema.SPECTATOR_NAMES)),
    }
    for key, (array, ndim, width) in optional.items():
        if array is None:
            out[key] = None
            continue
        a = _as_float32(key, array, ndim)
        if len(a) != n:
            raise InvalidJetsError(f"{key}: expected {n} jets like tracks, received {len(a)}")
        if width is not None and a.shape[1] != width:
            raise InvalidJetsError(
                f"{key}: expected {width} columns, received {a.shape[1]} (shape {a.shape})"
            )
        out[key] = a
    for key, array in out.items():
        if array is not None:
            check_finite(key, array)
    if out["labels"] is not None:
        _check_one_hot(out["labels"])
    if check_padding:
        check_filled_first("tracks", t)
        check_filled_first("vertices", v)
    return out


@dataclass
class Jets:
    """A batch of jets in the CMS H->bb layout or the JetClass particle layout (`layout`).

    Parameters
    ----------
    tracks : (n, P, 60) float32, channels-first, zero-padded (JetClass: the particles, their
        raw and derived channels, (n, 23, 128))
    vertices : (n, S, 5) float32, channels-first, zero-padded (JetClass: none, (n, 0, 0))
    jet_features : (n, F) float32 jet-level `fj_*` features, optional
    labels : (n, classes) one-hot, in the order of `class_names`, optional
    spectators : (n, 11) float32, optional
    class_names : the classes, one per label column ([QCD, Hbb] in the CMS layout; the ten
        JetClass classes for JetClass files): they come from the data and travel into bundles
    """

    tracks: np.ndarray
    vertices: np.ndarray
    jet_features: np.ndarray | None = None
    labels: np.ndarray | None = None
    spectators: np.ndarray | None = None
    track_names: tuple[str, ...] = schema.TRACK_NAMES
    vertex_names: tuple[str, ...] = schema.VERTEX_NAMES
    jet_feature_names: tuple[str, ...] = schema.JET_NAMES
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. generator truth
    validate: bool = field(default=True, repr=False)
    class_names: tuple[str, ...] = schema.LABELS

    def __post_init__(self) -> None:
        self.track_names = tuple(self.track_names)
        self.vertex_names = tuple(self.vertex_names)
        self.jet_feature_names = tuple(self.jet_feature_names)
        self.class_names = tuple(self.class_names)
        if self.validate:
            checked = validate_jets(
                self.tracks, self.vertices, self.jet_features, self.labels, self.spectators,
                track_names=self.track_names, vertex_names=self.vertex_names,
                jet_feature_names=self.jet_feature_names, track_slots=None, vertex_slots=None,
            )
            for key, value in checked.items():
                setattr(self, key, value)
            if self.labels is not None and np.ndim(self.labels) == 2 and (
                    np.shape(self.labels)[1] != len(self.class_names)):
                raise InvalidJetsError(
                    f"labels: {np.shape(self.labels)[1]} columns but {len(self.class_names)} class "
                    f"names ({', '.join(self.class_names)}); give one name per label column")

    def __len__(self) -> int:
        return len(self.tracks)

    def __getitem__(self, index) -> Jets:
        if isinstance(index, (int, np.integer)):
            index = slice(index, index + 1) if index != -1 else slice(-1, None)

        def take(a):
            return None if a is None else a[index]

        return Jets(
            take(self.tracks), take(self.vertices), take(self.jet_features), take(self.labels),
            take(self.spectators), self.track_names, self.vertex_names, self.jet_feature_names,
            {k: v[index] for k, v in self.extras.items()}, validate=False,
            class_names=self.class_names,
        )

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

    @property
    def layout(self) -> str:
        """`jetclass` for particle-level JetClass jets (particles in the tracks group, no
        vertices), `cms` for the CMS H->bb layout."""
        return JETCLASS if JETCLASS_MARKER in self.track_names else CMS

    @property
    def n_tracks(self) -> np.ndarray:
        """Filled track slots per jet."""
        return filled_slots(self.tracks)

    @property
    def n_vertices(self) -> np.ndarray:
        """Filled secondary-vertex slots per jet."""
        return filled_slots(self.vertices)

    def group(self, name: str) -> tuple[np.ndarray | None, tuple[str, ...]]:
        """An input group's array and its feature names (tracks, vertices, jet_features)."""
        if name not in GROUPS:
            raise InvalidJetsError(f"no input group {name!r} in these jets; they hold "
                                   f"{', '.join(GROUPS)}")
        return getattr(self, name), getattr(self, GROUPS[name])

    def spectator(self, name: str) -> np.ndarray:
        """One spectator (e.g. `fj_sdmass`) per jet."""
        if self.spectators is None:
            raise ValueError("these jets carry no spectators")
        return self.spectators[:, schema.SPECTATOR_NAMES.index(name)]

    @staticmethod
    def concatenate(parts: Sequence[Jets]) -> Jets:
        """Jets of several batches as one (same feature and class names required)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        for p in parts[1:]:
            for attr in ("track_names", "vertex_names", "jet_feature_names", "class_names"):
                if getattr(p, attr) != getattr(first, attr):
                    raise InvalidJetsError(f"cannot concatenate jets with different {attr}")

        def cat(attr):
            values = [getattr(p, attr) for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)

        extras = {k: np.concatenate([p.extras[k] for p in parts]) for k in first.extras
                  if all(k in p.extras for p in parts)}
        return Jets(
            cat("tracks"), cat("vertices"), cat("jet_features"), cat("labels"), cat("spectators"),
            first.track_names, first.vertex_names, first.jet_feature_names, extras,
            validate=False, class_names=first.class_names,
        )
