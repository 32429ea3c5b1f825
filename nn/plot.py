"""model.draw(): the layer graph (like Keras's plot_model) or the op graph of one forward pass."""

from __future__ import annotations

import graphviz
import numpy as np

import microtensor as mt

from . import losses
from .symbolic import flatten


def _shape_text(shape) -> str:
    return str(shape) if not isinstance(shape, list) else ", ".join(map(str, shape))


def draw_layers(model, rankdir: str = "TB") -> graphviz.Digraph:
    """One box per layer call with its input and output shapes, arrows where data flows."""
    from microtensor.graph import Graph, check_rankdir

    check_rankdir("draw", rankdir)
    graph = Graph(name=model.name, graph_attr={"rankdir": rankdir, "label": model.name,
                                               "labelloc": "t", "fontname": "Helvetica"},
                  node_attr={"shape": "record", "fontname": "Helvetica", "fontsize": "11",
                             "style": "rounded,filled", "fillcolor": "#eef2f7"})
    key = {id(node): f"n{k}" for k, node in enumerate(model.nodes)}
    for node in model.nodes:
        layer = node.layer
        inputs = node.symbolic_inputs()
        input_text = _shape_text([t.shape for t in inputs] if len(inputs) > 1 else
                                 inputs[0].shape) if inputs else _shape_text(node.output_shape)
        label = (f"{{{layer.name}: {type(layer).__name__}|{{input:|output:}}|"
                 f"{{{input_text}|{_shape_text(node.output_shape)}}}}}")
        graph.node(key[id(node)], label.replace("<", "\\<").replace(">", "\\>"))
        for t in inputs:
            graph.edge(key[id(t.node)], key[id(node)])
    return graph


def draw_model(model, x=None, y=None, level: str = "op", loss=None, **options) -> graphviz.Digraph:
    """``level="layer"``: the layer graph. ``level="step"``: one box per time step of each
    recurrent layer with its equations (``mt.draw_graph(level="step")``), top to bottom.
    ``level="op"``: the op graph of one forward pass on
    ``x`` (default: one sample of ones shaped like the input), and of the loss if ``y`` is given.
    ``options`` go to ``mt.draw_graph`` (max_steps, group, show_shapes, rankdir, show_values...).
    With ``show_values=True`` and ``y``, a backward pass (keeping every gradient) runs first so
    each node shows d loss/d node; the parameters' ``.grad`` are left as they were."""
    if level == "layer":
        op_only = sorted(set(options) - {"rankdir"})
        if op_only:
            raise TypeError(f"{model.name}: draw(level='layer') takes rankdir only; "
                            f"{', '.join(op_only)} belong to level='op'")
        return draw_layers(model, **options)
    if level not in ("op", "step"):
        raise ValueError(f"{model.name}: draw(level=...) takes 'layer', 'step' or 'op', "
                         f"got {level!r}")
    options["level"] = level
    if x is None:
        shapes = [t.shape for t in flatten(model.inputs)]
        # One sample of ones (zeros would be all padding to Embedding(mask_zero=True), and no
        # step would be drawn); an axis of any length (None) gets 3 steps.
        x = [np.ones((1, *(3 if n is None else n for n in s[1:])),
                     dtype=mt.get_default_dtype()) for s in shapes]
        x = x[0] if len(x) == 1 else x
    output = model(x)
    if isinstance(output, list | tuple):
        raise ValueError(f"{model.name}: draw() draws the graph of one output, and the model "
                         f"has {len(output)}; draw one of them: "
                         "mt.draw_graph(model(x)[k]), or level='layer' for the whole model")
    if y is not None:
        loss_fn = losses.of_model(model, loss, f"{model.name}.draw(y=...)")
        output = loss_fn(y, output)
        if options.get("show_values"):
            from .inspect import parameter_grads_restored
            with parameter_grads_restored(model):
                output.backward(retain_grads=True)
                return mt.draw_graph(output, **options)
    return mt.draw_graph(output, **options)
