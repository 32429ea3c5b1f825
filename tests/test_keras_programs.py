"""Short Keras 3 programs, written as Keras's own examples write them, run twice: with
``keras`` (torch backend) and with ``import nn as keras``. Same starting weights (through
``set_weights``), same data, no shuffling: the histories, the trained weights and the
predictions must agree. Each program is the shape of a published Keras example:
addition_rnn, lstm_seq2seq, bidirectional_lstm_imdb, lstm_character_level_text_generation."""

from __future__ import annotations

import numpy as np
import pytest

import microtensor as mt
import nn

ATOL = 2e-5


def assert_same_history(ours, theirs) -> None:
    assert set(ours.history) == set(theirs.history)
    for key, values in theirs.history.items():
        np.testing.assert_allclose(ours.history[key], values, atol=ATOL, rtol=1e-4, err_msg=key)


def assert_same_weights(ours, theirs) -> None:
    for got, want in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=1e-4)


def twins(keras, build):
    """``build(keras)`` with real Keras and with nn, the second given the first's weights."""
    theirs = build(keras)
    nn.reset_names()
    ours = build(nn)
    ours.set_weights(theirs.get_weights())
    return ours, theirs


def random_data(seed: int = 0):
    return np.random.default_rng(seed)


# -- addition_rnn: Sequential, LSTM -> RepeatVector -> LSTM(return_sequences) -> Dense -------

def addition_model(keras):
    layers = keras.layers
    model = keras.Sequential()
    model.add(layers.Input((5, 12)))
    model.add(layers.LSTM(16))
    model.add(layers.RepeatVector(3))
    model.add(layers.LSTM(16, return_sequences=True))
    model.add(layers.TimeDistributed(layers.Dense(12)))
    model.add(layers.Activation("softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def test_addition_rnn(keras):
    generator = random_data()
    x = np.eye(12, dtype=bool)[generator.integers(0, 12, size=(48, 5))]
    y = np.eye(12, dtype=bool)[generator.integers(0, 12, size=(48, 3))]
    ours, theirs = twins(keras, addition_model)
    histories = [model.fit(x[:40], y[:40], batch_size=8, epochs=2, shuffle=False, verbose=0,
                           validation_data=(x[40:], y[40:])) for model in (ours, theirs)]
    assert_same_history(*histories)
    assert_same_weights(ours, theirs)
    preds = [np.argmax(model.predict(x[40:], verbose=0), axis=-1) for model in (ours, theirs)]
    np.testing.assert_array_equal(*preds)


# -- lstm_seq2seq: two inputs, return_state, initial_state, rmsprop; inference models --------

def seq2seq_model(keras):
    encoder_inputs = keras.Input(shape=(None, 6))
    encoder = keras.layers.LSTM(8, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input(shape=(None, 5))
    decoder_lstm = keras.layers.LSTM(8, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = keras.layers.Dense(5, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def inference_models(keras, model):
    encoder_inputs = model.input[0]  # input_1
    encoder_outputs, state_h_enc, state_c_enc = model.layers[2].output  # lstm_1
    encoder_states = [state_h_enc, state_c_enc]
    encoder_model = keras.Model(encoder_inputs, encoder_states)
    decoder_inputs = model.input[1]  # input_2
    decoder_state_input_h = keras.Input(shape=(8,))
    decoder_state_input_c = keras.Input(shape=(8,))
    decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
    decoder_lstm = model.layers[3]
    decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(
        decoder_inputs, initial_state=decoder_states_inputs)
    decoder_states = [state_h_dec, state_c_dec]
    decoder_dense = model.layers[4]
    decoder_outputs = decoder_dense(decoder_outputs)
    decoder_model = keras.Model([decoder_inputs] + decoder_states_inputs,
                                [decoder_outputs] + decoder_states)
    return encoder_model, decoder_model


def test_lstm_seq2seq(keras):
    generator = random_data(1)
    encoder_input_data = np.eye(6, dtype="float32")[generator.integers(0, 6, size=(40, 7))]
    decoder_input_data = np.eye(5, dtype="float32")[generator.integers(0, 5, size=(40, 4))]
    decoder_target_data = np.roll(decoder_input_data, -1, axis=1)
    ours, theirs = twins(keras, seq2seq_model)
    assert [type(layer).__name__ for layer in ours.layers] == [
        type(layer).__name__ for layer in theirs.layers]
    histories = [model.fit([encoder_input_data, decoder_input_data], decoder_target_data,
                           batch_size=8, epochs=2, validation_split=0.2, shuffle=False, verbose=0)
                 for model in (ours, theirs)]
    assert_same_history(*histories)
    assert_same_weights(ours, theirs)
    ours_inference = inference_models(nn, ours)
    theirs_inference = inference_models(keras, theirs)
    states = [model.predict(encoder_input_data[:3], verbose=0)
              for model in (ours_inference[0], theirs_inference[0])]
    for got, want in zip(*states, strict=True):
        np.testing.assert_allclose(got, want, atol=ATOL)
    step = decoder_input_data[:3, :1]
    outputs = [model.predict([step, *states[1]], verbose=0)
               for model in (ours_inference[1], theirs_inference[1])]
    for got, want in zip(*outputs, strict=True):
        np.testing.assert_allclose(got, want, atol=ATOL)


# -- bidirectional_lstm_imdb: int32 Input, Embedding, Bidirectional, pad_sequences ----------

def imdb_model(keras):
    layers = keras.layers
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(50, 8)(inputs)
    x = layers.Bidirectional(layers.LSTM(6, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(6))(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def test_bidirectional_lstm_imdb(keras):
    generator = random_data(2)
    reviews = [list(generator.integers(1, 50, size=generator.integers(3, 15))) for _ in range(40)]
    labels = generator.integers(0, 2, size=40)
    x_train = nn.utils.pad_sequences(reviews, maxlen=10)
    np.testing.assert_array_equal(x_train, keras.utils.pad_sequences(reviews, maxlen=10))
    ours, theirs = twins(keras, imdb_model)
    histories = [model.fit(x_train[:24], labels[:24], batch_size=8, epochs=1, shuffle=False,
                           validation_data=(x_train[32:], labels[32:]), verbose=0)
                 for model in (ours, theirs)]
    assert_same_history(*histories)
    assert_same_weights(ours, theirs)


# -- lstm_character_level_text_generation: bool one-hot data, RMSprop(learning_rate=) --------

def text_model(keras):
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(shape=(6, 9)),
        layers.LSTM(16),
        layers.Dense(9, activation="softmax"),
    ])
    optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer)
    return model


def test_lstm_character_level_text_generation(keras):
    generator = random_data(3)
    text = generator.integers(0, 9, size=200)
    sentences = np.stack([text[i:i + 6] for i in range(0, 190, 3)])
    next_chars = text[6:196:3]
    x = np.zeros((len(sentences), 6, 9), dtype="bool")
    y = np.zeros((len(sentences), 9), dtype="bool")
    for i, sentence in enumerate(sentences):
        x[i, np.arange(6), sentence] = 1
        y[i, next_chars[i]] = 1
    ours, theirs = twins(keras, text_model)
    histories = [model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
                 for model in (ours, theirs)]
    assert_same_history(*histories)
    preds = [model.predict(x[:1], verbose=0)[0] for model in (ours, theirs)]
    np.testing.assert_allclose(*preds, atol=ATOL)


# -- callbacks, weights, evaluate ------------------------------------------------------------

def small_model(keras):
    model = keras.Sequential([keras.Input((4, 3)), keras.layers.LSTM(5),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.05),
                  loss="binary_crossentropy", metrics=["accuracy"])
    return model


def small_data(samples: int = 48):
    generator = random_data(4)
    x = generator.normal(size=(samples, 4, 3)).astype("float32")
    return x, (x[:, 0, 0] > x[:, -1, 1]).astype("float32")


def test_early_stopping_restores_the_best_weights_as_keras(keras):
    x, y = small_data()
    ours, theirs = twins(keras, small_model)
    histories = []
    for module, model in ((nn, ours), (keras, theirs)):
        stop = module.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=0.01,
                                              restore_best_weights=True)
        histories.append(model.fit(x, y, batch_size=8, epochs=30, validation_split=0.25,
                                   shuffle=False, callbacks=[stop], verbose=0))
    assert_same_history(*histories)
    assert len(histories[0].epoch) < 30
    assert_same_weights(ours, theirs)


@pytest.mark.parametrize("weighting", ["class_weight", "sample_weight"])
def test_class_and_sample_weights_weigh_the_loss_as_keras(keras, weighting):
    x, y = small_data()
    options = ({"class_weight": {0: 0.3, 1: 2.0}} if weighting == "class_weight" else
               {"sample_weight": np.linspace(0.1, 2.0, len(y))})
    ours, theirs = twins(keras, small_model)
    histories = [model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, **options)
                 for model in (ours, theirs)]
    assert_same_history(*histories)  # the loss and the weighted accuracy
    assert_same_weights(ours, theirs)
    x_test, y_test = small_data(16)
    weights = np.linspace(2.0, 0.5, 16)
    got = ours.evaluate(x_test, y_test, sample_weight=weights, return_dict=True)
    want = theirs.evaluate(x_test, y_test, sample_weight=weights, return_dict=True, verbose=0)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=ATOL, err_msg=key)


def test_evaluate_return_dict(keras):
    x, y = small_data()
    ours, theirs = twins(keras, small_model)
    got = ours.evaluate(x, y, return_dict=True)
    want = theirs.evaluate(x, y, return_dict=True, verbose=0)
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=ATOL)


def test_model_weight_lists_match_keras(keras):
    ours, theirs = twins(keras, seq2seq_model)
    for attribute in ("weights", "trainable_weights", "non_trainable_weights"):
        assert [tuple(w.shape) for w in getattr(ours, attribute)] == [
            tuple(w.shape) for w in getattr(theirs, attribute)]
    assert [len(t.shape) for t in ours.inputs] == [len(t.shape) for t in theirs.inputs]
    assert ours.output.shape == tuple(theirs.output.shape)


# -- layers on their own ----------------------------------------------------------------------

@pytest.mark.parametrize("make, shape", [
    (lambda k: k.layers.RepeatVector(3), (2, 4)),
    (lambda k: k.layers.Flatten(), (2, 3, 4)),
    (lambda k: k.layers.Activation("tanh"), (2, 3)),
    (lambda k: k.layers.TimeDistributed(k.layers.Dense(2)), (2, 3, 4)),
])
def test_layers_compute_what_kerass_compute(keras, make, shape):
    x = random_data(5).normal(size=shape).astype("float32")
    theirs = make(keras)
    want = keras.ops.convert_to_numpy(theirs(x))
    ours = make(nn)
    ours(x)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours(x).data, want, atol=1e-6)


def test_masking_and_concatenate_as_keras(keras):
    x = random_data(6).normal(size=(2, 5, 3)).astype("float32")
    x[0, 3:] = 0.0  # padding
    results = []
    for module in (keras, nn):
        inputs = module.Input((5, 3))
        masked = module.layers.Masking()(inputs)
        a = module.layers.LSTM(4, return_sequences=True)(masked)
        b = module.layers.Dense(2)(masked)
        joined = module.layers.Concatenate()([a, b])
        model = module.Model(inputs, module.layers.LSTM(3)(joined))
        if module is nn:
            model.set_weights(results[0][1])
        results.append((model.predict(x, verbose=0), model.get_weights()))
    np.testing.assert_allclose(results[1][0], results[0][0], atol=1e-5)


def test_to_categorical_as_keras(keras):
    labels = np.array([[0], [2], [1]])
    np.testing.assert_array_equal(nn.utils.to_categorical(labels, 4),
                                  keras.utils.to_categorical(labels, 4))
    sequences = np.array([[0, 1], [2, 2]])
    np.testing.assert_array_equal(nn.utils.to_categorical(sequences),
                                  keras.utils.to_categorical(sequences))


def test_pad_sequences_options_as_keras(keras):
    sequences = [[1, 2, 3, 4], [5], []]
    for options in ({"maxlen": 3, "padding": "post"}, {"maxlen": 2, "truncating": "post"},
                    {"value": -1}):
        np.testing.assert_array_equal(nn.utils.pad_sequences(sequences, **options),
                                      keras.utils.pad_sequences(sequences, **options))


@pytest.mark.parametrize("name, options", [
    ("BinaryCrossentropy", {"from_logits": True}), ("BinaryCrossentropy", {}),
    ("CategoricalCrossentropy", {"from_logits": True}), ("MeanSquaredError", {}),
    ("SparseCategoricalCrossentropy", {"from_logits": True}),
])
def test_loss_classes_as_keras(keras, name, options):
    generator = random_data(7)
    logits = generator.normal(size=(6, 3)).astype("float32")
    if name == "SparseCategoricalCrossentropy":
        labels = generator.integers(0, 3, size=6)
    elif name == "BinaryCrossentropy" and not options:
        logits = 1 / (1 + np.exp(-logits))  # probabilities
        labels = generator.integers(0, 2, size=(6, 3)).astype("float32")
    else:
        labels = np.eye(3, dtype="float32")[generator.integers(0, 3, size=6)]
    ours = getattr(nn.losses, name)(**options)(labels, mt.Tensor(logits))
    theirs = getattr(keras.losses, name)(**options)(labels, logits)
    np.testing.assert_allclose(ours.item(), float(keras.ops.convert_to_numpy(theirs)),
                               rtol=1e-5)


def test_input_options_and_embedding_input_length_as_keras(keras):
    shapes = []
    for module in (keras, nn):
        inputs = module.Input(shape=(7,), dtype="int32", batch_size=4)
        length = {"input_length": 7} if module is nn else {}  # Keras 3 dropped the argument
        x = module.layers.Embedding(10, 3, **length)(inputs)
        model = module.Model(inputs, module.layers.Flatten()(x))
        shapes.append((tuple(model.input.shape), tuple(model.output.shape)))
    assert shapes[0] == shapes[1] == ((4, 7), (4, 21))
