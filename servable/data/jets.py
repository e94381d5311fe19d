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


def _check_finite(name: str, array: np.ndarray) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        jet = int(np.argwhere(bad)[0][0])
        raise InvalidJetsError(
            f"{name}: {int(bad.sum())} NaN/Inf values (first in jet {jet}); "
            "replace them or drop those jets"
        )


def filled_slots(array: np.ndarray) -> np.ndarray:
    """Per jet, how many slots hold an object (channels-first array (n, features, slots))."""
    occupied = np.any(array != 0, axis=1)
    return occupied.sum(axis=1)


def _check_padding(name: str, array: np.ndarray) -> None:
    occupied = np.any(array != 0, axis=1)  # (n, slots)
    count = occupied.sum(axis=1)
    leading = np.arange(array.shape[2])[None, :] < count[:, None]
    broken = np.any(occupied != leading, axis=1)
    if broken.any():
        jet = int(np.argmax(broken))
        raise InvalidJetsError(
            f"{name}: zero-padded slots must come after the filled ones; jet {jet} has an empty "
            "slot before a filled one (sort the slots, filled first)"
        )


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
            _check_finite(key, array)
    if check_padding:
        _check_padding("tracks", t)
        _check_padding("vertices", v)
    return out


@dataclass
class Jets:
    """A batch of jets in the CMS H->bb layout.

    Parameters
    ----------
    tracks : (n, P, 60) float32, channels-first, zero-padded
    vertices : (n, S, 5) float32, channels-first, zero-padded
    jet_features : (n, F) float32 jet-level `fj_*` features, optional
    labels : (n, 2) one-hot [QCD, H->bb], optional
    spectators : (n, 11) float32, optional
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

    def __post_init__(self) -> None:
        self.track_names = tuple(self.track_names)
        self.vertex_names = tuple(self.vertex_names)
        self.jet_feature_names = tuple(self.jet_feature_names)
        if self.validate:
            checked = validate_jets(
                self.tracks, self.vertices, self.jet_features, self.labels, self.spectators,
                track_names=self.track_names, vertex_names=self.vertex_names,
                jet_feature_names=self.jet_feature_names, track_slots=None, vertex_slots=None,
            )
            for key, value in checked.items():
                setattr(self, key, value)

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
        )

    @property
    def is_signal(self) -> np.ndarray:
        """Boolean per jet: True for H->bb (requires labels)."""
        if self.labels is None:
            raise ValueError("these jets carry no labels")
        return self.labels[:, 1] > 0.5

    @property
    def n_tracks(self) -> np.ndarray:
        return filled_slots(self.tracks)

    @property
    def n_vertices(self) -> np.ndarray:
        return filled_slots(self.vertices)

    def spectator(self, name: str) -> np.ndarray:
        if self.spectators is None:
            raise ValueError("these jets carry no spectators")
        return self.spectators[:, schema.SPECTATOR_NAMES.index(name)]

    @staticmethod
    def concatenate(parts: Sequence[Jets]) -> Jets:
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]

        def cat(attr):
            values = [getattr(p, attr) for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)

        extras = {k: np.concatenate([p.extras[k] for p in parts]) for k in first.extras
                  if all(k in p.extras for p in parts)}
        return Jets(
            cat("tracks"), cat("vertices"), cat("jet_features"), cat("labels"), cat("spectators"),
            first.track_names, first.vertex_names, first.jet_feature_names, extras,
            validate=False,
        )


def select_features(array: np.ndarray, have: Sequence[str], want: Sequence[str],
                    what: str) -> np.ndarray:
    """Columns `want` of a channels-first array whose axis-1 columns are named `have`."""
    have, want = list(have), list(want)
    if have == want:
        return array
    missing = [w for w in want if w not in have]
    if missing:
        raise InvalidJetsError(
            f"{what}: the model needs features {missing[:3]}{'...' if len(missing) > 3 else ''}"
            f" which the input lacks (it has {len(have)} features)"
        )
    return np.ascontiguousarray(array[:, [have.index(w) for w in want]])


def model_inputs(jets: Jets, wanted: dict[str, Sequence[str]],
                 slots: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """The arrays a model consumes: for each input (tracks, vertices, jet_features) the
    features it was trained on, picked by name; `slots` checks the padded width too."""
    names = {"tracks": jets.track_names, "vertices": jets.vertex_names,
             "jet_features": jets.jet_feature_names}
    out = {}
    for name, features in wanted.items():
        array = getattr(jets, name)
        if array is None:
            raise InvalidJetsError(f"{name}: the model needs this input (jet-level fj_* "
                                   "features), and the jets have none")
        out[name] = select_features(array, names[name], features, name)
        width = (slots or {}).get(name)
        if width is not None and array.shape[2] != width:
            raise InvalidJetsError(
                f"{name}: the model takes {width} slots per jet, the input has "
                f"{array.shape[2]}; zero-pad (or keep the {width} leading by pT) to {width}")
    return out


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over classes, computed in float64, returned as float32."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


# pairs per chunk of the IN's fast path: keeps the (pairs x hidden) intermediates in cache
PAIR_BUDGET = 1 << 14


def bucket_chunks(n_tracks, budget: int | None = None):
    """Jets sorted by multiplicity, cut into chunks of at most `budget` track pairs.

    Yields (indices, k): the jets of a chunk and their largest track count (at least 1).
    Shared by the PyTorch forward and the ONNX Runtime runner.
    """
    budget = budget or PAIR_BUDGET
    counts_all = np.asarray(n_tracks)
    order = np.argsort(counts_all, kind="stable")
    counts = np.maximum(counts_all[order], 1)
    start = 0
    while start < len(counts):
        stop = start + 1
        while stop < len(counts) and (stop + 1 - start) * counts[stop] ** 2 <= budget:
            stop += 1
        yield order[start:stop], int(counts[stop - 1])
        start = stop
