"""Check backward() against central finite differences, in float64."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .context import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree."""


def gradcheck(fn: Callable[..., Tensor], inputs: Tensor | Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3) -> bool:
    """True if ``fn``'s gradients match central differences for every input that requires grad.

    ``fn(*inputs)`` must return a Tensor. Inputs are copied to float64 first. A
    non-scalar output is reduced to ``sum(out * w)`` with fixed random ``w``, so
    the check covers a vector-Jacobian product. Raises ``GradcheckError`` naming
    the input, its worst element, and the analytic and numeric values.
    """
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    inputs = [Tensor(t.data, requires_grad=t.requires_grad, dtype=np.float64)
              if isinstance(t, Tensor) else t for t in inputs]
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, nothing to check")

    out = fn(*inputs)
    if not isinstance(out, Tensor) or out.dtype != np.float64:
        raise TypeError(f"gradcheck: fn must return a float64 Tensor (got "
                        f"{getattr(out, 'dtype', type(out).__name__)}); float32 is too coarse "
                        "for finite differences")
    weights = np.random.default_rng(0).standard_normal(out.shape)

    def objective() -> float:
        with no_grad():
            return float(np.sum(fn(*inputs).data * weights))

    (out * Tensor(weights, dtype=np.float64)).sum().backward()
    for i in checked:
        x = inputs[i]
        analytic = x.grad if x.grad is not None else np.zeros_like(x.data)
        numeric = np.zeros_like(x.data)
        for idx in np.ndindex(x.shape):
            original = x.data[idx]
            x.data[idx] = original + eps
            plus = objective()
            x.data[idx] = original - eps
            minus = objective()
            x.data[idx] = original
            numeric[idx] = (plus - minus) / (2 * eps)
        excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        excess = np.where(np.isnan(excess), np.inf, excess)  # a NaN anywhere fails, worst
        if excess.size and excess.max() > 0:
            worst = np.unravel_index(np.argmax(excess), x.shape)
            raise GradcheckError(
                f"gradcheck: input {i} (shape {x.shape}) element {tuple(map(int, worst))}: "
                f"analytic {float(analytic[worst])!r} vs numeric {float(numeric[worst])!r} "
                f"(atol={atol}, rtol={rtol})")
    return True
