"""Shared fixtures. Under CI (the CI variable set) a missing torch or `dot` is a
failure, not a skip: the cross-checks must really run there."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import microtensor as mt

IN_CI = bool(os.environ.get("CI"))


def _need(available: bool, what: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI but is missing")
    pytest.skip(f"{what} is not installed")


@pytest.fixture
def torch():
    """The torch module (float64 cross-checks); skips locally, fails under CI, if missing."""
    try:
        import torch as torch_module
    except ImportError:
        torch_module = None
    _need(torch_module is not None, "torch")
    return torch_module


@pytest.fixture
def dot_binary():
    """Path of Graphviz's `dot`; skips locally, fails under CI, if missing."""
    path = shutil.which("dot")
    _need(path is not None, "the Graphviz `dot` binary")
    return path


@pytest.fixture
def matplotlib():
    """matplotlib (the demos extra); skips locally, fails under CI, if missing."""
    try:
        import matplotlib as matplotlib_module
    except ImportError:
        matplotlib_module = None
    _need(matplotlib_module is not None, "matplotlib")
    return matplotlib_module


@pytest.fixture(autouse=True)
def _fresh_state():
    """Every test starts from float32 default, grad enabled, no scope."""
    yield
    mt.set_default_dtype(np.float32)
    mt.context.state.grad_enabled = True
    mt.context.state.scope = None
    mt.context.state.step = None
