"""Keras's callbacks in fit, and model files: what Keras scripts pass to fit and save."""

from __future__ import annotations

import numpy as np
import pytest

import nn


def model_and_data():
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((4, 2)), nn.LSTM(3), nn.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(32, 4, 2)).astype(np.float32)
    return model, x, (x[:, 0, 0] > 0).astype(np.float32)


def test_lambda_callback_sees_every_hook_in_kerass_order():
    model, x, y = model_and_data()
    seen = []
    hooks = nn.callbacks.LambdaCallback(
        on_train_begin=lambda logs: seen.append("train_begin"),
        on_epoch_begin=lambda epoch, logs: seen.append(f"epoch_begin {epoch}"),
        on_batch_end=lambda batch, logs: seen.append(f"batch_end {batch} {sorted(logs)}"),
        on_epoch_end=lambda epoch, logs: seen.append(f"epoch_end {epoch} {sorted(logs)}"),
        on_train_end=lambda logs: seen.append("train_end"))
    history = model.fit(x, y, batch_size=16, epochs=2, validation_split=0.5, verbose=0,
                        callbacks=[hooks])
    assert seen == ["train_begin", "epoch_begin 0", "batch_end 0 ['accuracy', 'loss']",
                    "epoch_end 0 ['accuracy', 'loss', 'val_accuracy', 'val_loss']",
                    "epoch_begin 1", "batch_end 0 ['accuracy', 'loss']",
                    "epoch_end 1 ['accuracy', 'loss', 'val_accuracy', 'val_loss']", "train_end"]
    assert history is model.history and history.epoch == [0, 1]


def test_model_checkpoint_saves_the_best_epochs(tmp_path):
    model, x, y = model_and_data()
    checkpoint = nn.callbacks.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}.npz"),
                                              monitor="loss", save_best_only=True)
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[checkpoint])
    losses = history.history["loss"]
    best_so_far = [i for i, loss in enumerate(losses) if loss == min(losses[:i + 1])]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"m-{i + 1:02d}.npz"
                                                          for i in best_so_far]
    reloaded = nn.load_model(tmp_path / f"m-{best_so_far[-1] + 1:02d}.npz")
    np.testing.assert_allclose(reloaded.predict(x), model.predict(x), atol=1e-6)


def test_terminate_on_nan_stops_and_keeps_the_last_good_weights():
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((2,)), nn.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
    y = x.sum(axis=1)
    x[20:] = 1e30  # the third batch of 8: its squared error overflows to inf
    with pytest.raises(FloatingPointError):
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    before = model.get_weights()
    history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                        callbacks=[nn.callbacks.TerminateOnNaN()])
    assert len(history.epoch) == 1 and model.stop_training
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert not all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(),
                                                          strict=True))


def test_early_stopping_auto_mode_reads_the_metric_name():
    assert nn.callbacks.EarlyStopping(monitor="val_loss").minimize
    assert not nn.callbacks.EarlyStopping(monitor="val_accuracy").minimize
    with pytest.raises(ValueError, match="mode='min' or mode='max'"):
        nn.callbacks.EarlyStopping(monitor="f1")


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "weights.weights.h5"])
def test_kerass_file_names_are_refused_not_filled_with_npz(tmp_path, name):
    model, _, _ = model_and_data()
    with pytest.raises(ValueError, match=r"can't write Keras's format.*\.npz"):
        model.save(tmp_path / name)
    with pytest.raises(ValueError, match="Keras file"):
        nn.callbacks.ModelCheckpoint(str(tmp_path / name))
    assert not list(tmp_path.iterdir())
    (tmp_path / name).write_bytes(b"PK")
    with pytest.raises(ValueError, match="is a Keras file"):
        nn.load_model(tmp_path / name)
