"""The demos run end to end as a user runs them (a subprocess each), with tiny settings."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMOS = ROOT / "demos"
DIGITS_TEST_IMAGES = 450  # a quarter of scikit-learn's 1,797 digits, rounded up


def run_demo(name: str, *args: str, block: str | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess:
    """Run demos/<name>.py; ``block`` makes ``import <block>`` fail as if not installed."""
    script = str(DEMOS / f"{name}.py")
    if block is None:
        command = [sys.executable, script, *args]
    else:
        wrapper = ("import runpy, sys\n"
                   f"sys.modules[{block!r}] = None  # import now raises ImportError\n"
                   f"sys.argv = [{script!r}] + sys.argv[1:]\n"
                   f"runpy.run_path({script!r}, run_name='__main__')\n")
        command = [sys.executable, "-c", wrapper, *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def succeeded(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def files_line(stdout: str) -> str:
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("Files written: "), last
    return last


@pytest.mark.slow  # 3 s on an idle machine, 15 s on a loaded one
def test_seed_model_runs_and_writes_its_files(tmp_path, dot_binary):
    stdout = succeeded(run_demo("seed_model", "--samples", "64", "--epochs", "1",
                                "--out", str(tmp_path)))
    assert "Total params: 137,217" in stdout
    last = files_line(stdout)
    for name in ("seed_model_training.png", "seed_model_graph.svg", "seed_model.npz"):
        path = tmp_path / name
        assert str(path) in last
        assert path.stat().st_size > 1000
    assert (tmp_path / "seed_model_training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "seed_model_graph.svg").read_text()


def confusion_rows(stdout: str) -> list[list[int]]:
    """The 10 rows printed under the confusion matrix heading, '.' read as 0."""
    lines = stdout.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("Confusion matrix"))
    assert lines[start + 1].split()[1:] == [str(d) for d in range(10)]
    rows = []
    for digit, line in enumerate(lines[start + 2:start + 12]):
        fields = line.split()
        assert fields[0] == str(digit), line
        rows.append([0 if f == "." else int(f) for f in fields[1:]])
    return rows


def test_digits_demo_runs_and_prints_a_confusion_matrix(tmp_path, dot_binary):
    stdout = succeeded(run_demo("digits_sequence", "--epochs", "1", "--out", str(tmp_path)))
    assert "4 gates × 32 units × (8 inputs + 32 recurrent + 1 bias) = 5,248" in stdout
    rows = confusion_rows(stdout)
    assert [len(row) for row in rows] == [10] * 10
    assert sum(map(sum, rows)) == DIGITS_TEST_IMAGES
    accuracy = float(re.search(r"Test accuracy: ([\d.]+)%", stdout).group(1))
    correct = sum(rows[d][d] for d in range(10))
    assert accuracy == pytest.approx(100 * correct / DIGITS_TEST_IMAGES, abs=0.05)
    last = files_line(stdout)
    for name in ("digits_sequence_training.png", "digits_sequence_graph.svg"):
        assert str(tmp_path / name) in last
        assert (tmp_path / name).stat().st_size > 1000
    graph = (tmp_path / "digits_sequence_graph.svg").read_text()
    assert "elided" in graph  # 8 steps drawn as the first 3, an elision node, the last


@pytest.mark.slow
def test_digits_demo_reaches_93_percent_with_its_defaults(tmp_path):
    stdout = succeeded(run_demo("digits_sequence", "--out", str(tmp_path), timeout=300))
    accuracy = float(re.search(r"Test accuracy: ([\d.]+)% on 450 held-out", stdout).group(1))
    assert accuracy >= 93.0, stdout[-2000:]


def printed_row(stdout: str, label: str) -> list[float]:
    """Numbers of the first weight-table row starting with ``label`` (gate bars dropped)."""
    line = next(line for line in stdout.splitlines() if line.strip().startswith(label))
    return [float(v) for v in line.replace("|", " ").split()[1:]]


def printed_value(stdout: str, pattern: str) -> float:
    return float(re.search(pattern, stdout).group(1))


def test_anatomy_walks_lstm1_by_the_textbook_equations(tmp_path, dot_binary):
    stdout = succeeded(run_demo("anatomy", "--out", str(tmp_path), "--seed", "3"))
    assert "Total params: 12" in stdout and "Total params: 72" in stdout
    assert "4 gates × 3 units × (2 inputs + 3 recurrent + 1 bias) = 72" in stdout
    # LSTM(1): recompute the printed step from the printed weights, independently.
    kernel, recurrent, bias = (printed_row(stdout, label) for label in ("x[1]", "h[1]", "b "))
    assert bias == [0.0, 1.0, 0.0, 0.0]  # unit_forget_bias
    x = printed_value(stdout, r"Step t=1: x_1 = (-?[\d.]+), h_0 = 0\.0000, c_0 = 0\.0000")
    z = [x * k + b for k, b in zip(kernel, bias, strict=True)]  # h_0 = 0

    def sigmoid(v):
        return 1 / (1 + math.exp(-v))

    i, f, c_hat, o = sigmoid(z[0]), sigmoid(z[1]), math.tanh(z[2]), sigmoid(z[3])
    c = i * c_hat  # f * c_0 = 0
    h = o * math.tanh(c)
    assert printed_value(stdout, r"f     = sigmoid\(z_f\) = sigmoid\([-\d.]+\) = ([-\d.]+)") \
        == pytest.approx(f, abs=2e-3)
    assert printed_value(stdout, r"\n        = ([-\d.]+)\n  h_1") == pytest.approx(c, abs=2e-3)
    assert printed_value(stdout, r"tanh\(c_1\) = .*\n        = ([-\d.]+)") \
        == pytest.approx(h, abs=2e-3)
    assert recurrent and len(recurrent) == 4
    assert stdout.count("the same numbers") == 2


def test_anatomy_draws_every_step_unelided(tmp_path, dot_binary):
    stdout = succeeded(run_demo("anatomy", "--out", str(tmp_path)))
    small, large, cell = (tmp_path / f"anatomy_{stem}.svg"
                          for stem in ("lstm1x1", "lstm3_4x2", "lstm3_4x2_cell"))
    assert files_line(stdout) == f"Files written: {small}, {large}, {cell}"
    graph = large.read_text()
    assert "elided" not in graph
    assert all(f"lstm · t={t}" in graph for t in range(1, 5))  # t = 1..T, as printed
    assert graph.count("sigmoid") >= 3 * 4  # three sigmoid gates in each of the 4 steps
    assert "c = f * c_3 + i * c_hat" in graph  # step 4's equations, from the ops
    assert "lstm · t=1" in small.read_text()
    assert all(f"z[:, {a}:{a + 3}] → {gate}" in cell.read_text()
               for a, gate in zip((0, 3, 6, 9), ("i", "f", "c_hat", "o"), strict=True))


@pytest.mark.parametrize("demo, blocked, package", [
    ("seed_model", "matplotlib", "matplotlib"),
    ("digits_sequence", "sklearn", "scikit-learn"),
    ("digits_sequence", "matplotlib", "matplotlib"),
])
def test_a_missing_optional_package_gets_a_friendly_message(tmp_path, demo, blocked, package):
    result = run_demo(demo, "--epochs", "1", "--out", str(tmp_path), block=blocked)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"needs the optional package '{package}'" in result.stderr
    assert 'pip install -e ".[demos]"' in result.stderr
    assert "Epoch" not in result.stdout  # stopped before training, not after


def test_anatomy_dissects_any_size_the_seeds_lstm10_on_13x5(tmp_path, dot_binary):
    stdout = succeeded(run_demo("anatomy", "--units", "10", "--timesteps", "13",
                                "--features", "5", "--out", str(tmp_path)))
    assert "Total params: 640" in stdout  # the published count for LSTM(10) on (13, 5)
    assert "4 gates × 10 units × (5 inputs + 10 recurrent + 1 bias) = 640" in stdout
    assert "x_1 @ kernel[:, 10:20]" in stdout and "bias[30:40]" in stdout  # f and o slices
    assert "h_13 =" in stdout and stdout.count("the same numbers") == 1
    # not the 300-column tables (lines naming the files written are as long as tmp_path)
    assert max(len(line) for line in stdout.splitlines() if str(tmp_path) not in line) < 160
    assert (tmp_path / "anatomy_lstm10_13x5.svg").exists()


def test_anatomy_offers_no_option_that_does_nothing(tmp_path):
    result = run_demo("anatomy", "--epochs", "3", "--out", str(tmp_path))
    assert result.returncode == 2 and "unrecognized arguments: --epochs" in result.stderr
    usage = succeeded(run_demo("anatomy", "--help"))
    assert "--epochs" not in usage and "--units" in usage and "--timesteps" in usage
