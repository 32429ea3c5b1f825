"""Layer: a Module that builds its weights from the first input it sees, Keras style."""

from __future__ import annotations

import inspect
import math
import numbers
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import microtensor as mt

from . import activations, initializers, losses
from .module import Module
from .symbolic import Node, Shape, SymbolicTensor, is_symbolic, map_structure

_name_counts: Counter[str] = Counter()


def unique_name(base: str) -> str:
    """Keras-style default names: "dense", then "dense_1", "dense_2", ..."""
    count = _name_counts[base]
    _name_counts[base] += 1
    return base if count == 0 else f"{base}_{count}"


def reset_names() -> None:
    """Start default layer names from scratch ("lstm", "lstm_1", ... again)."""
    _name_counts.clear()


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """"1 unit", "128 units": for the sentences of summary(explain=True)."""
    return f"{number} {noun}" if number == 1 else f"{number} {plural or noun + 's'}"


def positive_int(layer, argument: str, value) -> int:
    """``value`` as an int, or an error naming the layer: Dense(2.7) must not become Dense(2)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{layer.name} ({type(layer).__name__}): {argument} must be a positive "
                         f"integer, got {value!r}")
    return int(value)


def flag(layer, argument: str, value) -> bool:
    """``value`` once known to be True or False: Dense(use_bias="no") must not mean True."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{layer.name} ({type(layer).__name__}): {argument} must be True or "
                        f"False, got {value!r}")
    return bool(value)


def checked_initializer(layer, initializer):
    """``initializer`` unchanged, once known to exist: a typo fails when the layer is made,
    naming the layer, not at its first call."""
    _looked_up(layer, initializers.get, initializer)
    return initializer


def checked_activation(layer, activation) -> activations.Activation:
    """The function for ``activation`` (a name, a function or None); a typo names the layer."""
    return _looked_up(layer, activations.get, activation)


def _looked_up(layer, get: Callable[[Any], Any], value):
    try:
        return get(value)
    except ValueError as err:
        raise ValueError(f"{layer.name} ({type(layer).__name__}): {err}") from None


class _Attempts(threading.local):
    def __init__(self) -> None:
        self.open: list[list[Callable[[], None]]] = []  # undo steps of each open attempt


_attempts = _Attempts()  # per thread: a build in one thread is not undone by another's error


@contextmanager
def build_attempt() -> Iterator[None]:
    """Around a call that may build layers: if it raises, what was built inside is undone,
    newest first, so the failed call leaves nothing half-built and the next call builds afresh.

    Attempts nest: one that succeeds hands its undo steps to the attempt around it, which
    still takes everything back if it fails later (Sequential: layer 1 built, layer 2 raises).
    """
    steps: list[Callable[[], None]] = []
    attempts = _attempts.open
    attempts.append(steps)
    try:
        yield
    except BaseException:
        for undo in reversed(steps):
            undo()
        raise
    finally:
        attempts.pop()
    if attempts:
        attempts[-1].extend(steps)


def on_failure(undo: Callable[[], None]) -> None:
    """Have the innermost open build_attempt run ``undo`` if it fails (none open: nothing)."""
    if _attempts.open:
        _attempts.open[-1].append(undo)


MAX_NAME_LENGTH = 1000  # a zip entry's name (layer/weight.npy) holds at most 65,535 bytes


def checked_name(kind: str, name) -> str:
    """A layer's own name, once known to be one a model file can hold and give back."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"{kind}: name must be a non-empty string, got {name!r}")
    problem = ("contains a NUL character" if "\0" in name
               else "starts with '__', kept for the model file's own records"
               if name.startswith("__")
               else f"is longer than {MAX_NAME_LENGTH} characters"
               if len(name) > MAX_NAME_LENGTH else None)
    try:
        name.encode()
    except UnicodeEncodeError:
        problem = "can't be written as UTF-8"
    if problem:
        raise ValueError(f"{kind}: the layer name {name!r} {problem}; weights are saved under "
                         "their layer's name")
    return name


# float16 is refused rather than half-supported: in it Adam's eps (1e-8) is 0 and binary
# crossentropy's clip 1 - 1e-7 is 1.0, so training would give inf or NaN without a word.
FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_supported_dtype(layer) -> None:
    dtype = mt.get_default_dtype()
    if dtype not in FLOAT_TYPES:
        raise TypeError(f"{layer.name} ({type(layer).__name__}): layers keep float32 or float64 "
                        f"weights, but the default dtype is {dtype} (float16 can't hold Adam's "
                        "eps or the loss's clipping); call mt.set_default_dtype('float32')")


_budget = threading.local()  # while a model file is loaded: weight elements the file holds


@contextmanager
def weight_budget(elements: int) -> Iterator[None]:
    """While open, layers may create at most ``elements`` weight values in all: a model file
    describes no more weights than it holds, so a config that asks for more (Dense(10**9)) is
    refused before the memory is taken."""
    _budget.left = elements
    try:
        yield
    finally:
        del _budget.left


def spend_weight_budget(layer, name: str, shape: tuple[int, ...]) -> None:
    left = getattr(_budget, "left", None)
    if left is None:
        return
    size = math.prod(int(n) for n in shape)
    if size > left:
        raise ValueError(f"{layer.name}/{name} would hold {size:,} values of shape "
                         f"{tuple(shape)} but the file holds only {left:,} more")
    _budget.left = left - size


def freeing_all_but_logits(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``mt.freeing_intermediates(fn, ...)``, except that a sigmoid output's input (its logits)
    keeps its value: binary crossentropy computes the loss from it (``losses.sigmoid_input``)."""
    def with_logits(*args: Any, **kwargs: Any) -> tuple[Any, list[mt.Tensor]]:
        result = fn(*args, **kwargs)
        outputs = [result] if isinstance(result, mt.Tensor) else result
        logits = [losses.sigmoid_input(t) for t in outputs] if isinstance(outputs, list | tuple) \
            else []
        return result, [t for t in logits if t is not None]
    return mt.freeing_intermediates(with_logits, *args, **kwargs)[0]


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class Layer(Module):
    """Base of all layers.

    Subclasses define ``build(input_shape)`` (create weights with ``add_weight``),
    ``forward(x)`` (microtensor ops only), ``compute_output_shape(input_shape)``,
    and for the summary ``explain_params(input_shape)`` and ``axis_names(...)``.
    Shapes passed to ``build`` include the batch axis (``None`` when unknown).

    Masks (Keras): a layer that makes one (Embedding with ``mask_zero=True``) or
    changes it (a recurrent layer without ``return_sequences``) overrides
    ``compute_mask``; a layer whose ``forward`` takes a ``mask=`` keyword gets
    the mask of its input from Model/Sequential; every other layer passes it on.
    """

    names_by_path = False  # weights named "dense/kernel", as Keras names them
    expected_ndim: int | None = None  # rank of the input, batch axis included
    # The input's last axis counts features, fixed once built (not for Embedding's indices).
    input_has_features = True
    registry: dict[str, type[Layer]] = {}  # class name -> class, for nn.load_model

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # The first class of a name keeps it: a user's `class Dense(nn.Dense)` elsewhere
        # must not change what nn.load_model builds from a saved "Dense".
        Layer.registry.setdefault(cls.__name__, cls)

    def __init__(self, name: str | None = None, *, trainable: bool = True,
                 input_shape: Shape | None = None, input_dim: int | None = None, **unknown):
        """Every layer takes Keras's common arguments: ``name``, ``trainable``, and on the first
        layer of a Sequential ``input_shape`` (or Keras 2's ``input_dim``), which builds the
        model at once, as an ``nn.Input`` in front of it would."""
        super().__init__()
        self.name = checked_name(type(self).__name__, name) if name is not None else \
            unique_name(snake_case(type(self).__name__))
        if unknown:
            raise TypeError(f"{self.name} ({type(self).__name__}): unexpected argument(s) "
                            f"{', '.join(sorted(unknown))}")
        self.built = False
        self.input_shape: Shape | None = None
        check_supported_dtype(self)
        if input_dim is not None:
            input_shape = (input_dim,)
        self.declared_input_shape = None if input_shape is None else tuple(input_shape)
        self._trainable = bool(trainable)  # no weights yet: add_weight reads it
        self._symbolic_calls: list[tuple] = []  # (inputs, outputs) of each call on nn.Input

    def add_weight(self, name: str, shape: tuple[int, ...], initializer) -> mt.Tensor:
        check_supported_dtype(self)
        spend_weight_budget(self, name, shape)
        values = initializers.get(initializer)(tuple(shape))
        weight = mt.Tensor(values.astype(mt.get_default_dtype()), requires_grad=self.trainable,
                           name=f"{self.name}/{name}")
        self._weights[name] = weight
        return weight

    def build(self, input_shape: Shape) -> None:
        """Create the weights; the default layer has none."""

    def compute_output_shape(self, input_shape: Shape) -> Shape | list[Shape]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-friendly (used by ``model.save``)."""
        return {"name": self.name}

    def explain_params(self, input_shape: Shape) -> str | None:
        """How the parameter count arises, in words (for ``summary(explain=True)``)."""
        return None

    last_axis = "units"  # what the output's last axis counts, for summary(explain=True)

    def output_axes(self, output_shape: Shape) -> tuple[str, ...]:
        """What each axis of the output means, for ``summary(explain=True)``."""
        middle = ("timesteps",) * (len(output_shape) - 2)
        return ("batch", *middle, self.last_axis)

    def describe_output(self) -> str | None:
        """A note on what the output holds, for ``summary(explain=True)``."""
        return None

    # -- masks --------------------------------------------------------------------------
    def compute_mask(self, inputs, mask=None):
        """The mask of this layer's output, (batch, timesteps) booleans or None.

        By default the input's mask passes through unchanged (elementwise layers,
        Dense on every time step, Dropout).
        """
        return mask

    @classmethod
    def takes_mask(cls) -> bool:
        """True if ``forward`` accepts ``mask=`` (then Model passes the input's mask in)."""
        return "mask" in inspect.signature(cls.forward).parameters

    def convert_input(self, value) -> mt.Tensor:
        """Data handed to the layer, as the Tensor ``forward`` expects (float by default)."""
        return as_input(value)

    # -- calling ---------------------------------------------------------------------
    def __call__(self, inputs, **kwargs):
        with build_attempt():  # a first call that fails after building leaves the layer unbuilt
            if is_symbolic(inputs) or is_symbolic(list(kwargs.values())):
                return self._call_symbolic(inputs, kwargs)
            inputs = map_structure(self.convert_input, inputs)
            self._ensure_built(shape_of(inputs))
            inputs = map_structure(self._in_weight_dtype, inputs)
            with mt.scope(name=self.name):
                return freeing_all_but_logits(self.forward, inputs, **kwargs)

    def _in_weight_dtype(self, x: mt.Tensor) -> mt.Tensor:
        """A float input in the float type of the layer's weights, as Keras casts it: a float64
        tensor into a float32 layer gives float32 (not float64 from numpy's promotion)."""
        weight = next(iter(self._weights.values()), None)
        if weight is None or x.dtype.kind != "f" or x.dtype == weight.dtype:
            return x
        return x.astype(weight.dtype)

    def _call_symbolic(self, inputs: SymbolicTensor, kwargs: dict[str, Any]):
        input_shape = shape_of(inputs)
        self._ensure_built(input_shape)
        shape = self.compute_output_shape(input_shape)
        node = Node(self, inputs, kwargs)
        node.output_shape = shape
        if isinstance(shape, list):
            output = [SymbolicTensor(s, node, index=i) for i, s in enumerate(shape)]
        else:
            output = SymbolicTensor(shape, node)
        call = (inputs, output)
        self._symbolic_calls.append(call)
        on_failure(lambda: self._symbolic_calls.remove(call))  # a failed build forgets it
        return output

    @property
    def output(self):
        """The symbolic output of this layer's call on ``nn.Input`` data (Keras's
        ``layer.output``), e.g. to build a second model from a trained one's layers."""
        return self._only_call("output")[1]

    @property
    def input(self):
        """The symbolic input of this layer's call (Keras's ``layer.input``)."""
        return self._only_call("input")[0]

    def _only_call(self, what: str):
        calls = vars(self).get("_symbolic_calls", [])
        if len(calls) != 1:
            raise AttributeError(
                f"{self.name} ({type(self).__name__}): layer.{what} needs exactly one call on "
                f"symbolic data (nn.Input and what comes from it); it has had {len(calls)}")
        return calls[0]

    def _ensure_built(self, shape: Shape) -> None:
        self.check_input_shape(shape)
        if not self.built:
            with build_attempt():
                on_failure(self._unbuild)
                self.input_shape = any_batch(shape)
                self.build(self.input_shape)
                self.built = True

    def _unbuild(self) -> None:
        """Back to never built: no weights (nor their attributes), no input shape."""
        for name, weight in self._weights.items():
            if vars(self).get(name) is weight:
                delattr(self, name)
        self._weights.clear()
        self.input_shape = None
        self.built = False

    def check_input_shape(self, shape: Shape) -> None:
        """Raise an error that teaches, if ``shape`` (batch axis included) doesn't fit."""
        if self.expected_ndim is not None and len(shape) != self.expected_ndim:
            raise ValueError(f"{self.name} ({type(self).__name__}): expected a "
                             f"{self.expected_ndim}-D input, got shape {tuple(shape)}")
        if self.built and shape[-1] != self.input_shape[-1]:
            raise ValueError(
                f"{self.name} ({type(self).__name__}): was built for inputs with "
                f"{self.input_shape[-1]} features on the last axis, got shape {tuple(shape)}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def shape_of(inputs) -> Shape | list[Shape]:
    """The shape of one input, or the list of shapes of several (Concatenate's)."""
    if isinstance(inputs, list | tuple):
        return [t.shape for t in inputs]
    return inputs.shape


def any_batch(shape: Shape | list[Shape]) -> Shape | list[Shape]:
    """``shape`` with the batch axis as None (each shape of a list)."""
    if isinstance(shape, list):
        return [any_batch(s) for s in shape]
    return (None, *shape[1:])


def as_input(value) -> mt.Tensor:
    """Data given to a layer as a float Tensor (the default dtype; no copy if already float)."""
    if isinstance(value, mt.Tensor):
        if value.dtype.kind == "f":
            return value
        value = value.data
    return mt.Tensor(np.asarray(value), dtype=mt.get_default_dtype())


def as_model_input(value, name: str | None = None, dtype=None) -> mt.Tensor:
    """Data given to a model: integer arrays (token indices) stay integer, the rest is float;
    ``dtype`` (an nn.Input's) converts to that type. A Tensor made here is named ``name``
    (its nn.Input's), for the graph picture."""
    if isinstance(value, mt.Tensor):
        return value
    array = np.asarray(value)
    if dtype is not None and dtype.kind in "iu":
        if array.dtype.kind == "f" and not np.all(array == np.round(array)):
            raise TypeError(f"{name}: Input(dtype={dtype.name}) got non-integer values")
        array = array.astype(dtype)
    tensor = mt.Tensor(array, dtype=array.dtype) if array.dtype.kind in "iu" else as_input(array)
    tensor.name = name
    return tensor
