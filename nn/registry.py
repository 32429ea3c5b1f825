"""Keras lets a string stand for a function ("relu", "adam", "mse"): one lookup for all kinds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def lookup(kind: str, table: dict[str, F], key: str | F) -> F:
    """``key`` itself if callable, else ``table[key]``; an unknown name lists the known ones."""
    if callable(key):
        return key
    try:
        return table[key]
    except KeyError:
        raise ValueError(f"unknown {kind} {key!r}; known: {', '.join(table)}") from None


def name_in(table: dict[str, F], fn: F) -> str:
    """The name under which ``fn`` is registered (for saving configs), else its __name__."""
    for name, registered in table.items():
        if registered is fn:
            return name
    return getattr(fn, "__name__", "custom")
