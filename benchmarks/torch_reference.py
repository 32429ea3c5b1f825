"""The seed model in PyTorch, two ways, from Keras-layout weights.

- ``TorchFusedModel``: ``nn.LSTM`` (PyTorch's fused C++ kernel) and ``nn.Linear``.
  Keras's layout converts as weight_ih = kernel.T, weight_hh = recurrent_kernel.T,
  bias_ih = bias, bias_hh = 0 (frozen, so both models train the same parameters).
- ``TorchPrimitiveModel``: autograd through the primitives microtensor has —
  matmul, sigmoid, tanh, mul, add — in an unrolled Python loop over time, with the
  Keras-layout arrays as leaf tensors. The input projection is one matmul; the time
  steps and the four gates are taken apart with ``unbind``/``chunk``, whose backward
  is a single stack/cat (no full-size zero buffer per slice).

Both share the loss (Keras binary crossentropy: clip to [1e-7, 1 - 1e-7], mean)
and use torch.optim.Adam. Gradients and weights are reported in Keras layout.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy_reference import EPSILON, split_layers


def keras_bce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = p.clamp(EPSILON, 1.0 - EPSILON)
    return -(y * torch.log(p) + (1.0 - y) * torch.log(1.0 - p)).mean()


class _TorchModel:
    """Shared step/predict; subclasses define ``forward`` and the Keras-layout views."""

    def __init__(self, params: list[torch.Tensor], lr: float):
        self.params = params
        self.optimizer = torch.optim.Adam(params, lr=lr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def keras_grads(self) -> list[np.ndarray]:
        raise NotImplementedError

    def get_weights(self) -> list[np.ndarray]:
        raise NotImplementedError

    def _loss(self, x: np.ndarray, y: np.ndarray) -> torch.Tensor:
        return keras_bce(self.forward(torch.from_numpy(x)), torch.from_numpy(y))

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        self.optimizer.zero_grad()
        loss = self._loss(x, y)
        loss.backward()
        return loss.item(), self.keras_grads()

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        self.optimizer.zero_grad()
        loss = self._loss(x, y)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.forward(torch.from_numpy(x)).numpy()


class TorchFusedModel(_TorchModel):
    """nn.LSTM layers, then nn.Linear layers (relu, last one sigmoid)."""

    def __init__(self, weights: list[np.ndarray], lr: float = 1e-3):
        lstms, denses = split_layers(weights)
        dtype = torch.from_numpy(weights[0]).dtype
        self.lstms, self.denses = [], []
        with torch.no_grad():
            for kernel, recurrent_kernel, bias in lstms:
                layer = torch.nn.LSTM(kernel.shape[0], recurrent_kernel.shape[0],
                                      batch_first=True, dtype=dtype)
                layer.weight_ih_l0.copy_(torch.from_numpy(kernel.T))
                layer.weight_hh_l0.copy_(torch.from_numpy(recurrent_kernel.T))
                layer.bias_ih_l0.copy_(torch.from_numpy(bias))
                layer.bias_hh_l0.zero_().requires_grad_(False)
                self.lstms.append(layer)
            for kernel, bias in denses:
                layer = torch.nn.Linear(*kernel.shape, dtype=dtype)
                layer.weight.copy_(torch.from_numpy(kernel.T))
                layer.bias.copy_(torch.from_numpy(bias))
                self.denses.append(layer)
        super().__init__([p for layer in self.lstms + self.denses
                          for p in layer.parameters() if p.requires_grad], lr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.lstms:
            x, (h, _) = layer(x)
        a = h[0]
        for n, layer in enumerate(self.denses):
            z = layer(a)
            a = torch.sigmoid(z) if n == len(self.denses) - 1 else torch.relu(z)
        return a

    def _keras_layout(self, get) -> list[np.ndarray]:
        out = []
        for layer in self.lstms:
            out += [get(layer.weight_ih_l0).T, get(layer.weight_hh_l0).T, get(layer.bias_ih_l0)]
        for layer in self.denses:
            out += [get(layer.weight).T, get(layer.bias)]
        return [np.array(a) for a in out]

    def keras_grads(self) -> list[np.ndarray]:
        return self._keras_layout(lambda p: p.grad.numpy())

    def get_weights(self) -> list[np.ndarray]:
        return self._keras_layout(lambda p: p.detach().numpy())


class TorchPrimitiveModel(_TorchModel):
    """The same model through torch autograd on matmul/sigmoid/tanh/mul/add."""

    def __init__(self, weights: list[np.ndarray], lr: float = 1e-3):
        params = [torch.tensor(w, requires_grad=True) for w in weights]
        super().__init__(params, lr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lstms, denses = split_layers(self.params)
        for n, (kernel, recurrent_kernel, bias) in enumerate(lstms):
            x = lstm(x, kernel, recurrent_kernel, bias, return_sequences=n < len(lstms) - 1)
        for n, (kernel, bias) in enumerate(denses):
            z = x @ kernel + bias
            x = torch.sigmoid(z) if n == len(denses) - 1 else torch.relu(z)
        return x

    def keras_grads(self) -> list[np.ndarray]:
        return [p.grad.numpy().copy() for p in self.params]

    def get_weights(self) -> list[np.ndarray]:
        return [p.detach().numpy().copy() for p in self.params]


def lstm(x: torch.Tensor, kernel, recurrent_kernel, bias, return_sequences: bool) -> torch.Tensor:
    """x (B, T, F) -> (B, T, U) or (B, U); the textbook cell, unrolled over time."""
    batch, units = x.shape[0], recurrent_kernel.shape[0]
    h = x.new_zeros(batch, units)
    c = x.new_zeros(batch, units)
    outputs = []
    for xw_t in (x @ kernel + bias).unbind(1):
        z = xw_t + h @ recurrent_kernel
        i, f, c_hat, o = z.chunk(4, dim=1)
        i, f, c_hat, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(c_hat), torch.sigmoid(o)
        c = f * c + i * c_hat
        h = o * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1) if return_sequences else h
