"""Run every demo with its defaults and keep what it printed in demos/transcripts/.

The README and the demos' docstrings quote these transcripts, and a test checks
that every number they quote is in them (timings excepted) and that the lines
holding those numbers are still what the demos print. Run this after changing a
demo or what it measures, then update the prose from the new transcripts:

    python demos/record_transcripts.py                  # all demos, a few minutes
    python demos/record_transcripts.py vanishing_gradients
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEMOS = ("anatomy", "seed_model", "digits_sequence", "text_classifier", "vanishing_gradients")


def as_shown(stdout: str) -> str:
    """What a terminal ends up showing: a progress bar redraws its line after each carriage
    return, so only the text after the last one stays."""
    lines = stdout.split("\n")  # not splitlines(): it would split at each "\r" as well
    return "\n".join(line.rsplit("\r", 1)[-1].rstrip() for line in lines).rstrip("\n") + "\n"


def record(name: str) -> str:
    root = os.path.dirname(HERE)
    env = dict(os.environ, PYTHONPATH=root, MPLBACKEND="Agg")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, os.path.join(HERE, f"{name}.py")], cwd=root,
                            env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    path = os.path.join(HERE, "transcripts", f"{name}.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write(as_shown(result.stdout))
    print(f"{name}: {time.perf_counter() - start:.0f} s -> {path}")
    return path


def main() -> None:
    for name in sys.argv[1:] or DEMOS:
        if name not in DEMOS:
            sys.exit(f"unknown demo {name!r}; the demos: {', '.join(DEMOS)}")
        record(name)


if __name__ == "__main__":
    main()
