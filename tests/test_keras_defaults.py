"""What a Keras script gets without asking: optimizers named by a string train with Keras's
defaults and update rule, and ``layer.trainable = False`` freezes weights. Reference numbers
come from Keras 3 itself (torch backend) given the same weights."""

from __future__ import annotations

import numpy as np
import pytest

import nn
import optim


def keras_twin(keras, ours: nn.Model):
    """The same architecture in Keras, carrying ``ours``'s weights."""
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4), keras.layers.Dense(1)])
    model.set_weights(ours.get_weights())
    return model


def small_model(seed: int = 0) -> nn.Model:
    nn.set_seed(seed)
    return nn.Sequential([nn.Input((5, 3)), nn.LSTM(4), nn.Dense(1)])


def data(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    return (generator.normal(size=(24, 5, 3)).astype(np.float32),
            generator.normal(size=(24, 1)).astype(np.float32))


def fit_both(keras, optimizer, keras_optimizer, epochs: int = 3):
    """Our weights and Keras's after the same fit (no shuffling, batches of 8)."""
    ours = small_model()
    theirs = keras_twin(keras, ours)
    x, y = data()
    ours.compile(optimizer=optimizer, loss="mse")
    theirs.compile(optimizer=keras_optimizer, loss="mse")
    ours.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0)
    theirs.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0)
    return ours.get_weights(), theirs.get_weights()


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "sgd"])
def test_an_optimizer_named_in_compile_has_kerass_defaults(keras, name):
    ours = nn.optimizers.get(name).get_config()
    theirs = keras.optimizers.get(name).get_config()
    assert ours == {key: pytest.approx(theirs[key]) for key in ours}
    assert "learning_rate" in ours


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "sgd"])
def test_compile_with_an_optimizer_name_trains_as_keras_does(keras, name):
    ours, theirs = fit_both(keras, name, name)
    for got, want in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(got, want, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("options", [
    {"name": "Adam", "learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3},
    {"name": "Adam", "amsgrad": True, "weight_decay": 0.1},
    {"name": "AdamW", "learning_rate": 0.02, "weight_decay": 0.05},
    {"name": "RMSprop", "learning_rate": 0.01, "rho": 0.8, "momentum": 0.5, "centered": True},
    {"name": "SGD", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    {"name": "SGD", "learning_rate": 0.05, "weight_decay": 0.1},
])
def test_keras_optimizer_classes_update_as_kerass(keras, options):
    options = dict(options)
    name = options.pop("name")
    ours, theirs = fit_both(keras, getattr(nn.optimizers, name)(**options),
                            getattr(keras.optimizers, name)(**options))
    for got, want in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(got, want, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "RMSprop"])  # (SGD: lr=0.01, as documented)
def test_optim_classes_keep_torchs_names_and_defaults(torch, name):
    ours, theirs = getattr(optim, name)(), getattr(torch.optim, name)([torch.zeros(1)])
    defaults = theirs.defaults
    assert ours.lr == defaults["lr"]
    assert ours.weight_decay == defaults["weight_decay"]
    if "eps" in defaults:
        assert ours.eps == defaults["eps"]
    if "alpha" in defaults:
        assert ours.alpha == defaults["alpha"]


def test_keras_optimizers_answer_to_kerass_attribute_names():
    opt = nn.optimizers.RMSprop(learning_rate=0.01)
    assert (opt.learning_rate, opt.rho, opt.epsilon) == (0.01, 0.9, 1e-7)
    opt.learning_rate = 0.5
    assert opt.lr == 0.5
    adam = nn.optimizers.Adam(beta_1=0.8)
    assert (adam.beta_1, adam.beta_2) == (0.8, 0.999)
    with pytest.raises(ValueError, match="clipnorm= is not supported"):
        nn.optimizers.Adam(clipnorm=1.0)


def test_a_keras_optimizer_survives_save_and_load(tmp_path):
    model = small_model()
    model.compile(optimizer="rmsprop", loss="mse")
    model.fit(*data(), epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = nn.load_model(tmp_path / "m.npz")
    assert type(loaded.optimizer) is nn.optimizers.RMSprop
    assert loaded.optimizer.get_config() == model.optimizer.get_config()


# -- trainable = False ----------------------------------------------------------------------

def frozen_model() -> nn.Model:
    model = small_model()
    model.layers[0].trainable = False  # the LSTM
    return model


def test_a_frozen_layer_keeps_its_weights_through_fit():
    model = frozen_model()
    before = model.get_weights()
    model.compile(optimizer="adam", loss="mse")
    model.fit(*data(), epochs=2, verbose=0)
    after = model.get_weights()
    for frozen in range(3):  # kernel, recurrent_kernel, bias of the LSTM
        np.testing.assert_array_equal(after[frozen], before[frozen])
    assert not np.array_equal(after[3], before[3])  # the Dense trained


def test_summary_and_weight_lists_count_a_frozen_layer_as_keras_does(keras):
    model = frozen_model()
    lines = []
    model.summary(print_fn=lines.append)
    theirs = keras_twin(keras, model)
    theirs.layers[0].trainable = False
    trainable = sum(int(np.prod(w.shape)) for w in theirs.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in theirs.non_trainable_weights)
    assert f"Trainable params: {trainable:,}" in lines
    assert f"Non-trainable params: {frozen:,}" in lines
    assert [w.shape for w in model.trainable_weights] == [
        tuple(w.shape) for w in theirs.trainable_weights]
    assert [w.shape for w in model.non_trainable_weights] == [
        tuple(w.shape) for w in theirs.non_trainable_weights]
    assert len(model.weights) == len(theirs.weights)


def test_freezing_the_whole_model_and_thawing_one_layer():
    model = small_model()
    model.trainable = False
    assert model.trainable_weights == []
    model.layers[1].trainable = True
    assert [w.name for w in model.trainable_weights] == [w.name for w in model.layers[1].weights]


def test_a_layer_frozen_before_it_is_built_makes_frozen_weights():
    dense = nn.Dense(2)
    dense.trainable = False
    dense(np.zeros((1, 3)))
    assert dense.trainable_weights == [] and len(dense.non_trainable_weights) == 2
