"""Activation functions by their Keras names."""

from __future__ import annotations

from collections.abc import Callable

import microtensor as mt

from .registry import lookup, name_in

Activation = Callable[[mt.Tensor], mt.Tensor]


def linear(x: mt.Tensor) -> mt.Tensor:
    return x


relu, sigmoid, tanh, softmax = mt.relu, mt.sigmoid, mt.tanh, mt.softmax  # keras.activations.relu

_BY_NAME: dict[str, Activation] = {
    "linear": linear, "relu": mt.relu, "sigmoid": mt.sigmoid, "tanh": mt.tanh,
    "softmax": mt.softmax,
}


def get(activation: str | Activation | None) -> Activation:
    return linear if activation is None else lookup("activation", _BY_NAME, activation)


def name_of(activation: Activation) -> str:
    return name_in(_BY_NAME, activation)
