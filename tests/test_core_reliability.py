"""The core's side of "no silent failure": bad inputs get errors naming the op and what it
got, and grad mode belongs to a thread (as in torch)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import microtensor as mt


def test_tensor_of_none_or_of_text_says_what_it_expects():
    with pytest.raises(TypeError, match="Tensor: got None; expected numbers"):
        mt.Tensor(None)
    with pytest.raises(TypeError, match="Tensor: can't make numbers of dict"):
        mt.Tensor({"a": 1})


def test_arithmetic_with_none_names_the_op():
    t = mt.Tensor([1.0, 2.0])
    with pytest.raises(TypeError, match=r"add: expected a tensor, a number or an array, got None"):
        t + None
    with pytest.raises(TypeError, match=r"mul: expected a tensor, a number or an array, got 'x'"):
        t * "x"


def test_numpy_asarray_of_a_tensor_is_its_values():
    t = mt.Tensor([[1.0, 2.0]], requires_grad=True) * 3.0
    array = np.asarray(t)
    assert array.dtype == np.float32 and array.tolist() == [[3.0, 6.0]]
    assert np.asarray(t, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("op", [mt.sigmoid, mt.tanh, mt.exp, mt.log])
def test_float_only_ops_refuse_integer_tensors(op):
    x = mt.Tensor([1, 2], dtype=np.int64)
    with pytest.raises(TypeError, match=rf"{op.__name__}: needs a floating tensor, got int64"):
        op(x)


def test_softmax_on_an_axis_that_is_not_there():
    with pytest.raises(mt.ShapeError, match="softmax: axis 4 is out of range for a 2-D tensor"):
        mt.softmax(mt.Tensor(np.ones((2, 3))), axis=4)


def test_grad_mode_is_per_thread():
    """predict (under no_grad) in one thread must not switch off another thread's graph."""
    w = mt.Tensor([1.0, 2.0], requires_grad=True)
    inside, go_on = threading.Event(), threading.Event()

    def predict():
        with mt.no_grad():
            inside.set()
            go_on.wait(5)

    thread = threading.Thread(target=predict)
    thread.start()
    inside.wait(5)
    try:
        assert mt.is_grad_enabled()
        loss = (w * w).sum()  # recorded here, though the other thread is under no_grad
        loss.backward()
    finally:
        go_on.set()
        thread.join()
    np.testing.assert_array_equal(w.grad, [2.0, 4.0])


def test_scope_is_per_thread():
    seen = {}

    def tag():
        seen["scope"] = (mt.Tensor([1.0], requires_grad=True) * 2).scope

    with mt.scope("lstm1", step=3):
        thread = threading.Thread(target=tag)
        thread.start()
        thread.join()
    assert seen["scope"] is None


@pytest.mark.parametrize("plain", [False, True])
def test_a_single_number_used_several_times_gets_every_contribution(plain, torch):
    """0-d gradients arrive as numpy scalars; each one must be added (found by review)."""
    import contextlib
    values = np.random.default_rng(0).standard_normal(5)
    x = mt.Tensor(values, requires_grad=True, dtype=np.float64)
    s = mt.Tensor(3.0, requires_grad=True, dtype=np.float64)
    with mt.plain_engine() if plain else contextlib.nullcontext():
        m = x.mean()
        v = ((x - m) ** 2).mean()
        (((x - m) / (v + 1)) ** 3).sum().backward()
        (s * s * s).backward()
    t = torch.tensor(values, requires_grad=True)
    tm = t.mean()
    (((t - tm) / (((t - tm) ** 2).mean() + 1)) ** 3).sum().backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-12)
    assert s.grad == pytest.approx(27.0)


def test_no_gradient_flows_through_a_cast_to_integers():
    x = mt.Tensor([1.5, 2.5], requires_grad=True)
    assert not x.astype(np.int64).requires_grad  # as torch's .long()
    assert x.astype(np.float64).requires_grad


def test_log_softmax_and_logsumexp_take_arrays_like_softmax():
    logits = np.array([[1.0, 2.0, 3.0]])
    expected = logits - np.log(np.exp(logits).sum())
    np.testing.assert_allclose(mt.log_softmax(logits).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(mt.logsumexp(logits).numpy(), [np.log(np.exp(logits).sum())],
                               rtol=1e-6)
