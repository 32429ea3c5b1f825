"""A traced program (compile.py) as one generated Python function: the replay with no loop.
Without this: ``program.run(args)``, the loop that reads each entry and runs it.

``Program.run`` walks its entries and, for each, unpacks the entry, looks up the slots it
reads, calls the op and files the result; its backward loop decides at every node whether
a gradient waits alone or goes into a sum and whether the node's ``backward`` can go. All
of those answers are the same at every replay: this module decides them once and writes
the program as straight-line code, one line per op and per gradient, which Python
compiles once (``print(program.straight_line.source)``)::

    v12, b12 = _sigmoid_7(v11)                 # the op function eager runs
    ...
    d0, = b12(g12); del g12; del b12           # its backward closure
    g11 = d0 if d0.__class__ is ndarray and d0.shape == (32, 128) else ...

The calls are the same op functions and the same ``backward`` closures, in the same order,
so the numbers are the same (bit for bit, but for the sign of a zero; tests/test_compile.py
runs both ways). Two more
things are decided once here: a gradient that arrives as slices tiling its node exactly
(an LSTM's four gates, its inputs projected for every step) is written slice by slice into
an empty array, where the loop's GradientSum starts from zeros and adds; and the cycle
collector is paused (a replay makes no cycles). ``mt.plain_engine()`` replays with
``program.run``. What this buys, measured: benchmarks/README.md.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from .ops import unbroadcast
from .shape_ops import getitem
from .speedups import GradientSum, collector_paused, is_view_index


def straight_line(program, resolved: Callable) -> Callable[[list, list], dict]:
    """``program`` as a function of (the call's arrays, the call's leaves) -> {slot: value}
    for the slots the program returns. ``resolved(constant, arrays)`` gives an op's
    constant for this call (compile.py: an embedding's indices come from the arguments)."""
    writer = _Writer(program, resolved)
    source = writer.source()
    namespace = dict(writer.globals)
    exec(compile(source, f"<mt.compile: {len(program.entries)} entries>", "exec",
                 dont_inherit=True), namespace)
    replay = namespace.pop("replay")  # (left in its own globals, it would be a reference cycle)

    def run(arrays: list, leaves: list) -> dict:
        with collector_paused():  # a replay makes no reference cycles (speedups.py)
            return replay(arrays, leaves)
    run.source = source  # for a curious reader: print(program.straight_line.source)
    return run


def _tiles(shape: tuple, indices: list) -> bool:
    """Do the regions ``x[index]`` cover an array of ``shape`` exactly once each?"""
    covered = np.zeros(shape, bool)
    for index in indices:
        if covered[index].any():
            return False
        covered[index] = True
    return bool(covered.all())


def _as_array(g) -> np.ndarray:
    """A gradient on its own: a Scatter or Product (speedups.py) made into its array."""
    if g.__class__ is np.ndarray or isinstance(g, np.ndarray | np.generic):
        return g
    return g.dense()


def _set_grad(leaf, g, adds: bool) -> None:
    """As Tensor.backward: a leaf's .grad, added to what it holds if it held one when traced
    (else it was reset between calls, unseen by the trace)."""
    leaf.grad = np.array(leaf.grad + g if adds and leaf.grad is not None else g, leaf.dtype)


class _Writer:
    """Writes the lines of ``replay(arrays, leaves)`` and the globals they use."""

    def __init__(self, program, resolved: Callable) -> None:
        self.program = program
        self.globals: dict[str, Any] = {
            "np": np, "ndarray": np.ndarray, "unbroadcast": unbroadcast, "GradientSum": GradientSum,
            "as_array": _as_array, "set_grad": _set_grad, "resolved": resolved}
        self.lines: list[str] = []
        self._names: dict[int, str] = {}  # id of a global object -> its name
        self.ops = {entry[4]: entry for entry in program.entries if entry[0] == "op"}

    def source(self) -> str:
        self._inputs()
        for index, entry in enumerate(self.program.entries):
            kind = entry[0]
            if kind == "op":
                self._op(entry)
            elif kind == "backward":
                self._backward(index, entry)
            else:
                _, method, call_args, call_kwargs = entry
                self.line(f"{self.name(method, 'call')}(*{self.name(call_args, 'args')}, "
                          f"**{self.name(call_kwargs, 'kwargs')})")
        returned = sorted(self.program.returned)
        self.line("return {" + ", ".join(f"{s}: v{s}" for s in returned) + "}")
        return "def replay(arrays, leaves):\n" + "\n".join(self.lines) + "\n"

    def line(self, text: str) -> None:
        self.lines.append("    " + text)

    def name(self, value: Any, hint: str) -> str:
        """A global holding ``value``, named after ``hint``."""
        key = id(value)
        if key not in self._names:
            base = re.sub(r"[^0-9A-Za-z_]", "_", hint)
            self._names[key] = name = f"_{base}_{len(self._names)}"
            self.globals[name] = value
        return self._names[key]

    # -- forward -------------------------------------------------------------------------
    def _inputs(self) -> None:
        for slot, source in self.program.inputs:
            kind = source[0]
            if kind == "arg":
                self.line(f"v{slot} = arrays[{source[1]}]" if len(source) == 2 else
                          f"v{slot} = np.asarray(arrays[{source[1]}], "
                          f"{self.name(source[2], 'dtype')})")
            elif kind == "param":
                self.line(f"v{slot} = {self.name(source[1], 'param')}.data")
            elif kind == "constant":
                self.line(f"v{slot} = {self.name(source[1], 'constant')}")

    def _op(self, entry: tuple) -> None:
        _, op, reads, constants, slot, keep_backward, frees, from_arguments = entry
        arguments = [f"v{s}" for s in reads]
        for key, constant in constants.items():
            held = self.name(constant, f"{op.__name__}_{key}")
            if from_arguments:  # (resolved gives the other constants back as they are)
                held = f"resolved({held}, arrays)"
            if key.isidentifier() and not keyword.iskeyword(key):
                arguments.append(f"{key}={held}")
            else:  # a keyword Python can't spell: passed as a dict
                arguments.append(f"**{{{key!r}: {held}}}")
        call = f"{self.name(op, op.__name__)}({', '.join(arguments)})"
        self.line(f"v{slot}, b{slot} = {call}" if keep_backward else f"v{slot} = {call}[0]")
        if frees:
            self.line("del " + ", ".join(f"v{s}" for s in frees))

    # -- backward ------------------------------------------------------------------------
    def _backward(self, index: int, entry: tuple) -> None:
        """Tensor.backward over the traced order: a gradient reaching a node from one place
        is a local variable; those that add up go through a GradientSum, ``sums``."""
        _, root, plan = entry
        reached = {root}  # (every node the trace listed, as topological_order gives only the
        for slot, parents, _, _ in plan:  # root's ancestors; as Program.run's `g is None`)
            if slot in reached and not isinstance(parents, bool):
                reached.update(parent for parent, _, _ in parents if parent is not None)
        tiled = self._tiled(plan, reached)
        started: set[int] = set()
        sums = f"sums{index}"
        if not all(single or slot in tiled for slot, _, _, single in plan if slot in reached):
            self.line(f"{sums} = GradientSum()")
        self.line(f"g{root} = np.ones_like(v{root})")
        for slot, parents, last, single in plan:
            if slot not in reached:
                continue
            local = single or slot in tiled  # its gradient is the local g{slot}
            g = f"g{slot}" if local else f"{sums}.pop({slot})"
            if isinstance(parents, bool):  # a leaf
                leaf = self._leaf(slot)
                self.line(f"set_grad({leaf}, {g}, {parents})" + (f"; del g{slot}" if local
                                                                    else ""))
                continue
            targets = [f"d{k}" if parent is not None else "_"
                       for k, (parent, _, _) in enumerate(parents)]
            self.line(f"{', '.join(targets)}, = b{slot}({g})"
                      + (f"; del g{slot}" if local else "") + (f"; del b{slot}" if last else ""))
            for k, (parent, shape, one) in enumerate(parents):
                if parent is None:
                    continue
                if parent in tiled:  # a slice (a Scatter) written into its place
                    if parent not in started:
                        started.add(parent)
                        self.line(f"g{parent} = np.empty({shape!r}, d{k}.values.dtype)")
                    self.line(f"g{parent}[{tiled[parent][slot]}] = d{k}.values")
                    continue
                d = f"d{k}"  # as Program.run: summed back to its input's shape if broadcasting
                if one:      # stretched it; on its own, a Scatter or Product made an array
                    self.line(f"g{parent} = {d} if {d}.__class__ is ndarray and {d}.shape == "
                              f"{shape!r} else as_array(unbroadcast({d}, {shape!r}))")
                else:
                    self.line(f"{sums}.add({parent}, {d} if {d}.shape == {shape!r} else "
                              f"unbroadcast({d}, {shape!r}))")
            self.line(f"del {', '.join(targets)}")  # (as Program.run: no gradient held longer)

    def _tiled(self, plan: list, reached: set[int]) -> dict[int, dict[int, str]]:
        """The nodes whose gradient arrives only as slices (getitem's Scatters) that tile
        them exactly, each element once: {node: {the slicing op's slot: its index's name}}.
        Their gradient is written slice by slice into an empty array: no zeros, no adds
        (GradientSum's buffer would start from zeros and add each slice)."""
        arrivals: dict[int, list[int]] = {}
        for slot, parents, _, _ in plan:
            if slot in reached and not isinstance(parents, bool):
                for parent, _, _ in parents:
                    if parent is not None:
                        arrivals.setdefault(parent, []).append(slot)
        tiled = {}
        for node, children in arrivals.items():
            shape = self.program.tensors[node].shape
            indices = [self._slice_of(child, node, shape) for child in children]
            if len(children) > 1 and None not in indices and _tiles(shape, indices):
                tiled[node] = {child: self.name(index, "index")
                               for child, index in zip(children, indices, strict=True)}
        return tiled

    def _slice_of(self, slot: int, node: int, shape: tuple) -> Any:
        """The index of the op that made ``slot``, if it is ``node[index]`` with a view index."""
        entry = self.ops.get(slot)
        if entry is None or entry[1] is not getitem or entry[2] != (node,) or entry[7]:
            return None
        index = entry[3]["index"]
        return index if is_view_index(index) else None

    def _leaf(self, slot: int) -> str:
        source = self.program.sources[slot]
        if source[0] == "arg":  # the caller's own tensor of this call
            return f"leaves[{source[1]}]"
        return self.name(self.program.tensors[slot], "leaf")
