"""What fit reports: the History of an epoch's logs, and the means that make each log."""

from __future__ import annotations

from typing import Any


class History:
    """What ``fit`` returns: ``history`` maps "loss", metrics and "val_..." to per-epoch lists."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params: dict[str, Any] = {}

    def _record(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"


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
