"""The benchmark's hand-written numpy reference must stay correct: it is checked
here against torch autograd (float64) on a tiny version of the seed model."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from numpy_reference import NumpySeedModel, seed_weights  # noqa: E402
from primitives_reference import ROWS_WORTH_A_GEMM, NumpyPrimitivesModel  # noqa: E402

TINY = dict(features=3, lstm_units=(5, 4), dense_units=(6, 3, 1))


def tiny_problem(seed: int = 0, batch: int = 4, timesteps: int = 6):
    rng = np.random.default_rng(seed)
    weights = seed_weights(rng, **TINY, dtype=np.float64)
    x = rng.standard_normal((batch, timesteps, TINY["features"]))
    y = rng.integers(0, 2, size=(batch, 1)).astype(np.float64)
    return weights, x, y


def max_relative_difference(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    return max(float(np.abs(g - w).max() / np.abs(w).max()) for g, w in zip(got, want, strict=True))


# The primitives model sums weight products in groups below ROWS_WORTH_A_GEMM rows, one by
# one from there: both paths are checked.
@pytest.mark.parametrize("model, batch", [(NumpySeedModel, 4), (NumpyPrimitivesModel, 4),
                                          (NumpyPrimitivesModel, ROWS_WORTH_A_GEMM)])
def test_numpy_references_match_torch_autograd(torch, model, batch):
    from torch_reference import TorchPrimitiveModel

    weights, x, y = tiny_problem(batch=batch)
    reference, expected = model(weights), TorchPrimitiveModel(weights)

    loss, grads = reference.loss_and_grads(x, y)
    want_loss, want_grads = expected.loss_and_grads(x, y)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    assert [g.shape for g in grads] == [w.shape for w in weights]
    assert max_relative_difference(grads, want_grads) < 1e-10

    for _ in range(3):  # Adam's update is torch.optim.Adam's
        reference.train_step(x, y)
        expected.train_step(x, y)
    assert max_relative_difference(reference.get_weights(), expected.get_weights()) < 1e-10
    np.testing.assert_allclose(reference.predict(x), expected.predict(x), rtol=1e-10)


def test_numpy_reference_clips_probabilities_like_keras():
    weights, x, y = tiny_problem()
    weights[-1][:] = 40.0  # output bias: every prediction is 1.0 in float64
    loss, grads = NumpySeedModel(weights).loss_and_grads(x, np.zeros_like(y))
    assert loss == pytest.approx(-math.log(1e-7), rel=1e-6)  # 16.118, not infinity
    assert all(not g.any() for g in grads)  # clipped: no gradient flows
