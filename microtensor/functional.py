"""Functions composed from primitives: their gradients come from the ops they use."""

from __future__ import annotations

from . import ops
from .tensor import Tensor


def _max_of(x: Tensor, axis: int) -> Tensor:
    """The max along ``axis`` as a constant: subtracted before exp so nothing overflows.
    Its gradient contributions would cancel exactly, so it needs none."""
    return Tensor(x.data.max(axis=axis, keepdims=True), dtype=x.dtype)


def logsumexp(x: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) along ``axis``, shifted by the max so exp cannot overflow."""
    shift = _max_of(x, axis)
    out = ops.log(ops.exp(x - shift).sum(axis=axis, keepdims=True)) + shift
    return out if keepdims else out.reshape(tuple(n for i, n in enumerate(out.shape)
                                                   if i != axis % x.ndim))


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)), numerically stable. Shape of ``x``."""
    return x - logsumexp(x, axis=axis, keepdims=True)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, numerically stable. Shape of ``x``."""
    e = ops.exp(x - _max_of(x, axis))
    return e / e.sum(axis=axis, keepdims=True)
