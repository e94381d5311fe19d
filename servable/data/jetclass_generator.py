"""JetClass-like jets from Pythia 8 + FastJet: the ten JetClass classes, particle level.

Each class has its own Pythia process with forced decays (`PROCESSES`), chosen so that most
events give a boosted resonance (pT ~ 500-1000 GeV) without weights: the Higgs recoils
against an invisible Z (f fbar -> H Z, Z -> nu nu: JetClass's own topology, p p > ve ve~ h),
W and Z come in pairs that both decay hadronically (each event gives two candidate jets),
tops in t tbar pairs with both W forced to the same mode, QCD is hard 2 -> 2 scattering.
Pythia cannot force the mixed decay of H -> W+ W- -> (q q')(l nu) in a charge-symmetric way
(`onPosIfAny`/`onNegIfAny` fix which W is leptonic): each Hqql worker runs both
configurations, alternating batch by batch. Leptons are e and mu, as in JetClass (its
MadGraph cards define l = e, mu and its matching looks for e or mu only): no taus.

Events pass through the particle-level detector (`servable.data.particleflow`); jets are
anti-kT R = 0.8 on its candidates, 500 < pT < 1000 GeV, |eta| < 2; signal jets are matched
to a resonance with all its decay products inside (`servable.data.jetclass_truth`), QCD jets
are the two leading jets of each event. Observables come from the candidates: soft-drop mass
(beta = 0, z_cut = 0.1) and N-subjettiness tau_1..4 (beta = 1, one-pass minimised kT axes,
normalised by sum pT R, as Delphes computes them). The same seed and number of workers give
bit-identical jets.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from servable.data import events, jetclass_truth, pool, schema
from servable.data.detector import ResolutionModel
from servable.data.features import delta_phi, eta_phi
from servable.data.jetbuild import (
    _np,
    _pad_rows,
    cluster,
    n_subjettiness,
    onepass_axes,
    selected_jets,
    substructure,
)
from servable.data.jetclass_truth import Decay
from servable.data.jets import Jets
from servable.data.particleflow import ParticleFlowModel, reconstruct
from servable.data.particles import jets_from_arrays

CLASSES = schema.JETCLASS_CLASSES
N_AXES = 4

_Z_INVISIBLE = ("23:onMode = off", "23:onIfAny = 12 14 16")
_HZ = ("HiggsSM:ffbar2HZ = on", *_Z_INVISIBLE, "25:onMode = off")
_W_QUARKS = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5")
_W_LEPTONS = ("24:onMode = off", "24:onIfAny = 11 13")
_TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on")
_H_WW = (*_HZ, "25:onIfMatch = 24 -24")


@dataclass(frozen=True)
class Process:
    """A class's Pythia process and decays (`lines`), the decay it is matched with, and the
    charge-conjugate configuration that alternates with it batch by batch (if any)."""

    lines: tuple[str, ...]
    decay: Decay | None
    conjugate: tuple[str, ...] = ()
    neutrino: bool = False  # a neutrino of the decay escapes: the visible jet is softer


PROCESSES: dict[str, Process] = {
    "QCD": Process(("HardQCD:all = on",), None),
    "Hbb": Process((*_HZ, "25:onIfMatch = 5 -5"), Decay(25, "direct", 2)),
    "Hcc": Process((*_HZ, "25:onIfMatch = 4 -4"), Decay(25, "direct", 2)),
    "Hgg": Process((*_HZ, "25:onIfMatch = 21 21"), Decay(25, "direct", 2)),
    "H4q": Process((*_H_WW, *_W_QUARKS), Decay(25, "via_w", 4)),
    "Hqql": Process((*_H_WW, "24:onMode = off", "24:onPosIfAny = 1 2 3 4 5",
                     "24:onNegIfAny = 11 13"), Decay(25, "via_w", 3),
                    conjugate=(*_H_WW, "24:onMode = off", "24:onPosIfAny = 11 13",
                               "24:onNegIfAny = 1 2 3 4 5"), neutrino=True),
    "Zqq": Process(("WeakDoubleBoson:ffbar2gmZgmZ = on", "WeakZ0:gmZmode = 2",
                    "23:onMode = off", "23:onIfAny = 1 2 3 4 5"), Decay(23, "direct", 2)),
    "Wqq": Process(("WeakDoubleBoson:ffbar2WW = on", *_W_QUARKS), Decay(24, "direct", 2)),
    "Tbqq": Process((*_TTBAR, *_W_QUARKS), Decay(6, "top", 3)),
    "Tbl": Process((*_TTBAR, *_W_LEPTONS), Decay(6, "top", 2), neutrino=True),
}


@dataclass(frozen=True)
class JetClassSettings:
    ecm_gev: float = 13000.0
    pthat_min: float = 450.0  # below the jet cut: no turn-on edge at 500 GeV
    # Hqql, Tbl: the neutrino takes pT; their visible jets then have about the spectrum of the
    # fully hadronic classes at pthat_min, with half the events per jet
    pthat_min_with_neutrino: float = 550.0
    pthat_max: float = 1200.0  # above it few jets fall back into the window
    jet_radius: float = 0.8
    jet_pt_min: float = 500.0
    jet_pt_max: float = 1000.0
    jet_abs_eta_max: float = 2.0
    max_particles: int = schema.JETCLASS_SLOTS
    qcd_jets_per_event: int = 2
    multiparton_interactions: bool = True
    events_per_batch: int = 50
    softdrop_beta: float = 0.0
    softdrop_zcut: float = 0.1
    # JetClass's Pythia ran with MG5_aMC's default card, which keeps Pythia's default
    # ParticleDecays:limitTau0 = off: K0S, Lambda, Sigma, Xi, Omega decay (their charged
    # daughters are displaced tracks in Delphes); pi+-, K+-, K0L, n stay stable. A number
    # (mm) sets limitTau0 = on with that tau0Max (the CMS generator's 10 mm keeps V0s stable).
    tau0_max_mm: float | None = None
    detector: ParticleFlowModel = field(default_factory=ParticleFlowModel)

    def pythia_settings(self, name: str, seed: int, conjugate: bool = False) -> list[str]:
        """Pythia's configuration for class `name` (its conjugate configuration if asked)."""
        process = PROCESSES[name]
        return [
            *pool.common_settings(self.ecm_gev, seed, self.multiparton_interactions,
                                  self.tau0_max_mm),
            "PhaseSpace:pTHatMin = "
            f"{self.pthat_min_with_neutrino if process.neutrino else self.pthat_min}",
            f"PhaseSpace:pTHatMax = {self.pthat_max}",
            *(process.conjugate if conjugate else process.lines),
        ]


def pythia_seed(seed: int, worker: int, name: str, conjugate: bool = False) -> int:
    """The Pythia seed of a (worker, class, configuration)."""
    return pool.pythia_seed(seed, worker, 2 * CLASSES.index(name) + int(conjugate),
                            streams=2 * len(CLASSES))


def _candidate_jets(reco, n_events, process: Process, res, settings: JetClassSettings):
    """Cluster the candidates; the selected jets (flat) and the resonance each is matched to."""
    import awkward as ak

    counts = np.bincount(reco["event"], minlength=n_events)
    jets, index, jpt, jeta, jphi = cluster(
        {k: reco[c] for k, c in (("px", "px"), ("py", "py"), ("pz", "pz"), ("E", "e"))},
        counts, settings.jet_radius, settings.jet_pt_min)
    ok = ((abs(jeta) < settings.jet_abs_eta_max) & (jpt < settings.jet_pt_max)
          & (ak.num(index, axis=2) >= N_AXES))  # N-subjettiness needs N particles
    per_event = _np(ak.num(jpt, axis=1), 0).astype(int)
    jet_event = np.repeat(np.arange(n_events), per_event)
    if process.decay is None:
        ok = ok & (ak.local_index(jpt, axis=1) < settings.qcd_jets_per_event)
        matched = np.full(len(jet_event), -1)
    else:
        matched = jetclass_truth.match(jet_event, _np(ak.flatten(jeta)), _np(ak.flatten(jphi)),
                                       res, process.decay, settings.jet_radius)
        ok = ok & ak.unflatten(matched >= 0, per_event)
    flat = selected_jets(jets, index, ok, np.arange(len(reco["e"])), counts)
    flat["resonance"] = matched[_np(ak.flatten(ok), False).astype(bool)]
    return flat


def _padded(values, flat, order, width):
    return np.take_along_axis(_pad_rows(values, flat["n_cons"], order.shape[1]), order,
                              1)[:, :width]


def jet_batch(t: dict, n_events: int, name: str, settings: JetClassSettings, rng,
              timer) -> Jets | None:
    """The JetClass-layout jets of one batch of events (None when no jet is selected)."""
    process = PROCESSES[name]
    t0 = time.perf_counter()
    reco = reconstruct(t, settings.detector, rng)
    res = {"event": np.zeros(0, int), "products": np.zeros((0, jetclass_truth.SLOTS), int)}
    if process.decay is not None:
        res = jetclass_truth.with_kinematics(t, jetclass_truth.resonances(t, process.decay))
    t0 = timer.add("features", t0)
    flat = _candidate_jets(reco, n_events, process, res, settings)
    t0 = timer.add("fastjet", t0)
    if len(flat["e"]) == 0:
        return None
    sd, kt_axes = substructure(reco, flat, settings.jet_radius, settings.softdrop_beta,
                               settings.softdrop_zcut, N_AXES)
    t0 = timer.add("fastjet", t0)

    cons, n_cons = flat["cons"], flat["n_cons"]
    width = int(n_cons.max())
    mask = _pad_rows(np.ones(len(cons), bool), n_cons, width, False)
    p = _pad_rows(np.stack([reco["px"][cons], reco["py"][cons], reco["pz"][cons]], -1), n_cons,
                  width)
    pt = np.hypot(p[..., 0], p[..., 1])
    eta, phi = eta_phi(p[..., 0], p[..., 1], p[..., 2])
    taus = []
    for axes in kt_axes:
        a_eta, a_phi = eta_phi(*(_np(axes[k]) for k in ("px", "py", "pz")))
        a_eta, a_phi = onepass_axes(pt, eta, phi, mask, a_eta, a_phi)
        taus.append(n_subjettiness(pt, eta, phi, mask, a_eta, a_phi, settings.jet_radius))

    jet_px, jet_py, jet_pz = flat["p"].T
    jet_eta, jet_phi = eta_phi(jet_px, jet_py, jet_pz)
    order = np.argsort(np.where(mask, -pt, np.inf), axis=1, kind="stable")
    keep = min(width, settings.max_particles)
    filled = np.take_along_axis(mask, order, 1)[:, :keep]
    slots = settings.max_particles

    def part(values):
        out = np.zeros((len(n_cons), slots), np.float32)
        out[:, :keep] = np.where(filled, _padded(values, flat, order, keep), 0)
        return out

    etasign = np.where(jet_eta > 0, 1.0, -1.0)
    jet_of = np.repeat(np.arange(len(n_cons)), n_cons)
    arrays = {"part_px": part(reco["px"][cons]), "part_py": part(reco["py"][cons]),
              "part_pz": part(reco["pz"][cons]), "part_energy": part(reco["e"][cons]),
              "part_deta": part(etasign[jet_of] * (eta[mask] - jet_eta[jet_of])),
              "part_dphi": part(delta_phi(phi[mask], jet_phi[jet_of]))}
    for key, src in (("part_d0val", "d0"), ("part_d0err", "d0err"), ("part_dzval", "dz"),
                     ("part_dzerr", "dzerr"), ("part_charge", "charge")):
        arrays[key] = part(reco[src][cons])
    kind = reco["kind"][cons]
    for k, flag in enumerate(("part_isChargedHadron", "part_isNeutralHadron", "part_isPhoton",
                              "part_isElectron", "part_isMuon")):
        arrays[flag] = part((kind == k).astype(float))
    msd = _np(sd.msoftdrop)
    arrays.update({
        "jet_pt": np.hypot(jet_px, jet_py), "jet_eta": jet_eta, "jet_phi": jet_phi,
        "jet_energy": flat["e"], "jet_nparticles": n_cons.astype(float), "jet_sdmass": msd,
        **{f"jet_tau{k + 1}": tau for k, tau in enumerate(taus)},
    })
    gen = np.full((len(n_cons), slots), -1)
    gen[:, :keep] = np.where(filled, _padded(reco["gen"][cons], flat, order, keep), -1)
    extras = _particle_truth(t, gen, flat["resonance"], res, settings)
    extras.update(jetclass_truth.jet_truth(t, res, flat["resonance"]))
    labels = np.zeros((len(n_cons), len(CLASSES)), np.float32)
    labels[:, CLASSES.index(name)] = 1
    jets = jets_from_arrays(arrays, labels)
    jets.extras = extras
    timer.add("features", t0)
    return jets


def _particle_truth(t, gen, jet_res, res, settings: JetClassSettings) -> dict[str, np.ndarray]:
    """The per-particle truth branches (`schema.JETCLASS_TRUTH_PARTICLE`)."""
    filled = gen >= 0
    g = gen[filled]
    first_b, first_heavy = events.ancestry(t, g)
    origin = np.full(gen.shape, -1)
    origin[filled] = events.track_origin(t, g, first_b, first_heavy, ResolutionModel(),
                                         settings.detector.prompt_um)
    product = np.full(gen.shape, -1)
    if len(res.get("index", ())):
        bits = jetclass_truth.product_bits(t, res)
        product = jetclass_truth.assign_products(t, bits, gen, jet_res, res)
    return {"part_truth_pdgid": np.where(filled, t["id"][np.maximum(gen, 0)], 0).astype(np.int32),
            "part_truth_origin": origin.astype(np.int8),
            "part_truth_decay_product": product.astype(np.int8)}


def generate_class(name: str, n_jets: int, seed: int, worker: int,
                   settings: JetClassSettings, progress=None) -> tuple[Jets, dict]:
    """`n_jets` jets of class `name` in this process; returns the jets and the timings (Pythia,
    conversion of its batches into tables, FastJet, the rest of servable's code)."""
    timer = pool.Timer(("pythia", "tables", "fastjet", "features"))
    start, cpu_start = time.perf_counter(), time.process_time()
    t0 = start
    configs = [False, True] if PROCESSES[name].conjugate else [False]
    pythias = [pool.make_pythia(settings.pythia_settings(
        name, pythia_seed(seed, worker, name, c), conjugate=c)) for c in configs]
    timer.add("pythia", t0)
    rng = np.random.default_rng([seed, worker, CLASSES.index(name)])
    charge_of = pool.charge_lookup(pythias[0])
    parts, have, n_events, batch = [], 0, 0, 0
    while have < n_jets:
        t0 = time.perf_counter()
        pythia = pythias[batch % len(pythias)]
        batch += 1
        n = settings.events_per_batch
        record = pythia.nextBatch(n)
        t0 = timer.add("pythia", t0)
        t, _ = events.no_pileup(events.table(record, charge_of, all_mothers=True))
        timer.add("tables", t0)
        n_events += n
        jets = jet_batch(t, n, name, settings, rng, timer)
        if jets is None:
            continue
        jets = jets[: n_jets - have]
        parts.append(jets)
        have += len(jets)
        if progress is not None:
            progress.put(len(jets))
    return Jets.concatenate(parts), {"seconds": timer.seconds, "events": n_events,
                                     "jets": n_jets, "elapsed": time.perf_counter() - start,
                                     "cpu": time.process_time() - cpu_start}


def generate(classes=CLASSES, jets_per_class: int = 400, seed: int = 1, workers: int = 1,
             settings: JetClassSettings | None = None, progress: bool = True):
    """Generate `jets_per_class` jets of each class with `workers` processes.

    Returns
    -------
    jets : Jets in the JetClass layout (ten label columns), shuffled with the seed
    provenance : dict of settings, seeds, detector model, Pythia settings per class, timings
    """
    from tqdm import tqdm

    settings = settings or JetClassSettings()
    classes = tuple(classes)
    unknown = [c for c in classes if c not in CLASSES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct JetClass classes ({', '.join(CLASSES)}); "
                         f"received {', '.join(classes) or 'none'}")
    if jets_per_class < 1:
        raise ValueError("jets_per_class must be at least 1")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    jobs = [(c, n, seed, w, settings) for c in classes
            for w, n in enumerate(pool.quota(jets_per_class, workers)) if n > 0]
    t_start = time.perf_counter()
    with tqdm(total=jets_per_class * len(classes), unit="jet", desc="generating",
              disable=not progress, mininterval=0.5) as bar:
        results = pool.run_jobs(generate_class, jobs, workers, bar)
    wall = time.perf_counter() - t_start
    jets = Jets.concatenate([r[0] for r in results])
    jets = jets[np.random.default_rng(seed).permutation(len(jets))]
    per_class = {}
    for c in classes:
        mine = [r[1] for job, r in zip(jobs, results, strict=True) if job[0] == c]
        elapsed = sum(m["elapsed"] for m in mine)
        cpu = sum(m["cpu"] for m in mine)
        per_class[c] = {"jets": jets_per_class, "events": sum(m["events"] for m in mine),
                        "cpu_seconds": pool.total_seconds([m["seconds"] for m in mine]),
                        "seconds": elapsed, "process_cpu_seconds": cpu,
                        "jets_per_second_per_core": jets_per_class / elapsed,
                        "jets_per_cpu_second": jets_per_class / cpu}
    provenance = {
        "generator": "Pythia 8 (pythia8mc) + FastJet, servable.data.jetclass_generator",
        "dataset": "jetclass",
        "seed": seed,
        "workers": workers,
        "classes": list(classes),
        "jets_per_class": jets_per_class,
        "pythia_seeds": {f"{c}_worker{w}{'_conjugate' if conj else ''}":
                         pythia_seed(seed, w, c, conj) for c, _, _, w, _ in jobs
                         for conj in ([False, True] if PROCESSES[c].conjugate else [False])},
        "pythia_settings": {c: settings.pythia_settings(c, 0)[3:] for c in classes},
        "pythia_settings_conjugate": {c: settings.pythia_settings(c, 0, conjugate=True)[3:]
                                      for c in classes if PROCESSES[c].conjugate},
        "settings": asdict(settings),
        "per_class": per_class,
        "cpu_seconds": pool.total_seconds([r[1]["seconds"] for r in results]),
        "wall_seconds": wall,
        "jets_per_second": len(jets) / wall,
    }
    return jets, provenance
