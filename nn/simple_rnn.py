"""SimpleRNN, the plainest recurrent layer.

    h_t = tanh(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)

Keras's semantics and weight layout: kernel (features, units),
recurrent_kernel (units, units), bias (units,). The time loop is in
``recurrent.py``; this file is the cell.
"""

from __future__ import annotations

import microtensor as mt

from .layer import counted
from .recurrent import Recurrent
from .symbolic import Shape


def explain_recurrent_params(gates: int, units: int, features: int, biases: int) -> str:
    """"3 gates × 64 units × (10 inputs + 64 recurrent + 2 biases) = 14,592" (no gate
    factor when ``gates`` is 1, no bias term when ``biases`` is 0)."""
    factor = f"{gates} gates × " if gates > 1 else ""
    bias = f" + {counted(biases, 'bias', 'biases')}" if biases else ""
    total = gates * units * (features + units + biases)
    return (f"{factor}{counted(units, 'unit')} × ({counted(features, 'input')} + {units} "
            f"recurrent{bias}) = {total:,}")


class SimpleRNN(Recurrent):
    """Fully connected recurrent layer.

    Input (batch, timesteps, features). Output (batch, timesteps, units) with
    ``return_sequences=True``, else (batch, units): the last step's h. With
    ``return_state=True`` the call returns ``[output, h]``;
    ``initial_state=[h0]`` starts from a given state.

    One step, from h of the previous step (zeros at t = 1)::

        h = tanh(x_t @ kernel + h @ recurrent_kernel + bias)

    kernel (features, units), recurrent_kernel (units, units), bias (units,).
    Parameters: units × (features + units + 1).

    Same numbers as ``torch.nn.RNN(features, units, batch_first=True)``
    (nonlinearity "tanh") with weight_ih = kernel.T, weight_hh =
    recurrent_kernel.T, bias_ih = bias, bias_hh = 0.
    """

    def cell(self, x_projected: mt.Tensor, h: mt.Tensor) -> tuple[mt.Tensor]:
        """One time step. x_projected = x_t @ kernel + bias (batch, units); h (batch, units)."""
        z = x_projected + self.recurrent_input(h) @ self.recurrent_kernel
        h = self.activation(z)
        z.name, h.name = "z", "h"  # names for the graph picture
        return (h,)

    def explain_params(self, input_shape: Shape) -> str:
        return explain_recurrent_params(1, self.units, input_shape[-1], int(self.use_bias))
