"""nn.gradient_flow: ‖∂L/∂h_t‖ per recurrent layer and step, checked against PyTorch."""

from __future__ import annotations

import re

import numpy as np
import pytest

import microtensor as mt
import nn

BATCH, STEPS, FEATURES = 4, 7, 2


def stacked_model() -> nn.Sequential:
    """LSTM(3) over the sequence, a SimpleRNN(2) over its outputs, then Dense(1)."""
    mt.set_default_dtype(np.float64)
    nn.set_seed(1)
    model = nn.Sequential([nn.LSTM(3, return_sequences=True, name="lstm"),
                           nn.SimpleRNN(2, name="rnn"), nn.Dense(1, name="out")])
    model.build((None, STEPS, FEATURES))
    return model


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(BATCH, STEPS, FEATURES)), rng.normal(size=(BATCH, 1))


def torch_flows(torch, model: nn.Sequential, x: np.ndarray, y: np.ndarray) -> dict:
    """The same quantity from an unrolled torch cell loop: retain_grad on every step's h."""
    lstm, rnn, dense = (model.get_layer(name) for name in ("lstm", "rnn", "out"))

    def t(array):
        return torch.from_numpy(np.array(array, dtype=np.float64))

    lstm_cell = torch.nn.LSTMCell(FEATURES, 3).double()  # gate order i, f, g, o as Keras's
    rnn_cell = torch.nn.RNNCell(3, 2).double()
    with torch.no_grad():
        for cell, layer in ((lstm_cell, lstm), (rnn_cell, rnn)):
            cell.weight_ih.copy_(t(layer.kernel.data.T))
            cell.weight_hh.copy_(t(layer.recurrent_kernel.data.T))
            cell.bias_ih.copy_(t(layer.bias.data))
            cell.bias_hh.zero_()
    h, c = torch.zeros(BATCH, 3, dtype=torch.float64), torch.zeros(BATCH, 3, dtype=torch.float64)
    lstm_hs, rnn_hs = [], []
    for step in range(STEPS):
        h, c = lstm_cell(t(x[:, step]), (h, c))
        h.retain_grad()
        lstm_hs.append(h)
    g = torch.zeros(BATCH, 2, dtype=torch.float64)
    for h in lstm_hs:
        g = rnn_cell(h, g)
        g.retain_grad()
        rnn_hs.append(g)
    prediction = g @ t(dense.kernel.data) + t(dense.bias.data)
    ((prediction - t(y)) ** 2).mean().backward()
    return {name: np.array([torch.linalg.norm(h.grad).item() for h in hs])
            for name, hs in (("lstm", lstm_hs), ("rnn", rnn_hs))}


def test_gradient_norms_match_torch_at_every_step(torch):
    model = stacked_model()
    x, y = data()
    flows = nn.gradient_flow(model, x, y, loss="mse")
    expected = torch_flows(torch, model, x, y)
    assert list(flows) == ["lstm", "rnn"]  # in the order the data passes through
    for name in ("lstm", "rnn"):
        assert flows[name].shape == (STEPS,)
        np.testing.assert_allclose(flows[name], expected[name], rtol=0, atol=1e-8)
    # The lstm's h_t reach the loss both through h_{t+1} and through the rnn; a gradient that
    # missed either path would not match above. And the last steps matter more here:
    assert flows["rnn"][-1] > flows["rnn"][0] > 0


def test_parameter_grads_are_left_exactly_as_they_were():
    model = stacked_model()
    x, y = data()
    params = model.parameters()
    params[0].grad = before = np.full(params[0].shape, 7.0)
    flows = nn.gradient_flow(model, x, y, loss="mse")
    assert params[0].grad is before and np.all(before == 7.0)  # not added to, not replaced
    assert all(p.grad is None for p in params[1:])
    assert np.all(flows["lstm"] > 0)


def test_the_compiled_loss_is_the_default():
    model = stacked_model()
    x, y = data()
    with pytest.raises(ValueError, match="not compiled; pass loss="):
        nn.gradient_flow(model, x, y)
    model.compile(optimizer="sgd", loss="mse")
    np.testing.assert_array_equal(nn.gradient_flow(model, x, y)["rnn"],
                                  nn.gradient_flow(model, x, y, loss="mse")["rnn"])


def test_tiny_float32_gradients_are_not_rounded_to_zero():
    """Squaring float32 entries below ~1e-23 underflows; the norm must not (float64 inside)."""
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((4, 1)), nn.SimpleRNN(3, name="rnn"), nn.Dense(1)])
    assert model.get_layer("rnn").recurrent_kernel.dtype == np.float32
    model.get_layer("rnn").recurrent_kernel.data[...] = 1e-12  # each step back: x 1e-12
    x, y = np.ones((2, 4, 1), np.float32), np.ones((2, 1), np.float32)
    norms = nn.gradient_flow(model, x, y, loss="mse")["rnn"]
    loss = nn.losses.mse(mt.Tensor(y), model(x))
    states = nn.inspect.hidden_states(loss)["rnn"]
    for h in states.values():
        h.retain_grad()
    loss.backward()
    want = [np.sqrt(np.sum(states[t].grad.astype(np.float64) ** 2)) for t in range(1, 5)]
    assert 0 < norms[0] < 1e-30
    np.testing.assert_allclose(norms, want, rtol=1e-6)


def test_steps_skipped_at_the_end_are_nan_not_missing():
    nn.set_seed(0)
    inp = nn.Input((4,))
    embedded = nn.Embedding(5, 2, mask_zero=True)(inp)
    model = nn.Model(inp, nn.Dense(1)(nn.GRU(2, name="gru")(embedded)))
    tokens = np.array([[1, 2, 3, 0], [2, 2, 0, 0]])  # nobody has a step 4
    norms = nn.gradient_flow(model, tokens, np.ones((2, 1)), loss="mse")["gru"]
    assert len(norms) == 4 and np.isnan(norms[3]) and np.all(norms[:3] > 0)


def test_a_model_without_recurrent_layers_is_refused():
    model = nn.Sequential([nn.Dense(2)])
    with pytest.raises(ValueError, match="no hidden states of a recurrent layer"):
        nn.gradient_flow(model, np.ones((3, 4)), np.ones((3, 2)), loss="mse")


def test_plot_gradient_flow_writes_a_log_scale_png(tmp_path, matplotlib):
    path = tmp_path / "flow.png"
    ax = nn.plot_gradient_flow({"a": np.array([1e-6, 1e-3, 1.0]), "b": np.ones(3)}, path=str(path))
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_vanishing_gradients_demo_runs_and_writes_its_plot(demo_runs, matplotlib):
    """The demo end to end, as a user runs it, with tiny settings."""
    tmp_path, stdout = demo_runs["vanishing_gradients"]
    lines = stdout.strip().splitlines()
    for kind in ("SimpleRNN", "GRU", "LSTM"):
        assert any(re.fullmatch(rf"  {kind} +[\d.]+% marked anywhere, [\d.]+% marked at t=1",
                                line) for line in lines), kind
        assert sum(line.startswith(f"  {kind}, ") for line in lines) == 2  # init, trained
    assert max(len(line) for line in lines[:-1]) <= 100  # the conclusion fits a terminal
    assert "After training, ‖∂L/∂h_t‖ is SimpleRNN:" in " ".join(stdout.split())
    plot = tmp_path / "vanishing_gradients.png"
    assert lines[-1] == f"Files written: {plot}"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
