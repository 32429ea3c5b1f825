"""Switches that every new tensor reads: grad mode, the default dtype, and the
(layer, time step) tag that lets pictures and ``model.record`` find a node.

Grad mode and the tag belong to the thread that sets them, as in torch: a
``predict`` in one thread (under ``no_grad``) leaves a ``fit`` in another
recording its graph. The default dtype is one setting for the whole process.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np


class _ThreadState(threading.local):
    # Class attributes are each new thread's starting values.
    grad_enabled: bool = True
    # (scope, step): the name of the layer running, e.g. "lstm1", and the time step inside
    # a recurrent layer; one tuple, handed as it is to every tensor made meanwhile
    where: tuple[str | None, int | None] = (None, None)
    free_values: bool = False  # speedups.freeing_values(): drop values no backward needs
    plain_engine: bool = False  # speedups.plain_engine(): none of that module's machinery
    tracer = None  # compile.Tracer: inside mt.compile's first call, it writes the ops down

    def __init__(self) -> None:
        self.made: list = []  # inside freeing_values(): graph tensors the calls under way made


class _ProcessState:
    default_dtype: np.dtype = np.dtype(np.float32)


state = _ThreadState()
process = _ProcessState()


class _GradMode:
    """Sets grad mode inside a ``with`` block or a decorated function, then restores it.

    Like ``torch.no_grad``: ``with mt.no_grad():``, ``@mt.no_grad()`` and ``@mt.no_grad``
    all work. A plain class rather than a generator: one object may be entered again,
    or inside itself (a stack of previous modes), and decorate a recursive function.
    """

    __slots__ = ("_previous",)
    enabled: ClassVar[bool]

    def __new__(cls, fn: Callable | None = None):
        if fn is None:
            return super().__new__(cls)
        return cls()(fn)  # the bare decorator `@mt.no_grad`: return the wrapped function

    def __init__(self, fn: Callable | None = None) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(state.grad_enabled)
        state.grad_enabled = self.enabled

    def __exit__(self, *exc_info) -> None:
        state.grad_enabled = self._previous.pop()

    def __call__(self, fn: Callable) -> Callable:
        if not callable(fn):
            raise TypeError(f"{type(self).__name__}: expected a function to decorate, "
                            f"got {type(fn).__name__}")

        @functools.wraps(fn)
        def with_grad_mode(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return with_grad_mode


class no_grad(_GradMode):  # noqa: N801 - used like a function: `with mt.no_grad():`
    """Inside this block (or decorated function) no graph is recorded: results have
    requires_grad=False."""

    __slots__ = ()
    enabled = False


class enable_grad(_GradMode):  # noqa: N801 - used like a function: `with mt.enable_grad():`
    """Record the graph again, e.g. inside a no_grad block (or as a decorator)."""

    __slots__ = ()
    enabled = True


def is_grad_enabled() -> bool:
    return state.grad_enabled


def set_default_dtype(dtype) -> None:
    """Dtype of tensors created without an explicit dtype (float32 unless changed)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    process.default_dtype = dtype


def get_default_dtype() -> np.dtype:
    return process.default_dtype


class scope:  # noqa: N801 - used like a function: `with mt.scope("lstm1"):`
    """Tag every tensor made inside with a layer name and/or a time step.

    Layers use it so that pictures draw one cluster per layer and one per time
    step, and so that ``model.record`` finds "lstm1's f at step 3". A nested
    scope without a name keeps the outer name (a time step inside a layer).
    Your own loops can use it too: ``with mt.scope(step=t): h = cell(x[:, t], h)``.
    """

    __slots__ = ("name", "step", "_previous")

    def __init__(self, name: str | None = None, step: int | None = None):
        self.name, self.step = name, step
        self._previous: list[tuple] = []  # a stack: the same scope object may be re-entered

    def __enter__(self) -> None:
        scope, step = state.where
        self._previous.append(state.where)
        if self.name is not None:
            scope, step = self.name, None
        if self.step is not None:
            step = self.step
        state.where = (scope, step)

    def __exit__(self, *exc_info) -> None:
        state.where = self._previous.pop()
