"""compile / fit / evaluate / predict: learning a sequence task, equality with the hand-written
PyTorch-style loop, reproducibility, History and printing, NaN handling, input checks."""

from __future__ import annotations

import re

import numpy as np
import pytest

import microtensor as mt
import nn
import optim

TOKENS, STEPS = 7, 12
BATCH, EPOCHS, LR, VALIDATION = 32, 6, 0.01, 0.2


def sequence_task(samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One-hot token sequences (samples, STEPS, TOKENS); label 1 if a 1 comes before a 2.

    With 7 tokens about half the sequences are positive.
    """
    generator = np.random.default_rng(seed)
    tokens = generator.integers(0, TOKENS, size=(samples, STEPS))
    is_one, is_two = tokens == 1, tokens == 2
    first_one = np.where(is_one.any(axis=1), is_one.argmax(axis=1), STEPS)
    last_two = np.where(is_two.any(axis=1), STEPS - 1 - is_two[:, ::-1].argmax(axis=1), -1)
    labels = (first_one < last_two).astype(np.float32).reshape(-1, 1)
    return np.eye(TOKENS, dtype=np.float32)[tokens], labels


def classifier(units: int = 16, seed: int = 0) -> nn.Model:
    nn.set_seed(seed)
    return nn.Sequential([nn.Input((STEPS, TOKENS)), nn.LSTM(units),
                          nn.Dense(1, activation="sigmoid")])


def bce_by_hand(y: np.ndarray, p: np.ndarray) -> float:
    """Keras's binary crossentropy in plain numpy: probabilities clipped to [1e-7, 1 - 1e-7]."""
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    y = y.reshape(p.shape).astype(np.float64)
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def assert_weights_equal(actual: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_array_equal(a, e)


# -- learning, and fit == the PyTorch-style loop -------------------------------------------

@pytest.fixture(scope="module")
def sequence_run():
    """One fit on the sequence task, and the same run written out by hand."""
    x, y = sequence_task(1500)
    model = classifier()
    initial = model.get_weights()
    model.compile(optimizer=optim.Adam(lr=LR), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, validation_split=VALIDATION,
                        seed=1, verbose=0)

    by_hand = classifier(seed=99)
    by_hand.set_weights(initial)
    opt = optim.Adam(by_hand.parameters(), lr=LR)
    split = int(len(x) * (1 - VALIDATION))        # Keras holds out the last fraction
    x_train, y_train = x[:split], y[:split]
    generator = np.random.default_rng(1)
    epoch_losses = []
    for _ in range(EPOCHS):
        order = generator.permutation(split)
        total = 0.0
        for begin in range(0, split, BATCH):
            index = order[begin:begin + BATCH]
            xb, yb = x_train[index], y_train[index]
            loss = nn.losses.binary_crossentropy(yb, by_hand(xb))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(index)
        epoch_losses.append(total / split)
    return {"x": x, "y": y, "split": split, "model": model, "history": history,
            "by_hand": by_hand, "epoch_losses": epoch_losses}


def test_fit_learns_the_sequence_task(sequence_run):
    history = sequence_run["history"].history
    assert history["val_accuracy"][-1] >= 0.95
    assert history["loss"][-1] < history["loss"][0]


def test_fit_gives_the_same_weights_as_the_hand_written_loop(sequence_run):
    assert_weights_equal(sequence_run["model"].get_weights(),
                         sequence_run["by_hand"].get_weights())
    np.testing.assert_allclose(sequence_run["history"].history["loss"],
                               sequence_run["epoch_losses"], rtol=1e-12)


def test_validation_split_holds_out_the_last_samples(sequence_run):
    x, y, split = sequence_run["x"], sequence_run["y"], sequence_run["split"]
    history = sequence_run["history"].history
    probabilities = sequence_run["model"].predict(x[split:])
    accuracy = np.mean((probabilities > 0.5) == (y[split:] > 0.5))
    assert history["val_accuracy"][-1] == pytest.approx(accuracy, abs=1e-12)
    assert history["val_loss"][-1] == pytest.approx(bce_by_hand(y[split:], probabilities),
                                                    rel=1e-5)
    assert sequence_run["history"].params["samples"] == split


def test_history_has_loss_metrics_and_validation_per_epoch(sequence_run):
    history = sequence_run["history"]
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == EPOCHS for values in history.history.values())
    assert history.epoch == list(range(EPOCHS))
    assert all(0.0 <= a <= 1.0 for a in history.history["accuracy"])


# -- small fast models for the rest ----------------------------------------------------------

def small_data(samples: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x, y = sequence_task(samples, seed)
    return x[:, :5], y


def small_model(seed: int = 0, optimizer="adam", loss="binary_crossentropy",
                metrics=("accuracy",)) -> nn.Model:
    nn.set_seed(seed)
    model = nn.Sequential([nn.Input((5, TOKENS)), nn.LSTM(3), nn.Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics))
    return model


def test_same_seed_same_weights_and_history():
    x, y = small_data()
    runs = []
    for _ in range(2):
        model = small_model(seed=4)
        history = model.fit(x, y, batch_size=8, epochs=3, validation_split=0.25, seed=7,
                            verbose=0)
        runs.append((model.get_weights(), history.history))
    assert_weights_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]

    other = small_model(seed=4)
    other.fit(x, y, batch_size=8, epochs=3, validation_split=0.25, seed=8, verbose=0)
    assert not np.array_equal(other.get_weights()[0], runs[0][0][0])  # the order matters


def test_set_seed_alone_makes_fit_reproducible():
    x, y = small_data()
    runs = []
    for _ in range(2):
        model = small_model(seed=11)        # nn.set_seed also drives fit's shuffling
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        runs.append((model.get_weights(), history.history))
    assert_weights_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_verbose_0_prints_nothing(capsys):
    x, y = small_data()
    small_model().fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=0)
    assert capsys.readouterr() == ("", "")


def test_verbose_1_shows_a_progress_bar_and_one_summary_line_per_epoch(capsys):
    x, y = small_data()
    small_model().fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=1)
    out = capsys.readouterr().out
    assert "/4 [" in out and "batch" in out       # tqdm's bar over the 4 training batches
    lines = [part.strip() for part in re.split(r"[\r\n]", out) if part.startswith("Epoch")]
    summaries = [line for line in lines if " - loss: " in line]
    assert len(summaries) == 2
    pattern = (r"Epoch {}/2 - [\d.]+s - loss: \d+\.\d{{4}} - accuracy: \d\.\d{{4}} - "
               r"val_loss: \d+\.\d{{4}} - val_accuracy: \d\.\d{{4}}$")
    for epoch, line in enumerate(summaries, start=1):
        assert re.fullmatch(pattern.format(epoch), line), line


def test_verbose_2_prints_the_epoch_line_without_a_bar(capsys):
    x, y = small_data()
    small_model().fit(x, y, batch_size=8, epochs=1, verbose=2)
    out = capsys.readouterr().out
    assert out.startswith("Epoch 1/1 - ") and "loss: " in out
    assert "batch/s" not in out and "\r" not in out


# -- evaluate and predict ------------------------------------------------------------------------

def test_evaluate_matches_the_loss_computed_by_hand_on_predict():
    mt.set_default_dtype(np.float64)
    x, y = small_data(50)
    model = small_model()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    probabilities = model.predict(x, batch_size=16)
    loss, accuracy = model.evaluate(x, y, batch_size=16)
    assert loss == pytest.approx(bce_by_hand(y, probabilities), rel=1e-12)
    assert accuracy == pytest.approx(np.mean((probabilities > 0.5) == (y > 0.5)), abs=1e-12)
    assert model.evaluate(x, y, batch_size=7) == pytest.approx([loss, accuracy], rel=1e-12)


def test_evaluate_without_metrics_returns_the_loss_alone():
    x, y = small_data()
    model = small_model(metrics=())
    result = model.evaluate(x, y)
    assert isinstance(result, float)
    assert result == pytest.approx(bce_by_hand(y, model.predict(x)), rel=1e-5)


def test_predict_is_batched_returns_numpy_records_no_graph_and_is_deterministic(monkeypatch):
    x, _ = small_data(50)
    model = small_model()
    model.jit_compile = False  # every batch runs forward (a compiled predict replays them)
    seen = []
    forward = model.forward

    def spy(batch):
        out = forward(batch)
        seen.append((len(batch), out.requires_grad, out.parents))
        return out

    monkeypatch.setattr(model, "forward", spy)
    first = model.predict(x, batch_size=16)
    assert isinstance(first, np.ndarray) and first.shape == (50, 1)
    assert [size for size, _, _ in seen] == [16, 16, 16, 2]
    assert all(not grad and parents == () for _, grad, parents in seen)
    assert all(p.grad is None for p in model.parameters())
    assert mt.is_grad_enabled() and model.training
    np.testing.assert_array_equal(model.predict(x, batch_size=16), first)
    np.testing.assert_allclose(model.predict(x, batch_size=50), first, rtol=1e-6)


def test_predict_of_a_model_with_several_outputs_gives_a_list_like_keras():
    x, _ = small_data(20)
    inp = nn.Input(x.shape[1:])
    model = nn.Model(inp, nn.LSTM(3, return_state=True)(inp))  # [output, h, c]
    output, h, c = model.predict(x, batch_size=8)
    assert output.shape == h.shape == c.shape == (20, 3)
    np.testing.assert_array_equal(output, h)  # the last step's h is the output
    whole = model(mt.Tensor(x))
    for got, want in zip((output, h, c), whole, strict=True):
        np.testing.assert_allclose(got, want.data, rtol=1e-6)


# -- NaN and inf during training ---------------------------------------------------------------

def weights_after(model_factory, x, y, batches: int, batch_size: int) -> list[np.ndarray]:
    """The weights a fresh model has after exactly ``batches`` unshuffled steps."""
    model = model_factory()
    if batches:
        model.fit(x[:batches * batch_size], y[:batches * batch_size], batch_size=batch_size,
                  shuffle=False, verbose=0)
    return model.get_weights()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_an_infinite_loss_stops_fit_and_keeps_the_weights_from_before_that_step():
    def factory():
        nn.set_seed(2)
        model = nn.Sequential([nn.Input((3,)), nn.Dense(1)])
        model.compile(optimizer=optim.SGD(lr=0.01), loss="mse")
        return model

    x = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    y = np.ones((16, 1), dtype=np.float32)
    x[9] = 1e30                      # finite, but its squared error overflows float32: batch 3
    model = factory()
    with pytest.raises(FloatingPointError, match=r"(?i)epoch 1, batch 3.*learning rate") as err:
        model.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    assert "inf" in str(err.value)
    assert_weights_equal(model.get_weights(), weights_after(factory, x, y, 2, 4))
    assert not np.array_equal(model.get_weights()[0], factory().get_weights()[0])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_an_update_that_makes_weights_inf_is_undone_weights_and_optimizer_state():
    def factory(lr):
        return small_model(seed=3, optimizer=optim.Adam(lr=lr))

    x, y = small_data(64)
    model = factory(1e38)                # lr / (1 - beta1) overflows float32: weights -> inf
    initial = model.get_weights()
    with pytest.raises(FloatingPointError, match=r"NaN or inf") as err:
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    assert re.search(r"epoch 1, batch 1\b", str(err.value))
    assert "lower learning rate" in str(err.value)
    assert_weights_equal(model.get_weights(), initial)

    # The optimizer's state was rolled back too: with a sane lr the run continues exactly
    # like a fresh one.
    model.optimizer.lr = 0.01
    model.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    fresh = factory(0.01)
    fresh.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    assert_weights_equal(model.get_weights(), fresh.get_weights())


# -- bad input: a clear error before any weight changes --------------------------------------

def _x(shape=(10, 5, TOKENS)):
    return np.zeros(shape, dtype=np.float32)


def _with(array, index, value):
    array = array.copy()
    array[index] = value
    return array


BAD_INPUTS = {
    "lengths": (dict(x=_x(), y=np.zeros(9)), r"x has 10 samples but y has 9"),
    "features": (dict(x=_x((10, 5, 4)), y=np.zeros(10)),
                 r"x has shape \(10, 5, 4\) but the model expects \(None, 5, 7\)"),
    "timesteps": (dict(x=_x((10, 6, TOKENS)), y=np.zeros(10)), r"\(10, 6, 7\).*\(None, 5, 7\)"),
    "label 2": (dict(x=_x(), y=_with(np.zeros(10), 3, 2.0)), r"labels between 0 and 1, got 2"),
    "label -1": (dict(x=_x(), y=_with(np.zeros(10), 0, -1.0)), r"labels between 0 and 1, got -1"),
    "nan in x": (dict(x=_with(_x(), (4, 2, 1), np.nan), y=np.zeros(10)),
                 r"x contains NaN.*\(4, 2, 1\)"),
    "inf in x": (dict(x=_with(_x(), (0, 0, 0), np.inf), y=np.zeros(10)), r"x contains NaN or inf"),
    "nan in validation": (dict(x=_x(), y=np.zeros(10),
                               validation_data=(_with(_x(), 1, np.nan), np.zeros(10))),
                          r"validation_data.*NaN"),
    "validation features": (dict(x=_x(), y=np.zeros(10),
                                 validation_data=(_x((10, 5, 3)), np.zeros(10))),
                            r"validation_data.*\(10, 5, 3\).*\(None, 5, 7\)"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_to_fit_raises_before_any_weight_changes(case):
    kwargs, message = BAD_INPUTS[case]
    model = small_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=message):
        model.fit(**kwargs, batch_size=4, verbose=0)
    assert_weights_equal(model.get_weights(), before)
    assert not [k for k in model.optimizer.state_dict() if k.startswith("state.")]


def test_binary_crossentropy_takes_labels_between_0_and_1_like_keras():
    x, y = small_data()
    soft = y * 0.8 + 0.1  # label smoothing
    model = small_model(metrics=())
    model.fit(x, soft, epochs=1, verbose=0)
    want = nn.losses.binary_crossentropy(mt.Tensor(soft), mt.Tensor(model.predict(x)))
    assert model.evaluate(x, soft) == pytest.approx(want.item(), rel=1e-6)


def test_nan_labels_for_mse_are_refused_before_training():
    model = small_model(loss="mse", metrics=())
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"y contains NaN.*\(6, 0\)"):
        model.fit(_x(), _with(np.zeros((10, 1)), (6, 0), np.nan), verbose=0)
    assert_weights_equal(model.get_weights(), before)


def test_fit_before_compile_says_to_compile():
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((5, TOKENS)), nn.LSTM(2), nn.Dense(1)])
    with pytest.raises(RuntimeError, match=r"compile"):
        model.fit(_x(), np.zeros(10), verbose=0)


# -- compile ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, cls", [("adam", nn.optimizers.Adam), ("sgd", nn.optimizers.SGD),
                                       ("rmsprop", nn.optimizers.RMSprop),
                                       ("Adam", nn.optimizers.Adam)])
def test_compile_accepts_optimizer_names(name, cls):
    model = small_model(optimizer=name)
    assert type(model.optimizer) is cls
    assert [id(p) for p in model.optimizer.params] == [id(p) for p in model.parameters()]


def test_compile_hands_the_model_parameters_to_an_optimizer_object():
    opt = optim.Adam(lr=0.05)
    model = small_model(optimizer=opt)
    assert model.optimizer is opt and opt.lr == 0.05
    assert [id(p) for p in opt.params] == [id(p) for p in model.parameters()]
    before = model.get_weights()
    model.fit(*small_data(), batch_size=8, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(model.get_weights(), before, strict=True))


def test_compile_keeps_parameters_the_user_gave():
    model = small_model()
    first_layer = model.layers_without_input[0]
    opt = optim.SGD(first_layer.parameters(), lr=0.1)
    model.compile(optimizer=opt, loss="binary_crossentropy")
    dense_before = model.layers_without_input[1].get_weights()
    model.fit(*small_data(), batch_size=8, verbose=0)
    assert opt.params == first_layer.parameters()
    assert_weights_equal(model.layers_without_input[1].get_weights(), dense_before)


def test_compile_before_the_model_is_built_trains_every_weight():
    """A Sequential without nn.Input has no weights at compile time; fit builds it and then
    the optimizer must get the weights (it used to get an empty list and train nothing)."""
    nn.set_seed(0)
    model = nn.Sequential([nn.LSTM(3), nn.Dense(1, activation="sigmoid")])
    model.compile(optimizer=optim.Adam(lr=0.01), loss="binary_crossentropy")
    x, y = small_data()
    model.fit(x, y, batch_size=8, verbose=0)
    assert [id(p) for p in model.optimizer.params] == [id(p) for p in model.parameters()]
    assert len(model.optimizer.params) == 5
    assert all(model.optimizer.state_dict()[f"state.{i}.step"] == 5 for i in range(5))


def test_compile_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamx'"):
        small_model(optimizer="adamx")
    with pytest.raises(ValueError, match=r"unknown loss 'bce'"):
        small_model(loss="bce")
    with pytest.raises(ValueError, match=r"unknown metric 'precision'"):
        small_model(metrics=["precision"])


def test_a_training_step_leaves_no_reference_cycles():
    """fit pauses the cyclic collector during a step; that is only safe if the graph
    is freed by reference counting alone, i.e. it holds no cycles."""
    import gc

    inp = nn.Input(shape=(5, 3))
    model = nn.Model(inp, nn.Dense(1, activation="sigmoid")(nn.LSTM(4)(inp)))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 5, 3)), (rng.random((16, 1)) > 0.5) * 1.0
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
        loss = nn.losses.binary_crossentropy(y, model(x))
        loss.backward()
        del loss
        assert gc.collect() == 0
    finally:
        if was_enabled:
            gc.enable()
    assert gc.isenabled() == was_enabled


def test_a_model_call_pauses_the_collector_and_restores_it_even_after_an_error():
    import gc

    seen = []

    class Spy(nn.Dense):
        def forward(self, x):
            seen.append(gc.isenabled())
            return super().forward(x)

    inp = nn.Input(shape=(3,))
    model = nn.Model(inp, Spy(2)(inp))
    was_enabled = gc.isenabled()
    try:
        gc.enable()
        model(np.ones((4, 3)))
        assert seen == [False] and gc.isenabled()
        with pytest.raises(ValueError, match="expects data of shape"):
            model(np.ones((4, 5)))
        assert gc.isenabled()
        gc.disable()
        model(np.ones((4, 3)))
        assert not gc.isenabled()
    finally:
        if was_enabled:
            gc.enable()
