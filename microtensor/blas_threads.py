"""How many BLAS threads a compiled step runs with: measured, not guessed.
Without this, every replay uses numpy's default (one thread per core).

numpy's OpenBLAS threads spin while they wait. On small products, or when another
process holds a core, two threads are slower than one (a seed-model step measured
2.1x slower at B=32 with one core busy, and as fast as idle with one thread). So a
``ThreadChoice`` times the replays of one program (one batch shape) with each count
in turn, then runs the faster; it times the other again now and then, and at once when
a call is much slower than usual (the machine's load changed). Needs ``threadpoolctl``;
without it, nothing changes.
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

TRIALS = 5  # timed calls per count before choosing (the median of the last ones decides)
RECHECK = 25  # then one call of the other count in this many
DRIFT = 1.5  # a call this much slower than its count's median: the load changed, time the other


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
        self.last: tuple[int, float] | None = None  # (count, seconds) of the latest call

    def run(self, fn: Callable[[], Any]) -> Any:
        if not self.counts:
            return fn()
        count = self._next()
        start = time.perf_counter()
        with _controller().limit(limits=count, user_api="blas"):
            result = fn()
        self.record(count, time.perf_counter() - start)
        return result

    def record(self, count: int, seconds: float) -> None:
        times = self.times[count]
        times.append(seconds)
        del times[:-TRIALS]
        self.calls += 1
        self.last = (count, seconds)

    @property
    def best(self) -> int | None:
        if any(len(t) < TRIALS for t in self.times.values()):
            return None
        return min(self.counts, key=lambda n: statistics.median(self.times[n]))

    def _next(self) -> int:
        best = self.best
        if best is None:  # still trying: take turns
            return self.counts[self.calls % len(self.counts)]
        if self.calls % RECHECK == 0 or self._load_changed(best):
            return next(n for n in self.counts if n != best)
        return best

    def _load_changed(self, best: int) -> bool:
        """Was the latest call, with the best count, much slower than that count's others?"""
        count, seconds = self.last
        return count == best and seconds > DRIFT * statistics.median(self.times[best][:-1])


def _controller():
    if ThreadpoolController is not None and ThreadChoice._controller is None:
        ThreadChoice._controller = ThreadpoolController()
    return ThreadChoice._controller
