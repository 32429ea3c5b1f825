"""Every value is kept by default; mt.freeing_values() (fit's own step) drops the ones no
backward reads, and mt.plain_engine() runs without speedups.py: gradients don't change."""

from __future__ import annotations

import contextlib
import tracemalloc

import numpy as np
import pytest

import microtensor as mt
import nn
from microtensor.speedups import is_freed

STEPS = 12  # an LSTM step makes 16 tensors: 12 steps made 192, past the old limit of 100


def lstm_and_input(steps: int = STEPS, batch: int = 3, units: int = 4):
    nn.set_seed(1)
    layer = nn.LSTM(units, return_sequences=True, name="lstm")
    x = np.random.default_rng(0).standard_normal((batch, steps, 2))
    return layer, mt.Tensor(x, dtype=np.float64)


def by_name(root: mt.Tensor, name: str) -> list[mt.Tensor]:
    return [t for t in mt.topological_order(root) if t.name == name]


def freed(root: mt.Tensor) -> list[mt.Tensor]:
    return [t for t in mt.topological_order(root) if is_freed(t.data)]


def gradients(layer, x, mode: str) -> list[np.ndarray]:
    layer.zero_grad()
    with {"kept": contextlib.nullcontext, "freed": mt.freeing_values,
          "plain": mt.plain_engine}[mode]():
        out = layer(x)
    (out * out).sum().backward()
    return [p.grad.copy() for p in layer.parameters()]


def assert_same_gradient(fast: np.ndarray, other: np.ndarray, mode: str) -> None:
    """Freeing values changes no arithmetic: bit for bit. The plain engine adds a weight's
    per-step products one by one instead of ten at a time: float32 rounding apart."""
    if mode == "freed":
        np.testing.assert_array_equal(fast, other)
    else:
        np.testing.assert_allclose(fast, other, rtol=1e-6, atol=1e-6 * np.abs(fast).max())


def test_every_value_of_a_long_unroll_is_kept_by_default():
    layer, x = lstm_and_input()
    out = layer(x)
    assert not freed(out)
    gate = [t for t in by_name(out, "i") if t.step == 3][0]
    kernel, recurrent, bias = (p.data for p in layer.parameters())
    h = c = np.zeros((3, 4))
    for t in range(3):  # the LSTM by hand in numpy, to step 3
        z = x.data[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = (z[:, k * 4:(k + 1) * 4] for k in range(4))
        i, f, o = (1 / (1 + np.exp(-v)) for v in (i, f, o))
        c = f * c + i * np.tanh(g)
        h = o * np.tanh(c)
    np.testing.assert_allclose(gate.data, i, rtol=1e-5)  # the layer computes in float32


def test_freeing_values_drops_dead_values_and_keeps_what_backward_reads():
    layer, x = lstm_and_input()
    with mt.freeing_values():
        out = layer(x)
    for name, shape in [("z", (3, 16)), ("c_hat", (3, 4)), ("f", (3, 4))]:
        tensors = by_name(out, name)
        assert len(tensors) == STEPS
        assert all(is_freed(t.data) for t in tensors)  # not returned: the Tensor lets go
        assert all(t.shape == shape for t in tensors)  # the graph keeps its shapes
    for name in ("h", "c"):  # each step returns them: the next step reads them anyway
        assert not any(is_freed(t.data) for t in by_name(out, name))
    assert not is_freed(out.data) and np.isfinite(out.data).all()
    assert not freed(layer(x))  # and the default comes back after the block


@pytest.mark.parametrize("mode", ["freed", "plain"])
def test_freeing_and_the_plain_engine_change_no_gradient_bit(mode):
    layer, x = lstm_and_input()
    kept, other = gradients(layer, x, "kept"), gradients(layer, x, mode)
    for a, b in zip(kept, other, strict=True):
        assert_same_gradient(a, b, mode)


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


@pytest.mark.parametrize("mode", ["freed", "plain"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN", "masked", "bidirectional"])
def test_whole_models_get_the_same_gradients_on_every_engine_path(kind, mode):
    model = whole_model(kind)
    rng = np.random.default_rng(3)
    if kind == "masked":
        x = rng.integers(1, 6, size=(4, STEPS))
        x[:2, 7:] = 0  # padding
    else:
        x = rng.standard_normal((4, STEPS, 2))
    y = np.array([[0.0], [1.0], [1.0], [0.0]])

    def gradients(mode: str) -> list[np.ndarray]:
        model.zero_grad()
        with {"kept": contextlib.nullcontext, "freed": mt.freeing_values,
              "plain": mt.plain_engine}[mode]():
            loss = nn.losses.binary_crossentropy(y, model(x))
            assert bool(freed(loss)) == (mode == "freed")
            loss.backward()
        return [p.grad.copy() for p in model.parameters()]
    kept, other = gradients("kept"), gradients(mode)
    for a, b in zip(kept, other, strict=True):
        assert_same_gradient(a, b, mode)


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
            with contextlib.nullcontext() if keep else mt.freeing_values():
                held[keep] = layer(x)
        return run
    kept, freed = bytes_held_after(forward(True)), bytes_held_after(forward(False))
    # Per step: 17 arrays of (batch, units) kept against the 7 that backward reads.
    assert freed < 0.5 * kept


def test_a_freed_value_raises_only_inside_the_opt_in_and_says_so():
    layer, x = lstm_and_input()
    with mt.freeing_values():
        z = by_name(layer(x), "z")[0]
    assert np.isnan(z.data).all() and z.data.nbytes == z.data.itemsize * z.data.size
    assert "value freed after the forward pass; shape (3, 16)" in repr(z)
    with pytest.raises(mt.FreedValueError, match=r"^x.numpy\(\): x is the tensor z = add "
                       r"\(3, 16\) made in lstm at step 1, whose value was dropped inside "
                       r"mt.freeing_values\(\)"):
        z.numpy()
    with pytest.raises(mt.FreedValueError, match=r"^mul: an input is the tensor z"):
        z * 2


def test_show_values_of_a_freed_graph_says_how_to_see_them():
    layer, x = lstm_and_input()
    with mt.freeing_values():
        loss = layer(x).sum()
    source = mt.draw_graph(loss, show_values=True, max_steps=1).source
    assert "data freed" in source and "outside that block" in source
    loss = layer(x).sum()
    assert "freed" not in mt.draw_graph(loss, show_values=True, max_steps=1).source


def test_a_trained_model_keeps_every_value_of_a_plain_call():
    nn.set_seed(0)
    inp = nn.Input(shape=(20, 3))
    hidden = nn.LSTM(8, return_sequences=True, name="lstm1")(inp)
    out = nn.Dense(1, activation="sigmoid")(nn.LSTM(4, name="lstm2")(hidden))
    model = nn.Model(inp, out)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 20, 3)), rng.integers(0, 2, (16, 1)).astype(float)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # fit's own step drops values...
    graph = mt.topological_order(model(x[:2]))  # ...a plain call afterwards keeps them all
    assert len(graph) > 500 and not any(is_freed(t.data) for t in graph)
    assert all(np.isfinite(t.numpy()).all() for t in graph)
