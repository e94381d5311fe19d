"""Generator truth of the JetClass-like generator: resonances, their decay products, which
product each particle descends from, and the JetClass matching of jets to resonances.

The definitions follow JetClass's FatJetMatching (jet-universe/jetclass_generation,
makeNtuples.C): the resonance is its last copy before it decays; its decay products are the
quarks or gluons it (or its W) emits, as emitted (before the parton shower), and the charged
lepton of a leptonic W after QED radiation (its last copy); the neutrino is not one. A jet is
matched to a resonance when every decay product lies within dR < R of the jet axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servable.data import events, schema
from servable.data.features import delta_r, eta_phi

SLOTS = schema.JETCLASS_DECAY_SLOTS
_QUARKS = (1, 2, 3, 4, 5)
_LEPTONS = (11, 13)


@dataclass(frozen=True)
class Decay:
    """How a class's resonance decays: its PDG id, the decay chain (`direct`: the resonance
    emits the products; `via_w`: through its W bosons; `top`: a quark and a W), and how many
    products a complete decay has."""

    resonance: int
    chain: str
    products: int


def _children(t, parents: np.ndarray, ids) -> tuple[np.ndarray, np.ndarray]:
    """Particles whose first mother is one of `parents` and whose |id| is in `ids`; returns
    them and the position of their mother in `parents`."""
    slot = np.full(len(t["id"]), -1)
    slot[parents] = np.arange(len(parents))
    m = t["mother"]
    kids = np.flatnonzero((m >= 0) & (slot[np.maximum(m, 0)] >= 0) & np.isin(np.abs(t["id"]), ids))
    return kids, slot[m[kids]]


def resonances(t: dict, decay: Decay) -> dict[str, np.ndarray]:
    """The resonances of a batch (last copies, sorted by event) and their decay products:
    `index` (R,), `event` (R,), `products` (R, SLOTS) global indices (-1: empty slot) and `n`
    (R,), the number found."""
    absid = np.abs(t["id"])
    cand = np.flatnonzero((absid == decay.resonance) & (t["status"] < 0))
    res = np.unique(events.copy_chain_end(t, cand))
    res = res[np.abs(t["id"][res]) == decay.resonance]
    if decay.chain == "direct":
        kids, owner = _children(t, res, (*_QUARKS, 21))
    else:
        direct, d_owner = _children(t, res, _QUARKS if decay.chain == "top" else ())
        w, w_owner = _children(t, res, (24,))
        w_end = events.copy_chain_end(t, w)
        w_kids, w_slot = _children(t, w_end, (*_QUARKS, *_LEPTONS))
        kids = np.concatenate([direct, w_kids])
        owner = np.concatenate([d_owner, w_owner[w_slot]])
    is_lepton = np.isin(np.abs(t["id"][kids]), _LEPTONS)
    kids = np.where(is_lepton, events.copy_chain_end(t, kids), kids)
    order = np.lexsort((kids, is_lepton, owner))  # per resonance: partons, then the lepton
    kids, owner = kids[order], owner[order]
    n = np.bincount(owner, minlength=len(res))
    rank = np.arange(len(kids)) - np.repeat(np.cumsum(n) - n, n)
    products = np.full((len(res), SLOTS), -1)
    fits = rank < SLOTS
    products[owner[fits], rank[fits]] = kids[fits]
    return {"index": res, "event": t["event"][res], "products": products, "n": n}


def match(jet_event, jet_eta, jet_phi, res: dict, decay: Decay, radius: float) -> np.ndarray:
    """Per jet, the resonance (row of `res`) whose complete decay lies inside the jet, -1 if
    none: every decay product within dR < `radius` of the jet axis."""
    complete = res["n"] == decay.products
    prod = res["products"]
    p_eta, p_phi = res["eta"], res["phi"]
    dr = delta_r(jet_eta[:, None, None], jet_phi[:, None, None], p_eta[None], p_phi[None])
    inside = np.where(prod[None] >= 0, dr < radius, True).all(-1)
    ok = inside & complete[None] & (jet_event[:, None] == res["event"][None])
    return np.where(ok.any(1), np.argmax(ok, 1), -1)


def with_kinematics(t: dict, res: dict) -> dict:
    """`res` with the pT, eta, phi of each decay product (0 in empty slots)."""
    g = np.maximum(res["products"], 0)
    pt = np.hypot(t["px"][g], t["py"][g])
    eta, phi = eta_phi(t["px"][g], t["py"][g], t["pz"][g])
    empty = res["products"] < 0
    return dict(res, pt=np.where(empty, 0.0, pt), eta=np.where(empty, 0.0, eta),
                phi=np.where(empty, 0.0, phi))


def product_bits(t: dict, res: dict) -> np.ndarray:
    """Per particle, bit SLOTS * r + k set when it descends from decay product k of the r-th
    resonance of its event (`events.descendant_bits`)."""
    first = np.searchsorted(res["event"], res["event"])
    rank = np.arange(len(res["event"])) - first
    if rank.max(initial=0) * SLOTS + SLOTS > 62:
        raise ValueError("too many resonances in one event for the descent bit mask")
    filled = res["products"] >= 0
    bits = np.left_shift(1, rank[:, None] * SLOTS + np.arange(SLOTS)[None, :])
    return events.descendant_bits(t, res["products"][filled], bits[filled].astype(np.int64))


def assign_products(t: dict, bits: np.ndarray, gen: np.ndarray, jet_res: np.ndarray,
                    res: dict) -> np.ndarray:
    """For generator particles `gen` (n, slots; -1 padding) of jets matched to resonances
    `jet_res` (n,; -1 none): the decay product each descends from, the nearest in dR when
    several; -1 none."""
    out = np.full(gen.shape, -1)
    ok = (gen >= 0) & (jet_res[:, None] >= 0)
    if not ok.any():
        return out
    rows, cols = np.nonzero(ok)
    g = gen[rows, cols]
    r = jet_res[rows]
    rank = r - np.searchsorted(res["event"], res["event"][r])
    mine = (bits[g] >> (rank * SLOTS)) & ((1 << SLOTS) - 1)
    has = (mine[:, None] >> np.arange(SLOTS)[None, :]) & 1 == 1
    eta, phi = eta_phi(t["px"][g], t["py"][g], t["pz"][g])
    dr = delta_r(eta[:, None], phi[:, None], res["eta"][r], res["phi"][r])
    nearest = np.argmin(np.where(has, dr, np.inf), axis=1)
    out[rows, cols] = np.where(has.any(1), nearest, -1)
    return out


def jet_truth(t: dict, res: dict, jet_res: np.ndarray) -> dict[str, np.ndarray]:
    """The per-jet truth branches (`schema.JETCLASS_TRUTH_JET`) of jets matched to the
    resonances `jet_res` (-1: none, zeros)."""
    n = len(jet_res)
    out = {f.name: np.zeros((n, SLOTS) if f.name.startswith("aux_decay_") else n,
                            np.int32 if f.integer else np.float32)
           for f in schema.JETCLASS_TRUTH_JET}
    ok = jet_res >= 0
    if not ok.any():
        return out
    r = jet_res[ok]
    i = res["index"][r]
    px, py, pz, e = (t[k][i] for k in ("px", "py", "pz", "e"))
    eta, phi = eta_phi(px, py, pz)
    products = res["products"][r]
    values = {
        "aux_genpart_pt": np.hypot(px, py), "aux_genpart_eta": eta, "aux_genpart_phi": phi,
        "aux_genpart_mass": np.sqrt(np.clip(e * e - px * px - py * py - pz * pz, 0, None)),
        "aux_genpart_pid": t["id"][i], "aux_n_decay_products": res["n"][r],
        "aux_decay_pt": res["pt"][r], "aux_decay_eta": res["eta"][r],
        "aux_decay_phi": res["phi"][r],
        "aux_decay_pdgid": np.where(products >= 0, t["id"][np.maximum(products, 0)], 0),
    }
    for name, value in values.items():
        out[name][ok] = value
    return out
