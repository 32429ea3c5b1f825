"""Keras's default weights: glorot_uniform kernels, orthogonal recurrent kernels,
zero biases with the LSTM forget gate's slice at 1, reproducible under nn.set_seed."""

from __future__ import annotations

import numpy as np
import pytest

import nn
from nn import initializers


def built_lstm(units: int, features: int) -> nn.LSTM:
    layer = nn.LSTM(units, name="lstm")
    layer(np.zeros((1, 2, features)))
    return layer


@pytest.mark.parametrize("units", [1, 4, 64])
def test_lstm_recurrent_kernel_has_orthonormal_rows(units):
    recurrent = built_lstm(units, 3).recurrent_kernel.data.astype(np.float64)
    assert recurrent.shape == (units, 4 * units)
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(units), atol=1e-5)


def test_orthogonal_square_and_tall_matrices():
    square = initializers.orthogonal((6, 6))
    np.testing.assert_allclose(square @ square.T, np.eye(6), atol=1e-12)
    tall = initializers.orthogonal((8, 3))  # orthonormal columns
    np.testing.assert_allclose(tall.T @ tall, np.eye(3), atol=1e-12)
    assert np.abs(initializers.orthogonal((4, 4), gain=2.0)).max() > 1.0


@pytest.mark.parametrize("shape", [(10, 512), (128, 64), (64, 1)])
def test_glorot_uniform_stays_within_its_limit(shape):
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    weights = initializers.glorot_uniform(shape)
    assert weights.shape == shape
    assert np.abs(weights).max() <= limit
    assert np.abs(weights).max() > 0.5 * limit  # spread out, not all near zero


def test_glorot_uniform_is_uniform_on_the_whole_interval():
    nn.set_seed(0)
    limit = np.sqrt(6.0 / (400 + 600))
    weights = initializers.glorot_uniform((400, 600))
    # A uniform distribution on [-l, l] has mean 0 and variance l²/3.
    assert abs(weights.mean()) < 0.01 * limit
    assert weights.var() == pytest.approx(limit ** 2 / 3, rel=0.02)
    counts, _ = np.histogram(weights, bins=10, range=(-limit, limit))
    assert counts.min() > 0.9 * weights.size / 10  # every tenth of the interval gets its share


def test_layer_kernels_use_glorot_limits():
    lstm = built_lstm(16, 10)
    assert np.abs(lstm.kernel.data).max() <= np.sqrt(6.0 / (10 + 64))
    dense = nn.Dense(32, name="dense")
    dense(np.zeros((1, 8)))
    assert np.abs(dense.kernel.data).max() <= np.sqrt(6.0 / (8 + 32))


def test_lstm_bias_is_zero_except_the_forget_slice():
    units = 5
    bias = built_lstm(units, 3).bias.data
    assert bias.shape == (20,)
    np.testing.assert_array_equal(bias[:units], 0.0)             # input gate
    np.testing.assert_array_equal(bias[units:2 * units], 1.0)    # forget gate: remember at first
    np.testing.assert_array_equal(bias[2 * units:], 0.0)         # candidate and output gates


def test_lstm_without_unit_forget_bias_starts_at_zero():
    layer = nn.LSTM(3, unit_forget_bias=False, name="lstm")
    layer(np.zeros((1, 2, 2)))
    np.testing.assert_array_equal(layer.bias.data, 0.0)


def test_dense_bias_starts_at_zero():
    dense = nn.Dense(7, name="dense")
    dense(np.zeros((1, 3)))
    np.testing.assert_array_equal(dense.bias.data, 0.0)


def make_weights() -> list[np.ndarray]:
    layers = [built_lstm(4, 3), nn.Dense(2, name="dense")]
    layers[1](np.zeros((1, 4)))
    return [w for layer in layers for w in layer.get_weights()]


def test_set_seed_makes_weights_reproducible():
    nn.set_seed(42)
    first = make_weights()
    nn.set_seed(42)
    second = make_weights()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    nn.set_seed(43)
    other = make_weights()
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[1], other[1])


def test_unknown_initializer_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown initializer 'he'.*glorot_uniform"):
        nn.Dense(2, kernel_initializer="he", name="dense")(np.zeros((1, 2)))
