"""Import a weaver/CMSSW ONNX export (model.onnx + preprocess.json) as a sealed bundle.

The bundle's inputs are servable's raw groups (JetClass particles or CMS tracks; vertices;
jet_features), gathered from the variables preprocess.json names; its model.onnx is the
export with the preprocessing in front (`servable.runtimes.onnx_preprocess`), so that it
predicts from raw jets like every bundle; its runtime is ONNX Runtime. The classes are the
`output_names` (weaver's `label_` prefix dropped); preprocess.json is kept in the bundle and
both files' SHA-256 are in the provenance.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from servable.bundle.bundle import (
    ONNX_FILE,
    ONNX_KIND,
    _code_commit,
    _package_versions,
    _replace_dir,
    hardware,
)
from servable.bundle.manifest import BundleError, seal, sha256_bytes
from servable.data import schema
from servable.files import open_regular, regular_file
from servable.models.batching import probabilities
from servable.models.spec import InputGroup, InputSpec
from servable.runtimes.preprocess_json import (
    MASK_SUFFIX,
    Preprocess,
    PreprocessError,
    read_preprocess,
)

PREPROCESS_FILE = "preprocess.json"
# which raw group a variable belongs to, by the schema's feature lists
_GROUPS = {
    "tracks": set(schema.TRACK_NAMES),
    "particles": {*schema.names(schema.JETCLASS_PARTICLE_FEATURES),
                  *schema.names(schema.JETCLASS_DERIVED_FEATURES)},
    "vertices": set(schema.VERTEX_NAMES),
    "jet_features": {*schema.JET_NAMES, *schema.names(schema.JETCLASS_JET_FEATURES),
                     *schema.names(schema.JETCLASS_JET_OBSERVABLES)},
}


def _group_of(var: str, block: str, where: str) -> str:
    for group, names in _GROUPS.items():
        if var in names:
            return group
    raise PreprocessError(f"{where}: {block} variable {var!r} is not a feature servable's jets "
                          "carry (CMS H->bb or JetClass schema; see `servable data inspect`); "
                          "a mask is named *_mask")


def raw_groups(prep: Preprocess, where: str) -> tuple[dict, dict]:
    """(groups, sources): servable group -> (features, slots or None), and export input ->
    the group its variables come from."""
    features: dict[str, list[str]] = {}
    slots: dict[str, int] = {}
    sources = {}
    owned = {}
    for block in prep.inputs:
        owners = {_group_of(v, block.name, where) for v in block.var_names
                  if not v.endswith(MASK_SUFFIX)}
        if len(owners) > 1:
            raise PreprocessError(f"{where}: {block.name} mixes variables of "
                                  f"{' and '.join(sorted(owners))}; one input reads one group")
        owned[block.name] = owners.pop() if owners else None
    slotted = {g for g in owned.values() if g in ("tracks", "particles")}
    for block in prep.inputs:
        group = owned[block.name]
        if group is None:  # a mask alone masks the slotted group the other inputs read
            if len(slotted) != 1:
                raise PreprocessError(f"{where}: {block.name} is a mask alone; it needs the "
                                      "particle or track variables it masks in another input")
            group = next(iter(slotted))
        if group == "jet_features":
            if block.max_length != 1 or any(v.endswith(MASK_SUFFIX) for v in block.var_names):
                raise PreprocessError(f"{where}: length mismatch: {block.name} holds jet-level "
                                      f"variables and has length {block.max_length}, not 1")
        else:
            slots[group] = max(slots.get(group, 0), block.max_length)
        names = features.setdefault(group, [])
        names += [v for v in block.var_names if not v.endswith(MASK_SUFFIX) and v not in names]
        sources[block.name] = group
    if any(not names for names in features.values()):
        raise PreprocessError(f"{where}: a mask needs the particle variables it masks")
    groups = {g: (tuple(features[g]), slots.get(g)) for g in _GROUPS if g in features}
    return groups, sources


def _load_onnx(path: Path):
    import onnx

    with open_regular(path) as f:
        raw = f.read()
    try:
        return onnx.load_from_string(raw), raw
    except Exception as exc:  # protobuf's DecodeError and onnx's errors
        raise BundleError(f"{path}: not an ONNX model ({exc.__class__.__name__})") from None


def _class_names(prep: Preprocess) -> list[str]:
    return [n.removeprefix("label_") or n for n in prep.output_names]


def _check_runs(model_bytes: bytes, spec: InputSpec, n_classes: int, where: str) -> None:
    """The wrapped graph runs on example jets and gives finite scores of the right width."""
    from servable.runtimes.onnx_runtime import OnnxRuntime

    with tempfile.TemporaryDirectory(prefix="servable-import-") as tmp:
        (Path(tmp) / ONNX_FILE).write_bytes(model_bytes)
        try:
            logits = OnnxRuntime(Path(tmp) / ONNX_FILE, threads=1).logits(spec.example(8))
        except Exception as exc:  # onnxruntime's own errors: the export does not run
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise BundleError(f"{where}: the model does not run on its declared inputs "
                              f"({exc.__class__.__name__}: {first})") from None
    if logits.shape[1:] != (n_classes,) or not np.isfinite(probabilities(logits)).all():
        raise BundleError(f"{where}: the model gives outputs of shape {logits.shape[1:]}, "
                          f"not ({n_classes},) class scores")


def import_onnx(model_path, preprocess_path, out_dir, *, license: str,
                name: str | None = None, authors: list[str] | None = None,
                overwrite: bool = False) -> Path:
    """A sealed bundle from a weaver/CMSSW export: model.onnx and its preprocess.json.

    `license` is the model's SPDX licence identifier and `authors` its authors' names: an
    ONNX file records neither, so they are asked for rather than guessed.
    """
    import onnx

    from servable.runtimes.onnx_preprocess import check_graph, with_preprocessing

    model_path, preprocess_path = Path(model_path), Path(preprocess_path)
    regular_file(model_path)
    prep = read_preprocess(preprocess_path)
    model, raw = _load_onnx(model_path)
    where = f"{model_path} with {preprocess_path.name}"
    used = check_graph(model, prep, where)
    groups, sources = raw_groups(used, str(preprocess_path))
    wrapped = with_preprocessing(model, used, groups, sources).SerializeToString()
    spec = InputSpec(tuple(InputGroup(g, f, s) for g, (f, s) in groups.items()))
    classes = _class_names(prep)
    _check_runs(wrapped, spec, len(classes), where)

    target = Path(out_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise FileExistsError(f"{target} exists and is not empty; choose another directory "
                              "or pass --force")
    prep_bytes = preprocess_path.read_bytes()
    name = name or (model_path.stem if model_path.stem != "model"
                    else model_path.resolve().parent.name) or "onnx-import"
    manifest = _manifest(name, model, raw, prep, prep_bytes, spec, classes,
                         sum(int(np.prod(t.dims)) for t in model.graph.initializer))
    manifest["license"] = license
    if authors:
        manifest["authors"] = [{"name": a} for a in authors]
    target.parent.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    out.chmod(0o777 & ~umask)
    try:
        (out / ONNX_FILE).write_bytes(wrapped)
        (out / PREPROCESS_FILE).write_bytes(prep_bytes)
        (out / "schema.json").write_text(schema.schema_json())
        onnx.checker.check_model(str(out / ONNX_FILE))
        seal(out, manifest)
        _replace_dir(out, target)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return target


def _manifest(name, model, raw: bytes, prep: Preprocess, prep_bytes: bytes, spec: InputSpec,
              classes: list[str], n_parameters: int) -> dict:
    k = len(classes)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {
        "name": name, "version": "1.0.0", "doi": None,
        "description": ("An ONNX export with its weaver/CMSSW preprocess.json, imported: "
                        "the preprocessing runs inside model.onnx."),
        "authors": [{"name": "unknown (see the provenance)"}],
        "task": f"jet classification: {' vs '.join(classes) if k == 2 else f'{k} classes'}",
        "model": {"kind": ONNX_KIND,
                  "config": {"class_names": classes, "n_classes": k, "hyperparameters": {},
                             "preprocess": prep.to_json()},
                  "n_parameters": n_parameters, "weights": ONNX_FILE,
                  "bucket_by_multiplicity": False},
        "inputs": spec.to_manifest(),
        "outputs": [
            {"name": "probabilities", "shape": [None, k], "dtype": "float32",
             "classes": classes, "meaning": "the export's class scores"},
            {"name": "logits", "shape": [None, k], "dtype": "float32",
             "meaning": "the input of the export's final softmax (else log probabilities)"}],
        "methods": ["predict", "logits"],
        "runtimes": {"onnx": f"{ONNX_FILE}: ONNX Runtime (CPU; CUDA provider when present)",
                     "tensorrt": f"engine built from {ONNX_FILE} and cached per GPU"},
        "dependencies": _package_versions(),
        "provenance": {
            "source": "imported ONNX export (weaver / CMSSW model.onnx + preprocess.json)",
            "onnx_sha256": sha256_bytes(raw), "preprocess_sha256": sha256_bytes(prep_bytes),
            "producer": f"{model.producer_name} {model.producer_version}".strip(),
            "opset": opset, "output_names": list(prep.output_names),
            "code_commit": _code_commit(), "hardware": hardware()},
        "metrics": None,
        "files": {},
    }
