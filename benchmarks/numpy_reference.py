"""The seed model written by hand in numpy: forward, BPTT, Adam. No graph.

This is the yardstick the benchmark measures microtensor against: what a
competent engineer would write without an autograd library. The input
projection of all time steps is one matmul, the four gates are one fused
matmul per step, activations are cached in preallocated arrays, and the
weight gradients of a layer are one matmul over all time steps. Nothing is
micro-optimised beyond that.

Weights use the Keras layout and order: per LSTM layer kernel (in, 4u),
recurrent_kernel (u, 4u), bias (4u,) with gate order i, f, c, o; per Dense
layer kernel (in, units), bias (units,). All LSTM layers come first (every one
but the last returns sequences), then the Dense layers (relu, the last one
sigmoid). Inside, sequences are time-major, (T, B, features), so that the
slice of one time step is contiguous.
"""

from __future__ import annotations

import math

import numpy as np

EPSILON = 1e-7  # Keras clips probabilities to [EPSILON, 1 - EPSILON] in binary_crossentropy


def split_layers(weights: list[np.ndarray]) -> tuple[list[tuple], list[tuple]]:
    """Keras-ordered weights -> ([(kernel, recurrent_kernel, bias)...], [(kernel, bias)...]).

    An LSTM layer is recognised by its second array being 2-D (the recurrent kernel).
    """
    lstms, denses, i = [], [], 0
    while i < len(weights):
        if i + 1 < len(weights) and weights[i + 1].ndim == 2:
            if denses:
                raise ValueError("split_layers: LSTM weights must come before Dense weights")
            lstms.append(tuple(weights[i:i + 3]))
            i += 3
        else:
            denses.append(tuple(weights[i:i + 2]))
            i += 2
    return lstms, denses


def seed_weights(rng: np.random.Generator, features: int = 10, lstm_units=(128, 64),
                 dense_units=(128, 64, 1), dtype=np.float32) -> list[np.ndarray]:
    """Keras's default initial weights, in Keras order.

    glorot_uniform kernels, orthogonal recurrent kernels, zero biases with the
    forget-gate slice of each LSTM bias set to 1 (unit_forget_bias).
    """
    def glorot(n_in, n_out):
        limit = math.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-limit, limit, size=(n_in, n_out))

    def orthogonal(rows, cols):
        q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
        q *= np.sign(np.diag(r))
        return q.T if rows < cols else q

    weights, n_in = [], features
    for u in lstm_units:
        bias = np.zeros(4 * u)
        bias[u:2 * u] = 1.0
        weights += [glorot(n_in, 4 * u), orthogonal(u, 4 * u), bias]
        n_in = u
    for u in dense_units:
        weights += [glorot(n_in, u), np.zeros(u)]
        n_in = u
    return [w.astype(dtype) for w in weights]


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-z)), written into ``out`` (exp may overflow to inf: the result is 0)."""
    with np.errstate(over="ignore"):
        out = np.exp(np.negative(z, out=out), out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


# -- LSTM -------------------------------------------------------------------------

def lstm_forward(x: np.ndarray, kernel, recurrent_kernel, bias, keep: bool) -> tuple:
    """x (T, B, F) -> (h of every step (T, B, U), cache or None).

    The cache holds what BPTT needs: the input, all h and c, the activated
    gates (T, B, 4U) and tanh(c) (T, B, U).
    """
    T, B, F = x.shape
    U = recurrent_kernel.shape[0]
    xw = (x.reshape(T * B, F) @ kernel + bias).reshape(T, B, 4 * U)
    hs = np.zeros((T + 1, B, U), x.dtype)
    cs = np.zeros((T + 1, B, U), x.dtype)
    gates = np.empty((T, B, 4 * U), x.dtype) if keep else None
    tanh_cs = np.empty((T, B, U), x.dtype) if keep else None
    for t in range(T):
        z = xw[t] + hs[t] @ recurrent_kernel
        a = gates[t] if keep else z
        sigmoid(z[:, :2 * U], out=a[:, :2 * U])      # i, f
        np.tanh(z[:, 2 * U:3 * U], out=a[:, 2 * U:3 * U])  # c_hat
        sigmoid(z[:, 3 * U:], out=a[:, 3 * U:])       # o
        i, f, g, o = a[:, :U], a[:, U:2 * U], a[:, 2 * U:3 * U], a[:, 3 * U:]
        c = cs[t + 1]
        np.multiply(f, cs[t], out=c)
        c += i * g
        tc = tanh_cs[t] if keep else np.empty_like(c)
        np.tanh(c, out=tc)
        np.multiply(o, tc, out=hs[t + 1])
    cache = (x, hs, cs, gates, tanh_cs) if keep else None
    return hs[1:], cache


def lstm_backward(dh_seq: np.ndarray | None, dh_last: np.ndarray | None, cache,
                  kernel, recurrent_kernel, need_dx: bool) -> tuple:
    """BPTT. dh_seq (T, B, U) or dh_last (B, U) -> (dx or None, dkernel, drecurrent, dbias)."""
    x, hs, cs, gates, tanh_cs = cache
    T, B, F = x.shape
    U = recurrent_kernel.shape[0]
    dz = np.empty((T, B, 4 * U), x.dtype)
    dh = np.zeros((B, U), x.dtype) if dh_last is None else dh_last
    dc = np.zeros((B, U), x.dtype)
    for t in reversed(range(T)):
        if dh_seq is not None:
            dh = dh + dh_seq[t]
        a, tc = gates[t], tanh_cs[t]
        i, f, g, o = a[:, :U], a[:, U:2 * U], a[:, 2 * U:3 * U], a[:, 3 * U:]
        d = dz[t]
        d[:, 3 * U:] = dh * tc * o * (1.0 - o)
        dc += dh * o * (1.0 - tc * tc)
        d[:, :U] = dc * g * i * (1.0 - i)
        d[:, U:2 * U] = dc * cs[t] * f * (1.0 - f)
        d[:, 2 * U:3 * U] = dc * i * (1.0 - g * g)
        dc *= f
        dh = d @ recurrent_kernel.T
    dz_flat = dz.reshape(T * B, 4 * U)
    dkernel = x.reshape(T * B, F).T @ dz_flat
    drecurrent = hs[:-1].reshape(T * B, U).T @ dz_flat
    dbias = dz_flat.sum(axis=0)
    dx = (dz_flat @ kernel.T).reshape(T, B, F) if need_dx else None
    return dx, dkernel, drecurrent, dbias


# -- the whole model ------------------------------------------------------------------

def bce_and_grad(p: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Keras binary crossentropy of probabilities p (B, 1) and its gradient wrt p."""
    lo, hi = EPSILON, 1.0 - EPSILON
    pc = np.clip(p, lo, hi)
    loss = -np.mean(y * np.log(pc) + (1.0 - y) * np.log(1.0 - pc))
    dp = (-(y / pc) + (1.0 - y) / (1.0 - pc)) / p.size
    dp *= (p >= lo) & (p <= hi)  # clip passes no gradient outside the range
    return float(loss), dp


class NumpySeedModel:
    """Stacked LSTMs then Dense layers, with hand-written forward, BPTT and Adam."""

    lstm_forward = staticmethod(lstm_forward)
    lstm_backward = staticmethod(lstm_backward)

    def __init__(self, weights: list[np.ndarray], lr: float = 1e-3):
        self.weights = [np.array(w) for w in weights]
        self.optimizer = Adam(self.weights, lr=lr)

    def _forward(self, x: np.ndarray, keep: bool) -> tuple[np.ndarray, list]:
        lstms, denses = split_layers(self.weights)
        seq = np.ascontiguousarray(x.transpose(1, 0, 2))  # (T, B, F)
        caches = []
        for kernel, recurrent_kernel, bias in lstms:
            seq, cache = self.lstm_forward(seq, kernel, recurrent_kernel, bias, keep)
            caches.append(cache)
        a = seq[-1]
        for n, (kernel, bias) in enumerate(denses):
            caches.append(a)
            z = a @ kernel + bias
            a = sigmoid(z, out=z) if n == len(denses) - 1 else np.maximum(z, 0.0, out=z)
        return a, caches

    def predict(self, x: np.ndarray) -> np.ndarray:
        """x (B, T, F) -> probabilities (B, 1); nothing is cached."""
        return self._forward(x, keep=False)[0]

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Loss of x (B, T, F) against y (B, 1), and its gradients in Keras order."""
        lstms, denses = split_layers(self.weights)
        p, caches = self._forward(x, keep=True)
        loss, dp = bce_and_grad(p, y)
        grads = []
        da = dp * p * (1.0 - p)  # through the output sigmoid
        a_out = p
        for n in reversed(range(len(denses))):
            kernel, _ = denses[n]
            a_in = caches[len(lstms) + n]
            if n < len(denses) - 1:
                da = da * (a_out > 0)  # through relu
            grads[:0] = [a_in.T @ da, da.sum(axis=0)]
            da, a_out = da @ kernel.T, a_in
        dh_seq, dh_last = None, da
        for n in reversed(range(len(lstms))):
            kernel, recurrent_kernel, _ = lstms[n]
            dx, dk, dr, db = self.lstm_backward(dh_seq, dh_last, caches[n], kernel,
                                                recurrent_kernel, need_dx=n > 0)
            grads[:0] = [dk, dr, db]
            dh_seq, dh_last = dx, None
        return loss, grads

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        loss, grads = self.loss_and_grads(x, y)
        self.optimizer.step(grads)
        return loss

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.weights]


class Adam:
    """torch.optim.Adam's update (eps added after bias-correcting sqrt(v)), in place."""

    def __init__(self, params: list[np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr / (1.0 - b1 ** self.t)
        sqrt_bc2 = math.sqrt(1.0 - b2 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            denom = np.sqrt(v) / sqrt_bc2 + self.eps
            p -= step_size * m / denom
