"""The primitive ops, on numpy arrays: each returns its result and, beside it, its gradient.

An op is a plain function of arrays. It returns ``(out, backward)``, where
``backward(g)`` takes g = d loss / d out and returns d loss / d input, one per
input, as the textbook writes them. ``apply`` (tensor.py) runs an op on
tensors' arrays and records the node; ``Tensor.backward`` calls the
``backward`` functions in reverse order and adds up what they return. Where
broadcasting stretched an input, the engine sums the gradient back to the
input's shape (``unbroadcast``): no op has to.

Everything else (softmax, losses, layers) is composed from these ops, so its
gradient comes from theirs.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np

from .errors import ShapeError
from .speedups import Product

Axis = int | tuple[int, ...] | None
Backward = Callable[[np.ndarray], tuple]  # g -> the gradient of each input
Result = tuple[np.ndarray, Backward]  # what an op returns: (out, backward)


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``."""
    if grad.shape == shape:  # (also a Scatter: always of its input's shape)
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


# -- elementwise arithmetic ----------------------------------------------------------

def add(x: np.ndarray, y: np.ndarray) -> Result:
    return x + y, lambda g: (g, g)


def sub(x: np.ndarray, y: np.ndarray) -> Result:
    return x - y, lambda g: (g, -g)


def mul(x: np.ndarray, y: np.ndarray) -> Result:
    return x * y, lambda g: (g * y, g * x)


def div(x: np.ndarray, y: np.ndarray) -> Result:
    out = x / y
    return out, lambda g: (g / y, -g * out / y)


def neg(x: np.ndarray) -> Result:
    return -x, lambda g: (-g,)


def power(x: np.ndarray, exponent: float) -> Result:
    """x ** p for a number p: d/dx = p * x ** (p - 1)."""
    def backward(g: np.ndarray) -> tuple:
        if exponent == 0:  # x ** 0 is 1 everywhere, also at 0 (where 0 * 0 ** -1 is NaN)
            return (np.zeros_like(g),)
        return (g * exponent * x ** (exponent - 1),)
    return x ** exponent, backward


def astype(x: np.ndarray, dtype: np.dtype) -> Result:
    """x's values in another dtype; the gradient goes back in x's own dtype."""
    source = x.dtype
    return x.astype(dtype), lambda g: (g.astype(source),)


def maximum(x: np.ndarray, y: np.ndarray) -> Result:
    """Elementwise max; where the two are equal each gets half the gradient (as torch)."""
    share_x = ((x > y) + 0.5 * (x == y)).astype(np.result_type(x, y))
    return np.maximum(x, y), lambda g: (g * share_x, g * (1 - share_x))


def where(x: np.ndarray, y: np.ndarray, condition: np.ndarray) -> Result:
    """x where ``condition`` holds, else y (condition is a constant boolean array)."""
    def backward(g: np.ndarray) -> tuple:
        zero = np.zeros((), g.dtype)
        return np.where(condition, g, zero), np.where(condition, zero, g)
    return np.where(condition, x, y), backward


def clip(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> Result:
    """Clamp into [low, high]; the gradient passes where x was inside (as torch)."""
    inside = (x >= low) & (x <= high)
    return np.clip(x, low, high), lambda g: (g * inside,)


# -- nonlinearities -------------------------------------------------------------------

def exp(x: np.ndarray) -> Result:
    with np.errstate(over="ignore"):  # exp(1000) is inf, silently, as in torch
        out = np.exp(x)
    return out, lambda g: (g * out,)


def log(x: np.ndarray) -> Result:
    def backward(g: np.ndarray) -> tuple:
        with np.errstate(divide="ignore"):  # 1 / 0 is inf, silently, as in torch
            return (g / x,)
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, log(-1) = nan
        return np.log(x), backward


def sigmoid(x: np.ndarray) -> Result:
    """s = 1 / (1 + exp(-x)); ds/dx = s * (1 - s).

    For x below about -88 (float32), exp(-x) overflows to inf and s is 0, as it should be
    (silently, as in torch)."""
    with np.errstate(over="ignore"):
        if x.dtype == np.float16:  # float16's exp overflows already at 11: compute in float32
            s = (1 / (1 + np.exp(-x.astype(np.float32)))).astype(np.float16)
        else:
            s = 1 / (1 + np.exp(-x))
    return s, lambda g: (g * s * (1 - s),)


def tanh(x: np.ndarray) -> Result:
    """t = tanh(x); dt/dx = 1 - t ** 2."""
    t = np.tanh(x)
    return t, lambda g: (g * (1 - t * t),)


def relu(x: np.ndarray) -> Result:
    out = np.maximum(x, 0)
    return out, lambda g: (g * (out > 0),)


def abs(x: np.ndarray) -> Result:  # noqa: A001
    """|x|; d/dx = sign(x), 0 at 0 (as torch)."""
    return np.abs(x), lambda g: (g * np.sign(x),)


def sqrt(x: np.ndarray) -> Result:
    """sqrt(x); d/dx = 1 / (2 sqrt(x)): inf at 0, NaN below (as torch)."""
    with np.errstate(invalid="ignore"):  # sqrt(-1) = nan, silently, as in torch
        out = np.sqrt(x)

    def backward(g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g / (2 * out),)
    return out, backward


def copy(x: np.ndarray) -> Result:
    """A new array with x's values (torch's ``clone``); the gradient passes unchanged."""
    return x.copy(), lambda g: (g,)


# -- matrix product -------------------------------------------------------------------

def matmul(a: np.ndarray, b: np.ndarray) -> Result:
    """a @ b with numpy's rules. Gradients: d/da = g @ b.T, d/db = a.T @ g."""
    def backward(g: np.ndarray) -> tuple:
        if a.ndim == 1 or b.ndim == 1:
            return _vector_matmul_gradients(a, b, g)
        grad_a = rows_matmul(g, b.swapaxes(-1, -2))  # g @ b.T
        if b.ndim == 2:  # one weight for every row of a: a.T @ g over all rows, multiplied
            return grad_a, Product(as_rows(a), as_rows(g))  # later with others (speedups.py)
        return grad_a, a.swapaxes(-1, -2) @ g  # a.T @ g, batch axes unbroadcast by the engine
    return rows_matmul(a, b), backward


def _vector_matmul_gradients(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> tuple:
    """matmul's gradients when numpy promoted a vector to a matrix: the same formulas on the
    promoted operands, then the added axis taken away again."""
    x = a[None, :] if a.ndim == 1 else a
    w = b[:, None] if b.ndim == 1 else b
    g = g[..., None] if b.ndim == 1 else g
    g = np.expand_dims(g, -2) if a.ndim == 1 else g
    grad_a, grad_b = g @ w.swapaxes(-1, -2), x.swapaxes(-1, -2) @ g
    return (grad_a[..., 0, :] if a.ndim == 1 else grad_a,
            grad_b[..., 0] if b.ndim == 1 else grad_b)


def as_rows(x: np.ndarray) -> np.ndarray:
    """(..., n) -> (rows, n): every leading axis folded into one."""
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


def rows_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w; for a 2-D w, x's leading axes are folded into one BLAS call (faster than one
    call per leading index)."""
    if w.ndim == 2 and x.ndim > 2:
        return (as_rows(x) @ w).reshape(*x.shape[:-1], w.shape[-1])
    return x @ w


# -- reductions ------------------------------------------------------------------------

def reduced_axes(axis: Axis, ndim: int, op: str) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple; negative counts from the end) as sorted axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    for ax in axes:
        if not isinstance(ax, numbers.Integral) or not -ndim <= ax < ndim:
            raise ShapeError(f"{op}: axis {ax} is out of range for a {ndim}-D tensor")
    found = sorted(int(ax) % ndim for ax in axes)
    if len(set(found)) != len(found):
        raise ShapeError(f"{op}: axis {axis} names an axis twice")
    return tuple(found)


def _spread(g, axes: tuple[int, ...], keepdims: bool, shape: tuple[int, ...]):
    """A reduction's gradient, stretched back over the axes it summed away."""
    return np.broadcast_to(g if keepdims else np.expand_dims(g, axes), shape)


def sum(x: np.ndarray, axes: tuple[int, ...], keepdims: bool = False) -> Result:  # noqa: A001
    shape = x.shape  # (a backward keeps only what its formula reads, not all of x)
    out = np.asarray(np.sum(x, axis=axes, keepdims=keepdims))
    return out, lambda g: (_spread(g, axes, keepdims, shape),)


def mean(x: np.ndarray, axes: tuple[int, ...], keepdims: bool = False) -> Result:
    """The average over ``axes``: each element gets 1/n of the gradient."""
    shape, count = x.shape, math.prod(x.shape[ax] for ax in axes)
    out = np.asarray(np.mean(x, axis=axes, keepdims=keepdims))
    return out, lambda g: (_spread(g / count, axes, keepdims, shape),)


def max(x: np.ndarray, axes: tuple[int, ...], keepdims: bool = False) -> Result:  # noqa: A001
    """Largest element(s); ties share the gradient evenly (as torch.amax)."""
    return _extreme(np.max, x, axes, keepdims)


def min(x: np.ndarray, axes: tuple[int, ...], keepdims: bool = False) -> Result:  # noqa: A001
    """Smallest element(s); ties share the gradient evenly (as torch.amin)."""
    return _extreme(np.min, x, axes, keepdims)


def _extreme(pick, x, axes: tuple[int, ...], keepdims: bool):
    """max or min: the gradient goes to the elements that were picked, split among ties."""
    kept = pick(x, axis=axes, keepdims=True)

    def backward(g: np.ndarray) -> tuple:
        winners = x == kept
        share = (winners / winners.sum(axis=axes, keepdims=True)).astype(g.dtype)
        return (share * (g if keepdims else np.expand_dims(g, axes)),)
    return (kept if keepdims else np.squeeze(kept, axis=axes)), backward
