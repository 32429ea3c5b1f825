"""Shape ops: they move, pick and join elements; each gradient puts the elements back.

Same rules as ``ops.py``: an op and its gradient side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .tensor import ShapeError, Tensor, as_tensor


def reshape(a: Tensor, *shape: int | tuple[int, ...]) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    try:
        out = a.data.reshape(shape)
    except ValueError:
        raise ShapeError(f"reshape: cannot reshape shape {a.shape} ({a.size} elements) "
                         f"into {tuple(shape)}") from None

    shape_a = a.shape

    def backward(g: np.ndarray) -> None:
        a._accumulate(g.reshape(shape_a))
    return Tensor._from_op(out, "reshape", (a,), backward)


def transpose(a: Tensor, *axes: int | tuple[int, ...]) -> Tensor:
    if len(axes) == 1 and isinstance(axes[0], tuple | list):
        axes = tuple(axes[0])
    axes = axes or tuple(reversed(range(a.ndim)))
    if (any(not -a.ndim <= ax < a.ndim for ax in axes)
            or sorted(ax % a.ndim for ax in axes) != list(range(a.ndim))):
        raise ShapeError(f"transpose: axes {axes} are not a permutation of a {a.ndim}-D "
                         f"tensor's axes (shape {a.shape})")
    inverse = np.argsort([ax % a.ndim for ax in axes])

    def backward(g: np.ndarray) -> None:
        a._accumulate(g.transpose(inverse))
    return Tensor._from_op(a.data.transpose(axes), "transpose", (a,), backward)


_ARRAY_INDEX = (np.ndarray, list, Tensor)


def _as_array_index(part: object) -> np.ndarray:
    # A copy: the caller changing the index array after the forward pass must not change
    # where the gradient goes.
    index = np.array(part.data if isinstance(part, Tensor) else part)
    if index.dtype.kind == "f":
        raise IndexError(f"getitem: an index array must hold integers or booleans, got "
                         f"{index.dtype} (Tensors are float by default: pass dtype=np.int64)")
    return index


def getitem(a: Tensor, index: object) -> Tensor:
    """``a[index]`` with slices, integers, ``None``, ``...`` and integer/bool arrays."""
    # Advanced (array) indexing copies and may repeat elements: its gradient needs np.add.at.
    # Basic indexing (slices, integers) is the common case inside time loops: keep it cheap.
    if isinstance(index, tuple):
        advanced = False
        for part in index:
            if isinstance(part, _ARRAY_INDEX):
                advanced = True
                break
        if advanced:
            index = tuple(_as_array_index(p) if isinstance(p, _ARRAY_INDEX) else p
                          for p in index)
    else:
        advanced = isinstance(index, _ARRAY_INDEX)
        if advanced:
            index = _as_array_index(index)
    try:
        out = a.data[index]
    except IndexError as err:
        raise IndexError(f"getitem: index {index!r} doesn't fit shape {a.shape}: {err}") from None

    def backward(g: np.ndarray) -> None:
        a._accumulate_at(index, g, advanced)
    result = Tensor._from_op(out, "getitem", (a,), backward)
    result.op_args = (index,)  # for the graph's label: z[:, 3:6]
    return result


def _check_joinable(op: str, tensors, axis: int, same_shape: bool) -> None:
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    first = tensors[0].shape
    rank = len(first) + same_shape  # stack adds an axis
    if not -rank <= axis < rank:
        raise ShapeError(f"{op}: axis {axis} is out of range for tensors of shape {first}")
    for t in tensors[1:]:
        if same_shape:
            bad = t.shape != first
        else:
            bad = len(t.shape) != len(first) or any(
                x != y for i, (x, y) in enumerate(zip(t.shape, first, strict=True))
                if i != axis % len(first))
        if bad:
            expected = "equal shapes" if same_shape else f"equal shapes except on axis {axis}"
            raise ShapeError(f"{op}: shapes {first} and {t.shape} differ; expected {expected}")


def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    tensors = tuple(as_tensor(t) for t in tensors)
    _check_joinable("concatenate", tensors, axis, same_shape=False)
    axis = axis % tensors[0].ndim
    bounds = np.cumsum([0] + [t.shape[axis] for t in tensors])

    def backward(g: np.ndarray) -> None:
        for t, start, stop in zip(tensors, bounds[:-1], bounds[1:], strict=True):
            t._accumulate(g[(slice(None),) * axis + (slice(start, stop),)])
    out = np.concatenate([t.data for t in tensors], axis=axis)
    return Tensor._from_op(out, "concatenate", tensors, backward)


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    tensors = tuple(as_tensor(t) for t in tensors)
    _check_joinable("stack", tensors, axis, same_shape=True)
    axis = axis % (tensors[0].ndim + 1)

    def backward(g: np.ndarray) -> None:
        for i, t in enumerate(tensors):
            t._accumulate(g[(slice(None),) * axis + (i,)])
    out = np.stack([t.data for t in tensors], axis=axis)
    return Tensor._from_op(out, "stack", tensors, backward)
