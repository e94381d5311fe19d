"""Read and write the CMS H->bb HDF5 layout, in chunks, never a whole dataset at once.

Groups and datasets, exactly as the published open data:
  {split}_subgroup/{split}_0  jet features (n, 27, 1)
  {split}_subgroup/{split}_1  pfcand features (n, 10, 100), optional
  {split}_subgroup/{split}_2  tracks (n, 30, 60)
  {split}_subgroup/{split}_3  secondary vertices (n, 14, 5)
  target_subgroup/target      (n, 2) = [QCD, H->bb]
  spectator_subgroup/spectators (n, 1, 11)
where split is "training" or "testing". Feature names ride along as dataset attributes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

from servable.data import schema
from servable.data.jets import InvalidJetsError, Jets
from servable.errors import ServableError, check_int
from servable.files import atomic_output, regular_file

SPLITS = ("training", "testing")
TRUTH_GROUP = "generator_truth"


class JetFileError(ServableError, ValueError):
    """A file that is not a readable CMS H->bb HDF5 file; the message says what and how to fix."""


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
    except OSError as exc:
        raise JetFileError(
            f"{path}: not a readable HDF5 file ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]}); the file may be truncated or of another format"
        ) from None


def _dataset(f: h5py.File, key: str, path, shape_tail: tuple | None) -> h5py.Dataset:
    if key not in f:
        raise JetFileError(f"{path}: missing dataset '{key}'")
    ds = f[key]
    if shape_tail is not None and tuple(ds.shape[1:]) != shape_tail:
        raise JetFileError(
            f"{path}: dataset '{key}' has shape {ds.shape}, expected (n, "
            f"{', '.join(map(str, shape_tail))})"
        )
    return ds


def _names(ds: h5py.Dataset, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = ds.attrs.get("feature_names")
    if raw is None:
        return default
    return tuple(x.decode() if isinstance(x, bytes) else str(x) for x in raw)


class JetFile:
    """One CMS-layout HDF5 file, open for chunked reading."""

    def __init__(self, path):
        self.path = Path(path)
        self._f = _open(path)
        try:
            self.split = _split_of(self._f, path)
            g = f"{self.split}_subgroup/{self.split}"
            self.tracks = _dataset(self._f, f"{g}_2", path, None)
            self.track_names = _names(self.tracks, schema.TRACK_NAMES)
            _check_len("tracks", self.tracks, len(self.track_names), schema.TRACK_SLOTS, path)
            self.vertices = _dataset(self._f, f"{g}_3", path, None)
            self.vertex_names = _names(self.vertices, schema.VERTEX_NAMES)
            _check_len("vertices", self.vertices, len(self.vertex_names),
                       schema.VERTEX_SLOTS, path)
            self.jet_features = self._f.get(f"{g}_0")
            self.jet_feature_names = (
                _names(self.jet_features, schema.JET_NAMES)
                if self.jet_features is not None else schema.JET_NAMES
            )
            self.labels = self._f.get("target_subgroup/target")
            self.spectators = self._f.get("spectator_subgroup/spectators")
            n = len(self.tracks)
            for name, ds in (("vertices", self.vertices), ("jet features", self.jet_features),
                             ("target", self.labels), ("spectators", self.spectators)):
                if ds is not None and len(ds) != n:
                    raise JetFileError(
                        f"{path}: {name} hold {len(ds)} jets but tracks hold {n}; "
                        "the file is inconsistent"
                    )
            # read one element from every dataset: a truncated file fails here, not mid-run
            for ds in (self.tracks, self.vertices, self.jet_features, self.labels,
                       self.spectators):
                if ds is not None and len(ds):
                    ds[len(ds) - 1]
        except OSError as exc:
            self._f.close()
            raise JetFileError(
                f"{path}: the data cannot be read ({str(exc).splitlines()[0]}); "
                "the file is probably truncated"
            ) from None
        except Exception:
            self._f.close()
            raise

    def __len__(self) -> int:
        return len(self.tracks)

    @property
    def attrs(self) -> dict:
        return {k: _attr(v) for k, v in self._f.attrs.items()}

    def read(self, start: int = 0, stop: int | None = None) -> Jets:
        """Jets start to stop (None: to the end); both are counts from the first jet."""
        check_int(start, "start", minimum=0)
        stop = len(self) if stop is None else min(check_int(stop, "stop", minimum=0), len(self))
        sl = slice(start, stop)
        try:
            jf = None if self.jet_features is None else self.jet_features[sl][..., 0]
            spec = None if self.spectators is None else self.spectators[sl][:, 0, :]
            extras = {}
            if TRUTH_GROUP in self._f:
                extras = {k: ds[sl] for k, ds in self._f[TRUTH_GROUP].items()}
            return Jets(
                self.tracks[sl], self.vertices[sl], jf,
                None if self.labels is None else self.labels[sl], spec,
                self.track_names, self.vertex_names, self.jet_feature_names, extras,
            )
        except OSError as exc:
            raise JetFileError(
                f"{self.path}: jets {start}-{stop} cannot be read ({str(exc).splitlines()[0]}); "
                "the file is probably truncated"
            ) from None
        except InvalidJetsError as exc:
            raise JetFileError(f"{self.path}: jets {start}-{stop}: {exc}") from None

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JetFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_len(name, ds, n_features, slots, path) -> None:
    if ds.ndim != 3 or ds.shape[1] != n_features or ds.shape[2] != slots:
        raise JetFileError(
            f"{path}: {name} dataset '{ds.name}' has shape {ds.shape}, expected "
            f"(n, {n_features}, {slots})"
        )


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
    """Read jets from one or more CMS-layout files (concatenated in the order given)."""
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
    """Write jets in the CMS layout, atomically and never over an existing file without
    `overwrite` (`servable.files.atomic_output`)."""
    path = Path(path)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    g = f"{split}_subgroup/{split}"
    n = len(jets)
    with atomic_output(path, force=overwrite) as out:
        with h5py.File(out, "w") as f:
            for key, value in (attrs or {}).items():
                f.attrs[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
            _write(f, f"{g}_2", jets.tracks, jets.track_names)
            _write(f, f"{g}_3", jets.vertices, jets.vertex_names)
            if jets.jet_features is not None:
                _write(f, f"{g}_0", jets.jet_features[..., None], jets.jet_feature_names)
            if jets.labels is not None:
                _write(f, "target_subgroup/target", jets.labels, schema.LABELS)
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
