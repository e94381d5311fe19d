"""What the shipped functions run on the endpoint: plain data in, plain data out."""

from __future__ import annotations

import importlib.util
import platform
import socket

import numpy as np

JET_ARRAYS = ("tracks", "vertices", "jet_features", "labels", "spectators")
NAME_LISTS = ("track_names", "vertex_names", "jet_feature_names")


def jets_to_arrays(jets) -> dict:
    """The plain dict a shipped function takes: arrays plus feature-name lists."""
    out = {k: getattr(jets, k) for k in JET_ARRAYS if getattr(jets, k) is not None}
    out.update({k: list(getattr(jets, k)) for k in NAME_LISTS})
    return out


def jets_from_arrays(arrays: dict):
    """Validated `Jets` from the dict a caller sent (tracks and vertices required)."""
    from servable.data.jets import InvalidJetsError, Jets

    if not isinstance(arrays, dict):
        raise InvalidJetsError(f"jets: expected a dict of arrays, got {type(arrays).__name__}")
    unknown = set(arrays) - set(JET_ARRAYS) - set(NAME_LISTS)
    if unknown:
        raise InvalidJetsError(f"jets: unknown keys {sorted(unknown)}; allowed: "
                               f"{', '.join(JET_ARRAYS + NAME_LISTS)}")
    for key in ("tracks", "vertices"):
        if key not in arrays:
            raise InvalidJetsError(f"jets: the dict has no {key!r} array")
    kwargs = {k: np.asarray(arrays[k]) for k in JET_ARRAYS if arrays.get(k) is not None}
    kwargs.update({k: tuple(arrays[k]) for k in NAME_LISTS if arrays.get(k) is not None})
    return Jets(**kwargs)


def worker_info() -> dict:
    from servable.version import __version__

    return {"python": platform.python_version(), "servable": __version__,
            "host": socket.gethostname()}


def predict_arrays(bundle_ref, arrays: dict, runtime: str = "auto",
                   batch_size: int | None = None) -> dict:
    """Probabilities with the native model when torch is installed, else ONNX Runtime."""
    from servable.bundle.bundle import load, resolve

    if runtime == "auto":
        runtime = "torch" if importlib.util.find_spec("torch") else "onnx"
    jets = jets_from_arrays(arrays)
    bundle = load(resolve(bundle_ref), native=runtime in ("torch", "native", "xgboost"))
    probs = bundle.predict(jets, runtime=runtime, batch_size=batch_size)
    m = bundle.manifest
    return {"probabilities": probs, "runtime": runtime, "worker": worker_info(),
            "bundle": {"bundle": m["name"], "version": str(m["version"]),
                       "doi": m.get("doi") or "", "classes": m["outputs"][0]["classes"]}}


def explain_arrays(bundle_ref, arrays: dict, method: str, target: int = 1,
                   params: dict | None = None) -> dict:
    from servable.bundle.bundle import resolve
    from servable.explain import load

    jets = jets_from_arrays(arrays)
    explanation = load(resolve(bundle_ref)).explain(jets, method, target, **(params or {}))
    out = {"explanation": explanation.to_dict(), "n_jets": len(jets.tracks),
           "worker": worker_info()}
    for name in ("tracks", "vertices", "jet", "output"):
        out[name] = getattr(explanation, name)
    return out


def train_options(options: dict) -> dict:
    """One training run: `options` holds data paths, the TrainConfig fields, the target."""
    from pathlib import Path

    import torch

    from servable.bundle.train import train_bundle
    from servable.models.training import TrainConfig

    if options.get("threads"):
        torch.set_num_threads(int(options["threads"]))
    cfg = TrainConfig(**options["config"])
    path, record = train_bundle([Path(p) for p in options["data"]], cfg, Path(options["out"]),
                                force=options.get("force", False), progress=False)
    return {"bundle": str(path), "record": record, "worker": worker_info()}
