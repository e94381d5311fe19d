"""OpenVINO execution of a bundle's model.onnx on the CPU, float32 unless bf16 is asked for.

OpenVINO's CPU plugin runs in bf16 by default on CPUs with AVX-512 BF16 or AMX (measured on
this project's machine: max |dp| 0.012 for the IN), so the runner always sets the inference
precision hint explicitly: `f32` is exact to float32 rounding; `bf16` is an opt-in that is
refused on a CPU without native bf16 (it would be emulated, slower and no more useful).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from servable.runtimes import RuntimeUnavailable, check_inputs, in_batches, run_bucketed

PRECISIONS = ("f32", "bf16")


def _core():
    try:
        import openvino as ov
    except ImportError:
        raise RuntimeUnavailable("OpenVINO is not installed here: pip install openvino (or "
                                 "servable[openvino]); use --runtime onnx or torch") from None
    return ov.Core()


def openvino_bf16() -> bool:
    """Whether OpenVINO's CPU plugin runs bf16 natively on this CPU (False without OpenVINO)."""
    try:
        return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except RuntimeUnavailable:
        return False


class OpenVinoRuntime:
    """A bundle's model.onnx compiled by OpenVINO for the CPU at `precision` (f32 or bf16),
    `threads` inference threads (default $OMP_NUM_THREADS, else OpenVINO's own choice);
    RuntimeUnavailable without OpenVINO, the file, or native bf16 when bf16 is asked for."""

    name = "openvino"

    def __init__(self, path, precision: str = "f32", threads: int | None = None):
        if precision not in PRECISIONS:
            raise RuntimeUnavailable(f"OpenVINO precision {precision!r}: choose one of "
                                     f"{', '.join(PRECISIONS)}")
        core = _core()
        path = Path(path)
        if not path.exists():
            raise RuntimeUnavailable(f"{path}: no ONNX file in this bundle")
        if precision == "bf16" and not openvino_bf16():
            raise RuntimeUnavailable("this CPU has no native bf16 (AVX-512 BF16 or AMX): use "
                                     "--precision f32")
        config = {"INFERENCE_PRECISION_HINT": precision}
        threads = threads or int(os.environ.get("OMP_NUM_THREADS") or 0)
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            model = core.read_model(str(path))
        except RuntimeError as exc:  # e.g. ONNX-ML tree ensembles (the BDT): no conversion rule
            lines = [x.strip() for x in str(exc).splitlines() if "No conversion rule" in x]
            raise RuntimeUnavailable(f"{path}: OpenVINO cannot run this graph "
                                     f"({lines[0] if lines else 'conversion failed'}); use "
                                     "--runtime onnx") from None
        self.input_names = [i.get_any_name() for i in model.inputs]
        self.input_shapes = {i.get_any_name(): tuple(
            d.get_length() if d.is_static else None for d in i.get_partial_shape())
            for i in model.inputs}
        self.precision = precision
        self.compiled = core.compile_model(model, "CPU", config)
        self._request = self.compiled.create_infer_request()
        self._width = next(o.get_partial_shape()[1] for o in model.outputs
                           if "logits" in o.get_names())

    def logits(self, inputs: dict[str, np.ndarray], batch_size: int | None = None,
               bucket: bool = False) -> np.ndarray:
        """Logits in input order; `bucket` groups jets by track multiplicity (for the IN)."""
        check_inputs(self.input_shapes, inputs)
        return run_bucketed(self._run, inputs, batch_size, bucket)

    def _run(self, inputs, batch_size):
        def infer(feed):  # a copy: the request reuses its output buffer
            return np.array(self._request.infer(feed)["logits"], np.float32)

        width = self._width.get_length() if self._width.is_static else 2
        return in_batches(infer, inputs, self.input_names, batch_size, width)
