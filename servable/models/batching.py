"""Batching shared by every way of running a model (PyTorch, ONNX Runtime, TensorRT): the
softmax over logits and the IN's buckets of jets of similar track multiplicity. Numpy only,
so that the torch-free ONNX path uses the same code."""

from __future__ import annotations

import numpy as np

# pairs per chunk of the IN's fast path: keeps the (pairs x hidden) intermediates in cache
PAIR_BUDGET = 1 << 14


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over classes, computed in float64, returned as float32."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def bucket_chunks(n_tracks, budget: int | None = None):
    """Jets sorted by multiplicity, cut into chunks of at most `budget` track pairs.

    Yields (indices, k): the jets of a chunk and their largest track count (at least 1).
    Shared by the PyTorch forward and the ONNX Runtime runner.
    """
    budget = budget or PAIR_BUDGET
    counts_all = np.asarray(n_tracks)
    order = np.argsort(counts_all, kind="stable")
    counts = np.maximum(counts_all[order], 1)
    start = 0
    while start < len(counts):
        stop = start + 1
        while stop < len(counts) and (stop + 1 - start) * counts[stop] ** 2 <= budget:
            stop += 1
        yield order[start:stop], int(counts[stop - 1])
        start = stop
