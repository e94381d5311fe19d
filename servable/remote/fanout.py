"""One executor abstraction for fanned-out work (e.g. the trainings of a seed study).

`local` runs tasks through this machine's endpoint engine, a UUID through a Globus Compute
endpoint (both `servable.remote.Client`), `parsl:CONFIG.py` through the Parsl `Config`
named `config` in that file (a cluster's providers and launchers). Each has `submit(fn, *args,
**kwargs) -> concurrent.futures.Future` and `close()`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from servable.errors import ServableError


class ParslRunner:
    """Parsl apps under the Config defined in a Python file as `config`."""

    def __init__(self, config_path):
        import parsl

        path = Path(config_path)
        if not path.is_file():
            raise ServableError(f"{path}: no such Parsl config file (a Python file defining "
                                "`config = parsl.config.Config(...)`)")
        spec = importlib.util.spec_from_file_location(f"servable_parsl_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - a user's file: report, never trace back
            raise ServableError(f"{path}: the Parsl config failed to load ({exc})") from None
        config = getattr(module, "config", None)
        if not isinstance(config, parsl.config.Config):
            raise ServableError(f"{path}: defines no `config` of type parsl.config.Config")
        from servable.remote.endpoints import scripts_on_path

        scripts_on_path()
        self.dfk = parsl.load(config)

    def submit(self, fn, *args, **kwargs):
        """Run `fn(*args, **kwargs)` as a Parsl python_app under this runner's DataFlowKernel;
        returns its AppFuture (a concurrent.futures.Future)."""
        from parsl import python_app

        return python_app(fn, data_flow_kernel=self.dfk)(*args, **kwargs)

    def close(self) -> None:
        """Clean up the DataFlowKernel: its executors shut down, no more tasks are taken."""
        self.dfk.cleanup()


def executor(spec: str, workers: int | None = None):
    """The runner named by `spec`: local, parsl:CONFIG.py or a Globus Compute endpoint UUID."""
    from servable.remote.client import Client

    if spec.startswith("parsl:"):
        return ParslRunner(spec.removeprefix("parsl:"))
    return Client(spec, workers=workers)


def train_seeds_on(spec: str, data, cfg, seeds, targets, force: bool = False,
                   workers: int | None = None, report=None) -> list[tuple[Path, dict]]:
    """`servable.bundle.train.train_seeds` fanned out: one training task per seed on the
    executor `spec` (bundles land where they would locally), the machine's cores shared
    between the parallel trainings.

    Returns
    -------
    list of (bundle path, training summary), in seed order.
    """
    import dataclasses
    import os

    from servable.bundle.train import trained_line
    from servable.files import resolved
    from servable.remote.functions import train

    parallel = min(len(seeds), workers or os.cpu_count() or 1)
    threads = max(1, (os.cpu_count() or 1) // parallel)
    runner = executor(spec, workers=parallel)
    try:
        futures = [runner.submit(train, {
            "data": [str(resolved(p)) for p in data],
            "config": dataclasses.asdict(dataclasses.replace(cfg, seed=seed)),
            "out": str(resolved(target)), "force": force, "threads": threads})
            for seed, target in zip(seeds, targets, strict=True)]
        out = []
        for seed, future in zip(seeds, futures, strict=True):
            result = future.result()
            if report:
                report(trained_line(result["bundle"], cfg.model, seed, result["summary"]))
            out.append((Path(result["bundle"]), result["summary"]))
    finally:
        runner.close()
    return out
