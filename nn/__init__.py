"""nn: layers built only from microtensor ops, with Keras's semantics and numbers."""

from . import (
    activations,
    callbacks,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    utils,
)
from .bidirectional import Bidirectional
from .callbacks import History
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .gru import GRU
from .inspect import gradient_flow, plot_gradient_flow
from .layer import Layer, reset_names
from .lstm import LSTM
from .model import Input, InputLayer, Model, Sequential
from .model_file import ModelFileError
from .module import Module
from .saving import load_model
from .seeding import set_seed
from .shaping import Activation, Concatenate, Flatten, Masking, RepeatVector
from .simple_rnn import SimpleRNN
from .time_distributed import TimeDistributed

__all__ = [
    "LSTM", "Dense", "History", "Input", "InputLayer", "Layer", "Model", "Module", "Sequential",
    "activations", "initializers", "load_model", "losses", "metrics", "optimizers", "reset_names",
    "set_seed",
]
__all__ += ["Bidirectional", "GRU", "SimpleRNN"]
__all__ += ["Dropout", "Embedding"]
__all__ += ["gradient_flow", "plot_gradient_flow"]
__all__ += ["ModelFileError"]
# Keras's namespaces (``import nn as keras``) and its remaining layers
__all__ += ["callbacks", "layers", "models", "optimizers", "utils"]
__all__ += ["Activation", "Concatenate", "Flatten", "Masking", "RepeatVector", "TimeDistributed"]
