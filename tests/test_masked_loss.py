"""Padded steps don't count in the loss (Keras semantics for masked sequences)."""

from __future__ import annotations

import numpy as np

import nn


def per_step_model() -> nn.Model:
    nn.set_seed(0)
    inp = nn.Input(shape=(5,))
    x = nn.Embedding(6, 4, mask_zero=True)(inp)
    x = nn.LSTM(3, return_sequences=True)(x)
    out = nn.Dense(1, activation="sigmoid")(x)
    return nn.Model(inp, out)


def test_losses_average_over_unmasked_positions_only():
    per_position = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    prediction = np.full((2, 3, 1), 0.5)
    mask = np.array([[True, True, False], [True, False, False]])
    # mse per position = (y - 0.5)^2 with y = 0.5 + sqrt(value): mean over the 3 kept ones
    y = 0.5 + np.sqrt(per_position)[..., None]
    import microtensor as mt
    loss = nn.losses.mse(y, mt.Tensor(prediction, dtype=np.float64), mask=mask)
    assert np.isclose(loss.item(), (1.0 + 2.0 + 4.0) / 3)


def test_evaluate_ignores_padded_steps():
    model = per_step_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    tokens = np.array([[3, 1, 2, 0, 0], [5, 4, 0, 0, 0]])
    labels = np.zeros((2, 5, 1))
    labels[:, 3:] = 1.0  # wrong only where padded: must not matter
    p = np.clip(model.predict(tokens)[..., 0], 1e-7, 1 - 1e-7)
    kept = tokens != 0
    expected = -np.log(1 - p[kept]).mean()
    assert np.isclose(model.evaluate(tokens, labels), expected, rtol=1e-5)
    counting_padding = np.where(labels[..., 0] == 1, -np.log(p), -np.log(1 - p)).mean()
    assert not np.isclose(model.evaluate(tokens, labels), counting_padding, rtol=1e-3)


def test_fit_gets_no_gradient_from_padded_steps():
    model = per_step_model()
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    tokens = np.array([[3, 1, 2, 0, 0], [5, 4, 0, 0, 0]])
    labels = np.zeros((2, 5, 1))
    before = model.get_weights()
    model.fit(tokens, labels, epochs=1, batch_size=2, verbose=0, shuffle=False)
    changed = model.get_weights()
    other = per_step_model()
    other.compile(optimizer="sgd", loss="binary_crossentropy")
    flipped = labels.copy()
    flipped[:, 3:] = 1.0  # different labels, but only on padded steps
    other.fit(tokens, flipped, epochs=1, batch_size=2, verbose=0, shuffle=False)
    for a, b in zip(changed, other.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)
    assert any(not np.array_equal(a, b) for a, b in zip(changed, before, strict=True))
