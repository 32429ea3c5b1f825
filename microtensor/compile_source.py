"""A traced program (compile.py) printed as numpy code a learner reads: ``step.source``.

One line per op, named after the tensors (``f_3 = sigmoid(z_3[:, 1:2])``: a tensor's
name, and its time step if it has one), the forward lines first; then each backward
pass, node by node in the order it runs, one line per input's gradient
(``dz_3[:, 1:2] += df_3 * f_3 * (1 - f_3)``). The backward lines state what each op's
``backward`` (ops.py) computes; the replay runs those functions themselves.
"""

from __future__ import annotations

import math
import re
import string

import numpy as np

# op name -> its forward expression; {0}, {1}... are the inputs, {name} a constant.
FORWARD = {
    "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
    "neg": "-{0}", "power": "{0} ** {exponent}", "matmul": "{0} @ {1}",
    "maximum": "maximum({0}, {1})", "where": "where({condition}, {0}, {1})",
    "clip": "clip({0}, {low}, {high})", "astype": "{0}.astype({dtype})",
    "sum": "{0}.sum(axis={axes}{keep})", "mean": "{0}.mean(axis={axes}{keep})",
    "max": "{0}.max(axis={axes}{keep})", "reshape": "{0}.reshape({shape})",
    "transpose": "{0}.transpose({axes})", "getitem": "{0}{index}",
    "dropout": "dropout({0}, rate={rate})  # a fresh random mask each call",
    "finite_max": "{0}.max(axis={axes}, keepdims=True)  # a shift: no gradient",
}

# op name -> the gradient of each input, from g (= d out); {out} is the op's result.
BACKWARD = {
    "add": ("{g}", "{g}"), "sub": ("{g}", "-{g}"), "mul": ("{g} * {1}", "{g} * {0}"),
    "div": ("{g} / {1}", "-{g} * {out} / {1}"), "neg": ("-{g}",),
    "power": ("{g} * {exponent} * {0} ** ({exponent} - 1)",),
    "matmul": ("{g} @ {1}.T", "{0}.T @ {g}"),
    "sigmoid": ("{g} * {out} * (1 - {out})",), "tanh": ("{g} * (1 - {out} ** 2)",),
    "exp": ("{g} * {out}",), "log": ("{g} / {0}",), "relu": ("{g} * ({out} > 0)",),
    "maximum": ("{g} * ({0} > {1})", "{g} * ({0} < {1})  # ties: half each"),
    "where": ("where({condition}, {g}, 0)", "where({condition}, 0, {g})"),
    "clip": ("{g} * ({low} <= {0} <= {high})",), "astype": ("{g}.astype({0}.dtype)",),
    "sum": ("broadcast_to({g}, {shape0})",), "mean": ("broadcast_to({g} / {count}, {shape0})",),
    "max": ("{g} * ({0} == {out}) / count({0} == {out})",),
    "reshape": ("{g}.reshape({shape0})",), "transpose": ("{g}.transpose(inverse of {axes})",),
    "dropout": ("{g} * mask  # the same mask as the forward",),
}


INLINE_WIDTH = 50  # a value used once is written into its user's line if this short


def program_source(program, arg_names: list[str] | None = None) -> str:
    names = _Names(program, arg_names)
    lines = [f"# {line}" for line in names.header]
    for entry in program.entries:
        if entry[0] == "op":
            slot = entry[4]
            expression = _expression(FORWARD, entry[1].__name__, entry[2], entry[3], names)
            if slot in names.once and len(expression) <= INLINE_WIDTH and "#" not in expression:
                names.inline(slot, expression)
            else:
                names.once.discard(slot)
                lines.append(f"{names[slot]} = {expression}")
        elif entry[0] == "backward":
            lines.append("# backward: d loss / d each value, the last op first")
            lines += _backward_lines(entry, program, names)
        else:
            lines.append(f"{entry[1].__qualname__}()  # called again at each replay")
    return "\n".join(lines)


class _Names:
    """A readable, unique name for each slot."""

    def __init__(self, program, arg_names: list[str] | None) -> None:
        self.program = program
        self.header: list[str] = []
        self.names: list[str] = []
        taken: set[str] = set()
        args = arg_names or []
        for slot, (source, tensor) in enumerate(zip(program.sources, program.tensors,
                                                     strict=True)):
            kind = source[0]
            if kind == "arg":
                k = source[1]
                name = args[k] if k < len(args) else f"arg{k}"
            else:
                name = _identifier(tensor.name) if tensor is not None and tensor.name else ""
                if name and tensor.step is not None and kind == "op":
                    name = f"{name}_{tensor.step}"
                if not name:
                    name = {"param": "param", "constant": "const"}.get(kind, "t")
                    name = f"{name}{slot}"
            if kind != "arg" and name in taken and tensor is not None and tensor.scope:
                name = f"{name}_{_identifier(tensor.scope)}"
            unique, n = name, 2
            while unique in taken and kind != "arg":
                unique, n = f"{name}_{n}", n + 1
            taken.add(unique)
            self.names.append(unique)
            if kind == "constant" and source[1].ndim == 0:  # a number: written where used
                self.names[-1] = _constant(source[1])
            elif kind == "constant":
                self.header.append(f"{unique} = {_constant(source[1])}")
            elif kind == "param":
                self.header.append(f"{unique}: a parameter {tensor.shape}, read at each call")

        self.once = self._used_once(program)
        self.inlined: dict[int, str] = {}  # slot -> its expression, written where it's used

    @staticmethod
    def _used_once(program) -> set[int]:
        """Unnamed op results read by exactly one op (and not returned nor a backward's root):
        the lines are shorter with their expression written in place."""
        reads: dict[int, int] = {}
        for entry in program.entries:
            if entry[0] == "op":
                for slot in entry[2]:
                    reads[slot] = reads.get(slot, 0) + 1
        roots = {entry[1] for entry in program.entries if entry[0] == "backward"}
        returned = program.returned
        return {slot for slot, count in reads.items()
                if count == 1 and program.sources[slot][0] == "op"
                and not program.tensors[slot].name and slot not in roots | returned}

    def inline(self, slot: int, expression: str) -> None:
        self.inlined[slot] = expression

    def __getitem__(self, slot: int) -> str:
        return self.inlined.get(slot, self.names[slot])


_LEVELS = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "**": 3}  # how tightly an operator binds


def _level(expression: str) -> float:
    """How tightly ``expression`` holds together: its loosest operator outside brackets."""
    depth, level = 0, 4.0
    for i, char in enumerate(expression):
        depth += char in "([{"
        depth -= char in ")]}"
        if depth == 0 and char == " ":
            operator = expression[i + 1:].split(" ", 1)[0]
            level = min(level, _LEVELS.get(operator, 4.0))
    return min(level, 2.5) if expression.startswith("-") else level


def _needed(before: str, after: str) -> float:
    """The level a value placed between ``before`` and ``after`` must have to need no
    parentheses (a right operand binds one notch tighter: a - (b - c))."""
    need = 0.0
    left = before.rstrip().rsplit(" ", 1)[-1] if before.endswith(" ") else before[-1:]
    if left in _LEVELS and before.endswith(" "):
        need = _LEVELS[left] + 0.5
    elif left == "-":  # unary minus
        need = 2.5
    if after[:1] in (".", "["):
        need = 4.0
    elif after.startswith(" "):
        need = max(need, _LEVELS.get(after.split(" ")[1], 0.0))
    return need


def _fill(template: str, values: list[str], named: dict[str, str]) -> str:
    """``template.format(...)`` with each value in parentheses where precedence needs them."""
    pieces = list(string.Formatter().parse(template))
    out = []
    for index, (literal, field, _, _) in enumerate(pieces):
        out.append(literal)
        if field is None:
            continue
        value = values[int(field)] if field.isdigit() else named[field]
        after = pieces[index + 1][0] if index + 1 < len(pieces) else ""
        if field.isdigit() or field in ("g", "out"):
            if _level(value) < _needed("".join(out), after):
                value = f"({value})"
        out.append(value)
    return "".join(out)


def _identifier(text: str) -> str:
    """``text`` as a Python name: each run of other characters becomes one underscore; a
    remark in parentheses or after a comma is left out."""
    return re.sub(r"\W+", "_", re.split(r"[(,]", text)[0]).strip("_")


def _constant(value: np.ndarray) -> str:
    if value.size == 1:
        return str(value.reshape(())[()])  # numpy's shortest form: 1e-07, not 1.00000001e-07
    if not value.any():
        return f"zeros({value.shape})"
    return f"<constant array {value.shape} {value.dtype}>"


def _expression(table: dict, op: str, reads: tuple, constants: dict, names: _Names,
                **extra: str) -> str:
    inputs = [names[i] for i in reads]
    shown = {key: _shown(key, value, names) for key, value in constants.items()}
    shown["keep"] = ", keepdims=True" if constants.get("keepdims") else ""
    template = table.get(op)
    if op in ("stack", "concatenate"):
        return f"{op}([{', '.join(inputs)}], axis={constants['axis']})"
    if template is None:
        args = ", ".join(inputs + [f"{k}={v}" for k, v in shown.items() if k != "keep"])
        return f"{op}({args})"
    return _fill(template, inputs, {**shown, **extra})


def _shown(key: str, value, names: _Names) -> str:
    if key == "index":
        return _index(value)
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, np.ndarray):
        return _constant(value) if value.size == 1 else f"<{key} {value.shape}>"
    if isinstance(value, tuple) and len(value) == 1:
        return str(value[0])
    return repr(value) if isinstance(value, str) else str(value)


def _index(index) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(_index_part(p) for p in parts) + "]"


def _index_part(part) -> str:
    if isinstance(part, slice):
        start = "" if part.start is None else part.start
        stop = "" if part.stop is None else part.stop
        step = "" if part.step is None else f":{part.step}"
        return f"{start}:{stop}{step}"
    if part is None:
        return "None"
    if part is Ellipsis:
        return "..."
    if isinstance(part, np.ndarray):
        return f"<indices {part.shape}>"
    return str(part)


def _backward_lines(entry: tuple, program, names: _Names) -> list[str]:
    _, root, plan = entry[:3]
    producer = {e[4]: e for e in program.entries if e[0] == "op"}
    lines = [f"d{names[root]} = 1"]
    started = {root}
    gradients: dict[int, str] = {}  # an inlined value's gradient, written where it's used
    for slot, parents, *_ in plan:
        g = gradients.get(slot, f"d{names[slot]}")
        if isinstance(parents, bool):
            lines.append(f"{names[slot]}.grad += {g}")
            continue
        _, op, reads, constants, _ = producer[slot][:5]
        for i, (parent, shape, _) in enumerate(parents):
            if parent is None:
                continue
            expression = _gradient(op.__name__, i, reads, constants, names, slot, g)
            if op.__name__ in BROADCASTING and shape != names.program.tensors[slot].shape:
                expression = f"sum_to({expression}, {shape})"
            if parent in names.inlined:
                gradients[parent] = expression
                continue
            target = f"d{names[parent]}"
            if op.__name__ == "getitem":
                target += _index(constants["index"])
                if parent not in started:
                    lines.append(f"d{names[parent]} = zeros({names[parent]}.shape)")
                    started.add(parent)
            lines.append(f"{target} {'+=' if parent in started else '='} {expression}")
            started.add(parent)
    return lines


BROADCASTING = {"add", "sub", "mul", "div", "maximum", "where"}


def _gradient(op: str, i: int, reads: tuple, constants: dict, names: _Names, slot: int,
              g: str) -> str:
    out = names[slot]
    if op == "getitem":
        return g
    if op in ("stack", "concatenate"):
        axis = constants["axis"]
        lead = ":, " * axis
        if op == "stack":
            return f"{g}[{lead}{i}]"
        return f"{g}[{lead}part {i}]"
    templates = BACKWARD.get(op)
    if templates is None:
        return f"{op}_backward({g})[{i}]"
    shape = names.program.tensors[reads[0]].shape
    extra = {"g": g, "out": out, "shape0": str(shape)}
    if op == "mean":
        extra["count"] = str(math.prod(shape[ax] for ax in constants["axes"]))
    return _expression({op: templates[i]}, op, reads, constants, names, **extra)

