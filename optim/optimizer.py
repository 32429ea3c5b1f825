"""The optimizer base class: parameters, per-parameter state, step and state_dict.

A subclass names its hyperparameters (the keyword arguments of its
``__init__``), checks them in ``_validate`` and writes one method,
``_update(param, grad, state)``, that changes the numpy array ``param`` in
place from its gradient and its own state dict (moment buffers, step count).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from microtensor import ShapeError, Tensor, replayed

_STATE_PREFIX = "state."


def add_l2(grad: np.ndarray, param: np.ndarray, weight_decay: float) -> np.ndarray:
    """``grad + weight_decay * param``: L2 weight decay folded into the gradient (torch's rule).

    Returns a new array, so the parameter's own ``.grad`` is left as it was.
    """
    return grad + weight_decay * param if weight_decay else grad


def lerp_(average: np.ndarray, value: np.ndarray, weight: float) -> None:
    """``average += weight * (value - average)`` in place: an exponential moving average.

    Same form as torch's ``lerp_``, which keeps a small first update exact
    (``decay * average + (1 - decay) * value`` would lose digits to cancellation).
    """
    delta = value - average
    delta *= weight
    average += delta


def buffer(state: dict, key: str, like: np.ndarray) -> np.ndarray:
    """``state[key]``, created as zeros shaped like ``like`` on first use."""
    found = state.get(key)
    if found is None:
        found = state[key] = np.zeros_like(like)
    return found


def _plain(value):
    """A hyperparameter as a plain Python value (numpy scalars and 0-d arrays from np.load too)."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    return value


class Optimizer:
    """Updates a list of parameter Tensors in place from their ``.grad``.

    ``params`` may be None: then ``attach(params)`` hands them over later (this
    is what ``model.compile(optimizer=...)`` does). Parameters whose ``.grad``
    is None are skipped by ``step()``, state untouched, as in PyTorch.
    Hyperparameters are attributes (``opt.lr = 1e-4`` between steps is fine).
    """

    state_names: tuple[str, ...] = ()   # the per-parameter buffers a subclass keeps

    def __init__(self, params: Iterable[Tensor] | None = None, **hyper) -> None:
        self.params: list[Tensor] | None = None
        self.state: dict[int, dict] = {}           # parameter index -> its buffers and step
        self._hyper_names = tuple(hyper)
        for name, value in hyper.items():
            setattr(self, name, _plain(value))
        self._validate()
        if params is not None:
            params = [params] if isinstance(params, Tensor) else list(params)
            if not params:  # as torch: almost always a model whose layers aren't built yet
                raise ValueError(
                    f"{type(self).__name__}: got an empty parameter list. Layers make their "
                    "weights on their first call: call the model once on a batch first, or "
                    "let model.compile(optimizer=...) hand the parameters over")
            self.attach(params)

    # -- hyperparameters -----------------------------------------------------
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        value = _plain(value)
        self._check(isinstance(value, int | float) and value >= 0, "lr", value, "a number >= 0")
        self._lr = value

    def _check(self, ok: bool, name: str, value, expected: str) -> None:
        if not ok:
            raise ValueError(f"{type(self).__name__}: {name} must be {expected}, got {value!r}")

    def _check_nonnegative(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            self._check(isinstance(value, int | float) and value >= 0, name, value, ">= 0")

    def _validate(self) -> None:
        """Raise ValueError naming the optimizer and the bad value (subclasses extend)."""

    @property
    def hyperparameters(self) -> dict:
        return {name: getattr(self, name) for name in self._hyper_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({args})"

    # -- parameters ----------------------------------------------------------
    def attach(self, params: Iterable[Tensor]) -> None:
        """Hand over the parameters to optimize (state already held must fit them)."""
        params = [params] if isinstance(params, Tensor) else list(params)
        name = type(self).__name__
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a Tensor")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: the same parameter appears more than once")
        self.state = self._fitted_state(self.state, params)
        self.params = params

    def _attached(self, action: str) -> list[Tensor]:
        if self.params is None:
            raise RuntimeError(
                f"{type(self).__name__}.{action}(): no parameters yet; pass them as "
                f"{type(self).__name__}(model.parameters(), ...), call opt.attach(params), "
                "or let model.compile(optimizer=...) hand them over")
        return self.params

    @replayed  # inside mt.compile(fn): each replay of fn calls it again
    def zero_grad(self) -> None:
        """Forget every parameter's gradient (sets ``.grad`` to None)."""
        for p in self._attached("zero_grad"):
            p.grad = None

    @replayed
    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        for index, p in enumerate(self._attached("step")):
            grad = p.grad
            if grad is None:
                continue
            if grad.shape != p.data.shape:
                raise ShapeError(f"{type(self).__name__}.step: parameter {p.name or index} has "
                                 f"shape {p.data.shape} but its grad has shape {grad.shape}")
            self._update(p.data, grad, self.state.setdefault(index, {}))

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        raise NotImplementedError

    # -- saving --------------------------------------------------------------
    def state_dict(self) -> dict:
        """A flat dict of plain values, ready for ``np.savez`` (arrays) or JSON (the rest).

        Hyperparameters under their own names (tuples as lists); each
        parameter's state as ``"state.<index>.<buffer>"`` (arrays copied, step counts ints).
        """
        out: dict = {}
        for name, value in self.hyperparameters.items():
            out[name] = list(value) if isinstance(value, tuple) else value
        for index, buffers in sorted(self.state.items()):
            for key, value in buffers.items():
                out[f"{_STATE_PREFIX}{index}.{key}"] = (
                    value.copy() if isinstance(value, np.ndarray) else value)
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and state from ``state_dict()`` (or what np.load gives back).

        Everything is checked before anything changes: a bad dict raises and
        leaves the optimizer as it was.
        """
        name = type(self).__name__
        hyper = self.hyperparameters
        state: dict[int, dict] = {}
        for key, value in state_dict.items():
            if key in hyper:
                hyper[key] = _plain(value)
                continue
            index, _, buffer_name = key.removeprefix(_STATE_PREFIX).partition(".")
            if not (key.startswith(_STATE_PREFIX) and index.isdigit()
                    and buffer_name in self.state_names):
                raise ValueError(
                    f"{name}.load_state_dict: unexpected key {key!r}; expected hyperparameters "
                    f"{sorted(hyper)} and state.<index>.<buffer> with buffer in "
                    f"{list(self.state_names)}")
            value = np.asarray(value)
            state.setdefault(int(index), {})[buffer_name] = (
                int(value) if buffer_name == "step" else value.copy())
        checked = type(self)(**hyper)        # validates the hyperparameters, raises if bad
        if self.params is not None:
            state = self._fitted_state(state, self.params)
        for key in hyper:
            setattr(self, key, getattr(checked, key))
        self.state = state

    def _fitted_state(self, state: dict[int, dict], params: list[Tensor]) -> dict[int, dict]:
        """``state`` checked against ``params`` (count, shapes), arrays in each param's dtype."""
        name = type(self).__name__
        fitted: dict[int, dict] = {}
        for index, buffers in state.items():
            if index >= len(params):
                raise ValueError(f"{name}: state for parameter {index} but only "
                                 f"{len(params)} parameters")
            data = params[index].data
            fitted[index] = {}
            for key, value in buffers.items():
                if isinstance(value, np.ndarray):
                    if value.shape != data.shape:
                        raise ValueError(
                            f"{name}: state {key!r} of parameter {params[index].name or index} "
                            f"has shape {value.shape} but the parameter has shape {data.shape}")
                    value = value.astype(data.dtype, copy=False)
                fitted[index][key] = value
        return fitted
