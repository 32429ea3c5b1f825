"""Making tensors with torch's functions: ``mt.tensor``, ``mt.zeros``, ``mt.ones``, ``mt.randn``,
and ``mt.manual_seed`` for the one random generator that everything random draws from."""

from __future__ import annotations

import numpy as np

from .context import process
from .tensor import Tensor

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Make ``mt.randn`` reproducible (and, through ``nn``, weights, shuffling and dropout:
    ``nn.set_seed`` is the same call)."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The generator that ``manual_seed`` last seeded."""
    return _generator


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A Tensor whose dtype follows the data, as ``torch.tensor``: whole numbers give int64,
    booleans bool, anything else the default float type."""
    if dtype is None:
        values = np.asarray(data.numpy() if isinstance(data, Tensor) else data)
        dtype = {"i": np.int64, "u": np.int64, "b": np.bool_}.get(values.dtype.kind)
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _shape(size: tuple) -> tuple[int, ...]:
    """``zeros(2, 3)`` and ``zeros((2, 3))`` both mean the shape (2, 3)."""
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], tuple | list) else size


def zeros(*size: int, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(size)), requires_grad=requires_grad, dtype=dtype)


def ones(*size: int, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(size)), requires_grad=requires_grad, dtype=dtype)


def randn(*size: int, dtype=None, requires_grad: bool = False) -> Tensor:
    """Standard normal values (mean 0, variance 1) from the generator ``manual_seed`` sets."""
    values = _generator.standard_normal(_shape(size))
    return Tensor(values, requires_grad=requires_grad, dtype=dtype or process.default_dtype)
