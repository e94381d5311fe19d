"""Particle-level detector of the JetClass-like generator: tracks, calorimeter cells, particle ID.

JetClass was made with Delphes (CMS card of jet-universe/jetclass_generation); this model keeps
its structure with Pythia's final-state particles as input and every parameter in
`ParticleFlowModel` (written into each file):

* **tracks**: charged final-state particles with pT > 0.1 GeV and |eta| < 2.5 are tracked with
  the Delphes card's efficiencies (per species, barrel / endcap, pT bins). Tracked particles
  keep their identity (charged hadron, electron or muon flag, charge) and are measured as the
  card's `ParticlePropagator` + `TrackSmearing` do (`servable.data.delphes_tracks`): true
  momentum at the point of closest approach with the generator mass, impact parameters of the
  true helix in 3.8 T from the production point (beam spot at the origin, no pileup) smeared
  with the card's binned d0/dz resolution tables, which are also the stored errors.
* **volume**: particles produced outside the tracker cylinder (radius 1.29 m, half-length
  3 m) are dropped, as `ParticlePropagator` drops them.
* **calorimeters**: photons and electrons that are not tracked deposit in the ECAL, every other
  visible particle that is not tracked (neutral hadrons, charged hadrons lost by the tracker)
  in the HCAL; muons that are not tracked are lost. Deposits in the same cell (a regular
  eta x phi grid per calorimeter, |eta| < 3) merge; the cell energy is smeared (log-normal,
  sigma(E)^2 = (a E)^2 + b^2 E + c^2) and kept above an energy and a significance threshold,
  as Delphes' SimpleCalorimeter does; the candidate is massless and points to a uniformly
  drawn position inside its cell (Delphes' SmearTowerCenter). ECAL cells give photons, HCAL
  cells neutral hadrons. Tracked particles leave no calorimeter candidate (perfect energy-flow
  subtraction).

`reconstruct` turns a flat event table (`servable.data.events`) into a flat table of
candidates with their event, four-momentum, charge, flags, impact parameters (mm, Delphes
conventions; 0 for calorimeter candidates) and the generator particle each one comes from
(for a cell: the most energetic deposit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servable.data import delphes_tracks
from servable.data.features import delta_phi, eta_phi

_NEUTRINOS = (12, 14, 16)
# candidate kinds, in the order of the particle-ID flags of the JetClass layout
CHARGED_HADRON, NEUTRAL_HADRON, PHOTON, ELECTRON, MUON = range(5)


@dataclass(frozen=True)
class ParticleFlowModel:
    """Every parameter of the particle-level detector; written into every JetClass-like file.

    Efficiencies are ((barrel), (endcap)) x pT bins (track_min_pt, edges[0]], (edges[0],
    edges[1]], > edges[1], from the Delphes CMS card of JetClass (its muon efficiency falls
    above 1 TeV, which no jet constituent here reaches). Calorimeter resolutions:
    sigma(E) = sqrt((constant E)^2 + stochastic^2 E + noise^2), E in GeV (the card's barrel
    terms, without its eta dependence).
    """

    # the track model: Delphes' ParticlePropagator + TrackSmearing of the card (fixed tables,
    # `servable.data.delphes_tracks`); recorded by name and field
    track_model: str = "JetClass delphes_card.tcl: ParticlePropagator + TrackSmearing"
    bz_tesla: float = delphes_tracks.BZ_TESLA
    tracker_radius_m: float = delphes_tracks.RADIUS_M
    tracker_half_length_m: float = delphes_tracks.HALF_LENGTH_M
    track_min_pt: float = 0.1
    track_max_abs_eta: float = 2.5
    barrel_max_abs_eta: float = 1.5
    efficiency_pt_edges: tuple[float, float] = (1.0, 100.0)
    hadron_efficiency: tuple[tuple[float, ...], ...] = ((0.70, 0.95, 0.95), (0.60, 0.85, 0.85))
    electron_efficiency: tuple[tuple[float, ...], ...] = ((0.73, 0.95, 0.99),
                                                         (0.50, 0.83, 0.90))
    muon_efficiency: tuple[tuple[float, ...], ...] = ((0.75, 0.99, 0.99), (0.70, 0.98, 0.98))
    calo_max_abs_eta: float = 3.0
    ecal_cell_eta: float = 0.0174
    ecal_cell_phi: float = 2 * np.pi / 360
    ecal_constant: float = 0.008
    ecal_stochastic: float = 0.11
    ecal_noise: float = 0.40
    ecal_energy_min: float = 0.5
    ecal_significance_min: float = 2.0
    hcal_cell_eta: float = 0.087
    hcal_cell_phi: float = 2 * np.pi / 72
    hcal_constant: float = 0.050
    hcal_stochastic: float = 1.50
    hcal_noise: float = 0.0
    hcal_energy_min: float = 1.0
    hcal_significance_min: float = 1.0
    # truth: produced within this distance of the primary vertex counts as primary (the
    # photons of a boosted pi0 start some microns away)
    prompt_um: float = 100.0


def _efficiency(model: ParticleFlowModel, table, pt, abs_eta) -> np.ndarray:
    region = (abs_eta > model.barrel_max_abs_eta).astype(int)
    pt_bin = np.digitize(pt, model.efficiency_pt_edges, right=True)
    return np.asarray(table)[region, pt_bin]


def tracking_efficiency(model: ParticleFlowModel, absid, pt, eta) -> np.ndarray:
    """Probability that a charged particle is tracked (0 outside the tracker)."""
    abs_eta = np.abs(eta)
    eff = np.select([absid == 11, absid == 13],
                    [_efficiency(model, model.electron_efficiency, pt, abs_eta),
                     _efficiency(model, model.muon_efficiency, pt, abs_eta)],
                    _efficiency(model, model.hadron_efficiency, pt, abs_eta))
    inside = (pt > model.track_min_pt) & (abs_eta < model.track_max_abs_eta)
    return np.where(inside, eff, 0.0)


def _measure(t, idx, rng) -> dict[str, np.ndarray]:
    """Momenta and impact parameters (mm) of the tracked particles `idx`, as Delphes' card."""
    return delphes_tracks.measure(t["px"][idx], t["py"][idx], t["pz"][idx], t["e"][idx],
                                  t["charge"][idx], np.abs(t["id"][idx]), t["vx"][idx],
                                  t["vy"][idx], t["vz"][idx], rng)


def _cells(t, idx, ecal: np.ndarray, model: ParticleFlowModel, rng) -> dict[str, np.ndarray]:
    """Calorimeter candidates from the deposits `idx` (ECAL where `ecal`, else HCAL)."""
    energy = t["e"][idx]
    eta, phi = eta_phi(t["px"][idx], t["py"][idx], t["pz"][idx])
    size_eta = np.where(ecal, model.ecal_cell_eta, model.hcal_cell_eta)
    n_phi = np.where(ecal, round(2 * np.pi / model.ecal_cell_phi),
                     round(2 * np.pi / model.hcal_cell_phi))
    size_phi = 2 * np.pi / n_phi
    ieta = np.floor(eta / size_eta).astype(np.int64)
    iphi = np.floor((phi + np.pi) / size_phi).astype(np.int64) % n_phi
    key = np.stack([t["event"][idx], ecal.astype(np.int64), ieta, iphi], -1)
    cells, cell_of = np.unique(key, axis=0, return_inverse=True)
    cell_of = cell_of.reshape(-1)
    total = np.bincount(cell_of, weights=energy, minlength=len(cells))
    order = np.lexsort((-energy, cell_of))  # per cell, the most energetic deposit first
    first = np.ones(len(order), bool)
    first[1:] = cell_of[order][1:] != cell_of[order][:-1]
    leading = idx[order[first]]
    is_ecal = cells[:, 1] == 1
    a = np.where(is_ecal, model.ecal_constant, model.hcal_constant)
    b = np.where(is_ecal, model.ecal_stochastic, model.hcal_stochastic)
    c = np.where(is_ecal, model.ecal_noise, model.hcal_noise)
    sigma = np.sqrt((a * total) ** 2 + b * b * total + c * c)
    s2 = np.log1p((sigma / total) ** 2)
    measured = total * np.exp(rng.standard_normal(len(total)) * np.sqrt(s2) - 0.5 * s2)
    sigma_m = np.sqrt((a * measured) ** 2 + b * b * measured + c * c)
    keep = (measured > np.where(is_ecal, model.ecal_energy_min, model.hcal_energy_min)) & (
        measured > np.where(is_ecal, model.ecal_significance_min,
                            model.hcal_significance_min) * sigma_m)
    cell_eta = np.where(is_ecal, model.ecal_cell_eta, model.hcal_cell_eta)
    cell_phi = 2 * np.pi / np.where(is_ecal, round(2 * np.pi / model.ecal_cell_phi),
                                    round(2 * np.pi / model.hcal_cell_phi))
    u = rng.random((len(cells), 2))
    c_eta = (cells[:, 2] + u[:, 0]) * cell_eta
    c_phi = delta_phi((cells[:, 3] + u[:, 1]) * cell_phi - np.pi, 0.0)
    pt = measured / np.cosh(c_eta)
    p = np.stack([pt * np.cos(c_phi), pt * np.sin(c_phi), pt * np.sinh(c_eta)], -1)
    return {"event": cells[keep, 0], "p": p[keep], "e": measured[keep],
            "kind": np.where(is_ecal, PHOTON, NEUTRAL_HADRON)[keep], "gen": leading[keep]}


def reconstruct(t: dict, model: ParticleFlowModel, rng: np.random.Generator) -> dict:
    """Candidates of every event of a flat table: a dict of flat arrays sorted by event
    (`event`, `px`, `py`, `pz`, `e`, `charge`, `kind`, `d0`, `d0err`, `dz`, `dzerr`, `gen`:
    the generator particle behind the candidate)."""
    absid = np.abs(t["id"])
    kept = delphes_tracks.inside_tracker(t["vx"], t["vy"], t["vz"]) & (
        np.hypot(t["px"], t["py"]) > 0)  # ParticlePropagator drops the others
    fs = np.flatnonzero((t["status"] > 0) & ~np.isin(absid, _NEUTRINOS) & kept)
    a = absid[fs]
    pt = np.hypot(t["px"][fs], t["py"][fs])
    eta, _ = eta_phi(t["px"][fs], t["py"][fs], t["pz"][fs])
    charged = t["charge"][fs] != 0
    tracked = charged & (rng.random(len(fs)) < tracking_efficiency(model, a, pt, eta))
    trk_idx = fs[tracked]
    trk = _measure(t, trk_idx, rng)
    deposit = ~tracked & (a != 13) & (np.abs(eta) < model.calo_max_abs_eta)
    calo_idx = fs[deposit]
    cells = _cells(t, calo_idx, np.isin(a[deposit], (11, 22)), model, rng)
    trk_kind = np.select([a[tracked] == 11, a[tracked] == 13], [ELECTRON, MUON],
                         CHARGED_HADRON)
    n_cell = len(cells["e"])
    zeros = np.zeros(n_cell)
    out = {
        "event": np.concatenate([t["event"][trk_idx], cells["event"]]),
        "px": np.concatenate([trk["p"][:, 0], cells["p"][:, 0]]),
        "py": np.concatenate([trk["p"][:, 1], cells["p"][:, 1]]),
        "pz": np.concatenate([trk["p"][:, 2], cells["p"][:, 2]]),
        "e": np.concatenate([trk["e"], cells["e"]]),
        "charge": np.concatenate([t["charge"][trk_idx], zeros]),
        "kind": np.concatenate([trk_kind, cells["kind"]]),
        "d0": np.concatenate([trk["d0"], zeros]), "d0err": np.concatenate([trk["d0err"], zeros]),
        "dz": np.concatenate([trk["dz"], zeros]), "dzerr": np.concatenate([trk["dzerr"], zeros]),
        "gen": np.concatenate([trk_idx, cells["gen"]]),
    }
    order = np.argsort(out["event"], kind="stable")
    return {k: v[order] for k, v in out.items()}
