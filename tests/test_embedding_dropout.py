"""Embedding (with Keras's mask_zero masking through recurrent layers) and Dropout."""

from __future__ import annotations

import numpy as np
import pytest

import microtensor as mt
import nn

RECURRENT = [getattr(nn, name) for name in ("LSTM", "GRU", "SimpleRNN") if hasattr(nn, name)]


def ragged_batch(padding: str):
    """Three token sequences of lengths 5, 2, 4 and the same padded to (3, 6) with 0."""
    sequences = [[3, 1, 4, 1, 5], [2, 6], [5, 3, 5, 8]]
    batch = np.zeros((3, 6), dtype=np.int64)
    for row, seq in enumerate(sequences):
        if padding == "post":
            batch[row, :len(seq)] = seq
        else:
            batch[row, len(batch[row]) - len(seq):] = seq
    return sequences, batch


# -- masking ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", RECURRENT, ids=lambda k: k.__name__)
@pytest.mark.parametrize("padding", ["post", "pre"])
def test_a_padded_batch_gives_each_sequence_its_unpadded_answer(kind, padding):
    mt.set_default_dtype(np.float64)
    nn.set_seed(1)
    inp = nn.Input(shape=(None,))
    x = nn.Embedding(10, 4, mask_zero=True)(inp)
    x = kind(5)(x)
    model = nn.Model(inp, nn.Dense(2)(x))
    sequences, batch = ragged_batch(padding)
    together = model.predict(batch)
    for row, seq in enumerate(sequences):
        alone = model.predict(np.array([seq]))[0]
        np.testing.assert_allclose(together[row], alone, rtol=1e-12, atol=1e-12)
    # Without the mask the padding is read as a token, and the answers change.
    nn.set_seed(1)
    unmasked = nn.Sequential([nn.Input(shape=(None,)), nn.Embedding(10, 4), kind(5), nn.Dense(2)])
    assert not np.allclose(unmasked.predict(batch)[1], unmasked.predict(np.array([[2, 6]]))[0])


@pytest.mark.parametrize("kind", RECURRENT, ids=lambda k: k.__name__)
def test_sequences_and_states_at_masked_steps_carry_the_last_real_ones(kind):
    """Keras's default: at a masked step the output is the previous h, the states unchanged."""
    mt.set_default_dtype(np.float64)
    nn.set_seed(2)
    embedding = nn.Embedding(10, 3, mask_zero=True)
    layer = kind(4, return_sequences=True, return_state=True)
    _, batch = ragged_batch("post")
    output, *states = layer(embedding(batch), mask=embedding.compute_mask(batch))
    _, *alone_states = layer(embedding(np.array([[2, 6]])))
    np.testing.assert_allclose(output.data[1, 2:], np.repeat(output.data[1, 1:2], 4, axis=0))
    for state, alone in zip(states, alone_states, strict=True):
        np.testing.assert_allclose(state.data[1], alone.data[0], rtol=1e-12, atol=1e-12)


def test_padding_gets_no_gradient_and_the_mask_flows_through_sequential():
    nn.set_seed(3)
    embedding = nn.Embedding(10, 4, mask_zero=True)
    model = nn.Sequential([embedding, nn.Dropout(0.5), nn.LSTM(3), nn.Dense(1)])
    _, batch = ragged_batch("pre")
    model.eval()
    model(batch).sum().backward()
    assert np.all(embedding.embeddings.grad[0] == 0)  # index 0 only ever appears as padding
    assert np.all(embedding.embeddings.grad[[1, 2, 3]] != 0)


def test_mask_is_passed_on_by_dense_and_dropped_by_a_last_step_output():
    inp = nn.Input(shape=(None,))
    x = nn.Embedding(10, 4, mask_zero=True)(inp)
    sequence_model = nn.Model(inp, nn.Dense(2)(nn.LSTM(3, return_sequences=True)(x)))
    _, batch = ragged_batch("post")
    sequence_model(batch)
    np.testing.assert_array_equal(sequence_model.output_mask, batch != 0)
    last_step_model = nn.Model(inp, nn.Dense(2)(nn.LSTM(3)(x)))
    last_step_model(batch)
    assert last_step_model.output_mask is None


def test_a_sequential_that_starts_with_embedding_takes_any_sequence_length():
    model = nn.Sequential([nn.Embedding(10, 4, mask_zero=True), nn.LSTM(3, name="lstm")])
    short = model.predict(np.array([[1, 2, 3, 0, 0]]))
    longer = model.predict(np.array([[1, 2, 3, 0, 0, 0, 0]]))  # built on 5 steps, given 7
    np.testing.assert_allclose(longer, short, rtol=1e-6)  # padding changes nothing
    assert model.get_layer("lstm").input_shape == (None, None, 4)


def test_a_mask_of_the_wrong_shape_is_refused():
    layer = nn.LSTM(3, name="reader")
    with pytest.raises(ValueError, match=r"reader \(LSTM\): mask must have shape .*\(2, 5\)"):
        layer(np.zeros((2, 5, 4)), mask=np.ones((2, 4), dtype=bool))


# -- Embedding ---------------------------------------------------------------------------------

def test_embedding_gradient_matches_torch_with_repeated_indices(torch):
    mt.set_default_dtype(np.float64)
    rng = np.random.default_rng(0)
    layer = nn.Embedding(7, 3)
    indices = np.array([[1, 1, 4, 0], [4, 6, 1, 1]])  # 1 four times, 4 twice, 2/3/5 never
    upstream = rng.normal(size=(2, 4, 3))
    out = layer(indices)
    (out * upstream).sum().backward()

    reference = torch.nn.Embedding(7, 3).double()
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(layer.embeddings.data))
    expected = reference(torch.from_numpy(indices))
    (expected * torch.from_numpy(upstream)).sum().backward()
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(layer.embeddings.grad, reference.weight.grad.numpy(), rtol=1e-12)
    assert np.all(layer.embeddings.grad[[2, 3, 5]] == 0)


def test_embedding_weights_start_uniform_in_keras_range():
    nn.set_seed(0)
    layer = nn.Embedding(200, 50)
    layer(np.array([[1]]))
    weights = layer.embeddings.data
    assert weights.shape == (200, 50) and weights.dtype == np.float32
    assert -0.05 <= weights.min() < -0.049 and 0.049 < weights.max() <= 0.05


def test_summary_counts_and_explains_embedding_params():
    model = nn.Sequential([nn.Input(shape=(20,)), nn.Embedding(1000, 64, name="words"),
                           nn.Dropout(0.2, name="drop"), nn.LSTM(32, name="lstm")])
    lines: list[str] = []
    model.summary(print_fn=lines.append, explain=True)
    text = "\n".join(lines)
    assert "words (Embedding)            (None, 20, 64)            64,000" in text
    assert "drop (Dropout)               (None, 20, 64)            0" in text
    assert "1000 tokens × 64 dimensions = 64,000" in text
    assert "Total params: 76,416" in text  # 64,000 + 4·32·(64 + 32 + 1) = 64,000 + 12,416


@pytest.mark.parametrize("bad, shown", [(10, "10"), (-1, "-1")])
def test_an_index_out_of_range_names_the_layer_and_the_value(bad, shown):
    layer = nn.Embedding(10, 2, name="tokens")
    with pytest.raises(ValueError, match=rf"tokens \(Embedding\): index {shown} is out of range "
                                         r"for input_dim=10 \(valid indices: 0 to 9\)"):
        layer(np.array([[1, bad, 2]]))


def test_fractional_indices_are_refused_and_integer_input_stays_integer(monkeypatch):
    layer = nn.Embedding(10, 2, name="tokens")
    with pytest.raises(TypeError, match=r"tokens \(Embedding\): expects integer .* 1\.5"):
        layer(np.array([[1.0, 1.5]]))
    seen = []
    original = nn.Embedding.forward
    monkeypatch.setattr(nn.Embedding, "forward",
                        lambda self, x: seen.append(x.dtype) or original(self, x))
    model = nn.Sequential([nn.Input(shape=(None,)), layer])
    big = 2**24 + 1  # float32 would turn it into 2**24
    assert nn.Embedding(big + 1, 1).convert_input(np.array([[big]])).data[0, 0] == big
    model.predict(np.array([[3, 4]]))
    assert seen and all(np.issubdtype(dtype, np.integer) for dtype in seen)


# -- Dropout ---------------------------------------------------------------------------------

def test_dropout_in_training_zeroes_about_rate_and_scales_the_rest():
    nn.set_seed(0)
    layer = nn.Dropout(0.3)
    x = mt.Tensor(np.ones((200, 500)), requires_grad=True)
    out = layer(x)
    dropped = out.data == 0
    assert abs(dropped.mean() - 0.3) < 0.01
    np.testing.assert_allclose(out.data[~dropped], 1 / 0.7, rtol=1e-6)
    out.backward(np.ones_like(out.data))
    assert np.all(x.grad[dropped] == 0)
    np.testing.assert_allclose(x.grad[~dropped], 1 / 0.7, rtol=1e-6)
    assert out.dtype == np.float32


def test_dropout_is_the_identity_in_eval_mode_and_set_seed_reproduces_it():
    x = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    layer = nn.Dropout(0.5)
    nn.set_seed(7)
    first = layer(x).data
    nn.set_seed(7)
    np.testing.assert_array_equal(layer(x).data, first)
    assert not np.array_equal(layer(x).data, first)  # the next draw differs
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x)
    assert (layer(x, training=True).data == 0).any()


def test_fit_trains_with_dropout_and_predict_does_not():
    nn.set_seed(0)
    dropout = nn.Dropout(0.5)
    model = nn.Sequential([nn.Input(shape=(4,)), nn.Dense(8), dropout, nn.Dense(1)])
    modes = []
    original = nn.Dropout.forward
    dropout.forward = lambda x, training=None: modes.append(dropout.training) or original(
        dropout, x, training)
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((8, 4)), np.zeros((8, 1))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert modes == [True, True]
    modes.clear()
    first, second = model.predict(x), model.predict(x)
    np.testing.assert_array_equal(first, second)
    assert modes == [False, False]
    model.evaluate(x, y)
    assert modes == [False, False, False]
    assert model.training  # fit and predict put the mode back


def test_dropout_rate_must_be_a_fraction():
    with pytest.raises(ValueError, match=r"drop \(Dropout\): rate .* \[0, 1\), got 1\.0"):
        nn.Dropout(1.0, name="drop")


def test_save_and_load_a_model_with_embedding_and_dropout(tmp_path):
    nn.set_seed(4)
    inp = nn.Input(shape=(None,), name="tokens")
    x = nn.Embedding(12, 5, mask_zero=True, name="words")(inp)
    x = nn.Dropout(0.25, name="drop")(x)
    x = nn.LSTM(3, name="reader")(x)
    model = nn.Model(inp, nn.Dense(1, activation="sigmoid")(x))
    model.save(tmp_path / "m.npz")
    loaded = nn.load_model(tmp_path / "m.npz")
    _, batch = ragged_batch("post")
    np.testing.assert_array_equal(loaded.predict(batch), model.predict(batch))
    assert loaded.get_layer("words").mask_zero and loaded.get_layer("words").input_dim == 12
    assert loaded.get_layer("drop").rate == 0.25
