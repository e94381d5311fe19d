"""Stream a jet file through a bundle into a scores file, chunk by chunk.

The input is only read. The output is written with `servable.files.atomic_output`: a
failure (bad input in the middle of a file) leaves nothing behind, an existing output is never
replaced without `overwrite`, and nothing is written inside a bundle or over the input.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from servable.bundle.bundle import Bundle
from servable.data.io import open_jets
from servable.errors import ServableError, check_int
from servable.files import atomic_output, regular_file


def predict_file(bundle: Bundle, input_path, output_path, *, runtime: str = "torch",
                 batch_size: int | None = None, chunk_size: int = 20_000,
                 overwrite: bool = False, progress: bool = False,
                 precision: str = "f32") -> dict:
    """Score a file with a loaded bundle (`precision` bf16: opt-in, see Bundle.logits)."""
    if batch_size is not None:
        check_int(batch_size, "batch_size")
    info = {"bundle": bundle.name, "version": str(bundle.manifest["version"]),
            "doi": bundle.manifest.get("doi") or "",
            "runtime": runtime if precision == "f32" else f"{runtime}-{precision}",
            "classes": bundle.manifest["outputs"][0]["classes"]}

    def score(jets):
        return bundle.predict(jets, runtime, batch_size, precision), info

    return stream_scores(score, input_path, output_path, chunk_size=chunk_size,
                         overwrite=overwrite, progress=progress, bundle_path=bundle.path)


def stream_scores(score, input_path, output_path, *, chunk_size: int = 20_000,
                  overwrite: bool = False, progress: bool = False,
                  bundle_path=None) -> dict:
    """Write `scores` and `row_index` for every jet of the input, chunk by chunk.

    `score(jets)` returns (probabilities (n, classes), info) where info names the bundle
    (bundle, version, doi), the runtime and the class names; they become file attributes.
    The output goes neither over the input nor into the bundle at `bundle_path` (if local).
    """
    from tqdm import tqdm

    check_int(chunk_size, "chunk_size")
    input_path, output_path = Path(input_path), Path(output_path)
    inputs = [input_path, *([bundle_path] if bundle_path is not None else [])]
    info: dict = {}
    with atomic_output(output_path, force=overwrite, inputs=inputs) as raw, \
            open_jets(input_path) as f, h5py.File(raw, "w") as out:
        n = len(f)
        rows = out.create_dataset("row_index", (n,), np.int64)
        scores = None
        with tqdm(total=n, unit="jet", desc="predicting", disable=not progress,
                  delay=0.5) as bar:  # delay: an error at the start stays one line
            for start in range(0, n, chunk_size):
                jets = f.read(start, start + chunk_size)
                stop = start + len(jets)
                probs, info = score(jets)
                if scores is None:
                    scores = out.create_dataset("scores", (n, probs.shape[1]), np.float32)
                scores[start:stop] = probs
                rows[start:stop] = np.arange(start, stop)
                bar.update(len(jets))
        if scores is None:
            scores = out.create_dataset("scores", (0, len(info.get("classes", [])) or 2),
                                        np.float32)
        scores.attrs["classes"] = info.get("classes", [])
        out.attrs.update({"bundle": info.get("bundle", ""),
                          "version": info.get("version", ""), "doi": info.get("doi", ""),
                          "runtime": info.get("runtime", ""), "input": str(input_path),
                          "n_jets": n})
    return {"n_jets": n, "output": str(output_path), "runtime": info.get("runtime", "")}


def read_scores(path) -> np.ndarray:
    """The `scores` (n, classes) of a file that `predict_file` or `stream_scores` wrote."""
    path = regular_file(path)
    with h5py.File(path, "r") as f:
        if "scores" not in f:
            raise ServableError(f"{path}: no 'scores' dataset; not a file servable predict wrote")
        return f["scores"][:]
