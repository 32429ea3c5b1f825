"""draw_graph: the DOT text is parsed back and checked against the graph it came from."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field

import graphviz
import numpy as np
import pytest

import microtensor as mt
from microtensor.graph import GraphvizNotFoundError, render

# -- a textbook LSTM built by hand from mt ops, tagged like a layer would tag it ----------------


def lstm(x: mt.Tensor, units: int, name: str, rng) -> tuple[mt.Tensor, mt.Tensor]:
    """(all h stacked (batch, steps, units), last h (batch, units))."""
    batch, steps, features = x.shape
    kernel = mt.Tensor(rng.normal(0, 0.3, (features, 4 * units)), requires_grad=True,
                       name=f"{name}/kernel")
    recurrent = mt.Tensor(rng.normal(0, 0.3, (units, 4 * units)), requires_grad=True,
                          name=f"{name}/recurrent_kernel")
    bias = mt.Tensor(np.zeros(4 * units), requires_grad=True, name=f"{name}/bias")
    hs = []
    with mt.scope(name=name):
        h = mt.Tensor(np.zeros((batch, units)))
        c = mt.Tensor(np.zeros((batch, units)))
        for t in range(steps):
            with mt.scope(step=t + 1):  # steps count from 1, as nn.LSTM's: h_0 is the state before
                z = x[:, t] @ kernel + h @ recurrent + bias
                i = mt.sigmoid(z[:, :units])
                f = mt.sigmoid(z[:, units:2 * units])
                g = mt.tanh(z[:, 2 * units:3 * units])
                o = mt.sigmoid(z[:, 3 * units:])
                c = f * c + i * g
                h = o * mt.tanh(c)
                hs.append(h)
        sequence = mt.stack(hs, axis=1)
    return sequence, h


def small_lstm_loss(steps: int = 4, units: int = 3) -> mt.Tensor:
    """LSTM(units) on a (1, steps, 2) input; loss = sum((h_last - target)^2)."""
    rng = np.random.default_rng(0)
    _, h = lstm(mt.Tensor(rng.normal(size=(1, steps, 2))), units, "lstm1", rng)
    target = mt.Tensor(np.ones((1, units)), name="target")
    return ((h - target) ** 2).sum()


def seed_sized_loss(steps: int = 50) -> mt.Tensor:
    """Two stacked LSTMs (128 then 64 units) over 50 steps, batch 2, then a sigmoid unit."""
    rng = np.random.default_rng(0)
    sequence, _ = lstm(mt.Tensor(rng.normal(size=(2, steps, 10))), 128, "lstm1", rng)
    _, h = lstm(sequence, 64, "lstm2", rng)
    kernel = mt.Tensor(rng.normal(0, 0.1, (64, 1)), requires_grad=True, name="dense/kernel")
    with mt.scope(name="dense"):
        p = mt.sigmoid(h @ kernel)
    return ((p - mt.Tensor(np.ones((2, 1)))) ** 2).mean()


def recorded_ops(root: mt.Tensor) -> int:
    return sum(not t.is_leaf for t in mt.topological_order(root))


# -- reading the DOT text back ------------------------------------------------------------------

_NODE = re.compile(r'^\s*(\w+) \[(?:label=("(?:[^"\\]|\\.)*"|\S+) )?.*class="?([\w-]+)"?\]$')
_EDGE = re.compile(r"^\s*(\w+) -> (\w+)")
_LABEL = re.compile(r'label=("(?:[^"\\]|\\.)*"|[^\s\]]+)')


@dataclass
class Dot:
    kind: dict[str, str] = field(default_factory=dict)  # node -> class
    label: dict[str, str] = field(default_factory=dict)
    cluster: dict[str, str] = field(default_factory=dict)  # node -> innermost cluster label
    edges: list[tuple[str, str]] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)  # cluster labels, in order

    def nodes(self, kind: str) -> list[str]:
        return [key for key, k in self.kind.items() if k == kind]

    def ops(self) -> list[str]:
        return [key for key, k in self.kind.items() if k in ("op", "output")]


def parse(source: str) -> Dot:
    dot = Dot()
    open_clusters: list[str] = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("subgraph"):
            open_clusters.append("")
        elif stripped == "}" and open_clusters:
            open_clusters.pop()
        elif (edge := _EDGE.match(line)) is not None:
            dot.edges.append(edge.groups())
        elif (node := _NODE.match(line)) is not None:
            key, label, kind = node.groups()
            dot.kind[key], dot.label[key] = kind, (label or "").strip('"')
            dot.cluster[key] = open_clusters[-1] if open_clusters else ""
        elif open_clusters and (label := _LABEL.search(stripped)) is not None:
            open_clusters[-1] = label.group(1).strip('"')
            dot.clusters.append(open_clusters[-1])
    return dot


def assert_edges_connect_drawn_nodes(dot: Dot) -> None:
    assert dot.edges
    for source, target in dot.edges:
        assert source in dot.kind and target in dot.kind, (source, target)


# -- the picture of an LSTM ---------------------------------------------------------------------

def test_one_op_node_per_recorded_op():
    loss = small_lstm_loss()
    dot = parse(mt.draw_graph(loss).source)
    # 17 ops per step (the input slice x[:, t] has no grad), then sub, pow, sum.
    assert len(dot.ops()) == recorded_ops(loss) == 4 * 17 + 3
    assert_edges_connect_drawn_nodes(dot)


def test_each_time_step_is_a_cluster_with_the_same_ops():
    dot = parse(mt.draw_graph(small_lstm_loss()).source)
    labels = [f"lstm1 · t={t}" for t in range(1, 5)]
    assert [c for c in dot.clusters if "t=" in c] == labels
    ops_per_cluster = defaultdict(int)
    for key in dot.ops():
        ops_per_cluster[dot.cluster[key]] += 1
    assert [ops_per_cluster[label] for label in labels] == [17] * 4


def test_parameters_are_drawn_once_in_their_layer_with_name_and_shape():
    dot = parse(mt.draw_graph(small_lstm_loss()).source)
    params = {dot.label[key]: dot.cluster[key] for key in dot.nodes("param")}
    assert params == {"lstm1/kernel (2, 12)": "lstm1", "lstm1/recurrent_kernel (3, 12)": "lstm1",
                      "lstm1/bias (12,)": "lstm1"}


def test_weight_sharing_reaches_every_step():
    """From each parameter, its bus (through tap points) feeds ops in all 4 steps."""
    dot = parse(mt.draw_graph(small_lstm_loss()).source)
    successors = defaultdict(list)
    for source, target in dot.edges:
        successors[source].append(target)
    for param in dot.nodes("param"):
        steps_fed, frontier = set(), [param]
        while frontier:
            for target in successors[frontier.pop()]:
                if dot.kind[target] == "param-tap":
                    frontier.append(target)
                elif dot.kind[target] == "op":
                    steps_fed.add(dot.cluster[target])
        assert steps_fed == {f"lstm1 · t={t}" for t in range(1, 5)}, dot.label[param]


def test_inputs_and_the_loss_are_recognisable():
    dot = parse(mt.draw_graph(small_lstm_loss()).source)
    [root] = dot.nodes("output")
    assert dot.label[root] == r"loss: sum\nscalar"
    assert not any(source == root for source, _ in dot.edges)
    data = [dot.label[key] for key in dot.nodes("data")]
    assert "target (1, 3)" in data  # a leaf without grad: skipped by backward, drawn here
    assert data.count("getitem (no grad) (1, 2)") == 4  # the input slice of each step


def test_scalar_constants_are_folded_into_the_op_label():
    w = mt.Tensor(np.ones(3), requires_grad=True, name="w")
    loss = (1 - mt.sigmoid(w) * 0.5).sum()
    dot = parse(mt.draw_graph(loss).source)
    assert sorted(dot.label[key] for key in dot.ops()) == [
        r"loss: sum\nscalar", r"mul(·, 0.5)\n(3,)", r"sigmoid(w)\n(3,)", r"sub(1, ·)\n(3,)"]
    assert len(dot.kind) == 5  # w and the four ops: no nodes for 1 and 0.5


def test_flat_graph_and_no_shapes():
    loss = small_lstm_loss()
    dot = parse(mt.draw_graph(loss, group=None, show_shapes=False).source)
    assert dot.clusters == []
    assert len(dot.ops()) == recorded_ops(loss)
    assert "lstm1/kernel" in dot.label.values()
    assert not any(re.search(r"\(\d+[,)]", label) for label in dot.label.values())
    assert_edges_connect_drawn_nodes(dot)


def test_node_ids_are_stable():
    assert mt.draw_graph(small_lstm_loss()).source == mt.draw_graph(small_lstm_loss()).source


def test_bad_arguments_are_named():
    loss = small_lstm_loss()
    with pytest.raises(ValueError, match="group"):
        mt.draw_graph(loss, group="layer")
    with pytest.raises(ValueError, match="max_steps"):
        mt.draw_graph(loss, max_steps=-1)
    with pytest.raises(ValueError, match="draw_graph: rankdir must be one of LR, RL, TB, BT.*'XY'"):
        mt.draw_graph(loss, rankdir="XY")
    with pytest.raises(TypeError, match="draw_graph: root must be the Tensor.*got ndarray"):
        mt.draw_graph(loss.data)


def test_a_long_chain_needs_no_recursion():
    x = mt.Tensor(np.ones(2), requires_grad=True)
    for _ in range(5000):
        x = x * 1.0
    dot = parse(mt.draw_graph(x.sum(), group=None, max_nodes=10**6).source)
    assert len(dot.ops()) == 5001


# -- eliding time steps --------------------------------------------------------------------------

def test_max_steps_keeps_the_first_steps_and_the_last():
    loss = small_lstm_loss(steps=7)
    dot = parse(mt.draw_graph(loss, max_steps=2).source)
    assert [c for c in dot.clusters if "t=" in c] == ["lstm1 · t=1", "lstm1 · t=2", "lstm1 · t=7"]
    [elided] = dot.nodes("elided")
    assert dot.label[elided] == "… 4 steps (t=3..6) elided"
    assert dot.cluster[elided] == "lstm1"
    assert len(dot.ops()) == recorded_ops(loss) - 4 * 17
    assert_edges_connect_drawn_nodes(dot)
    # The recurrence runs through the elision node: step 1 -> elided -> step 6.
    into = {dot.cluster[s] for s, t in dot.edges if t == elided and dot.kind[s] == "op"}
    out_of = {dot.cluster[t] for s, t in dot.edges if s == elided}
    assert into == {"lstm1 · t=2"} and out_of == {"lstm1 · t=7"}


def test_max_steps_larger_than_the_unroll_changes_nothing():
    loss = small_lstm_loss()
    assert mt.draw_graph(loss, max_steps=10).source == mt.draw_graph(loss).source


def test_big_graphs_are_elided_automatically_with_a_warning():
    loss = small_lstm_loss(steps=30)  # 30 * 17 + 3 = 513 op nodes
    with pytest.warns(UserWarning, match=r"max_steps=<n>.*max_nodes="):
        graph = mt.draw_graph(loss)
    dot = parse(graph.source)
    assert 200 < len(dot.ops()) <= 300
    assert dot.nodes("elided")
    assert re.search(r'label="513 op nodes: time steps elided automatically', graph.source)
    assert_edges_connect_drawn_nodes(dot)


def test_raising_max_nodes_draws_everything():
    loss = small_lstm_loss(steps=30)
    dot = parse(mt.draw_graph(loss, max_nodes=1000).source)
    assert len(dot.ops()) == recorded_ops(loss) == 513
    assert not dot.nodes("elided")


def test_seed_sized_model_builds_fast_and_renders_elided(dot_binary, tmp_path):
    loss = seed_sized_loss()
    start = time.perf_counter()
    with pytest.warns(UserWarning, match="max_steps"):
        mt.draw_graph(loss)
    assert time.perf_counter() - start < 1.0  # measured ~0.1 s for ~1,700 ops
    start = time.perf_counter()
    path = render(mt.draw_graph(loss, max_steps=3), str(tmp_path / "seed"))
    assert time.perf_counter() - start < 10.0  # measured ~0.1 s
    text = "".join(ET.parse(path).getroot().itertext())
    assert "lstm2 · t=50" in text and "… 46 steps (t=4..49) elided" in text


# -- rendering -------------------------------------------------------------------------------------

def test_renders_valid_svg_with_the_cluster_labels(dot_binary, tmp_path):
    path = mt.draw_graph(small_lstm_loss()).render(str(tmp_path / "lstm"), format="svg")
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    text = set(root.itertext())
    assert {"lstm1", "lstm1 · t=1", "lstm1 · t=4", "lstm1/kernel (2, 12)"} <= text


def test_missing_dot_still_gives_dot_text_and_a_helpful_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere on it
    graph = mt.draw_graph(small_lstm_loss())
    assert isinstance(graph, graphviz.Digraph)
    assert graph.source.startswith("digraph")
    for call in (lambda: render(graph, str(tmp_path / "g")),
                 lambda: graph.render(str(tmp_path / "g"), format="svg")):
        with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz") as info:
            call()
        assert "brew install graphviz" in str(info.value)
        assert isinstance(info.value.__cause__, graphviz.ExecutableNotFound)


def test_a_leaf_alone_is_one_node():
    dot = parse(mt.draw_graph(mt.Tensor(np.ones(3), name="x")).source)
    assert dot.label == {"n0": "x (3,)"} and dot.edges == [] and dot.ops() == []
