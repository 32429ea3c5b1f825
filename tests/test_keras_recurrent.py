"""Recurrent layers with Keras's arguments give Keras's numbers: the expectations of Keras 3's
own tests (keras/src/layers/rnn/lstm_test.py and gru_test.py, to 1e-5), and the dropout,
statefulness and argument-order behaviour a Keras user relies on."""

from __future__ import annotations

import numpy as np
import pytest

import nn
from nn import initializers

CONSTANTS = {"kernel_initializer": initializers.Constant(0.01),
             "recurrent_initializer": initializers.Constant(0.02),
             "bias_initializer": initializers.Constant(0.03)}


def close(got, want) -> None:
    data = got.data if hasattr(got, "data") else got
    np.testing.assert_allclose(data, np.array(want), atol=1e-5, rtol=1e-5)


def sequence(*shape: int) -> np.ndarray:
    return np.arange(int(np.prod(shape))).reshape(shape).astype("float32")


# -- Keras's lstm_test.py ---------------------------------------------------------------------

@pytest.mark.parametrize("options, want", [
    ({}, [0.6288687, 0.86899155, 0.9460773]),
    ({"go_backwards": True}, [0.35622165, 0.74789524, 0.8872726]),
    ({"unroll": True}, [0.6288687, 0.86899155, 0.9460773]),
    ({"implementation": 1}, [0.6288687, 0.86899155, 0.9460773]),
    ({"unit_forget_bias": False}, [0.57019705, 0.8661914, 0.9459622]),
    ({"use_bias": False}, [0.54986924, 0.86226785, 0.9443936]),
])
def test_lstm_correctness(options, want):
    output = nn.LSTM(3, **CONSTANTS, **options)(sequence(3, 6, 4))
    close(output, np.repeat(np.array(want)[:, None], 3, axis=1))


@pytest.mark.parametrize("layer, want", [
    (nn.LSTM, [0.3124785, 0.6863672]), (nn.GRU, [0.29542392, 0.5885018])])
def test_statefulness(layer, want):
    rnn = layer(4, stateful=True, **CONSTANTS)
    expected = np.repeat(np.array(want)[:, None], 4, axis=1)
    rnn(sequence(2, 3, 4))
    close(rnn(sequence(2, 3, 4)), expected)
    rnn.reset_state()
    rnn(sequence(2, 3, 4))
    close(rnn(sequence(2, 3, 4)), expected)
    rnn.reset_states()  # Keras 2's name
    assert rnn.states is None


def test_lstm_initial_state():
    state = [np.arange(4).reshape((2, 2)).astype("float32")] * 2
    close(nn.LSTM(2, **CONSTANTS)(sequence(2, 4, 3), initial_state=state),
          [[0.20574439, 0.3558822], [0.64930826, 0.66276]])
    close(nn.LSTM(2, go_backwards=True, **CONSTANTS)(sequence(2, 4, 3), initial_state=state),
          [[0.13281618, 0.2790356], [0.5839337, 0.5992567]])


def test_lstm_masking():
    mask = np.array([[True, True, True, False], [True, True, False, False]])
    x = sequence(2, 4, 3)
    close(nn.LSTM(2, unroll=True, **CONSTANTS)(x, mask=mask),
          [[0.11755939, 0.11755939], [0.28556206, 0.28556206]])
    output = nn.LSTM(2, return_sequences=True, **CONSTANTS)(x, mask=mask).data
    close(output[0], [[0.01588910] * 2, [0.05552048] * 2, [0.11755939] * 2, [0.11755939] * 2])
    close(output[1], [[0.14185596] * 2, [0.28556206] * 2, [0.28556206] * 2, [0.28556206] * 2])
    output = nn.LSTM(2, return_sequences=True, zero_output_for_mask=True,
                     **CONSTANTS)(x, mask=mask).data
    close(output[0], [[0.01588910] * 2, [0.05552048] * 2, [0.11755939] * 2, [0.0] * 2])
    close(output[1], [[0.14185596] * 2, [0.28556206] * 2, [0.0] * 2, [0.0] * 2])
    backwards_mask = np.array([[False, True, True, True], [False, False, True, True]])
    close(nn.LSTM(2, go_backwards=True, **CONSTANTS)(x, mask=backwards_mask),
          [[0.15341201, 0.15341201], [0.3844719, 0.3844719]])


# -- Keras's gru_test.py ----------------------------------------------------------------------

@pytest.mark.parametrize("options, want", [
    ({}, [0.5217289, 0.6371659, 0.39384964]),
    ({"go_backwards": True}, [0.24406259, 0.611516, 0.3928808]),
    ({"unroll": True}, [0.5217289, 0.6371659, 0.39384964]),
    ({"reset_after": False}, [0.51447755, 0.6426879, 0.40208298]),
    ({"use_bias": False}, [0.49988455, 0.64701194, 0.4103359]),
])
def test_gru_correctness(options, want):
    output = nn.GRU(3, **CONSTANTS, **options)(sequence(3, 6, 4))
    close(output, np.repeat(np.array(want)[:, None], 3, axis=1))


def test_gru_initial_and_return_state():
    state = np.arange(4).reshape((2, 2)).astype("float32")
    for options, want in [({}, [[0.23774096, 0.33508456], [0.83659905, 1.0227708]]),
                          ({"go_backwards": True},
                           [[0.13486053, 0.23261218], [0.78257304, 0.9691353]])]:
        output, h = nn.GRU(2, return_state=True, **CONSTANTS, **options)(
            sequence(2, 4, 3), initial_state=state)
        close(output, want)
        close(h, want)


def test_gru_masking():
    mask = np.array([[True, True, False, True], [True, False, False, True]])
    x = sequence(2, 4, 3)
    close(nn.GRU(2, unroll=True, **CONSTANTS)(x, mask=mask),
          [[0.19393763, 0.19393763], [0.30818558, 0.30818558]])
    output = nn.GRU(2, return_sequences=True, **CONSTANTS)(x, mask=mask).data
    close(output[0], [[0.03606692] * 2, [0.09497581] * 2, [0.09497581] * 2, [0.19393763] * 2])
    close(output[1], [[0.16051409] * 2, [0.16051409] * 2, [0.16051409] * 2, [0.30818558] * 2])
    output = nn.GRU(2, return_sequences=True, zero_output_for_mask=True,
                    **CONSTANTS)(x, mask=mask).data
    close(output[0], [[0.03606692] * 2, [0.09497581] * 2, [0.0] * 2, [0.19393763] * 2])
    close(output[1], [[0.16051409] * 2, [0.0] * 2, [0.0] * 2, [0.30818558] * 2])
    close(nn.GRU(2, go_backwards=True, **CONSTANTS)(x, mask=mask),
          [[0.11669192, 0.11669192], [0.28380975, 0.28380975]])


# -- dropout, statefulness in fit, arguments --------------------------------------------------

@pytest.mark.parametrize("layer", [nn.LSTM, nn.GRU, nn.SimpleRNN])
def test_input_dropout_drops_the_same_features_at_every_step(layer):
    import microtensor as mt
    rnn = layer(4, dropout=0.5, seed=3)
    x = mt.Tensor(np.random.default_rng(0).normal(size=(6, 5, 8)), requires_grad=True)
    rnn(x, training=True).sum().backward()
    dropped = np.all(x.grad == 0, axis=1)             # (batch, features): zero at every step
    untouched = np.all(x.grad != 0, axis=1)
    assert np.all(dropped | untouched) and dropped.any() and untouched.any()


@pytest.mark.parametrize("layer", [nn.LSTM, nn.GRU, nn.SimpleRNN])
def test_dropout_acts_in_training_only(layer):
    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32)
    rnn = layer(3, dropout=0.3, recurrent_dropout=0.3)
    plain = rnn(x, training=False).data
    assert not np.allclose(rnn(x, training=True).data, plain)
    rnn.eval()
    np.testing.assert_array_equal(rnn(x).data, plain)


def test_a_seed_repeats_the_dropout():
    x = np.ones((2, 3, 2), dtype=np.float32)
    outputs = []
    for _ in range(2):
        rnn = nn.LSTM(2, dropout=0.5, recurrent_dropout=0.5, seed=7, **CONSTANTS)
        outputs.append(rnn(x, training=True).data)
    np.testing.assert_array_equal(*outputs)


def test_a_stateful_layer_carries_its_state_across_batches_of_fit():
    nn.set_seed(0)
    model = nn.Sequential([nn.LSTM(3, stateful=True, input_shape=(4, 2)), nn.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((8, 4, 2), np.float32), np.zeros((8, 1), np.float32)
    model.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    assert model.layers[0].states is not None
    with pytest.raises(ValueError, match="batches of 4, got a batch of 3"):
        model.predict(x[:3])
    model.layers[0].reset_states()
    assert model.predict(x[:3]).shape == (3, 1)


@pytest.mark.parametrize("layer", [nn.LSTM, nn.GRU, nn.SimpleRNN])
def test_torchs_argument_order_is_explained(layer):
    with pytest.raises(TypeError, match=r"Keras's order is .*units.*last axis of the first input"):
        layer(3, 3)


def test_input_shape_on_the_first_layer_builds_a_sequential():
    model = nn.Sequential([nn.LSTM(8, input_shape=(10, 3)), nn.Dense(1)])
    assert model.built and model.count_params() == 4 * 8 * (3 + 8 + 1) + 9
    dense = nn.Sequential([nn.Dense(4, input_dim=6)])
    assert dense.input_shape == (None, 6)


def test_unknown_layer_arguments_are_named():
    with pytest.raises(TypeError, match=r"lstm_x \(LSTM\): unexpected argument\(s\) droput"):
        nn.LSTM(3, droput=0.2, name="lstm_x")
