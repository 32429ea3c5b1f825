"""TimeDistributed: one layer applied to every time step, with the same weights."""

from __future__ import annotations

import microtensor as mt

from .layer import Layer
from .symbolic import Shape


class TimeDistributed(Layer):
    """``TimeDistributed(Dense(10))`` on (batch, timesteps, features) runs the Dense on each
    step: (batch, timesteps, 10). The steps are folded into the batch axis, the layer runs
    once on (batch·timesteps, features), and the result is unfolded. Weights: the layer's.
    """

    def __init__(self, layer: Layer, name: str | None = None, **options):
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed: wraps a layer, got {type(layer).__name__}")
        super().__init__(name, **options)
        self.layer = layer

    def _children(self) -> list[Layer]:
        return [self.layer]

    def check_input_shape(self, shape: Shape) -> None:
        if len(shape) < 3:
            raise ValueError(f"{self.name} (TimeDistributed): expects (batch, timesteps, ...), "
                             f"got shape {tuple(shape)}")

    def build(self, input_shape: Shape) -> None:
        self.layer._ensure_built((None, *input_shape[2:]))

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        batch, steps = x.shape[:2]
        folded = self.layer(x.reshape(batch * steps, *x.shape[2:]))
        return folded.reshape(batch, steps, *folded.shape[1:])

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        inner = self.layer.compute_output_shape((None, *input_shape[2:]))
        return (*input_shape[:2], *inner[1:])

    def get_config(self) -> dict:
        return {"name": self.name, "layer": {"class": type(self.layer).__name__,
                                             "config": self.layer.get_config()}}

    @classmethod
    def from_config(cls, config: dict) -> TimeDistributed:
        inner = Layer.registry[config["layer"]["class"]](**config["layer"]["config"])
        return cls(inner, name=config["name"])

    def explain_params(self, input_shape: Shape) -> str | None:
        return self.layer.explain_params((None, *input_shape[2:]))
