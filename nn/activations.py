"""Activation functions by their Keras names."""

from __future__ import annotations

from collections.abc import Callable

import microtensor as mt

Activation = Callable[[mt.Tensor], mt.Tensor]


def linear(x: mt.Tensor) -> mt.Tensor:
    return x


_BY_NAME: dict[str, Activation] = {
    "linear": linear, "relu": mt.relu, "sigmoid": mt.sigmoid, "tanh": mt.tanh,
    "softmax": mt.softmax,
}


def get(activation: str | Activation | None) -> Activation:
    if activation is None:
        return linear
    if callable(activation):
        return activation
    try:
        return _BY_NAME[activation]
    except KeyError:
        raise ValueError(f"unknown activation {activation!r}; known: "
                         f"{', '.join(_BY_NAME)}") from None


def name_of(activation: Activation) -> str:
    for name, fn in _BY_NAME.items():
        if fn is activation:
            return name
    return getattr(activation, "__name__", "custom")
