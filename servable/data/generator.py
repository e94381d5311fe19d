"""Offline jet generator: Pythia 8 + FastJet jets written in the CMS H->bb layout.

Signal is H->bb from gg/qg/qqbar -> H + jet; background is HardQCD:all. Jets are anti-kT
R=0.8 on the visible particles (after CHS when pileup is overlaid); signal jets must contain
both b quarks of the Higgs. Track and vertex features come from `servable.data.features`
(the producer's definitions) and the detector model `servable.data.detector`; the generator
truth per track and per SV from `servable.data.events`. Settings, seeds and the model are
written into the file as provenance. Worker processes have independent seeds, and the same seed
with the same number of workers gives bit-identical arrays.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from servable.data import events, pool
from servable.data.detector import ResolutionModel
from servable.data.jetbuild import jet_batch, select_jets
from servable.data.jets import Jets

SIGNAL, BACKGROUND = 1, 0


@dataclass(frozen=True)
class GeneratorSettings:
    """What the generator simulates and selects: collision energy, pTHat thresholds, the jet
    definition and selection, pileup, pT reweighting, soft drop and the detector model.
    Written into every generated file as provenance; `cms()` gives the published IN's
    selection.
    """

    ecm_gev: float = 13000.0
    signal_pthat_min: float = 300.0
    background_pthat_min: float = 250.0  # below the jet cut: no turn-on edge in QCD
    jet_radius: float = 0.8
    jet_pt_min: float = 350.0
    jet_pt_max: float = float("inf")
    sdmass_min: float = float("-inf")
    sdmass_max: float = float("inf")
    jet_abs_eta_max: float = 2.4
    background_jets_per_event: int = 2
    multiparton_interactions: bool = True
    pileup_mu: float = 0.0  # mean number of pileup interactions (Poisson), 0: none
    pileup_pool: int = 200  # soft-QCD events made per batch, drawn from (0: all fresh)
    reweight_pt: bool = False  # per-jet weights that give both classes the same pT spectrum
    reweight_bins: int = 20
    events_per_batch: int = 50
    softdrop_beta: float = 0.0
    softdrop_zcut: float = 0.1
    resolution: ResolutionModel = field(default_factory=ResolutionModel)

    @classmethod
    def cms(cls, **kw) -> GeneratorSettings:
        """The selection of the published IN's training data: 250 < raw pT < 2500 GeV,
        40 < m_SD < 200 GeV (pTHat thresholds lowered below the jet cut)."""
        base = dict(jet_pt_min=250.0, jet_pt_max=2500.0, sdmass_min=40.0, sdmass_max=200.0,
                    signal_pthat_min=225.0, background_pthat_min=200.0)
        return cls(**{**base, **kw})

    def pythia_settings(self, label: int, seed: int) -> list[str]:
        """The Pythia 8 configuration strings for one class (`label`: 1 signal, 0 QCD) and seed."""
        common = pool.common_settings(self.ecm_gev, seed, self.multiparton_interactions)
        if label == SIGNAL:
            return common + [
                "HiggsSM:gg2Hg(l:t) = on", "HiggsSM:qg2Hq(l:t) = on",
                "HiggsSM:qqbar2Hg(l:t) = on",
                f"PhaseSpace:pTHatMin = {self.signal_pthat_min}",
                "25:onMode = off", "25:onIfAny = 5",
            ]
        if label == PILEUP:
            return common + ["SoftQCD:inelastic = on"]
        return common + ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {self.background_pthat_min}"]


PILEUP = 2


def pythia_seed(seed: int, worker: int, label: int, pileup: bool = False) -> int:
    """Independent Pythia seed per (seed, worker, class), within Pythia's range; the pileup
    generator of a (worker, class) gets its own."""
    return pool.pythia_seed(seed, worker, label, streams=2,
                            offset=450_000_000 if pileup else 0)


def _events(pythia, pileup, settings: GeneratorSettings, rng, charge_of, timer):
    """One batch of hard events as a flat table (pileup overlaid), and npv per event."""
    t0 = time.perf_counter()
    n = settings.events_per_batch
    hard = events.table(pythia.nextBatch(n), charge_of)
    if pileup is None:
        timer.add("pythia", t0)
        return (*events.no_pileup(hard), n)
    n_pu = rng.poisson(settings.pileup_mu, n)
    total = int(n_pu.sum())
    if total == 0:
        timer.add("pythia", t0)
        return (*events.no_pileup(hard), n)
    size = min(total, settings.pileup_pool) if settings.pileup_pool > 0 else total
    soft = events.table(pileup.nextBatch(size), charge_of)
    soft = events.pick_events(soft, rng.permutation(total) % size)
    timer.add("pythia", t0)
    merged, npv = events.overlay(hard, soft, n_pu, rng, settings.resolution)
    return merged, npv, n


def generate_class(label: int, n_jets: int, seed: int, worker: int,
                   settings: GeneratorSettings, progress=None) -> tuple[Jets, dict]:
    """Generate `n_jets` jets of one class in this process; returns jets and timing."""
    timer = pool.Timer()
    t0 = time.perf_counter()
    pythia = pool.make_pythia(settings.pythia_settings(label, pythia_seed(seed, worker, label)))
    pileup = (pool.make_pythia(settings.pythia_settings(
        PILEUP, pythia_seed(seed, worker, label, pileup=True)))
              if settings.pileup_mu > 0 else None)
    timer.add("pythia", t0)
    rng = np.random.default_rng([seed, worker, label])
    charge_of = pool.charge_lookup(pythia)
    parts, have, n_events = [], 0, 0
    while have < n_jets:
        t, npv, n = _events(pythia, pileup, settings, rng, charge_of, timer)
        n_events += n
        flat = select_jets(t, n, label == SIGNAL, settings, timer)
        if len(flat["e"]) == 0:
            continue
        jets = jet_batch(t, flat, npv, settings, rng, timer)
        jets = jets[: n_jets - have]
        if len(jets) == 0:
            continue
        parts.append(jets)
        have += len(jets)
        if progress is not None:
            progress.put(len(jets))
    jets = Jets.concatenate(parts)
    onehot = np.zeros((n_jets, 2), np.float32)
    onehot[:, label] = 1
    jets.labels = onehot
    return jets, {"seconds": timer.seconds, "events": n_events, "jets": n_jets}


def pt_weights(pt: np.ndarray, is_signal: np.ndarray, bins: int) -> np.ndarray:
    """Per-jet weights that give the signal the background's pT spectrum (log-spaced bins);
    background jets weigh 1, signal weights average to 1 (0 where no background jet lies)."""
    edges = np.geomspace(pt.min(), pt.max() * (1 + 1e-9), bins + 1)
    h_sig = np.histogram(pt[is_signal], edges)[0] / max(is_signal.sum(), 1)
    h_bkg = np.histogram(pt[~is_signal], edges)[0] / max((~is_signal).sum(), 1)
    ratio = np.divide(h_bkg, h_sig, out=np.zeros(bins), where=h_sig > 0)
    w = np.ones(len(pt))
    w[is_signal] = ratio[np.clip(np.digitize(pt[is_signal], edges) - 1, 0, bins - 1)]
    if w[is_signal].sum() > 0:
        w[is_signal] *= is_signal.sum() / w[is_signal].sum()
    return w.astype(np.float32)


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
        raise ValueError("workers must be at least 1")
    tasks = [(label, n, worker) for label, total in ((SIGNAL, n_signal), (BACKGROUND, n_background))
             for worker, n in enumerate(pool.quota(total, workers)) if n > 0]
    t_start = time.perf_counter()
    with tqdm(total=n_signal + n_background, unit="jet", desc="generating",
              disable=not progress, mininterval=0.5) as bar:
        results = pool.run_jobs(generate_class, [(lb, n, seed, w, settings) for lb, n, w in tasks],
                                workers, bar)
    wall = time.perf_counter() - t_start
    jets = Jets.concatenate([r[0] for r in results])
    order = np.random.default_rng(seed).permutation(len(jets))
    jets = jets[order]
    if settings.reweight_pt:
        jets.extras["weight"] = pt_weights(jets.spectator("fj_pt"), jets.is_signal,
                                           settings.reweight_bins)
    seconds = pool.total_seconds([r[1]["seconds"] for r in results])
    provenance = {
        "generator": "Pythia 8 (pythia8mc) + FastJet, servable.data.generator",
        "seed": seed,
        "workers": workers,
        "pythia_seeds": {f"{'signal' if lb else 'background'}_worker{w}": pythia_seed(seed, w, lb)
                         for lb, _, w in tasks},
        "pythia_settings": {"signal": settings.pythia_settings(SIGNAL, 0)[3:],
                            "background": settings.pythia_settings(BACKGROUND, 0)[3:],
                            "pileup": settings.pythia_settings(PILEUP, 0)[3:]},
        "pileup_seeds": {f"{'signal' if lb else 'background'}_worker{w}":
                         pythia_seed(seed, w, lb, pileup=True) for lb, _, w in tasks}
        if settings.pileup_mu > 0 else {},
        "settings": asdict(settings),
        "n_signal": n_signal,
        "n_background": n_background,
        "events_generated": sum(r[1]["events"] for r in results),
        "cpu_seconds": seconds,
        "wall_seconds": wall,
        "jets_per_second": len(jets) / wall,
    }
    return jets, provenance
