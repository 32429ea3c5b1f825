"""The README's "Both ways to train": the Keras script runs as it is here and, with its two
imports switched back, under Keras 3 itself; the PyTorch loop runs here and, unchanged,
under torch with a torch model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

SECTION = Path(__file__).resolve().parent.parent.joinpath("README.md").read_text().split(
    "## Both ways to train")[1].split("\n## ")[0]
KERAS_SCRIPT, MODEL, LOOP = re.findall(r"```python\n(.*?)```", SECTION, re.S)


def test_the_keras_script_runs_here(capsys):
    scope: dict = {}
    exec(KERAS_SCRIPT, scope)
    assert set(scope["history"].history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert "'accuracy'" in capsys.readouterr().out


def test_the_keras_script_with_kerass_imports_runs_under_keras(keras):
    original = KERAS_SCRIPT.replace("import nn as keras ", "import keras ").replace(
        "from nn import layers ", "from keras import layers ")
    assert "nn" not in re.findall(r"\bnn\b", original.split("#")[0]) and original != KERAS_SCRIPT
    scope: dict = {}
    exec(original, scope)
    assert type(scope["model"]).__module__.startswith("keras")


def test_the_pytorch_loop_runs_here(capsys):
    scope: dict = {}
    exec(KERAS_SCRIPT.split("model = ")[0], scope)  # the data
    exec(MODEL + LOOP, scope)
    losses = [float(line.split()[1]) for line in capsys.readouterr().out.splitlines()]
    assert len(losses) == 3 and all(np.isfinite(losses))


def test_the_same_loop_runs_under_torch(torch, capsys):
    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(3, 16, batch_first=True)
            self.head = torch.nn.Linear(16, 1)

        def forward(self, x):
            return torch.sigmoid(self.head(self.rnn(x)[0][:, -1]))

    scope: dict = {}
    exec(KERAS_SCRIPT.split("model = ")[0], scope)  # the data
    scope.update(torch=torch, optim=torch.optim, model=Classifier())
    exec(LOOP, scope)
    assert len(capsys.readouterr().out.splitlines()) == 3
