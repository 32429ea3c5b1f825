"""Model files that are safe to save and to open: saves that go where the user said and
survive being killed, and files (damaged, foreign or hostile) that load as the model or
raise nn.ModelFileError naming the path, at a cost bounded by the file's size."""

from __future__ import annotations

import io
import json
import os
import pathlib
import random
import signal
import stat
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import microtensor as mt
import nn
import optim

ROOT = pathlib.Path(__file__).resolve().parents[1]


def small_model() -> nn.Model:
    inputs = nn.Input((5, 3), name="steps")
    x = nn.LSTM(4, name="memory")(inputs)
    return nn.Model(inputs, nn.Dense(1, activation="sigmoid", name="verdict")(x), name="small")


def trained(optimizer="adam") -> nn.Model:
    nn.set_seed(3)
    model = small_model()
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    x = np.random.default_rng(7).standard_normal((8, 5, 3))
    model.fit(x, (x[:, 0, :1] > 0).astype(np.float32), batch_size=4, epochs=1, shuffle=False,
              verbose=0)
    return model


@pytest.fixture
def saved(tmp_path) -> pathlib.Path:
    path = tmp_path / "model.npz"
    trained().save(path)
    return path


def entries_of(path: pathlib.Path) -> dict[str, bytes]:
    """The archive's members, name -> bytes (the .npy files as written)."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_entries(path: pathlib.Path, entries: dict[str, bytes]) -> None:
    """A well-formed zip (right checksums) holding ``entries``, as np.savez would write it."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def config_of(path: pathlib.Path) -> dict:
    return json.loads(np.load(path)["__config__"].tobytes())


def with_config(path: pathlib.Path, config: dict | bytes) -> None:
    entries = entries_of(path)
    text = config if isinstance(config, bytes) else json.dumps(config).encode()
    entries["__config__.npy"] = npy(np.frombuffer(text, dtype=np.uint8))
    write_entries(path, entries)


def assert_refused(path: pathlib.Path, message: str, what: str = "load_model") -> None:
    with pytest.raises(nn.ModelFileError, match=rf"{what}: '{path}'.*{message}"):
        if what == "load_model":
            nn.load_model(path)
        else:
            small_model().load_weights(path)


# -- saving writes to the path the user gave ---------------------------------------------------

def test_save_writes_through_a_symlink_to_its_target(tmp_path):
    (tmp_path / "models").mkdir()
    target, link = tmp_path / "models" / "real.npz", tmp_path / "latest.npz"
    small_model().save(target)
    link.symlink_to(target)
    model = trained()
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(nn.load_model(target).get_weights()[0],
                                  model.get_weights()[0])
    assert sorted(os.listdir(tmp_path)) == ["latest.npz", "models"]


def test_save_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "model.npz"
    small_model().save(path)
    path.chmod(0o640)
    small_model().save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_save_to_a_directory_is_refused_naming_it(tmp_path):
    with pytest.raises(IsADirectoryError, match=rf"save: '{tmp_path}' is a directory; give a "
                                                "file name"):
        small_model().save(tmp_path)
    assert os.listdir(tmp_path) == []


def test_save_to_a_pipe_is_refused_and_leaves_it(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"save: '.*pipe' is not a regular file"):
        small_model().save(fifo)
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and os.listdir(tmp_path) == ["pipe"]


def test_a_save_that_fails_names_the_users_path_not_a_temporary_file(tmp_path):
    path = tmp_path / "missing" / "model.npz"
    with pytest.raises(FileNotFoundError, match=r"save: can't write '.*missing/model\.npz'") \
            as caught:
        small_model().save(path)
    assert ".saving" not in str(caught.value)


def test_the_next_save_removes_what_a_killed_save_left(tmp_path):
    path = tmp_path / "model.npz"
    (tmp_path / ".model.npz.saving").write_bytes(b"PK\x03\x04 half an archive")  # a kill's leftover
    small_model().save(path)
    assert os.listdir(tmp_path) == ["model.npz"]


SAVING_FOREVER = """
import sys
import numpy as np
import nn
path, version = sys.argv[1], int(sys.argv[2])
inputs = nn.Input((512,))
model = nn.Model(inputs, nn.Dense(1024, name="wide")(inputs))
model.set_weights([np.full(w.shape, version, np.float32) for w in model.get_weights()])
print("ready", flush=True)
while True:
    model.save(path)
"""


def test_saves_killed_at_random_moments_leave_the_old_or_the_new_model(tmp_path):
    path, kills, generator = tmp_path / "model.npz", 8, random.Random(5)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    newest, leftovers = -1, 0
    for version in range(kills):
        child = subprocess.Popen([sys.executable, "-c", SAVING_FOREVER, str(path), str(version)],
                                 stdout=subprocess.PIPE, env=env)
        assert child.stdout.readline() == b"ready\n"
        time.sleep(generator.uniform(0.0, 0.06))  # a save of this 2 MB model takes ~20 ms
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        files = set(os.listdir(tmp_path))
        assert files <= {"model.npz", ".model.npz.saving"}, files
        leftovers += ".model.npz.saving" in files
        if "model.npz" in files:
            values = np.unique(nn.load_model(path).get_weights()[0])
            assert len(values) == 1 and newest <= values[0] <= version
            newest = int(values[0])
    assert newest >= 0 and leftovers > 0  # some kills did land in the middle of a save


# -- every damaged or foreign file: nn.ModelFileError naming the path --------------------------

def _patched(path: pathlib.Path, field: slice, value: bytes) -> None:
    """Overwrite a field of the first member's local header and of its central record."""
    data = bytearray(path.read_bytes())
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + field.start:local + field.stop] = value
    shift = 2  # a central record has "version made by" before the fields a local header has
    data[central + shift + field.start:central + shift + field.stop] = value
    path.write_bytes(bytes(data))


def test_a_member_with_an_unknown_compression_method_is_refused(saved):
    _patched(saved, slice(8, 10), struct.pack("<H", 99))
    assert_refused(saved, "compressed or encrypted")


def test_an_encrypted_member_is_refused(saved):
    _patched(saved, slice(6, 8), struct.pack("<H", 0x1))
    assert_refused(saved, "compressed or encrypted")


def test_a_compressed_archive_is_refused(saved):
    arrays = dict(np.load(saved))
    np.savez_compressed(saved, **arrays)
    assert_refused(saved, "compressed")


def test_a_plain_npy_file_is_refused(tmp_path):
    path = tmp_path / "weights.npz"
    np.save(path.with_suffix(""), np.zeros(3))
    os.replace(path.with_suffix(".npy"), path)
    assert_refused(path, "not a readable microtensor model file")
    assert_refused(path, "not a readable microtensor model file", what="load_weights")


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.update(version="3"), r"damaged architecture record \(format version '3'\)"),
    (lambda c: c.update(version=-5), r"format version -5"),
    (lambda c: c.update(version=True), r"format version True"),
    (lambda c: c.update(version=9), r"written by a newer microtensor"),
    (lambda c: c.update(layers=[["Dense"]]), r"damaged architecture record"),
    (lambda c: c.update(layers={"0": 1}), r"damaged architecture record"),
    (lambda c: c.update(nodes="abc"), r"damaged architecture record"),
    (lambda c: c.update(dtype="float16"), r"dtype 'float16'"),
    (lambda c: c["layers"][1].update({"class": "Popen"}), r"unknown layer class 'Popen'"),
    (lambda c: c["layers"][1]["config"].update(units=2.5), r"units must be a positive integer"),
    (lambda c: c.update(compile=[1]), r"damaged compile record"),
    (lambda c: c.update({"class": "Evil"}), r"the model built from it records other values"),
    (lambda c: c.update(name=3), r"name must be a string, got 3"),
    (lambda c: c["layers"][2]["config"].update(use_bias="no"), r"use_bias must be True or "
                                                               r"False, got 'no'"),
    (lambda c: c["layers"][1]["config"].update(return_sequences=float("inf")),
     r"return_sequences must be True or False"),
    (lambda c: c["layers"][0]["config"].update(name=[]), r"records other values"),
    (lambda c: c["nodes"][0].update(kwargs={"node": 99, "index": 0}), r"records other values"),
    (lambda c: c["nodes"][2].update(kwargs={"node": 99}), r"keywords \['node'\] its forward "
                                                          r"doesn't take"),
    (lambda c: c["nodes"][2]["inputs"].update(node=-2), r"records other values"),
    (lambda c: c["compile"]["optimizer"]["config"].update(amsgrad="yes"),
     r"optimizer settings .* are not Adam"),
    (lambda c: c["compile"]["optimizer"]["config"].update(betas=[0.9, False]),
     r"betas\[1\] must be in \[0, 1\), got False"),
])
def test_a_damaged_architecture_record_is_refused_naming_the_file(saved, change, message):
    config = config_of(saved)
    change(config)
    with_config(saved, config)
    assert_refused(saved, message)


def test_a_deeply_nested_record_is_refused(saved):
    with_config(saved, b'{"format": "microtensor-model", "version": 2, "x": '
                       + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert_refused(saved, "not a microtensor model|nested")
    config = config_of_nested = {"format": "microtensor-model", "version": 2, "layers": []}
    for _ in range(200):                   # deep, but within what json itself parses
        config_of_nested = config_of_nested.setdefault("x", {})
    with_config(saved, config)
    assert_refused(saved, "nested more than 64 deep")


def test_load_weights_names_itself_and_the_file(saved):
    entries = entries_of(saved)
    del entries["verdict/bias.npy"]
    write_entries(saved, entries)
    assert_refused(saved, r"doesn't fit small: missing \['verdict/bias'\]", what="load_weights")


# -- a small hostile file costs little ---------------------------------------------------------

def _cost(load) -> tuple[float, float]:
    """(seconds, peak MiB allocated) of ``load()``, which must raise ModelFileError."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(nn.ModelFileError):
            load()
        return time.perf_counter() - start, tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_a_header_lying_about_an_arrays_shape_is_refused_before_allocating(saved):
    entries = entries_of(saved)
    honest = entries["verdict/kernel.npy"]
    header_end = honest.index(b"\n") + 1
    lying = honest[:header_end].replace(b"(4, 1)", b"(100000, 100000)")
    entries["verdict/kernel.npy"] = lying[:header_end] + honest[header_end:]
    write_entries(saved, entries)
    seconds, peak = _cost(lambda: nn.load_model(saved))
    assert peak < 10 and seconds < 2, (seconds, peak)


def test_a_record_asking_for_huge_layers_is_refused_before_building_them(saved):
    config = config_of(saved)
    config["layers"][1]["config"]["units"] = 20_000   # an LSTM of 1.6 billion weights
    with_config(saved, config)
    seconds, peak = _cost(lambda: nn.load_model(saved))
    assert peak < 10 and seconds < 2, (seconds, peak)
    assert saved.stat().st_size < 20_000


# -- optimizer state: complete, and possible values only ----------------------------------------

def _with_array(path: pathlib.Path, key: str, value) -> None:
    entries = entries_of(path)
    if value is None:
        del entries[f"{key}.npy"]
    else:
        entries[f"{key}.npy"] = npy(np.asarray(value))
    write_entries(path, entries)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("__optimizer__/state.0.exp_avg_sq", None, r"state of parameter 0 lacks exp_avg_sq"),
    ("__optimizer__/state.2.step", None, r"parameter 2 lacks step"),
    ("__optimizer__/state.0.step", np.int64(-7), r"step must be a whole number >= 1"),
    ("__optimizer__/state.0.step", np.float64(3.5), r"step must be a whole number >= 1"),
    ("__optimizer__/state.0.exp_avg_sq", -np.ones((3, 16), np.float32), r"negative values"),
    ("__optimizer__/state.1.exp_avg", np.full((4, 16), np.nan, np.float32), r"NaN or inf"),
])
def test_optimizer_state_is_complete_and_possible_or_refused(saved, key, value, message):
    _with_array(saved, key, value)
    assert_refused(saved, rf"damaged compile record .*{message}")


def test_optimizer_state_of_a_whole_parameter_missing_is_refused(saved):
    entries = entries_of(saved)
    for name in [n for n in entries if n.startswith("__optimizer__/state.1.")]:
        del entries[name]
    write_entries(saved, entries)
    assert_refused(saved, r"lists optimizer state for parameters \[0, 1, 2, 3, 4\] but the "
                          r"file holds state for \[0, 2, 3, 4\]")


@pytest.mark.parametrize(("setting", "value"), [("lr", float("inf")), ("eps", float("nan")),
                                                ("lr", -1.0)])
def test_impossible_hyperparameters_are_refused(saved, setting, value):
    config = config_of(saved)
    config["compile"]["optimizer"]["config"][setting] = value
    with_config(saved, config)
    assert_refused(saved, rf"{setting} must be a finite number >= 0")


def test_an_optimizer_given_infinite_lr_is_refused_when_made():
    with pytest.raises(ValueError, match="lr must be a finite number >= 0, got inf"):
        optim.Adam(lr=float("inf"))


# -- fuzzing: the model, or the one error ---------------------------------------------------

def _mutations(original: bytes, entries: dict[str, bytes], generator: random.Random):
    """One damaged copy of a model file: raw bytes flipped or cut, or a member's content
    changed inside a well-formed archive (so the zip's checksums don't catch it)."""
    kind = generator.randrange(4)
    if kind == 0:                               # flip 1-3 bytes anywhere
        data = bytearray(original)
        for _ in range(generator.randint(1, 3)):
            data[generator.randrange(len(data))] ^= generator.randint(1, 255)
        return bytes(data)
    if kind == 1:                               # truncate
        return original[:generator.randrange(len(original))]
    changed = dict(entries)
    name = generator.choice(sorted(changed))
    if kind == 2:                               # flip bytes inside one member
        data = bytearray(changed[name])
        limit = len(data) if generator.random() < 0.3 else min(len(data), 128)  # headers often
        for _ in range(generator.randint(1, 2)):
            data[generator.randrange(limit)] ^= 1 << generator.randrange(8)
        changed[name] = bytes(data)
    else:                                       # drop or rename one member
        data = changed.pop(name)
        if generator.random() < 0.5:
            changed[name.replace(str(generator.randrange(10)), str(generator.randrange(10)))] = data
    return changed


def test_damaged_files_load_as_a_model_or_raise_model_file_error(saved, tmp_path):
    original, entries = saved.read_bytes(), entries_of(saved)
    damaged, generator = tmp_path / "damaged.npz", random.Random(11)
    budget = 12.0 if os.environ.get("CI") else 4.0
    outcomes = {"loaded": 0, "refused": 0}
    tracemalloc.start()
    try:
        stop, tries = time.perf_counter() + budget, 0
        while time.perf_counter() < stop:
            tries += 1
            mutated = _mutations(original, entries, generator)
            if isinstance(mutated, bytes):
                damaged.write_bytes(mutated)
            else:
                write_entries(damaged, mutated)
            tracemalloc.reset_peak()
            try:
                if tries % 4 == 0:
                    small_model().load_weights(damaged)
                else:
                    nn.load_model(damaged)
                outcomes["loaded"] += 1
            except nn.ModelFileError as err:
                assert str(damaged) in str(err)
                outcomes["refused"] += 1
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            assert peak < 20, f"try {tries}: {peak:.1f} MiB for a {damaged.stat().st_size} B file"
    finally:
        tracemalloc.stop()
    assert outcomes["refused"] > 100 and tries == sum(outcomes.values())


def test_a_model_of_mixed_dtypes_is_refused_when_saved(tmp_path):
    first = nn.Dense(2, name="wide")
    first(np.zeros((1, 3)))                 # built in float32
    mt.set_default_dtype(np.float64)
    inp = nn.Input((3,))
    model = nn.Model(inp, nn.Dense(1, name="narrow")(first(inp)))
    with pytest.raises(ValueError, match=r"save: the weights are of float32 and float64"):
        model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_a_record_larger_than_load_model_reads_is_refused_when_saved(tmp_path):
    inp = nn.Input((3,))
    x = inp
    for i in range(1200):                   # about 1.2 MB of record
        x = nn.Dropout(0.1, name=f"dropout_{i}_" + "x" * 900)(x)
    with pytest.raises(ValueError, match=r"save: the architecture record is larger"):
        nn.Model(inp, x).save(tmp_path / "m.npz")
