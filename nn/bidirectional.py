"""Bidirectional: a recurrent layer run forwards and backwards over time, outputs merged.

Keras's semantics: the wrapper holds two fresh copies of the layer it is given,
``forward_<name>`` and ``backward_<name>``, with all its settings (initializers and
activations too, given by name or as functions). The backward copy reads the
sequence reversed; with ``return_sequences=True`` its outputs are reversed back so
that position t of both halves belongs to time step t, and a masked step outputs
zeros in both halves (Keras's ``zero_output_for_mask``; a plain recurrent layer
carries h there instead). Weights: the forward copy's, then the backward copy's.
"""

from __future__ import annotations

import inspect
from typing import Any

import microtensor as mt

from .layer import Layer
from .recurrent import Recurrent, reverse_time
from .symbolic import Shape

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def constructor_settings(layer: Layer) -> dict[str, Any]:
    """The arguments of ``layer``'s constructor that it keeps under their own names, as kept:
    {"units": 3, "activation": <function tanh>, "kernel_initializer": "zeros", ...}.

    ``get_config`` leaves out what JSON can't hold (functions) and, for the recurrent
    layers, the initializers; a copy made from this misses nothing.
    """
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    settings = {}
    for cls in reversed(type(layer).__mro__):  # the recurrent options live in a base class
        if "__init__" not in vars(cls) or cls is object:
            continue
        for a in inspect.signature(cls.__init__).parameters.values():
            if (a.kind in kinds and a.name not in ("self", "name", "input_shape", "input_dim")
                    and hasattr(layer, a.name)):
                settings[a.name] = getattr(layer, a.name)
    return settings


class Bidirectional(Layer):
    """Wraps a recurrent layer (``nn.LSTM``, ``nn.GRU``, ``nn.SimpleRNN``).

    Input (batch, timesteps, features). Output: the two directions' outputs
    merged by ``merge_mode``: "concat" (last axis 2·units, forward first),
    "sum", "mul", "ave", or None for the list [forward, backward]. With the
    layer's ``return_state=True`` the forward copy's final states follow the
    output, then the backward copy's. ``initial_state`` takes the forward
    states then the backward ones. Parameters: twice the wrapped layer's.
    """

    expected_ndim = 3

    def __init__(self, layer: Recurrent, merge_mode: str | None = "concat",
                 name: str | None = None, **options):
        if not isinstance(layer, Recurrent):
            raise TypeError(f"Bidirectional: wraps a recurrent layer (LSTM, GRU, SimpleRNN), "
                            f"got {type(layer).__name__}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"Bidirectional: merge_mode must be one of {MERGE_MODES}, "
                             f"got {merge_mode!r}")
        if layer.go_backwards or layer.stateful:
            raise ValueError(f"Bidirectional: wraps a layer that reads forwards and carries no "
                             f"state; {layer.name} has go_backwards={layer.go_backwards}, "
                             f"stateful={layer.stateful}")
        super().__init__(name, **options)
        self.layer = layer  # the template: its config makes both copies, it holds no weights
        self.merge_mode = merge_mode
        self.forward_layer = self._copy(layer, "forward")
        self.backward_layer = self._copy(layer, "backward")
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state

    @staticmethod
    def _copy(layer: Recurrent, direction: str) -> Recurrent:
        config = {**layer.get_config(), **constructor_settings(layer),
                  "name": f"{direction}_{layer.name}"}
        return type(layer)(**config)

    def _children(self) -> list[Layer]:
        return [self.forward_layer, self.backward_layer]

    def check_input_shape(self, shape: Shape) -> None:
        self.forward_layer.check_input_shape(shape)  # its errors explain recurrent inputs

    def build(self, input_shape: Shape) -> None:
        self.forward_layer._ensure_built(input_shape)
        self.backward_layer._ensure_built(input_shape)

    def forward(self, x: mt.Tensor, initial_state=None, mask=None):
        """x (batch, timesteps, features) -> see the class docstring. ``mask`` (batch,
        timesteps), if given, goes to both copies, reversed in time for the backward one."""
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        forward_kwargs = {} if mask is None else {"mask": mask}
        backward_kwargs = {} if mask is None else {"mask": reverse_time(mask)}
        forward_result = self.forward_layer(x, initial_state=forward_state, **forward_kwargs)
        backward_result = self.backward_layer(reverse_time(x), initial_state=backward_state,
                                              **backward_kwargs)
        forward_states = backward_states = []
        if self.return_state:
            forward_result, *forward_states = forward_result
            backward_result, *backward_states = backward_result
        if self.return_sequences:
            backward_result = reverse_time(backward_result)  # step t of both halves aligned
            if mask is not None:
                forward_result, backward_result = self._zero_masked_steps(
                    mask, forward_result, backward_result)
        output = self._merge(forward_result, backward_result)
        if not self.return_state:
            return output
        head = output if isinstance(output, list) else [output]
        return [*head, *forward_states, *backward_states]

    def _zero_masked_steps(self, mask, *sequences: mt.Tensor) -> list[mt.Tensor]:
        """Each (batch, timesteps, units) sequence with 0 at the masked steps (Keras sets
        ``zero_output_for_mask`` on both copies); no gradient reaches what was there."""
        batch, timesteps = sequences[0].shape[:2]
        keep = self.forward_layer._checked_mask(mask, batch, timesteps)
        if keep.all():
            return list(sequences)
        return [mt.where(keep[:, :, None], sequence, 0.0) for sequence in sequences]

    def _merge(self, forward: mt.Tensor, backward: mt.Tensor):
        if self.merge_mode == "concat":
            return mt.concatenate([forward, backward], axis=-1)
        if self.merge_mode == "sum":
            return forward + backward
        if self.merge_mode == "mul":
            return forward * backward
        if self.merge_mode == "ave":
            return (forward + backward) * 0.5
        return [forward, backward]

    def compute_output_shape(self, input_shape: Shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        output, states = (shape[0], shape[1:]) if self.return_state else (shape, [])
        if self.merge_mode == "concat":
            output = (*output[:-1], 2 * output[-1])
        head = [output, output] if self.merge_mode is None else [output]
        if self.return_state or self.merge_mode is None:
            return [*head, *states, *states]
        return output

    def compute_mask(self, inputs, mask=None):
        """As the wrapped layer: the mask goes on with a sequence output, none otherwise."""
        output_mask = mask if self.return_sequences else None
        head = [output_mask] * (2 if self.merge_mode is None else 1)
        states = [None] * (2 * len(self.layer.state_names)) if self.return_state else []
        return [*head, *states] if self.return_state or self.merge_mode is None else output_mask

    def get_config(self) -> dict[str, Any]:
        """The wrapped layer's config with its settings that JSON holds (initializer names);
        an initializer function is left out, as a plain layer's config leaves it out: the
        saved weights don't need it."""
        plain = {key: value for key, value in constructor_settings(self.layer).items()
                 if value is None or isinstance(value, str | bool | int | float)}
        return {"name": self.name, "merge_mode": self.merge_mode,
                "layer": {"class": type(self.layer).__name__,
                          "config": {**plain, **self.layer.get_config()}}}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Bidirectional:
        """The inverse of ``get_config``: the wrapped layer is rebuilt from its class and config."""
        inner = config["layer"]
        layer_class = Layer.registry.get(inner["class"])
        if layer_class is None:
            raise ValueError(f"Bidirectional: unknown layer class {inner['class']!r}")
        return cls(layer_class(**inner["config"]), config.get("merge_mode", "concat"),
                   config.get("name"))

    def explain_params(self, input_shape: Shape) -> str:
        one = self.forward_layer.count_params()
        return (f"2 directions × {one:,} = {2 * one:,}: {self.forward_layer.name} and "
                f"{self.backward_layer.name} each have "
                f"{self.forward_layer.explain_params(input_shape)}")

    def output_axes(self, output_shape: Shape) -> tuple[str, ...]:
        axes = self.forward_layer.output_axes(output_shape)
        if self.merge_mode == "concat" and output_shape[-1] == 2 * self.layer.units:
            return (*axes[:-1], "(forward units + backward units)")
        return axes

    def describe_output(self) -> str:
        merged = {"concat": "concatenated on the last axis", "sum": "added", "mul": "multiplied",
                  "ave": "averaged", None: "as a list"}[self.merge_mode]
        return (f"{self.forward_layer.name} reads t = 1..T, {self.backward_layer.name} reads "
                f"t = T..1, outputs {merged}; each: {self.forward_layer.describe_output()}")
