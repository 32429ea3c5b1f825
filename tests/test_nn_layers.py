"""Dense and LSTM: values and gradients against PyTorch, weights in Keras order,
errors that teach, and the (scope, step) tags the graph renderer relies on."""

from __future__ import annotations

import re

import numpy as np
import pytest

import microtensor as mt
import nn

SEED_WEIGHT_SHAPES = [  # Keras's get_weights() of the seed model
    (10, 512), (128, 512), (512,),  # lstm1: kernel, recurrent_kernel, bias
    (128, 256), (64, 256), (256,),  # lstm2
    (64, 128), (128,),              # dense1: kernel, bias
    (128, 64), (64,),               # dense2
    (64, 1), (1,),                  # output
]


@pytest.fixture
def float64():
    mt.set_default_dtype(np.float64)  # conftest puts float32 back


def seed_model() -> nn.Model:
    inp = nn.Input(shape=(50, 10), name="input_layer")
    x = nn.LSTM(128, return_sequences=True, name="lstm1")(inp)
    x = nn.LSTM(64, name="lstm2")(x)
    x = nn.Dense(128, activation="relu", name="dense1")(x)
    x = nn.Dense(64, activation="relu", name="dense2")(x)
    x = nn.Dense(1, activation="sigmoid", name="output")(x)
    return nn.Model(inputs=inp, outputs=x)


def randn(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def torch_lstm(torch, layer: nn.LSTM):
    """A float64 torch.nn.LSTM holding ``layer``'s weights (same gate order i, f, g, o)."""
    features, units = layer.kernel.shape[0], layer.units
    twin = torch.nn.LSTM(features, units, batch_first=True).double()
    with torch.no_grad():
        twin.weight_ih_l0.copy_(torch.from_numpy(layer.kernel.data.T.copy()))
        twin.weight_hh_l0.copy_(torch.from_numpy(layer.recurrent_kernel.data.T.copy()))
        twin.bias_ih_l0.copy_(torch.from_numpy(layer.bias.data.copy()))
        twin.bias_hh_l0.zero_()
    return twin


def torch_linear(torch, layer: nn.Dense):
    twin = torch.nn.Linear(*layer.kernel.shape).double()
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(layer.kernel.data.T.copy()))
        twin.bias.copy_(torch.from_numpy(layer.bias.data.copy()))
    return twin


def close(ours, theirs, tol: float = 1e-9) -> None:
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    np.testing.assert_allclose(ours.data if isinstance(ours, mt.Tensor) else ours, theirs,
                               rtol=0, atol=tol)


# -- forward parity with torch.nn.LSTM ---------------------------------------------------------
@pytest.mark.parametrize("return_sequences", [True, False])
def test_lstm_forward_matches_torch(torch, float64, return_sequences):
    x = randn(3, 7, 5)
    layer = nn.LSTM(4, return_sequences=return_sequences, name="lstm")
    ours = layer(x)
    sequence, (h_n, _) = torch_lstm(torch, layer)(torch.from_numpy(x))
    assert ours.dtype == np.float64
    if return_sequences:
        assert ours.shape == (3, 7, 4)
        close(ours, sequence)
    else:
        assert ours.shape == (3, 4)
        close(ours, h_n[0])


@pytest.mark.parametrize("return_sequences", [True, False])
def test_lstm_return_state_gives_output_h_and_c(torch, float64, return_sequences):
    x = randn(2, 6, 3)
    layer = nn.LSTM(5, return_sequences=return_sequences, return_state=True, name="lstm")
    output, h, c = layer(x)
    sequence, (h_n, c_n) = torch_lstm(torch, layer)(torch.from_numpy(x))
    close(output, sequence if return_sequences else h_n[0])
    close(h, h_n[0])
    close(c, c_n[0])
    assert h.shape == c.shape == (2, 5)


def test_lstm_initial_state_matches_torch(torch, float64):
    x, h0, c0 = randn(2, 4, 3, seed=1), randn(2, 5, seed=2), randn(2, 5, seed=3)
    layer = nn.LSTM(5, return_sequences=True, return_state=True, name="lstm")
    output, h, c = layer(x, initial_state=[h0, c0])
    sequence, (h_n, c_n) = torch_lstm(torch, layer)(
        torch.from_numpy(x), (torch.from_numpy(h0[None]), torch.from_numpy(c0[None])))
    close(output, sequence)
    close(h, h_n[0])
    close(c, c_n[0])
    # The state really was used: starting from zeros gives something else.
    assert np.abs(layer(x)[0].data - output.data).max() > 1e-3


def test_lstm_initial_state_of_the_wrong_shape_names_it(float64):
    layer = nn.LSTM(5, name="lstm")
    with pytest.raises(ValueError, match=re.escape("initial_state c0 must have shape (2, 5)")):
        layer(randn(2, 4, 3), initial_state=[np.zeros((2, 5)), np.zeros((2, 4))])


# -- gradient parity ---------------------------------------------------------------------------
def test_seed_model_loss_and_every_gradient_match_torch(torch, float64):
    nn.set_seed(1)
    model = seed_model()
    x, y = randn(3, 50, 10, seed=4), np.array([[1.0], [0.0], [1.0]])
    lstm1, lstm2, dense1, dense2, output = (model.get_layer(n) for n in
                                            ("lstm1", "lstm2", "dense1", "dense2", "output"))
    t_lstm1, t_lstm2 = torch_lstm(torch, lstm1), torch_lstm(torch, lstm2)
    t_dense1, t_dense2, t_output = (torch_linear(torch, d) for d in (dense1, dense2, output))

    loss = nn.losses.binary_crossentropy(y, model(x))
    loss.backward()

    sequence, _ = t_lstm1(torch.from_numpy(x))
    _, (h_n, _) = t_lstm2(sequence)
    hidden = torch.relu(t_dense2(torch.relu(t_dense1(h_n[0]))))
    t_loss = torch.nn.functional.binary_cross_entropy(torch.sigmoid(t_output(hidden)),
                                                      torch.from_numpy(y))
    t_loss.backward()

    close(loss, t_loss, tol=1e-12)
    for layer, twin in ((lstm1, t_lstm1), (lstm2, t_lstm2)):
        close(layer.kernel.grad, twin.weight_ih_l0.grad.T, tol=1e-8)
        close(layer.recurrent_kernel.grad, twin.weight_hh_l0.grad.T, tol=1e-8)
        close(layer.bias.grad, twin.bias_ih_l0.grad, tol=1e-8)
    for layer, twin in ((dense1, t_dense1), (dense2, t_dense2), (output, t_output)):
        close(layer.kernel.grad, twin.weight.grad.T, tol=1e-8)
        close(layer.bias.grad, twin.bias.grad, tol=1e-8)
    # Not vacuous: the first layer's gradients are far from zero.
    assert np.abs(lstm1.kernel.grad).max() > 1e-4


def test_tiny_lstm_passes_gradcheck(float64):
    layer = nn.LSTM(2, return_sequences=True, name="lstm")
    layer(randn(2, 3, 2))  # build

    def run(x, kernel, recurrent_kernel, bias, h0, c0):
        layer.kernel, layer.recurrent_kernel, layer.bias = kernel, recurrent_kernel, bias
        return layer(x, initial_state=[h0, c0])

    inputs = [mt.Tensor(randn(2, 3, 2, seed=5), requires_grad=True), layer.kernel,
              layer.recurrent_kernel, layer.bias,
              mt.Tensor(randn(2, 2, seed=6), requires_grad=True),
              mt.Tensor(randn(2, 2, seed=7), requires_grad=True)]
    assert mt.gradcheck(run, inputs)


# -- Dense -------------------------------------------------------------------------------------
def test_dense_on_3d_input_acts_on_the_last_axis(float64):
    x = randn(2, 5, 3)
    layer = nn.Dense(4, activation="tanh", name="dense")
    y = layer(x)
    expected = np.tanh(np.einsum("btf,fu->btu", x, layer.kernel.data) + layer.bias.data)
    assert y.shape == (2, 5, 4)
    close(y, expected, tol=1e-12)


def test_dense_without_bias_has_only_a_kernel(float64):
    layer = nn.Dense(3, use_bias=False, name="dense")
    x = randn(4, 2)
    close(layer(x), x @ layer.kernel.data, tol=1e-12)
    assert [w.shape for w in layer.get_weights()] == [(2, 3)]


# -- weights in Keras order --------------------------------------------------------------------
@pytest.fixture(scope="module")
def built_seed() -> nn.Model:
    return seed_model()


def test_get_weights_in_keras_order(built_seed):
    weights = built_seed.get_weights()
    assert [w.shape for w in weights] == SEED_WEIGHT_SHAPES
    names = [name for name, _ in built_seed.named_parameters()]
    assert names == ["lstm1/kernel", "lstm1/recurrent_kernel", "lstm1/bias",
                     "lstm2/kernel", "lstm2/recurrent_kernel", "lstm2/bias",
                     "dense1/kernel", "dense1/bias", "dense2/kernel", "dense2/bias",
                     "output/kernel", "output/bias"]
    # Copies: changing them changes nothing in the model.
    weights[0][...] = 123.0
    assert not np.any(built_seed.get_weights()[0] == 123.0)


def test_set_weights_round_trip(built_seed):
    model = built_seed
    new = [randn(*shape, seed=k) for k, shape in enumerate(SEED_WEIGHT_SHAPES)]
    model.set_weights(new)
    for ours, given in zip(model.get_weights(), new, strict=True):
        np.testing.assert_allclose(ours, given, rtol=1e-6)


def test_set_weights_with_a_wrong_shape_names_it_and_changes_nothing(built_seed):
    before = built_seed.get_weights()
    new = [w + 1.0 for w in before]
    new[4] = np.zeros((64, 255))  # lstm2's recurrent kernel, after three good arrays
    with pytest.raises(ValueError) as caught:
        built_seed.set_weights(new)
    message = str(caught.value)
    assert "lstm2/recurrent_kernel" in message
    assert "(64, 256)" in message and "(64, 255)" in message
    for after, was in zip(built_seed.get_weights(), before, strict=True):
        np.testing.assert_array_equal(after, was)


def test_set_weights_with_too_few_arrays_says_how_many(built_seed):
    before = built_seed.get_weights()
    with pytest.raises(ValueError, match="got 11 arrays but it has 12 weights"):
        built_seed.set_weights([w + 1.0 for w in before[:-1]])
    for after, was in zip(built_seed.get_weights(), before, strict=True):
        np.testing.assert_array_equal(after, was)


def test_load_state_dict_is_atomic(built_seed):
    before = built_seed.state_dict()
    state = {name: value + 1.0 for name, value in before.items()}
    state["output/bias"] = np.zeros(2)  # the very last weight is wrong
    with pytest.raises(ValueError) as caught:
        built_seed.load_state_dict(state)
    assert "output/bias" in str(caught.value) and "(1,)" in str(caught.value)
    assert "(2,)" in str(caught.value)
    del state["output/bias"]
    with pytest.raises(KeyError, match="output/bias"):
        built_seed.load_state_dict(state)
    for name, value in built_seed.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


# -- errors that teach -------------------------------------------------------------------------
def test_lstm_given_2d_data_says_what_it_expects_and_how_to_reshape():
    layer = nn.LSTM(8, name="lstm")
    with pytest.raises(ValueError) as caught:
        layer(np.zeros((32, 10)))
    message = str(caught.value)
    assert "lstm (LSTM)" in message
    assert "(batch, timesteps, features)" in message
    assert "(32, 10)" in message
    assert "reshape(32, 10, 1)" in message


def test_lstm_after_a_2d_input_in_a_functional_model():
    with pytest.raises(ValueError, match=re.escape("(batch, timesteps, features)")):
        nn.LSTM(8, name="lstm")(nn.Input((10,)))


def test_stacking_lstms_without_return_sequences_points_at_return_sequences():
    inp = nn.Input((10, 3))
    with pytest.raises(ValueError, match=r"lstm2 \(LSTM\).*\(None, 8\).*give that one "
                                         r"return_sequences=True"):
        nn.LSTM(4, name="lstm2")(nn.LSTM(8, name="lstm1")(inp))


def test_model_called_on_the_wrong_feature_size_names_both_shapes(built_seed):
    with pytest.raises(ValueError) as caught:
        built_seed(np.zeros((3, 50, 7)))
    message = str(caught.value)
    assert "input_layer" in message
    assert "(None, 50, 10)" in message and "(3, 50, 7)" in message


@pytest.mark.parametrize("make,first,second", [
    (lambda: nn.Dense(4, name="reused"), (2, 3), (2, 5)),
    (lambda: nn.LSTM(4, name="reused"), (2, 6, 3), (2, 6, 5)),
])
def test_layer_reused_on_a_different_feature_size(make, first, second):
    layer = make()
    layer(np.zeros(first))
    before = layer.get_weights()
    with pytest.raises(ValueError) as caught:
        layer(np.zeros(second))
    message = str(caught.value)
    assert "reused" in message and "3 features" in message and str(second) in message
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in before]


# -- the graph's (scope, step) tags ------------------------------------------------------------
def graph_of(root: mt.Tensor) -> list[mt.Tensor]:
    """Every tensor ``root`` was computed from, walking ``parents`` iteratively."""
    seen: dict[int, mt.Tensor] = {}
    stack = [root]
    while stack:
        tensor = stack.pop()
        if id(tensor) not in seen:
            seen[id(tensor)] = tensor
            stack.extend(tensor.parents)
    return list(seen.values())


def test_every_op_is_tagged_with_its_layer_and_every_lstm_step_with_t():
    inp = nn.Input((6, 3), name="inp")
    x = nn.LSTM(4, return_sequences=True, name="lstm1")(inp)
    x = nn.LSTM(2, name="lstm2")(x)
    model = nn.Model(inp, nn.Dense(1, activation="sigmoid", name="out")(x))
    output = model(randn(2, 6, 3))
    graph = graph_of(output)
    ops = [t for t in graph if t.op is not None]
    assert {t.scope for t in ops} == {"lstm1", "lstm2", "out"}
    assert all(t.step is None for t in ops if t.scope == "out")
    for name in ("lstm1", "lstm2"):
        in_layer = [t for t in ops if t.scope == name]
        steps = [t.step for t in in_layer if t.step is not None]
        assert sorted(set(steps)) == list(range(1, 7))  # t = 1..T; h_0 is the initial state
        # Every step is the same cell: the same ops, the same number of times.
        per_step = [sorted(t.op for t in in_layer if t.step == s) for s in range(1, 7)]
        assert all(ops_of_step == per_step[1] for ops_of_step in per_step[1:])
        assert {"sigmoid", "tanh", "mul"} <= set(per_step[0])
        # The gate nonlinearities only happen inside a step.
        assert all(t.step is not None for t in in_layer if t.op in ("sigmoid", "tanh"))
        # A step reads only from its own step, the step before, or outside the loop.
        for t in in_layer:
            if t.step is not None:
                assert all(p.step in (t.step, t.step - 1, None) for p in t.parents
                           if p.scope == name)
    dense_matmul = next(t for t in ops if t.scope == "out" and t.op == "matmul")
    h_last = dense_matmul.parents[0]
    assert (h_last.scope, h_last.step) == ("lstm2", 6)  # the last step's h feeds the Dense
    params = {t.name for t in graph if t.name}
    assert "lstm1/kernel" in params and "out/bias" in params
