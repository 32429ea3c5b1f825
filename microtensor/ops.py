"""The primitive ops: each computes its result and, right beside it, its gradient.

An op's ``backward(g)`` receives d(loss)/d(output) and adds d(loss)/d(input)
into each input that requires grad. Elementwise ops broadcast like numpy;
``unbroadcast`` sums the gradient back to each input's shape.
Composite functions (softmax, losses, layers) are built from these.

A backward reads only arrays it captured when the op ran (``x, y = a.data,
b.data``), never ``.data`` of its inputs at backward time: layers free the
values of intermediates once the forward pass is done with them
(``values.freeing_intermediates``), and an array survives exactly when some
backward captured it.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .tensor import ShapeError, Tensor, as_tensor

Axis = int | tuple[int, ...] | None
Operand = Tensor | np.ndarray | float  # plain numbers and arrays take the tensor's dtype


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _pair(a: Operand, b: Operand) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors; a Python scalar or array takes the other's dtype."""
    if not isinstance(a, Tensor):
        a = as_tensor(a, b if isinstance(b, Tensor) else None)
        return a, as_tensor(b, a)
    if not isinstance(b, Tensor):
        return a, as_tensor(b, a)
    return a, b


def _broadcast(op: str, fn: np.ufunc, a: Tensor, b: Tensor) -> np.ndarray:
    try:
        return fn(a.data, b.data)
    except ValueError:
        raise ShapeError(
            f"{op}: shapes {a.shape} and {b.shape} can't be broadcast together "
            "(numpy rules: trailing axes must be equal or 1)") from None


# -- elementwise arithmetic ------------------------------------------------------

def add(a: Operand, b: Operand) -> Tensor:
    a, b = _pair(a, b)
    shape_a, shape_b = a.shape, b.shape

    def backward(g: np.ndarray) -> None:
        if a.requires_grad:
            a._accumulate(unbroadcast(g, shape_a))
        if b.requires_grad:
            b._accumulate(unbroadcast(g, shape_b))
    return Tensor._from_op(_broadcast("add", np.add, a, b), "add", (a, b), backward)


def sub(a: Operand, b: Operand) -> Tensor:
    a, b = _pair(a, b)
    shape_a, shape_b = a.shape, b.shape

    def backward(g: np.ndarray) -> None:
        if a.requires_grad:
            a._accumulate(unbroadcast(g, shape_a))
        if b.requires_grad:
            b._accumulate(unbroadcast(-g, shape_b))
    return Tensor._from_op(_broadcast("sub", np.subtract, a, b), "sub", (a, b), backward)


def mul(a: Operand, b: Operand) -> Tensor:
    a, b = _pair(a, b)
    x, y = a.data, b.data

    def backward(g: np.ndarray) -> None:
        if a.requires_grad:
            a._accumulate(unbroadcast(g * y, x.shape))
        if b.requires_grad:
            b._accumulate(unbroadcast(g * x, y.shape))
    return Tensor._from_op(_broadcast("mul", np.multiply, a, b), "mul", (a, b), backward)


def div(a: Operand, b: Operand) -> Tensor:
    a, b = _pair(a, b)
    out = _broadcast("div", np.true_divide, a, b)
    shape_a, y = a.shape, b.data

    def backward(g: np.ndarray) -> None:
        g_over_b = g / y
        if a.requires_grad:
            a._accumulate(unbroadcast(g_over_b, shape_a))
        if b.requires_grad:
            b._accumulate(unbroadcast(-g_over_b * out, y.shape))
    return Tensor._from_op(out, "div", (a, b), backward)


def astype(a: Tensor, dtype) -> Tensor:
    """``a``'s values in another dtype; the gradient comes back in ``a``'s own dtype."""
    source = a.data.dtype

    def backward(g: np.ndarray) -> None:
        a._accumulate(g.astype(source))
    return Tensor._from_op(a.data.astype(dtype), "astype", (a,), backward)


def neg(a: Tensor) -> Tensor:
    def backward(g: np.ndarray) -> None:
        a._accumulate(-g)
    return Tensor._from_op(-a.data, "neg", (a,), backward)


def power(a: Tensor, exponent: float) -> Tensor:
    """``a ** exponent`` for a scalar exponent."""
    if not isinstance(exponent, numbers.Real):
        raise TypeError(f"pow: only a scalar exponent is supported, got {type(exponent).__name__}")
    if isinstance(exponent, np.generic):  # np.float64(2) would make a float32 tensor float64
        exponent = exponent.item()
    x = a.data

    def backward(g: np.ndarray) -> None:
        if exponent == 0:  # x ** 0 is 1 everywhere, also at 0 (where 0 * 0 ** -1 is NaN)
            a._accumulate(np.zeros_like(g))
        else:
            a._accumulate(g * (exponent * x ** (exponent - 1)))
    out = Tensor._from_op(x ** exponent, "pow", (a,), backward)
    out.op_args = (exponent,)  # for the graph's label: pow(·, 2)
    return out


def maximum(a: Operand, b: Operand) -> Tensor:
    """Elementwise max; where the two are equal each gets half the gradient (as torch)."""
    a, b = _pair(a, b)
    out = _broadcast("maximum", np.maximum, a, b)
    x, y = a.data, b.data

    def backward(g: np.ndarray) -> None:
        share_a = (x > y) + 0.5 * (x == y)
        if a.requires_grad:
            a._accumulate(unbroadcast(g * share_a.astype(g.dtype), x.shape))
        if b.requires_grad:
            b._accumulate(unbroadcast(g * (1 - share_a).astype(g.dtype), y.shape))
    return Tensor._from_op(out, "maximum", (a, b), backward)


def where(condition, a: Operand, b: Operand) -> Tensor:
    """``a`` where ``condition`` holds, else ``b`` (condition is a plain boolean array)."""
    if isinstance(condition, Tensor):
        condition = condition._value("where: the condition")
    # A copy: the caller changing the array after the forward pass must not change the gradient.
    condition = np.array(condition, dtype=bool)
    a, b = _pair(a, b)
    try:
        out = np.where(condition, a.data, b.data)
    except ValueError:
        raise ShapeError(f"where: condition {condition.shape}, a {a.shape} and b {b.shape} "
                         "can't be broadcast together") from None
    shape_a, shape_b = a.shape, b.shape

    def backward(g: np.ndarray) -> None:
        zero = np.zeros((), dtype=g.dtype)
        if a.requires_grad:
            a._accumulate(unbroadcast(np.where(condition, g, zero), shape_a))
        if b.requires_grad:
            b._accumulate(unbroadcast(np.where(condition, zero, g), shape_b))
    return Tensor._from_op(out, "where", (a, b), backward)


def clip(a: Tensor, low: Operand | None, high: Operand | None) -> Tensor:
    """Clamp into [low, high]; the gradient passes where the input was inside (as torch).

    A bound may be None (no bound on that side) or an array that broadcasts with ``a``.
    """
    a = as_tensor(a)
    x = a.data
    low, high = (np.asarray(bound.data if isinstance(bound, Tensor) else bound,
                            dtype=x.dtype if x.dtype.kind == "f" else None)
                 for bound in (-np.inf if low is None else low, np.inf if high is None else high))
    try:
        out = np.clip(x, low, high)
    except ValueError:
        raise ShapeError(f"clip: bounds of shapes {low.shape} and {high.shape} can't be "
                         f"broadcast with the tensor's shape {x.shape}") from None

    def backward(g: np.ndarray) -> None:
        a._accumulate(unbroadcast(g * ((x >= low) & (x <= high)), x.shape))
    return Tensor._from_op(out, "clip", (a,), backward)


# -- nonlinearities ----------------------------------------------------------------

def _largest_exp_argument(dtype: type) -> np.floating:
    """The largest x of this float type whose exp(x) is finite (log(max) rounded down)."""
    x = np.log(np.finfo(dtype).max).astype(dtype)
    with np.errstate(over="ignore"):
        while not np.isfinite(np.exp(x)):
            x = np.nextafter(x, dtype(-np.inf))
    return x


_FLOAT16 = np.dtype(np.float16)
_LARGEST_EXP_ARGUMENT = {np.dtype(t): _largest_exp_argument(t) for t in (np.float32, np.float64)}


def exp(a: Tensor) -> Tensor:
    a = as_tensor(a)
    with np.errstate(over="ignore"):  # exp(1000) is inf, silently, as in torch
        out = np.exp(a.data)

    def backward(g: np.ndarray) -> None:
        a._accumulate(g * out)
    return Tensor._from_op(out, "exp", (a,), backward)


def log(a: Tensor) -> Tensor:
    a = as_tensor(a)
    x = a.data

    def backward(g: np.ndarray) -> None:
        with np.errstate(divide="ignore"):  # 1 / 0 is inf, silently, as in torch
            a._accumulate(g / x)
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, log(-1) = nan
        return Tensor._from_op(np.log(x), "log", (a,), backward)


def sigmoid(a: Tensor) -> Tensor:
    # 1 / (1 + exp(-x)): exact in float32 down to sigmoid(-88) ~ 6e-39. (The tanh form
    # (1 + tanh(x / 2)) / 2 cancels to 0 below x ~ -17.) exp(-x) is capped just below
    # overflow, so below x = -88.7 (float32) the result stays at 2.9e-39 instead of
    # raising a warning; cheaper than silencing it with np.errstate on every call.
    # float16's exp overflows already at 11, so it is computed in float32.
    # out= keeps a 0-D result an array (not a numpy scalar), updatable in place.
    a = as_tensor(a)
    x = a.data if a.data.dtype is not _FLOAT16 else a.data.astype(np.float32)
    out = np.negative(x) if x.ndim else np.negative(x, out=np.empty_like(x))
    np.minimum(out, _LARGEST_EXP_ARGUMENT.get(out.dtype, np.inf), out=out)
    np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)
    if out.dtype is not a.data.dtype:
        out = out.astype(a.data.dtype)

    def backward(g: np.ndarray) -> None:
        grad = 1 - out
        grad *= out
        grad *= g
        a._accumulate(grad)
    return Tensor._from_op(out, "sigmoid", (a,), backward)


def tanh(a: Tensor) -> Tensor:
    a = as_tensor(a)
    out = np.tanh(a.data)

    def backward(g: np.ndarray) -> None:
        grad = np.asarray(out * out)  # an array even for 0-D, so it can be updated in place
        np.subtract(1, grad, out=grad)
        grad *= g
        a._accumulate(grad)
    return Tensor._from_op(out, "tanh", (a,), backward)


def relu(a: Tensor) -> Tensor:
    a = as_tensor(a)
    out = np.maximum(a.data, 0)

    def backward(g: np.ndarray) -> None:
        a._accumulate(g * (out > 0))
    return Tensor._from_op(out, "relu", (a,), backward)


# -- matrix product ------------------------------------------------------------------

def _as_rows(x: np.ndarray) -> np.ndarray:
    """(..., n) -> (rows, n): every leading axis folded into one (explicit sizes, so that
    size-0 axes fold too, where reshape(-1, n) is ambiguous)."""
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


def _fold_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w``; for a 2-D ``w``, x's leading axes are folded into one BLAS call."""
    if w.ndim == 2 and x.ndim > 2:
        return (_as_rows(x) @ w).reshape(*x.shape[:-1], w.shape[-1])
    return x @ w


def matmul(a: Operand, b: Operand) -> Tensor:
    """``a @ b`` with numpy's rules (1-D operands are promoted, batch axes broadcast)."""
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: needs at least 1-D operands, got shapes {a.shape} and {b.shape}")
    inner_a = a.shape[-1]
    inner_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if inner_a != inner_b:
        raise ShapeError(f"matmul: shapes {a.shape} and {b.shape} don't line up: "
                         f"{inner_a} != {inner_b}")
    try:
        out = _fold_matmul(a.data, b.data)
    except ValueError:
        raise ShapeError(f"matmul: batch axes of shapes {a.shape} and {b.shape} "
                         "can't be broadcast together") from None
    shape_a, shape_b, operands = a.shape, b.shape, (a.data, b.data)

    def backward(g: np.ndarray) -> None:
        x, w = operands
        # Promote 1-D operands as matmul did, so one formula serves every rank.
        if w.ndim == 1:
            w, g = w[:, None], g[..., None]
        if x.ndim == 1:
            x, g = x[None, :], np.expand_dims(g, -2)
        if a.requires_grad:
            a._accumulate(unbroadcast(_fold_matmul(g, w.swapaxes(-1, -2)), x.shape)
                          .reshape(shape_a))
        if b.requires_grad:
            if w.ndim == 2 and len(shape_b) == 2 and b.is_leaf:
                # A weight: (..., in) @ (in, out) gives x.T @ g over all leading axes at once,
                # and products from several uses (time steps) are summed in one GEMM.
                b._accumulate_product(_as_rows(x), _as_rows(g))
            else:
                b._accumulate(unbroadcast(x.swapaxes(-1, -2) @ g, w.shape).reshape(shape_b))
    return Tensor._from_op(out, "matmul", (a, b), backward)


# -- reductions ------------------------------------------------------------------------

def reduced_axes(axis: Axis, ndim: int, op: str) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple; negative counts from the end) as sorted axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise ShapeError(f"{op}: axis {ax} is out of range for a {ndim}-D tensor")
    found = sorted(ax % ndim for ax in axes)
    if len(set(found)) != len(found):
        raise ShapeError(f"{op}: axis {axis} names an axis twice")
    return tuple(found)


def _expand_reduced(g: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    return g if keepdims else np.expand_dims(g, axes)


def _summed(a: Tensor, axis: Axis, keepdims: bool, op: str, count_divides: bool) -> Tensor:
    """sum, or with ``count_divides`` mean (the sum times 1/count): one gradient for both."""
    axes, shape = reduced_axes(axis, a.ndim, op), a.shape
    count = int(np.prod([shape[ax] for ax in axes]))  # 1 for a 0-D tensor
    if count_divides and count == 0:
        raise ShapeError(f"mean: the axes {axes} of shape {shape} hold no elements")
    scale = 1.0 / count if count_divides else 1.0

    def backward(g: np.ndarray) -> None:
        g = g * scale if count_divides else g
        a._accumulate(np.broadcast_to(_expand_reduced(g, axes, keepdims), shape))
    out = np.asarray(np.sum(a.data, axis=axes, keepdims=keepdims))
    if count_divides:
        dtype = out.dtype if out.dtype.kind == "f" else np.result_type(out.dtype, 1.0)
        out = out * np.asarray(scale, dtype=dtype)
    return Tensor._from_op(np.asarray(out), op, (a,), backward)


def sum(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return _summed(a, axis, keepdims, "sum", count_divides=False)


def mean(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Its own node, so a graph shows ``mean``; the gradient is sum's, times 1/count."""
    return _summed(a, axis, keepdims, "mean", count_divides=True)


def max(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Largest element(s); ties share the gradient evenly (as torch.amax)."""
    axes = reduced_axes(axis, a.ndim, "max")
    if any(a.shape[ax] == 0 for ax in axes):  # (other axes may be empty: (0, 3).max(axis=1))
        what = "empty tensor" if axis is None else f"axis {axis} of the tensor"
        raise ShapeError(f"max: {what} of shape {a.shape} has no maximum (nothing to reduce)")
    x = a.data
    kept = np.max(x, axis=axes, keepdims=True)

    def backward(g: np.ndarray) -> None:
        winners = x == kept
        share = winners / winners.sum(axis=axes, keepdims=True)
        a._accumulate(_expand_reduced(g, axes, keepdims) * share.astype(g.dtype))
    out = kept if keepdims else np.squeeze(kept, axis=axes)
    return Tensor._from_op(out, "max", (a,), backward)
