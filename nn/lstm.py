"""LSTM, unrolled over time from microtensor primitives: every gate of every step is a node.

Keras's semantics and weight layout: kernel (features, 4·units),
recurrent_kernel (units, 4·units), bias (4·units,), gates in the order
i (input), f (forget), c (candidate), o (output). The time loop is in
``recurrent.py``; this file is the cell.
"""

from __future__ import annotations

import microtensor as mt

from .layer import counted, flag
from .recurrent import GatedRecurrent
from .symbolic import Shape


class LSTM(GatedRecurrent):
    """Long short-term memory layer.

    Input (batch, timesteps, features). Output (batch, timesteps, units) with
    ``return_sequences=True``, else (batch, units): the last step's h. With
    ``return_state=True`` the call returns ``[output, h, c]``;
    ``initial_state=[h0, c0]`` starts from given states.

    One step, from h and c of the previous step (zeros at t = 1)::

        z = x_t @ kernel + h @ recurrent_kernel + bias   # (batch, 4·units)
        i = sigmoid(z_i)          # input gate: how much of the candidate to write
        f = sigmoid(z_f)          # forget gate: how much of the old cell to keep
        c_hat = tanh(z_c)         # candidate values
        o = sigmoid(z_o)          # output gate: how much of the cell to show
        c = f * c + i * c_hat
        h = o * tanh(c)

    where z_i, z_f, z_c, z_o are the four column blocks of z, in that order
    (Keras's layout): kernel (features, 4·units), recurrent_kernel (units,
    4·units), bias (4·units,). The forget block of the bias starts at 1
    (``unit_forget_bias``). Parameters: 4 × units × (features + units + 1),
    the same at every time step (the count does not depend on timesteps).
    """

    state_names = ("h", "c")
    gate_count = 4

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias: bool = True, return_sequences: bool = False,
                 return_state: bool = False, name: str | None = None, **options):
        super().__init__(units, activation, recurrent_activation, use_bias, kernel_initializer,
                         recurrent_initializer, bias_initializer, return_sequences,
                         return_state, name, **options)
        self.unit_forget_bias = flag(self, "unit_forget_bias", unit_forget_bias)
        self._i, self._f, self._c, self._o = self.gates

    def build(self, input_shape: Shape) -> None:
        super().build(input_shape)
        if self.use_bias and self.unit_forget_bias:
            # Start by remembering: the forget gate opens at sigmoid(1) = 0.73.
            self.bias.data[self._f[1]] = 1.0

    def cell(self, x_projected: mt.Tensor, h: mt.Tensor, c: mt.Tensor):
        """One time step. x_projected = x_t @ kernel + bias (batch, 4·units); h, c (batch, units).
        """
        z = x_projected + self.recurrent_input(h) @ self.recurrent_kernel
        i = self.recurrent_activation(z[self._i])      # how much new to write
        f = self.recurrent_activation(z[self._f])      # how much old to keep
        c_hat = self.activation(z[self._c])            # candidate values
        o = self.recurrent_activation(z[self._o])      # how much to show
        c = f * c + i * c_hat
        h = o * self.activation(c)
        # Names for the graph picture (draw_graph labels a node "f = sigmoid").
        z.name, i.name, f.name, c_hat.name, o.name, c.name, h.name = (
            "z", "i", "f", "c_hat", "o", "c", "h")
        return h, c

    def get_config(self) -> dict:
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}

    def explain_params(self, input_shape: Shape) -> str:
        features, u = input_shape[-1], self.units
        bias, count = (" + 1 bias", features + u + 1) if self.use_bias else ("", features + u)
        return (f"4 gates × {counted(u, 'unit')} × ({counted(features, 'input')} + {u} recurrent"
                f"{bias}) = {4 * u * count:,}")
