"""Freeing the values of intermediate tensors that backward doesn't need.

An LSTM step makes 16 tensors holding 17 × (batch, units) numbers, but its
backward reads only 7 × (batch, units) of them (i, f, c_hat, o, c, tanh(c),
h); the others (h @ U and z, 4 × each, f * c, i * c_hat) are dead once the
step has run. Every backward reads the arrays it captured when
its op ran, never its inputs' ``.data`` (see ``ops.py``), so a tensor's value
can go as soon as the code that made it is done with it: each layer call, and
each step of a recurrent layer, runs inside ``freeing_intermediates``. The
tensors it made and doesn't return keep their place in the graph (op, shape,
parents, gradient) but their ``.data`` becomes a read-only NaN placeholder of
the same shape; an array some backward captured lives on in that backward.

A small graph (up to ``SMALL_GRAPH`` tensors, like the examples one draws
with values) keeps everything. ``keep_values()`` keeps every value of any
graph, for looking inside (``draw_graph(root, show_values=True)``,
``x.parents[0].data``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .context import state
from .tensor import Tensor

# Tensors in a graph that keeps every value: as many op nodes as draw_graph(show_values=True)
# draws (graph.MAX_VALUE_NODES), so every graph small enough for that picture has its values.
SMALL_GRAPH = 100
_placeholders: dict[tuple, np.ndarray] = {}


def _placeholder(data: np.ndarray) -> np.ndarray:
    """A read-only NaN array of data's shape and dtype that takes no memory (one per pair)."""
    key = (data.shape, data.dtype)
    placeholder = _placeholders.get(key)
    if placeholder is None:
        placeholder = _placeholders[key] = np.broadcast_to(np.array(np.nan, data.dtype),
                                                           data.shape)
    return placeholder


def is_freed(tensor: Tensor) -> bool:
    """True if ``tensor``'s value was freed after the forward pass (its data is a placeholder);
    using it in an op then raises ``FreedValueError``."""
    return tensor._freed


def _tensors_in(result: Any) -> list[Tensor]:
    if isinstance(result, Tensor):
        return [result]
    if isinstance(result, dict):
        result = list(result.values())
    if isinstance(result, list | tuple):
        return [t for item in result for t in _tensors_in(item)]
    return []


def freeing_intermediates(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``; then the graph tensors it made and doesn't return free their values.

    Returned tensors are handed on to an enclosing ``freeing_intermediates``,
    which frees them in turn unless it returns them too. A graph of at most
    ``SMALL_GRAPH`` tensors keeps every value, so small examples can be
    looked at whole: freeing starts once the calls under way have recorded more.
    """
    if state.keep_values or not state.grad_enabled:  # without a graph nothing outlives fn
        return fn(*args, **kwargs)
    outer, outer_around = state.recorded, state.recorded_around
    state.recorded_around = outer_around + (len(outer) if outer is not None else 0)
    state.recorded = recorded = []
    try:
        result = fn(*args, **kwargs)
        if state.freeing_started or state.recorded_around + len(recorded) > SMALL_GRAPH:
            state.freeing_started = True
            returned = {id(t) for t in _tensors_in(result)}
            kept = []
            for tensor in recorded:
                if id(tensor) in returned:
                    kept.append(tensor)
                elif tensor.data.dtype.kind == "f":  # no NaN for other kinds: keep the value
                    tensor.data = _placeholder(tensor.data)
                    tensor._freed = True
            recorded = kept
        if outer is not None:
            outer.extend(recorded)
        return result
    finally:
        state.recorded, state.recorded_around = outer, outer_around
        if outer is None:
            state.freeing_started = False


class keep_values:  # noqa: N801 - used like a function: `with mt.keep_values():`
    """Inside this block layers keep the value of every tensor they make.

    For looking inside a forward pass (``draw_graph(root, show_values=True)``,
    reading ``x.parents[0].data``); it costs memory: an LSTM step keeps
    17 × (batch, units) numbers instead of 7 × (batch, units).
    """

    __slots__ = ("_previous",)

    def __init__(self) -> None:
        self._previous: list[bool] = []  # a stack: the same object may be re-entered

    def __enter__(self) -> None:
        self._previous.append(state.keep_values)
        state.keep_values = True

    def __exit__(self, *exc_info) -> None:
        state.keep_values = self._previous.pop()
