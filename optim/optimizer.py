"""The optimizer base class: parameters, per-parameter state, step and state_dict.

A subclass names its hyperparameters (the keyword arguments of its
``__init__``), checks them in ``_validate`` and writes one method,
``_update(param, grad, state)``, that returns the parameter's new values and
its new state dict (moment buffers, step count) as new arrays, changing none
of its inputs. ``step`` computes the new values of every parameter first and
only then copies them in: a step is applied to all parameters or, if anything
raises meanwhile (a KeyboardInterrupt too), to none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, MutableMapping

import numpy as np

from microtensor import ShapeError, Tensor, replayed

_STATE_PREFIX = "state."


def add_l2(grad: np.ndarray, param: np.ndarray, weight_decay: float) -> np.ndarray:
    """``grad + weight_decay * param``: L2 weight decay folded into the gradient (torch's rule).

    Returns a new array, so the parameter's own ``.grad`` is left as it was.
    """
    return grad + weight_decay * param if weight_decay else grad


def lerp(average: np.ndarray, value: np.ndarray, weight: float) -> np.ndarray:
    """``average + weight * (value - average)`` as a new array: an exponential moving average.

    Same form as torch's ``lerp_``, which keeps a small first update exact
    (``decay * average + (1 - decay) * value`` would lose digits to cancellation).
    """
    new = np.subtract(value, average, out=np.empty_like(average))
    new *= weight
    new += average
    return new


def buffer(state: dict, key: str, like: np.ndarray) -> np.ndarray:
    """``state[key]``, or zeros shaped like ``like`` before the first step (not stored)."""
    found = state.get(key)
    return np.zeros_like(like) if found is None else found


# float16 is refused rather than half-supported: Adam's eps (1e-8) underflows to 0 in it and
# binary crossentropy's clip 1 - 1e-7 rounds to 1.0, so training silently gives inf or NaN.
SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
UNSUPPORTED_FLOAT16 = ("float16 can't hold Adam's eps or the loss's clipping; train in float32 "
                       "and convert the weights afterwards if you need them smaller")


def finite_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
    # How ``weight_decay`` acts: False (torch's Adam, SGD, RMSprop) folds it into the gradient
    # as L2; True (torch's AdamW, every Keras optimizer) shrinks the weights directly.
    decoupled_weight_decay = False

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
        self._check(finite_number(value) and value >= 0, "lr", value, "a finite number >= 0")
        self._lr = value

    def _check(self, ok: bool, name: str, value, expected: str) -> None:
        if not ok:
            raise ValueError(f"{type(self).__name__}: {name} must be {expected}, got {value!r}")

    def _check_nonnegative(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            self._check(finite_number(value) and value >= 0, name, value, "a finite number >= 0")

    def _validate(self) -> None:
        """Raise ValueError naming the optimizer and the bad value (subclasses extend)."""

    @property
    def hyperparameters(self) -> dict:
        return {name: getattr(self, name) for name in self._hyper_names}

    @property
    def param_groups(self) -> tuple[ParamGroup]:
        """torch's view: one group, whose items are this optimizer's own attributes
        (``opt.param_groups[0]["lr"] = 1e-4`` is ``opt.lr = 1e-4``). A tuple: groups can't
        be added (make another optimizer for other parameters)."""
        return (ParamGroup(self),)

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
            if p.dtype not in SUPPORTED_DTYPES:
                raise TypeError(f"{name}: parameter {p.name or i} is {p.dtype}, but optimizers "
                                f"update float32 or float64 weights only ({UNSUPPORTED_FLOAT16})")
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
        """Update every parameter that has a gradient, in place: all of them or none."""
        self.pending_step().apply()

    def pending_step(self) -> PendingStep:
        """The new values of every parameter that has a gradient, not applied yet.

        ``opt.pending_step().apply()`` is ``opt.step()``; in between, the new
        values can be looked at (``fit`` refuses a step that makes a weight NaN).
        """
        changes = []
        for index, p in enumerate(self._attached("step")):
            grad = p.grad
            if grad is None:
                continue
            if grad.shape != p.data.shape:
                raise ShapeError(f"{type(self).__name__}.step: parameter {p.name or index} has "
                                 f"shape {p.data.shape} but its grad has shape {grad.shape}")
            data, state = self._update(p.data, grad, self.state.get(index, {}))
            changes.append((index, p, np.asarray(data, dtype=p.data.dtype), state))
        return PendingStep(self, changes)

    def _update(self, param: np.ndarray, grad: np.ndarray,
                state: dict) -> tuple[np.ndarray, dict]:
        """(new values of ``param``, its new state); changes none of its arguments."""
        raise NotImplementedError

    def _decayed(self, param: np.ndarray, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(param, grad) after weight decay: ``p * (1 - lr * weight_decay)`` (decoupled),
        or ``g + weight_decay * p`` (L2 in the gradient). New arrays; the inputs stay."""
        weight_decay = getattr(self, "weight_decay", 0.0)
        if not self.decoupled_weight_decay:
            return param, add_l2(grad, param, weight_decay)
        if weight_decay:
            param = param * (1 - self.lr * weight_decay)
        return param, grad

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
            state.setdefault(int(index), {})[buffer_name] = self._checked_buffer(key, value)
        checked = self.from_hyperparameters(hyper)  # validates them, raises if bad
        for index, buffers in state.items():
            missing = sorted(set(checked.required_state()) - set(buffers))
            if missing:
                raise ValueError(f"{name}.load_state_dict: the state of parameter {index} lacks "
                                 f"{', '.join(missing)} (it has {', '.join(sorted(buffers))})")
        if self.params is not None:
            state = self._fitted_state(state, self.params)
        for key in hyper:
            setattr(self, key, getattr(checked, key))
        self.state = state

    @classmethod
    def from_hyperparameters(cls, hyper: dict) -> Optimizer:
        """A new optimizer with the hyperparameters of ``hyperparameters`` (or of state_dict()),
        checked and normalised as the constructor does."""
        return cls(**hyper)

    def required_state(self) -> tuple[str, ...]:
        """The buffers every stepped parameter has, with these hyperparameters."""
        return ()

    nonnegative_state: tuple[str, ...] = ()  # buffers that can't be negative (squares' means)

    def _checked_buffer(self, key: str, value) -> int | np.ndarray:
        """A state value as the optimizer keeps it, once known to be possible: a step count is
        a whole number >= 1, a buffer finite numbers (and >= 0 for a mean of squares)."""
        name, array = type(self).__name__, np.asarray(value)
        if key.endswith(".step"):
            if array.ndim != 0 or array.dtype.kind not in "iu" or array < 1:
                raise ValueError(f"{name}.load_state_dict: {key} must be a whole number >= 1, "
                                 f"got {array.dtype} {array.tolist()!r}")
            return int(array)
        if array.dtype.kind != "f" or not np.all(np.isfinite(array)):
            raise ValueError(f"{name}.load_state_dict: {key} must hold finite floats, got "
                             f"{array.dtype} values" + ("" if array.dtype.kind != "f" else
                                                        " with NaN or inf"))
        if key.rpartition(".")[2] in self.nonnegative_state and np.any(array < 0):
            raise ValueError(f"{name}.load_state_dict: {key} is a mean of squares but holds "
                             f"negative values (e.g. {array[array < 0].ravel()[0]})")
        return array.copy()

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


class PendingStep:
    """One optimizer step computed but not applied: ``apply()`` copies every new value in.

    Each copy is one numpy call and may be repeated, so an interruption (Ctrl-C)
    in the middle of ``apply`` finishes the copying before it propagates: the
    step lands on all parameters or, if it comes before ``apply``, on none.
    """

    def __init__(self, optimizer: Optimizer,
                 changes: list[tuple[int, Tensor, np.ndarray, dict]]) -> None:
        self.optimizer = optimizer
        self.changes = changes

    @property
    def new_values(self) -> list[np.ndarray]:
        return [data for _, _, data, _ in self.changes]

    def apply(self) -> None:
        try:
            self._copy_in()
        except BaseException:
            self._copy_in()  # idempotent: whatever was copied already is copied again
            raise

    def _copy_in(self) -> None:
        state = self.optimizer.state
        for index, param, data, buffers in self.changes:
            np.copyto(param.data, data)
            state[index] = buffers


class ParamGroup(MutableMapping):
    """``opt.param_groups[0]``: "params" and the hyperparameters, read from and written to
    the optimizer's attributes (checked as they are)."""

    def __init__(self, optimizer: Optimizer) -> None:
        self._optimizer = optimizer

    def __getitem__(self, key: str):
        if key == "params":  # (a tuple: the list is the optimizer's own)
            return tuple(self._optimizer.params or ())
        if key not in self._optimizer._hyper_names:
            raise KeyError(f"{key!r}: {type(self._optimizer).__name__}'s param_groups hold "
                           f"'params', {', '.join(map(repr, self._optimizer._hyper_names))}")
        return getattr(self._optimizer, key)

    def __setitem__(self, key: str, value) -> None:
        self[key]  # noqa: B018 - a KeyError naming the keys there are
        if key == "params":
            raise TypeError("param_groups[0]['params'] can't be replaced: make a new "
                            "optimizer for other parameters")
        before = getattr(self._optimizer, key)
        try:
            setattr(self._optimizer, key, value)
            self._optimizer._validate()
        except (ValueError, TypeError):
            setattr(self._optimizer, key, before)  # no half-applied change
            raise

    def __delitem__(self, key: str) -> None:
        raise TypeError("param_groups: a key can't be removed")

    def __iter__(self):
        return iter(("params", *self._optimizer._hyper_names))

    def __len__(self) -> int:
        return 1 + len(self._optimizer._hyper_names)
