"""The network from the classic "understanding LSTM structure" question, built, explained,
trained and drawn.

    Input (50, 10) -> LSTM(128, return_sequences=True) -> LSTM(64)
    -> Dense(128, relu) -> Dense(64, relu) -> Dense(1, sigmoid)

The task needs memory of order: each sequence has a spike in feature 0 and one
in feature 1; the label is 1 when the feature-0 spike comes first. A Dense
model on the time-averaged features sees both spikes but not their order, so
it stays near chance: that is why the LSTM is there.

    python demos/seed_model.py            # about 30 seconds on 2 CPU cores
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

TIMESTEPS, FEATURES = 50, 10


def make_order_task(samples: int, rng: np.random.Generator, timesteps: int = TIMESTEPS,
                    features: int = FEATURES) -> tuple[np.ndarray, np.ndarray]:
    """x (samples, timesteps, features) of noise with two spikes; y (samples, 1) = order."""
    x = rng.normal(0.0, 0.2, size=(samples, timesteps, features)).astype(np.float32)
    first = rng.integers(0, timesteps, size=samples)
    second = (first + rng.integers(1, timesteps, size=samples)) % timesteps  # never equal
    rows = np.arange(samples)
    x[rows, first, 0] += 2.0
    x[rows, second, 1] += 2.0
    y = (first < second).astype(np.float32)[:, None]
    return x, y


def seed_model() -> nn.Model:
    inp = nn.Input(shape=(TIMESTEPS, FEATURES), name="input_layer")
    x = nn.LSTM(128, return_sequences=True, name="lstm1")(inp)
    x = nn.LSTM(64, return_sequences=False, name="lstm2")(x)
    x = nn.Dense(128, activation="relu", name="dense1")(x)
    x = nn.Dense(64, activation="relu", name="dense2")(x)
    x = nn.Dense(1, activation="sigmoid", name="output")(x)
    return nn.Model(inputs=inp, outputs=x, name="seed_model")


def order_blind_baseline() -> nn.Model:
    """Dense layers on the time-averaged features: sees which spikes occur, not when."""
    inp = nn.Input(shape=(FEATURES,), name="time_average")
    x = nn.Dense(64, activation="relu", name="baseline_dense")(inp)
    x = nn.Dense(1, activation="sigmoid", name="baseline_output")(x)
    return nn.Model(inputs=inp, outputs=x, name="baseline")


def walk_one_batch(model: nn.Model, batch: np.ndarray) -> None:
    """Print the shape after each layer, answering "is lstm1's output (50, 128)?"."""
    print(f"\nOne batch of {len(batch)} sequences through the model, layer by layer:")
    value = mt.Tensor(batch)
    with mt.no_grad():
        for layer in model.layers:
            value = layer(value)
            print(f"  {layer.name:<12} -> {value.shape}")
    print("So for one sample lstm1 outputs (50, 128): one 128-vector per time step, because "
          "return_sequences=True;\nlstm2 outputs (64,): only its last step's hidden state.\n")


def main() -> None:
    args = common.parse_args(__doc__.splitlines()[0], epochs=8, needs=("matplotlib",),
                             samples=(int, 3000, "training + validation sequences"),
                             batch_size=(int, 32, "mini-batch size"),
                             lr=(float, 2e-3, "Adam learning rate"))
    nn.set_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    x, y = make_order_task(args.samples, data_rng)
    x_test, y_test = make_order_task(max(args.samples // 3, 100), data_rng)

    model = seed_model()
    model.summary(explain=True)
    walk_one_batch(model, x[:args.batch_size])

    print(f"Training on {len(x)} sequences (10% held out for validation), "
          f"{args.epochs} epochs, batch {args.batch_size}:")
    model.compile(optimizer=optim.Adam(lr=args.lr), loss="binary_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs,
                        validation_split=0.1)
    lstm_seconds = time.perf_counter() - start
    _, lstm_accuracy = model.evaluate(x_test, y_test)

    print("\nThe order-blind baseline (Dense on the time-averaged features):")
    baseline = order_blind_baseline()
    baseline.compile(optimizer=optim.Adam(lr=args.lr), loss="binary_crossentropy",
                     metrics=["accuracy"])
    baseline_history = baseline.fit(x.mean(axis=1), y, batch_size=args.batch_size,
                                    epochs=args.epochs, validation_split=0.1, verbose=2)
    _, baseline_accuracy = baseline.evaluate(x_test.mean(axis=1), y_test)

    print(f"\nTest accuracy on {len(x_test)} new sequences:")
    print(f"  LSTM seed model        {lstm_accuracy:6.1%}   (trained in {lstm_seconds:.0f} s)")
    print(f"  order-blind baseline   {baseline_accuracy:6.1%}   (chance is about 50%)")

    files = [common.plot_history({"LSTM": history, "baseline": baseline_history},
                                 os.path.join(args.out, "seed_model_training.png"),
                                 "seed model vs order-blind baseline")]
    loss = nn.losses.binary_crossentropy(y_test[:2], model(x_test[:2]))
    graph = mt.draw_graph(loss, level="step", max_steps=2)
    print("\nThe graph of one forward pass is ~1,600 op nodes; the picture draws one box per "
          "time step with its equations, the first 2 steps and the last one of each LSTM.")
    files.append(common.render_graph(graph, os.path.join(args.out, "seed_model_graph")))
    files.append(common.render_graph(model.draw(level="layer"),
                                     os.path.join(args.out, "seed_model_layers")))
    model.save(os.path.join(args.out, "seed_model.npz"))
    files.append(os.path.join(args.out, "seed_model.npz"))
    common.finish(files)


if __name__ == "__main__":
    main()
