"""Losses: Keras's values (clipping, renormalising, logits), gradients, and shape errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

import microtensor as mt
from nn import losses

WRONG_PREDICTION_COST = 16.118095650958319  # -log(1e-7): Keras clips probabilities at 1e-7


@pytest.fixture
def float64():
    mt.set_default_dtype(np.float64)  # conftest puts float32 back


def prediction(values, requires_grad: bool = True) -> mt.Tensor:
    return mt.Tensor(np.asarray(values, dtype=float), requires_grad=requires_grad)


def assert_matches_torch(torch, loss_fn, torch_fn, y, x, torch_target) -> None:
    """loss_fn(y, x) and its gradient equal torch_fn(x, torch_target)'s, to 1e-12."""
    ours = prediction(x)
    loss = loss_fn(y, ours)
    loss.backward()
    t_x = torch.tensor(x, requires_grad=True)
    t_loss = torch_fn(t_x, torch.tensor(torch_target))
    t_loss.backward()
    assert loss.item() == pytest.approx(t_loss.item(), abs=1e-12)
    np.testing.assert_allclose(ours.grad, t_x.grad.numpy(), rtol=0, atol=1e-12)


# -- binary crossentropy -----------------------------------------------------------------------
def test_binary_crossentropy_is_the_textbook_formula(float64):
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    p = np.array([[0.9], [0.2], [0.6], [0.3]])
    expected = -np.mean([np.log(0.9), np.log(0.8), np.log(0.6), np.log(0.7)])
    assert losses.binary_crossentropy(y, prediction(p)).item() == pytest.approx(expected, 1e-12)


def test_binary_crossentropy_averages_the_last_axis_then_the_batch(float64):
    y = np.array([[1.0, 0.0], [1.0, 1.0]])
    p = np.array([[0.5, 0.5], [0.25, 0.5]])
    rows = [-(np.log(0.5) + np.log(0.5)) / 2, -(np.log(0.25) + np.log(0.5)) / 2]
    assert losses.binary_crossentropy(y, prediction(p)).item() == pytest.approx(np.mean(rows))


def test_a_completely_wrong_prediction_costs_16_118_not_infinity():
    loss = losses.binary_crossentropy(np.array([[1.0]]), prediction([[0.0]]))
    assert loss.dtype == np.float32
    assert loss.item() == pytest.approx(WRONG_PREDICTION_COST, rel=1e-5)
    loss.backward()
    assert np.all(np.isfinite(loss.parents[0].data))


def test_a_completely_wrong_prediction_costs_16_118_both_ways(float64):
    y = np.array([[1.0], [0.0]])
    loss = losses.binary_crossentropy(y, prediction([[0.0], [1.0]]))
    assert loss.item() == pytest.approx(WRONG_PREDICTION_COST, rel=1e-7)


def test_binary_crossentropy_from_logits_is_exact_and_stable():
    for dtype in (np.float32, np.float64):
        mt.set_default_dtype(dtype)
        logits = prediction([[50.0], [-50.0], [50.0], [-50.0]])
        y = np.array([[0.0], [1.0], [1.0], [0.0]])
        loss = losses.binary_crossentropy(y, logits, from_logits=True)
        loss.backward()
        # Two sure wrong answers cost 50 each, two sure right ones (almost) nothing.
        assert loss.item() == pytest.approx(100.0 / 4, rel=1e-6)
        assert np.all(np.isfinite(logits.grad))
        np.testing.assert_allclose(logits.grad.ravel(), [0.25, -0.25, 0.0, 0.0], atol=1e-7)


def test_binary_crossentropy_from_logits_matches_torch(torch, float64):
    x = np.array([[-50.0, -3.0], [-0.5, 0.0], [0.0, 1e-3], [2.0, 50.0]])
    y = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    assert_matches_torch(torch, lambda y, x: losses.binary_crossentropy(y, x, from_logits=True),
                         torch.nn.functional.binary_cross_entropy_with_logits, y, x, y)


def test_binary_crossentropy_of_probabilities_matches_torch_inside_the_clip(torch, float64):
    p = np.array([[0.1], [0.5], [0.97], [0.3]])
    y = np.array([[1.0], [0.0], [1.0], [1.0]])
    assert_matches_torch(torch, losses.binary_crossentropy,
                         torch.nn.functional.binary_cross_entropy, y, p, y)


@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_crossentropy_passes_gradcheck(from_logits):
    rng = np.random.default_rng(0)
    y = (rng.random((5, 2)) > 0.5).astype(float)
    values = rng.normal(size=(5, 2)) if from_logits else rng.uniform(0.05, 0.95, (5, 2))
    assert mt.gradcheck(lambda p: losses.binary_crossentropy(y, p, from_logits=from_logits),
                        [prediction(values)])


# -- categorical, sparse, mse ------------------------------------------------------------------
def test_categorical_crossentropy_renormalises_probabilities(float64):
    y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    p = np.array([[1.0, 6.0, 1.0], [0.2, 0.1, 0.1]])  # rows sum to 8 and 0.4
    expected = -(np.log(6.0 / 8.0) + np.log(0.2 / 0.4)) / 2
    assert losses.categorical_crossentropy(y, prediction(p)).item() == pytest.approx(expected)


def test_categorical_crossentropy_clips_like_keras(float64):
    loss = losses.categorical_crossentropy(np.array([[1.0, 0.0]]), prediction([[0.0, 1.0]]))
    assert loss.item() == pytest.approx(WRONG_PREDICTION_COST, rel=1e-7)


def test_categorical_crossentropy_from_logits_matches_torch(torch, float64):
    x = np.array([[2.0, -1.0, 0.5], [100.0, 0.0, -100.0], [0.0, 0.0, 0.0]])
    labels = np.array([0, 2, 1])
    assert_matches_torch(
        torch, lambda y, x: losses.categorical_crossentropy(y, x, from_logits=True),
        torch.nn.functional.cross_entropy, np.eye(3)[labels], x, labels)


def test_sparse_categorical_crossentropy_takes_integer_labels(float64):
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    expected = -(np.log(0.7) + np.log(0.6)) / 2
    for labels in (np.array([0, 2]), np.array([[0], [2]]), [0, 2]):
        got = losses.sparse_categorical_crossentropy(labels, prediction(p)).item()
        assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("labels", [[0, 3], [-1, 0], [0.5, 1]])
def test_sparse_categorical_crossentropy_rejects_bad_labels(labels):
    with pytest.raises(ValueError, match=re.escape("labels must be integers in [0, 3)")):
        losses.sparse_categorical_crossentropy(np.array(labels), prediction(np.ones((2, 3)) / 3))


def test_sparse_categorical_crossentropy_rejects_labels_of_the_wrong_count():
    with pytest.raises(ValueError) as caught:
        losses.sparse_categorical_crossentropy(np.array([0, 1, 2]), prediction(np.ones((2, 3))))
    assert "(3,)" in str(caught.value) and "(2, 3)" in str(caught.value)


def test_mse_is_the_mean_of_squares(float64):
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    p = np.array([[1.5, 2.0], [1.0, 5.0]])
    expected = (0.25 + 0.0 + 4.0 + 1.0) / 4
    assert losses.mse(y, prediction(p)).item() == pytest.approx(expected, rel=1e-12)
    assert losses.get("mse") is losses.mean_squared_error


@pytest.mark.parametrize("loss", [losses.categorical_crossentropy,
                                  losses.sparse_categorical_crossentropy])
@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_losses_pass_gradcheck(loss, from_logits):
    rng = np.random.default_rng(1)
    labels = np.array([0, 2, 1, 2])
    y = labels if loss is losses.sparse_categorical_crossentropy else np.eye(3)[labels]
    values = rng.normal(size=(4, 3)) if from_logits else rng.uniform(0.1, 1.0, (4, 3))
    assert mt.gradcheck(lambda p: loss(y, p, from_logits=from_logits), [prediction(values)])


def test_mse_passes_gradcheck():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(3, 4))
    assert mt.gradcheck(lambda p: losses.mse(y, p), [prediction(rng.normal(size=(3, 4)))])


# -- shapes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", [losses.binary_crossentropy, losses.mse])
def test_labels_of_shape_batch_fit_outputs_of_shape_batch_by_1(loss, float64):
    p = prediction([[0.2], [0.9], [0.6]])
    flat = loss(np.array([0.0, 1.0, 1.0]), p).item()
    column = loss(np.array([[0.0], [1.0], [1.0]]), p).item()
    assert flat == pytest.approx(column, rel=1e-12)


def test_a_batch_by_1_label_fits_a_flat_prediction(float64):
    p = prediction([0.2, 0.9, 0.6])
    expected = -(np.log(0.8) + np.log(0.9) + np.log(0.6)) / 3
    got = losses.binary_crossentropy(np.array([[0.0], [1.0], [1.0]]), p).item()
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("loss,name", [
    (losses.binary_crossentropy, "binary_crossentropy"),
    (losses.categorical_crossentropy, "categorical_crossentropy"),
    (losses.mse, "mse"),
])
def test_shape_mismatch_names_the_loss_and_both_shapes(loss, name):
    with pytest.raises(ValueError) as caught:
        loss(np.zeros((4, 2)), prediction(np.full((3, 2), 0.5)))
    message = str(caught.value)
    assert message.startswith(name) and "(4, 2)" in message and "(3, 2)" in message


def test_losses_by_name():
    assert losses.get("binary_crossentropy") is losses.binary_crossentropy
    with pytest.raises(ValueError, match="unknown loss 'bce'"):
        losses.get("bce")
