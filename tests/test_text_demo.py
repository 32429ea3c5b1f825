"""demos/text_classifier.py runs end to end with tiny settings (a subprocess, as a user runs it)."""

from __future__ import annotations

import re

import numpy as np
from test_demos import files_line

import nn


def test_text_classifier_demo_runs_and_writes_its_files(demo_runs, dot_binary):
    tmp_path, stdout = demo_runs["text_classifier"]
    assert "5 tokens × 8 dimensions = 40" in stdout  # Embedding(5, 8): <pad ( ) a b>
    assert "output: (None, None) = batch × timesteps (token ids)" in stdout
    table = stdout[stdout.index("s/epoch"):]
    for name in ("LSTM", *(n for n in ("GRU", "SimpleRNN") if hasattr(nn, n))):
        assert re.search(rf"\n  {name} +[\d,]+ +[\d.]+ +[\d.]+%", table), table
    last = files_line(stdout)
    png, svg, saved = (tmp_path / f"text_classifier{suffix}"
                       for suffix in ("_training.png", "_graph.svg", ".npz"))
    for path in (png, svg, saved):
        assert str(path) in last
        assert path.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text() and "elided" in svg.read_text()
    model = nn.load_model(saved)
    assert model.get_layer("embedding").mask_zero
    padded, alone = np.array([[1, 3, 2, 0, 0]]), np.array([[1, 3, 2]])  # "(a)" padded or not
    np.testing.assert_allclose(model.predict(padded), model.predict(alone), rtol=1e-5)
