"""Run the tutorial notebooks and store them with their outputs, so they read on a code host.

    python demos/tutorials/execute.py                  # every notebook here, in place
    python demos/tutorials/execute.py 03_*.ipynb       # some of them

Needs the notebooks extra (pip install -e ".[notebooks]") and a registered
kernel named python3 (python -m ipykernel install --user). The tests run
every notebook the same way and compare its text with what is stored here,
after ``normalise`` (tests/test_tutorials.py). A cell tagged ``varies`` prints
numbers of a training run, which follow the float rounding of the machine's
BLAS and numpy (another CPU, another engine version: another last bit, and
after some thousand steps another accuracy); its numbers are not compared,
its words are (``learned the task`` must stay ``learned the task``).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# What may differ between two runs of the same notebook and is not its answer.
_NOISE = [
    (re.compile(r"\x1b\[[0-9;]*[A-Za-z]"), ""),  # terminal control: colours, line clearing
    (re.compile(r"0x[0-9a-fA-F]{6,}"), "0x…"),  # memory addresses in reprs
    (re.compile(r"\d+(?:\.\d+)?\s?(?:s|ms|µs|us|ns|min)(?:/(?:step|it))?\b"), "<time>"),
    (re.compile(r"\d+(?:\.\d+)?it/s"), "<rate>"),
    (re.compile(r"[ ]+$", re.M), ""),
]


def notebooks() -> list[Path]:
    """The tutorial notebooks, in reading order."""
    return sorted(HERE.glob("[0-9][0-9]_*.ipynb"))


def execute(path: Path, timeout: int = 300):
    """Run a notebook in a fresh python3 kernel, in its own folder, with this checkout on the
    kernel's import path. Returns (the executed notebook, seconds taken)."""
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    # One BLAS thread: these small matrices gain nothing from two, a busy machine makes a
    # second spin-waiting thread slow, and the sums come out in the same order every run.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    client.execute(env=env)
    return notebook, time.perf_counter() - start


VARIES = "varies"  # the tag of a cell whose numbers come from a training run
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def normalise(text: str, numbers: bool = True) -> str:
    """Text output without what varies from run to run: timings, addresses, progress bars
    (a line redrawn with carriage returns keeps only its last state), and with
    ``numbers=False`` every number (written as #)."""
    text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    for pattern, replacement in _NOISE:
        text = pattern.sub(replacement, text)
    return text if numbers else _NUMBER.sub("#", text)


def text_outputs(notebook) -> list[list[str]]:
    """For each code cell, what it showed as normalised text: each run of one stream as one
    entry (how a kernel chunks its prints varies), errors, text/plain results, and for
    pictures and HTML only their kind (their bytes depend on library versions). Numbers of
    cells tagged ``varies`` are left out."""
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        shown: list[list[str]] = []  # [kind, text]
        for output in cell.outputs:
            if output.output_type == "stream":
                if shown and shown[-1][0] == output.name:
                    shown[-1][1] += output.text
                else:
                    shown.append([output.name, output.text])
            elif output.output_type == "error":
                shown.append(["error", f"{output.ename}: {output.evalue}"])
            else:
                data = output.get("data", {})
                pictures = sorted(kind for kind in data if kind != "text/plain")
                if pictures:
                    shown.append(["picture", ", ".join(pictures)])
                else:
                    shown.append(["result", data.get("text/plain", "")])
        numbers = VARIES not in cell.get("metadata", {}).get("tags", [])
        cells.append([f"{kind}: {normalise(text, numbers)}" for kind, text in shown])
    return cells


def main(names: list[str]) -> None:
    import nbformat

    paths = [HERE / name for name in names] if names else notebooks()
    for path in paths:
        notebook, seconds = execute(path)
        for cell in notebook.cells:  # no execution timestamps: a rerun changes nothing
            cell.get("metadata", {}).pop("execution", None)
        nbformat.write(notebook, path)
        print(f"{path.name}: {seconds:.1f} s, {path.stat().st_size / 1000:.0f} kB")


if __name__ == "__main__":
    main(sys.argv[1:])
