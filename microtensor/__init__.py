"""microtensor: a small, readable reverse-mode autograd on numpy."""

from . import operators  # noqa: F401  (gives Tensor its operators and methods)
from .context import (
    enable_grad,
    get_default_dtype,
    is_grad_enabled,
    no_grad,
    scope,
    set_default_dtype,
)
from .explore import Explorer, explore
from .functional import log_softmax, logsumexp, softmax
from .gradcheck import GradcheckError, gradcheck
from .graph import GraphvizNotFoundError, draw_graph
from .ops import clip, exp, log, matmul, maximum, relu, sigmoid, tanh, unbroadcast, where
from .shape_ops import concatenate, stack
from .tensor import FreedValueError, ShapeError, Tensor, topological_order
from .values import freeing_intermediates, is_freed, keep_values

__all__ = [
    "FreedValueError", "GradcheckError", "ShapeError", "Tensor", "clip", "concatenate",
    "enable_grad", "exp",
    "get_default_dtype", "gradcheck", "is_grad_enabled", "log", "log_softmax", "logsumexp",
    "matmul", "maximum", "no_grad", "relu", "scope", "set_default_dtype", "sigmoid", "softmax",
    "stack", "tanh", "topological_order", "unbroadcast", "where", "draw_graph",
    "GraphvizNotFoundError", "freeing_intermediates", "is_freed", "keep_values",
]
__all__ += ["Explorer", "explore"]
__version__ = "0.1.0"
