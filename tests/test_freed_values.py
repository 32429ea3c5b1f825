"""Layers free the values of intermediates that no backward reads; gradients don't change."""

from __future__ import annotations

import contextlib
import tracemalloc

import numpy as np
import pytest

import microtensor as mt
import nn

STEPS = 12  # an LSTM step makes 16 tensors: 12 steps are well past SMALL_GRAPH


def lstm_and_input(steps: int = STEPS, batch: int = 3, units: int = 4):
    nn.set_seed(1)
    layer = nn.LSTM(units, return_sequences=True, name="lstm")
    x = np.random.default_rng(0).standard_normal((batch, steps, 2))
    return layer, mt.Tensor(x, dtype=np.float64)


def by_name(root: mt.Tensor, name: str) -> list[mt.Tensor]:
    return [t for t in mt.topological_order(root) if t.name == name]


def gradients(layer, x, keep: bool) -> list[np.ndarray]:
    layer.zero_grad()
    if keep:
        with mt.keep_values():
            out = layer(x)
    else:
        out = layer(x)
    (out * out).sum().backward()
    return [p.grad.copy() for p in layer.parameters()]


def test_dead_values_are_freed_and_the_ones_backward_reads_survive():
    layer, x = lstm_and_input()
    out = layer(x)
    for name, shape in [("z", (3, 16)), ("c_hat", (3, 4)), ("f", (3, 4)), ("c", (3, 4))]:
        tensors = by_name(out, name)
        assert len(tensors) == STEPS
        assert all(mt.is_freed(t) for t in tensors)  # not returned: the Tensor lets go
        assert all(t.shape == shape for t in tensors)  # the graph keeps its shapes
    assert not mt.is_freed(out) and np.isfinite(out.data).all()


def test_freeing_changes_no_gradient_bit():
    layer, x = lstm_and_input()
    kept, freed = gradients(layer, x, keep=True), gradients(layer, x, keep=False)
    for a, b in zip(kept, freed, strict=True):
        np.testing.assert_array_equal(a, b)


def whole_model(kind: str) -> nn.Model:
    """Models whose layers free values: every recurrent kind, stacked, masked, bidirectional."""
    nn.set_seed(2)
    inp = nn.Input(shape=(STEPS,)) if kind == "masked" else nn.Input(shape=(STEPS, 2))
    if kind == "masked":
        x = nn.Embedding(6, 3, mask_zero=True)(inp)
        x = nn.GRU(4, return_sequences=True)(x)
    elif kind == "bidirectional":
        x = nn.Bidirectional(nn.LSTM(3, return_sequences=True))(inp)
    else:
        x = getattr(nn, kind)(4, return_sequences=True)(inp)
    x = nn.SimpleRNN(3)(x)
    return nn.Model(inp, nn.Dense(1, activation="sigmoid")(nn.Dense(5, activation="relu")(x)))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN", "masked", "bidirectional"])
def test_whole_models_get_the_same_gradients_with_values_freed(kind):
    model = whole_model(kind)
    rng = np.random.default_rng(3)
    if kind == "masked":
        x = rng.integers(1, 6, size=(4, STEPS))
        x[:2, 7:] = 0  # padding
    else:
        x = rng.standard_normal((4, STEPS, 2))
    y = np.array([[0.0], [1.0], [1.0], [0.0]])

    def gradients(keep: bool) -> list[np.ndarray]:
        model.zero_grad()
        with mt.keep_values() if keep else contextlib.nullcontext():
            loss = nn.losses.binary_crossentropy(y, model(x))
        assert keep != any(mt.is_freed(t) for t in mt.topological_order(loss))
        loss.backward()
        return [p.grad.copy() for p in model.parameters()]
    kept, freed = gradients(keep=True), gradients(keep=False)
    for a, b in zip(kept, freed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_small_graph_keeps_every_value():
    layer, x = lstm_and_input(steps=2)
    out = layer(x)
    assert not any(mt.is_freed(t) for t in mt.topological_order(out))


def test_keep_values_keeps_every_value_of_a_large_graph():
    layer, x = lstm_and_input()
    with mt.keep_values():
        out = layer(x)
    assert not any(mt.is_freed(t) for t in mt.topological_order(out))
    out = layer(x)  # and the default comes back after the block
    assert any(mt.is_freed(t) for t in mt.topological_order(out))


def test_freed_values_are_nan_placeholders_that_cannot_be_written():
    layer, x = lstm_and_input()
    z = by_name(layer(x), "z")[0]
    assert np.isnan(z.data).all() and z.data.nbytes == z.data.itemsize * z.data.size
    with pytest.raises(ValueError):
        z.data[0, 0] = 1.0
    assert "value freed after the forward pass; shape (3, 16)" in repr(z)


def test_an_error_inside_a_layer_leaves_no_freeing_behind():
    layer, x = lstm_and_input()
    with pytest.raises(ValueError, match="initial_state"):
        layer(x, initial_state=[np.zeros((3, 4))])  # one state of two: refused mid-call
    small = lstm_and_input(steps=2)[0](x[:, :2])
    assert not any(mt.is_freed(t) for t in mt.topological_order(small))


def test_show_values_on_a_large_graph_says_how_to_keep_values():
    layer, x = lstm_and_input()
    loss = layer(x).sum()
    source = mt.draw_graph(loss, show_values=True, max_steps=1).source
    assert "data freed" in source and "mt.keep_values()" in source
    with mt.keep_values():
        loss = layer(x).sum()
    assert "freed" not in mt.draw_graph(loss, show_values=True, max_steps=1).source


def bytes_held_after(fn) -> int:
    """Memory newly allocated by ``fn`` and still held when it returns (tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def test_the_graph_of_an_lstm_holds_less_than_half_the_memory():
    layer, x = lstm_and_input(steps=40, batch=64, units=32)
    layer(x)  # built
    held = {}

    def forward(keep: bool):
        def run():
            if keep:
                with mt.keep_values():
                    held[keep] = layer(x)
            else:
                held[keep] = layer(x)
        return run
    kept, freed = bytes_held_after(forward(True)), bytes_held_after(forward(False))
    # Per step: 17 arrays of (batch, units) kept against the 7 that backward reads.
    assert freed < 0.5 * kept


class StatefulLSTM(nn.layer.Layer):
    """Carries the LSTM's final state over to the next call, detached or not."""

    def __init__(self, detach: bool):
        super().__init__(f"stateful_{detach}")
        self.rnn = nn.LSTM(4, return_sequences=True, return_state=True, name=f"inner_{detach}")
        self.detach, self.state = detach, None

    def forward(self, x):
        out, h, c = self.rnn(x, initial_state=self.state)
        self.state = [h.detach(), c.detach()] if self.detach else [h, c]
        return out * 2


def test_using_a_freed_value_again_raises_and_says_what_to_do():
    x = np.random.default_rng(0).standard_normal((2, STEPS, 3))
    layer = StatefulLSTM(detach=False)
    assert np.isfinite(layer(x).data).all()
    with pytest.raises(mt.FreedValueError, match=r"matmul: an input is the tensor h = mul \(2, 4\) "
                       r"made in inner_False at step 12, whose value was freed.*\.detach\(\) it "
                       r"there.*mt\.keep_values\(\)"):
        layer(x)
    with pytest.raises(mt.FreedValueError, match="^detach is the tensor h = mul"):
        layer.state[0].detach()


def test_states_detached_inside_the_call_carry_over():
    x = np.random.default_rng(0).standard_normal((2, STEPS, 3))
    layer = StatefulLSTM(detach=True)
    first, second = layer(x), layer(x)
    assert np.isfinite(second.data).all() and not np.allclose(first.data, second.data)
