"""model.save / nn.load_model: architecture as JSON and weights as arrays in one .npz file.

A compiled model also keeps its compile settings (JSON, under the config's
"compile" key) and its optimizer's state (arrays named ``__optimizer__/state.<i>.<buffer>``),
so the loaded model is compiled and its next ``fit`` continues where it stopped.
The optimizer class is looked up by name among ``optim``'s classes and ``nn.optimizers``'.

The bytes on disk are ``model_file``'s: saved atomically, read with every size
checked before it is allocated; a crafted file holds only numbers and text, never
code. A model is built from a file's record only as large as the file's arrays.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import warnings
from typing import Any

import numpy as np

import microtensor as mt

from . import activations, losses, metrics
from .layer import Layer, weight_budget
from .model import Input, InputLayer, Model, Sequential
from .model_file import Archive, ModelFileError, write_atomically
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
    "parameters": ["dense/kernel", ...], "with_state": [0, 1, ...]}, "loss":
    "binary_crossentropy", "metrics": ["accuracy"]}, {"__optimizer__/state.0.step": array(3),
    "__optimizer__/state.0.exp_avg": ..., ...})``; ``"parameters"`` names the optimizer's
    weights in its order (None if it has none yet), ``"with_state"`` the positions of those
    that have state, so a file missing one is refused. ``(None, {})`` if the model isn't
    compiled, or (with a warning) if a loss, metric or optimizer has no registered name, as
    Keras does with custom objects.
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
                            "config": hyper,
                            "parameters": params,
                            "with_state": sorted(i for i, buffers in optimizer.state.items()
                                                 if buffers)},
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


MAX_CONFIG_BYTES = 1 << 20  # a model of a thousand layers writes about 200 KB
MAX_CONFIG_DEPTH = 64        # lists and dicts inside one another (a Bidirectional: about 8)


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


def _refuse_keras_file(path: str | os.PathLike, what: str) -> None:
    if os.fspath(path).lower().endswith(KERAS_SUFFIXES):
        raise ModelFileError(
            f"{what}: {os.fspath(path)!r} is a Keras file; microtensor reads only the .npz "
            "files its model.save writes (to move weights from Keras: "
            "keras_model.get_weights(), then model.set_weights(...))")


def save_model(model: Model, path: str | os.PathLike) -> None:
    check_path(path, f"{model.name}: save")
    if not model.built:
        raise RuntimeError(f"{model.name}: save() needs a built model")
    dtypes = sorted({str(p.dtype) for p in model.parameters()})
    if len(dtypes) > 1:
        raise ValueError(f"{model.name}: save: the weights are of {' and '.join(dtypes)}, but a "
                         "model file keeps one dtype; build every layer under one "
                         "mt.set_default_dtype")
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
    text = json.dumps(config, allow_nan=False).encode()
    if len(text) > MAX_CONFIG_BYTES or _depth(config) > MAX_CONFIG_DEPTH:
        raise ValueError(f"{model.name}: save: the architecture record is larger "
                         f"({len(text):,} bytes, nesting {_depth(config)}) than load_model "
                         f"reads ({MAX_CONFIG_BYTES:,} bytes, nesting {MAX_CONFIG_DEPTH})")
    arrays = {CONFIG_KEY: np.frombuffer(text, dtype=np.uint8)}
    arrays.update(model.state_dict())
    arrays.update(optimizer_state)
    write_atomically(path, lambda file: np.savez(file, **arrays))


def _depth(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (0 for a plain value), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level <= MAX_CONFIG_DEPTH:
                stack.extend((child, level + 1) for child in item)
    return deepest


def _config(archive: Archive) -> dict[str, Any]:
    """The architecture record, checked for size, nesting, format and version."""
    shape, dtype = archive.entries.get(CONFIG_KEY, ((), np.dtype(object)))
    if dtype != np.uint8 or len(shape) != 1:
        raise archive.error("is an .npz file but not a microtensor model (no valid "
                            "architecture record)")
    if shape[0] > MAX_CONFIG_BYTES:
        raise archive.error(f"has an architecture record of {shape[0]:,} bytes, more than the "
                            f"{MAX_CONFIG_BYTES:,} a model file may hold")
    try:
        config = json.loads(archive.read(CONFIG_KEY).tobytes().decode())
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError
        raise archive.error(f"is an .npz file but not a microtensor model (no valid "
                            f"architecture record: {type(err).__name__})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise archive.error("is an .npz file but not a microtensor model (no valid "
                            "architecture record)")
    version = config.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise archive.error(f"was written by a newer microtensor (format version {version})")
    if version not in (1, 2) or isinstance(version, bool):
        raise archive.error(f"has a damaged architecture record (format version {version!r})")
    if _depth(config) > MAX_CONFIG_DEPTH:
        raise archive.error(f"has a damaged architecture record (nested more than "
                            f"{MAX_CONFIG_DEPTH} deep)")
    if config.get("dtype", "float32") not in ("float32", "float64"):
        raise archive.error(f"has a damaged architecture record (dtype {config.get('dtype')!r}; "
                            "a model keeps float32 or float64 weights)")
    return config


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
            _check_call_keywords(layer, node["kwargs"])
            results.append(layer(map_structure(resolve, node["inputs"]),
                                 **{k: map_structure(resolve, v)
                                    for k, v in node["kwargs"].items()}))
    inputs, outputs = map_structure(resolve, config["inputs"]), map_structure(resolve,
                                                                                config["outputs"])
    if config["class"] == "Sequential":
        stack = [layer for layer in layers if not isinstance(layer, dict)]
        return Sequential([inputs, *stack], name=config["name"])
    return Model(inputs=inputs, outputs=outputs, name=config["name"])


def _check_call_keywords(layer: Layer, keywords: dict[str, Any]) -> None:
    """A recorded call passes only keywords the layer's forward takes (a symbolic call
    doesn't run forward, so a wrong one would fail only at the first real call)."""
    parameters = inspect.signature(layer.forward).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(keywords) - set(parameters))
    if unknown:
        raise TypeError(f"a call of {layer.name} with keywords {unknown} its forward doesn't "
                        "take")


ARCHITECTURE_KEYS = ("class", "name", "layers", "nodes", "inputs", "outputs")


def _describes(saved: Any, rebuilt: Any) -> bool:
    """True if every value ``saved`` records is the one the rebuilt model records (keys it
    lacks are left to their defaults, as Keras reads a config written by an older version)."""
    if isinstance(saved, dict):
        return isinstance(rebuilt, dict) and all(
            key in rebuilt and _describes(value, rebuilt[key]) for key, value in saved.items())
    if isinstance(saved, list):
        return isinstance(rebuilt, list) and len(saved) == len(rebuilt) and all(
            _describes(a, b) for a, b in zip(saved, rebuilt, strict=True))
    numbers = (int, float)
    same_kind = type(saved) is type(rebuilt) or (
        isinstance(saved, numbers) and isinstance(rebuilt, numbers)
        and not isinstance(saved, bool) and not isinstance(rebuilt, bool))
    return same_kind and saved == rebuilt


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
    settings = {key: list(value) if isinstance(value, tuple) else value
                for key, value in optimizer.hyperparameters.items()}
    if not _describes(entry["config"], json.loads(json.dumps(settings))):
        raise ValueError(f"optimizer settings {entry['config']} are not {optimizer!r}'s")
    listed = entry.get("with_state")  # written since this check: older files lack it
    if listed is not None and sorted(optimizer.state) != listed:
        raise ValueError(f"the record lists optimizer state for parameters {listed} but the "
                         f"file holds state for {sorted(optimizer.state)}")
    model.compile(optimizer=optimizer, loss=record["loss"], metrics=record["metrics"])


def load_model(path: str | os.PathLike) -> Model:
    """A model saved with ``model.save(path)``: same architecture, same weights, same outputs.

    Compiled as it was when saved (optimizer state included), or uncompiled if it wasn't.
    A damaged, truncated or foreign file raises ``nn.ModelFileError`` naming the path.
    """
    _refuse_keras_file(path, "load_model")
    with Archive(path, "load_model") as archive:
        config = _config(archive)
        weights, optimizer_state = _split(archive.entries)
        model = _built(archive, config, budget=sum(math.prod(shape) for shape, _ in
                                                   weights.values()))
        rebuilt = json.loads(json.dumps(model_config(model)))
        if not all(_describes(config[key], rebuilt[key]) for key in ARCHITECTURE_KEYS):
            raise archive.error("has a damaged architecture record (the model built from it "
                                "records other values)")
        _check_weights(archive, model, weights, dtype=np.dtype(config.get("dtype", "float32")))
        _check_state(archive, model, config.get("compile"), optimizer_state)
        model.load_state_dict({name: archive.read(name) for name in weights})
        record = config.get("compile")
        try:
            if record is not None:
                _compile(model, record, {key.removeprefix(OPTIMIZER_PREFIX): archive.read(key)
                                         for key in optimizer_state})
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as err:
            raise archive.error(f"has a damaged compile record ({type(err).__name__}: "
                                f"{err})") from None
    return model


def load_weights(model: Model, path: str | os.PathLike) -> None:
    """Load a saved model's weights into ``model``; on any mismatch ``model`` is unchanged."""
    _refuse_keras_file(path, "load_weights")
    with Archive(path, "load_weights") as archive:
        _config(archive)
        weights, _ = _split(archive.entries)
        names = _matching_names(model, weights)
        _check_weights(archive, model, {ours: weights[theirs] for ours, theirs in names.items()},
                       dtype=None)
        model.load_state_dict({ours: archive.read(theirs) for ours, theirs in names.items()})


def _matching_names(model: Model, weights: dict) -> dict[str, str]:
    """{the model's weight name: the file's}. The same names, or, as Keras's load_weights,
    the same layers in the same order under other names: a model built again in this
    process gets new default names (dense_1 ...)."""
    params = list(model.named_parameters())
    if {name for name, _ in params} == set(weights) or model.names_by_path:
        return {name: name for name in weights}
    if [p.shape for _, p in params] == [shape for shape, _ in weights.values()]:
        return {name: saved for (name, _), saved in zip(params, weights, strict=True)}
    return {name: name for name in weights}


def _built(archive: Archive, config: dict[str, Any], budget: int) -> Model:
    """The model the record describes, its weights made only if the file holds as many."""
    previous = mt.get_default_dtype()
    try:
        mt.set_default_dtype(config.get("dtype", "float32"))
        with weight_budget(budget):
            return _build(config)
    except (KeyError, IndexError, TypeError, AttributeError, OverflowError,
            RecursionError) as err:
        raise archive.error(f"has a damaged architecture record ({type(err).__name__}: "
                            f"{err})") from None
    except ValueError as err:  # e.g. an activation that was the user's own function
        hint = f"; {NO_CODE_HINT}" if "unknown activation" in str(err) else ""
        raise archive.error(f"describes a layer that can't be made: {err}{hint}") from None
    finally:
        mt.set_default_dtype(previous)


def _check_weights(archive: Archive, model: Model, weights: dict, dtype) -> None:
    """Names and shapes (and, for load_model, dtypes) of the file's weights against the
    model's, before any is read."""
    params = dict(model.named_parameters())
    missing, unexpected = sorted(set(params) - set(weights)), sorted(set(weights) - set(params))
    if missing or unexpected:
        raise archive.error(f"doesn't fit {model.name}: missing {missing}, unexpected "
                            f"{unexpected}; a model built again in the same process gets new "
                            "default layer names (dense_1 ...): call nn.reset_names() before "
                            "building it, or name its layers")
    for name, param in params.items():
        shape, found = weights[name]
        if shape != param.shape:
            raise archive.error(f"doesn't fit {model.name}: weight {name} has shape "
                                f"{param.shape}, the file's {shape}")
        if found.kind != "f" or dtype is not None and found != dtype:
            raise archive.error(f"has weight {name} holding {found} values, not "
                                f"{dtype or 'floats'}")


def _check_state(archive: Archive, model: Model, record, state: dict) -> None:
    """Optimizer state only with compile settings, each array shaped like its weight."""
    if record is None:
        if state:
            raise archive.error("has a damaged compile record (optimizer state but no compile "
                                "settings)")
        return
    if not isinstance(record, dict) or not isinstance(record.get("optimizer"), dict):
        raise archive.error("has a damaged compile record (no optimizer)")


def _split(entries: dict) -> tuple[dict, dict]:
    """(weights, optimizer state) among a file's entries, the architecture record left out."""
    weights = {key: value for key, value in entries.items()
               if key != CONFIG_KEY and not key.startswith(OPTIMIZER_PREFIX)}
    state = {key: value for key, value in entries.items() if key.startswith(OPTIMIZER_PREFIX)}
    return weights, state
