"""Metrics on plain arrays (no gradient needed): ``metric(y_true, y_pred) -> float``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .registry import lookup

Metric = Callable[[np.ndarray, np.ndarray], float]


def binary_accuracy(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> float:
    y_true = np.asarray(y_true).reshape(np.shape(y_pred))
    return float(np.mean((y_pred > threshold) == (y_true > 0.5)))


def categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)))


def sparse_categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    labels = np.asarray(y_true).reshape(np.shape(y_pred)[:-1])
    return float(np.mean(labels == np.argmax(y_pred, axis=-1)))


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y_true).reshape(np.shape(y_pred)) - y_pred)))


_ACCURACY_FOR_LOSS = {
    "binary_crossentropy": binary_accuracy,
    "categorical_crossentropy": categorical_accuracy,
    "sparse_categorical_crossentropy": sparse_categorical_accuracy,
}

_BY_NAME: dict[str, Metric] = {
    "binary_accuracy": binary_accuracy, "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy, "mae": mean_absolute_error,
}


def get(metric: str | Metric, loss_name: str) -> tuple[str, Metric]:
    """(display name, function). "accuracy" picks the variant that fits the loss, as Keras."""
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    if metric in ("accuracy", "acc"):
        return "accuracy", _ACCURACY_FOR_LOSS.get(loss_name, binary_accuracy)
    return metric, lookup("metric", _BY_NAME, metric)
