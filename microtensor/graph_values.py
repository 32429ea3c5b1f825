"""The ``data | grad`` rows of ``draw_graph(show_values=True)``: micrograd's boxes, for tensors.

Each node's label becomes a small Graphviz HTML-like table: the usual text
(op or name, shape), a rule, then the value and, when there is one, the
gradient. Numbers have 4 significant digits (``f"{v:.4g}"``); an array of up
to ``MAX_LISTED`` elements is printed in full, a larger one as its mean, min
and max.
"""

from __future__ import annotations

from html import escape

import numpy as np

from .speedups import is_freed
from .tensor import Tensor

MAX_LISTED = 6  # arrays with more elements than this are summarised
_GRAD_COLOR = "#a8323e"


def number_text(value: float) -> str:
    """One number as the graph prints it: 4 significant digits."""
    return f"{float(value) + 0.0:.4g}"  # + 0.0 turns -0 into 0


def array_text(values: np.ndarray) -> str:
    """``0.7311`` (one element), ``[[0.1, -2], [3, 4]]`` (up to MAX_LISTED),
    else ``mean 0.01 min -0.9 max 0.8``."""
    if values.size == 1:
        return number_text(values.item())
    if values.size <= MAX_LISTED:
        return np.array2string(values, separator=", ", max_line_width=10**6,
                               formatter={"all": number_text})
    return (f"mean {number_text(values.mean())} min {number_text(values.min())} "
            f"max {number_text(values.max())}")


def values_label(text: str, tensor: Tensor) -> str:
    """The HTML-like label: ``text`` (lines split at DOT's ``\\n``), then data and grad rows."""
    rows = [f"<TR><TD>{escape(line)}</TD></TR>" for line in text.split("\\n") if line]
    rows.append("<HR/>")
    data = "freed" if is_freed(tensor.data) else array_text(tensor.data)
    rows.append(f'<TR><TD ALIGN="LEFT">data {escape(data)}</TD></TR>')
    if tensor.grad is not None:
        rows.append(f'<TR><TD ALIGN="LEFT"><FONT COLOR="{_GRAD_COLOR}">grad '
                    f"{escape(array_text(tensor.grad))}</FONT></TD></TR>")
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
            f"{''.join(rows)}</TABLE>>")


def freed_notes(tensors: list[Tensor]) -> list[str]:
    """Hints when intermediate values or gradients were freed, saying how to keep them."""
    notes = []
    if any(is_freed(t.data) for t in tensors):
        notes.append("the forward pass ran inside mt.freeing_values(), which dropped the values "
                     "of intermediate tensors; run it outside that block to see them")
    has_grads = any(t.is_leaf and t.grad is not None for t in tensors)
    if has_grads and any(not t.is_leaf and t.grad is None for t in tensors):
        notes.append("intermediate gradients were freed by backward(); "
                     "call backward(retain_grads=True) to see them")
    return notes
