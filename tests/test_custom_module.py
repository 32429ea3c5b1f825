"""A user's own nn.Module (PyTorch style): layers kept in attributes are its children,
so their weights are its parameters, saved in its state_dict and trained by an optimizer."""

from __future__ import annotations

import numpy as np
import pytest

import microtensor as mt
import nn
import optim


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4, name="rnn")
        self.hidden = [nn.Dense(3, activation="relu", name="hidden")]
        self.heads = {"out": nn.Dense(1, activation="sigmoid", name="out")}

    def forward(self, x):
        return self.heads["out"](self.hidden[0](self.rnn(x)))


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((8, 5, 2)).astype(np.float32), rng.integers(0, 2, (8, 1))


def test_layers_in_attributes_lists_and_dicts_are_children_in_assignment_order():
    net = Classifier()
    x, _ = data()
    net(x)
    names = [name for name, _ in net.named_parameters()]
    assert names == ["rnn.kernel", "rnn.recurrent_kernel", "rnn.bias", "hidden.0.kernel",
                     "hidden.0.bias", "heads.out.kernel", "heads.out.bias"]  # as torch names them
    assert net.count_params() == 4 * 4 * (2 + 4 + 1) + (4 * 3 + 3) + (3 + 1)
    assert list(net.state_dict()) == names


def test_a_custom_module_trains_like_the_same_functional_model():
    nn.set_seed(0)
    net = Classifier()
    x, y = data()
    net(x)
    inp = nn.Input((5, 2))
    out = nn.Dense(1, activation="sigmoid")(nn.Dense(3, activation="relu")(nn.LSTM(4)(inp)))
    model = nn.Model(inp, out)
    model.set_weights(net.get_weights())

    before = net.get_weights()
    for module in (net, model):
        opt = optim.Adam(module.parameters(), lr=0.1)
        loss = nn.losses.binary_crossentropy(mt.Tensor(y), module(x))
        loss.backward()
        opt.step()
    after = net.get_weights()
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    for mine, theirs in zip(after, model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_a_module_shared_twice_counts_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Dense(2, name="shared")
            self.again = self.dense

        def forward(self, x):
            return self.again(self.dense(x))

    net = Twice()
    net(np.ones((1, 2), np.float32))
    assert [name for name, _ in net.named_parameters()] == ["dense.kernel", "dense.bias"]


def test_an_optimizer_given_no_parameters_says_to_call_the_model_first():
    net = Classifier()  # not called yet: its layers have no weights
    with pytest.raises(ValueError, match=r"Adam: got an empty parameter list.*first call"):
        optim.Adam(net.parameters())


class Subclassed(nn.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.dense = nn.Dense(1, activation="sigmoid", name="dense")

    def forward(self, x):
        return self.dense(x)


def test_a_model_subclass_finds_its_layers_and_predicts():
    model = Subclassed()
    x = np.ones((5, 3), np.float32)
    assert model.predict(x).shape == (5, 1)
    assert [name for name, _ in model.named_parameters()] == ["dense.kernel", "dense.bias"]


def test_fit_on_a_model_subclass_says_to_use_a_pytorch_style_loop():
    model = Subclassed()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    with pytest.raises(TypeError, match="subclassed: fit and evaluate train models made of "
                                        "layer calls.*PyTorch-style loop"):
        model.fit(np.ones((4, 3), np.float32), np.ones((4, 1)), verbose=0)
