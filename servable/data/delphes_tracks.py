"""Tracks as the Delphes CMS card of JetClass measures them: helix impact parameters, IP tables.

JetClass (jet-universe/jetclass_generation, `delphes_card.tcl`; Delphes from MG5_aMC 3.1.1, its
modules read here as released in Delphes 3.5.0) runs `ParticlePropagator` (Bz = 3.8 T inside
a cylinder of radius 1.29 m and half-length 3 m), the tracking efficiencies,
`MomentumSmearing` and then `TrackSmearing` with
`PResolutionFormula`, `CtgThetaResolutionFormula`, `PhiResolutionFormula` all 0 and binned
`D0ResolutionFormula` / `DZResolutionFormula` tables (arXiv:1405.6569 fig. 15). Read in
Delphes' sources, that gives:

* `D0`, `DZ` are those of the true helix from the particle's production point, at its point
  of closest approach to the z axis (`ParticlePropagator`: d0 = (xd py - yd px) / pT, dz = zd,
  beam spot at the origin), in mm; a secondary (b or c decay, K0S, Lambda) keeps the
  displacement of its production point.
* `TrackSmearing` draws D0 ~ N(D0, sigma_d0), DZ ~ N(DZ, sigma_dz) with sigma from the tables
  (a function of the track's |eta| and pT bin), stores `ErrorD0 = sigma_d0`, `ErrorDZ =
  sigma_dz` (so the errors take one of the tables' values), and sets the momentum from the
  candidate's `P`, `CtgTheta`, `Phi` (the true values at the point of closest approach, their
  resolutions being 0) with the generator mass: the track momentum is the true one, the
  `MomentumSmearing` draw only moves the pT used to look the IP resolution up.
* Outside the tables (pT <= 0.1823 GeV, |eta| > 2.5) the formulas give 0: such tracks keep
  their true D0 and DZ with errors 0.
* A particle produced outside the cylinder is dropped by `ParticlePropagator` (neither track
  nor calorimeter deposit); neutral candidates (calorimeter towers) keep the `Candidate`
  defaults D0 = DZ = ErrorD0 = ErrorDZ = 0. Delphes simulates no material: no photon
  conversion, no bremsstrahlung, no nuclear interaction.
"""

from __future__ import annotations

import numpy as np

C_LIGHT = 2.99792458e8  # m/s, as in Delphes
BZ_TESLA = 3.8
RADIUS_M = 1.29
HALF_LENGTH_M = 3.0

# The card's |eta| bins and the lower pT edges (GeV) of its pT bins (the last bin is open)
ETA_EDGES = (0.0, 0.9, 1.4, 2.5)
PT_EDGES = (0.1823, 0.2227, 0.2720, 0.3323, 0.4060, 0.4959, 0.6058, 0.7401, 0.9041, 1.1044,
            1.3492, 1.6481, 2.0134, 2.4595, 3.0045, 3.6703, 4.4837, 5.4772, 6.6910, 8.1737,
            9.9849, 12.1976, 14.9005, 18.2024, 22.2360, 27.1635, 33.1828, 40.5360, 49.5187,
            60.4919, 73.8967, 90.2720, 110.2760, 134.7130)
# sigma(d0), sigma(dz) in mm per (|eta| bin, pT bin), D0/DZResolutionFormula of the card
D0_MM = (
    (0.3543, 0.2809, 0.2304, 0.1917, 0.1737, 0.1434, 0.1060, 0.0893, 0.0753, 0.0670, 0.0577,
     0.0524, 0.0452, 0.0376, 0.0350, 0.0324, 0.0283, 0.0258, 0.0237, 0.0211, 0.0191, 0.0164,
     0.0150, 0.0143, 0.0130, 0.0130, 0.0116, 0.0116, 0.0110, 0.0110, 0.0110, 0.0104, 0.0109,
     0.0110),
    (0.4564, 0.3580, 0.3010, 0.2353, 0.2026, 0.1595, 0.1383, 0.1119, 0.0926, 0.0816, 0.0663,
     0.0553, 0.0488, 0.0431, 0.0399, 0.0357, 0.0313, 0.0277, 0.0233, 0.0221, 0.0214, 0.0180,
     0.0155, 0.0141, 0.0128, 0.0134, 0.0121, 0.0108, 0.0101, 0.0101, 0.0101, 0.0102, 0.0088,
     0.0095),
    (0.6970, 0.6046, 0.5315, 0.4306, 0.3398, 0.2788, 0.2387, 0.1814, 0.1557, 0.1230, 0.1009,
     0.0914, 0.0767, 0.0638, 0.0544, 0.0468, 0.0425, 0.0385, 0.0331, 0.0278, 0.0256, 0.0236,
     0.0217, 0.0196, 0.0176, 0.0165, 0.0157, 0.0150, 0.0144, 0.0144, 0.0137, 0.0130, 0.0137,
     0.0137),
)
DZ_MM = (
    (0.3693, 0.3135, 0.3125, 0.2578, 0.2221, 0.1936, 0.1686, 0.1351, 0.1113, 0.0983, 0.0882,
     0.0786, 0.0684, 0.0615, 0.0551, 0.0516, 0.0484, 0.0450, 0.0416, 0.0416, 0.0382, 0.0350,
     0.0317, 0.0316, 0.0316, 0.0316, 0.0348, 0.0316, 0.0316, 0.0316, 0.0284, 0.0283, 0.0315,
     0.0318),
    (0.7062, 0.6010, 0.5992, 0.4959, 0.3877, 0.3199, 0.2649, 0.2518, 0.1982, 0.1587, 0.1399,
     0.1199, 0.1031, 0.0967, 0.0805, 0.0736, 0.0707, 0.0603, 0.0609, 0.0541, 0.0511, 0.0443,
     0.0409, 0.0408, 0.0409, 0.0377, 0.0375, 0.0377, 0.0342, 0.0342, 0.0343, 0.0343, 0.0309,
     0.0310),
    (2.1717, 2.0715, 2.0679, 1.7679, 1.4393, 1.1997, 0.9800, 0.8251, 0.6695, 0.5545, 0.4366,
     0.3711, 0.3319, 0.2721, 0.2443, 0.2085, 0.1816, 0.1641, 0.1451, 0.1317, 0.1117, 0.1020,
     0.1017, 0.0983, 0.0882, 0.0847, 0.0814, 0.0784, 0.0817, 0.0750, 0.0816, 0.0820, 0.0814,
     0.0850),
)


def inside_tracker(x_mm, y_mm, z_mm) -> np.ndarray:
    """Whether a production point lies inside the propagator's cylinder (kept by Delphes)."""
    return (np.hypot(x_mm, y_mm) <= RADIUS_M * 1e3) & (np.abs(z_mm) <= HALF_LENGTH_M * 1e3)


def helix_parameters(px, py, pz, e, charge, x_mm, y_mm, z_mm, bz: float = BZ_TESLA):
    """d0, dz (mm) and phi (rad) at the point of closest approach to the z axis of the helix
    through the production point, as `ParticlePropagator` computes them (beam spot at 0).

    Parameters
    ----------
    px, py, pz, e : true four-momenta (GeV) of charged particles (charge != 0, pT > 0)
    charge : their charges (units of e)
    x_mm, y_mm, z_mm : their production points (mm)

    Returns
    -------
    d0, dz, phi_pca : arrays like px
    """
    q = np.asarray(charge, float)
    x, y, z = np.asarray(x_mm) * 1e-3, np.asarray(y_mm) * 1e-3, np.asarray(z_mm) * 1e-3
    pt = np.hypot(px, py)
    gammam = e * 1e9 / C_LIGHT**2  # eV/c^2
    omega = q * bz / gammam
    r = pt / (q * bz) * 1e9 / C_LIGHT  # signed helix radius, m
    phi0 = np.arctan2(py, px)
    xc, yc = x + r * np.sin(phi0), y - r * np.cos(phi0)
    td = (phi0 + np.arctan2(xc, yc)) / omega  # time of closest approach
    # Delphes removes every multiple of pi/|omega| from td that the atan may have added
    half_period = np.abs(np.pi / omega)
    td = td - np.sign(td) * np.ceil(np.maximum(np.abs(td) / half_period - 0.5, 0)) * half_period
    phid = phi0 - omega * td
    xd, yd = xc - r * np.sin(phid), yc + r * np.cos(phid)
    zd = z + pz * C_LIGHT / e * td
    d0 = (xd * pt * np.sin(phid) - yd * pt * np.cos(phid)) / pt
    return d0 * 1e3, zd * 1e3, phid


def _lookup(table, pt, abs_eta) -> np.ndarray:
    eta_bin = np.digitize(abs_eta, ETA_EDGES[1:-1], right=True)
    pt_bin = np.digitize(pt, PT_EDGES, right=True) - 1  # (edge_k, edge_k+1] -> k
    inside = (pt > PT_EDGES[0]) & (abs_eta > ETA_EDGES[0]) & (abs_eta <= ETA_EDGES[-1])
    values = np.asarray(table)[np.clip(eta_bin, 0, 2), np.clip(pt_bin, 0, len(PT_EDGES) - 1)]
    return np.where(inside, values, 0.0)


def ip_resolution(pt, eta) -> tuple[np.ndarray, np.ndarray]:
    """sigma(d0), sigma(dz) in mm from the card's tables (0 outside them, as the formulas)."""
    abs_eta = np.abs(eta)
    return _lookup(D0_MM, pt, abs_eta), _lookup(DZ_MM, pt, abs_eta)


# MomentumSmearing's relative pT resolution sqrt(a^2 + (b pT)^2) per species (charged hadron,
# electron, muon) and |eta| region (<= 0.5, <= 1.5, <= 2.5): (a, b)
PT_RESOLUTION = (
    ((0.06, 1.3e-3), (0.10, 1.7e-3), (0.25, 3.1e-3)),
    ((0.03, 1.3e-3), (0.05, 1.7e-3), (0.15, 3.1e-3)),
    ((0.01, 1.0e-4), (0.015, 1.5e-4), (0.025, 3.5e-4)),
)


def lognormal_pt(pt, abs_eta, absid, rng: np.random.Generator) -> np.ndarray:
    """The pT that `MomentumSmearing` draws (log-normal with the card's relative resolution,
    capped at 1); `TrackSmearing` uses it only to look the IP resolution up."""
    species = np.select([absid == 11, absid == 13], [1, 2], 0)
    region = np.digitize(abs_eta, (0.5, 1.5), right=True).clip(0, 2)
    a, b = np.moveaxis(np.asarray(PT_RESOLUTION)[species, region], -1, 0)
    res = np.minimum(np.hypot(a, b * pt), 1.0)
    s2 = np.log1p(res**2)  # Delphes' LogNormal(pt, res pt)
    return pt * np.exp(rng.standard_normal(np.shape(pt)) * np.sqrt(s2) - 0.5 * s2)


def measure(px, py, pz, e, charge, absid, x_mm, y_mm, z_mm,
            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Tracks as Delphes' CMS card of JetClass records them, for tracked particles (flat arrays
    of the true momenta and energies, charges, |PDG id| and production points in mm).

    Returns
    -------
    dict with `p` (n, 3) and `e`: the true momentum at the point of closest approach and the
    true energy (Delphes: sqrt(p^2 + m^2) with the generator mass); `d0`, `dz` (smeared, mm),
    `d0err`, `dzerr` (mm)
    """
    px, py, pz, e = (np.asarray(v, float) for v in (px, py, pz, e))
    d0, dz, phid = helix_parameters(px, py, pz, e, charge, x_mm, y_mm, z_mm)
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / pt)
    smeared_pt = lognormal_pt(pt, np.abs(eta), np.asarray(absid), rng)
    d0err, dzerr = ip_resolution(smeared_pt, eta)
    d0 = d0 + d0err * rng.standard_normal(len(d0))
    dz = dz + dzerr * rng.standard_normal(len(dz))
    p = np.stack([pt * np.cos(phid), pt * np.sin(phid), pz], -1)
    return {"p": p, "e": e, "d0": d0, "d0err": d0err, "dz": dz, "dzerr": dzerr}
