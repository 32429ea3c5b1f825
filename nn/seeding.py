"""One random generator for weights, shuffling and dropout, so a seed reproduces a run.

It is microtensor's generator (``mt.manual_seed``, ``mt.randn``): ``nn.set_seed(0)`` and
``mt.manual_seed(0)`` are the same call, as ``torch.manual_seed`` seeds everything.
"""

from __future__ import annotations

import numpy as np

from microtensor.creation import generator, manual_seed


def set_seed(seed: int) -> None:
    """Make weight initialisation, shuffling in ``fit`` and dropout reproducible."""
    manual_seed(seed)


def rng() -> np.random.Generator:
    return generator()
