"""Anatomy of an LSTM: the small cases drawn by hand, with every weight and gate value shown.

    LSTM(1) on input (1, 1):  1 time step, 1 feature   ->  4 × 1 × (1 + 1 + 1) = 12 params
    LSTM(3) on input (4, 2):  4 time steps, 2 features ->  4 × 3 × (2 + 3 + 1) = 72 params

For each: the summary, the weights split into the gates i | f | c | o, one
input walked through the gate equations of the first step by hand (numpy)
and checked against the layer's own output, and the graph: every op of one
step (the cell), and for more steps one box per step with its equations.
Nothing is trained: the freshly initialised weights are what is shown.

    python demos/anatomy.py               # a few seconds
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

# (units, timesteps, features, file stem)
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


def gate_table(matrix: np.ndarray, row_labels: list[str], units: int) -> list[str]:
    """Rows of ``matrix`` (rows, 4·units) with its columns grouped as i | f | c | o."""
    width, decimals = (8, 4) if units == 1 else (7, 3)
    names = [g if units == 1 else f"{g}{k + 1}" for g in GATES for k in range(units)]
    groups = [names[k * units:(k + 1) * units] for k in range(4)]
    header = " |".join("".join(n.rjust(width) for n in group) for group in groups)
    lines = [" " * 6 + header]
    for label, row in zip(row_labels, matrix, strict=True):
        cells = [row[k * units:(k + 1) * units] for k in range(4)]
        lines.append(label.ljust(6) + " |".join("".join(f"{v:{width}.{decimals}f}" for v in c)
                                                for c in cells))
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
        if t <= verbose_steps:
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
            print(f"  t={t}: x_{t} = {vector(x_t)}  ->  c_{t} = {vector(c_new)}, "
                  f"h_{t} = {vector(h_new)}")
        h, c = h_new, c_new
    return h


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


def main() -> None:
    args = common.parse_args(__doc__.splitlines()[0], epochs=0)
    if args.epochs:
        print("(anatomy trains nothing; --epochs is ignored)")
    nn.set_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    files = [path for case in CASES for path in dissect(*case, rng, args.out)]
    common.finish(files)


if __name__ == "__main__":
    main()
