"""Gradient clipping, in place on the parameters' ``.grad`` (torch.nn.utils semantics)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from microtensor import Tensor, replayed


def _grads(params: Tensor | Iterable[Tensor]) -> list[np.ndarray]:
    """The gradients that exist (parameters with ``.grad`` None are skipped)."""
    params = [params] if isinstance(params, Tensor) else params
    return [p.grad for p in params if p.grad is not None]


@replayed  # inside mt.compile(fn): each replay of fn clips again
def clip_grad_norm(params: Tensor | Iterable[Tensor], max_norm: float,
                   norm_type: float = 2.0) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The norm is taken over all gradients as if concatenated into one vector
    (``norm_type`` p >= 1, or ``inf`` for the largest absolute value). When it
    exceeds ``max_norm`` every gradient is multiplied by
    ``max_norm / (norm + 1e-6)``. Returns the norm before clipping, as a float.
    """
    if max_norm < 0 or norm_type <= 0:
        raise ValueError(f"clip_grad_norm: needs max_norm >= 0 and norm_type > 0, got "
                         f"max_norm={max_norm!r}, norm_type={norm_type!r}")
    grads = _grads(params)
    if not grads:
        return 0.0
    norms = np.array([np.linalg.norm(g.ravel(), ord=norm_type) for g in grads])
    total = float(np.linalg.norm(norms, ord=norm_type))
    scale = max_norm / (total + 1e-6)
    if scale < 1:                      # a nan or inf norm is returned as is, grads untouched
        for g in grads:
            g *= scale
    return total


@replayed
def clip_grad_value(params: Tensor | Iterable[Tensor], clip: float) -> None:
    """Clamp every gradient element into ``[-clip, clip]``, in place."""
    if clip < 0:
        raise ValueError(f"clip_grad_value: clip must be >= 0, got {clip!r}")
    for g in _grads(params):
        np.clip(g, -clip, clip, out=g)
