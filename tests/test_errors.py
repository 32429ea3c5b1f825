"""Bad input gets a message that names the op and the shapes it got, as a user reads it."""

from __future__ import annotations

import re

import numpy as np
import pytest

import microtensor as mt


def ones(*shape: int, requires_grad: bool = False) -> mt.Tensor:
    return mt.Tensor(np.ones(shape), requires_grad=requires_grad)


def raises(kind: type[Exception], message: str):
    """Expect ``kind`` whose message contains ``message`` literally."""
    return pytest.raises(kind, match=re.escape(message))


def test_matmul_mismatch_names_both_shapes_and_the_inner_sizes():
    with raises(mt.ShapeError, "matmul: shapes (32, 10) and (12, 128) don't line up: 10 != 12"):
        ones(32, 10) @ ones(12, 128)
    with raises(mt.ShapeError, "matmul: shapes (3,) and (4,) don't line up: 3 != 4"):
        ones(3) @ ones(4)


def test_matmul_names_batch_axes_and_scalars():
    with raises(mt.ShapeError, "matmul: batch axes of shapes (2, 2, 3) and (3, 3, 4)"):
        ones(2, 2, 3) @ ones(3, 3, 4)
    with raises(mt.ShapeError, "matmul: needs at least 1-D operands, got shapes (2, 3) and ()"):
        ones(2, 3) @ mt.Tensor(2.0)


@pytest.mark.parametrize("op,fn", [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b), ("maximum", mt.maximum), ("add", lambda a, b: b + a.data),
])
def test_broadcasting_mismatch_names_the_op_and_both_shapes(op, fn):
    with pytest.raises(mt.ShapeError) as caught:
        fn(ones(2, 3), ones(4))
    message = str(caught.value)
    assert message.startswith(f"{op}: ")
    assert "(2, 3)" in message and "(4,)" in message and "broadcast" in message


def test_broadcast_errors_are_value_errors_too():
    with pytest.raises(ValueError):
        ones(2, 3) * ones(2)


def test_where_mismatch_names_all_three_shapes():
    with raises(mt.ShapeError, "where: condition (2, 3), a (4,) and b ()"):
        mt.where(np.ones((2, 3), dtype=bool), ones(4), 0.0)


def test_reshape_names_both_shapes():
    with pytest.raises(mt.ShapeError) as caught:
        ones(2, 3).reshape(4, 2)
    message = str(caught.value)
    assert message.startswith("reshape: ")
    assert "(2, 3)" in message and "(4, 2)" in message and "6 elements" in message


def test_concatenate_mismatch_names_both_shapes_and_the_axis():
    with raises(mt.ShapeError, "concatenate: shapes (2, 3) and (3, 2) differ; "
                               "expected equal shapes except on axis 0"):
        mt.concatenate([ones(2, 3), ones(3, 2)], axis=0)
    with raises(mt.ShapeError, "concatenate: shapes (2, 3) and (2, 3, 1) differ"):
        mt.concatenate([ones(2, 3), ones(2, 3, 1)], axis=0)


def test_stack_mismatch_names_both_shapes():
    with raises(mt.ShapeError, "stack: shapes (2, 3) and (2, 4) differ; expected equal shapes"):
        mt.stack([ones(2, 3), ones(2, 4)])
    with raises(ValueError, "stack: needs at least one tensor"):
        mt.stack([])


@pytest.mark.parametrize("join,axis", [(mt.concatenate, 2), (mt.concatenate, -3),
                                       (mt.stack, 3), (mt.stack, -4)])
def test_joining_on_a_missing_axis_is_an_error_not_a_wrapped_axis(join, axis):
    with pytest.raises(mt.ShapeError) as caught:
        join([ones(2, 3), ones(2, 3)], axis=axis)
    message = str(caught.value)
    assert message.startswith(f"{join.__name__}: axis {axis}") and "(2, 3)" in message


def test_concatenate_of_0d_tensors_says_why():
    with raises(mt.ShapeError, "concatenate: axis 0 is out of range"):
        mt.concatenate([mt.Tensor(1.0), mt.Tensor(2.0)])


def test_backward_on_a_non_scalar_without_grad_names_the_shape():
    y = ones(2, 3, requires_grad=True) * 2
    with pytest.raises(RuntimeError) as caught:
        y.backward()
    message = str(caught.value)
    assert "single-element" in message and "(2, 3)" in message and "grad=" in message


def test_backward_with_a_grad_of_the_wrong_shape_names_both_shapes():
    y = ones(2, 3, requires_grad=True) * 2
    with raises(mt.ShapeError, "backward: grad has shape (3,) but the tensor has shape (2, 3)"):
        y.backward(np.ones(3))


def test_backward_on_a_tensor_that_does_not_require_grad_says_so():
    with raises(RuntimeError, "backward: this tensor does not require grad"):
        (ones(2) * 3).sum().backward()
    x = ones(2, requires_grad=True)
    with mt.no_grad():
        y = (x * 3).sum()
    with raises(RuntimeError, "no_grad()"):
        y.backward()


def test_index_out_of_range_names_index_and_shape():
    with raises(IndexError, "getitem: index 5 doesn't fit shape (2, 3)"):
        ones(2, 3)[5]


def test_bad_axes_name_the_op():
    with raises(mt.ShapeError, "sum: axis 2 is out of range for a 2-D tensor"):
        ones(2, 3).sum(axis=2)
    with raises(mt.ShapeError, "max: axis -2 is out of range for a 1-D tensor"):
        ones(3).max(axis=-2)
    with raises(mt.ShapeError, "transpose: axes (0, 0) are not a permutation"):
        ones(2, 3).transpose(0, 0)
    with raises(mt.ShapeError, "max: empty tensor of shape (0, 3)"):
        mt.Tensor(np.ones((0, 3))).max()


def test_type_errors_say_what_was_expected():
    with raises(TypeError, "pow: only a scalar exponent is supported, got Tensor"):
        ones(2) ** mt.Tensor(2.0)
    with raises(TypeError, "only floating tensors can require grad, got int64"):
        mt.Tensor([1, 2], dtype=np.int64, requires_grad=True)
    with raises(TypeError, "set_default_dtype: expected a floating dtype, got int32"):
        mt.set_default_dtype(np.int32)


def test_gradcheck_refuses_what_it_cannot_check():
    with raises(ValueError, "gradcheck: no input has requires_grad=True"):
        mt.gradcheck(lambda x: x * 2, [ones(3)])
    with raises(TypeError, "fn must return a float64 Tensor (got float32)"):
        mt.gradcheck(lambda x: mt.Tensor(x.data, dtype=np.float32),
                     [ones(3, requires_grad=True)])


def test_a_failed_op_leaves_its_inputs_untouched():
    a = ones(2, 3, requires_grad=True)
    with pytest.raises(mt.ShapeError):
        a @ ones(4, 5)
    np.testing.assert_array_equal(a.data, np.ones((2, 3)))
    assert a.grad is None and a.parents == ()
