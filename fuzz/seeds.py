"""Write the seed corpus of the fuzz targets (fuzz/corpus/<target>/): small valid inputs.

    python -m fuzz.seeds [TARGET ...]   # rewrites the seeds; the corpus is kept in the repository

Seeds are what a fuzzer mutates; valid ones let it reach past the first checks.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

from fuzz.contract import PUBLISHED, RECORDS, ROOT, small_jets
from servable.data.h5io import write_jets

CORPUS = ROOT / "fuzz" / "corpus"
TARGETS = ("h5_reader", "bundle_loader", "manifest_record", "jetclass_root", "checkpoint_import",
           "records_json")


def base_bundle(where: Path) -> Path:
    """The published baseline IN imported into a bundle (what bundle_loader fuzzes)."""
    from servable.bundle.checkpoint import import_checkpoint

    return import_checkpoint(PUBLISHED / "gnn_baseline_best.pth",
                             PUBLISHED / "gnn_baseline_model_metadata.json", where / "bundle")


def h5_seeds(out: Path) -> None:
    write_jets(out / "synthetic-gzip.h5", small_jets(3))
    ref = np.load(PUBLISHED / "gnn_baseline_best_reference.npz")
    with h5py.File(out / "reference-plain.h5", "w") as f:  # no compression: bytes are values
        f["testing_subgroup/testing_2"] = ref["tracks"][1:3]
        f["testing_subgroup/testing_3"] = ref["vertices"][1:3]
        f["target_subgroup/target"] = np.eye(2, dtype=np.float32)
    with h5py.File(out / "minimal-plain.h5", "w") as f:
        f["training_subgroup/training_2"] = np.zeros((1, 30, 60), np.float32)
        f["training_subgroup/training_3"] = np.zeros((1, 14, 5), np.float32)


def root_seeds(out: Path) -> None:
    """Recipes (first byte odd: fuzz/root_recipes.py) and the files two of them write (first
    byte even: the bytes themselves), a TTree and an RNTuple of valid ring jets."""
    from fuzz.root_recipes import write_recipe

    recipes = {"valid-ttree": b"", "valid-rntuple": b"\x02\x00" + b"\x00" * 6 + b"\x01\x00",
               "disagreeing-lengths": b"\x03\x00\x01\x00\x06\x00\x00\x00" + b"\x05" * 12,
               "huge-count": b"\x02\x00\x01\x00\x07\x00\x00\x00\x00\x00\x02\x00",
               "truncated": b"\x02\x00" + b"\x00" * 10 + b"\x02\x00"}
    for name, recipe in recipes.items():
        (out / f"recipe-{name}").write_bytes(b"\x01" + recipe)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("valid-ttree", "valid-rntuple"):
            path = write_recipe(Path(tmp) / f"{name}.root", recipes[name])
            (out / f"file-{name}.root").write_bytes(b"\x00" + path.read_bytes())


def checkpoint_seeds(out: Path) -> None:
    """Recipes (fuzz/checkpoint_recipes.py): the IN state dict unchanged, the IN and
    ParticleNet state dicts changed once; the small IN checkpoint as bytes (mode 2)."""
    from fuzz.checkpoint_recipes import IN_CHECKPOINT

    # no valid ParticleNet: its import (ONNX export and parity check) takes 10-30 s
    for name, recipe in {"in-valid": b"\x00\x00",
                         "in-reshaped": b"\x00\x00\x01\x00\x00\x00\x03\x00",
                         "particlenet-poisoned": b"\x01\x00\x01\x00\x03\x00\x05\x00",
                         "in-odd-metadata": b"\x00\x00\x00\x00\x00\x00\x01\x00\x02\x00"
                                            b"\x02\x00"}.items():
        (out / f"recipe-{name}").write_bytes(recipe)
    (out / "raw-in-checkpoint.pth").write_bytes(b"\x02\x00" + IN_CHECKPOINT.read_bytes())


def _zip(members: dict[str, bytes], link: str | None = None) -> bytes:
    import io
    import stat
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return buf.getvalue()


def records_seeds(out: Path) -> None:
    """Record JSON (first byte even; `http://SERVER` is the target's server) and archives
    (first byte odd); valid ones of each run are added by the target itself."""
    import json

    from fuzz.contract import record_for

    archive = _zip({"b/servable.yaml": b"name: b\n", "b/model.onnx": b"\0" * 64})
    records = {"valid-shape": record_for(archive),
               "two-zips-pdf": {**record_for(archive), "files": [
                   {"key": "paper.pdf", "size": 10, "checksum": "md5:" + "0" * 32},
                   *record_for(archive, "b-0.9.zip")["files"],
                   *record_for(archive, "b-1.0.zip")["files"]]},
               "concept": {"id": 2, "conceptrecid": "2", "files": [], "metadata": []}}
    for name, record in records.items():
        (out / f"record-{name}.json").write_bytes(b"\0" + json.dumps(record).encode())
    archives = {"shape": archive, "traversal": _zip({"b/servable.yaml": b"", "../x": b"1"}),
                "link": _zip({"b/servable.yaml": b""}, link="b/evil"),
                "twice": _zip({"b/servable.yaml": b"", "b/a": b"1", "b/a/": b""})}
    for name, data in archives.items():
        (out / f"archive-{name}.zip").write_bytes(b"\1" + data)


def manifest_seeds(bundle_loader: Path, manifest_record: Path) -> None:
    """The published IN's manifest (as it is, and to be sealed anew) and the records."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = (base_bundle(Path(tmp)) / "servable.yaml").read_bytes()
    (bundle_loader / "servable.yaml").write_bytes(manifest)
    (bundle_loader / "resealed-servable.yaml").write_bytes(b"#\n" + manifest)
    (manifest_record / "bundle-manifest.yaml").write_bytes(manifest)
    for record in RECORDS:
        shutil.copy(record, manifest_record / f"record-{record.name}")


WRITERS = {"h5_reader": h5_seeds, "jetclass_root": root_seeds,
           "checkpoint_import": checkpoint_seeds, "records_json": records_seeds}


def main(targets: list[str]) -> None:
    """Rewrite the seeds of `targets` (all when none is named); the regression inputs
    (`regression-*`, inputs that once broke the contract) are kept."""
    targets = targets or list(TARGETS)
    for target in targets:
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            if not old.name.startswith("regression-"):
                old.unlink()
        if target in WRITERS:
            WRITERS[target](folder)
    if {"bundle_loader", "manifest_record"} & set(targets):
        manifest_seeds(CORPUS / "bundle_loader", CORPUS / "manifest_record")


if __name__ == "__main__":
    main(sys.argv[1:])
