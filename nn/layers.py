"""Keras's ``keras.layers`` namespace: ``from nn import layers``; ``layers.LSTM(64)``."""

from .bidirectional import Bidirectional
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .gru import GRU
from .layer import Layer
from .lstm import LSTM
from .model import Input, InputLayer
from .shaping import Activation, Concatenate, Flatten, Masking, RepeatVector
from .simple_rnn import SimpleRNN
from .time_distributed import TimeDistributed


def concatenate(inputs: list, axis: int = -1, name: str | None = None):
    """Keras's functional form: ``concatenate([a, b])`` is ``Concatenate()([a, b])``."""
    return Concatenate(axis=axis, name=name)(inputs)


__all__ = [
    "GRU", "LSTM", "Activation", "Bidirectional", "Concatenate", "Dense", "Dropout", "Embedding",
    "Flatten", "Input", "InputLayer", "Layer", "Masking", "RepeatVector", "SimpleRNN",
    "TimeDistributed", "concatenate",
]
