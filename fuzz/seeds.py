"""Write the seed corpus of the fuzz targets (fuzz/corpus/<target>/): small valid inputs.

    python -m fuzz.seeds    # rewrites the seeds; the corpus is kept in the repository

Seeds are what a fuzzer mutates; valid ones let it reach past the first checks.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np

from fuzz.contract import PUBLISHED, RECORDS, ROOT, small_jets
from servable.data.h5io import write_jets

CORPUS = ROOT / "fuzz" / "corpus"


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


def main() -> None:
    for target in ("h5_reader", "bundle_loader", "manifest_record"):
        shutil.rmtree(CORPUS / target, ignore_errors=True)
        (CORPUS / target).mkdir(parents=True)
    h5_seeds(CORPUS / "h5_reader")
    with tempfile.TemporaryDirectory() as tmp:
        manifest = (base_bundle(Path(tmp)) / "servable.yaml").read_bytes()
    (CORPUS / "bundle_loader" / "servable.yaml").write_bytes(manifest)
    (CORPUS / "bundle_loader" / "resealed-servable.yaml").write_bytes(b"#\n" + manifest)
    (CORPUS / "manifest_record" / "bundle-manifest.yaml").write_bytes(manifest)
    for record in RECORDS:
        shutil.copy(record, CORPUS / "manifest_record" / f"record-{record.name}")


if __name__ == "__main__":
    main()
