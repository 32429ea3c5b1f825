"""Shape ops, on numpy arrays: they move, pick and join elements; each gradient puts them back.

Same form as ``ops.py``: an op returns ``(out, backward)``.
"""

from __future__ import annotations

import numpy as np

from .ops import Result
from .speedups import Scatter


def reshape(x: np.ndarray, shape: tuple[int, ...]) -> Result:
    source = x.shape  # (a backward keeps only what its formula reads, not all of x)
    return x.reshape(shape), lambda g: (g.reshape(source),)


def transpose(x: np.ndarray, axes: tuple[int, ...]) -> Result:
    inverse = tuple(np.argsort(axes))
    return x.transpose(axes), lambda g: (g.transpose(inverse),)


def getitem(x: np.ndarray, index: object) -> Result:
    """x[index]. Its gradient is g written into zeros of x's shape at ``index`` (added where an
    array index repeats an element): a ``Scatter``, which the engine adds up without making
    those zeros (speedups.py)."""
    shape = x.shape
    return x[index], lambda g: (Scatter(shape, index, g),)


def concatenate(*xs: np.ndarray, axis: int) -> Result:
    bounds = np.cumsum([0] + [x.shape[axis] for x in xs])
    lead = (slice(None),) * axis

    def backward(g: np.ndarray) -> tuple:
        return tuple(g[(*lead, slice(start, stop))]
                     for start, stop in zip(bounds[:-1], bounds[1:], strict=True))
    return np.concatenate(xs, axis=axis), backward


def stack(*xs: np.ndarray, axis: int) -> Result:
    lead = (slice(None),) * axis

    def backward(g: np.ndarray) -> tuple:
        return tuple(g[(*lead, i)] for i in range(len(xs)))
    return np.stack(xs, axis=axis), backward
