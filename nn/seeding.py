"""One random generator for weights, shuffling and dropout, so a seed reproduces a run."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def set_seed(seed: int) -> None:
    """Make weight initialisation, shuffling in ``fit`` and dropout reproducible."""
    global _generator
    _generator = np.random.default_rng(seed)


def rng() -> np.random.Generator:
    return _generator
