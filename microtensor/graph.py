"""draw_graph: the graph that produced a tensor, as a Graphviz picture.

The graph is read from ``tensor.parents`` (iteratively, so a long unroll needs
no recursion) and grouped by the ``scope``/``step`` tags that ``mt.scope``
puts on every tensor: one cluster per layer, inside it one per time step.

Two facts about ``dot`` shape the design (see FACTS.md):

* A weight used at every time step would need one long edge from its node to
  every step; such edges make ``dot``'s layout explode (and even
  ``constraint=false`` edges keep their virtual nodes). So each parameter is
  drawn once, in its layer's cluster, and its uses form a *bus*: a line that
  starts at the parameter and passes through a small tap point in each step
  that uses it. Every piece of that line joins neighbouring steps, so the
  layout stays local, and the sharing is still one visible line. Any other
  value made outside the steps and used by several (an input projection of all
  steps at once) gets the same treatment, and so does a value used by many ops
  of a graph without time steps (the weight of a hand-written loop).
* Big unrolls are still slow or break ``dot`` (Graphviz 2.43 sometimes stops
  with "trouble in init_rank" on ~2,000 clustered nodes), so they are elided:
  the first ``max_steps`` steps and the last one of each recurrent layer are
  kept and the rest become one "… elided" node. A big graph without time
  steps keeps its first and last ops instead (``_elide_chain``), and ``dot``
  itself runs with a time limit (graph_render.py).

``level="step"`` folds each time step into one box of equations (graph_steps.py);
the labels of both levels are written in graph_labels.py.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from itertools import accumulate

import graphviz

from .graph_labels import display_name, is_folded_constant, op_label, slice_start
from .graph_nodes import Node
from .graph_render import (  # noqa: F401  (re-exported)
    Graph,
    GraphvizNotFoundError,
    GraphvizTimeoutError,
    render,
)
from .graph_steps import step_boxes
from .graph_values import freed_notes, values_label
from .tensor import Tensor, topological_order

MAX_NODES = 300  # op nodes that `dot` lays out in about a second or two
MAX_STEP_BOXES = 24  # boxes of level="step" that still make a picture one can take in
MAX_VALUE_NODES = 100  # op nodes whose values still make a readable picture
LOOSE_BUS_USERS = 4  # a value used by this many ops outside time steps is drawn as a bus

_STYLE: dict[str, dict[str, str]] = {
    "op": {"shape": "box", "style": "rounded,filled", "fillcolor": "#eef2f7",
           "color": "#5b6b7f"},
    "output": {"shape": "box", "style": "rounded,filled,bold", "peripheries": "2",
               "fillcolor": "#f8d7da", "color": "#a8323e"},
    "param": {"shape": "cylinder", "style": "filled", "fillcolor": "#ffe8c2",
              "color": "#b8751a"},
    "data": {"shape": "parallelogram", "style": "filled", "fillcolor": "#dbeefa",
             "color": "#2f6f9f"},
    "elided": {"shape": "box", "style": "dashed,rounded", "color": "#888888",
               "fontcolor": "#555555"},
    "step": {"shape": "box", "style": "rounded,filled", "fillcolor": "#eef2f7",
             "color": "#5b6b7f"},
}


RANKDIRS = ("LR", "RL", "TB", "BT")  # left to right, ..., top to bottom, bottom to top


def check_rankdir(caller: str, rankdir: str) -> None:
    if rankdir not in RANKDIRS:
        raise ValueError(f"{caller}: rankdir must be one of {', '.join(RANKDIRS)} "
                         f"(Graphviz's directions), got {rankdir!r}")


def draw_graph(root: Tensor, show_shapes: bool = True, group: str | None = "module",
               max_steps: int | None = None, rankdir: str | None = None,
               max_nodes: int | None = None, show_values: bool = False,
               level: str = "op") -> Graph:
    """The graph of ops that produced ``root``, as a ``graphviz.Digraph``.

    Op nodes show the op and its output shape; parameters (leaves that require
    grad) show their name and shape; input data and ``root`` (labelled loss or
    output) have their own styles. Unnamed scalar constants (the ``1`` in
    ``1 - x``) are written into the op's label instead of getting a node.

    group: "module" draws one cluster per layer and one per time step inside
        it; None draws the flat graph.
    max_steps: keep the first ``max_steps`` time steps and the last one of each
        recurrent layer; the others become one node saying how many were elided.
    max_nodes: with ``max_steps=None``, a graph of more op nodes than this
        (default MAX_NODES = 300) is elided automatically (with a warning),
        since ``dot`` would take minutes.
    rankdir: "LR" (left to right, the default at level "op"), "TB" (top to bottom, the
        default at level "step": a picture as narrow as a page), "RL" or "BT".
    level: "op" draws every op; "step" draws one box per time step of each layer,
        listing the step's equations (``c = f * c_2 + i * c_hat``), with the values
        passed between steps on the arrows; at most MAX_STEP_BOXES boxes unless
        ``max_steps`` says otherwise.
    show_values: each node also shows its value and, if it has one, its
        gradient (4 significant digits; arrays of more than 6 elements as
        mean/min/max). Parameters keep their gradients after ``backward()``;
        intermediate ones need ``backward(retain_grads=True)``. Only for small
        pictures: more than ``max_nodes`` (default MAX_VALUE_NODES = 100) drawn
        op nodes raise a ValueError that suggests a ``max_steps``.
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"draw_graph: root must be the Tensor whose graph to draw (e.g. the "
                        f"loss), got {type(root).__name__}")
    if group not in ("module", None):
        raise ValueError(f"draw_graph: group must be 'module' or None, got {group!r}")
    if level not in ("op", "step"):
        raise ValueError(f"draw_graph: level must be 'op' or 'step', got {level!r}")
    if level == "step" and show_values:
        raise ValueError("draw_graph: show_values=True draws values at level='op' only")
    rankdir = rankdir or ("TB" if level == "step" else "LR")
    check_rankdir("draw_graph", rankdir)
    if max_steps is not None and max_steps < 0:
        raise ValueError(f"draw_graph: max_steps must be >= 0, got {max_steps}")
    nodes, edges, note, users = _collect(root, show_values)
    if show_values:
        _check_value_picture_size(nodes, edges, max_steps, max_nodes or MAX_VALUE_NODES)
    elif max_steps is None:
        max_nodes = max_nodes or (MAX_STEP_BOXES if level == "step" else MAX_NODES)
        count = _drawn_count(nodes, level)
        if count > max_nodes:
            max_steps, note = _auto_max_steps(nodes, count, max_nodes, level)
            if max_steps is None and level == "op":
                nodes, edges, note = _elide_chain(nodes, edges, max_nodes)
    if max_steps is not None:
        nodes, edges = _elide(nodes, edges, max_steps)
    _write_labels(nodes, root, show_shapes, show_values, users)
    if level == "step":
        nodes, labelled = step_boxes(nodes, edges, root)
        return _emit(nodes, labelled, "module" if group else None, rankdir, note,
                     leaves_beside_first=True)
    nodes, routed = _route_buses(nodes, edges)
    return _emit(nodes, [(*edge, "") for edge in routed], group, rankdir, note)


# -- reading the graph ---------------------------------------------------------------

def _shape_text(tensor: Tensor) -> str:
    return str(tuple(tensor.shape)) if tensor.ndim else "scalar"


def _kind_and_scope(tensor: Tensor, root: Tensor) -> tuple[str, str | None]:
    """op, output (``root``), param (a leaf that requires grad) or data; and its layer."""
    if not tensor.is_leaf:
        return "output" if tensor is root else "op", tensor.scope
    if tensor.requires_grad:
        # A parameter made outside its layer's scope still belongs to layer "lstm1/...".
        name = tensor.name or ""
        return "param", tensor.scope or (name.split("/")[0] if "/" in name else None)
    return "data", tensor.scope


def _label(tensor: Tensor, kind: str, root: Tensor, show_shapes: bool,
           users: list[Tensor]) -> str:
    """What one drawn tensor's box says."""
    shape = _shape_text(tensor) if show_shapes else ""
    if kind in ("op", "output"):
        text = op_label(tensor, root, users)
        if tensor.name:  # layers name the values a reader looks for: "f = sigmoid"
            text = (f"{tensor.name} = {text}" if display_name(tensor) == tensor.name
                    else f"{tensor.name}\\n{text}")  # a description in words: its own line
        if kind == "output":
            text = f"{'loss' if tensor.ndim == 0 else 'output'}: {text}"
        return f"{text}\\n{shape}" if shape else text
    if kind == "param":
        return f"{tensor.name or 'parameter'} {shape}".strip()
    if tensor.name:
        name = tensor.name.replace(": ", ":\\n")  # a description in words: two lines
    elif tensor.op:
        name = f"{tensor.op} (no grad)"
    else:
        name = "input" if tensor.scope is None else "constant"
    return f"{name} {shape}".strip()


def _write_labels(nodes: list[Node], root: Tensor, show_shapes: bool, show_values: bool,
                  users: dict[int, list[Tensor]]) -> None:
    """Label the nodes left after elision (labels of thousands of elided ones would be
    written for nothing)."""
    for node in nodes:
        if node.tensor is not None and not node.label:
            node.label = _label(node.tensor, node.kind, root, show_shapes,
                                users[id(node.tensor)])
            if show_values:
                node.label = values_label(node.label, node.tensor)


def _in_time_order(root: Tensor) -> list[Tensor]:
    """The tensors ``root`` depends on, parents first, each as late as it can come (sorted
    by the longest path from it to ``root``, longest first): a loop's ops step after step,
    each beside its use, which decides what comes first in the picture and which ops an
    elision keeps. Ties (the four gates of one step) go by the slice they come from:
    z[:, 0:3] before z[:, 3:6], as a layer computes i before f."""
    order = topological_order(root)
    height = {id(root): 0}
    for tensor in reversed(order):  # users before parents
        for parent in tensor.parents:
            height[id(parent)] = max(height.get(id(parent), 0), height[id(tensor)] + 1)
    tie: dict[int, int] = {}
    for tensor in order:
        first = tensor.parents[0] if tensor.parents else None
        tie[id(tensor)] = (slice_start(tensor) if tensor.op == "getitem"
                           else tie.get(id(first), 0))
    return sorted(order, key=lambda tensor: (-height[id(tensor)], tie[id(tensor)]))


def _collect(root: Tensor, show_values: bool = False
             ) -> tuple[list[Node], list[tuple[str, str]], str | None, dict[int, list[Tensor]]]:
    """Nodes in visit order with ids n0, n1, ... (not labelled yet) and edges (parent id,
    child id), a note for the picture (with ``show_values``, when intermediate values or
    gradients were freed), and the users of each tensor, by id."""
    # The backward order holds every tensor that requires grad; the other parents
    # (input data, constants) are leaves, added just before their first user.
    order: list[Tensor] = []
    seen: set[int] = set()
    users: dict[int, list[Tensor]] = defaultdict(list)
    for tensor in _in_time_order(root):
        for parent in tensor.parents:
            users[id(parent)].append(tensor)
            if id(parent) not in seen and not is_folded_constant(parent, root):
                seen.add(id(parent))
                order.append(parent)
        seen.add(id(tensor))
        order.append(tensor)
    nodes: list[Node] = []
    key_of: dict[int, str] = {}
    for tensor in order:
        kind, scope = _kind_and_scope(tensor, root)
        key_of[id(tensor)] = key = f"n{len(nodes)}"
        nodes.append(Node(key, kind, "", scope, None if kind == "param" else tensor.step,
                          tensor=tensor))
    edges = [(key_of[id(p)], key_of[id(t)]) for t in order for p in t.parents
             if id(p) in key_of]
    drawn = [t for t in order if t.requires_grad] if show_values else []
    return nodes, edges, "; ".join(freed_notes(drawn)) or None, users


# -- eliding time steps ------------------------------------------------------------------

def _ops_per_step(nodes: list[Node], level: str = "op") -> dict[str | None, dict[int, int]]:
    """For each layer, the number of op nodes at each of its time steps (at level "step":
    1, its box)."""
    counts: dict[str | None, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for node in nodes:
        if node.step is not None:
            counts[node.scope][node.step] = (1 if level == "step" else
                                             counts[node.scope][node.step] + node.is_op)
    return counts


def _drawn_count(nodes: list[Node], level: str) -> int:
    """Op nodes (level "op") or boxes (level "step") of the picture."""
    if level == "op":
        return sum(node.is_op for node in nodes)
    return len({(node.scope, node.step) for node in nodes if node.is_op})


def _fitting_max_steps(nodes: list[Node], max_nodes: int, level: str = "op"
                       ) -> tuple[int, int, int] | None:
    """(k, drawn op nodes or boxes, longest unroll): the largest max_steps k whose picture
    has at most ``max_nodes`` of them (at least 1). None if there are no time steps to
    elide."""
    layers = [[steps[s] for s in sorted(steps)]
              for steps in _ops_per_step(nodes, level).values()]
    longest = max((len(counts) for counts in layers), default=0)
    if longest <= 2:
        return None
    prefix = [[0, *accumulate(counts)] for counts in layers]  # prefix[l][k]: first k steps
    outside_steps = _drawn_count(nodes, level) - sum(p[-1] for p in prefix)

    def drawn_ops(k: int) -> int:
        return outside_steps + sum(p[k] + p[-1] - p[-2] if len(p) > k + 2 else p[-1]
                                   for p in prefix)

    k = 1
    while k + 2 < longest and drawn_ops(k + 1) <= max_nodes:
        k += 1
    return k, drawn_ops(k), longest


_TAG_STEPS = ("a loop's ops get time steps by running each step inside "
              "`with mt.scope(step=t):`, and then max_steps=<n> keeps the first n and the last")


def _auto_max_steps(nodes: list[Node], op_count: int, max_nodes: int,
                    level: str = "op") -> tuple[int | None, str | None]:
    """The largest max_steps whose picture has at most ``max_nodes`` op nodes (at level
    "step": boxes), at least 1; None if the graph has no time steps (then ``_elide_chain``
    cuts it)."""
    fitting = _fitting_max_steps(nodes, max_nodes, level)
    if fitting is None:
        return None, None
    k, _, longest = fitting
    first = "the first time step" if k == 1 else f"the first {k} time steps"
    what = "op nodes" if level == "op" else "time-step boxes"
    warnings.warn(
        f"draw_graph: the graph has {op_count} {what}, more than max_nodes={max_nodes} "
        f"that make a readable picture, so only {first} and the last one of each "
        f"recurrent layer are drawn (max_steps={k}). Pass max_steps=<n> to draw more "
        f"steps (max_steps={longest} draws all {longest}) or raise max_nodes=; a full unroll "
        "this large is slow to lay out (the seed model: 1 s with clusters, 80 s with "
        "group=None); level='step' draws one box per step.", stacklevel=3)
    note = (f"{op_count} {what}: time steps elided automatically (max_steps={k}); "
            f"pass max_steps=<n> or max_nodes=<n> to draw more")
    return k, note


def _elide_chain(nodes: list[Node], edges: list[tuple[str, str]], max_nodes: int
                 ) -> tuple[list[Node], list[tuple[str, str]], str]:
    """Keep the first and the last ``max_nodes // 2`` op nodes (in the order they were
    computed: in a loop, its first and last steps) and draw the ones between as one node;
    a leaf that only they use goes with them. For graphs with no time steps to elide."""
    ops = [node for node in nodes if node.is_op]
    hidden = {node.key for node in ops[max_nodes // 2:len(ops) - max_nodes // 2]}
    users: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        users[source].append(target)
    for node in nodes:  # leaves come before their users; params are drawn once anyway
        if (not node.is_op and node.kind != "param" and users[node.key]
                and all(user in hidden for user in users[node.key])):
            hidden.add(node.key)
    count = sum(node.key in hidden for node in ops)
    label = (f"… {count} ops elided: the graph has {len(ops)} op nodes and no time steps;\\n"
             "run each step of a loop inside `with mt.scope(step=t):` and pass max_steps=<n>")
    elided = Node("elided_ops", "elided", label, None, None)
    kept = [node for node in nodes if node.key not in hidden]
    first_hidden = next(i for i, node in enumerate(nodes) if node.key in hidden)
    kept.insert(sum(1 for node in nodes[:first_hidden] if node.key not in hidden), elided)
    moved = {key: elided.key for key in hidden}
    rerouted = ((moved.get(a, a), moved.get(b, b)) for a, b in edges)
    warnings.warn(
        f"draw_graph: the graph has {len(ops)} op nodes, more than max_nodes={max_nodes} that "
        f"Graphviz lays out quickly, and no time steps to elide, so only the first and the "
        f"last {max_nodes // 2} ops are drawn and {count} between them are elided. "
        f"{_TAG_STEPS[0].upper()}{_TAG_STEPS[1:]} steps (max_steps); or raise max_nodes=<n> "
        "to draw more.", stacklevel=3)
    note = f"{len(ops)} op nodes and no time steps: {count} ops elided; pass max_nodes=<n>"
    return kept, list(dict.fromkeys(e for e in rerouted if e[0] != e[1])), note


def _check_value_picture_size(nodes: list[Node], edges: list[tuple[str, str]],
                              max_steps: int | None, max_nodes: int) -> None:
    """show_values is for small pictures: refuse, saying what to pass, above ``max_nodes``."""
    drawn = nodes if max_steps is None else _elide(nodes, edges, max_steps)[0]
    op_count = sum(node.is_op for node in drawn)
    if op_count <= max_nodes:
        return
    fitting = _fitting_max_steps(nodes, max_nodes)
    hint = "draw a smaller model or a shorter sequence"
    if fitting is not None and fitting[1] <= max_nodes:
        hint = f"pass max_steps={fitting[0]} (draws {fitting[1]} op nodes) or {hint}"
    raise ValueError(
        f"draw_graph(show_values=True): the picture would have {op_count} op nodes, more than "
        f"the limit of {max_nodes} that stay readable with values; {hint}, or raise "
        f"max_nodes=<n>.")


def _elide(nodes: list[Node], edges: list[tuple[str, str]],
           max_steps: int) -> tuple[list[Node], list[tuple[str, str]]]:
    """Replace the steps after the first ``max_steps`` (but the last) by one node per layer.

    Edges into or out of elided nodes are rerouted to the elision node, so no
    edge points at a node that is not drawn.
    """
    stand_in: dict[tuple[str | None, int], Node] = {}
    for index, (scope, steps) in enumerate(_ops_per_step(nodes).items()):
        hidden = sorted(steps)[max_steps:-1]
        if not hidden:
            continue
        span = f"t={hidden[0]}" + (f"..{hidden[-1]}" if len(hidden) > 1 else "")
        plural = "s" if len(hidden) > 1 else ""
        elided = Node(f"elided{index}", "elided", f"… {len(hidden)} step{plural} ({span}) "
                       "elided", scope, None, hidden[0])
        for step in hidden:
            stand_in[scope, step] = elided
    if not stand_in:
        return nodes, edges
    kept: list[Node] = []
    moved: dict[str, str] = {}
    placed: set[str] = set()
    for node in nodes:
        elided = stand_in.get((node.scope, node.step))
        if elided is None:
            kept.append(node)
            continue
        if elided.key not in placed:
            placed.add(elided.key)
            kept.append(elided)  # drawn where its first hidden node was
        moved[node.key] = elided.key
    rerouted = ((moved.get(a, a), moved.get(b, b)) for a, b in edges)
    return kept, list(dict.fromkeys(e for e in rerouted if e[0] != e[1]))


# -- values used at every time step ---------------------------------------------------------

def _route_buses(nodes: list[Node], edges: list[tuple[str, str]]
                 ) -> tuple[list[Node], list[tuple[str, str, str]]]:
    """Edges as (source, target, kind), with one bus for each value used by many time steps.

    A parameter (or a layer-level value such as an input projection of all
    steps) that feeds several step clusters gets a bus: a line from it through
    one tap point per step cluster that uses it (and through elision nodes), in
    time order; each tap feeds the ops of its step. Every bus segment joins
    neighbouring steps, so ``dot`` never sees an edge spanning the whole unroll.
    kind is "" (data flow), "param-bus"/"param-branch" or "data-bus"/"data-branch".
    """
    by_key = {node.key: node for node in nodes}
    scope_rank: dict[str | None, int] = {}
    for node in nodes:
        scope_rank.setdefault(node.scope, len(scope_rank))
    position = {node.key: index for index, node in enumerate(nodes)}
    routed: list[tuple[str, str, str]] = []
    step_users: dict[str, list[Node]] = defaultdict(list)
    loose_users: dict[str, list[Node]] = defaultdict(list)  # users with no time step
    for source, target in edges:
        user = by_key[target]
        in_steps = user.step is not None or user.kind == "elided"
        if in_steps and by_key[source].step is None and by_key[source].kind != "elided":
            step_users[source].append(user)
        elif not in_steps:
            loose_users[source].append(user)
        else:
            routed.append((source, target, ""))
    for source, users in loose_users.items():
        if len(users) < LOOSE_BUS_USERS:  # a few edges are no trouble for the layout
            routed.extend((source, user.key, "") for user in users)
        else:  # e.g. the weight of a hand-written loop: each use is a station of its own
            step_users[source].extend(users)
    taps: list[Node] = []
    for source, users in step_users.items():
        # A station is one step cluster (all its users share one tap), one elision node,
        # or one user without a time step.
        stations: dict[tuple, list[Node]] = defaultdict(list)
        for user in users:
            if user.kind == "elided":
                station = (scope_rank[user.scope], user.at_step or 0, position[user.key])
            elif user.step is None:
                station = (scope_rank[user.scope], 0, position[user.key])
            else:
                station = (scope_rank[user.scope], user.step, 0)
            stations[station].append(user)
        if len(stations) < 2:
            routed.extend((source, user.key, "") for user in users)
            continue
        tone = "param" if by_key[source].kind == "param" else "data"
        line = [source]
        for station in sorted(stations):
            first = stations[station][0]
            if first.kind == "elided":
                line.append(first.key)
                continue
            tap = Node(f"tap{len(taps)}", f"{tone}-tap", "", first.scope, first.step)
            taps.append(tap)
            line.append(tap.key)
            routed.extend((tap.key, user.key, f"{tone}-branch") for user in stations[station])
        routed.extend((a, b, f"{tone}-bus") for a, b in zip(line[:-1], line[1:], strict=True))
    return nodes + taps, routed


# -- writing DOT -----------------------------------------------------------------------------

_PARAM_COLOR, _DATA_COLOR = "#b8751a", "#5b6b7f"
_STYLE["param-tap"] = {"shape": "point", "width": "0.06", "color": _PARAM_COLOR}
_STYLE["data-tap"] = {"shape": "point", "width": "0.06", "color": _DATA_COLOR}
_EDGE_STYLE = {
    "": {},
    "param-bus": {"color": _PARAM_COLOR, "style": "dashed", "arrowhead": "none"},
    "param-branch": {"color": _PARAM_COLOR},
    "data-bus": {"color": _DATA_COLOR, "arrowhead": "none"},
    "data-branch": {},
    "state": {"weight": "8"},  # from one time step to the next: kept short and straight
}


def _add_node(graph: graphviz.Digraph, node: Node) -> None:
    # Boxes of one layer's time steps share a `group`: dot keeps such a chain straight.
    straight = {"group": node.scope or ""} if node.kind in ("step", "elided") else {}
    graph.node(node.key, node.label, _attributes={"class": node.kind}, **straight,
               **_STYLE[node.kind])


def _emit(nodes: list[Node], edges: list[tuple[str, str, str, str]], group: str | None,
          rankdir: str, note: str | None, leaves_beside_first: bool = False) -> Graph:
    """The DOT graph; edges are (source, target, kind, label). ``leaves_beside_first``:
    a layer's parameters and inputs share the rank of its first box, so they don't
    stretch the layer's cluster up beside the layers before it."""
    graph = Graph("microtensor", graph_attr={"rankdir": rankdir, "fontname": "Helvetica"},
                  node_attr={"fontname": "Helvetica", "fontsize": "10", "height": "0.3"},
                  edge_attr={"color": "#5b6b7f", "arrowsize": "0.6", "fontname": "Helvetica",
                             "fontsize": "10"})
    if note:
        graph.attr(label=note, labelloc="t", fontcolor="#a8323e")
    if group is None:
        for node in nodes:
            _add_node(graph, node)
    else:
        _emit_clusters(graph, nodes, leaves_beside_first)
    # Edges go last, at the top level: an edge written inside a cluster would pull
    # both of its ends into that cluster.
    for source, target, kind, label in edges:
        graph.edge(source, target, **({"label": label} if label else {}), **_EDGE_STYLE[kind])
    return graph


def _emit_clusters(graph: graphviz.Digraph, nodes: list[Node],
                   leaves_beside_first: bool = False) -> None:
    """One cluster per layer (scope), and inside it one per time step."""
    layers: dict[str | None, tuple[list[Node], dict[int, list[Node]]]] = {}
    for node in nodes:
        if node.scope is None and node.step is None:
            _add_node(graph, node)
            continue
        loose, steps = layers.setdefault(node.scope, ([], {}))
        (loose if node.step is None else steps.setdefault(node.step, [])).append(node)
    for i, (scope, (loose, steps)) in enumerate(layers.items()):
        with graph.subgraph(name=f"cluster_{i}") as layer:
            layer.attr(label=scope or "", style="rounded", color="#9aa7b8", fontsize="12")
            for node in loose:
                _add_node(layer, node)
            boxes = [node for node in loose if node.kind in ("step", "output")]
            params = [node for node in loose if node.kind == "param"]
            if leaves_beside_first and boxes and params:
                with layer.subgraph() as row:
                    row.attr(rank="same")
                    for node in [boxes[0], *params]:
                        row.node(node.key)
            for j, (step, members) in enumerate(sorted(steps.items())):
                with layer.subgraph(name=f"cluster_{i}_{j}") as box:
                    box.attr(label=f"{scope} · t={step}" if scope else f"t={step}",
                             style="rounded,dashed", color="#b9c3d0", fontsize="10")
                    for node in members:
                        _add_node(box, node)
