"""model.record: every value of one pass, by layer, name and step, checked against the layers'
equations computed here in plain numpy from the layers' weights (and gradients against torch)."""

from __future__ import annotations

import numpy as np
import pytest

import nn

RNG = np.random.default_rng(7)


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def lstm_steps(x, kernel, recurrent, bias, keep=None):
    """Keras's LSTM in numpy: per step t = 1..T the dict z, i, f, c_hat, o, c, h (the cell's
    values; a masked sample carries its old h and c into the next step)."""
    units = recurrent.shape[0]
    h = c = np.zeros((x.shape[0], units))
    steps = {}
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = (z[:, k * units:(k + 1) * units] for k in range(4))
        i, f, c_hat, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
        new_c = f * c + i * c_hat
        new_h = o * np.tanh(new_c)
        steps[t + 1] = dict(z=z, i=i, f=f, c_hat=c_hat, o=o, c=new_c, h=new_h)
        kept = np.ones((x.shape[0], 1), bool) if keep is None else keep[:, t:t + 1]
        h, c = np.where(kept, new_h, h), np.where(kept, new_c, c)
    return steps


def gru_steps(x, kernel, recurrent, bias):
    """Keras's GRU (reset_after=True, two bias rows) in numpy: z, r, h_hat, h per step."""
    units = recurrent.shape[0]
    h = np.zeros((x.shape[0], units))
    steps = {}
    for t in range(x.shape[1]):
        xp, hu = x[:, t] @ kernel + bias[0], h @ recurrent + bias[1]
        block = [slice(k * units, (k + 1) * units) for k in range(3)]
        z = sigmoid(xp[:, block[0]] + hu[:, block[0]])
        r = sigmoid(xp[:, block[1]] + hu[:, block[1]])
        h_hat = np.tanh(xp[:, block[2]] + r * hu[:, block[2]])
        h = z * h + (1 - z) * h_hat
        steps[t + 1] = dict(z=z, r=r, h_hat=h_hat, h=h)
    return steps


def simple_rnn_steps(x, kernel, recurrent, bias):
    h = np.zeros((x.shape[0], recurrent.shape[0]))
    steps = {}
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        h = np.tanh(z)
        steps[t + 1] = dict(z=z, h=h)
    return steps


def float64_model(inp, out) -> nn.Model:
    model = nn.Model(inp, out)
    model.set_weights([w.astype(np.float64) + RNG.normal(0, 0.3, w.shape)
                       for w in model.get_weights()])
    return model


@pytest.fixture
def float64():
    import microtensor as mt
    mt.set_default_dtype(np.float64)
    yield
    mt.set_default_dtype(np.float32)


@pytest.mark.parametrize("kind, reference", [("LSTM", lstm_steps), ("GRU", gru_steps),
                                             ("SimpleRNN", simple_rnn_steps)])
def test_every_gate_of_every_step_and_the_dense_layer(float64, kind, reference):
    nn.reset_names()
    inp = nn.Input(shape=(6, 3))
    hidden = getattr(nn, kind)(4, return_sequences=False, name="rnn")(inp)
    model = float64_model(inp, nn.Dense(2, activation="relu", name="head")(hidden))
    x = RNG.standard_normal((5, 6, 3))
    rec = model.record(x)

    rnn_weights = [w.data for w in model.get_layer("rnn").parameters()]
    expected = reference(x, *rnn_weights)
    assert rec.steps("rnn") == [1, 2, 3, 4, 5, 6]
    # x_proj = x @ kernel + bias for all steps before the loop; GRU's hu = h @ U + b per step
    assert rec.names("rnn") == ["x_proj", *(["hu"] if kind == "GRU" else []), *expected[1]]
    for t, values in expected.items():
        for name, value in values.items():
            np.testing.assert_allclose(rec.value("rnn", name, step=t), value, rtol=1e-12,
                                       err_msg=f"{name} at step {t}")
    kernel, bias = (w.data for w in model.get_layer("head").parameters())
    product = expected[6]["h"] @ kernel
    np.testing.assert_allclose(rec.value("head", "x @ kernel"), product, rtol=1e-12)
    np.testing.assert_allclose(rec.value("head", "z"), product + bias, rtol=1e-12)
    np.testing.assert_allclose(rec.value("head", "output"), np.maximum(product + bias, 0),
                               rtol=1e-12)
    assert rec.names("head") == ["x @ kernel", "z", "output"]


def test_gradients_of_the_hidden_states_match_torch(float64, torch):
    nn.reset_names()
    inp = nn.Input(shape=(5, 2))
    out = nn.Dense(1, activation="sigmoid", name="out")(nn.LSTM(3, name="lstm")(inp))
    model = float64_model(inp, out)
    model.compile(loss="binary_crossentropy")
    x, y = RNG.standard_normal((4, 5, 2)), np.array([[0.0], [1.0], [1.0], [0.0]])
    before = [p.grad for p in model.parameters()]
    rec = model.record(x, y)
    assert [p.grad for p in model.parameters()] == before  # parameters' grads untouched

    kernel, recurrent, bias, dense_kernel, dense_bias = (
        torch.tensor(w, requires_grad=True) for w in model.get_weights())
    h = c = torch.zeros(4, 3, dtype=torch.float64)
    hs = []
    for t in range(5):
        z = torch.tensor(x[:, t]) @ kernel + h @ recurrent + bias
        i, f, g, o = z.split(3, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        h.retain_grad()
        hs.append(h)
    p = torch.sigmoid(h @ dense_kernel + dense_bias).clamp(1e-7, 1 - 1e-7)
    target = torch.tensor(y)
    loss = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()
    loss.backward()
    assert rec.loss.item() == pytest.approx(loss.item(), rel=1e-12)
    for t, h in enumerate(hs, start=1):
        np.testing.assert_allclose(rec.grad("lstm", "h", step=t), h.grad.numpy(), rtol=1e-10)


def test_bidirectional_and_masked_inputs(float64):
    nn.reset_names()
    inp = nn.Input(shape=(5,))
    embedded = nn.Embedding(6, 2, mask_zero=True, name="embed")(inp)
    out = nn.Bidirectional(nn.LSTM(3, return_sequences=True), name="bi")(embedded)
    model = float64_model(inp, out)
    tokens = np.array([[1, 2, 3, 0, 0], [4, 5, 1, 2, 3]])
    rec = model.record(tokens)
    table = model.get_layer("embed").parameters()[0].data
    x, keep = table[tokens], tokens != 0
    bi = model.get_layer("bi")
    forward = lstm_steps(x, *(w.data for w in bi.forward_layer.parameters()), keep=keep)
    backward = lstm_steps(x[:, ::-1], *(w.data for w in bi.backward_layer.parameters()),
                          keep=keep[:, ::-1])
    for t in range(1, 6):
        for name in ("f", "c", "h"):
            np.testing.assert_allclose(rec.value(bi.forward_layer.name, name, step=t),
                                       forward[t][name], rtol=1e-12)
            np.testing.assert_allclose(rec.value(bi.backward_layer.name, name, step=t),
                                       backward[t][name], rtol=1e-12)


def test_unknown_names_say_what_is_there():
    nn.reset_names()
    inp = nn.Input(shape=(3, 2))
    model = nn.Model(inp, nn.LSTM(2, name="lstm1")(inp))
    rec = model.record(np.ones((1, 3, 2)))
    with pytest.raises(KeyError, match="no layer named 'lstm2'; recorded layers: 'lstm1'"):
        rec.value("lstm2", "f", step=1)
    with pytest.raises(KeyError, match="no tensor named 'forget'; it has 'x_proj', 'z', 'i', 'f', "
                                       "'c_hat', 'o', 'c', 'h'"):
        rec.value("lstm1", "forget", step=1)
    with pytest.raises(KeyError, match=r"'f' at steps 1-3, not at step 0 \(steps count from 1\)"):
        rec.value("lstm1", "f", step=0)
    with pytest.raises(KeyError, match="exists at steps 1-3: say which, e.g. step=3"):
        rec.value("lstm1", "f")
    with pytest.raises(ValueError, match="no gradients without a loss"):
        rec.grad("lstm1", "h", step=1)
    assert repr(rec).endswith(": lstm1 (3 steps)>")


def test_symbolic_input_instead_of_data_says_what_record_needs():
    nn.reset_names()
    inp = nn.Input(shape=(3, 2))
    out = nn.LSTM(2)(inp)
    model = nn.Model(inp, out)
    with pytest.raises(TypeError, match=r"x must be data, e.g. a numpy array of shape "
                                        r"\(batch, 3, 2\)"):
        model.record(out)
