"""Functions composed from primitives: their gradients come from the ops they use."""

from __future__ import annotations

import numpy as np

from . import ops
from .tensor import Tensor


def _max_of(x: Tensor, axis: int | tuple[int, ...]) -> Tensor:
    """The max along ``axis`` as a constant: subtracted before exp so nothing overflows.
    Its gradient contributions would cancel exactly, so it needs none. An infinite max
    shifts by 0 instead (inf - inf would be NaN; torch gives -inf or inf there)."""
    shift = x.data.max(axis=axis, keepdims=True)
    return Tensor(np.where(np.isfinite(shift), shift, 0), dtype=x.dtype)


def logsumexp(x: Tensor, axis: int | tuple[int, ...] = -1, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) along ``axis``, shifted by the max so exp cannot overflow."""
    axes = ops.reduced_axes(axis, x.ndim, "logsumexp")
    shift = _max_of(x, axes)
    out = ops.log(ops.exp(x - shift).sum(axis=axes, keepdims=True)) + shift
    return out if keepdims else out.reshape(tuple(n for i, n in enumerate(out.shape)
                                                   if i not in axes))


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)), numerically stable. Shape of ``x``."""
    return x - logsumexp(x, axis=axis, keepdims=True)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, numerically stable. Shape of ``x``."""
    e = ops.exp(x - _max_of(x, axis))
    return e / e.sum(axis=axis, keepdims=True)
