"""The engine's speed and memory machinery, in one module a reader can skip. Without it:

    grad = g if grad is None else grad + g      # how backward adds up gradients
    (and every tensor keeps its value)           # what a forward pass keeps

``with mt.plain_engine():`` switches all of it off (a ``Scatter`` or ``Product`` then
becomes its plain array at once, ``dense()``); the tests check that both ways give the
same gradients. What each piece buys is measured in benchmarks/README.md.

**Adding up gradients.** ``tensor.PlainSum`` is the first line above. ``GradientSum``
gives the same sums with less memory traffic:

* Slices. The gradient of ``x[index]`` is a ``Scatter``: "g, at ``index`` of zeros
  shaped like x". Made dense one by one, the T slices ``x[t]`` of a time loop would
  cost T full-size arrays, O(T^2) work; here all the slices of one tensor are added
  into one buffer.
* Ownership. The first gradient to reach a node is kept as it is (often a view, or
  an array also handed to another input); when a second one arrives, their sum is
  made once into a new array owned here, and later ones are added into it in place
  instead of allocating ``grad + g`` each time.
* Weight products. The gradient of the weight in ``x @ w`` is a ``Product``, "x.T @ g";
  a recurrent kernel gets one per time step, and those with few rows (a small batch)
  are multiplied ten at a time, in one bigger product.

**Dropping values (opt-in).** By default every tensor keeps its value, so any forward
pass can be looked at whole. A training step that throws its graph away after
``backward`` (``fit``'s own step) doesn't need them all: an LSTM step makes tensors
holding 17 × (batch, units) numbers, and its backward reads only 7 × (batch, units)
of them (each op's ``backward`` captured the arrays it needs when it ran). Inside
``with mt.freeing_values():`` each layer call and each step of a recurrent layer,
once done, replaces the value of every tensor it made and doesn't return by a
placeholder that takes no memory. The tensors keep their place in the graph (op,
shape, parents); using one's value again raises ``FreedValueError``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np

from .context import state

# -- adding up gradients -------------------------------------------------------------------


class Scatter(NamedTuple):
    """The gradient of ``x[index]``: ``values`` at ``index`` of zeros of ``shape``."""

    shape: tuple[int, ...]
    index: object
    values: np.ndarray

    def add_into(self, buffer: np.ndarray) -> None:
        """buffer[index] += values, also where an array index repeats an element."""
        if self._slices_only():
            view = buffer[self.index]
            if view.__class__ is np.ndarray:  # (not a single element, given as a scalar)
                np.add(view, self.values, out=view)  # (``+=`` would also copy it back)
                return
        parts = self.index if isinstance(self.index, tuple) else (self.index,)
        if any(isinstance(p, np.ndarray) for p in parts):
            np.add.at(buffer, self.index, self.values)
        else:
            buffer[self.index] += self.values

    def dense(self) -> np.ndarray:
        buffer = np.zeros(self.shape, self.values.dtype)
        if self._slices_only():
            buffer[self.index] = self.values  # (into zeros: nothing to add to)
        else:
            self.add_into(buffer)
        return buffer

    def _slices_only(self) -> bool:
        return is_view_index(self.index)


def is_view_index(index: object) -> bool:
    """Is the index made of slices, ints, None and ... only (so x[index] is a view)?"""
    if index.__class__ is tuple:
        return all(part.__class__ in _VIEW_INDEX for part in index)
    return index.__class__ in _VIEW_INDEX


_VIEW_INDEX = {slice, int, type(None), type(Ellipsis)}


class Product(NamedTuple):
    """The gradient of a weight in ``x @ w``: ``x.T @ g``, not multiplied yet.

    x (rows, in), g (rows, out). A weight used at every time step gets one per step;
    a few are multiplied at once, (x_1; ...; x_k).T @ (g_1; ...; g_k), which BLAS runs
    faster than k small products (and the sum is written once, not k times).
    """

    x: np.ndarray
    g: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.x.shape[1], self.g.shape[1]

    def dense(self) -> np.ndarray:
        return self.x.T @ self.g


# A Product with this many rows is big enough for BLAS alone; below, up to this many are
# multiplied at once (measured on the seed model, batch 32 and 256).
ROWS_WORTH_A_GEMM = 128
PRODUCTS_PER_GEMM = 10


class GradientSum:
    """``grads.add(node, g)`` and ``grads.pop(node)`` as ``tensor.PlainSum`` does them, with
    less memory traffic: slices of one node go into one buffer, a sum made here is added to
    in place, and a weight's products are multiplied a few at a time."""

    def __init__(self) -> None:
        self.grads: dict = {}
        self.owned: set = set()  # the nodes whose array was made here
        self.products: dict = {}  # node -> the Products not multiplied yet

    def add(self, node, g) -> None:
        if g.__class__ is Product:
            if len(g.x) < ROWS_WORTH_A_GEMM:
                waiting = self.products.setdefault(node, [])
                waiting.append(g)
                if len(waiting) == PRODUCTS_PER_GEMM:
                    self._multiply(node)
                return
            g = g.dense()
        grad = self.grads.get(node)
        if g.__class__ is Scatter:
            if grad is None:
                self.grads[node] = g.dense()
                self.owned.add(node)
                return
            grad = self._own(node, grad)
            g.add_into(grad)
        elif grad is None:
            self.grads[node] = g  # not ours to change: someone else may hold it too
        elif node in self.owned:
            np.add(grad, g, out=grad)
        else:  # the second one: their sum, made here (in the first one's dtype, as the
            self.grads[node] = np.asarray(np.add(grad, g, dtype=grad.dtype))  # later adds)
            self.owned.add(node)

    def _own(self, node, grad: np.ndarray) -> np.ndarray:
        """The node's sum as an array made here (a copy, the first time), to add into."""
        if node not in self.owned:
            grad = self.grads[node] = np.array(grad)  # (np.array: numpy scalars too)
            self.owned.add(node)
        return grad

    def pop(self, node) -> np.ndarray | None:
        """The node's whole gradient: everything reaches a node before backward visits it."""
        if node in self.products:
            self._multiply(node)
        return self.grads.pop(node, None)

    def _multiply(self, node) -> None:
        waiting = self.products.pop(node)
        xs, gs = [p.x for p in waiting], [p.g for p in waiting]
        self.add(node, np.concatenate(xs).T @ np.concatenate(gs))


# -- dropping values -----------------------------------------------------------------------

class FreedArray(np.ndarray):
    """The placeholder of a dropped value: NaNs of its shape and dtype, in no memory."""


def is_freed(data: np.ndarray) -> bool:
    return type(data) is FreedArray


def freed_message(tensor, user: str) -> str:
    """Why ``user`` can't have this tensor's value."""
    what = f"{tensor.name} = {tensor.op}" if tensor.name else tensor.op
    where = f" made in {tensor.scope}" if tensor.scope else ""
    where += f" at step {tensor.step}" if tensor.step else ""
    return (f"{user} is the tensor {what} {tensor.shape}{where}, whose value was dropped "
            "inside mt.freeing_values() when the call that made it returned without it; "
            "run the forward pass outside that block to keep every value")


def note_made(tensor) -> None:
    """Inside freeing_values(): remember a new graph tensor, for the call under way to drop."""
    state.made.append(tensor)


def _tensors_in(value: Any) -> list:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [t for item in value for t in _tensors_in(item)]
    return [value] if hasattr(value, "parents") else []


def freeing_intermediates(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``. Inside ``freeing_values()``, the float tensors it made and
    doesn't return drop their values. (What it returns is kept: an h_t that the next step
    reads lives on in that step's backward anyway.)"""
    if not state.free_values or state.plain_engine:
        return fn(*args, **kwargs)
    made = state.made
    start = len(made)
    result = fn(*args, **kwargs)
    returned = {id(t) for t in _tensors_in(result)}
    for tensor in made[start:]:
        if id(tensor) not in returned and tensor.data.dtype.kind == "f":
            tensor.data = _placeholder(tensor.data)
    del made[start:]
    return result


_placeholders: dict[tuple, FreedArray] = {}


def _placeholder(data: np.ndarray) -> FreedArray:
    """NaNs of data's shape and dtype that take no memory: one array for each pair."""
    key = (data.shape, data.dtype)
    if key not in _placeholders:
        nan = np.array(np.nan, data.dtype)
        _placeholders[key] = np.broadcast_to(nan, data.shape).view(FreedArray)
    return _placeholders[key]


# -- the cycle collector ---------------------------------------------------------------------

@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one training step (or a forward pass).

    A step's graph has no reference cycles (a node points only at its inputs, a
    ``backward`` closure at arrays), so reference counting frees it; meanwhile the
    collector would walk its ~16,000 live objects again and again for nothing (about
    15% of a seed-model step at batch 32, measured), and more in a process holding
    many objects (torch's 170,000 make one full collection about 60 ms).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Switch:
    """A ``with`` block that sets one flag of the thread's state, then restores it."""

    __slots__ = ("_previous",)
    flag: str

    def __init__(self) -> None:
        self._previous: list[bool] = []  # a stack: the same object may be re-entered

    def __enter__(self) -> None:
        self._previous.append(getattr(state, self.flag))
        setattr(state, self.flag, True)

    def __exit__(self, *exc_info) -> None:
        setattr(state, self.flag, self._previous.pop())
        if not state.free_values:
            state.made = []


class freeing_values(_Switch):  # noqa: N801 - used like a function: `with mt.freeing_values():`
    """Inside this block, layers drop the values of intermediates no backward needs.

    For a training loop that only wants the gradients; ``fit`` uses it for its
    own step. Looking inside (``model.record``, pictures with values) needs the
    values: run those forward passes outside the block.
    """

    __slots__ = ()
    flag = "free_values"


class plain_engine(_Switch):  # noqa: N801 - used like a function: `with mt.plain_engine():`
    """Inside this block the engine runs without this module: gradients are added up as
    ``grad + g`` and every value is kept (even inside ``freeing_values()``)."""

    __slots__ = ()
    flag = "plain_engine"
