"""The Tensor: a numpy array that remembers how it was made, and backward().

Every op (``ops.py``, ``shape_ops.py``) is a function of arrays that returns its
result and a ``backward(g)`` giving the gradient of each input. ``apply`` runs
one on tensors and records the result as a node: its ``parents`` and that
``backward``. ``Tensor.backward`` visits the nodes in reverse topological order
and hands each one's gradient to its ``backward``; what comes back is added into
the parents' gradients (``speedups.py``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import NamedTuple

import numpy as np

from . import ops, shape_ops
from .context import process, state
from .errors import FreedValueError, ShapeError
from .ops import Axis, reduced_axes, unbroadcast
from .speedups import GradientSum, freed_message, is_freed, note_made

Backward = Callable[[np.ndarray], tuple]
_NO_ARGS: dict = {}  # op_args of a tensor whose op took no constants (never changed)
TensorLike = "Tensor | np.ndarray | float"  # what ops take: numbers and arrays become constants


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    ``data`` is the numpy array; ``grad`` is filled by ``backward()`` (same
    shape as ``data``). ``op`` names the op that made the tensor (None for a
    leaf), ``op_args`` holds the op's constants (pow's exponent, an index) and
    ``parents`` are its inputs. ``scope``/``step`` record the layer and time
    step that were running when it was made (see ``mt.scope``).
    """

    __slots__ = ("data", "grad", "requires_grad", "op", "op_args", "parents", "_backward",
                 "name", "where", "_retain_grad")
    # numpy hands `ndarray * Tensor` to Tensor.__rmul__ instead of looping over our elements.
    __array_ufunc__ = None

    def __init__(self, data: object, requires_grad: bool = False, dtype: object = None,
                 name: str | None = None):
        if data is None:
            raise TypeError("Tensor: got None; expected numbers, a (nested) list or an array")
        if isinstance(data, Tensor):
            data = data.numpy()
        elif isinstance(data, list | tuple) and any(isinstance(d, Tensor) for d in data):
            raise TypeError("Tensor: got a list of Tensors; use mt.stack(tensors) to join them "
                            "(it keeps the graph), or pass their .data")
        dtype = process.default_dtype if dtype is None else np.dtype(dtype)
        if requires_grad and dtype.kind != "f":
            raise TypeError(f"Tensor: only floating tensors can require grad, got {dtype}")
        try:
            array = np.array(data, dtype=dtype)
        except (TypeError, ValueError) as err:
            raise TypeError(f"Tensor: can't make numbers of {type(data).__name__} "
                            f"{data!r:.60}: {err}") from None
        self._set(array, None, (), None, requires_grad, name)

    def _set(self, data: np.ndarray, op: str | None, parents: tuple[Tensor, ...],
             backward: Backward | None, requires_grad: bool, name: str | None) -> None:
        self.data = data
        self.grad: np.ndarray | None = None
        self.op = op
        self.op_args = _NO_ARGS
        self.parents = parents
        self._backward = backward
        self.requires_grad = bool(requires_grad)
        self.name = name
        self.where = state.where  # (scope, step)
        self._retain_grad = False

    @staticmethod
    def _from_op(data: np.ndarray, op: str, parents: tuple[Tensor, ...],
                 backward: Backward) -> Tensor:
        """The result of an op. The graph is recorded only if some parent needs a gradient."""
        out = Tensor.__new__(Tensor)
        data = data if type(data) is np.ndarray else np.asarray(data)  # numpy gives 0-D scalars
        if state.grad_enabled and data.dtype.kind == "f":  # (no gradient through integers)
            for parent in parents:
                if parent.requires_grad:
                    out._set(data, op, parents, backward, True, None)
                    if state.free_values:
                        note_made(out)
                    return out
        out._set(data, op, (), None, False, None)
        return out

    # -- the algorithm --------------------------------------------------------------------
    def backward(self, grad: np.ndarray | Tensor | None = None,
                 retain_grads: bool = False) -> None:
        """d(self)/d(x) for every tensor x that self was computed from and that requires grad.

        ``grad`` is d loss / d self; it may be omitted only for a single-element
        tensor. Leaves keep their gradient in ``.grad``, added to what they had
        (as in torch); other tensors keep theirs only after ``retain_grad()``, or
        all of them with ``retain_grads=True``.
        """
        if state.tracer is not None:  # inside mt.compile's first call (compile.py)
            state.tracer.backward(self, grad, retain_grads)
        grads = PlainSum() if state.plain_engine else GradientSum()  # (speedups.py)
        grads.add(self, self._seed_gradient(grad))
        for node in reversed(topological_order(self)):
            g = grads.pop(node)
            if g is None:
                continue
            if node._backward is None or node._retain_grad or retain_grads:
                node.grad = np.array(g if node.grad is None else node.grad + g, node.dtype)
            if node._backward is not None:
                for parent, parent_grad in zip(node.parents, node._backward(g), strict=True):
                    if parent.requires_grad:
                        if parent_grad.shape != parent.data.shape:  # (a quick unbroadcast check)
                            parent_grad = unbroadcast(parent_grad, parent.data.shape)
                        grads.add(parent, parent_grad)

    def _seed_gradient(self, grad) -> np.ndarray:
        """d self / d self: ones for a single number, else the ``grad`` the caller gave."""
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
            return np.ones_like(self.data)
        grad = np.array(grad.numpy() if isinstance(grad, Tensor) else grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ShapeError(
                f"backward: grad has shape {grad.shape} but the tensor has shape {self.shape}")
        return grad

    def retain_grad(self) -> Tensor:
        """Keep this non-leaf tensor's gradient after backward (leaves always keep theirs)."""
        self._retain_grad = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    @property
    def scope(self) -> str | None:
        """The layer that made this tensor (``mt.scope(name)``), e.g. "lstm1"."""
        return self.where[0]

    @property
    def step(self) -> int | None:
        """The time step that made it, inside a recurrent layer (``mt.scope(step=t)``)."""
        return self.where[1]

    # -- plain array facts -------------------------------------------------------------
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
    def size(self) -> Size:
        """The number of elements, as numpy's ``x.size``; also callable as torch's: ``x.size()``
        is the shape, ``x.size(0)`` the length of axis 0."""
        return Size(self.shape)

    def numel(self) -> int:
        """The number of elements (torch's name)."""
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self._value("x.numpy(): x")

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(x)`` gives x's values (not an array of tensors)."""
        data = self._value("np.asarray(x): x")
        return np.array(data, dtype=dtype, copy=True) if copy else np.asarray(data, dtype)

    def item(self) -> float:
        return self._value("x.item(): x").item()

    def detach(self) -> Tensor:
        """The same data, cut off from the graph."""
        out = Tensor.__new__(Tensor)
        out._set(self._value("detach"), None, (), None, False, None)
        return out

    def _value(self, user: str) -> np.ndarray:
        """``data``; a FreedValueError naming ``user`` if it was dropped (see speedups.py)."""
        if is_freed(self.data):
            raise FreedValueError(freed_message(self, user))
        if state.tracer is not None:  # a traced step can't replay what Python does with it
            state.tracer.read(self, user)
        return self.data

    def __repr__(self) -> str:
        if state.tracer is not None:  # print(x) in a traced step: replays would print nothing
            state.tracer.read(self, "print(x) or repr(x): x")
        if is_freed(self.data):
            body = f"<value freed after the forward pass; shape {self.shape}>"
        else:
            body = np.array2string(self.data, precision=4, threshold=20, edgeitems=2,
                                   prefix="Tensor(")
        extra = f", op={self.op}" if self.op else ""
        extra += ", requires_grad=True" if self.requires_grad else ""
        extra += f", name={self.name!r}" if self.name else ""
        return f"Tensor({body}, dtype={self.dtype}{extra})"

    __hash__ = object.__hash__  # by identity: == is elementwise

    # -- Python's number protocols, as torch ---------------------------------------------
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
            raise TypeError("iter(x): iteration over a 0-d tensor")
        self._value("iter(x): x")
        return (self[i] for i in range(len(self)))

    # -- operators: each one is an op of ops.py or shape_ops.py ---------------------------
    def __add__(self, other: TensorLike) -> Tensor:
        return apply(ops.add, self, other)

    def __radd__(self, other: TensorLike) -> Tensor:
        return apply(ops.add, other, self)

    def __sub__(self, other: TensorLike) -> Tensor:
        return apply(ops.sub, self, other)

    def __rsub__(self, other: TensorLike) -> Tensor:
        return apply(ops.sub, other, self)

    def __mul__(self, other: TensorLike) -> Tensor:
        return apply(ops.mul, self, other)

    def __rmul__(self, other: TensorLike) -> Tensor:
        return apply(ops.mul, other, self)

    def __truediv__(self, other: TensorLike) -> Tensor:
        return apply(ops.div, self, other)

    def __rtruediv__(self, other: TensorLike) -> Tensor:
        return apply(ops.div, other, self)

    # x += y and the like, as torch: under no_grad() x changes in place (``p -= lr * p.grad``
    # updates p); with grad on, a new node (x = x + y), except on a leaf that requires grad.
    def __iadd__(self, other: TensorLike) -> Tensor:
        return self._in_place(np.add, other, Tensor.__add__)

    def __isub__(self, other: TensorLike) -> Tensor:
        return self._in_place(np.subtract, other, Tensor.__sub__)

    def __imul__(self, other: TensorLike) -> Tensor:
        return self._in_place(np.multiply, other, Tensor.__mul__)

    def __itruediv__(self, other: TensorLike) -> Tensor:
        return self._in_place(np.divide, other, Tensor.__truediv__)

    def _in_place(self, ufunc: np.ufunc, other: TensorLike, new_node: Callable) -> Tensor:
        symbol = f"x {_IN_PLACE[ufunc]} y"
        if state.grad_enabled:
            if self.requires_grad and self._backward is None:
                raise RuntimeError(
                    f"{symbol}: x is a leaf that requires grad ({self.name or self.shape}), "
                    "changed in place, backward would not see it. Update it under "
                    "`with mt.no_grad():` (as torch), or write x = x - y for a new tensor")
            return new_node(self, other)
        if self._backward is not None:
            raise RuntimeError(
                f"{symbol}: x is part of a graph (made by {self.op}); changing its value in "
                "place would change what backward computes from it; write x = x - y instead")
        if state.tracer is not None:  # a traced step: a replay would not repeat it
            state.tracer.changed_in_place(self, symbol)
        data = self._value(f"{symbol}: x")
        value = other._value(f"{symbol}: y") if isinstance(other, Tensor) else other
        try:
            fits = np.broadcast_shapes(np.shape(value), data.shape) == data.shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(f"{symbol}: y of shape {np.shape(value)} can't be written into x "
                             f"of shape {self.shape}")
        ufunc(data, value, out=data, casting="same_kind")
        return self

    def __matmul__(self, other: TensorLike) -> Tensor:
        return matmul(self, other)

    def __rmatmul__(self, other: TensorLike) -> Tensor:
        return matmul(other, self)

    def __neg__(self) -> Tensor:
        return apply(ops.neg, self)

    def __pow__(self, exponent: float) -> Tensor:
        if not isinstance(exponent, numbers.Real):
            raise TypeError(f"pow: only a scalar exponent is supported, got "
                            f"{type(exponent).__name__}")
        if isinstance(exponent, np.generic):  # np.float64(2) would make float32 float64
            exponent = exponent.item()
        return apply(ops.power, self, exponent=exponent)

    def __getitem__(self, index: object) -> Tensor:
        return apply(shape_ops.getitem, self, index=checked_index(index))

    # Comparisons give plain boolean arrays: they have no gradient.
    def __lt__(self, other) -> np.ndarray:
        return self._value("x < y: x") < _values_of(other)

    def __le__(self, other) -> np.ndarray:
        return self._value("x <= y: x") <= _values_of(other)

    def __gt__(self, other) -> np.ndarray:
        return self._value("x > y: x") > _values_of(other)

    def __ge__(self, other) -> np.ndarray:
        return self._value("x >= y: x") >= _values_of(other)

    def __eq__(self, other) -> np.ndarray:  # type: ignore[override]
        return self._value("x == y: x") == _values_of(other)

    def __ne__(self, other) -> np.ndarray:  # type: ignore[override]
        return self._value("x != y: x") != _values_of(other)

    # -- methods --------------------------------------------------------------------------
    # Reductions take numpy's axis=/keepdims= or torch's dim=/keepdim=.
    def sum(self, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None,
            keepdim: bool | None = None) -> Tensor:
        axis, keepdims = numpy_names("sum", axis, keepdims, dim, keepdim)
        return apply(ops.sum, self, axes=reduced_axes(axis, self.ndim, "sum"), keepdims=keepdims)

    def mean(self, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None,
             keepdim: bool | None = None) -> Tensor:
        axis, keepdims = numpy_names("mean", axis, keepdims, dim, keepdim)
        axes = reduced_axes(axis, self.ndim, "mean")
        if any(self.shape[ax] == 0 for ax in axes):
            raise ShapeError(f"mean: the axes {axes} of shape {self.shape} hold no elements")
        return apply(ops.mean, self, axes=axes, keepdims=keepdims)

    def max(self, axis: Axis = None, keepdims: bool = False, *, dim: int | None = None,
            keepdim: bool | None = None):
        """The largest values along ``axis`` (all axes if None). With torch's ``dim=`` it
        returns torch's pair ``(values, indices)``; ``.values`` and ``.indices`` name them."""
        return self._extreme(ops.max, "argmax", axis, keepdims, dim, keepdim)

    def min(self, axis: Axis = None, keepdims: bool = False, *, dim: int | None = None,
            keepdim: bool | None = None):
        """The smallest values along ``axis``; with ``dim=`` torch's ``(values, indices)``."""
        return self._extreme(ops.min, "argmin", axis, keepdims, dim, keepdim)

    def _extreme(self, op: Callable, arg: str, axis, keepdims, dim, keepdim):
        torch_style = dim is not None
        axis, keepdims = numpy_names(op.__name__, axis, keepdims, dim, keepdim)
        axes = reduced_axes(axis, self.ndim, op.__name__)
        if any(self.shape[ax] == 0 for ax in axes):
            what = "empty tensor" if axis is None else f"axis {axis} of the tensor"
            raise ShapeError(f"{op.__name__}: {what} of shape {self.shape} has no "
                             f"{'maximum' if op is ops.max else 'minimum'} (nothing to reduce)")
        if not torch_style:
            return apply(op, self, axes=axes, keepdims=keepdims)
        # torch's max(dim=): the values are picked at the indices, so the gradient goes to the
        # one element picked (the first of a tie), not shared as in max(axis=).
        indices = getattr(self._value(op.__name__), arg)(axis=axes[0], keepdims=True)
        where = list(np.indices(indices.shape, sparse=True))
        where[axes[0]] = indices
        values = self[tuple(where)]
        if not keepdims:
            values, indices = values.squeeze(axes[0]), indices.squeeze(axes[0])
        return ValuesIndices(values, Tensor(indices, dtype=np.int64))

    def argmax(self, axis: int | None = None, keepdims: bool = False, *,
               dim: int | None = None, keepdim: bool | None = None) -> Tensor:
        """Index of the largest value along ``axis`` (of the flattened tensor if None), as an
        int64 tensor without a gradient."""
        axis, keepdims = numpy_names("argmax", axis, keepdims, dim, keepdim)
        if axis is not None:
            reduced_axes(axis, self.ndim, "argmax")  # checks the axis
        indices = self._value("argmax: x").argmax(axis=axis, keepdims=keepdims)
        return Tensor(indices, dtype=np.int64)

    def abs(self) -> Tensor:
        return apply(ops.abs, self)

    __abs__ = abs

    def sqrt(self) -> Tensor:
        return apply(ops.sqrt, floating("sqrt", self))

    def exp(self) -> Tensor:
        return apply(ops.exp, floating("exp", self))

    def log(self) -> Tensor:
        return apply(ops.log, floating("log", self))

    def sigmoid(self) -> Tensor:
        return apply(ops.sigmoid, floating("sigmoid", self))

    def tanh(self) -> Tensor:
        return apply(ops.tanh, floating("tanh", self))

    def relu(self) -> Tensor:
        return apply(ops.relu, self)

    def clip(self, low: TensorLike | None = None, high: TensorLike | None = None) -> Tensor:
        """Clamp into [low, high]; a bound may be None (none on that side) or broadcast."""
        low, high = (np.asarray(bound.numpy() if isinstance(bound, Tensor) else bound,
                                self.dtype if self.dtype.kind == "f" else None)
                     for bound in (-np.inf if low is None else low,
                                   np.inf if high is None else high))
        try:
            np.broadcast_shapes(self.shape, low.shape, high.shape)
        except ValueError:
            raise ShapeError(f"clip: bounds of shapes {low.shape} and {high.shape} can't be "
                             f"broadcast with the tensor's shape {self.shape}") from None
        return apply(ops.clip, self, low=low, high=high)

    def astype(self, dtype: np.dtype | type) -> Tensor:
        return apply(ops.astype, self, dtype=np.dtype(dtype))

    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        try:
            self.data.reshape(shape)  # numpy's own check (a view: nothing is copied)
        except (ValueError, TypeError):
            raise ShapeError(f"reshape: cannot reshape shape {self.shape} ({self.size} "
                             f"elements) into {tuple(shape)}") from None
        return apply(shape_ops.reshape, self, shape=shape)

    def transpose(self, *axes: int | tuple[int, ...]) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], tuple | list):
            axes = tuple(axes[0])
        axes = axes or tuple(reversed(range(self.ndim)))
        if (any(not -self.ndim <= ax < self.ndim for ax in axes)
                or sorted(ax % self.ndim for ax in axes) != list(range(self.ndim))):
            raise ShapeError(f"transpose: axes {axes} are not a permutation of a {self.ndim}-D "
                             f"tensor's axes (shape {self.shape})")
        return apply(shape_ops.transpose, self, axes=tuple(ax % self.ndim for ax in axes))

    @property
    def T(self) -> Tensor:  # noqa: N802 - numpy's name
        return self.transpose()

    # -- torch's names for the same shape ops --------------------------------------------
    def view(self, *shape: int | tuple[int, ...]) -> Tensor:
        """torch's name for ``reshape`` (here always a new node; no memory is shared)."""
        return self.reshape(*shape)

    def permute(self, *dims: int | tuple[int, ...]) -> Tensor:
        """torch's name for ``transpose(*axes)``: ``x.permute(1, 0, 2)``."""
        return self.transpose(*dims)

    def unsqueeze(self, dim: int) -> Tensor:
        """A new axis of length 1 at ``dim`` (negative counts from the end of the result)."""
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise ShapeError(f"unsqueeze: dim {dim} is out of range for a {self.ndim}-D tensor")
        position = dim % (self.ndim + 1)
        return self.reshape(*self.shape[:position], 1, *self.shape[position:])

    def squeeze(self, dim: int | None = None) -> Tensor:
        """Without the axes of length 1 (only ``dim``, if given and of length 1, as torch)."""
        if dim is None:
            return self.reshape(*(n for n in self.shape if n != 1))
        axis = reduced_axes(dim, self.ndim, "squeeze")[0]
        if self.shape[axis] != 1:
            return self.reshape(*self.shape)
        return self.reshape(*self.shape[:axis], *self.shape[axis + 1:])

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Axes ``start_dim`` to ``end_dim`` joined into one: (2, 3, 4).flatten(1) is (2, 12)."""
        if self.ndim == 0:
            return self.reshape(1)
        start, end = (reduced_axes(d, self.ndim, "flatten")[0] for d in (start_dim, end_dim))
        if start > end:
            raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        return self.reshape(*self.shape[:start], -1, *self.shape[end + 1:])

    def clone(self) -> Tensor:
        """A copy of the values that stays in the graph: gradients flow back through it."""
        return apply(ops.copy, self)

    def tolist(self):
        """The values as nested Python lists (a number for a 0-D tensor)."""
        return self._value("x.tolist(): x").tolist()

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Switch gradient tracking of this leaf on (or off), in place; returns the tensor."""
        if not self.is_leaf:
            if requires_grad:
                return self
            raise RuntimeError("requires_grad_: only a leaf tensor (made directly, not by an "
                               "op) can stop requiring grad; use x.detach()")
        if requires_grad and self.dtype.kind != "f":
            raise TypeError(f"requires_grad_: only floating tensors can require grad, got "
                            f"{self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self


class Size(int):
    """``x.size``: numpy's element count, and callable as torch's ``x.size()`` (the shape)
    or ``x.size(d)`` (the length of axis d), so both habits work."""

    shape: tuple[int, ...]

    def __new__(cls, shape: tuple[int, ...]) -> Size:
        size = super().__new__(cls, math.prod(shape))
        size.shape = shape
        return size

    def __call__(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.shape if dim is None else self.shape[dim]


class ValuesIndices(NamedTuple):
    """What ``x.max(dim=d)`` returns, as torch: the values, and where they are."""

    values: Tensor
    indices: Tensor


def numpy_names(op: str, axis, keepdims: bool, dim, keepdim):
    """(axis, keepdims) from numpy's names or torch's ``dim``/``keepdim`` (not both)."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{op}: give axis= (numpy) or dim= (torch), not both")
        axis = dim
    return axis, keepdims if keepdim is None else keepdim


# -- running an op on tensors -----------------------------------------------------------

def apply(op: Callable, *inputs, **constants) -> Tensor:
    """Run ``op`` (a function of arrays, from ops.py or shape_ops.py) on tensors, and record
    the result as a graph node. Numbers and arrays among the inputs become constant tensors
    of the first tensor's dtype; ``constants`` (an axis, an index, ...) go to ``op`` as they are.
    """
    for x in inputs:  # numbers, arrays or dropped values among them: the careful way
        if x.__class__ is not Tensor or x.data.__class__ is not np.ndarray:
            inputs = as_tensors(op.__name__, inputs)
            break
    try:
        out, backward = op(*map(_data_of, inputs), **constants)
    except IndexError as err:
        raise IndexError(f"{op.__name__}: index {constants.get('index')!r} doesn't fit shape "
                         f"{inputs[0].shape}: {err}") from None
    except ValueError as err:
        if isinstance(err, ShapeError) or len(inputs) < 2:
            raise
        shapes = " and ".join(str(t.shape) for t in inputs)
        raise ShapeError(f"{op.__name__}: shapes {shapes} can't be broadcast together (numpy "
                         "rules: trailing axes must be equal or 1)") from None
    result = Tensor._from_op(out, op.__name__, inputs, backward)
    if constants:  # for the graph's labels: pow(·, 2), z[:, 3:6]
        result.op_args = constants
    if state.tracer is not None:  # inside mt.compile's first call: write the op down
        state.tracer.op(op, inputs, constants, result)
    return result


_data_of = attrgetter("data")


def as_tensors(op: str, values: Sequence) -> tuple[Tensor, ...]:
    """``values`` as Tensors: a number or array takes the dtype of the first Tensor among them."""
    like = next((v for v in values if isinstance(v, Tensor)), None)
    tensors = tuple(v if isinstance(v, Tensor) else as_tensor(v, like, op) for v in values)
    for t in tensors:
        if is_freed(t.data):
            raise FreedValueError(freed_message(t, f"{op}: an input"))
    return tensors


def as_tensor(value, like: Tensor | None = None, op: str = "Tensor") -> Tensor:
    """``value`` as a Tensor; Python numbers and arrays take a floating ``like``'s dtype.

    So ``x * 0.5`` or ``1 - x`` keep float32 tensors float32. Next to an integer
    tensor numpy's promotion decides (``int_tensor * 0.5`` is not truncated).
    """
    if isinstance(value, Tensor):
        return value
    if value is None or isinstance(value, str):
        raise TypeError(f"{op}: expected a tensor, a number or an array, got {value!r}")
    if like is None:
        dtype = process.default_dtype
    elif like.dtype.kind == "f":
        dtype = like.dtype
    else:
        value = np.asarray(value)  # result_type takes arrays and scalars, not lists
        dtype = np.result_type(like.data, value)
    return Tensor(value, dtype=dtype)


def floating(op: str, x: Tensor) -> Tensor:
    """``x``, if it holds floats; exp, log, sigmoid and tanh of integers are refused (as torch)."""
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating tensor, got {x.dtype}; convert it first "
                        "with x.astype(np.float32)")
    return x


def matmul(a: TensorLike, b: TensorLike) -> Tensor:
    """``a @ b`` with numpy's rules (1-D operands are promoted, batch axes broadcast)."""
    a, b = as_tensors("matmul", (a, b))
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: needs at least 1-D operands, got shapes {a.shape} and {b.shape}")
    inner_a = a.shape[-1]
    inner_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if inner_a != inner_b:
        raise ShapeError(f"matmul: shapes {a.shape} and {b.shape} don't line up: "
                         f"{inner_a} != {inner_b}")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ShapeError(f"matmul: batch axes of shapes {a.shape} and {b.shape} "
                         "can't be broadcast together") from None
    return apply(ops.matmul, a, b)


_ARRAY_INDEX = (np.ndarray, list, Tensor)


def checked_index(index):
    """``index`` with its arrays copied (a caller changing them later must not move the
    gradient) and checked to hold integers or booleans."""
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(p, _ARRAY_INDEX) for p in parts):
        parts = tuple(_array_index(p) if isinstance(p, _ARRAY_INDEX) else p for p in parts)
        index = parts if isinstance(index, tuple) else parts[0]
    return index


def _array_index(part) -> np.ndarray:
    index = np.array(part.numpy() if isinstance(part, Tensor) else part)
    if index.dtype.kind == "f":
        raise IndexError(f"getitem: an index array must hold integers or booleans, got "
                         f"{index.dtype} (Tensors are float by default: pass dtype=np.int64)")
    return index


def _values_of(other) -> np.ndarray:
    return other._value("x op y: y") if isinstance(other, Tensor) else other


# -- adding up gradients, and the order of backward ----------------------------------------

class PlainSum:
    """d loss / d node for the nodes of one backward pass, added up as they arrive:
    ``grad = g if grad is None else grad + g``. (speedups.GradientSum does the same sums
    with less memory traffic; ``mt.plain_engine()`` picks this one.)"""

    def __init__(self) -> None:
        self.grads: dict[Tensor, np.ndarray] = {}

    def add(self, node: Tensor, g) -> None:
        if not isinstance(g, np.ndarray | np.generic):  # a Scatter or Product (speedups.py)
            g = g.dense()
        grad = self.grads.get(node)
        self.grads[node] = g if grad is None else grad + g

    def pop(self, node: Tensor) -> np.ndarray | None:
        return self.grads.pop(node, None)




_IN_PLACE = {np.add: "+=", np.subtract: "-=", np.multiply: "*=", np.divide: "/="}


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor that ``root`` depends on and that requires grad, parents first.

    A depth-first walk with an explicit stack (no recursion: a 100,000-step chain
    is fine): a node is listed once all of its parents are.
    """
    order: list[Tensor] = []
    visited = {root}
    stack = [(root, iter(root.parents))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if parent.requires_grad and parent not in visited:
                visited.add(parent)
                stack.append((parent, iter(parent.parents)))
                break
        else:
            stack.pop()
            order.append(node)
    return order
