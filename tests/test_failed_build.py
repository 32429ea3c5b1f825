"""A call that fails leaves nothing half-built (API.md, Errors): the layers it built are unbuilt
again, the layers built before keep their weights, and a corrected call works as if the failed
one never happened."""

from __future__ import annotations

import numpy as np
import pytest

import microtensor as mt
import nn


class ShapeCheckedAfterBuild(nn.Dense):
    """A Dense whose build succeeds, then whose forward refuses more than 4 samples:
    a layer that fails on shape only after its weights exist."""

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        if x.shape[0] > 4:
            raise ValueError(f"{self.name}: at most 4 samples, got shape {x.shape}")
        return super().forward(x)

    def compute_output_shape(self, input_shape):
        if input_shape[-1] == 3:
            raise ValueError(f"{self.name}: 3 features are not supported")
        return super().compute_output_shape(input_shape)


def assert_unbuilt(*layers: nn.Layer) -> None:
    for layer in layers:
        assert not layer.built, layer.name
        assert layer.parameters() == [] and layer.input_shape is None, layer.name
        assert not hasattr(layer, "kernel"), layer.name


def same(tensors, others) -> bool:
    return [id(t) for t in tensors] == [id(t) for t in others]


def test_sequential_whose_later_layer_fails_takes_a_corrected_input():
    a, b = nn.Dense(4, name="a"), nn.LSTM(2, name="b")
    model = nn.Sequential([a, b])
    with pytest.raises(ValueError, match=r"b \(LSTM\)"):
        model(np.zeros((10, 3)))
    assert not model.built
    assert_unbuilt(a, b)
    assert model(np.zeros((10, 5, 7))).shape == (10, 2)
    assert a.kernel.shape == (7, 4) and model.count_params() == 7 * 4 + 4 + 4 * 2 * (4 + 2 + 1)


def test_sequential_build_add_and_nn_input_roll_back_what_they_built():
    a, b = nn.Dense(4, name="a"), nn.LSTM(2, name="b")
    with pytest.raises(ValueError, match="b"):
        nn.Sequential([nn.Input((3,)), a, b])  # a is built by one add(), b fails in the next
    assert_unbuilt(a, b)

    model = nn.Sequential([a, b])
    with pytest.raises(ValueError, match="b"):
        model.build((None, 3))
    with pytest.raises(ValueError, match="b"):
        model.build_for_data((10, 3))
    assert not model.built and model.layers_without_input == [a, b]
    assert_unbuilt(a, b)
    model.build((None, 5, 7))
    assert model.output_shape == (None, 2) and a.kernel.shape == (7, 4)


def test_a_failed_add_keeps_the_model_and_its_weights_as_they_were():
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((5, 7)), nn.LSTM(3, name="c")])
    before = model.get_weights()
    x = np.random.default_rng(0).standard_normal((2, 5, 7)).astype(np.float32)
    output = model(x).data
    stray = nn.LSTM(2, name="d")
    with pytest.raises(ValueError, match=r"d \(LSTM\)"):
        model.add(stray)  # c returns (batch, 3): no timesteps axis
    assert_unbuilt(stray)
    assert model.layers_without_input == [model.get_layer("c")]
    assert [layer.name for layer in model.layers] == ["c"]  # as Keras: no InputLayer
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_array_equal(model(x).data, output)
    model.add(nn.Dense(1, name="e"))
    assert model(x).shape == (2, 1)


def test_weights_built_before_a_failed_call_stay_exactly_as_they_were():
    a, b = nn.Dense(4, name="a"), nn.LSTM(2, name="b")
    a(np.zeros((1, 5, 7)))  # built before, on its own
    a.kernel.data[...] = 0.5
    kernel, bias = a.kernel, a.bias
    model = nn.Sequential([a, nn.Dense(3, name="between"), b])
    with pytest.raises(ValueError, match=r"b \(LSTM\)"):
        model(np.zeros((10, 7)))
    assert a.built and a.kernel is kernel and a.bias is bias
    np.testing.assert_array_equal(a.kernel.data, np.full((7, 4), 0.5, dtype=np.float32))
    assert_unbuilt(model.layers_without_input[1], b)
    assert model(np.zeros((10, 5, 7))).shape == (10, 2)
    assert model.parameters()[0] is kernel and model.parameters()[1] is bias


def test_a_layer_whose_forward_fails_after_build_is_left_unbuilt():
    layer = ShapeCheckedAfterBuild(2, name="picky")
    with pytest.raises(ValueError, match="picky: at most 4 samples"):
        layer(np.zeros((10, 6)))
    assert_unbuilt(layer)
    assert layer(np.zeros((4, 5))).shape == (4, 2)
    assert layer.kernel.shape == (5, 2)


def test_a_functional_chain_keeps_every_call_whole():
    """Each layer call on nn.Input is all or nothing: the failing call leaves its layer unbuilt
    (a Bidirectional, its two copies too); the calls before it stay as they were."""
    a, picky = nn.Dense(3, name="a"), ShapeCheckedAfterBuild(2, name="picky")
    inputs = nn.Input((5, 7))
    hidden = a(inputs)
    kernel = a.kernel.data.copy()
    with pytest.raises(ValueError, match="picky: 3 features"):
        picky(hidden)
    assert_unbuilt(picky)
    np.testing.assert_array_equal(a.kernel.data, kernel)
    model = nn.Model(inputs, picky(nn.Dense(6, name="wider")(hidden)))
    assert model(np.zeros((2, 5, 7))).shape == (2, 5, 2)
    assert picky.kernel.shape == (6, 2)

    class Refusing(nn.LSTM):
        def compute_output_shape(self, input_shape):
            raise ValueError(f"{self.name}: no shape")

    both = nn.Bidirectional(Refusing(2, name="inner"), name="both")
    with pytest.raises(ValueError, match="no shape"):
        both(hidden)
    assert_unbuilt(both, both.forward_layer, both.backward_layer)


def test_fit_whose_first_call_fails_builds_afresh_on_a_corrected_call():
    model = nn.Sequential([nn.Dense(4, name="a"), nn.LSTM(2, name="b"), nn.Dense(1, name="c")])
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match=r"b \(LSTM\)"):
        model.fit(np.zeros((8, 3)), np.zeros((8, 1)), verbose=0)
    assert not model.built and model.optimizer.params is None
    # Built from x, then the loss refuses y's shape in the first step: taken back too.
    with pytest.raises(ValueError, match="mse"):
        model.fit(np.zeros((8, 5, 3)), np.zeros((8, 2, 2)), verbose=0)
    assert not model.built and model.optimizer.params is None
    assert_unbuilt(*model.layers_without_input)

    history = model.fit(np.ones((8, 5, 7)), np.ones((8, 1)), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert same(model.optimizer.params, model.parameters())
    assert model.layers_without_input[0].kernel.shape == (7, 4)


def test_evaluate_on_an_unbuilt_model_that_fails_leaves_it_unbuilt():
    model = nn.Sequential([nn.Dense(4, name="a"), nn.LSTM(2, name="b"), nn.Dense(1, name="c")])
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="mse"):  # built from x, then y's shape is refused
        model.evaluate(np.zeros((8, 5, 3)), np.zeros((8, 2, 2)))
    assert not model.built
    assert_unbuilt(*model.layers_without_input)
    assert np.isfinite(model.evaluate(np.ones((8, 5, 7)), np.ones((8, 1))))


def test_a_failure_after_the_first_step_keeps_the_trained_model():
    nn.set_seed(0)
    model = nn.Sequential([nn.LSTM(2, name="b"), nn.Dense(1, name="c")])
    model.compile(optimizer="adam", loss="mse", metrics=["accuracy"])
    model.compiled_metrics = [("broken", lambda y, p: 1 / 0)]  # fails after the first step
    with pytest.raises(ZeroDivisionError):
        model.fit(np.ones((8, 5, 7)), np.ones((8, 1)), verbose=0)
    assert not model.built  # the first step was not finished: taken back
    model.compiled_metrics = []
    model.fit(np.ones((8, 5, 7)), np.ones((8, 1)), batch_size=4, verbose=0)
    trained = model.get_weights()
    model.compiled_metrics = [("broken", lambda y, p: 1 / 0)]
    with pytest.raises(ZeroDivisionError):
        model.fit(np.ones((8, 5, 7)), np.ones((8, 1)), verbose=0)
    assert model.built and model.optimizer.params == model.parameters()
    assert not all(np.array_equal(t, w) for t, w in zip(trained, model.get_weights(),
                                                         strict=True))  # one more step taken


def test_count_params_of_an_unbuilt_sequential_names_the_model():
    model = nn.Sequential([nn.Dense(4), nn.LSTM(2)], name="stack")
    with pytest.raises(RuntimeError, match="stack: count_params.. needs a built model"):
        model.count_params()
    model.build((None, 5, 7))
    assert model.count_params() == 7 * 4 + 4 + 4 * 2 * (4 + 2 + 1)
