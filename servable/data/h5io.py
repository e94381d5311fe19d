"""Read and write jets as HDF5, in chunks, never a whole dataset at once: the CMS H->bb layout
and the JetClass particle layout in the same groups.

Groups and datasets, exactly as the published open data:
  {split}_subgroup/{split}_0  jet features (n, 27, 1)
  {split}_subgroup/{split}_1  pfcand features (n, 10, 100), optional
  {split}_subgroup/{split}_2  tracks (n, 30, 60)
  {split}_subgroup/{split}_3  secondary vertices (n, 14, 5)
  target_subgroup/target      (n, 2) = [QCD, H->bb]
  spectator_subgroup/spectators (n, 1, 11)
where split is "training" or "testing". Feature names ride along as dataset attributes (the
class names as those of the target). JetClass-layout files hold their particles in `_2` with
their own channels and slot count (n, 23, 128), no `_3` (JetClass has no vertices), their
jet features and observables in `_0`, one target column per class and any generator truth
under `generator_truth/`; the particle channel names (part_energy) tell the layouts apart.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

from servable.data import schema
from servable.data.jets import CMS, JETCLASS, InvalidJetsError, Jets
from servable.errors import ServableError, check_int
from servable.files import atomic_output, regular_file

SPLITS = ("training", "testing")
TRUTH_GROUP = "generator_truth"
SLOTTED_DATASET = "_2"
JETCLASS_MARKER = "part_energy"  # a particle channel: the `_2` dataset holds particles
# each layout's input groups in the file: dataset suffix, default feature names, slot count
FILE_GROUPS = {
    CMS: {"tracks": (SLOTTED_DATASET, schema.TRACK_NAMES, schema.TRACK_SLOTS),
          "vertices": ("_3", schema.VERTEX_NAMES, schema.VERTEX_SLOTS),
          "jet_features": ("_0", schema.JET_NAMES, 1)},
    JETCLASS: {"particles": (SLOTTED_DATASET, (), None),
               "jet_features": ("_0", schema.names(schema.JETCLASS_JET_FEATURES), 1)},
}


class JetFileError(ServableError, ValueError):
    """A file that is not a readable jets HDF5 file; the message says what and how to fix."""


# what h5py raises when libhdf5 fails on a damaged file: it maps HDF5's error classes onto
# these (a corrupt object header can surface as KeyError, a corrupt datatype as TypeError)
H5_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError)


def _damaged(path, what: str, exc: BaseException) -> JetFileError:
    first = (str(exc).splitlines() or [""])[0]
    return JetFileError(f"{path}: {what} cannot be read ({exc.__class__.__name__}: {first}); "
                        "the file is probably truncated or corrupted")


def _split_of(f: h5py.File, path) -> str:
    for split in SPLITS:
        if f"{split}_subgroup" in f:
            return split
    raise JetFileError(
        f"{path}: no 'training_subgroup' or 'testing_subgroup' group; "
        "this is not a CMS H->bb layout file (see `servable data inspect`)"
    )


def _open(path) -> h5py.File:
    try:
        path = regular_file(path)
    except ServableError as exc:
        raise JetFileError(str(exc)) from None
    try:
        return h5py.File(path, "r")
    except H5_ERRORS as exc:
        raise JetFileError(
            f"{path}: not a readable HDF5 file ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]}); the file may be truncated or of another format"
        ) from None


def _key(ds: h5py.Dataset) -> str:
    return ds.name.lstrip("/")


def _shape_text(tail: tuple) -> str:
    return f"(n, {', '.join('S' if t is None else str(t) for t in tail)})" if tail else "(n,)"


def _plain(f: h5py.File, key: str, path) -> h5py.Dataset:
    """The dataset at `key`, if it is a plain dataset of this file: links, groups, external
    and virtual storage (data in other files) are refused, not followed."""
    if key not in f:
        raise JetFileError(f"{path}: missing dataset '{key}'")
    link = f.get(key, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise JetFileError(f"{path}: '{key}' is a link ({type(link).__name__}), expected a "
                           "dataset of this file; links are not followed")
    ds = f[key]
    if not isinstance(ds, h5py.Dataset):
        raise JetFileError(f"{path}: '{key}' is a group, expected a dataset")
    if ds.is_virtual or ds.external:
        raise JetFileError(f"{path}: dataset '{key}' keeps its data in other files; "
                           "only self-contained files are read")
    return ds


def _checked(ds: h5py.Dataset, path, tail: tuple, kinds: str = "f") -> h5py.Dataset:
    """`ds` if its shape is (n, *tail) (None in `tail`: any size) and its dtype one of
    `kinds`."""
    if ds.ndim != len(tail) + 1 or any(t is not None and t != d
                                       for t, d in zip(tail, ds.shape[1:], strict=True)):
        raise JetFileError(
            f"{path}: dataset '{_key(ds)}' has shape {ds.shape}, expected "
            f"{_shape_text(tail)}"
        )
    if ds.dtype.kind not in kinds:
        wanted = "floating-point" if kinds == "f" else "numeric"
        raise JetFileError(f"{path}: dataset '{_key(ds)}' has dtype {ds.dtype}, "
                           f"expected {wanted} values")
    return ds


def _names(ds: h5py.Dataset, default: tuple[str, ...], path) -> tuple[str, ...]:
    raw = ds.attrs.get("feature_names")
    if raw is None:
        return default
    try:
        if np.ndim(raw) != 1:
            raise TypeError
        return tuple(x.decode() if isinstance(x, bytes) else str(x) for x in raw)
    except (TypeError, UnicodeDecodeError):
        raise JetFileError(f"{path}: dataset '{_key(ds)}' has a feature_names attribute that is "
                           "not a list of names; remove it or write one name per feature"
                           ) from None


class JetFile:
    """One HDF5 jets file (CMS or JetClass layout), open for chunked reading; every dataset's
    shape and dtype is checked when the file is opened."""

    def __init__(self, path):
        self.path = Path(path)
        self._f = _open(path)
        try:
            self._check_layout(path)
        except ServableError:
            self._f.close()
            raise
        except H5_ERRORS as exc:
            self._f.close()
            raise _damaged(path, "the data", exc) from None
        except BaseException:
            self._f.close()
            raise

    def _check_layout(self, path) -> None:
        f = self._f
        self.split = _split_of(f, path)
        g = f"{self.split}_subgroup/{self.split}"
        slotted = _plain(f, f"{g}{SLOTTED_DATASET}", path)
        names = _names(slotted, schema.TRACK_NAMES, path)
        self.layout = JETCLASS if JETCLASS_MARKER in names else CMS
        # group name -> (dataset, feature names); per-jet groups are stored (n, F, 1)
        self.groups: dict[str, tuple[h5py.Dataset, tuple[str, ...]]] = {}
        for name, (suffix, default, slots) in FILE_GROUPS[self.layout].items():
            key = f"{g}{suffix}"
            if key not in f and name == "jet_features":  # optional in both layouts
                continue
            ds = slotted if suffix == SLOTTED_DATASET else _plain(f, key, path)
            group_names = names if suffix == SLOTTED_DATASET else _names(ds, default, path)
            self.groups[name] = (_checked(ds, path, (len(group_names), slots)), group_names)
        self.labels = None
        self.class_names = schema.JETCLASS_CLASSES if self.layout == JETCLASS else schema.LABELS
        if "target_subgroup/target" in f:
            target = _plain(f, "target_subgroup/target", path)
            self.class_names = _names(target, self.class_names, path)
            self.labels = _checked(target, path, (len(self.class_names),))
        self.spectators = self._optional("spectator_subgroup/spectators",
                                         (1, len(schema.SPECTATOR_NAMES)))
        self.truth = self._truth(path)
        datasets = [ds for ds, _ in self.groups.values()]
        n = len(datasets[0])
        for ds in (*datasets, self.labels, self.spectators, *self.truth.values()):
            if ds is not None and len(ds) != n:
                raise JetFileError(f"{path}: dataset '{_key(ds)}' holds {len(ds)} jets but "
                                   f"'{_key(datasets[0])}' holds {n}; the file is inconsistent")
        # read one element from every dataset: a truncated file fails here, not mid-run
        for ds in (*datasets, self.labels, self.spectators, *self.truth.values()):
            if ds is not None and len(ds):
                ds[len(ds) - 1]

    def _truth(self, path) -> dict[str, h5py.Dataset]:
        """The generator truth datasets the generator writes, each checked for its shape and
        dtype. In the CMS layout anything else under `generator_truth/` (a label of the
        user's own) is left alone: not read, not followed, listed in `self.ignored`."""
        self.ignored: list[str] = []
        if TRUTH_GROUP not in self._f:
            return {}
        link = self._f.get(TRUTH_GROUP, getlink=True)
        if not isinstance(link, h5py.HardLink) or not isinstance(self._f[TRUTH_GROUP], h5py.Group):
            raise JetFileError(f"{path}: '{TRUTH_GROUP}' is not a group of datasets")
        truth = {}
        for name in self._f[TRUTH_GROUP]:
            key = f"{TRUTH_GROUP}/{name}"
            if self.layout != JETCLASS and name not in schema.TRUTH_SHAPES:
                self.ignored.append(key)
                continue
            ds = _plain(self._f, key, path)
            if self.layout == JETCLASS:  # the JetClass generator's truth: any per-jet array
                truth[name] = _checked(ds, path, (None,) * (ds.ndim - 1), "biuf")
                continue
            truth[name] = _checked(ds, path, schema.TRUTH_SHAPES[name], "biuf")
        return truth

    def _optional(self, key: str, tail: tuple) -> h5py.Dataset | None:
        if key not in self._f:
            return None
        return _checked(_plain(self._f, key, self.path), self.path, tail)

    def __len__(self) -> int:
        return len(next(iter(self.groups.values()))[0])

    @property
    def attrs(self) -> dict:
        """The file's root attributes (JSON-encoded ones decoded), e.g. its `provenance`."""
        try:
            return {k: _attr(v) for k, v in self._f.attrs.items()}
        except H5_ERRORS as exc:
            raise _damaged(self.path, "the file's attributes", exc) from None

    def read(self, start: int = 0, stop: int | None = None) -> Jets:
        """Jets start to stop (None: to the end); both are counts from the first jet."""
        check_int(start, "start", minimum=0)
        stop = len(self) if stop is None else min(check_int(stop, "stop", minimum=0), len(self))
        sl = slice(start, stop)
        try:
            groups = {name: (ds[sl][..., 0] if name == "jet_features" else ds[sl], names)
                      for name, (ds, names) in self.groups.items()}
            spec = None if self.spectators is None else self.spectators[sl][:, 0, :]
            extras = {k: ds[sl] for k, ds in self.truth.items()}
            labels = None if self.labels is None else self.labels[sl]
            return Jets(groups, labels, spec, class_names=self.class_names, extras=extras)
        except InvalidJetsError as exc:
            raise JetFileError(f"{self.path}: jets {start}-{stop}: {exc}") from None
        except MemoryError:
            raise JetFileError(f"{self.path}: jets {start}-{stop} do not fit in memory; read "
                               "the file in chunks (iter_jets, or a smaller chunk size)") from None
        except H5_ERRORS as exc:
            raise _damaged(self.path, f"jets {start}-{stop}", exc) from None

    def close(self) -> None:
        """Close the underlying HDF5 file."""
        self._f.close()

    def __enter__(self) -> JetFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _attr(value):
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _paths(path_or_paths) -> list[Path]:
    if isinstance(path_or_paths, (str, os.PathLike)):
        return [Path(path_or_paths)]
    paths = [Path(p) for p in path_or_paths]
    if not paths:
        raise JetFileError("no input files given")
    return paths


def read_jets(path_or_paths, start: int = 0, stop: int | None = None) -> Jets:
    """Read jets from one or more HDF5 files of one layout (concatenated in the order
    given)."""
    parts = []
    for path in _paths(path_or_paths):
        with JetFile(path) as f:
            parts.append(f.read(0, len(f)))
    jets = Jets.concatenate(parts)
    return jets[start:stop] if (start or stop is not None) else jets


def iter_jets(path_or_paths, chunk_size: int = 10_000) -> Iterator[Jets]:
    """Stream jets in chunks of at most `chunk_size`, file after file."""
    check_int(chunk_size, "chunk_size")
    for path in _paths(path_or_paths):
        with JetFile(path) as f:
            for start in range(0, len(f), chunk_size):
                yield f.read(start, start + chunk_size)


def write_jets(
    path,
    jets: Jets,
    *,
    split: str = "training",
    attrs: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write jets in their layout (CMS or JetClass, `Jets.layout`), every array and name as
    it is, atomically and never over an existing file without `overwrite`
    (`servable.files.atomic_output`)."""
    path = Path(path)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    stored = FILE_GROUPS[jets.layout]
    unknown = [name for name in jets.groups if name not in stored]
    if unknown:
        raise InvalidJetsError(
            f"{', '.join(unknown)}: {jets.layout}-layout files have no place for this group "
            f"(they hold {', '.join(stored)})")
    g = f"{split}_subgroup/{split}"
    n = len(jets)
    with atomic_output(path, force=overwrite) as out:
        with h5py.File(out, "w") as f:
            for key, value in (attrs or {}).items():
                f.attrs[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
            for name, group in jets.groups.items():
                values = group.values if group.slotted else group.values[..., None]
                _write(f, f"{g}{stored[name][0]}", values, group.features)
            if jets.labels is not None:
                _write(f, "target_subgroup/target", jets.labels, jets.class_names)
            if jets.spectators is not None:
                _write(f, "spectator_subgroup/spectators", jets.spectators[:, None, :],
                       schema.SPECTATOR_NAMES)
            for key, value in jets.extras.items():
                f.create_dataset(f"{TRUTH_GROUP}/{key}", data=value)
            f.attrs["n_jets"] = n
    return path


def _write(f: h5py.File, key: str, data: np.ndarray, names: Sequence[str]) -> None:
    data = np.asarray(data, dtype=np.float32)
    if len(data) == 0:  # h5py cannot chunk an empty dataset
        ds = f.create_dataset(key, data=data)
    else:
        ds = f.create_dataset(key, data=data, chunks=(min(len(data), 1024), *data.shape[1:]),
                              compression="gzip", compression_opts=4, shuffle=True)
    ds.attrs["feature_names"] = np.array(list(names), dtype=h5py.string_dtype())
