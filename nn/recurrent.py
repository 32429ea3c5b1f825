"""Recurrent: the time loop that SimpleRNN, GRU and LSTM share.

A subclass says what one step computes (``cell``) and which weights it has
(``build``); this base runs the steps, each inside ``mt.scope(step=t)`` so
the graph shows one cluster per step, and shapes what the layer returns.
"""

from __future__ import annotations

import numpy as np

import microtensor as mt

from . import activations
from .layer import (
    Layer,
    as_input,
    checked_activation,
    checked_initializer,
    flag,
    positive_int,
)
from .symbolic import Shape


class Recurrent(Layer):
    """Input (batch, timesteps, features). Output (batch, timesteps, units) with
    ``return_sequences=True``, else (batch, units): the last step's h. With
    ``return_state=True`` the call returns ``[output, *final_states]``.
    """

    expected_ndim = 3
    state_names: tuple[str, ...] = ("h",)  # LSTM adds "c"
    gate_count = 1  # blocks of `units` columns in kernel and recurrent_kernel

    def __init__(self, units: int, activation="tanh", use_bias: bool = True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", return_sequences: bool = False,
                 return_state: bool = False, name: str | None = None):
        super().__init__(name)
        self.units = positive_int(self, "units", units)
        self.activation = checked_activation(self, activation)
        self.use_bias = flag(self, "use_bias", use_bias)
        self.kernel_initializer = checked_initializer(self, kernel_initializer)
        self.recurrent_initializer = checked_initializer(self, recurrent_initializer)
        self.bias_initializer = checked_initializer(self, bias_initializer)
        self.return_sequences = flag(self, "return_sequences", return_sequences)
        self.return_state = flag(self, "return_state", return_state)

    def gate_slice(self, k: int) -> tuple[slice, slice]:
        """Index of the k-th block of ``units`` columns: z[gate_slice(1)] is gate 1 of z."""
        return slice(None), slice(k * self.units, (k + 1) * self.units)

    def check_input_shape(self, shape: Shape) -> None:
        kind = type(self).__name__
        if len(shape) != 3:
            batch = shape[0] if shape and shape[0] is not None else "batch"
            hint = ""
            if len(shape) == 2:
                hint = (" If it comes from another recurrent layer, give that one "
                        "return_sequences=True so that it outputs every step. If each sample "
                        f"is a sequence of {shape[1]} single values, use "
                        f"x.reshape({batch}, {shape[1]}, 1); if it is one time step of "
                        f"{shape[1]} features, use x.reshape({batch}, 1, {shape[1]}).")
            raise ValueError(f"{self.name} ({kind}): expects input of shape (batch, timesteps, "
                             f"features), got a {len(shape)}-D input of shape {tuple(shape)}."
                             + hint)
        if shape[1] == 0:
            raise ValueError(f"{self.name} ({kind}): got an input with 0 timesteps, shape {shape}")
        super().check_input_shape(shape)

    def build(self, input_shape: Shape) -> None:
        width = self.gate_count * self.units
        self.kernel = self.add_weight("kernel", (input_shape[-1], width), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, width),
                                                self.recurrent_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", self.bias_shape(), self.bias_initializer)

    def bias_shape(self) -> tuple[int, ...]:
        return (self.gate_count * self.units,)

    def project_inputs(self, x: mt.Tensor) -> mt.Tensor:
        """x_t @ kernel + bias for every t in one product; time-major, so step t is one block.
        x (batch, timesteps, features) -> (timesteps, batch, gate_count·units)."""
        time_major = x.transpose(1, 0, 2)
        if not time_major.requires_grad:  # data, drawn as such: say which data it is
            time_major.name = f"{x.name or 'input'}, time-major"
        projected = time_major @ self.kernel
        return projected + self.bias if self.use_bias else projected

    def forward(self, x: mt.Tensor, initial_state=None, mask=None):
        """x (batch, timesteps, features) -> see the class docstring.

        ``mask`` (batch, timesteps), True where a step is real data (Keras): at a
        masked step every state keeps its previous value, so padding changes
        nothing, and the output there is the carried h (Keras's default).
        """
        batch, timesteps, _ = x.shape
        keep = self._checked_mask(mask, batch, timesteps)
        if keep is not None:  # which steps run depends on the data: no traced replay
            mt.python_choice(f"{self.name}'s mask decides which steps run")
        projected = self.project_inputs(x)
        states = self._initial_state(batch, initial_state, x.dtype)
        hidden_states = []
        for t in range(1, timesteps + 1):  # t counts from 1: the initial state is step 0
            keep_t = None if keep is None else keep[:, t - 1:t]  # (batch, 1)
            if keep_t is not None and not keep_t.any():
                hidden_states.append(states[0])  # the whole batch skips this step
                continue
            with mt.scope(step=t):
                # Values only this step needed (h @ U, z, f * c ...) are freed as it ends.
                new_states = mt.freeing_intermediates(self.cell, projected[t - 1], *states)
                if keep_t is not None and not keep_t.all():
                    new_states = tuple(mt.where(keep_t, new, old)
                                       for new, old in zip(new_states, states, strict=True))
            states = new_states
            hidden_states.append(states[0])
        output = mt.stack(hidden_states, axis=1) if self.return_sequences else states[0]
        return [output, *states] if self.return_state else output

    def _checked_mask(self, mask, batch: int, timesteps: int) -> np.ndarray | None:
        if mask is None:
            return None
        keep = np.asarray(mask.data if isinstance(mask, mt.Tensor) else mask).astype(bool)
        if keep.shape != (batch, timesteps):
            raise ValueError(f"{self.name} ({type(self).__name__}): mask must have shape "
                             f"(batch, timesteps) = {(batch, timesteps)}, got {keep.shape}")
        return keep

    def compute_mask(self, inputs, mask=None):
        """The mask goes on with the sequence (return_sequences=True); one vector has none."""
        output_mask = mask if self.return_sequences else None
        return [output_mask, *[None] * len(self.state_names)] if self.return_state else output_mask

    def cell(self, x_projected: mt.Tensor, *states: mt.Tensor) -> tuple[mt.Tensor, ...]:
        """One time step: (x_t @ kernel + bias, previous states) -> new states, h first."""
        raise NotImplementedError

    def _initial_state(self, batch: int, initial_state, dtype) -> list[mt.Tensor]:
        names = self.state_names
        if initial_state is None:
            zeros = np.zeros((batch, self.units), dtype=dtype)
            return [mt.Tensor(zeros, dtype=dtype, name=f"{name}_0") for name in names]
        if isinstance(initial_state, mt.Tensor | np.ndarray):
            initial_state = [initial_state]
        if len(initial_state) != len(names):
            raise ValueError(f"{self.name} ({type(self).__name__}): initial_state must be "
                             f"[{', '.join(n + '0' for n in names)}], got "
                             f"{len(initial_state)} tensors")
        states = [as_input(s) for s in initial_state]
        for name, state in zip(names, states, strict=True):
            if state.shape != (batch, self.units):
                raise ValueError(f"{self.name} ({type(self).__name__}): initial_state {name}0 "
                                 f"must have shape {(batch, self.units)}, got {state.shape}")
        return states

    def compute_output_shape(self, input_shape: Shape):
        batch, timesteps, _ = input_shape
        state = (batch, self.units)
        output = (batch, timesteps, self.units) if self.return_sequences else state
        return [output, *[state] * len(self.state_names)] if self.return_state else output

    def get_config(self) -> dict:
        return {"name": self.name, "units": self.units,
                "activation": activations.name_of(self.activation), "use_bias": self.use_bias,
                "return_sequences": self.return_sequences, "return_state": self.return_state}

    def describe_output(self) -> str:
        if self.return_sequences:
            text = "return_sequences=True: the hidden state h of every time step"
        else:
            text = "return_sequences=False: the hidden state h of the last time step only"
        if self.return_state:
            text += f", then the final {' and '.join(self.state_names)} (return_state=True)"
        return text


class GatedRecurrent(Recurrent):
    """A recurrent layer with gates (LSTM, GRU): a ``recurrent_activation`` for them, and
    ``gates``, the column blocks of z that each gate reads (``gate_count`` of them)."""

    def __init__(self, units: int, activation, recurrent_activation, use_bias: bool,
                 kernel_initializer, recurrent_initializer, bias_initializer,
                 return_sequences: bool, return_state: bool, name: str | None):
        super().__init__(units, activation, use_bias, kernel_initializer,
                         recurrent_initializer, bias_initializer, return_sequences,
                         return_state, name)
        self.recurrent_activation = checked_activation(self, recurrent_activation)
        self.gates = tuple(self.gate_slice(k) for k in range(self.gate_count))

    def get_config(self) -> dict:
        return {**super().get_config(),
                "recurrent_activation": activations.name_of(self.recurrent_activation)}
