"""What draw_graph draws: one Node per box, before it becomes DOT text."""

from __future__ import annotations

from dataclasses import dataclass

from .tensor import Tensor


@dataclass
class Node:
    key: str  # the DOT node id: stable, in visit order
    kind: str  # op | output | param | data | elided | param-tap | data-tap
    label: str
    scope: str | None
    step: int | None
    at_step: int | None = None  # where an elision node sits in time (its first hidden step)
    tensor: Tensor | None = None  # what it draws (None for elision nodes and taps)

    @property
    def is_op(self) -> bool:
        return self.kind in ("op", "output")
