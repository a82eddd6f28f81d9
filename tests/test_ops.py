"""Per-op tests driven by the spec table: coverage (T1), gradients (T2), forward, mutation and
aliasing (T3), broadcasting and matmul ranks (T4), pinned kink conventions (T5)."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from specs import CORE_SPECS, OPERATORS, SPECS, OpSpec, nn_specs

import tinygraph as tg
from tinygraph import ops
from tinygraph.testing import gradcheck
from tinygraph.testing import strategies as tgs

# T3 and T4 need no finite differences; a quarter of T2's examples per op is plenty for them.
FEWER = settings(max_examples=max(50, settings.default.max_examples // 4))

# --- T1: coverage ------------------------------------------------------------------------------


def _covered() -> set[str]:
    return {name for spec in SPECS for name in spec.covers}


def _public_core_ops() -> set[str]:
    """Every builtin primitive and every op function tinygraph exports from its op module."""
    names = {n for n, p in tg.PRIMITIVES.items() if p.builtin}
    for n in tg.__all__:
        f = getattr(tg, n)
        if inspect.isfunction(f) and f.__module__ == ops.__name__:
            names.add(n)
    return names


def test_every_public_op_has_a_spec_row() -> None:
    missing = sorted(_public_core_ops() - _covered())
    assert not missing, f"ops without a row in tests/specs.py: {missing}"


def test_every_node_operator_has_a_spec_row() -> None:
    for name in OPERATORS:
        assert hasattr(tg.Node, name), name
    missing = sorted(set(OPERATORS) - _covered())
    assert not missing, f"Node operators without a row in tests/specs.py: {missing}"


def test_a_new_op_without_a_row_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    # The coverage check must see a freshly added builtin: simulate one.
    fake = tg.Primitive("frobnicate", np.negative, (lambda g, out, x: -g,), builtin=True)
    monkeypatch.setitem(tg.PRIMITIVES, "frobnicate", fake)
    assert "frobnicate" in _public_core_ops() - _covered()


def test_spec_rows_are_well_formed() -> None:
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names)), "spec names must be unique"
    for s in SPECS:
        assert isinstance(s, OpSpec) and s.covers
        if s.rtol > 1e-6 or s.atol > 1e-6:
            assert s.reason, s.name
    with pytest.raises(ValueError, match="reason"):
        OpSpec("loose", tg.exp, st.nothing(), None, rtol=1e-4)


def test_nn_rows_are_included_when_present() -> None:
    assert SPECS[: len(CORE_SPECS)] == CORE_SPECS
    assert SPECS[len(CORE_SPECS):] == nn_specs()


# --- T2: gradients vs finite differences ---------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@given(data=st.data())
def test_gradient_matches_finite_differences(spec: OpSpec, data: st.DataObject) -> None:
    case = data.draw(spec.inputs, label="case")
    assert gradcheck(lambda *xs: spec.fn(*xs, **case.kwargs), *case.args,
                     rtol=spec.rtol, atol=spec.atol)


# --- T3: forward vs numpy, no mutation, no aliasing ---------------------------------------------


def _arrays_of(x: object) -> list[np.ndarray]:
    return [x] if isinstance(x, np.ndarray) else []


@pytest.mark.parametrize("spec", [s for s in SPECS if s.ref is not None], ids=lambda s: s.name)
@FEWER
@given(data=st.data())
def test_forward_matches_numpy_and_nothing_is_mutated_or_aliased(spec: OpSpec,
                                                                 data: st.DataObject) -> None:
    case = data.draw(spec.inputs, label="case")
    before = [np.array(a, copy=True) for a in case.args]
    nodes = [tg.Node(a) for a in case.args]
    out = spec.fn(*nodes, **case.kwargs)
    want = spec.ref(*[np.asarray(a, dtype=np.float64) for a in case.args], **case.kwargs)
    assert out.shape == np.shape(want)
    assert out.is_scalar == (np.ndim(want) == 0)
    np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-12)

    seed = data.draw(tgs.arrays(out.shape, -2, 2), label="upstream gradient")
    out.backward(seed)
    for a, b, n in zip(case.args, before, nodes, strict=True):
        np.testing.assert_array_equal(a, b)  # the caller's data
        np.testing.assert_array_equal(n.data, b)  # the node's data
        assert n.grad is not None and np.shape(n.grad) == np.shape(a)
    # Gradients share no memory with any input, any data, the seed, or one another.
    grads = [g for n in nodes for g in _arrays_of(n.grad)]
    others = [x for a in case.args for x in _arrays_of(a)] + [
        x for n in nodes for x in _arrays_of(n.data)] + _arrays_of(seed) + _arrays_of(out.data)
    for i, g in enumerate(grads):
        assert g.flags.writeable or g.base is None
        for o in others + grads[i + 1:]:
            assert not np.shares_memory(g, o)


# --- T4: broadcasting and matmul ranks -----------------------------------------------------------


def _sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | float:
    """Sum an explicitly broadcast gradient back to shape (numpy only, written out)."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    for k, s in enumerate(shape):
        if s == 1 and g.shape[k] != 1:
            g = g.sum(axis=k, keepdims=True)
    return float(g) if shape == () else g


@pytest.mark.parametrize("spec", [s for s in SPECS if s.elementwise], ids=lambda s: s.name)
@FEWER
@given(data=st.data())
def test_broadcast_gradient_is_the_summed_explicit_gradient(spec: OpSpec,
                                                            data: st.DataObject) -> None:
    case = data.draw(spec.inputs, label="case")
    nodes = [tg.Node(a) for a in case.args]
    out = spec.fn(*nodes, **case.kwargs)
    seed = data.draw(tgs.arrays(out.shape, -2, 2), label="upstream gradient")
    out.backward(seed)

    full = np.broadcast_shapes(*[np.shape(a) for a in case.args])
    explicit = [tg.Node(np.broadcast_to(np.asarray(a), full).copy() if full else a)
                for a in case.args]
    spec.fn(*explicit, **case.kwargs).backward(seed)
    for a, n, e in zip(case.args, nodes, explicit, strict=True):
        assert np.shape(n.grad) == np.shape(a)
        assert isinstance(n.grad, float) == isinstance(a, float)
        np.testing.assert_allclose(n.grad, _sum_to(np.asarray(e.grad), np.shape(a)),
                                   rtol=1e-12, atol=1e-12)


def _matmul_grads_reference(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> tuple:
    """numpy's matmul rules written out: promote vectors, broadcast batches, sum back."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    A = np.broadcast_to(a2, batch + a2.shape[-2:])
    B = np.broadcast_to(b2, batch + b2.shape[-2:])
    G = np.reshape(g, batch + (a2.shape[-2], b2.shape[-1]))
    ga = np.einsum("...nm,...km->...nk", G, B)
    gb = np.einsum("...nk,...nm->...km", A, G)
    return (np.reshape(_sum_to(ga, a2.shape), a.shape),
            np.reshape(_sum_to(gb, b2.shape), b.shape))


@FEWER
@given(shapes=tgs.matmul_shapes(max_batch_dims=3), data=st.data())
def test_matmul_every_rank(shapes: tuple, data: st.DataObject) -> None:
    sa, sb = shapes
    a = data.draw(hnp.arrays(np.float64, sa, elements=st.floats(-3, 3)), label="a")
    b = data.draw(hnp.arrays(np.float64, sb, elements=st.floats(-3, 3)), label="b")
    na, nb = tg.Node(a), tg.Node(b)
    out = na @ nb
    want = np.matmul(a, b)
    assert out.shape == want.shape
    np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-12)
    g = data.draw(tgs.arrays(out.shape, -2, 2), label="upstream gradient")
    out.backward(g)
    ga, gb = _matmul_grads_reference(a, b, np.asarray(g))
    assert np.shape(na.grad) == sa and np.shape(nb.grad) == sb
    np.testing.assert_allclose(na.grad, ga, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nb.grad, gb, rtol=1e-12, atol=1e-12)


# --- T5: pinned kink conventions (documented in tinygraph/ops.py) --------------------------------


@pytest.mark.parametrize("level", ["scalar", "tensor"])
@pytest.mark.parametrize(("op", "want"), [
    (tg.relu, 0.0),  # relu'(0) = 0
    (tg.abs, 0.0),  # abs'(0) = 0
    (tg.sqrt, math.inf),  # sqrt'(0) = inf
    (lambda x: tg.leaky_relu(x, 0.1), 0.1),  # the left slope at 0
])
def test_kinks_at_zero(op: object, want: float, level: str) -> None:
    x = tg.Node(0.0 if level == "scalar" else np.zeros(3))
    y = op(x)
    with np.errstate(divide="ignore"):  # sqrt'(0) = 0.5 / 0 is the pinned inf
        (y if level == "scalar" else tg.sum(y)).backward()
    np.testing.assert_array_equal(x.grad, want if level == "scalar" else np.full(3, want))


def test_max_and_min_ties_split_equally() -> None:
    x = tg.Node([1.0, 3.0, 3.0, 2.0])
    tg.max(x).backward()
    np.testing.assert_array_equal(x.grad, [0, 0.5, 0.5, 0])
    y = tg.Node([[2.0, 2.0, 2.0], [1.0, 5.0, 1.0]])
    tg.sum(tg.min(y, axis=1)).backward()
    np.testing.assert_array_equal(y.grad, [[1 / 3, 1 / 3, 1 / 3], [0.5, 0, 0.5]])


@pytest.mark.parametrize("op", [tg.maximum, tg.minimum])
def test_maximum_of_a_node_with_itself_passes_the_whole_gradient(op: object) -> None:
    a = tg.Node(1.5)
    op(a, a).backward()
    assert a.grad == 1.0  # two halves
    b, c = tg.Node(np.array([2.0, 1.0])), tg.Node(np.array([2.0, 3.0]))
    tg.sum(op(b, c)).backward()
    want_b = [0.5, 0.0] if op is tg.maximum else [0.5, 1.0]
    np.testing.assert_array_equal(b.grad, want_b)
    np.testing.assert_array_equal(c.grad, 1.0 - np.array(want_b))


def test_clip_passes_the_gradient_at_its_bounds() -> None:
    x = tg.Node([-2.0, -1.0, 0.0, 1.0, 2.0])
    tg.sum(tg.clip(x, -1.0, 1.0)).backward()
    np.testing.assert_array_equal(x.grad, [0, 1, 1, 1, 0])
    s = tg.Node(1.0)
    tg.clip(s, -1.0, 1.0).backward()
    assert s.grad == 1.0


def test_logsumexp_of_an_all_minus_inf_row() -> None:
    x = tg.Node([[-math.inf, -math.inf], [0.0, math.log(3.0)]])
    y = tg.logsumexp(x, axis=1)
    np.testing.assert_allclose(y.data, [-math.inf, math.log(4.0)], rtol=1e-15)
    y.backward(np.ones(2))
    np.testing.assert_allclose(x.grad, [[0.0, 0.0], [0.25, 0.75]], rtol=1e-15)
    assert np.isfinite(x.grad).all()


def test_kink_conventions_are_documented_in_ops() -> None:
    doc = " ".join(ops.__doc__.split())
    for phrase in ("relu'(0) = 0", "abs'(0) = 0", "sqrt'(0) = inf", "split the gradient equally",
                   "clip passes the gradient at its bounds", "all -inf row of logsumexp"):
        assert phrase in doc, phrase


def test_relu_of_nan_is_nan_on_a_number_as_on_an_array() -> None:
    """micrograd, numpy's maximum and torch keep a nan through ReLU; the number rule made it 0."""
    x = tg.Node(float("nan"))
    y = tg.relu(x)
    y.backward()
    assert math.isnan(y.data) and np.isnan(tg.relu(tg.Node(np.array([np.nan]))).data[0])
    assert x.grad == 0.0  # relu'(nan) = 0, as the array rule's mask gives
    f = tg.jit(lambda v: tg.relu(v) * 2.0)
    assert [f(tg.Node(v)).data for v in (1.0, -1.0)] == [2.0, 0.0]
    assert math.isnan(f(tg.Node(float("nan"))).data)
