"""Inference runtimes behind one interface: `logits(inputs, batch_size) -> (n, classes)`.

`torch` is the tagger itself; `onnx` runs the bundle's model.onnx in ONNX Runtime (CUDA
provider when present); `openvino` runs it in OpenVINO on the CPU (float32 unless bf16 is asked
for); `tensorrt` builds an engine from model.onnx and caches it per GPU.
"""

from servable.errors import ServableError

RUNTIMES = ("torch", "onnx", "openvino", "tensorrt")


class RuntimeUnavailable(ServableError):
    """The runtime cannot run here (missing package or hardware); the message says why."""


class ModelMismatch(ServableError):
    """A model graph and the inputs selected for it by the bundle's input spec disagree: the
    manifest and model.onnx do not belong together."""


def check_inputs(graph: dict[str, tuple | None], inputs: dict) -> None:
    """The arrays the input spec selected against the graph's inputs (name -> shape, None
    for a dynamic axis or an unknown shape), before anything is fed."""
    for name, shape in graph.items():
        if name not in inputs:
            raise ModelMismatch(f"model.onnx takes the inputs {', '.join(graph)}, the manifest "
                                f"declares {', '.join(inputs) or 'none'}; the bundle's manifest "
                                "and model.onnx do not belong together")
        got = inputs[name].shape
        if shape is not None and (len(got) != len(shape) or any(
                want not in (None, have) for want, have in zip(shape, got, strict=True))):
            wanted = f"({', '.join('n' if w is None else str(w) for w in shape)})"
            raise ModelMismatch(f"model.onnx takes {name} of shape {wanted}, the manifest's "
                                f"input spec gives {got}; the bundle's manifest and "
                                "model.onnx do not belong together")


def in_batches(infer, inputs: dict, names, batch_size: int | None, width: int):
    """Logits (n, classes) of `infer(feed)` over consecutive batches of `batch_size` jets
    (all at once when None), each feed the contiguous float32 arrays `names` take; an empty
    input gives (0, `width`)."""
    import numpy as np

    n = len(next(iter(inputs.values())))
    batch_size = batch_size or max(n, 1)
    out = [infer({k: np.ascontiguousarray(inputs[k][start:start + batch_size], np.float32)
                  for k in names}) for start in range(0, n, batch_size)]
    return np.concatenate(out) if out else np.zeros((0, width), np.float32)


def run_bucketed(run, inputs: dict, batch_size, bucket: bool):
    """`run(inputs, batch_size)`, optionally over jets grouped by the multiplicity of the
    first slotted input (tracks, particles).

    The IN's exported graph costs as much as the fullest jet of a batch, so runners feed it
    buckets of similar multiplicity (the same buckets as the PyTorch fast path) and put the
    results back in input order.
    """
    import numpy as np

    from servable.data.jets import filled_slots
    from servable.models.batching import bucket_chunks
    from servable.models.spec import leading_slotted

    slotted = leading_slotted(inputs)
    if not bucket or slotted is None:
        return run(inputs, batch_size)

    n_tracks = filled_slots(slotted)  # the first slotted group: tracks or particles
    out = None
    for idx, _ in bucket_chunks(n_tracks):
        part = run({k: v[idx] for k, v in inputs.items()}, batch_size)
        if out is None:
            out = np.empty((len(n_tracks), part.shape[1]), part.dtype)
        out[idx] = part
    return out if out is not None else run(inputs, batch_size)  # no jets: the runner's shape
