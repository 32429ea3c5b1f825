"""GRU, the gated recurrent unit: every gate of every step is a node.

Keras's semantics and weight layout: kernel (features, 3·units),
recurrent_kernel (units, 3·units), gates in the order z (update), r (reset),
h (candidate). With ``reset_after=True`` (Keras's default) the bias is
(2, 3·units): row 0 is added to x_t @ kernel, row 1 to h @ recurrent_kernel.
The time loop is in ``recurrent.py``; this file is the cell.
"""

from __future__ import annotations

import microtensor as mt

from .layer import flag
from .recurrent import GatedRecurrent
from .simple_rnn import explain_recurrent_params
from .symbolic import Shape


class GRU(GatedRecurrent):
    """Gated recurrent unit layer.

    Input (batch, timesteps, features). Output (batch, timesteps, units) with
    ``return_sequences=True``, else (batch, units): the last step's h. With
    ``return_state=True`` the call returns ``[output, h]``;
    ``initial_state=[h0]`` starts from a given state.

    One step, with ``reset_after=True``::

        z = sigmoid(x_z + h @ U_z + b_rz)            # update: how much old h to keep
        r = sigmoid(x_r + h @ U_r + b_rr)            # reset: how much old h the candidate sees
        h_hat = tanh(x_h + r * (h @ U_h + b_rh))     # candidate
        h = z * h + (1 - z) * h_hat

    where x_g = x_t @ kernel_g + b_ig (bias row 0) and b_rg is bias row 1.
    With ``reset_after=False`` the bias is one row (3·units,) and
    h_hat = tanh(x_h + (r * h) @ U_h).
    Parameters: 3 × units × (features + units + 2), or + 1 with reset_after=False.

    **Weights from/to PyTorch.** ``torch.nn.GRU(features, units, batch_first=True)``
    computes the same function as ``GRU(units, reset_after=True)``: torch's
    h' = (1 - z) * n + z * h is Keras's update. Its gate blocks come in the order
    r, z, n instead of z, r, h, and its matrices are transposed::

        order = [1, 0, 2]                      # torch's r, z, n as Keras gate numbers
        def torch_order(w):                    # w (..., 3·units), Keras order
            return np.concatenate([w[..., k * units:(k + 1) * units] for k in order], -1)
        weight_ih_l0 = torch_order(kernel).T
        weight_hh_l0 = torch_order(recurrent_kernel).T
        bias_ih_l0 = torch_order(bias[0])
        bias_hh_l0 = torch_order(bias[1])

    The same permutation converts back (it is its own inverse).
    """

    gate_count = 3

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 reset_after: bool = True, return_sequences: bool = False,
                 return_state: bool = False, name: str | None = None, **options):
        super().__init__(units, activation, recurrent_activation, use_bias, kernel_initializer,
                         recurrent_initializer, bias_initializer, return_sequences,
                         return_state, name, **options)
        self.reset_after = flag(self, "reset_after", reset_after)
        self._z, self._r, self._h = self.gates

    def bias_shape(self) -> tuple[int, ...]:
        # reset_after keeps two biases: one row for the inputs, one for h.
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def project_inputs(self, x: mt.Tensor) -> mt.Tensor:
        """x (batch, timesteps, features) -> x_t @ kernel + bias[0] for every t,
        time-major: (timesteps, batch, 3·units)."""
        if not (self.use_bias and self.reset_after):
            return super().project_inputs(x)
        projected = self.time_major(x) @ self.kernel + self.bias[0]
        projected.name = "x_proj"
        return projected

    def cell(self, x_projected: mt.Tensor, h: mt.Tensor) -> tuple[mt.Tensor]:
        """One time step. x_projected = x_t @ kernel + input bias (batch, 3·units);
        h (batch, units)."""
        x_z, x_r, x_h = x_projected[self._z], x_projected[self._r], x_projected[self._h]
        h_in = self.recurrent_input(h)  # h itself, unless recurrent_dropout drops some units
        if self.reset_after:
            hu = h_in @ self.recurrent_kernel
            if self.use_bias:
                hu = hu + self.bias[1]
            hu.name = "hu"
            hu_z, hu_r, hu_h = hu[self._z], hu[self._r], hu[self._h]
        else:
            # The candidate's part of the product waits for r.
            hu = h_in @ self.recurrent_kernel[:, :2 * self.units]
            hu_z, hu_r = hu[self._z], hu[self._r]
        z = self.recurrent_activation(x_z + hu_z)      # how much of the old h to keep
        r = self.recurrent_activation(x_r + hu_r)      # how much of the old h the candidate sees
        if self.reset_after:
            h_hat = self.activation(x_h + r * hu_h)    # candidate values
        else:
            h_hat = self.activation(x_h + (r * h_in) @ self.recurrent_kernel[self._h])
        h = z * h + (1 - z) * h_hat
        # Names for the graph picture (draw_graph labels a node "z = sigmoid").
        z.name, r.name, h_hat.name, h.name = "z", "r", "h_hat", "h"
        return (h,)

    def get_config(self) -> dict:
        return {**super().get_config(), "reset_after": self.reset_after}

    def explain_params(self, input_shape: Shape) -> str:
        biases = (2 if self.reset_after else 1) if self.use_bias else 0
        return explain_recurrent_params(3, self.units, input_shape[-1], biases)
