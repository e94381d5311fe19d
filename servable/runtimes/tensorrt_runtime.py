"""TensorRT execution (NVIDIA GPUs): an engine built from model.onnx, cached per GPU model.

Absent TensorRT or a CUDA GPU, constructing the runtime raises `RuntimeUnavailable` with a
message that says what is missing and which runtimes work instead. TensorRT has no ppc64le
build. Written against the TensorRT 10 Python API.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from servable.runtimes import RuntimeUnavailable, check_inputs, run_bucketed

MAX_BATCH = 4096


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
    name = "tensorrt"

    def __init__(self, onnx_path, cache_dir=None, max_batch: int = MAX_BATCH, fp16: bool = False):
        trt, torch = _require()
        self.trt, self.torch = trt, torch
        onnx_path = Path(onnx_path)
        gpu = torch.cuda.get_device_name().replace(" ", "_")
        digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:16]
        cache = Path(cache_dir or onnx_path.parent / "tensorrt")
        cache.mkdir(parents=True, exist_ok=True)
        plan = cache / f"{gpu}-trt{trt.__version__}-{digest}{'-fp16' if fp16 else ''}.plan"
        logger = trt.Logger(trt.Logger.WARNING)
        if not plan.exists():
            plan.write_bytes(self._build(onnx_path, logger, max_batch, fp16))
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(plan.read_bytes())
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
        if not parser.parse(onnx_path.read_bytes()):
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
