"""No silent wrong gradients: private operand copies, frozen constants, edge values."""

from __future__ import annotations

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import losses, nn
from tinygraph.errors import AxisError, GraphError, ShapeError, TinygraphError

# --- arrays the caller changes after the forward pass --------------------------------------


def _grad_after_mutation(build: object, mutate: object) -> tuple[np.ndarray, np.ndarray]:
    """The gradient of x when the caller's array is left alone, and when it is changed after
    the forward pass and before backward()."""
    grads = []
    for change in (False, True):
        x = tg.Node(np.arange(12.0).reshape(4, 3) / 7.0)
        out, arr = build(x)  # type: ignore[operator]
        if change:
            mutate(arr)  # type: ignore[operator]
        out.backward()
        grads.append(x.grad.copy())
    return grads[0], grads[1]


def _fill_zero(a: np.ndarray) -> None:
    a[...] = 0


def _flip(a: np.ndarray) -> None:
    a[...] = ~a


@pytest.mark.parametrize(("build", "mutate"), [
    (lambda x: ((idx := np.array([0, 0, 2])), (x[idx] * np.arange(3.0)).sum())[::-1], _fill_zero),
    (lambda x: ((i := np.array([1, 3])), (x[i, np.array([0, 2])] * 2.0).sum())[::-1], _fill_zero),
    (lambda x: ((c := np.eye(4, 3, dtype=bool)), tg.where(c, x, 2.0 * x).sum())[::-1], _flip),
    (lambda x: ((y := np.array([0, 1, 2, 1])), losses.softmax_cross_entropy(x, y))[::-1],
     _fill_zero),
    (lambda x: ((y := np.array([0, 1, 2, 1])), losses.multiclass_hinge(x, y))[::-1], _fill_zero),
], ids=["fancy-index", "tuple-index", "where-cond", "ce-labels", "hinge-labels"])
def test_changing_the_callers_array_after_forward_does_not_change_the_gradient(
        build: object, mutate: object) -> None:
    before, after = _grad_after_mutation(build, mutate)
    assert np.array_equal(before, after)
    assert np.any(before != 0)


def test_cross_entropy_gradient_is_softmax_minus_onehot_even_after_label_change() -> None:
    s = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    y = np.array([2, 0])
    x = tg.Node(s)
    loss = losses.softmax_cross_entropy(x, y)
    y[:] = 1
    loss.backward()
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[[0, 1], [2, 0]] -= 1
    np.testing.assert_allclose(x.grad, p / 2, rtol=1e-12)


# --- constants ---------------------------------------------------------------------------


def test_shared_number_constants_cannot_be_changed_through_data() -> None:
    x = tg.Node(2.0)
    y = x * 3.0
    c = y.parents[1]
    with pytest.raises(GraphError, match="constant"):
        c.data = 100.0
    with pytest.raises(GraphError, match="constant"):
        tg.engine.replace_data(c, 100.0)
    assert (tg.Node(1.0) * 3.0).item() == 3.0  # every later x * 3.0 still multiplies by 3


def test_const_arrays_are_frozen_but_user_leaves_are_replaceable() -> None:
    c = tg.const(np.ones(3))
    with pytest.raises(TinygraphError, match="requires_grad=False"):
        c.data = np.zeros(3)
    assert np.array_equal(c.data, np.ones(3))
    leaf = tg.Node(np.ones(3), requires_grad=False)
    leaf.data = np.zeros(3)  # the README's "Replace data with node.data = new_value"
    assert np.array_equal(leaf.data, np.zeros(3))
    p = tg.Node(1.0)
    p.data = 5.0
    assert p.item() == 5.0


# --- edge values -------------------------------------------------------------------------


@pytest.mark.parametrize("x0", [0.0, 2.0, -3.0])
def test_x_to_the_zero_has_a_zero_gradient_even_at_zero(x0: float) -> None:
    x = tg.Node(x0)
    (x ** 0.0 + x ** 0).backward()
    assert x.grad == 0.0
    xa = tg.Node(np.array([0.0, 1.0, -2.0]))
    (xa ** 0.0).sum().backward()
    assert np.array_equal(xa.grad, np.zeros(3))
    # the whole leaf gradient stays finite: x**0 + x**2 at 0 is 0, not NaN
    z = tg.Node(np.array([0.0, 1.5]))
    (z ** 0 + z ** 2.0).sum().backward()
    np.testing.assert_array_equal(z.grad, [0.0, 3.0])


def test_pow_exponent_gradient_at_base_zero_is_zero_like_pytorch() -> None:
    a, b = tg.Node(np.array([0.0, 0.0, 2.0])), tg.Node(np.array([0.0, 1.5, 1.0]))
    (a ** b).sum().backward()
    np.testing.assert_allclose(b.grad, [0.0, 0.0, 2.0 * np.log(2.0)])
    np.testing.assert_allclose(a.grad, [0.0, 0.0, 1.0])


def test_nonzero_exponent_gradients_still_match_finite_differences() -> None:
    a, b = tg.Node(1.7), tg.Node(2.3)
    (a ** b).backward()
    h = 1e-6
    np.testing.assert_allclose(a.grad, ((1.7 + h) ** 2.3 - (1.7 - h) ** 2.3) / (2 * h),
                               rtol=1e-7)
    np.testing.assert_allclose(b.grad, (1.7 ** (2.3 + h) - 1.7 ** (2.3 - h)) / (2 * h),
                               rtol=1e-7)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("scale", [1.0, 1e2, 1e4])
def test_float32_softmax_near_1e4_is_accurate(op: str, scale: float) -> None:
    rng = np.random.default_rng(0)
    x64 = scale + rng.normal(size=(8, 10)) * 3
    x32 = x64.astype(np.float32)
    ref64 = x32.astype(np.float64)  # the same inputs, in float64
    sh = ref64 - ref64.max(axis=1, keepdims=True)
    ref = sh - np.log(np.exp(sh).sum(axis=1, keepdims=True))
    if op == "softmax":
        ref = np.exp(ref)
    got = getattr(tg, op)(tg.Node(x32), axis=1).data
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())


def test_float32_log_softmax_gradient_is_softmax_based() -> None:
    x = tg.Node(np.array([[1e4, 1e4 + 1, 1e4 - 2]], dtype=np.float32))
    w = np.array([[0.3, -1.0, 2.0]], dtype=np.float32)
    (tg.log_softmax(x, axis=1) * w).sum().backward()
    sh = np.array([0.0, 1.0, -2.0])
    p = np.exp(sh) / np.exp(sh).sum()
    want = w[0].astype(np.float64) - p * w.sum()
    np.testing.assert_allclose(x.grad[0], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("call", [
    lambda x: tg.logsumexp(x, axis=1),
    lambda x: tg.softmax(x, axis=1),
    lambda x: tg.log_softmax(x, axis=1),
    lambda x: tg.logsumexp(x),
], ids=["logsumexp", "softmax", "log_softmax", "logsumexp-all"])
def test_empty_axis_reductions_name_the_op(call: object) -> None:
    x = tg.Node(np.zeros((2, 0)))
    with pytest.raises(AxisError, match="empty axis") as info:
        call(x)  # type: ignore[operator]
    op = str(info.value).split(":")[0]
    assert op in ("logsumexp", "softmax", "log_softmax")


@pytest.mark.parametrize("shape", [(0, 3), (3, 0)])
def test_cross_entropy_over_nothing_is_a_shape_error(shape: tuple[int, int]) -> None:
    with pytest.raises(ShapeError, match="softmax_cross_entropy"):
        losses.softmax_cross_entropy(tg.Node(np.zeros(shape)), np.zeros(shape[0], np.int64))


def test_drawing_a_graph_with_an_empty_tensor_works() -> None:
    from tinygraph import viz

    x = tg.Node(np.zeros((0, 3)), name="x")
    y = (x * 2.0).sum()
    y.backward()
    src = viz.draw(y).source  # the DOT text: needs no Graphviz executable
    assert "0×3" in src


def test_a_byte_swapped_array_becomes_native_float_and_saves_and_loads(tmp_path) -> None:
    """'>f8' data is float64 to the user: kept as it came, it made files tg.load refused."""
    n = tg.Node(np.arange(3.0).astype(">f8"))
    assert n.data.dtype == np.float64 and n.data.dtype.isnative
    np.testing.assert_array_equal(n.data, [0.0, 1.0, 2.0])
    m = nn.TensorMLP(2, [3, 1], seed=0)
    for p in m.parameters():
        p.data = p.data.astype(p.data.dtype.newbyteorder(">"))
    tg.save(m, tmp_path / "m.npz")
    m2 = nn.TensorMLP(2, [3, 1], seed=1)
    tg.load(m2, tmp_path / "m.npz")
    for a, b in zip(m.parameters(), m2.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_a_masked_array_is_refused_not_unmasked_silently() -> None:
    x = np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0])
    with pytest.raises(tg.DTypeError, match="masked array.*filled"):
        tg.Node(x)
    with pytest.raises(tg.DTypeError, match="masked array"):
        tg.Node(np.ones(3)) * x


def test_an_integer_beyond_float_range_is_an_input_error_naming_the_op() -> None:
    with pytest.raises(tg.InputError, match=r"Node: an integer of 1329 bits"):
        tg.Node(10**400)
    with pytest.raises(tg.InputError, match=r"mul: right operand: an integer of \d+ bits"):
        tg.Node(1.0) * 10**400
    assert tg.Node(2**1000).data == 2.0**1000
