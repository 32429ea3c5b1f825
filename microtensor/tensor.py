"""The Tensor: a numpy array that remembers how it was made, and backward().

Every op (``ops.py``, ``shape_ops.py``; ``operators.py`` maps ``+``, ``@``,
``x[i]``, ``x.sum()`` ... to them) builds its result with ``Tensor._from_op`` and hands
it a small ``backward(grad)`` closure that pushes the output's gradient into
the op's inputs. ``Tensor.backward`` walks the recorded graph in reverse
topological order, iteratively, so a 100,000-step chain needs no recursion.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from operator import attrgetter

import numpy as np

from .context import state
from .coverage import Coverage, interval_of


class ShapeError(ValueError):
    """An op got operands whose shapes don't fit together."""


class FreedValueError(RuntimeError):
    """A tensor whose value was freed after the forward pass was used again."""


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    ``data`` is the numpy array; ``grad`` is filled by ``backward()`` (same
    shape as ``data``). ``op`` names the op that made the tensor (None for a
    leaf) and ``parents`` are its inputs. ``scope``/``step`` record the layer
    and time step that were running when it was made (see ``mt.scope``).
    """

    __slots__ = (
        "data", "grad", "requires_grad", "op", "parents", "name", "scope", "step",
        "_backward", "_grad_owned", "_retain_grad", "_products", "_coverage", "_freed",
        "_created", "__weakref__",
        "op_args",  # the op's arguments that are not tensors (pow's exponent), if it sets them
    )
    # How many x.T @ g products a weight collects before summing them in one GEMM, and the
    # row count from which a product runs alone (measured on the seed model, batch 32 / 256).
    PRODUCTS_PER_GEMM = 10
    ROWS_WORTH_A_GEMM = 128
    # Let numpy hand `ndarray * Tensor` to Tensor.__rmul__ instead of looping over us.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        if isinstance(data, Tensor):
            data = data._value("Tensor(...)")
        elif isinstance(data, list | tuple) and any(isinstance(d, Tensor) for d in data):
            raise TypeError("Tensor: got a list of Tensors; use mt.stack(tensors) to join them "
                            "(it keeps the graph), or pass their .data")
        dtype = state.default_dtype if dtype is None else np.dtype(dtype)
        if requires_grad and dtype.kind != "f":
            raise TypeError(f"Tensor: only floating tensors can require grad, got {dtype}")
        self._init_leaf(np.array(data, dtype=dtype), bool(requires_grad), name)

    def _init_leaf(self, data: np.ndarray, requires_grad: bool, name: str | None) -> None:
        self.data = data
        self.requires_grad = requires_grad
        self.grad: np.ndarray | None = None
        self.op: str | None = None
        self.parents: tuple[Tensor, ...] = ()
        self.name = name
        self.scope = state.scope
        self.step = state.step
        self._backward: Callable[[np.ndarray], None] | None = None
        self._grad_owned = False
        self._retain_grad = False
        self._products: tuple[list, list] | None = None
        self._coverage: Coverage | None = None
        self._freed = False  # see values.py
        self._created = next(_creation_counter)

    @staticmethod
    def _from_op(data: np.ndarray, op: str, parents: tuple[Tensor, ...],
                 backward: Callable[[np.ndarray], None]) -> Tensor:
        """The result of an op; records the graph only if some parent needs a gradient."""
        out = Tensor.__new__(Tensor)
        # numpy gives scalars for 0-d results; keep the promise that .data is an array
        out.data = data if data.__class__ is np.ndarray else np.asarray(data)
        out.grad = None
        out.op = op
        out.name = None
        out.scope = state.scope
        out.step = state.step
        out._grad_owned = False
        out._retain_grad = False
        out._products = None
        out._coverage = None
        out._freed = False
        out._created = next(_creation_counter)
        needs_grad = False
        for parent in parents:
            if parent._freed:
                raise FreedValueError(parent._freed_message(f"{op}: an input"))
            needs_grad = needs_grad or parent.requires_grad
        if needs_grad and state.grad_enabled:
            out.requires_grad = True
            out.parents = parents
            out._backward = backward
            if state.recorded is not None:  # see values.freeing_intermediates
                state.recorded.append(out)
        else:
            out.requires_grad = False
            out.parents = ()
            out._backward = None
        return out

    # -- plain array facts ---------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def numpy(self) -> np.ndarray:
        return self._value("x.numpy(): x")

    def item(self) -> float:
        return self._value("x.item(): x").item()

    def _value(self, user: str) -> np.ndarray:
        """``data``; a FreedValueError naming ``user`` if the value was freed (see values.py)."""
        if self._freed:
            raise FreedValueError(self._freed_message(user))
        return self.data

    def _single_value(self, user: str, error: type[Exception] = ValueError):
        """The Python number of a single-element tensor, for float(x), int(x), format(x)."""
        data = self._value(f"{user}: x")
        if data.size != 1:
            raise error(f"{user}: only a single-element tensor converts to a Python number, "
                        f"but x has shape {self.shape} ({data.size} elements); take one "
                        "element (x[i]), reduce it (x.sum()), or use x.numpy()")
        return data.item()

    def __float__(self) -> float:
        return float(self._single_value("float(x)"))

    def __int__(self) -> int:
        return int(self._single_value("int(x)"))

    def __bool__(self) -> bool:
        data = self._value("bool(x): x")
        if data.size != 1:
            count = "no values" if data.size == 0 else "more than one value"
            raise ValueError(f"bool(x): the truth value of a tensor with {count} is ambiguous "
                             f"(x has shape {self.shape}); use x.data.any() or x.data.all()")
        return bool(data.item())

    def __format__(self, spec: str) -> str:
        """``f"{x:.3f}"`` formats a single-element tensor's value; ``f"{x}"`` is ``repr(x)``."""
        if not spec:
            return str(self)
        return format(self._single_value(f"format(x, {spec!r})", TypeError), spec)

    def __iter__(self):
        """``x[0], x[1], ...``: each one a graph node, as in torch."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        self._value("iter(x): x")
        return (self[i] for i in range(len(self)))

    def detach(self) -> Tensor:
        """The same data, cut off from the graph."""
        out = Tensor.__new__(Tensor)
        out._init_leaf(self._value("detach"), False, None)
        return out

    def _freed_message(self, user: str) -> str:
        """Why ``user`` can't have this tensor's value, and how to keep it next time."""
        what = f"{self.name} = {self.op}" if self.name else self.op
        where = f" made in {self.scope}" if self.scope else ""
        where += f" at step {self.step}" if self.step else ""
        return (f"{user} is the tensor {what} {self.shape}{where}, whose "
                "value was freed when the layer call that made it returned without it. "
                "Return it from that call, .detach() it there (e.g. states kept for the next "
                "batch), or run the forward pass inside `with mt.keep_values():`")

    def retain_grad(self) -> Tensor:
        """Keep this non-leaf tensor's gradient after backward (leaves always keep theirs)."""
        self._retain_grad = True
        return self

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        if self._freed:
            body = f"<value freed after the forward pass; shape {self.shape}>"
        else:
            body = np.array2string(self.data, precision=4, threshold=20, edgeitems=2,
                                   prefix="Tensor(")
        extra = f", op={self.op}" if self.op else ""
        extra += ", requires_grad=True" if self.requires_grad else ""
        extra += f", name={self.name!r}" if self.name else ""
        return f"Tensor({body}, dtype={self.dtype}{extra})"

    __hash__ = object.__hash__

    # -- gradient bookkeeping -------------------------------------------------
    # A gradient array handed to us may be shared (add passes the same array to
    # both inputs), so the first one is kept without a copy and only copied when
    # a second one has to be added to it. Leaves always own theirs: users and
    # optimizers modify parameter gradients in place.
    def _accumulate(self, grad: np.ndarray) -> None:
        if not self.requires_grad:  # switched off since the forward pass: as torch, no grad
            return
        if self.grad is None:
            if self._backward is None:
                self.grad = np.array(grad, dtype=self.data.dtype)
                self._grad_owned = True
            else:
                self.grad = grad
                self._grad_owned = False
        elif self._grad_owned:
            self._complete_grad()
            self.grad += grad
        else:
            self.grad = self.grad + grad
            self._grad_owned = True

    def _accumulate_at(self, index, grad: np.ndarray, advanced: bool) -> None:
        """Add ``grad`` into ``self.grad[index]``: one shared buffer for all slices.

        Slicing ``x[:, t]`` at each of T steps then costs one buffer, not T
        full-size zero arrays (which would make backward O(T^2)). A slice that
        overlaps nothing written yet is copied in, not added (see coverage.py).
        """
        if not self.requires_grad:  # switched off since the forward pass: as _accumulate
            return
        interval = None if advanced else interval_of(index, self.data.shape)
        if interval is not None:
            if self.grad is None:
                self.grad = np.empty(self.data.shape, self.data.dtype)
                self._grad_owned = True
                self._coverage = Coverage(self.grad, interval[0])
            coverage = self._coverage
            if coverage is not None and coverage.buffer is self.grad and coverage.claim(*interval):
                self.grad[index] = grad
                if coverage.complete:
                    self._coverage = None
                return
        if self.grad is None:
            self.grad = np.zeros(self.data.shape, self.data.dtype)
        elif not self._grad_owned:
            self.grad = self.grad.copy()
        self._complete_grad()
        self._grad_owned = True
        if advanced:
            np.add.at(self.grad, index, grad)
        else:
            self.grad[index] += grad

    def _complete_grad(self) -> None:
        """Zero what no slice wrote in a buffer started by ``_accumulate_at``; then it is whole."""
        coverage, self._coverage = self._coverage, None
        if coverage is not None and coverage.buffer is self.grad:  # not replaced (x.grad = None)
            coverage.zero_the_rest()

    def _accumulate_product(self, x: np.ndarray, g: np.ndarray) -> None:
        """Add ``x.T @ g`` to this leaf's gradient; x (n, in), g (n, out).

        A weight used at every time step would pay one small product per step.
        Instead the pairs are collected and summed a few at a time as one
        bigger product, (x_1; ...; x_k).T @ (g_1; ...; g_k), which BLAS runs
        several times faster than k small ones. With many rows (a large batch)
        each product is already big enough, and the copies would only cost time.
        """
        if len(x) >= Tensor.ROWS_WORTH_A_GEMM:
            self._accumulate(x.T @ g)
            return
        if self._products is None:
            self._products = ([], [])
        xs, gs = self._products
        xs.append(x)
        gs.append(g)
        if len(xs) == Tensor.PRODUCTS_PER_GEMM:
            self._flush_products()

    def _flush_products(self) -> None:
        xs, gs = self._products
        self._products = None
        if len(xs) == 1:
            self._accumulate(xs[0].T @ gs[0])
        else:
            self._accumulate(np.concatenate(xs).T @ np.concatenate(gs))

    def zero_grad(self) -> None:
        self.grad = None
        self._coverage = None

    def backward(self, grad=None, retain_grads: bool = False) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires grad, into ``leaf.grad``.

        ``grad`` is d(loss)/d(self); it may be omitted only for a single-element
        tensor. Gradients add up in leaves over several calls, like PyTorch;
        intermediate gradients are freed as soon as they are used, unless
        ``retain_grad()`` was called on that tensor or ``retain_grads=True``
        keeps every one of them (for looking inside, e.g. ``draw_graph(root,
        show_values=True)``; it costs one array per node).
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad (it was computed from "
                "tensors with requires_grad=False, or under no_grad())")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be omitted only for a single-element tensor, but "
                    f"this one has shape {self.shape}; call .sum() first or pass "
                    f"grad= an array of shape {self.shape}")
            grad = np.ones_like(self.data)
        else:
            if isinstance(grad, Tensor):
                grad = grad._value("backward: grad")
            grad = np.array(grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ShapeError(
                    f"backward: grad has shape {grad.shape} but the tensor has shape {self.shape}")

        order = topological_order(self)
        # Retained gradients add up over backward calls (as leaves' do), but each node must
        # pass on only this call's gradient: set them aside and add them back at the end.
        retained = []
        for node in order:
            if node._backward is not None:
                if node._retain_grad and node.grad is not None:
                    retained.append((node, node.grad))
                node.grad = node._coverage = None
        self._accumulate(grad)
        try:
            for node in reversed(order):
                if node._backward is None or node.grad is None:
                    continue
                if node._coverage is not None:
                    node._complete_grad()
                node._backward(node.grad)
                if not (node._retain_grad or retain_grads):
                    node.grad = None
                elif not node._grad_owned:  # may be shared or a read-only broadcast view
                    node.grad = np.array(node.grad)
                    node._grad_owned = True
            for node in order:
                if node._products is not None:
                    node._flush_products()
            for node, earlier in retained:
                node.grad = earlier if node.grad is None else node.grad + earlier
        finally:  # after an error, no half-collected products linger into the next call
            for node in order:
                node._products = None
                if node._coverage is not None:  # a leaf's slice buffer, or after an error
                    node._complete_grad()


# Every tensor is numbered when it is made. Its parents existed before it, so
# sorting by that number is a topological order, found without a recursive walk.
_creation_counter = itertools.count()
_creation_order = attrgetter("_created")


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor that ``root`` depends on and that requires grad, parents first."""
    # A set of tensors is safe although == is elementwise: a Tensor hashes by identity, and
    # distinct objects never share a hash, so the set never calls __eq__.
    found = {root}
    stack = [root]
    while stack:
        for parent in stack.pop().parents:
            if parent.requires_grad and parent not in found:
                found.add(parent)
                stack.append(parent)
    return sorted(found, key=_creation_order)


def as_tensor(value, like: Tensor | None = None) -> Tensor:
    """``value`` as a Tensor; Python scalars and arrays take a floating ``like``'s dtype.

    So ``x * 0.5`` or ``1 - x`` keep float32 tensors float32. Next to an integer
    tensor numpy's promotion decides (``int_tensor * 0.5`` is not truncated).
    """
    if isinstance(value, Tensor):
        return value
    out = Tensor.__new__(Tensor)
    if like is None:
        dtype = state.default_dtype
    elif like.data.dtype.kind == "f":
        dtype = like.data.dtype
    else:
        value = np.asarray(value)  # result_type takes arrays and scalars, not lists
        dtype = np.result_type(like.data, value)
    out._init_leaf(np.asarray(value, dtype=dtype), False, None)
    return out
