"""LSTM, unrolled over time from microtensor primitives: every gate of every step is a node.

Keras's semantics and weight layout: kernel (features, 4·units),
recurrent_kernel (units, 4·units), bias (4·units,), gates in the order
i (input), f (forget), c (candidate), o (output).
"""

from __future__ import annotations

import numpy as np

import microtensor as mt

from . import activations
from .layer import Layer, as_input, counted
from .symbolic import Shape

GATES = ("i", "f", "c", "o")


class LSTM(Layer):
    """Long short-term memory layer.

    Input (batch, timesteps, features). Output (batch, timesteps, units) with
    ``return_sequences=True``, else (batch, units): the last step's h. With
    ``return_state=True`` the call returns ``[output, h, c]``.
    Parameters: 4 × units × (features + units + 1).
    """

    expected_ndim = 3

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias: bool = True, return_sequences: bool = False,
                 return_state: bool = False, name: str | None = None):
        super().__init__(name)
        if int(units) <= 0:
            raise ValueError(f"LSTM: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.unit_forget_bias = unit_forget_bias
        self.return_sequences = return_sequences
        self.return_state = return_state
        u = self.units
        self._gate = {gate: (slice(None), slice(k * u, (k + 1) * u))
                      for k, gate in enumerate(GATES)}

    def check_input_shape(self, shape: Shape) -> None:
        if len(shape) != 3:
            batch = shape[0] if shape and shape[0] is not None else "batch"
            hint = ""
            if len(shape) == 2:
                hint = (f" If each sample is a sequence of {shape[1]} single values, use "
                        f"x.reshape({batch}, {shape[1]}, 1); if it is one time step of "
                        f"{shape[1]} features, use x.reshape({batch}, 1, {shape[1]}).")
            raise ValueError(f"{self.name} (LSTM): expects input of shape (batch, timesteps, "
                             f"features), got a {len(shape)}-D input of shape {tuple(shape)}."
                             + hint)
        if shape[1] == 0:
            raise ValueError(f"{self.name} (LSTM): got an input with 0 timesteps, shape {shape}")
        super().check_input_shape(shape)

    def build(self, input_shape: Shape) -> None:
        features, u = input_shape[-1], self.units
        self.kernel = self.add_weight("kernel", (features, 4 * u), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (u, 4 * u),
                                                self.recurrent_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (4 * u,), self.bias_initializer)
            if self.unit_forget_bias:
                # Start by remembering: the forget gate opens at sigmoid(1) = 0.73.
                self.bias.data[u:2 * u] = 1.0

    def forward(self, x: mt.Tensor, initial_state=None):
        """x (batch, timesteps, features) -> see the class docstring."""
        batch, timesteps, _ = x.shape
        # x_t @ kernel for every t in one product; time-major, so step t is one block.
        projected = x.transpose(1, 0, 2) @ self.kernel  # (timesteps, batch, 4·units)
        if self.use_bias:
            projected = projected + self.bias
        h, c = self._initial_state(batch, initial_state, x.dtype)
        hidden_states = []
        for t in range(1, timesteps + 1):  # t counts from 1: h_0, c_0 are the initial state
            with mt.scope(step=t):
                h, c = self.cell(projected[t - 1], h, c)
            hidden_states.append(h)
        output = mt.stack(hidden_states, axis=1) if self.return_sequences else h
        return [output, h, c] if self.return_state else output

    def cell(self, x_projected: mt.Tensor, h: mt.Tensor, c: mt.Tensor):
        """One time step. x_projected = x_t @ kernel + bias (batch, 4·units); h, c (batch, units).
        """
        z = x_projected + h @ self.recurrent_kernel
        i = self.recurrent_activation(z[self._gate["i"]])      # how much new to write
        f = self.recurrent_activation(z[self._gate["f"]])      # how much old to keep
        c_hat = self.activation(z[self._gate["c"]])            # candidate values
        o = self.recurrent_activation(z[self._gate["o"]])      # how much to show
        c = f * c + i * c_hat
        h = o * self.activation(c)
        # Names for the graph picture (draw_graph labels a node "f = sigmoid").
        z.name, i.name, f.name, c_hat.name, o.name, c.name, h.name = (
            "z", "i", "f", "c_hat", "o", "c", "h")
        return h, c

    def _initial_state(self, batch: int, initial_state, dtype) -> tuple[mt.Tensor, mt.Tensor]:
        if initial_state is None:
            zeros = np.zeros((batch, self.units), dtype=dtype)
            return mt.Tensor(zeros, dtype=dtype, name="h_0"), mt.Tensor(zeros, dtype=dtype,
                                                                        name="c_0")
        if len(initial_state) != 2:
            raise ValueError(f"{self.name} (LSTM): initial_state must be [h0, c0], got "
                             f"{len(initial_state)} tensors")
        h, c = (as_input(s) for s in initial_state)
        for label, state in (("h0", h), ("c0", c)):
            if state.shape != (batch, self.units):
                raise ValueError(f"{self.name} (LSTM): initial_state {label} must have shape "
                                 f"{(batch, self.units)}, got {state.shape}")
        return h, c

    def compute_output_shape(self, input_shape: Shape):
        batch, timesteps, _ = input_shape
        state = (batch, self.units)
        output = (batch, timesteps, self.units) if self.return_sequences else state
        return [output, state, state] if self.return_state else output

    def get_config(self) -> dict:
        return {"name": self.name, "units": self.units,
                "activation": activations.name_of(self.activation),
                "recurrent_activation": activations.name_of(self.recurrent_activation),
                "use_bias": self.use_bias, "unit_forget_bias": self.unit_forget_bias,
                "return_sequences": self.return_sequences, "return_state": self.return_state}

    def describe_output(self) -> str:
        if self.return_sequences:
            text = "return_sequences=True: the hidden state h of every time step"
        else:
            text = "return_sequences=False: the hidden state h of the last time step only"
        return text + (", then the final h and c (return_state=True)" if self.return_state else "")

    def explain_params(self, input_shape: Shape) -> str:
        features, u = input_shape[-1], self.units
        bias, count = (" + 1 bias", features + u + 1) if self.use_bias else ("", features + u)
        return (f"4 gates × {counted(u, 'unit')} × ({counted(features, 'input')} + {u} recurrent"
                f"{bias}) = {4 * u * count:,}")
