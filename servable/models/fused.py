"""The IN's fused CPU forward: the same function as `InteractionNetwork.forward`, with the edge
MLPs run by a C++ kernel (in_fused.cpp) that never materialises the (pairs x width) tensors.

Jets are not bucketed by multiplicity: the tracks of a batch are packed into one flat
(tracks, features) matrix (each jet's slots up to its last filled one), the kernel sums each
receiver's messages over the senders of its own jet, and the jet's N - n pad slots enter in
closed form, as in the fast path. Every other layer runs once per batch on the packed rows.

The kernel is compiled on first use (about 30 s, with the C++ compiler and ninja; cached by
torch in TORCH_EXTENSIONS_DIR, default ~/.cache/torch_extensions). Where it cannot be built or
loaded, `kernel()` returns None, `unavailable()` says why, and the fast path runs instead.
`SERVABLE_FUSED=0` turns it off. Inference only: a forward that needs gradients, an LRP rule,
a trace or export, a GPU tensor or a dtype other than float32/float64 takes the fast path.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

import torch
from torch.nn import functional as F

SOURCE = Path(__file__).with_name("in_fused.cpp")
# pair rows per tile: the tile's two (rows x 64) float32 buffers stay within L2
TILE_ROWS = 512

_lock = threading.Lock()
_state: dict = {}


def enabled() -> bool:
    """False when SERVABLE_FUSED=0 asks for the fast path."""
    return os.environ.get("SERVABLE_FUSED", "1") != "0"


def kernel():
    """The compiled extension, built once per process (None where it cannot be)."""
    with _lock:
        if "module" not in _state:
            _state["module"], _state["why"] = _build()
        return _state["module"]


def unavailable() -> str | None:
    """Why the fused kernel is not used here (None when it is)."""
    if not enabled():
        return "SERVABLE_FUSED=0"
    kernel()
    return _state["why"]


def _build():
    import shutil

    from torch.utils import cpp_extension

    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return None, f"no C++ compiler ({compiler}) on PATH"
    # ninja from the environment's own bin (pip's ninja) when the shell has none on PATH
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), bindir])
    name = f"servable_in_fused_{_build_tag()}"
    try:
        if not (Path(cpp_extension._get_build_directory(name, verbose=False))
                / f"{name}.so").exists():
            print("servable: building the fused IN kernel (once per machine, ~30 s)",
                  file=sys.stderr, flush=True)
        module = cpp_extension.load(
            name=name, sources=[str(SOURCE)], verbose=False,
            extra_cflags=["-O3", "-march=native", "-fopenmp"], extra_ldflags=["-fopenmp"])
    except Exception as exc:  # ninja, the compiler or the linker failing; a read-only cache
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return None, f"the fused IN kernel could not be built or loaded ({first})"
    return module, None


def _build_tag() -> str:
    """The source and this CPU's instruction set: a build made with -march=native on one node
    of a cluster is not loaded on another kind of node sharing the same home directory."""
    import hashlib
    import platform

    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    text = SOURCE.read_bytes() + f"{platform.machine()} {flags} {torch.__version__}".encode()
    return hashlib.sha256(text).hexdigest()[:12]


def usable(tracks: torch.Tensor, rule=None) -> bool:
    """Whether this forward may take the fused kernel (without building it): inference
    (no gradients recorded), no LRP rule, no trace or export, float32/64 on the CPU."""
    return (enabled() and rule is None and not torch.is_grad_enabled()
            and tracks.device.type == "cpu" and tracks.dtype in (torch.float32, torch.float64)
            and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export()
            and not torch.is_autocast_enabled("cpu"))


def forward(core, tracks: torch.Tensor, vertices: torch.Tensor, n: torch.Tensor,
            module) -> torch.Tensor:
    """Logits of `core` (an `InteractionNetwork`) with the edge sums from `module.edge_sum`.

    tracks (B, P, N) and vertices (B, S, Nv), already standardised; n (B,) each jet's
    explicit slots (`interaction_network.filled_widths`), the rest being pads."""
    B, N, Nv = tracks.shape[0], core.N, core.Nv
    tt, tv_w = core._folded()
    explicit = torch.arange(N)[None, :] < n[:, None]  # (B, N)
    x = tracks.transpose(1, 2)[explicit]  # (T, P): the explicit slots of every jet
    jet = torch.repeat_interleave(torch.arange(B), n)  # (T,)
    offsets = F.pad(torch.cumsum(n, 0), (1, 0))
    m = (N - n).to(tracks.dtype)  # pad slots per jet

    W = tt.bias.shape[0]
    halves = x @ torch.cat([tt.receiver, tt.sender, tv_w.receiver], 1)
    recv, send, trk = halves[:, :W] + tt.bias, halves[:, W:2 * W], halves[:, 2 * W:]
    trk = trk + tv_w.bias
    sv = vertices.transpose(1, 2) @ tv_w.sender  # (B, Nv, W)

    # track-track: the other explicit tracks of the jet, then the m pads in closed form
    ebar = module.edge_sum(recv, send, offsets[jet], offsets[jet + 1], True,
                           tt.second, tt.third, TILE_ROWS)
    ebar += m[jet, None] * tt.edge(F.relu(recv))
    pad_pad = tt.edge(F.relu(tt.bias))  # (De,)
    ebar_pad = (torch.zeros((B, pad_pad.shape[0]), dtype=x.dtype)
                .index_add_(0, jet, tt.edge(F.relu(send + tt.bias)))
                + (m - 1)[:, None] * pad_pad)
    # track-vertex: every vertex slot of the jet
    ebar_pv = module.edge_sum(trk, sv.reshape(B * Nv, W), jet * Nv, (jet + 1) * Nv,
                              False, tv_w.second, tv_w.third, TILE_ROWS)
    pad_pv = tv_w.edge(F.relu(sv + tv_w.bias)).sum(1)  # (B, De)

    nodes = core._node(torch.cat([x, ebar, ebar_pv], 1))  # (T, Do)
    out = torch.zeros((B, nodes.shape[1]), dtype=x.dtype).index_add_(0, jet, nodes)
    zeros = x.new_zeros((B, core.P))
    out += m[:, None] * core._node(torch.cat([zeros, ebar_pad, pad_pv], 1))
    return core.fc_fixed(out)


@contextlib.contextmanager
def switched_off():
    """The fast path inside the block (SERVABLE_FUSED=0), as before it afterwards."""
    before = os.environ.get("SERVABLE_FUSED")
    os.environ["SERVABLE_FUSED"] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ["SERVABLE_FUSED"]
        else:
            os.environ["SERVABLE_FUSED"] = before
