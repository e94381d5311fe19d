"""Runner interface: every runtime takes the same call; bucketing keeps input order."""

import inspect

import numpy as np

from servable.runtimes import run_bucketed
from servable.runtimes.onnx_runtime import OnnxRuntime
from servable.runtimes.tensorrt_runtime import TensorRTRuntime


def test_onnx_and_tensorrt_runners_share_one_call():
    # Bundle.logits calls every runner the same way; TensorRT is only exercised on a GPU
    onnx, trt = (inspect.signature(r.logits).parameters for r in (OnnxRuntime, TensorRTRuntime))
    assert list(onnx) == list(trt)


def test_bucketed_runs_come_back_in_input_order():
    rng = np.random.default_rng(0)
    tracks = np.zeros((200, 3, 60), np.float32)
    for i, n in enumerate(rng.integers(0, 61, size=200)):
        tracks[i, :, :n] = rng.normal(size=(3, n)) + 5
    inputs = {"tracks": tracks, "vertices": rng.normal(size=(200, 2, 5)).astype(np.float32)}

    def run(batch, batch_size):  # a per-jet function of both inputs
        return np.stack([batch["tracks"].sum((1, 2)), batch["vertices"].sum((1, 2))], axis=1)

    np.testing.assert_allclose(run_bucketed(run, inputs, None, bucket=True),
                               run(inputs, None), rtol=1e-6)
