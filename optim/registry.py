"""Keras-style lookup: ``optim.get("adam")`` -> ``Adam()`` with its default hyperparameters."""

from __future__ import annotations

from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "adam": Adam, "adamw": AdamW, "sgd": SGD, "rmsprop": RMSprop,
}


def get(identifier: str | Optimizer) -> Optimizer:
    """A fresh optimizer named by ``identifier`` (any case), or the optimizer itself."""
    if isinstance(identifier, Optimizer):
        return identifier
    key = identifier.lower() if isinstance(identifier, str) else None
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {identifier!r}; known names: "
                         f"{', '.join(sorted(OPTIMIZERS))} (or pass an optimizer instance)")
    return OPTIMIZERS[key]()
