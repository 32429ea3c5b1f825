"""SimpleRNN, GRU and Bidirectional: values and gradients against PyTorch (float64),
GRU(reset_after=False) against a numpy reference and gradcheck, parameter counts from
Keras's formulas, the summary's words, save/load round trips, and graph tags."""

from __future__ import annotations

import re

import numpy as np
import pytest

import microtensor as mt
import nn

TORCH_GRU_ORDER = (1, 0, 2)  # torch's gate blocks r, z, n as Keras's gate numbers (z, r, h)


@pytest.fixture
def float64():
    mt.set_default_dtype(np.float64)


def randn(*shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def close(ours, theirs, tol: float = 1e-9) -> None:
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    np.testing.assert_allclose(ours.data if isinstance(ours, mt.Tensor) else ours, theirs,
                               rtol=0, atol=tol)


def built(layer: nn.Layer, features: int, seed: int = 1) -> nn.Layer:
    """Build ``layer`` for ``features`` and give every weight (biases too) random values."""
    layer(np.zeros((1, 2, features)))
    layer.set_weights([0.5 * randn(*w.shape, seed=seed + k)
                       for k, w in enumerate(layer.get_weights())])
    return layer


# -- the torch twins ---------------------------------------------------------------------------

def torch_layout(layer: nn.Layer, kernel, recurrent_kernel, bias) -> dict[str, np.ndarray]:
    """Keras-layout arrays (weights or their gradients) as torch's weight_ih, weight_hh,
    bias_ih and, for a GRU, bias_hh (SimpleRNN and LSTM have one bias: torch's bias_hh is 0)."""
    if not isinstance(layer, nn.GRU):
        return {"weight_ih": kernel.T, "weight_hh": recurrent_kernel.T, "bias_ih": bias}
    u = layer.units

    def reorder(w):
        return np.concatenate([w[..., k * u:(k + 1) * u] for k in TORCH_GRU_ORDER], axis=-1)
    return {"weight_ih": reorder(kernel).T, "weight_hh": reorder(recurrent_kernel).T,
            "bias_ih": reorder(bias[0]), "bias_hh": reorder(bias[1])}


def weights_of(layer):
    return layer.kernel.data, layer.recurrent_kernel.data, layer.bias.data


def grads_of(layer):
    return layer.kernel.grad, layer.recurrent_kernel.grad, layer.bias.grad


def torch_twin(torch, layer: nn.Layer):
    """A float64 torch RNN/GRU/LSTM (batch_first) computing what ``layer`` computes;
    for a Bidirectional, torch's bidirectional=True with the backward copy as "_reverse"."""
    directions = [(layer, "")]
    if isinstance(layer, nn.Bidirectional):
        directions = [(layer.forward_layer, ""), (layer.backward_layer, "_reverse")]
    inner = directions[0][0]
    kind = {nn.SimpleRNN: torch.nn.RNN, nn.GRU: torch.nn.GRU, nn.LSTM: torch.nn.LSTM}[type(inner)]
    twin = kind(inner.kernel.shape[0], inner.units, batch_first=True,
                bidirectional=len(directions) == 2).double()
    with torch.no_grad():
        for direction, suffix in directions:
            getattr(twin, f"bias_hh_l0{suffix}").zero_()
            for name, array in torch_layout(direction, *weights_of(direction)).items():
                getattr(twin, f"{name}_l0{suffix}").copy_(torch.from_numpy(array.copy()))
    return twin


def test_the_torch_gru_conversion_reorders_z_r_h_into_r_z_n():
    layer = nn.GRU(2)
    kernel = np.array([[0, 0, 1, 1, 2, 2]])  # block k holds k: z, r, h
    converted = torch_layout(layer, kernel, kernel.repeat(2, 0), np.stack([kernel[0]] * 2))
    np.testing.assert_array_equal(converted["weight_ih"].T, [[1, 1, 0, 0, 2, 2]])
    np.testing.assert_array_equal(converted["bias_hh"], [1, 1, 0, 0, 2, 2])


# -- SimpleRNN and GRU against torch.nn.RNN / torch.nn.GRU -------------------------------------

LAYERS = {"simple_rnn": lambda **kw: nn.SimpleRNN(4, **kw),
          "gru": lambda **kw: nn.GRU(4, **kw)}


@pytest.mark.parametrize("with_initial_state", [False, True], ids=["zeros", "h0"])
@pytest.mark.parametrize("return_state", [False, True], ids=["output", "state"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequence"])
@pytest.mark.parametrize("kind", LAYERS)
def test_values_and_gradients_match_torch(torch, float64, kind, return_sequences, return_state,
                                          with_initial_state):
    layer = built(LAYERS[kind](return_sequences=return_sequences, return_state=return_state),
                  features=3)
    x = mt.Tensor(randn(2, 5, 3, seed=10), requires_grad=True)
    h0 = mt.Tensor(randn(2, 4, seed=11), requires_grad=True)
    result = layer(x, initial_state=[h0] if with_initial_state else None)
    output, h = result if return_state else (result, None)

    tx, th0 = (torch.tensor(a.data, requires_grad=True) for a in (x, h0))
    twin = torch_twin(torch, layer)
    sequence, h_n = twin(tx, th0[None] if with_initial_state else None)
    expected = sequence if return_sequences else h_n[0]
    close(output, expected)
    assert output.shape == tuple(expected.shape)
    if return_state:
        close(h, h_n[0])

    weight, state_weight = randn(*output.shape, seed=12), randn(2, 4, seed=13)
    loss = (output * weight).sum() + ((h * state_weight).sum() if return_state else 0.0)
    loss.backward()
    t_loss = (expected * torch.from_numpy(weight)).sum()
    if return_state:
        t_loss = t_loss + (h_n[0] * torch.from_numpy(state_weight)).sum()
    t_loss.backward()
    close(x.grad, tx.grad)
    if with_initial_state:
        close(h0.grad, th0.grad)
    for name, grad in torch_layout(layer, *grads_of(layer)).items():
        close(grad, getattr(twin, f"{name}_l0").grad)


def test_simple_rnn_keeps_the_activation_it_is_given(float64):
    layer = built(nn.SimpleRNN(3, activation="relu"), features=2)
    x = randn(2, 4, 2, seed=3)
    h = np.zeros((2, 3))
    for t in range(4):
        h = np.maximum(x[:, t] @ layer.kernel.data + h @ layer.recurrent_kernel.data
                       + layer.bias.data, 0)
    close(layer(x), h, tol=1e-12)


# -- GRU(reset_after=False): the reset gate before the recurrent product -----------------------

def numpy_gru_reset_before(x, kernel, recurrent_kernel, bias, h):
    """Keras's GRU with reset_after=False, step by step in plain numpy: all h (batch, T, u)."""
    u = h.shape[-1]
    z_, r_, h_ = slice(0, u), slice(u, 2 * u), slice(2 * u, 3 * u)

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))
    sequence = []
    for t in range(x.shape[1]):
        projected = x[:, t] @ kernel + bias
        z = sigmoid(projected[:, z_] + h @ recurrent_kernel[:, z_])
        r = sigmoid(projected[:, r_] + h @ recurrent_kernel[:, r_])
        candidate = np.tanh(projected[:, h_] + (r * h) @ recurrent_kernel[:, h_])
        h = z * h + (1 - z) * candidate
        sequence.append(h)
    return np.stack(sequence, axis=1)


def test_gru_reset_before_matches_the_numpy_reference(float64):
    layer = built(nn.GRU(4, reset_after=False, return_sequences=True), features=3)
    assert layer.bias.shape == (12,)
    x, h0 = randn(2, 5, 3, seed=4), randn(2, 4, seed=5)
    expected = numpy_gru_reset_before(x, *weights_of(layer), h0)
    close(layer(x, initial_state=[h0]), expected, tol=1e-12)
    # reset_after really changes the function: the same numbers as reset_after=True differ.
    after = built(nn.GRU(4, return_sequences=True), features=3)
    after.set_weights([layer.kernel.data, layer.recurrent_kernel.data,
                       np.stack([layer.bias.data, np.zeros(12)])])
    assert np.abs(after(x, initial_state=[h0]).data - expected).max() > 1e-3


def test_gru_reset_before_passes_gradcheck(float64):
    layer = built(nn.GRU(2, reset_after=False, return_sequences=True), features=2)

    def run(x, kernel, recurrent_kernel, bias, h0):
        layer.kernel, layer.recurrent_kernel, layer.bias = kernel, recurrent_kernel, bias
        return layer(x, initial_state=[h0])

    inputs = [mt.Tensor(randn(2, 3, 2, seed=6), requires_grad=True), layer.kernel,
              layer.recurrent_kernel, layer.bias,
              mt.Tensor(randn(2, 2, seed=7), requires_grad=True)]
    assert mt.gradcheck(run, inputs)


def test_gru_weights_have_keras_shapes_and_initial_values():
    layer = nn.GRU(8)
    layer(np.zeros((1, 2, 5), dtype=np.float32))
    assert [w.shape for w in layer.get_weights()] == [(5, 24), (8, 24), (2, 24)]
    assert [name for name, _ in layer.named_parameters()] == [
        f"{layer.name}/kernel", f"{layer.name}/recurrent_kernel", f"{layer.name}/bias"]
    recurrent = layer.recurrent_kernel.data
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(8), atol=1e-5)  # orthogonal
    assert not layer.bias.data.any()


# -- Bidirectional -----------------------------------------------------------------------------

@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequence"])
@pytest.mark.parametrize("inner", [nn.GRU, nn.LSTM])
def test_bidirectional_matches_torch_bidirectional(torch, float64, inner, return_sequences):
    layer = built(nn.Bidirectional(inner(4, return_sequences=return_sequences)), features=3)
    x = mt.Tensor(randn(2, 5, 3, seed=20), requires_grad=True)
    output = layer(x)
    tx = torch.tensor(x.data, requires_grad=True)
    twin = torch_twin(torch, layer)
    sequence, state = twin(tx)
    h_n = state[0] if inner is nn.LSTM else state
    expected = sequence if return_sequences else torch.cat([h_n[0], h_n[1]], dim=-1)
    assert output.shape == tuple(expected.shape) == ((2, 5, 8) if return_sequences else (2, 8))
    close(output, expected)

    weight = randn(*output.shape, seed=21)
    (output * weight).sum().backward()
    (expected * torch.from_numpy(weight)).sum().backward()
    close(x.grad, tx.grad)
    for copy, suffix in ((layer.forward_layer, ""), (layer.backward_layer, "_reverse")):
        for name, grad in torch_layout(copy, *grads_of(copy)).items():
            close(grad, getattr(twin, f"{name}_l0{suffix}").grad)


@pytest.mark.parametrize("merge_mode, combine", [
    ("sum", lambda f, b: f + b), ("mul", lambda f, b: f * b),
    ("ave", lambda f, b: (f + b) / 2), ("concat", lambda f, b: np.concatenate([f, b], -1))])
def test_bidirectional_merge_modes(float64, merge_mode, combine):
    x = randn(2, 4, 3, seed=30)
    layer = built(nn.Bidirectional(nn.SimpleRNN(3, return_sequences=True), merge_mode=merge_mode),
                  features=3)
    forward, backward = (copy(x).data for copy in (layer.forward_layer, layer.backward_layer))
    backward_in_time = layer.backward_layer(x[:, ::-1].copy()).data[:, ::-1]
    assert np.abs(backward_in_time - backward).max() > 1e-3  # the direction matters
    close(layer(x), combine(forward, backward_in_time), tol=1e-12)


def test_bidirectional_without_merge_and_with_states(float64):
    x, h0, c0 = randn(2, 4, 3, seed=31), randn(2, 5, seed=32), randn(2, 5, seed=33)
    layer = built(nn.Bidirectional(nn.LSTM(5, return_state=True), merge_mode=None), features=3)
    forward, backward, h_f, c_f, h_b, c_b = layer(x, initial_state=[h0, c0, c0, h0])
    close(forward, layer.forward_layer(x, initial_state=[h0, c0])[0], tol=0)
    reversed_x = x[:, ::-1].copy()
    _, h, c = layer.backward_layer(reversed_x, initial_state=[c0, h0])
    close(backward, h, tol=0)
    close(h_b, h, tol=0)
    close(c_b, c, tol=0)
    assert h_f.shape == c_f.shape == (2, 5)
    inp = nn.Input((4, 3))
    assert [t.shape for t in layer(inp)] == [(None, 5)] * 6


def test_bidirectional_copies_are_named_like_keras_and_weights_come_forward_first():
    layer = nn.Bidirectional(nn.GRU(2, name="enc"))
    layer(np.zeros((1, 3, 4), dtype=np.float32))
    assert layer.name.startswith("bidirectional")
    names = [name for name, _ in layer.named_parameters()]
    assert names == ["forward_enc/kernel", "forward_enc/recurrent_kernel", "forward_enc/bias",
                     "backward_enc/kernel", "backward_enc/recurrent_kernel", "backward_enc/bias"]
    assert layer.count_params() == 2 * 3 * 2 * (4 + 2 + 2)


def test_bidirectional_refuses_what_it_cannot_wrap():
    with pytest.raises(TypeError, match="Dense"):
        nn.Bidirectional(nn.Dense(3))
    with pytest.raises(ValueError, match="'max'"):
        nn.Bidirectional(nn.GRU(3), merge_mode="max")


# -- summary: counts from Keras's formulas, and the words that explain them ---------------------

def summary_of(layer: nn.Layer, timesteps: int = 7, features: int = 10) -> list[str]:
    inp = nn.Input((timesteps, features))
    model = nn.Model(inp, layer(inp))
    lines: list[str] = []
    model.summary(print_fn=lines.append, explain=True)
    return lines


def cells(lines: list[str], name: str) -> list[str]:
    """The table row of layer ``name`` split on runs of 2+ spaces: [name (type), shape, count]."""
    found = [line for line in lines if line.startswith(name + " (")]
    assert len(found) == 1, "\n".join(lines)
    return re.split(r"\s{2,}", found[0].strip())


@pytest.mark.parametrize("layer, row, explained", [
    (nn.SimpleRNN(32, name="rnn"), ["rnn (SimpleRNN)", "(None, 32)", "1,376"],
     "32 units × (10 inputs + 32 recurrent + 1 bias) = 1,376"),
    (nn.SimpleRNN(64, name="rnn"), ["rnn (SimpleRNN)", "(None, 64)", "4,800"],
     "64 units × (10 inputs + 64 recurrent + 1 bias) = 4,800"),
    (nn.GRU(64, name="gru"), ["gru (GRU)", "(None, 64)", "14,592"],
     "3 gates × 64 units × (10 inputs + 64 recurrent + 2 biases) = 14,592"),
    (nn.GRU(64, reset_after=False, name="gru"), ["gru (GRU)", "(None, 64)", "14,400"],
     "3 gates × 64 units × (10 inputs + 64 recurrent + 1 bias) = 14,400"),
    (nn.GRU(64, use_bias=False, name="gru"), ["gru (GRU)", "(None, 64)", "14,208"],
     "3 gates × 64 units × (10 inputs + 64 recurrent) = 14,208"),
    (nn.Bidirectional(nn.LSTM(64), name="bi"), ["bi (Bidirectional)", "(None, 128)", "38,400"],
     "2 directions × 19,200 = 38,400: forward_lstm"),
    (nn.Bidirectional(nn.GRU(8, return_sequences=True), merge_mode="sum", name="bi"),
     ["bi (Bidirectional)", "(None, 7, 8)", "960"], "2 directions × 480 = 960"),
])
def test_summary_counts_and_explains(layer, row, explained):
    lines = summary_of(layer)
    assert cells(lines, row[0].split()[0]) == row
    assert f"Total params: {row[2]}" in lines
    assert explained in "\n".join(lines)


def test_bidirectional_explain_says_what_is_doubled():
    text = "\n".join(summary_of(nn.Bidirectional(nn.LSTM(64, name="lstm"), name="bi")))
    assert ("forward_lstm and backward_lstm each have 4 gates × 64 units × "
            "(10 inputs + 64 recurrent + 1 bias) = 19,200") in text
    assert "(None, 128) = batch × (forward units + backward units)" in text
    assert "backward_lstm reads t = T..1" in text


def test_a_default_named_bidirectional_fills_its_column_as_in_keras_2():
    nn.reset_names()
    lines = summary_of(nn.Bidirectional(nn.GRU(4)))
    # 29 characters in a 29-wide column: Keras 2's print_row overwrites the last one.
    assert "bidirectional (Bidirectional (None, 8)                 384       " in lines


# -- save / load -------------------------------------------------------------------------------

def test_a_model_with_every_new_layer_saves_and_loads(tmp_path):
    nn.set_seed(0)
    inp = nn.Input((6, 3), name="tokens")
    x = nn.Bidirectional(nn.GRU(4, return_sequences=True, name="enc"), merge_mode="ave")(inp)
    x = nn.SimpleRNN(3, return_sequences=True, activation="relu", name="rnn")(x)
    x = nn.Bidirectional(nn.LSTM(2, return_sequences=True))(x)
    x = nn.GRU(2, reset_after=False, name="gru_before")(x)
    model = nn.Model(inp, nn.Dense(1, name="out")(x), name="family")
    model.set_weights([randn(*w.shape, seed=k) * 0.5 for k, w in enumerate(model.get_weights())])
    data = randn(4, 6, 3, seed=40).astype(np.float32)
    path = tmp_path / "family.npz"
    model.save(path)
    loaded = nn.load_model(path)
    with mt.no_grad():
        np.testing.assert_array_equal(loaded(data).data, model(data).data)
    assert [type(layer).__name__ for layer in loaded.layers] == [
        "InputLayer", "Bidirectional", "SimpleRNN", "Bidirectional", "GRU", "Dense"]
    assert loaded.get_layer("gru_before").reset_after is False
    assert loaded.layers[1].merge_mode == "ave"
    assert loaded.layers[2].get_config()["activation"] == "relu"
    lines_of = [[], []]
    model.summary(print_fn=lines_of[0].append)
    loaded.summary(print_fn=lines_of[1].append)
    assert lines_of[0] == lines_of[1]


# -- graph tags --------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, scope, names", [
    (nn.SimpleRNN(2, name="rnn"), "rnn", {"z", "h"}),
    (nn.GRU(2, name="gru"), "gru", {"z", "r", "h_hat", "h"}),
    (nn.GRU(2, reset_after=False, name="gru"), "gru", {"z", "r", "h_hat", "h"}),
    (nn.Bidirectional(nn.GRU(2, name="gru"), name="bi"), "backward_gru", {"z", "r", "h_hat", "h"}),
])
def test_every_step_is_tagged_with_its_layer_and_step(layer, scope, names):
    output = layer(randn(1, 3, 2).astype(np.float32))
    tagged = {}
    for node in mt.topological_order(output):
        if node.name in names and node.scope == scope:
            tagged.setdefault(node.name, set()).add(node.step)
    assert tagged == {name: {1, 2, 3} for name in names}


@pytest.mark.parametrize("layer, equations", [
    (nn.LSTM, ["i = sigmoid(z_i)", "f = sigmoid(z_f)", "c_hat = tanh(z_c)", "o = sigmoid(z_o)",
               "c = f * c + i * c_hat", "h = o * tanh(c)"]),
    (nn.GRU, ["z = sigmoid(", "r = sigmoid(", "h_hat = tanh(", "h = z * h + (1 - z) * h_hat"]),
    (nn.SimpleRNN, ["h = tanh(x_t @ kernel + h @ recurrent_kernel + bias)"]),
])
def test_help_shows_the_cell_equations(layer, equations):
    import pydoc

    text = pydoc.render_doc(layer, renderer=pydoc.plaintext)
    missing = [equation for equation in equations if equation not in text]
    assert not missing, f"help({layer.__name__}) lacks {missing}"
