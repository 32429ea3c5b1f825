"""Training never fails silently: compile, a saturated sigmoid, interrupted steps, float16,
and arguments that are wrong get an error that names them."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import microtensor as mt
import nn
import optim
from microtensor.speedups import is_freed


def dense_model(name: str = "out", units: int = 1, activation: str = "sigmoid") -> nn.Model:
    inp = nn.Input(shape=(3,))
    return nn.Model(inp, nn.Dense(units, activation=activation, name=name)(inp))


def data(samples: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    x = generator.standard_normal((samples, 3)).astype(np.float32)
    return x, (x[:, :1] > 0).astype(np.float32)


# -- compile ------------------------------------------------------------------------------

def test_an_optimizer_holding_a_shared_layer_and_another_models_weights_is_refused():
    shared = nn.Dense(4, name="shared")
    inp_a, inp_b = nn.Input(shape=(3,)), nn.Input(shape=(3,))
    first = nn.Model(inp_a, nn.Dense(1, name="head_a")(shared(inp_a)))
    second = nn.Model(inp_b, nn.Dense(1, name="head_b")(shared(inp_b)))
    first.compile(optimizer=optim.Adam(lr=0.1), loss="mse")
    with pytest.raises(ValueError, match=r"updates weights that aren't this model's \(head_a/"):
        second.compile(optimizer=first.optimizer, loss="mse")
    assert second.optimizer is None


def test_an_optimizer_given_part_of_the_models_own_weights_is_accepted():
    model = dense_model()
    opt = optim.SGD([model.get_layer("out").bias], lr=0.1)  # fine-tune the bias only
    model.compile(optimizer=opt, loss="mse")
    kernel = model.get_layer("out").kernel.data.copy()
    model.fit(*data(), epochs=1, verbose=0)
    np.testing.assert_array_equal(model.get_layer("out").kernel.data, kernel)


@pytest.mark.parametrize(("arguments", "error", "message"), [
    (("adam", "binary_crossentropyy"), ValueError, "unknown loss 'binary_crossentropyy'"),
    ((5, "mse"), TypeError, "optimizer must be a name such as 'adam' or an optim optimizer, "
                            "got int 5"),
    (("adma", "mse"), ValueError, "unknown optimizer 'adma'"),
    (("adam", "mse", ["accuracyy"]), ValueError, "unknown metric 'accuracyy'"),
    (("adam", "mse", "accuracy"), TypeError, "metrics must be a list"),
])
def test_a_failed_compile_leaves_the_model_as_it_was(arguments, error, message):
    model = dense_model()
    trained = optim.Adam(lr=0.01)
    model.compile(optimizer=trained, loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(*data(), batch_size=8, epochs=1, verbose=0)      # 2 steps of state
    state, loss, metrics = trained.state_dict(), model.loss, model.compiled_metrics
    with pytest.raises(error, match=message):
        model.compile(*arguments)
    assert model.optimizer is trained and model.loss is loss
    assert model.compiled_metrics == metrics
    assert trained.lr == 0.01 and trained.state[0]["step"] == 2
    np.testing.assert_array_equal(trained.state_dict()["state.0.exp_avg"],
                                  state["state.0.exp_avg"])


# -- a saturated sigmoid with binary crossentropy ------------------------------------------

def saturated_model() -> nn.Model:
    model = dense_model()
    model.get_layer("out").bias.data[...] = 30.0   # sigmoid(30) is exactly 1.0 in float32
    return model


def test_a_saturated_sigmoid_gets_torchs_gradient_from_the_logits(torch):
    model = saturated_model()
    x, _ = data(8)
    y = np.zeros((8, 1), np.float32)
    loss = nn.losses.binary_crossentropy(y, model(x))
    loss.backward()

    kernel = torch.tensor(model.get_layer("out").kernel.data, requires_grad=True)
    bias = torch.tensor(model.get_layer("out").bias.data, requires_grad=True)
    logits = torch.tensor(x) @ kernel + bias
    want = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(y))
    want.backward()
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)       # about 30, not 16.118
    np.testing.assert_allclose(model.get_layer("out").bias.grad, bias.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(model.get_layer("out").kernel.grad, kernel.grad.numpy(),
                               rtol=1e-5)


def test_a_saturated_model_learns_and_evaluate_reads_the_logits_too(torch):
    model = saturated_model()
    x, _ = data(32)
    y = np.zeros((32, 1), np.float32)
    model.compile(optimizer=optim.Adam(lr=0.5), loss="binary_crossentropy")
    logits = torch.tensor(x) @ torch.tensor(model.get_layer("out").kernel.data) + 30.0
    want = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(y))
    assert model.evaluate(x, y) == pytest.approx(want.item(), rel=1e-5)
    history = model.fit(x, y, batch_size=8, epochs=30, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]


def test_a_saturated_recurrent_model_learns_though_its_step_frees_values():
    inp = nn.Input(shape=(12, 3))
    model = nn.Model(inp, nn.Dense(1, activation="sigmoid", name="out")(nn.LSTM(4)(inp)))
    model.get_layer("out").bias.data[...] = 30.0
    x = np.random.default_rng(1).standard_normal((16, 12, 3)).astype(np.float32)
    y = np.zeros((16, 1), np.float32)
    with mt.freeing_values():                                   # as in fit's step
        prediction = model(x)
    assert any(is_freed(t.data) for t in mt.topological_order(prediction))
    assert nn.losses.binary_crossentropy(y, prediction).item() > 25      # from the logits
    model.compile(optimizer=optim.Adam(lr=0.5), loss="binary_crossentropy")
    history = model.fit(x, y, batch_size=8, epochs=20, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]


def test_binary_crossentropy_of_plain_probabilities_keeps_keras_clipping():
    # Not a sigmoid's output: Keras's clipped formula, -log(1e-7) = 16.118 for a sure miss.
    loss = nn.losses.binary_crossentropy(np.zeros((1, 1)), mt.Tensor([[1.0]], dtype=np.float64))
    assert loss.item() == pytest.approx(-np.log(1e-7), rel=1e-6)


# -- interrupted steps ----------------------------------------------------------------------

def stepped_model() -> tuple[nn.Model, optim.Adam]:
    inp = nn.Input(shape=(4, 3))
    model = nn.Model(inp, nn.Dense(1, name="b")(nn.LSTM(2, name="a")(inp)))
    opt = optim.Adam(model.parameters(), lr=0.1)
    generator = np.random.default_rng(0)
    for _ in range(3):
        opt.zero_grad()
        (model(generator.standard_normal((5, 4, 3))) ** 2).mean().backward()
        opt.step()
    opt.zero_grad()
    (model(generator.standard_normal((5, 4, 3))) ** 2).mean().backward()
    return model, opt


def test_an_interruption_while_a_step_is_computed_changes_no_weight(monkeypatch):
    model, opt = stepped_model()
    weights, state = model.get_weights(), opt.state_dict()
    update, calls = optim.Adam._update, []

    def interrupted(self, param, grad, buffers):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return update(self, param, grad, buffers)
    monkeypatch.setattr(optim.Adam, "_update", interrupted)
    with pytest.raises(KeyboardInterrupt):
        opt.step()
    for got, want in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)
    assert [opt.state[i]["step"] for i in range(5)] == [3] * 5
    np.testing.assert_array_equal(opt.state_dict()["state.0.exp_avg"], state["state.0.exp_avg"])


def test_an_interruption_while_a_step_is_applied_applies_all_of_it(monkeypatch):
    model, opt = stepped_model()
    reference = optim.Adam(lr=0.1)
    reference.load_state_dict(opt.state_dict())
    copies = [mt.Tensor(p.data.copy(), requires_grad=True) for p in opt.params]
    for copy, p in zip(copies, opt.params, strict=True):
        copy.grad = p.grad.copy()
    reference.attach(copies)
    reference.step()                      # the step as it should land

    copyto, calls = np.copyto, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        copyto(*args, **kwargs)
        if len(calls) == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(np, "copyto", interrupted)
    with pytest.raises(KeyboardInterrupt):
        opt.step()
    monkeypatch.undo()
    for got, want in zip(opt.params, copies, strict=True):
        np.testing.assert_array_equal(got.data, want.data)
    assert [opt.state[i]["step"] for i in range(5)] == [4] * 5


def test_fit_that_raises_keeps_the_history_of_the_finished_epochs_on_the_model(monkeypatch):
    model = dense_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    step, calls = type(model).train_step, []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:             # 2 batches an epoch: the third epoch's first batch
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)
    monkeypatch.setattr(type(model), "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.fit(*data(), batch_size=8, epochs=5, verbose=0)
    assert model.history.epoch == [0, 1]
    assert len(model.history.history["loss"]) == 2


# -- float16 ---------------------------------------------------------------------------------

def test_float16_layers_are_refused_when_made():
    mt.set_default_dtype(np.float16)
    with pytest.raises(TypeError, match=r"dense_16 \(Dense\): layers keep float32 or float64 "
                                        r"weights, but the default dtype is float16"):
        nn.Dense(3, name="dense_16")


def test_float16_parameters_are_refused_by_the_optimizer():
    weight = mt.Tensor(np.zeros(3), requires_grad=True, dtype=np.float16, name="w16")
    with pytest.raises(TypeError, match=r"Adam: parameter w16 is float16"):
        optim.Adam([weight])


def test_a_layer_made_in_float32_refuses_to_build_in_float16():
    layer = nn.Dense(2)
    mt.set_default_dtype(np.float16)
    with pytest.raises(TypeError, match="default dtype is float16"):
        layer(np.zeros((1, 3)))
    assert not layer.built


# -- arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda m, x, y: m.fit(x, y, batch_size=4.0, verbose=0), ValueError,
     r"fit: batch_size must be a whole number >= 1, got 4\.0 \(a float: pass an int\)"),
    (lambda m, x, y: m.fit(x, y, epochs=2.0, verbose=0), ValueError,
     r"fit: epochs must be a whole number >= 0, got 2\.0"),
    (lambda m, x, y: m.predict(None), TypeError, r"predict: x is None"),
    (lambda m, x, y: m.fit(x, y, validation_data=(x,), verbose=0), ValueError,
     r"fit: validation_data must be a pair \(x_val, y_val\), got a tuple of 1 item"),
    (lambda m, x, y: m.fit(x, np.array(["cat", "dog"] * 8), verbose=0), TypeError,
     r"fit: y must hold numbers, got <U3 values such as \['cat', 'dog', 'cat'\]"),
    (lambda m, x, y: m.evaluate(x.astype(str), y), TypeError, r"evaluate: x must hold numbers"),
])
def test_bad_training_arguments_get_errors_naming_them(call, error, message):
    model = dense_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    weights = model.get_weights()
    x, y = data()
    with pytest.raises(error, match=message):
        call(model, x, y)
    for got, want in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: nn.Input(shape=(-1, 3)), r"Input: shape must hold positive integers .* \(-1, 3\)"),
    (lambda: nn.Input(shape=("a", 3)), r"Input: shape must hold positive integers"),
    (lambda: nn.Input(shape=(2.5,)), r"Input: shape must hold positive integers"),
    (lambda: nn.Embedding(2.7, 8, name="emb"),
     r"emb \(Embedding\): input_dim must be a positive integer, got 2\.7"),
    (lambda: nn.Embedding(10, "8", name="emb"), r"output_dim must be a positive integer"),
    (lambda: nn.Dense(2, use_bias="no", name="d"), r"d \(Dense\): use_bias must be True or "
                                                   r"False, got 'no'"),
    (lambda: nn.LSTM(2, return_sequences=1), r"return_sequences must be True or False, got 1"),
    (lambda: nn.GRU(2, reset_after=None), r"reset_after must be True or False"),
    (lambda: nn.Embedding(5, 2, mask_zero="yes"), r"mask_zero must be True or False"),
    (lambda: nn.Model(name=7), r"Model: name must be a string, got 7"),
])
def test_bad_layer_arguments_get_errors_naming_them(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


# -- layer names a model file can hold --------------------------------------------------------

@pytest.mark.parametrize(("name", "message"), [
    ("__optimizer__", r"starts with '__'"),
    ("__config__", r"starts with '__'"),
    ("a\0b", r"contains a NUL character"),
    ("\udc80", r"can't be written as UTF-8"),
    ("x" * 70_000, r"is longer than 1000 characters"),
])
def test_a_layer_name_a_model_file_could_not_give_back_is_refused(name, message):
    with pytest.raises(ValueError, match=message):
        nn.Dense(2, name=name)
    with pytest.raises(ValueError, match=message):
        nn.Input(shape=(3,), name=name)


def test_a_model_with_an_unused_input_saves_and_loads(tmp_path):
    used, unused = nn.Input(shape=(3,), name="used"), nn.Input(shape=(2,), name="unused")
    model = nn.Model([used, unused], nn.Dense(1, name="out")(used))
    model.save(tmp_path / "m.npz")
    loaded = nn.load_model(tmp_path / "m.npz")
    x = [np.ones((2, 3), np.float32), np.zeros((2, 2), np.float32)]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


# -- train/eval mode is per thread ------------------------------------------------------------

def test_predict_in_another_thread_leaves_training_mode_on_in_this_one():
    entered, release = threading.Event(), threading.Event()

    class Pause(nn.Layer):
        """Holds a predict running in another thread in the middle of its forward pass."""

        def forward(self, x):
            if threading.current_thread() is not threading.main_thread():
                entered.set()
                release.wait(10)
            return x

    inp = nn.Input(shape=(64,))
    model = nn.Model(inp, nn.Dropout(0.5, name="drop")(Pause(name="pause")(inp)))
    predicted = []
    other = threading.Thread(target=lambda: predicted.append(model.predict(np.ones((2, 64)))))
    other.start()
    try:
        assert entered.wait(10)
        assert model.get_layer("drop").training          # this thread: still training mode
        assert np.count_nonzero(model(np.ones((2, 64))).data == 0) > 0   # dropout is on
    finally:
        release.set()
        other.join(10)
    np.testing.assert_array_equal(predicted[0], np.ones((2, 64)))   # that thread: eval mode


def test_fit_runs_to_the_end_while_another_thread_predicts():
    inp = nn.Input(shape=(3,))
    model = nn.Model(inp, nn.Dense(1, activation="sigmoid")(nn.Dropout(0.2)(nn.Dense(8)(inp))))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = data(256)
    done, failures, predictions = threading.Event(), [], []

    def predicting() -> None:
        try:
            while not done.is_set():
                predictions.append(model.predict(x[:4]))
        except Exception as err:  # noqa: BLE001 - reported below
            failures.append(err)
    other = threading.Thread(target=predicting)
    other.start()
    try:
        history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    finally:
        done.set()
        other.join(10)
    assert not failures and len(history.history["loss"]) == 3 and predictions
