"""Metrics as Keras computes them: masked steps don't count, "accuracy" is chosen from the
shapes, binary_accuracy compares labels exactly, evaluate averages batch by batch, and a model
with several outputs is refused by fit/evaluate with a clear message.

Every expected number is computed here with plain numpy from ``predict``'s output and the
labels, following Keras's documented rule (keras/engine/compile_utils.py, keras/metrics).
"""

from __future__ import annotations

import numpy as np
import pytest

import microtensor as mt
import nn
import optim

EPSILON = 1e-7  # Keras's backend epsilon, the clip of probabilities in crossentropy

# Five padded token sequences; with batch_size=2 the batches are rows (0, 1), (2, 3), (4,),
# holding 5, 7 and 2 real steps.
TOKENS = np.array([[3, 1, 2, 0, 0, 0],
                   [5, 4, 0, 0, 0, 0],
                   [1, 1, 1, 1, 1, 2],
                   [6, 0, 0, 0, 0, 0],
                   [2, 3, 0, 0, 0, 0]])
KEPT = TOKENS != 0
BATCHES = [slice(0, 2), slice(2, 4), slice(4, 5)]


def per_step_model(mask_zero: bool = True) -> nn.Model:
    """Embedding → LSTM(return_sequences=True) → Dense(1, sigmoid): one answer per step."""
    mt.set_default_dtype(np.float64)
    nn.set_seed(0)
    inp = nn.Input(shape=(6,))
    x = nn.Embedding(7, 4, mask_zero=mask_zero)(inp)
    x = nn.LSTM(3, return_sequences=True)(x)
    return nn.Model(inp, nn.Dense(1, activation="sigmoid")(x), name="tagger")


def step_labels(p: np.ndarray) -> np.ndarray:
    """Labels (5, 6, 1): about half right at real steps, all wrong at padded ones."""
    guess = (p > 0.5).astype(np.float64)
    right = np.random.default_rng(4).random(p.shape) < 0.5
    labels = np.where(right, guess, 1.0 - guess)
    labels[~KEPT] = 1.0 - guess[~KEPT]
    return labels[..., None]


def bce(labels: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPSILON, 1 - EPSILON)
    return -(labels * np.log(q) + (1 - labels) * np.log(1 - q))


def lr_zero() -> optim.SGD:
    """fit without changing the weights: every batch sees the predictions ``predict`` gives."""
    return optim.SGD(lr=0.0)


# -- 1. metrics count unmasked steps only ------------------------------------------------------

def test_evaluate_accuracy_counts_only_unmasked_steps():
    model = per_step_model()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    p = model.predict(TOKENS)[..., 0]
    labels = step_labels(p)
    hits = (p > 0.5) == (labels[..., 0] == 1)
    expected = hits[KEPT].mean()  # Keras: the mask is the metric's sample_weight
    assert not np.isclose(expected, hits.mean())
    for batch_size in (32, 2):
        _, accuracy = model.evaluate(TOKENS, labels, batch_size=batch_size)
        assert np.isclose(accuracy, expected, rtol=1e-12)


def test_fit_logs_and_validation_count_only_unmasked_steps():
    model = per_step_model()
    model.compile(optimizer=lr_zero(), loss="binary_crossentropy", metrics=["accuracy"])
    p = model.predict(TOKENS)[..., 0]
    labels = step_labels(p)
    expected = ((p > 0.5) == (labels[..., 0] == 1))[KEPT].mean()
    history = model.fit(TOKENS, labels, batch_size=2, epochs=1, shuffle=False, verbose=0,
                        validation_data=(TOKENS, labels)).history
    # Keras's metric objects add up hits and counted steps over all batches of the epoch.
    assert np.isclose(history["accuracy"][0], expected, rtol=1e-12)
    assert np.isclose(history["val_accuracy"][0], expected, rtol=1e-12)


# -- 2. "accuracy" chosen from the shapes ------------------------------------------------------

def dense_model(units: int, activation: str) -> nn.Model:
    mt.set_default_dtype(np.float64)
    nn.set_seed(3)
    inp = nn.Input(shape=(4,))
    return nn.Model(inp, nn.Dense(units, activation=activation)(inp), name="classifier")


def features() -> np.ndarray:
    return np.random.default_rng(5).standard_normal((8, 4))


def labels_three_right(p: np.ndarray) -> np.ndarray:
    """One-hot labels: the predicted class for the first three rows, another one after."""
    classes = np.argmax(p, axis=-1)
    classes[3:] = (classes[3:] + 1) % p.shape[-1]
    return np.eye(p.shape[-1])[classes]


@pytest.mark.parametrize("loss, activation", [("mse", "softmax"),
                                              ("binary_crossentropy", "sigmoid")])
def test_accuracy_of_three_units_and_one_hot_labels_is_categorical_whatever_the_loss(
        loss, activation):
    model = dense_model(3, activation)
    model.compile(optimizer=lr_zero(), loss=loss, metrics=["accuracy"])
    x = features()
    p = model.predict(x)
    y = labels_three_right(p)
    # Keras: y_pred's last dim is 3 (not binary), y_true has its rank and last dim 3 (not
    # sparse): categorical accuracy, the argmaxes compared.
    expected = np.mean(np.argmax(y, axis=-1) == np.argmax(p, axis=-1))
    elementwise = np.mean((p > 0.5) == (y == 1))  # what binary accuracy would say
    assert not np.isclose(expected, elementwise)
    _, accuracy = model.evaluate(x, y, batch_size=3)
    assert np.isclose(accuracy, expected, rtol=1e-12)
    history = model.fit(x, y, batch_size=3, epochs=1, shuffle=False, verbose=0).history
    assert list(history) == ["loss", "accuracy"]
    assert np.isclose(history["accuracy"][0], expected, rtol=1e-12)


def test_accuracy_follows_keras_shape_rule_binary_sparse_categorical():
    p1 = np.array([[0.7], [0.2], [0.6], [0.4]])            # last dim 1: binary
    y1 = np.array([1.0, 1.0, 0.0, 0.0])
    p3 = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    classes = np.array([1, 1, 2, 0])
    binary = np.mean((p1[:, 0] > 0.5).astype(y1.dtype) == y1)
    sparse = np.mean(classes == np.argmax(p3, axis=-1))
    categorical = np.mean(np.argmax(np.eye(3)[classes], axis=-1) == np.argmax(p3, axis=-1))
    cases = [(y1, p1, binary), (y1[:, None], p1, binary),                # binary
             (classes, p3, sparse), (classes[:, None], p3, sparse),      # sparse
             (np.eye(3)[classes], p3, categorical)]                      # categorical
    for y, p, expected in cases:
        assert np.isclose(nn.metrics.accuracy(y, p), expected)
    # Binary even when the labels have a lower rank: the prediction's last dim is checked first.
    assert nn.metrics.accuracy_for_shapes((4,), (4, 1)) is nn.metrics.binary_accuracy
    assert nn.metrics.accuracy_for_shapes((4, 1), (4, 3)) is nn.metrics.sparse_categorical_accuracy
    assert nn.metrics.accuracy_for_shapes((4, 3), (4, 3)) is nn.metrics.categorical_accuracy


def test_acc_keeps_its_name_and_a_saved_model_still_chooses_by_shape(tmp_path):
    model = dense_model(3, "softmax")
    model.compile(optimizer=lr_zero(), loss="mse", metrics=["acc", "binary_accuracy"])
    x = features()
    p = model.predict(x)
    y = labels_three_right(p)
    history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history
    assert list(history) == ["loss", "acc", "binary_accuracy"]   # Keras names it as written
    categorical = np.mean(np.argmax(y, axis=-1) == np.argmax(p, axis=-1))
    binary = np.mean((p > 0.5).astype(y.dtype) == y)
    assert np.isclose(history["acc"][0], categorical, rtol=1e-12)
    assert np.isclose(history["binary_accuracy"][0], binary, rtol=1e-12)
    model.save(tmp_path / "model.npz")
    loaded = nn.load_model(tmp_path / "model.npz")
    assert loaded.compiled_metrics == model.compiled_metrics
    _, acc, bin_acc = loaded.evaluate(x, y)
    assert np.isclose(acc, categorical, rtol=1e-12) and np.isclose(bin_acc, binary, rtol=1e-12)


# -- 3. binary_accuracy compares the labels exactly --------------------------------------------

def test_binary_accuracy_compares_labels_exactly_as_keras():
    y_pred = np.array([[0.8], [0.1], [0.7], [0.6], [0.3]])
    soft = np.array([[0.9], [0.2], [1.0], [0.0], [0.0]])      # smoothed labels never match
    integer = np.array([[1], [0], [0], [1], [0]])
    for y_true in (soft, integer):
        expected = np.mean((y_pred > 0.5).astype(y_true.dtype) == y_true)
        assert np.isclose(nn.metrics.binary_accuracy(y_true, y_pred), expected)
    assert np.isclose(nn.metrics.binary_accuracy(soft, y_pred), 0.4)  # rows 2 and 4 only


def test_evaluate_binary_accuracy_with_smoothed_labels():
    mt.set_default_dtype(np.float64)
    nn.set_seed(1)
    inp = nn.Input(shape=(4,))
    model = nn.Model(inp, nn.Dense(1, activation="sigmoid")(inp))
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=["accuracy", "binary_accuracy"])
    x = features()
    p = model.predict(x)
    y = np.where((p > 0.5) == (np.arange(8) % 2 == 0)[:, None], 0.95, 0.05)  # smoothed
    y[:3] = (p[:3] > 0.5)                                           # three exact labels
    expected = np.mean((p > 0.5).astype(y.dtype) == y)
    assert not np.isclose(expected, np.mean((p > 0.5) == (y > 0.5)))
    _, accuracy, binary = model.evaluate(x, y, batch_size=3)
    assert np.isclose(accuracy, expected) and np.isclose(binary, expected)


# -- 4. evaluate and validation average batch by batch -----------------------------------------

def test_masked_evaluate_and_validation_loss_average_per_batch_weighted_by_size():
    model = per_step_model()
    model.compile(optimizer=lr_zero(), loss="binary_crossentropy")
    p = model.predict(TOKENS)[..., 0]
    labels = step_labels(p)
    per_step = bce(labels[..., 0], p)
    per_batch = [per_step[rows][KEPT[rows]].mean() for rows in BATCHES]
    sizes = [len(TOKENS[rows]) for rows in BATCHES]
    expected = np.average(per_batch, weights=sizes)   # Keras's loss tracker: Mean by batch size
    assert not np.isclose(expected, per_step[KEPT].mean(), rtol=1e-4)
    assert np.isclose(model.evaluate(TOKENS, labels, batch_size=2), expected, rtol=1e-12)
    history = model.fit(TOKENS, labels, batch_size=2, epochs=1, shuffle=False, verbose=0,
                        validation_data=(TOKENS, labels)).history
    assert np.isclose(history["val_loss"][0], expected, rtol=1e-12)
    assert np.isclose(history["loss"][0], expected, rtol=1e-12)  # fit's epoch mean agrees

    # Without a mask every position counts and nothing changes: one mean over all of them.
    plain = per_step_model(mask_zero=False)
    plain.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    q = plain.predict(TOKENS)[..., 0]
    loss, accuracy = plain.evaluate(TOKENS, labels, batch_size=2)
    assert np.isclose(loss, bce(labels[..., 0], q).mean(), rtol=1e-12)
    assert np.isclose(accuracy, np.mean((q > 0.5) == (labels[..., 0] == 1)), rtol=1e-12)


# -- 5. several outputs: a clear error from fit and evaluate -----------------------------------

def test_fit_and_evaluate_refuse_a_model_with_several_outputs():
    nn.set_seed(2)
    inp = nn.Input(shape=(4,))
    model = nn.Model(inp, [nn.Dense(1, name="score")(inp), nn.Dense(2, name="kind")(inp)],
                     name="two_heads")
    model.compile(optimizer="adam", loss="mse")
    x, y = features(), np.zeros((8, 1))
    message = (r"two_heads: (fit|evaluate) got a model with 2 outputs, but fit and evaluate "
               r"train one output with one loss \(predict works")
    before = model.get_weights()
    with pytest.raises(ValueError, match=message.replace("(fit|evaluate)", "fit")):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=message.replace("(fit|evaluate)", "evaluate")):
        model.evaluate(x, y)
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    score, kind = model.predict(x)
    assert score.shape == (8, 1) and kind.shape == (8, 2)
