"""Python's protocols on a Tensor as a PyTorch user expects them: float/int/bool/format/iter
of a tensor, freed values refusing to convert, and no_grad/enable_grad as re-entrant
context managers and decorators (with or without parentheses)."""

from __future__ import annotations

import numpy as np
import pytest

import microtensor as mt


def _freed(shape=(2, 3)) -> mt.Tensor:
    """A tensor made by an op whose value was dropped, as mt.freeing_values() leaves it."""
    x = mt.Tensor(np.ones(shape), requires_grad=True)
    with mt.freeing_values():
        y = mt.freeing_intermediates(lambda: (x * 2.0) * 1.0).parents[0]
    return y


# -- float, int, format ---------------------------------------------------------------------
@pytest.mark.parametrize("value", [mt.Tensor(2.75), mt.Tensor([2.75]), mt.Tensor([[2.75]])])
def test_float_and_int_of_a_single_element_tensor(value, torch):
    reference = torch.tensor(value.data)
    assert float(value) == float(reference) == 2.75
    assert isinstance(float(value), float)
    assert int(mt.Tensor([-2.7])) == int(torch.tensor([-2.7])) == -2  # truncates, as torch
    assert isinstance(int(value), int)
    assert int(mt.Tensor(7, dtype=np.int64)) == 7


@pytest.mark.parametrize("convert", [float, int])
def test_float_and_int_of_many_elements_name_the_shape(convert, torch):
    with pytest.raises(ValueError):
        convert(torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        convert(mt.Tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"\(0,\)"):
        convert(mt.Tensor(np.ones(0)))


def test_format_spec_formats_the_value_and_an_empty_one_keeps_repr(torch):
    assert f"{mt.Tensor(2.0 / 3.0):.3f}" == f"{torch.tensor(2.0 / 3.0):.3f}" == "0.667"
    assert f"{mt.Tensor([[2.0 / 3.0]]):.2e}" == "6.67e-01"
    t = mt.Tensor([1.0, 2.0], requires_grad=True)
    assert f"{t}" == str(t) == repr(t)
    assert format(t) == repr(t)
    with pytest.raises(TypeError, match=r"\(2,\)"):
        f"{t:.3f}"


# -- bool -----------------------------------------------------------------------------------
def test_bool_is_the_truth_of_the_single_value(torch):
    for value in (0.0, 1.0, -0.5):
        for shape in ((), (1,), (1, 1)):
            t = mt.Tensor(np.full(shape, value))
            assert bool(t) is bool(torch.tensor(np.full(shape, value))) is bool(value)
    assert not mt.Tensor([0.0])
    assert mt.Tensor(3.0)  # a 0-d tensor used to raise "len() of unsized object"


@pytest.mark.parametrize("shape", [(2,), (2, 3), (0,)])
def test_bool_of_many_or_no_elements_is_ambiguous_and_names_the_shape(shape):
    with pytest.raises(ValueError, match="ambiguous") as error:
        bool(mt.Tensor(np.ones(shape)))
    assert str(shape) in str(error.value)
    with pytest.raises(ValueError, match="ambiguous"):
        if mt.Tensor(np.ones(shape)):
            pass


# -- iteration ------------------------------------------------------------------------------
def test_iterating_a_0d_tensor_raises_like_torch(torch):
    with pytest.raises(TypeError, match="0-d"):
        list(torch.tensor(1.0))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(mt.Tensor(1.0))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(mt.Tensor(1.0))


def test_iterating_gives_rows_that_are_graph_nodes():
    x = mt.Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    rows = list(x)
    assert len(rows) == 3
    assert all(row.op is not None and row.parents == (x,) for row in rows)
    np.testing.assert_array_equal(np.stack([row.data for row in rows]), x.data)
    sum(rows[0] * 1.0 + rows[2] * 3.0).backward()  # sum() iterates the (2,) result as well
    np.testing.assert_array_equal(x.grad, [[1.0, 1.0], [0.0, 0.0], [3.0, 3.0]])
    assert list(mt.Tensor(np.ones((0, 2)))) == []


# -- freed values ---------------------------------------------------------------------------
@pytest.mark.parametrize("use", [
    lambda t: t.numpy(),
    lambda t: t.item(),
    lambda t: float(t),
    lambda t: int(t),
    lambda t: bool(t),
    lambda t: f"{t:.3f}",
], ids=["numpy", "item", "float", "int", "bool", "format"])
@pytest.mark.parametrize("shape", [(), (2, 3)])
def test_conversions_of_a_freed_value_raise(use, shape):
    with pytest.raises(mt.FreedValueError, match="dropped"):
        use(_freed(shape))


def test_iterating_a_freed_value_raises_at_once():
    with pytest.raises(mt.FreedValueError, match=r"iter\(x\): x is the tensor mul \(2, 3\)"):
        iter(_freed())
    with pytest.raises(TypeError, match="0-d"):  # a 0-d tensor never iterates
        iter(_freed(()))


@pytest.mark.parametrize("compare", [
    lambda a, b: a > b, lambda a, b: a >= b, lambda a, b: a < b, lambda a, b: a <= b,
    lambda a, b: a == b, lambda a, b: a != b,
], ids=[">", ">=", "<", "<=", "==", "!="])
def test_comparisons_with_a_freed_value_raise(compare):
    freed, kept = _freed(), mt.Tensor(np.zeros((2, 3)))
    with pytest.raises(mt.FreedValueError, match="dropped"):
        compare(freed, 0.0)
    with pytest.raises(mt.FreedValueError, match="dropped"):
        compare(kept, freed)
    with pytest.raises(mt.FreedValueError, match="dropped"):
        compare(0.0, freed)  # reflected: float's comparison hands it to the tensor
    assert compare(kept, mt.Tensor(np.ones((2, 3)))).shape == (2, 3)  # kept values still compare


def test_repr_and_format_without_spec_of_a_freed_tensor_still_work():
    t = _freed()
    assert "freed" in repr(t)
    assert f"{t}" == repr(t)


# -- grad mode ------------------------------------------------------------------------------
def _records() -> bool:
    return (mt.Tensor([1.0], requires_grad=True) * 2.0).requires_grad


@pytest.mark.parametrize("mode, enabled", [(mt.no_grad, False), (mt.enable_grad, True)])
def test_grad_mode_decorators_with_and_without_parentheses(mode, enabled, torch):
    def sees_mode(a, b=1):
        """What the mode is inside."""
        return mt.is_grad_enabled(), _records(), a + b

    start = not enabled
    for decorated in (mode(sees_mode), mode()(sees_mode)):
        mt.context.state.grad_enabled = start
        assert decorated(1, b=2) == (enabled, enabled, 3)
        assert mt.is_grad_enabled() is start
        assert decorated.__name__ == "sees_mode"
        assert decorated.__doc__ == "What the mode is inside."
        assert decorated.__wrapped__ is sees_mode

    torch_mode = torch.no_grad if mode is mt.no_grad else torch.enable_grad
    assert torch_mode(sees_mode).__name__ == "sees_mode"  # torch accepts the bare form too


@pytest.mark.parametrize("mode, enabled", [(mt.no_grad, False), (mt.enable_grad, True)])
def test_grad_mode_is_restored_after_an_exception(mode, enabled):
    start = not enabled
    mt.context.state.grad_enabled = start

    @mode
    def bare():
        assert mt.is_grad_enabled() is enabled
        raise KeyError("boom")

    @mode()
    def called():
        assert mt.is_grad_enabled() is enabled
        raise KeyError("boom")

    for fails in (bare, called):
        with pytest.raises(KeyError):
            fails()
        assert mt.is_grad_enabled() is start
    with pytest.raises(KeyError), mode():
        assert mt.is_grad_enabled() is enabled
        raise KeyError("boom")
    assert mt.is_grad_enabled() is start


def test_the_same_grad_mode_object_can_be_reentered_and_nested():
    ng, eg = mt.no_grad(), mt.enable_grad()
    with ng:
        assert not _records()
    assert _records()
    with ng:  # a second time: used to raise AttributeError
        assert not _records()
        with ng:  # nested in itself
            assert not _records()
            with eg:
                assert _records()
                with eg:
                    assert _records()
                    with ng:
                        assert not _records()
                    assert _records()
                assert _records()
            assert not _records()
        assert not _records()
    assert _records()
    with pytest.raises(KeyError), ng:
        raise KeyError("boom")
    assert mt.is_grad_enabled()


def test_a_decorated_function_can_call_itself():
    @mt.no_grad
    def depth(n):
        assert not mt.is_grad_enabled()
        return 0 if n == 0 else 1 + depth(n - 1)

    assert depth(3) == 3
    assert mt.is_grad_enabled()


def test_grad_mode_rejects_something_that_is_not_a_function():
    with pytest.raises(TypeError, match="no_grad: expected a function to decorate, got int"):
        mt.no_grad(3)
