"""Metrics on plain arrays (no gradient needed): ``metric(y_true, y_pred) -> float``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .registry import lookup

Metric = Callable[[np.ndarray, np.ndarray], float]


def binary_accuracy(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> float:
    """How often ``y_pred > threshold``, cast to y_true's dtype, equals y_true exactly (Keras):
    a label of 0.8 matches neither 0 nor 1."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).reshape(y_pred.shape)
    return float(np.mean((y_pred > threshold).astype(y_true.dtype) == y_true))


def categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)))


def sparse_categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    labels = np.asarray(y_true).reshape(np.shape(y_pred)[:-1])
    return float(np.mean(labels == np.argmax(y_pred, axis=-1)))


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y_true).reshape(np.shape(y_pred)) - y_pred)))


def accuracy_for_shapes(y_true_shape: tuple, y_pred_shape: tuple) -> Metric:
    """The accuracy Keras picks for "accuracy" from the shapes of labels and predictions:
    binary if the prediction's last axis has size 1; sparse categorical if the labels have
    fewer axes, or a last axis of 1 against several classes; categorical otherwise."""
    true_last = y_true_shape[-1] if len(y_true_shape) else 0
    pred_last = y_pred_shape[-1] if len(y_pred_shape) else 0
    if pred_last == 1:
        return binary_accuracy
    if len(y_true_shape) < len(y_pred_shape) or (true_last == 1 and pred_last > 1):
        return sparse_categorical_accuracy
    return categorical_accuracy


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """What compile(metrics=["accuracy"]) computes: the variant that fits the shapes."""
    return accuracy_for_shapes(np.shape(y_true), np.shape(y_pred))(y_true, y_pred)


def unmasked(y_true, y_pred, mask) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions at the positions where ``mask`` (e.g. batch × timesteps) is True.

    A metric on these counts only unmasked steps, as a Keras metric given the output mask
    as its sample_weight. Cutting the same leading axes from both keeps the shapes that
    ``accuracy`` chooses by.
    """
    mask = np.asarray(mask, dtype=bool)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_pred.shape[:-1] != mask.shape or y_true.shape[:mask.ndim] != mask.shape:
        raise ValueError(f"metrics: the output mask has shape {mask.shape}, but y_true has shape "
                         f"{y_true.shape} and y_pred {y_pred.shape}; it must match their "
                         "leading axes (batch, timesteps)")
    return y_true[mask], y_pred[mask]


_BY_NAME: dict[str, Metric] = {
    "binary_accuracy": binary_accuracy, "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy, "mae": mean_absolute_error,
}


def get(metric: str | Metric) -> tuple[str, Metric]:
    """(display name, function). "accuracy" (or "acc") is ``accuracy``: as in Keras, the
    variant is chosen from the shapes of labels and predictions, not from the loss."""
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    if metric in ("accuracy", "acc"):
        return metric, accuracy
    return metric, lookup("metric", _BY_NAME, metric)
