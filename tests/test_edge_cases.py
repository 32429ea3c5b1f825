"""Edge cases of the core, each checked against torch where torch has an answer (float64)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import microtensor as mt
import nn


def leaf(data) -> mt.Tensor:
    return mt.Tensor(np.asarray(data, dtype=np.float64), requires_grad=True, dtype=np.float64)


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# -- gradients kept across backward calls --------------------------------------------------------

def test_retained_gradients_add_up_over_backward_calls_like_torch(torch):
    x, tx = leaf([1.0, 2.0]), torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    y, ty = x * 2, tx * 2
    y.retain_grad()
    ty.retain_grad()
    z, tz = (y * y).sum(), (ty * ty).sum()
    for _ in range(2):
        z.backward()
        tz.backward(retain_graph=True)
    np.testing.assert_allclose(y.grad, ty.grad.numpy())   # [8, 16], not [4, 8]
    np.testing.assert_allclose(x.grad, tx.grad.numpy())   # each call passed on its own part


def test_two_losses_through_a_retained_tensor_add_both():
    x = leaf([1.0, -2.0])
    h = (x * 3).retain_grad()
    (h * h).sum().backward()
    (h * 5).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data + 5)
    np.testing.assert_allclose(x.grad, 3 * (2 * h.data + 5))


def test_a_leaf_switched_off_after_the_forward_pass_gets_no_gradient_from_any_op():
    x, w = leaf([0.5, 1.0]), leaf([2.0, 3.0])
    z = (mt.exp(x) * w).sum() + mt.tanh(x).sum() + x[0]
    x.requires_grad = False
    z.backward()
    assert x.grad is None
    np.testing.assert_allclose(w.grad, np.exp([0.5, 1.0]))


def test_gradcheck_fails_on_a_nan_gradient():
    def nan_gradient(a):
        def backward(g):
            return (g * np.nan,)
        return mt.Tensor._from_op(a.data * 2, "nan_grad", (a,), backward)
    with pytest.raises(mt.GradcheckError, match="analytic nan"):
        mt.gradcheck(lambda a: nan_gradient(a).sum(), [leaf([1.0, 2.0])])
    with pytest.raises(mt.GradcheckError, match="numeric nan"), np.errstate(invalid="ignore"):
        mt.gradcheck(lambda a: mt.log(a - 1).sum(), [leaf([0.5, 2.0])])


# -- values and gradients at the edges, against torch ----------------------------------------------

def test_x_to_the_power_0_has_gradient_0_also_at_0(torch, no_warnings):
    x = leaf([0.0, 1.0, -2.0])
    (x ** 0).sum().backward()
    tx = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64, requires_grad=True)
    (tx ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


@pytest.mark.parametrize("low, high", [(None, 0.5), (-0.5, None), (np.zeros((2, 3)), 1.0),
                                       (np.float64(-1.0), np.array([0.0, 0.5, 1.0]))])
def test_clip_takes_missing_and_broadcast_bounds_like_torch_clamp(torch, low, high):
    data = np.array([-1.5, 0.3, 2.0])
    x = leaf(data)
    out = mt.clip(x, low, high)
    (out * mt.Tensor(np.arange(out.size).reshape(out.shape) + 1.0, dtype=np.float64)).sum() \
        .backward()
    tx = torch.tensor(data, requires_grad=True)
    as_torch = [None if b is None else torch.as_tensor(b, dtype=torch.float64) for b in (low, high)]
    t_out = torch.clamp(tx, *as_torch)
    (t_out * (torch.arange(t_out.numel(), dtype=torch.float64).reshape(t_out.shape) + 1)) \
        .sum().backward()
    np.testing.assert_allclose(out.data, t_out.detach().numpy())
    assert x.grad.shape == data.shape
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_clip_keeps_float32_with_numpy_bounds():
    x = mt.Tensor([0.5, 2.0])
    assert mt.clip(x, np.float64(0.0), np.float64(1.0)).dtype == np.float32


def test_exp_and_log_at_the_extremes_are_silent_like_torch(torch, no_warnings):
    x = leaf([1000.0, 0.0])
    np.testing.assert_array_equal(mt.exp(x).data, torch.exp(torch.tensor(x.data)).numpy())
    y = leaf([0.0, 1.0])
    mt.log(y).sum().backward()
    np.testing.assert_array_equal(mt.log(y).data, [-np.inf, 0.0])
    np.testing.assert_array_equal(y.grad, [np.inf, 1.0])


@pytest.mark.parametrize("data", [[-np.inf, -np.inf], [np.inf, 1.0], [1.0, 2.0]])
def test_logsumexp_of_infinities_like_torch(torch, data, no_warnings):
    got = mt.logsumexp(mt.Tensor(data, dtype=np.float64)).item()
    assert got == torch.logsumexp(torch.tensor(data, dtype=torch.float64), 0).item()


def test_logsumexp_over_several_axes(torch):
    data = np.random.default_rng(0).standard_normal((2, 3, 4))
    got = mt.logsumexp(mt.Tensor(data, dtype=np.float64), axis=(0, 2))
    want = torch.logsumexp(torch.tensor(data), dim=(0, 2)).numpy()
    np.testing.assert_allclose(got.data, want, rtol=1e-12)


@pytest.mark.parametrize("left, right", [((2, 0), (0, 3)), ((2, 3), (3, 0)), ((4, 2, 0), (0, 3))])
def test_matmul_with_a_size_0_axis_runs_backward_like_torch(torch, left, right):
    a, b = leaf(np.ones(left)), leaf(np.ones(right))
    (a @ b).sum().backward()
    ta = torch.ones(left, dtype=torch.float64, requires_grad=True)
    tb = torch.ones(right, dtype=torch.float64, requires_grad=True)
    (ta @ tb).sum().backward()
    np.testing.assert_array_equal(a.grad, ta.grad.numpy())
    np.testing.assert_array_equal(b.grad, tb.grad.numpy())


def test_max_over_a_full_axis_of_an_empty_tensor_is_empty():
    assert mt.Tensor(np.zeros((0, 3))).max(axis=1).shape == (0,)
    with pytest.raises(mt.ShapeError, match=r"max: axis 0 of the tensor of shape \(0, 3\)"):
        mt.Tensor(np.zeros((0, 3))).max(axis=0)


# -- what the caller does afterwards doesn't change the gradient -----------------------------------

def test_changing_an_index_array_after_the_forward_pass_changes_nothing():
    x = leaf([1.0, 2.0, 3.0])
    index = np.array([0, 1])
    y = x[index]
    index[:] = 2
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0, 0.0])


def test_changing_a_where_condition_after_the_forward_pass_changes_nothing():
    x = leaf([1.0, 2.0])
    condition = np.array([True, False])
    y = mt.where(condition, x, 0.0)
    condition[:] = True
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0])


# -- plain values where a Tensor is expected, and errors that name the op --------------------

def test_plain_values_work_where_torch_would_want_tensors():
    np.testing.assert_array_equal(mt.where(np.array([True, False]), 1.0, 0.0).data, [1.0, 0.0])
    np.testing.assert_allclose(mt.exp(np.array([0.0, 1.0])).data, [1.0, np.e], rtol=1e-6)
    np.testing.assert_array_equal((mt.Tensor([1, 2], dtype=np.int64) + [0.5, 1.5]).data,
                                  [1.5, 3.5])


def test_bad_axes_are_named_by_the_op():
    x = mt.Tensor(np.ones((2, 3)))
    with pytest.raises(mt.ShapeError, match=r"sum: axis \(0, 0\) names an axis twice"):
        x.sum(axis=(0, 0))
    with pytest.raises(mt.ShapeError, match=r"transpose: axes \(0, 3\) are not a permutation"):
        x.transpose(0, 3)


# -- dtypes meeting in a layer ---------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: nn.Dense(2), lambda: nn.LSTM(2)])
def test_a_float64_tensor_into_a_float32_layer_is_cast_like_keras(make):
    layer = make()
    data = np.random.default_rng(0).standard_normal((3, 4, 5))
    data = data[:, 0] if isinstance(layer, nn.Dense) else data
    layer(mt.Tensor(data))  # built in float32
    x64 = mt.Tensor(data, dtype=np.float64, requires_grad=True)
    x32 = mt.Tensor(data, dtype=np.float32, requires_grad=True)
    out64, out32 = layer(x64), layer(x32)
    assert out64.dtype == np.float32
    np.testing.assert_array_equal(out64.data, out32.data)
    out64.sum().backward()
    out32.sum().backward()
    assert x64.grad.dtype == np.float64
    np.testing.assert_array_equal(x64.grad, x32.grad.astype(np.float64))


def test_astype_passes_the_gradient_back_in_the_source_dtype():
    x = leaf([1.5, -2.0])
    y = x.astype(np.float32)
    assert y.dtype == np.float32
    (y * y).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad, 2 * x.data)
