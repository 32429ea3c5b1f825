"""model.save / nn.load_model / model.load_weights: exact round trips, atomic writes,
refusing pickled or damaged files, and failed loads that change nothing."""

from __future__ import annotations

import json
import os
import pathlib
import pickle

import numpy as np
import pytest

import microtensor as mt
import nn

DTYPES = [np.float32, np.float64]


def functional_model() -> nn.Model:
    inputs = nn.Input((6, 3), name="tokens")
    x = nn.LSTM(5, return_sequences=True, name="encoder")(inputs)
    x = nn.LSTM(4, name="reader")(x)
    outputs = nn.Dense(1, activation="sigmoid", name="verdict")(x)
    return nn.Model(inputs=inputs, outputs=outputs, name="functional_model")


def sequential_model() -> nn.Model:
    model = nn.Sequential([nn.LSTM(4, name="lstm_seq"), nn.Dense(3, activation="softmax",
                                                                 name="classes")], name="stack")
    model.build((None, 6, 3))                 # built from a shape, without nn.Input
    return model


def encoder_decoder_model() -> nn.Model:
    """Two inputs, return_state, and initial_state passed as a keyword: the config's kwargs."""
    source, target = nn.Input((6, 3), name="source"), nn.Input((4, 2), name="target")
    _, h, c = nn.LSTM(5, return_state=True, name="enc")(source)
    decoded = nn.LSTM(5, return_sequences=True, name="dec")(target, initial_state=[h, c])
    outputs = nn.Dense(2, name="logits")(decoded)
    return nn.Model(inputs=[source, target], outputs=outputs, name="seq2seq")


MODELS = {"functional": functional_model, "sequential": sequential_model,
          "encoder_decoder": encoder_decoder_model}


def sample_input(model: nn.Model, seed: int = 0):
    generator = np.random.default_rng(seed)
    shapes = [(5, 6, 3), (5, 4, 2)] if isinstance(model.input, list) else [(5, 6, 3)]
    arrays = [generator.standard_normal(s).astype(mt.get_default_dtype()) for s in shapes]
    return arrays if isinstance(model.input, list) else arrays[0]


def outputs_of(model: nn.Model, x) -> np.ndarray:
    with mt.no_grad():
        return model(x).data


def summary_text(model: nn.Model) -> list[str]:
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    return lines


def scrambled(model: nn.Model, seed: int = 1) -> nn.Model:
    """Give every weight new random values, so a loader that ignored the file would show."""
    generator = np.random.default_rng(seed)
    model.set_weights([generator.standard_normal(w.shape) for w in model.get_weights()])
    return model


def assert_same_weights(actual: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype == e.dtype
        np.testing.assert_array_equal(a, e)


# -- round trips --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind", MODELS)
def test_save_and_load_give_the_same_model(kind, dtype, tmp_path):
    mt.set_default_dtype(dtype)
    nn.set_seed(0)
    model = scrambled(MODELS[kind]())
    x = sample_input(model)
    path = tmp_path / "model.npz"
    model.save(path)

    mt.set_default_dtype(np.float32)          # loading must not depend on the current default
    loaded = nn.load_model(path)
    assert type(loaded) is type(model) and loaded.name == model.name
    assert [(type(layer), layer.name) for layer in loaded.layers] == \
           [(type(layer), layer.name) for layer in model.layers]
    assert summary_text(loaded) == summary_text(model)
    assert [name for name, _ in loaded.named_parameters()] == \
           [name for name, _ in model.named_parameters()]
    assert_same_weights(loaded.get_weights(), model.get_weights())
    assert all(w.dtype == dtype for w in loaded.get_weights())
    np.testing.assert_array_equal(outputs_of(loaded, x), outputs_of(model, x))


def test_a_loaded_model_can_be_compiled_and_trained(tmp_path):
    nn.set_seed(0)
    model = functional_model()
    model.save(tmp_path / "m.npz")
    loaded = nn.load_model(tmp_path / "m.npz")
    loaded.compile(optimizer="adam", loss="binary_crossentropy")
    x = sample_input(loaded)
    before = loaded.get_weights()
    loaded.fit(x, np.array([0, 1, 0, 1, 1.0]), verbose=0)
    assert not np.array_equal(loaded.get_weights()[0], before[0])


def test_save_needs_a_built_model(tmp_path):
    model = nn.Sequential([nn.Dense(2)])
    with pytest.raises(RuntimeError, match=r"built"):
        model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_a_saved_file_gets_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        nn.set_seed(0)
        sequential_model().save(tmp_path / "m.npz")
    finally:
        os.umask(umask)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o644


# -- atomic writes ------------------------------------------------------------------------

def _crash_midway(file, **arrays):
    file.write(b"PK\x03\x04 half a zip archive")
    raise OSError("No space left on device")


def test_a_crash_mid_save_leaves_the_existing_file_untouched(tmp_path, monkeypatch):
    nn.set_seed(0)
    old = functional_model()
    path = tmp_path / "model.npz"
    old.save(path)
    contents = path.read_bytes()

    monkeypatch.setattr(np, "savez", _crash_midway)
    newer = scrambled(functional_model())
    with pytest.raises(OSError, match=r"No space left"):
        newer.save(path)
    monkeypatch.undo()

    assert path.read_bytes() == contents
    assert os.listdir(tmp_path) == ["model.npz"]          # no temporary file left behind
    x = sample_input(old)
    np.testing.assert_array_equal(outputs_of(nn.load_model(path), x), outputs_of(old, x))


def test_a_crash_while_saving_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    nn.set_seed(0)
    model = sequential_model()
    monkeypatch.setattr(np, "savez", _crash_midway)
    with pytest.raises(OSError):
        model.save(tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []


# -- files that must be refused ---------------------------------------------------------------

class _CreatesFile:
    """A pickled object that, when unpickled, creates a file: stands in for arbitrary code."""

    def __init__(self, path: pathlib.Path):
        self.path = path

    def __reduce__(self):
        return pathlib.Path.touch, (self.path,)


@pytest.fixture
def saved(tmp_path) -> pathlib.Path:
    nn.set_seed(0)
    path = tmp_path / "model.npz"
    functional_model().save(path)
    return path


def test_a_file_carrying_a_pickled_object_is_refused_and_runs_no_code(saved, tmp_path):
    # The payload works: unpickling it does create the marker.
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_CreatesFile(probe)))
    assert probe.exists()

    marker = tmp_path / "code_ran"
    with np.load(saved) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["verdict/bias"] = np.array([_CreatesFile(marker)], dtype=object)
    evil = tmp_path / "evil.npz"
    np.savez(evil, **arrays)

    with pytest.raises(ValueError, match=r"(?i)pickle"):
        nn.load_model(evil)
    model = functional_model()
    with pytest.raises(ValueError, match=r"(?i)pickle"):
        model.load_weights(evil)
    assert not marker.exists()


def test_a_plain_pickle_file_is_refused_and_runs_no_code(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "model.npz"
    path.write_bytes(pickle.dumps(_CreatesFile(marker)))
    with pytest.raises(ValueError, match=r"not a readable microtensor model"):
        nn.load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.01])
def test_a_truncated_file_gives_a_clear_error(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match=r"not a readable microtensor model file"):
        nn.load_model(saved)


def test_a_foreign_npz_gives_a_clear_error(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.arange(6.0), bias=np.zeros(2))
    with pytest.raises(ValueError, match=r"not a microtensor model"):
        nn.load_model(path)


@pytest.mark.parametrize("config", [b"not json", json.dumps({"format": "keras"}).encode(),
                                    json.dumps([1, 2]).encode()])
def test_an_npz_with_a_wrong_architecture_record_gives_a_clear_error(tmp_path, config):
    path = tmp_path / "odd.npz"
    np.savez(path, __config__=np.frombuffer(config, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"not a microtensor model"):
        nn.load_model(path)


def test_a_damaged_architecture_record_gives_a_clear_error(saved):
    with np.load(saved) as archive:
        arrays = {key: archive[key] for key in archive.files}
    config = json.loads(arrays["__config__"].tobytes())
    del config["layers"][1]["config"]
    arrays["__config__"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    np.savez(saved, **arrays)
    with pytest.raises(ValueError, match=r"damaged architecture record"):
        nn.load_model(saved)


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        nn.load_model(tmp_path / "nowhere.npz")


# -- load_weights --------------------------------------------------------------------------------

def test_load_weights_copies_every_weight(saved):
    source = nn.load_model(saved)
    target = scrambled(functional_model())
    target.load_weights(saved)
    assert_same_weights(target.get_weights(), source.get_weights())


def _model_with(dense_units: int, dense_name: str = "verdict", extra: bool = False) -> nn.Model:
    inputs = nn.Input((6, 3), name="tokens")
    x = nn.LSTM(5, return_sequences=True, name="encoder")(inputs)
    x = nn.LSTM(4, name="reader")(x)
    if extra:
        x = nn.Dense(4, name="extra")(x)
    return nn.Model(inputs=inputs, outputs=nn.Dense(dense_units, name=dense_name)(x))


@pytest.mark.parametrize("other, error, message", [
    (lambda: _model_with(2), nn.ModelFileError,
     r"load_weights: .* verdict/kernel has shape \(4, 1\).*\(4, 2\)"),
    (lambda: _model_with(1, "other", extra=True), nn.ModelFileError,
     r"load_weights: .* missing \['verdict/bias', 'verdict/kernel'\].*nn.reset_names\(\)"),
], ids=["wrong shapes", "missing names"])
def test_a_failed_load_weights_leaves_the_model_unchanged(saved, tmp_path, other, error, message):
    # The file's LSTM weights fit and come first, so a loader that copied as it went
    # would have changed them before reaching the Dense layer that does not fit.
    path = tmp_path / "other.npz"
    scrambled(other(), seed=5).save(path)
    model = nn.load_model(saved)
    before = model.get_weights()
    with pytest.raises(error, match=message):
        model.load_weights(path)
    assert_same_weights(model.get_weights(), before)


def test_the_same_model_built_again_loads_by_structure_as_keras(tmp_path):
    # Built twice in one process, the layers get other default names (dense_1 ...); Keras's
    # load_weights matches the layers by their order, and so does ours.
    def build():
        inputs = nn.Input((6, 3))
        return nn.Model(inputs, nn.Dense(1)(nn.LSTM(4)(inputs)))

    first = scrambled(build(), seed=2)
    first.save(tmp_path / "first.npz")
    second = build()
    assert [n for n, _ in second.named_parameters()] != [n for n, _ in first.named_parameters()]
    second.load_weights(tmp_path / "first.npz")
    assert_same_weights(second.get_weights(), first.get_weights())


def test_a_custom_activation_warns_at_save_and_load_weights_still_works(tmp_path):
    def doubled_tanh(x):
        return mt.tanh(x) * 2

    def build():
        inp = nn.Input((3,))
        return nn.Model(inp, nn.Dense(2, activation=doubled_tanh, name="dense")(inp))

    model = build()
    with pytest.warns(UserWarning, match="activation doubled_tanh is your own function.*"
                                         "model.load_weights"):
        model.save(tmp_path / "custom.npz")
    with pytest.raises(ValueError, match=r"load_model: .*custom.npz.*unknown activation "
                                         r"'doubled_tanh'.*model.load_weights"):
        nn.load_model(tmp_path / "custom.npz")
    rebuilt = build()
    rebuilt.load_weights(tmp_path / "custom.npz")
    x = np.ones((4, 3), np.float32)
    np.testing.assert_array_equal(rebuilt.predict(x), model.predict(x))
