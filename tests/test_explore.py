"""mt.explore / model.explore: the whole graph as one self-contained HTML page.

The page's numbers are checked against numpy on the tensors of an independent
forward pass, and the page itself in a real headless Chromium: it opens in
under 2 s, and clicking lstm1 → t=37 → f shows the forget gate's statistics.
"""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np
import pytest
from test_nn_layers import seed_model

import microtensor as mt
import nn

PAGE_LIMIT = 20_000_000  # bytes
OPEN_LIMIT_MS = 2000


def walk(root: mt.Tensor) -> list[mt.Tensor]:
    """Every tensor reachable from root through .parents (a plain set-based walk)."""
    found, stack = {id(root): root}, [root]
    while stack:
        for parent in stack.pop().parents:
            if id(parent) not in found:
                found[id(parent)] = parent
                stack.append(parent)
    return list(found.values())


def is_scalar_constant(t: mt.Tensor) -> bool:
    return not t.parents and not t.requires_grad and t.name is None and t.data.size == 1


def find(root: mt.Tensor, layer: str, name: str, step: int) -> mt.Tensor:
    (tensor,) = [t for t in walk(root) if (t.scope, t.name, t.step) == (layer, name, step)]
    return tensor


def seed_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 50, 10)).astype(np.float32)
    return x, np.array([[1.0], [0.0], [1.0], [0.0]], dtype=np.float32)


def forget_gate_37(model: nn.Model, x: np.ndarray) -> np.ndarray:
    """lstm1's forget gate at step 37, read without the explorer."""
    if hasattr(model, "record"):
        return np.asarray(model.record(x).value("lstm1", "f", step=37))
    return find(model(x), "lstm1", "f", 37).data.copy()


def page_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>',
                      page, re.S)
    return json.loads(match.group(1))


def decoded(heatmap: dict) -> np.ndarray:
    codes = np.frombuffer(base64.b64decode(heatmap["bytes"]), np.uint8)
    return codes.reshape(heatmap["rows"], heatmap["cols"])


# -- the data in the page ------------------------------------------------------------------

def test_heatmap_is_block_means_of_the_value():
    values = np.arange(5 * 40, dtype=np.float64).reshape(5, 40) ** 1.5
    page = mt.explore(mt.Tensor(values, requires_grad=True, name="w") * 2.0).html
    (w,) = [n for n in page_data(page)["nodes"] if n["name"] == "w"]
    cells = w["value"]["heatmap"]
    assert (cells["rows"], cells["cols"]) == (5, 16)
    # 40 columns into 16 blocks of 2 or 3: block k covers columns floor(40k/16) .. floor(40(k+1)/16)
    edges = [40 * k // 16 for k in range(17)]
    expected = np.array([[values[r, edges[k]:edges[k + 1]].mean() for k in range(16)]
                         for r in range(5)])
    lo, hi = expected.min(), expected.max()
    assert (cells["lo"], cells["hi"]) == pytest.approx((lo, hi), rel=1e-6)
    shown = lo + decoded(cells) / 254 * (hi - lo)
    np.testing.assert_allclose(shown, expected, atol=(hi - lo) / 254)
    stats = w["value"]["stats"]
    assert stats == pytest.approx([values.min(), values.mean(), values.max(), values.std()],
                                  rel=1e-6)


def test_heatmap_folds_leading_axes_into_rows_and_marks_nan():
    values = np.ones((3, 2, 4))
    values[2, 1, 3] = np.nan
    node = page_data(mt.explore(mt.Tensor(values, requires_grad=True, name="v")).html)["nodes"][0]
    cells = decoded(node["value"]["heatmap"])
    assert cells.shape == (6, 4)  # (3 · 2) rows × 4 columns
    assert cells[5, 3] == 255 and (cells[:5] != 255).all()
    assert node["value"]["stats"][0] == "NaN"  # JSON has no NaN; the script reads the string


@pytest.fixture(scope="module")
def seed_page(tmp_path_factory):
    """The seed model (random weights), a batch of 4, and its explorer page with the loss's
    gradients: (model, x, y, path of the page)."""
    nn.set_seed(0)
    model = seed_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = seed_batch()
    path = model.explore(x, tmp_path_factory.mktemp("explore") / "seed.html", y=y)
    assert all(p.grad is None for p in model.parameters())  # the model's grads left alone
    return model, x, y, path


def test_seed_model_page_holds_every_tensor_with_its_value_and_gradient(seed_page):
    model, x, y, path = seed_page
    page = path.read_text(encoding="utf-8")
    assert len(page.encode()) < PAGE_LIMIT
    data = page_data(page)

    loss = nn.losses.binary_crossentropy(y, model(x))
    tensors = [t for t in walk(loss) if not is_scalar_constant(t)]
    ops = [t for t in tensors if t.parents]
    assert len(data["nodes"]) == len(tensors) and len(ops) > 1600  # nothing elided
    assert all(p < k for k, n in enumerate(data["nodes"]) for p in n["parents"])  # parents first
    drawn = [(n["layer"], n["step"], n["name"]) for n in data["nodes"]]
    assert drawn.count(("lstm1", 37, "f")) == 1 and drawn.count(("lstm2", 50, "h")) == 1
    assert {n["layer"] for n in data["nodes"]} >= {"lstm1", "lstm2", "dense1", "dense2",
                                                   "output"}

    (f,) = [n for n in data["nodes"] if (n["layer"], n["step"], n["name"]) == ("lstm1", 37, "f")]
    gate = forget_gate_37(model, x).astype(np.float64)
    assert f["shape"] == [4, 128] and f["op"] == "sigmoid"
    assert f["value"]["stats"] == pytest.approx([gate.min(), gate.mean(), gate.max(), gate.std()],
                                                rel=1e-6)
    assert "grad" in f  # the pass had a backward: every intermediate gradient is shown


def test_page_is_self_contained():
    named = mt.Tensor([1.0, 2.0], requires_grad=True, name="</script><b>")
    page = mt.explore(mt.tanh(named).sum(), title="a <title>").html
    assert not re.search(r"<script[^>]*\bsrc=|<link\b|@import|url\((?!#)", page)
    assert set(re.findall(r"https?://[^\s\"')]+", page)) <= {"http://www.w3.org/2000/svg"}
    assert "<title>a &lt;title&gt;</title>" in page
    assert page.count("</script>") == 2  # the data and the script; no name ends them early
    labels = [n["label"] for n in page_data(page)["nodes"]]
    assert "</script><b>" in labels


def test_explore_returns_a_page_for_jupyter_or_writes_a_file(tmp_path):
    w = mt.Tensor(np.eye(2), requires_grad=True, name="w")
    explorer = mt.explore((w * 3.0).sum())
    html = explorer._repr_html_()
    assert html.startswith("<iframe srcdoc=\"") and "&lt;!DOCTYPE html&gt;" in html
    assert "3 nodes" in repr(explorer)  # w, mul(·, 3), sum: the constant 3 is in mul's label
    assert page_data(explorer.html)["nodes"][1]["label"] == "mul(·, 3)"
    written = mt.explore((w * 3.0).sum(), tmp_path / "g.html")
    assert written == tmp_path / "g.html" and written.read_text(encoding="utf-8") == explorer.html
    with pytest.raises(TypeError, match="explore: root must be the Tensor"):
        mt.explore(np.ones(2))


def test_values_dropped_by_freeing_values_are_marked_not_summarised():
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((3, 2)), nn.LSTM(2, name="rnn")])
    with mt.freeing_values():
        out = model(np.ones((1, 3, 2), dtype=np.float32))
    nodes = page_data(mt.explore(out).html)["nodes"]
    (z,) = [n for n in nodes if (n["name"], n["step"]) == ("z", 2)]  # no backward reads z
    assert z["freed"] and "value" not in z
    (h,) = [n for n in nodes if n["kind"] == "output"]  # what the model returns keeps its value
    assert "freed" not in h
    assert h["value"]["stats"][1] == pytest.approx(float(out.numpy().mean()), rel=1e-6)


def test_model_explore_with_y_needs_a_loss():
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((3, 2)), nn.LSTM(2, name="rnn")])
    with pytest.raises(ValueError, match="explore.*needs a loss"):
        model.explore(np.ones((1, 3, 2)), y=np.ones((1, 2)))


# -- in a real browser -------------------------------------------------------------------

def shown(driver, what: str, stat: str) -> float:
    from selenium.webdriver.common.by import By
    css = f'#panel [data-of="{what}"][data-stat="{stat}"]'
    return float(driver.find_element(By.CSS_SELECTOR, css).text)


def four_digits_of(value: float) -> float:
    """The rounding error allowed in a number printed with 4 significant digits."""
    return 0.5 * 10 ** (math.floor(math.log10(abs(value))) - 3) * 1.0001


def test_seed_model_explorer_in_chromium(tmp_path, seed_page, chromium_driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium_driver
    model, x, _, path = seed_page
    assert path.stat().st_size < PAGE_LIMIT
    gate = forget_gate_37(model, x).astype(np.float64)

    driver.get(path.as_uri())
    wait = WebDriverWait(driver, 20)
    ready_ms = wait.until(lambda d: d.execute_script("return window.explorerReady"))
    assert ready_ms < OPEN_LIMIT_MS, f"the page took {ready_ms:.0f} ms from navigation to ready"

    def click(css: str) -> None:
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, css))
        driver.find_element(By.CSS_SELECTOR, css).click()

    click('g.group.closed.kind-layer[data-layer="lstm1"]')
    click('g.group.closed.kind-step[data-layer="lstm1"][data-step="37"]')
    click('g.node[data-layer="lstm1"][data-step="37"][data-name="f"]')
    assert driver.find_element(By.CSS_SELECTOR, "#panel h2").text == "f = sigmoid"
    for stat, expected in (("min", gate.min()), ("mean", gate.mean()), ("max", gate.max())):
        assert abs(shown(driver, "value", stat) - expected) <= four_digits_of(expected), stat
    assert driver.find_elements(By.CSS_SELECTOR, '#panel canvas.heatmap[data-of="grad"]')
    driver.save_screenshot(str(tmp_path / "explorer.png"))

    # Every op of the model is one click away: "open all" draws each node of the page.
    driver.find_element(By.ID, "open-all").click()
    node_count = driver.execute_script("return window.explorer.nodes.length")
    assert len(driver.find_elements(By.CSS_SELECTOR, "g.node")) == node_count > 1600

    # Search by name: the last hidden state of lstm2.
    search = driver.find_element(By.ID, "search")
    search.send_keys("lstm2 t=50 h", Keys.ENTER)
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#panel h2").text == "h = mul")
    assert "lstm2" in driver.find_element(By.ID, "panel").text

    # The notebook's view: the same page inline, in the iframe that _repr_html_ gives Jupyter.
    notebook = tmp_path / "notebook.html"
    inline = mt.explore(mt.tanh(mt.Tensor(np.eye(3), requires_grad=True, name="w")).sum())
    notebook.write_text(f"<!DOCTYPE html><html><body>{inline._repr_html_()}</body></html>",
                        encoding="utf-8")
    driver.get(notebook.as_uri())
    driver.switch_to.frame(driver.find_element(By.TAG_NAME, "iframe"))
    wait.until(lambda d: d.execute_script("return window.explorerReady"))
    click('g.node[data-name="w"]')
    assert shown(driver, "value", "mean") == pytest.approx(1 / 3, abs=1e-4)

    # A hand-written loop without mt.scope: 750 ops in one flat group come in parts of at
    # most 200 boxes, and every op is still there.
    flat = tmp_path / "loop.html"
    mt.explore(hand_written_loop(250), flat)
    driver.get(flat.as_uri())
    wait.until(lambda d: d.execute_script("return window.explorerReady"))
    assert len(driver.find_elements(By.CSS_SELECTOR, "g.group.closed.kind-part")) == 4
    driver.find_element(By.ID, "search").send_keys("h_last", Keys.ENTER)
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#panel h2").text == "h_last = tanh")
    driver.find_element(By.ID, "open-all").click()
    assert len(driver.find_elements(By.CSS_SELECTOR, "g.node")) == 3 * 250 + 3

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def hand_written_loop(steps: int) -> mt.Tensor:
    """h = tanh(h @ W + 1) ``steps`` times, no scope: 3 ops per step, then the sum."""
    w = mt.Tensor(np.full((3, 3), 0.1), requires_grad=True, name="W")
    h = mt.Tensor(np.ones((2, 3)), name="h0")
    for _ in range(steps):
        h = mt.tanh(h @ w + 1.0)
    h.name = "h_last"
    return h.sum()
