"""Running the demos as a user runs them (a subprocess each), once per test session.

Each demo runs once with tiny settings (``TINY``); the tests that check its files,
its printed numbers and the README's quotes of it all read that one run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMOS = ROOT / "demos"

# Settings that run each demo in seconds; everything else as its defaults.
TINY = {
    "seed_model": ("--samples", "64", "--epochs", "1"),
    "digits_sequence": ("--epochs", "1"),
    "anatomy": ("--seed", "3"),
    "text_classifier": ("--epochs", "1", "--samples", "120", "--units", "4"),
    "vanishing_gradients": ("--epochs", "1", "--samples", "64", "--timesteps", "12",
                            "--units", "3"),
}


def run_demo(name: str, *args: str, block: str | None = None, timeout: float = 120,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run demos/<name>.py; ``block`` makes ``import <block>`` fail as if not installed;
    ``env`` adds to (or replaces) environment variables."""
    script = str(DEMOS / f"{name}.py")
    if block is None:
        command = [sys.executable, script, *args]
    else:
        wrapper = ("import runpy, sys\n"
                   f"sys.modules[{block!r}] = None  # import now raises ImportError\n"
                   f"sys.argv = [{script!r}] + sys.argv[1:]\n"
                   f"runpy.run_path({script!r}, run_name='__main__')\n")
        command = [sys.executable, "-c", wrapper, *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", **(env or {}))
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def succeeded(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


class DemoRuns:
    """``runs[name]`` -> (output folder, stdout) of demos/<name>.py run with ``TINY``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.done: dict[str, tuple[Path, str]] = {}

    def __getitem__(self, name: str) -> tuple[Path, str]:
        if name not in self.done:
            out = self.folder / name
            out.mkdir()
            self.done[name] = out, succeeded(run_demo(name, *TINY[name], "--out", str(out)))
        return self.done[name]
