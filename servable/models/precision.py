"""Opt-in reduced precision for the PyTorch taggers: bf16 autocast on CPUs with native bf16.

Never the default: float32 stays the reference, and `servable bench parity --precision bf16`
reports what bf16 costs (max |dp|, delta AUC, fidelity) before anyone chooses it.
"""

from __future__ import annotations

import numpy as np

from servable.errors import ServableError

PRECISIONS = ("f32", "bf16")


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes bf16 natively (AVX-512 BF16 or AMX BF16 among its flags)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    flags = set(text.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def check_precision(precision: str) -> str:
    """`precision` if it is one of PRECISIONS, else a ServableError naming the choices."""
    if precision not in PRECISIONS:
        raise ServableError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return precision


def bf16_logits(tagger, inputs: dict[str, np.ndarray], batch_size=None) -> np.ndarray:
    """The tagger's logits with its matrix products in bf16 (torch CPU autocast), returned
    as float32; ServableError for a model without a PyTorch network or a CPU without bf16."""
    import torch

    net = getattr(tagger, "net", None)
    if not isinstance(net, torch.nn.Module):
        raise ServableError(f"the {tagger.kind} has no PyTorch network: bf16 runs only the "
                            "neural taggers; use --precision f32")
    if not cpu_has_bf16():
        raise ServableError("this CPU has no native bf16 (AVX-512 BF16 or AMX): use "
                            "--precision f32")
    # the network's output back to float32, so the tagger's own batching and numpy copy work
    hook = net.register_forward_hook(lambda _module, _args, out: out.float())
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return tagger.logits_from_inputs(inputs, batch_size)
    finally:
        hook.remove()
