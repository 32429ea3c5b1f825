"""``draw_graph(level="step")``: one box per time step, the textbook unrolled picture.

The op graph is folded: every op of one (layer, time step) becomes one box that
lists the step's equations, written from the ops themselves (``c = f * c_2 + i *
c_hat``: a value from another step carries its step, ``c_2``). The ops a layer
runs outside its steps (the input projection of all steps at once) form one box
too, and so do the ops outside any layer (the loss). Arrows between boxes are
labelled with the values that cross (``h, c`` from one step to the next);
each parameter is drawn once, with an arrow into every box that uses it.
"""

from __future__ import annotations

from collections import defaultdict

from .graph_labels import display_name, equation
from .graph_nodes import Node
from .tensor import Tensor

# (layer, time step, phase): phase 0 for a layer's ops before its steps (or of a layer
# without steps), 1 for those after them (stacking the outputs), so no box feeds itself.
Group = tuple[str | None, int | None, int]
PARAMS = -1  # the phase of a layer's weights, drawn as one node

def _groups(nodes: list[Node], edges: list[tuple[str, str]]) -> dict[str, Group]:
    """The box each node goes into, by key; nodes drawn as themselves (parameters,
    named inputs, elisions) have none. A layer's op that depends on one of its steps
    (stacking their outputs) goes into its box "after the time steps". An unnamed input
    used by one box only (the slice ``x[:, t]`` of a hand-written loop) goes into that box."""
    by_key = {node.key: node for node in nodes}
    parents: dict[str, list[Node]] = defaultdict(list)
    users: dict[str, set[Group | None]] = defaultdict(set)
    for source, target in edges:
        parents[target].append(by_key[source])
    after_steps: set[str] = set()  # nodes whose value depends on a step of their own layer
    groups: dict[str, Group] = {}
    for node in nodes:  # parents first
        if any(p.scope == node.scope and (p.step is not None or p.kind == "elided"
                                         or p.key in after_steps) for p in parents[node.key]):
            after_steps.add(node.key)
        if node.is_op or (node.kind == "data" and node.step is not None):
            after = node.step is None and node.key in after_steps
            groups[node.key] = (node.scope, node.step, int(after))
        elif node.kind == "param":  # all of a layer's weights: one node
            groups[node.key] = (node.scope, None, PARAMS)
    for source, target in edges:
        users[source].add(groups.get(target))
    for node in nodes:
        if (node.kind == "data" and node.key not in groups and node.tensor is not None
                and not node.tensor.name and len(users[node.key]) == 1
                and None not in users[node.key]):
            groups[node.key] = next(iter(users[node.key]))
    return groups


def _in_order(groups: list[Group], scopes: list[str | None]) -> list[Group]:
    """Each layer's weights, its box before the steps, the steps in time, the box after."""
    def key(group: Group) -> tuple:
        scope, step, phase = group
        place = 0 if phase == PARAMS else 3 if phase else 1 if step is None else 2
        return scopes.index(scope), place, step or 0
    return sorted(groups, key=key)


def _title(group: Group, has_steps: bool) -> str:
    scope, step, after = group
    if step is not None:
        return f"{scope} · t={step}" if scope else f"t={step}"
    if not has_steps:
        return scope or "outside the layers"
    return f"{scope}: {'after' if after else 'before'} the time steps"


def _reference(tensor: Tensor, group: Group) -> str:
    """How a box's equations name a value made elsewhere: ``h_2`` for h of step 2, and the
    output of another layer (made outside its steps) by the layer's name."""
    name = display_name(tensor)
    layer_output = (tensor.scope and tensor.scope != group[0] and tensor.step is None
                    and not tensor.is_leaf)
    if name is None or layer_output:
        return tensor.scope if layer_output else "·"
    if tensor.step is not None and tensor.step != group[1] and tensor.requires_grad:
        return f"{name}_{tensor.step}"
    return name


def _equations(members: list[Node], exported: set[int], root: Tensor,
               group: Group) -> list[str]:
    """``name = expression`` for each named or exported value of one box, in order."""
    inside = {id(node.tensor) for node in members}

    def inline(tensor: Tensor) -> bool:
        return (id(tensor) in inside and not tensor.is_leaf and not tensor.name
                and id(tensor) not in exported)

    # In the order the equations are written: each after everything it reads in the box.
    depth: dict[int, int] = {}
    for node in members:
        depth[id(node.tensor)] = 1 + max((depth.get(id(p), 0) for p in node.tensor.parents),
                                         default=0)
    lines = []
    for node in sorted(members, key=lambda node: depth[id(node.tensor)]):
        tensor = node.tensor
        if tensor.is_leaf or not (tensor.name or id(tensor) in exported):
            continue
        text = equation(tensor, root, inline, lambda t: _reference(t, group))
        if tensor.name:
            lines.append(f"{display_name(tensor)} = {text}")
        elif tensor is root:
            lines.append(f"{'loss' if tensor.ndim == 0 else 'output'} = {text}")
        else:
            lines.append(text)
    return lines


def step_boxes(nodes: list[Node], edges: list[tuple[str, str]], root: Tensor
               ) -> tuple[list[Node], list[tuple[str, str, str, str]]]:
    """Fold the op nodes into one box per (layer, step). Edges come back as
    (source, target, kind, label): kind "" for data flow, "param-branch" for a parameter."""
    by_key = {node.key: node for node in nodes}
    group_of = _groups(nodes, edges)
    members: dict[Group, list[Node]] = defaultdict(list)
    for node in nodes:
        if node.key in group_of:
            members[group_of[node.key]].append(node)
    scopes = list(dict.fromkeys(node.scope for node in nodes))
    members = {group: members[group] for group in _in_order(list(members), scopes)}
    box_key = {group: f"s{index}" for index, group in enumerate(members)}
    stepped = {scope for scope, step, _ in members if step is not None}

    def drawn_as(key: str) -> str:
        return box_key[group_of[key]] if key in group_of else key

    exported: set[int] = {id(root)}
    crossing: dict[tuple[str, str], list[str]] = {}
    for source, target in edges:
        a, b = drawn_as(source), drawn_as(target)
        if a == b:
            continue
        tensor = by_key[source].tensor
        names = crossing.setdefault((a, b), [])
        if tensor is not None and not tensor.is_leaf:
            exported.add(id(tensor))
            name = display_name(tensor)
            if name and by_key[source].kind != "param" and name not in names:
                names.append(name)
    boxes: dict[Group, Node] = {}
    for group, group_members in members.items():
        if group[2] == PARAMS:
            lines = [node.label.removeprefix(f"{group[0]}/") for node in group_members]
            boxes[group] = Node(box_key[group], "param", "\\n".join(lines), group[0], None)
            continue
        lines = _equations(group_members, exported, root, group)
        label = _title(group, group[0] in stepped) + "\\n" + "".join(line + "\\l" for line in lines)
        kind = "output" if any(node.tensor is root for node in group_members) else "step"
        boxes[group] = Node(box_key[group], kind, label, group[0], None)
    drawn = [node for node in nodes if node.key not in group_of] + list(boxes.values())
    step_boxes_keys = {box_key[g] for g in members if g[1] is not None}
    box_group = {key: group for group, key in box_key.items()}

    def kind(a: str, b: str) -> str:
        """param-branch, state (from one step to the next, kept straight) or data flow."""
        if a in box_group and box_group[a][2] == PARAMS:
            return "param-branch"
        in_time = [key in step_boxes_keys or (key in by_key and by_key[key].kind == "elided")
                   for key in (a, b)]
        return "state" if all(in_time) else ""

    routed = [(a, b, kind(a, b), ", ".join(names)) for (a, b), names in crossing.items()]
    return drawn, routed
