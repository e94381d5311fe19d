"""Import published checkpoints: the Interaction Network (FAIR4HEP/hbb_interaction_network,
with its model_metadata.json) and the official JetClass ParticleNet models
(jet-universe/particle_transformer: kin, kinpid, full).

The upstream files are plain state dicts. They are read with `torch.load(weights_only=True)`
(no arbitrary unpickling) and converted to safetensors in a servable bundle with the upstream
provenance.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

from servable.bundle.bundle import save_bundle
from servable.bundle.manifest import BundleError
from servable.data import particles, schema
from servable.files import read_text, regular_file
from servable.models.preprocessing import identity
from servable.models.taggers import INTagger, ParticleNetTagger

UPSTREAM = {
    "repository": "https://github.com/FAIR4HEP/hbb_interaction_network",
    "commit": "fd8b998d7814c5d26e5a597cb1a4d89bf2051004",
    "code_doi": "10.5281/zenodo.7305173",
    "dataset_doi": "10.7483/OPENDATA.CMS.JGJX.MS7Q",
    "license": "MIT",
    "paper": "Duarte et al., FAIR AI models in high energy physics",
}
PARTICLENET_UPSTREAM = {
    "repository": "https://github.com/jet-universe/particle_transformer",
    "commit": "2925bdb",
    "model_code": "https://github.com/hqucms/weaver-core (weaver/nn/model/ParticleNet.py)",
    "dataset_doi": "10.5281/zenodo.6619768",
    "license": "MIT",
    "paper": "Qu, Li, Qian, Particle Transformer for Jet Tagging, arXiv:2202.03772",
    "paper_arxiv": "2202.03772",
}
# the input width of each official checkpoint names its JetClass feature set
PARTICLENET_WIDTHS = {len(names): fs for fs, names in particles.FEATURE_SETS.items()}
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


def _load_state(checkpoint: Path) -> dict:
    """A state dict read with weights_only=True, each value a finite floating-point tensor
    (integer counters, such as batch norm's num_batches_tracked, pass unchecked)."""
    import torch

    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before failing
            warnings.simplefilter("ignore")
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError and others for foreign files
        raise BundleError(f"{checkpoint}: not a plain PyTorch state dict that loads with "
                          f"weights_only=True ({exc.__class__.__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise BundleError(f"{checkpoint}: not a state dict (a mapping of parameter names to "
                          f"tensors) but {type(state).__name__}")
    for key, value in sorted(state.items()):
        if not isinstance(value, torch.Tensor):
            raise BundleError(f"{checkpoint}: {key} is not a tensor")
        if key.endswith("num_batches_tracked"):
            continue
        if not value.is_floating_point():
            raise BundleError(f"{checkpoint}: {key} is not a floating-point tensor")
        if not bool(torch.isfinite(value).all()):
            raise BundleError(f"{checkpoint}: {key} holds NaN or infinite weights; the "
                              "checkpoint is damaged")
    return state


def import_checkpoint(checkpoint, metadata, out_dir, *, name: str | None = None,
                      overwrite: bool = False, feature_set: str | None = None) -> Path:
    """Convert a published checkpoint into a bundle: a GraphNet state dict with its
    model_metadata.json, or (no metadata) an official JetClass ParticleNet state dict."""
    if metadata is None:
        return import_particlenet(checkpoint, out_dir, name=name, overwrite=overwrite,
                                  feature_set=feature_set)
    if feature_set is not None:
        raise BundleError("a feature set applies to JetClass ParticleNet checkpoints, which "
                          "come without an IN metadata file")
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
    dropped = _dropped(meta, "drop_pfeatures", len(schema.TRACK_NAMES), metadata)
    dropped_sv = _dropped(meta, "drop_svfeatures", len(schema.VERTEX_NAMES), metadata)
    hyper = {k: _size(meta, k, metadata) for k in ("hidden", "De", "Do")}
    state = _load_state(checkpoint)
    expected = {f"{k}.{p}" for k in KEYS for p in ("weight", "bias")}
    if set(state) != expected:
        raise BundleError(f"{checkpoint}: not a published GraphNet state dict (expected keys "
                          f"fr1..fc_fixed, found {sorted(state)[:4]})")
    # upstream drops features by index from the full CMS lists (src/models/train_model.py)
    track_features = [n for i, n in enumerate(schema.TRACK_NAMES) if i not in dropped]
    vertex_features = [n for i, n in enumerate(schema.VERTEX_NAMES) if i not in dropped_sv]
    config = {
        "kind": "in", "hyperparameters": hyper, "track_features": track_features,
        "vertex_features": vertex_features,
        "preprocessing": {"tracks": identity(track_features),
                          "vertices": identity(vertex_features)},
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
        "dropped_vertex_features": [schema.VERTEX_NAMES[i] for i in dropped_sv],
    }
    return save_bundle(
        tagger, out_dir, name=name or f"hbb-interaction-network-{label}", version="1.0.0",
        provenance=provenance, overwrite=overwrite,
        authors=[{"name": "FAIR4HEP hbb_interaction_network authors"}],
        description=("Interaction Network for H->bb vs QCD jet tagging, trained on CMS open "
                     "data by the FAIR4HEP authors; imported unchanged."),
    )


def import_particlenet(checkpoint, out_dir, *, name: str | None = None, overwrite: bool = False,
                       feature_set: str | None = None) -> Path:
    """Convert an official JetClass ParticleNet state dict (ParticleNet_{kin,kinpid,full}.pt)
    into a bundle that reads the JetClass particle features by name and standardises them as
    the JetClass data configuration does; the feature set is read from the input width."""
    from servable.models.particlenet import from_upstream

    checkpoint = Path(checkpoint)
    regular_file(checkpoint)
    if feature_set is not None and feature_set not in particles.FEATURE_SETS:
        raise BundleError(f"the feature set must be one of {', '.join(particles.FEATURE_SETS)}, "
                          f"not {feature_set!r:.40}")
    state = _load_state(checkpoint)
    width_key = "mod.bn_fts.weight"
    if width_key not in state or not any(k.startswith("mod.edge_convs.") for k in state):
        raise BundleError(f"{checkpoint}: not an official JetClass ParticleNet state dict "
                          f"(expected keys mod.bn_fts..., mod.edge_convs..., found "
                          f"{sorted(state)[:3]}); an Interaction Network checkpoint needs "
                          "its metadata JSON")
    width = int(state[width_key].shape[0])
    detected = PARTICLENET_WIDTHS.get(width)
    if detected is None or feature_set not in (None, detected):
        wanted = (f"the {feature_set} set has {len(particles.FEATURE_SETS[feature_set])}"
                  if feature_set else f"the JetClass sets have {sorted(PARTICLENET_WIDTHS)}")
        raise BundleError(f"{checkpoint}: the weights read {width} particle features; {wanted}")
    names = list(particles.FEATURE_SETS[detected])
    tagger = ParticleNetTagger({
        "particle_features": names, "n_classes": len(schema.JETCLASS_CLASSES),
        "class_names": list(schema.JETCLASS_CLASSES),
        "preprocessing": {"particles": particles.preprocessing(names)}})
    ours = from_upstream(state)
    expected = set(tagger.net.core.state_dict())
    if set(ours) != expected:
        odd = sorted(set(ours) ^ expected)[:3]
        raise BundleError(f"{checkpoint}: the keys do not match the published ParticleNet "
                          f"(k = 16, widths 64/128/256, head 256; differing: {odd})")
    try:
        tagger.net.core.load_state_dict(ours)
    except RuntimeError as exc:
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
        raise BundleError(f"{checkpoint}: weights do not fit the published ParticleNet "
                          f"({lines[1] if len(lines) > 1 else lines[0]})") from None
    tagger.net.eval()
    provenance = {
        "source": "imported published checkpoint",
        "upstream": PARTICLENET_UPSTREAM,
        "checkpoint": checkpoint.name,
        "feature_set": detected,
        "training_data_doi": PARTICLENET_UPSTREAM["dataset_doi"],
        "class_names": list(schema.JETCLASS_CLASSES),
    }
    return save_bundle(
        tagger, out_dir, name=name or f"jetclass-particlenet-{detected}", version="1.0.0",
        provenance=provenance, overwrite=overwrite,
        authors=[{"name": "Huilin Qu"}, {"name": "Congqiao Li"}, {"name": "Sitian Qian"}],
        description=(f"ParticleNet trained on JetClass (10 classes, {detected} particle "
                     "features) for the Particle Transformer paper; the official checkpoint "
                     "imported unchanged."))
