"""Bidirectional as Keras has it: both copies keep every setting of the wrapped layer
(initializers and activations, by name or as functions), and with return_sequences=True
a masked time step outputs zeros in both halves (Keras's zero_output_for_mask)."""

from __future__ import annotations

import numpy as np
import pytest

import microtensor as mt
import nn

KINDS = [nn.LSTM, nn.GRU, nn.SimpleRNN]
MERGE_MODES = ["concat", "sum", "mul", "ave", None]


def constant(value):
    def initializer(shape):
        return np.full(shape, value)
    return initializer


def half_tanh(x):
    return mt.tanh(x) * 0.5


def soft_gate(x):
    return mt.sigmoid(x * 2.0)


def built(layer, features=2, timesteps=4):
    layer(np.zeros((1, timesteps, features)))
    return layer


def copies(bi):
    return [bi.forward_layer, bi.backward_layer]


# -- every setting of the wrapped layer reaches both copies -----------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_both_copies_use_the_initializers_given_by_name(kind):
    bi = built(nn.Bidirectional(kind(3, kernel_initializer="zeros", recurrent_initializer="ones",
                                     bias_initializer="ones")))
    for layer in copies(bi):
        assert (layer.kernel_initializer, layer.recurrent_initializer,
                layer.bias_initializer) == ("zeros", "ones", "ones")
        np.testing.assert_array_equal(layer.kernel.data, 0.0)
        np.testing.assert_array_equal(layer.recurrent_kernel.data, 1.0)
        np.testing.assert_array_equal(layer.bias.data, 1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_both_copies_use_initializer_and_activation_functions(kind):
    gated = {} if kind is nn.SimpleRNN else {"recurrent_activation": soft_gate}
    settings = dict(activation=half_tanh, kernel_initializer=constant(0.25),
                    recurrent_initializer=constant(-0.125), bias_initializer=constant(0.05),
                    return_sequences=True, **gated)
    bi = built(nn.Bidirectional(kind(3, **settings), merge_mode=None))
    plain = built(kind(3, **settings))
    for layer in copies(bi):
        assert layer.activation is half_tanh
        if gated:
            assert layer.recurrent_activation is soft_gate
        np.testing.assert_array_equal(layer.kernel.data, 0.25)
        np.testing.assert_array_equal(layer.recurrent_kernel.data, -0.125)
    x = np.random.default_rng(0).normal(size=(2, 4, 2))
    forward, backward = bi(x)
    np.testing.assert_allclose(forward.data, plain(x).data, rtol=1e-6)
    np.testing.assert_allclose(backward.data, plain(x[:, ::-1]).data[:, ::-1], rtol=1e-6)


def test_the_other_settings_still_reach_both_copies():
    gru = nn.Bidirectional(nn.GRU(2, use_bias=False, reset_after=False,
                                  kernel_initializer="ones"))
    lstm = nn.Bidirectional(nn.LSTM(2, unit_forget_bias=False, recurrent_activation="tanh",
                                    bias_initializer="ones"))
    built(gru), built(lstm)
    for layer in copies(gru):
        assert not layer.use_bias and not layer.reset_after and "bias" not in layer._weights
        np.testing.assert_array_equal(layer.kernel.data, 1.0)
    for layer in copies(lstm):
        assert not layer.unit_forget_bias and layer.recurrent_activation is mt.tanh
        np.testing.assert_array_equal(layer.bias.data, 1.0)


def bidirectional_model(layer):
    inputs = nn.Input((4, 2))
    return nn.Model(inputs, nn.Bidirectional(layer, name="bi")(inputs))


def test_save_and_load_keep_initializers_given_by_name(tmp_path):
    model = bidirectional_model(nn.LSTM(3, kernel_initializer="zeros",
                                        recurrent_initializer="glorot_uniform",
                                        bias_initializer="ones", return_sequences=True))
    x = np.random.default_rng(1).normal(size=(2, 4, 2))
    model.save(tmp_path / "bi.npz")
    loaded = nn.load_model(tmp_path / "bi.npz")
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)
    bi = loaded.get_layer("bi")
    assert bi.get_config() == model.get_layer("bi").get_config()
    for layer in [bi.layer, *copies(bi)]:
        assert (layer.kernel_initializer, layer.recurrent_initializer,
                layer.bias_initializer) == ("zeros", "glorot_uniform", "ones")


def test_saving_with_functions_behaves_as_for_the_plain_layer(tmp_path):
    """As for nn.LSTM itself: an initializer function isn't saved (the weights are), so the
    model loads; an activation function is saved by its name, which load_model doesn't know."""
    model = bidirectional_model(nn.LSTM(3, kernel_initializer=constant(0.25)))
    np.testing.assert_array_equal(model.get_layer("bi").forward_layer.kernel.data, 0.25)
    model.save(tmp_path / "bi.npz")
    x = np.random.default_rng(2).normal(size=(2, 4, 2))
    np.testing.assert_allclose(nn.load_model(tmp_path / "bi.npz").predict(x), model.predict(x),
                               rtol=1e-6)

    for layer in [nn.LSTM(3, activation=half_tanh, name="inner"),
                  nn.Bidirectional(nn.LSTM(3, activation=half_tanh, name="inner"))]:
        inputs = nn.Input((4, 2))
        with pytest.warns(UserWarning, match="activation half_tanh is your own function"):
            nn.Model(inputs, layer(inputs)).save(tmp_path / "custom.npz")
        with pytest.raises(ValueError, match=r"inner \(LSTM\): unknown activation 'half_tanh'"):
            nn.load_model(tmp_path / "custom.npz")


# -- masked steps output zeros in both halves -------------------------------------------------

TOKENS = np.array([[1, 2, 3, 0, 0],     # padded at the end
                   [0, 0, 4, 1, 2],     # padded at the start
                   [3, 1, 2, 4, 1]])    # not padded
REAL = [slice(0, 3), slice(2, 5), slice(0, 5)]


def initial_states(kind, batch, units=3, seed=3):
    count = 2 * len(kind.state_names)
    return list(np.random.default_rng(seed).normal(size=(count, batch, units)))


def halves(output, merge_mode, units=3):
    """The forward and backward halves where they can be told apart, else [merged]."""
    if merge_mode is None:
        return [o.data for o in output]
    if merge_mode == "concat":
        return [output.data[..., :units], output.data[..., units:]]
    return [output.data]


@pytest.mark.parametrize("merge_mode", MERGE_MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_masked_steps_output_zeros_in_both_halves(kind, merge_mode):
    """Real steps are as if each sequence were read alone, unpadded; masked steps are 0."""
    nn.set_seed(0)
    embedding = nn.Embedding(5, 2, mask_zero=True)
    bi = nn.Bidirectional(kind(3, return_sequences=True), merge_mode=merge_mode)
    x, mask = embedding(TOKENS), embedding.compute_mask(TOKENS)
    states = initial_states(kind, len(TOKENS))  # not 0: a carried state would show
    output = halves(bi(x, initial_state=states, mask=mask), merge_mode)
    for part in output:
        np.testing.assert_array_equal(part[~mask], 0.0)
    for i, real in enumerate(REAL):
        alone = bi(x[i:i + 1, real], initial_state=[s[i:i + 1] for s in states])
        for part, part_alone in zip(output, halves(alone, merge_mode), strict=True):
            np.testing.assert_allclose(part[i, real], part_alone[0], rtol=1e-5, atol=1e-6)


def test_masked_steps_are_zeros_through_a_model_and_the_plain_layer_still_carries_h():
    inputs = nn.Input((5,))
    x = nn.Embedding(5, 2, mask_zero=True)(inputs)
    lstm = nn.LSTM(3, return_sequences=True)
    model = nn.Model(inputs, nn.Bidirectional(lstm, name="bi")(x))
    forward, backward = halves(mt.Tensor(model.predict(TOKENS)), "concat")
    mask = TOKENS != 0
    np.testing.assert_array_equal(forward[~mask], 0.0)
    np.testing.assert_array_equal(backward[~mask], 0.0)
    np.testing.assert_allclose(model.predict(TOKENS[2:]), model.predict(TOKENS)[2:], rtol=1e-6)
    # Only the wrapper zeros masked steps: the layer itself keeps Keras's default.
    inner = model.get_layer("bi").forward_layer
    carried = inner(np.ones((1, 3, 2)), mask=np.array([[True, True, False]])).data
    np.testing.assert_array_equal(carried[0, 2], carried[0, 1])
    assert not np.allclose(carried[0, 2], 0.0)


@pytest.mark.parametrize("kind", KINDS)
def test_states_are_the_last_real_ones_and_a_last_step_output_is_unchanged(kind):
    nn.set_seed(1)
    embedding = nn.Embedding(5, 2, mask_zero=True)
    x, mask = embedding(TOKENS), embedding.compute_mask(TOKENS)
    sequences = nn.Bidirectional(kind(3, return_sequences=True, return_state=True))
    last = nn.Bidirectional(kind(3, return_state=True))
    output, *states = sequences(x, mask=mask)
    np.testing.assert_array_equal(output.data[~mask], 0.0)
    for i, real in enumerate(REAL):
        _, *alone = sequences(x[i:i + 1, real])
        for state, state_alone in zip(states, alone, strict=True):
            np.testing.assert_allclose(state.data[i], state_alone.data[0], rtol=1e-5, atol=1e-6)
    # return_sequences=False: the output is the final h of each half, as before.
    final, *final_states = last(x, mask=mask)
    half = len(final_states) // 2
    np.testing.assert_allclose(final.data, np.concatenate(
        [final_states[0].data, final_states[half].data], axis=-1), rtol=1e-6)


@pytest.mark.parametrize("merge_mode", MERGE_MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_gradients_with_a_mask_equal_those_of_each_sequence_alone(kind, merge_mode):
    """The padded batch's gradients are the sums of each unpadded sequence's, read alone."""
    mt.set_default_dtype(np.float64)
    nn.set_seed(2)
    rng = np.random.default_rng(4)
    bi = nn.Bidirectional(kind(3, return_sequences=True), merge_mode=merge_mode)
    mask = TOKENS != 0
    x, states = rng.normal(size=(3, 5, 2)), initial_states(kind, 3)
    weighting = rng.normal(size=(2, 3, 5, 6))  # of every output value, for the loss

    def backward(output, rows, steps):
        parts = output if merge_mode is None else [output]
        loss = parts[0].sum() * 0.0
        for k, part in enumerate(parts):
            loss = loss + (part * weighting[k, rows, steps, :part.shape[-1]]).sum()
        bi.zero_grad()
        loss.backward()
        return {name: p.grad.copy() for name, p in bi.named_parameters()}

    inputs = mt.Tensor(x, requires_grad=True)
    padded = backward(bi(inputs, initial_state=states, mask=mask), slice(None), slice(None))
    alone = {name: np.zeros_like(grad) for name, grad in padded.items()}
    for i, real in enumerate(REAL):
        row = mt.Tensor(x[i:i + 1, real], requires_grad=True)
        output = bi(row, initial_state=[s[i:i + 1] for s in states])
        for name, grad in backward(output, slice(i, i + 1), real).items():
            alone[name] += grad
        np.testing.assert_allclose(inputs.grad[i, real], row.grad[0], rtol=1e-7, atol=1e-10)
        np.testing.assert_array_equal(inputs.grad[i][~mask[i]], 0.0)
    for name, grad in padded.items():
        np.testing.assert_allclose(grad, alone[name], rtol=1e-7, atol=1e-10, err_msg=name)
