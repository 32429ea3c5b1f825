"""Recurrent: the time loop that SimpleRNN, GRU and LSTM share.

A subclass says what one step computes (``cell``) and which weights it has
(``build``); this base runs the steps, each inside ``mt.scope(step=t)`` so
the graph shows one cluster per step, and shapes what the layer returns.

It also takes Keras's options of a recurrent layer: ``go_backwards``, ``stateful``
(with ``reset_states()``), ``dropout`` and ``recurrent_dropout`` (with ``seed``),
``zero_output_for_mask``; ``unroll`` and ``implementation`` are accepted and change
nothing, since the loop is always unrolled into one graph node per gate and step.
"""

from __future__ import annotations

import numbers

import numpy as np

import microtensor as mt
from microtensor.tensor import apply

from . import activations
from .dropout import dropout_mask
from .layer import (
    SAME_COUNT,
    Layer,
    as_input,
    checked_activation,
    checked_initializer,
    each_step,
    flag,
    input_batch_axis_hint,
    positive_int,
)
from .symbolic import Shape


def reverse_time(x):
    """x (batch, timesteps, ...) with the time axis reversed (a Tensor's by getitem, so
    gradients flow; a mask's by numpy)."""
    reversed_x = x[:, ::-1]
    if isinstance(reversed_x, mt.Tensor) and not reversed_x.requires_grad:  # data: say which
        reversed_x.name = f"{x.name or 'input'}, reversed"
    return reversed_x


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
                 return_state: bool = False, name: str | None = None, *,
                 go_backwards: bool = False, stateful: bool = False, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, seed: int | None = None,
                 zero_output_for_mask: bool = False, unroll: bool = False,
                 implementation: int = 2, **options):
        """Keras's options (keyword only):

        - ``go_backwards``: read the sequence last step first; with ``return_sequences``
          the outputs come in that reversed order too.
        - ``stateful``: each call starts from the final states of the previous call
          (same batch size), as numbers without a graph; ``reset_states()`` zeroes them.
        - ``dropout``/``recurrent_dropout``: in training, drop this fraction of the inputs /
          of h where it enters ``h @ recurrent_kernel``; one random mask per call, the same
          at every step, shared by all gates (Keras draws its own numbers; ``seed`` makes
          ours repeatable).
        - ``zero_output_for_mask``: a masked step outputs zeros instead of the carried h.
        - ``unroll``, ``implementation``: accepted for Keras scripts; no effect here.
        """
        if isinstance(units, numbers.Integral) and isinstance(activation, numbers.Integral):
            raise TypeError(
                f"{type(self).__name__}({units}, {activation}): Keras's order is "
                f"{type(self).__name__}(units, ...): the number of units only. The input size "
                f"is not given: it is read from the last axis of the first input (torch's "
                f"nn.{type(self).__name__}(input_size, hidden_size) order). Write "
                f"{type(self).__name__}({activation}).")
        super().__init__(name, **options)
        self.units = positive_int(self, "units", units)
        self.activation = checked_activation(self, activation)
        self.use_bias = flag(self, "use_bias", use_bias)
        self.kernel_initializer = checked_initializer(self, kernel_initializer)
        self.recurrent_initializer = checked_initializer(self, recurrent_initializer)
        self.bias_initializer = checked_initializer(self, bias_initializer)
        self.return_sequences = flag(self, "return_sequences", return_sequences)
        self.return_state = flag(self, "return_state", return_state)
        self.go_backwards = flag(self, "go_backwards", go_backwards)
        self.stateful = flag(self, "stateful", stateful)
        self.zero_output_for_mask = flag(self, "zero_output_for_mask", zero_output_for_mask)
        self.unroll, self.implementation = unroll, implementation
        for argument, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= float(rate) < 1.0:
                raise ValueError(f"{self.name} ({type(self).__name__}): {argument} is the "
                                 f"fraction to drop, in [0, 1), got {rate!r}")
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.seed = seed
        self._generator = None if seed is None else np.random.default_rng(seed)
        self.states: list[np.ndarray] | None = None  # stateful: the states the next call uses
        self._recurrent_mask: mt.Tensor | None = None  # during a call with recurrent_dropout

    def gate_slice(self, k: int) -> tuple[slice, slice]:
        """Index of the k-th block of ``units`` columns: z[gate_slice(1)] is gate 1 of z."""
        return slice(None), slice(k * self.units, (k + 1) * self.units)

    def check_input_shape(self, shape: Shape) -> None:
        kind = type(self).__name__
        if len(shape) != 3:
            hint = _two_d_hint(shape) if len(shape) == 2 else input_batch_axis_hint(shape, 3)
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
        projected = self.time_major(x) @ self.kernel
        projected = projected + self.bias if self.use_bias else projected
        projected.name = "x_proj"  # the graph writes step t's slice as x_proj[t-1]
        return projected

    @staticmethod
    def time_major(x: mt.Tensor) -> mt.Tensor:
        """x (batch, timesteps, features) -> (timesteps, batch, features), named for the graph
        in plain words (and after the data it comes from, when that has a name)."""
        steps = x.transpose(1, 0, 2)
        steps.name = f"{x.name or 'x'} as time steps: (T, batch, features)"
        return steps

    def forward(self, x: mt.Tensor, initial_state=None, mask=None, training: bool | None = None):
        """x (batch, timesteps, features) -> see the class docstring.

        ``mask`` (batch, timesteps), True where a step is real data (Keras): at a
        masked step every state keeps its previous value, so padding changes
        nothing, and the output there is the carried h (Keras's default; zeros with
        ``zero_output_for_mask=True``). ``training`` overrides the mode for dropout.
        """
        batch, timesteps, _ = x.shape
        keep = self._checked_mask(mask, batch, timesteps)
        if keep is not None:  # which steps run depends on the data: no traced replay
            mt.python_choice(f"{self.name}'s mask decides which steps run")
        if self.go_backwards:
            x = reverse_time(x)
            keep = None if keep is None else keep[:, ::-1]
        dropping = self.training if training is None else training
        if dropping and self.dropout:  # one mask per sample, the same at every step
            x = x * self._dropout_mask((batch, 1, x.shape[-1]), self.dropout, x.dtype)
        if dropping and self.recurrent_dropout:
            self._recurrent_mask = self._dropout_mask((batch, self.units),
                                                      self.recurrent_dropout, x.dtype)
        if initial_state is None and self.stateful:
            initial_state = self._carried_states(batch)
        try:
            outputs, states = self._run(self.project_inputs(x), keep, batch, timesteps,
                                        self._initial_state(batch, initial_state, x.dtype))
        finally:
            self._recurrent_mask = None
        if self.stateful:  # numbers only: the next call's graph starts here
            self.states = [state.data.copy() for state in states]
        output = mt.stack(outputs, axis=1) if self.return_sequences else outputs[-1]
        return [output, *states] if self.return_state else output

    def _run(self, projected: mt.Tensor, keep, batch: int, timesteps: int,
             states: list[mt.Tensor]) -> tuple[list[mt.Tensor], list[mt.Tensor]]:
        """The time loop: (the output of every step, the final states)."""
        outputs = []
        for t in range(1, timesteps + 1):  # t counts from 1: the initial state is step 0
            keep_t = None if keep is None else keep[:, t - 1:t]  # (batch, 1)
            if keep_t is not None and not keep_t.any():  # the whole batch skips this step
                outputs.append(mt.Tensor(np.zeros_like(states[0].data))
                               if self.zero_output_for_mask else states[0])
                continue
            with mt.scope(step=t):
                # Values only this step needed (h @ U, z, f * c ...) are freed as it ends.
                new_states = mt.freeing_intermediates(self.cell, projected[t - 1], *states)
                if keep_t is not None and not keep_t.all():
                    new_states = tuple(mt.where(keep_t, new, old)
                                       for new, old in zip(new_states, states, strict=True))
            states = new_states
            if keep_t is not None and self.zero_output_for_mask and not keep_t.all():
                outputs.append(mt.where(keep_t, states[0], np.zeros((), states[0].dtype)))
            else:
                outputs.append(states[0])
        return outputs, list(states)

    def recurrent_input(self, h: mt.Tensor) -> mt.Tensor:
        """h as it enters ``h @ recurrent_kernel``: with recurrent_dropout, in training,
        some of its units dropped (the same ones at every step of a call)."""
        return h if self._recurrent_mask is None else h * self._recurrent_mask

    def _dropout_mask(self, shape: tuple[int, ...], rate: float, dtype) -> mt.Tensor:
        """Inverted dropout: 0 with probability ``rate``, else 1 / (1 - rate); an op that
        draws in its forward (a compiled step draws a new mask at each call)."""
        return apply(dropout_mask, shape=shape, rate=rate, dtype=np.dtype(dtype),
                     generator=self._generator)

    def _carried_states(self, batch: int) -> list[np.ndarray] | None:
        if self.states is None:
            return None
        if self.states[0].shape[0] != batch:
            raise ValueError(
                f"{self.name} ({type(self).__name__}): stateful=True carries states for "
                f"batches of {self.states[0].shape[0]}, got a batch of {batch}; feed batches "
                "of one size (fit(..., shuffle=False) with a batch_size that divides the data), "
                "or call reset_states() first")
        return self.states

    def reset_states(self, states=None) -> None:
        """Forget the carried states (stateful=True): the next call starts from zeros, or
        from ``states`` if given ([h, c] for an LSTM, numpy arrays (batch, units))."""
        self.states = None if states is None else [np.array(s) for s in (
            states if isinstance(states, list | tuple) else [states])]

    reset_state = reset_states  # Keras 3's name

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
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": self.stateful,
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed, "zero_output_for_mask": self.zero_output_for_mask}

    def weight_sharing(self, input_shape: Shape) -> str:
        return f"the same weights at {each_step(input_shape[1])}: {SAME_COUNT}"

    def describe_output(self) -> str:
        if self.return_sequences:
            text = "return_sequences=True: the hidden state h of every time step"
        else:
            text = "return_sequences=False: the hidden state h of the last time step only"
        if self.return_state:
            text += f", then the final {' and '.join(self.state_names)} (return_state=True)"
        return text


def _two_d_hint(shape: Shape) -> str:
    """What a 2-D input to a recurrent layer most likely is, most common case first."""
    rows, columns = shape
    hint = ""
    if rows is not None:  # data in hand: one sample without its batch axis is the usual case
        hint += (f" If it is one sample of {rows} time steps × {columns} features, add the batch "
                 f"axis: x[None] (shape (1, {rows}, {columns})). If it is {rows} sequences of "
                 f"{columns} single values, use x.reshape({rows}, {columns}, 1); if it is "
                 f"{rows} samples of one time step of {columns} features, use "
                 f"x.reshape({rows}, 1, {columns}).")
    else:
        hint += (f" For sequences, nn.Input needs two axes: nn.Input(shape=(timesteps, "
                 f"{columns})); one sample of data needs its batch axis: x[None].")
    return hint + (" If it comes from another recurrent layer, give that one "
                   "return_sequences=True so that it outputs every step.")


class GatedRecurrent(Recurrent):
    """A recurrent layer with gates (LSTM, GRU): a ``recurrent_activation`` for them, and
    ``gates``, the column blocks of z that each gate reads (``gate_count`` of them)."""

    def __init__(self, units: int, activation, recurrent_activation, use_bias: bool,
                 kernel_initializer, recurrent_initializer, bias_initializer,
                 return_sequences: bool, return_state: bool, name: str | None, **options):
        super().__init__(units, activation, use_bias, kernel_initializer,
                         recurrent_initializer, bias_initializer, return_sequences,
                         return_state, name, **options)
        self.recurrent_activation = checked_activation(self, recurrent_activation)
        self.gates = tuple(self.gate_slice(k) for k in range(self.gate_count))

    def get_config(self) -> dict:
        return {**super().get_config(),
                "recurrent_activation": activations.name_of(self.recurrent_activation)}
