"""Servable bundles: a directory that describes itself, verified before use.

`servable.yaml` is the manifest: model kind and hyperparameters, inputs and outputs with
feature names and units, preprocessing, provenance, the SHA-256 of every other file and the
bundle's content digest (`servable.bundle.manifest`: the seal). Weights are safetensors
(torch models) or XGBoost JSON (the BDT): never pickle. `open_bundle` finds a bundle by path,
name, DOI or record URL (`resolve`; retrieval in `servable.bundle.retrieve`) and verifies
every byte before it reads anything else.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from servable import safe_yaml
from servable.bundle.manifest import (
    FORMAT_VERSION,
    MANIFEST,
    BundleError,
    seal,
    sha256_bytes,
    verify,
)
from servable.data import schema
from servable.data.jets import Jets
from servable.errors import ServableError, check_int
from servable.files import atomic_output, json_text, read_text
from servable.models.batching import probabilities
from servable.models.spec import InputSpec

if TYPE_CHECKING:
    from servable.models.taggers import Tagger

ONNX_FILE = "model.onnx"
ONNX_KIND = "onnx"  # an imported ONNX export: model.onnx is the model; no native weights


def _package_versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("servable", "torch", "numpy", "onnx", "onnxruntime", "openvino",
                "xgboost-cpu", "xgboost", "safetensors", "h5py"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def _code_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def hardware() -> dict:
    """The machine a bundle was made on, for its provenance: architecture, processor (None
    where the platform does not say), CPU count and operating system."""
    return {"machine": platform.machine(), "processor": platform.processor() or None,
            "cpus": os.cpu_count(), "system": platform.system()}


def task_of(config: dict) -> tuple[str, str]:
    """The task a tagger configuration serves, from its classes and the layout its features
    belong to: a short name for bundle names (`hbb`, `jetclass`) and a description."""
    classes = list(config["class_names"])
    jetclass = bool(config.get("particle_features"))
    if not jetclass and classes == list(schema.LABELS):
        return "hbb", "jet classification: H->bb vs QCD (CMS H->bb open-data layout)"
    layout = "JetClass particle layout" if jetclass else "CMS H->bb open-data layout"
    if jetclass and classes == list(schema.JETCLASS_CLASSES):
        slug = "jetclass"
    else:
        slug = ("jetclass-" if jetclass else "") + "-".join(
            "".join(ch for ch in c.lower() if ch.isalnum()) for c in classes)
    what = " vs ".join(classes) if len(classes) == 2 else \
        f"{len(classes)} classes ({', '.join(classes)})"
    return slug, f"jet classification: {what} ({layout})"


def io_spec(tagger: Tagger) -> tuple[list[dict], list[dict]]:
    """Inputs (from the tagger's input spec) and outputs of a tagger, as the manifest lists
    them."""
    c = tagger.config
    outputs = [
        {"name": "probabilities", "shape": [None, c["n_classes"]], "dtype": "float32",
         "classes": c["class_names"], "meaning": "softmax class probabilities"},
        {"name": "logits", "shape": [None, c["n_classes"]], "dtype": "float32",
         "meaning": "raw outputs (a two-class BDT: [0, margin], margin = log-odds of class "
                    f"{c['class_names'][1]}; a BDT of more classes: its margins)"},
    ]
    return tagger.input_spec().to_manifest(), outputs


def save_bundle(tagger: Tagger, out_dir, *, name: str, version: str = "0.1.0",
                provenance: dict | None = None, metrics: dict | None = None,
                extra_files: dict[str, bytes] | None = None, overwrite: bool = False,
                description: str = "", authors: list[dict] | None = None,
                onnx: bool = True) -> Path:
    """Write a bundle directory: weights, ONNX, manifest with checksums, metrics, extra
    files. It is written beside `out_dir` and renamed into place when complete, so a failure
    (an ONNX export that disagrees with the model, NaN weights) leaves nothing behind.

    `onnx`: write model.onnx, exported and checked against the native model in ONNX Runtime
    (RuntimeUnavailable where ONNX Runtime is not installed); False writes the native
    weights only, for installations without ONNX Runtime (the ppc64le image), and the
    manifest then lists the native runtime alone."""

    target = Path(out_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise FileExistsError(f"{target} exists and is not empty; choose another directory "
                              "or pass --force")
    target.parent.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    out.chmod(0o777 & ~umask)  # as a plain mkdir would (mkdtemp makes it private)
    try:
        _write_bundle(tagger, out, name=name, version=version, provenance=provenance,
                      metrics=metrics, extra_files=extra_files, description=description,
                      authors=authors, onnx=onnx)
        _replace_dir(out, target)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return target


def _replace_dir(new: Path, target: Path) -> None:
    """Move the finished folder `new` to `target` in one rename; an existing `target`
    (allowed by --force) is moved aside first and removed after."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise FileExistsError(f"{target} exists and is not a folder; choose another name")
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / "bundle")
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_bundle(tagger: Tagger, out: Path, *, name, version, provenance, metrics,
                  extra_files, description, authors, onnx) -> None:

    files: dict[str, bytes] = dict(extra_files or {})
    files[tagger.weights_file] = tagger.weights_bytes()
    if metrics is not None:
        files["metrics.json"] = json_text(metrics).encode()  # strict: undefined is null
    files["schema.json"] = schema.schema_json().encode()
    for fname, data in files.items():
        (out / fname).write_bytes(data)
    runtimes = {tagger.framework: "native weights"}
    if onnx:
        checked = _export_and_check_onnx(tagger, out / ONNX_FILE)
        runtimes["onnx"] = (f"{ONNX_FILE}: ONNX Runtime (CPU; CUDA provider when present); "
                            "checked against the native model at export")
        if "openvino" in checked:
            runtimes["openvino"] = (f"{ONNX_FILE}: OpenVINO CPU, float32 hint; checked "
                                    "against the native model at export")
        runtimes["tensorrt"] = f"engine built from {ONNX_FILE} and cached per GPU (NVIDIA only)"
    inputs, outputs = io_spec(tagger)
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "doi": None,
        "description": description,
        "authors": authors or [{"name": "The servable developers"}],
        "task": task_of(tagger.config)[1],
        "model": {"kind": tagger.kind, "config": tagger.config,
                  "n_parameters": tagger.n_parameters(), "weights": tagger.weights_file,
                  "bucket_by_multiplicity": tagger.bucket_by_multiplicity},
        "inputs": inputs,
        "outputs": outputs,
        "license": "MIT",
        "methods": ["predict", "logits"],
        "runtimes": runtimes,
        "dependencies": _package_versions(),
        "provenance": {"code_commit": _code_commit(), "hardware": hardware(),
                       **(provenance or {})},
        "metrics": metrics,
        "files": {},
    }
    seal(out, manifest)


def _export_and_check_onnx(tagger: Tagger, path: Path, atol: float = 1e-4) -> list[str]:
    """`servable.runtimes.onnx_export.export_and_check` (imported here: it needs torch)."""
    from servable.runtimes.onnx_export import export_and_check

    return export_and_check(tagger, path, atol)


def export_zip(bundle, zip_path, overwrite: bool = False) -> Path:
    """Verify a bundle and pack it into a .zip (the file that gets a DOI); the zip is written
    by `servable.files.atomic_output`, never inside the bundle."""
    import zipfile

    bundle, zip_path = Path(bundle), Path(zip_path)
    manifest = verify(bundle)
    with atomic_output(zip_path, force=overwrite, inputs=[bundle]) as f, \
            zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
        for name in [MANIFEST, *manifest["files"]]:
            z.write(bundle / name, f"{manifest['name']}/{name}")
    return zip_path


class Bundle:
    """A verified bundle: `predict`, `logits`, its manifest and input specification.

    The native model (`tagger`: torch or XGBoost) is loaded on first use; a prediction with
    ONNX Runtime or TensorRT never reads the native weights nor imports torch.
    """

    def __init__(self, path: Path, manifest: dict, native: bool = True):
        self.path, self.manifest, self.native = path, manifest, native
        self.spec = InputSpec.from_manifest(manifest["inputs"])
        self._tagger: Tagger | None = None
        self._runtimes: dict = {}

    @property
    def name(self) -> str:
        """The bundle's name (`name` in `servable.yaml`)."""
        return self.manifest["name"]

    @property
    def kind(self) -> str:
        """The model kind: in, mlp, bdt, part or particlenet."""
        return self.manifest["model"]["kind"]

    @property
    def tagger(self) -> Tagger:
        """The native model, built from the manifest and its verified weights."""
        if self._tagger is None:
            if self.kind == ONNX_KIND:
                raise ServableError(f"{self.path}: an imported ONNX model has no native "
                                    "weights; it runs with runtime='onnx' (or tensorrt)")
            if not self.native:
                raise ServableError(f"{self.path}: loaded without its native model; use "
                                    "runtime='onnx'")
            self._tagger = _native_tagger(self.path, self.manifest)
        return self._tagger

    def inputs(self, jets: Jets) -> dict[str, np.ndarray]:
        """The model's input arrays, its features picked by name as the manifest lists them."""
        return self.spec.select(jets)

    def logits(self, jets: Jets, runtime: str = "torch", batch_size: int | None = None,
               precision: str = "f32") -> np.ndarray:
        """Raw outputs (n, classes) with the chosen runtime: torch, onnx, openvino or tensorrt
        (an imported ONNX model runs with onnx when asked for torch: it has no other).
        `precision` bf16 is an opt-in for torch and openvino on CPUs with native bf16."""
        if batch_size is not None:
            check_int(batch_size, "batch_size")
        if runtime in ("torch", "native", "xgboost") and self.kind == ONNX_KIND:
            runtime = "onnx"  # its native runtime is ONNX Runtime
        if runtime in ("torch", "native", "xgboost"):
            from servable.models.precision import bf16_logits, check_precision

            if check_precision(precision) == "bf16":
                return bf16_logits(self.tagger, self.inputs(jets), batch_size)
            return self.tagger.logits_from_inputs(self.inputs(jets), batch_size)
        bucket = bool(self.manifest["model"].get("bucket_by_multiplicity"))
        return self.runtime(runtime, precision).logits(self.inputs(jets), batch_size,
                                                       bucket=bucket)

    def predict(self, jets: Jets, runtime: str = "torch", batch_size: int | None = None,
                precision: str = "f32") -> np.ndarray:
        """Class probabilities (n, classes)."""
        return probabilities(self.logits(jets, runtime, batch_size, precision))

    def runtime(self, name: str, precision: str = "f32"):
        """The ONNX Runtime, OpenVINO or TensorRT runner of this bundle at `precision`
        (created once each)."""
        from servable.runtimes import RUNTIMES, RuntimeUnavailable

        if name == "torch":
            raise RuntimeUnavailable("torch is the native model, not a runner of model.onnx: "
                                     "use logits(jets, 'torch')")
        if name not in RUNTIMES:
            raise RuntimeUnavailable(f"unknown runtime {name!r}; choose one of "
                                     f"{', '.join(RUNTIMES)}")
        if precision != "f32" and name != "openvino":
            raise RuntimeUnavailable(f"precision {precision} runs with --runtime openvino or "
                                     f"torch, not {name}; use --precision f32")
        key = (name, precision)
        if key not in self._runtimes:
            if name == "onnx":
                from servable.runtimes.onnx_runtime import OnnxRuntime

                self._runtimes[key] = OnnxRuntime(self.path / ONNX_FILE)
            elif name == "openvino":
                from servable.runtimes.openvino_runtime import OpenVinoRuntime

                self._runtimes[key] = OpenVinoRuntime(self.path / ONNX_FILE, precision)
            else:
                from servable.runtimes.tensorrt_runtime import TensorRTRuntime

                self._runtimes[key] = TensorRTRuntime(self.path / ONNX_FILE)
        return self._runtimes[key]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, kind={self.kind!r}, path={str(self.path)!r})"


def _native_tagger(path: Path, manifest: dict) -> Tagger:
    """The tagger of a verified bundle, its weights read from the file the manifest lists and
    checksums (`validate_manifest` refuses a weights name outside the checksummed files)."""
    try:
        from servable.models.taggers import build_tagger
    except ImportError as exc:
        raise ServableError(f"the native model needs {exc.name}, which is not installed: "
                            "install servable[train] or use runtime='onnx'") from None
    name = manifest["model"]["weights"]
    try:
        tagger = build_tagger(manifest["model"]["config"])
    except ServableError as exc:
        raise BundleError(f"{path / MANIFEST}: model.config.{exc}") from None
    raw = (path / name).read_bytes()
    if sha256_bytes(raw) != manifest["files"][name]:
        raise BundleError(f"{path}: file {name} changed after verification; load it again")
    try:
        tagger.load_weights(raw)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:  # torch and xgboost say
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise BundleError(f"{path}: {name} does not fit the model configuration in "
                          f"{MANIFEST} ({exc.__class__.__name__}: {first})") from None
    return tagger


BUNDLE_PATH_ENV = "SERVABLE_BUNDLE_PATH"


def _under_bundle_path(key: str, roots: list[Path]) -> Path | None:
    for root in roots:
        for manifest_path in sorted(root.glob(f"*/{MANIFEST}")):
            try:
                manifest = safe_yaml.load(read_text(manifest_path), str(manifest_path))
            except (OSError, UnicodeDecodeError, ServableError):
                continue
            if isinstance(manifest, dict) and key in (
                    manifest.get("name"), manifest.get("doi"), manifest.get("concept_doi")):
                return manifest_path.parent
    return None


def resolve(ref) -> Path:
    """The bundle directory `ref` names: a path; a name or DOI of a bundle under the
    directories listed in $SERVABLE_BUNDLE_PATH (how an offline endpoint serves bundles);
    otherwise a DOI, concept DOI or Zenodo record URL, retrieved into the cache (or found
    there: `servable.bundle.retrieve`)."""
    from servable.bundle.retrieve import identifier, retrieve

    path = Path(str(ref)).expanduser()
    if path.exists():
        return path
    ident = identifier(str(ref))
    roots = [Path(d) for d in os.environ.get(BUNDLE_PATH_ENV, "").split(os.pathsep) if d]
    found = _under_bundle_path(ident.doi if ident and ident.doi else str(ref), roots)
    if found is not None:
        return found
    if ident is not None:
        return retrieve(ident)
    where = f"${BUNDLE_PATH_ENV} = {os.pathsep.join(map(str, roots))}" if roots else \
        f"${BUNDLE_PATH_ENV} is not set"
    raise BundleError(f"{ref}: no such bundle directory, and no bundle with this name "
                      f"({where}); give the bundle's path, its DOI, or add its parent "
                      f"directory to ${BUNDLE_PATH_ENV}")


def open_bundle(ref, native: bool = True, cls: type[Bundle] = Bundle,
                digest: str | None = None) -> Bundle:
    """Verify a bundle found by path, name or DOI (see `resolve`) and open it as `cls`.

    The native model loads on first use; `native=False` forbids it (ONNX only). `digest`:
    the content digest the bundle must have. The public entry point is `servable.load`.
    """
    path = resolve(ref)
    return cls(path, verify(path, expect=digest), native)
