"""Edge cases a careful library gets right: nothing half-applied, nothing silently wrong."""

from __future__ import annotations

import numpy as np
import pytest

import microtensor as mt
import nn
import optim


def small_model(name_a: str = "a", name_b: str = "b") -> nn.Model:
    inp = nn.Input(shape=(4, 3))
    return nn.Model(inp, nn.Dense(1, name=name_b)(nn.LSTM(2, name=name_a)(inp)))


def test_set_weights_with_an_unconvertible_array_changes_nothing():
    model = small_model()
    before = model.get_weights()
    bad = [w + 1 for w in before]
    bad[-1] = np.full(before[-1].shape, "x")
    with pytest.raises(ValueError, match="weight b/bias: can't convert"):
        model.set_weights(bad)
    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_two_layers_with_one_name_are_refused():
    inp = nn.Input(shape=(3,))
    twice = nn.Dense(3, name="d")(nn.Dense(3, name="d")(inp))
    with pytest.raises(ValueError, match="layer names must be unique.*'d'"):
        nn.Model(inp, twice)


def test_a_float_scalar_does_not_truncate_an_integer_tensor():
    ints = mt.Tensor([1, 2], dtype=np.int64)
    np.testing.assert_array_equal((ints * 0.5).data, [0.5, 1.0])
    np.testing.assert_array_equal((ints + 1).data, [2, 3])
    assert (ints + 1).dtype == np.int64
    assert (mt.Tensor([1.0, 2.0]) * 0.5).dtype == np.float32


@pytest.mark.parametrize("scalar", [2, 2.0, np.float64(2), np.int64(2), np.float16(2)])
def test_any_scalar_keeps_a_float32_tensor_float32(scalar):
    x = mt.Tensor([[1.0, 2.0]], requires_grad=True)
    for result in (x ** scalar, x * scalar, scalar - x, x / scalar):
        assert result.dtype == np.float32
    (x ** scalar).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [[2.0, 4.0]])


def test_a_user_class_named_like_a_builtin_does_not_change_loading(tmp_path):
    model = small_model()
    path = tmp_path / "m.npz"
    model.save(path)

    class Dense(nn.Dense):  # noqa: F841 - defining it is the test
        def forward(self, x):
            raise AssertionError("the user's class must not be used by load_model")

    loaded = nn.load_model(path)
    x = np.ones((2, 4, 3), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_a_sequential_built_from_data_takes_other_sequence_lengths():
    model = nn.Sequential([nn.LSTM(3), nn.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((8, 6, 2)), np.zeros((8, 1)), epochs=1, verbose=0)
    assert model.predict(np.ones((2, 9, 2))).shape == (2, 1)
    with pytest.raises(ValueError, match=r"expects .*\(None, None, 2\)"):
        model.predict(np.ones((2, 9, 5)))


def test_an_optimizer_holding_another_models_weights_is_refused():
    first, second = small_model("a1", "b1"), small_model("a2", "b2")
    opt = optim.Adam(lr=0.1)
    first.compile(optimizer=opt, loss="mse")
    with pytest.raises(ValueError, match="updates weights that aren't this model's"):
        second.compile(optimizer=opt, loss="mse")


def test_sigmoid_is_exact_in_float32_far_into_the_negative_side():
    x = mt.Tensor([-20.0, -40.0, -88.0], dtype=np.float32)
    want = 1 / (1 + np.exp(np.array([20.0, 40.0, 88.0])))  # float64 by hand
    np.testing.assert_allclose(mt.sigmoid(x).data, want, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_sigmoid_of_very_negative_inputs_is_silent_and_right(dtype):
    x = np.array([-1e4, -800.0, -100.0, -20.0, -12.0, -3.0, 0.0, 30.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = mt.sigmoid(mt.Tensor(x, dtype=dtype)).data
    want = np.exp(-np.logaddexp(0.0, -x))  # float64, by another formula
    tiny = np.finfo(dtype).tiny  # below the smallest normal number only the scale matters
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want.astype(dtype), rtol=np.finfo(dtype).eps * 4,
                               atol=tiny)


def test_summary_counts_frozen_weights_as_non_trainable():
    model = small_model()
    model.get_layer("b").kernel.requires_grad = False  # 2 weights frozen
    lines = []
    model.summary(print_fn=lines.append)
    assert "Total params: 51" in lines  # LSTM 4·2·(3 + 2 + 1) = 48, Dense 2·1 + 1 = 3
    assert "Trainable params: 49" in lines
    assert "Non-trainable params: 2" in lines


def test_draw_works_for_inputs_of_any_length():
    inp = nn.Input(shape=(None, 2))
    model = nn.Model(inp, nn.LSTM(2, name="lstm")(inp))
    assert "lstm · t=3" in model.draw().source


def test_draw_checks_rankdir_at_both_levels():
    inp = nn.Input(shape=(3, 2))
    model = nn.Model(inp, nn.LSTM(2)(inp))
    for level in ("layer", "op"):
        with pytest.raises(ValueError, match="rankdir must be one of"):
            model.draw(level=level, rankdir="sideways")


def test_fit_and_predict_name_what_is_wrong_with_their_arguments():
    model = small_model()
    model.compile(optimizer="adam", loss="mse")
    x, y = np.ones((4, 4, 3)), np.zeros((4, 1))
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1, got 0"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="predict got no samples"):
        model.predict(np.ones((0, 4, 3)))
    with pytest.raises(ValueError, match=r"predict needs 1 input array\(s\), one per nn.Input, "
                                         "got a list of 2 arrays"):
        model.predict([x, x])
    with pytest.raises(ValueError, match=r"units must be a positive integer, got 2\.7"):
        nn.Dense(2.7)


def test_more_mistakes_are_named_where_they_happen(tmp_path):
    with pytest.raises(ValueError, match=r"dense_typo \(Dense\): unknown initializer 'glorot'"):
        nn.Dense(2, kernel_initializer="glorot", name="dense_typo")
    with pytest.raises(ValueError, match=r"dense_act \(Dense\): unknown activation 'gelu'"):
        nn.Dense(2, activation="gelu", name="dense_act")
    with pytest.raises(ValueError, match=r"gru_act \(GRU\): unknown activation 'hard_sigmoid'"):
        nn.GRU(2, recurrent_activation="hard_sigmoid", name="gru_act")
    with pytest.raises(mt.ShapeError, match="mean: .* hold no elements"):
        mt.Tensor(np.ones((0, 3))).mean()
    with pytest.raises(IndexError, match="must hold integers or booleans, got float32"):
        mt.Tensor(np.ones((4, 2)))[mt.Tensor([0, 1])]
    np.testing.assert_array_equal(
        mt.Tensor(np.arange(8.0).reshape(4, 2))[mt.Tensor([3, 0], dtype=np.int64)].data,
        [[6.0, 7.0], [0.0, 1.0]])


def test_a_saved_file_with_a_bad_dtype_record_is_a_clear_error(tmp_path):
    import json

    model = small_model()
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    config = json.loads(arrays["__config__"].tobytes().decode())
    config["dtype"] = "int32"
    arrays["__config__"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="damaged architecture record"):
        nn.load_model(tmp_path / "bad.npz")
    assert mt.get_default_dtype() == np.float32


def test_a_model_with_several_inputs_fits_evaluates_and_predicts():
    nn.set_seed(0)
    sequence, h0, c0 = nn.Input(shape=(4, 3)), nn.Input(shape=(2,)), nn.Input(shape=(2,))
    hidden = nn.LSTM(2, name="lstm")(sequence, initial_state=[h0, c0])
    model = nn.Model([sequence, h0, c0], nn.Dense(1, name="out")(hidden))
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(20, 4, 3)), rng.normal(size=(20, 2)), rng.normal(size=(20, 2))]
    y = x[0].sum(axis=(1, 2))[:, None]
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, epochs=2, batch_size=5, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "val_loss"}
    assert model.predict(x).shape == (20, 1)
    np.testing.assert_allclose(model.predict(x, batch_size=7), model(x).data, rtol=1e-5)
    assert np.isfinite(model.evaluate(x, y))
    with pytest.raises(ValueError, match=r"needs 3 input array\(s\)"):
        model.predict(x[0])
    wrong_width = r"x has shape \(20, 3\) but the model expects \(None, 2\)"
    with pytest.raises(ValueError, match=wrong_width):
        model.fit([x[0], x[0][:, 0], x[2]], y, verbose=0)


def test_draw_without_data_shows_the_steps_of_a_masked_model():
    inp = nn.Input((4,))
    embedded = nn.Embedding(5, 2, mask_zero=True, name="embedding")(inp)
    model = nn.Model(inp, nn.Dense(1)(nn.GRU(3, name="gru")(embedded)))
    source = model.draw().source  # a default sample of zeros would be all padding
    assert "gru · t=1" in source and "gru · t=4" in source


def test_draw_names_what_it_cannot_do():
    first, second = nn.Input((3,)), nn.Input((3,))
    shared = nn.Dense(2)
    model = nn.Model([first, second], [shared(first), shared(second)], name="two")
    with pytest.raises(ValueError, match="two: draw.. draws the graph of one output.*has 2"):
        model.draw()
    with pytest.raises(TypeError, match=r"two: draw\(level='layer'\) takes rankdir only; "
                                        r"max_steps, show_shapes belong to level='op'"):
        model.draw(level="layer", show_shapes=False, max_steps=1)


def test_the_op_graph_names_each_model_input_after_its_nn_input():
    steps, h0, c0 = nn.Input((5, 2), name="steps"), nn.Input((3,), name="h0"), nn.Input((3,),
                                                                                     name="c0")
    model = nn.Model([steps, h0, c0], nn.LSTM(3)(steps, initial_state=[h0, c0]))
    source = model.draw(max_steps=1).source
    assert 'label="h0 (1, 3)"' in source and 'label="c0 (1, 3)"' in source


def test_the_op_graph_says_which_data_enters_a_recurrent_layer():
    steps = nn.Input((5, 2), name="steps")
    model = nn.Model(steps, nn.Bidirectional(nn.LSTM(3), name="bi")(steps))
    source = model.draw(max_steps=1).source
    assert 'label="steps as time steps:\\n(T, batch, features) (5, 1, 2)"' in source
    assert 'label="steps, reversed as time steps:\\n(T, batch, features) (5, 1, 2)"' in source
