"""Embedding: token indices -> learned vectors, by looking up rows of one weight matrix."""

from __future__ import annotations

import numpy as np

import microtensor as mt

from . import initializers
from .layer import Layer, counted, flag, positive_int
from .seeding import rng
from .symbolic import Shape


def uniform(shape: tuple[int, ...], limit: float = 0.05) -> np.ndarray:
    """Keras's "uniform" embedding initializer: uniform on [-0.05, 0.05]."""
    return rng().uniform(-limit, limit, size=shape)


class Embedding(Layer):
    """Turns integer indices into dense vectors: output[b, t] = embeddings[x[b, t]].

    Input (batch, timesteps) of integers in [0, input_dim); output
    (batch, timesteps, output_dim). The weight ``embeddings`` is
    (input_dim, output_dim), so the layer has input_dim × output_dim parameters.
    The lookup is microtensor's getitem, whose gradient adds into each looked-up
    row (a token that appears twice gets both gradients).

    ``mask_zero=True`` makes index 0 padding, as in Keras: ``compute_mask(x)``
    is ``x != 0``, and Model/Sequential hand it to the next layers, so a
    recurrent layer skips the padded steps. Index 0 is then reserved, so
    ``input_dim`` must be the vocabulary size + 1.
    """

    last_axis = "output_dim"
    input_has_features = False  # (batch, timesteps) of indices: any sequence length fits

    def __init__(self, input_dim: int, output_dim: int, mask_zero: bool = False,
                 embeddings_initializer="uniform", name: str | None = None,
                 input_length: int | None = None, **options):
        """``input_length`` (Keras 2) is accepted and changes nothing: any length fits."""
        super().__init__(name, **options)
        self.input_length = input_length
        self.input_dim = positive_int(self, "input_dim", input_dim)
        self.output_dim = positive_int(self, "output_dim", output_dim)
        self.mask_zero = flag(self, "mask_zero", mask_zero)
        self.embeddings_initializer = (uniform if embeddings_initializer == "uniform"
                                       else initializers.get(embeddings_initializer))

    def check_input_shape(self, shape: Shape) -> None:
        if len(shape) < 1:
            raise ValueError(f"{self.name} (Embedding): expected indices of shape "
                             f"(batch, timesteps), got a scalar")

    def build(self, input_shape: Shape) -> None:
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer)

    def convert_input(self, value) -> mt.Tensor:
        """Indices as an integer Tensor. Whole-number floats (``fit`` passes float arrays)
        are accepted, as Keras casts them; anything else, or an index out of range, raises."""
        data = value.data if isinstance(value, mt.Tensor) else np.asarray(value)
        if data.dtype.kind not in "iu":
            if data.dtype.kind != "f" or not np.all(_is_whole(data)):
                raise TypeError(f"{self.name} (Embedding): expects integer token indices, got "
                                f"{data.dtype} values such as {_first(data, ~_is_whole(data))}")
            data = data.astype(np.int64)
        outside = (data < 0) | (data >= self.input_dim)
        if outside.any():
            raise ValueError(f"{self.name} (Embedding): index {_first(data, outside)} is out of "
                             f"range for input_dim={self.input_dim} (valid indices: 0 to "
                             f"{self.input_dim - 1})")
        if isinstance(value, mt.Tensor) and value.dtype == data.dtype:
            return value
        return mt.Tensor(data, dtype=data.dtype)

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        """x (batch, timesteps) integers -> (batch, timesteps, output_dim)."""
        return self.embeddings[x.data]

    def compute_mask(self, inputs, mask=None):
        """(batch, timesteps): True where the index is not 0 (only with mask_zero=True)."""
        if not self.mask_zero:
            return None
        return self.convert_input(inputs).data != 0

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape, self.output_dim)

    def get_config(self) -> dict:
        return {"name": self.name, "input_dim": self.input_dim, "output_dim": self.output_dim,
                "mask_zero": self.mask_zero}

    def explain_params(self, input_shape: Shape) -> str:
        return (f"{counted(self.input_dim, 'token')} × {counted(self.output_dim, 'dimension')} "
                f"= {self.input_dim * self.output_dim:,}")

    def describe_output(self) -> str | None:
        lookup = "one learned vector per token"
        if self.mask_zero:
            lookup += "; mask_zero=True: index 0 is padding, later layers skip those steps"
        return lookup


def _is_whole(data: np.ndarray) -> np.ndarray:
    return np.isfinite(data) & (data == np.round(data)) if data.dtype.kind == "f" else (
        np.zeros(data.shape, dtype=bool))


def _first(data: np.ndarray, where: np.ndarray):
    """The first value of ``data`` where ``where`` holds, as a plain number for messages."""
    return data[where].ravel()[0].item() if where.any() else data.ravel()[0].item()
