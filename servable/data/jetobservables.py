"""Jet-level observables of JetClass-layout jets, computed from their particles: the inputs
of the BDT and of the MLP's jet part on JetClass data (schema.JETCLASS_JET_OBSERVABLES gives
each one's unit and meaning).

JetClass files store a few jet observables (pT, energy, soft-drop mass, N-subjettiness
tau_1..4); the taggers of the Particle Transformer paper read particles only. A jet-level
classifier needs summaries that separate the ten classes: the N-subjettiness ratios
tau21/tau32/tau43 (2-, 3-, 4-prong decays), the jet mass, particle counts by type (leptons
for Hqql and Tbl), the pT fractions in rings of dR around the axis and the pT-weighted width
(energy flow: how collimated the decay is), pT dispersion and the leading particle's share,
the charged and leptonic pT shares, and displaced tracks (b and c decays). `derive` appends
them to the jet features of `Jets`, like `servable.data.particles.derive` appends the derived
particle channels, so they exist for every JetClass file and travel with it into HDF5.

The observables of any layout that the explainability benchmark compares relevance with
(`benchmark_observables`, `jet_value`) and the per-slot truth of the decay it asks the
explanations to find (`truth_of_slots`) live here too, beside the other jet observables.
"""

from __future__ import annotations

import numpy as np

from servable.data import schema
from servable.data.jets import InvalidJetsError, Jets, filled_mask

OBSERVABLES = schema.names(schema.JETCLASS_JET_OBSERVABLES)
# the jet-level features models read by default on JetClass data: the file's pT, multiplicity
# and soft-drop mass, then the derived observables (not eta, phi or the taus themselves)
INPUTS: tuple[str, ...] = ("jet_pt", "jet_nparticles", "jet_sdmass", *OBSERVABLES)
DISPLACED = 3.0  # |d0| / sigma(d0) above which a track counts as displaced
_PARTICLES = ("part_px", "part_py", "part_pz", "part_energy", "part_deta", "part_dphi",
              "part_d0val", "part_d0err", "part_charge", "part_isNeutralHadron",
              "part_isPhoton", "part_isElectron", "part_isMuon")
_JET = ("jet_tau1", "jet_tau2", "jet_tau3", "jet_tau4")


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), empty)


def observables(p: dict[str, np.ndarray], tau: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The observables from particle arrays (n, slots) (zero-padded: energy 0 marks padding)
    and the jet's tau_1..4 (n,), as float64 arrays (n,)."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    filled = p["part_energy"] > 0
    pt = np.where(filled, np.hypot(p["part_px"], p["part_py"]), 0.0)
    dr = np.hypot(p["part_deta"], p["part_dphi"])
    total = pt.sum(1)
    charged = filled & (p["part_charge"] != 0)
    lepton = filled & ((p["part_isElectron"] > 0.5) | (p["part_isMuon"] > 0.5))
    measured = charged & (p["part_d0err"] > 0)
    d0sig = np.where(measured, np.abs(p["part_d0val"]) / np.where(measured, p["part_d0err"],
                                                                   1.0), 0.0)
    out: dict[str, np.ndarray] = {}
    for k in (1, 2, 3):
        out[f"jet_tau{k + 1}{k}"] = _ratio(tau[f"jet_tau{k + 1}"], tau[f"jet_tau{k}"], 1.0)
    e, px, py, pz = ((p[k] * filled).sum(1) for k in ("part_energy", "part_px", "part_py",
                                                       "part_pz"))
    out["jet_mass"] = np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))
    out["jet_n_charged"] = charged.sum(1)
    out["jet_n_neutral_hadrons"] = (filled & (p["part_isNeutralHadron"] > 0.5)).sum(1)
    out["jet_n_photons"] = (filled & (p["part_isPhoton"] > 0.5)).sum(1)
    out["jet_n_leptons"] = lepton.sum(1)
    edges = [*schema.RING_EDGES, np.inf]
    for i, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
        ring = filled & (dr >= lo) & (dr < hi)
        out[f"jet_ptfrac_ring{i + 1}"] = _ratio((pt * ring).sum(1), total, 0.0)
    out["jet_girth"] = _ratio((pt * dr).sum(1), total, 0.0)
    out["jet_ptd"] = _ratio(np.sqrt((pt * pt).sum(1)), total, 0.0)
    out["jet_lead_ptfrac"] = _ratio(pt.max(1, initial=0.0), total, 0.0)
    out["jet_charged_ptfrac"] = _ratio((pt * charged).sum(1), total, 0.0)
    out["jet_lepton_ptfrac"] = _ratio((pt * lepton).max(1, initial=0.0), total, 0.0)
    out["jet_n_displaced"] = (d0sig > DISPLACED).sum(1)
    out["jet_max_d0sig"] = d0sig.max(1, initial=0.0)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def derive(jets: Jets) -> Jets:
    """JetClass-layout jets with the observables appended to their jet features (a no-op when
    they are there already)."""
    names = list(jets.jet_feature_names)
    if all(o in names for o in OBSERVABLES):
        return jets
    have = jets.group("particles").features if jets.has("particles") else ()
    missing = [n for n in _PARTICLES if n not in have]
    missing += [n for n in _JET if n not in names]
    if missing or not jets.has("jet_features"):
        raise InvalidJetsError(
            "cannot compute the JetClass jet observables: missing "
            f"{', '.join(missing) or 'jet features'} (read the file with "
            "servable.data.jetclass.read_jetclass)")
    part, jet = jets.group("particles"), jets.group("jet_features")
    new = observables({n: part.column(n) for n in _PARTICLES}, {n: jet.column(n) for n in _JET})
    add = [o for o in OBSERVABLES if o not in names]
    return jets.replace(jet.with_features(add, np.stack([new[o] for o in add], axis=1)
                                          .astype(np.float32)))


# the observables and truth the explainability benchmark compares relevance with -------------
def jet_value(jets: Jets, *names: str) -> np.ndarray | None:
    """The first of `names` that the jets carry, as a spectator or a jet feature (float64);
    None when they carry none."""
    for n in names:
        if jets.spectators is not None and n in schema.SPECTATOR_NAMES:
            return jets.spectator(n).astype(float)
        if jets.jet_features is not None and n in jets.jet_feature_names:
            return jets.jet_features[:, jets.jet_feature_names.index(n)].astype(float)
    return None


def benchmark_observables(jets: Jets) -> dict[str, np.ndarray]:
    """Per-jet physics observables of any layout, by their readable names (those the jets
    have): soft-drop mass, jet pT, tau21, tau32, number of SVs, leading IP significance,
    number of b hadrons; what `servable xai-benchmark` compares relevance with."""
    out = {}
    for label, names in {"soft-drop mass": ("fj_sdmass", "jet_sdmass"),
                         "jet pT": ("fj_pt", "jet_pt"), "tau21": ("fj_tau21",),
                         "tau32": ("fj_tau32",)}.items():
        v = jet_value(jets, *names)
        if v is not None:
            out[label] = v
    taus = [jet_value(jets, f"jet_tau{i}") for i in (1, 2, 3)]
    if all(t is not None for t in taus):
        with np.errstate(divide="ignore", invalid="ignore"):
            out["tau21"] = np.where(taus[0] > 0, taus[1] / taus[0], np.nan)
            out["tau32"] = np.where(taus[1] > 0, taus[2] / taus[1], np.nan)
    if jets.has("vertices"):
        out["number of SVs"] = jets.n_vertices.astype(float)
    if jets.has("tracks") and "trackBTag_Sip2dSig" in jets.track_names:
        sig = jets.tracks[:, jets.track_names.index("trackBTag_Sip2dSig")]
        out["leading IP significance"] = np.where(filled_mask(jets.tracks), sig,
                                                  -np.inf).max(1)
    if "n_b_hadrons" in jets.extras:
        out["number of b hadrons"] = jets.extras["n_b_hadrons"].astype(float)
    return out


def truth_of_slots(jets: Jets) -> tuple[np.ndarray, str] | None:
    """Per slot: from the decay we want to see (b/c-hadron decay for CMS tracks; the
    resonance's decay products for JetClass particles)."""
    if "track_origin" in jets.extras:
        origin = np.asarray(jets.extras["track_origin"])
        return np.isin(origin, (1, 2)), "track from a b- or c-hadron decay"
    if "part_truth_decay_product" in jets.extras:
        return np.asarray(jets.extras["part_truth_decay_product"]) >= 0, \
            "particle from a decay product of the resonance"
    return None


