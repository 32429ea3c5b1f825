"""optim: every optimizer against its torch.optim twin, state round trips, clipping, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import microtensor as mt
import optim

SHAPES = [(3, 4), (5,), ()]
STEPS = 100

# (our optimizer, torch.optim class name, hyperparameters shared by both)
CASES = [
    (optim.Adam, "Adam", {}),
    (optim.Adam, "Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    (optim.Adam, "Adam", {"lr": 0.01, "weight_decay": 0.1}),
    (optim.Adam, "Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05}),
    (optim.AdamW, "AdamW", {}),
    (optim.AdamW, "AdamW", {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True}),
    (optim.SGD, "SGD", {"lr": 0.01}),    # our default (Keras's); torch's is now 1e-3
    (optim.SGD, "SGD", {"lr": 0.05, "momentum": 0.9}),
    (optim.SGD, "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    (optim.SGD, "SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    (optim.RMSprop, "RMSprop", {}),
    (optim.RMSprop, "RMSprop", {"lr": 0.001, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.1}),
    (optim.RMSprop, "RMSprop", {"lr": 0.001, "momentum": 0.9}),
    (optim.RMSprop, "RMSprop", {"lr": 0.001, "centered": True}),
    (optim.RMSprop, "RMSprop", {"lr": 0.001, "centered": True, "momentum": 0.5,
                                "weight_decay": 0.01}),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in hyper.items()) or 'defaults'}"
       for _, name, hyper in CASES]


def make_params(dtype=np.float64, seed=0) -> list[mt.Tensor]:
    rng = np.random.default_rng(seed)
    return [mt.Tensor(rng.standard_normal(s), requires_grad=True, dtype=dtype) for s in SHAPES]


def gradient_sequence(steps: int, seed=1, skip_some=False) -> list[list[np.ndarray | None]]:
    """Random float64 gradients per step; with ``skip_some`` parameter 1 sometimes has none
    and parameter 2 never has one."""
    rng = np.random.default_rng(seed)
    sequence = []
    for t in range(steps):
        grads = [rng.standard_normal(s) for s in SHAPES]
        if skip_some:
            grads[1] = None if t % 3 == 0 else grads[1]
            grads[2] = None
        sequence.append(grads)
    return sequence


def run_ours(opt, params, grads_per_step) -> None:
    for grads in grads_per_step:
        for p, g in zip(params, grads, strict=True):
            p.grad = None if g is None else g.astype(p.dtype)
        opt.step()


def run_torch(torch, name, hyper, grads_per_step, lr_schedule=None) -> list[np.ndarray]:
    params = [torch.tensor(p.data, requires_grad=True) for p in make_params()]
    opt = getattr(torch.optim, name)(params, **hyper)
    for t, grads in enumerate(grads_per_step):
        if lr_schedule is not None:
            opt.param_groups[0]["lr"] = lr_schedule(t)
        for p, g in zip(params, grads, strict=True):
            p.grad = None if g is None else torch.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize(("cls", "torch_name", "hyper"), CASES, ids=IDS)
def test_matches_torch_over_100_steps(torch, cls, torch_name, hyper):
    grads = gradient_sequence(STEPS)
    params = make_params()
    run_ours(cls(params, **hyper), params, grads)
    expected = run_torch(torch, torch_name, hyper, grads)
    for ours, start, theirs in zip(params, make_params(), expected, strict=True):
        assert np.all(ours.data != start.data)
        np.testing.assert_allclose(ours.data, theirs, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(("cls", "torch_name", "hyper"), CASES, ids=IDS)
def test_skips_parameters_without_grad_like_torch(torch, cls, torch_name, hyper):
    grads = gradient_sequence(STEPS, skip_some=True)
    params = make_params()
    opt = cls(params, **hyper)
    run_ours(opt, params, grads)
    expected = run_torch(torch, torch_name, hyper, grads)
    for ours, theirs in zip(params, expected, strict=True):
        np.testing.assert_allclose(ours.data, theirs, rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(params[2].data, make_params()[2].data)
    assert 2 not in opt.state or not opt.state[2]


@pytest.mark.parametrize("cls", [optim.Adam, optim.SGD, optim.RMSprop])
def test_lr_can_change_between_steps(torch, cls):
    name = cls.__name__
    hyper = {"momentum": 0.9} if cls is not optim.Adam else {}
    grads = gradient_sequence(30)
    params = make_params()
    opt = cls(params, **hyper)
    for t, step_grads in enumerate(grads):
        opt.lr = 0.01 / (1 + t)
        run_ours(opt, params, [step_grads])
    expected = run_torch(torch, name, hyper, grads, lr_schedule=lambda t: 0.01 / (1 + t))
    for ours, theirs in zip(params, expected, strict=True):
        np.testing.assert_allclose(ours.data, theirs, rtol=1e-10, atol=1e-13)


# -- state_dict ---------------------------------------------------------------

@pytest.mark.parametrize(("cls", "torch_name", "hyper"), CASES, ids=IDS)
def test_state_dict_round_trip_through_npz_and_json(tmp_path, cls, torch_name, hyper):
    grads = gradient_sequence(STEPS, skip_some=True)
    straight = make_params()
    run_ours(cls(straight, **hyper), straight, grads)

    first = make_params()
    opt = cls(first, **hyper)
    run_ours(opt, first, grads[:50])
    saved = opt.state_dict()
    arrays = {k: v for k, v in saved.items() if isinstance(v, np.ndarray)}
    plain = {k: v for k, v in saved.items() if not isinstance(v, np.ndarray)}
    assert all(isinstance(v, int | float | list) for v in plain.values()), plain
    np.savez(tmp_path / "state.npz", **arrays)
    (tmp_path / "state.json").write_text(json.dumps(plain))

    with np.load(tmp_path / "state.npz", allow_pickle=False) as npz:
        restored = {**dict(npz), **json.loads((tmp_path / "state.json").read_text())}
    resumed = [mt.Tensor(p.data.copy(), requires_grad=True, dtype=np.float64) for p in first]
    fresh = cls()                                # default hyperparameters, params attached later
    fresh.attach(resumed)
    fresh.load_state_dict(restored)
    assert fresh.hyperparameters == opt.hyperparameters
    run_ours(fresh, resumed, grads[50:])
    for a, b in zip(resumed, straight, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_is_a_snapshot_and_holds_hyperparameters():
    params = make_params()
    opt = optim.Adam(params, lr=0.02, betas=(0.8, 0.9))
    run_ours(opt, params, gradient_sequence(3))
    saved = opt.state_dict()
    assert saved["lr"] == 0.02 and saved["betas"] == [0.8, 0.9] and saved["state.0.step"] == 3
    before = saved["state.0.exp_avg"].copy()
    run_ours(opt, params, gradient_sequence(2, seed=5))
    np.testing.assert_array_equal(saved["state.0.exp_avg"], before)


def test_load_state_dict_before_attach_then_attach():
    params = make_params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    run_ours(opt, params, gradient_sequence(4))
    later = optim.SGD()
    later.load_state_dict(opt.state_dict())
    later.attach(params)
    np.testing.assert_array_equal(later.state[0]["momentum_buffer"],
                                  opt.state[0]["momentum_buffer"])
    assert later.momentum == 0.9

    as_float32 = optim.SGD()
    as_float32.load_state_dict(opt.state_dict())
    as_float32.attach(make_params(np.float32))
    assert as_float32.state[0]["momentum_buffer"].dtype == np.float32


def test_bad_state_dict_raises_and_changes_nothing():
    params = make_params()
    adam = optim.Adam(params, lr=0.05)
    run_ours(adam, params, gradient_sequence(2))
    before = adam.state_dict()

    sgd = optim.SGD(params, momentum=0.9)
    run_ours(sgd, params, gradient_sequence(2))
    with pytest.raises(ValueError, match="Adam.*momentum"):
        adam.load_state_dict(sgd.state_dict())

    wrong_shape = {**before, "lr": 0.5, "state.0.exp_avg": np.zeros((4, 3))}
    with pytest.raises(ValueError, match=r"exp_avg.*\(4, 3\).*\(3, 4\)"):
        adam.load_state_dict(wrong_shape)
    with pytest.raises(ValueError, match="Adam: lr must be"):
        adam.load_state_dict({**before, "lr": -1.0})
    assert adam.lr == 0.05
    after = adam.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value)


def test_attach_checks_state_fits():
    opt = optim.Adam()
    opt.load_state_dict({"state.0.exp_avg": np.zeros(3), "state.0.exp_avg_sq": np.zeros(3),
                         "state.0.step": 1})
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        opt.attach([mt.Tensor(np.zeros(2), requires_grad=True)])
    assert opt.params is None


# -- dtype, in place, end to end ------------------------------------------------

@pytest.mark.parametrize(("cls", "torch_name", "hyper"), CASES, ids=IDS)
def test_float32_stays_float32_and_updates_in_place(cls, torch_name, hyper):
    params = make_params(np.float32)
    arrays = [p.data for p in params]
    opt = cls(params, **hyper)
    run_ours(opt, params, gradient_sequence(5))
    for p, array in zip(params, arrays, strict=True):
        assert p.data is array and p.data.dtype == np.float32
    for buffers in opt.state.values():
        for value in buffers.values():
            assert not isinstance(value, np.ndarray) or value.dtype == np.float32
    # and they follow the float64 trajectory to float32 accuracy
    reference = make_params()
    run_ours(cls(reference, **hyper), reference, gradient_sequence(5))
    for p, r in zip(params, reference, strict=True):
        np.testing.assert_allclose(p.data, r.data, rtol=1e-4, atol=1e-5)


def test_adam_minimises_a_least_squares_problem():
    rng = np.random.default_rng(3)
    a_data, best = rng.standard_normal((20, 5)), rng.standard_normal(5)
    b_data = a_data @ best                     # so the minimum is 0, at x = best
    a, b = mt.Tensor(a_data, dtype=np.float64), mt.Tensor(b_data, dtype=np.float64)
    x = mt.Tensor(np.zeros(5), requires_grad=True, dtype=np.float64)
    opt = optim.Adam([x], lr=0.05)

    def loss() -> mt.Tensor:
        return ((a @ x - b) ** 2).mean()

    start = loss().item()
    for _ in range(1000):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert x.grad is not None
    opt.zero_grad()
    assert x.grad is None
    assert loss().item() < 1e-8 * start
    np.testing.assert_allclose(x.data, best, atol=1e-4)


# -- clipping -------------------------------------------------------------------

@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(torch, norm_type, max_norm):
    grads = gradient_sequence(1, skip_some=True)[0]
    grads[1] = np.full(SHAPES[1], 2.0)
    params = make_params()
    for p, g in zip(params, grads, strict=True):
        p.grad = None if g is None else g.copy()
    theirs = [torch.tensor(p.data, requires_grad=True) for p in params]
    for p, g in zip(theirs, grads, strict=True):
        p.grad = None if g is None else torch.tensor(g)

    total = optim.clip_grad_norm(params, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(expected.item(), rel=1e-12)
    for ours, p in zip(params, theirs, strict=True):
        if p.grad is None:
            assert ours.grad is None
        else:
            np.testing.assert_allclose(ours.grad, p.grad.numpy(), rtol=1e-12)
    clipped = total > max_norm
    assert clipped == (not np.array_equal(params[0].grad, grads[0]))


def test_clip_grad_value_matches_torch(torch):
    params = make_params()
    grads = gradient_sequence(1)[0]
    theirs = [torch.tensor(p.data, requires_grad=True) for p in params]
    for p, t, g in zip(params, theirs, grads, strict=True):
        p.grad, t.grad = g.copy(), torch.tensor(g)
    optim.clip_grad_value(params, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, t in zip(params, theirs, strict=True):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())
    assert np.abs(params[0].grad).max() == 0.7


def test_clip_grad_norm_float32_and_single_tensor():
    p = mt.Tensor(np.zeros(4), requires_grad=True)
    p.grad = np.array([3.0, 4.0, 0.0, 0.0], dtype=np.float32)
    assert optim.clip_grad_norm(p, 1.0) == pytest.approx(5.0)
    assert p.grad.dtype == np.float32
    np.testing.assert_allclose(p.grad, [0.6, 0.8, 0, 0], rtol=1e-5)
    assert optim.clip_grad_norm([mt.Tensor(np.zeros(2), requires_grad=True)], 1.0) == 0.0


# -- construction, lookup and errors ----------------------------------------------

@pytest.mark.parametrize(("name", "cls"), [("adam", optim.Adam), ("Adam", optim.Adam),
                                           ("adamw", optim.AdamW), ("sgd", optim.SGD),
                                           ("RMSprop", optim.RMSprop)])
def test_get_by_name(name, cls):
    opt = optim.get(name)
    assert type(opt) is cls and opt.params is None
    assert optim.get(opt) is opt


def test_get_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="'adamax'.*adam, adamw, rmsprop, sgd"):
        optim.get("adamax")


def test_defaults_are_torchs():
    assert optim.Adam().hyperparameters == {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                                            "weight_decay": 0.0, "amsgrad": False}
    assert optim.AdamW().weight_decay == 1e-2
    assert optim.RMSprop().hyperparameters == {"lr": 0.01, "alpha": 0.99, "eps": 1e-8,
                                               "weight_decay": 0.0, "momentum": 0.0,
                                               "centered": False}
    assert optim.SGD().lr == 0.01      # API.md and Keras; torch 2.x defaults to 1e-3


@pytest.mark.parametrize(("make", "message"), [
    (lambda: optim.Adam(lr=-0.1), r"Adam: lr must be .*-0\.1"),
    (lambda: optim.AdamW(betas=(0.9, 1.0)), r"AdamW: betas\[1\] must be in \[0, 1\), got 1\.0"),
    (lambda: optim.Adam(betas=(-0.5, 0.9)), r"Adam: betas\[0\].*-0\.5"),
    (lambda: optim.SGD(nesterov=True), r"SGD: nesterov=True needs momentum > 0.*momentum=0\.0"),
    (lambda: optim.SGD(momentum=0.9, nesterov=True, dampening=0.1), "dampening=0.1"),
    (lambda: optim.RMSprop(alpha=-1.0), r"RMSprop: alpha must be a finite number >= 0, got -1\.0"),
    (lambda: optim.RMSprop(eps=-1e-8), "RMSprop: eps"),
])
def test_bad_hyperparameters_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_setting_a_negative_lr_later_raises():
    opt = optim.SGD(make_params())
    with pytest.raises(ValueError, match="SGD: lr"):
        opt.lr = -1e-3
    assert opt.lr == 0.01


def test_step_without_params_says_how_to_attach():
    opt = optim.Adam(lr=0.1)
    with pytest.raises(RuntimeError, match=r"Adam\.step\(\): no parameters.*attach"):
        opt.step()
    params = make_params()
    opt.attach(params)
    params[0].grad = np.ones(SHAPES[0])
    opt.step()
    assert opt.state[0]["step"] == 1


def test_attach_rejects_duplicates_and_non_tensors():
    p = mt.Tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p])
    with pytest.raises(TypeError, match="parameter 1 is a ndarray"):
        optim.SGD([p, np.zeros(2)])


def test_grad_with_wrong_shape_names_the_parameter():
    p = mt.Tensor(np.zeros((2, 3)), requires_grad=True, name="dense/kernel")
    p.grad = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(mt.ShapeError, match=r"dense/kernel.*\(2, 3\).*\(3, 2\)"):
        optim.Adam([p]).step()


def test_param_groups_read_and_write_the_optimizers_own_settings_as_torch():
    p = mt.Tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    for group in opt.param_groups:  # torch's learning-rate schedule idiom
        group["lr"] *= 0.5
    assert opt.lr == 0.05 and opt.param_groups[0]["momentum"] == 0.9
    assert opt.param_groups[0]["params"] == (p,)
    with pytest.raises(AttributeError):
        opt.param_groups.append({"params": []})  # one group: not silently dropped
    with pytest.raises(ValueError, match="momentum"):
        opt.param_groups[0]["momentum"] = -1.0
    assert opt.momentum == 0.9  # refused: unchanged
    with pytest.raises(KeyError, match="'betas'.*'params', 'lr'"):
        opt.param_groups[0]["betas"]
