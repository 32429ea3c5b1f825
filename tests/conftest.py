"""Shared fixtures. Under CI (the CI variable set) a missing torch or `dot` is a
failure, not a skip: the cross-checks must really run there."""

from __future__ import annotations

import importlib
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


def _import_or_need(name: str):
    try:
        module = importlib.import_module(name)
    except ImportError:
        module = None
    _need(module is not None, name)
    return module


@pytest.fixture
def torch():
    """The torch module (float64 cross-checks); skips locally, fails under CI, if missing."""
    return _import_or_need("torch")


def needs_keras():
    """Keras 3 on its torch backend (reference numbers); skips locally, fails under CI."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = _import_or_need("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras was imported with the {keras.backend.backend()} backend")
    return keras


@pytest.fixture(scope="session")
def keras():
    """The keras module on the torch backend (see ``needs_keras``)."""
    return needs_keras()


@pytest.fixture
def dot_binary():
    """Path of Graphviz's `dot`; skips locally, fails under CI, if missing."""
    path = shutil.which("dot")
    _need(path is not None, "the Graphviz `dot` binary")
    return path


@pytest.fixture
def matplotlib():
    """matplotlib (the demos extra); skips locally, fails under CI, if missing."""
    return _import_or_need("matplotlib")


@pytest.fixture
def chromium_driver(tmp_path):
    """Selenium driving Debian's headless Chromium at a 1280 × 800 viewport, logging the
    console; skips locally, fails under CI, if Chromium, chromedriver or selenium is missing."""
    webdriver = _import_or_need("selenium.webdriver")
    browser, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    _need(browser is not None and driver_path is not None,
          "Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update",
                     "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(driver_path), options=options)
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
        yield driver
    finally:
        driver.quit()


@pytest.fixture(autouse=True)
def _fresh_state():
    """Every test starts from float32 default, grad enabled, no scope."""
    yield
    mt.set_default_dtype(np.float32)
    mt.context.state.grad_enabled = True
    mt.context.state.where = (None, None)


@pytest.fixture
def nbformat():
    """nbformat (the notebooks extra); skips locally, fails under CI, if missing."""
    return _import_or_need("nbformat")


@pytest.fixture
def notebook_kernel():
    """nbclient and a Jupyter kernel named python3 to run notebooks on; skips locally, fails
    under CI, if missing."""
    _import_or_need("nbclient")
    kernelspec = _import_or_need("jupyter_client.kernelspec")
    _need("python3" in kernelspec.find_kernel_specs(),
          "a Jupyter kernel named python3 (python -m ipykernel install --user)")
