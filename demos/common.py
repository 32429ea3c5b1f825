"""What every demo shares: its command line, friendly checks for optional packages,
the training-curve plot, the rendered graph, and the closing line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# Import name -> the name pip knows it by, for the message when it is missing.
PIP_NAMES = {"sklearn": "scikit-learn"}


def parse_args(description: str, epochs: int | None, needs: tuple[str, ...] = (),
               **extra: tuple[type, object, str]):
    """``--epochs`` (not for a demo that trains nothing: ``epochs=None``), ``--seed``,
    ``--out``, plus options given as ``name=(type, default, help)``.

    ``needs`` names optional packages the demo imports; they are checked right
    after parsing (``--help`` works without them), so a missing one stops the
    demo before any training rather than after it.
    """
    parser = argparse.ArgumentParser(description=description)
    if epochs is not None:
        parser.add_argument("--epochs", type=int, default=epochs, help="training epochs")
    parser.add_argument("--seed", type=int, default=0, help="seed for data, weights, shuffling")
    parser.add_argument("--out", default="out", help="folder for plots and graphs")
    for name, (kind, default, text) in extra.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=default, help=text)
    args = parser.parse_args()
    for module in needs:
        require(module)
    os.makedirs(args.out, exist_ok=True)
    return args


def require(module: str, extra: str = "demos"):
    """Import an optional package, or exit with a message naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = PIP_NAMES.get(module, module)
        sys.exit(f"This demo needs the optional package '{package}'. Install the demo extra: "
                 f'pip install -e ".[{extra}]"  (or: pip install {package})')


def plot_history(histories: dict, path: str, title: str) -> str:
    """Loss and accuracy per epoch (training solid, validation dashed), one line per model."""
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, history in histories.items():
        epochs = range(1, len(history.history["loss"]) + 1)
        for axes, key in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
            line, = axes.plot(epochs, history.history[key], label=f"{label}")
            if f"val_{key}" in history.history:
                axes.plot(epochs, history.history[f"val_{key}"], linestyle="--",
                          color=line.get_color(), label=f"{label} (validation)")
    loss_axes.set(title="loss", xlabel="epoch")
    accuracy_axes.set(title="accuracy", xlabel="epoch", ylim=(0, 1.02))
    accuracy_axes.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def render_graph(graph, path_without_suffix: str) -> str:
    """Render a Digraph to SVG; without Graphviz's `dot`, write the DOT text instead."""
    from microtensor import GraphvizNotFoundError

    try:
        return graph.render(path_without_suffix, format="svg", cleanup=True)
    except GraphvizNotFoundError as err:
        print(f"  (no SVG: {str(err).split('.')[0]}; writing the DOT text instead)")
        path = path_without_suffix + ".dot"
        with open(path, "w") as file:
            file.write(graph.source)
        return path


@contextmanager
def quiet_elision_warnings() -> Iterator[None]:
    """The demos elide big graphs on purpose and say so themselves."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*max_steps.*")
        yield


@contextmanager
def timed(label: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    print(f"{label} took {time.perf_counter() - start:.1f} s")


def finish(files: list[str]) -> None:
    print(f"Files written: {', '.join(files)}")
