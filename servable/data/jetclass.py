"""JetClass ROOT files read and written with uproot, to and from the `Jets` container.

Particles fill the `tracks` array (n, 16 + 7, max_particles), channels-first, zero-padded in
the file's order (JetClass stores them by decreasing pT): the raw branches, then the derived
features of `servable.data.particles`; the jet observables of `servable.data.jetobservables`
follow the jet branches. JetClass has no secondary-vertex collection, so `vertices` has no
features and no slots. Labels are the ten one-hot JetClass classes.

Generator truth travels as extra branches (`schema.JETCLASS_TRUTH_PARTICLE`, `part_truth_*`,
one value per particle; `schema.JETCLASS_TRUTH_JET`, `aux_*`, per jet: the names of JetClass's
own `aux_genpart_*`) and is read into `Jets.extras`; the provenance of a generated file is a
JSON string (a TObjString named `provenance`) beside the tree, read by `read_provenance`.
`write_jetclass` writes what `read_jetclass` reads back without loss.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from servable.data import schema
from servable.data.jets import InvalidJetsError, Jets, filled_mask
from servable.data.particles import complete
from servable.errors import ServableError
from servable.files import atomic_output, json_text, regular_file

PARTICLE_BRANCHES = schema.names(schema.JETCLASS_PARTICLE_FEATURES)
JET_BRANCHES = schema.names(schema.JETCLASS_JET_FEATURES)
CLASS_NAMES = schema.JETCLASS_CLASSES
LABEL_BRANCHES = tuple(f"label_{c}" for c in CLASS_NAMES)
PROVENANCE = "provenance"
_PARTICLE_EXTRA, _JET_EXTRA = "part_truth_", "aux_"


# ROOT files are parsed by uproot in Python: a damaged file can fail in it anywhere, with
# any exception type (ValueError, KeyError, zlib.error, uproot.DeserializationError, ...)
# or ask for more memory than there is; every such failure is one line naming the file
_MAX_ENTRIES = 1 << 40


def _damaged(path, what: str, exc: BaseException) -> ServableError:
    first = (str(exc).splitlines() or [""])[0][:200]
    return ServableError(f"{path}: {what} cannot be read ({exc.__class__.__name__}: {first}); "
                         "the file is probably truncated or corrupted")


def _open_tree(path, tree: str):
    import uproot

    try:
        f = uproot.open(path)
    except Exception as exc:
        raise ServableError(f"{path}: not a readable ROOT file ({exc.__class__.__name__}: "
                            f"{(str(exc).splitlines() or [''])[0][:200]})") from None
    try:
        # uproot writes an RNTuple where a mapping of arrays is assigned, a TTree by mktree
        found = tree in f and isinstance(f[tree], (uproot.behaviors.TTree.TTree,
                                                   uproot.behaviors.RNTuple.RNTuple))
    except Exception as exc:
        f.close()
        raise _damaged(path, "the file's directory", exc) from None
    if not found:
        f.close()
        raise ServableError(f"{path}: no TTree '{tree}' (JetClass files keep jets in 'tree')")
    return f


def count_jets(path, tree: str = "tree") -> int:
    """How many jets (entries of `tree`) a JetClass ROOT file holds."""
    with _open_tree(regular_file(path), tree) as f:
        try:
            n = f[tree].num_entries
        except Exception as exc:  # read lazily: a damaged header fails only here
            raise _damaged(path, f"the entries of '{tree}'", exc) from None
    if not 0 <= n < _MAX_ENTRIES:
        raise ServableError(f"{path}: the tree declares {n} entries; the file is corrupted")
    return int(n)


def iter_jetclass(path, chunk_size: int, tree: str = "tree", max_particles: int = 128):
    """The jets of a JetClass ROOT file, `chunk_size` at a time."""
    path = regular_file(path)
    for start in range(0, count_jets(path, tree), chunk_size):
        yield read_jetclass(path, max_particles, tree, start, start + chunk_size)


def _numbers(array, branch: str, path, shape: str) -> None:
    """Refuse a branch that is not numbers in `shape`: "jagged" (a list per jet), "flat" (one
    per jet) or "regular" (an array of one shape per jet), with one line naming the branch,
    its type and the expected one."""
    import awkward as ak

    try:
        flat = ak.flatten(array, axis=1) if shape == "jagged" and array.ndim == 2 else array
        values = ak.to_numpy(flat, allow_missing=False)
    except (ValueError, TypeError, ak.errors.AxisError):  # jagged, strings, records, None
        values = None
    if (values is None or values.dtype.kind not in "biuf"
            or values.ndim != {"jagged": 1, "flat": 1}.get(shape, values.ndim)
            or (shape == "jagged" and array.ndim != 2)):
        wanted = {"jagged": "a variable-length list of numbers per jet",
                  "flat": "one number per jet", "regular": "numbers per jet"}[shape]
        raise ServableError(f"{path}: branch '{branch}' has type {str(array.type)[:80]}; "
                            f"expected {wanted}")


def _read_arrays(path, t, branches: list[str], entry_start: int, entry_stop: int | None):
    """The branches of `t` as awkward arrays, type-checked; the particle branches (and the
    per-particle truth) must agree on each jet's number of particles."""
    import awkward as ak

    try:
        arrays = t.arrays(branches, entry_start=entry_start, entry_stop=entry_stop)
    except MemoryError:
        raise ServableError(f"{path}: entries {entry_start}-{entry_stop} do not fit in "
                            "memory; read the file in smaller chunks") from None
    except Exception as exc:
        raise _damaged(path, f"entries {entry_start}-{entry_stop}", exc) from None
    counts = None
    for b in branches:
        jagged = b in PARTICLE_BRANCHES or b.startswith(_PARTICLE_EXTRA)
        _numbers(arrays[b], b, path, "jagged" if jagged else
                 "regular" if b.startswith(_JET_EXTRA) else "flat")
        if not jagged:
            continue
        n = ak.to_numpy(ak.num(arrays[b], axis=1))
        if counts is None:
            counts, first = n, b
        elif not np.array_equal(n, counts):
            jet = int(np.flatnonzero(n != counts)[0])
            raise ServableError(f"{path}: branch '{b}' holds {n[jet]} particles in jet "
                                f"{entry_start + jet} but '{first}' {counts[jet]}; the "
                                "particle branches must have one value per particle")
    return arrays


def read_jetclass(path, max_particles: int = 128, tree: str = "tree",
                  entry_start: int = 0, entry_stop: int | None = None) -> Jets:
    """Read a JetClass ROOT file into JetClass-layout `Jets` (groups `particles` and
    `jet_features`, derived channels and observables included)."""
    import awkward as ak

    path = regular_file(path)
    with _open_tree(path, tree) as f:
        t = f[tree]
        try:
            keys = t.keys()
        except Exception as exc:
            raise _damaged(path, f"the branches of '{tree}'", exc) from None
        missing = [b for b in (*PARTICLE_BRANCHES, *JET_BRANCHES, *LABEL_BRANCHES)
                   if b not in keys]
        if missing:
            raise ServableError(f"{path}: missing JetClass branches {', '.join(missing)}")
        extra = [b for b in keys if b.startswith((_PARTICLE_EXTRA, _JET_EXTRA))]
        arrays = _read_arrays(path, t, [*PARTICLE_BRANCHES, *JET_BRANCHES, *LABEL_BRANCHES,
                                        *extra], entry_start, entry_stop)
    n = len(arrays)
    particles = np.zeros((n, len(PARTICLE_BRANCHES), max_particles), np.float32)
    for i, branch in enumerate(PARTICLE_BRANCHES):
        padded = ak.fill_none(ak.pad_none(arrays[branch], max_particles, clip=True), 0.0)
        particles[:, i, :] = ak.to_numpy(padded)
    jet = np.stack([ak.to_numpy(arrays[b]) for b in JET_BRANCHES], axis=1).astype(np.float32)
    labels = np.stack([ak.to_numpy(arrays[b]) for b in LABEL_BRANCHES], 1).astype(np.float32)
    extras = {b: _extra(arrays[b], b, max_particles) for b in extra}
    jets = Jets({"particles": (particles, PARTICLE_BRANCHES), "jet_features": (jet, JET_BRANCHES)},
                labels, class_names=CLASS_NAMES, extras=extras)
    return _finite(complete(jets), path, entry_start)


def _finite(jets: Jets, path, start: int) -> Jets:
    """`jets` if every particle and jet feature, derived ones included, is finite; else one
    line naming the first jet and feature (e.g. a jet energy <= 0 gives no log(E/E_jet))."""
    for g, what in ((jets.group("particles"), "particle"), (jets.group("jet_features"), "jet")):
        bad = np.argwhere(~np.isfinite(g.values))
        if len(bad):
            jet, channel = int(bad[0][0]), int(bad[0][1])
            raise ServableError(f"{path}: jet {start + jet}: the {what} feature "
                                f"'{g.features[channel]}' is NaN or infinite ({len(bad)} values "
                                "in this chunk); the file's values give no valid one (a jet "
                                "energy or pT <= 0, say): fix or drop those jets")
    return jets


def _padding(name: str) -> float:
    try:
        default = schema.lookup(name).default
    except KeyError:
        return 0.0
    return 0.0 if default is None else default


def _extra(array, name: str, max_particles: int) -> np.ndarray:
    """A truth branch as a numpy array: per-particle ones padded like the particles."""
    import awkward as ak

    if name.startswith(_PARTICLE_EXTRA):
        dtype = ak.to_numpy(ak.flatten(array)).dtype
        padded = ak.fill_none(ak.pad_none(array, max_particles, clip=True), _padding(name))
        return ak.to_numpy(padded).astype(dtype)
    return ak.to_numpy(array)


def read_provenance(path) -> dict | None:
    """The provenance of a generated JetClass-like file (None for files without one)."""
    import uproot

    path = regular_file(path)
    try:
        with uproot.open(path) as f:
            if PROVENANCE not in f:
                return None
            text = str(f[PROVENANCE])
    except Exception as exc:  # uproot on a damaged file: see _damaged
        raise _damaged(path, f"'{PROVENANCE}'", exc) from None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise ServableError(f"{path}: the '{PROVENANCE}' string is not JSON") from None
    if not isinstance(value, dict):
        raise ServableError(f"{path}: the '{PROVENANCE}' string is not a JSON object")
    return value


def _label_columns(jets: Jets) -> np.ndarray:
    """The labels as the ten JetClass columns (classes the jets do not have are all 0)."""
    unknown = [c for c in jets.class_names if c not in CLASS_NAMES]
    if jets.labels is None or unknown:
        raise InvalidJetsError(
            "a JetClass file needs labels of JetClass classes "
            f"({', '.join(CLASS_NAMES)}); these jets have "
            f"{', '.join(unknown) if jets.labels is not None else 'no labels'}")
    out = np.zeros((len(jets), len(CLASS_NAMES)), np.float32)
    for i, name in enumerate(jets.class_names):
        out[:, CLASS_NAMES.index(name)] = jets.labels[:, i]
    return out


class _KeepOpen:
    """The atomic output file as uproot sees it: uproot closes what it writes to, but the file
    must stay open until `atomic_output` has synced and renamed it."""

    def __init__(self, f):
        self._f = f

    def __getattr__(self, name):
        return getattr(self._f, name)

    def close(self) -> None:
        self._f.flush()


def _branch_type(value):
    if isinstance(value, np.ndarray):
        return value.dtype if value.ndim == 1 else np.dtype((value.dtype, value.shape[1:]))
    return value.type.content


def write_jetclass(path, jets: Jets, provenance: dict | None = None, *, force: bool = False,
                   tree: str = "tree") -> Path:
    """Write JetClass-layout jets as a JetClass ROOT file (uproot, TTree `tree`): the 16 raw
    particle branches (each jet's filled slots, in slot order), the jet branches, `label_*`
    for the ten classes, the generator truth in `jets.extras` (`part_truth_*` per particle,
    `aux_*` per jet) and `provenance` as JSON. Through `servable.files.atomic_output`: never
    over an existing file without `force`."""
    import awkward as ak
    import uproot

    if not jets.has("particles"):
        raise InvalidJetsError(f"not JetClass-layout jets: no 'particles' group (they hold "
                               f"{', '.join(jets.groups)})")
    part = jets.group("particles")
    names = list(part.features)
    missing = [b for b in PARTICLE_BRANCHES if b not in names]
    missing += [b for b in JET_BRANCHES if b not in jets.jet_feature_names]
    if missing:
        raise InvalidJetsError(f"not JetClass-layout jets: missing {', '.join(missing)}")
    n = len(jets)
    raw = part.values[:, [names.index(b) for b in PARTICLE_BRANCHES], :]
    filled = filled_mask(raw)
    counts = filled.sum(1)
    fields = {b[len("part_"):]: raw[:, i, :][filled] for i, b in enumerate(PARTICLE_BRANCHES)}
    branches: dict = {}
    for name, value in jets.extras.items():
        value = np.asarray(value)
        if len(value) != n or not name.startswith((_PARTICLE_EXTRA, _JET_EXTRA)):
            raise InvalidJetsError(f"extras[{name!r}]: JetClass files keep truth arrays of one "
                                   f"row per jet named {_PARTICLE_EXTRA}* or {_JET_EXTRA}*")
        if name.startswith(_PARTICLE_EXTRA):
            fields[name[len("part_"):]] = value[filled]
        else:
            branches[name] = value
    branches["part"] = ak.zip({k: ak.unflatten(v, counts) for k, v in fields.items()})
    for b in JET_BRANCHES:
        branches[b] = jets.jet_features[:, jets.jet_feature_names.index(b)].astype(np.float32)
    for b, column in zip(LABEL_BRANCHES, _label_columns(jets).T, strict=True):
        branches[b] = column
    with atomic_output(path, force=force) as f, uproot.recreate(_KeepOpen(f)) as out:
        out.mktree(tree, {k: _branch_type(v) for k, v in branches.items()})
        out[tree].extend(branches)
        if provenance is not None:
            out[PROVENANCE] = json_text(provenance, indent=None, default=str)
    return Path(path)
