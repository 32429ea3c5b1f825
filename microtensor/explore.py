"""explore: the whole graph of a tensor as one self-contained, interactive HTML page.

A Graphviz picture of a fully unrolled model is too big to lay out or to read
(see graph.py). The explorer instead ships the graph as data and lets a small
script of the project's own (``explorer/explorer.js``, no library, no network)
lay out only what is open: it starts at one box per layer (``tensor.scope``);
clicking a layer opens its time steps (``tensor.step``), clicking a step opens
its ops. Every op node of the graph is in the file, none elided; clicking one
shows its op, name, layer, step, shape, value statistics and a small heatmap
of its value (and of its gradient, if a backward pass left one).

What each node carries, to keep a 3,000-node model at a few MB: min, mean, max
and standard deviation of its value (and gradient), and a heatmap of at most
``HEATMAP_CELLS`` × ``HEATMAP_CELLS`` block means quantised to bytes, never the
arrays themselves.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np

from .speedups import is_freed
from .tensor import Tensor

HEATMAP_CELLS = 16  # a heatmap has at most this many rows and columns of block means
_NOT_FINITE = 255  # the byte of a cell whose block holds inf or nan; 0..254 are values


# -- reading the graph -------------------------------------------------------------------------

def graph_tensors(root: Tensor) -> list[Tensor]:
    """Every tensor ``root`` was computed from (and ``root``), parents before children.

    Ordered by depth (the longest chain of ops from a leaf), so that what is computed
    together is listed together: an LSTM step's gates i, f, c_hat, o side by side, then c,
    then h, and time steps in order. Found by an iterative depth-first walk over
    ``tensor.parents``, so a chain of 100,000 ops needs no recursion.
    """
    order: list[Tensor] = []
    seen = {id(root)}
    # the last parent is walked first: a step's state before its gates, earlier steps first
    stack = [(root, reversed(root.parents))]
    while stack:
        tensor, parents = stack[-1]
        for parent in parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, reversed(parent.parents)))
                break
        else:  # every parent is listed: now the tensor
            stack.pop()
            order.append(tensor)
    depth: dict[int, int] = {}
    for tensor in order:  # parents come first in the walk's order
        depth[id(tensor)] = 1 + max((depth[id(p)] for p in tensor.parents), default=-1)
    return sorted(order, key=lambda t: depth[id(t)])


def _is_constant(tensor: Tensor, root: Tensor) -> bool:
    """An unnamed scalar without grad, like the 1 in ``1 - x``: written into its user's label."""
    return (not tensor.parents and not tensor.requires_grad and tensor.name is None
            and tensor.data.size == 1 and tensor is not root and not is_freed(tensor.data))


def _kind(tensor: Tensor, root: Tensor) -> str:
    if tensor is root:
        return "output"
    if tensor.parents:
        return "op"
    return "param" if tensor.requires_grad else "data"


def _label(tensor: Tensor, root: Tensor) -> str:
    """``f = sigmoid``, ``matmul``, ``sub(1, ·)``, or a leaf's name."""
    if not tensor.parents:
        if tensor.name:
            return tensor.name
        if tensor.op:
            return f"{tensor.op} (no grad)"
        return "parameter" if tensor.requires_grad else "input"
    text = tensor.op
    if any(_is_constant(p, root) for p in tensor.parents):
        args = (f"{p.data.item():g}" if _is_constant(p, root) else "·" for p in tensor.parents)
        text = f"{text}({', '.join(args)})"
    return f"{tensor.name} = {text}" if tensor.name else text


def _scope_of(tensor: Tensor) -> str | None:
    """The layer a tensor belongs to; a parameter made outside its layer's scope is named
    "lstm1/kernel" and belongs to lstm1."""
    if tensor.scope is None and tensor.requires_grad and not tensor.parents and tensor.name:
        prefix, slash, _ = tensor.name.partition("/")
        return prefix if slash else None
    return tensor.scope


# -- summarising an array ----------------------------------------------------------------------

def _number(value: float) -> float | str:
    """A JSON number with float32's precision; inf and nan as strings JavaScript's Number reads."""
    value = float(value)
    if np.isfinite(value):
        return float(f"{value:.7g}")
    return "NaN" if np.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def array_stats(values: np.ndarray) -> list[float | str]:
    """[min, mean, max, std] of ``values`` in float64 (nan for an empty array)."""
    wide = np.asarray(values, dtype=np.float64)
    if wide.size == 0:
        return [_number(np.nan)] * 4
    return [_number(s) for s in (wide.min(), wide.mean(), wide.max(), wide.std())]


def _as_matrix(values: np.ndarray) -> np.ndarray:
    """rows × columns: a scalar is 1 × 1, a vector one row, more axes fold into the rows."""
    if values.ndim == 0:
        return values.reshape(1, 1)
    if values.ndim == 1:
        return values.reshape(1, -1)
    return values.reshape(-1, values.shape[-1])


def _block_means(matrix: np.ndarray, cells: int) -> np.ndarray:
    """At most ``cells`` × ``cells`` means of nearly equal blocks of ``matrix``."""
    for axis in (0, 1):
        length = matrix.shape[axis]
        if length > cells:
            starts = (np.arange(cells) * length) // cells
            counts = np.diff(np.append(starts, length))
            sums = np.add.reduceat(matrix, starts, axis=axis)
            matrix = sums / (counts[:, None] if axis == 0 else counts[None, :])
    return matrix


def heatmap(values: np.ndarray, cells: int = HEATMAP_CELLS) -> dict:
    """A small picture of ``values``: block means quantised to bytes 0..254 between their
    smallest (lo) and largest (hi); 255 marks a block with inf or nan.

    Returns {"rows", "cols", "lo", "hi", "bytes" (base64, row-major)}. Rows are every axis
    but the last, in order; columns the last axis.
    """
    matrix = _as_matrix(np.asarray(values, dtype=np.float64))
    if matrix.size == 0:
        return {"rows": 0, "cols": 0, "lo": 0.0, "hi": 0.0, "bytes": ""}
    means = _block_means(matrix, cells)
    finite = np.isfinite(means)
    lo, hi = (means[finite].min(), means[finite].max()) if finite.any() else (0.0, 0.0)
    scaled = (means - lo) / (hi - lo) if hi > lo else np.zeros_like(means)
    codes = np.where(finite, np.rint(np.nan_to_num(scaled) * 254), _NOT_FINITE).astype(np.uint8)
    return {"rows": int(means.shape[0]), "cols": int(means.shape[1]), "lo": _number(lo),
            "hi": _number(hi), "bytes": base64.b64encode(codes.tobytes()).decode("ascii")}


# -- the page ----------------------------------------------------------------------------------

def explorer_data(root: Tensor, title: str = "graph",
                  layer_notes: Mapping[str, str] | None = None) -> dict:
    """The graph of ``root`` as the explorer's JSON: one entry per tensor, parents first.

    Each node: label, op, name, layer (scope), step, shape, dtype, kind (op, output, param,
    data), parent indices, and for value and gradient (when there is one) their stats
    (``array_stats``) and ``heatmap``. ``layer_notes`` adds a line to each layer's box
    (e.g. "LSTM · (None, 50, 128)").
    """
    tensors = [t for t in graph_tensors(root) if not _is_constant(t, root)]
    index = {id(t): k for k, t in enumerate(tensors)}
    nodes = []
    for tensor in tensors:
        node = {"label": _label(tensor, root), "op": tensor.op, "name": tensor.name,
                "layer": _scope_of(tensor), "step": tensor.step,
                "shape": list(tensor.shape), "dtype": str(tensor.data.dtype),
                "kind": _kind(tensor, root),
                "parents": [index[id(p)] for p in tensor.parents if id(p) in index]}
        if is_freed(tensor.data):
            node["freed"] = True
        elif tensor.data.dtype.kind in "fiub":
            node["value"] = {"stats": array_stats(tensor.data), "heatmap": heatmap(tensor.data)}
        if tensor.grad is not None:
            node["grad"] = {"stats": array_stats(tensor.grad), "heatmap": heatmap(tensor.grad)}
        nodes.append(node)
    return {"title": title, "nodes": nodes, "layerNotes": dict(layer_notes or {})}


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("explorer", name).read_text(encoding="utf-8")


def explorer_html(data: dict) -> str:
    """One HTML page holding ``data``, the explorer's style and script; nothing loaded from
    elsewhere."""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False)
    payload = payload.replace("</", "<\\/")  # no "</script>" inside the script element
    return (_asset("explorer.html")
            .replace("%TITLE%", html.escape(data["title"]))
            .replace("/*%STYLE%*/", _asset("explorer.css"))
            .replace("%DATA%", payload)
            .replace("/*%SCRIPT%*/", _asset("explorer.js")))


class Explorer:
    """The explorer page of one graph: ``save(path)`` writes it; in Jupyter it shows inline."""

    def __init__(self, page: str, node_count: int):
        self.html = page
        self.node_count = node_count

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.html, encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        # An iframe keeps the page's script and style apart from the notebook's own.
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" '
                'style="width: 100%; height: 640px; border: 1px solid #ccd3dc" '
                'sandbox="allow-scripts"></iframe>')

    def __repr__(self) -> str:
        return f"<Explorer of {self.node_count} nodes; .save(path) writes the HTML file>"


def explore(root: Tensor, path: str | Path | None = None, title: str | None = None,
            layer_notes: Mapping[str, str] | None = None) -> Explorer | Path:
    """An interactive explorer of the graph that produced ``root``, as one HTML file.

    It opens at one box per layer; clicking a layer opens its time steps, a
    step its ops; the wheel zooms, dragging pans, the search box finds nodes
    by name, op or layer. Clicking a node shows its op, name, layer, step,
    shape, min/mean/max of its value and a heatmap of it, and of its gradient
    after ``root.backward(retain_grads=True)`` (parameters keep theirs
    anyway). Values dropped inside ``mt.freeing_values()`` are shown as such.

    path: where to write the page (returns that Path); without it, returns an
    ``Explorer``, which Jupyter shows inline.
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"explore: root must be the Tensor whose graph to explore (e.g. the "
                        f"loss), got {type(root).__name__}")
    data = explorer_data(root, title or "microtensor graph", layer_notes)
    explorer = Explorer(explorer_html(data), len(data["nodes"]))
    return explorer if path is None else explorer.save(path)
