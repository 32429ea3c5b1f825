"""Stochastic gradient descent with optional momentum and Nesterov momentum (torch.optim.SGD).

    g = g + weight_decay * p
    b = g (first step), then b = momentum * b + (1 - dampening) * g
    g = g + momentum * b  if nesterov  else  b          (only with momentum)
    p = p - lr * g
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from microtensor import Tensor

from .optimizer import Optimizer


class SGD(Optimizer):
    """Plain, momentum or Nesterov SGD, exactly torch.optim.SGD's update."""

    state_names = ("momentum_buffer",)

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 0.01,
                 momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         nesterov=bool(nesterov), weight_decay=weight_decay)

    def _validate(self) -> None:
        self._check_nonnegative("momentum", "dampening", "weight_decay")
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={self.momentum!r}, dampening={self.dampening!r}")

    def required_state(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum else ()

    def _update(self, param: np.ndarray, grad: np.ndarray,
                state: dict) -> tuple[np.ndarray, dict]:
        param, grad = self._decayed(param, grad)
        new_state = {}
        if self.momentum:
            velocity = state.get("momentum_buffer")
            if velocity is None:
                velocity = np.array(grad, dtype=param.dtype)
            else:
                velocity = velocity * self.momentum
                velocity += (1 - self.dampening) * grad
            new_state["momentum_buffer"] = velocity
            grad = grad + self.momentum * velocity if self.nesterov else velocity
        return param - self.lr * grad, new_state
