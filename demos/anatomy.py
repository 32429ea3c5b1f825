"""Anatomy of an LSTM: the small cases drawn by hand, with every weight and gate value shown.

    LSTM(1) on input (1, 1):  1 time step, 1 feature   ->  4 × 1 × (1 + 1 + 1) = 12 params
    LSTM(3) on input (4, 2):  4 time steps, 2 features ->  4 × 3 × (2 + 3 + 1) = 72 params

For each: the summary, the weights split into the gates i | f | c | o, one
input walked through the gate equations of the first step by hand (numpy)
and checked against the layer's own output, and the graph: every op of one
step (the cell), and for more steps one box per step with its equations.
Nothing is trained: the freshly initialised weights are what is shown.

    python demos/anatomy.py               # a few seconds
    python demos/anatomy.py --units 10 --timesteps 13 --features 5   # any other size: 640 params
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import microtensor as mt  # noqa: E402
import nn  # noqa: E402

GATES = {"i": "input gate, sigmoid: how much of the candidate to write into the cell",
         "f": "forget gate, sigmoid: how much of the old cell c to keep",
         "c": "candidate c_hat, tanh: the new values on offer",
         "o": "output gate, sigmoid: how much of tanh(c) to show as h"}

# (units, timesteps, features, file stem): the two cases of the classic answer, drawn when
# no size is asked for; a size given on the command line replaces the second one's.
CASES = [(1, 1, 1, "anatomy_lstm1x1"), (3, 4, 2, "anatomy_lstm3_4x2")]


def lstm_model(units: int, timesteps: int, features: int) -> nn.Model:
    inp = nn.Input(shape=(timesteps, features), name="input")
    out = nn.LSTM(units, name="lstm")(inp)
    return nn.Model(inputs=inp, outputs=out, name=f"lstm{units}_on_{timesteps}x{features}")


def vector(values: np.ndarray) -> str:
    """A number with 4 decimals, or a list of numbers with 3."""
    values = np.ravel(values)
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return "[" + ", ".join(f"{v: .3f}" for v in values) + "]"  # signs aligned


WIDE = 3  # more units than this: one gate per table, one vector per line (fits 100 columns)


def gate_columns(gate_index: int, units: int) -> str:
    """The columns of one gate in a (…, 4·units) weight: ``0:10`` for i of 10 units."""
    return f"{gate_index * units}:{(gate_index + 1) * units}"


def gate_table(matrix: np.ndarray, row_labels: list[str], units: int) -> list[str]:
    """Rows of ``matrix`` (rows, 4·units) with its columns grouped as i | f | c | o; for more
    than WIDE units, one table per gate, headed by its columns."""
    width, decimals = (8, 4) if units == 1 else (7, 3)
    names = [g if units == 1 else f"{g}{k + 1}" for g in GATES for k in range(units)]
    per_table = 4 if units <= WIDE else 1
    lines = []
    for first in range(0, 4, per_table):
        gates = range(first, first + per_table)
        if per_table == 1:
            lines.append(f"{list(GATES)[first]}: columns {gate_columns(first, units)}")
        groups = [names[k * units:(k + 1) * units] for k in gates]
        lines.append(" " * 6 + " |".join("".join(n.rjust(width) for n in group)
                                         for group in groups))
        for label, row in zip(row_labels, matrix, strict=True):
            cells = [row[k * units:(k + 1) * units] for k in gates]
            lines.append(label.ljust(6) + " |".join(
                "".join(f"{v:{width}.{decimals}f}" for v in c) for c in cells))
    return lines


def print_weights(layer: nn.LSTM, features: int) -> None:
    u = layer.units
    xs = [f"x[{k + 1}]" for k in range(features)]
    hs = [f"h[{k + 1}]" for k in range(u)]
    print(f"\nThe weights of {layer.name}, columns grouped by gate (i | f | c | o, {u} "
          f"unit{'s' if u > 1 else ''} each):")
    print(f"\n  kernel {layer.kernel.shape}: one row per input feature, multiplies x_t")
    print("\n".join("  " + line for line in gate_table(layer.kernel.data, xs, u)))
    print(f"\n  recurrent_kernel {layer.recurrent_kernel.shape}: one row per unit, "
          "multiplies the previous h")
    print("\n".join("  " + line for line in gate_table(layer.recurrent_kernel.data, hs, u)))
    print(f"\n  bias {layer.bias.shape}")
    print("\n".join("  " + line for line in gate_table(layer.bias.data[None], ["b"], u)))
    print("  The f slice of the bias starts at 1 (unit_forget_bias): the forget gate opens at "
          "sigmoid(1) = 0.73,\n  so a fresh LSTM keeps most of its memory; everything else "
          "starts at 0.")


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def by_hand(layer: nn.LSTM, x: np.ndarray, verbose_steps: int = 1) -> np.ndarray:
    """Run one sample x (timesteps, features) through the gate equations in numpy; print
    every number of the first ``verbose_steps`` steps and h, c of the others. Returns h."""
    kernel, recurrent, bias = (w.data.astype(np.float64) for w in
                               (layer.kernel, layer.recurrent_kernel, layer.bias))
    u = layer.units
    h = c = np.zeros(u)
    for t, x_t in enumerate(x.astype(np.float64), start=1):
        z_x, z_h = x_t @ kernel, h @ recurrent
        z = z_x + z_h + bias
        z_i, z_f, z_c, z_o = (z[k * u:(k + 1) * u] for k in range(4))
        i, f, c_hat, o = sigmoid(z_i), sigmoid(z_f), np.tanh(z_c), sigmoid(z_o)
        c_new = f * c + i * c_hat
        h_new = o * np.tanh(c_new)
        if t <= verbose_steps and u > WIDE:
            print_wide_step(t, x_t, h, c, (z_x, z_h, bias, z), (i, f, c_hat, o), c_new, h_new)
        elif t <= verbose_steps:
            print(f"\nStep t={t}: x_{t} = {vector(x_t)}, h_{t - 1} = {vector(h)}, "
                  f"c_{t - 1} = {vector(c)}")
            terms = [f"x_{t} @ kernel", f"h_{t - 1} @ recurrent_kernel", "bias", "z (the sum)"]
            rows = [[vector(part[k * u:(k + 1) * u]) for part in (z_x, z_h, bias, z)]
                    for k in range(4)]
            width = max(len(text) for text in terms[1:2] + sum(rows, [])) + 2
            print("  gate  " + "".join(term.ljust(width) for term in terms).rstrip())
            for gate, row in zip(GATES, rows, strict=True):
                print(f"  {gate:<6}" + "".join(text.ljust(width) for text in row).rstrip())
            print(f"  i     = sigmoid(z_i) = sigmoid({vector(z_i)}) = {vector(i)}")
            print(f"  f     = sigmoid(z_f) = sigmoid({vector(z_f)}) = {vector(f)}")
            print(f"  c_hat = tanh(z_c)    = tanh({vector(z_c)}) = {vector(c_hat)}")
            print(f"  o     = sigmoid(z_o) = sigmoid({vector(z_o)}) = {vector(o)}")
            joint = " + " if u == 1 else "\n          + "  # one line for numbers, two for lists
            print(f"  c_{t}   = f * c_{t - 1} + i * c_hat\n"
                  f"        = {vector(f)} * {vector(c)}{joint}{vector(i)} * {vector(c_hat)}\n"
                  f"        = {vector(c_new)}")
            print(f"  h_{t}   = o * tanh(c_{t}) = {vector(o)} * tanh({vector(c_new)})\n"
                  f"        = {vector(h_new)}")
        else:
            if t == verbose_steps + 1:
                print(f"Steps {t}..{len(x)}: the same equations, carrying h and c forward:")
            joint = "\n        " if u > WIDE else ", "
            print(f"  t={t}: x_{t} = {vector(x_t)}  ->{joint}c_{t} = {vector(c_new)}{joint}"
                  f"h_{t} = {vector(h_new)}")
        h, c = h_new, c_new
    return h


def print_wide_step(t: int, x_t: np.ndarray, h: np.ndarray, c: np.ndarray, parts: tuple,
                    gates: tuple, c_new: np.ndarray, h_new: np.ndarray) -> None:
    """``by_hand``'s first step for many units: each gate's slice of z term by term, one
    vector per line."""
    u = len(h)
    print(f"\nStep t={t}:\n  x_{t} = {vector(x_t)}\n  h_{t - 1} = {vector(h)}\n"
          f"  c_{t - 1} = {vector(c)}")
    for k, (gate, value) in enumerate(zip(GATES, gates, strict=True)):
        columns = gate_columns(k, u)
        terms = [f"x_{t} @ kernel[:, {columns}]", f"h_{t - 1} @ recurrent_kernel[:, {columns}]",
                 f"bias[{columns}]", f"z_{gate}"]
        width = max(map(len, terms))
        print(f"  gate {gate}:")
        for term, part in zip(terms, parts, strict=True):
            print(f"    {term:<{width}} = {vector(part[k * u:(k + 1) * u])}")
        function = "tanh" if gate == "c" else "sigmoid"
        name = "c_hat" if gate == "c" else gate
        print(f"    {f'{name} = {function}(z_{gate})':<{width}} = {vector(value)}")
    print(f"  c_{t} = f * c_{t - 1} + i * c_hat = {vector(c_new)}")
    print(f"  h_{t} = o * tanh(c_{t})         = {vector(h_new)}")


def dissect(units: int, timesteps: int, features: int, stem: str, rng: np.random.Generator,
            out: str) -> list[str]:
    """Everything for one case; returns the paths of its rendered graphs."""
    title = f"LSTM({units}) on input ({timesteps}, {features})"
    print(f"\n{'#' * 78}\n# {title}\n{'#' * 78}\n")
    model = lstm_model(units, timesteps, features)
    model.summary(explain=True)
    layer = model.get_layer("lstm")
    print_weights(layer, features)

    x = rng.uniform(-1, 1, size=(1, timesteps, features)).round(1).astype(np.float32)
    print(f"\nOne input sample of shape ({timesteps}, {features}), walked through by hand. "
          "The gates:")
    print("\n".join(f"  {gate:<5} = {meaning}" for gate, meaning in GATES.items()))
    by_hand_h = by_hand(layer, x[0])
    output = model(x)  # records the graph drawn below
    if not np.allclose(output.data[0], by_hand_h, atol=1e-5):
        sys.exit(f"{title}: the layer's output {vector(output.data[0])} differs from the "
                 f"hand computation {vector(by_hand_h)}")
    print(f"The layer's own output for this sample is h_{timesteps} = "
          f"{vector(output.data[0])}: the same numbers.")

    ops = sum(t.op is not None for t in mt.topological_order(output))
    # Pictures sized for a page (at most ~1,100 pt wide), laid out top to bottom: one step
    # as the cell, every op; more steps as the textbook unroll, one box per step.
    level = "op" if timesteps == 1 else "step"
    graph = mt.draw_graph(output, max_steps=None, level=level, rankdir="TB")
    path = common.render_graph(graph, os.path.join(out, stem))
    what = "every op of its one step" if level == "op" else f"one box per step, all {timesteps}"
    print(f"\nIts graph ({ops} op nodes), {what}: {path}")
    paths = [path]
    if timesteps > 1:  # and its cell: the first step alone, same weights, every op
        cell = lstm_model(units, 1, features)
        cell.set_weights(model.get_weights())
        graph = mt.draw_graph(cell(x[:, :1]), level="op", rankdir="TB")
        paths.append(common.render_graph(graph, os.path.join(out, f"{stem}_cell")))
        print(f"Its cell, the first step with every op and each gate labelled: {paths[-1]}")
    return paths


def cases_asked(units: int | None, timesteps: int | None, features: int | None) -> list[tuple]:
    """The default CASES, or the one size given (what is not given is taken from LSTM(3) on
    (4, 2)), as (units, timesteps, features, file stem)."""
    if units is None and timesteps is None and features is None:
        return CASES
    default_units, default_timesteps, default_features, _ = CASES[-1]
    size = (default_units if units is None else units,
            default_timesteps if timesteps is None else timesteps,
            default_features if features is None else features)
    for name, value in zip(("--units", "--timesteps", "--features"), size, strict=True):
        if value < 1:
            sys.exit(f"anatomy: {name} must be at least 1, got {value}")
    return [(*size, "anatomy_lstm{}_{}x{}".format(*size))]


def main() -> None:
    size_help = "{} of the one LSTM to dissect (default: LSTM(1) on (1, 1), then LSTM(3) on (4, 2))"
    args = common.parse_args(__doc__.splitlines()[0], epochs=None,
                             units=(int, None, size_help.format("units")),
                             timesteps=(int, None, size_help.format("time steps of the input")),
                             features=(int, None, size_help.format("features of the input")))
    nn.set_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    files = [path for case in cases_asked(args.units, args.timesteps, args.features)
             for path in dissect(*case, rng, args.out)]
    common.finish(files)


if __name__ == "__main__":
    main()
