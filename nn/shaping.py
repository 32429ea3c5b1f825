"""Layers without weights that reshape, repeat, join, mask or activate: Keras's
RepeatVector, Flatten, Concatenate, Masking and Activation."""

from __future__ import annotations

import numpy as np

import microtensor as mt

from . import activations
from .layer import Layer, checked_activation, positive_int
from .symbolic import Shape


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features): the same vector at every one of n steps
    (the bridge from an encoder's last h to a decoder that reads a sequence)."""

    expected_ndim = 2
    last_axis = "features"

    def __init__(self, n: int, name: str | None = None, **options):
        super().__init__(name, **options)
        self.n = positive_int(self, "n", n)

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        return mt.stack([x] * self.n, axis=1)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self) -> dict:
        return {"name": self.name, "n": self.n}


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1·d2·...)."""

    last_axis = "features"

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        return x.reshape(x.shape[0], -1)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else int(np.prod(rest, dtype=int)))

    def compute_mask(self, inputs, mask=None):
        return None


class Concatenate(Layer):
    """A list of tensors joined along ``axis`` (default the last); the other axes must match."""

    last_axis = "features"

    def __init__(self, axis: int = -1, name: str | None = None, **options):
        super().__init__(name, **options)
        self.axis = axis

    def check_input_shape(self, shape) -> None:
        if not isinstance(shape, list) or len(shape) < 2:
            raise ValueError(f"{self.name} (Concatenate): takes a list of at least two "
                             f"tensors, got {shape!r}")
        ranks = {len(s) for s in shape}
        axis = self.axis % max(ranks)
        others = {tuple(d for i, d in enumerate(s) if i != axis and i > 0) for s in shape}
        if len(ranks) != 1 or len(others) != 1:
            raise ValueError(f"{self.name} (Concatenate): shapes {shape} can't be joined on "
                             f"axis {self.axis}: all other axes must match")

    def forward(self, inputs: list[mt.Tensor]) -> mt.Tensor:
        return mt.concatenate(list(inputs), axis=self.axis)

    def compute_output_shape(self, input_shape: list[Shape]) -> Shape:
        axis = self.axis % len(input_shape[0])
        sizes = [s[axis] for s in input_shape]
        joined = None if None in sizes else sum(sizes)
        return tuple(joined if i == axis else d for i, d in enumerate(input_shape[0]))

    def compute_mask(self, inputs, mask=None):
        """Keras: a step is kept if any input keeps it; an input without a mask keeps every
        step, and then so does the result (no mask)."""
        masks = list(mask) if isinstance(mask, list | tuple) else []
        if not masks or any(m is None for m in masks):
            return None
        return np.logical_or.reduce([np.asarray(m, dtype=bool) for m in masks])

    def get_config(self) -> dict:
        return {"name": self.name, "axis": self.axis}


class Masking(Layer):
    """Marks time steps whose features all equal ``mask_value`` as padding: the next
    recurrent layers skip them, as after ``Embedding(mask_zero=True)``. Those steps are
    also zeroed in the output (Keras does the same)."""

    last_axis = "features"

    def __init__(self, mask_value: float = 0.0, name: str | None = None, **options):
        super().__init__(name, **options)
        self.mask_value = mask_value

    def _keep(self, x) -> np.ndarray:
        data = x.data if isinstance(x, mt.Tensor) else np.asarray(x)
        return np.any(data != self.mask_value, axis=-1)

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        return x * self._keep(x)[..., None].astype(x.dtype)

    def compute_mask(self, inputs, mask=None):
        return self._keep(inputs)

    def get_config(self) -> dict:
        return {"name": self.name, "mask_value": self.mask_value}


class Activation(Layer):
    """An activation as a layer: ``Activation("relu")`` is relu on every value."""

    last_axis = "features"

    def __init__(self, activation, name: str | None = None, **options):
        super().__init__(name, **options)
        self.activation = checked_activation(self, activation)

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        return self.activation(x)

    def get_config(self) -> dict:
        return {"name": self.name, "activation": activations.name_of(self.activation)}
