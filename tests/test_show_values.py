"""draw_graph(show_values=True): each node's value and gradient, read back from the DOT text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import microtensor as mt
import nn

NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]\d+)?|nan|-?inf"


def labels(source: str) -> dict[str, str]:
    """DOT node id -> the text of its HTML-like label (tags dropped, one line per table row)."""
    found = {}
    for key, table in re.findall(r"^\s*(n\d+) \[label=<(<TABLE.*?</TABLE>)>", source, re.M):
        rows = re.findall(r"<TR>(.*?)</TR>", table)
        found[key] = "\n".join(re.sub(r"<[^>]+>", "", row) for row in rows)
    return found


def row(label: str, head: str) -> str | None:
    """The row of a label that starts with ``head`` ("data" or "grad"), without it."""
    for line in label.splitlines():
        if line.startswith(head + " "):
            return line[len(head) + 1:]
    return None


def numbers(text: str) -> np.ndarray:
    return np.array([float(v) for v in re.findall(NUMBER, text)])


def node_labelled(found: dict[str, str], first_line: str) -> str:
    [label] = [text for text in found.values() if text.splitlines()[0] == first_line]
    return label


def lstm1_on_one_value():
    """LSTM(1) on one sample of one step and one feature, a squared error, float64."""
    mt.set_default_dtype(np.float64)
    nn.set_seed(3)
    model = nn.Sequential([nn.LSTM(1, name="lstm")])
    x, y = np.array([[[0.7]]]), np.array([[0.25]])
    return model, x, y


def test_every_parameter_shows_its_value_and_gradient():
    model, x, y = lstm1_on_one_value()
    loss = nn.losses.mse(y, model(x))
    loss.backward()
    found = labels(mt.draw_graph(loss, show_values=True).source)
    for name, param in model.named_parameters():
        label = node_labelled(found, f"{name} {param.shape}")
        assert param.size <= 6  # printed element by element, 4 significant digits
        np.testing.assert_allclose(numbers(row(label, "data")), param.data.ravel(), rtol=1e-3)
        np.testing.assert_allclose(numbers(row(label, "grad")), param.grad.ravel(), rtol=1e-3,
                                   atol=1e-12)
    assert np.all(model.get_layer("lstm").kernel.grad[0, [0, 2, 3]] != 0)  # h_0 = 0: only
    assert np.all(model.get_layer("lstm").recurrent_kernel.grad == 0)  # kernel and bias learn


def test_intermediate_gradients_need_retain_grads_and_say_so():
    model, x, y = lstm1_on_one_value()
    loss = nn.losses.mse(y, model(x))
    found = labels(mt.draw_graph(loss, show_values=True).source)
    assert all(row(label, "grad") is None for label in found.values())  # no backward yet
    loss.backward()
    source = mt.draw_graph(loss, show_values=True).source
    assert "call backward(retain_grads=True) to see them" in source
    h = node_labelled(labels(source), "h = o * ·")
    assert row(h, "data") is not None and row(h, "grad") is None


def test_retained_gradients_are_shown_on_every_op():
    model, x, y = lstm1_on_one_value()
    h = model(x)
    loss = ((h - y) ** 2).sum()
    loss.backward(retain_grads=True)
    graph = mt.draw_graph(loss, show_values=True)
    found = labels(graph.source)
    ops = [label for label in found.values()
           if not label.startswith(("lstm/", "h_0", "c_0", "input_layer"))]  # leaves: no grad
    assert ops and all(row(label, "grad") is not None for label in ops)
    assert "freed" not in graph.source
    # d loss / d h = 2 (h - y), worked out by hand from the printed value of h.
    h_label = node_labelled(found, "h = o * ·")
    [h_value], [h_grad] = numbers(row(h_label, "data")), numbers(row(h_label, "grad"))
    assert h_value == pytest.approx(h.item(), rel=1e-3)
    assert h_grad == pytest.approx(2 * (h.item() - 0.25), rel=1e-3)
    assert row(node_labelled(found, "loss: sum"), "grad") == "1"


def test_model_draw_shows_gradients_and_leaves_parameter_grads_alone():
    model, x, y = lstm1_on_one_value()
    model(x)
    kernel = model.get_layer("lstm").kernel
    kernel.grad = before = np.full(kernel.shape, 5.0)
    found = labels(model.draw(x, y, loss="mse", show_values=True).source)
    label = node_labelled(found, f"lstm/kernel {kernel.shape}")
    assert not np.allclose(numbers(row(label, "grad")), 5.0)  # this pass's, not the old one
    assert kernel.grad is before and np.all(before == 5.0)
    [loss] = [label for label in found.values() if label.startswith("loss: ")]
    assert row(loss, "grad") == "1"


def test_large_arrays_are_summarised_small_ones_listed():
    w = mt.Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True, name="w")
    v = mt.Tensor([[-1.5, 0.0, 2.0]], requires_grad=True, name="v")
    loss = (w * w).sum() + (v * 3).sum()
    loss.backward()
    found = labels(mt.draw_graph(loss, show_values=True).source)
    w_label, v_label = node_labelled(found, "w (3, 4)"), node_labelled(found, "v (1, 3)")
    assert row(w_label, "data") == "mean 5.5 min 0 max 11"
    assert row(w_label, "grad") == "mean 11 min 0 max 22"  # 2 w
    assert row(v_label, "data") == "[[-1.5, 0, 2]]"
    assert row(v_label, "grad") == "[[3, 3, 3]]"


def long_lstm_loss(steps: int) -> mt.Tensor:
    nn.set_seed(0)
    model = nn.Sequential([nn.LSTM(2, name="lstm")])
    return model(np.ones((1, steps, 1))).sum()


def test_big_pictures_are_refused_with_a_max_steps_to_use():
    loss = long_lstm_loss(steps=12)
    with pytest.raises(ValueError, match=r"(\d+) op nodes, more than the limit of 100") as info:
        mt.draw_graph(loss, show_values=True)
    message = str(info.value)
    count = int(re.search(r"have (\d+) op nodes", message).group(1))
    assert count == len(re.findall(r"class=op|class=output", mt.draw_graph(loss).source))
    k = int(re.search(r"pass max_steps=(\d+) \(draws (\d+) op nodes\)", message).group(1))
    source = mt.draw_graph(loss, show_values=True, max_steps=k).source  # now accepted
    assert len(re.findall(r"class=op|class=output", source)) <= 100
    assert "elided" in source
    with pytest.raises(ValueError, match="more than the limit of 100"):
        mt.draw_graph(loss, show_values=True, max_steps=k + 2)
    assert "data " in mt.draw_graph(loss, show_values=True, max_nodes=1000).source


def test_values_render_to_svg(dot_binary, tmp_path):
    model, x, y = lstm1_on_one_value()
    loss = nn.losses.mse(y, model(x))
    loss.backward(retain_grads=True)
    path = mt.draw_graph(loss, show_values=True).render(str(tmp_path / "values"), format="svg")
    text = list(ET.parse(path).getroot().itertext())
    kernel = model.get_layer("lstm").kernel
    assert any(line.startswith("grad [[") for line in text)
    assert f"lstm/kernel {kernel.shape}" in text
