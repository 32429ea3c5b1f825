"""Pictures a learner can read: labels that say what an op computes, the step level, graphs of
any shape drawn in bounded time, and README pictures that fit a page."""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import microtensor as mt
import nn
from microtensor.graph import render
from microtensor.graph_render import GraphvizTimeoutError, run_dot

IMAGES = Path(__file__).resolve().parent.parent / "demos" / "images"
PAGE_WIDTH_PT = 1100  # a README column is ~880 px: wider SVGs shrink 10 pt text below 8 px


def labels(graph) -> list[str]:
    return re.findall(r'label="((?:[^"\\]|\\.)*)"', graph.source)


def lstm_output(timesteps: int = 4, units: int = 3) -> mt.Tensor:
    nn.set_seed(0)
    inp = nn.Input((timesteps, 2), name="input")
    model = nn.Model(inp, nn.LSTM(units, name="lstm")(inp))
    return model(np.linspace(-1, 1, timesteps * 2, dtype=np.float32).reshape(1, timesteps, 2))


# -- labels that teach ---------------------------------------------------------------------------

def test_gate_slices_products_and_the_cell_update_are_named():
    found = labels(mt.draw_graph(lstm_output()))
    for text in (r"z[:, 0:3] → i\n(1, 3)", r"z[:, 3:6] → f\n(1, 3)",
                 r"z[:, 6:9] → c_hat\n(1, 3)", r"z[:, 9:12] → o\n(1, 3)",
                 r"f * c\n(1, 3)", r"f * c_0\n(1, 3)", r"i * c_hat\n(1, 3)",
                 r"tanh(c)\n(1, 3)", r"c = add\n(1, 3)"):
        assert text in found, text


def test_pow_shows_its_exponent_and_mean_is_one_node():
    y = mt.Tensor(np.arange(4.0), requires_grad=True, name="y")
    loss = (y ** 2).mean()
    assert loss.op == "mean" and loss.parents[0].op == "power"
    assert labels(mt.draw_graph(loss)) == [r"y (4,)", r"pow(y, 2)\n(4,)", r"loss: mean\nscalar"]
    loss.backward()
    np.testing.assert_allclose(y.grad, 2 * np.arange(4.0) / 4)  # d/dy mean(y²) = 2y / n
    x = mt.Tensor(np.ones((2, 3)), requires_grad=True)
    assert r"pow(·, 0.5)\n(2, 3)" in labels(mt.draw_graph((x ** 0.5).sum()))


def test_the_time_major_copy_says_what_it_is():
    found = labels(mt.draw_graph(lstm_output()))
    assert r"input as time steps:\n(T, batch, features) (4, 1, 2)" in found


# -- the step level ------------------------------------------------------------------------------

def test_step_level_draws_one_box_per_step_with_its_equations():
    graph = mt.draw_graph(lstm_output(), level="step")
    assert "rankdir=TB" in graph.source
    boxes = re.findall(r'label="(lstm · t=\d+)\\n((?:[^"\\]|\\.)*)" .*class=(?:step|output)',
                       graph.source)
    assert [title for title, _ in boxes] == [f"lstm · t={t}" for t in range(1, 5)]
    first, last = (body.split("\\l")[:-1] for _, body in (boxes[0], boxes[-1]))
    assert first == ["z = x_proj[0] + h_0 @ recurrent_kernel", "i = sigmoid(z[:, 0:3])",
                     "f = sigmoid(z[:, 3:6])", "c_hat = tanh(z[:, 6:9])",
                     "o = sigmoid(z[:, 9:12])", "c = f * c_0 + i * c_hat", "h = o * tanh(c)"]
    assert last[0] == "z = x_proj[3] + h_3 @ recurrent_kernel"
    assert last[5] == "c = f * c_3 + i * c_hat"
    # h and c go from each step to the next; the weights are one node, drawn once.
    assert len(re.findall(r'label="h, c"', graph.source)) == 3
    [weights] = [text for text in labels(graph) if "recurrent_kernel (3, 12)" in text]
    assert weights == r"kernel (2, 12)\nbias (12,)\nrecurrent_kernel (3, 12)"  # as first used


def test_step_level_elides_middle_steps_and_model_draw_has_it():
    nn.set_seed(0)
    inp = nn.Input((30, 2))
    model = nn.Model(inp, nn.LSTM(3, name="lstm")(inp))
    source = model.draw(level="step", max_steps=2).source
    assert "… 27 steps (t=3..29) elided" in source
    assert [int(t) for t in re.findall(r"lstm · t=(\d+)", source)] == [1, 2, 30]
    with pytest.warns(UserWarning, match="max_steps"):  # 30 boxes: more than fit a picture
        assert "elided" in model.draw(level="step").source
    with pytest.raises(ValueError, match="takes 'layer', 'step' or 'op'"):
        model.draw(level="gates")


# -- draw_graph never hangs ----------------------------------------------------------------------

def rnn_loop(steps: int) -> mt.Tensor:
    """A hand-written RNN, no mt.scope: nothing tells draw_graph where the steps are."""
    rng = np.random.default_rng(0)
    x = mt.Tensor(rng.normal(size=(2, steps, 3)))
    w = mt.Tensor(rng.normal(size=(3, 4)), requires_grad=True, name="W")
    u = mt.Tensor(rng.normal(size=(4, 4)), requires_grad=True, name="U")
    h = mt.Tensor(np.zeros((2, 4)))
    for t in range(steps):
        h = mt.tanh(x[:, t] @ w + h @ u)
    return h.sum()


def one_tensor_used_500_times() -> mt.Tensor:
    w = mt.Tensor(np.ones(3), requires_grad=True, name="w")
    total = w * 0.0
    for k in range(500):
        total = total + w * float(k)
    return total.sum()


def chain_of_10000() -> mt.Tensor:
    w = mt.Tensor(np.full(3, 0.5), requires_grad=True, name="w")
    x = mt.Tensor(np.ones(3), requires_grad=True, name="x")
    for _ in range(5000):
        x = mt.tanh(x * w)  # two op nodes a round, w shared by all of them
    return x.sum()


@pytest.mark.parametrize("make", [lambda: rnn_loop(100), lambda: rnn_loop(300),
                                  one_tensor_used_500_times, chain_of_10000],
                         ids=["rnn-loop-100", "rnn-loop-300", "used-500-times", "chain-10000"])
def test_any_graph_is_drawn_within_seconds(make, dot_binary, tmp_path):
    root = make()  # measured before: > 100 s, a dot failure after 75 s, a segfault, 24 GB
    start = time.perf_counter()
    with pytest.warns(UserWarning, match=r"max_nodes=300.*mt\.scope\(step=t\).*max_steps"):
        graph = mt.draw_graph(root)
    path = render(graph, str(tmp_path / "g"), timeout=30)
    assert time.perf_counter() - start < 10.0  # measured 0.3-0.7 s
    svg = Path(path).read_text()
    assert "ops elided" in svg and "mt.scope(step=t)" in svg


def test_dot_that_takes_too_long_is_stopped_with_a_clear_error(dot_binary):
    graph = mt.draw_graph(rnn_loop(20))
    start = time.perf_counter()
    with pytest.raises(GraphvizTimeoutError, match=r"within 0\.001 s.*max_steps=.*mt\.scope"):
        run_dot(graph.source, timeout=0.001)
    assert time.perf_counter() - start < 5.0


def test_a_tagged_loop_needs_no_cutting():
    x = mt.Tensor(np.ones((1, 3)), requires_grad=True, name="x")
    for t in range(1, 101):
        with mt.scope(step=t):
            x = mt.tanh(x * 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 200 op nodes: under the budget, nothing elided
        source = mt.draw_graph(x.sum()).source
    assert "elided" not in source and "t=100" in source


# -- pictures sized for the page -----------------------------------------------------------------

def svg_size_pt(path: Path) -> tuple[float, float]:
    found = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', path.read_text())
    assert found, f"{path.name}: no width/height in pt"
    return float(found.group(1)), float(found.group(2))


def test_the_readme_pictures_fit_a_page():
    readme = (IMAGES.parent.parent / "README.md").read_text()
    shown = re.findall(r"\]\(demos/images/([\w.-]+\.svg)\)", readme)
    assert len(shown) >= 3  # the cell, the seed model's steps, its layers
    committed = sorted(path.name for path in IMAGES.glob("*.svg"))
    assert set(shown) <= set(committed)
    for name in committed:
        width, _ = svg_size_pt(IMAGES / name)
        assert width <= PAGE_WIDTH_PT, f"{name} is {width:g} pt wide"
