"""Hostile JetClass ROOT files from a byte string (a recipe), for the `jetclass_root` fuzz
target and the hypothesis properties: valid ring jets (tests/ring_jets.py) changed as the
bytes say, then written with uproot.

The bytes are read as a program (`Bytes`): each step picks an operation and its arguments;
when the bytes run out every further choice is the first, so any byte string is a recipe
and short ones stay close to a valid file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from servable.data.jetclass import JET_BRANCHES, LABEL_BRANCHES, PARTICLE_BRANCHES
from tests.ring_jets import ring_branches

OPERATIONS = ("drop", "to_flat", "to_jagged", "to_int", "to_bool", "nested", "disagree",
              "huge", "poison", "labels", "truth_particle", "truth_jet", "empty", "negative")


class Bytes:
    """Choices read from a byte string, one after the other."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def int(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi] (lo once the bytes are used up)."""
        if self.at + 2 > len(self.data):
            self.at = len(self.data)
            return lo
        value = int.from_bytes(self.data[self.at:self.at + 2], "little")
        self.at += 2
        return lo + value % (hi - lo + 1)

    def pick(self, options):
        return options[self.int(0, len(options) - 1)]

    def value(self) -> float:
        return self.pick([math.nan, math.inf, -math.inf, 0.0, -1.0, 1e30, -1e30, 1e-30,
                          7.0, 2.0 ** 31])


def _base(jets: int) -> dict:
    branches = ring_branches(1, seed=0)  # ten jets, one per class
    return {k: v[:jets] for k, v in branches.items()}


def _mutate(branches: dict, b: Bytes) -> None:
    n = len(next(iter(branches.values()))) if branches else 0
    names = sorted(branches) or ["jet_pt"]
    op = b.pick(OPERATIONS)
    name = b.pick(names)
    value = branches.get(name)
    if op == "drop":
        branches.pop(name, None)
    elif op == "to_flat" and value is not None:
        branches[name] = np.asarray(ak.fill_none(ak.firsts(value), 0.0), np.float32) \
            if value.ndim == 2 else value
    elif op == "to_jagged":
        branches[name] = ak.unflatten(np.ones(n * 2, np.float32), np.full(n, 2))
    elif op in ("to_int", "to_bool") and value is not None:
        branches[name] = ak.values_astype(value, np.int64 if op == "to_int" else bool)
    elif op == "nested":
        branches[name] = ak.unflatten(ak.unflatten(np.ones(n * 4, np.float32), 2), np.full(n, 2))
    elif op == "disagree":
        counts = np.array([b.int(0, 12) for _ in range(n)])
        branches[b.pick(PARTICLE_BRANCHES)] = ak.unflatten(
            np.ones(int(counts.sum()), np.float32), counts)
    elif op == "huge":
        jet, many = b.int(0, n - 1), b.pick([129, 1000, 20000])
        for p in PARTICLE_BRANCHES:
            if p in branches and branches[p].ndim == 2:
                rows = ak.to_list(branches[p])
                rows[jet] = [rows[jet][0] if rows[jet] else 1.0] * many
                branches[p] = ak.values_astype(ak.Array(rows), np.float32)
    elif op == "poison" and value is not None:
        flat = np.array(ak.flatten(value) if value.ndim == 2 else value, np.float64)
        if len(flat):
            flat[b.int(0, len(flat) - 1)] = b.value()
            branches[name] = ak.unflatten(flat, ak.num(value)) if value.ndim == 2 else flat
    elif op == "labels":
        branches[b.pick(LABEL_BRANCHES)] = np.full(n, b.value() if b.int(0, 1) else 1.0)
    elif op == "truth_particle":
        counts = np.array([b.int(0, 6) for _ in range(n)])
        branches["part_truth_x"] = ak.unflatten(np.zeros(int(counts.sum()), np.int32), counts)
    elif op == "truth_jet":
        branches["aux_x"] = b.pick([np.zeros(n, np.int8), np.zeros((n, 3, 2), np.float32),
                                    ak.unflatten(np.ones(n), np.ones(n, int))])
    elif op == "empty":
        for k in branches:
            branches[k] = branches[k][:0]
    elif op == "negative" and value is not None and name in JET_BRANCHES:
        branches[name] = -np.abs(np.asarray(value, np.float64)) - 1


def write_recipe(path: Path, data: bytes) -> Path:
    """The ROOT file the recipe `data` describes, at `path` (replaced)."""
    b = Bytes(data)
    branches = _base(b.int(1, 6))
    for _ in range(b.int(0, 4)):
        try:
            _mutate(branches, b)
        except Exception:  # noqa: BLE001 - a change that cannot be built is skipped
            pass
    tree = b.pick(["tree", "tree", "events"])
    provenance = b.pick([None, json.dumps({"seed": 1}), "not json", "[1, 2]", "[" * 5000])
    rntuple = b.int(0, 1)
    for writer in (rntuple, 1 - rntuple, None):  # what one writer cannot write, the other
        try:
            _write(path, branches, tree, provenance, writer)
            break
        except Exception:  # noqa: BLE001 - e.g. doubly jagged branches in a TTree
            path.unlink(missing_ok=True)
    else:
        path.write_bytes(b"")
    cut = b.int(0, 3)
    if cut:  # truncated: a quarter, a half or three quarters of the file kept
        raw = path.read_bytes()
        path.write_bytes(raw[:len(raw) * cut // 4])
    return path


def _write(path: Path, branches: dict, tree: str, provenance: str | None, rntuple) -> None:
    if rntuple is None:
        branches = {}
    with uproot.recreate(path) as f:
        if rntuple:  # an RNTuple (what assigning a mapping writes)
            f[tree] = branches
        elif branches:
            jagged = {k: v for k, v in branches.items() if isinstance(v, ak.Array)
                      and v.ndim > 1}
            flat = {k: v for k, v in branches.items() if k not in jagged}
            types = {k: np.asarray(v).dtype if np.asarray(v).ndim == 1 else
                     np.dtype((np.asarray(v).dtype, np.asarray(v).shape[1:]))
                     for k, v in flat.items()}
            types.update({k: v.type.content for k, v in jagged.items()})
            f.mktree(tree, types)
            f[tree].extend({**flat, **jagged})
        if provenance is not None:
            f["provenance"] = provenance
