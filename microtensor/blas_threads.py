"""How many BLAS threads a compiled step runs with: measured, not guessed.
Without this, every replay uses numpy's default (one thread per core).

numpy's OpenBLAS threads spin while they wait. On small products, or when another
process holds a core, two threads are slower than one (a seed-model step measured
2.1x slower at B=32 with one core busy, and as fast as idle with one thread). So a
``ThreadChoice`` times the replays of one program (one batch shape) with each count
in turn, then runs the faster, and now and then times the other again: the machine's
load changes. Needs ``threadpoolctl``; without it, nothing changes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - an optional dependency
    ThreadpoolController = None

TRIALS = 3  # timed calls per count before choosing
RECHECK = 25  # then one call of the other count in this many


class ThreadChoice:
    """Run a function with the BLAS thread count that has been faster for it lately."""

    _controller = None

    def __init__(self) -> None:
        controller = _controller()
        most = max((lib["num_threads"] for lib in controller.info()
                    if lib["user_api"] == "blas"), default=1) if controller else 1
        self.counts = [1, most] if most > 1 else []
        self.times: dict[int, list[float]] = {n: [] for n in self.counts}
        self.calls = 0

    def run(self, fn: Callable[[], Any]) -> Any:
        if not self.counts:
            return fn()
        count = self._next()
        start = time.perf_counter()
        with _controller().limit(limits=count, user_api="blas"):
            result = fn()
        times = self.times[count]
        times.append(time.perf_counter() - start)
        del times[:-TRIALS]
        self.calls += 1
        return result

    @property
    def best(self) -> int | None:
        if any(len(t) < TRIALS for t in self.times.values()):
            return None
        return min(self.counts, key=lambda n: statistics.median(self.times[n]))

    def _next(self) -> int:
        best = self.best
        if best is None:  # still trying: take turns
            return self.counts[self.calls % len(self.counts)]
        if self.calls % RECHECK == 0:
            return next(n for n in self.counts if n != best)
        return best


def _controller():
    if ThreadpoolController is not None and ThreadChoice._controller is None:
        ThreadChoice._controller = ThreadpoolController()
    return ThreadChoice._controller
