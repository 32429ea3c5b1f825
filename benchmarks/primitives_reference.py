"""microtensor's LSTM op sequence, run in plain numpy with no graph: the floor for its design.

The numpy reference (``numpy_reference.py``) is written the way one writes BPTT by
hand: a sigmoid over the i and f blocks at once, gradients assembled in place. A
graph of primitives can't do that; it runs the ops the cell is made of and each
op's own gradient. This model runs exactly those, with the same array work
microtensor does (the same temporaries, slice gradients copied into one buffer,
weight products summed 10 steps per GEMM below 128 rows), and nothing else: no
Tensor objects, no closures, no backward order. The distance between it and the
reference is what the per-gate decomposition costs; the distance between it and
microtensor is what recording, differentiating and freeing the graph costs.

Dense layers, loss and Adam are the reference's (a few tiny arrays; same cost).
"""

from __future__ import annotations

import numpy as np
from numpy_reference import NumpySeedModel

PRODUCTS_PER_GEMM, ROWS_WORTH_A_GEMM = 10, 128  # as microtensor.Tensor


def sigmoid(x: np.ndarray) -> np.ndarray:
    """As microtensor's, 1 / (1 + exp(-x)) with exp's overflow to inf silenced."""
    with np.errstate(over="ignore"):
        out = np.exp(np.negative(x))
    out += 1
    return np.reciprocal(out, out=out)


def lstm_forward(x: np.ndarray, kernel, recurrent_kernel, bias, keep: bool) -> tuple:
    """x (T, B, F) -> (h of every step (T, B, U), cache): the cell's 16 ops per step."""
    T, B, F = x.shape
    U = recurrent_kernel.shape[0]
    projected = (x.reshape(T * B, F) @ kernel).reshape(T, B, 4 * U) + bias
    h, c = np.zeros((B, U), x.dtype), np.zeros((B, U), x.dtype)
    steps, hs = [], []
    for t in range(T):
        z = projected[t] + h @ recurrent_kernel
        i, f = sigmoid(z[:, :U]), sigmoid(z[:, U:2 * U])
        c_hat, o = np.tanh(z[:, 2 * U:3 * U]), sigmoid(z[:, 3 * U:])
        c_new = f * c + i * c_hat
        tanh_c = np.tanh(c_new)
        if keep:
            steps.append((h, c, i, f, c_hat, o, tanh_c))  # what the backward closures capture
        h, c = o * tanh_c, c_new
        hs.append(h)
    # microtensor stacks the steps batch-major (B, T, U); the next layer transposes them back
    return np.stack(hs, axis=1).transpose(1, 0, 2), (x, steps) if keep else None


def _sigmoid_grad(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    grad = 1 - out
    grad *= out
    grad *= g
    return grad


def _tanh_grad(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    grad = out * out
    np.subtract(1, grad, out=grad)
    grad *= g
    return grad


def lstm_backward(dh_seq, dh_last, cache, kernel, recurrent_kernel, need_dx: bool) -> tuple:
    """Each op's gradient in reverse order, as microtensor's backward runs them."""
    x, steps = cache
    T, B, F = x.shape
    U = recurrent_kernel.shape[0]
    projected_grad = np.empty((T, B, 4 * U), x.dtype)
    dh, dc_next, products, drecurrent = dh_last, None, [], None
    for t in reversed(range(T)):
        h_prev, c_prev, i, f, c_hat, o, tanh_c = steps[t]
        if dh_seq is not None:
            dh = dh_seq[t] if dh is None else dh + dh_seq[t]
        do, dtanh_c = dh * tanh_c, dh * o                     # h = o * tanh(c)
        dc = _tanh_grad(dtanh_c, tanh_c)
        if dc_next is not None:                                # c also feeds f * c next step
            dc = dc + dc_next
        di, dc_hat = dc * c_hat, dc * i                        # i * c_hat
        df, dc_next = dc * c_prev, dc * f                      # f * c
        dz = np.empty((B, 4 * U), x.dtype)                     # the gate slices fill z's grad
        dz[:, :U] = _sigmoid_grad(di, i)
        dz[:, U:2 * U] = _sigmoid_grad(df, f)
        dz[:, 2 * U:3 * U] = _tanh_grad(dc_hat, c_hat)
        dz[:, 3 * U:] = _sigmoid_grad(do, o)
        projected_grad[t] = dz                                 # z = projected[t] + h @ U
        dh = dz @ recurrent_kernel.T
        if B >= ROWS_WORTH_A_GEMM:
            product = h_prev.T @ dz
            drecurrent = product if drecurrent is None else drecurrent + product
            continue
        products.append((h_prev, dz))
        if len(products) == PRODUCTS_PER_GEMM or t == 0:
            product = (np.concatenate([p[0] for p in products]).T
                       @ np.concatenate([p[1] for p in products]))
            drecurrent = product if drecurrent is None else drecurrent + product
            products = []
    flat = projected_grad.reshape(T * B, 4 * U)
    dkernel = x.reshape(T * B, F).T @ flat
    dx = (flat @ kernel.T).reshape(T, B, F) if need_dx else None
    return dx, dkernel, drecurrent, flat.sum(axis=0)


class NumpyPrimitivesModel(NumpySeedModel):
    """The numpy reference with microtensor's per-gate LSTM op sequence."""

    lstm_forward = staticmethod(lstm_forward)
    lstm_backward = staticmethod(lstm_backward)
