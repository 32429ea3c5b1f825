"""``mt.compile(fn)``: trace a step once, then replay it as straight-line numpy calls.
Without this, fn runs eagerly every call: ``step = fn``.

The first call runs ``fn`` eagerly while a ``Tracer`` (``state.tracer``) writes down
every op ``apply`` runs (the op function, its constants, which earlier values it
reads), every ``backward()`` (which nodes, in which order, which leaves get
``.grad``) and every call marked ``@replayed`` (an optimizer's ``step``). A later call
with the same shapes and dtypes runs that list (a ``Program``) on the new arrays: the
same op functions give the new values and the same ``backward`` closures, so no
gradient is written twice, and no Tensor, node or topological sort is made.
``Program.run`` is that loop, plainly; a replay runs the same calls written out as one
straight-line Python function (compile_code.py), which skips the loop's bookkeeping.
The tracer is in compile_trace.py; the program printed for a reader in compile_source.py.

What a replay can't see is guarded, never replayed wrongly:

* Reading a value into Python inside ``fn`` (``x.item()``, ``bool(x)``, ``x.numpy()``)
  or a Python choice a layer reports (``python_choice``, e.g. a padding mask) makes
  the call run eagerly from then on, with a one-line note.
* A constant made from the call's data without an op (``Tensor(x.data * 2)``)
  is found by tracing the second call too: the program is replayed once two traces
  agree, and on new data only once two traces with different data agree; a
  difference means eager, with a note.
* Other shapes, dtypes or Python arguments trace again (one program per signature; 16
  kept, the least lately used dropped). A function whose first 8 calls all had different
  signatures runs eagerly from then on.
* ``guard(read, what)``: a Python value the step chose from (a layer's training flag) is
  read again before each replay; a change traces again.
* A parameter whose array the step changes outside an op and outside a ``@replayed``
  call (``p.data -= ...``), or a returned tensor with a graph but no ``backward()`` in the
  step (its caller's backward needs that graph), makes the call run eagerly, with a note.
* A random op draws inside its forward (``nn.Dropout``), so a replay draws anew.

State ``fn`` reads outside its arguments and the ops (a Python attribute, which model or
optimizer a name means, a choice made from a numpy argument) is fixed by the trace;
parameters' values are read afresh each call.
A parameter whose ``.grad`` was None when the traced backward ran (``zero_grad()``,
``p.grad = None``) gets a fresh ``.grad`` at each replay; one that held a gradient
adds to it (two traces that disagree on this run eagerly).
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .blas_threads import ThreadChoice
from .compile_code import straight_line
from .compile_trace import (
    FromArgument,
    Tracer,
    Unreplayable,
    array_of,
    described,
    leaves_of,
    signature_of,
)
from .context import state
from .ops import unbroadcast
from .speedups import GradientSum
from .tensor import PlainSum, Tensor


def _as_leaf(data: np.ndarray) -> Tensor:
    """A replayed value handed back to the caller: a tensor with no graph."""
    out = Tensor.__new__(Tensor)
    out._set(data, None, (), None, False, None)
    return out


# -- the program -----------------------------------------------------------------------------

class Program:
    """One traced call, ready to replay: ``entries`` run in order over numbered slots."""

    def __init__(self, tracer: Tracer, result: Any) -> None:
        self.sources = tracer.sources
        self.tensors = tracer.tensors
        self.entries = tracer.program
        self.args = [array_of(a).copy() for a in tracer.args]  # to tell a new call's data apart
        self.guards = tracer.guards
        self.has_backward = any(entry[0] == "backward" for entry in self.entries)
        self.output = self._output_of(result, tracer)
        # Replayed once a second call traced the same program (confirmed), on any data once
        # that call had other data (verified): a constant made from the data would differ.
        self.confirmed = self.verified = False
        self.inputs = [(slot, source) for slot, source in enumerate(self.sources)
                       if source[0] != "op"]  # what each call fills in before the ops run
        self.needs_grad = [(tensor, tensor.requires_grad) for tensor, source
                           in zip(self.tensors, self.sources, strict=True)
                           if source[0] in ("param", "constant")]
        self._plan_memory()
        self.straight_line = None  # written at the first replay (False: could not be)

    def _output_of(self, value: Any, tracer: Tracer) -> Any:
        if isinstance(value, Tensor):
            if value._backward is not None and not self.has_backward:
                raise Unreplayable(
                    f"the step returns {described(value)} with its graph but runs no backward(); "
                    "a replay returns values only, so call backward() inside the compiled "
                    "function (or return value.detach())")
            return _Slot(tracer._slot(value))
        if isinstance(value, list | tuple):
            return type(value)(self._output_of(v, tracer) for v in value)
        if isinstance(value, dict):
            return {k: self._output_of(v, tracer) for k, v in value.items()}
        if isinstance(value, np.ndarray):
            raise Unreplayable("the step returns a numpy array (return the tensor instead)")
        return value

    def _plan_memory(self) -> None:
        """Free each value after its last forward use, each backward after its last call."""
        self.returned = {s.slot for s in leaves_of(self.output, _Slot)}
        kept = set(self.returned)
        kept |= {entry[1] for entry in self.entries if entry[0] == "backward"}  # roots
        kept |= {k for k, source in enumerate(self.sources) if source[0] != "op"}
        last_read: dict[int, int] = {}
        last_backward: dict[int, int] = {}
        has_backward: set[int] = set()
        for index, entry in enumerate(self.entries):
            if entry[0] == "op":
                for slot in entry[2]:
                    last_read[slot] = index
            elif entry[0] == "backward":
                for slot, parents in entry[2]:
                    if not isinstance(parents, bool):
                        last_backward[slot] = index
                        has_backward.add(slot)
        frees: dict[int, list[int]] = {}
        for slot, index in last_read.items():
            if slot not in kept:
                frees.setdefault(index, []).append(slot)
        for index, entry in enumerate(self.entries):
            if entry[0] == "op":
                _, op, reads, constants, slot = entry
                self.entries[index] = ("op", op, reads, constants, slot,
                                       slot in has_backward, tuple(frees.get(index, ())),
                                       _from_arguments(constants))
            elif entry[0] == "backward":
                self.entries[index] = ("backward", entry[1],
                                       _backward_plan(entry, index, last_backward))

    def same_as(self, other: Program) -> str | None:
        """None if the two traces are the same program, else what differs."""
        if len(self.entries) != len(other.entries):
            return f"the two calls ran {len(self.entries)} and {len(other.entries)} steps"
        for mine, theirs in zip(self.entries, other.entries, strict=True):
            if not _same(mine, theirs):
                return f"{_label(mine)} differs between two calls" + self._why(mine, theirs)
        for k, (mine, theirs) in enumerate(zip(self.sources, other.sources, strict=True)):
            if not _same(mine, theirs):
                return f"a constant read by the step ({described(self.tensors[k])}) changed"
        if not _same(self.output, other.output):
            return "the step returned different Python values"
        return None

    def _why(self, mine: tuple, theirs: tuple) -> str:
        """For two backward passes that differ: a leaf that held a .grad at one call only."""
        if mine[0] != "backward" or theirs[0] != "backward" or len(mine[2]) != len(theirs[2]):
            return ""
        for node, node_then in zip(mine[2], theirs[2], strict=True):
            slot, held, held_then = node[0], node[1], node_then[1]  # (a leaf's: a bool)
            if isinstance(held, bool) and isinstance(held_then, bool) and held != held_then:
                return (f": {described(self.tensors[slot])} held a .grad at one call and none at "
                        "the other (zero_grad() inside the step makes every call alike)")
        return ""

    def still_holds(self) -> bool:
        """Does every leaf still need a gradient exactly when it did when traced, and does
        every ``guard`` still read the value it read then?"""
        return (all(tensor.requires_grad == needed for tensor, needed in self.needs_grad)
                and all(read() == value for read, value, _ in self.guards))

    def same_arguments(self, args: tuple) -> bool:
        return all(np.array_equal(array_of(a), b) for a, b in zip(leaves_of(args), self.args,
                                                                strict=True))

    # -- replay ----------------------------------------------------------------------------
    def write_code(self) -> None:
        """Write the straight-line function ``replay`` runs (compile_code.py), once. Python
        compiling it costs about two seed-model steps (6,600 lines), more for a program of
        many small ops. Should Python refuse it, replays use the loop, with a note."""
        if self.straight_line is None and not state.plain_engine:
            try:
                self.straight_line = straight_line(self, _resolved)
            except (SyntaxError, RecursionError, MemoryError) as error:
                self.straight_line = False
                print(f"mt.compile: replays with the loop (run), as its straight-line code "
                      f"could not be compiled: {type(error).__name__}: {error}",
                      file=sys.stderr)

    def replay(self, args: tuple) -> Any:
        """``run``, as the straight-line function of ``write_code``."""
        if state.plain_engine or self.straight_line is False:
            return self.run(args)
        self.write_code()
        leaves = leaves_of(args)
        values = self.straight_line([array_of(a) for a in leaves], leaves)
        return _filled(self.output, values, args, self)

    def run(self, args: tuple) -> Any:
        values: list = [None] * len(self.sources)
        arrays = [array_of(a) for a in leaves_of(args)]
        for slot, source in self.inputs:
            kind = source[0]
            if kind == "arg":
                values[slot] = (arrays[source[1]] if len(source) == 2
                                else np.asarray(arrays[source[1]], source[2]))
            elif kind == "param":
                values[slot] = source[1].data
            elif kind == "constant":
                values[slot] = source[1]
        leaves = leaves_of(args)  # the caller's tensors, for their .grad
        backwards: list = [None] * len(self.sources)
        value_of = values.__getitem__
        for entry in self.entries:
            kind = entry[0]
            if kind == "op":
                _, op, reads, constants, slot, keep_backward, frees, from_arguments = entry
                if from_arguments:
                    constants = {k: _resolved(c, arrays) for k, c in constants.items()}
                values[slot], backward = op(*map(value_of, reads), **constants)
                if keep_backward:
                    backwards[slot] = backward
                for i in frees:
                    values[i] = None
            elif kind == "backward":
                self._backward(entry, values, backwards, leaves)
            else:
                _, method, call_args, call_kwargs = entry
                method(*call_args, **call_kwargs)
        return _filled(self.output, values, args, self)

    def _backward(self, entry: tuple, values: list, backwards: list, leaves: list) -> None:
        """Tensor.backward's loop over a fixed order. A gradient that reaches its node from
        one place only waits in ``alone``; those that add up go through a gradient sum."""
        _, root, plan = entry
        grads = PlainSum() if state.plain_engine else GradientSum()  # as Tensor.backward
        alone: list = [None] * len(values)
        alone[root] = np.ones_like(values[root])
        for slot, parents, last, single in plan:
            if single:
                g, alone[slot] = alone[slot], None
            else:
                g = grads.pop(slot)
            if g is None:
                continue
            if isinstance(parents, bool):  # a leaf: its .grad adds up as in Tensor.backward if
                leaf = self._leaf(slot, leaves)  # it held one when traced (else: a reset unseen)
                leaf.grad = np.array(leaf.grad + g if parents and leaf.grad is not None
                                     else g, leaf.dtype)
                continue
            backward = backwards[slot]
            if last:  # what it captured goes as soon as it has run
                backwards[slot] = None
            for (parent, shape, one), parent_grad in zip(parents, backward(g), strict=True):
                if parent is not None:
                    if parent_grad.shape != shape:  # broadcasting stretched it
                        parent_grad = unbroadcast(parent_grad, shape)
                    if not one:
                        grads.add(parent, parent_grad)
                    elif isinstance(parent_grad, np.ndarray | np.generic):
                        alone[parent] = parent_grad
                    else:  # a slice's or a weight product's gradient, on its own
                        alone[parent] = parent_grad.dense()

    def _leaf(self, slot: int, leaves: list) -> Tensor:
        if self.sources[slot][0] == "arg":  # the caller's own tensor of this call
            return leaves[self.sources[slot][1]]
        return self.tensors[slot]


def _backward_plan(entry: tuple, index: int, last_backward: dict[int, int]) -> list[tuple]:
    """Each node of a traced backward as (slot, parents, last, single): ``last`` if no later
    backward calls its function (so it can go), ``single`` if one gradient reaches it; each
    parent as (slot, shape, single)."""
    _, root, plan = entry
    arrivals = {root: 1}
    for _, parents in plan:
        if not isinstance(parents, bool):
            for parent, _ in parents:
                arrivals[parent] = arrivals.get(parent, 0) + 1
    return [(slot, parents if isinstance(parents, bool) else
             tuple((parent, shape, arrivals.get(parent) == 1) for parent, shape in parents),
             last_backward.get(slot) == index, arrivals.get(slot) == 1)
            for slot, parents in plan]


class _Slot:
    """Where the program's result is: a slot's value, handed back as a Tensor."""

    def __init__(self, slot: int) -> None:
        self.slot = slot

    def __eq__(self, other) -> bool:
        return isinstance(other, _Slot) and other.slot == self.slot


def _filled(value: Any, values: list, args: tuple, program: Program) -> Any:
    if isinstance(value, _Slot):
        source = program.sources[value.slot]
        if source[0] == "arg" and len(source) == 2 and isinstance(leaves_of(args)[source[1]],
                                                                  Tensor):
            return leaves_of(args)[source[1]]
        if source[0] == "param":
            return source[1]
        return _as_leaf(values[value.slot])
    if isinstance(value, list | tuple):
        return type(value)(_filled(v, values, args, program) for v in value)
    if isinstance(value, dict):
        return {k: _filled(v, values, args, program) for k, v in value.items()}
    return value


def _from_arguments(constants: dict) -> bool:
    """Does an op's constant come from the call's arguments (see ``FromArgument``)?"""
    return any(_is_from_argument(value) for value in constants.values())


def _is_from_argument(value) -> bool:
    return isinstance(value, FromArgument) or (
        isinstance(value, tuple) and any(_is_from_argument(v) for v in value))


def _resolved(constant: Any, arrays: list) -> Any:
    if isinstance(constant, FromArgument):
        index = np.asarray(arrays[constant.k], constant.dtype)
        if index.dtype.kind in "iu" and index.size and index.min() < 0:
            raise IndexError(f"compiled step: argument {constant.k} is used as indices but "
                             f"holds {index.min()}; indices must be >= 0")
        return index
    if isinstance(constant, tuple):
        return tuple(_resolved(c, arrays) for c in constant)
    return constant


def _same(a: Any, b: Any) -> bool:
    """Equal, with arrays compared by value and parameters by identity."""
    try:  # the fast way, when no array is inside (== of two arrays has no single truth)
        if a == b:
            return True
    except (ValueError, TypeError):
        pass
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b))
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return a is b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except (ValueError, TypeError):
        return a is b


def _label(entry: tuple) -> str:
    if entry[0] == "op":
        return f"the op {entry[1].__name__}"
    return "a backward pass" if entry[0] == "backward" else f"the call {entry[1].__qualname__}"


# -- the compiled function -------------------------------------------------------------------

_EAGER = "eager"
SIGNATURES_WITHOUT_A_REPEAT = 8  # then a function runs eagerly: its calls never repeat
PROGRAMS_KEPT = 16  # signatures (batch shapes...) kept per function, the oldest dropped


class Compiled:
    """``fn`` traced on its first call per signature and replayed afterwards (see above).

    ``source`` is the last program as readable numpy code; ``traces`` counts the traced
    calls; ``note`` says why a signature runs eagerly, if one does.
    """

    def __init__(self, fn: Callable, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__qualname__", "step")
        self.programs: dict = {}
        self.traces = 0
        self.replays = 0
        self.note: str | None = None
        self.given_up = False
        self.signatures_seen = 0  # signatures traced a first time
        self.repeated = False  # has any signature come a second time?
        self._last: Program | None = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if state.tracer is not None or self.given_up:  # inside another compiled step's trace
            return self.fn(*args, **kwargs)  # (be part of it), or no replay is to be had
        call = (args, kwargs)  # every array in it, in order, is an input of the program
        try:
            key = (signature_of(call), state.grad_enabled)
        except TypeError:  # an unhashable argument: no signature to key a program by
            return self.fn(*args, **kwargs)
        program = self.programs.get(key)
        if program is not None:
            self._keep(key, program)  # (used lately: the last to be dropped)
        if isinstance(program, Program) and not program.still_holds():
            program = None  # a parameter was frozen or unfrozen since: trace afresh
        elif isinstance(program, Program) and program.confirmed and (
                program.verified or program.same_arguments(call)):
            self.replays += 1
            program.write_code()  # (not timed by the thread choice)
            try:
                return program.threads.run(lambda: program.replay(call))
            except IndexError:  # (an index out of range): eager names the layer and the sizes
                return self.fn(*args, **kwargs)
        if program is _EAGER:
            return self.fn(*args, **kwargs)
        return self._trace(key, program, call)

    def _keep(self, key, program) -> None:
        """Keep ``program`` for ``key``, last in line; beyond PROGRAMS_KEPT the least lately
        used goes."""
        self.programs.pop(key, None)
        if len(self.programs) >= PROGRAMS_KEPT:
            del self.programs[next(iter(self.programs))]
        self.programs[key] = program

    def _trace(self, key, first: Program | None, call: tuple) -> Any:
        self.traces += 1
        tracer = Tracer(call)
        previous, state.tracer = state.tracer, tracer
        try:
            result = self.fn(*call[0], **call[1])
        finally:
            state.tracer = previous
        tracer.check_parameters()
        self.signatures_seen += first is None
        self.repeated |= first is not None
        if self.signatures_seen >= SIGNATURES_WITHOUT_A_REPEAT and not self.repeated:
            self.given_up = True  # every call eager from now on, with no more tracing
            tracer.problem = tracer.problem or (
                f"{self.signatures_seen} calls had {self.signatures_seen} different signatures "
                "(a Python value among the arguments, such as an epoch number, or the shapes "
                "change at every call); pass such a value as an array")
        try:
            if tracer.problem is not None:
                raise Unreplayable(tracer.problem)
            program = Program(tracer, result)
        except Unreplayable as reason:
            self._run_eagerly(key, str(reason))
            return result
        self._last = program
        if first is None:
            self._keep(key, program)
            return result
        difference = first.same_as(program)
        if difference is None:
            program.confirmed = True
            program.threads = ThreadChoice()  # BLAS threads: measured per program
            program.verified = not first.same_arguments(call)
            self._keep(key, program)
        else:
            self._run_eagerly(key, difference)
        return result

    def _run_eagerly(self, key, reason: str) -> None:
        self._keep(key, _EAGER)
        if self.note is None:  # one line per compiled function, not one per batch
            print(f"mt.compile: {self.name}: runs eagerly (the same numbers, without a "
                  f"replay's speed): {reason}", file=sys.stderr)
        self.note = f"runs eagerly: {reason}"

    @property
    def source(self) -> str:
        """The last traced program as numpy code: the forward lines, then the backward ones."""
        if self._last is None:
            if self.note is not None:
                return f"# no program: it {self.note}"
            return "# not traced yet: call the compiled function once"
        from .compile_source import program_source
        try:
            arg_names = list(inspect.signature(self.fn).parameters)
        except (TypeError, ValueError):
            arg_names = None
        return program_source(self._last, arg_names)


def compile(fn: Callable, name: str | None = None) -> Compiled:  # noqa: A001 - as torch
    """``fn`` traced once per signature of its arguments, then replayed as plain numpy calls.

    ``fn`` takes arrays or tensors (nested in lists, tuples or dicts are fine) and
    returns tensors (nested likewise) or plain values. See the module docstring.
    """
    return Compiled(fn, name)
