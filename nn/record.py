"""``model.record(x, y)``: one forward pass (and, with y, the loss and a backward pass) whose
every value is kept, looked up by layer, name and time step.

Every tensor a layer makes is tagged with the layer's name (``tensor.scope``) and,
inside a recurrent layer, the time step (``tensor.step``, t = 1..T as the graph
pictures count them); layers name the tensors of their equations (an LSTM step:
``z, i, f, c_hat, o, c, h``; a Dense: ``x @ kernel``, ``z``, ``output``). A record
is those tags read back from the graph::

    rec = model.record(x, y)
    rec.value("lstm1", "f", step=3)      # lstm1's forget gate at step 3: (batch, units)
    rec.grad("lstm1", "h", step=3)       # d loss / d h_3 (needs y)
    rec.names("lstm1"), rec.steps("lstm1")
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

import microtensor as mt

from . import losses
from .inspect import parameter_grads_restored
from .symbolic import is_symbolic

Key = tuple[str, int | None]  # (name, step)
# The order in which the layers' equations compute their named tensors (others follow).
_EQUATION_ORDER = ["x_proj", "x @ kernel", "hu", "z", "r", "i", "f", "c_hat", "h_hat", "o", "c",
                   "h", "output"]


class Record:
    """What one pass of a model computed, by layer, name and step (see the module docstring).

    ``output`` is the model's output and ``loss`` the loss tensor (None without y).
    """

    def __init__(self, model_name: str, output, loss: mt.Tensor | None):
        self.model_name, self.output, self.loss = model_name, output, loss
        self._tensors: dict[str, dict[Key, mt.Tensor]] = defaultdict(dict)
        roots = [t for t in (output if isinstance(output, list | tuple) else [output])]
        roots += [loss] if loss is not None else []
        for tensor in _graph_of(roots):  # parents first: a later tensor of a name wins
            if tensor.name and tensor.scope is not None:
                self._tensors[tensor.scope][tensor.name, tensor.step] = tensor

    def layers(self) -> list[str]:
        """The layers whose tensors were recorded, in the order they ran."""
        return list(self._tensors)

    def names(self, layer: str) -> list[str]:
        """The names recorded in ``layer``, in the order of the layer's equations."""
        found = dict.fromkeys(name for name, _ in self._layer(layer))
        return sorted(found, key=lambda n: _EQUATION_ORDER.index(n)
                      if n in _EQUATION_ORDER else len(_EQUATION_ORDER))

    def steps(self, layer: str) -> list[int]:
        """The time steps of ``layer`` (empty for a layer without steps)."""
        return sorted({step for _, step in self._layer(layer) if step is not None})

    def tensor(self, layer: str, name: str, step: int | None = None) -> mt.Tensor:
        """The recorded tensor itself (its ``op``, ``parents``, ``data``, ``grad``)."""
        found = self._layer(layer)
        if (name, step) in found:
            return found[name, step]
        if name not in self.names(layer):
            raise KeyError(f"record of {self.model_name}: {layer} has no tensor named {name!r}; "
                           f"it has {', '.join(map(repr, self.names(layer)))}")
        steps = sorted(s for n, s in found if n == name and s is not None)
        if step is None:
            raise KeyError(f"record of {self.model_name}: {layer}'s {name!r} exists at steps "
                           f"{_ranges(steps)}: say which, e.g. step={steps[-1]}")
        raise KeyError(f"record of {self.model_name}: {layer} has {name!r} at steps "
                       f"{_ranges(steps)}, not at step {step}"
                       + (" (steps count from 1)" if step == 0 else "")
                       + (" (a step every sample skipped, being masked, has none)"
                          if steps and steps[0] < step < steps[-1] else ""))

    def value(self, layer: str, name: str, step: int | None = None) -> np.ndarray:
        """The value of ``name`` in ``layer`` (at ``step``), e.g. (batch, units) for a gate."""
        return self.tensor(layer, name, step).numpy()

    def grad(self, layer: str, name: str, step: int | None = None) -> np.ndarray:
        """d loss / d (that tensor), same shape as its value; needs a record made with y."""
        if self.loss is None:
            raise ValueError(f"record of {self.model_name}: no gradients without a loss; "
                             "record with y (and loss= if the model is not compiled)")
        tensor = self.tensor(layer, name, step)
        if tensor.grad is None:  # nothing of the loss depends on it
            return np.zeros_like(tensor.data)
        return tensor.grad

    def _layer(self, layer: str) -> dict[Key, mt.Tensor]:
        if layer not in self._tensors:
            raise KeyError(f"record of {self.model_name}: no layer named {layer!r}; recorded "
                           f"layers: {', '.join(map(repr, self._tensors))}")
        return self._tensors[layer]

    def __repr__(self) -> str:
        parts = [f"{layer} ({len(self.steps(layer))} steps)" if self.steps(layer) else layer
                 for layer in self._tensors]
        return f"<Record of {self.model_name}: {', '.join(parts)}>"


def _graph_of(roots: list[mt.Tensor]) -> list[mt.Tensor]:
    """Every tensor the roots were computed from, parents first (iterative)."""
    order, seen = [], set()
    for root in roots:
        for tensor in mt.topological_order(root):
            if id(tensor) not in seen:
                seen.add(id(tensor))
                order.append(tensor)
        if not root.requires_grad and id(root) not in seen:  # a model without weights
            order.append(root)
    return order


def _ranges(steps: list[int]) -> str:
    """[1, 2, 3, 7] -> "1-3, 7"."""
    parts, start = [], None
    for i, step in enumerate(steps):
        if start is None:
            start = step
        if i + 1 == len(steps) or steps[i + 1] != step + 1:
            parts.append(str(start) if start == step else f"{start}-{step}")
            start = None
    return ", ".join(parts) or "none"


def record(model, x, y=None, loss=None) -> Record:
    """One pass of ``model`` on ``x`` keeping every value; with ``y``, the loss (the compiled
    one, or ``loss=``, a function or name) and its backward pass, keeping every gradient.

    Parameters' ``.grad`` are left as they were; weights and the optimizer are untouched.
    """
    if is_symbolic(x):
        raise TypeError(f"{model.name}.record: x must be data, e.g. a numpy array of shape "
                        f"(batch, {', '.join(map(str, model.input_shape[1:]))}) if the model "
                        "has one input; it got the symbolic tensor of an nn.Input or a layer "
                        "call, which has no values to record")
    if y is None:
        with mt.enable_grad():
            return Record(model.name, model(x), None)
    loss_fn = losses.of_model(model, loss, f"{model.name}.record(y=...)")
    with mt.enable_grad(), parameter_grads_restored(model):
        output = model(x)
        value = loss_fn(y, output)
        value.backward(retain_grads=True)
        return Record(model.name, output, value)
