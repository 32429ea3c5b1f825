"""Time one training step of the seed model in microtensor, hand-written numpy and PyTorch.

The seed model: Input (50, 10) -> LSTM(128, return_sequences=True) -> LSTM(64)
-> Dense(128, relu) -> Dense(64, relu) -> Dense(1, sigmoid); Keras binary
crossentropy; Adam (torch's update, lr=1e-3). float32.

All implementations run in this one process, interleaved round by round (the
order rotates each round), and the table reports medians, so machine noise
hits them alike: compare the ratios, not the absolute times. Before timing,
a float64 run checks that every implementation computes the same loss,
gradients, Adam step and predictions from the same weights.

    python benchmarks/bench_seed_model.py            # full run
    python benchmarks/bench_seed_model.py --quick    # smoke run, few rounds
    python benchmarks/bench_seed_model.py --no-busy  # without the one-core-busy pass
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import multiprocessing
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import previous_engine
from numpy_reference import NumpySeedModel, seed_weights, split_layers
from primitives_reference import NumpyPrimitivesModel

TIMESTEPS, FEATURES = 50, 10
PREDICT_BATCH = 256
PREVIOUS_ENGINE = "a818e52"  # the engine that freed values by default, with per-node tricks
WARM_UP_CALLS = 12  # a compiled step: 2 traces, then 5 replays with each BLAS thread count
TOLERANCE = 1e-8  # relative, float64: the implementations differ only in rounding order


class MicrotensorSeedModel:
    """The seed model through microtensor's public API: nn.Model, nn.losses, optim.Adam.

    ``mode`` is the training step timed: "fit" is ``model.train_step``, the step ``fit``
    runs for each batch (it drops the values backward doesn't need, see
    microtensor/speedups.py); "loop" a PyTorch-style loop that keeps every value;
    "loop, freeing" the same loop inside ``mt.freeing_values()``. ``modules`` are the
    packages to use (those of the previous engine, see previous_engine.py), else the current.
    """

    def __init__(self, weights: list[np.ndarray], lr: float = 1e-3, timesteps: int = TIMESTEPS,
                 mode: str = "fit", modules: dict | None = None, jit_compile: bool = True):
        with previous_engine.using(modules) if modules else contextlib.nullcontext():
            import microtensor as mt
            import nn
            import optim

            self.mt, self.nn, self.mode = mt, nn, mode
            lstms, denses = split_layers(weights)
            inp = nn.Input(shape=(timesteps, weights[0].shape[0]))
            x, self.keras_names = inp, []
            for n, (_, recurrent_kernel, _) in enumerate(lstms):
                name = f"lstm{n + 1}"
                x = nn.LSTM(recurrent_kernel.shape[0], return_sequences=n < len(lstms) - 1,
                            name=name)(x)
                self.keras_names += [f"{name}/kernel", f"{name}/recurrent_kernel",
                                     f"{name}/bias"]
            for n, (kernel, _) in enumerate(denses):
                last = n == len(denses) - 1
                name = "output" if last else f"dense{n + 1}"
                x = nn.Dense(kernel.shape[1], activation="sigmoid" if last else "relu",
                             name=name)(x)
                self.keras_names += [f"{name}/kernel", f"{name}/bias"]
            self.model = nn.Model(inputs=inp, outputs=x)
            self.model.set_weights(weights)
            self.optimizer = optim.Adam(self.model.parameters(), lr=lr)
            settings = {} if modules else {"jit_compile": jit_compile}  # the previous engine
            self.model.compile(optimizer=self.optimizer, loss="binary_crossentropy", **settings)
            self.freeing = getattr(mt, "freeing_values", contextlib.nullcontext)
            if mode == "compiled":
                self.compiled_step = mt.compile(self._loop_step)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        if self.mode == "fit":
            return self.model.train_step(x, y)["loss"]
        if self.mode == "compiled":
            return self.compiled_step(x, y).item()
        return self._loop_step(x, y).item()

    def _loop_step(self, x: np.ndarray, y: np.ndarray):
        with self.freeing() if self.mode == "loop, freeing" else contextlib.nullcontext():
            loss = self._loss(x, y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss

    def _loss(self, x: np.ndarray, y: np.ndarray):
        mt = self.mt
        return self.nn.losses.binary_crossentropy(mt.Tensor(y), self.model(mt.Tensor(x)))

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        self.optimizer.zero_grad()
        loss = self._loss(x, y)
        loss.backward()
        by_name = {p.name: p for p in self.model.parameters()}
        return loss.item(), [by_name[name].grad.copy() for name in self.keras_names]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x, batch_size=PREDICT_BATCH)

    def get_weights(self) -> list[np.ndarray]:
        return self.model.get_weights()


# -- which implementations can run here ---------------------------------------------------

MAIN_ROW = "microtensor, fit's step"
COMPILED_ROW = "microtensor compiled step (mt.compile of the loop)"


def implementations(use_torch: bool, previous: str | None) -> dict[str, Callable]:
    """Row name -> factory(weights) -> model with train_step/loss_and_grads/predict/get_weights."""
    factories: dict[str, Callable] = {}
    try:
        import microtensor as mt
        import nn
        import optim
        # Touch every name the step uses, so a half-written API skips instead of crashing.
        _ = (nn.Input, nn.LSTM, nn.Dense, nn.Model, nn.losses.binary_crossentropy, optim.Adam,
             mt.set_default_dtype, mt.freeing_values)
        factories[MAIN_ROW] = MicrotensorSeedModel
        factories[COMPILED_ROW] = functools.partial(MicrotensorSeedModel, mode="compiled")
        factories["microtensor, fit's step, jit_compile=False"] = functools.partial(
            MicrotensorSeedModel, jit_compile=False)
        factories["microtensor, loop keeping every value"] = functools.partial(
            MicrotensorSeedModel, mode="loop")
        factories["microtensor, loop in freeing_values()"] = functools.partial(
            MicrotensorSeedModel, mode="loop, freeing")
    except (ImportError, AttributeError) as err:
        print(f"skipping microtensor rows: {type(err).__name__}: {err}")
    if previous:
        modules = previous_engine.load(previous)
        factories[f"previous engine ({previous}), fit's step"] = functools.partial(
            MicrotensorSeedModel, modules=modules)
        factories[f"previous engine ({previous}), loop"] = functools.partial(
            MicrotensorSeedModel, modules=modules, mode="loop")
    factories["numpy reference (hand-written BPTT)"] = NumpySeedModel
    factories["numpy, microtensor's ops, no graph"] = NumpyPrimitivesModel
    if use_torch:
        try:
            from torch_reference import TorchFusedModel, TorchPrimitiveModel
            factories["torch autograd, same primitives"] = TorchPrimitiveModel
            factories["torch nn.LSTM (fused)"] = TorchFusedModel
        except ImportError as err:
            print(f"skipping torch rows: {err}")
    return factories


def set_microtensor_dtype(dtype, factories: dict[str, Callable]) -> None:
    """Tensors that microtensor makes from plain arrays (weights, mt.Tensor(x)) take this dtype,
    in the current engine and in the previous one."""
    previous = [getattr(f, "keywords", {}).get("modules") or {} for f in factories.values()]
    for modules in (sys.modules, *previous):
        if "microtensor" in modules:
            modules["microtensor"].set_default_dtype(dtype)


def print_header(use_torch: bool) -> None:
    import threadpoolctl

    print(f"# seed model training step: {platform.python_implementation()} "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, {cpu_name()}")
    print(f"numpy {np.__version__}; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; {load_average()}")
    for lib in threadpoolctl.threadpool_info():
        print(f"  {lib['user_api']}: {lib['internal_api']} {lib.get('version')} "
              f"{lib.get('architecture', '')}, {lib['num_threads']} threads")
    if use_torch:
        try:
            import torch
            print(f"torch {torch.__version__}, {torch.get_num_threads()} threads (default)")
        except ImportError:
            pass


def load_average() -> str:
    """Other processes on the machine skew every row; say how busy it was."""
    try:
        return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# -- correctness first ------------------------------------------------------------------

def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(np.asarray(got) - want).max() / max(np.abs(want).max(), 1e-300))


def check_agreement(factories: dict[str, Callable], batch: int = 4) -> None:
    """float64: same loss, gradients, Adam step and predictions as the numpy reference, or exit."""
    set_microtensor_dtype(np.float64, factories)
    try:
        rng = np.random.default_rng(0)
        weights = seed_weights(rng, FEATURES, dtype=np.float64)
        x = rng.standard_normal((batch, TIMESTEPS, FEATURES))
        y = rng.integers(0, 2, size=(batch, 1)).astype(np.float64)
        results = {}
        for name, factory in factories.items():
            model = factory(weights)
            loss, grads = model.loss_and_grads(x, y)
            model.train_step(x, y)
            results[name] = (loss, grads, model.get_weights(), model.predict(x))
    finally:
        set_microtensor_dtype(np.float32, factories)

    reference_name = next(n for n in results if n.startswith("numpy ref"))
    ref_loss, ref_grads, ref_weights, ref_pred = results.pop(reference_name)
    print(f"\nfloat64 agreement with the {reference_name} (batch {batch}, loss {ref_loss:.6f}):")
    failures = []
    for name, (loss, grads, new_weights, pred) in results.items():
        errors = {"loss": relative_error(loss, ref_loss)}
        for k, (g, want) in enumerate(zip(grads, ref_grads, strict=True)):
            errors[f"gradient of weight {k} {want.shape}"] = relative_error(g, want)
        for k, (w, want) in enumerate(zip(new_weights, ref_weights, strict=True)):
            errors[f"weight {k} after one Adam step"] = relative_error(w, want)
        errors["predictions"] = relative_error(pred, ref_pred)
        worst = max(errors, key=errors.get)
        print(f"  {name}: worst relative difference {errors[worst]:.1e} ({worst})")
        failures += [f"{name}: {what} differs by {err:.2e} (relative)"
                     for what, err in errors.items() if not err <= TOLERANCE]
    if failures:
        sys.exit(f"implementations disagree (tolerance {TOLERANCE:.0e}):\n  "
                 + "\n  ".join(failures))
    print(f"  all agree within {TOLERANCE:.0e}" if results else "  (nothing to compare with)")


# -- timing -------------------------------------------------------------------------------

def make_data(batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, TIMESTEPS, FEATURES)).astype(np.float32)
    y = rng.integers(0, 2, size=(batch, 1)).astype(np.float32)
    return x, y


def time_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def measure(models: dict, batch_sizes: list[int], rounds: int,
            pause: float) -> dict[tuple[str, str], list]:
    """ms per round for each (implementation, column); one sample of each per round, interleaved.

    Each timed call waits ``pause`` seconds first. OpenBLAS's idle worker threads keep
    spinning for a while after numpy's last matmul (and torch's OpenMP threads after
    torch's), so without the pause the next implementation shares the cores with the
    previous one's spinning threads: measured up to 3x slower on 2 cores.
    """
    data = {b: make_data(b, seed=b) for b in batch_sizes}
    x_predict = make_data(PREDICT_BATCH, seed=1)[0]
    tasks = []  # (name, column, thunk)
    for name, model in models.items():
        for b in batch_sizes:
            tasks.append((name, f"step B={b}", lambda m=model, d=data[b]: m.train_step(*d)))
        tasks.append((name, f"predict B={PREDICT_BATCH}", lambda m=model: m.predict(x_predict)))
    for _, _, thunk in tasks:  # warm-up: first calls pay for imports, allocations, Adam state;
        for _ in range(WARM_UP_CALLS):  # a compiled step traces, then times both thread counts
            thunk()
    samples: dict[tuple[str, str], list[float]] = {(n, c): [] for n, c, _ in tasks}
    per_model = len(tasks) // len(models)
    for r in range(rounds):  # rotate which implementation goes first
        shift = (r % len(models)) * per_model
        for name, column, thunk in tasks[shift:] + tasks[:shift]:
            time.sleep(pause)
            samples[name, column].append(time_ms(thunk))
    return samples


def _spin(parent: int) -> None:
    """Keep one core busy until told to stop, or until the benchmark is gone (killed)."""
    while os.getppid() == parent:
        for _ in range(100_000):
            pass


@contextlib.contextmanager
def one_core_busy():
    """Another process keeps one core busy meanwhile (a pure-Python loop)."""
    spinner = multiprocessing.Process(target=_spin, args=(os.getpid(),), daemon=True)
    spinner.start()
    try:
        time.sleep(0.5)
        yield
    finally:
        spinner.terminate()
        spinner.join()


def peak_step_memory(model, x: np.ndarray, y: np.ndarray) -> float:
    """Peak MB newly allocated (as tracemalloc sees it) during one training step."""
    for _ in range(3):  # the optimizer state exists, a compiled step replays
        model.train_step(x, y)
    gc.collect()
    tracemalloc.start()
    model.train_step(x, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


# -- report -------------------------------------------------------------------------------

def paired_ratio(samples: dict, name: str, base: str, column: str) -> float:
    """Median over rounds of name's time / base's time in the same round (robust to load drift)."""
    return statistics.median(a / b for a, b in zip(samples[name, column], samples[base, column],
                                                   strict=True))


def print_table(samples: dict, names: list[str], columns: list[str]) -> None:
    base = MAIN_ROW if MAIN_ROW in names else names[0]
    print(f"\n| implementation | {' | '.join(c + ' (ms)' for c in columns)} | "
          f"time ÷ {base} ({' / '.join(columns)}) |")
    print("|---" * (len(columns) + 2) + "|")
    for name in names:
        cells = [f"{statistics.median(samples[name, c]):.1f}" for c in columns]
        ratios = [f"{paired_ratio(samples, name, base, c):.2f}" for c in columns]
        print(f"| {name} | {' | '.join(cells)} | {' / '.join(ratios)} |")
    print("\n(times: medians over rounds; ratios: medians of the per-round ratios)")
    if base == MAIN_ROW:
        for other in (n for n in names if n.startswith(("numpy ref", "torch autograd",
                                                         "previous"))):
            ratios = ", ".join(f"{paired_ratio(samples, base, other, c):.2f}× ({c})"
                               for c in columns)
            print(f"{base} ÷ {other}: {ratios}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--batch-sizes", default="32,256", help="comma-separated (default 32,256)")
    parser.add_argument("--quick", action="store_true", help="3 rounds: a smoke run")
    parser.add_argument("--pause", type=float, default=0.2,
                        help="seconds of idle before each timed call (default 0.2; see measure)")
    parser.add_argument("--no-torch", action="store_true", help="leave out the torch rows")
    parser.add_argument("--busy", action=argparse.BooleanOptionalAction, default=True,
                        help="time everything again with one core kept busy (default: on)")
    parser.add_argument("--previous", default=PREVIOUS_ENGINE,
                        help=f"commit of the engine to compare with (default {PREVIOUS_ENGINE},"
                             " the last one before every value was kept); '' for none")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    print_header(not args.no_torch)
    factories = implementations(not args.no_torch, args.previous or None)
    check_agreement(factories)

    weights = seed_weights(np.random.default_rng(1), FEATURES, dtype=np.float32)
    models = {name: factory(weights) for name, factory in factories.items()}
    print(f"\ntiming: float32, {rounds} rounds, {args.pause} s pause before each timed call; "
          f"T={TIMESTEPS}, features={FEATURES}")
    samples = measure(models, batch_sizes, rounds, args.pause)
    columns = [f"step B={b}" for b in batch_sizes] + [f"predict B={PREDICT_BATCH}"]
    print_table(samples, list(models), columns)

    print(f"({load_average()} after timing)")

    if args.busy:
        with one_core_busy():
            busy = measure(models, batch_sizes, rounds, args.pause)
        print("\nthe same, with one core kept busy by another process (a learner's machine "
              "is rarely idle):")
        print_table(busy, list(models), columns)
        print("\nbusy ÷ idle (medians):")
        for name in models:
            ratios = " / ".join(
                f"{statistics.median(busy[name, c]) / statistics.median(samples[name, c]):.2f}"
                for c in columns)
            print(f"  {name}: {ratios}")

    x, y = make_data(PREDICT_BATCH, seed=2)
    print(f"\npeak memory of one training step at B={PREDICT_BATCH} (tracemalloc; "
          "torch's allocations are invisible to it, so no torch rows):")
    for name, model in models.items():
        if not name.startswith("torch"):
            print(f"  {name}: {peak_step_memory(model, x, y):.1f} MB")


if __name__ == "__main__":
    main()
