"""Dropout: in training, zero a random fraction of the inputs and scale up the rest."""

from __future__ import annotations

import numpy as np

import microtensor as mt
from microtensor.tensor import apply

from . import seeding
from .layer import Layer
from .symbolic import Shape


def dropout(x: np.ndarray, rate: float):
    """An op: x times a fresh random mask (kept with probability 1 - rate, scaled by
    1 / (1 - rate)). It draws inside its forward, so a compiled step draws anew each call."""
    keep = seeding.rng().random(x.shape) >= rate
    scale = keep.astype(x.dtype) / x.dtype.type(1.0 - rate)
    return x * scale, lambda g: (g * scale,)


def dropout_mask(shape: tuple[int, ...], rate: float, dtype: np.dtype, generator=None):
    """An op without inputs: a fresh mask of ``shape``, 0 with probability ``rate``, else
    1 / (1 - rate), from ``generator`` (or nn.set_seed's). Drawn in its forward, so a
    compiled step draws anew each call."""
    keep = (generator or seeding.rng()).random(shape) >= rate
    return keep.astype(dtype) / np.asarray(1.0 - rate, dtype=dtype), lambda g: ()


class Dropout(Layer):
    """Inverted dropout, as Keras and PyTorch: each value is zeroed with probability
    ``rate`` and the kept ones are multiplied by 1 / (1 - rate), so the expected
    output equals the input and nothing changes at inference.

    Active only in training mode: ``fit`` (and ``model.train()``) switch it on,
    ``predict``/``evaluate`` (and ``model.eval()``) off; ``training=`` in a call
    overrides the mode. A new model starts in training mode, as a torch module
    does, so that a PyTorch-style loop trains with dropout; a bare ``model(x)``
    (which Keras runs in inference mode) needs ``model.eval()`` or ``training=False``.
    The random mask comes from ``nn.set_seed``'s generator. It is a product with a
    constant array, so gradients are zero where dropped.
    Any shape in, the same shape out; no parameters.
    """

    last_axis = "features"

    def __init__(self, rate: float, name: str | None = None, **options):
        super().__init__(name, **options)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"{self.name} (Dropout): rate is the fraction of inputs to drop, "
                             f"in [0, 1), got {rate!r}")
        self.rate = float(rate)

    def forward(self, x: mt.Tensor, training: bool | None = None) -> mt.Tensor:
        """x (any shape) -> same shape."""
        active = self.training if training is None else training
        if not active or self.rate == 0.0:
            return x
        return apply(dropout, x, rate=self.rate)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def get_config(self) -> dict:
        return {"name": self.name, "rate": self.rate}

    def describe_output(self) -> str:
        return (f"in training a random {self.rate:.0%} of values zeroed, the rest × "
                f"1/(1 - {self.rate:g}); predict/evaluate: unchanged")
