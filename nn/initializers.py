"""Keras's weight initializers. Each takes a shape and returns a numpy array."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .registry import lookup
from .seeding import rng

Initializer = Callable[[tuple[int, ...]], np.ndarray]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) as Keras computes them: kernel (in, out) -> (in, out)."""
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(shape: tuple[int, ...]) -> np.ndarray:
    """Uniform on [-limit, limit], limit = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng().uniform(-limit, limit, size=shape)


def orthogonal(shape: tuple[int, ...], gain: float = 1.0) -> np.ndarray:
    """A (semi-)orthogonal matrix: for (u, 4u), the rows are orthonormal (W @ W.T = I)."""
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    normal = rng().standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(normal)
    q *= np.sign(np.diag(r))  # makes the decomposition unique, as Keras does
    if rows < cols:
        q = q.T
    return gain * q.reshape(shape)


def zeros(shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape)


def ones(shape: tuple[int, ...]) -> np.ndarray:
    return np.ones(shape)


_BY_NAME: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform, "orthogonal": orthogonal, "zeros": zeros, "ones": ones,
}


def get(initializer: str | Initializer) -> Initializer:
    return lookup("initializer", _BY_NAME, initializer)
