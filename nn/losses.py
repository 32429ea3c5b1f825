"""Losses with Keras's semantics: ``loss(y_true, y_pred)`` -> scalar mean over the batch.

All are compositions of microtensor ops, so their gradients come for free.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import microtensor as mt
from microtensor.speedups import is_freed
from microtensor.tensor import apply

from .registry import lookup, name_in

EPSILON = 1e-7  # Keras's backend epsilon: probabilities are clipped to [EPSILON, 1 - EPSILON]

Loss = Callable[..., mt.Tensor]


KERAS_ORDER = ("Keras's order is loss(y_true, y_pred): the labels first, then the model's "
               "output (PyTorch's losses take them the other way round)")


def _check_order(name: str, y_true, y_pred) -> None:
    """Arguments in PyTorch's order, loss(prediction, labels), are a mistake Keras readers make
    in a hand-written loop; the loss would silently compare the labels against the output."""
    if _requires_grad(y_true) and not _requires_grad(y_pred):
        raise ValueError(f"{name}: y_true requires grad and y_pred does not, so the arguments "
                         f"look swapped. {KERAS_ORDER}.")


def _requires_grad(value) -> bool:
    return isinstance(value, mt.Tensor) and value.requires_grad


def _labels_in(name: str, y_true: mt.Tensor, low: float, high: float, what: str,
               mask=None) -> None:
    """y_true must hold ``what``, values in [low, high], at the positions the ``mask`` keeps
    (padding may hold anything); other values are probably y_pred, passed first."""
    values = y_true.data
    keep = None if mask is None else np.asarray(mask.data if isinstance(mask, mt.Tensor)
                                                else mask, dtype=bool)
    if keep is not None and keep.shape == values.shape[:keep.ndim]:
        values = values[keep]
    if values.size and not (values.min() >= low and values.max() <= high):
        raise ValueError(f"{name}: y_true must hold {what}, got values from {values.min():.4g} "
                         f"to {values.max():.4g}. {KERAS_ORDER}.")


def _target(y_true, like: mt.Tensor) -> mt.Tensor:
    """The labels as a tensor of the predictions' dtype (a tensor of that dtype as it is)."""
    if isinstance(y_true, mt.Tensor) and y_true.dtype == like.dtype:
        return y_true
    data = y_true.data if isinstance(y_true, mt.Tensor) else np.asarray(y_true)
    return mt.Tensor(data, dtype=like.dtype)


def _check_same_shape(name: str, y_true: mt.Tensor, y_pred: mt.Tensor) -> mt.Tensor:
    if y_true.shape == y_pred.shape:
        return y_true
    # Labels (batch,) against outputs (batch, 1), or the other way round: Keras accepts both.
    if (y_true.shape + (1,) == y_pred.shape) or (y_true.shape == y_pred.shape + (1,)):
        return y_true.reshape(*y_pred.shape)
    raise ValueError(f"{name}: y_true has shape {y_true.shape} but y_pred has shape "
                     f"{y_pred.shape}; they must match")


def _mean(per_position: mt.Tensor, mask=None, sample_weight=None) -> mt.Tensor:
    """The mean over samples (and time steps); with a ``mask`` of the same shape only the
    positions where it is True count, as Keras does for masked (padded) sequences.

    ``sample_weight`` (batch,) or (batch, timesteps) weighs each position as Keras does:
    sum(weight · loss) / number of positions, not divided by the weights' sum.
    """
    if sample_weight is not None:
        return _weighted_mean(per_position, mask, sample_weight)
    if mask is None:
        return per_position.mean()
    mt.python_choice("the loss's mask (which positions count) comes from the data")
    weights = np.asarray(mask.data if isinstance(mask, mt.Tensor) else mask,
                         dtype=per_position.dtype)
    if weights.shape != per_position.shape:
        raise ValueError(f"loss: mask has shape {weights.shape} but the loss has one value per "
                         f"position of shape {per_position.shape}")
    return (per_position * weights).sum() / max(float(weights.sum()), 1.0)


def _weighted_mean(per_position: mt.Tensor, mask, sample_weight) -> mt.Tensor:
    weights = np.asarray(sample_weight, dtype=per_position.dtype)
    weights = weights.reshape(weights.shape + (1,) * (per_position.ndim - weights.ndim))
    weights = np.broadcast_to(weights, per_position.shape)
    if mask is not None:  # Keras scales the mask so that masked means stay means
        keep = np.asarray(mask.data if isinstance(mask, mt.Tensor) else mask,
                          dtype=per_position.dtype)
        weights = weights * keep * (keep.size / max(float(keep.sum()), 1.0))
    return (per_position * weights).sum() / per_position.dtype.type(per_position.size)


def binary_crossentropy(y_true, y_pred: mt.Tensor, from_logits: bool = False,
                        mask=None, sample_weight=None) -> mt.Tensor:
    """-(y log p + (1 - y) log(1 - p)), mean over the last axis, then over the batch
    (and over unmasked time steps only, given a ``mask`` (batch, timesteps)).

    Probabilities are clipped to [1e-7, 1 - 1e-7] (a sure wrong answer costs
    16.118, not infinity); with ``from_logits=True`` it is computed exactly and
    stably as max(x, 0) - x·y + log(1 + exp(-|x|)).

    Given the output of a sigmoid whose input is still in the graph, the loss
    is computed from that input (the logits), as Keras's TensorFlow backend
    does: a saturated output (exactly 1.0 in float32) still has a gradient,
    sigmoid(x) - y, where the clipped probability would give none.
    """
    _check_order("binary_crossentropy", y_true, y_pred)
    if not from_logits:
        logits = sigmoid_input(y_pred)
        if logits is not None:
            y_pred, from_logits = logits, True
    with mt.scope(name="loss"):
        y = _check_same_shape("binary_crossentropy", _target(y_true, y_pred), y_pred)
        _labels_in("binary_crossentropy", y, 0.0, 1.0, "labels in [0, 1] (0/1 or probabilities)",
                   mask)
        if from_logits:
            x = y_pred
            abs_x = apply(absolute, x)
            per_element = mt.relu(x) - x * y + mt.log(1 + mt.exp(-abs_x))
        else:
            p = mt.clip(y_pred, EPSILON, 1 - EPSILON)
            per_element = -(y * mt.log(p) + (1 - y) * mt.log(1 - p))
        return _mean(per_element.mean(axis=-1), mask, sample_weight)


def absolute(x: np.ndarray):
    """An op: |x|, whose gradient picks -x at x = 0, so that binary crossentropy's gradient
    there is sigmoid(0) - y = 0.5 - y (max(x, -x) would split the tie and make it -y)."""
    positive = x > 0
    return np.where(positive, x, -x), lambda g: (np.where(positive, g, -g),)


def sigmoid_input(y_pred) -> mt.Tensor | None:
    """The tensor ``y_pred = sigmoid(x)`` was made from, if the graph recorded it (with its
    value), else None."""
    if not isinstance(y_pred, mt.Tensor) or y_pred.op != "sigmoid" or len(y_pred.parents) != 1:
        return None
    logits = y_pred.parents[0]
    return None if is_freed(logits.data) else logits


def categorical_crossentropy(y_true, y_pred: mt.Tensor, from_logits: bool = False,
                             axis: int = -1, mask=None, sample_weight=None) -> mt.Tensor:
    """-sum(y · log p) over the class axis, mean over the batch. y_true is one-hot.

    Probabilities are renormalised to sum to 1, then clipped, as Keras does.
    """
    _check_order("categorical_crossentropy", y_true, y_pred)
    with mt.scope(name="loss"):
        y = _check_same_shape("categorical_crossentropy", _target(y_true, y_pred), y_pred)
        _labels_in("categorical_crossentropy", y, 0.0, 1.0,
                   "one-hot labels or class probabilities in [0, 1]", mask)
        if from_logits:
            log_p = mt.log_softmax(y_pred, axis=axis)
        else:
            p = y_pred / y_pred.sum(axis=axis, keepdims=True)
            log_p = mt.log(mt.clip(p, EPSILON, 1 - EPSILON))
        return _mean(-(y * log_p).sum(axis=axis), mask, sample_weight)


def sparse_categorical_crossentropy(y_true, y_pred: mt.Tensor, from_logits: bool = False,
                                    axis: int = -1, mask=None,
                                    sample_weight=None) -> mt.Tensor:
    """Categorical crossentropy with integer class labels (batch,) or (batch, 1)."""
    _check_order("sparse_categorical_crossentropy", y_true, y_pred)
    labels = np.asarray(y_true.data if isinstance(y_true, mt.Tensor) else y_true)
    classes = y_pred.shape[axis]
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.shape != y_pred.shape[:-1] or axis not in (-1, y_pred.ndim - 1):
        raise ValueError(f"sparse_categorical_crossentropy: labels of shape {labels.shape} don't "
                         f"fit predictions of shape {y_pred.shape}. {KERAS_ORDER}.")
    if labels.size and (labels.min() < 0 or labels.max() >= classes
                        or not np.all(labels == np.round(labels))):
        raise ValueError(f"sparse_categorical_crossentropy: labels must be integers in "
                         f"[0, {classes}), got values from {labels.min()} to {labels.max()}. "
                         f"{KERAS_ORDER}.")
    # As ops on the labels' tensor, so that a compiled step makes them from each batch's labels.
    labels = _target(y_true, y_pred).reshape(y_pred.shape[:-1])
    one_hot = apply(one_hot_rows, labels, classes=classes)
    return categorical_crossentropy(one_hot, y_pred, from_logits=from_logits, mask=mask,
                                    sample_weight=sample_weight)


def one_hot_rows(labels: np.ndarray, classes: int):
    """An op: row ``label`` of the identity for each label, in the labels' float dtype. The
    labels are data: their gradient is zero."""
    rows = np.eye(classes, dtype=labels.dtype)[labels.astype(int)]
    return rows, lambda g: (np.zeros(labels.shape, labels.dtype),)


def mean_squared_error(y_true, y_pred: mt.Tensor, mask=None, sample_weight=None) -> mt.Tensor:
    """mean((y - p)^2) over the last axis, then over the batch."""
    _check_order("mse", y_true, y_pred)
    with mt.scope(name="loss"):
        y = _check_same_shape("mse", _target(y_true, y_pred), y_pred)
        return _mean(((y_pred - y) ** 2).mean(axis=-1), mask, sample_weight)


mse = mean_squared_error

class LossFunction:
    """Keras's loss classes: ``BinaryCrossentropy(from_logits=True)`` is the function with
    that option set; call it as the function, ``loss(y_true, y_pred)``."""

    function: Loss

    def __init__(self, from_logits: bool = False, **options) -> None:
        self.options = {"from_logits": from_logits, **options}

    def __call__(self, y_true, y_pred: mt.Tensor, **call_options) -> mt.Tensor:
        return type(self).function(y_true, y_pred, **self.options, **call_options)


class BinaryCrossentropy(LossFunction):
    function = staticmethod(binary_crossentropy)


class CategoricalCrossentropy(LossFunction):
    """Takes ``axis=`` too (the class axis, default the last)."""

    function = staticmethod(categorical_crossentropy)


class SparseCategoricalCrossentropy(LossFunction):
    function = staticmethod(sparse_categorical_crossentropy)


class MeanSquaredError(LossFunction):
    function = staticmethod(mean_squared_error)

    def __init__(self) -> None:
        self.options = {}


_BY_NAME: dict[str, Loss] = {
    "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "mse": mean_squared_error, "mean_squared_error": mean_squared_error,
}


def get(loss: str | Loss) -> Loss:
    return lookup("loss", _BY_NAME, loss)


def of_model(model, loss: str | Loss | None, caller: str) -> Loss:
    """``loss`` (a function or name) if given, else the loss ``model`` was compiled with."""
    found = get(loss) if loss is not None else getattr(model, "loss", None)
    if found is None:
        raise ValueError(f"{caller} needs a loss: {model.name} is not compiled; pass loss= "
                         "(a loss function or a name such as 'binary_crossentropy')")
    return found


def name_of(loss: Loss) -> str:
    return name_in(_BY_NAME, loss)
