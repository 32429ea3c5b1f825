"""Adam and AdamW: torch.optim.Adam's update, and the same update with decoupled weight decay.

For a parameter p with gradient g at step t (counted per parameter):

    g = g + weight_decay * p                  (Adam: L2 folded into the gradient)
    p = p * (1 - lr * weight_decay)           (AdamW instead: decay the weights directly)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g**2
    v_max = max(v_max, v)                     (amsgrad only; then v_max replaces v below)
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

With ``epsilon_hat = True`` (Keras's Adam, the Adam paper's "efficient" form with ε̂)
eps is added before the bias correction instead:

    p = p - lr / (1 - beta1**t) * m / ((sqrt(v) + eps) / sqrt(1 - beta2**t))

which is torch's update with eps grown by 1 / sqrt(1 - beta2**t) (31.6× at step 1).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from microtensor import Tensor

from .optimizer import Optimizer, buffer, finite_number, lerp


class Adam(Optimizer):
    """Adam (Kingma & Ba), exactly torch.optim.Adam's update, eps added after bias correction."""

    state_names = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    epsilon_hat = False                 # True: eps before the bias correction (Keras)

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=bool(amsgrad))

    def _validate(self) -> None:
        self._check_nonnegative("eps", "weight_decay")
        self._check(len(self.betas) == 2, "betas", self.betas, "a pair (beta1, beta2)")
        for i, beta in enumerate(self.betas):
            self._check(finite_number(beta) and 0 <= beta < 1, f"betas[{i}]", beta, "in [0, 1)")

    def required_state(self) -> tuple[str, ...]:
        return ("step", "exp_avg", "exp_avg_sq")

    nonnegative_state = ("exp_avg_sq", "max_exp_avg_sq")

    def _update(self, param: np.ndarray, grad: np.ndarray,
                state: dict) -> tuple[np.ndarray, dict]:
        beta1, beta2 = self.betas
        param, grad = self._decayed(param, grad)
        step = state.get("step", 0) + 1
        exp_avg = lerp(buffer(state, "exp_avg", param), grad, 1 - beta1)
        second_moment = exp_avg_sq = lerp(buffer(state, "exp_avg_sq", param), np.square(grad),
                                          1 - beta2)
        new_state = {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        if self.amsgrad:
            second_moment = new_state["max_exp_avg_sq"] = np.maximum(
                buffer(state, "max_exp_avg_sq", param), exp_avg_sq)
        # One scratch array: denominator, then the step itself (out= keeps it an
        # array for 0-d parameters, so the in-place ops below work).
        update = np.sqrt(second_moment, out=np.empty_like(param))
        if self.epsilon_hat:
            update += self.eps
            update /= (1 - beta2 ** step) ** 0.5
        else:
            update /= (1 - beta2 ** step) ** 0.5
            update += self.eps
        np.divide(exp_avg, update, out=update)
        update *= self.lr / (1 - beta1 ** step)
        return np.subtract(param, update, out=update), new_state


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), exactly torch.optim.AdamW."""

    decoupled_weight_decay = True

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
