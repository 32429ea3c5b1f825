"""mt.compile: a traced step replayed as plain numpy calls gives eager's numbers exactly,
traces again on new shapes, runs eagerly where the data decides, and prints as code."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

import microtensor as mt
import nn
import optim
from microtensor.tensor import apply

BATCH, STEPS, FEATURES = 6, 4, 3


def sequences(rng):
    return rng.normal(size=(BATCH, STEPS, FEATURES))


def tokens(rng, padded: bool = False):
    x = rng.integers(1, 9, size=(BATCH, STEPS)).astype(float)
    if padded:  # a different amount of padding in every batch
        for row in range(BATCH):
            x[row, :rng.integers(0, STEPS)] = 0
    return x


# layer kind -> (layers after the input, input shape, batch maker)
KINDS = {
    "Dense": (lambda: [nn.Dense(5, activation="relu"), nn.Dense(1, activation="sigmoid")],
              (FEATURES,), lambda rng: rng.normal(size=(BATCH, FEATURES))),
    "LSTM": (lambda: [nn.LSTM(4), nn.Dense(1, activation="sigmoid")], (STEPS, FEATURES),
             sequences),
    "GRU": (lambda: [nn.GRU(4), nn.Dense(1, activation="sigmoid")], (STEPS, FEATURES),
            sequences),
    "SimpleRNN": (lambda: [nn.SimpleRNN(4, return_sequences=True), nn.SimpleRNN(3),
                           nn.Dense(1, activation="sigmoid")], (STEPS, FEATURES), sequences),
    "Bidirectional": (lambda: [nn.Bidirectional(nn.LSTM(3)), nn.Dense(1, activation="sigmoid")],
                      (STEPS, FEATURES), sequences),
    "Embedding": (lambda: [nn.Embedding(10, 4), nn.LSTM(3), nn.Dense(1, activation="sigmoid")],
                  (STEPS,), tokens),
    "Embedding, masked": (lambda: [nn.Embedding(10, 4, mask_zero=True), nn.LSTM(3),
                                   nn.Dense(1, activation="sigmoid")], (STEPS,),
                          lambda rng: tokens(rng, padded=True)),
    "LSTM, dropout and recurrent_dropout": (
        lambda: [nn.LSTM(4, dropout=0.3, recurrent_dropout=0.3), nn.Dense(1, activation="sigmoid")],
        (STEPS, FEATURES), sequences),
    "Dropout": (lambda: [nn.Dense(8, activation="relu"), nn.Dropout(0.5),
                         nn.Dense(1, activation="sigmoid")], (FEATURES,),
                lambda rng: rng.normal(size=(BATCH, FEATURES))),
}


def three_adam_steps(kind: str, jit_compile: bool):
    """Losses, gradients and weights of 3 training steps on 3 different batches (float64)."""
    mt.set_default_dtype(np.float64)
    layers, input_shape, batch = KINDS[kind]
    nn.set_seed(7)
    model = nn.Sequential([nn.Input(input_shape), *layers()])
    model.compile(optimizer=optim.Adam(lr=0.05), loss="binary_crossentropy",
                  jit_compile=jit_compile)
    rng = np.random.default_rng(3)
    losses, grads = [], []
    for _ in range(3):
        x, y = batch(rng), (rng.random((BATCH, 1)) > 0.5).astype(float)
        losses.append(model.train_step(x, y)["loss"])
        grads.append([p.grad.copy() for p in model.parameters()])
    return model, losses, grads, [p.data.copy() for p in model.parameters()]


def assert_close(got, want):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("kind", list(KINDS))
def test_compiled_training_steps_equal_eager_for_every_layer_kind(kind, capfd):
    _, eager_losses, eager_grads, eager_weights = three_adam_steps(kind, jit_compile=False)
    model, losses, grads, weights = three_adam_steps(kind, jit_compile=True)
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-12)
    for got, want in zip(grads, eager_grads, strict=True):
        assert_close(got, want)
    assert_close(weights, eager_weights)
    step = model._compiled["train"]
    if kind == "Embedding, masked":  # which steps run depends on the data: eager, said once
        assert step.replays == 0 and "mask" in step.note
        assert capfd.readouterr().err.count("runs eagerly") == 1
    else:  # two traces (the second confirms the first), then a replay
        assert (step.traces, step.replays, step.note) == (2, 1, None)


def test_dropout_draws_new_numbers_at_each_replay():
    xs = [np.full((4, 50), k + 1.0) for k in range(4)]

    def dropped(x):
        return mt.Tensor(1.0) * nn.Dropout(0.5)(mt.Tensor(x), training=True)

    nn.set_seed(1)
    eager = [dropped(x).numpy() for x in xs]
    step = mt.compile(dropped)
    nn.set_seed(1)
    compiled = [step(x).numpy() for x in xs]
    assert step.replays == 2
    for got, want in zip(compiled, eager, strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(compiled[2], compiled[3])  # a fresh mask, not the traced one


def test_new_shapes_trace_again_and_the_same_shapes_never_do():
    mt.set_default_dtype(np.float64)
    w = mt.Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)

    def step(x):
        loss = (mt.tanh(mt.Tensor(x) @ w) ** 2).sum()
        w.grad = None
        loss.backward()
        return loss

    compiled = mt.compile(step)
    rng = np.random.default_rng(0)
    for batch in (4, 4, 4, 4, 5, 5, 5):
        x = rng.normal(size=(batch, 3))
        loss = compiled(x).item()
        want = (np.tanh(x @ w.data) ** 2).sum()  # by hand
        want_grad = x.T @ (2 * np.tanh(x @ w.data) * (1 - np.tanh(x @ w.data) ** 2))
        assert loss == pytest.approx(want, rel=1e-6)
        np.testing.assert_allclose(w.grad, want_grad, rtol=1e-5)
    assert (compiled.traces, compiled.replays) == (4, 3)


def test_a_value_read_into_python_runs_the_step_eagerly(capfd):
    def relu_or_negate(x):
        x = mt.Tensor(x)
        return x * 2 if x.sum().item() > 0 else -x  # Python decides from the data

    compiled = mt.compile(relu_or_negate)
    for x in (np.ones(3), np.ones(3), -np.ones(3), np.ones(3)):
        np.testing.assert_array_equal(compiled(x).numpy(), x * 2 if x.sum() > 0 else -x)
    assert compiled.replays == 0 and "x.item()" in compiled.note
    assert capfd.readouterr().err.count("runs eagerly") == 1


def test_a_constant_made_from_the_data_without_an_op_is_found(capfd):
    def doubled(x):  # x * 2 is computed by numpy, out of the tracer's sight
        return mt.Tensor(x * 2) + 1

    compiled = mt.compile(doubled)
    for value in (1.0, 2.0, 3.0, 4.0):
        x = np.full(3, value)
        np.testing.assert_array_equal(compiled(x).numpy(), 2 * x + 1)
    assert compiled.replays == 0 and "constant" in compiled.note


def test_the_same_data_twice_confirms_a_program_for_that_data_only(capfd):
    def doubled(x):
        return mt.Tensor(x * 2) + 1

    compiled = mt.compile(doubled)
    x = np.ones(3)
    compiled(x), compiled(x), compiled(x)
    assert compiled.replays == 1
    np.testing.assert_array_equal(compiled(np.full(3, 5.0)).numpy(), np.full(3, 11.0))
    assert "constant" in compiled.note


def test_fit_evaluate_and_predict_compiled_give_eager_numbers():
    mt.set_default_dtype(np.float64)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, STEPS, FEATURES)), (rng.random((40, 1)) > 0.5).astype(float)
    results = []
    for jit in (False, True):
        nn.set_seed(2)
        model = nn.Sequential([nn.Input((STEPS, FEATURES)), nn.LSTM(3), nn.Dropout(0.3),
                               nn.Dense(1, activation="sigmoid")])
        model.compile(loss="binary_crossentropy", metrics=["accuracy"], jit_compile=jit)
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=1)
        results.append((history.history["loss"], model.evaluate(x, y, batch_size=8),
                        model.predict(x, batch_size=16)))
    (eager_loss, eager_eval, eager_pred), (loss, evaluated, predicted) = results
    np.testing.assert_allclose(loss, eager_loss, rtol=1e-12)
    np.testing.assert_allclose(evaluated, eager_eval, rtol=1e-12)
    np.testing.assert_allclose(predicted, eager_pred, rtol=1e-12)
    assert model._compiled["train"].replays == 8  # 10 batches: 2 traces, then replays
    assert model._compiled["predict"].replays == 0  # 16, 16 traced; the last 8 a new shape


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_a_diverging_compiled_step_leaves_the_weights_as_they_were():
    model = nn.Sequential([nn.Input((2,)), nn.Dense(1)])
    model.compile(optimizer=optim.SGD(lr=1e3), loss="mse")
    x, y = np.ones((4, 2)), np.full((4, 1), 1e3)
    with pytest.raises(FloatingPointError):
        for k in range(50):
            before = [p.data.copy() for p in model.parameters()]
            model.train_step(x * (1 + k % 2), y)
    assert model._compiled["train"].replays > 0  # it diverged in a replayed step
    assert_close([p.data for p in model.parameters()], before)


def test_the_program_of_an_lstm_prints_as_forward_then_backward_lines():
    mt.set_default_dtype(np.float64)
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((2, 1)), nn.LSTM(1, name="lstm")])
    opt = optim.Adam(model.parameters())

    def train_step(x, y):
        loss = nn.losses.binary_crossentropy(y, model(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    step = mt.compile(train_step)
    step(np.ones((2, 2, 1)), np.ones((2, 1)))
    lines = step.source.splitlines()
    assert len(lines) < 80  # fits on a screen
    for line in ["f_1 = sigmoid(z_1[:, 1:2])", "c_2 = f_2 * c_1 + i_2 * c_hat_2",
                 "h_2 = o_2 * tanh(c_2)", "z_2 = x_proj[1] + h_1 @ lstm_recurrent_kernel",
                 "dz_2[:, 1:2] += df_2 * f_2 * (1 - f_2)",
                 "dc_1 += dh_1 * o_1 * (1 - tanh(c_1) ** 2)",
                 "dh_1 = dz_2 @ lstm_recurrent_kernel.T",
                 "lstm_recurrent_kernel.grad += dlstm_recurrent_kernel", "Optimizer.step()"]:
        assert any(text.startswith(line) for text in lines), line
    forward_end = lines.index("# backward: d loss / d each value, the last op first")
    assert lines.index("h_2 = o_2 * tanh(c_2)") < forward_end
    # backward runs the last step first: step 2's gates before step 1's
    assert (lines.index("dz_2[:, 1:2] += df_2 * f_2 * (1 - f_2)")
            < lines.index("dz_1[:, 1:2] += df_1 * f_1 * (1 - f_1)"))


def test_a_step_traced_with_dropout_off_is_not_replayed_with_it_on():
    model = nn.Sequential([nn.Input((20,)), nn.Dropout(0.5)])
    model.compile(loss="mse")
    x = np.ones((4, 20))
    model.eval()
    for _ in range(3):  # traced, confirmed, replayed: dropout off
        np.testing.assert_array_equal(model.predict(x), x)
    with nn.module.running_mode(training=True), mt.no_grad():  # only the mode differs
        assert (model._step("predict", model._forward)(x, model._modes()).numpy() == 0).any()


def test_keyword_arguments_are_inputs_too():
    def scaled(x, scale=None):
        return mt.Tensor(x) * mt.Tensor(scale)

    compiled = mt.compile(scaled)
    for k in range(4):
        x, scale = np.full(3, k + 1.0), np.full(3, 2.0 + k)
        np.testing.assert_array_equal(compiled(x, scale=scale).numpy(), x * scale)
    assert compiled.replays == 2


def test_freezing_a_parameter_after_tracing_traces_again():
    w = mt.Tensor(np.ones((3, 2)), requires_grad=True, dtype=np.float64)
    b = mt.Tensor(np.ones(2), requires_grad=True, dtype=np.float64)

    def step(x):
        w.grad = b.grad = None
        loss = (mt.Tensor(x, dtype=np.float64) @ w + b).sum()
        loss.backward()
        return loss

    compiled = mt.compile(step)
    for k in range(3):
        compiled(np.full((4, 3), k + 1.0))
    b.requires_grad = False
    compiled(np.full((4, 3), 5.0))
    assert b.grad is None and w.grad is not None  # as eager: a frozen bias gets no gradient


def test_sparse_categorical_crossentropy_compiles_and_matches_eager(capsys):
    """Its one-hot rows are made by an op from each batch's labels, so fit replays them."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 5, 3)), rng.integers(0, 3, (64,))
    histories = []
    for jit in (True, False):
        nn.set_seed(0)
        model = nn.Sequential([nn.Input(shape=(5, 3)), nn.LSTM(4),
                               nn.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=jit)
        histories.append(model.fit(x, y, epochs=2, batch_size=16, verbose=0).history["loss"])
    assert "runs eagerly" not in capsys.readouterr().err
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-6)


# -- the replay as generated straight-line code (compile_code.py) against the loop ----------

def _loss_and_grads_step(kind: str):
    """A compiled loss-and-gradients step for ``kind`` (no optimizer: it can run twice on the
    same batch), its model and its batch maker."""
    layers, input_shape, batch = KINDS[kind]
    nn.set_seed(7)
    model = nn.Sequential([nn.Input(input_shape), *layers()])

    def step(x, y):
        loss = nn.losses.binary_crossentropy(y, model(mt.Tensor(x)))
        for p in model.parameters():
            p.grad = None
        loss.backward()
        return loss

    return mt.compile(step), model, batch


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "Embedding, masked"])
def test_the_straight_line_replay_gives_the_loops_numbers_bit_for_bit(kind):
    mt.set_default_dtype(np.float64)
    step, model, batch = _loss_and_grads_step(kind)
    rng = np.random.default_rng(5)
    for _ in range(2):  # traced, then confirmed
        step(batch(rng), (rng.random((BATCH, 1)) > 0.5).astype(float))
    (program,) = step.programs.values()
    for _ in range(2):
        call = ((batch(rng), (rng.random((BATCH, 1)) > 0.5).astype(float)), {})
        results = []
        for replay in (program.run, program.replay):  # the loop, then the generated code
            nn.set_seed(11)  # the same dropout masks
            loss = replay(call).numpy()
            results.append((loss, [p.grad.copy() for p in model.parameters()]))
        (loop_loss, loop_grads), (loss, grads) = results
        np.testing.assert_array_equal(loss, loop_loss)
        for got, want in zip(grads, loop_grads, strict=True):
            np.testing.assert_array_equal(got, want)
    assert program.straight_line is not None


def test_the_plain_engine_replays_with_the_loop_and_agrees():
    mt.set_default_dtype(np.float64)
    step, model, batch = _loss_and_grads_step("Bidirectional")
    rng = np.random.default_rng(5)
    data = [(batch(rng), (rng.random((BATCH, 1)) > 0.5).astype(float)) for _ in range(3)]
    step(*data[0]), step(*data[1])
    (program,) = step.programs.values()
    with mt.plain_engine():
        plain_loss = step(*data[2]).item()
        plain_grads = [p.grad.copy() for p in model.parameters()]
    assert program.straight_line is None  # the plain engine never wrote the code
    assert step(*data[2]).item() == pytest.approx(plain_loss, rel=1e-12)
    for p, want in zip(model.parameters(), plain_grads, strict=True):
        np.testing.assert_allclose(p.grad, want, rtol=1e-12, atol=1e-300)
    assert program.straight_line is not None


def _program_replayed_once(step: Callable, *args):
    """``step`` compiled and called three times (traced, confirmed, replayed): its program."""
    compiled = mt.compile(step)
    for _ in range(3):
        compiled(*args)
    (program,) = compiled.programs.values()
    return program


def test_the_generated_code_is_one_line_per_op_and_per_gradient():
    mt.set_default_dtype(np.float64)
    w = mt.Tensor(np.ones((3, 2)), requires_grad=True)

    def step(x):
        loss = mt.tanh(mt.Tensor(x) @ w).sum()
        w.grad = None
        loss.backward()
        return loss

    program = _program_replayed_once(step, np.ones((4, 3)))
    lines = [line.strip() for line in program.straight_line.source.splitlines()[1:]]
    ops = [re.match(r"v\d+, b\d+ = _(\w+)_\d+\(", line) for line in lines]
    assert [op.group(1) for op in ops if op] == ["matmul", "tanh", "sum"]  # as traced
    backward_calls = [line for line in lines if "= b" in line]
    assert len(backward_calls) == 3  # one call of each op's own backward, last op first
    last_op = [line for line in lines if line.startswith("v") and "_sum_" in line][0]
    slot = re.match(r"v(\d+)", last_op).group(1)  # the loss: its backward runs first
    assert backward_calls[0] == f"d0, = b{slot}(g{slot}); del g{slot}; del b{slot}"
    assert lines[-1].startswith("return {")


def _replayed_both_ways(fn, calls: list[tuple], then: tuple, read):
    """``fn`` compiled and called on ``calls`` (two traces), then its program run on ``then``
    by the loop and by the generated code: ``read()`` after each."""
    compiled = mt.compile(fn)
    for args in calls:
        compiled(*args)
    (program,) = compiled.programs.values()
    results = []
    for replay in (program.run, program.replay):
        replay((then, {}))
        results.append(read())
    return results


def test_the_generated_code_sums_back_a_gradient_wider_than_its_input():
    """An op may return a gradient in its output's broadcast shape even where its input and
    output have the same shape: the engine sums it back (ops.py), and so must the code."""
    mt.set_default_dtype(np.float64)

    def scaled_column_sums(x, c):  # out (3,) from x (3,); the gradient for x comes as (2, 3)
        return (x * c).sum(0), lambda g: (g * c, None)

    w = mt.Tensor(np.arange(3.0), requires_grad=True)
    c = mt.Tensor(np.arange(6.0).reshape(2, 3))

    def step(x):
        w.grad = None
        loss = (apply(scaled_column_sums, w, c) * mt.Tensor(x)).sum()
        loss.backward()
        return loss

    x = np.array([1.0, -2.0, 0.5])
    loop, code = _replayed_both_ways(step, [(x + 1,), (x + 2,)], (x,), lambda: w.grad.copy())
    want = (np.arange(6.0).reshape(2, 3) * x).sum(axis=0)  # d/dw of sum_j x_j sum_i w_j c_ij
    np.testing.assert_allclose(loop, want)
    np.testing.assert_array_equal(code, loop)


def test_a_keyword_python_cannot_spell_still_reaches_the_op():
    mt.set_default_dtype(np.float64)

    def scaled(x, **constants):
        factor = constants["from"]
        return x * factor, lambda g: (g * factor,)

    w = mt.Tensor(np.ones(3), requires_grad=True)

    def step(x):
        w.grad = None
        loss = (apply(scaled, w, **{"from": 3.0}) * mt.Tensor(x)).sum()
        loss.backward()
        return loss

    x = np.array([1.0, 2.0, 4.0])
    loop, code = _replayed_both_ways(step, [(x,), (x + 1,)], (x,), lambda: w.grad.copy())
    np.testing.assert_array_equal(loop, 3 * x)
    np.testing.assert_array_equal(code, loop)


def test_a_boolean_mask_from_the_data_runs_the_step_eagerly(capfd):
    mt.set_default_dtype(np.float64)
    table = mt.Tensor(np.arange(12.0).reshape(4, 3) / 10, requires_grad=True)

    def step(mask):
        table.grad = None
        loss = mt.tanh(table[mask]).sum()  # how many rows: decided by the data
        loss.backward()
        return loss

    compiled = mt.compile(step)
    for rows in ([1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0]):
        mask = np.array(rows, bool)
        loss = compiled(mask).item()
        assert loss == pytest.approx(np.tanh(table.data[mask]).sum())
        want = np.where(mask[:, None], 1 - np.tanh(table.data) ** 2, 0)
        np.testing.assert_allclose(table.grad, want)
    assert compiled.replays == 0 and "boolean mask" in compiled.note
    assert capfd.readouterr().err.count("runs eagerly") == 1


def test_a_dropped_program_is_freed_without_the_cycle_collector():
    import gc
    import weakref

    mt.set_default_dtype(np.float64)
    weight = mt.Tensor(np.ones((3, 2)), requires_grad=True)

    def step(x):
        weight.grad = None
        loss = (mt.Tensor(x) @ (weight * mt.Tensor(np.full((3, 2), 2.0)))).sum()
        loss.backward()
        return loss

    program = _program_replayed_once(step, np.ones((4, 3)))
    assert program.straight_line is not None  # its code holds the constant too
    (constant,) = [source[1] for source in program.sources if source[0] == "constant"]
    gone = weakref.ref(constant)
    gc.disable()
    try:
        del program, constant
        assert gone() is None
    finally:
        gc.enable()


def test_code_python_refuses_to_compile_leaves_the_replays_to_the_loop(monkeypatch, capfd):
    import sys

    compile_module = sys.modules["microtensor.compile"]  # (mt.compile is the function)

    def refused(program, resolved):
        raise SyntaxError("too many statically nested blocks")

    monkeypatch.setattr(compile_module, "straight_line", refused)
    mt.set_default_dtype(np.float64)
    w = mt.Tensor(np.ones(3), requires_grad=True)

    def step(x):
        w.grad = None
        loss = (mt.tanh(w) * mt.Tensor(x)).sum()
        loss.backward()
        return loss

    compiled = mt.compile(step)
    for k in range(4):
        x = np.full(3, k + 1.0)
        assert compiled(x).item() == pytest.approx(np.tanh(1.0) * 3 * (k + 1))
        np.testing.assert_allclose(w.grad, x * (1 - np.tanh(1.0) ** 2))
    assert compiled.replays == 2
    assert capfd.readouterr().err.count("replays with the loop") == 1


@pytest.mark.parametrize("slices", [
    [(slice(0, 2),), (slice(2, 5),)],                  # tile x exactly: written in place
    [(slice(0, 3),), (slice(2, 5),)],                  # overlap at row 2: added up
    [(slice(0, 1),), (slice(3, 5),)],                  # rows 1, 2 get nothing: zeros there
    [(0,), (slice(1, 5), slice(0, 2)), (slice(1, 5), 2)]])  # a row, then columns
def test_slice_gradients_in_the_generated_code_equal_the_loops_and_numpys(slices):
    mt.set_default_dtype(np.float64)
    x = mt.Tensor(np.linspace(-1, 1, 15).reshape(5, 3), requires_grad=True)

    def step(weights):
        x.grad = None
        w = mt.Tensor(weights)
        loss = sum((mt.tanh(x[index]) * w[index] * float(k + 1)).sum()
                   for k, index in enumerate(slices))
        loss.backward()
        return loss

    weights = np.arange(15.0).reshape(5, 3) / 7
    loop, code = _replayed_both_ways(step, [(weights + 1,), (weights + 2,)], (weights,),
                                     lambda: x.grad.copy())
    want = np.zeros((5, 3))
    for k, index in enumerate(slices):
        want[index] += weights[index] * (k + 1) * (1 - np.tanh(x.data[index]) ** 2)
    np.testing.assert_allclose(loop, want, rtol=1e-12)
    np.testing.assert_array_equal(code, loop)


# -- what a learner's own step does that a replay can't see (from a trial as a new user) --

def _small_model(dropout: float = 0.0):
    nn.set_seed(3)
    layers = [nn.Input((STEPS, FEATURES)), nn.LSTM(4)]
    layers += [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(layers + [nn.Dense(1, activation="sigmoid")])


def _batches(count: int):
    rng = np.random.default_rng(8)
    return [(rng.normal(size=(BATCH, STEPS, FEATURES)),
             (rng.random((BATCH, 1)) > 0.5).astype(float)) for _ in range(count)]


def _sgd_by_hand(update: Callable) -> tuple[list, list, mt.Compiled]:
    """Losses of 5 steps of a loop that updates the weights by hand (``update(p)``), eager
    and compiled, and the compiled step."""
    losses = []
    for compiled in (False, True):
        model = _small_model()

        def step(x, y, model=model):
            loss = nn.losses.binary_crossentropy(y, model(x))
            model.zero_grad()
            loss.backward()
            for p in model.parameters():
                update(p)
            return loss

        run = mt.compile(step) if compiled else step
        losses.append([run(x, y).item() for x, y in _batches(5)])
    return losses[0], losses[1], run


def test_a_hand_written_update_of_p_data_runs_the_step_eagerly(capfd):
    mt.set_default_dtype(np.float64)

    def update(p):
        p.data -= 0.5 * p.grad  # numpy, in place: no op records it

    eager, compiled, step = _sgd_by_hand(update)
    np.testing.assert_allclose(compiled, eager, rtol=1e-12)  # it kept training
    assert step.replays == 0 and "p.data -=" in step.note
    assert capfd.readouterr().err.count("runs eagerly") == 1


def test_p_minus_equals_under_no_grad_updates_the_parameter_in_place_as_torch():
    mt.set_default_dtype(np.float64)
    p = mt.Tensor([1.0, 2.0], requires_grad=True)
    (p * p).sum().backward()
    before = p
    with mt.no_grad():
        p -= 0.25 * p.grad
        p *= 2.0
    assert p is before  # the same tensor, changed in place
    np.testing.assert_array_equal(p.data, [1.0, 2.0])  # (1 - 0.5) * 2, (2 - 1) * 2
    r = p * 1.0
    r += 1.0  # with grad on: a new node, as r = r + 1
    assert r.op == "add" and r.parents[0].op == "mul"
    with pytest.raises(RuntimeError, match="x -= y: x is a leaf that requires grad"):
        p -= 1.0  # as torch: backward would not see the change
    doubled = p * 2.0  # made with grad on: a graph node, whose value backward may read
    with mt.no_grad(), pytest.raises(RuntimeError, match="x is part of a graph \\(made by mul"):
        doubled += 1.0
    with mt.no_grad(), pytest.raises(mt.ShapeError, match=r"x \+= y: y of shape \(3,\)"):
        p += np.ones(3)
    np.testing.assert_array_equal(p.data, [1.0, 2.0])  # every refusal left it as it was


def test_an_update_under_no_grad_in_a_compiled_step_is_replayed_eagerly_and_right(capfd):
    mt.set_default_dtype(np.float64)

    def update(p):
        with mt.no_grad():
            p -= 0.5 * p.grad

    eager, compiled, step = _sgd_by_hand(update)
    np.testing.assert_allclose(compiled, eager, rtol=1e-12)
    assert step.replays == 0


def test_compiling_the_forward_only_says_to_call_backward_inside(capfd):
    mt.set_default_dtype(np.float64)
    model = _small_model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    loss_of = mt.compile(lambda x, y: nn.losses.binary_crossentropy(y, model(x)))
    for x, y in _batches(4):  # backward outside: works at every call (eagerly)
        loss = loss_of(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss_of.replays == 0 and "call backward() inside" in loss_of.note
    assert loss_of.source.startswith("# no program: it runs eagerly")


def test_switching_eval_and_train_between_calls_traces_again():
    model = _small_model(dropout=0.5)
    forward = mt.compile(lambda x: model(x))
    x = _batches(1)[0][0]
    model.train()
    for _ in range(3):
        forward(x)
    model.eval()
    a, b = forward(x).numpy(), forward(x).numpy()
    np.testing.assert_array_equal(a, b)  # Dropout off: the same numbers
    np.testing.assert_allclose(a, model(x).numpy(), rtol=1e-6)
    model.train()
    c, d = forward(x).numpy(), forward(x).numpy()
    assert not np.array_equal(c, d)  # Dropout on again: fresh masks


def test_print_inside_a_step_runs_it_eagerly(capfd):
    model = _small_model()

    def step(x, y):
        loss = nn.losses.binary_crossentropy(y, model(x))
        print(loss)
        return loss.detach()

    compiled = mt.compile(step)
    for x, y in _batches(4):
        compiled(x, y)
    out = capfd.readouterr()
    assert out.out.count("Tensor(") == 4 and compiled.replays == 0
    assert "print(x)" in compiled.note


def _scaled_gradient_step():
    """A step with a Python number among its arguments: its weight and the compiled step."""
    w = mt.Tensor(np.ones(3), requires_grad=True)

    def step(x, scale):
        w.grad = None
        loss = (w * mt.Tensor(x) * float(scale)).sum()
        loss.backward()
        return loss

    return w, mt.compile(step)


def test_a_python_value_that_changes_every_call_stops_tracing_and_frees_its_programs(capfd):
    w, compiled = _scaled_gradient_step()
    x = np.arange(3.0)
    for epoch in range(20):
        compiled(x, epoch + 1)
        np.testing.assert_array_equal(w.grad, x * (epoch + 1))
    assert compiled.traces == 8 and "8 calls had 8 different signatures" in compiled.note
    assert len(compiled.programs) <= 16
    assert capfd.readouterr().err.count("runs eagerly") == 1


def test_at_most_sixteen_signatures_are_kept():
    w, compiled = _scaled_gradient_step()
    x = np.arange(3.0)
    for k in range(1, 21):  # each value of k three times: traced, confirmed, replayed
        for _ in range(3):
            compiled(x, k)
            np.testing.assert_array_equal(w.grad, x * k)
    assert compiled.replays == 20 and len(compiled.programs) == 16


def test_a_grad_left_from_the_last_call_is_named_in_the_note(capfd):
    w = mt.Tensor(np.ones(3), requires_grad=True, name="w")

    def step(x):  # no zero_grad(): w.grad is None at the first call only
        loss = (w * mt.Tensor(x)).sum()
        loss.backward()
        return loss

    compiled = mt.compile(step)
    for k in range(3):
        compiled(np.arange(3.0) + k)
    np.testing.assert_array_equal(w.grad, 3 * np.arange(3.0) + 3)  # added up, as eager
    assert "w of shape (3,) held a .grad at one call and none at the other" in compiled.note
    assert "the same numbers" in capfd.readouterr().err


def test_a_constant_changed_in_place_or_a_detached_value_read_runs_the_step_eagerly(capfd):
    def make_step(kind):
        counter = mt.Tensor(np.ones(()))  # (x * 1 = 3 (k + 1): above 10 from k = 3)

        def step(x):
            nonlocal counter
            loss = (mt.Tensor(x) * counter).sum()
            if kind == "counter":
                with mt.no_grad():
                    counter += 1.0  # in place: no op records it
            elif loss.detach().item() > 10:  # a choice from a value, through detach()
                loss = loss * 0.0
            return loss.detach()
        return step

    for kind in ("counter", "detached"):
        eager, compiled = make_step(kind), mt.compile(make_step(kind))
        for k in range(5):
            x = np.full(3, k + 1.0)
            assert compiled(x).item() == eager(x).item()
        assert compiled.replays == 0
    assert capfd.readouterr().err.count("runs eagerly") == 2


def test_a_few_batch_shapes_taking_turns_are_all_replayed():
    w, compiled = _scaled_gradient_step()
    for _epoch in range(3):
        for rows in (2, 3, 4, 5, 6):  # five batch shapes (buckets), in turn
            x = np.arange(rows * 3.0).reshape(rows, 3)
            compiled(x, 2)
            np.testing.assert_array_equal(w.grad, 2 * x.sum(axis=0))
    assert not compiled.given_up and compiled.replays == 5  # the third epoch replays


def test_an_index_out_of_range_in_a_replay_gets_the_layers_own_message():
    model = nn.Sequential([nn.Input((STEPS,)), nn.Embedding(10, 3), nn.LSTM(2)])
    forward = mt.compile(lambda x: model(x))
    tokens = np.ones((BATCH, STEPS))
    for _ in range(3):
        forward(tokens)
    tokens[0, 0] = 40
    with pytest.raises(ValueError, match="index 40 is out of range for input_dim=10"):
        forward(tokens)
