"""What the shipped functions run on the endpoint: plain data in, plain data out."""

from __future__ import annotations

import importlib.util
import os
import platform
import socket
import sys
from collections import Counter

from servable.remote.encoding import jets_from_arrays

# loaded bundles of this worker process: (resolved path, manifest SHA-256) -> Bundle, and how
# often each was loaded (a test counts them)
_BUNDLES: dict = {}
_LOADS: Counter = Counter()


def limit_threads() -> int | None:
    """Size torch's thread pool to this worker's share of the cores ($OMP_NUM_THREADS, set
    by the endpoint), whatever imported torch before; ONNX Runtime sessions take the same
    number as intra_op_num_threads when they are created. Returns the share, or None."""
    threads = int(os.environ.get("OMP_NUM_THREADS") or 0)
    torch = sys.modules.get("torch")
    if threads and torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads or None


def cached_bundle(bundle_ref):
    """The bundle at `bundle_ref`, resolved, verified and opened once per worker process.

    The key is the bundle's path and its manifest's SHA-256: the manifest lists every file's
    SHA-256, so a changed bundle has another key and is verified and opened afresh (the stale
    entry is dropped). The native model loads on first use only, so an ONNX Runtime worker
    never reads it. Returns (bundle, times this process opened it)."""
    from servable.bundle.bundle import open_bundle, resolve
    from servable.bundle.manifest import MANIFEST, sha256_path

    path = resolve(bundle_ref).resolve()
    if not (path / MANIFEST).is_file():
        open_bundle(path)  # not a bundle: the loader says why
    key = (str(path), sha256_path(path / MANIFEST))
    bundle = _BUNDLES.get(key)
    if bundle is None:
        for stale in [k for k in _BUNDLES if k[0] == key[0] and k != key]:
            del _BUNDLES[stale]
        bundle = _BUNDLES[key] = open_bundle(path)
        _LOADS[key] += 1
    return bundle, _LOADS[key]


def worker_info(bundle_loads: int | None = None) -> dict:
    """Who ran the task: Python, servable, host, process, torch's thread count (None when
    torch is not imported) and how often this process loaded the task's bundle."""
    from servable.version import __version__

    torch = sys.modules.get("torch")
    info = {"python": platform.python_version(), "servable": __version__,
            "host": socket.gethostname(), "pid": os.getpid(),
            "torch_threads": torch.get_num_threads() if torch is not None else None}
    if bundle_loads is not None:
        info["bundle_loads"] = bundle_loads
    return info


def predict_arrays(bundle_ref, arrays: dict, runtime: str = "auto",
                   batch_size: int | None = None) -> dict:
    """Probabilities with the native model when torch is installed, else ONNX Runtime."""
    if runtime == "auto":
        runtime = "torch" if importlib.util.find_spec("torch") else "onnx"
    jets = jets_from_arrays(arrays)
    bundle, loads = cached_bundle(bundle_ref)
    limit_threads()
    probs = bundle.predict(jets, runtime=runtime, batch_size=batch_size)
    info = worker_info(loads)
    if runtime == "onnx":
        options = bundle.runtime("onnx").session.get_session_options()
        info["onnx_threads"] = options.intra_op_num_threads
    m = bundle.manifest
    return {"probabilities": probs, "runtime": runtime, "worker": info,
            "bundle": {"bundle": m["name"], "version": str(m["version"]),
                       "doi": m.get("doi") or "", "classes": m["outputs"][0]["classes"]}}


def explain_arrays(bundle_ref, arrays: dict, method: str, target: int = 1,
                   params: dict | None = None) -> dict:
    """One explanation task: explain the jets in `arrays` with `method` for class `target`
    (`params` passed to it) with the bundle this worker caches; returns the explanation as
    plain data, the jet count, the worker report, the per-jet relevance per field and the
    explained output per jet."""
    from servable.explain import explain_bundle

    jets = jets_from_arrays(arrays)
    bundle, loads = cached_bundle(bundle_ref)
    limit_threads()
    explanation = explain_bundle(bundle, jets, method, target, **(params or {}))
    out = {"explanation": explanation.to_dict(), "n_jets": len(jets),
           "worker": worker_info(loads)}
    out.update(explanation.relevance)
    out["output"] = explanation.output
    return out


def train_options(options: dict) -> dict:
    """One training run: `options` holds data paths, the TrainConfig fields, the target.

    The training reads its HDF5 files, which may come from anyone, in a child process: a
    crash of the HDF5 library on a malformed file ends this task with a `ReaderCrashed`
    error and the worker serves the next task."""
    from servable.remote.isolation import run_isolated

    result = run_isolated(f"{__name__}:train_in_process", options,
                          what=", ".join(map(str, options.get("data", []))))
    return {**result, "worker": worker_info()}


def train_in_process(options: dict) -> dict:
    """The training run of `train_options`, in this process (JSON-able answer)."""
    from pathlib import Path

    import torch

    from servable.bundle.train import train_bundle
    from servable.models.training import TrainConfig

    if options.get("threads"):
        torch.set_num_threads(int(options["threads"]))
    cfg = TrainConfig(**options["config"])
    path, summary = train_bundle([Path(p) for p in options["data"]], cfg, Path(options["out"]),
                                 force=options.get("force", False), progress=False)
    return {"bundle": str(path), "summary": summary}
