"""Ring jets: a small, separable 10-class sample in the JetClass ROOT layout, for training tests.

Not physics: every jet of class c (in the JetClass order) puts all its particles in its own
ring of angular distance from the axis, dR in [0.07 c + 0.01, 0.07 c + 0.06), so the classes
separate on what every model reads: each particle's part_deltaR (all JetClass feature sets),
the ring pT fractions and the girth (the BDT's jet observables), the points ParticleNet
finds neighbours in and the pair distances ParT embeds. Everything else (multiplicity, pT
sharing, particle types, impact parameters) is drawn the same way for every class.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import uproot

from servable.data.jetclass import LABEL_BRANCHES

RING_STEP, RING_WIDTH = 0.07, 0.05
PION_MASS = 0.1396  # GeV: charged hadrons are massive, so the pair masses have mass terms


def ring_branches(jets_per_class: int, seed: int) -> dict[str, object]:
    """The JetClass branches (particles as awkward arrays) of `jets_per_class` jets per
    class, shuffled."""
    rng = np.random.default_rng(seed)
    n_classes = len(LABEL_BRANCHES)
    label = rng.permutation(np.repeat(np.arange(n_classes), jets_per_class))
    n = len(label)
    counts = rng.integers(8, 21, n)
    owner = np.repeat(np.arange(n), counts)
    total = counts.sum()
    jet_eta, jet_phi = rng.uniform(-1.5, 1.5, n), rng.uniform(-np.pi, np.pi, n)
    dr = RING_STEP * label[owner] + 0.01 + RING_WIDTH * rng.random(total)
    angle = rng.uniform(0, 2 * np.pi, total)
    deta, dphi = dr * np.cos(angle), dr * np.sin(angle)
    eta, phi = jet_eta[owner] + deta, jet_phi[owner] + dphi
    share = rng.exponential(size=total)
    share /= np.bincount(owner, share)[owner]
    pt = share * rng.uniform(500, 1000, n)[owner]
    kind = rng.choice(5, size=total, p=[0.6, 0.1, 0.25, 0.025, 0.025])  # ch, nh, ph, e, mu
    charged = (kind == 0) | (kind >= 3)
    charge = np.where(charged, rng.choice([-1.0, 1.0], size=total), 0.0)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px ** 2 + py ** 2 + pz ** 2 + np.where(kind == 0, PION_MASS ** 2, 0.0))
    d0err, dzerr = np.where(charged, 0.02, 0.0), np.where(charged, 0.03, 0.0)
    particles = {
        "part_px": px, "part_py": py, "part_pz": pz, "part_energy": energy,
        "part_deta": deta, "part_dphi": dphi,
        "part_d0val": np.where(charged, rng.normal(0, 0.05, total), 0.0), "part_d0err": d0err,
        "part_dzval": np.where(charged, rng.normal(0, 0.05, total), 0.0), "part_dzerr": dzerr,
        "part_charge": charge,
        "part_isChargedHadron": (kind == 0) * 1.0, "part_isNeutralHadron": (kind == 1) * 1.0,
        "part_isPhoton": (kind == 2) * 1.0, "part_isElectron": (kind == 3) * 1.0,
        "part_isMuon": (kind == 4) * 1.0,
    }
    sums = {k: np.bincount(owner, particles[k], minlength=n)
            for k in ("part_px", "part_py", "part_pz", "part_energy")}
    mass2 = sums["part_energy"] ** 2 - sums["part_px"] ** 2 - sums["part_py"] ** 2 \
        - sums["part_pz"] ** 2
    width = np.bincount(owner, pt * dr, minlength=n) / np.bincount(owner, pt, minlength=n)
    branches: dict[str, object] = {k: ak.unflatten(v.astype(np.float32), counts)
                                   for k, v in particles.items()}
    branches.update(
        jet_pt=np.hypot(sums["part_px"], sums["part_py"]), jet_eta=jet_eta, jet_phi=jet_phi,
        jet_energy=sums["part_energy"], jet_nparticles=counts.astype(np.float64),
        jet_sdmass=0.8 * np.sqrt(np.maximum(mass2, 0)),
        **{f"jet_tau{k}": width * 0.7 ** (k - 1) for k in range(1, 5)})
    for c, name in enumerate(LABEL_BRANCHES):
        branches[name] = (label == c).astype(np.float64)
    return branches


def write_ring_root(path, jets_per_class: int, seed: int):
    """A JetClass ROOT file of ring jets, written with uproot."""
    with uproot.recreate(path) as f:
        f["tree"] = ring_branches(jets_per_class, seed)
    return path
