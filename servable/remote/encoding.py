"""Jets as they travel to a worker: plain dicts of arrays, only the filled slots of each group.

The wire format is the CMS layout's (tracks, vertices, jet features, their name lists).

A padded group (tracks, vertices: channels-first (n, features, slots), zero padding last) is
sent as {"slots": S, "counts": (n,) int32, "rows": (sum(counts), features)}: each jet's
number of filled slots and their rows, jet after jet. Generated CMS jets fill ~22 of 60 track
slots, so this is ~2.7x smaller than the padded arrays. The worker expands it back to the
padded array, equal value for value (a padding slot is one whose features are all exactly
zero, `servable.data.jets.filled_mask`; it comes back as +0.0). Padded arrays are still
accepted, so a caller of the shipped functions may send either form.
"""

from __future__ import annotations

import numbers

import numpy as np

from servable.data.jets import InvalidJetsError, check_filled_first, leading_slots

JET_ARRAYS = ("tracks", "vertices", "jet_features", "labels", "spectators")
NAME_LISTS = ("track_names", "vertex_names", "jet_feature_names")
SLOT_GROUPS = ("tracks", "vertices")
COMPACT_KEYS = {"slots", "counts", "rows"}
# the most bytes a worker expands one task's compact groups to: 2 GB holds ~270k CMS jets,
# over 10x the jets a 10 MB payload carries; the client never puts more in one task
MAX_EXPANDED_BYTES = 2 * 1000 ** 3


def jets_to_arrays(jets) -> dict:
    """The plain dict a shipped function takes: arrays plus feature-name lists."""
    if jets.layout != "cms":
        raise InvalidJetsError(f"remote functions take CMS-layout jets (tracks, vertices); "
                               f"these are {jets.layout}-layout jets")
    out = {k: getattr(jets, k) for k in JET_ARRAYS if getattr(jets, k) is not None}
    out.update({k: list(getattr(jets, k)) for k in NAME_LISTS})
    return out


def compact_slots(name: str, array) -> dict:
    """The filled slots of a padded group (n, features, slots), as `expand_slots` takes them.

    Raises
    ------
    InvalidJetsError
        when `array` is not 3-dimensional or has an empty slot before a filled one.
    """
    array = np.asarray(array)
    if array.ndim != 3:
        raise InvalidJetsError(f"{name}: expected 3 dimensions, received shape {array.shape}")
    counts = check_filled_first(name, array).astype(np.int32)
    rows = array.transpose(0, 2, 1)[leading_slots(counts, array.shape[2])]
    return {"slots": array.shape[2], "counts": counts, "rows": rows}


def _array(name: str, value, ndim: int, kind, what: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.ndim != ndim or not np.issubdtype(
            value.dtype, kind):
        got = (f"{value.dtype} array of shape {value.shape}" if isinstance(value, np.ndarray)
               else type(value).__name__)
        raise InvalidJetsError(f"{name}: expected {what}, received {got}")
    return value


def expand_slots(name: str, group) -> np.ndarray:
    """The padded group (n, features, slots) of `compact_slots`'s dict, checked first.

    Raises
    ------
    InvalidJetsError
        one line naming the group and what does not fit: keys, types, counts outside
        0..slots, rows that are not the counts' sum, or an expansion over
        MAX_EXPANDED_BYTES (never allocated).
    """
    if not isinstance(group, dict) or set(group) != COMPACT_KEYS:
        keys = sorted(group) if isinstance(group, dict) else type(group).__name__
        raise InvalidJetsError(f"{name}: expected a padded array or a dict with keys "
                               f"{sorted(COMPACT_KEYS)}, received {keys}")
    slots = group["slots"]
    if isinstance(slots, bool) or not isinstance(slots, numbers.Integral) or slots < 0:
        raise InvalidJetsError(f"{name}.slots: expected an integer >= 0, received {slots!r}")
    counts = _array(f"{name}.counts", group["counts"], 1, np.integer, "a 1-d integer array")
    rows = _array(f"{name}.rows", group["rows"], 2, np.floating,
                  "a 2-d floating-point array (filled slots, features)")
    if len(counts) and (counts.min() < 0 or counts.max() > slots):
        raise InvalidJetsError(f"{name}.counts: expected counts from 0 to {slots} (the "
                               f"slots), received {counts.min()} to {counts.max()}")
    filled = int(counts.sum(dtype=np.int64))
    if filled != len(rows):
        raise InvalidJetsError(f"{name}.rows: expected {filled} rows (the sum of the counts), "
                               f"received {len(rows)}")
    n, features, slots = len(counts), rows.shape[1], int(slots)
    size = n * slots * (features * rows.itemsize + 1)  # the array and the mask of filled slots
    if size > MAX_EXPANDED_BYTES:
        raise InvalidJetsError(f"{name}: {n} jets of {features} features x {slots} slots "
                               f"expand to {size / 1e9:.1f} GB, over the worker's "
                               f"{MAX_EXPANDED_BYTES / 1e9:.0f} GB; send fewer jets per task")
    padded = np.zeros((n, features, slots), rows.dtype)
    padded.transpose(0, 2, 1)[leading_slots(counts, slots)] = rows
    return padded


def compact_arrays(arrays: dict) -> dict:
    """`arrays` with its padded groups in compact form (name lists and other arrays as
    they are)."""
    return {k: compact_slots(k, v) if k in SLOT_GROUPS and not isinstance(v, dict) else v
            for k, v in arrays.items()}


def jet_count(arrays: dict) -> int:
    """How many jets a padded or compact dict of arrays holds."""
    tracks = arrays["tracks"]
    return len(tracks["counts"]) if isinstance(tracks, dict) else len(tracks)


def bytes_per_jet(arrays: dict) -> np.ndarray:
    """The bytes each jet adds to a compact dict's arrays, (n,) int64: its filled rows and
    counts, and its row of every other per-jet array."""
    n = jet_count(arrays)
    size = np.zeros(n, np.int64)
    for value in arrays.values():
        if isinstance(value, dict):
            row = value["rows"].itemsize * value["rows"].shape[1]
            size += value["counts"].astype(np.int64) * row + value["counts"].itemsize
        elif isinstance(value, np.ndarray) and n:
            size += value.nbytes // n
    return size


def padded_bytes_per_jet(arrays: dict) -> int:
    """The bytes one jet of a compact dict's groups takes once expanded."""
    return sum(v["rows"].itemsize * v["rows"].shape[1] * int(v["slots"])
               for v in arrays.values() if isinstance(v, dict))


def take(arrays: dict, start: int, stop: int) -> dict:
    """Jets start..stop of a padded or compact dict of arrays (name lists pass unchanged)."""
    n = jet_count(arrays)
    start, stop = min(start, n), min(stop, n)

    def part(value):
        if isinstance(value, dict):
            offsets = np.concatenate([[0], np.cumsum(value["counts"], dtype=np.int64)])
            return {"slots": value["slots"], "counts": value["counts"][start:stop],
                    "rows": value["rows"][offsets[start]:offsets[stop]]}
        return value[start:stop] if isinstance(value, np.ndarray) else value

    return {k: part(v) for k, v in arrays.items()}


def jets_from_arrays(arrays: dict):
    """Validated `Jets` from the dict a caller sent (tracks and vertices required, each
    padded or compact)."""
    from servable.data.jets import Jets

    if not isinstance(arrays, dict):
        raise InvalidJetsError(f"jets: expected a dict of arrays, got {type(arrays).__name__}")
    unknown = set(arrays) - set(JET_ARRAYS) - set(NAME_LISTS)
    if unknown:
        raise InvalidJetsError(f"jets: unknown keys {sorted(unknown)}; allowed: "
                               f"{', '.join(JET_ARRAYS + NAME_LISTS)}")
    for key in SLOT_GROUPS:
        if key not in arrays:
            raise InvalidJetsError(f"jets: the dict has no {key!r} array")
    kwargs = {k: expand_slots(k, arrays[k]) if k in SLOT_GROUPS and isinstance(arrays[k], dict)
              else np.asarray(arrays[k]) for k in JET_ARRAYS if arrays.get(k) is not None}
    kwargs.update({k: tuple(arrays[k]) for k in NAME_LISTS if arrays.get(k) is not None})
    return Jets.cms(**kwargs)
