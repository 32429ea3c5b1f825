"""Dense: y = activation(x @ kernel + bias), on the last axis of x."""

from __future__ import annotations

import microtensor as mt

from . import activations
from .layer import Layer, checked_activation, checked_initializer, counted, flag, positive_int
from .symbolic import Shape


class Dense(Layer):
    """Fully connected layer. kernel (in, units), bias (units,).

    Input (batch, ..., in) -> output (batch, ..., units): on a 3-D input the
    same kernel acts on every time step, as in Keras.
    """

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 name: str | None = None, **options):
        super().__init__(name, **options)
        self.units = positive_int(self, "units", units)
        self.activation = checked_activation(self, activation)
        self.use_bias = flag(self, "use_bias", use_bias)
        self.kernel_initializer = checked_initializer(self, kernel_initializer)
        self.bias_initializer = checked_initializer(self, bias_initializer)

    def check_input_shape(self, shape: Shape) -> None:
        if len(shape) < 2:
            raise ValueError(f"{self.name} (Dense): expected input of shape "
                             f"(batch, ..., features), got shape {tuple(shape)}")
        super().check_input_shape(shape)

    def build(self, input_shape: Shape) -> None:
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units),
                                      self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer)

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        """x (batch, ..., in) -> (batch, ..., units)."""
        product = x @ self.kernel
        z = product + self.bias if self.use_bias else product
        output = self.activation(z)
        # Names for model.record and the pictures (a linear output is z itself).
        product.name, z.name, output.name = "x @ kernel", "z", "output"
        return output

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict:
        return {"name": self.name, "units": self.units, "use_bias": self.use_bias,
                "activation": activations.name_of(self.activation)}

    def explain_params(self, input_shape: Shape) -> str:
        inputs, units = input_shape[-1], self.units
        weights = f"{inputs} × {units} {'weight' if inputs * units == 1 else 'weights'}"
        if not self.use_bias:
            return f"{weights} = {inputs * units:,}"
        return f"{weights} + {counted(units, 'bias', 'biases')} = {inputs * units + units:,}"
