"""What the graph writes in its boxes: ops as the expressions a reader knows.

An op whose inputs have names is written as an expression of those names:
``f * c``, ``i * c_hat``, ``tanh(c)``, ``z[:, 3:6] → f`` (a slice says what it
feeds), ``pow(·, 2)``. An unnamed input is ``·``, an unnamed scalar constant
its value. ``equation`` writes a whole step the same way, inlining the unnamed
values made inside it: ``c = f * c_2 + i * c_hat``.
"""

from __future__ import annotations

from collections.abc import Callable

from .tensor import Tensor

# Infix ops and their binding strength (higher binds tighter), as in Python.
_INFIX = {"add": ("+", 1), "sub": ("-", 1), "mul": ("*", 2), "div": ("/", 2),
          "matmul": ("@", 2)}
_POWER, _ATOM = 4, 5  # pow, and names / calls / subscripts
MAX_EQUATION = 64  # characters of one equation in a step box


def is_folded_constant(tensor: Tensor, root: Tensor) -> bool:
    """An unnamed scalar leaf without grad, like the 1 in ``1 - x``: shown in the op label."""
    return (tensor.is_leaf and not tensor.requires_grad and tensor.name is None
            and tensor.size == 1 and tensor is not root)


def display_name(tensor: Tensor) -> str | None:
    """The name a reader uses: ``recurrent_kernel`` for ``lstm1/recurrent_kernel``,
    ``x as time steps`` for ``x as time steps: (T, batch, features)``."""
    if not tensor.name:
        return None
    return tensor.name.rsplit("/", 1)[-1].split(":")[0]


def index_text(index: object) -> str:
    """``[:, 3:6]`` for (slice(None), slice(3, 6)); ``[2]`` for 2."""
    parts = index if isinstance(index, tuple) else (index,)

    def one(part: object) -> str:
        if isinstance(part, slice):
            text = ":".join("" if v is None else str(v) for v in (part.start, part.stop))
            return text + (f":{part.step}" if part.step not in (None, 1) else "")
        if part is Ellipsis:
            return "..."
        if part is None:
            return "None"
        return str(part) if isinstance(part, int) else "[…]"  # an array index
    return "[" + ", ".join(one(p) for p in parts) + "]"


def slice_start(tensor: Tensor) -> int:
    """Where the last part of a getitem's index starts: 3 for z[:, 3:6], 2 for x[2]."""
    index = _op_arg(tensor, "index")
    part = (index[-1] if index else None) if isinstance(index, tuple) else index
    if isinstance(part, slice):
        return part.start or 0
    return part if isinstance(part, int) else 0


def _op_arg(tensor: Tensor, name: str):
    """A constant the op was called with (``exponent``, ``index``), or None."""
    return tensor.op_args.get(name)


def _format(op: str, tensor: Tensor, args: list[tuple[str, int]]) -> tuple[str, int]:
    """(text, strength) of ``op`` applied to already formatted ``args``."""
    def wrapped(arg: tuple[str, int], at_least: int) -> str:
        return arg[0] if arg[1] >= at_least else f"({arg[0]})"

    if op in _INFIX and len(args) == 2:
        symbol, strength = _INFIX[op]
        # Left-associative: the right operand of - and / needs brackets at equal strength.
        right = strength + (op in ("sub", "div", "matmul"))
        return f"{wrapped(args[0], strength)} {symbol} {wrapped(args[1], right)}", strength
    if op == "power" and _op_arg(tensor, "exponent") is not None:
        return f"{wrapped(args[0], _ATOM)} ** {_op_arg(tensor, 'exponent'):g}", _POWER
    if op == "neg":
        return f"-{wrapped(args[0], _POWER)}", 3
    if op == "getitem" and _op_arg(tensor, "index") is not None:
        return wrapped(args[0], _ATOM) + index_text(_op_arg(tensor, "index")), _ATOM
    texts = [a[0] for a in args]
    if len(texts) > 4:  # stack(h_1, h_2, …, h_50)
        texts = [*texts[:2], "…", texts[-1]]
    return f"{op}({', '.join(texts)})", _ATOM


def op_label(tensor: Tensor, root: Tensor, users: list[Tensor]) -> str:
    """The op part of a node's label: ``sigmoid``, ``sub(1, ·)``, ``f * c``, ``pow(·, 2)``,
    ``z[:, 3:6] → f`` (a slice whose one user has a name says which)."""
    parents = tensor.parents
    constants = [is_folded_constant(p, root) for p in parents]
    names = [display_name(p) for p in parents]
    if tensor.op == "getitem" and _op_arg(tensor, "index") is not None:
        text = (names[0] or "·") + index_text(_op_arg(tensor, "index"))
        if not tensor.name and len(users) == 1 and display_name(users[0]):
            text += f" → {display_name(users[0])}"
        return text
    if tensor.op == "power" and _op_arg(tensor, "exponent") is not None:
        return f"pow({names[0] or '·'}, {_op_arg(tensor, 'exponent'):g})"
    if not any(names):
        if not any(constants):
            return tensor.op
        args = (f"{p.item():g}" if c else "·" for p, c in zip(parents, constants, strict=True))
        return f"{tensor.op}({', '.join(args)})"
    args = [(f"{p.item():g}" if c else n or "·", _ATOM)
            for p, c, n in zip(parents, constants, names, strict=True)]
    return _format(tensor.op, tensor, args)[0]


def equation(tensor: Tensor, root: Tensor, inline: Callable[[Tensor], bool],
             reference: Callable[[Tensor], str]) -> str:
    """``tensor``'s value as an expression, inlining the parents for which ``inline`` holds
    (unnamed values of the same step) and writing the others as ``reference(parent)``.
    Iterative, so a long unnamed chain needs no recursion; cut at MAX_EQUATION characters."""
    done: dict[int, tuple[str, int]] = {}
    stack = [(tensor, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if node is not tensor and not inline(node):
            done[id(node)] = (f"{node.item():g}" if is_folded_constant(node, root)
                              else reference(node), _ATOM)
        elif not expanded:
            stack.append((node, True))
            stack.extend((p, False) for p in node.parents if id(p) not in done)
        else:
            text, strength = _format(node.op, node, [done[id(p)] for p in node.parents])
            if len(text) > 2 * MAX_EQUATION:  # a long unnamed chain: no use building it all
                text, strength = f"{node.op}(…)", _ATOM
            done[id(node)] = (text, strength)
    text = done[id(tensor)][0]
    return text if len(text) <= MAX_EQUATION else text[:MAX_EQUATION - 1] + "…"
