"""compile / fit / evaluate / predict: the Keras training loop, over the PyTorch-style step.

One training step is exactly what a user would write by hand:
``loss = loss_fn(y, model(x)); opt.zero_grad(); loss.backward(); opt.step()``.
"""

from __future__ import annotations

import numbers
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import numpy as np

import microtensor as mt
from microtensor.speedups import collector_paused

from . import losses
from . import metrics as metric_functions
from .callbacks import CallbackList, History, TerminateOnNaN
from .history import RunningMeans
from .layer import build_attempt, on_failure
from .module import running_mode
from .seeding import rng
from .symbolic import flatten

Data = np.ndarray | mt.Tensor  # a batch of samples: the first axis counts them


class Trainable:
    """Mixed into ``Model``: adds Keras's compile/fit/evaluate/predict."""

    optimizer = None
    loss = None
    compiled_metrics: list[tuple[str, metric_functions.Metric]] = []

    jit_compile = True  # fit/evaluate/predict replay a traced step (mt.compile)

    def compile(self, optimizer: str | object = "adam",
                loss: str | losses.Loss = "binary_crossentropy",
                metrics: list | None = None, jit_compile: bool = True) -> None:
        """Choose the optimizer, the loss and the metrics.

        An optimizer named by a string gets Keras's defaults (``nn.optimizers.get``:
        "rmsprop" is learning_rate=0.001, rho=0.9); an object, from ``nn.optimizers`` or
        ``optim``, is used as it is. Everything is checked before anything changes: a
        compile that raises leaves the model (and the optimizer it had) exactly as they were.

        ``jit_compile`` (Keras's name): fit, evaluate and predict trace their step once per
        batch shape and replay it as plain numpy calls (``mt.compile``); the numbers are
        eager's. ``False`` runs every step eagerly, building the graph each time.
        """
        import optim  # nn meets optim here, and in nn.optimizers (Keras's names)

        from . import optimizers

        if isinstance(optimizer, str):
            optimizer = optimizers.get(optimizer)
        elif not isinstance(optimizer, optim.Optimizer):
            raise TypeError(f"{self.name}: compile: optimizer must be a name such as 'adam' or "
                            f"an optim optimizer, got {type(optimizer).__name__} {optimizer!r}")
        if metrics is not None and not isinstance(metrics, list | tuple):
            raise TypeError(f"{self.name}: compile: metrics must be a list such as "
                            f"['accuracy'], got {type(metrics).__name__} {metrics!r}")
        loss = losses.get(loss)
        compiled_metrics = [metric_functions.get(m) for m in (metrics or [])]
        self._check_optimizer_parameters(optimizer)
        previous = self.optimizer
        self.optimizer = optimizer
        try:
            self._attach_parameters()
        except BaseException:
            self.optimizer = previous
            raise
        self.loss, self.compiled_metrics = loss, compiled_metrics
        self.jit_compile, self._compiled = bool(jit_compile), {}  # steps traced anew

    def _check_optimizer_parameters(self, optimizer) -> None:
        """An optimizer that already holds parameters must hold only this model's: one that
        updates another model's weights would leave this model's own untrained, silently."""
        held = getattr(optimizer, "params", None)
        if not held or not self.built:
            return
        own = {id(p) for p in self.parameters()}
        foreign = [p.name or "?" for p in held if id(p) not in own]
        if foreign:
            raise ValueError(f"{self.name}: compile got an optimizer that updates weights that "
                             f"aren't this model's ({', '.join(foreign[:3])}"
                             f"{', ...' if len(foreign) > 3 else ''}); make a new optimizer "
                             "for this model, e.g. compile(optimizer=optim.Adam(lr=...))")

    def _attach_parameters(self) -> None:
        """Hand the model's parameters to an optimizer made without them (``params=None``).

        A Sequential model without ``nn.Input`` has no weights until its first
        call, so then this waits until ``fit`` has built it.
        """
        held = getattr(self.optimizer, "params", None)
        if self.built and held is None:
            optimizer, state = self.optimizer, getattr(self.optimizer, "state", None)
            self.optimizer.attach(self.parameters())

            def detach() -> None:  # fit's first call failed: its weights are gone again
                optimizer.params, optimizer.state = None, state
            on_failure(detach)
        else:
            self._check_optimizer_parameters(self.optimizer)

    # -- fit --------------------------------------------------------------------------
    def fit(self, x: Data, y: Data, batch_size: int | None = None, epochs: int = 1,
            verbose: int | str = "auto", callbacks: list | None = None,
            validation_split: float = 0.0, validation_data: tuple[Data, Data] | None = None,
            shuffle: bool = True, class_weight: dict | None = None,
            sample_weight: np.ndarray | None = None, initial_epoch: int = 0,
            seed: int | None = None) -> History:
        """Train for ``epochs`` passes over (x, y) in mini-batches; returns a ``History``.

        Keras's arguments, in Keras's order. ``validation_split`` holds out the *last*
        fraction of the data (before shuffling), as Keras does. ``callbacks`` are
        ``nn.callbacks`` objects. ``class_weight`` ({class: weight}) or ``sample_weight``
        (one weight per sample) weigh each sample's loss as Keras does,
        sum(weight · loss) / batch size; ``metrics`` stay unweighted, as Keras's
        ``compile(metrics=...)`` (Keras weighs only its ``weighted_metrics``).
        Same seed (``nn.set_seed`` or ``seed=``), same run.
        """
        options = {"batch_size": 32 if batch_size is None else batch_size,
                   "verbose": 1 if verbose == "auto" else verbose}
        with ExitStack() as first_step:
            # Until the first step is taken, a failure takes back what this call built (the
            # model's weights, the optimizer's parameters): a corrected call starts afresh.
            first_step.enter_context(build_attempt())
            return self._fit(x, y, epochs=epochs, callbacks=callbacks,
                             validation_split=validation_split, validation_data=validation_data,
                             shuffle=shuffle, class_weight=class_weight,
                             sample_weight=sample_weight, initial_epoch=initial_epoch, seed=seed,
                             after_first_step=first_step.close, **options)

    def _fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
             validation_data, shuffle, class_weight, sample_weight, initial_epoch, seed,
             after_first_step: Callable[[], None]) -> History:
        self._require_compiled("fit")
        self._require_one_output("fit")
        _check_batch_size("fit", batch_size)
        if not _whole_number(epochs) or epochs < 0:
            raise ValueError(f"fit: epochs must be a whole number >= 0, got {epochs!r}"
                             f"{_int_hint(epochs)}")
        if validation_data is not None and (not isinstance(validation_data, list | tuple)
                                            or len(validation_data) != 2):
            raise ValueError("fit: validation_data must be a pair (x_val, y_val), got "
                             f"{_described(validation_data)}")
        x, y = self._checked_data("fit", x, y)
        weights = sample_weights(y, class_weight, sample_weight)
        self._attach_parameters()
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        samples = len(y)
        if validation_data is None and validation_split > 0:
            split = int(samples * (1 - validation_split))
            if split == 0 or split == samples:
                raise ValueError(f"fit: validation_split={validation_split} of {samples} samples "
                                 "leaves no training or no validation data")
            validation_data = (_rows(x, slice(split, None)), y[split:])
            x, y = _rows(x, slice(None, split)), y[:split]
            weights = None if weights is None else weights[:split]
        if validation_data is not None:
            validation_data = self._checked_data("fit (validation_data)", *validation_data)
        generator = np.random.default_rng(seed) if seed is not None else rng()
        callbacks = CallbackList(callbacks, self, {
            "epochs": epochs, "batch_size": batch_size, "samples": len(y), "verbose": verbose,
            "steps": -(-len(y) // batch_size)})
        # Kept on the model as Keras does, so the epochs done survive a fit that raises.
        self.history = history = callbacks.history
        self.stop_training = False
        with running_mode(training=True):
            callbacks.call("on_train_begin", {})
            logs: dict[str, float] = {}
            for epoch in range(initial_epoch, epochs):
                callbacks.call("on_epoch_begin", epoch, {})
                order = generator.permutation(len(y)) if shuffle else np.arange(len(y))
                start = time.perf_counter()
                logs = self._train_epoch(x, y, weights, order, batch_size, epoch, epochs,
                                         verbose, callbacks, after_first_step)
                if validation_data is not None:
                    values = self._evaluate_logs(*validation_data, batch_size)
                    logs.update({f"val_{k}": v for k, v in values.items()})
                if verbose:
                    took = time.perf_counter() - start
                    text = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
                    print(f"Epoch {epoch + 1}/{epochs} - {took:.1f}s - {text}", flush=True)
                callbacks.call("on_epoch_end", epoch, logs)
                if self.stop_training:
                    break
            callbacks.call("on_train_end", logs)
        return history

    def _train_epoch(self, x, y, weights, order, batch_size, epoch, epochs, verbose,
                     callbacks: CallbackList,
                     after_step: Callable[[], None] | None = None) -> dict[str, float]:
        batches = range(0, len(y), batch_size)
        logs = RunningMeans()
        stop_on_nan = any(isinstance(c, TerminateOnNaN) for c in callbacks.callbacks)
        # tqdm.auto (a widget in Jupyter) only when a bar is drawn: without ipywidgets it warns
        # on import, which a notebook that imports nn or calls fit(verbose=0) should not print.
        if verbose == 1:
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm

        bar = tqdm(total=len(batches), desc=f"Epoch {epoch + 1}/{epochs}", unit="batch",
                   disable=verbose != 1, leave=False, file=sys.stdout, dynamic_ncols=True,
                   mininterval=0.5)  # fewer frames when stdout is a log file
        for number, begin in enumerate(batches):
            callbacks.call("on_train_batch_begin", number, {})
            index = order[begin:begin + batch_size]
            try:
                values = self.train_step(_rows(x, index), y[index], epoch=epoch, batch=number,
                                         sample_weight=None if weights is None else weights[index])
            except FloatingPointError:
                if not stop_on_nan:
                    raise
                # The step was refused (weights as before it); TerminateOnNaN ends training.
                callbacks.call("on_train_batch_end", number, {"loss": float("nan")})
                break
            if after_step is not None:
                after_step()
            logs.add(values, self._log_weights(values, len(index), self.output_mask))
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in logs.result().items()}, refresh=False)
            callbacks.call("on_train_batch_end", number, logs.result())
            if self.stop_training:
                break
        bar.close()
        return logs.result()

    def train_step(self, x_batch: Data, y_batch: Data, epoch: int = 0, batch: int = 0,
                   sample_weight: np.ndarray | None = None) -> dict[str, float]:
        """One optimisation step on one batch; returns the batch's loss and metrics.

        If the loss, a gradient or an updated weight is NaN or inf, raises
        FloatingPointError and leaves the weights as they were before this step.
        """
        with collector_paused():
            return self._train_step(x_batch, y_batch, epoch, batch, sample_weight)

    def _train_step(self, x_batch, y_batch, epoch: int, batch: int,
                    sample_weight) -> dict[str, float]:
        where = f"at epoch {epoch + 1}, batch {batch + 1}"
        if self.jit_compile:  # the same step, traced once and replayed (only .grad written);
            # a loss or gradient that overflows is reported below, not by numpy's warnings
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss, prediction = self._step("train", self._loss_and_gradients)(
                    x_batch, y_batch, sample_weight, self._modes())
            if not np.isfinite(loss.item()):
                raise _diverged(f"the loss became {loss.item()} {where}")
        else:
            with mt.freeing_values():  # this graph is thrown away after backward: keep only
                prediction = self(x_batch)  # what backward reads (microtensor/speedups.py)
            loss = self._loss_of(y_batch, prediction, self.output_mask, sample_weight)
            if not np.isfinite(loss.item()):
                raise _diverged(f"the loss became {loss.item()} {where}")
            self.optimizer.zero_grad()
            loss.backward()
        params = self.optimizer.params
        if not all(np.all(np.isfinite(p.grad)) for p in params if p.grad is not None):
            raise _diverged(f"a gradient became NaN or inf {where}")
        step = self.optimizer.pending_step()  # computed, not applied yet: all or nothing
        if not all(np.all(np.isfinite(data)) for data in step.new_values):
            raise _diverged(f"the update {where} made a weight NaN or inf")
        step.apply()
        return {"loss": loss.item(),
                **self._metric_values(y_batch, prediction.data, self.output_mask)}

    def _loss_and_gradients(self, x_batch, y_batch, sample_weight=None,
                            modes=None) -> tuple[mt.Tensor, mt.Tensor]:
        """The loss and the prediction; the parameters' ``.grad`` hold d loss / d parameter.
        (``modes``: see ``_modes``.)"""
        with mt.freeing_values():  # this graph is thrown away after backward: keep only
            prediction = self(x_batch)  # what backward reads (microtensor/speedups.py)
        loss = self._loss_of(y_batch, prediction, self.output_mask, sample_weight)
        self.optimizer.zero_grad()
        loss.backward()
        return loss, prediction

    def _step(self, kind: str, fn: Callable) -> Callable:
        """``fn`` as a compiled step (mt.compile), one per kind, made on first use."""
        compiled = self.__dict__.setdefault("_compiled", {})
        if kind not in compiled:
            compiled[kind] = mt.compile(fn, name=f"{self.name}'s {kind} step")
        return compiled[kind]

    def _modes(self) -> tuple[bool, ...]:
        """Every layer's training flag: an argument of each compiled step, so that each mode
        keeps a program of its own (Module.training's guard would otherwise trace again
        at every switch)."""
        return tuple(module.training for module in self.modules())

    def _forward(self, x_batch, modes=None):
        return self(x_batch)

    def _evaluated(self, x_batch, y_batch, sample_weight=None, modes=None):
        """The loss and the prediction, detached: evaluate reads only their values, and a
        compiled step that returned a graph would have to run eagerly (compile.py)."""
        prediction = self(x_batch)
        loss = self._loss_of(y_batch, prediction, self.output_mask, sample_weight)
        return loss.detach(), prediction.detach()

    # -- evaluate / predict -------------------------------------------------------------
    def evaluate(self, x: Data, y: Data, batch_size: int | None = None, verbose: int | str = 0,
                 sample_weight: np.ndarray | None = None,
                 return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """Loss (and metrics) on (x, y) without training: ``loss`` or ``[loss, *metrics]``,
        or with ``return_dict=True`` a dict {"loss": ..., "accuracy": ...} as Keras."""
        self._require_compiled("evaluate")
        self._require_one_output("evaluate")
        with build_attempt():  # on an unbuilt model, a failure leaves it unbuilt
            x, y = self._checked_data("evaluate", x, y)
            weights = sample_weights(y, None, sample_weight)
            logs = self._evaluate_logs(x, y, 32 if batch_size is None else batch_size, weights)
        if verbose and verbose != "auto":
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _loss_of(self, y, prediction: mt.Tensor, mask, sample_weight=None) -> mt.Tensor:
        """The compiled loss; a masked output (padded sequences) counts unmasked steps only;
        ``sample_weight`` weighs each sample's loss (built-in losses only)."""
        options = {} if mask is None else {"mask": mask}
        if sample_weight is not None:
            options["sample_weight"] = sample_weight
        try:
            return self.loss(y, prediction, **options)
        except TypeError as err:
            if "sample_weight" not in str(err):
                raise
            raise TypeError(f"{self.name}: the loss {losses.name_of(self.loss)!r} takes no "
                            "sample_weight; class_weight and sample_weight work with the "
                            "built-in losses") from None

    def _metric_values(self, y, prediction: np.ndarray, mask) -> dict[str, float]:
        """The compiled metrics on one batch. With an output mask only the unmasked steps
        count, as Keras passes the mask as each metric's sample_weight (0 if none is left)."""
        y = _as_array(y)
        if mask is not None:
            y, prediction = metric_functions.unmasked(y, prediction, mask)
            if len(prediction) == 0:
                return {name: 0.0 for name, _ in self.compiled_metrics}
        return {name: metric(y, prediction) for name, metric in self.compiled_metrics}

    def _log_weights(self, values: dict[str, float], samples: int, mask) -> dict[str, float]:
        """How much one batch's values weigh in the epoch's (or evaluate's) mean, as in Keras:
        the loss by the batch's size; a metric by the positions it counted (Keras's metric
        objects add up total and count), which is also the batch's size without a mask."""
        counted = samples if mask is None else int(np.count_nonzero(mask))
        metric_names = {name for name, _ in self.compiled_metrics}
        return {key: counted if key in metric_names else samples for key in values}

    def _evaluate_logs(self, x, y, batch_size: int, weights=None) -> dict[str, float]:
        """Loss and metrics batch by batch, averaged as fit averages an epoch (Keras's way).

        With a mask this differs from one masked mean over all samples: a batch's loss is
        the mean over its own unmasked steps, and each batch weighs by its size; a metric
        counts every unmasked step once (see ``_log_weights``).
        """
        _check_batch_size("evaluate", batch_size)
        logs = RunningMeans()
        # The graph is recorded (never run backward) when binary crossentropy reads the logits
        # behind a sigmoid output: evaluate then gives the loss fit gives.
        with self._inference(graph=self.loss is losses.binary_crossentropy):
            for begin in range(0, len(y), batch_size):
                rows = slice(begin, begin + batch_size)
                weight = None if weights is None else weights[rows]
                loss, prediction = (self._step("evaluate", self._evaluated)
                                    if self.jit_compile else self._evaluated)(
                    _rows(x, rows), y[rows], weight, self._modes())
                mask = self.output_mask
                values = {"loss": loss.item(),
                          **self._metric_values(y[rows], prediction.data, mask)}
                logs.add(values, self._log_weights(values, len(y[rows]), mask))
        return logs.result()

    @contextmanager
    def _inference(self, graph: bool = False) -> Iterator[None]:
        """Evaluation mode (Dropout off) on this thread and no graph; with ``graph``, a graph
        that keeps only what a backward pass would read (and the logits of a sigmoid output)."""
        with running_mode(training=False), ExitStack() as modes:
            if graph:
                modes.enter_context(mt.enable_grad())
                modes.enter_context(mt.freeing_values())
            else:
                modes.enter_context(mt.no_grad())
            yield

    def predict(self, x: Data, batch_size: int | None = None,
                verbose: int | str = 0) -> np.ndarray | list[np.ndarray]:
        """Outputs for ``x`` as a numpy array (a list of arrays for a model with several
        outputs, as Keras), computed in batches without a graph."""
        batch_size = 32 if batch_size is None else batch_size
        _check_batch_size("predict", batch_size)
        x = _model_inputs(self, "predict", x)
        self._check_input_shapes(x)  # the whole data's shape, not a batch's, in the message
        samples = len(_first(x))
        if samples == 0:
            raise ValueError(f"{self.name}: predict got no samples (x has shape "
                             f"{_first(x).shape})")
        outputs = []  # per batch: the output array(s)
        with self._inference():
            for begin in range(0, samples, batch_size):
                rows = _rows(x, slice(begin, begin + batch_size))
                output = (self._step("predict", self._forward)(rows, self._modes())
                          if self.jit_compile else self(rows))
                several = isinstance(output, list | tuple)
                outputs.append([t.data for t in output] if several else output.data)
        if several:
            return [np.concatenate(parts, axis=0) for parts in zip(*outputs, strict=True)]
        return np.concatenate(outputs, axis=0)

    # -- input checks ---------------------------------------------------------------------
    def _check_input_shapes(self, x) -> None:
        """Each input's data against its nn.Input, where the model was built from them."""
        if not (self.built and getattr(self, "nodes", None)):
            return
        for symbolic, data in zip(flatten(self.inputs), flatten(x), strict=False):
            layer = symbolic.node.layer
            if hasattr(layer, "check_input_shape") and hasattr(data, "shape"):
                layer.check_input_shape(tuple(data.shape))

    def _require_compiled(self, what: str) -> None:
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(f"{what}: call model.compile(optimizer=..., loss=...) first")

    def _require_one_output(self, what: str) -> None:
        outputs = len(self.outputs) if self.built else 1  # unbuilt: a Sequential
        if outputs != 1:
            raise ValueError(f"{self.name}: {what} got a model with {outputs} outputs, but fit "
                             "and evaluate train one output with one loss (predict works on "
                             "it; train several outputs in a PyTorch-style loop)")

    def _checked_data(self, what: str, x, y) -> tuple[np.ndarray | list, np.ndarray]:
        """Validate before any weight changes: lengths, NaNs, feature size, label values.

        x is one array, or a list of arrays for a model with several inputs.
        """
        x = _model_inputs(self, what, x)
        arrays = x if isinstance(x, list) else [x]
        arrays = [a.astype(mt.get_default_dtype(), copy=False) for a in arrays]
        x = arrays if isinstance(x, list) else arrays[0]
        y = _as_array(y, what, "y")
        for array in arrays:
            if len(array) != len(y):
                raise ValueError(f"{what}: x has {len(array)} samples but y has {len(y)}")
            if not np.all(np.isfinite(array)):
                bad = tuple(np.argwhere(~np.isfinite(array))[0].tolist())
                raise ValueError(f"{what}: x contains NaN or inf (first at index {bad})")
        if len(y) == 0:
            raise ValueError(f"{what}: got no samples")
        if np.issubdtype(y.dtype, np.number) and not np.all(np.isfinite(y)):
            bad = tuple(np.argwhere(~np.isfinite(y))[0].tolist())
            raise ValueError(f"{what}: y contains NaN or inf (first at index {bad})")
        if not self.built:
            self.build_for_data(arrays[0].shape)
        expected_shapes = self.input_shape if isinstance(x, list) else [self.input_shape]
        for array, expected in zip(arrays, expected_shapes, strict=True):
            if len(array.shape) != len(expected) or any(
                    want is not None and got != want
                    for got, want in zip(array.shape, expected, strict=True)):
                raise ValueError(f"{what}: x has shape {array.shape} but the model expects "
                                 f"{expected} (None = any size)")
        # Labels between 0 and 1 (smoothed, or probabilities) are fine, as in Keras.
        if self.loss is losses.binary_crossentropy and not np.all((y >= 0) & (y <= 1)):
            odd = y[(y < 0) | (y > 1)].ravel()[0].item()  # a plain number in the message
            raise ValueError(f"{what}: binary_crossentropy needs labels between 0 and 1, got "
                             f"{odd!r}; for several classes use categorical or "
                             "sparse_categorical_crossentropy")
        return x, y


def _diverged(what: str) -> FloatingPointError:
    return FloatingPointError(
        f"fit: {what}; the weights from before this step are kept. Try a lower learning rate "
        "(e.g. optim.Adam(lr=1e-4)) or gradient clipping.")


def sample_weights(y: np.ndarray, class_weight: dict | None,
                   sample_weight) -> np.ndarray | None:
    """One weight per sample (or per sample and step), from ``sample_weight`` or from
    ``class_weight`` as Keras makes them: the class of a one-hot label is its argmax,
    a class missing from the dict weighs 1."""
    if class_weight is not None and sample_weight is not None:
        raise ValueError("fit: give class_weight or sample_weight, not both (as Keras)")
    if sample_weight is not None:
        weights = np.asarray(_as_array(sample_weight), dtype=np.float64)
        if weights.shape[:1] != y.shape[:1] or weights.shape != y.shape[:weights.ndim]:
            raise ValueError(f"fit: sample_weight has shape {weights.shape}; expected one "
                             f"weight per sample, shape ({len(y)},)")
        return weights
    if class_weight is None:
        return None
    labels = y
    if labels.ndim > 2:
        raise ValueError(f"fit: class_weight needs labels with one class per sample; y has "
                         f"shape {y.shape} (use sample_weight for sequences)")
    if labels.ndim == 2:
        labels = labels[:, 0] if labels.shape[1] == 1 else np.argmax(labels, axis=1)
    classes = np.round(labels).astype(int)
    return np.array([float(class_weight.get(int(c), 1.0)) for c in classes])


def _check_batch_size(what: str, batch_size: int) -> None:
    if not _whole_number(batch_size) or batch_size < 1:
        raise ValueError(f"{what}: batch_size must be a whole number >= 1, got {batch_size!r}"
                         f"{_int_hint(batch_size)}")


def _whole_number(value) -> bool:
    """An int (numpy's too), not 4.0: Keras refuses a float batch size or epoch count."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _int_hint(value) -> str:
    return f" (a {type(value).__name__}: pass an int)" if not _whole_number(value) else ""


def _described(value) -> str:
    if isinstance(value, list | tuple):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    return f"{type(value).__name__} {value!r}" if value is None else type(value).__name__


def _numeric(what: str, argument: str, array: np.ndarray) -> np.ndarray:
    """``array`` once known to hold numbers (bool counts), not strings or objects."""
    if array.dtype.kind not in "biuf":
        sample = array.ravel()[:3].tolist()
        raise TypeError(f"{what}: {argument} must hold numbers, got {array.dtype} values such "
                        f"as {sample!r}" + ("; map class names to integers first (e.g. with "
                                            "np.unique(y, return_inverse=True))"
                                            if argument == "y" else ""))
    return array


def _as_array(x, what: str = "", argument: str = "x") -> np.ndarray:
    if x is None:
        raise TypeError(f"{what}: {argument} is None; give an array of samples")
    return _numeric(what, argument, np.asarray(x.data if isinstance(x, mt.Tensor) else x))


def _model_inputs(model, what: str, x) -> np.ndarray | list[np.ndarray]:
    """One array for a one-input model; a list of arrays, one per nn.Input, otherwise."""
    expected = len(model.inputs) if model.built else 1
    several = isinstance(x, list | tuple) and x and isinstance(x[0], np.ndarray | mt.Tensor)
    if expected == 1 and not several:
        return _as_array(x, what)
    if not several or len(x) != expected:
        given = f"a list of {len(x)} arrays" if several else "one array"
        raise ValueError(f"{model.name}: {what} needs {expected} input array(s), one per "
                         f"nn.Input, got {given}")
    arrays = [_as_array(part, what) for part in x]
    return arrays[0] if expected == 1 else arrays


def _rows(x: np.ndarray | list[np.ndarray], index) -> np.ndarray | list[np.ndarray]:
    """The samples ``index`` of one input array, or of each of several."""
    return [part[index] for part in x] if isinstance(x, list) else x[index]


def _first(x: np.ndarray | list[np.ndarray]) -> np.ndarray:
    return x[0] if isinstance(x, list) else x
