"""Stream a jet file through a bundle into a scores file, chunk by chunk.

The input is only read. The output is written to a temporary file beside it and renamed at
the end, so a failure (bad input in the middle of a file) leaves nothing behind and an
existing output is never replaced without `overwrite`.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from servable.bundle.bundle import Bundle
from servable.data.h5io import JetFile
from servable.errors import ServableError


def predict_file(bundle: Bundle, input_path, output_path, *, runtime: str = "torch",
                 batch_size: int | None = None, chunk_size: int = 20_000,
                 overwrite: bool = False, progress: bool = False) -> dict:
    """Score a file with a loaded bundle."""
    info = {"bundle": bundle.name, "version": str(bundle.manifest["version"]),
            "doi": bundle.manifest.get("doi") or "", "runtime": runtime,
            "classes": bundle.manifest["outputs"][0]["classes"]}

    def score(jets):
        return bundle.predict(jets, runtime, batch_size), info

    return stream_scores(score, input_path, output_path, chunk_size=chunk_size,
                         overwrite=overwrite, progress=progress)


def stream_scores(score, input_path, output_path, *, chunk_size: int = 20_000,
                  overwrite: bool = False, progress: bool = False) -> dict:
    """Write `scores` and `row_index` for every jet of the input, chunk by chunk.

    `score(jets)` returns (probabilities (n, classes), info) where info names the bundle
    (bundle, version, doi), the runtime and the class names; they become file attributes.
    """
    from tqdm import tqdm

    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise ServableError(f"{output_path}: the output would overwrite the input file")
    if output_path.exists() and not overwrite:
        raise FileExistsError(f"{output_path} exists; choose another name or pass --force")
    tmp = output_path.with_name(f".{output_path.name}.part")
    info: dict = {}
    try:
        with JetFile(input_path) as f, h5py.File(tmp, "w") as out:
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
        tmp.replace(output_path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"n_jets": n, "output": str(output_path), "runtime": info.get("runtime", "")}
