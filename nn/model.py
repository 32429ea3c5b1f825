"""The Keras functional API: Input, Model, and Sequential as its linear special case."""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import microtensor as mt

from .layer import (
    Layer,
    as_input,
    as_model_input,
    build_attempt,
    freeing_all_but_logits,
    on_failure,
    unique_name,
)
from .module import Module
from .symbolic import Node, Shape, SymbolicTensor, flatten, map_structure
from .training import Trainable, collector_paused


class InputLayer(Layer):
    """Where data enters a functional model; no weights (the summary's 0-parameter row)."""

    last_axis = "features"

    def __init__(self, shape: Shape, name: str | None = None, dtype=None,
                 batch_size: int | None = None):
        super().__init__(name or unique_name("input_layer"))
        self.input_shape = (batch_size, *shape)
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.built = True

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        return x

    def check_input_shape(self, shape: Shape) -> None:
        expected = self.input_shape
        fits = len(shape) == len(expected) and all(
            want is None or got == want for got, want in zip(shape, expected, strict=True))
        if not fits:
            raise ValueError(f"{self.name} (InputLayer): expects data of shape {expected} "
                             f"(None = any size), got {tuple(shape)}")

    def get_config(self) -> dict:
        config = {"name": self.name, "shape": list(self.input_shape[1:])}
        if self.input_shape[0] is not None:
            config["batch_size"] = self.input_shape[0]
        if self.dtype is not None:
            config["dtype"] = self.dtype.name
        return config


def Input(shape: Sequence[int | None] | None = None, name: str | None = None,  # noqa: N802
          dtype=None, batch_size: int | None = None,
          batch_shape: Sequence[int | None] | None = None) -> SymbolicTensor:
    """A model input of the given shape, without the batch axis: ``Input(shape=(50, 10))``.

    ``dtype="int32"`` (token indices) keeps integer data integer; ``batch_size`` (or Keras's
    ``batch_shape``) fixes the batch axis, which is otherwise any size (None).
    """
    if batch_shape is not None:
        batch_size, shape = batch_shape[0], batch_shape[1:]
    if shape is None:
        raise TypeError("Input: give shape=, the shape of one sample, e.g. Input(shape=(50, 10))")
    shape = tuple(shape) if isinstance(shape, Sequence) and not isinstance(shape, str) else (shape,)
    for size in shape:
        if size is not None and (isinstance(size, bool) or not isinstance(size, numbers.Integral)
                                 or size <= 0):
            raise ValueError(f"Input: shape must hold positive integers (or None for any size), "
                             f"without the batch axis, e.g. shape=(50, 10); got {shape!r}")
    shape = tuple(None if size is None else int(size) for size in shape)
    layer = InputLayer(shape, name, dtype=dtype, batch_size=batch_size)
    node = Node(layer, None, {})
    node.output_shape = layer.input_shape
    return SymbolicTensor(layer.input_shape, node)


class Model(Trainable, Module):
    """A graph of layer calls from ``inputs`` to ``outputs`` (symbolic tensors)."""

    def __init__(self, inputs=None, outputs=None, name: str | None = None):
        super().__init__()
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: name must be a string, got {name!r}")
        self.name = name or unique_name(type(self).__name__.lower())
        self.built = False
        self.output_mask = None  # after a call: the mask of the output (Keras's _keras_mask)
        if inputs is not None or outputs is not None:
            self._set_graph(inputs, outputs)

    def __call__(self, *args, **kwargs):
        # The collector is paused meanwhile: the ~12,000 objects of a seed-model forward pass
        # hold no cycles, and it would walk them again and again (measured: one step in ten
        # then paid a full collection of ~100 ms in a hand-written training loop). Inside
        # mt.freeing_values() (fit's step) the values the call doesn't return are dropped.
        with collector_paused():
            return freeing_all_but_logits(super().__call__, *args, **kwargs)

    def _set_graph(self, inputs, outputs) -> None:
        for t in flatten([inputs, outputs]):
            if not isinstance(t, SymbolicTensor):
                raise TypeError(f"{self.name}: inputs and outputs must come from nn.Input and "
                                f"layer calls on it, got {type(t).__name__}")
        nodes = _nodes_between(inputs, outputs)
        layers: list[Layer] = []
        for node in nodes:
            if all(node.layer is not layer for layer in layers):
                layers.append(node.layer)
        names = [layer.name for layer in layers]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"{self.name}: layer names must be unique (weights are saved by "
                             f"name), but {', '.join(map(repr, repeated))} is used more than once")
        self.input, self.output, self.nodes, self._graph_layers = inputs, outputs, nodes, layers
        self.built = True

    @property
    def layers(self) -> list[Layer]:
        """The layers in call order, as Keras lists them: a functional model's nn.Input
        layers included (an InputLayer each), a Sequential's not."""
        return list(self._graph_layers) if self.built else []

    @property
    def names_by_path(self) -> bool:
        """Weights named "lstm1/kernel" (Keras) in a model of layer calls; by attribute path
        in a subclass with its own forward() (PyTorch style)."""
        return not self.built

    def _named_children(self) -> list[tuple[str, Module]]:
        # A subclass with its own forward() and no graph: the layers in its attributes.
        if self.built:
            return [(layer.name, layer) for layer in self._graph_layers]
        return super()._named_children()

    def build_for_data(self, shape: Shape) -> None:
        """Only Sequential can build itself from data; a graph-less Model is a subclass."""
        raise TypeError(
            f"{self.name}: fit and evaluate train models made of layer calls, "
            "nn.Model(inputs=nn.Input(...), outputs=...) or nn.Sequential([...]). A subclass "
            "with its own forward() trains in a PyTorch-style loop: "
            "loss.backward(); opt.step() (predict works on it)")

    @property
    def inputs(self) -> list[SymbolicTensor]:
        """The model's nn.Input tensors, always as a list (``model.input``: as given)."""
        return flatten(self.input)

    @property
    def outputs(self) -> list[SymbolicTensor]:
        """The output tensors, always as a list (``model.output``: as given)."""
        return flatten(self.output)

    @property
    def input_shape(self):
        return map_structure(lambda t: t.shape, self.input)

    @property
    def output_shape(self):
        return map_structure(lambda t: t.shape, self.output)

    def get_layer(self, name: str) -> Layer:
        for layer in self._graph_layers if self.built else self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"{self.name}: no layer named {name!r}; layers: "
                       f"{', '.join(layer.name for layer in self.layers)}")

    def forward(self, x):
        """Run the recorded layer calls on real data (numpy arrays or Tensors).

        Masks travel alongside, as in Keras: each layer's ``compute_mask`` gives
        the mask of its output, and a layer whose ``forward`` takes ``mask=``
        receives the mask of its input (unless the call gave one explicitly).
        """
        self._require_built(x)
        values: dict[int, object] = {}
        masks: dict[int, object] = {}  # id(node) -> mask of its output(s)
        for symbolic, data in zip(self.inputs, flatten(x), strict=True):
            values[id(symbolic)] = data
        for node in self.nodes:
            if isinstance(node.layer, InputLayer):
                symbolic = next(t for t in self.inputs if t.node is node)
                data = as_model_input(values[id(symbolic)], name=node.layer.name,
                                      dtype=node.layer.dtype)
                node.layer.check_input_shape(data.shape)
                values[id(symbolic)] = data
                continue
            resolve = _resolver(values)
            inputs = map_structure(resolve, node.inputs)
            kwargs = {k: map_structure(resolve, v) for k, v in node.kwargs.items()}
            mask = map_structure(lambda t: _mask_of(t, masks), node.inputs)
            if _any_mask(mask) and "mask" not in kwargs and node.layer.takes_mask():
                kwargs["mask"] = mask
            values[id(node)] = node.layer(inputs, **kwargs)
            masks[id(node)] = node.layer.compute_mask(inputs, mask)
        self.output_mask = map_structure(lambda t: _mask_of(t, masks), self.output)
        return map_structure(lambda t: _value_of(t, values), self.output)

    def _require_built(self, x) -> None:
        if not self.built:
            raise RuntimeError(f"{self.name}: the model has no layers connected yet")
        count = len(self.inputs)
        if len(flatten(x)) != count:
            raise ValueError(f"{self.name}: expects {count} input(s), got {len(flatten(x))}")

    def summary(self, print_fn=print, explain: bool = False, line_length: int | None = None):
        """Print Keras's table (Layer (type) | Output Shape | Param #) and the totals.

        ``explain=True`` adds under each layer how its parameter count arises and
        what each axis of its output means.
        """
        from .summary import summary_lines
        for line in summary_lines(self, explain=explain, line_length=line_length):
            print_fn(line)

    def get_config(self) -> dict:
        from .saving import model_config
        return model_config(self)

    def draw(self, x=None, y=None, level: str = "op", **options):
        """A Graphviz picture: ``level="layer"`` the layer graph with shapes (like Keras's
        plot_model), ``level="step"`` one box per time step with its equations, ``level="op"``
        the unrolled op graph of one forward pass (on ``x``, or one sample of ones) and of the
        loss when ``y`` is given. See ``mt.draw_graph``."""
        from .plot import draw_model
        return draw_model(self, x, y, level=level, **options)

    def record(self, x, y=None, loss=None):
        """One pass on ``x`` that keeps every value, to look inside (see ``nn.record``):
        ``rec.value("lstm1", "f", step=3)`` is lstm1's forget gate at step 3, (batch, units).
        With ``y``, the loss (compiled, or ``loss=``) and its backward pass:
        ``rec.grad("lstm1", "h", step=3)``. ``rec.names(layer)``, ``rec.steps(layer)``."""
        from .record import record
        return record(self, x, y, loss)

    def explore(self, x, path: str | Path | None = None, y=None, loss=None):
        """The whole unrolled graph of one forward pass on ``x`` (and the loss on ``y``, with
        gradients) as one interactive HTML file at ``path``; without a path, an object that
        Jupyter shows inline. Layer -> time step -> op, values and gradients: see mt.explore."""
        from .explore import explore_model
        return explore_model(self, x, path, y=y, loss=loss)

    def save(self, path, overwrite: bool = True) -> None:
        """Write architecture and weights to one ``.npz`` file (no pickle); see nn.load_model.
        Keras's ``.keras``/``.h5`` names are refused: that format can't be written here."""
        from .saving import save_model
        _check_overwrite(self, path, overwrite)
        save_model(self, path)

    def save_weights(self, path, overwrite: bool = True) -> None:
        """The same file as ``save`` (``load_weights`` reads the weights back from it)."""
        self.save(path, overwrite)

    def load_weights(self, path) -> None:
        """Weights from a file written by ``save``; on any mismatch nothing changes."""
        from .saving import load_weights
        load_weights(self, path)


class Sequential(Model):
    """A plain stack of layers: each one's output is the next one's input.

    Give an ``nn.Input`` first to build at once; otherwise the model is built on
    its first call, from the data's shape.
    """

    def __init__(self, layers: Sequence | None = None, name: str | None = None):
        super().__init__(name=name)
        self._input: SymbolicTensor | None = None
        self._stack: list[Layer] = []
        with build_attempt():  # a layer that doesn't fit unbuilds those built before it
            for layer in layers or []:
                self.add(layer)

    def add(self, layer) -> None:
        with build_attempt():  # on error: the layer list and graph as before, nothing built
            self._restore_graph_on_failure()
            if isinstance(layer, SymbolicTensor):
                if self._input is not None or self._stack:
                    raise ValueError(f"{self.name}: nn.Input can only come first")
                self._input = layer
            elif isinstance(layer, Layer):
                if self._input is None and not self._stack and layer.declared_input_shape:
                    self._input = Input(layer.declared_input_shape)  # LSTM(.., input_shape=)
                self._stack.append(layer)
            else:
                raise TypeError(f"{self.name}: add() takes a layer or nn.Input, got "
                                f"{type(layer).__name__}")
            if self._input is not None and self._stack:
                self._connect()

    names_by_path = False  # a stack of Keras layers, built or not: "lstm1/kernel"

    def _named_children(self) -> list[tuple[str, Module]]:
        # Before the first call the layers are known but not connected: model.eval() on a
        # fresh Sequential must still reach its Dropout.
        if self.built:
            return super()._named_children()
        return [(layer.name, layer) for layer in self._stack]

    def build(self, input_shape: Shape) -> None:
        """Build for inputs of ``input_shape`` (batch axis included, e.g. (None, 50, 10)).
        If a layer doesn't fit, the model and the layers this built are left as before."""
        with build_attempt():
            self._restore_graph_on_failure()
            self._input = Input(tuple(input_shape)[1:])
            self._connect()

    def _restore_graph_on_failure(self) -> None:
        """Have the open build attempt, if it fails, put back the layer list and graph as now."""
        saved = {key: vars(self)[key] for key in _GRAPH_STATE if key in vars(self)}
        saved["_stack"] = list(self._stack)

        def restore() -> None:
            for key in _GRAPH_STATE:
                vars(self).pop(key, None)
            vars(self).update(saved)
        on_failure(restore)

    def _connect(self) -> None:
        x = self._input
        for layer in self._stack:
            x = layer(x)
        self._set_graph(self._input, x)

    def build_for_data(self, shape: Shape) -> None:
        """Build from the first data seen: only the feature axis is fixed (the last one,
        unless the first layer takes indices, as Embedding does), so the same model later
        takes sequences of any length, as the layers allow."""
        takes_features = not self._stack or self._stack[0].input_has_features
        self.build((None, *[None] * (len(shape) - 2), shape[-1] if takes_features else None))

    def forward(self, x):
        if self.built:
            return super().forward(x)
        with build_attempt():  # a first call that fails leaves the model and its layers unbuilt
            self.build_for_data(as_input(x).shape)
            return super().forward(x)

    def count_params(self) -> int:
        if not self.built:
            raise RuntimeError(f"{self.name}: count_params() needs a built model: give the model "
                               "an nn.Input, call model.build(input_shape), or call it on data "
                               "first")
        return super().count_params()

    @property
    def layers(self) -> list[Layer]:
        """The layers given (or added), without the InputLayer, as Keras's Sequential."""
        return list(self._stack)

    layers_without_input = layers


def _check_overwrite(model: Model, path, overwrite: bool) -> None:
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{model.name}: save: {os.fspath(path)!r} exists and "
                              "overwrite=False")


# What Sequential's build changes on the model; a failed build puts these back.
_GRAPH_STATE = ("_input", "_stack", "built", "input", "output", "nodes", "_graph_layers")


def _nodes_between(inputs, outputs) -> list[Node]:
    """The layer calls that lead from ``inputs`` to ``outputs``, in call order."""
    input_ids = {id(t) for t in flatten(inputs)}
    found: dict[int, Node] = {}
    stack = list(flatten(outputs))
    while stack:
        tensor = stack.pop()
        node = tensor.node
        if node.id in found:
            continue
        found[node.id] = node
        if id(tensor) in input_ids:
            continue
        parents = node.symbolic_inputs()
        if not parents and not isinstance(node.layer, InputLayer):
            raise ValueError(f"output depends on layer {node.layer.name}, which is not "
                             "connected to the model's inputs")
        stack.extend(parents)
    for tensor in flatten(inputs):  # an input no output depends on is still one (as in Keras)
        found.setdefault(tensor.node.id, tensor.node)
    for node in found.values():
        if isinstance(node.layer, InputLayer) and all(
                t.node is not node for t in flatten(inputs)):
            raise ValueError(f"the outputs depend on {node.layer.name}, which is not among the "
                             "model's inputs")
    return _in_keras_order([found[i] for i in sorted(found)], inputs, outputs)


def _in_keras_order(nodes: list[Node], inputs, outputs) -> list[Node]:
    """``nodes`` (in call order) in the order Keras lists a model's layers: farthest from the
    outputs first; at equal distance, in the order a depth-first walk back from the outputs
    finishes them (so ``model.layers[2]`` is the layer a Keras script expects). Still an order
    in which every node comes after the nodes it reads."""
    input_nodes = {t.node.id for t in flatten(inputs)}

    def sources(node: Node) -> list[Node]:
        return [] if node.id in input_nodes else [t.node for t in node.symbolic_inputs()]

    depth = {node.id: 0 for node in nodes}
    for node in reversed(nodes):  # consumers before the nodes they read
        for source in sources(node):
            depth[source.id] = max(depth[source.id], depth[node.id] + 1)
    finished: dict[int, int] = {}
    for output in flatten(outputs):
        if output.node.id in finished:
            continue
        seen = {output.node.id}
        walk = [(output.node, iter(sources(output.node)))]
        while walk:
            node, pending = walk[-1]
            source = next(pending, None)
            if source is None:
                walk.pop()
                finished.setdefault(node.id, len(finished))
            elif source.id not in seen and source.id not in finished:
                seen.add(source.id)
                walk.append((source, iter(sources(source))))
    return sorted(nodes, key=lambda node: (-depth[node.id], finished.get(node.id, node.id)))


def _value_of(symbolic: SymbolicTensor, values: dict[int, object]):
    if id(symbolic) in values:
        return values[id(symbolic)]
    result = values[id(symbolic.node)]
    return result if symbolic.index is None else result[symbolic.index]


def _mask_of(symbolic: SymbolicTensor, masks: dict[int, object]):
    """The mask that travels with ``symbolic`` (None for model inputs and unmasked data)."""
    if not isinstance(symbolic, SymbolicTensor):
        return None
    mask = masks.get(id(symbolic.node))
    if symbolic.index is not None and isinstance(mask, list | tuple):
        return mask[symbolic.index]
    return None if symbolic.index is not None else mask


def _any_mask(mask) -> bool:
    return any(m is not None for m in flatten(mask))


def _resolver(values: dict[int, object]):
    def resolve(item):
        return _value_of(item, values) if isinstance(item, SymbolicTensor) else item
    return resolve
