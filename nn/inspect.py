"""Gradient flow through time: how large ‖∂L/∂h_t‖ is at each step of each recurrent layer.

This is the picture behind "vanishing gradients": in a plain RNN the loss's
gradient shrinks step by step on its way back to early time steps, in an LSTM
it survives. Nothing here differentiates anything itself: one forward pass
records the graph as usual, the hidden states are found in it by the tags
every recurrent layer puts on them (a tensor named ``"h"``, made inside
``mt.scope(step=t)`` of the layer), ``retain_grad()`` keeps their gradients,
and the ordinary ``backward()`` fills them in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

import microtensor as mt

from . import losses


@contextmanager
def parameter_grads_restored(model) -> Iterator[None]:
    """Run a backward pass inside without a trace on ``model``'s parameters.

    Each parameter's ``.grad`` is set aside and cleared (so the pass inside
    starts from zero instead of adding to it), then put back as it was
    (``None`` stays ``None``); the arrays set aside are never written to.
    """
    params = model.parameters()
    saved = [param.grad for param in params]
    for param in params:
        param.grad = None
    try:
        yield
    finally:
        for param, grad in zip(params, saved, strict=True):
            param.grad = grad


def hidden_states(root: mt.Tensor) -> dict[str, dict[int, mt.Tensor]]:
    """Each recurrent layer's new hidden state at each step, found in the graph of ``root``:
    ``{layer name: {t: h_t}}``, layers in the order the data passes through them."""
    found: dict[str, dict[int, mt.Tensor]] = defaultdict(dict)
    for tensor in mt.topological_order(root):  # parents first: a later "h" of a step wins
        if tensor.name == "h" and tensor.scope is not None and tensor.step is not None:
            found[tensor.scope][tensor.step] = tensor
    return dict(found)


def gradient_flow(model, x, y, loss=None) -> dict[str, np.ndarray]:
    """``{layer name: norms}`` for every recurrent layer of ``model``, where ``norms[t - 1]``
    is ‖∂L/∂h_t‖ for t = 1..T after one forward and backward pass of the loss L on (x, y).

    ∂L/∂h_t is the full gradient of L with respect to the layer's hidden state
    at step t, through every path (later steps, and the output if h_t is part
    of it), shape (batch, units); its norm is the Frobenius norm over the whole
    batch, sqrt(Σ_batch Σ_units (∂L/∂h_t)²). L is the loss as ``fit`` computes
    it (a mean over the batch). A step a layer skipped (every sample masked)
    gives nan. Under a mask, h_t is the cell's new state, whose gradient is 0
    for the masked samples. Steps are counted as the layer counts them (a
    layer that runs backwards in time starts at the sequence's end).

    loss: a loss function or name (see ``nn.losses``); default the compiled one.
    The pass runs in the model's current mode (``model.eval()`` turns dropout off).
    Parameters' ``.grad`` are left exactly as they were (see
    ``parameter_grads_restored``); weights and optimizer state are not touched.
    """
    loss_fn = losses.of_model(model, loss, "gradient_flow")
    with parameter_grads_restored(model):
        value = loss_fn(y, model(x))
        states = hidden_states(value)
        if not states:
            raise ValueError(
                f"gradient_flow: the graph of {model.name}'s loss has no hidden states of a "
                "recurrent layer (tensors named 'h' made inside a time step); does the model "
                "have a SimpleRNN, GRU or LSTM whose output reaches the loss?")
        for steps in states.values():
            for h in steps.values():
                h.retain_grad()
        value.backward()
    # Steps a layer skipped at the end (masked) leave no h_t: count them from the data.
    timesteps = max(max(steps) for steps in states.values())
    if isinstance(x, np.ndarray | mt.Tensor) and len(x.shape) > 1:
        timesteps = max(timesteps, x.shape[1])
    flows = {}
    for layer, steps in states.items():
        norms = np.full(timesteps, np.nan)
        for t, h in steps.items():
            # In float64: squaring float32 entries below ~1e-23 would underflow to a norm of 0.
            norms[t - 1] = 0.0 if h.grad is None else np.linalg.norm(h.grad.astype(np.float64))
        flows[layer] = norms
    return flows


def plot_gradient_flow(flows: dict[str, np.ndarray], path: str | None = None, ax=None,
                       title: str = "gradient flow through time"):
    """Plot ‖∂L/∂h_t‖ against t, one line per entry of ``flows``, on a log scale.

    flows: ``{label: norms}`` as ``gradient_flow`` returns (labels are free).
    ax: a matplotlib Axes to draw into; by default a new figure is made.
    path: if given, the figure is saved there (and closed if it was made here).
    Returns the Axes. Needs matplotlib (imported only when called).
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plot_gradient_flow needs matplotlib: pip install matplotlib "
                          '(or the demo extra: pip install -e ".[demos]")') from None
    own_figure = ax is None
    if own_figure:
        _, ax = plt.subplots(figsize=(6, 3.8))
    for label, norms in flows.items():
        ax.plot(np.arange(1, len(norms) + 1), norms, label=label)
    ax.set_yscale("log")
    ax.set(xlabel="time step t", ylabel="‖∂L/∂h_t‖", title=title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    if path is not None:
        ax.figure.savefig(path, dpi=110, bbox_inches="tight")
        if own_figure:
            plt.close(ax.figure)
    return ax
