"""Import the published Interaction Network checkpoints (FAIR4HEP/hbb_interaction_network).

The upstream `.pth` files are plain state dicts in torch's legacy format. They are read with
`torch.load(weights_only=True)` (no arbitrary unpickling) and converted to safetensors in a
servable bundle with the upstream provenance.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

from servable.bundle.bundle import save_bundle
from servable.bundle.manifest import BundleError
from servable.data import schema
from servable.files import read_text, regular_file
from servable.models.preprocessing import identity
from servable.models.taggers import INTagger

UPSTREAM = {
    "repository": "https://github.com/FAIR4HEP/hbb_interaction_network",
    "commit": "fd8b998d7814c5d26e5a597cb1a4d89bf2051004",
    "code_doi": "10.5281/zenodo.7305173",
    "dataset_doi": "10.7483/OPENDATA.CMS.JGJX.MS7Q",
    "license": "MIT",
    "paper": "Duarte et al., FAIR AI models in high energy physics",
}
KEYS = ("fr1", "fr2", "fr3", "fr1_pv", "fr2_pv", "fr3_pv", "fo1", "fo2", "fo3", "fc_fixed")


def _dropped(meta: dict, key: str, n: int, where: Path) -> list[int]:
    """Indices of the features `meta[key]` drops ("2,3,12" upstream); each in [0, n)."""
    spec = meta.get(key) or ""
    if not isinstance(spec, str):
        raise BundleError(f"{where}: {key} must be a string of comma-separated indices, not "
                          f"{type(spec).__name__} {spec!r:.40}")
    try:
        out = sorted({int(x) for x in spec.split(",") if x.strip()})
    except ValueError:
        raise BundleError(f"{where}: {key} {spec!r:.40} is not a comma-separated list of "
                          "indices") from None
    if out and not (0 <= out[0] and out[-1] < n) or len(out) >= n:
        raise BundleError(f"{where}: {key} {spec!r:.40} must name indices from 0 to {n - 1} "
                          f"and keep at least one of the {n} features")
    return out


def _size(meta: dict, key: str, where: Path) -> int:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 4096:
        raise BundleError(f"{where}: {key} must be a positive integer (the upstream "
                          f"training argument), not {value!r:.40}")
    return value


def import_checkpoint(checkpoint, metadata, out_dir, *, name: str | None = None,
                      overwrite: bool = False) -> Path:
    """Convert a published GraphNet state dict + its model_metadata.json into a bundle."""
    import torch

    checkpoint, metadata = Path(checkpoint), Path(metadata)
    for p in (checkpoint, metadata):
        regular_file(p)  # one line for a missing file, a folder or a named pipe
    try:
        meta = json.loads(read_text(metadata))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{metadata}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(meta, dict):
        raise BundleError(f"{metadata}: expected a JSON object of training arguments, not "
                          f"{type(meta).__name__}")
    if str(meta.get("vv_branch", "0")) not in ("0", "False", "false", ""):
        raise BundleError(f"{metadata}: vv_branch models (SV-SV interactions) are not part of "
                          "the published baseline architecture and are not supported")
    if _dropped(meta, "drop_svfeatures", len(schema.VERTEX_NAMES), metadata):
        raise BundleError(f"{metadata}: models with dropped SV features are not supported")
    dropped = _dropped(meta, "drop_pfeatures", len(schema.TRACK_NAMES), metadata)
    hyper = {k: _size(meta, k, metadata) for k in ("hidden", "De", "Do")}
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before failing
            warnings.simplefilter("ignore")
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError and others for foreign files
        raise BundleError(f"{checkpoint}: not a plain PyTorch state dict that loads with "
                          f"weights_only=True ({exc.__class__.__name__})") from None
    expected = {f"{k}.{p}" for k in KEYS for p in ("weight", "bias")}
    if not isinstance(state, dict) or set(state) != expected:
        got = sorted(map(str, state))[:4] if isinstance(state, dict) else \
            type(state).__name__
        raise BundleError(f"{checkpoint}: not a published GraphNet state dict (expected keys "
                          f"fr1..fc_fixed, found {got})")
    for key, value in sorted(state.items()):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise BundleError(f"{checkpoint}: {key} is not a floating-point tensor")
        if not bool(torch.isfinite(value).all()):
            raise BundleError(f"{checkpoint}: {key} holds NaN or infinite weights; the "
                              "checkpoint is damaged")
    track_features = [n for i, n in enumerate(schema.TRACK_NAMES) if i not in dropped]
    config = {
        "kind": "in", "hyperparameters": hyper, "track_features": track_features,
        "preprocessing": {"tracks": identity(track_features),
                          "vertices": identity(schema.VERTEX_NAMES)},
    }
    tagger = INTagger(config)
    core_state = {f"core.{k}": v.float().contiguous() for k, v in state.items()}
    try:
        tagger.load_state_dict(core_state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise BundleError(f"{checkpoint}: weights do not fit the architecture in {metadata} "
                          f"({first})") from None
    label = meta.get("label")
    if not (isinstance(label, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", label)):
        label = re.sub(r"[^A-Za-z0-9_.-]", "_", checkpoint.stem)[:100]
    provenance = {
        "source": "imported published checkpoint",
        "upstream": UPSTREAM,
        "checkpoint": checkpoint.name,
        "upstream_training_arguments": meta,
        "training_data_doi": UPSTREAM["dataset_doi"],
        "dropped_track_features": [schema.TRACK_NAMES[i] for i in dropped],
    }
    return save_bundle(
        tagger, out_dir, name=name or f"hbb-interaction-network-{label}", version="1.0.0",
        provenance=provenance, overwrite=overwrite,
        authors=[{"name": "FAIR4HEP hbb_interaction_network authors"}],
        description=("Interaction Network for H->bb vs QCD jet tagging, trained on CMS open "
                     "data by the FAIR4HEP authors; imported unchanged."),
    )
