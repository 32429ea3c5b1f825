"""model.summary(): Keras's table, optionally explaining every number in it."""

from __future__ import annotations

from .model import InputLayer, Model, Sequential
from .symbolic import Node


def _rows(fields: list[str], positions: list[int]) -> list[str]:
    """Keras's print_row: each field in its column, ending one space before the next column;
    a field too long for its column goes on in the same column on the next lines."""
    starts = [0, *positions[:-1]]
    left = [str(field) for field in fields]
    lines = []
    while True:
        line = ""
        for i, (start, end) in enumerate(zip(starts, positions, strict=True)):
            width = end - start - 1
            shown, left[i] = _split(left[i], width)
            line += shown.ljust(width) + " "
        lines.append(line)
        if not any(left):
            return lines


def _split(text: str, width: int) -> tuple[str, str]:
    """(what fits in width, the rest): after a comma where possible, as "[(None, 4)," ."""
    if len(text) <= width:
        return text, ""
    cut = text.rfind(", ", 0, width)
    return (text[:cut + 1], text[cut + 2:]) if cut > 0 else (text[:width], text[width:])


def _format_shape(shape) -> str:
    return str(shape) if not isinstance(shape, list) else "[" + ", ".join(map(str, shape)) + "]"


def _is_chain(model: Model) -> bool:
    """Keras's 'sequential-like' test, which picks the narrow table: a Sequential, or a
    functional model with one layer call per depth, each with one input, no layer used twice.
    (Depth counts calls from the outputs: two heads on one tensor share a depth.)"""
    if isinstance(model, Sequential):
        return True
    depth: dict[int, int] = {}
    for node in reversed(model.nodes):  # consumers come after their inputs' producers
        depth.setdefault(id(node), 0)
        for t in node.symbolic_inputs():
            depth[id(t.node)] = max(depth.get(id(t.node), 0), depth[id(node)] + 1)
    layers = [node.layer for node in model.nodes]
    return (len(set(depth.values())) == len(model.nodes)
            and all(len(node.symbolic_inputs()) <= 1 for node in model.nodes)
            and len({id(layer) for layer in layers}) == len(layers))


def _connected_to(node: Node) -> str:
    return ", ".join(f"{t.node.layer.name}[0][{t.index or 0}]" for t in node.symbolic_inputs())


def _feeds_indices(model: Model, node: Node) -> bool:
    """True if the output of ``node`` goes into a layer that reads indices (Embedding): its
    axes are then batch × timesteps of token ids, with no features axis."""
    return any(not other.layer.input_has_features
               for other in model.nodes if any(t.node is node for t in other.symbolic_inputs()))


def _explain(node: Node, indices: bool = False) -> list[str]:
    layer = node.layer
    lines = []
    inputs = node.symbolic_inputs()
    if inputs:
        how = layer.explain_params(inputs[0].shape)
        if how:
            lines.append(f"   params: {how}")
        shared = layer.weight_sharing(inputs[0].shape)
        if shared:
            lines.append(f"   {shared}")
    shapes = node.output_shape if isinstance(node.output_shape, list) else [node.output_shape]
    for shape in shapes:
        if indices:
            axes = " × ".join(["batch", *["timesteps"] * (len(shape) - 1)]) + " (token ids)"
        else:
            axes = " × ".join(layer.output_axes(shape))
        lines.append(f"   output: {shape} = {axes}")
    note = layer.describe_output()
    if note:
        lines.append(f"   ({note})")
    return lines


def summary_lines(model: Model, explain: bool = False, line_length: int | None = None) -> list[str]:
    if not model.built:
        raise RuntimeError(f"{model.name}: summary() needs a built model: give the model an "
                           "nn.Input, call model.build(input_shape), or call it on data first")
    chain = _is_chain(model)
    headers = ["Layer (type)", "Output Shape", "Param #"]
    if chain:
        line_length = line_length or 65
        fractions = [0.45, 0.85, 1.0]
    else:
        line_length = line_length or 98
        fractions = [0.33, 0.55, 0.67, 1.0]
        headers.append("Connected to")
    positions = [int(line_length * f) for f in fractions]

    lines = [f'Model: "{model.name}"', "_" * line_length, *_rows(headers, positions),
             "=" * line_length]
    nodes = [n for n in model.nodes
             if not (isinstance(model, Sequential) and isinstance(n.layer, InputLayer))]
    listed: set[int] = set()
    for k, node in enumerate(nodes):
        layer = node.layer
        count = layer.count_params() if id(layer) not in listed else 0
        listed.add(id(layer))
        fields = [f"{layer.name} ({type(layer).__name__})", _format_shape(node.output_shape),
                  f"{count:,}"]
        if not chain:
            fields.append(_connected_to(node))
        lines.extend(_rows(fields, positions))
        if explain:
            lines.extend(_explain(node, _feeds_indices(model, node)))
        lines.append(("=" if k == len(nodes) - 1 else "_") * line_length)

    total = model.count_params()
    trainable = sum(p.size for p in model.parameters() if p.requires_grad)
    lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", "_" * line_length]
    if explain:
        lines.append("None is the batch axis: any number of samples fits there.")
    return lines
