"""Every op's value and gradient against PyTorch on the same float64 inputs, plus gradcheck.

Shapes are drawn at random (hypothesis), including broadcasting with size-1 axes
and rank differences. Gradients are taken with a random upstream gradient, so a
backward that is right only for ``sum()`` fails.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import microtensor as mt

RTOL, ATOL = 1e-9, 1e-12
# The torch fixture is a module: sharing it across examples is harmless.
SETTINGS = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
seeds = st.integers(0, 2**32 - 1)
shapes = array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
shape_pairs = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4)


def check_against_torch(torch, mt_fn, torch_fn, arrays, seed=0, gradcheck=True):
    """Values and input gradients of ``mt_fn`` equal ``torch_fn``'s; optionally gradcheck too."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    ours = [mt.Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out, expected = mt_fn(*ours), torch_fn(*theirs)

    assert out.dtype == np.float64
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=RTOL, atol=ATOL)

    upstream = np.asarray(np.random.default_rng(seed).standard_normal(out.shape))
    out.backward(grad=upstream)
    expected.backward(torch.tensor(upstream))
    for i, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        assert mine.grad is not None, f"input {i} got no gradient"
        assert mine.grad.shape == mine.shape and mine.grad.dtype == np.float64
        ref_grad = ref.grad.numpy() if ref.grad is not None else np.zeros_like(mine.data)
        np.testing.assert_allclose(mine.grad, ref_grad, rtol=RTOL, atol=ATOL,
                                   err_msg=f"gradient of input {i}")
    if gradcheck:
        assert mt.gradcheck(mt_fn, [mt.Tensor(a, requires_grad=True, dtype=np.float64)
                                    for a in arrays])
    return out


def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 3.0, shape)


def away_from_zero(rng, shape):
    """Values with |x| in [0.5, 2]: safe divisors, and far from relu's and clip's kinks."""
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


# -- elementwise ops of one tensor (scalar operands take the tensor's side) -----------------

UNARY = {
    "neg": (lambda x: -x, lambda t: -t, normal),
    "exp": (mt.exp, lambda t: t.exp(), normal),
    "log": (mt.log, lambda t: t.log(), positive),
    "sigmoid": (mt.sigmoid, lambda t: t.sigmoid(), lambda r, s: 4 * r.standard_normal(s)),
    "tanh": (mt.tanh, lambda t: t.tanh(), normal),
    "relu": (mt.relu, lambda t: t.relu(), away_from_zero),
    "clip": (lambda x: mt.clip(x, -1.0, 1.5), lambda t: t.clamp(-1.0, 1.5), away_from_zero),
    "pow 2": (lambda x: x ** 2, lambda t: t ** 2, normal),
    "pow 3 (negative base)": (lambda x: x ** 3, lambda t: t ** 3, normal),
    "pow 0.5": (lambda x: x ** 0.5, lambda t: t ** 0.5, positive),
    "pow -1.5": (lambda x: x ** -1.5, lambda t: t ** -1.5, positive),
    "x + scalar": (lambda x: x + 3, lambda t: t + 3, normal),
    "scalar - x": (lambda x: 1 - x, lambda t: 1 - t, normal),
    "x * scalar": (lambda x: x * 0.5, lambda t: t * 0.5, normal),
    "scalar / x": (lambda x: 2 / x, lambda t: 2 / t, away_from_zero),
    "x / scalar": (lambda x: x / 2, lambda t: t / 2, normal),
    "array * x": (lambda x: np.full(x.shape, 1.5) * x, lambda t: 1.5 * t, normal),
    "softmax": (mt.softmax, lambda t: t.softmax(-1), normal),
    "log_softmax": (mt.log_softmax, lambda t: t.log_softmax(-1), normal),
    "method chain": (lambda x: x.tanh().exp().sigmoid(), lambda t: t.tanh().exp().sigmoid(),
                     normal),
}


@pytest.mark.parametrize("name", UNARY)
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_unary_ops_match_torch(torch, name, shape, seed):
    mt_fn, torch_fn, domain = UNARY[name]
    if name.endswith("softmax") and shape == ():
        shape = (3,)
    rng = np.random.default_rng(seed)
    check_against_torch(torch, mt_fn, torch_fn, [domain(rng, shape)], seed)


# -- elementwise ops of two tensors, with broadcasting ----------------------------------------

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, normal),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, normal),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, normal),
    "div": (lambda a, b: a / b, lambda a, b: a / b, away_from_zero),
    "maximum": (mt.maximum, lambda a, b: a.maximum(b), normal),
}
BROADCAST_GRID = [((2, 3), (2, 3)), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 1), (1, 3)),
                  ((4, 1, 3), (2, 1)), ((), (2, 3)), ((2, 3), ()), ((1,), (3, 1, 2)),
                  ((5, 1, 1), (1, 4, 1))]


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("shape_a,shape_b", BROADCAST_GRID)
def test_binary_ops_on_broadcasting_grid(torch, name, shape_a, shape_b):
    mt_fn, torch_fn, domain_b = BINARY[name]
    rng = np.random.default_rng(1)
    check_against_torch(torch, mt_fn, torch_fn, [normal(rng, shape_a), domain_b(rng, shape_b)])


@pytest.mark.parametrize("name", BINARY)
@SETTINGS
@given(pair=shape_pairs, seed=seeds)
def test_binary_ops_broadcast_like_torch(torch, name, pair, seed):
    mt_fn, torch_fn, domain_b = BINARY[name]
    shape_a, shape_b = pair.input_shapes
    rng = np.random.default_rng(seed)
    out = check_against_torch(torch, mt_fn, torch_fn,
                              [normal(rng, shape_a), domain_b(rng, shape_b)], seed)
    assert out.shape == pair.result_shape


def test_maximum_splits_the_gradient_on_ties_like_torch(torch):
    a = [[1.0, 2.0, 3.0], [0.5, 0.5, -1.0]]
    b = [[1.0, 1.0, 4.0], [0.5, 2.0, -1.0]]
    check_against_torch(torch, mt.maximum, lambda x, y: x.maximum(y), [a, b], gradcheck=False)


def test_relu_and_clip_at_their_kinks_like_torch(torch):
    x = [-1.0, 0.0, 0.3, 1.0, 2.0]
    check_against_torch(torch, mt.relu, lambda t: t.relu(), [x], gradcheck=False)
    check_against_torch(torch, lambda t: mt.clip(t, 0.0, 1.0), lambda t: t.clamp(0.0, 1.0),
                        [x], gradcheck=False)


@SETTINGS
@given(shapes3=mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3), seed=seeds)
def test_where_matches_torch(torch, shapes3, seed):
    cond_shape, shape_a, shape_b = shapes3.input_shapes
    rng = np.random.default_rng(seed)
    condition = rng.random(cond_shape) < 0.5
    check_against_torch(
        torch, lambda a, b: mt.where(condition, a, b),
        lambda a, b: torch.where(torch.tensor(condition), a, b),
        [normal(rng, shape_a), normal(rng, shape_b)], seed)
    check_against_torch(
        torch, lambda a: mt.where(condition, a, 0.0),
        lambda a: torch.where(torch.tensor(condition), a, 0.0), [normal(rng, shape_a)], seed)


# -- matrix product ---------------------------------------------------------------------------

MATMUL_GRID = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
               ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((5, 2, 3), (5, 3, 4)),
               ((1, 2, 3), (5, 3, 4)), ((4, 1, 2, 3), (5, 3, 2)), ((5, 2, 3), (3,)),
               ((3,), (5, 3, 4))]


@pytest.mark.parametrize("shape_a,shape_b", MATMUL_GRID)
def test_matmul_grid(torch, shape_a, shape_b):
    rng = np.random.default_rng(2)
    check_against_torch(torch, lambda a, b: a @ b, lambda a, b: a @ b,
                        [normal(rng, shape_a), normal(rng, shape_b)])


@SETTINGS
@given(pair=mutually_broadcastable_shapes(signature="(m?,n),(n,p?)->(m?,p?)", max_dims=2,
                                          max_side=4), seed=seeds)
def test_matmul_matches_torch(torch, pair, seed):
    rng = np.random.default_rng(seed)
    arrays = [normal(rng, s) for s in pair.input_shapes]
    out = check_against_torch(torch, mt.matmul, lambda a, b: a @ b, arrays, seed)
    assert out.shape == pair.result_shape


def test_matmul_accepts_arrays_on_either_side(torch):
    rng = np.random.default_rng(3)
    w = normal(rng, (3, 4))
    check_against_torch(torch, lambda x: x @ w, lambda x: x @ torch.tensor(w),
                        [normal(rng, (2, 3))])
    check_against_torch(torch, lambda x: w.T @ x, lambda x: torch.tensor(w.T) @ x,
                        [normal(rng, (3, 2))])


# -- reductions ---------------------------------------------------------------------------------

@st.composite
def shape_and_axis(draw, min_dims=0):
    """A shape and an axis argument for it: None, an int (maybe negative) or a tuple."""
    shape = draw(array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=4))
    ndim = len(shape)
    if ndim == 0:
        return shape, None
    single = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(
        lambda axes: tuple(ax - ndim if i % 2 else ax for i, ax in enumerate(axes)))
    return shape, draw(st.one_of(st.none(), single, several))


REDUCTIONS = {
    "sum": (lambda x, ax, kd: x.sum(axis=ax, keepdims=kd), "sum"),
    "mean": (lambda x, ax, kd: x.mean(axis=ax, keepdims=kd), "mean"),
    "max": (lambda x, ax, kd: x.max(axis=ax, keepdims=kd), "amax"),
}


@pytest.mark.parametrize("name", REDUCTIONS)
@SETTINGS
@given(case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_reductions_match_torch(torch, name, case, keepdims, seed):
    shape, axis = case
    mt_fn, torch_name = REDUCTIONS[name]
    dims = tuple(range(len(shape))) if axis is None else axis
    if dims == ():  # a 0-D tensor: torch reads dim=() as "all axes", which is the same here
        dims = None

    def torch_fn(t):
        reduce = getattr(t, torch_name)
        return reduce() if dims is None else reduce(dim=dims, keepdim=keepdims)
    rng = np.random.default_rng(seed)
    check_against_torch(torch, lambda x: mt_fn(x, axis, keepdims), torch_fn,
                        [normal(rng, shape)], seed)


def test_max_shares_the_gradient_among_ties_like_torch_amax(torch):
    x = [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]
    for axis, keepdims in [(None, False), (1, False), (1, True), (0, False)]:
        dims = (0, 1) if axis is None else axis
        check_against_torch(torch, lambda t, a=axis, k=keepdims: t.max(axis=a, keepdims=k),
                            lambda t, d=dims, k=keepdims: t.amax(dim=d, keepdim=k), [x],
                            gradcheck=False)


# -- shape ops ------------------------------------------------------------------------------------

@st.composite
def reshapes(draw):
    """A shape and another with the same number of elements (permuted, 1s added, maybe a -1)."""
    shape = draw(array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    target = list(draw(st.permutations(shape)))
    for _ in range(draw(st.integers(0, 2))):
        target.insert(draw(st.integers(0, len(target))), 1)
    if target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return shape, tuple(target)


@SETTINGS
@given(case=reshapes(), as_tuple=st.booleans(), seed=seeds)
def test_reshape_matches_torch(torch, case, as_tuple, seed):
    shape, target = case
    rng = np.random.default_rng(seed)
    mt_fn = (lambda x: x.reshape(target)) if as_tuple else (lambda x: x.reshape(*target))
    check_against_torch(torch, mt_fn, lambda t: t.reshape(target), [normal(rng, shape)], seed)


@SETTINGS
@given(shape=shapes, data=st.data(), seed=seeds)
def test_transpose_and_T_match_torch(torch, shape, data, seed):
    ndim = len(shape)
    perm = data.draw(st.permutations(range(ndim)))
    axes = tuple(ax - ndim if data.draw(st.booleans()) else ax for ax in perm)  # some negative
    rng = np.random.default_rng(seed)
    x = normal(rng, shape)
    check_against_torch(torch, lambda t: t.transpose(*axes), lambda t: t.permute(perm), [x], seed)
    check_against_torch(torch, lambda t: t.transpose(axes), lambda t: t.permute(perm), [x], seed)
    reverse = tuple(reversed(range(ndim)))
    check_against_torch(torch, lambda t: t.T, lambda t: t.permute(reverse), [x], seed)


def _same(index):
    """Torch's reference for an index numpy and torch read the same way."""
    def torch_index(part):
        return __import__("torch").from_numpy(part) if isinstance(part, np.ndarray) else part
    if isinstance(index, tuple):
        return lambda t: t[tuple(torch_index(p) for p in index)]
    return lambda t: t[torch_index(index)]


INDEXES = {
    "int": (2, None),
    "negative int": (-1, None),
    "slice": (slice(1, 3), None),
    "slice with step": ((slice(None), slice(0, None, 2)), None),
    "column": ((slice(None), 2), None),
    "int, slice, int": ((1, slice(1, 4), -2), None),
    "negative step": (slice(None, None, -1), lambda t: t.flip(0)),
    "ellipsis": ((Ellipsis, 1), None),
    "None": ((None, slice(None), None), None),
    "int, ellipsis, None": ((1, Ellipsis, None), None),
    "repeated int array": (np.array([0, 2, 2, 3, 2]), None),
    "negative int array": (np.array([-1, 0, -1]), None),
    "int list": ([0, 0, 3], lambda t: t[[0, 0, 3]]),
    "int array on axis 1": ((slice(None), np.array([4, 4, 0])), None),
    "two int arrays": ((np.array([0, 0, 1]), np.array([1, 1, 2])), None),
    "2-D int array": (np.array([[0, 1], [1, 1]]), None),
    "arrays apart": ((np.array([1, 1]), slice(None), np.array([2, 2])), None),
    "boolean mask": (np.array([True, False, True, True]), None),
}


@pytest.mark.parametrize("name", INDEXES)
def test_getitem_matches_torch(torch, name):
    index, torch_fn = INDEXES[name]
    x = normal(np.random.default_rng(4), (4, 5, 6))
    check_against_torch(torch, lambda t: t[index], torch_fn or _same(index), [x])


@SETTINGS
@given(shape=array_shapes(min_dims=1, max_dims=3, max_side=5), data=st.data(), seed=seeds)
def test_random_basic_slices_match_torch(torch, shape, data, seed):
    index = tuple(
        slice(data.draw(st.integers(-n, n)), data.draw(st.integers(-n, n) | st.none()),
              data.draw(st.integers(1, 3)))
        for n in shape)
    x = normal(np.random.default_rng(seed), shape)
    if x[index].size == 0:  # nothing to check
        return
    check_against_torch(torch, lambda t: t[index], lambda t: t[index], [x], seed)


# -- joining, softmax ------------------------------------------------------------------------------

@st.composite
def joinable(draw, stacking: bool):
    """Shapes for concatenate (differing on ``axis``) or stack (all equal), and the axis."""
    base = list(draw(array_shapes(min_dims=0 if stacking else 1, max_dims=3, max_side=3)))
    rank = len(base) + stacking
    axis = draw(st.integers(-rank, rank - 1))
    count = draw(st.integers(1, 4))
    if stacking:
        return [tuple(base)] * count, axis
    sizes = draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
    return [tuple(base[:axis % rank] + [n] + base[axis % rank + 1:]) for n in sizes], axis


JOINS = {"concatenate": (False, mt.concatenate, "cat"), "stack": (True, mt.stack, "stack")}


@pytest.mark.parametrize("name", JOINS)
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_joining_matches_torch(torch, name, data, seed):
    stacking, join, torch_name = JOINS[name]
    shapes_, axis = data.draw(joinable(stacking=stacking))
    rng = np.random.default_rng(seed)
    check_against_torch(torch, lambda *ts: join(ts, axis=axis),
                        lambda *ts: getattr(torch, torch_name)(ts, dim=axis),
                        [normal(rng, s) for s in shapes_], seed)


def test_joining_with_a_constant_sends_gradient_only_to_the_others():
    x = mt.Tensor(np.ones((2, 3)), requires_grad=True)
    constant = mt.Tensor(np.zeros((2, 1)))
    mt.concatenate([constant, x], axis=1).backward(np.arange(8.0).reshape(2, 4))
    np.testing.assert_array_equal(x.grad, [[1, 2, 3], [5, 6, 7]])
    assert constant.grad is None


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@SETTINGS
@given(case=shape_and_axis(min_dims=1), seed=seeds)
def test_softmax_along_any_axis_matches_torch(torch, fn, case, seed):
    shape, axis = case
    axis = axis if isinstance(axis, int) else -1
    rng = np.random.default_rng(seed)
    check_against_torch(torch, lambda x: getattr(mt, fn)(x, axis=axis),
                        lambda t: getattr(t, fn)(dim=axis), [3 * normal(rng, shape)], seed)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_is_stable_for_huge_inputs(torch, fn):
    x = [[1000.0, 1000.0, -1000.0], [-800.0, 5.0, 900.0]]
    out = check_against_torch(torch, getattr(mt, fn), lambda t: getattr(t, fn)(dim=-1), [x],
                              gradcheck=False)
    assert np.all(np.isfinite(out.data))


def test_comparisons_give_plain_boolean_arrays():
    x = mt.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    result = x > 1.5
    assert type(result) is np.ndarray and result.dtype == bool
    np.testing.assert_array_equal(result, [False, True, True])
    np.testing.assert_array_equal(x <= mt.Tensor([1.0, 1.0, 3.0]), [True, False, True])
