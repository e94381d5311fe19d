"""Hostile published checkpoints from a byte string (a recipe), for the `checkpoint_import`
fuzz target and the hypothesis properties: the real published state dicts (the small FAIR4HEP
Interaction Network with its model_metadata.json; the official JetClass ParticleNet `kin`
when ../shared/fixtures holds it) changed as the bytes say, saved with `torch.save`.

Changes: a tensor reshaped, emptied, retyped (integers, half, bool, complex), poisoned with
NaN or Inf, scaled to 1e30; keys removed, renamed, added (tensors or other objects); the
whole state dict replaced by something else; the metadata's fields replaced by odd values;
or (mode 2) the bytes themselves as the checkpoint file.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import torch

from fuzz.contract import PUBLISHED, ROOT
from fuzz.root_recipes import Bytes

IN_CHECKPOINT = PUBLISHED / "gnn_pfeaturesdropped14_hidden16_De8_Do8_best.pth"
IN_METADATA = PUBLISHED / "gnn_pfeaturesdropped14_hidden16_De8_Do8_model_metadata.json"
PARTICLENET = ROOT.parent / "shared" / "fixtures" / "jetclass-particlenet" / "ParticleNet_kin.pt"
TENSOR_OPS = ("reshape", "empty", "retype", "poison", "scale", "delete", "rename", "extra",
              "object", "int_key")
ODD = (0, -1, 4097, 10 ** 30, "16", True, None, [], {}, "0,1,2,99", "a,b", 1.5, math.nan,
       "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29",
       "x" * 300, "../../etc", "1")


@functools.cache
def _states() -> dict[str, dict]:
    out = {"in": torch.load(IN_CHECKPOINT, map_location="cpu", weights_only=True)}
    if PARTICLENET.is_file():
        out["particlenet"] = torch.load(PARTICLENET, map_location="cpu", weights_only=True)
    return out


def _change_tensor(state: dict, b: Bytes) -> None:
    keys = sorted(state)
    op, key = b.pick(TENSOR_OPS), b.pick(keys)
    t = state[key]
    if op == "reshape" and t.numel():
        state[key] = b.pick([t.reshape(-1), t[..., :-1] if t.ndim else t[None],
                             t.unsqueeze(0), t.t() if t.ndim == 2 else t.reshape(1, -1)])
    elif op == "empty":
        state[key] = t[:0] if t.ndim else torch.zeros(0)
    elif op == "retype":
        state[key] = t.to(b.pick([torch.int64, torch.float16, torch.bool, torch.complex64,
                                  torch.bfloat16, torch.float64, torch.uint8]))
    elif op == "poison" and t.numel() and t.is_floating_point():
        t = t.clone()
        t.view(-1)[b.int(0, t.numel() - 1)] = b.pick([math.nan, math.inf, -math.inf])
        state[key] = t
    elif op == "scale" and t.is_floating_point():
        state[key] = t * b.pick([1e30, -1e30, 1e-30, 0.0, 3e38])
    elif op == "delete":
        del state[key]
    elif op == "rename":
        state[key + b.pick(["_", ".extra", "s"])] = state.pop(key)
    elif op == "extra":
        state[b.pick(["mod.extra.weight", "fr1.extra", key + "x", "num_batches_tracked"])] = \
            b.pick([torch.ones(3), torch.tensor(7), torch.ones(2, 2, dtype=torch.int32)])
    elif op == "object":
        state[key] = b.pick([7, "weights", [t], {"t": t}, None])
    elif op == "int_key":
        state[b.int(0, 9)] = state.pop(key)


def write_recipe(work: Path, data: bytes) -> tuple[Path, Path | None]:
    """(checkpoint, metadata or None) the recipe `data` describes, written under `work`."""
    b = Bytes(data)
    mode = b.int(0, 2)
    checkpoint, metadata = work / "checkpoint.pt", None
    if mode == 2:  # the bytes are the file
        checkpoint.write_bytes(data[b.at:])
        if b.int(0, 1):
            metadata = work / "metadata.json"
            metadata.write_text(IN_METADATA.read_text())
        return checkpoint, metadata
    states = _states()
    kind = "in" if mode == 0 or "particlenet" not in states else "particlenet"
    state = dict(states[kind])
    for _ in range(b.int(0, 3)):
        try:
            _change_tensor(state, b)
        except Exception:  # noqa: BLE001 - a change that cannot be built is skipped
            pass
    whole = b.int(0, 12)
    saved = {1: list(state.values()), 2: torch.ones(3), 3: None, 4: {"state_dict": state}
             }.get(whole, state)
    torch.save(saved, checkpoint)
    if kind == "in":
        meta = json.loads(IN_METADATA.read_text())
        for _ in range(b.int(0, 2)):
            meta[b.pick(sorted(meta) + ["label", "vv_branch"])] = b.pick(ODD)
        metadata = work / "metadata.json"
        metadata.write_text(json.dumps(meta) if b.int(0, 5) < 5 else b.pick(
            ["[1, 2]", "{", "\xff", "[" * 100000]))
    return checkpoint, metadata
