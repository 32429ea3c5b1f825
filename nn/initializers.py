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


def glorot_normal(shape: tuple[int, ...]) -> np.ndarray:
    """Truncated normal (within 2 standard deviations), stddev = sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    return _truncated_normal(shape, np.sqrt(2.0 / (fan_in + fan_out)))


def he_normal(shape: tuple[int, ...]) -> np.ndarray:
    """Truncated normal (within 2 standard deviations), stddev = sqrt(2 / fan_in)."""
    return _truncated_normal(shape, np.sqrt(2.0 / _fans(shape)[0]))


def _truncated_normal(shape: tuple[int, ...], stddev: float) -> np.ndarray:
    """Normal values, redrawn until within two standard deviations (Keras's truncation,
    with its correction: the stddev is divided by 0.8796, the truncated normal's own)."""
    scale = stddev / 0.87962566103423978
    values = rng().standard_normal(shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = rng().standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2
    return values * scale


# -- Keras's initializer classes: configured versions of the functions above ---------------

class KerasInitializer:
    """An initializer object: ``init(shape)`` -> array, as the functions."""

    def __call__(self, shape: tuple[int, ...], dtype=None) -> np.ndarray:
        values = self.sample(tuple(shape))
        return values if dtype is None else values.astype(dtype)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError


class Constant(KerasInitializer):
    """Every value ``value``."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.full(shape, self.value, dtype=np.float64)


class Zeros(Constant):
    def __init__(self) -> None:
        super().__init__(0.0)


class Ones(Constant):
    def __init__(self) -> None:
        super().__init__(1.0)


class RandomUniform(KerasInitializer):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed=None) -> None:
        self.minval, self.maxval = minval, maxval

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return rng().uniform(self.minval, self.maxval, size=shape)


class RandomNormal(KerasInitializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed=None) -> None:
        self.mean, self.stddev = mean, stddev

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return rng().normal(self.mean, self.stddev, size=shape)


class _Named(KerasInitializer):
    """A class form of one of the functions above (``GlorotUniform()``)."""

    function: Initializer

    def __init__(self, seed=None) -> None:
        pass  # seeds come from nn.set_seed

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return type(self).function(shape)


class GlorotUniform(_Named):
    function = staticmethod(glorot_uniform)


class GlorotNormal(_Named):
    function = staticmethod(glorot_normal)


class HeNormal(_Named):
    function = staticmethod(he_normal)


class Orthogonal(KerasInitializer):
    def __init__(self, gain: float = 1.0, seed=None) -> None:
        self.gain = gain

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return orthogonal(shape, self.gain)


_BY_NAME: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform, "orthogonal": orthogonal, "zeros": zeros, "ones": ones,
    "glorot_normal": glorot_normal, "he_normal": he_normal,
}


def get(initializer: str | Initializer) -> Initializer:
    return lookup("initializer", _BY_NAME, initializer)
