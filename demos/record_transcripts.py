"""Run every demo with its defaults (and the other settings the README quotes) and keep
what it printed in demos/transcripts/.

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
# Each demo with its defaults, and the other settings the README quotes.
RUNS = {
    "anatomy": [(), ("--units", "10", "--timesteps", "13", "--features", "5")],
    "seed_model": [()],
    "digits_sequence": [()],
    "text_classifier": [()],
    "vanishing_gradients": [()],
}


def as_shown(stdout: str) -> str:
    """What a terminal ends up showing: a progress bar redraws its line after each carriage
    return, so only the text after the last one stays."""
    lines = stdout.split("\n")  # not splitlines(): it would split at each "\r" as well
    return "\n".join(line.rsplit("\r", 1)[-1].rstrip() for line in lines).rstrip("\n") + "\n"


def transcript_name(name: str, args: tuple[str, ...]) -> str:
    """"anatomy", or "anatomy_units_10_timesteps_13_features_5" for a run with options."""
    return "_".join([name, *(arg.lstrip("-") for arg in args)])


def record(name: str, args: tuple[str, ...] = ()) -> str:
    root = os.path.dirname(HERE)
    env = dict(os.environ, PYTHONPATH=root, MPLBACKEND="Agg")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, os.path.join(HERE, f"{name}.py"), *args], cwd=root,
                            env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    path = os.path.join(HERE, "transcripts", transcript_name(name, args) + ".txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write(as_shown(result.stdout))
    print(f"{' '.join([name, *args])}: {time.perf_counter() - start:.0f} s -> {path}")
    return path


def main() -> None:
    for name in sys.argv[1:] or RUNS:
        if name not in RUNS:
            sys.exit(f"unknown demo {name!r}; the demos: {', '.join(RUNS)}")
        for args in RUNS[name]:
            record(name, args)


if __name__ == "__main__":
    main()
