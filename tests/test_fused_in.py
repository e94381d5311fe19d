"""The IN's fused CPU kernel: its edge sums against a plain loop, when the forward takes it,
and what happens where it cannot be built."""

import numpy as np
import pytest
import torch

import servable
from servable.models import fused
from servable.models.interaction_network import InteractionNetwork


@pytest.fixture(scope="module")
def kernel():
    module = fused.kernel()
    assert module is not None, fused.unavailable()
    return module


def _loop_edge_sum(recv, send, first, last, skip_self, second, third):
    """The edge MLP written out pair by pair (float64 numpy)."""
    out = np.zeros((len(recv), third.shape[1]))
    for r in range(len(recv)):
        for s in range(first[r], last[r]):
            if skip_self and s == r:
                continue
            h = np.maximum(recv[r] + send[s], 0)
            out[r] += np.maximum(np.maximum(h @ second, 0) @ third, 0)
    return out


@pytest.mark.parametrize("skip_self", [True, False])
@pytest.mark.parametrize("tile_rows", [1, 7, 512])
def test_edge_sum_equals_the_pairwise_loop(kernel, skip_self, tile_rows):
    rng = np.random.default_rng(0)
    W, D = 16, 5
    # three groups of senders (sizes 4, 1, 0 plus an overlap) and receivers pointing at them
    send = rng.normal(size=(9, W))
    recv = rng.normal(size=(6, W))
    first = np.array([0, 0, 4, 4, 5, 9])
    last = np.array([4, 4, 5, 9, 9, 9])
    second, third = rng.normal(size=(W, W)), rng.normal(size=(W, D))
    want = _loop_edge_sum(recv, send, first, last, skip_self, second, third)
    for dtype, atol in ((torch.float64, 1e-12), (torch.float32, 1e-4)):
        got = kernel.edge_sum(*(torch.tensor(a, dtype=dtype) for a in (recv, send)),
                              torch.tensor(first), torch.tensor(last), skip_self,
                              *(torch.tensor(a, dtype=dtype) for a in (second, third)),
                              tile_rows)
        np.testing.assert_allclose(got.double().numpy(), want, atol=atol, rtol=1e-5)
    assert want[5].tolist() == [0.0] * D  # a receiver without senders gets nothing


def test_edge_sum_refuses_mismatched_shapes(kernel):
    a = torch.zeros(3, 8)
    with pytest.raises(RuntimeError, match="second must be"):
        kernel.edge_sum(a, a, torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64),
                        False, torch.zeros(4, 4), torch.zeros(8, 2), 16)


def test_the_forward_takes_the_kernel_only_for_inference(kernel, monkeypatch):
    calls = []
    original = fused.forward
    monkeypatch.setattr(fused, "forward", lambda *a: calls.append(1) or original(*a))
    torch.manual_seed(0)
    net = InteractionNetwork().eval()
    x, y = torch.randn(3, 30, 60), torch.randn(3, 14, 5)
    x[:, :, 20:] = 0
    with torch.inference_mode():
        fast_free = net(x, y)
    assert len(calls) == 1
    xg = x.clone().requires_grad_()
    out = net(xg, y)  # gradients wanted: the autograd-capable fast path
    out[:, 1].sum().backward()
    assert len(calls) == 1 and xg.grad is not None
    np.testing.assert_allclose(out.detach().numpy(), fast_free.numpy(), atol=1e-5, rtol=1e-5)
    monkeypatch.setenv("SERVABLE_FUSED", "0")
    with torch.inference_mode():
        net(x, y)
    assert len(calls) == 1 and fused.unavailable() == "SERVABLE_FUSED=0"


def test_a_kernel_that_cannot_be_built_leaves_the_fast_path(tmp_path, monkeypatch):
    broken = tmp_path / "in_fused.cpp"
    broken.write_text("this is not C++\n")
    monkeypatch.setattr(fused, "SOURCE", broken)
    monkeypatch.setattr(fused, "_state", {})
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    assert fused.kernel() is None
    assert fused.unavailable().startswith("the fused IN kernel could not be built")
    torch.manual_seed(1)
    net = InteractionNetwork().double().eval()
    x, y = torch.randn(2, 30, 60, dtype=torch.float64), torch.randn(2, 14, 5, dtype=torch.float64)
    with torch.inference_mode():
        np.testing.assert_allclose(net(x, y).numpy(), net.dense_forward(x, y).numpy(), atol=1e-9)


def test_no_compiler_is_said_in_one_line(monkeypatch):
    monkeypatch.setattr(fused, "_state", {})
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    assert fused.kernel() is None
    assert fused.unavailable() == "no C++ compiler (no-such-compiler-here) on PATH"


def test_a_bundle_predicts_the_same_with_and_without_the_kernel(published_bundle, test_file,
                                                                 kernel, monkeypatch):
    bundle = servable.load(published_bundle)
    jets = servable.read_jets(test_file)[:300]
    with_kernel = bundle.predict(jets, batch_size=128)
    monkeypatch.setenv("SERVABLE_FUSED", "0")
    without = bundle.predict(jets, batch_size=128)
    np.testing.assert_allclose(with_kernel, without, atol=1e-5)


def test_bench_parity_sets_the_unfused_path_beside_the_fused_one(published_bundle, test_file,
                                                                 kernel):
    from servable.bundle.bench import parity

    jets = servable.read_jets(test_file)[:200]
    report = parity(servable.load(published_bundle), jets, runtimes=(), unfused=True)
    row = report["runtimes"]["torch-unfused"]
    assert row["max_abs_dp"] < 1e-5 and abs(row["delta_auc"]) < 1e-6
