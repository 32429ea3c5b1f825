"""model.summary(): the text a learner reads, checked against Keras's own published summaries.

Every expected number here is copied from a Keras printout or from the formula
4·units·(inputs + units + 1), never computed by microtensor.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import nn

# Keras 2's summary of the seed model, as published (Keras prints these rows'
# counts without separators; the rows below are the ones whose text is identical).
KERAS_SEED_SUMMARY = """\
_________________________________________________________________
Layer (type)                 Output Shape              Param #   
=================================================================
input_layer (InputLayer)     (None, 50, 10)            0         
_________________________________________________________________
lstm1 (LSTM)                 (None, 50, 128)           71168     
_________________________________________________________________
lstm2 (LSTM)                 (None, 64)                49408     
_________________________________________________________________
dense1 (Dense)               (None, 128)               8320      
_________________________________________________________________
dense2 (Dense)               (None, 64)                8256      
_________________________________________________________________
output (Dense)               (None, 1)                 65        
=================================================================
Total params: 137,217
Trainable params: 137,217
Non-trainable params: 0
_________________________________________________________________"""  # noqa: W291


def seed_model() -> nn.Model:
    inp = nn.Input(shape=(50, 10), name="input_layer")
    x = nn.LSTM(128, return_sequences=True, name="lstm1")(inp)
    x = nn.LSTM(64, return_sequences=False, name="lstm2")(x)
    x = nn.Dense(128, activation="relu", name="dense1")(x)
    x = nn.Dense(64, activation="relu", name="dense2")(x)
    x = nn.Dense(1, activation="sigmoid", name="output")(x)
    return nn.Model(inputs=inp, outputs=x)


def summary_of(model: nn.Model, **kwargs) -> list[str]:
    lines: list[str] = []
    model.summary(print_fn=lines.append, **kwargs)
    return lines


def row(lines: list[str], name: str) -> str:
    found = [line for line in lines if line.startswith(name + " (")]
    assert len(found) == 1, f"expected one row for {name!r} in:\n" + "\n".join(lines)
    return found[0]


def cells(line: str) -> list[str]:
    """A table row split on runs of 2+ spaces: [name (type), shape, count]."""
    return re.split(r"\s{2,}", line.strip())


@pytest.fixture(scope="module")
def seed() -> nn.Model:
    """Built once: summaries don't change the model."""
    return seed_model()


@pytest.fixture
def seed_lines(seed) -> list[str]:
    return summary_of(seed)


@pytest.fixture
def explained_lines(seed) -> list[str]:
    return summary_of(seed, explain=True)


@pytest.mark.parametrize("name,layer_type,shape,count", [
    ("input_layer", "InputLayer", "(None, 50, 10)", "0"),
    ("lstm1", "LSTM", "(None, 50, 128)", "71,168"),
    ("lstm2", "LSTM", "(None, 64)", "49,408"),
    ("dense1", "Dense", "(None, 128)", "8,320"),
    ("dense2", "Dense", "(None, 64)", "8,256"),
    ("output", "Dense", "(None, 1)", "65"),
])
def test_seed_model_rows(seed_lines, name, layer_type, shape, count):
    assert cells(row(seed_lines, name)) == [
        f"{name} ({layer_type})", shape, count]


def test_seed_model_totals(seed_lines):
    assert "Total params: 137,217" in seed_lines
    assert "Trainable params: 137,217" in seed_lines
    assert "Non-trainable params: 0" in seed_lines


def test_seed_model_rows_come_in_call_order(seed_lines):
    names = [line.split(" (")[0] for line in seed_lines if " (" in line and "params" not in line]
    assert names == ["Layer", "input_layer", "lstm1", "lstm2", "dense1", "dense2", "output"]


def test_seed_model_layout_is_keras_2s_literally(seed_lines):
    """Line for line Keras's text, except that counts over 999 get a thousands separator."""
    keras = KERAS_SEED_SUMMARY.splitlines()
    ours = [line for line in seed_lines if not line.startswith("Model: ")]
    assert len(ours) == len(keras)
    separated = {"71168": "71,168", "49408": "49,408", "8320": "8,320", "8256": "8,256"}
    for our_line, keras_line in zip(ours, keras, strict=True):
        count = keras_line[55:].strip()
        if count in separated:
            assert our_line[:55] == keras_line[:55]
            assert our_line[55:] == separated[count].ljust(10)
        else:
            assert our_line == keras_line


def test_header_columns_sit_where_keras_puts_them(seed_lines):
    header = next(line for line in seed_lines if "Layer (type)" in line)
    assert header.index("Layer (type)") == 0
    assert header.index("Output Shape") == 29
    assert header.index("Param #") == 55
    assert len(header) == 65
    lstm1 = row(seed_lines, "lstm1")
    assert lstm1.index("(None, 50, 128)") == 29 and lstm1.index("71,168") == 55


def test_model_title_and_rules(seed_lines):
    assert seed_lines[0].startswith("Model: ")
    assert seed_lines[1] == "_" * 65
    assert seed_lines[3] == "=" * 65
    assert seed_lines[-1] == "_" * 65


def test_count_params_matches_keras(seed):
    model = seed
    assert model.count_params() == 137_217
    counts = {layer.name: layer.count_params() for layer in model.layers}
    assert counts == {"input_layer": 0, "lstm1": 71_168, "lstm2": 49_408, "dense1": 8_320,
                      "dense2": 8_256, "output": 65}


@pytest.mark.parametrize("timesteps,features,units,count", [
    (1, 1, 1, "12"),     # Keras: Input(shape=(1, 1)) -> LSTM(1): 12
    (4, 2, 3, "72"),     # Keras: Input((4, 2)) -> LSTM(3): 72
    (13, 5, 10, "640"),  # Keras: LSTM(10, input_shape=(13, 5)): 640
])
def test_small_lstm_counts_from_keras_printouts(timesteps, features, units, count):
    inp = nn.Input((timesteps, features), name="inp")
    model = nn.Model(inp, nn.LSTM(units, name="lstm")(inp))
    lines = summary_of(model)
    assert cells(row(lines, "lstm")) == ["lstm (LSTM)", f"(None, {units})", count]
    assert cells(row(lines, "inp")) == ["inp (InputLayer)", f"(None, {timesteps}, {features})",
                                        "0"]
    assert f"Total params: {count}" in lines
    assert f"Trainable params: {count}" in lines
    assert model.count_params() == int(count)


def test_sequential_has_no_input_layer_row():
    nn.reset_names()
    model = nn.Sequential([nn.Input((13, 5)), nn.LSTM(10)])
    lines = summary_of(model)
    assert not any("InputLayer" in line for line in lines)
    assert cells(row(lines, "lstm")) == ["lstm (LSTM)", "(None, 10)", "640"]
    assert "Total params: 640" in lines


def test_sequential_built_by_its_first_call_summarises_the_same():
    model = nn.Sequential([nn.LSTM(10, name="lstm"), nn.Dense(1, name="out")])
    with pytest.raises(RuntimeError, match="summary"):
        model.summary(print_fn=lambda line: None)
    model(np.zeros((2, 13, 5)))
    lines = summary_of(model)
    assert not any("InputLayer" in line for line in lines)
    assert cells(row(lines, "lstm")) == ["lstm (LSTM)", "(None, 10)", "640"]
    assert cells(row(lines, "out")) == ["out (Dense)", "(None, 1)", "11"]
    assert "Total params: 651" in lines


def test_explain_shows_how_the_lstm_count_arises(explained_lines):
    lines = explained_lines
    text = "\n".join(lines)
    assert "4 gates × 128 units × (10 inputs + 128 recurrent + 1 bias) = 71,168" in text
    assert "4 gates × 64 units × (128 inputs + 64 recurrent + 1 bias) = 49,408" in text
    # The explanation sits right under its own row.
    at = lines.index(row(lines, "lstm1"))
    assert "71,168" in "\n".join(lines[at + 1:at + 3])


def test_explain_shows_how_the_dense_count_arises():
    inp = nn.Input((10,), name="features")
    model = nn.Model(inp, nn.Dense(128, name="hidden")(inp))
    text = "\n".join(summary_of(model, explain=True))
    assert "10 × 128 weights + 128 biases = 1,408" in text
    assert "Total params: 1,408" in text


def test_explain_names_every_axis(explained_lines):
    lines = explained_lines
    text = "\n".join(lines)
    assert "(None, 50, 128) = batch × timesteps × units" in text
    assert "(None, 64) = batch × units" in text
    assert "(None, 50, 10) = batch × timesteps × features" in text
    assert any("None" in line and "batch" in line for line in lines[-3:])


def test_explain_keeps_the_plain_table_intact(seed_lines, explained_lines):
    table_rows = [line for line in explained_lines if not line.startswith("   ")]
    assert table_rows[:len(seed_lines)] == seed_lines


def test_a_long_output_shape_wraps_in_its_column_instead_of_being_cut():
    inp = nn.Input((5, 3))
    model = nn.Model(inp, nn.LSTM(4, return_state=True, name="lstm")(inp))
    lines = summary_of(model)
    row = next(k for k, line in enumerate(lines) if line.startswith("lstm (LSTM)"))
    column = lines[2].index("Output Shape")
    assert lines[row][column:].startswith("[(None, 4), (None, 4),")
    assert lines[row + 1][column:].startswith("(None, 4)]")
    assert lines[row + 1][:column].strip() == ""
    assert all(len(line) <= 65 for line in lines)


def test_keras_picks_the_narrow_table_by_depth_not_by_output_count():
    first, second = nn.Input((3,), name="first"), nn.Input((3,), name="second")
    two_heads = nn.Model([first, second], [nn.Dense(1)(first), nn.Dense(1)(second)])
    assert "Connected to" in summary_of(two_heads)[2]  # two calls at each depth

    inp = nn.Input((4, 2))
    states = nn.Bidirectional(nn.LSTM(3, return_state=True))(inp)  # one call, 5 outputs
    assert "Connected to" not in summary_of(nn.Model(inp, states))[2]

    shared = nn.Dense(3)
    assert "Connected to" in summary_of(nn.Model(first, shared(shared(first))))[2]
