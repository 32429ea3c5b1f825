"""Module: anything that owns parameters (layers and models), PyTorch-style access."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

import microtensor as mt

_this_thread = threading.local()  # .training: the mode fit or predict runs in on this thread


@contextmanager
def running_mode(training: bool) -> Iterator[None]:
    """Every module runs in training mode (``True``) or evaluation mode on this thread only:
    ``predict`` in one thread leaves the Dropout of a ``fit`` in another one on."""
    outer = getattr(_this_thread, "training", None)
    _this_thread.training = training
    try:
        yield
    finally:
        _this_thread.training = outer


class Module:
    """Owns parameters directly (``_weights``) and through child modules (``_children()``).

    Parameters are listed in Keras order: children in order, each one's weights
    in creation order (kernel, recurrent_kernel, bias).
    """

    _training: bool = True
    # How state_dict() names weights: by attribute path ("rnn.kernel", as torch) for a Module
    # of your own; Keras layers and models by their weights' own names ("lstm1/kernel").
    names_by_path = True

    @property
    def training(self) -> bool:
        """Training mode (Dropout on): as ``train()``/``eval()`` set it, unless ``fit``,
        ``evaluate`` or ``predict`` is running on this thread (then theirs). Read inside an
        ``mt.compile`` trace, a replay checks it is unchanged (else it traces again)."""
        mt.guard(self._mode, f"{type(self).__name__}.training")
        return self._mode()

    def _mode(self) -> bool:
        running = getattr(_this_thread, "training", None)
        return self._training if running is None else running

    @training.setter
    def training(self, mode: bool) -> None:
        self._training = bool(mode)

    def __init__(self) -> None:
        self._weights: dict[str, mt.Tensor] = {}

    def _named_children(self) -> list[tuple[str, Module]]:
        """(attribute path, module) for the modules held in attributes, alone or in a list,
        tuple or dict, in assignment order ("rnn", "blocks.0", "heads.out"): a custom
        Module's layers are found as PyTorch finds its submodules."""
        found: list[tuple[str, Module]] = []
        for name, value in vars(self).items():
            if isinstance(value, dict):
                found += [(f"{name}.{key}", item) for key, item in value.items()
                          if isinstance(item, Module)]
            elif isinstance(value, list | tuple):
                found += [(f"{name}.{i}", item) for i, item in enumerate(value)
                          if isinstance(item, Module)]
            elif isinstance(value, Module):
                found.append((name, value))
        return found

    def _children(self) -> list[Module]:
        return [module for _, module in self._named_children()]

    def _named_modules(self) -> Iterator[tuple[str, Module]]:
        """(path prefix, module) for this module ("") and all below it ("rnn.", ...), in the
        order of ``modules()``, each once."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [("", self)]
        while stack:
            prefix, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield prefix, module
            children = {id(child) for child in module._children()}
            named = [(f"{prefix}{name}.", child) for name, child in module._named_children()
                     if id(child) in children]
            stack.extend(reversed(named))

    def modules(self) -> Iterator[Module]:
        """This module and all below it, depth first, each once (no recursion)."""
        seen: set[int] = set()
        stack: list[Module] = [self]
        while stack:
            module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield module
            stack.extend(reversed(module._children()))

    def named_parameters(self) -> Iterator[tuple[str, mt.Tensor]]:
        """(full name, tensor) pairs: ("rnn.kernel", ...) by attribute path in a Module of your
        own, as torch names them, so the same class built again loads a state_dict; in a
        Keras layer or model its weights' names, e.g. ("lstm1/kernel", Tensor (10, 512))."""
        seen: set[int] = set()
        for prefix, module in self._named_modules():
            for key, param in module._weights.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{prefix}{key}" if self.names_by_path else param.name), param

    def parameters(self) -> list[mt.Tensor]:
        return [param for _, param in self.named_parameters()]

    # -- Keras's views of the same parameters -----------------------------------
    @property
    def weights(self) -> list[mt.Tensor]:
        """Every weight, in Keras order (the same list as ``parameters()``)."""
        return self.parameters()

    @property
    def trainable_weights(self) -> list[mt.Tensor]:
        return [param for param in self.parameters() if param.requires_grad]

    @property
    def non_trainable_weights(self) -> list[mt.Tensor]:
        return [param for param in self.parameters() if not param.requires_grad]

    @property
    def trainable(self) -> bool:
        """False freezes the weights of this module and of every module below it (Keras):
        backward gives them no gradient, so no optimizer changes them, and the summary
        counts them as non-trainable. Gradients still flow through to earlier layers."""
        return vars(self).get("_trainable", True)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for module in self.modules():
            module._trainable = bool(value)
            for param in module._weights.values():
                param.requires_grad = bool(value)
                param.grad = None

    def count_params(self) -> int:
        return int(sum(param.size for param in self.parameters()))

    def zero_grad(self) -> None:
        for param in self.parameters():
            param.grad = None

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active); ``fit`` switches it on and off by itself."""
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # -- weights as plain arrays ------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight, in Keras order."""
        return [param.data.copy() for param in self.parameters()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Load weights in Keras order. Checks every shape first: on error nothing changes."""
        params = list(self.named_parameters())
        if len(weights) != len(params):
            raise ValueError(f"{self._label()}: set_weights got {len(weights)} arrays but it "
                             f"has {len(params)} weights ({', '.join(n for n, _ in params)})")
        arrays = []
        for (name, param), weight in zip(params, weights, strict=True):
            try:
                array = np.asarray(weight, dtype=param.dtype)
            except (TypeError, ValueError):
                raise ValueError(f"{self._label()}: weight {name}: can't convert "
                                 f"{np.asarray(weight).dtype} values to {param.dtype}") from None
            if array.shape != param.shape:
                raise ValueError(f"{self._label()}: weight {name} has shape {param.shape}, "
                                 f"got an array of shape {array.shape}")
            arrays.append(array)
        for (_, param), array in zip(params, arrays, strict=True):  # all checked: now assign
            param.data[...] = array

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {name: param.data.copy() for name, param in self.named_parameters()}
        if len(state) != len(self.parameters()):
            raise ValueError(f"{self._label()}: two weights share a name; give layers "
                             "unique names")
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Load weights by name. Missing, unexpected or misshapen entries raise; nothing changes."""
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if not (missing or unexpected):
            self.set_weights([state[name] for name in params])
        elif not self.names_by_path and [np.shape(v) for v in state.values()] == [
                p.shape for p in params.values()]:
            # As Keras's load_weights: the same layers in the same order load by position,
            # whatever default names (dense_1 ...) a model built again in this process got.
            self.set_weights(list(state.values()))
        else:
            hint = "" if self.names_by_path else (
                "; a model built again in the same process gets new default layer names "
                "(dense_1 ...): call nn.reset_names() before building it, or name its layers")
            raise KeyError(f"{self._label()}: load_state_dict: missing {missing}, "
                           f"unexpected {unexpected}{hint}")

    def _label(self) -> str:
        return getattr(self, "name", None) or type(self).__name__

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")
