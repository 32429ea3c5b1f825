"""nn: layers built only from microtensor ops, with Keras's semantics and numbers."""

from . import activations, initializers, losses, metrics
from .bidirectional import Bidirectional
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .gru import GRU
from .history import History
from .inspect import gradient_flow, plot_gradient_flow
from .layer import Layer, reset_names
from .lstm import LSTM
from .model import Input, InputLayer, Model, Sequential
from .model_file import ModelFileError
from .module import Module
from .saving import load_model
from .seeding import set_seed
from .simple_rnn import SimpleRNN

__all__ = [
    "LSTM", "Dense", "History", "Input", "InputLayer", "Layer", "Model", "Module", "Sequential",
    "activations", "initializers", "load_model", "losses", "metrics", "reset_names", "set_seed",
]
__all__ += ["Bidirectional", "GRU", "SimpleRNN"]
__all__ += ["Dropout", "Embedding"]
__all__ += ["gradient_flow", "plot_gradient_flow"]
__all__ += ["ModelFileError"]
