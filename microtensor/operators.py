"""Python's operators and the methods of Tensor, mapped to the ops that implement them.

``x + y`` is ``ops.add``, ``x[i]`` is ``shape_ops.getitem``, ``x.sum()`` is
``ops.sum``; comparisons give plain boolean arrays (they have no gradient).
"""

from __future__ import annotations

import numpy as np

from . import ops, shape_ops
from .tensor import Tensor


def install() -> None:
    T = Tensor
    T.__add__ = ops.add
    T.__radd__ = lambda self, other: ops.add(other, self)
    T.__sub__ = ops.sub
    T.__rsub__ = lambda self, other: ops.sub(other, self)
    T.__mul__ = ops.mul
    T.__rmul__ = lambda self, other: ops.mul(other, self)
    T.__truediv__ = ops.div
    T.__rtruediv__ = lambda self, other: ops.div(other, self)
    T.__matmul__ = ops.matmul
    T.__rmatmul__ = lambda self, other: ops.matmul(other, self)
    T.__neg__ = ops.neg
    T.__pow__ = ops.power
    T.__getitem__ = shape_ops.getitem
    for name, compare, symbol in [("__lt__", np.less, "<"), ("__le__", np.less_equal, "<="),
                                  ("__gt__", np.greater, ">"),
                                  ("__ge__", np.greater_equal, ">="),
                                  ("__eq__", np.equal, "=="), ("__ne__", np.not_equal, "!=")]:
        setattr(T, name, _comparison(compare, symbol))
    for method in (ops.sum, ops.mean, ops.max, ops.exp, ops.log, ops.sigmoid, ops.tanh,
                   ops.relu, ops.clip, ops.astype, shape_ops.reshape, shape_ops.transpose):
        setattr(T, method.__name__, method)
    T.T = property(lambda self: shape_ops.transpose(self))


def _comparison(compare, symbol: str):
    """``x < y`` and friends: a plain boolean array of the values (freed values raise)."""
    def method(self: Tensor, other) -> np.ndarray:
        if isinstance(other, Tensor):
            other = other._value(f"x {symbol} y: y")
        return compare(self._value(f"x {symbol} y: x"), other)
    return method


install()
