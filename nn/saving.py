"""model.save / nn.load_model: architecture as JSON and weights as arrays in one .npz file.

A compiled model also keeps its compile settings (JSON, under the config's
"compile" key) and its optimizer's state (arrays named ``__optimizer__/state.<i>.<buffer>``),
so the loaded model is compiled and its next ``fit`` continues where it stopped.
The optimizer class is looked up by name among ``optim``'s classes and ``nn.optimizers``'.

Loaded with ``allow_pickle=False``: a crafted file can hold only numbers and
text, never code. Saving writes a temporary file and renames it, so a crash
mid-save never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
import zipfile
from typing import Any

import numpy as np

import microtensor as mt

from . import activations, losses, metrics
from .layer import Layer
from .model import Input, InputLayer, Model, Sequential
from .optimizers import SAVED_CLASSES, saved_name
from .symbolic import SymbolicTensor, map_structure

FORMAT = "microtensor-model"
VERSION = 2                  # 2 added "compile"; version 1 files (no compile settings) still load
CONFIG_KEY = "__config__"
OPTIMIZER_PREFIX = "__optimizer__/"


def model_config(model: Model) -> dict[str, Any]:
    """The architecture as JSON-friendly data: layers, then the calls that connect them."""
    layers = list(model._graph_layers)
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
            "inputs": map_structure(ref, model.input),
            "outputs": map_structure(ref, model.output)}


def compile_config(model: Model) -> tuple[dict[str, Any] | None, dict[str, np.ndarray]]:
    """The compile settings as JSON-friendly data, and the optimizer's state as arrays.

    ``({"optimizer": {"class": "Adam", "config": {"lr": 0.001, "betas": [0.9, 0.999], ...},
    "parameters": ["dense/kernel", ...]}, "loss": "binary_crossentropy", "metrics":
    ["accuracy"]}, {"__optimizer__/state.0.step": array(3), "__optimizer__/state.0.exp_avg":
    ..., ...})``; ``"parameters"`` names the optimizer's weights in its order (None if it has
    none yet). ``(None, {})`` if the model isn't compiled, or (with a warning) if a loss,
    metric or optimizer has no registered name, as Keras does with custom objects.
    """
    if model.optimizer is None or model.loss is None:
        return None, {}
    unnamed = _custom_compile_objects(model)
    if unnamed:
        warnings.warn(f"{model.name}: save: {', '.join(unnamed)} can't be saved by name; saved "
                      "without compile settings or optimizer state (load_model returns an "
                      "uncompiled model: compile it again)", stacklevel=3)
        return None, {}
    optimizer, names = model.optimizer, {id(p): name for name, p in model.named_parameters()}
    state = optimizer.state_dict()
    hyper = {key: np.asarray(state.pop(key)).tolist() for key in optimizer.hyperparameters}
    params = None if optimizer.params is None else [names[id(p)] for p in optimizer.params]
    record = {"optimizer": {"class": saved_name(optimizer) or type(optimizer).__name__,
                            "config": hyper, "parameters": params},
              "loss": losses.name_of(model.loss),
              "metrics": [name for name, _ in model.compiled_metrics]}
    return record, {OPTIMIZER_PREFIX + key: np.asarray(value) for key, value in state.items()}


def _custom_compile_objects(model: Model) -> list[str]:
    """The loss, metrics and optimizer that ``load_model`` could not find again by name."""
    def found(lookup, wanted) -> bool:
        try:
            return lookup() is wanted
        except ValueError:  # an unknown name
            return False

    loss_name = losses.name_of(model.loss)
    custom = [] if found(lambda: losses.get(loss_name), model.loss) else [f"loss {loss_name!r}"]
    custom += [f"metric {name!r}" for name, fn in model.compiled_metrics
               if not found(lambda name=name: metrics.get(name)[1], fn)]
    optimizer = model.optimizer
    if saved_name(optimizer) is None:
        custom.append(f"optimizer {type(optimizer).__name__}")
    elif optimizer.params is not None and not {id(p) for p in optimizer.params} <= {
            id(p) for p in model.parameters()}:
        custom.append("an optimizer updating weights that aren't this model's")
    return custom


NO_CODE_HINT = ("a model file keeps names, never code, so nn.load_model can't rebuild it: "
                "build the model in code and call model.load_weights(path)")


def _custom_activations(config: Any) -> list[str]:
    """Activation names in a (nested) layer config that no built-in activation answers to."""
    if isinstance(config, list):
        return [name for item in config for name in _custom_activations(item)]
    if not isinstance(config, dict):
        return []
    found = []
    for key, value in config.items():
        if key in ("activation", "recurrent_activation") and isinstance(value, str):
            try:
                activations.get(value)
            except ValueError:
                found.append(value)
        else:
            found += _custom_activations(value)
    return found


KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def check_path(path: str | os.PathLike, what: str = "save") -> None:
    """Refuse Keras's file names: what we write is an .npz file, which Keras can't read, and a
    file named ``model.keras`` must be one Keras can load."""
    name = os.fspath(path)
    if name.lower().endswith(KERAS_SUFFIXES):
        stem = name[:name.rfind(".")].removesuffix(".weights")
        raise ValueError(
            f"{what}: {name!r} names a Keras file ({name[name.rfind('.'):]}), but microtensor "
            f"can't write Keras's format; it writes its own .npz file (architecture as JSON, "
            f"weights as arrays), which nn.load_model reads: use e.g. {stem + '.npz'!r}")


def save_model(model: Model, path: str | os.PathLike) -> None:
    check_path(path, f"{model.name}: save")
    if not model.built:
        raise RuntimeError(f"{model.name}: save() needs a built model")
    config = model_config(model)
    custom = sorted(set(_custom_activations(config["layers"])))
    if custom:
        warnings.warn(f"{model.name}: save: the activation {', '.join(custom)} is your own "
                      f"function; {NO_CODE_HINT}", stacklevel=3)
    record, optimizer_state = compile_config(model)
    if record is not None:
        config["compile"] = record
    else:
        config["version"] = 1  # nothing that version 2 added: older readers load it too
    arrays = {CONFIG_KEY: np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)}
    arrays.update(model.state_dict())
    arrays.update(optimizer_state)
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
    if os.fspath(path).lower().endswith(KERAS_SUFFIXES):
        raise ValueError(f"load_model: {os.fspath(path)!r} is a Keras file; microtensor reads "
                         "only the .npz files its model.save writes (to move weights from "
                         "Keras: keras_model.get_weights(), then model.set_weights(...))")
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
            results.append(Input(**layer["config"]))
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


def _compile(model: Model, record: dict[str, Any], state: dict[str, np.ndarray]) -> None:
    """Compile ``model`` as ``record`` (from ``compile_config``) says; give the optimizer ``state``.

    Raises (KeyError, TypeError, ValueError) on anything unknown or malformed.
    """
    known = SAVED_CLASSES
    entry = record["optimizer"]
    if not isinstance(entry["class"], str) or entry["class"] not in known:
        raise ValueError(f"unknown optimizer class {entry['class']!r}; known: "
                         f"{', '.join(sorted(known))}")
    weights, names = dict(model.named_parameters()), entry["parameters"]
    optimizer = known[entry["class"]]()
    optimizer.attach(model.parameters() if names is None else [weights[n] for n in names])
    optimizer.load_state_dict({**entry["config"], **state})   # checks all, then changes
    model.compile(optimizer=optimizer, loss=record["loss"], metrics=record["metrics"])


def _split(arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(weights, optimizer state without the ``__optimizer__/`` prefix)."""
    state = {key.removeprefix(OPTIMIZER_PREFIX): value for key, value in arrays.items()
             if key.startswith(OPTIMIZER_PREFIX)}
    weights = {key: value for key, value in arrays.items() if not key.startswith(OPTIMIZER_PREFIX)}
    return weights, state


def load_model(path: str | os.PathLike) -> Model:
    """A model saved with ``model.save(path)``: same architecture, same weights, same outputs.

    Compiled as it was when saved (optimizer state included), or uncompiled if it wasn't.
    """
    config, arrays = _read(path)
    arrays, optimizer_state = _split(arrays)
    previous = mt.get_default_dtype()
    try:
        mt.set_default_dtype(config.get("dtype", "float32"))
        model = _build(config)
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        raise ValueError(f"load_model: {os.fspath(path)!r} has a damaged architecture record "
                         f"({type(err).__name__}: {err})") from None
    except ValueError as err:  # e.g. an activation that was the user's own function
        hint = f"; {NO_CODE_HINT}" if "unknown activation" in str(err) else ""
        raise ValueError(f"load_model: {os.fspath(path)!r}: {err}{hint}") from None
    finally:
        mt.set_default_dtype(previous)
    model.load_state_dict(arrays)
    record = config.get("compile")
    try:
        if record is None and optimizer_state:
            raise ValueError("optimizer state but no compile settings")
        if record is not None:
            _compile(model, record, optimizer_state)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as err:
        raise ValueError(f"load_model: {os.fspath(path)!r} has a damaged compile record "
                         f"({type(err).__name__}: {err})") from None
    return model


def load_weights(model: Model, path: str | os.PathLike) -> None:
    """Load a saved model's weights into ``model``; on any mismatch ``model`` is unchanged."""
    _, arrays = _read(path)
    model.load_state_dict(_split(arrays)[0])
