"""Keras-style lookup: ``optim.get("adam")`` -> ``Adam()`` with its default hyperparameters."""

from __future__ import annotations

from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "adam": Adam, "adamw": AdamW, "sgd": SGD, "rmsprop": RMSprop,
}


def get(identifier: str | Optimizer,
        table: dict[str, type[Optimizer]] | None = None) -> Optimizer:
    """A fresh optimizer named by ``identifier`` (any case), or the optimizer itself.
    ``table`` maps names to classes (default: optim's own, with torch's defaults)."""
    table = OPTIMIZERS if table is None else table
    if isinstance(identifier, Optimizer):
        return identifier
    key = identifier.lower() if isinstance(identifier, str) else None
    if key not in table:
        raise ValueError(f"unknown optimizer {identifier!r}; known names: "
                         f"{', '.join(sorted(table))} (or pass an optimizer instance)")
    return table[key]()
