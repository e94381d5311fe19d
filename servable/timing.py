"""Wall-clock seconds per named stage of a long run (the reproduction, the benchmarks): one
timer that sums repeated stages and, when asked, announces each as it starts and ends."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class StageTimer:
    """Seconds per stage, summed when a stage runs again (e.g. once per model).

    Parameters
    ----------
    announce : called with a line when a stage starts ("== name") and ends ("   name: 1.0 s");
        None runs silently.
    """

    def __init__(self, announce: Callable[[str], None] | None = None):
        self.seconds: dict[str, float] = {}
        self.announce = announce

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage `name` (also when it raises)."""
        if self.announce:
            self.announce(f"== {name}")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            took = time.perf_counter() - t0
            self.seconds[name] = self.seconds.get(name, 0.0) + took
            if self.announce:
                self.announce(f"   {name}: {took:.1f} s")

    def run(self, name: str, fn: Callable, *args):
        """`fn(*args)` timed as stage `name`; its result."""
        with self.stage(name):
            return fn(*args)
