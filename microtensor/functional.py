"""The ops as functions (``mt.exp(x)``, ``mt.stack(ts)``), and functions composed from them
(softmax and friends), whose gradients come from the ops they use."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import ops, shape_ops
from .context import no_grad
from .errors import ShapeError
from .ops import reduced_axes
from .tensor import Tensor, TensorLike, apply, as_tensor, as_tensors
from .tensor import matmul as matmul  # noqa: PLC0414 - re-exported: mt.matmul

# -- the primitive ops, called as functions -------------------------------------------------


def exp(x: TensorLike) -> Tensor:
    return as_tensor(x).exp()


def log(x: TensorLike) -> Tensor:
    return as_tensor(x).log()


def sigmoid(x: TensorLike) -> Tensor:
    return as_tensor(x).sigmoid()


def tanh(x: TensorLike) -> Tensor:
    return as_tensor(x).tanh()


def relu(x: TensorLike) -> Tensor:
    return as_tensor(x).relu()


def abs(x: TensorLike) -> Tensor:  # noqa: A001
    return as_tensor(x).abs()


def sqrt(x: TensorLike) -> Tensor:
    return as_tensor(x).sqrt()


def clip(x: TensorLike, low: TensorLike | None = None,
         high: TensorLike | None = None) -> Tensor:
    return as_tensor(x).clip(low, high)


def maximum(a: TensorLike, b: TensorLike) -> Tensor:
    """Elementwise max; where the two are equal each gets half the gradient (as torch)."""
    return apply(ops.maximum, a, b)


def where(condition: np.ndarray | Tensor, a: TensorLike, b: TensorLike) -> Tensor:
    """``a`` where ``condition`` holds, else ``b`` (condition is a plain boolean array)."""
    if isinstance(condition, Tensor):
        condition = condition.numpy()
    # A copy: the caller changing the array after the forward pass must not change the gradient.
    condition = np.array(condition, dtype=bool)
    a, b = as_tensors("where", (a, b))
    try:
        np.broadcast_shapes(condition.shape, a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"where: condition {condition.shape}, a {a.shape} and b {b.shape} "
                         "can't be broadcast together") from None
    return apply(ops.where, a, b, condition=condition)


def _check_joinable(op: str, tensors: tuple[Tensor, ...], axis: int, same_shape: bool) -> int:
    """``axis`` as a non-negative number, once the shapes are known to fit together."""
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    first = tensors[0].shape
    rank = len(first) + same_shape  # stack adds an axis
    if not -rank <= axis < rank:
        raise ShapeError(f"{op}: axis {axis} is out of range for tensors of shape {first}")
    for t in tensors[1:]:
        if same_shape:
            bad = t.shape != first
        else:
            bad = len(t.shape) != len(first) or any(
                x != y for i, (x, y) in enumerate(zip(t.shape, first, strict=True))
                if i != axis % len(first))
        if bad:
            expected = "equal shapes" if same_shape else f"equal shapes except on axis {axis}"
            raise ShapeError(f"{op}: shapes {first} and {t.shape} differ; expected {expected}")
    return axis % rank


def concatenate(tensors: Sequence[Tensor], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """The tensors joined along ``axis`` (torch: ``dim``); other axes must match."""
    axis = axis if dim is None else dim
    tensors = tuple(as_tensor(t) for t in tensors)
    axis = _check_joinable("concatenate", tensors, axis, same_shape=False)
    return apply(shape_ops.concatenate, *tensors, axis=axis)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """torch's name for ``concatenate``."""
    return concatenate(tensors, axis=dim)


def stack(tensors: Sequence[Tensor], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """The tensors (all of one shape) stacked along a new axis ``axis`` (torch: ``dim``)."""
    axis = axis if dim is None else dim
    tensors = tuple(as_tensor(t) for t in tensors)
    axis = _check_joinable("stack", tensors, axis, same_shape=True)
    return apply(shape_ops.stack, *tensors, axis=axis)


# -- composed from the ops ------------------------------------------------------------------

def _max_of(x: Tensor, axes: tuple[int, ...]) -> Tensor:
    """The max along ``axes`` as a constant: subtracted before exp so nothing overflows.
    Its gradient contributions would cancel exactly, so it needs none (an op run without
    a graph, so that a compiled step computes it afresh too)."""
    with no_grad():
        return apply(finite_max, x, axes=axes)


def finite_max(x: np.ndarray, axes: tuple[int, ...]):
    """The max along ``axes`` (kept); an infinite max gives 0 instead (inf - inf would be
    NaN; torch gives -inf or inf there). Only ever run without a graph: no gradient."""
    shift = x.max(axis=axes, keepdims=True)
    return np.where(np.isfinite(shift), shift, 0).astype(x.dtype, copy=False), None


def logsumexp(x: TensorLike, axis: int | tuple[int, ...] = -1, keepdims: bool = False, *,
              dim: int | None = None, keepdim: bool | None = None) -> Tensor:
    """log(sum(exp(x))) along ``axis``, shifted by the max so exp cannot overflow.
    (torch: ``dim``, ``keepdim``.)"""
    x = as_tensor(x)
    axis = axis if dim is None else dim
    keepdims = keepdims if keepdim is None else keepdim
    axes = reduced_axes(axis, x.ndim, "logsumexp")
    shift = _max_of(x, axes)
    out = log(exp(x - shift).sum(axis=axes, keepdims=True)) + shift
    return out if keepdims else out.reshape(tuple(n for i, n in enumerate(out.shape)
                                                   if i not in axes))


def log_softmax(x: TensorLike, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """log(softmax(x)), numerically stable. Shape of ``x``. (torch: ``dim``.)"""
    x = as_tensor(x)
    return x - logsumexp(x, axis=axis if dim is None else dim, keepdims=True)


def softmax(x: TensorLike, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, numerically stable. Shape of ``x``. (torch: ``dim``.)"""
    axis = axis if dim is None else dim
    x = as_tensor(x)
    axes = reduced_axes(axis, x.ndim, "softmax")
    e = exp(x - _max_of(x, axes))
    return e / e.sum(axis=axes, keepdims=True)
