"""TensorRT execution (NVIDIA GPUs): an engine built from model.onnx, cached per GPU model.

Engines are cached in the user's cache directory, never in the bundle (bundles are only
read, and may be read-only): `$SERVABLE_CACHE/tensorrt`, else `$XDG_CACHE_HOME/servable/
tensorrt`, else `~/.cache/servable/tensorrt`; an engine's file name holds the SHA-256 of the
ONNX file it was built from, the GPU model, the TensorRT version and the precision.

Absent TensorRT or a CUDA GPU, constructing the runtime raises `RuntimeUnavailable` with a
message that says what is missing and which runtimes work instead. TensorRT has no ppc64le
build. Written against the TensorRT 10 Python API.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from servable.files import open_regular, sha256_file, write_bytes
from servable.runtimes import RuntimeUnavailable, check_inputs, run_bucketed

MAX_BATCH = 4096
CACHE_ENV = "SERVABLE_CACHE"


def engine_cache_dir() -> Path:
    """Where built engines are kept (see the module's docstring)."""
    if os.environ.get(CACHE_ENV):
        root = Path(os.environ[CACHE_ENV]).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "servable"
    return root / "tensorrt"


def engine_path(onnx_digest: str, gpu: str, trt_version: str, fp16: bool = False,
                cache_dir=None) -> Path:
    """The engine file for an ONNX file (its SHA-256) on a GPU model with a TensorRT version;
    names are made of safe characters only."""
    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "unknown"

    name = f"{safe(gpu)}-trt{safe(trt_version)}-{onnx_digest}{'-fp16' if fp16 else ''}.plan"
    return (Path(cache_dir) if cache_dir else engine_cache_dir()) / name


def _require():
    try:
        import tensorrt as trt
    except ImportError:
        raise RuntimeUnavailable(
            "TensorRT is not installed here: it needs an NVIDIA GPU with CUDA (use the CUDA "
            "container, or pip install tensorrt on a GPU machine); use --runtime onnx or torch"
        ) from None
    import torch

    if not torch.cuda.is_available():
        raise RuntimeUnavailable("no CUDA GPU is visible: TensorRT runs only on NVIDIA GPUs "
                                 "(in a container add --nv / --gpus all); use --runtime onnx")
    return trt, torch


class TensorRTRuntime:
    """A TensorRT engine of model.onnx, built once per GPU model, TensorRT version and
    precision (`fp16`) and cached, for batches of up to `max_batch` jets; RuntimeUnavailable
    without TensorRT or a CUDA GPU, or when the engine cannot be built."""

    name = "tensorrt"

    def __init__(self, onnx_path, cache_dir=None, max_batch: int = MAX_BATCH, fp16: bool = False):
        trt, torch = _require()
        self.trt, self.torch = trt, torch
        onnx_path = Path(onnx_path)
        gpu = "{}-sm{}{}".format(torch.cuda.get_device_name(),
                                 *torch.cuda.get_device_capability())
        plan = engine_path(sha256_file(onnx_path), gpu, trt.__version__, fp16, cache_dir)
        logger = trt.Logger(trt.Logger.WARNING)
        if not plan.exists():  # written atomically: a concurrent build replaces, never mixes
            write_bytes(plan, self._build(onnx_path, logger, max_batch, fp16), force=True)
        with open_regular(plan) as f:
            self.engine = trt.Runtime(logger).deserialize_cuda_engine(f.read())
        self.context = self.engine.create_execution_context()
        self.plan_path = plan
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [n for n in names
                            if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.max_batch = max_batch

    def _build(self, onnx_path, logger, max_batch, fp16) -> bytes:
        trt = self.trt
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        with open_regular(onnx_path) as f:
            parsed = parser.parse(f.read())
        if not parsed:
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeUnavailable(f"TensorRT cannot parse {onnx_path.name}: {errors}")
        config = builder.create_builder_config()
        if fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            t = network.get_input(i)
            rest = tuple(t.shape)[1:]
            profile.set_shape(t.name, (1, *rest), (min(1024, max_batch), *rest),
                              (max_batch, *rest))
        config.add_optimization_profile(profile)
        engine = builder.build_serialized_network(network, config)
        if engine is None:
            raise RuntimeUnavailable(f"TensorRT failed to build an engine from {onnx_path.name}")
        return bytes(engine)

    def logits(self, inputs: dict[str, np.ndarray], batch_size: int | None = None,
               bucket: bool = False) -> np.ndarray:
        """Logits in input order; `bucket` groups jets by track multiplicity (for the IN)."""
        check_inputs(dict.fromkeys(self.input_names), inputs)
        return run_bucketed(self._run, inputs, batch_size, bucket)

    def _run(self, inputs: dict[str, np.ndarray], batch_size: int | None) -> np.ndarray:
        torch = self.torch
        n = len(next(iter(inputs.values())))
        batch_size = min(batch_size or self.max_batch, self.max_batch)
        stream = torch.cuda.current_stream()
        out = []
        for start in range(0, n, batch_size):
            feeds = {k: torch.from_numpy(np.ascontiguousarray(
                inputs[k][start:start + batch_size], np.float32)).cuda()
                for k in self.input_names}
            b = next(iter(feeds.values())).shape[0]
            for k, t in feeds.items():
                self.context.set_input_shape(k, tuple(t.shape))
                self.context.set_tensor_address(k, t.data_ptr())
            results = {}
            for name in ("probabilities", "logits"):
                shape = tuple(self.context.get_tensor_shape(name))
                results[name] = torch.empty((b, *shape[1:]), device="cuda")
                self.context.set_tensor_address(name, results[name].data_ptr())
            self.context.execute_async_v3(stream.cuda_stream)
            stream.synchronize()
            out.append(results["logits"].cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 2), np.float32)
