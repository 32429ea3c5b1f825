"""PyTorch habits on mt.Tensor and nn.Module, checked against torch itself: torch's method
names and dim=/keepdim=, torch's tensor-making functions, a training loop written as a
torch user writes it, and state_dict keys that let the same class built again load."""

from __future__ import annotations

import numpy as np
import pytest

import microtensor as mt
import nn
import optim


def pair(torch, values: np.ndarray):
    """The same float64 values as a microtensor and a torch tensor, both requiring grad."""
    return (mt.Tensor(values, requires_grad=True, dtype=np.float64),
            torch.tensor(values, requires_grad=True))


VALUES = np.array([[1.5, -2.0, 0.25], [3.0, 3.0, -0.5]])  # a tie in row 1, for max and min


@pytest.mark.parametrize("call", [
    lambda x: x.view(3, 2), lambda x: x.view(-1), lambda x: x.unsqueeze(0),
    lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(1).squeeze(), lambda x: x.squeeze(0),
    lambda x: x.unsqueeze(1).squeeze(1), lambda x: x.permute(1, 0),
    lambda x: x.unsqueeze(0).flatten(), lambda x: x.unsqueeze(2).flatten(1),
    lambda x: x.abs(), lambda x: abs(x), lambda x: x.abs().sqrt(), lambda x: x.clone() * 2,
    lambda x: x.sum(dim=1), lambda x: x.sum(dim=0, keepdim=True), lambda x: x.mean(dim=1),
    lambda x: x.min(), lambda x: x.max(), lambda x: x.max(dim=1).values,
    lambda x: x.min(dim=0, keepdim=True).values,
])
def test_tensor_methods_match_torch_values_and_gradients(torch, call):
    ours, theirs = pair(torch, VALUES)
    got, want = call(ours), call(theirs)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-12)
    weights = np.random.default_rng(0).normal(size=want.shape)
    (got * mt.Tensor(weights, dtype=np.float64)).sum().backward()
    (want * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-12)


def test_indices_and_sizes_match_torch(torch):
    ours, theirs = pair(torch, VALUES)
    assert ours.size() == tuple(theirs.size()) and ours.size(1) == theirs.size(1)
    assert ours.numel() == theirs.numel() and ours.size == VALUES.size  # numpy's size too
    assert ours.argmax().item() == theirs.argmax().item()
    np.testing.assert_array_equal(ours.argmax(dim=1).numpy(), theirs.argmax(dim=1).numpy())
    np.testing.assert_array_equal(ours.max(dim=1).indices.numpy(),
                                  theirs.max(dim=1).indices.numpy())
    np.testing.assert_array_equal(ours.min(dim=0).indices.numpy(),
                                  theirs.min(dim=0).indices.numpy())
    assert ours.tolist() == theirs.tolist()


@pytest.mark.parametrize("op", [lambda t: t.abs(), lambda t: t.sqrt(), lambda t: t.min(axis=1)])
def test_new_primitives_pass_gradcheck(op):
    x = mt.Tensor(np.random.default_rng(1).uniform(0.5, 2.0, size=(3, 4)), requires_grad=True,
                  dtype=np.float64)
    assert mt.gradcheck(op, [x])


def test_making_tensors_as_torch(torch):
    for data in ([1, 2], [1.0, 2.5], [True, False], [[1, 2], [3, 4]]):
        assert str(mt.tensor(data).dtype) == str(torch.tensor(data).dtype).removeprefix("torch.")
    assert mt.zeros(2, 3).shape == tuple(torch.zeros(2, 3).shape) == mt.ones((2, 3)).shape
    assert mt.randn(4, 5).shape == (4, 5) and mt.randn(2).dtype == np.float32
    a, b = mt.ones(2, 3), mt.zeros(1, 3)
    assert mt.cat([a, b], dim=0).shape == tuple(torch.cat([torch.ones(2, 3),
                                                           torch.zeros(1, 3)], dim=0).shape)
    x = mt.tensor([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(mt.softmax(x, dim=1).numpy(),
                               torch.softmax(torch.tensor([[1.0, 2.0, 3.0]]), dim=1).numpy(),
                               rtol=1e-6)


def test_manual_seed_repeats_randn_and_weights():
    results = []
    for _ in range(2):
        mt.manual_seed(42)
        results.append((mt.randn(3).numpy(), nn.Dense(2)(np.ones((1, 4))).numpy()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_requires_grad_switches_a_leaf():
    w = mt.ones(3).requires_grad_()
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, 2.0, 2.0])
    with pytest.raises(RuntimeError, match="only a leaf"):
        (w * 2).requires_grad_(False)
    with pytest.raises(TypeError, match="floating"):
        mt.tensor([1, 2]).requires_grad_()


# -- a PyTorch-style program -------------------------------------------------------------------

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4)
        self.head = nn.Dense(1)

    def forward(self, x):
        return self.head(self.rnn(x))


def test_a_torch_style_training_loop_matches_torch(torch):
    generator = np.random.default_rng(7)
    x = generator.normal(size=(16, 5, 3)).astype(np.float32)
    y = generator.normal(size=(16, 1)).astype(np.float32)

    model = Net()
    model(mt.tensor(x[:1]))  # build the weights
    rnn, head = torch.nn.LSTM(3, 4, batch_first=True), torch.nn.Linear(4, 1)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(model.rnn.kernel.numpy().T))
        rnn.weight_hh_l0.copy_(torch.tensor(model.rnn.recurrent_kernel.numpy().T))
        rnn.bias_ih_l0.copy_(torch.tensor(model.rnn.bias.numpy()))
        rnn.bias_hh_l0.zero_()
        head.weight.copy_(torch.tensor(model.head.kernel.numpy().T))
        head.bias.copy_(torch.tensor(model.head.bias.numpy()))
    rnn.bias_hh_l0.requires_grad_(False)  # Keras's LSTM has one bias: torch's second stays 0

    opt = optim.Adam(model.parameters(), lr=1e-2)
    torch_opt = torch.optim.Adam([p for p in [*rnn.parameters(), *head.parameters()]
                                  if p.requires_grad], lr=1e-2)
    for _epoch in range(3):
        for start in range(0, 16, 4):
            xb, yb = mt.tensor(x[start:start + 4]), mt.tensor(y[start:start + 4])
            loss = ((model(xb) - yb) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

            out, _ = rnn(torch.tensor(x[start:start + 4]))
            torch_loss = ((head(out[:, -1]) - torch.tensor(y[start:start + 4])) ** 2).mean()
            torch_opt.zero_grad()
            torch_loss.backward()
            torch_opt.step()
            assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(model.head.kernel.numpy().T, head.weight.detach().numpy(),
                               atol=1e-5)


def test_state_dict_keys_are_attribute_paths_so_a_rebuilt_module_loads(tmp_path):
    model = Net()
    model(np.ones((1, 5, 3), np.float32))
    state = model.state_dict()
    assert list(state) == ["rnn.kernel", "rnn.recurrent_kernel", "rnn.bias",
                           "head.kernel", "head.bias"]
    np.savez(tmp_path / "net.npz", **state)
    again = Net()  # a new notebook cell: its layers get new default names (lstm_1, dense_1)
    again(np.ones((1, 5, 3), np.float32))
    with np.load(tmp_path / "net.npz") as saved:
        again.load_state_dict(dict(saved))
    for got, want in zip(again.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
