"""model.save / nn.load_model: architecture as JSON and weights as arrays in one .npz file.

Loaded with ``allow_pickle=False``: a crafted file can hold only numbers and
text, never code. Saving writes a temporary file and renames it, so a crash
mid-save never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

import microtensor as mt

from .layer import Layer
from .model import Input, InputLayer, Model, Sequential
from .symbolic import SymbolicTensor, map_structure

FORMAT = "microtensor-model"
VERSION = 1
CONFIG_KEY = "__config__"


def model_config(model: Model) -> dict[str, Any]:
    """The architecture as JSON-friendly data: layers, then the calls that connect them."""
    layers = list(model.layers)
    position = {id(node): k for k, node in enumerate(model.nodes)}

    def ref(item):
        if isinstance(item, SymbolicTensor):
            return {"node": position[id(item.node)], "index": item.index}
        return item

    nodes = [{"layer": next(i for i, layer in enumerate(layers) if layer is node.layer),
              "inputs": map_structure(ref, node.inputs),
              "kwargs": {k: map_structure(ref, v) for k, v in node.kwargs.items()}}
             for node in model.nodes]
    return {"format": FORMAT, "version": VERSION, "class": type(model).__name__,
            "name": model.name,
            "dtype": str(model.parameters()[0].dtype) if model.parameters() else "float32",
            "layers": [{"class": type(layer).__name__, "config": layer.get_config()}
                       for layer in layers],
            "nodes": nodes,
            "inputs": map_structure(ref, model.inputs),
            "outputs": map_structure(ref, model.outputs)}


def save_model(model: Model, path: str | os.PathLike) -> None:
    if not model.built:
        raise RuntimeError(f"{model.name}: save() needs a built model")
    config = json.dumps(model_config(model))
    arrays = {CONFIG_KEY: np.frombuffer(config.encode(), dtype=np.uint8)}
    arrays.update(model.state_dict())
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".saving-", suffix=".npz")
    try:
        os.chmod(temporary, _new_file_mode())  # mkstemp's 0600 would hide the model from others
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _new_file_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file: 0o666 minus the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"load_model: {os.fspath(path)!r} is not a readable microtensor model "
                         f"file (truncated, foreign, or holding pickled objects): {err}") from None
    try:
        config = json.loads(arrays.pop(CONFIG_KEY).tobytes().decode())
        if config["format"] != FORMAT:  # not an assert: python -O would drop the check
            raise ValueError(config["format"])
    except (KeyError, TypeError, ValueError, UnicodeDecodeError):
        raise ValueError(f"load_model: {os.fspath(path)!r} is an .npz file but not a microtensor "
                         "model (no valid architecture record)") from None
    if config.get("version", 0) > VERSION:
        raise ValueError(f"load_model: {os.fspath(path)!r} was written by a newer microtensor "
                         f"(format version {config['version']})")
    return config, arrays


def _build(config: dict[str, Any]) -> Model:
    layers: list[Layer | dict] = []
    for entry in config["layers"]:
        cls = Layer.registry.get(entry["class"])
        if cls is None:
            raise ValueError(f"load_model: unknown layer class {entry['class']!r}")
        if cls is InputLayer:
            layers.append(entry)
        else:  # a wrapper (Bidirectional) rebuilds the layer nested in its config
            make = getattr(cls, "from_config", None) or (lambda config, cls=cls: cls(**config))
            layers.append(make(entry["config"]))

    results: list[Any] = []

    def resolve(item):
        if isinstance(item, dict) and set(item) == {"node", "index"}:
            value = results[item["node"]]
            return value if item["index"] is None else value[item["index"]]
        return item

    for node in config["nodes"]:
        layer = layers[node["layer"]]
        if isinstance(layer, dict):
            results.append(Input(layer["config"]["shape"], name=layer["config"]["name"]))
        else:
            results.append(layer(map_structure(resolve, node["inputs"]),
                                 **{k: map_structure(resolve, v)
                                    for k, v in node["kwargs"].items()}))
    inputs, outputs = map_structure(resolve, config["inputs"]), map_structure(resolve,
                                                                                config["outputs"])
    if config["class"] == "Sequential":
        stack = [layer for layer in layers if not isinstance(layer, dict)]
        return Sequential([inputs, *stack], name=config["name"])
    return Model(inputs=inputs, outputs=outputs, name=config["name"])


def load_model(path: str | os.PathLike) -> Model:
    """A model saved with ``model.save(path)``: same architecture, same weights, same outputs."""
    config, arrays = _read(path)
    previous = mt.get_default_dtype()
    try:
        mt.set_default_dtype(config.get("dtype", "float32"))
        model = _build(config)
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        raise ValueError(f"load_model: {os.fspath(path)!r} has a damaged architecture record "
                         f"({type(err).__name__}: {err})") from None
    finally:
        mt.set_default_dtype(previous)
    model.load_state_dict(arrays)
    return model


def load_weights(model: Model, path: str | os.PathLike) -> None:
    """Load a saved model's weights into ``model``; on any mismatch ``model`` is unchanged."""
    _, arrays = _read(path)
    model.load_state_dict(arrays)
