"""Symbolic tensors of the Keras functional API: a shape and the layer call that makes it.

``nn.Input(shape=(50, 10))`` returns one; calling a layer on it records a
``Node`` and returns the symbolic output, so ``nn.Model`` can replay the calls.
"""

from __future__ import annotations

import itertools
from typing import Any

Shape = tuple[int | None, ...]
_node_ids = itertools.count()


class Node:
    """One call of a layer: its (symbolic) inputs and keyword arguments."""

    def __init__(self, layer, inputs: Any, kwargs: dict[str, Any]):
        self.id = next(_node_ids)  # creation order is a topological order
        self.layer = layer
        self.inputs = inputs
        self.kwargs = kwargs
        self.output_shape = None  # set by the layer call that makes this node

    def symbolic_inputs(self) -> list[SymbolicTensor]:
        return [t for t in flatten((self.inputs, list(self.kwargs.values())))
                if isinstance(t, SymbolicTensor)]


class SymbolicTensor:
    """A placeholder with a shape (None for the batch axis), like Keras's KerasTensor."""

    def __init__(self, shape: Shape, node: Node, index: int | None = None):
        self.shape = tuple(shape)
        self.node = node
        self.index = index  # position among the node's outputs when it has several

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={self.shape} from {self.node.layer.name}>"


def flatten(structure: Any) -> list[Any]:
    """Items of nested lists/tuples, in order (iteratively)."""
    items, stack = [], [structure]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(reversed(item))
        else:
            items.append(item)
    return items


def map_structure(fn, structure: Any) -> Any:
    """``structure`` with ``fn`` applied to every leaf; lists and tuples keep their type."""
    if isinstance(structure, list | tuple):
        return type(structure)(map_structure(fn, item) for item in structure)
    return fn(structure)


def is_symbolic(structure: Any) -> bool:
    return any(isinstance(t, SymbolicTensor) for t in flatten(structure))
