"""model.save / nn.load_model of a compiled model: the compile settings and the optimizer's
state come back, so training continues exactly where it stopped (as in Keras); custom
objects, damaged compile records and files of the first format are handled."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import microtensor as mt
import nn
import optim

OPTIMIZERS = {
    "adam": lambda: "adam",
    "adamw_amsgrad": lambda: optim.AdamW(lr=0.01, weight_decay=0.1, amsgrad=True),
    "sgd_nesterov": lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
    "rmsprop_centered": lambda: optim.RMSprop(lr=0.01, momentum=0.5, centered=True),
}


def small_model() -> nn.Model:
    inputs = nn.Input((5, 3), name="steps")
    x = nn.LSTM(4, name="memory")(inputs)
    outputs = nn.Dense(1, activation="sigmoid", name="verdict")(x)
    return nn.Model(inputs=inputs, outputs=outputs, name="small")


def data() -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(7)
    x = generator.standard_normal((12, 5, 3))
    return x, (x[:, :, 0].sum(axis=1) > 0).astype(np.float64)


def compiled(optimizer) -> nn.Model:
    nn.set_seed(3)
    model = small_model()
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    return model


def train(model: nn.Model, epochs: int) -> None:
    """``epochs`` × 3 optimizer steps, in a fixed order (shuffling would draw from the rng)."""
    x, y = data()
    model.fit(x, y, batch_size=4, epochs=epochs, shuffle=False, verbose=0)


def read_archive(path: pathlib.Path) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return json.loads(arrays.pop("__config__").tobytes()), arrays


def write_archive(path: pathlib.Path, config: dict, arrays: dict[str, np.ndarray]) -> None:
    np.savez(path, __config__=np.frombuffer(json.dumps(config).encode(), dtype=np.uint8),
             **arrays)


# -- training continues exactly ------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_training_resumed_from_a_file_equals_training_without_a_break(kind, dtype, tmp_path):
    mt.set_default_dtype(dtype)
    straight = compiled(OPTIMIZERS[kind]())
    train(straight, epochs=5)

    interrupted = compiled(OPTIMIZERS[kind]())
    train(interrupted, epochs=2)
    interrupted.save(tmp_path / "model.npz")
    resumed = nn.load_model(tmp_path / "model.npz")
    train(resumed, epochs=3)

    for got, want in zip(resumed.get_weights(), straight.get_weights(), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    x, y = data()
    assert resumed.evaluate(x, y) == straight.evaluate(x, y)


def test_a_loaded_model_has_the_same_compile_settings_and_optimizer_state(tmp_path):
    model = compiled(optim.Adam(lr=0.02, betas=(0.8, 0.99), eps=1e-7))
    train(model, epochs=1)
    model.optimizer.lr = 0.005                  # changed between steps: the current value counts
    model.save(tmp_path / "model.npz")
    loaded = nn.load_model(tmp_path / "model.npz")

    assert type(loaded.optimizer) is optim.Adam
    assert loaded.optimizer.hyperparameters == model.optimizer.hyperparameters
    assert loaded.optimizer.hyperparameters["lr"] == 0.005
    assert loaded.loss is nn.losses.binary_crossentropy
    assert loaded.compiled_metrics == model.compiled_metrics
    assert loaded.optimizer.params == loaded.parameters()
    state, expected = loaded.optimizer.state_dict(), model.optimizer.state_dict()
    assert sorted(state) == sorted(expected)
    assert state["state.0.step"] == 3 and isinstance(state["state.0.step"], int)
    for key, value in expected.items():
        np.testing.assert_array_equal(state[key], value)


def test_a_model_compiled_but_not_trained_loads_compiled(tmp_path):
    model = compiled("sgd")
    model.save(tmp_path / "model.npz")
    loaded = nn.load_model(tmp_path / "model.npz")
    assert type(loaded.optimizer) is nn.optimizers.SGD and loaded.optimizer.state == {}
    train(loaded, epochs=1)


def test_an_optimizer_for_part_of_the_model_keeps_its_parameters(tmp_path):
    nn.set_seed(3)
    model = small_model()
    dense = [p for name, p in model.named_parameters() if name.startswith("verdict/")]
    model.compile(optimizer=optim.Adam(dense, lr=0.01), loss="binary_crossentropy")
    train(model, epochs=1)
    model.save(tmp_path / "model.npz")
    loaded = nn.load_model(tmp_path / "model.npz")
    named = dict(loaded.named_parameters())
    assert loaded.optimizer.params == [named["verdict/kernel"], named["verdict/bias"]]
    lstm_before = loaded.get_weights()[:3]
    train(loaded, epochs=1)
    train(model, epochs=1)
    for got, want in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(loaded.get_weights()[:3], lstm_before, strict=True):
        np.testing.assert_array_equal(got, want)


# -- uncompiled models and custom objects ------------------------------------------------------

def test_an_uncompiled_model_loads_uncompiled(tmp_path):
    nn.set_seed(3)
    small_model().save(tmp_path / "model.npz")
    config, arrays = read_archive(tmp_path / "model.npz")
    assert "compile" not in config and not any(key.startswith("__optimizer__") for key in arrays)
    loaded = nn.load_model(tmp_path / "model.npz")
    assert loaded.optimizer is None and loaded.loss is None
    with pytest.raises(RuntimeError, match=r"compile"):
        loaded.fit(*data(), verbose=0)


def custom_loss(y_true, y_pred):
    return nn.losses.binary_crossentropy(y_true, y_pred)


def custom_metric(y_true, y_pred):
    return 0.0


class MyAdam(optim.Adam):
    pass


@pytest.mark.parametrize("settings, named", [
    ({"loss": custom_loss}, "loss 'custom_loss'"),
    ({"loss": "binary_crossentropy", "metrics": ["accuracy", custom_metric]},
     "metric 'custom_metric'"),
    ({"loss": "mse", "optimizer": MyAdam()}, "optimizer MyAdam"),
], ids=["loss", "metric", "optimizer"])
def test_custom_compile_objects_save_without_compile_settings_and_warn(settings, named, tmp_path):
    nn.set_seed(3)
    model = small_model()
    model.compile(**settings)
    train(model, epochs=1)
    with pytest.warns(UserWarning, match=rf"{named} can't be saved by name.*uncompiled"):
        model.save(tmp_path / "model.npz")
    loaded = nn.load_model(tmp_path / "model.npz")
    assert loaded.optimizer is None
    for got, want in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


# -- files that must be refused --------------------------------------------------------------

@pytest.fixture
def saved(tmp_path) -> pathlib.Path:
    model = compiled("adam")
    train(model, epochs=1)
    model.save(tmp_path / "model.npz")
    return tmp_path / "model.npz"


def _set(path: list, value):
    def change(config: dict, arrays: dict) -> None:
        *parents, last = path
        target = config
        for key in parents:
            target = target[key]
        target[last] = value
    return change


def _drop(path: list):
    def change(config: dict, arrays: dict) -> None:
        *parents, last = path
        target = config
        for key in parents:
            target = target[key]
        del target[last]
    return change


def _array(key: str, value):
    def change(config: dict, arrays: dict) -> None:
        arrays[key] = np.asarray(value)
    return change


def _no_compile(config: dict, arrays: dict) -> None:
    del config["compile"]


@pytest.mark.parametrize("change, message", [
    (_set(["compile", "optimizer", "class"], "Evil"), r"unknown optimizer class 'Evil'"),
    (_set(["compile", "optimizer", "class"], "os.system"), r"unknown optimizer class"),
    (_set(["compile", "optimizer", "class"], "Optimizer"), r"unknown optimizer class"),
    (_set(["compile", "optimizer", "class"], ["Adam"]), r"unknown optimizer class"),
    (_set(["compile", "optimizer", "config", "lr"], -1.0), r"lr must be a finite number >= 0"),
    (_set(["compile", "optimizer", "config", "momentum"], 0.9), r"unexpected key 'momentum'"),
    (_set(["compile", "optimizer", "config"], [1, 2]), r"TypeError"),
    (_set(["compile", "optimizer", "parameters"], ["nowhere/kernel"]), r"nowhere/kernel"),
    (_set(["compile", "loss"], "hinge"), r"unknown loss 'hinge'"),
    (_set(["compile", "metrics"], ["precision"]), r"unknown metric 'precision'"),
    (_set(["compile"], "adam"), r"no optimizer"),
    (_drop(["compile", "loss"]), r"KeyError: 'loss'"),
    (_array("__optimizer__/state.0.exp_avg", np.zeros((2, 2))), r"has shape \(2, 2\)"),
    (_array("__optimizer__/state.0.velocity", np.zeros(3)), r"unexpected key 'state.0.velocity'"),
    (_array("__optimizer__/state.0.step", np.arange(3)), r"step must be a whole number"),
    (_array("__optimizer__/state.9.step", 1), r"parameter 9"),
    (_no_compile, r"optimizer state but no compile settings"),
])
def test_a_bad_compile_record_raises_naming_the_file(saved, change, message):
    config, arrays = read_archive(saved)
    change(config, arrays)
    write_archive(saved, config, arrays)
    with pytest.raises(ValueError, match=r"load_model: '.*model\.npz' has a damaged compile "
                                         rf"record \(.*{message}"):
        nn.load_model(saved)


# -- files of the first format ------------------------------------------------------------------

def test_a_file_of_the_first_format_still_loads(tmp_path):
    """Version 1 wrote the architecture and the weights only, whether compiled or not."""
    model = compiled("adam")
    train(model, epochs=1)
    config = {**model.get_config(), "version": 1}
    assert "compile" not in config
    write_archive(tmp_path / "old.npz", config, model.state_dict())
    loaded = nn.load_model(tmp_path / "old.npz")
    assert loaded.optimizer is None
    for got, want in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_load_weights_takes_the_weights_of_a_compiled_save(saved):
    nn.set_seed(11)
    target = small_model()
    target.load_weights(saved)
    for got, want in zip(target.get_weights(), nn.load_model(saved).get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_an_uncompiled_save_is_written_in_the_first_format(tmp_path):
    """It holds nothing version 2 added, so a reader of version 1 can load it too."""
    nn.set_seed(3)
    small_model().save(tmp_path / "plain.npz")
    assert read_archive(tmp_path / "plain.npz")[0]["version"] == 1
    compiled("adam").save(tmp_path / "compiled.npz")
    assert read_archive(tmp_path / "compiled.npz")[0]["version"] == 2
