"""optim: optimizers that update microtensor parameters in place, and gradient clipping."""

from .adam import Adam, AdamW
from .clip import clip_grad_norm, clip_grad_value
from .optimizer import Optimizer
from .registry import get
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "clip_grad_norm", "clip_grad_value", "get",
]
