"""The bad-input catalogue rows that concern the core (T12): each raises a tinygraph error that
also subclasses the matching builtin and names the op, the operands and their shapes or dtypes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.errors import (
    AxisError,
    DTypeError,
    GraphError,
    IndexOutOfRange,
    ShapeError,
    TinygraphError,
)

A = tg.Node(np.ones((2, 3)), name="a")
B = tg.Node(np.ones(4), name="b")


@contextmanager
def _raises(kind: type, builtin: type, *phrases: str) -> Iterator[None]:
    """Expect a tinygraph error of this kind (also a builtin) whose message has every phrase."""
    assert issubclass(kind, TinygraphError) and issubclass(kind, builtin)
    with pytest.raises(kind) as info:
        yield
    msg = str(info.value)
    for p in phrases:
        assert p in msg, f"{p!r} not in {msg!r}"


@pytest.mark.parametrize("op", [tg.add, tg.sub, tg.mul, tg.div, tg.maximum, tg.pow])
def test_broadcast_mismatch_names_op_operands_and_shapes(op: object) -> None:
    with _raises(ShapeError, ValueError, f"{op.__name__}:", "'a'", "(2, 3)", "'b'", "(4,)"):
        op(A, B)


def test_broadcast_mismatch_with_a_raw_array() -> None:
    with _raises(ShapeError, ValueError, "mul:", "'a'", "a constant (shape (4,)"):
        A * np.ones(4)


def test_matmul_inner_dimensions_name_both_shapes() -> None:
    W = tg.Node(np.ones((4, 2)), name="W")
    with _raises(ShapeError, ValueError, "matmul", "'a' (shape (2, 3)", "'W' (shape (4, 2)",
                 "3 != 4"):
        A @ W
    with _raises(ShapeError, ValueError, "matmul", "scalar"):
        A @ tg.Node(1.0)


def test_linear_names_x_w_and_the_bias_with_their_shapes() -> None:
    W = tg.Node(np.ones((3, 2)), name="W")
    with _raises(ShapeError, ValueError, "linear", "'a' (shape (2, 3)", "'B' (shape (2, 3)"):
        tg.linear(A, tg.Node(np.ones((2, 3)), name="B"), np.zeros(3))
    with _raises(ShapeError, ValueError, "linear", "bias", "'b' (shape (4,)", "(2, 2)"):
        tg.linear(A, W, B)
    with _raises(ShapeError, ValueError, "linear", "'W'"):
        tg.linear(A, tg.Node(np.ones(3), name="W"), np.zeros(1))
    assert tg.linear(A, W, np.zeros((2, 1))).shape == (2, 2)  # any bias that broadcasts


def test_mixed_dtypes_in_linear_promote_like_matmul_and_add() -> None:
    x32 = tg.Node(np.ones((2, 3), dtype=np.float32))
    w32 = tg.Node(np.ones((3, 2), dtype=np.float32))
    out = tg.linear(x32, w32, np.zeros(2))  # a float64 bias promotes, as x @ w + b would
    assert out.dtype == np.float64
    out.sum().backward()
    assert x32.grad.dtype == np.float32 and w32.grad.dtype == np.float32
    assert tg.linear(x32, w32, np.zeros(2, dtype=np.float32)).dtype == np.float32


def test_backward_on_a_non_scalar_without_a_gradient() -> None:
    with _raises(GraphError, RuntimeError, "backward", "not a scalar", "(2, 3)"):
        (A * 2.0).backward()


def test_backward_with_a_gradient_of_the_wrong_shape() -> None:
    with _raises(ShapeError, ValueError, "backward", "grad has shape (3,)", "(2, 3)"):
        (A * 2.0).backward(np.ones(3))
    y = A * 2.0
    y.backward(np.ones((2, 3)))  # the right shape works, and a scalar root accepts a float
    tg.sum(A).backward(2.0)


@pytest.mark.parametrize(("data", "desc"), [
    (1 + 2j, "complex"),
    (np.complex128(1j), "complex128"),
    (np.array([1j]), "complex128"),
    (np.array([object()]), "object"),
    (np.array(["x"]), "<U1"),
    ("x", "str"),
    (None, "None"),
    (np.array([1.0], dtype=np.float16), "float16"),
    ([1.0, "x"], "<U32"),
])
def test_data_that_is_not_float(data: object, desc: str) -> None:
    with _raises(DTypeError, TypeError, "Node('w')", desc, "astype(np.float64)"):
        tg.Node(data, name="w")


def test_non_float_operands_in_ops_are_named() -> None:
    with _raises(DTypeError, TypeError, "add", "complex128"):
        A + np.ones((2, 3), dtype=complex)
    with _raises(DTypeError, TypeError, "where", "boolean"):
        tg.where(np.ones(3), B[:3], 0.0)


def test_python_ints_are_numbers() -> None:
    assert tg.Node(3).data == 3.0 and isinstance(tg.Node(3).data, float)
    assert tg.Node([1, 2]).dtype == np.float64


def test_mixed_float32_and_float64_promote_and_gradients_keep_each_dtype() -> None:
    # Documented: the forward follows numpy's promotion (float32 op float64 -> float64); each
    # gradient comes back in its own node's dtype.
    x32 = tg.Node(np.ones(3, dtype=np.float32))
    x64 = tg.Node(np.full(3, 2.0))
    y = tg.sum(x32 * x64)
    assert y.is_scalar and (x32 * x64).dtype == np.float64
    y.backward()
    assert x32.grad.dtype == np.float32 and x64.grad.dtype == np.float64
    np.testing.assert_array_equal(x32.grad, [2.0, 2.0, 2.0])
    z = tg.sum(x32 * x32)
    assert (x32 * x32).dtype == np.float32 and isinstance(z.data, float)


@pytest.mark.parametrize(("call", "op"), [
    (lambda: tg.sum(A, axis=2), "sum"),
    (lambda: tg.mean(A, axis=-3), "mean"),
    (lambda: tg.max(A, axis=(0, 5)), "max"),
    (lambda: tg.min(A, axis=2), "min"),
    (lambda: tg.logsumexp(A, axis=2), "logsumexp"),
    (lambda: tg.softmax(A, axis=2), "softmax"),
    (lambda: tg.log_softmax(A, axis=-3), "log_softmax"),
    (lambda: tg.concat([A, A], axis=2), "concat"),
    (lambda: tg.stack([A, A], axis=3), "stack"),
    (lambda: tg.transpose(A, (0, 2)), "transpose"),
])
def test_axis_out_of_range(call: object, op: str) -> None:
    with _raises(AxisError, ValueError, f"{op}:", "ax", "(2, 3)"):
        call()
    assert issubclass(AxisError, IndexError)  # numpy's AxisError is both, so is ours


def test_reshape_size_mismatch() -> None:
    with _raises(ShapeError, ValueError, "reshape", "'a' (shape (2, 3)", "6 elements", "(4, 2)"):
        tg.reshape(A, (4, 2))


@pytest.mark.parametrize("op", [tg.max, tg.min, tg.mean])
def test_reductions_over_an_empty_axis(op: object) -> None:
    e = tg.Node(np.ones((0, 3)), name="e")
    with _raises(AxisError, ValueError, f"{op.__name__}:", "empty axis", "'e' (shape (0, 3)"):
        op(e, axis=0)
    assert op is tg.mean or op(e, axis=1).shape == (0,)  # non-empty axes are fine


def test_index_out_of_range() -> None:
    with _raises(IndexOutOfRange, IndexError, "getitem", "'a' (shape (2, 3)"):
        A[5]


def test_a_user_op_whose_vjp_returns_the_wrong_shape() -> None:
    bad = tg.primitive("bad_shape_op", lambda x: x * 2, lambda g, out, x: np.ones(7))
    with _raises(GraphError, RuntimeError, "bad_shape_op", "input 1", "'a'", "(7,)", "(2, 3)"):
        tg.sum(bad(A)).backward()


@pytest.mark.parametrize(("rule", "desc"), [
    (lambda g, out, x: g > 0, "bool"),
    (lambda g, out, x: np.ones(np.shape(x), dtype=int), "int64"),
    (lambda g, out, x: "0", "str"),
    (lambda g, out, x: None, "NoneType"),
])
def test_a_user_op_whose_vjp_returns_the_wrong_dtype(rule: object, desc: str) -> None:
    bad = tg.primitive("bad_dtype_op", lambda x: x * 2, rule)
    with _raises(GraphError, RuntimeError, "bad_dtype_op", "input 1", "'a'", desc):
        tg.sum(bad(A)).backward()


def test_a_user_op_may_not_replace_a_builtin() -> None:
    with _raises(GraphError, RuntimeError, "'exp'", "built-in"):
        tg.primitive("exp", np.exp, lambda g, out, x: g * out)


def test_arrays_backward_needs_are_locked_against_writes() -> None:
    x = tg.Node(np.array([1.0, 2.0]), name="x")
    y = tg.exp(x)
    with pytest.raises(ValueError, match="read-only"):  # numpy's lock on the node's array
        x.data[0] = 5.0
    with pytest.raises(ValueError, match="read-only"):
        y.data[0] = 5.0
    with _raises(GraphError, RuntimeError, "setitem", "'x'", "in place"):
        x[0] = 5.0
    src = np.array([1.0, 2.0])
    z = tg.Node(src)
    src[0] = 9.0  # the caller's array is copied, not locked
    assert z.data[0] == 1.0
    tg.sum(y).backward()
    np.testing.assert_allclose(x.grad, np.exp([1.0, 2.0]))


def test_rewiring_parents_is_refused_naming_the_node() -> None:
    p = tg.Node(1.0, name="p")
    q = p * 2.0
    r = q * 3.0
    with _raises(GraphError, RuntimeError, "fixed", "mul"):
        q.parents = (r, p)  # would make a cycle
    r.backward()
    assert p.grad == 6.0 and len(tg.walk(r)) == 5


def test_the_error_hierarchy() -> None:
    for kind, builtin in [(ShapeError, ValueError), (AxisError, ValueError),
                          (DTypeError, TypeError), (GraphError, RuntimeError),
                          (tg.AnomalyError, RuntimeError), (tg.InputError, ValueError),
                          (tg.LoadError, ValueError), (tg.GradcheckError, AssertionError),
                          (IndexOutOfRange, IndexError)]:
        assert issubclass(kind, TinygraphError) and issubclass(kind, builtin)
