"""Pythia events as flat particle tables, pileup overlay, CHS and generator truth per particle.

A table is a dict of flat numpy arrays (one row per particle of a batch of events) with global
`mother`/`daughter` indices (-1: none), the event index `event`, and `pu_vertex` (0: the hard
interaction, k >= 1: the k-th pileup interaction of that event). Vertices are in mm w.r.t. the
true hard-scatter primary vertex.
"""

from __future__ import annotations

import numpy as np

from servable.data import schema
from servable.data.detector import ResolutionModel

_FIELDS = ("id", "status", "mother1", "daughter1")


def _np(array):
    import awkward as ak

    return np.asarray(ak.to_numpy(ak.fill_none(ak.flatten(array), 0)))


def table(batch, charge_of, all_mothers: bool = False) -> dict[str, np.ndarray]:
    """Flat table of a `pythia.nextBatch` result; `charge_of` maps PDG ids to charges.

    With `all_mothers`, `mother2` holds Pythia's second mother index too (global, -1: none),
    which `descendant_bits` needs; such a table is not overlaid with pileup."""
    import awkward as ak

    prt = batch.prt
    counts = ak.to_numpy(ak.num(prt))
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    event = np.repeat(np.arange(len(counts)), counts)
    t = {k: _np(prt[k]).astype(np.int64) for k in _FIELDS}
    if all_mothers:
        mother2 = _np(prt["mother2"]).astype(np.int64)
        t["mother2"] = np.where(mother2 > 0, mother2 + offsets[event], -1)
    for k in ("px", "py", "pz", "e"):
        t[k] = _np(prt.p[k]).astype(float)
    for k, src in (("vx", "px"), ("vy", "py"), ("vz", "pz")):
        t[k] = _np(prt.vProd[src]).astype(float)
    mother1, daughter1 = t.pop("mother1"), t.pop("daughter1")
    t["mother"] = np.where(mother1 > 0, mother1 + offsets[event], -1)
    t["daughter"] = np.where(daughter1 > 0, daughter1 + offsets[event], -1)
    t["event"] = event
    t["pu_vertex"] = np.zeros(len(event), np.int64)
    t["charge"] = charge_of(t["id"])
    return t


def pick_events(t: dict, pick: np.ndarray) -> dict:
    """The events `pick` of a table (repeats allowed), renumbered 0..len(pick)-1."""
    n_events = int(t["event"].max()) + 1 if len(t["event"]) else 0
    counts = np.bincount(t["event"], minlength=n_events)
    starts = np.cumsum(counts) - counts
    lengths = counts[pick]
    new_starts = np.cumsum(lengths) - lengths
    rows = np.repeat(starts[pick] - new_starts, lengths) + np.arange(lengths.sum())
    shift = np.repeat(new_starts - starts[pick], lengths)
    out = {k: v[rows] for k, v in t.items()}
    for k in ("mother", "daughter"):
        out[k] = np.where(out[k] >= 0, out[k] + shift, -1)
    out["event"] = np.repeat(np.arange(len(pick)), lengths)
    return out


def overlay(hard: dict, pileup: dict, n_pu: np.ndarray, rng, res: ResolutionModel):
    """Merge pileup events into the hard events: n_pu[i] pileup interactions for event i,
    their vertices spread along z. Returns the merged table and npv per event."""
    n_events = int(hard["event"].max()) + 1 if len(hard["event"]) else 0
    owner = np.repeat(np.arange(n_events), n_pu)  # hard event of each pileup event
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(n_pu) - n_pu, n_pu)
    z_hs = rng.normal(0, res.beam_sigma_z_cm, n_events)
    z_pu = rng.normal(0, res.beam_sigma_z_cm, len(owner))
    dz_mm = (z_pu - z_hs[owner]) * 10.0
    pu = dict(pileup)
    src = pu["event"]
    pu["vz"] = pu["vz"] + dz_mm[src]
    pu["pu_vertex"] = rank[src] + 1
    pu["event"] = owner[src]
    pu["dz_vertex"] = dz_mm[src]
    hard = dict(hard, dz_vertex=np.zeros(len(hard["event"])))
    merged = {k: np.concatenate([hard[k], pu[k]]) for k in hard}
    order = np.argsort(merged["event"], kind="stable")
    new_of_old = np.empty_like(order)
    new_of_old[order] = np.arange(len(order))
    shift = len(hard["event"])
    for k in ("mother", "daughter"):
        old = merged[k].copy()
        old[shift:] = np.where(pu[k] >= 0, pu[k] + shift, -1)
        merged[k] = np.where(old >= 0, new_of_old[np.maximum(old, 0)], -1)[order]
    for k in merged:
        if k not in ("mother", "daughter"):
            merged[k] = merged[k][order]

    # reconstructed pileup vertices: enough central charged tracks, not merged with PV[0]
    fs = merged["status"] > 0
    pt = np.hypot(merged["px"], merged["py"])
    eta = np.arcsinh(merged["pz"] / np.maximum(pt, 1e-12))
    counted = (fs & (merged["charge"] != 0) & (pt > res.pu_vertex_track_min_pt)
               & (np.abs(eta) < res.track_max_abs_eta) & (merged["pu_vertex"] > 0))
    key = merged["event"] * (n_pu.max(initial=0) + 1) + merged["pu_vertex"]
    n_trk = np.bincount(key[counted], minlength=n_events * (n_pu.max(initial=0) + 1))
    pu_key = owner * (n_pu.max(initial=0) + 1) + rank + 1
    reco = (n_trk[pu_key] >= res.pu_vertex_min_tracks) & (
        np.abs(dz_mm) >= res.vertex_separation_cm * 10.0)
    npv = 1 + np.bincount(owner[reco], minlength=n_events)

    # CHS: a charged pileup particle leaves the jets when its nearest vertex is not PV[0]
    width = max(int(npv.max(initial=1)) - 1, 1)
    z_reco = np.full((n_events, width), np.inf)
    own = owner[reco]
    slot = np.arange(len(own)) - np.searchsorted(own, own)
    z_reco[own, slot] = dz_mm[reco]
    charged_pu = fs & (merged["charge"] != 0) & (merged["pu_vertex"] > 0)
    rows = np.flatnonzero(charged_pu)
    z = merged["dz_vertex"][rows]
    nearest_other = np.abs(z[:, None] - z_reco[merged["event"][rows]]).min(1)
    merged["chs_removed"] = np.zeros(len(charged_pu), bool)
    merged["chs_removed"][rows] = nearest_other < np.abs(z)
    return merged, npv


def no_pileup(hard: dict) -> tuple[dict, np.ndarray]:
    """The hard events without pileup, in the form `overlay` returns: every particle from the
    primary vertex (dz_vertex 0 mm), none removed by CHS, and npv = 1 for every event."""
    n_events = int(hard["event"].max()) + 1 if len(hard["event"]) else 0
    hard = dict(hard, dz_vertex=np.zeros(len(hard["event"])),
                chs_removed=np.zeros(len(hard["event"]), bool))
    return hard, np.ones(n_events, np.int64)


def _flavour(absid, quark: int):
    return ((absid // 100) % 10 == quark) | ((absid // 1000) % 10 == quark)


def weak_b_hadrons(t: dict) -> np.ndarray:
    """Global indices of weakly decaying b hadrons (decayed, no b hadron among daughters)."""
    absid = np.abs(t["id"])
    d = np.maximum(t["daughter"], 0)
    weak = (_flavour(absid, 5) & ~_flavour(np.abs(t["id"][d]), 5) & (t["status"] < 0)
            & (t["daughter"] >= 0))
    return np.flatnonzero(weak)


def ancestry(t: dict, idx: np.ndarray, max_depth: int = 200):
    """For particles `idx`: nearest b-hadron ancestor and nearest heavy (b or c) hadron
    ancestor (global indices, -1 if none), walking the first-mother chain."""
    absid = np.abs(t["id"])
    is_b, is_c = _flavour(absid, 5), _flavour(absid, 4)
    first_b = np.full(len(idx), -1)
    first_heavy = np.full(len(idx), -1)
    cur = t["mother"][idx] if len(idx) else idx
    for _ in range(max_depth):
        alive = cur >= 0
        if not alive.any():
            break
        c = np.maximum(cur, 0)
        hit_b = alive & is_b[c] & (first_b < 0)
        first_b[hit_b] = cur[hit_b]
        hit_h = alive & (is_b[c] | is_c[c]) & (first_heavy < 0)
        first_heavy[hit_h] = cur[hit_h]
        cur = np.where(alive, t["mother"][c], -1)
    return first_b, first_heavy


def track_origin(t: dict, idx: np.ndarray, first_b, first_heavy, res: ResolutionModel,
                 prompt_um: float | None = None):
    """Origin code per particle (schema.TRUTH_ORIGINS): primary, b, c, other secondary, pileup.

    A particle produced farther than `prompt_um` (default: the model's vertex merging distance)
    from its primary interaction is secondary."""
    v = np.stack([t["vx"][idx], t["vy"][idx], t["vz"][idx] - t["dz_vertex"][idx]], -1)
    prompt_um = res.vertex_merge_um if prompt_um is None else prompt_um
    displaced = np.linalg.norm(v, axis=-1) > prompt_um * 1e-3
    codes = schema.TRUTH_ORIGINS
    origin = np.full(len(idx), codes.index("primary"))
    origin[displaced] = codes.index("other_secondary")
    origin[first_heavy >= 0] = codes.index("c_hadron_decay")
    origin[first_b >= 0] = codes.index("b_hadron_decay")
    origin[t["pu_vertex"][idx] > 0] = codes.index("pileup")
    return origin


def copy_chain_end(t: dict, idx: np.ndarray) -> np.ndarray:
    """The last copy of particles `idx` (Pythia copies a particle with the same id when it
    recoils or radiates): the one whose decay or hadronisation follows."""
    copies = np.flatnonzero((t["mother"] >= 0) & (t["id"] == t["id"][np.maximum(t["mother"], 0)]))
    child = np.full(len(t["id"]), -1)
    child[t["mother"][copies]] = copies
    cur = np.asarray(idx)
    while len(cur) and (child[cur] >= 0).any():
        cur = np.where(child[cur] >= 0, child[cur], cur)
    return cur


def descendant_bits(t: dict, roots: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Per particle of a table with `mother2` (`table(..., all_mothers=True)`), the OR of
    `bits` of the `roots` it descends from or is, through every mother: a hadron from a string
    descends from all partons of that string (Pythia's mother1..mother2 range), a particle
    with two separate mothers from both.

    Chains of single mothers are resolved by pointer doubling; particles with several mothers
    then take the bits of all of them, level by level (a handful of levels: hard process,
    strings, decays)."""
    n = len(t["id"])
    m1, m2 = t["mother"], t["mother2"]
    single = (m2 < 0) | (m2 == m1)
    multi = np.flatnonzero(~single & (m1 >= 0))
    own = np.zeros(n, np.int64)
    np.bitwise_or.at(own, roots, bits)
    parent = np.where(single & (m1 >= 0), m1, np.arange(n))
    chain = own.copy()  # OR of `own` from a particle up to the top of its single-mother chain
    while True:
        chain |= chain[parent]
        jumped = parent[parent]
        if np.array_equal(jumped, parent):
            break
        parent = jumped
    top = parent
    ranged = multi[m2[multi] > m1[multi]]
    pair = multi[m2[multi] < m1[multi]]
    bounds = np.empty(2 * len(ranged), np.int64)
    bounds[0::2], bounds[1::2] = m1[ranged], m2[ranged] + 1
    extra = np.zeros(n, np.int64)  # bits a multi-mother particle inherits from its mothers
    while True:
        full = np.append(chain | extra[top], 0)
        new = np.zeros(n, np.int64)
        if len(ranged):
            new[ranged] = np.bitwise_or.reduceat(full, bounds)[0::2]
        new[pair] = full[m1[pair]] | full[m2[pair]]
        if np.array_equal(new, extra):
            return full[:-1]
        extra = new
