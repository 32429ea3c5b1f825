"""Gradients of slices: one buffer per tensor (speedups.Scatter), added where slices overlap,
zero where no slice looked. Checked against numpy's np.add.at, on both engine paths."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import microtensor as mt

SHAPE = (4, 5, 3)


def a_slice(size: int):
    return st.builds(slice, st.one_of(st.none(), st.integers(-size, size)),
                     st.one_of(st.none(), st.integers(-size, size)),
                     st.sampled_from([None, 1, 1, 2, -1]))


def an_index():
    """Basic indices of every kind: ints, ranges (with steps), on one axis or several."""
    part = [st.one_of(st.integers(-n, n - 1), a_slice(n)) for n in SHAPE]
    return st.one_of(part[0], st.tuples(st.just(slice(None)), part[1]),
                     st.tuples(part[0], part[1]), st.tuples(part[0], part[1], part[2]),
                     st.tuples(st.just(slice(None)), st.just(slice(None)), part[2]))


@settings(max_examples=150, deadline=None)
@given(indices=st.lists(an_index(), min_size=1, max_size=6), through_an_op=st.booleans(),
       seed=st.integers(0, 2**16))
def test_any_mix_of_slices_gets_numpys_gradient(indices, through_an_op, seed):
    rng = np.random.default_rng(seed)
    x = mt.Tensor(rng.standard_normal(SHAPE), requires_grad=True, dtype=np.float64)
    source = x * 1.0 if through_an_op else x  # an inner node's buffer, or a leaf's
    np.full(SHAPE, np.nan)  # recently freed memory that np.empty may hand back
    expected = np.zeros(SHAPE)
    total = None
    for index in indices:
        picked = source[index]
        weights = rng.standard_normal(picked.shape)
        term = (picked * weights).sum()
        total = term if total is None else total + term
        np.add.at(expected, index, weights)  # numpy's own scatter-add, the reference
    total.backward()
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12, atol=1e-12)


def test_what_no_slice_looked_at_gets_zero():
    for _ in range(20):  # new uninitialised buffers each time
        x = mt.Tensor(np.ones((3, 8)), requires_grad=True, dtype=np.float64)
        y = x * 2.0
        (y[:, 1:3].sum() + y[:, 5].sum()).backward()
        expected = np.zeros((3, 8))
        expected[:, [1, 2, 5]] = 2.0
        np.testing.assert_array_equal(x.grad, expected)


def test_a_gradient_buffer_replaced_or_switched_off_mid_way_stays_right():
    x = mt.Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True, dtype=np.float64)
    y = x[1:2]
    x.requires_grad = False  # after the forward pass: backward leaves x alone
    y.sum().backward()
    assert x.grad is None
    x.requires_grad = True
    (x[0:1].sum() + x[2:3].sum()).backward()  # rows 1 and 3 unwritten: zeroed
    np.testing.assert_array_equal(x.grad, [[1.0] * 3, [0.0] * 3, [1.0] * 3, [0.0] * 3])
    x.grad = None  # replaced by hand, as optimizers' zero_grad() does
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((4, 3), 3.0))


def test_gate_blocks_that_tile_the_buffer_need_no_zeros():
    z = mt.Tensor(np.ones((2, 8)), requires_grad=True, dtype=np.float64) * 1.0
    grads = {}
    blocks = [z[:, k * 2:(k + 1) * 2] for k in range(4)]

    def capture(g):
        grads["z"] = g.copy()
        return inner(g)
    z._backward, inner = capture, z._backward  # read the buffer as backward hands it on
    sum((b * (k + 1)).sum() for k, b in enumerate(blocks)).backward()
    assert inner is not None
    np.testing.assert_array_equal(grads["z"], np.repeat([[1.0, 2.0, 3.0, 4.0]], 2, axis=0)
                                  .repeat(2, axis=1))


@pytest.mark.parametrize("plain", [False, True])
def test_both_engine_paths_give_numpys_scatter_add(plain):
    rng = np.random.default_rng(4)
    x = mt.Tensor(rng.standard_normal((6, 5)), requires_grad=True, dtype=np.float64)
    indices = [2, slice(1, 4), (slice(None), 3), np.array([0, 0, 5]), (slice(None), [1, 1])]
    expected = np.zeros((6, 5))
    with mt.plain_engine() if plain else contextlib.nullcontext():
        total = None
        for index in indices:
            picked = (x * 1.0)[index]
            weights = rng.standard_normal(picked.shape)
            np.add.at(expected, index, weights)
            term = (picked * weights).sum()
            total = term if total is None else total + term
        total.backward()
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtypes", [(np.float32, np.float64), (np.float32, np.float32, np.float64),
                                    (np.float64, np.float32)])
def test_a_sum_of_gradients_keeps_the_first_ones_dtype_however_many_arrive(dtypes):
    from microtensor.speedups import GradientSum

    grads = GradientSum()
    for k, dtype in enumerate(dtypes):
        grads.add("node", np.full(3, 1.0 + k, dtype))
    total = grads.pop("node")
    assert total.dtype == dtypes[0]
    np.testing.assert_array_equal(total, np.full(3, sum(1.0 + k for k in range(len(dtypes)))))
