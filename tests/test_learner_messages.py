"""What a learner reads when something is off, and the small things they expect to work.

Each test holds the text a user actually sees (an error message, a summary line, a
repr) to what it must say; the numbers in it are Keras's published ones or worked
out by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import microtensor as mt
import nn

ORDER = "Keras's order is loss(y_true, y_pred)"
README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


# -- loss arguments in PyTorch's order ----------------------------------------------------------
def model_output(values) -> mt.Tensor:
    return mt.Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


@pytest.mark.parametrize("loss, labels, output", [
    (nn.losses.binary_crossentropy, [[1.0], [0.0]], [[0.8], [0.3]]),
    (nn.losses.categorical_crossentropy, [[0.0, 1.0], [1.0, 0.0]], [[0.2, 0.8], [0.6, 0.4]]),
    (nn.losses.sparse_categorical_crossentropy, [1, 0], [[0.2, 0.8], [0.6, 0.4]]),
    (nn.losses.mse, [[1.0], [0.0]], [[0.8], [0.3]]),
])
def test_a_loss_called_in_pytorchs_order_says_keras_order(loss, labels, output):
    with pytest.raises(ValueError, match=re.escape(ORDER)) as caught:
        loss(model_output(output), np.array(labels))  # (prediction, target), as in PyTorch
    assert "y_true requires grad and y_pred does not" in str(caught.value)


def test_labels_outside_what_the_loss_accepts_name_the_order():
    logits, labels = np.array([[2.5], [-1.5]]), model_output([[1.0], [0.0]]).detach()
    with pytest.raises(ValueError, match=re.escape(ORDER)) as caught:
        nn.losses.binary_crossentropy(logits, labels, from_logits=True)
    assert "labels in [0, 1]" in str(caught.value) and "-1.5 to 2.5" in str(caught.value)
    with pytest.raises(ValueError, match=re.escape(ORDER)):
        nn.losses.sparse_categorical_crossentropy(np.array([[0.2, 0.8]]), np.array([1]))


def test_the_right_order_still_gives_the_textbook_value():
    loss = nn.losses.binary_crossentropy(np.array([[1.0], [0.0]]), model_output([[0.8], [0.3]]))
    assert loss.item() == pytest.approx(-(np.log(0.8) + np.log(0.7)) / 2, rel=1e-6)  # float32
    loss.backward()  # the model's output gets the gradient


def test_padding_labels_under_a_mask_are_not_checked():
    labels = np.array([[1.0, -1.0]])  # the second step is padding, label -1 as often written
    loss = nn.losses.binary_crossentropy(labels[..., None], model_output([[[0.8], [0.5]]]),
                                         mask=np.array([[True, False]]))
    assert loss.item() == pytest.approx(-np.log(0.8), rel=1e-6)  # float32


def test_the_readme_loop_says_the_order_beside_the_call():
    line = next(line for line in README.splitlines()
                if "nn.losses.binary_crossentropy(yb, " in line)
    assert "(y_true, y_pred)" in line


# -- 2-D input to a recurrent layer ---------------------------------------------------------
@pytest.mark.parametrize("layer", [nn.LSTM, nn.GRU, nn.SimpleRNN])
def test_a_2d_array_is_first_read_as_one_sample_without_its_batch_axis(layer):
    with pytest.raises(ValueError) as caught:
        layer(4)(np.zeros((50, 10), dtype=np.float32))
    text = str(caught.value)
    assert ("If it is one sample of 50 time steps × 10 features, add the batch axis: x[None] "
            "(shape (1, 50, 10))") in text
    assert text.index("x[None]") < text.index("x.reshape(50, 10, 1)")
    np.testing.assert_equal(layer(4)(np.zeros((50, 10), np.float32)[None]).shape, (1, 4))


def test_an_input_shape_with_the_batch_axis_says_input_leaves_it_out():
    with pytest.raises(ValueError) as caught:
        nn.LSTM(4)(nn.Input(shape=(None, 50, 10)))
    assert ("If it comes from nn.Input(shape=(None, 50, 10)): Input's shape leaves out the batch "
            "axis (it adds None itself), so write nn.Input(shape=(50, 10)).") in str(caught.value)
    with pytest.raises(ValueError, match=re.escape("write nn.Input(shape=(50, 10))")):
        nn.Bidirectional(nn.GRU(2))(nn.Input(shape=(None, 50, 10)))


# -- summary(explain=True) ------------------------------------------------------------------
def explained(model: nn.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lines.append, explain=True)
    return "\n".join(lines)


def block(text: str, layer: str) -> str:
    """The row of ``layer`` and its explanation lines."""
    return re.search(rf"^{layer} \(.*?(?=^_|^=)", text, re.S | re.M).group()


def test_summary_says_the_count_does_not_depend_on_the_time_steps():
    inp = nn.Input(shape=(13, 6))
    x = nn.LSTM(8, return_sequences=True, name="lstm")(inp)
    text = explained(nn.Model(inp, nn.Dense(3, name="per_step")(x)))
    lstm = block(text, "lstm")
    assert "480" in lstm  # 4 · 8 · (6 + 8 + 1), with or without the 13
    assert ("the same weights at each of the 13 time steps: the count is the same for any "
            "number of steps") in lstm
    assert ("applied to each of the 13 time steps with the same weights: the count is the same "
            "for any number of steps") in block(text, "per_step")


def test_a_dense_on_a_vector_says_nothing_about_time_steps():
    inp = nn.Input(shape=(6,))
    text = explained(nn.Model(inp, nn.Dense(3, name="plain")(inp)))
    assert "time step" not in block(text, "plain")


def test_token_ids_are_batch_by_timesteps_not_features():
    inp = nn.Input(shape=(None,), name="tokens")
    x = nn.Embedding(5, 8, mask_zero=True)(inp)
    text = explained(nn.Model(inp, nn.GRU(4)(x)))
    tokens = block(text, "tokens")
    assert "output: (None, None) = batch × timesteps (token ids)" in tokens
    assert "features" not in tokens


# -- repr, History.plot, graphs without dot ---------------------------------------------------
def test_repr_of_a_model_names_it_its_layers_and_its_size():
    inp = nn.Input(shape=(50, 10), name="input_layer")
    x = nn.LSTM(128, return_sequences=True, name="lstm1")(inp)
    x = nn.LSTM(64, name="lstm2")(x)
    x = nn.Dense(128, activation="relu", name="dense1")(x)
    x = nn.Dense(64, activation="relu", name="dense2")(x)
    model = nn.Model(inp, nn.Dense(1, activation="sigmoid", name="output")(x), name="seed")
    assert repr(model) == ("<Model 'seed': lstm1 (LSTM), lstm2 (LSTM), dense1 (Dense), "
                           "dense2 (Dense), output (Dense); 137,217 parameters>")  # Keras's count
    fresh = nn.Sequential([nn.LSTM(3, name="rnn")], name="later")
    assert repr(fresh) == "<Sequential 'later': rnn (LSTM); not built yet>"


def test_history_plots_itself(matplotlib):
    matplotlib.use("Agg")
    history = nn.History()
    for epoch, logs in enumerate([{"loss": 0.9, "accuracy": 0.5, "val_loss": 1.0,
                                   "val_accuracy": 0.4},
                                  {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.7,
                                   "val_accuracy": 0.6}]):
        history.on_epoch_end(epoch, logs)
    loss_axes, accuracy_axes = history.plot()
    assert loss_axes.get_title() == "loss" and accuracy_axes.get_title() == "accuracy"
    training, validation = loss_axes.get_lines()
    assert list(training.get_ydata()) == [0.9, 0.5] and list(training.get_xdata()) == [1, 2]
    assert list(validation.get_ydata()) == [1.0, 0.7] and validation.get_linestyle() == "--"
    assert [t.get_text() for t in accuracy_axes.get_legend().get_texts()] == \
        ["training", "validation"]
    matplotlib.pyplot.close(loss_axes.figure)


def test_a_graph_shown_in_jupyter_without_dot_says_how_to_get_it(tmp_path, monkeypatch):
    graph = mt.draw_graph(mt.tanh(mt.Tensor([1.0], requires_grad=True)))
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` here
    bundle = graph._repr_mimebundle_()
    assert set(bundle) == {"text/plain"}
    assert "needs Graphviz's `dot` program" in bundle["text/plain"]
    assert "apt-get install graphviz" in bundle["text/plain"]
    with pytest.raises(mt.GraphvizNotFoundError):
        graph.pipe(format="svg")


def test_a_graph_shown_in_jupyter_with_dot_is_the_svg(dot_binary):
    graph = mt.draw_graph(mt.tanh(mt.Tensor([1.0], requires_grad=True)))
    assert "<svg" in graph._repr_mimebundle_()["image/svg+xml"]


def test_predict_names_the_shape_of_the_whole_data_not_of_a_batch():
    inp = nn.Input(shape=(20, 3))
    model = nn.Model(inp, nn.Dense(1)(nn.LSTM(4)(inp)))
    with pytest.raises(ValueError, match=r"expects data of shape \(None, 20, 3\).*got \(64, 20\)"):
        model.predict(np.zeros((64, 20)))
