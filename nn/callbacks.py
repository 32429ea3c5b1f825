"""Keras's callbacks (``keras.callbacks``): code that ``fit`` calls at the start and end of
training, of each epoch and of each batch.

A callback sees the model as ``self.model``; setting ``self.model.stop_training = True``
ends ``fit`` after the current batch. ``logs`` hold the running means of the epoch so far
("loss", metrics), and at the end of an epoch also the "val_..." values.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from typing import Any

Logs = dict[str, float]


class Callback:
    """Base class: override the hooks you need; each gets ``logs`` (a dict, maybe empty)."""

    def __init__(self) -> None:
        self.model = None
        self.params: dict[str, Any] = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: Logs | None = None) -> None: ...
    def on_train_end(self, logs: Logs | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None: ...

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self.on_batch_end(batch, logs)  # Keras 2's name, still called by Keras 3

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None: ...


class CallbackList:
    """The callbacks of one ``fit``, called in order (the History last, as in Keras)."""

    def __init__(self, callbacks, model, params: dict[str, Any]) -> None:
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"fit: callbacks must be nn.callbacks.Callback objects, got "
                                f"{type(callback).__name__}")
        self.history = next((c for c in self.callbacks if isinstance(c, History)), None)
        if self.history is None:
            self.history = History()
            self.callbacks.append(self.history)
        for callback in self.callbacks:
            callback.set_model(model)
            callback.set_params(params)

    def call(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(*args)


class History(Callback):
    """What ``fit`` returns: ``history`` maps "loss", metrics and "val_..." to per-epoch lists."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.epoch = []  # a History kept across fits starts over, as Keras's

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self

    def __repr__(self) -> str:
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"


def _minimizes(mode: str, monitor: str) -> bool:
    """True if smaller is better: a loss or error; an accuracy goes up (Keras's "auto")."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        name = monitor.removeprefix("val_")
        if name == "loss" or name.endswith(("loss", "error", "mae", "mse")):
            mode = "min"
        elif name.endswith(("acc", "accuracy")):
            mode = "max"
        else:
            raise ValueError(f"can't tell whether {monitor!r} should go up or down; "
                             "pass mode='min' or mode='max'")
    return mode == "min"


class MonitorCallback(Callback):
    """Watches ``monitor`` in the epoch logs; an improvement beats the best by ``min_delta``."""

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", min_delta: float = 0.0,
                 baseline: float | None = None) -> None:
        super().__init__()
        self.monitor, self.min_delta = monitor, abs(min_delta)
        self.minimize = _minimizes(mode, monitor)
        self.best = baseline

    def improves(self, value: float, reference: float | None) -> bool:
        """Better than ``reference`` by more than ``min_delta`` (None: anything is better)."""
        if reference is None:
            return True
        if self.minimize:
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def monitored(self, logs: Logs | None) -> float | None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"{type(self).__name__}: {self.monitor!r} is not in the logs; "
                          f"there are {', '.join(logs or {})}", stacklevel=3)
        return value


class EarlyStopping(MonitorCallback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs (Keras's rules);
    ``restore_best_weights=True`` puts back the weights of the best epoch at the end."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience, self.verbose, self.baseline = patience, verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best, self.best_weights = None, None

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        current = self.monitored(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self.improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self.improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(MonitorCallback):
    """Save the model (``model.save``, our .npz) after each epoch, or only when ``monitor``
    improves with ``save_best_only=True``. ``filepath`` may hold ``{epoch:02d}`` and log
    names such as ``{val_loss:.2f}``. Keras's ``.keras``/``.h5`` names are refused at once:
    microtensor can't write those formats."""

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq: str = "epoch",
                 initial_value_threshold: float | None = None) -> None:
        from .saving import check_path

        super().__init__(monitor, mode, baseline=initial_value_threshold)
        check_path(filepath, "ModelCheckpoint")
        if save_freq != "epoch":
            raise ValueError(f"ModelCheckpoint: only save_freq='epoch' is supported, got "
                             f"{save_freq!r}")
        self.filepath, self.verbose = os.fspath(filepath), verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = self.monitored(logs)
            if current is None or not self.improves(current, self.best):
                if self.verbose > 0 and current is not None:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from "
                          f"{self.best:.5f}")
                return
            if self.verbose > 0:
                previous = "inf" if self.best is None else f"{self.best:.5f}"
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {previous} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        (self.model.save_weights if self.save_weights_only else self.model.save)(path)


class TerminateOnNaN(Callback):
    """Stop training when a batch's loss is NaN or infinite. (``fit`` also refuses such a
    step, keeping the weights from before it; with this callback it stops quietly.)"""

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            if self.raise_error:
                raise RuntimeError(f"TerminateOnNaN: batch {batch}: invalid loss {loss}")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
             "on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")

    def __init__(self, **hooks: Callable) -> None:
        super().__init__()
        for name, function in hooks.items():
            if name not in self.HOOKS:
                raise TypeError(f"LambdaCallback: unknown hook {name!r}; known: "
                                f"{', '.join(self.HOOKS)}")
            if name == "on_batch_begin":
                name = "on_train_batch_begin"
            setattr(self, name, function)


__all__ = ["Callback", "EarlyStopping", "History", "LambdaCallback", "ModelCheckpoint",
           "TerminateOnNaN"]
