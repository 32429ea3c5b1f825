"""The running means that make each of fit's logs (the History itself is a callback)."""

from __future__ import annotations


class RunningMeans:
    """Means over batches, each value with its own weight (``Trainable._log_weights``); a mean
    whose weights add up to 0 is 0, as Keras's ``divide_no_nan``."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.weights: dict[str, float] = {}

    def add(self, values: dict[str, float], weights: dict[str, float]) -> None:
        for key, value in values.items():
            self.totals[key] = self.totals.get(key, 0.0) + value * weights[key]
            self.weights[key] = self.weights.get(key, 0.0) + weights[key]

    def result(self) -> dict[str, float]:
        return {key: total / self.weights[key] if self.weights[key] else 0.0
                for key, total in self.totals.items()}
