"""Offline jet generator: Pythia 8 + FastJet jets written in the CMS H->bb layout (DESIGN 3.2).

Signal is H->bb from gg/qg/qqbar -> H + jet; background is HardQCD:all. Jets are anti-kT
R=0.8; signal jets must contain both b quarks of the Higgs. Track and vertex features come
from `servable.data.features` and its documented resolution model; settings, seeds and the
model are written into the file as provenance. Worker processes have independent seeds, and
the same seed with the same number of workers gives bit-identical arrays.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from servable.data import schema
from servable.data.features import (
    ParticleBatch,
    ResolutionModel,
    delta_r,
    eta_phi,
    n_subjettiness,
    track_and_vertex_features,
)
from servable.data.jets import Jets

SIGNAL, BACKGROUND = 1, 0
_NEUTRINOS = (12, 14, 16)


@dataclass(frozen=True)
class GeneratorSettings:
    ecm_gev: float = 13000.0
    signal_pthat_min: float = 300.0
    background_pthat_min: float = 250.0  # below the jet cut: no turn-on edge in QCD
    jet_radius: float = 0.8
    jet_pt_min: float = 350.0
    jet_abs_eta_max: float = 2.4
    background_jets_per_event: int = 2
    multiparton_interactions: bool = True
    events_per_batch: int = 50
    softdrop_beta: float = 0.0
    softdrop_zcut: float = 0.1
    resolution: ResolutionModel = field(default_factory=ResolutionModel)

    def pythia_settings(self, label: int, seed: int) -> list[str]:
        common = [
            f"Beams:eCM = {self.ecm_gev}",
            "Random:setSeed = on",
            f"Random:seed = {seed}",
            "ParticleDecays:limitTau0 = on",  # K0S, Lambda stable; b and c hadrons decay
            "ParticleDecays:tau0Max = 10",
            f"PartonLevel:MPI = {'on' if self.multiparton_interactions else 'off'}",
            "Print:quiet = on",
        ]
        if label == SIGNAL:
            return common + [
                "HiggsSM:gg2Hg(l:t) = on", "HiggsSM:qg2Hq(l:t) = on",
                "HiggsSM:qqbar2Hg(l:t) = on",
                f"PhaseSpace:pTHatMin = {self.signal_pthat_min}",
                "25:onMode = off", "25:onIfAny = 5",
            ]
        return common + ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {self.background_pthat_min}"]


def pythia_seed(seed: int, worker: int, label: int) -> int:
    """Independent Pythia seed per (seed, worker, class), within Pythia's range."""
    return (seed * 7919 + worker * 2 + label) % 900_000_000 + 1


class _Timer:
    def __init__(self):
        self.seconds = {"pythia": 0.0, "fastjet": 0.0, "features": 0.0}

    def add(self, key, t0):
        self.seconds[key] += time.perf_counter() - t0
        return time.perf_counter()


def _charges(pythia, ids: np.ndarray, cache: dict) -> np.ndarray:
    for pid in np.unique(ids):
        if pid not in cache:
            cache[int(pid)] = pythia.particleData.charge(int(pid))
    lookup = np.vectorize(cache.__getitem__, otypes=[float])
    return lookup(ids) if len(ids) else np.zeros(0)


def _is_b_hadron(absid):
    return ((absid // 100) % 10 == 5) | ((absid // 1000) % 10 == 5)


def _select_jets(events, label, settings: GeneratorSettings, pythia, charge_cache, timer):
    """Cluster events, pick signal/background jets; returns flat per-jet awkward arrays."""
    import awkward as ak
    import fastjet

    t0 = time.perf_counter()
    prt = events.prt
    absid = abs(prt.id)
    visible = (prt.status > 0) & ~((absid == 12) | (absid == 14) | (absid == 16))
    vis = prt[visible]
    particles = ak.zip({"px": vis.p.px, "py": vis.p.py, "pz": vis.p.pz, "E": vis.p.e},
                       with_name=None)
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, settings.jet_radius)
    cs = fastjet.ClusterSequence(particles, jetdef)
    jets = cs.inclusive_jets(min_pt=settings.jet_pt_min)
    index = cs.constituent_index(min_pt=settings.jet_pt_min)
    t0 = timer.add("fastjet", t0)

    jpt = np.hypot(jets.px, jets.py)
    jeta, jphi = eta_phi(jets.px, jets.py, jets.pz)
    order = ak.argsort(jpt, ascending=False)
    jets, index, jpt, jeta, jphi = (x[order] for x in (jets, index, jpt, jeta, jphi))
    ok = abs(jeta) < settings.jet_abs_eta_max

    # weakly decaying b hadrons, for truth labels of probes
    d1 = ak.where(prt.daughter1 > 0, prt.daughter1, 0)
    weak_b = _is_b_hadron(absid) & ~_is_b_hadron(abs(prt.id[d1])) & (prt.status < 0)
    bh = prt[weak_b]
    bh_eta, bh_phi = eta_phi(bh.p.px, bh.p.py, bh.p.pz)
    n_b = ak.sum(delta_r(jeta[:, :, None], jphi[:, :, None], bh_eta[:, None, :],
                         bh_phi[:, None, :]) < settings.jet_radius, axis=2)

    if label == SIGNAL:
        mother = ak.where(prt.mother1 > 0, prt.mother1, 0)
        bq = prt[(absid == 5) & (prt.id[mother] == 25)]
        bq_eta, bq_phi = eta_phi(bq.p.px, bq.p.py, bq.p.pz)
        dr = delta_r(jeta[:, :, None], jphi[:, :, None], bq_eta[:, None, :], bq_phi[:, None, :])
        contains = ak.sum(dr < settings.jet_radius, axis=2) >= 2
        ok = ok & contains & (ak.num(bq, axis=1) == 2)[:, None]
        ok = ok & (ak.local_index(jpt, axis=1) == ak.argmax(ak.where(ok, jpt, -1), axis=1,
                                                                 keepdims=True))
    else:
        rank = ak.local_index(jpt, axis=1)
        ok = ok & (rank < settings.background_jets_per_event)

    # constituents of the selected jets, one row per jet, through flat global indices
    offsets = np.concatenate([[0], np.cumsum(_np(ak.num(vis)))[:-1]])
    selected = index[ok]
    per_jet = ak.flatten(selected + offsets[:, None, None], axis=1)
    flat_vis = ak.flatten(vis)
    cons = ak.unflatten(flat_vis[_np(ak.flatten(per_jet))], ak.num(per_jet))
    flat = {
        "jet_px": _np(ak.flatten(jets.px[ok])),
        "jet_py": _np(ak.flatten(jets.py[ok])),
        "jet_pz": _np(ak.flatten(jets.pz[ok])),
        "jet_e": _np(ak.flatten(jets.E[ok])),
        "n_b_hadrons": _np(ak.flatten(n_b[ok])),
    }
    ids = _np(ak.flatten(cons.id))
    charge = ak.unflatten(_charges(pythia, ids, charge_cache), ak.num(cons))
    timer.add("features", t0)
    return flat, cons, charge


def _np(array, fill=0.0) -> np.ndarray:
    """An awkward array (possibly with missing values) as a plain numpy array."""
    import awkward as ak

    return np.ma.filled(ak.to_numpy(ak.fill_none(array, fill)), fill)


def _pad(array, width, fill=0.0):
    import awkward as ak

    return _np(ak.pad_none(array, width, clip=True), fill).astype(float)


def _jet_batch(flat, cons, charge, settings: GeneratorSettings, rng, timer) -> Jets:
    import awkward as ak
    import fastjet

    res = settings.resolution
    t0 = time.perf_counter()
    c4 = ak.zip({"px": cons.p.px, "py": cons.p.py, "pz": cons.p.pz, "E": cons.p.e})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ca = fastjet.ClusterSequence(c4, fastjet.JetDefinition(fastjet.cambridge_algorithm,
                                                               settings.jet_radius))
        sd = ca.exclusive_jets_softdrop_grooming(
            njets=1, beta=settings.softdrop_beta, symmetry_cut=settings.softdrop_zcut,
            R0=settings.jet_radius)
        kt = fastjet.ClusterSequence(c4, fastjet.JetDefinition(fastjet.kt_algorithm,
                                                               settings.jet_radius))
        kt_axes = [kt.exclusive_jets(n_jets=k) for k in (1, 2, 3)]
    t0 = timer.add("fastjet", t0)

    # constituents (all) for N-subjettiness
    width = int(ak.max(ak.num(cons))) if len(cons) else 1
    cpx, cpy, cpz = (_pad(x, width) for x in (cons.p.px, cons.p.py, cons.p.pz))
    cmask = _pad(ak.ones_like(cons.p.px), width).astype(bool)
    cpt = np.hypot(cpx, cpy)
    ceta, cphi = eta_phi(cpx, cpy, cpz)
    taus = []
    for axes in kt_axes:
        apx, apy, apz = (_np(axes[k]) for k in ("px", "py", "pz"))
        aeta, aphi = eta_phi(apx, apy, apz)
        taus.append(n_subjettiness(cpt, ceta, cphi, cmask, aeta, aphi, settings.jet_radius))
    tau1, tau2, tau3 = taus
    sub = kt_axes[1]
    subjets = np.stack([_np(sub[k]) for k in ("px", "py", "pz")], axis=-1)  # (n, 2, 3)
    lead = np.argsort(-np.hypot(subjets[..., 0], subjets[..., 1]), axis=1)
    subjets = np.take_along_axis(subjets, lead[..., None], axis=1)

    # tracks: charged, pT > 0.95 GeV, inside the tracker, pT-sorted, at most 60
    pt = np.hypot(cons.p.px, cons.p.py)
    eta = np.arcsinh(cons.p.pz / pt)
    is_track = (charge != 0) & (pt > res.track_min_pt) & (abs(eta) < res.track_max_abs_eta)
    trk = cons[is_track]
    trk = trk[ak.argsort(np.hypot(trk.p.px, trk.p.py), ascending=False)]
    n_tracks_all = _np(ak.num(trk), 0).astype(int)
    T = int(min(max(n_tracks_all.max(initial=1), 1), schema.TRACK_SLOTS))
    vprod = ak.fill_none(trk.vProd, {"px": 0.0, "py": 0.0, "pz": 0.0, "e": 0.0})
    batch = ParticleBatch(
        p=np.stack([_pad(trk.p.px, T), _pad(trk.p.py, T), _pad(trk.p.pz, T)], axis=-1),
        e=_pad(trk.p.e, T),
        vertex=np.stack([_pad(vprod.px, T), _pad(vprod.py, T), _pad(vprod.pz, T)], axis=-1),
        mask=_pad(ak.ones_like(trk.p.px), T).astype(bool),
        jet_p=np.stack([flat["jet_px"], flat["jet_py"], flat["jet_pz"]], axis=-1),
        jet_e=flat["jet_e"],
        subjet_axes=subjets,
    )
    tracks, vertices, jet_features, n_sv = track_and_vertex_features(batch, rng, res)
    jet_pt = np.hypot(flat["jet_px"], flat["jet_py"])
    jet_eta, _ = eta_phi(flat["jet_px"], flat["jet_py"], flat["jet_pz"])
    n_sd = np.where(_np(sd.deltaRsoftdrop) > 0, 2.0, 1.0)
    spectators = np.stack([
        jet_pt, jet_eta, _np(sd.msoftdrop), n_sd,
        np.full(len(jet_pt), schema.SPECTATORS[4].default),
        tau2 / np.maximum(tau1, 1e-12), tau3 / np.maximum(tau2, 1e-12),
        np.ones(len(jet_pt)), _np(ak.num(cons)).astype(float),
        np.minimum(n_tracks_all, schema.TRACK_SLOTS).astype(float), n_sv.astype(float),
    ], axis=1).astype(np.float32)
    timer.add("features", t0)
    return Jets(tracks, vertices, jet_features, None, spectators,
                extras={"n_b_hadrons": flat["n_b_hadrons"].astype(np.int32)}, validate=False)


def generate_class(label: int, n_jets: int, seed: int, worker: int,
                   settings: GeneratorSettings, progress=None) -> tuple[Jets, dict]:
    """Generate `n_jets` jets of one class in this process; returns jets and timing."""
    import pythia8mc

    timer = _Timer()
    t0 = time.perf_counter()
    pythia = pythia8mc.Pythia("", False)
    for line in settings.pythia_settings(label, pythia_seed(seed, worker, label)):
        pythia.readString(line)
    if not pythia.init():
        raise RuntimeError("Pythia failed to initialise with the generator settings")
    timer.add("pythia", t0)
    rng = np.random.default_rng([seed, worker, label])
    charge_cache: dict = {}
    parts, have, events = [], 0, 0
    while have < n_jets:
        t0 = time.perf_counter()
        batch = pythia.nextBatch(settings.events_per_batch)
        timer.add("pythia", t0)
        events += settings.events_per_batch
        flat, cons, charge = _select_jets(batch, label, settings, pythia, charge_cache, timer)
        if len(flat["jet_e"]) == 0:
            continue
        jets = _jet_batch(flat, cons, charge, settings, rng, timer)
        jets = jets[: n_jets - have]
        parts.append(jets)
        have += len(jets)
        if progress is not None:
            progress.put(len(jets))
    jets = Jets.concatenate(parts) if parts else None
    onehot = np.zeros((n_jets, 2), np.float32)
    onehot[:, label] = 1
    jets.labels = onehot
    return jets, {"seconds": timer.seconds, "events": events, "jets": n_jets}


def _task(args):
    label, n, seed, worker, settings, queue = args
    return generate_class(label, n, seed, worker, settings, queue)


class _Bar:
    """Progress sink for in-process generation (the pool uses a queue instead)."""

    def __init__(self, bar):
        self.bar = bar

    def put(self, n: int) -> None:
        self.bar.update(n)


def _run_pool(tasks, seed, workers, settings, bar):
    # fork on Linux: no __main__ guard needed in user scripts; each child builds its own Pythia
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    with ctx.Manager() as manager, ctx.Pool(min(workers, len(tasks))) as pool:
        queue = manager.Queue()
        pending = pool.map_async(_task, [(lb, n, seed, w, settings, queue) for lb, n, w in tasks])
        while not pending.ready() or not queue.empty():
            try:
                bar.update(queue.get(timeout=0.2))
            except queue_module.Empty:
                pass
        return pending.get()


def _quota(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if w < total % workers else 0) for w in range(workers)]


def generate(n_signal: int, n_background: int, seed: int = 1, workers: int = 1,
             settings: GeneratorSettings | None = None, progress: bool = True):
    """Generate signal and background jets with `workers` processes.

    Returns
    -------
    jets : Jets, shuffled with the seed
    provenance : dict of settings, seeds, resolution model, and timings
    """
    from tqdm import tqdm

    settings = settings or GeneratorSettings()
    if n_signal < 0 or n_background < 0 or n_signal + n_background == 0:
        raise ValueError("ask for at least one jet (--signal/--background must be >= 0)")
    if workers < 1:
        raise ValueError("--workers must be at least 1")
    tasks = [(label, n, worker) for label, total in ((SIGNAL, n_signal), (BACKGROUND, n_background))
             for worker, n in enumerate(_quota(total, workers)) if n > 0]
    t_start = time.perf_counter()
    with tqdm(total=n_signal + n_background, unit="jet", desc="generating",
              disable=not progress, mininterval=0.5) as bar:
        if workers == 1:
            results = [generate_class(lb, n, seed, w, settings, _Bar(bar)) for lb, n, w in tasks]
        else:
            results = _run_pool(tasks, seed, workers, settings, bar)
    wall = time.perf_counter() - t_start
    jets = Jets.concatenate([r[0] for r in results])
    order = np.random.default_rng(seed).permutation(len(jets))
    jets = jets[order]
    seconds = {k: sum(r[1]["seconds"][k] for r in results) for k in results[0][1]["seconds"]}
    provenance = {
        "generator": "Pythia 8 (pythia8mc) + FastJet, servable.data.generator",
        "seed": seed,
        "workers": workers,
        "pythia_seeds": {f"{'signal' if lb else 'background'}_worker{w}": pythia_seed(seed, w, lb)
                         for lb, _, w in tasks},
        "pythia_settings": {"signal": settings.pythia_settings(SIGNAL, 0)[3:],
                            "background": settings.pythia_settings(BACKGROUND, 0)[3:]},
        "settings": asdict(settings),
        "n_signal": n_signal,
        "n_background": n_background,
        "events_generated": sum(r[1]["events"] for r in results),
        "cpu_seconds": seconds,
        "wall_seconds": wall,
        "jets_per_second": len(jets) / wall,
    }
    return jets, provenance
