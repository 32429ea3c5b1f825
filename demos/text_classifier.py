"""Balanced brackets: an Embedding and a GRU read token sequences of different lengths.

Each sample is a string over "(", ")" and two noise letters, "a" and "b",
turned into token indices and padded with 0 to one length. The label is 1 when
the brackets are balanced: every ")" closes an earlier "(" and none is left
open. Half the unbalanced strings have as many "(" as ")", so counting is not
enough: the network has to track the nesting depth as it reads.

    Input (timesteps,) token indices -> Embedding(5, 8, mask_zero=True)
    -> GRU(32) -> Dense(1, sigmoid)

mask_zero=True makes index 0 padding: the GRU leaves its state unchanged at
padded steps, so a padded string gets the same answer as the string alone.
SimpleRNN and LSTM are then trained the same way for a comparison table.

    python demos/text_classifier.py       # about 10 seconds on 2 CPU cores

Measured with the defaults (seed 0): GRU 100% test accuracy, LSTM 100%, SimpleRNN
80%: without gates it does not keep the depth count over 20 steps.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import microtensor as mt  # noqa: E402
import nn  # noqa: E402
import optim  # noqa: E402

VOCABULARY = ["<pad>", "(", ")", "a", "b"]  # index 0 is padding
TOKEN = {symbol: index for index, symbol in enumerate(VOCABULARY)}
MAX_LENGTH = 24


def depth_profile(brackets: np.ndarray) -> np.ndarray:
    """Running depth of a ±1 sequence ("(" = +1, ")" = -1)."""
    return np.cumsum(brackets)


def random_balanced(pairs: int, rng: np.random.Generator) -> np.ndarray:
    """A random balanced ±1 sequence with ``pairs`` pairs: open while allowed, close at random."""
    steps, depth, opened = [], 0, 0
    while len(steps) < 2 * pairs:
        can_open, can_close = opened < pairs, depth > 0
        if can_open and (not can_close or rng.random() < 0.5):
            steps.append(1)
            depth, opened = depth + 1, opened + 1
        else:
            steps.append(-1)
            depth -= 1
    return np.array(steps)


def random_unbalanced(pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Either equal counts in an order that closes too early, or one bracket flipped."""
    if rng.random() < 0.5:
        while True:  # a shuffled balanced string is usually unbalanced; retry if not
            steps = rng.permutation(random_balanced(pairs, rng))
            if depth_profile(steps).min() < 0:
                return steps
    steps = random_balanced(pairs, rng)
    steps[rng.integers(len(steps))] *= -1
    return steps


def to_tokens(steps: np.ndarray, rng: np.random.Generator, noise: float = 0.25) -> list[int]:
    """Brackets as tokens, with noise letters sprinkled in (the network must ignore them)."""
    tokens = [TOKEN["("] if s > 0 else TOKEN[")"] for s in steps]
    for _ in range(rng.binomial(MAX_LENGTH - len(tokens), noise)):
        tokens.insert(int(rng.integers(len(tokens) + 1)), TOKEN[rng.choice(["a", "b"])])
    return tokens


def make_brackets(samples: int, rng: np.random.Generator):
    """x (samples, MAX_LENGTH) token indices padded with 0 at the end; y (samples, 1) balanced."""
    x = np.zeros((samples, MAX_LENGTH), dtype=np.int64)
    y = rng.integers(0, 2, size=samples)
    for row in range(samples):
        pairs = int(rng.integers(1, MAX_LENGTH // 2 - 1))
        steps = random_balanced(pairs, rng) if y[row] else random_unbalanced(pairs, rng)
        tokens = to_tokens(steps, rng)
        x[row, :len(tokens)] = tokens
    return x, y[:, None].astype(np.float32)


def encode(text: str) -> np.ndarray:
    """"(a)()" -> token indices (1, len(text)), for trying the model by hand."""
    return np.array([[TOKEN[c] for c in text]])


def bracket_reader(kind: type, units: int, name: str) -> nn.Model:
    inp = nn.Input(shape=(None,), name="tokens")  # any length: padding only fills a batch
    x = nn.Embedding(len(VOCABULARY), 8, mask_zero=True, name="embedding")(inp)
    x = kind(units, name=kind.__name__.lower())(x)
    x = nn.Dense(1, activation="sigmoid", name="balanced")(x)
    return nn.Model(inputs=inp, outputs=x, name=name)


def available_layers() -> dict[str, type]:
    """SimpleRNN, GRU and LSTM; a layer this nn does not have is left out with a note."""
    layers = {}
    for name in ("SimpleRNN", "GRU", "LSTM"):
        if hasattr(nn, name):
            layers[name] = getattr(nn, name)
        else:
            print(f"(nn has no {name}: it is left out of the comparison)")
    return layers


def train(kind: type, args, data, verbose: int):
    """Train one model; returns (model, history, seconds per epoch, test accuracy)."""
    (x, y), (x_test, y_test) = data
    nn.set_seed(args.seed)
    model = bracket_reader(kind, args.units, f"{kind.__name__.lower()}_brackets")
    model.compile(optimizer=optim.Adam(lr=args.lr), loss="binary_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs,
                        validation_split=0.1, verbose=verbose)
    per_epoch = (time.perf_counter() - start) / args.epochs
    _, accuracy = model.evaluate(x_test, y_test)
    return model, history, per_epoch, accuracy


def try_by_hand(model: nn.Model) -> None:
    print("\nThe GRU on a few strings, each alone (no padding):")
    for text in ("(a)()", "(()(b))", "())(()", "((a)", "))((", "a(b(a)b)a()"):
        p = model.predict(encode(text))[0, 0]
        print(f"  {text:<14} P(balanced) = {p:.3f}   ({'balanced' if p > 0.5 else 'not'})")


def main() -> None:
    args = common.parse_args(__doc__.splitlines()[0], epochs=6, needs=("matplotlib",),
                             samples=(int, 4000, "training + validation sequences"),
                             units=(int, 32, "units of each recurrent layer"),
                             batch_size=(int, 32, "mini-batch size"),
                             lr=(float, 5e-3, "Adam learning rate"))
    data_rng = np.random.default_rng(args.seed)
    x, y = make_brackets(args.samples, data_rng)
    x_test, y_test = make_brackets(max(args.samples // 4, 100), data_rng)
    data = ((x, y), (x_test, y_test))
    lengths = (x != 0).sum(axis=1)
    print(f"{len(x)} training strings of {lengths.min()} to {lengths.max()} tokens, padded to "
          f"{MAX_LENGTH}; {y.mean():.0%} balanced. First three:")
    for row in range(3):
        text = "".join(VOCABULARY[t] for t in x[row] if t)
        print(f"  {text:<{MAX_LENGTH}}  -> {int(y[row, 0])}   tokens {x[row].tolist()}")

    layers = available_layers()
    main_kind = layers.get("GRU", nn.LSTM)
    reader = bracket_reader(main_kind, args.units, "preview")
    reader.summary(explain=True)

    results, histories = {}, {}
    for name, kind in sorted(layers.items(), key=lambda item: item[1] is not main_kind):
        print(f"\nTraining Embedding + {name}({args.units}), {args.epochs} epochs:")
        model, history, per_epoch, accuracy = train(kind, args, data, verbose=1)
        results[name] = (model.count_params(), per_epoch, accuracy)
        histories[name] = history
        if kind is main_kind:
            main_model = model
            print(f"Test accuracy ({name}): {accuracy:.1%} on {len(x_test)} new strings")

    try_by_hand(main_model)
    print(f"\nSame data, same settings, {args.epochs} epochs ({len(x_test)} test strings):")
    print(f"  {'layer':<10} {'params':>7} {'s/epoch':>8} {'test accuracy':>14}")
    for name, (params, per_epoch, accuracy) in results.items():
        print(f"  {name:<10} {params:>7,} {per_epoch:>8.1f} {accuracy:>14.1%}")

    files = [common.plot_history(histories, os.path.join(args.out, "text_classifier_training.png"),
                                 "balanced brackets: Embedding + recurrent layer")]
    sample = np.zeros((2, MAX_LENGTH), dtype=np.int64)
    sample[0, :4], sample[1, :6] = encode("(a))")[0], encode("(()())")[0]
    loss = nn.losses.binary_crossentropy(np.array([[0.0], [1.0]]), main_model(sample))
    with common.quiet_elision_warnings():
        graph = mt.draw_graph(loss, max_steps=3, level="step")
    print("\nThe graph of one forward pass: steps past the longest string are skipped (all "
          "padding); the picture draws one box per step, the first 3 and the last.")
    files.append(common.render_graph(graph, os.path.join(args.out, "text_classifier_graph")))
    path = os.path.join(args.out, "text_classifier.npz")
    main_model.save(path)
    files.append(path)
    common.finish(files)


if __name__ == "__main__":
    main()
