"""ONNX Runtime execution of a bundle's model.onnx."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from servable.runtimes import RuntimeUnavailable, check_inputs, in_batches, run_bucketed


def onnxruntime_installed() -> bool:
    """Whether ONNX Runtime can be imported here (the ppc64le image has none)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


class OnnxRuntime:
    """A bundle's model.onnx in an ONNX Runtime session: the CUDA provider when present, else the
    CPU one (or `providers`), `threads` intra-op threads (default $OMP_NUM_THREADS, else every
    core), every graph optimisation; RuntimeUnavailable when the file is absent."""

    name = "onnx"

    def __init__(self, path, providers: list[str] | None = None, threads: int | None = None):
        import onnxruntime as ort

        path = Path(path)
        if not path.exists():
            raise RuntimeUnavailable(f"{path}: no ONNX file in this bundle")
        available = ort.get_available_providers()
        if providers is None:
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                         if p in available]
        options = ort.SessionOptions()
        options.intra_op_num_threads = (threads or int(os.environ.get("OMP_NUM_THREADS") or 0)
                                        or os.cpu_count() or 1)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_shapes = {i.name: tuple(d if isinstance(d, int) else None for d in i.shape)
                             for i in self.session.get_inputs()}
        self.providers = self.session.get_providers()

    def logits(self, inputs: dict[str, np.ndarray], batch_size: int | None = None,
               bucket: bool = False) -> np.ndarray:
        """Logits in input order; `bucket` groups jets by track multiplicity (for the IN)."""
        check_inputs(self.input_shapes, inputs)
        return run_bucketed(self._run, inputs, batch_size, bucket)

    def _run(self, inputs, batch_size):
        width = next(o.shape[1] for o in self.session.get_outputs() if o.name == "logits")
        return in_batches(lambda feed: self.session.run(["logits"], feed)[0], inputs,
                          self.input_names, batch_size, width if isinstance(width, int) else 2)
