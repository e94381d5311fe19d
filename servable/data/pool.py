"""What the event generators share: Pythia set-up and seeds, CPU timers per stage, worker
processes behind one progress bar, and how jobs are split between workers.

`servable.data.generator` (CMS H->bb layout) and `servable.data.jetclass_generator` (JetClass
layout) both run through `run_jobs`: a job is a module-level function called with its
arguments and a progress sink (`put(n)` after each batch of jets). With one worker the jobs
run in this process; with more, in a process pool (fork where the platform has it), and the
bar is fed from a queue. Results come back in job order, so the same seed and number of
workers give the same output whatever the scheduling.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import time
from collections.abc import Callable, Sequence

import numpy as np

PYTHIA_SEED_RANGE = 900_000_000  # Pythia accepts seeds 1..900 000 000


def pythia_seed(seed: int, worker: int, stream: int, streams: int = 2, offset: int = 0) -> int:
    """An independent Pythia seed per (seed, worker, stream) within Pythia's range; `streams`
    is how many Pythia instances each worker runs (one per class, or per configuration)."""
    return (seed * 7919 + worker * streams + stream + offset) % PYTHIA_SEED_RANGE + 1


def common_settings(ecm_gev: float, seed: int, mpi: bool,
                    tau0_max_mm: float | None = 10.0) -> list[str]:
    """The Pythia 8 lines every generator's processes share: beam energy, the seed, which
    hadrons decay (with `tau0_max_mm`, those of longer c*tau stay stable: 10 mm keeps K0S and
    Lambda, b and c hadrons decay; None: Pythia's default, every unstable hadron decays),
    multiparton interactions, quiet output. The seed is the third line."""
    decays = (["ParticleDecays:limitTau0 = off"] if tau0_max_mm is None else
              ["ParticleDecays:limitTau0 = on", f"ParticleDecays:tau0Max = {tau0_max_mm:g}"])
    return [
        f"Beams:eCM = {ecm_gev}",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        *decays,
        f"PartonLevel:MPI = {'on' if mpi else 'off'}",
        "Print:quiet = on",
    ]


def make_pythia(lines: Sequence[str]):
    """An initialised Pythia 8 instance (pythia8mc) configured with `lines`."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in lines:
        pythia.readString(line)
    if not pythia.init():
        raise RuntimeError("Pythia failed to initialise with the generator settings")
    return pythia


class Timer:
    """CPU seconds per stage: Pythia (with event tables), FastJet, own code."""

    def __init__(self, stages: Sequence[str] = ("pythia", "fastjet", "features")):
        self.seconds = {k: 0.0 for k in stages}

    def add(self, key: str, t0: float) -> float:
        """Add the time.perf_counter seconds since `t0` to stage `key`; returns a new reading, the
        start of the next stage."""
        self.seconds[key] += time.perf_counter() - t0
        return time.perf_counter()


def total_seconds(timings: Sequence[dict]) -> dict[str, float]:
    """Stage seconds summed over jobs (each a `Timer.seconds`)."""
    return {k: sum(t[k] for t in timings) for k in timings[0]}


def charge_lookup(pythia) -> Callable[[np.ndarray], np.ndarray]:
    """Electric charge of PDG ids from Pythia's particle data, cached per id."""
    cache: dict = {}

    def charge_of(ids: np.ndarray) -> np.ndarray:
        uniq, inverse = np.unique(ids, return_inverse=True)
        for pid in uniq:
            if int(pid) not in cache:
                cache[int(pid)] = pythia.particleData.charge(int(pid))
        return np.array([cache[int(u)] for u in uniq])[inverse] if len(ids) else np.zeros(0)

    return charge_of


def quota(total: int, workers: int) -> list[int]:
    """`total` jets split as evenly as possible over `workers` (the first get one more)."""
    return [total // workers + (1 if w < total % workers else 0) for w in range(workers)]


class _Bar:
    """Progress sink for in-process jobs (the pool uses a queue instead)."""

    def __init__(self, bar):
        self.bar = bar

    def put(self, n: int) -> None:
        self.bar.update(n)


def _call(job):
    function, args, sink = job
    return function(*args, sink)


def run_jobs(function: Callable, jobs: Sequence[tuple], workers: int, bar) -> list:
    """`function(*job, sink)` for every job, with up to `workers` processes; results in job
    order. `bar` is a tqdm bar that the jobs advance by the jets they make."""
    if workers == 1 or len(jobs) == 1:
        sink = _Bar(bar)
        return [function(*job, sink) for job in jobs]
    # fork on Linux: no __main__ guard needed in user scripts; each child builds its own Pythia
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    with ctx.Manager() as manager, ctx.Pool(min(workers, len(jobs))) as pool:
        queue = manager.Queue()
        pending = pool.map_async(_call, [(function, job, queue) for job in jobs], chunksize=1)
        while not pending.ready() or not queue.empty():
            try:
                bar.update(queue.get(timeout=0.2))
            except queue_module.Empty:
                pass
        return pending.get()
