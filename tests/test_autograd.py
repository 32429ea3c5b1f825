"""How backward() behaves: accumulation, shared nodes, grad mode, dtypes, long graphs, gradcheck,
and random expression graphs against PyTorch."""

from __future__ import annotations

import gc
import re
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import microtensor as mt


def leaf(data, dtype=np.float64) -> mt.Tensor:
    return mt.Tensor(np.asarray(data, dtype=np.float64), requires_grad=True, dtype=dtype)


# -- accumulation and shared nodes ------------------------------------------------------------

def test_gradients_accumulate_over_several_backward_calls():
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    (3 * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3)
    loss = (x * x).sum()  # the same graph twice: intermediate grads restart from zero
    x.zero_grad()
    loss.backward()
    loss.backward()
    np.testing.assert_allclose(x.grad, 4 * x.data)


def test_a_tensor_used_twice_gets_both_contributions():
    x = leaf([1.0, -2.0, 3.0])
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])
    x.zero_grad()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data)


def test_shared_subexpressions_and_diamonds():
    x, y = leaf([0.5, -1.0]), leaf([2.0, 3.0])
    s = x * y
    (s * s + s).sum().backward()  # d/dx = (2s + 1) y
    np.testing.assert_allclose(x.grad, (2 * x.data * y.data + 1) * y.data)
    np.testing.assert_allclose(y.grad, (2 * x.data * y.data + 1) * x.data)

    z = leaf([0.3, -0.7])
    a = mt.exp(z)
    (a * 2 * (a * 3)).sum().backward()  # 6 exp(2z)
    np.testing.assert_allclose(z.grad, 12 * np.exp(2 * z.data), rtol=1e-12)


def test_leaves_fed_by_one_add_node_do_not_share_a_gradient_array():
    a, b = leaf(np.ones((2, 3))), leaf(np.ones((2, 3)))
    (a + b).backward(np.full((2, 3), 5.0))
    a.grad += 1  # an optimizer may update a gradient in place
    a.grad[0, 0] = 100.0
    np.testing.assert_array_equal(b.grad, np.full((2, 3), 5.0))
    assert not np.shares_memory(a.grad, b.grad)


def test_the_upstream_array_is_not_aliased_into_a_leaf():
    x = leaf(np.zeros((2, 2)))
    upstream = np.ones((2, 2))
    x.reshape(4).reshape(2, 2).backward(upstream)
    x.grad *= 7
    np.testing.assert_array_equal(upstream, np.ones((2, 2)))


def test_leaf_gradients_from_broadcasting_views_are_writable_arrays():
    x = leaf([1.0, 2.0, 3.0])
    x.sum().backward()  # sum's backward broadcasts a read-only view
    x.grad += 1
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


def test_intermediate_gradients_are_freed_unless_retained():
    x = leaf([1.0, 2.0])
    hidden, kept = x * 3, x * 4
    kept.retain_grad()
    (hidden * kept).sum().backward()
    assert hidden.grad is None
    np.testing.assert_array_equal(kept.grad, hidden.data)
    np.testing.assert_array_equal(x.grad, 24 * x.data)


def test_topological_order_puts_parents_first_once_each():
    x = leaf([1.0])
    a = x * 2
    b = a + x
    out = a * b
    order = mt.topological_order(out)
    assert len(order) == len({id(t) for t in order}) == 4
    position = {id(t): i for i, t in enumerate(order)}
    for node in order:
        assert all(position[id(p)] < position[id(node)] for p in node.parents
                   if p.requires_grad)  # constants (the 2) are not part of the walk


# -- grad mode, detach, requires_grad ----------------------------------------------------------

def test_no_grad_records_nothing_and_restores_the_mode():
    x = leaf([1.0, 2.0])
    with mt.no_grad():
        y = mt.tanh(x * 2) + 1
        assert not mt.is_grad_enabled()
        with mt.enable_grad():
            inner = x * 2
    assert not y.requires_grad and y.parents == () and y.is_leaf
    assert inner.requires_grad and inner.parents[0] is x
    assert mt.is_grad_enabled()
    assert (x * 2).requires_grad

    with pytest.raises(KeyError), mt.no_grad():
        raise KeyError("boom")
    assert mt.is_grad_enabled()


def test_detach_shares_data_but_cuts_the_graph():
    x = leaf([1.0, 2.0])
    y = x * 3
    d = y.detach()
    assert not d.requires_grad and d.parents == () and d.op is None
    assert np.shares_memory(d.data, y.data)
    (d * x).sum().backward()
    np.testing.assert_array_equal(x.grad, d.data)


def test_requires_grad_propagates_from_any_input():
    const, var = mt.Tensor([1.0, 2.0]), mt.Tensor([3.0, 4.0], requires_grad=True)
    assert not (const * const).requires_grad and (const * const).parents == ()
    mixed = const * var
    assert mixed.requires_grad and mixed.op == "mul"
    assert [p is q for p, q in zip(mixed.parents, (const, var), strict=True)] == [True, True]
    assert mt.concatenate([const, var]).requires_grad
    assert not var.detach().requires_grad
    (mixed.sum()).backward()
    assert const.grad is None
    np.testing.assert_array_equal(var.grad, const.data)


# -- dtypes -------------------------------------------------------------------------------------

def test_default_dtype_is_float32_and_can_be_changed():
    assert mt.Tensor([1, 2]).dtype == np.float32
    assert mt.Tensor(np.arange(3.0)).dtype == np.float32
    assert mt.Tensor([1.0], dtype=np.float64).dtype == np.float64
    mt.set_default_dtype(np.float64)
    assert mt.get_default_dtype() == np.float64 and mt.Tensor([1.0]).dtype == np.float64


def test_python_scalars_keep_float32():
    x = mt.Tensor([1.0, 2.0], requires_grad=True)
    results = [x * 0.5, 1 - x, x / 2, x ** 2, 2 / x, x + np.float64(1.0), 0.5 * x,
               mt.maximum(x, 0.0), mt.where(x.data > 1, x, 0.0)]
    assert [r.dtype for r in results] == [np.float32] * len(results)


RNG = np.random.default_rng(7)
W, COND = RNG.uniform(0.5, 2, (4, 2)), RNG.random((3, 4)) < 0.5
FLOAT32_OPS = {
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y, "matmul": lambda x, y: x @ W, "neg": lambda x, y: -x,
    "pow": lambda x, y: x ** 1.5, "exp": lambda x, y: mt.exp(x), "log": lambda x, y: mt.log(x),
    "sigmoid": lambda x, y: mt.sigmoid(x), "tanh": lambda x, y: mt.tanh(x),
    "relu": lambda x, y: mt.relu(x), "maximum": lambda x, y: mt.maximum(x, y),
    "where": lambda x, y: mt.where(COND, x, y), "clip": lambda x, y: mt.clip(x, 0.7, 1.5),
    "sum": lambda x, y: x.sum(axis=0), "mean": lambda x, y: x.mean(axis=1, keepdims=True),
    "max": lambda x, y: x.max(axis=-1), "reshape": lambda x, y: x.reshape(-1),
    "transpose": lambda x, y: x.transpose(1, 0), "T": lambda x, y: x.T,
    "getitem": lambda x, y: x[:, [0, 0, 2]], "slice": lambda x, y: x[1:],
    "concatenate": lambda x, y: mt.concatenate([x, x], axis=1),
    "stack": lambda x, y: mt.stack([x, x]), "softmax": lambda x, y: mt.softmax(x),
    "log_softmax": lambda x, y: mt.log_softmax(x, axis=0), "scalars": lambda x, y: 1 - x / 2,
}


@pytest.mark.parametrize("name", FLOAT32_OPS)
def test_float32_stays_float32_through_forward_and_backward(name):
    rng = np.random.default_rng(8)
    x = mt.Tensor(rng.uniform(0.5, 2, (3, 4)), requires_grad=True)
    y = mt.Tensor(rng.uniform(0.5, 2, (4,)), requires_grad=True)
    hidden = x * 1.0  # an inner node, so an upcast can't hide behind the leaf's cast
    hidden.retain_grad()
    out = FLOAT32_OPS[name](hidden, y)
    assert out.dtype == np.float32
    out.backward(rng.standard_normal(out.shape))  # a float64 upstream is taken as float32
    for t in (hidden, x) + ((y,) if y.grad is not None else ()):
        assert t.grad.dtype == np.float32 and t.grad.shape == t.shape, name


# -- long graphs ---------------------------------------------------------------------------------

def chain(start: mt.Tensor, ops: int) -> mt.Tensor:
    """``ops`` primitive ops: x = x * 0.999 + 0.001, repeated."""
    x = start
    for _ in range(ops // 2):
        x = x * 0.999 + 0.001
    return x


@pytest.mark.slow
def test_a_100000_op_chain_backprops_without_recursion():
    x0 = leaf([2.0, 3.0])
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # a recursive walk would need 100,000 frames
    try:
        out = chain(x0, 100_000)
        out.sum().backward()
        del out
    finally:
        sys.setrecursionlimit(limit)
    np.testing.assert_allclose(x0.grad, [0.999 ** 50_000] * 2, rtol=1e-9)


def test_a_10000_step_recurrence_matches_torch(torch):
    rng = np.random.default_rng(9)
    w0, b0, h0 = rng.standard_normal((3, 3)) * 0.5, rng.standard_normal(3), rng.standard_normal(3)
    w, b = leaf(w0), leaf(b0)
    tw, tb = (torch.tensor(a, requires_grad=True) for a in (w0, b0))
    h, th = mt.Tensor(h0, dtype=np.float64), torch.tensor(h0)
    for _ in range(10_000):
        h, th = mt.tanh(h @ w + b), torch.tanh(th @ tw + tb)
    h.sum().backward()
    th.sum().backward()
    np.testing.assert_allclose(h.data, th.detach().numpy(), rtol=1e-9)
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), rtol=1e-9, atol=1e-12)


def best_time(fn, repeats: int) -> float:
    """Fastest of ``repeats`` runs, with the cyclic garbage collector paused.

    Its full passes walk the whole heap whenever it has grown by a quarter, a
    cost set by the test process's heap, not by microtensor (amortised linear).
    """
    times = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    finally:
        if enabled:
            gc.enable()
    return min(times)


def build_then_backward(graphs) -> None:
    """Build every graph first, then backprop each: all of them are in memory at once."""
    for loss in [make() for make in graphs]:
        loss.backward()


@pytest.mark.slow
def test_time_per_op_stays_flat_from_1000_to_100000_ops():
    # Both runs make 100,000 ops (100 chains of 1,000, or one of 100,000), so they use the
    # same memory and only the chain length differs. (One 1,000-op graph fits in the CPU
    # cache and a 100,000-op one doesn't, which alone can cost 2-3x on a busy machine.)
    def chains(length):
        make = [lambda: chain(mt.Tensor(np.ones(4), requires_grad=True), length).sum()]
        return make * (100_000 // length)
    short = best_time(lambda: build_then_backward(chains(1_000)), repeats=2)
    long = best_time(lambda: build_then_backward(chains(100_000)), repeats=2)
    assert long / short < 2, (f"{short * 10:.2f} us/op in chains of 1,000 ops, "
                              f"{long * 10:.2f} in one of 100,000")


# -- slicing inside a loop ------------------------------------------------------------------------

def weighted_slices(x: mt.Tensor) -> mt.Tensor:
    """sum over t of (t + 1) * sum(x[:, t]): one slice per time step, as a recurrent layer does."""
    total = x[:, 0].sum()
    for t in range(1, x.shape[1]):
        total = total + (x[:, t] * (t + 1)).sum()
    return total


@pytest.mark.parametrize("through_an_op", [False, True])
def test_slices_in_a_loop_get_the_right_gradient(through_an_op):
    x = leaf(np.random.default_rng(10).standard_normal((2, 6, 3)))
    source = x * 1.0 if through_an_op else x  # an inner node's buffer, or a leaf's
    weighted_slices(source).backward()
    expected = np.broadcast_to(np.arange(1.0, 7.0)[None, :, None], x.shape)
    np.testing.assert_array_equal(x.grad, expected)


@pytest.mark.slow
def test_slices_in_a_loop_share_one_gradient_buffer():
    # 1,000 steps either way: 20 inputs of 50 steps, or one of 1,000 (same memory, as above).
    # A full-size zero array per slice makes a step of the long input ~10x slower.
    def inputs(steps):
        xs = [mt.Tensor(np.ones((8, steps, 128)), requires_grad=True)
              for _ in range(1_000 // steps)]
        return [lambda x=x: weighted_slices(x) for x in xs]
    short, long = inputs(50), inputs(1_000)
    short_time = best_time(lambda: build_then_backward(short), repeats=3)
    long_time = best_time(lambda: build_then_backward(long), repeats=3)
    assert long_time / short_time < 3, (f"{short_time * 1e3:.0f} us/step with T=50, "
                                        f"{long_time * 1e3:.0f} with T=1,000")


# -- gradcheck -----------------------------------------------------------------------------------

def square_with_wrong_gradient(a: mt.Tensor) -> mt.Tensor:
    """a**2 whose backward says 3a instead of 2a."""
    def backward(g):
        return (g * 3 * a.data,)
    return mt.Tensor._from_op(a.data ** 2, "bad_square", (a,), backward)


def test_gradcheck_passes_a_correct_composite():
    inputs = [leaf([[0.5, -1.0], [2.0, 0.1]]), leaf([0.3, 0.7])]
    assert mt.gradcheck(lambda a, b: mt.softmax(mt.tanh(a @ b) * a, axis=0), inputs)


def test_gradcheck_names_the_input_element_and_both_values():
    inputs = [leaf([1.0, 2.0]), leaf([0.5, -1.5, 2.5])]
    with pytest.raises(mt.GradcheckError) as caught:
        mt.gradcheck(lambda a, b: a.sum() * square_with_wrong_gradient(b), inputs)
    message = str(caught.value)
    assert "input 1 (shape (3,))" in message and "element (" in message
    found = re.search(r"analytic (\S+) vs numeric (\S+) ", message)
    assert found, message
    analytic, numeric = map(float, found.groups())
    assert analytic == pytest.approx(1.5 * numeric, rel=1e-5)  # 3b against 2b


def test_gradcheck_points_at_the_one_wrong_element():
    def identity_with_a_bump(a):
        def backward(g):
            wrong = g.copy()
            wrong[1, 2] += 0.1
            return (wrong,)
        return mt.Tensor._from_op(a.data.copy(), "bumped", (a,), backward)
    x = leaf(np.ones((2, 3)))
    with pytest.raises(mt.GradcheckError, match=r"input 0 \(shape \(2, 3\)\) element \(1, 2\)"):
        mt.gradcheck(identity_with_a_bump, [x])


# -- random expression graphs against torch ------------------------------------------------

# Every node has a shape in {3, 1} x {4, 1}, so any two broadcast together.
LEAF_SHAPES = [(3, 4), (3, 4), (1, 4), (3, 1)]
UNARY_DAG = {
    "tanh": (mt.tanh, lambda t: t.tanh()),
    "sigmoid": (mt.sigmoid, lambda t: t.sigmoid()),
    "neg": (lambda x: -x, lambda t: -t),
    "exp of tanh": (lambda x: mt.exp(mt.tanh(x)), lambda t: t.tanh().exp()),
    "log(1 + x^2)": (lambda x: mt.log(x ** 2 + 1), lambda t: (t ** 2 + 1).log()),
    "relu": (mt.relu, lambda t: t.relu()),
    "affine": (lambda x: 1 - x * 0.5, lambda t: 1 - t * 0.5),
    "clip": (lambda x: mt.clip(x, -0.5, 0.5), lambda t: t.clamp(-0.5, 0.5)),
    "softmax": (mt.softmax, lambda t: t.softmax(-1)),
    "log_softmax rows": (lambda x: mt.log_softmax(x, axis=0), lambda t: t.log_softmax(0)),
    "sum rows": (lambda x: x.sum(axis=0, keepdims=True), lambda t: t.sum(0, keepdim=True)),
    "mean cols": (lambda x: x.mean(axis=1, keepdims=True), lambda t: t.mean(1, keepdim=True)),
    "max cols": (lambda x: x.max(axis=-1, keepdims=True), lambda t: t.amax(-1, keepdim=True)),
}
BINARY_DAG = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / (b * b + 1), lambda a, b: a / (b * b + 1)),
    "maximum": (mt.maximum, lambda a, b: a.maximum(b)),
}
SHAPED_DAG = {  # (applies to shape, mt, torch); falls back to add when it doesn't apply
    "matmul": (lambda s: s[1] == 4, lambda x, w: x @ w, lambda t, w: t @ w),
    "gather rows": (lambda s: s[0] == 3, lambda x, w: x[np.array([0, 2, 2])],
                    lambda t, w: t[[0, 2, 2]]),
    "reverse rows": (lambda s: True, lambda x, w: mt.concatenate([x[-1:], x[:-1]], axis=0),
                     lambda t, w: t.roll(1, 0)),
}
DAG_OPS = sorted(UNARY_DAG) + sorted(BINARY_DAG) + sorted(SHAPED_DAG)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_random_expression_graphs_match_torch(torch, data, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in LEAF_SHAPES] + [rng.standard_normal((4, 4)) * 0.5]
    leaves = [leaf(a) for a in arrays]
    tleaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    nodes, tnodes = list(leaves[:-1]), list(tleaves[:-1])  # the last leaf is matmul's weight

    for _ in range(data.draw(st.integers(1, 12), label="ops")):
        name = data.draw(st.sampled_from(DAG_OPS), label="op")
        i = data.draw(st.integers(0, len(nodes) - 1), label="a")
        j = data.draw(st.integers(0, len(nodes) - 1), label="b")
        a, ta, b, tb = nodes[i], tnodes[i], nodes[j], tnodes[j]
        if name in UNARY_DAG:
            node, tnode = UNARY_DAG[name][0](a), UNARY_DAG[name][1](ta)
        elif name in BINARY_DAG:
            node, tnode = BINARY_DAG[name][0](a, b), BINARY_DAG[name][1](ta, tb)
        elif SHAPED_DAG[name][0](a.shape):
            node, tnode = SHAPED_DAG[name][1](a, leaves[-1]), SHAPED_DAG[name][2](ta, tleaves[-1])
        else:
            node, tnode = a + b, ta + tb
        np.testing.assert_allclose(node.data, tnode.detach().numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)
        nodes.append(node)
        tnodes.append(tnode)

    # Every node feeds the loss with its own random weight: all of them get a gradient.
    weights = [rng.standard_normal(n.shape) for n in nodes[len(LEAF_SHAPES):]]
    loss = sum(((n * w).sum() for n, w in zip(nodes[len(LEAF_SHAPES):], weights, strict=True)),
               start=mt.Tensor(0.0, dtype=np.float64))
    tloss = sum((t * torch.tensor(w)).sum()
                for t, w in zip(tnodes[len(LEAF_SHAPES):], weights, strict=True))
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-9)
    for i, (mine, ref) in enumerate(zip(leaves, tleaves, strict=True)):
        expected = ref.grad.numpy() if ref.grad is not None else np.zeros(ref.shape)
        got = mine.grad if mine.grad is not None else np.zeros(mine.shape)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10, err_msg=f"leaf {i}")


def test_a_zero_dim_tensor_used_twice_gets_both_gradients(torch):
    """L = a * tanh(a), a = x * w with 0-d x and w: a's gradient is the sum of two parts."""
    x = mt.Tensor(0.5, requires_grad=True, dtype=np.float64)
    w = mt.Tensor(-1.5, requires_grad=True, dtype=np.float64)
    a = x * w
    (a * mt.tanh(a)).backward()
    tx = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(-1.5, dtype=torch.float64, requires_grad=True)
    ta = tx * tw
    (ta * torch.tanh(ta)).backward()
    assert x.grad == pytest.approx(tx.grad.item(), abs=1e-12)
    assert w.grad == pytest.approx(tw.grad.item(), abs=1e-12)
