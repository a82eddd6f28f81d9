"""tg.jit: compiled replays equal eager tinygraph (values and gradients), retracing, refusals."""

from __future__ import annotations

import importlib
import math
import random
import threading
import warnings
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph import _blas, losses, nn
from tinygraph.engine import PRIMITIVES
from tinygraph.testing import strategies as tgs

J = importlib.import_module("tinygraph.jit")
TracingError = J.TracingError


def _grads(nodes):
    return [None if n.grad is None else np.array(n.grad, dtype=np.float64) for n in nodes]


def _close(a, b, tol):
    if a is None or b is None:
        assert a is None and b is None
        return
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                               rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------------------
# The template table against the op table
# ---------------------------------------------------------------------------------------------

_ATTRS = {"sum": [{"axis": None, "keepdims": False}, {"axis": (1,), "keepdims": True},
                  {"axis": (0,), "keepdims": False}],
          "reshape": [{"shape": (6,)}, {"shape": (3, 2)}],
          "getitem": [{"index": (slice(None), 1)}, {"index": 0}]}


def _inputs(name: str, rng: np.random.Generator, scalar: bool) -> list:
    if scalar:
        k = 2 if name in ("add", "sub", "mul", "div", "pow") else 1
        xs = [float(rng.uniform(0.5, 2.0)) for _ in range(k)]
        if name in ("relu", "neg", "tanh", "sigmoid", "add", "sub", "mul"):
            xs[0] = float(rng.uniform(-2, 2))
        return xs
    if name == "matmul":
        return [rng.normal(size=(2, 3)), rng.normal(size=(3, 4))]
    if name == "linear":
        return [rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), rng.normal(size=(4,))]
    k = 2 if name in ("add", "sub", "mul", "div", "pow") else 1
    xs = [rng.uniform(0.5, 2.0, size=(2, 3)) for _ in range(k)]
    if name in ("relu", "neg", "tanh", "sigmoid", "add", "sub", "mul", "sum", "reshape",
                "getitem"):
        xs[0] = rng.normal(size=(2, 3))
    return xs


@pytest.mark.parametrize("name", sorted(J.TEMPLATES))
@pytest.mark.parametrize("scalar", [False, True])
def test_every_template_matches_the_op_table(name: str, scalar: bool) -> None:
    t = J.TEMPLATES[name]
    if scalar and t.get("sfwd") is None and "vjpi" not in t:
        pytest.skip("no scalar form")
    prim = PRIMITIVES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    if "emit" in t:  # statements made by the builder: the forward helper here, the whole op
        if scalar:  # compiled in test_softmax_ce_compiled_equals_eager
            pytest.skip("no scalar form")
        for mean in (True, False):
            s, y = rng.normal(size=(5, 4)) * 3, rng.integers(0, 4, size=5)
            got, e, se = J._softmax_ce(s, np.arange(5) * 4 + y, 5 if mean else 1)
            want, logp = prim.fwd(s, labels=y, mean=mean)
            assert got == pytest.approx(want, rel=1e-14)
            np.testing.assert_allclose(e / se, np.exp(logp), rtol=1e-14)
        return
    if "vjpi" in t:  # variadic (l2): the op table's vjp(i, g, out, xs, **attrs)
        xs = [rng.normal(size=(2, 3)), rng.normal(size=(4,))] if not scalar else [0.5, -2.0]
        out = prim.fwd(*xs, lam=0.3)
        env = {**J._BASE_ENV, "g": 1.7, "out": out, "x": None}
        if not scalar and "afwdi" in t:  # the sum as the builder writes it, bit for bit
            terms = " + ".join(t["afwdi"].replace("{x}", f"x{i}") for i in range(len(xs)))
            got = eval(f"{0.5 * 0.3!r} * ({terms})", {**env, "x0": xs[0], "x1": xs[1]})  # noqa: S307
            assert got == out
        for i, x in enumerate(xs):
            env["x"] = x
            got = eval(t["vjpi"].format(lam="0.3", g="g", x="x"), env)  # noqa: S307
            np.testing.assert_array_equal(got, prim.vjp(i, 1.7, out, tuple(xs), lam=0.3))
        return
    for attrs in _ATTRS.get(name, [{}]):
        for _ in range(5):
            xs = _inputs(name, rng, scalar)
            env = dict(J._BASE_ENV)
            names = [f"x{i}" for i in range(len(xs))]
            env.update(zip(names, xs))
            fields = {k: J._lit(v) for k, v in attrs.items()}
            fields["in0_shape"] = repr(np.shape(xs[0]))
            src = t["sfwd"] if scalar else t["afwd"]
            got = eval(src.format(*names, **fields), env)  # noqa: S307 - our own template
            ref = prim.scalar(*xs, **attrs) if scalar and prim.scalar else prim.fwd(*xs, **attrs)
            np.testing.assert_allclose(got, ref, rtol=1e-15, atol=0)
            env["out"] = ref
            g = rng.normal(size=np.shape(ref)) if np.ndim(ref) else float(rng.normal())
            env["g"] = g
            vjps = t.get("svjps", t["vjps"]) if scalar else t["vjps"]
            sets = [vjps] + ([t["vjps2d"]] if "vjps2d" in t and not scalar else [])
            for vs in sets:
                for i, v in enumerate(vs):
                    got = eval(v.format(*names, g="g", out="out", **fields), env)  # noqa: S307
                    want = prim.vjps[i](g, ref, *xs, **attrs)
                    np.testing.assert_allclose(np.broadcast_to(got, np.shape(want)), want,
                                               rtol=1e-14, atol=1e-300)


# ---------------------------------------------------------------------------------------------
# Random graphs: compiled equals eager, over replays with new data
# ---------------------------------------------------------------------------------------------


def _check_graph(graph, inputs, tol, dtype=np.float64, replays=3, seed=0):
    rng = np.random.default_rng(seed)
    cast = (lambda v: v) if dtype == np.float64 else (lambda v: np.asarray(v, dtype=dtype))
    xs = [tg.Node(cast(v), name=f"x{i}") for i, v in enumerate(inputs)]
    step = tg.jit(lambda *a: graph(*a))
    for r in range(replays):
        if r:
            for x in xs:
                d = x.data
                x.data = (d + rng.uniform(-0.3, 0.3) if type(d) is float
                          else (d + rng.uniform(-0.3, 0.3, size=d.shape)).astype(d.dtype))
        out = step(*xs)
        out.backward()
        got_v, got_g = out.data, _grads(xs)
        tg.zero_grad(xs)
        ref = graph(*xs)
        ref.backward()
        want_g = _grads(xs)
        tg.zero_grad(xs)
        _close(got_v, ref.data, tol)
        for a, b in zip(got_g, want_g, strict=True):
            _close(a, b, tol)
    assert step.stats["traces"] == 1


@given(tgs.graphs(max_inputs=3, max_steps=8))
def test_random_graphs_compiled_equal_eager_float64(gi) -> None:
    graph, inputs = gi
    _check_graph(graph, inputs, 1e-12)


@given(tgs.graphs(max_inputs=3, max_steps=8, shape=(2, 3)))
def test_random_tensor_graphs_compiled_equal_eager_float32(gi) -> None:
    graph, inputs = gi
    _check_graph(graph, inputs, 1e-5, dtype=np.float32)


@given(tgs.graphs(max_inputs=3, max_steps=6, shape=()), st.integers(0, 2**16))
def test_random_scalar_graphs_with_captured_parameters(gi, seed) -> None:
    graph, inputs = gi
    params = [tg.Node(v, name=f"p{i}") for i, v in enumerate(inputs)]
    step = tg.jit(lambda: graph(*params))
    rng = np.random.default_rng(seed)
    for _ in range(3):
        out = step()
        out.backward()
        got = _grads(params)
        tg.zero_grad(params)
        ref = graph(*params)
        ref.backward()
        _close(out.data, ref.data, 1e-12)
        for a, b in zip(got, _grads(params), strict=True):
            _close(a, b, 1e-12)
        tg.zero_grad(params)
        for p in params:  # an optimizer's update: replay must see it
            p.data = p.data - 0.1 * rng.uniform(-1, 1)


@given(tgs.broadcastable_arrays(n=2, lo=-2, hi=2))
@settings(max_examples=40)
def test_broadcasting_undone_where_the_trace_shows_it(xs) -> None:
    a, b = (tg.Node(x, name=n) for x, n in zip(xs, "ab", strict=True))

    def f(a, b):
        return tg.sum(tg.tanh(a * b + a) / (1.0 + b * b))

    _check_graph(lambda a, b: f(a, b), [a.data, b.data], 1e-12)


# ---------------------------------------------------------------------------------------------
# Training steps
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp_step_equals_eager_and_sees_optimizer_updates(dtype) -> None:
    tol = 1e-12 if dtype == np.float64 else 1e-5
    rng = np.random.default_rng(3)
    model = nn.TensorMLP(5, [8, 8, 3], activation="relu", dtype=np.dtype(dtype))
    params = model.parameters()
    X = rng.normal(size=(16, 5)).astype(dtype)
    y = rng.integers(0, 3, size=16)

    def loss_fn(X, y):
        return losses.softmax_cross_entropy(model(X), y) + losses.l2(model.weights(), 1e-3)

    step = tg.jit(loss_fn)
    opt = tg.optim.SGD(params, lr=0.1)
    for _ in range(4):
        loss = step(X, y)
        opt.zero_grad()
        loss.backward()
        got = _grads(params)
        opt.zero_grad()
        ref = loss_fn(tg.Node(X, requires_grad=False), y)
        ref.backward()
        _close(loss.data, ref.data, tol)
        for a, b in zip(got, _grads(params), strict=True):
            _close(a, b, tol)
        opt.step()
        X = X + dtype(0.01)
    assert step.stats["traces"] == 1
    assert "dL_d" in step.source


def _micrograd_mlp(seed=0):
    rng = np.random.default_rng(seed)
    layers = []
    for nin, nout, act in ((2, 4, True), (4, 1, False)):
        layers.append([([tg.Node(float(rng.uniform(-1, 1))) for _ in range(nin)], tg.Node(0.0),
                        act) for _ in range(nout)])
    params = [p for layer in layers for w, b, _ in layer for p in (*w, b)]

    def model(x):
        for layer in layers:
            out = []
            for w, b, act in layer:
                s = sum((wi * xi for wi, xi in zip(w, x, strict=True)), b)
                out.append(tg.relu(s) if act else s)
            x = out
        return x[0]

    return model, params


def test_micrograd_style_scalar_step_equals_eager() -> None:
    model, params = _micrograd_mlp()
    rng = np.random.default_rng(1)
    X = rng.normal(size=(10, 2)).tolist()
    y = [1.0 if a * b > 0 else -1.0 for a, b in X]

    def loss_fn():
        scores = [model([tg.Node(v) for v in row]) for row in X]
        margins = [tg.relu(1.0 + (-yi) * s) for yi, s in zip(y, scores, strict=True)]
        return sum(margins) * (1.0 / len(margins)) + 1e-4 * sum(p * p for p in params)

    step = tg.jit(loss_fn)
    for _ in range(3):
        loss = step()
        tg.zero_grad(params)
        loss.backward()
        got = _grads(params)
        tg.zero_grad(params)
        ref = loss_fn()
        ref.backward()
        assert loss.data == pytest.approx(ref.data, rel=1e-12)
        for a, b in zip(got, _grads(params), strict=True):
            _close(a, b, 1e-12)
        for p in params:
            p.data = p.data - 0.05 * p.grad
        tg.zero_grad(params)


# ---------------------------------------------------------------------------------------------
# Signatures, cache, semantics
# ---------------------------------------------------------------------------------------------


def test_retrace_on_a_new_signature_and_lru_cache() -> None:
    W = tg.Node(np.ones((3, 2)), name="W")
    step = tg.jit(lambda x: tg.sum(tg.tanh(x @ W)), cache_size=2)
    step(np.ones((4, 3)))
    step(np.zeros((4, 3)))  # same shape and dtype: replay
    assert step.stats["traces"] == 1
    step(np.ones((5, 3)))  # new shape
    step(np.ones((5, 3), dtype=np.float32))  # new dtype
    assert step.stats["traces"] == 3
    assert step.stats["signatures"] == 2
    step(np.ones((4, 3)))  # evicted: traced again
    assert step.stats["traces"] == 4


def test_array_arguments_are_read_on_every_call() -> None:
    W = tg.Node(np.arange(6.0).reshape(3, 2) / 10, name="W")
    f = tg.jit(lambda x: tg.sum((x / 2.0) @ W))
    for k in range(3):
        x = np.full((2, 3), float(k))
        assert f(x).data == pytest.approx(float(np.sum((x / 2.0) @ W.data)))


def test_labels_are_part_of_the_signature_by_value() -> None:
    s = tg.Node(np.random.default_rng(0).normal(size=(4, 3)), name="s")
    f = tg.jit(lambda y: losses.softmax_cross_entropy(s, y))
    for y in ([0, 1, 2, 0], [2, 2, 1, 0], [0, 1, 2, 0]):
        y = np.array(y)
        assert f(y).data == pytest.approx(losses.softmax_cross_entropy(s, y).data, rel=1e-14)
    assert f.stats["traces"] == 2


def test_backward_twice_adds_twice_and_output_composes_with_eager_ops() -> None:
    w = tg.Node(np.array([0.5, -1.0]), name="w")
    f = tg.jit(lambda x: tg.sum(tg.tanh(w * x)))
    x = np.array([1.0, 2.0])
    out = f(x)
    out.backward()
    g1 = w.grad.copy()
    out.backward()
    np.testing.assert_allclose(w.grad, 2 * g1)
    tg.zero_grad(w)
    (f(x) * 3.0 + 1.0).backward()
    np.testing.assert_allclose(w.grad, 3 * g1)


def test_stale_graph_raises_like_eager() -> None:
    w = tg.Node(2.0, name="w")
    f = tg.jit(lambda: w * w)
    out = f()
    w.data = 3.0
    with pytest.raises(tg.GraphError, match="stale"):
        out.backward()


def test_several_outputs_and_node_arguments() -> None:
    a = tg.Node(np.array([1.0, 2.0]), name="a")
    b = tg.Node(np.array([3.0, -1.0]), name="b")
    f = tg.jit(lambda a, b: (tg.sum(a * b), tg.sum(tg.exp(a))))
    s, e = f(a, b)
    e.backward()
    np.testing.assert_allclose(a.grad, np.exp(a.data))
    assert b.grad is None
    s.backward()
    np.testing.assert_allclose(a.grad, np.exp(a.data) + b.data)
    np.testing.assert_allclose(b.grad, a.data)


def test_custom_primitive_replays_through_its_own_functions() -> None:
    cube = tg.primitive("jit_test_cube", lambda x: x**3, lambda g, out, x: g * 3 * x**2)
    w = tg.Node(np.array([1.0, -2.0]), name="w")
    f = tg.jit(lambda x: tg.sum(cube(w * x)))
    for k in range(1, 3):
        x = np.array([k, 1.0])
        out = f(x)
        tg.zero_grad(w)
        out.backward()
        np.testing.assert_allclose(w.grad, 3 * (w.data * x) ** 2 * x)
    assert "jit_test_cube" in f.source


def test_scalar_code_that_python_refuses_falls_back_to_eager_numbers() -> None:
    w = tg.Node(1.0, name="w")
    f = tg.jit(lambda: tg.log(w) / w)
    assert f().data == 0.0
    w.data = 0.0
    with np.errstate(all="ignore"):
        out = f()
        ref = tg.log(w) / w
    assert math.isnan(out.data) or out.data == ref.data


def test_no_grad_call_replays_without_gradients() -> None:
    w = tg.Node(np.array([1.0, 2.0]), name="w")
    f = tg.jit(lambda: tg.sum(w * w))
    f()
    with tg.no_grad():
        out = f()
    assert not out.requires_grad and out.data == 5.0


def test_threads_replay_concurrently() -> None:
    W = tg.Node(np.random.default_rng(0).normal(size=(3, 4)), name="W")
    f = tg.jit(lambda x: tg.sum(tg.relu(x @ W) ** 2.0))
    f(np.ones((2, 3)))
    errors = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(50):
            x = rng.normal(size=(2, 3))
            got = f(x).data
            want = float(np.sum(np.maximum(x @ W.data, 0) ** 2))
            if abs(got - want) > 1e-12 * max(1.0, abs(want)):
                errors.append((got, want))

    ts = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    lambda h: h * (1.0 if float(tg.sum(h)) > 0 else 2.0),
    lambda h: h * tg.sum(h).item(),
    lambda h: h * 2.0 if tg.sum(h) > 0 else h,
    lambda h: h * (1.0 if h.data.sum() > 0 else 2.0),
    lambda h: h * float(f"{tg.sum(h):.3f}"),
    lambda h: h * 2.0 if bool(tg.sum(h) == 0) else h,
])
def test_python_values_from_traced_nodes_raise_naming_the_line(body) -> None:
    w = tg.Node(np.array([1.0, -2.0]), name="w")
    f = tg.jit(lambda x: tg.sum(body(w * x)))
    with pytest.raises(TracingError, match=r"test_jit\.py:\d+") as e:
        f(np.ones(2))
    assert "silently reuse" in str(e.value)
    assert isinstance(e.value, tg.TinygraphError)


def test_outside_tracing_conversions_still_work() -> None:
    f = tg.jit(lambda x: tg.sum(x * 2.0))
    out = f(np.ones(3))
    assert float(out) == 6.0 and out.item() == 6.0 and out.data == 6.0


def test_no_grad_detach_and_captured_constants_replay_from_current_values() -> None:
    # ops with no gradient (on a captured constant node, under no_grad(), after detach() or
    # Node(node)) are recorded, not frozen: replay recomputes them from the current data
    rng = np.random.default_rng(3)
    W = tg.Node(rng.normal(size=(3, 3)), name="W")
    T = tg.Node(2.0, name="T", requires_grad=False)  # an annealed temperature
    E = tg.Node(np.eye(3), name="E", requires_grad=False)

    def f(x):
        z = x @ W
        target = z.detach() * 0.5
        with tg.no_grad():
            c = tg.sum(z * 2.0)
        xn = tg.Node(x)  # torch.tensor(x) habit
        return (tg.sum((z - target) ** 2) * (1.0 / T) + tg.sum(xn @ E.T * z) * c,
                tg.sum(z * 3.0).detach())

    jf = tg.jit(f)
    for _ in range(3):
        x = rng.normal(size=(2, 3))
        W.grad = None
        e, ec = f(x)
        e.backward()
        ge = W.grad
        W.grad = None
        j, jc = jf(x)
        j.backward()
        _close(j.data, e.data, 1e-12)
        _close(W.grad, ge, 1e-12)
        _close(jc.data, ec.data, 1e-12)
        assert not jc.requires_grad
        W.data = W.data * 1.1
        T.data = T.data * 2.0
        E.data = E.data * 3.0
    assert jf.traces == 1


def test_constant_output_made_from_numbers_is_refused() -> None:
    with pytest.raises(TracingError, match="constant"):
        tg.jit(lambda x: tg.Node(np.ones(2)))(np.ones(2))


def test_explain_names_ops_written_into_their_users_line() -> None:
    a = tg.Node(1.5, name="a")
    b = tg.Node(-0.5, name="b")
    f = tg.jit(lambda x: (a * x + b) * 0.8)
    f(2.0)
    text = f.explain()
    assert "= mul(a, 2.0) scalar" in text and "written into the line that uses it" in text
    assert "leaf" not in text.replace("a: leaf", "").replace("b: leaf", "")


def test_a_constant_equal_to_an_argument_stays_a_constant() -> None:
    # a zero initial state must not be read from an argument that was zero when tracing
    W = tg.Node(np.arange(4.0).reshape(2, 2) / 4, name="W")

    def f(x0):
        h = tg.Node(np.zeros((1, 2)), requires_grad=False)
        return tg.sum(tg.tanh(x0 @ W + h @ W + h))

    jf = tg.jit(f)
    jf(np.zeros((1, 2)))
    x = np.array([[0.3, -0.7]])
    _close(jf(x).data, f(x).data, 1e-12)


def _sgd_step(opt, loss_of, zero: str = "before"):
    """A training step as users write it: the loss, zero_grad(), backward(), step() (or with
    zero_grad() after the step, zero="after")."""
    def step(*args):
        loss = loss_of(*args)
        if zero == "before":
            opt.zero_grad()
        loss.backward()
        opt.step()
        if zero == "after":
            opt.zero_grad()
        return loss
    return step


@pytest.mark.parametrize("name", ["lr", "wd", "ws"])
def test_names_of_the_generated_step_do_not_clash_with_the_users(name) -> None:
    W = tg.Node(np.linspace(-1, 1, 6).reshape(3, 2), name=name)
    W2 = tg.Node(np.linspace(-1, 1, 6).reshape(3, 2), name=name)
    X = np.linspace(-1, 1, 15).reshape(5, 3)
    runs = []
    for P, compiled in ((W, False), (W2, True)):
        step = _sgd_step(tg.optim.SGD([P], lr=0.1, weight_decay=0.01),
                         lambda ws, P=P: tg.sum((ws @ P) ** 2))
        f = tg.jit(step) if compiled else step
        runs.append([f(X).item() for _ in range(3)] + list(P.data.ravel()))
    _close(np.array(runs[1]), np.array(runs[0]), 1e-12)


def test_compiled_gradients_are_arrays_of_their_own() -> None:
    a = tg.Node(np.ones(2), name="a")
    b = tg.Node(np.ones(2), name="b")
    for f in (tg.jit(lambda x: tg.sum((a + b) * x)), tg.jit(lambda x: tg.sum(a + x))):
        for _ in range(2):  # the tracing call and a replay
            a.grad = b.grad = None
            f(np.ones(2)).backward()
            assert a.grad.flags.writeable and a.grad.base is None
            a.grad *= 10  # gradient clipping in place, as users do
            assert b.grad is None or np.all(b.grad == 1.0)


def test_numpy_masks_and_data_assignments_are_refused_while_tracing() -> None:
    W = tg.Node(np.array([-1.0, 2.0, -3.0]), name="W")
    for body, match in ((lambda x: tg.sum(W * x * np.greater(W * x, 0)), "np.greater"),
                        (lambda x: tg.sum(W * np.sign(W * x)), "np.sign"),
                        (lambda x: tg.sum(np.where(W * x > 0, W, x)), "comparison"),
                        (lambda x: tg.sum(tg.where(W > 0, W * x, x)), "relu")):
        with pytest.raises(TracingError, match=match):
            tg.jit(body)(np.ones(3))

    def assign(x):
        W.data = np.zeros(3)
        return tg.sum(W * x)

    with pytest.raises(TracingError, match="assigning .data"):
        tg.jit(assign)(np.ones(3))
    assert np.array_equal(W.data, [-1.0, 2.0, -3.0])


def _model_and_step(clip: str = "", after=None):
    rng = np.random.default_rng(5)
    W = tg.Node(rng.normal(size=(4, 3)), name="W")
    opt = tg.optim.Adam([W], lr=0.1)
    X = rng.normal(size=(6, 4))

    def step(X):
        loss = tg.sum(tg.tanh(X @ W) ** 2)
        opt.zero_grad()
        loss.backward()
        if clip == "assign":
            W.grad *= 0.5  # an assignment: W.grad = W.grad.__imul__(0.5)
        elif clip == "in place":
            np.clip(W.grad, -0.01, 0.01, out=W.grad)
        opt.step()
        if after is not None:
            after(loss)
        return loss

    return W, opt, X, step


@pytest.mark.parametrize("clip", ["assign", "in place"])
def test_gradient_clipping_inside_a_compiled_step_is_refused_and_changes_nothing(clip) -> None:
    W, opt, X, step = _model_and_step(clip=clip)
    w0 = W.data.copy()
    with pytest.raises(TracingError, match="assigning .grad" if clip == "assign"
                       else "changed between backward"):
        tg.jit(step)(X)
    assert np.array_equal(W.data, w0) and W.grad is None and opt.t == 0
    assert step(X).item() > 0 and opt.t == 1  # and eager still works


@pytest.mark.parametrize("after", ["item", "random", "return"])
def test_a_trace_refused_after_the_step_puts_everything_back(after) -> None:
    how = {"item": lambda loss: loss.item(), "random": lambda loss: np.random.rand(),
           "return": None}[after]
    W, opt, X, step = _model_and_step(after=how)
    f = (lambda X: (step(X), 3.0)[1]) if after == "return" else step
    w0, m0 = W.data.copy(), list(opt.m)
    with pytest.raises(TracingError):
        tg.jit(f)(X)
    assert np.array_equal(W.data, w0) and W.grad is None and opt.t == 0 and opt.m == m0


def test_a_compiled_step_hands_gradients_back_through_node_arguments() -> None:
    # embeddings looked up outside, the step compiled: the first (tracing) call must update
    # E as eager does, not only later replays
    def run(compiled):
        E = tg.Node(np.arange(6.0).reshape(3, 2), name="E")
        W = tg.Node(np.array([[1.0], [-1.0]]), name="W")
        step = _sgd_step(tg.optim.SGD([E, W], lr=0.05), lambda h: tg.sum((h @ W) ** 2))
        f = tg.jit(step) if compiled else step
        out = []
        for idx in ([0, 2], [0, 2], [1, 0]):
            out.append(f(E[np.array(idx)]).item())
        return out + list(E.data.ravel()) + list(W.data.ravel())

    _close(np.array(run(True)), np.array(run(False)), 1e-12)


def test_a_compiled_scalar_step_falls_back_to_eager_where_python_refuses() -> None:
    def run(compiled):
        a = tg.Node(2.0, name="a")
        b = tg.Node(1.0, name="b")
        opt = tg.optim.SGD([a, b], lr=0.1)

        def step():
            loss = tg.sqrt(a * b - 2.0) + a
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        f = tg.jit(step) if compiled else step
        with np.errstate(all="ignore"):
            return [f().item() for _ in range(2)], a.data, b.data

    e, j = run(False), run(True)
    assert str(e) == str(j)  # nan included


def test_second_derivatives_through_a_compiled_function_raise() -> None:
    f = tg.jit(lambda w: tg.sum(tg.tanh(w) ** 3))
    w = tg.Node(np.array([0.1, -0.4, 0.8]), name="w")
    f(w)
    with pytest.raises(tg.GraphError, match="no derivative of its own"):
        tg.hessian(f)(np.array([0.1, -0.4, 0.8]))
    with pytest.raises(tg.GraphError, match="no derivative of its own"):
        f(w).backward(create_graph=True)


@pytest.mark.parametrize("how", ["module", "tg.zero_grad", "module zeros"])
def test_zero_grad_of_a_module_or_of_nodes_replays(how) -> None:
    X, y = tg.data.make_spiral(30, classes=3, seed=0)

    def run(compiled):
        model = nn.TensorMLP(2, [8, 3], "tanh", seed=0)
        opt = tg.optim.SGD(model.parameters(), lr=0.5)

        def step(X, y):
            if how == "module":
                model.zero_grad()
            elif how == "tg.zero_grad":
                tg.zero_grad(model.parameters())
            else:
                model.zero_grad(set_to_none=False)
            loss = losses.softmax_cross_entropy(model(X), y)
            loss.backward()
            opt.step()
            return loss

        f = tg.jit(step) if compiled else step
        return [f(X, y).item() for _ in range(4)]

    _close(np.array(run(True)), np.array(run(False)), 1e-12)


def test_library_conversions_and_tg_grad_at_a_detached_point_inside() -> None:
    X, y = tg.data.make_spiral(30, classes=3, seed=0)
    model = nn.TensorMLP(2, [8, 3], "tanh", seed=0)
    with pytest.raises(TracingError, match="losses.accuracy"):
        tg.jit(lambda X, y: (losses.softmax_cross_entropy(model(X), y),
                             losses.accuracy(model(X), y))[0])(X, y)
    W = tg.Node(np.array([0.5, -1.0, 2.0]), name="W")
    g = tg.grad(lambda h: tg.sum(tg.tanh(h) ** 2))

    def f(x):
        h = (W * x).detach()
        return tg.sum(g(h) * W)

    jf = tg.jit(f)
    for _ in range(3):
        _close(jf(np.ones(3)).data, f(np.ones(3)).data, 1e-12)
        W.data = W.data * 1.3


def test_a_refused_trace_puts_back_an_optimizers_own_buffers() -> None:
    class Heavy(tg.optim.Optimizer):  # updates its buffers in place
        def __init__(self, params):
            super().__init__(params, lr=0.1)
            self.buf = [np.zeros(p.shape) for p in self.params]

        def _update(self, i, w, g):
            self.buf[i] *= 0.9
            self.buf[i] += g
            return w - self.lr * self.buf[i]

    w = tg.Node(np.array([1.0, 2.0]), name="w")
    opt = Heavy([w])

    def step(x):
        loss = tg.sum(w * x)
        loss.backward()
        opt.step()
        return loss.item()  # refused, after the step

    with pytest.raises(TracingError):
        tg.jit(step)(np.ones(2))
    assert np.array_equal(opt.buf[0], [0.0, 0.0]) and np.array_equal(w.data, [1.0, 2.0])


@pytest.mark.filterwarnings("ignore:tg.jit. the global random state changed")  # the loader's
def test_other_threads_drawing_random_numbers_do_not_refuse_a_trace() -> None:
    rand0, random0 = np.random.rand, random.random
    stop = threading.Event()

    def loader():
        while not stop.is_set():
            np.random.permutation(100)

    t = threading.Thread(target=loader)
    t.start()
    try:
        W = tg.Node(np.ones(3), name="W")
        for i in range(20):
            f = tg.jit(lambda x: tg.sum(W * x * float(i + 1)))
            assert f(np.ones(3)).item() == 3.0 * (i + 1)
    finally:
        stop.set()
        t.join()
    with pytest.raises(TracingError, match=r"numpy\.random\.rand\(\) at .*test_jit"):
        tg.jit(lambda x: x * np.random.rand())(np.ones(2))
    with pytest.raises(TracingError, match=r"numpy\.random\.sample\(\) at .*test_jit"):
        tg.jit(lambda x: x * np.random.sample(2))(np.ones(2))
    with pytest.raises(TracingError, match=r"random\.getrandbits\(\) at .*test_jit"):
        tg.jit(lambda x: x * float(random.getrandbits(3)))(np.ones(2))
    assert np.random.rand is rand0 and random.random is random0  # put back after the traces


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix's own
@pytest.mark.parametrize("kind", ["0-d", "0-d float32", "np.matrix"])
def test_zero_d_and_matrix_arguments_replay_as_they_trace(kind) -> None:
    x = {"0-d": lambda: np.array(1.5), "0-d float32": lambda: np.array(0.25, np.float32),
         "np.matrix": lambda: np.matrix([[1.0, 2.0], [3.0, 4.0]])}[kind]()
    W = tg.Node(np.array([[1.0, -2.0], [0.5, 3.0]]), name="W")
    f = lambda x: tg.sum(W * x * x)
    jf = tg.jit(f)
    for _ in range(2):
        r = jf(x)
        assert type(r.data) is type(f(x).data)
        _close(r.data, f(x).data, 1e-6)


def test_non_node_results_are_refused() -> None:
    with pytest.raises(TracingError, match="returned"):
        tg.jit(lambda x: 3.0)(np.ones(2))


def test_detect_anomaly_runs_eagerly() -> None:
    w = tg.Node(np.array([1.0, 0.0]), name="w")
    f = tg.jit(lambda: tg.sum(tg.log(w)))
    f()
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match="log"):
        f()


def test_source_and_explain_read_like_hand_written_backprop() -> None:
    rng = np.random.default_rng(0)
    W1 = tg.Node(rng.normal(size=(4, 5)), name="W1")
    b1 = tg.Node(np.zeros(5), name="b1")
    W2 = tg.Node(rng.normal(size=(5, 3)), name="W2")
    b2 = tg.Node(np.zeros(3), name="b2")

    @tg.jit
    def step(X, y):
        with tg.scope("L1"):
            h = tg.relu(tg.linear(X, W1, b1))
            h.name = "h"
        scores = h @ W2 + b2
        scores.name = "scores"
        return losses.softmax_cross_entropy(scores, y)

    step(rng.normal(size=(6, 4)), rng.integers(0, 3, 6))
    src = step.source
    assert "def forward(" in src and "def backward(" in src
    assert "L1_h" in src and "dL_dscores" in src and "dL_dW1 = X.T @" in src
    compile(src, "<source>", "exec")
    text = step.explain()
    assert "forward" in text and "backward" in text and "relu" in text
    assert {n.op for n in tg.walk(step.graph)} >= {"linear", "relu", "matmul"}


def test_intermediate_node_arguments_pass_the_gradient_on() -> None:
    W = tg.Node(np.array([1.0, -3.0]), name="W")
    f = tg.jit(lambda h: tg.sum(tg.tanh(h) * h))
    for k in range(2):
        h = W * float(k + 2)  # made outside: its gradient goes on to W
        tg.zero_grad(W)
        f(h).backward()
        got = W.grad.copy()
        tg.zero_grad(W)
        h2 = W * float(k + 2)
        tg.sum(tg.tanh(h2) * h2).backward()
        np.testing.assert_allclose(got, W.grad, rtol=1e-12)


def test_freezing_a_captured_parameter_retraces() -> None:
    a = tg.Node(np.array([1.0, 2.0]), name="a")
    b = tg.Node(np.array([3.0, 4.0]), name="b")
    f = tg.jit(lambda: tg.sum(a * b))
    f().backward()
    assert a.grad is not None and b.grad is not None
    tg.zero_grad(a, b)
    b.requires_grad = False
    f().backward()
    assert f.stats["traces"] == 2
    assert b.grad is None
    np.testing.assert_allclose(a.grad, b.data)


def test_a_captured_parameter_given_another_dtype_retraces() -> None:
    w = tg.Node(np.array([1.0, 2.0]), name="w")
    f = tg.jit(lambda x: tg.sum(x * w))
    x = np.array([3.0, 4.0], dtype=np.float32)
    assert f(x).dtype == np.float64
    w.data = np.array([1.0, 2.0], dtype=np.float32)
    out = f(x)
    out.backward()
    assert f.stats["traces"] == 2
    assert w.grad.dtype == np.float32
    assert f(x).data == pytest.approx(11.0) and f.stats["traces"] == 2


def test_returning_an_argument_or_a_parameter_gives_copies() -> None:
    w = tg.Node(np.array([1.0, 2.0]), name="w")
    f = tg.jit(lambda x: (x, w, tg.sum(x * w)))
    x = np.array([3.0, 4.0])
    xo, wo, s = f(x)
    np.testing.assert_array_equal(xo.data, x)
    np.testing.assert_array_equal(wo.data, w.data)
    assert x.flags.writeable  # the caller's array is not locked
    s.backward()
    np.testing.assert_allclose(w.grad, x)


@given(tgs.graphs(max_inputs=3, max_steps=6, shape=(2, 3)), st.integers(0, 2**16))
@settings(max_examples=30)
def test_mixed_dtypes_and_scalar_nodes_in_tensor_graphs(gi, seed) -> None:
    graph, inputs = gi
    rng = np.random.default_rng(seed)
    xs = [tg.Node(v.astype(np.float32) if i % 2 else v, name=f"x{i}")
          for i, v in enumerate(inputs)]
    s = tg.Node(float(rng.uniform(0.5, 1.5)), name="s")
    col = tg.Node(rng.uniform(-1, 1, size=(2, 1)).astype(np.float32), name="col")

    def f(*a):
        return graph(*a) * s + tg.sum(tg.tanh(a[0] * col))

    step = tg.jit(f)
    for _ in range(3):
        out = step(*xs)
        out.backward()
        leaves = [*xs, s, col]
        got = _grads(leaves)
        kinds = [type(n.grad) if type(n.grad) is float else np.asarray(n.grad).dtype
                 for n in leaves]
        tg.zero_grad(leaves)
        ref = f(*xs)
        ref.backward()
        _close(out.data, ref.data, 1e-5)
        for a, b in zip(got, _grads(leaves), strict=True):
            _close(a, b, 1e-5)
        assert kinds == [type(n.grad) if type(n.grad) is float else np.asarray(n.grad).dtype
                         for n in leaves]  # each gradient in its leaf's own dtype, as eager
        tg.zero_grad(leaves)
        s.data = s.data + 0.1


def test_jit_on_a_method() -> None:
    class Net:
        def __init__(self) -> None:
            self.w = tg.Node(np.array([0.5, -1.0]), name="w")

        @tg.jit
        def loss(self, x):
            return tg.sum(tg.tanh(self.w * x))

    net = Net()
    x = np.array([1.0, 2.0])
    out = net.loss(x)
    out.backward()
    np.testing.assert_allclose(net.w.grad, (1 - np.tanh(net.w.data * x) ** 2) * x)
    assert "tanh" in net.loss.source


@pytest.mark.parametrize("draw", [
    lambda shape: np.random.rand(*shape),
    lambda shape: np.full(shape, __import__("random").random()),
])
def test_random_draws_from_the_global_generators_are_refused(draw) -> None:
    w = tg.Node(np.ones((2, 3)), name="w")
    f = tg.jit(lambda: tg.sum(w * (draw((2, 3)) < 0.5).astype(np.float64)))
    with pytest.raises(TracingError, match="random"):
        f()


def test_the_traced_graph_is_an_ordinary_graph_for_the_diagrams() -> None:
    viz = pytest.importorskip("tinygraph.viz")
    W = tg.Node(np.ones((3, 2)) * 0.5, name="W")
    f = tg.jit(lambda X, y: losses.softmax_cross_entropy(tg.relu(X @ W), y))
    f(np.ones((4, 3)), np.array([0, 1, 0, 1])).backward()
    dot = viz.draw(f.graph, level="op").dot()
    assert "ReLU" in dot and "W" in dot


def _ce_scores(rng: np.random.Generator, case: str, dtype: type) -> np.ndarray:
    s = (rng.normal(size=(6, 5)) * 4).astype(dtype)
    if case == "large":
        s[1] += 1e4  # the shift by the row max keeps exp finite
    elif case == "neg_inf":
        s[2, :] = -np.inf  # a row of all -inf: nan, as eager gives
        s[3, 1:] = -np.inf  # -inf beside a finite max: a zero probability
    elif case == "pos_inf":
        s[4, 0] = np.inf
    return s


@pytest.mark.parametrize("mean", [True, False])
@pytest.mark.parametrize("case", ["plain", "large", "neg_inf", "pos_inf"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_ce_compiled_equals_eager(case: str, dtype: type, mean: bool) -> None:
    """The emitted softmax cross-entropy (exp kept from the forward) against eager, over
    replays with new scores and weights, at the overflow edges too."""
    rng = np.random.default_rng(7)
    tol = 1e-12 if dtype is np.float64 else 1e-5
    b = tg.Node(np.zeros(5, dtype=dtype), name="b")
    y = np.array([0, 1, 2, 0, 3, 4])
    red = "mean" if mean else "sum"

    def loss(s):
        return losses.softmax_cross_entropy(s + b, y, reduction=red) * 1.5

    f = tg.jit(loss)
    with np.errstate(all="ignore"):
        f(_ce_scores(rng, case, dtype))
        assert "_softmax_ce(" in f.source
        for _ in range(3):
            s = _ce_scores(rng, case, dtype)
            b.data = rng.normal(size=5).astype(dtype)
            b.grad = None
            sn = tg.Node(s, requires_grad=True)
            got = f(sn)
            got.backward()
            g_got, gs_got = b.grad, sn.grad
            b.grad = None
            sn2 = tg.Node(s, requires_grad=True)
            want = loss(sn2)
            want.backward()
            assert type(got.data) is float
            np.testing.assert_allclose(got.data, want.data, rtol=tol, atol=0)
            for a, w in ((g_got, b.grad), (gs_got, sn2.grad)):
                assert a.dtype == dtype
                np.testing.assert_allclose(a.astype(np.float64), w.astype(np.float64),
                                           rtol=tol, atol=tol)


@pytest.mark.parametrize("bshape", [(4,), (1,), (1, 4), (3, 1), (3, 4)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_broadcast_gradients_summed_back_compiled_equal_eager(bshape: tuple, dtype: type) -> None:
    """A bias broadcast over the batch (summed back as a vector-matrix product where it is a
    row vector) and the other broadcast shapes, over replays with new data."""
    rng = np.random.default_rng(3)
    tol = 1e-12 if dtype is np.float64 else 1e-5
    b = tg.Node(rng.normal(size=bshape).astype(dtype), name="b")
    W = tg.Node(rng.normal(size=(5, 4)).astype(dtype), name="W")

    def loss(X):
        return tg.sum(tg.tanh(X @ W + b) * (X @ W))

    f = tg.jit(loss)
    for _ in range(3):
        X = rng.normal(size=(3, 5)).astype(dtype)
        b.data = rng.normal(size=bshape).astype(dtype)
        b.grad = W.grad = None
        got = f(X)
        got.backward()
        g_b, g_W = b.grad, W.grad
        b.grad = W.grad = None
        want = loss(tg.Node(X, requires_grad=False))
        want.backward()
        np.testing.assert_allclose(got.data, want.data, rtol=tol)
        for a, w in ((g_b, b.grad), (g_W, W.grad)):
            assert a.shape == w.shape and a.dtype == dtype
            np.testing.assert_allclose(a, w, rtol=tol, atol=tol)
    if bshape == (4,):
        assert "ones_3 @ " in f.source


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numbers_in_array_ops_give_exactly_eager_results(dtype: type) -> None:
    """Numbers combined with arrays (x * 1.001, the 1 of tanh's and sigmoid's gradients, relu's
    0) become 0-d arrays of the array's dtype in the generated code: numpy rounds a Python
    float to that dtype anyway, so values, gradients and dtypes equal eager ones exactly
    (elementwise ops only: a broadcast's sum may add in another order). A number the dtype
    cannot hold stays a literal."""
    rng = np.random.default_rng(5)
    W = tg.Node(rng.normal(size=(4, 3)).astype(dtype), name="W")

    def loss(x):
        h = tg.tanh(x * 1.001 + 0.1) - 0.3
        h = tg.sigmoid(h * W) / 0.7 + tg.relu(0.25 - h) + tg.sqrt(h * h + 1.0)
        return tg.sum(h * 3.0)

    f = tg.jit(loss)
    for _ in range(3):
        x = tg.Node(rng.normal(size=(4, 3)).astype(dtype))
        W.data = rng.normal(size=(4, 3)).astype(dtype)
        got = f(x)
        got.backward()
        g = (x.grad, W.grad)
        x.grad = W.grad = None
        want = loss(x)
        want.backward()
        assert got.data == want.data
        for a, w in zip(g, (x.grad, W.grad)):
            assert a.dtype == w.dtype == dtype
            np.testing.assert_array_equal(a, w)
        x.grad = W.grad = None
    suffix = "" if dtype is np.float64 else f"_f{np.dtype(dtype).itemsize * 8}"
    assert f"x * _1_001{suffix}" in f.source and f"one{suffix} - " in f.source
    assert "1.001" not in f.source.split("def forward")[1]

    big = tg.jit(lambda x: tg.sum(x * 1e39))  # not a float32
    x = tg.Node(np.ones(2, dtype))
    with np.errstate(over="ignore"):
        for _ in range(2):
            out = big(x)
        assert out.data == tg.sum(x * 1e39).data
    assert ("* 1e+39" in big.source) == (dtype is not np.float64)
    assert ("* _1e39" in big.source) == (dtype is np.float64)


@pytest.mark.parametrize("combine", ["add", "mul"])
def test_relu_gradient_is_not_made_in_place_where_another_input_still_reads_it(combine) -> None:
    """relu(x·W) + b: the add hands one gradient array to relu and to b; relu's mask must not
    be applied to b's gradient too (nor, with *, to the array b's product rule reads)."""
    W = tg.Node(np.array([1.0, -2.0, 3.0]), name="W")
    b = tg.Node(np.array([0.5, -0.5, 0.25]), name="b")
    c = np.array([1.0, 2.0, 3.0])

    def loss(x):
        r = tg.relu(x * W)
        return tg.sum((r + b if combine == "add" else r * b) * c)

    f = tg.jit(loss)
    for k in range(3):
        x = np.array([1.0, 1.0, -1.0]) * (k + 1)
        tg.zero_grad(W, b)
        f(x).backward()
        got = _grads([W, b])
        tg.zero_grad(W, b)
        loss(tg.Node(x, requires_grad=False)).backward()
        for a, w in zip(got, _grads([W, b])):
            np.testing.assert_allclose(a, w, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Compiled training steps: backward() and the optimizer inside the compiled function
# ---------------------------------------------------------------------------------------------


def _mlp_step(P, opt, zero: str, l2: float = 1e-3):
    """A user's training step: 2-layer MLP, softmax CE (+ l2), backward, step; zero_grad()
    "before" the backward, "after" the step, or "none"."""
    W1, b1, W2, b2 = P

    def loss_of(X, y):
        h = tg.relu(tg.linear(X, W1, b1))
        loss = losses.softmax_cross_entropy(tg.linear(h, W2, b2), y)
        return loss + losses.l2([W1, W2], l2) if l2 else loss

    return _sgd_step(opt, loss_of, zero)


def _mlp_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(5, 7), (7,), (7, 3), (3,)]
    return [tg.Node(rng.standard_normal(s).astype(dtype) * 0.5, name=f"p{i}")
            for i, s in enumerate(shapes)]


_OPTS = {
    "sgd": lambda P: tg.optim.SGD(P, lr=0.1),
    "sgd_wd": lambda P: tg.optim.SGD(P, lr=0.1, weight_decay=0.01),
    "momentum": lambda P: tg.optim.SGD(P, lr=0.1, momentum=0.9),
    "adam": lambda P: tg.optim.Adam(P, lr=0.01),
}


@pytest.mark.parametrize("opt_name", list(_OPTS))
@pytest.mark.parametrize("zero", ["before", "after", "none"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("l2", [0.0, 1e-3])
@pytest.mark.parametrize("update", ["new arrays", "in place", "fused"])
def test_compiled_step_equals_eager(opt_name, zero, dtype, tol, l2, update, monkeypatch):
    """Loss, parameters, gradients and optimizer state equal eager ones over several steps with
    new batches; plain SGD runs as generated code (parameters updated in place, or new arrays;
    with the gradients dead after the step, a weight's update fused into its gradient's
    product), other optimizers through their own step()."""
    in_place = update != "new arrays"
    monkeypatch.setattr(J, "_IN_PLACE_BYTES", 0 if in_place else 1 << 40)
    monkeypatch.setattr(J, "_GEMM_MIN", 0 if update == "fused" else 1 << 62)
    P, Q = _mlp_params(dtype), _mlp_params(dtype)
    opt, ref_opt = _OPTS[opt_name](P), _OPTS[opt_name](Q)
    step = tg.jit(_mlp_step(P, opt, zero, l2))
    ref = _mlp_step(Q, ref_opt, zero, l2)
    rng = np.random.default_rng(1)
    y = np.array([0, 1, 2, 2, 1, 0])  # labels are part of the signature: new ones retrace
    for i in range(4):
        X = rng.standard_normal((6, 5)).astype(dtype)
        got, want = step(X, y), ref(X, y)
        _close(got.item(), want.item(), tol)
        for p, q in zip(P, Q):
            _close(p.data, q.data, tol)
            _close(p.grad, q.grad, tol)
            assert p.dtype == q.dtype
        assert opt.t == ref_opt.t == i + 1
        if zero == "none":
            for p in P:  # gradients add up from call to call, as eagerly: clear them here
                p.grad = None
            for q in Q:
                q.grad = None
    assert step.traces == 1
    sgd = opt_name in ("sgd", "sgd_wd")
    assert (step._entry().fast is not None) == sgd == ("backward_step" in step.source)
    fused = update == "fused" and sgd and zero == "after" and _blas.available()
    assert ("nothing else holds" in step.source) == (in_place and sgd)
    assert ("_sgd_gemm(" in step.source) == fused
    if zero == "after":
        assert all(p.grad is None for p in P)


def test_compiled_step_gradients_kept_are_own_arrays():
    """With zero_grad() before backward() the gradients stay on the parameters after the step,
    each an array of its own that may be written into."""
    P = _mlp_params(np.float64)
    opt = tg.optim.SGD(P, lr=0.1)
    step = tg.jit(_mlp_step(P, opt, "before"))
    X, y = np.ones((6, 5)), np.array([0, 1, 2, 0, 1, 2])
    for _ in range(3):
        step(X, y)
    grads = [p.grad for p in P]
    assert all(isinstance(g, np.ndarray) and g.flags.writeable for g in grads)
    assert len({id(g) for g in grads}) == len(grads)
    assert "backward_step" in step.source and "SGD step" in step.source


def test_compiled_step_follows_optimizer_changes():
    """lr, weight decay and momentum are read at every call: a schedule works, and a momentum
    switched on after tracing runs the optimizer's own step."""
    P, Q = _mlp_params(np.float64), _mlp_params(np.float64)
    opt, ref_opt = tg.optim.SGD(P, lr=0.1), tg.optim.SGD(Q, lr=0.1)
    step, ref = tg.jit(_mlp_step(P, opt, "after")), _mlp_step(Q, ref_opt, "after")
    X, y = np.linspace(-1, 1, 30).reshape(6, 5), np.array([0, 1, 2, 0, 1, 2])
    for change in [{}, {"lr": 0.05}, {"weight_decay": 0.1}, {"momentum": 0.5}]:
        for o in (opt, ref_opt):
            for k, v in change.items():
                setattr(o, k, v)
        _close(step(X, y).item(), ref(X, y).item(), 1e-12)
        for p, q in zip(P, Q):
            _close(p.data, q.data, 1e-12)
    assert step.traces == 1


def test_compiled_backward_only_accumulates():
    """backward() without an optimizer: each call adds its gradients into .grad, as eagerly, and
    a node argument receives its gradient too."""
    w = tg.Node(np.array([0.5, -1.0, 2.0]), name="w")
    v = tg.Node(np.array([0.5, -1.0, 2.0]), name="w")

    def f(x, w):
        out = tg.sum(tg.tanh(x * w) * w)
        out.backward()
        return out

    g = tg.jit(f)
    x1, x2 = tg.Node(np.array([1.0, 2.0, 3.0])), tg.Node(np.array([1.0, 2.0, 3.0]))
    for _ in range(3):
        g(x1, w)
        f(x2, v)
        _close(w.grad, v.grad, 1e-12)
        _close(x1.grad, x2.grad, 1e-12)
    assert g.traces == 1


def test_compiled_step_may_return_nothing():
    P, Q = _mlp_params(np.float64), _mlp_params(np.float64)
    opt, ref_opt = tg.optim.SGD(P, lr=0.1), tg.optim.SGD(Q, lr=0.1)
    inner, ref = _mlp_step(P, opt, "after"), _mlp_step(Q, ref_opt, "after")
    step = tg.jit(lambda X, y: (inner(X, y), None)[1])
    X, y = np.ones((6, 5)), np.array([0, 1, 2, 0, 1, 2])
    for _ in range(3):
        assert step(X, y) is None
        ref(X, y)
    for p, q in zip(P, Q):
        _close(p.data, q.data, 1e-12)


def test_compiled_step_output_is_stale_after_the_step():
    """The returned loss used the parameters before the step: backward() on it again raises, as
    on the eager graph."""
    P = _mlp_params(np.float64)
    opt = tg.optim.SGD(P, lr=0.1)
    step = tg.jit(_mlp_step(P, opt, "before"))
    X, y = np.ones((6, 5)), np.array([0, 1, 2, 0, 1, 2])
    for _ in range(2):
        loss = step(X, y)
        with pytest.raises(tg.GraphError, match="stale"):
            loss.backward()


def test_compiled_step_refusals():
    w = tg.Node(np.ones(3), name="w")
    opt = tg.optim.SGD([w], lr=0.1)

    def twice(x):
        out = tg.sum(x * w)
        out.backward()
        out.backward()
        return out

    def step_first(x):
        opt.step()
        out = tg.sum(x * w)
        out.backward()
        return out

    def seeded(x):
        out = tg.sum(x * w)
        out.backward(create_graph=True)
        return out

    def foreign(x):
        outside.backward()
        return tg.sum(x * w)

    for fn, msg in [(twice, "one backward"), (step_first, "one backward"),
                    (seeded, "create_graph"), (foreign, "not computed inside")]:
        outside = tg.sum(w * w)
        w.grad = np.ones(3)
        before = np.array(w.data)
        with pytest.raises(TracingError, match=msg):
            tg.jit(fn)(np.ones(3))
        if fn is step_first:  # refused before the step changed anything
            np.testing.assert_array_equal(w.data, before)


def test_compiled_step_never_writes_into_arrays_someone_holds(monkeypatch):
    """The generated step updates a parameter's array in place only when nothing but its node
    holds it: a view from .data, a detached node and an eager graph built before keep their
    values, exactly as with optim.SGD's new arrays; and both ways give the same parameters."""
    monkeypatch.setattr(J, "_IN_PLACE_BYTES", 0)  # every parameter is "big"
    monkeypatch.setattr(J, "_GEMM_MIN", 0)  # and its update fused into its gradient's product
    P, Q = _mlp_params(np.float64), _mlp_params(np.float64)
    opt, ref_opt = tg.optim.SGD(P, lr=0.1), tg.optim.SGD(Q, lr=0.1)
    step, ref = tg.jit(_mlp_step(P, opt, "after")), _mlp_step(Q, ref_opt, "after")
    X, y = np.linspace(-1, 1, 30).reshape(6, 5), np.array([0, 1, 2, 0, 1, 2])
    step(X, y), ref(X, y)
    for i in range(6):
        held = [P[0].data, P[1].detach(), None]
        copies = [np.array(held[0]), np.array(held[1].data)]
        held[2] = tg.sum(P[2] * 2.0)  # an eager graph that read W2 before the step
        if i % 2:
            held = copies = []  # nothing held: the in-place version runs
        array = weakref.ref(P[0]._data)  # (a weak reference holds nothing)
        step(X, y), ref(X, y)
        assert (P[0]._data is array()) == (not held)  # updated in place only if not held
        for h, c in zip(held, copies):
            np.testing.assert_array_equal(h.data if isinstance(h, tg.Node) else h, c)
        if held:
            with pytest.raises(tg.GraphError, match="stale"):
                held[2].backward()
        for p, q in zip(P, Q):
            _close(p.data, q.data, 1e-12)
            assert not p.data.flags.writeable


def test_fused_steps_in_several_threads_equal_eager(monkeypatch):
    """Threads training models of their own with a compiled step whose weight updates run in
    numpy's BLAS (released GIL included) end with eager's parameters."""
    monkeypatch.setattr(J, "_IN_PLACE_BYTES", 0)
    monkeypatch.setattr(J, "_GEMM_MIN", 0)
    X, y = np.linspace(-1, 1, 30).reshape(6, 5), np.array([0, 1, 2, 0, 1, 2])
    results: dict[int, list] = {}

    def train(seed: int, compiled: bool) -> list:
        P = _mlp_params(np.float64, seed)
        opt = tg.optim.SGD(P, lr=0.1, weight_decay=0.01)
        step = _mlp_step(P, opt, "after")
        step = tg.jit(step) if compiled else step
        for _ in range(30):
            step(X, y)
        assert not compiled or "_sgd_gemm(" in step.source or not _blas.available()
        return [np.array(p.data) for p in P]

    def work(seed: int) -> None:
        results[seed] = train(seed, True)

    ts = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for s in range(4):
        for got, want in zip(results[s], train(s, False)):
            _close(got, want, 1e-12)


@pytest.mark.skipif(not _blas.available(), reason="numpy's own BLAS is not bound here")
@pytest.mark.parametrize("shape,fused", [((64, 128, 10, 64), 0), ((784, 256, 10, 256), 2)])
def test_only_big_weight_products_fuse_their_update(shape, fused):
    """The default threshold (4M multiply-adds): digits' layers keep numpy's lines, mnist's two
    hidden layers run their update in the gradient's BLAS call; the output layer never does."""
    D, H, C, B = shape
    rng = np.random.default_rng(0)
    P = [tg.Node(rng.standard_normal(s).astype(np.float32) * 0.05)
         for s in ((D, H), (H,), (H, H), (H,), (H, C), (C,))]
    W1, b1, W2, b2, W3, b3 = P
    opt = tg.optim.SGD(P, lr=0.01)

    @tg.jit
    def step(X, y):
        h = tg.relu(tg.linear(tg.relu(tg.linear(X, W1, b1)), W2, b2))
        loss = losses.softmax_cross_entropy(tg.linear(h, W3, b3), y) + losses.l2([W1, W2, W3], 1e-4)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    X, y = rng.standard_normal((B, D)).astype(np.float32), rng.integers(0, C, B)
    step(X, y), step(X, y)
    assert step.source.count("_sgd_gemm(") == fused


def _train_twice(setup, batches) -> tuple[list, list]:
    """The parameters after training compiled and eagerly from the same start: setup() gives a
    training step and its parameters, each batch is a tuple of the step's arguments."""
    out = []
    for compiled in (True, False):
        step, params = setup()
        f = tg.jit(step) if compiled else step
        for args in batches:
            f(*args)
        out.append([np.array(p.data) for p in params])
    return out[0], out[1]


@pytest.mark.parametrize("use", ["W.T", "reshape", "slice", "as input"])
@pytest.mark.parametrize("fuse", [False, True])
def test_in_place_updates_wait_for_views_of_the_weight(use, fuse, monkeypatch):
    """x @ W.T (PyTorch's layout), a reshape or a slice of W is a view of W's array that the
    backward reads after W's own gradient is done: W's in-place update must wait until then,
    as must an update whose BLAS call reads a view of another weight."""
    monkeypatch.setattr(J, "_IN_PLACE_BYTES", 0)
    monkeypatch.setattr(J, "_GEMM_MIN", 0 if fuse else 1 << 62)
    X, y = np.linspace(-1, 1, 35).reshape(7, 5), np.array([0, 1, 2, 0, 1, 2, 1])
    scores = {
        "W.T": lambda h, W2, W3: tg.relu(h @ W2.T) @ W3,
        "reshape": lambda h, W2, W3: tg.relu(h @ tg.reshape(W2, (6, 6))) @ W3,
        "slice": lambda h, W2, W3: tg.relu(h @ W2[:, :6]) @ W3,
        # W2.T is the input of W3's product, whose update waits for W3's last read
        "as input": lambda h, W2, W3: h @ (W2.T @ W3),
    }[use]

    def setup():
        rng = np.random.default_rng(1)
        W1, W2 = tg.Node(rng.standard_normal((5, 6)) * 0.3), tg.Node(rng.standard_normal((6, 6)))
        W3 = tg.Node(rng.standard_normal((6, 3)) * 0.3)
        opt = tg.optim.SGD([W1, W2, W3], lr=0.1, weight_decay=0.01)
        return _sgd_step(opt, lambda X, y: losses.softmax_cross_entropy(
            scores(tg.relu(X @ W1), W2, W3), y), "after"), [W1, W2, W3]

    for got, want in zip(*_train_twice(setup, [(X, y)] * 4)):
        _close(got, want, 1e-12)


def test_a_weight_reshaped_from_fortran_order_waits_for_its_views(monkeypatch):
    """A Fortran-ordered weight reshaped inside: a copy when tracing, a view on replay (the
    traced step leaves the weight C-ordered), so its in-place update must wait all the same."""
    monkeypatch.setattr(J, "_IN_PLACE_BYTES", 0)
    rng = np.random.default_rng(0)
    W1_0, W2_0 = rng.normal(size=(6, 8)) * 0.3, np.asfortranarray(rng.normal(size=(4, 2, 5)))
    batches = [(rng.normal(size=(7, 6)), np.arange(7) % 5) for _ in range(4)]

    def setup():
        W1, W2 = tg.Node(W1_0), tg.Node(W2_0)
        opt = tg.optim.SGD([W1, W2], lr=0.2)
        return _sgd_step(opt, lambda X, y: losses.softmax_cross_entropy(
            tg.tanh(X @ W1) @ tg.reshape(W2, (8, 5)), y), "after"), [W1, W2]

    for got, want in zip(*_train_twice(setup, batches)):
        _close(got, want, 1e-12)


def test_softmax_ce_of_transposed_scores_compiled_equals_eager():
    """(W @ X).T, the notes' layout, is Fortran-ordered: the label term of the gradient must
    still reach it."""
    rng = np.random.default_rng(0)
    W = tg.Node(rng.normal(size=(3, 4)))
    X, y = rng.normal(size=(4, 6)), np.array([0, 1, 2, 0, 1, 2])

    def loss_fn(X, y):
        return losses.softmax_cross_entropy((W @ X).T, y)

    grads = []
    for f in (loss_fn, tg.jit(loss_fn)):
        for _ in range(2):  # the second compiled call replays
            W.grad = None
            f(X, y).backward()
        grads.append(W.grad.copy())
    _close(grads[1], grads[0], 1e-12)


def test_a_gradient_two_parameters_share_is_two_arrays_in_a_compiled_step():
    """zero_grad() before: W1 and W2 of X @ (W1 + W2) get the same gradient, in two arrays."""
    rng = np.random.default_rng(0)
    W1, W2 = tg.Node(rng.normal(size=(4, 4))), tg.Node(rng.normal(size=(4, 4)))
    opt = tg.optim.SGD([W1, W2], lr=0.1)
    X, Y = rng.normal(size=(8, 4)), rng.normal(size=(8, 4))

    @tg.jit
    def step(X, Y):
        opt.zero_grad()
        loss = ((X @ (W1 + W2) - Y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    for _ in range(3):
        step(X, Y)
    assert W1.grad is not W2.grad
    np.testing.assert_array_equal(W1.grad, W2.grad)


@pytest.mark.parametrize("change", ["remove", "replace list"])
def test_a_compiled_step_follows_changes_to_the_optimizers_parameters(change):
    """A parameter taken out of opt.params after tracing is no longer stepped."""
    rng = np.random.default_rng(0)
    W1_0, W2_0 = rng.normal(size=(5, 6)) * 0.3, rng.normal(size=(6, 3)) * 0.3
    X, y = rng.normal(size=(8, 5)), np.arange(8) % 3

    def train(compiled: bool) -> list:
        W1, W2 = tg.Node(W1_0), tg.Node(W2_0)
        opt = tg.optim.SGD([W1, W2], lr=0.2)

        def step(X, y):
            loss = losses.softmax_cross_entropy(tg.relu(X @ W1) @ W2, y)
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss

        f = tg.jit(step) if compiled else step
        f(X, y), f(X, y)
        if change == "remove":
            opt.params.remove(W1)
        else:
            opt.params = [W2]
        f(X, y), f(X, y)
        return [W1.numpy(), W2.numpy()]

    for got, want in zip(train(True), train(False)):
        _close(got, want, 1e-12)


def test_zero_grad_between_backward_and_step_is_refused():
    W = tg.Node(np.ones((3, 2)))
    opt = tg.optim.SGD([W], lr=0.1)

    @tg.jit
    def step(X):
        loss = tg.sum(X @ W)
        loss.backward()
        opt.zero_grad()
        opt.step()
        return loss

    with pytest.raises(TracingError, match="between backward"):
        step(np.ones((2, 3)))
    np.testing.assert_array_equal(W.data, np.ones((3, 2)))


@pytest.mark.parametrize("force", [False, True])
def test_views_a_user_keeps_of_a_weight_that_became_a_view_keep_their_values(force, monkeypatch):
    """A 1-D weight's gradient (x @ w) is a view; after a step that gives w new arrays, w's
    data is that view. Arrays the user keeps share its base, which the reference count does
    not show: the step must not write into it."""
    if force:
        monkeypatch.setattr(J, "_IN_PLACE_BYTES", 0)
    rng = np.random.default_rng(0)
    D = 2048  # 16 KB: updated in place when nothing holds it
    batches = [(rng.normal(size=(16, D)), np.sign(rng.normal(size=16))) for _ in range(5)]

    def train(compiled: bool) -> list:
        w = tg.Node(np.zeros(D))
        opt = tg.optim.SGD([w], lr=0.5)

        def step(X, s):
            loss = tg.softplus(-(X @ w) * s).mean()
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss

        f = tg.jit(step) if compiled else step
        kept = []
        for X, s in batches:
            f(X, s)
            kept.append(np.asarray(w.data))
        return kept

    for got, want in zip(train(True), train(False)):
        _close(got, want, 1e-12)


@pytest.mark.parametrize("force", [False, True])
def test_a_batched_product_sums_its_gradient_over_the_batch_axes(force, monkeypatch):
    """x (5, 4) @ W (3, 4, 2) broadcasts x over W's batch axis: its gradient is summed back."""
    if force:
        monkeypatch.setattr(J, "_IN_PLACE_BYTES", 0)
    rng = np.random.default_rng(0)
    x0, W0 = rng.normal(size=(5, 4)), rng.normal(size=(3, 4, 2))

    def setup():
        x, W = tg.Node(x0), tg.Node(W0)
        opt = tg.optim.SGD([x, W], lr=0.1)
        return _sgd_step(opt, lambda: tg.tanh(x @ W).sum(), "after"), [x, W]

    for got, want in zip(*_train_twice(setup, [()] * 3)):
        assert got.shape == want.shape
        _close(got, want, 1e-12)


_TARGET_LOSSES = {
    "mse": (lambda s, t: losses.mse(s, t), lambda r: r.normal(size=(8, 1))),
    "mse column": (lambda s, t: losses.mse(s, t), lambda r: r.normal(size=8)),
    "bce": (lambda s, t: losses.binary_cross_entropy_with_logits(s, t),
            lambda r: r.uniform(size=8)),
    "hinge 0/1": (lambda s, t: losses.binary_hinge(s, t), lambda r: r.integers(0, 2, 8) * 1.0),
    "hinge -1/+1": (lambda s, t: losses.binary_hinge(s, t),
                    lambda r: r.integers(0, 2, 8) * 2.0 - 1.0),
}


@pytest.mark.parametrize("kind", list(_TARGET_LOSSES))
def test_float_targets_passed_as_arguments_are_read_on_every_call(kind):
    """Targets are a float array argument, a traced node: the losses keep them in the graph, so
    replay reads each call's targets instead of the ones seen when tracing."""
    loss_of, targets = _TARGET_LOSSES[kind]
    rng = np.random.default_rng(0)
    W0 = rng.normal(size=(5, 1))
    batches = [(rng.normal(size=(8, 5)), targets(rng)) for _ in range(4)]

    def train(compiled: bool) -> tuple:
        W = tg.Node(W0)
        opt = tg.optim.SGD([W], lr=0.1)

        def step(X, T):
            loss = loss_of(X @ W, T)
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss

        f = tg.jit(step) if compiled else step
        return [f(X, T).item() for X, T in batches], W.numpy()

    (lj, wj), (le, we) = train(True), train(False)
    _close(np.array(lj), np.array(le), 1e-12)
    _close(wj, we, 1e-12)


def test_targets_that_would_be_frozen_are_refused_while_tracing():
    """Class labels from a node become the op's constants, and targets of another dtype need a
    cast: both would be frozen, so tracing refuses them (eagerly they work as before)."""
    W = tg.Node(np.ones((3, 2), dtype=np.float32))
    labels = tg.jit(lambda X, y: losses.softmax_cross_entropy(X @ W, y))
    with pytest.raises(TracingError, match="class labels"):
        labels(np.ones((4, 3), np.float32), np.array([0.0, 1.0, 1.0, 0.0]))
    cast = tg.jit(lambda X, T: losses.mse(X @ W, T))
    with pytest.raises(TracingError, match="dtype float64 for scores of dtype float32"):
        cast(np.ones((4, 3), np.float32), np.ones((4, 2)))
    assert losses.mse(np.ones((4, 3), np.float32) @ W, tg.Node(np.ones((4, 2)))).item() == 4.0


def test_prelu_compiled_equals_eager_as_its_inputs_change_sign():
    """PReLU's mask is not read from the data (it would be frozen when tracing)."""
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(16, 6)), np.arange(16) % 3) for _ in range(4)]

    def setup():
        m = nn.TensorMLP(6, [12, 3], activation="prelu", seed=0)
        opt = tg.optim.SGD(m.parameters(), lr=0.3)
        return _sgd_step(opt, lambda X, y: losses.softmax_cross_entropy(m(X), y), "after"), \
            m.parameters()

    for got, want in zip(*_train_twice(setup, batches)):
        _close(got, want, 1e-12)


def test_ops_after_the_step_inside_a_compiled_step_are_refused_and_change_nothing():
    """Replay runs the whole forward before the step: a loss recomputed after opt.step() inside
    would read the parameters before their update."""
    W = tg.Node(np.ones((3, 2)))
    opt = tg.optim.SGD([W], lr=0.1)

    @tg.jit
    def step(X):
        loss = tg.sum(tg.tanh(X @ W))
        loss.backward()
        opt.step()
        opt.zero_grad()
        with tg.no_grad():
            after = tg.sum(tg.tanh(X @ W))
        return loss, after

    with pytest.raises(TracingError, match="after the optimizer's step"):
        step(np.ones((2, 3)))
    np.testing.assert_array_equal(W.data, np.ones((3, 2)))
    assert W.grad is None and opt.t == 0


# ---------------------------------------------------------------------------------------------
# Gradients cleared or changed by assignment inside a compiled step
# ---------------------------------------------------------------------------------------------


def _clear(ps, how: str) -> None:
    """Clear gradients the ways users do without an optimizer's zero_grad()."""
    for p in ps:
        if how == "None":  # PyTorch's set_to_none
            p.grad = None
        elif how == "0.0":  # micrograd's demo
            p.grad = 0.0
        elif how == "zeros":
            p.grad = np.zeros(p.shape)
        else:
            p.zero_grad()


@pytest.mark.parametrize("how", ["None", "0.0", "zeros", "node.zero_grad()"])
@pytest.mark.parametrize("where", ["before backward", "after step"])
def test_gradients_cleared_by_assignment_replay_as_eagerly(how, where) -> None:
    """`p.grad = None` (or 0) inside a compiled step is recorded and replayed in its place;
    before, replay kept the gradients, so the next backward() added to stale ones."""
    X, y = np.linspace(-1, 1, 28).reshape(7, 4), np.array([0, 1, 2, 0, 1, 2, 1])

    def run(compiled):
        model = nn.TensorMLP(4, [5, 3], "tanh", seed=3)
        ps, opt = model.parameters(), tg.optim.SGD(model.parameters(), lr=0.5)

        def step(X, y):
            if where == "before backward":
                _clear(ps, how)
            loss = losses.softmax_cross_entropy(model(X), y)
            loss.backward()
            opt.step()
            if where == "after step":
                _clear(ps, how)
            return loss

        f = tg.jit(step) if compiled else step
        out = [f(X, y).item() for _ in range(4)]
        grads = [None if p.grad is None else np.array(p.grad, dtype=float) for p in ps]
        return out, [np.array(p.data) for p in ps], grads

    (lc, pc, gc_), (le, pe, ge) = run(True), run(False)
    np.testing.assert_allclose(lc, le, rtol=1e-12)
    for a, b in zip(pc + gc_, pe + ge, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_scalar_step_cleared_as_micrograd_does_replays_as_eagerly() -> None:
    """micrograd's loop at the scalar level: p.grad = 0.0 for every parameter, backward(),
    then the optimizer's step."""
    def run(compiled):
        ws = [tg.Node(v, name=f"w{i}") for i, v in enumerate((0.5, -0.3, 0.8))]
        opt = tg.optim.SGD(ws, lr=0.1)

        def step(x, t):
            out = tg.tanh(ws[0] * x + ws[1]) * ws[2]
            loss = (out - t) ** 2
            for p in ws:
                p.grad = 0.0
            loss.backward()
            opt.step()
            return loss

        f = tg.jit(step) if compiled else step  # (node arguments: one signature, one trace)
        losses_ = [f(tg.Node(x, requires_grad=False), tg.Node(t, requires_grad=False)).item()
                   for x, t in ((0.5, 1.0), (-1.0, 0.0), (2.0, -1.0), (0.1, 0.3))]
        return losses_, [w.data for w in ws]

    (lc, wc), (le, we) = run(True), run(False)
    np.testing.assert_allclose(lc, le, rtol=1e-12)
    np.testing.assert_allclose(wc, we, rtol=1e-12)


def test_a_gradient_changed_in_place_after_backward_is_refused_and_put_back() -> None:
    """Clipped in place with no step after it (the step outside): replay would hand out the
    unclipped gradient."""
    W = tg.Node(np.linspace(-1, 1, 6).reshape(3, 2), name="W")
    X = np.linspace(-1, 1, 15).reshape(5, 3)

    def f(X):
        loss = tg.sum(tg.tanh(X @ W) ** 2)
        loss.backward()
        np.clip(W.grad, -0.01, 0.01, out=W.grad)
        return loss

    with pytest.raises(TracingError, match="changed after backward"):
        tg.jit(f)(X)
    assert W.grad is None


def test_a_computed_gradient_assigned_inside_is_refused() -> None:
    W = tg.Node(np.linspace(-1, 1, 6).reshape(3, 2), name="W")
    X = np.linspace(-1, 1, 15).reshape(5, 3)

    def f(X):
        loss = tg.sum(tg.tanh(X @ W) ** 2)
        loss.backward()
        W.grad = W.grad / max(1.0, float(np.linalg.norm(W.grad)))
        return loss

    with pytest.raises(TracingError, match=r"assigning \.grad of 'W'.*test_jit\.py:\d+"):
        tg.jit(f)(X)
    assert W.grad is None


def test_an_unchanged_nan_gradient_is_not_taken_for_a_clipped_one() -> None:
    """A nan gradient equals itself between backward() and step(): no TracingError."""
    W = tg.Node(np.linspace(-1, 1, 6).reshape(3, 2), name="W")
    opt = tg.optim.SGD([W], lr=0.1)
    X = np.linspace(-1, 1, 15).reshape(5, 3)
    X[0, 0] = np.nan
    step = tg.jit(_sgd_step(opt, lambda X: tg.sum(tg.tanh(X @ W) ** 2)))
    with np.errstate(invalid="ignore"):
        assert np.isnan(step(X).item()) and np.isnan(step(X).item())
    assert np.isnan(W.data).any()


@pytest.mark.parametrize("where", ["before backward", "between", "after step"])
def test_p_grad_none_for_every_parameter_is_the_optimizers_zero_grad(where) -> None:
    """PyTorch's `for p in params: p.grad = None` compiles like opt.zero_grad(): before
    backward() or after step() into the generated SGD step; between backward() and step() it
    leaves nothing to step, as eagerly."""
    W = tg.Node(np.linspace(-1, 1, 6).reshape(3, 2), name="W")
    b = tg.Node(np.zeros(2), name="b")
    X = np.linspace(-1, 1, 15).reshape(5, 3)

    def run(compiled):
        P = [tg.Node(W.data.copy(), name="W"), tg.Node(b.data.copy(), name="b")]
        opt = tg.optim.SGD(P, lr=0.1)

        def step(X):
            loss = tg.sum(tg.tanh(X @ P[0] + P[1]) ** 2)
            if where == "before backward":
                _clear(P, "None")
            loss.backward()
            if where == "between":
                _clear(P, "None")
            opt.step()
            if where == "after step":
                _clear(P, "None")
            return loss

        f = tg.jit(step) if compiled else step
        out = [f(X).item() for _ in range(3)]
        return out, [p.data for p in P], [p.grad for p in P], f

    (lc, pc, gc_, f), (le, pe, ge, _) = run(True), run(False)
    np.testing.assert_allclose(lc, le, rtol=1e-12)
    for a, c in zip(pc, pe, strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-12)
    assert [g is None for g in gc_] == [g is None for g in ge]
    assert ("backward_step" in f.source) == (where != "between")


# ---------------------------------------------------------------------------------------------
# Found by user-style probes: copies, arguments changed in place, scalar batches, errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arg", ["array", "node"])
def test_node_of_a_node_inside_a_compiled_step_is_a_leaf_to_backward(arg) -> None:
    """micrograd's `list(map(Value, xrow))`, tg.Node(x) of an argument, inside a function that
    calls backward(): the pass inside must see the leaf eager mode makes (it crashed)."""
    def run(compiled):
        W = tg.Node(np.array([0.5, -1.0]), name="W")

        def step(x):
            loss = tg.sum(W * tg.tanh(tg.Node(x)))
            W.grad = None
            loss.backward()
            return loss

        f = tg.jit(step) if compiled else step
        out = []
        for i in range(4):
            x = np.array([1.0, 2.0]) * (i + 1) / 4
            out.append((f(x if arg == "array" else tg.Node(x, requires_grad=False)).item(),
                        W.grad.copy()))
        return out

    for (lc, gc_), (le, ge) in zip(run(True), run(False), strict=True):
        assert lc == pytest.approx(le, rel=1e-12)
        np.testing.assert_allclose(gc_, ge, rtol=1e-12)


def test_an_array_argument_changed_in_place_after_the_call_changes_no_gradient() -> None:
    """loss = f(X); X *= 100; loss.backward(): eager mode read a copy of X, so must replay."""
    W = tg.Node(np.linspace(-1, 1, 6).reshape(3, 2), name="W")
    f = tg.jit(lambda X: tg.sum((X @ W) ** 2 / 2))
    for i in range(3):
        X = np.linspace(-1, 1, 15).reshape(5, 3) * (i + 1)
        want = X.T @ (X @ W.data)
        loss = f(X)
        X *= 100
        W.grad = None
        loss.backward()
        np.testing.assert_allclose(W.grad, want, rtol=1e-12)


def test_an_output_viewing_an_array_argument_is_its_own_array() -> None:
    f = tg.jit(lambda X: (tg.reshape(X, (-1,)), tg.transpose(X)))
    for i in range(3):
        X = np.arange(6.0).reshape(2, 3) + i
        flat, xt = f(X)
        X *= 100
        assert flat.data[0] == i and xt.data[0, 0] == i


def test_the_scalar_mlp_takes_a_batch_under_jit() -> None:
    """nn.MLP (micrograd-style) on a 2-D array: under tg.jit the array is a node, split by ops
    so that each replay reads the call's rows (it raised ShapeError)."""
    model = nn.MLP(2, [4, 1], "relu", seed=0)
    y = np.array([1.0, -1, 1, -1, 1, 1])

    def loss(X):
        return losses.binary_hinge(model(X).reshape(-1), y)

    f = tg.jit(loss)
    for i in range(3):
        X = np.random.default_rng(i).normal(size=(6, 2))
        assert f(X).item() == pytest.approx(loss(X).item(), rel=1e-12)
    with pytest.raises(tg.ShapeError, match="expects 2 inputs per sample"):
        model(tg.Node(np.zeros((3, 5))))


def test_an_error_of_the_function_itself_leaves_what_it_did_as_eagerly() -> None:
    """Only a refusal (TracingError) takes the tracing run's step back; the function's own
    exception after opt.step() leaves the step done, as the same call does eagerly."""
    def run(compiled):
        W = tg.Node(np.linspace(-1, 1, 6).reshape(3, 2), name="W")
        opt = tg.optim.SGD([W], lr=0.1)

        def step(X):
            loss = tg.sum(tg.tanh(X @ W) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            raise KeyError("the user's own check")

        with pytest.raises(KeyError):
            (tg.jit(step) if compiled else step)(np.linspace(-1, 1, 15).reshape(5, 3))
        return W.data.copy(), opt.t

    (wc, tc), (we, te) = run(True), run(False)
    np.testing.assert_array_equal(wc, we)
    assert tc == te == 1


def test_minus_zero_is_a_signature_of_its_own() -> None:
    f = tg.jit(lambda x, s: tg.sum(x / s))
    x = tg.Node(np.array([1.0, 2.0]))
    with np.errstate(divide="ignore"):
        assert f(x, 0.0).item() == np.inf
        assert f(x, -0.0).item() == -np.inf
        assert f(x, np.float64(-0.0)).item() == -np.inf


def test_reading_a_captured_parameters_data_names_the_optimizer_way() -> None:
    W = tg.Node(np.ones((3, 2)), name="W")

    def step(X):
        loss = tg.sum(X @ W)
        loss.backward()
        W.data -= 0.1 * W.grad  # micrograd's update
        return loss

    with pytest.raises(TracingError, match=r"reading \.data of 'W'.*which the function captures"
                       r".*optimizer's step\(\)"):
        tg.jit(step)(np.ones((4, 3)))
    assert W.grad is None and np.array_equal(W.data, np.ones((3, 2)))


def test_clear_forgets_the_traces_so_a_replaced_parameter_is_used() -> None:
    """Replay keeps the nodes it traced; after replacing one, clear() makes the next call trace
    again (the README documents both)."""
    layer = nn.Linear(3, 2, seed=0)
    X = np.linspace(-1, 1, 12).reshape(4, 3)
    f = tg.jit(lambda X: tg.sum(layer(X) ** 2))
    f(X)
    layer.W = tg.Node(np.zeros_like(layer.W.data), name="W")
    stale = f(X).item()
    f.clear()
    assert f(X).item() == pytest.approx(tg.sum(layer(X) ** 2).item(), rel=1e-12) != stale


def test_a_namedtuple_or_an_ordered_dict_argument_is_traced_as_it_is() -> None:
    from collections import OrderedDict, namedtuple

    Batch = namedtuple("Batch", "x y")
    W = tg.Node(np.array([[1.0], [2.0]]), name="W")

    def f(b, opts):
        return tg.sum((b.x @ W - b.y) ** 2) * opts["scale"]

    g = tg.jit(f)
    for i in range(3):
        b = Batch(np.arange(4.0).reshape(2, 2) + i, np.array([[1.0], [0.0]]))
        opts = OrderedDict(scale=np.array(0.5 + i))
        assert g(b, opts).item() == pytest.approx(f(b, opts).item(), rel=1e-12)
    assert g.traces == 1


def test_anomaly_mode_around_a_compiled_outputs_backward_names_the_op() -> None:
    W = tg.Node(np.array([0.0, 1.0]), name="W")
    f = tg.jit(lambda: tg.sum(tg.sqrt(W)))
    f()
    out = f()  # a replay, outside anomaly mode
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match="backward of sqrt"):
        out.backward()


def test_a_nan_number_argument_is_one_signature() -> None:
    f = tg.jit(lambda x, s: tg.sum(x * s))
    x = tg.Node(np.array([1.0, 2.0]))
    for _ in range(3):
        assert np.isnan(f(x, float("nan")).item())
    assert f.traces == 1


def test_the_graph_of_a_step_that_returns_nothing_is_its_loss() -> None:
    model = nn.TensorMLP(3, [4, 2], "relu", seed=0)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)

    @tg.jit
    def step(X, y):
        loss = losses.softmax_cross_entropy(model(X), y)
        loss.backward()
        opt.step()
        opt.zero_grad()

    assert step(np.ones((2, 3)), np.array([0, 1])) is None
    assert step.graph.name == "loss" and step.graph.op == "softmax_cross_entropy"
    from tinygraph import viz

    assert "<svg" in viz.draw(step.graph).svg()


def test_first_derivatives_through_a_compiled_function_match_eager() -> None:
    """The README's table: tg.grad / value_and_grad / jacobian through a compiled function use
    its generated backward; second order raises GraphError."""
    W = tg.Node(np.array([[0.5, -1.0], [2.0, 0.3]]), name="W")

    def f(x):
        return tg.sum(tg.tanh(x @ W) ** 2)

    jf = tg.jit(f)
    x = np.array([0.3, -0.7])
    jf(x)
    for fn in (tg.grad, tg.value_and_grad, tg.jacobian):
        got, want = fn(jf)(x), fn(f)(x)
        got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                       rtol=1e-12)
    with pytest.raises(tg.GraphError, match="compiled function"):
        tg.hessian(jf)(x)


def test_a_function_that_keeps_tracing_warns_once_naming_the_argument() -> None:
    W = tg.Node(np.ones((3, 2)), name="W")
    f = tg.jit(lambda X, idx: tg.sum((X @ W)[idx]), cache_size=2)
    X = np.ones((5, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(5):  # 5 signatures, 2 kept: no warning yet
            f(X, np.array([i % 5]))
    with pytest.warns(RuntimeWarning, match=r"traced 6 times \(2 signatures are kept\); "
                      r"argument 1 changes: an int or bool array") as rec:
        for i in range(5, 12):
            f(X, np.array([i % 5, 0]))
    assert len(rec) == 1 and f.traces == 12
