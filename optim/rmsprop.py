"""RMSprop (Hinton), exactly torch.optim.RMSprop's update.

    g = g + weight_decay * p
    s = alpha * s + (1 - alpha) * g**2
    a = alpha * a + (1 - alpha) * g           (centered only)
    d = sqrt(s - a**2) + eps   if centered  else  sqrt(s) + eps
    b = momentum * b + g / d;  p = p - lr * b (with momentum)
    p = p - lr * g / d                        (without)

With ``eps_inside_sqrt = True`` (Keras's RMSprop) d = sqrt(s + eps) (centered:
sqrt(s - a**2 + eps)).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from microtensor import Tensor

from .optimizer import Optimizer, buffer, lerp


class RMSprop(Optimizer):
    """RMSprop with optional momentum and centering (torch's defaults: alpha=0.99, eps=1e-8)."""

    state_names = ("square_avg", "grad_avg", "momentum_buffer")
    eps_inside_sqrt = False   # True: sqrt(s + eps), Keras's denominator

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 0.01,
                 alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                         momentum=momentum, centered=bool(centered))

    def _validate(self) -> None:
        self._check_nonnegative("alpha", "eps", "weight_decay", "momentum")

    def required_state(self) -> tuple[str, ...]:
        return ("square_avg", *(("grad_avg",) if self.centered else ()),
                *(("momentum_buffer",) if self.momentum > 0 else ()))

    nonnegative_state = ("square_avg",)

    def _update(self, param: np.ndarray, grad: np.ndarray,
                state: dict) -> tuple[np.ndarray, dict]:
        param, grad = self._decayed(param, grad)
        square_avg = lerp(buffer(state, "square_avg", param), np.square(grad), 1 - self.alpha)
        new_state = {"square_avg": square_avg}
        if self.centered:
            grad_avg = new_state["grad_avg"] = lerp(buffer(state, "grad_avg", param), grad,
                                                    1 - self.alpha)
            variance = square_avg - np.square(grad_avg)
        else:
            variance = square_avg
        if self.eps_inside_sqrt:
            variance = variance + self.eps
        # out= keeps the denominator an array for 0-d parameters (for the in-place ops below).
        denom = np.sqrt(variance, out=np.empty_like(param))
        if not self.eps_inside_sqrt:
            denom += self.eps
        if self.momentum > 0:
            velocity = buffer(state, "momentum_buffer", param) * self.momentum
            velocity += grad / denom
            new_state["momentum_buffer"] = velocity
            return param - self.lr * velocity, new_state
        np.divide(grad, denom, out=denom)
        denom *= self.lr
        return np.subtract(param, denom, out=denom), new_state
