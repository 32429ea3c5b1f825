"""Tracing for ``mt.compile`` (compile.py): what the first calls of a step write down while
they run eagerly. Without this module there is nothing to replay: ``step = fn``.

A ``Tracer`` sits in ``state.tracer`` while a call runs. The engine tells it about each op
``apply`` runs (``op``), each ``backward()`` (``backward``) and each value Python reads
(``read``); nn's layers and optim's optimizers tell it about choices made in Python
(``python_choice``, ``guard``) and calls with effects outside the graph (``@replayed``).
compile.py turns what it wrote down into a ``Program``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .context import state
from .shape_ops import getitem
from .tensor import Tensor, topological_order


class Unreplayable(Exception):
    """The traced call did something a replay can't repeat; the message says what."""


def python_choice(what: str) -> None:
    """Tell a trace under way that Python chose something from data here (``what``), so the
    traced program is good for this call only: the step then runs eagerly."""
    tracer = state.tracer
    if tracer is not None and tracer.problem is None:
        tracer.problem = what


def guard(read: Callable[[], Any], what: str) -> None:
    """Tell a trace under way that Python chose something from ``read()``'s value here (a
    layer's training flag, ``what``): each replay first checks ``read()`` still gives that
    value, and traces again if not."""
    tracer = state.tracer
    if tracer is not None:
        tracer.guards.append((read, read(), what))


def replayed(method: Callable) -> Callable:
    """Mark a function with effects outside the graph (an optimizer's ``step``): a traced
    call records it, and each replay calls it again at the same place. Ops it runs itself
    are not recorded (the call is repeated as a whole)."""
    @functools.wraps(method)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        tracer = state.tracer
        if tracer is None:
            return method(*args, **kwargs)
        # a generator of parameters would be empty at the second call: keep its items
        args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
        tracer.program.append(("call", method, args, kwargs))
        state.tracer = None
        try:
            return method(*args, **kwargs)
        finally:
            state.tracer = tracer
            tracer.snapshot_parameters()  # what it changed, a replay changes again
    return recorded


# -- what a call looks like: its signature, its arrays --------------------------------------

def signature_of(value: Any) -> Any:
    """Shapes and dtypes of arrays, nested lists as they are, other values themselves."""
    if isinstance(value, np.ndarray | Tensor):
        return ("array", value.shape, value.dtype.str, isinstance(value, Tensor)
                and value.requires_grad)
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(signature_of(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, signature_of(v)) for k, v in value.items()))
    hash(value)  # TypeError for an unhashable argument: the caller runs fn eagerly
    return ("value", type(value).__name__, value)


def leaves_of(value: Any, kinds: type | tuple = (np.ndarray, Tensor)) -> list:
    """The arrays and tensors (or other ``kinds``) among ``value`` (nested lists, tuples,
    dicts), in order."""
    if isinstance(value, kinds):
        return [value]
    if isinstance(value, list | tuple):
        return [leaf for v in value for leaf in leaves_of(v, kinds)]
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in leaves_of(v, kinds)]
    return []


def array_of(value) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else value


# -- tracing ---------------------------------------------------------------------------------

class Tracer:
    """Writes down one eager call of ``fn`` as a ``Program`` (see the module docstring).

    Every value gets a slot: the call's arrays first, then parameters and constants as
    ops first read them, and each op's result. ``slot_of`` maps a tensor to its slot.
    """

    def __init__(self, args: tuple) -> None:
        self.args = leaves_of(args)
        self.program: list[tuple] = []
        self.sources: list[tuple] = [("arg", k) for k in range(len(self.args))]
        self.tensors: list[Tensor] = []  # a slot's tensor (keeps ids unique while tracing)
        self.slot_of: dict[int, int] = {}
        self.slot_of_array: dict[int, int] = {}  # an op's result by array: detach() aliases it
        self.arrays: list[np.ndarray] = []  # results, kept so that ids stay unique
        self.problem: str | None = None
        self.guards: list[tuple] = []  # (read, value, what): see guard()
        self.parameters: dict[int, tuple] = {}  # slot -> (its array, a copy of its values)
        for k, arg in enumerate(self.args):
            self.tensors.append(arg if isinstance(arg, Tensor) else None)
            if isinstance(arg, Tensor):
                self.slot_of[id(arg)] = k

    # Called by the engine ------------------------------------------------------------------
    def op(self, op: Callable, inputs: tuple[Tensor, ...], constants: dict,
           out: Tensor) -> None:
        """``apply`` ran ``op`` on ``inputs`` and made ``out``."""
        reads = tuple(self._slot(t) for t in inputs)
        constants = {key: self._constant(value) for key, value in constants.items()}
        if op is getitem and _boolean_from_argument(constants.get("index")):
            self.problem = self.problem or (
                "a boolean mask from the data picks elements (how many can change)")
        slot = self._new_slot(out, ("op", op.__name__))
        self.slot_of_array[id(out.data)] = slot
        self.arrays.append(out.data)
        self.program.append(("op", op, reads, constants, slot))

    def read(self, tensor: Tensor, user: str) -> None:
        """Python is about to use ``tensor``'s value (``user`` says how)."""
        if user == "detach" or self.problem is not None:
            return  # a detached value is found again by its array (``_slot``)
        slot = self.slot_of.get(id(tensor), self.slot_of_array.get(id(tensor.data)))
        if slot is not None or tensor.requires_grad:  # (the array: a detached value too)
            call = user.split(": ")[0]  # "x.item(): x" -> x.item()
            self.problem = (f"Python reads a value inside the step: {call}, where x is "
                            f"{described(tensor)}")

    def changed_in_place(self, tensor: Tensor, how: str) -> None:
        """``how`` (x -= y) changes ``tensor``'s array inside the step, out of the ops' sight."""
        self.problem = self.problem or (
            f"{how} changes {described(tensor)} in place inside the step, which a replay "
            "would not repeat; update parameters with an optimizer (optim.SGD)")

    def backward(self, root: Tensor, grad, retain_grads: bool) -> None:
        """``root.backward()`` is about to run: write down its order."""
        if grad is not None or retain_grads:
            self.problem = self.problem or "backward(grad=...) or retain_grads inside the step"
            return
        plan = []
        for node in reversed(topological_order(root)):
            slot = self.slot_of.get(id(node))
            if slot is None:
                slot = self._slot(node)
            if node._backward is None:  # a leaf: did it hold a gradient already?
                plan.append((slot, node.grad is not None))
                continue
            if node._retain_grad:
                self.problem = self.problem or "retain_grad() inside the step"
            parents = tuple((self._slot(p), p.shape) if p.requires_grad else (None, None)
                            for p in node.parents)
            plan.append((slot, parents))
        self.program.append(("backward", self._slot(root), plan))

    def snapshot_parameters(self) -> None:
        """Note the parameters' values now (after a ``@replayed`` call changed them)."""
        for slot in self.parameters:
            data = self.tensors[slot].data
            self.parameters[slot] = (data, data.copy())

    def check_parameters(self) -> None:
        """A parameter changed since an op first read it, other than by a ``@replayed`` call
        (``p.data -= lr * p.grad``): a replay would not change it."""
        for slot, (data, values) in self.parameters.items():
            tensor = self.tensors[slot]
            if tensor.data is not data or not np.array_equal(data, values, equal_nan=True):
                self.problem = self.problem or (
                    f"the step changes {described(tensor)} outside an op or an optimizer's step "
                    "(as p.data -= ...), which a replay would not repeat; update it with an "
                    "optimizer (optim.SGD)")
                return

    # Slots ---------------------------------------------------------------------------------
    def _new_slot(self, tensor: Tensor, source: tuple) -> int:
        slot = len(self.sources)
        self.sources.append(source)
        self.tensors.append(tensor)
        self.slot_of[id(tensor)] = slot
        return slot

    def _slot(self, tensor: Tensor) -> int:
        """The slot of an op's input: seen before, a detached result, a parameter (read
        afresh at each replay), an argument's values, or a constant."""
        slot = self.slot_of.get(id(tensor))
        if slot is not None:
            return slot
        if tensor._backward is not None:
            self.problem = self.problem or (
                f"the step uses {described(tensor)}, made before it began")
            return -1
        alias = self.slot_of_array.get(id(tensor.data))
        if alias is not None:
            self.slot_of[id(tensor)] = alias
            return alias
        if tensor.requires_grad:
            slot = self._new_slot(tensor, ("param", tensor))
            self.parameters[slot] = (tensor.data, tensor.data.copy())
            return slot
        found = self._argument_like(tensor.data)
        if found is not None:
            return self._new_slot(tensor, found)
        return self._new_slot(tensor, ("constant", tensor.data))

    def _argument_like(self, data: np.ndarray) -> tuple | None:
        """``("arg", k, dtype)`` if ``data`` holds argument k's values (``Tensor(x)`` copies x)."""
        for k, arg in enumerate(self.args):
            values = array_of(arg)
            if (values.shape == data.shape and values.size > 1
                    and np.array_equal(values.astype(data.dtype, copy=False), data)):
                return ("arg", k, data.dtype)
        return None

    def _constant(self, value: Any) -> Any:
        """An op's constant; an array holding an argument's values (an embedding's indices)
        becomes a reference to that argument."""
        if isinstance(value, tuple):
            return tuple(self._constant(v) for v in value)
        if isinstance(value, np.ndarray):
            found = self._argument_like(value)
            if found is not None:
                return FromArgument(*found[1:])
        return value


class FromArgument:
    """An op's constant taken from argument ``k`` at each replay (cast to ``dtype``)."""

    def __init__(self, k: int, dtype: np.dtype) -> None:
        self.k, self.dtype = k, dtype

    def __eq__(self, other) -> bool:
        return isinstance(other, FromArgument) and (self.k, self.dtype) == (other.k, other.dtype)

    def __repr__(self) -> str:
        return f"arg{self.k}"


def _boolean_from_argument(index: Any) -> bool:
    """Is (part of) this index a boolean array taken from the call's arguments?"""
    if isinstance(index, tuple):
        return any(_boolean_from_argument(part) for part in index)
    return isinstance(index, FromArgument) and index.dtype == np.bool_


def described(tensor: Tensor) -> str:
    name = tensor.name or tensor.op or "a leaf"
    return f"{name} of shape {tensor.shape}" + (f" in {tensor.scope}" if tensor.scope else "")
