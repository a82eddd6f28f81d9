"""Gradients of gradients: backward(create_graph=True), the functional API (grad, value_and_grad,
jacobian, hessian, hvp), gradgradcheck over the spec table, and closed forms (the Hessian of a
quadratic, tanh'' and sigmoid'', Newton's method)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from specs import SPECS, OpSpec

import tinygraph as tg
from tinygraph.errors import GradcheckError, GraphError
from tinygraph.testing import gradcheck, gradgradcheck
from tinygraph.testing import strategies as tgs

# --- the second-order column of the spec table ----------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@given(data=st.data())
def test_second_derivatives_match_finite_differences(spec: OpSpec, data: st.DataObject) -> None:
    if spec.second:
        pytest.skip(spec.second)
    case = data.draw(spec.inputs, label="case")
    assert gradgradcheck(lambda *xs: spec.fn(*xs, **case.kwargs), *case.args,
                         rtol=max(spec.rtol, 1e-5), atol=max(spec.atol, 1e-5), max_full=24)


@given(tgs.graphs())
def test_random_graphs_pass_gradgradcheck(g) -> None:
    fn, args = g
    assert gradgradcheck(fn, *args, max_full=24)


@given(tgs.tensor_graphs())
def test_random_tensor_graphs_pass_gradgradcheck(g) -> None:
    fn, args = g
    assert gradgradcheck(fn, *args, max_full=24)


# --- kinks: the second derivative is 0 on both sides and at the kink (the first derivative is
# piecewise constant there), the documented convention --------------------------------------------


@pytest.mark.parametrize("f", [
    tg.relu, tg.abs, lambda x: tg.leaky_relu(x, 0.1), lambda x: tg.clip(x, -1.0, 1.0),
    lambda x: tg.maximum(x, 0.0), lambda x: tg.minimum(x, 0.0),
], ids=["relu", "abs", "leaky_relu", "clip", "maximum", "minimum"])
@pytest.mark.parametrize("x", [-1.0, 0.0, 1.0, -0.5, 2.0])
def test_kinked_ops_have_zero_second_derivative(f, x: float) -> None:
    assert tg.grad(tg.grad(f))(x) == 0.0
    xs = np.array([x, -x, 0.0])
    np.testing.assert_array_equal(tg.hessian(lambda v: tg.sum(f(v)))(xs), np.zeros((3, 3)))


def test_max_ties_split_the_first_derivative_and_have_zero_second() -> None:
    x = np.array([1.0, 3.0, 3.0])
    np.testing.assert_array_equal(tg.grad(tg.max)(x), [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(tg.hessian(lambda v: tg.max(v * v))(x),
                                  np.diag([0.0, 1.0, 1.0]))  # d/dv (v·mask) = mask, times 2 / 2


# --- closed forms ---------------------------------------------------------------------------------


@given(st.integers(1, 5).flatmap(lambda n: st.tuples(tgs.arrays((n, n), -3, 3),
                                                     tgs.arrays((n,), -3, 3))))
def test_hessian_of_a_quadratic_is_a_plus_a_transpose(ax) -> None:
    A, x = ax
    H = tg.hessian(lambda v: v @ (A @ v))(x)
    np.testing.assert_allclose(H, A + A.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tg.grad(lambda v: v @ (A @ v))(x), (A + A.T) @ x, rtol=1e-12,
                               atol=1e-12)


@given(st.floats(-6, 6))
def test_tanh_and_sigmoid_second_derivatives(x: float) -> None:
    t = math.tanh(x)
    assert tg.grad(tg.grad(tg.tanh))(x) == pytest.approx(-2 * t * (1 - t * t), abs=1e-12)
    s = 1 / (1 + math.exp(-x))
    assert tg.grad(tg.grad(tg.sigmoid))(x) == pytest.approx(s * (1 - s) * (1 - 2 * s), abs=1e-12)
    # third derivative of tanh: -2 (1 - t²)(1 - 3t²)
    assert tg.grad(tg.grad(tg.grad(tg.tanh)))(x) == pytest.approx(
        -2 * (1 - t * t) * (1 - 3 * t * t), abs=1e-12)
    # tensor level: the diagonal Hessian of sum(tanh(v))
    v = np.array([x, x / 2, -x])
    tv = np.tanh(v)
    np.testing.assert_allclose(tg.hessian(lambda u: tg.sum(tg.tanh(u)))(v),
                               np.diag(-2 * tv * (1 - tv * tv)), atol=1e-12)


def test_derivatives_of_a_polynomial_to_any_order() -> None:
    f = lambda x: 3 * x**4 - x**3 + 2 * x  # noqa: E731
    want = [3 * 2**4 - 2**3 + 4, 12 * 8 - 3 * 4 + 2, 36 * 4 - 6 * 2, 72 * 2 - 6, 72.0, 0.0]
    d = f
    for k, w in enumerate(want):
        assert d(2.0) == pytest.approx(w), k
        d = tg.grad(d)


@given(st.integers(1, 6).flatmap(lambda n: st.tuples(tgs.arrays((n,), -2, 2),
                                                     tgs.arrays((n,), -2, 2),
                                                     tgs.arrays((n, n), -1, 1))))
def test_hvp_equals_the_dense_hessian_times_v(xvw) -> None:
    x, v, W = xvw

    def f(u):
        return tg.sum(tg.tanh(W @ u) ** 2) + tg.logsumexp(u * u)

    np.testing.assert_allclose(tg.hvp(f, x, v), tg.hessian(f)(x) @ v, rtol=1e-10, atol=1e-10)


def test_newton_minimizes_a_quadratic_in_one_step() -> None:
    A = np.array([[10.0, 2.0], [2.0, 1.0]])
    b = np.array([1.0, -3.0])

    def f(x):
        return 0.5 * x @ (A @ x) - b @ x

    x = np.array([5.0, 5.0])
    x = x - np.linalg.solve(tg.hessian(f)(x), tg.grad(f)(x))
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-12)
    assert np.linalg.norm(tg.grad(f)(x)) < 1e-12


def test_newton_converges_quadratically_on_a_convex_function() -> None:
    # f(x, y) = exp(x + y) + x² + 2y², strictly convex with its minimum where
    # e^(x+y) = -2x = -4y. From (1, 1), Newton reaches |grad| < 1e-12 in 6 steps, with the error
    # roughly squaring at each of the last steps; gradient descent needs hundreds.
    def f(v):
        return tg.exp(v[0] + v[1]) + v[0] ** 2 + 2 * v[1] ** 2

    x = np.array([1.0, 1.0])
    norms = []
    for _ in range(8):
        g = tg.grad(f)(x)
        norms.append(np.linalg.norm(g))
        if norms[-1] < 1e-12:
            break
        x = x - np.linalg.solve(tg.hessian(f)(x), g)
    assert norms[-1] < 1e-12 and len(norms) <= 7, norms
    assert norms[-2] < 1e-4 and norms[-1] < 10 * norms[-2] ** 2  # quadratic convergence
    e = math.exp(x[0] + x[1])
    assert e == pytest.approx(-2 * x[0]) and e == pytest.approx(-4 * x[1])


# --- backward(create_graph=True) ------------------------------------------------------------------


def test_create_graph_at_scalar_level_micrograd_style() -> None:
    a, b = tg.Node(0.7, name="a"), tg.Node(-1.3, name="b")
    out = tg.tanh(a * b + a * a)
    out.backward(create_graph=True)
    ga, gb = a.grad, b.grad
    assert isinstance(ga, tg.Node) and isinstance(gb, tg.Node)
    t = math.tanh(0.7 * -1.3 + 0.49)
    assert ga.data == pytest.approx((1 - t * t) * (-1.3 + 1.4))
    # d/da of d out/db = d²out/da db, by a plain second pass
    a.grad = b.grad = None
    gb.backward()
    # d out/db = (1 - t²) a, so d/da = (1 - t²) + a · (-2t (1 - t²)) (b + 2a)
    want = (1 - t * t) + 0.7 * (-2 * t * (1 - t * t)) * (-1.3 + 1.4)
    assert a.grad == pytest.approx(want)
    assert isinstance(a.grad, float)


def test_without_create_graph_nothing_changes() -> None:
    x = tg.Node(np.array([1.0, 2.0]))
    tg.sum(x * x).backward()
    assert type(x.grad) is np.ndarray
    y = tg.Node(3.0)
    (y * y).backward()
    assert type(y.grad) is float


def test_create_graph_gradient_is_differentiable_at_tensor_level() -> None:
    W = tg.Node(np.array([[1.0, -2.0], [0.5, 3.0]]), name="W")
    x = tg.Node(np.array([0.3, -0.2]), name="x")
    loss = tg.sum(tg.tanh(W @ x) ** 2)
    loss.backward(create_graph=True)
    gx = x.grad
    assert isinstance(gx, tg.Node) and gx.shape == (2,)
    penalty = tg.sum(gx * gx)  # a gradient penalty, as in WGAN-GP
    W.grad = x.grad = None
    penalty.backward()

    def pen(Wd, xd):
        # a Node argument makes grad record its pass: the result stays a function of Wd too
        return tg.sum(tg.grad(lambda u: tg.sum(tg.tanh(Wd @ u) ** 2))(tg.Node(xd)) ** 2)

    assert gradcheck(lambda Wn: pen(Wn, x.data), W.data)
    np.testing.assert_allclose(W.grad, tg.grad(lambda Wn: pen(Wn, x.data))(W.data), rtol=1e-10)


def test_backward_nodes_are_in_their_own_scope_and_draw() -> None:
    x = tg.Node(0.5, name="x")
    with tg.scope("model"):
        y = tg.tanh(x * 3.0)
    y.backward(create_graph=True)
    g = x.grad
    scopes = {n.scope for n in tg.walk(g) if n.op is not None}
    assert tg.engine.BACKWARD_SCOPE in scopes and "model" in scopes
    assert all(n.scope in ("model", tg.engine.BACKWARD_SCOPE) for n in tg.walk(g) if n.op)
    x.grad = None
    g.backward()
    viz = pytest.importorskip("tinygraph.viz")
    dot = viz.draw(g).source
    assert "cluster" in dot and tg.engine.BACKWARD_SCOPE in dot


def test_custom_primitive_with_node_friendly_rule_has_second_derivatives() -> None:
    cube = tg.primitive("cube_hess", lambda x: x**3, lambda g, out, x: g * 3 * x**2)
    assert tg.grad(tg.grad(cube))(2.0) == pytest.approx(12.0)
    assert gradgradcheck(lambda x: cube(x), np.array([0.5, -1.0]))


def test_custom_primitive_whose_rule_leaves_the_graph_raises_naming_it() -> None:
    sq = tg.primitive("sq_raw", lambda x: x * x,
                      lambda g, out, x: np.asarray(g.data if isinstance(g, tg.Node) else g)
                      * 2 * np.asarray(x.data if isinstance(x, tg.Node) else x))
    assert tg.grad(sq)(3.0) == 6.0  # first order still works
    with pytest.raises(GraphError, match="sq_raw"):
        tg.grad(tg.grad(sq))(3.0)
    saver = tg.primitive("saver_hess", lambda x: (x * 2, 2.0), lambda g, out, x, saved: g * saved,
                         saves=True)
    with pytest.raises(GraphError, match="saver_hess.*saves=True"):
        tg.grad(tg.grad(saver))(1.0)


def test_fused_primitives_have_second_derivatives() -> None:
    rng = np.random.default_rng(0)
    s, y = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    assert gradgradcheck(lambda z: tg.losses.softmax_cross_entropy(z, y), s)
    # the softmax CE Hessian of one row is diag(p) - p pᵀ, over the batch size
    H = tg.hessian(lambda z: tg.losses.softmax_cross_entropy(z, y))(s)
    p = np.exp(s[0]) / np.exp(s[0]).sum()
    np.testing.assert_allclose(H[0, :, 0, :], (np.diag(p) - np.outer(p, p)) / 4, atol=1e-12)
    ws = (rng.standard_normal((2, 3)), rng.standard_normal(3))
    assert gradgradcheck(lambda a, b: tg.losses.l2([a, b], 0.3) * tg.sum(a), *ws)
    x, w, b = rng.standard_normal((5, 2)), rng.standard_normal((2, 3)), rng.standard_normal(3)
    assert gradgradcheck(lambda x, w, b: tg.sum(tg.tanh(tg.linear(x, w, b))), x, w, b)


def test_gradgradcheck_catches_a_wrong_second_derivative() -> None:
    # right first derivative (g · 2x) from a rule whose Node form misses x's dependence
    bad = tg.primitive("sq_bad2", lambda x: x * x,
                       lambda g, out, x: g * 2 * (x.detach() if isinstance(x, tg.Node) else x))
    assert gradcheck(lambda x: bad(x), 1.5)
    with pytest.raises(GradcheckError, match="gradgradcheck"):
        gradgradcheck(lambda x: bad(x) * bad(x), 1.5)


# --- the functional API ---------------------------------------------------------------------------


def test_grad_returns_the_kind_of_number_it_was_given() -> None:
    assert type(tg.grad(lambda x: x * x)(3.0)) is float
    g = tg.grad(lambda x: tg.sum(x * x))(np.array([1.0, 2.0]))
    assert type(g) is np.ndarray and g.flags.writeable
    np.testing.assert_array_equal(g, [2.0, 4.0])
    gi = tg.grad(lambda x: tg.sum(x * x))(np.array([1, 2]))  # ints are float64 inputs
    assert gi.dtype == np.float64
    gf = tg.grad(lambda x: tg.sum(x * x))(np.array([1, 2], np.float32))
    assert gf.dtype == np.float32
    gn = tg.grad(lambda x: tg.sum(x * x))(tg.Node(np.array([1.0, 2.0])))
    assert isinstance(gn, tg.Node)
    np.testing.assert_array_equal(gn.data, [2.0, 4.0])


def test_value_and_grad_and_argnums() -> None:
    def f(x, y, k):
        return x * y * k + tg.exp(x)

    v, (gx, gy) = tg.value_and_grad(f, argnums=(0, 1))(1.0, 2.0, 3.0)
    assert v == pytest.approx(6 + math.e)
    assert (gx, gy) == (pytest.approx(6 + math.e), pytest.approx(3.0))
    assert tg.grad(f, argnums=1)(1.0, 2.0, 3.0) == pytest.approx(3.0)
    assert tg.grad(f, argnums=-1)(1.0, 2.0, 3.0) == pytest.approx(2.0)
    # mixed partials: d/dy d/dx (x y k) = k
    assert tg.grad(tg.grad(f, 0), 1)(1.0, 2.0, 3.0) == pytest.approx(3.0)


def test_functional_api_leaves_grad_alone() -> None:
    w = tg.Node(np.array([1.0, -1.0]), name="w")
    g = tg.grad(lambda x: tg.sum(tg.tanh(w * x)))(np.array([0.5, 0.2]))
    assert w.grad is None and g.shape == (2,)
    tg.hessian(lambda x: tg.sum(tg.tanh(w * x)))(np.array([0.5, 0.2]))
    assert w.grad is None


def test_grad_of_a_function_that_does_not_depend_on_x_is_zero() -> None:
    assert tg.grad(lambda x: 3.0)(1.0) == 0.0
    np.testing.assert_array_equal(tg.grad(lambda x: tg.Node(2.0))(np.ones(3)), np.zeros(3))
    assert tg.grad(tg.grad(lambda x: 2 * x))(1.0) == 0.0


def test_jacobian_shapes_and_values() -> None:
    x = np.array([0.1, -0.4, 0.3])
    J = tg.jacobian(lambda v: tg.tanh(v) * 2)(x)
    np.testing.assert_allclose(J, np.diag(2 * (1 - np.tanh(x) ** 2)), atol=1e-15)
    M = np.arange(6.0).reshape(2, 3)
    J2 = tg.jacobian(lambda v: M @ v)(x)
    np.testing.assert_array_equal(J2, M)
    J3 = tg.jacobian(lambda m: m.T @ x)(np.ones((3, 2)))
    assert J3.shape == (2, 3, 2)
    assert tg.jacobian(lambda v: v * 3.0)(2.0) == 3.0


def test_closures_over_the_outer_variable_are_differentiated() -> None:
    # d/dx [x · d/dy (x y)] = d/dx [x · x] = 2x: the inner grad must keep x in the graph
    f = tg.grad(lambda x: x * tg.grad(lambda y: x * y)(1.0))
    assert f(3.0) == pytest.approx(6.0)


def test_functional_errors_are_clear() -> None:
    with pytest.raises(tg.ShapeError, match="jacobian"):
        tg.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(tg.ArgTypeError, match="argnums"):
        tg.grad(lambda x: x, argnums="0")
    with pytest.raises(tg.ArgTypeError, match="callable"):
        tg.hessian(3)
    with pytest.raises(tg.IndexOutOfRange, match="argnums 2"):
        tg.grad(lambda x: x, argnums=2)(1.0)
    with pytest.raises(tg.ShapeError, match="hvp"):
        tg.hvp(lambda x: tg.sum(x), np.ones(3), np.ones(2))


@settings(max_examples=20)
@given(st.floats(-2, 2), st.floats(-2, 2))
def test_nested_mixed_partials_commute(x: float, y: float) -> None:
    def f(a, b):
        return tg.tanh(a * b) * tg.exp(a - b * b)

    dxy = tg.grad(tg.grad(f, 0), 1)(x, y)
    dyx = tg.grad(tg.grad(f, 1), 0)(x, y)
    assert dxy == pytest.approx(dyx, rel=1e-10, abs=1e-10)


# --- examples/newton.py, fast mode ----------------------------------------------------------------


def _tables(text: str) -> dict[str, list[dict[str, str]]]:
    """'### title' + a markdown table -> {title: rows as dicts}."""
    out: dict[str, list[dict[str, str]]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("### "):
            head = [c.strip() for c in lines[i + 2].strip().strip("|").split("|")]
            rows = []
            for row in lines[i + 4:]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(head, [c.strip() for c in row.strip().strip("|").split("|")],
                                     strict=True)))
            out[line[4:]] = rows
    return out


def test_newton_example_fast(tmp_path) -> None:
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(root / "examples" / "newton.py"), "--fast", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=300, env=env,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    tables = _tables(proc.stdout)
    hess = tables["Hessians from tg.hessian vs closed forms"]
    assert all(float(r["max abs error"]) < 1e-10 for r in hess), hess
    steps = {(r["problem"], r["method"]): r for r in next(
        v for k, v in tables.items() if k.startswith("steps to"))}
    assert int(steps[("quadratic", "Newton")]["steps"]) == 1
    assert float(steps[("quadratic", "Newton")]["distance to minimum"]) < 1e-10
    gd = int(steps[("quadratic", "gradient descent")]["steps"])
    assert 500 < gd < 2000  # about κ ln(|x0 - x*| / tol) = 50 · 20 with lr = 1/L
    newton = steps[("Rosenbrock", "Newton")]
    assert newton["converged"] == "yes" and int(newton["steps"]) <= 30
    assert steps[("Rosenbrock", "gradient descent")]["converged"] == "no (cap)"  # 3000 steps
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "newton_vs_gd.png").stat().st_size > 10_000


def test_transforms_differentiate_inside_no_grad() -> None:
    with tg.no_grad():
        assert tg.grad(tg.grad(lambda x: x**3))(2.0) == pytest.approx(12.0)
        np.testing.assert_allclose(tg.hessian(lambda v: tg.sum(v**3))(np.array([1.0, 2.0])),
                                   np.diag([6.0, 12.0]))
        assert not tg.is_grad_enabled()
        assert not (tg.Node(1.0) * 2).requires_grad


def test_optimizers_step_with_recorded_gradients() -> None:
    # after backward(create_graph=True) a parameter's .grad is a Node: a step uses its value
    w1, w2 = (tg.Node(np.array([1.0, -2.0]), name="w") for _ in range(2))
    for w, cg in ((w1, True), (w2, False)):
        opt = tg.optim.Adam([w], lr=0.1)
        tg.sum(w**3).backward(create_graph=cg)
        opt.step()
    assert isinstance(w1.grad, tg.Node)
    np.testing.assert_array_equal(w1.data, w2.data)


def _d(x):
    """x cut from the graph when it is a node (a rule that forgets a dependence)."""
    return x.detach() if isinstance(x, tg.Node) else x


# Mutants of built-in rules with the right values but a wrong dependence on the inputs: the first
# derivatives stay right (gradcheck passes), the second ones are wrong (gradgradcheck must fail).
_MUTANTS = {
    "tanh": (tg.ops.TANH, (lambda g, out, x: g * (1.0 - _d(out) * out),),
             lambda x: tg.tanh(x), (np.array([0.3, -0.8]),)),
    "exp": (tg.ops.EXP, (lambda g, out, x: g * _d(out),), lambda x: tg.exp(x),
            (np.array([0.3, -0.8]),)),
    "sigmoid": (tg.ops.SIGMOID, (lambda g, out, x: g * out * (1.0 - _d(out)),),
                lambda x: tg.sigmoid(x), (np.array([0.3, -0.8]),)),
    "log": (tg.ops.LOG, (lambda g, out, x: g / _d(x),), lambda x: tg.log(x),
            (np.array([0.3, 1.8]),)),
    "mul": (tg.ops.MUL, (lambda g, out, a, b: g * _d(b), lambda g, out, a, b: g * a),
            lambda a, b: a * b, (np.array([0.3, -0.8]), np.array([1.5, 2.0]))),
    "div": (tg.ops.DIV, (lambda g, out, a, b: g / b, lambda g, out, a, b: -g * _d(out) / b),
            lambda a, b: a / b, (np.array([0.3, -0.8]), np.array([1.5, 2.0]))),
    "matmul": (tg.ops.MATMUL, (lambda g, out, a, b: g @ _d(b).T, tg.ops.MATMUL.vjps[1]),
               lambda a, b: a @ b, (np.ones((2, 3)) * 0.5, np.arange(6.0).reshape(3, 2))),
}


@pytest.mark.parametrize("name", sorted(_MUTANTS))
def test_gradgradcheck_catches_mutated_rules(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    prim, vjps, fn, args = _MUTANTS[name]
    monkeypatch.setattr(prim, "vjps", vjps)
    assert gradcheck(fn, *args)
    with pytest.raises(GradcheckError, match="gradgradcheck"):
        gradgradcheck(fn, *args)


def test_create_graph_option_of_the_functional_api() -> None:
    W = tg.Node(np.array([[1.0, -2.0], [0.5, 3.0]]), name="W")
    x = np.array([0.3, -0.2])
    gx = tg.grad(lambda u: tg.sum(tg.tanh(W @ u) ** 2), create_graph=True)(x)
    assert isinstance(gx, tg.Node)
    tg.sum(gx * gx).backward()  # reaches W, which the function closes over

    def pen(Wn):
        return tg.sum(tg.grad(lambda u: tg.sum(tg.tanh(Wn @ u) ** 2))(x) ** 2)

    np.testing.assert_allclose(W.grad, tg.grad(pen)(W.data), rtol=1e-10)
    v, g = tg.value_and_grad(lambda u: u * u, create_graph=True)(3.0)
    assert isinstance(v, tg.Node) and isinstance(g, tg.Node) and g.data == 6.0
    assert type(tg.grad(lambda u: u * u)(3.0)) is float  # the default is unchanged
