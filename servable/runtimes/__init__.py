"""Inference runtimes behind one interface: `logits(inputs, batch_size) -> (n, classes)`.

`torch` is the tagger itself; `onnx` runs the bundle's model.onnx in ONNX Runtime (CUDA
provider when present); `tensorrt` builds an engine from model.onnx and caches it per GPU.
"""

from servable.errors import ServableError

RUNTIMES = ("torch", "onnx", "tensorrt")


class RuntimeUnavailable(ServableError):
    """The runtime cannot run here (missing package or hardware); the message says why."""
