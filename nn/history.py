"""What fit reports: the History of an epoch's logs, and the means that make each log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .pyplot import pyplot


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

    def plot(self, path: str | None = None, axes: Sequence | None = None,
             label: str | None = None) -> list:
        """Each metric per epoch in its own panel ("loss", then "accuracy"...): training as a
        solid line, validation ("val_...") dashed in the same colour.

        axes: matplotlib Axes to draw into, one per metric (to compare several models on
        the same panels, pass each one's ``label``); by default a new figure is made.
        path: if given, the figure is saved there (and closed if it was made here).
        Returns the Axes, one per metric. Needs matplotlib (imported only when called).
        """
        plt = pyplot("History.plot")
        metrics = [key for key in self.history if not key.startswith("val_")]
        own_figure = axes is None
        if own_figure:
            _, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8),
                                   squeeze=False)
            axes = list(axes[0])
        if len(axes) != len(metrics):
            raise ValueError(f"History.plot: got {len(axes)} axes for {len(metrics)} metrics "
                             f"({', '.join(metrics)})")
        for ax, key in zip(axes, metrics, strict=True):
            values = self.history[key]
            epochs = range(1, len(values) + 1)
            line, = ax.plot(epochs, values, label=label or "training")
            if f"val_{key}" in self.history:
                ax.plot(epochs, self.history[f"val_{key}"], linestyle="--",
                        color=line.get_color(),
                        label=f"{label} (validation)" if label else "validation")
            ax.set(title=key, xlabel="epoch")
            if "accuracy" in key:
                ax.set_ylim(0, 1.02)
            ax.legend(fontsize=8)
        if path is not None:
            figure = axes[0].figure
            figure.tight_layout()
            figure.savefig(path, dpi=110)
            if own_figure:
                plt.close(figure)
        return axes

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
