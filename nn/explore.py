"""model.explore(x): the whole unrolled graph of one forward pass, as an interactive HTML page.

A forward pass keeps every value; when ``y`` is given, the loss's backward
also keeps every intermediate gradient, so each node of the explorer shows
its value and its gradient. See ``mt.explore`` for the page.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import microtensor as mt

from . import losses
from .inspect import parameter_grads_restored
from .symbolic import flatten


def layer_notes(model) -> dict[str, str]:
    """One line per layer for its box: its type and output shape, "LSTM · (None, 50, 128)"."""
    notes = {}
    for node in getattr(model, "nodes", None) or []:  # a subclass with its own forward has none
        shape = node.output_shape
        notes.setdefault(node.layer.name, f"{type(node.layer).__name__} · {shape}")
    return notes


def explore_model(model, x, path: str | Path | None = None, y=None,
                  loss=None) -> mt.Explorer | Path:
    """The explorer of one forward pass of ``model`` on ``x`` (and of the loss on ``y``).

    path: where to write the HTML file (returns that Path); without it an
    ``mt.Explorer`` that Jupyter shows inline. With ``y`` the loss (the
    compiled one, or ``loss=``, a function or name from ``nn.losses``) is the
    root and a backward pass keeps every gradient; the parameters' ``.grad``
    are left as they were.
    """
    loss_fn = None
    if y is not None:
        loss_fn = losses.of_model(model, loss, f"{model.name}.explore(y=...)")
    outputs = flatten(model(x))
    if len(outputs) != 1:
        raise ValueError(f"{model.name}: explore() shows the graph of one output, and the "
                         f"model has {len(outputs)}; explore one of them: "
                         "mt.explore(model(x)[k], path)")
    root = outputs[0] if loss_fn is None else loss_fn(y, outputs[0])
    batch = len(flatten(x)[0])
    title = f"{model.name}: {'loss' if loss_fn is not None else 'forward pass'}, batch of {batch}"
    with parameter_grads_restored(model) if loss_fn is not None else contextlib.nullcontext():
        if loss_fn is not None:
            root.backward(retain_grads=True)
        return mt.explore(root, path, title=title, layer_notes=layer_notes(model))
