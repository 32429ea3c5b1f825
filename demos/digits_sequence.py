"""Handwritten digits read row by row: an LSTM classifies an 8×8 image seen as a sequence.

scikit-learn's digits (1,797 images of 8×8 pixels, shipped with the package)
are read top to bottom as 8 time steps of 8 pixels each; the LSTM's last
hidden state goes to a 10-way softmax.

    Input (8, 8) -> LSTM(32) -> Dense(10, softmax)

    python demos/digits_sequence.py       # about 5 s on 2 CPU cores; 95-98% test accuracy
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

CLASSES = 10


def load_digit_rows(test_fraction: float, seed: int):
    """(x_train, y_train), (x_test, y_test): x (samples, 8 rows, 8 pixels) in [0, 1], y digits.

    The split is stratified, so every digit is as common in the test set as in training.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)  # pixel values are 0..16
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=test_fraction, random_state=seed, stratify=digits.target)
    return (x_train, y_train), (x_test, y_test)


def digit_reader(units: int) -> nn.Model:
    inp = nn.Input(shape=(8, 8), name="image_rows")
    x = nn.LSTM(units, name="lstm")(inp)
    x = nn.Dense(CLASSES, activation="softmax", name="digit")(x)
    return nn.Model(inputs=inp, outputs=x, name="digit_reader")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """counts[true, predicted], (10, 10)."""
    counts = np.zeros((CLASSES, CLASSES), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def print_confusion_matrix(counts: np.ndarray) -> None:
    print("\nConfusion matrix (rows = true digit, columns = predicted digit):")
    print("true\\pred " + "".join(f"{d:>5}" for d in range(CLASSES)))
    for digit, row in enumerate(counts):
        print(f"{digit:>9} " + "".join(f"{n:>5}" if n else "    ." for n in row))
    mistakes = counts - np.diag(np.diag(counts))
    true, predicted = np.unravel_index(np.argmax(mistakes), mistakes.shape)
    if mistakes[true, predicted] > 1:
        print(f"{mistakes.sum()} mistakes; the most common: {_a(true)} read as {_a(predicted)} "
              f"({mistakes[true, predicted]} of {counts[true].sum()} test {true}s).")
    else:
        print(f"{mistakes.sum()} mistakes, none made twice.")


def _a(digit: int) -> str:
    return f"{'an' if digit == 8 else 'a'} {digit}"


def main() -> None:
    args = common.parse_args(__doc__.splitlines()[0], epochs=25, needs=("sklearn", "matplotlib"),
                             units=(int, 32, "LSTM units"),
                             batch_size=(int, 32, "mini-batch size"),
                             lr=(float, 5e-3, "Adam learning rate"),
                             test_fraction=(float, 0.25, "share of the images held out for test"),
                             graph_steps=(int, 3, "time steps drawn before the last (8 = all)"))
    nn.set_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_digit_rows(args.test_fraction, args.seed)
    print(f"{len(x_train)} training and {len(x_test)} test images; each is read as "
          f"{x_train.shape[1]} time steps (rows) of {x_train.shape[2]} pixels.\n")

    model = digit_reader(args.units)
    model.summary(explain=True)
    model.compile(optimizer=optim.Adam(lr=args.lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    print(f"\nTraining for {args.epochs} epochs, batch {args.batch_size} "
          "(10% of the training images held out for validation):")
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                        validation_split=0.1)
    seconds = time.perf_counter() - start

    predicted = model.predict(x_test).argmax(axis=-1)
    accuracy = float(np.mean(predicted == y_test))
    print(f"\nTest accuracy: {accuracy:.1%} on {len(x_test)} held-out images "
          f"(trained in {seconds:.1f} s)")
    print_confusion_matrix(confusion_matrix(y_test, predicted))

    files = [common.plot_history({"LSTM": history},
                                 os.path.join(args.out, "digits_sequence_training.png"),
                                 "digits read row by row: LSTM -> softmax")]
    loss = nn.losses.sparse_categorical_crossentropy(y_test[:2], model(x_test[:2]))
    steps = x_train.shape[1]
    max_steps = args.graph_steps if args.graph_steps < steps - 1 else None
    with common.quiet_elision_warnings():
        graph = mt.draw_graph(loss, max_steps=max_steps, level="step")
    shown = (f"keeps the first {max_steps} steps and the last one (--graph-steps {steps} "
             "draws all)" if max_steps is not None else f"draws all {steps} steps")
    print(f"\nThe graph of one forward pass + loss on 2 images, one box per step; the picture "
          f"{shown}.")
    files.append(common.render_graph(graph, os.path.join(args.out, "digits_sequence_graph")))
    common.finish(files)


if __name__ == "__main__":
    main()
