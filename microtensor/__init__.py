"""microtensor: a small, readable reverse-mode autograd on numpy."""

from .compile import Compiled, compile
from .compile_trace import guard, python_choice, replayed
from .context import (
    enable_grad,
    get_default_dtype,
    is_grad_enabled,
    no_grad,
    scope,
    set_default_dtype,
)
from .creation import manual_seed, ones, randn, tensor, zeros
from .errors import FreedValueError, ShapeError
from .explore import Explorer, explore
from .functional import (
    abs,
    cat,
    clip,
    concatenate,
    exp,
    log,
    log_softmax,
    logsumexp,
    matmul,
    maximum,
    relu,
    sigmoid,
    softmax,
    sqrt,
    stack,
    tanh,
    where,
)
from .gradcheck import GradcheckError, gradcheck
from .ops import unbroadcast
from .speedups import freeing_intermediates, freeing_values, plain_engine
from .tensor import Tensor, topological_order

__all__ = [
    "FreedValueError", "GradcheckError", "GraphvizNotFoundError", "GraphvizTimeoutError",
    "ShapeError", "Tensor",
    "clip", "concatenate", "draw_graph", "enable_grad", "exp", "freeing_intermediates",
    "freeing_values", "get_default_dtype", "gradcheck", "is_grad_enabled", "log",
    "log_softmax", "logsumexp", "matmul", "maximum", "no_grad", "plain_engine", "relu", "scope",
    "set_default_dtype", "sigmoid", "softmax", "stack", "tanh", "topological_order",
    "unbroadcast", "where",
]
__all__ += ["Explorer", "explore"]
__all__ += ["Compiled", "compile", "guard", "python_choice", "replayed"]
# torch's names and functions
__all__ += ["abs", "cat", "manual_seed", "ones", "randn", "sqrt", "tensor", "zeros"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """Drawing loads graphviz (and graph.py) only when first asked for."""
    if name in ("draw_graph", "GraphvizNotFoundError", "GraphvizTimeoutError"):
        from . import graph
        return getattr(graph, name)
    raise AttributeError(f"module 'microtensor' has no attribute {name!r}")
