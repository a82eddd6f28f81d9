"""Engine tests: scalar vs tensor graphs and a random-DAG state machine (T7), determinism (T8),
deep and wide graphs (T9), no reference cycles (T10), graph semantics (T14)."""

from __future__ import annotations

import gc
import math
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

import tinygraph as tg
from tinygraph.errors import GraphError

# Set TINYGRAPH_BIG=1 for the full-size deep tensor chain (10^6 ops; CI runs 10^5).
BIG = os.environ.get("TINYGRAPH_BIG") == "1"

# --- T7: scalar-level graph vs tensor-level graph -------------------------------------------------


def _mlp_tensor(X: tg.Node, Ws: list[tg.Node], bs: list[tg.Node], C: np.ndarray) -> tg.Node:
    h = X
    for k, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        z = h @ W + b
        h = tg.tanh(z) if k < len(Ws) - 1 else z
    return tg.sum(h * C)


def _mlp_scalar(X: list[list[tg.Node]], Ws: list[list[list[tg.Node]]],
                bs: list[list[tg.Node]], C: np.ndarray) -> tg.Node:
    """The same network, one scalar node per weight and per activation (micrograd-style)."""
    total: tg.Node | float = 0.0
    for s, x in enumerate(X):
        h = x
        for k, (W, b) in enumerate(zip(Ws, bs, strict=True)):
            z = [sum((h[i] * W[i][j] for i in range(len(h))), b[j]) for j in range(len(b))]
            h = [zj.tanh() for zj in z] if k < len(Ws) - 1 else z
        for j, hj in enumerate(h):
            total = total + hj * float(C[s, j])
    return total


@st.composite
def mlps(draw: st.DrawFn) -> tuple:
    widths = draw(st.lists(st.integers(1, 8), min_size=2, max_size=4))  # 1-3 layers
    batch = draw(st.integers(1, 16))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, widths[0]))
    pairs = zip(widths[:-1], widths[1:], strict=True)
    Ws = [rng.normal(size=(a, b)) / math.sqrt(a) for a, b in pairs]
    bs = [rng.normal(size=(b,)) for b in widths[1:]]
    C = rng.normal(size=(batch, widths[-1]))
    return X, Ws, bs, C


@settings(max_examples=30)
@given(mlps())
def test_scalar_graph_equals_tensor_graph(net: tuple) -> None:
    X, Ws, bs, C = net
    tX = tg.Node(X)
    tWs, tbs = [tg.Node(W) for W in Ws], [tg.Node(b) for b in bs]
    loss_t = _mlp_tensor(tX, tWs, tbs, C)
    loss_t.backward()

    sX = [[tg.Node(float(v)) for v in row] for row in X]
    sWs = [[[tg.Node(float(v)) for v in row] for row in W] for W in Ws]
    sbs = [[tg.Node(float(v)) for v in b] for b in bs]
    loss_s = _mlp_scalar(sX, sWs, sbs, C)
    loss_s.backward()

    assert loss_s.is_scalar and loss_t.is_scalar
    np.testing.assert_allclose(loss_s.data, loss_t.data, rtol=1e-10)
    grad = lambda nodes: np.array([[n.grad for n in row] for row in nodes])  # noqa: E731
    np.testing.assert_allclose(grad(sX), tX.grad, rtol=1e-10, atol=1e-12)
    for sW, tW in zip(sWs, tWs, strict=True):
        np.testing.assert_allclose(grad(sW), tW.grad, rtol=1e-10, atol=1e-12)
    for sb, tb in zip(sbs, tbs, strict=True):
        np.testing.assert_allclose([n.grad for n in sb], tb.grad, rtol=1e-10, atol=1e-12)


@settings(max_examples=50)
@given(mlps())
def test_batch_gradient_is_the_sum_of_per_sample_gradients(net: tuple) -> None:
    X, Ws, bs, C = net
    tWs, tbs = [tg.Node(W) for W in Ws], [tg.Node(b) for b in bs]
    _mlp_tensor(tg.Node(X), tWs, tbs, C).backward()
    batch = [np.array(p.grad) for p in tWs + tbs]
    tg.zero_grad(tWs, tbs)
    for s in range(len(X)):  # .grad accumulates over the per-sample passes
        _mlp_tensor(tg.Node(X[s:s + 1]), tWs, tbs, C[s:s + 1]).backward()
    for b, p in zip(batch, tWs + tbs, strict=True):
        np.testing.assert_allclose(p.grad, b, rtol=1e-10, atol=1e-12)


class Dual:
    """A naive forward-mode reference: a value and its partials with respect to every leaf."""

    def __init__(self, value: float, partials: dict[int, float]) -> None:
        self.value, self.partials = value, partials

    def chain(self, value: float, *terms: tuple[Dual, float]) -> Dual:
        out: dict[int, float] = {}
        for d, local in terms:
            for k, v in d.partials.items():
                out[k] = out.get(k, 0.0) + local * v
        return Dual(value, out)


def _ref_unary(op: str, a: Dual) -> Dual:
    x = a.value
    if op == "tanh":
        t = math.tanh(x)
        return a.chain(t, (a, 1 - t * t))
    if op == "sigmoid":
        s = 1 / (1 + math.exp(-x))
        return a.chain(s, (a, s * (1 - s)))
    if op == "square":
        return a.chain(x * x, (a, 2 * x))
    t = math.tanh(x)  # exp∘tanh
    return a.chain(math.exp(t), (a, math.exp(t) * (1 - t * t)))


def _tg_unary(op: str, a: tg.Node) -> tg.Node:
    return {"tanh": tg.tanh, "sigmoid": tg.sigmoid, "square": lambda n: n * n,
            "exptanh": lambda n: tg.exp(tg.tanh(n))}[op](a)


def _ref_binary(op: str, a: Dual, b: Dual) -> Dual:
    x, y = a.value, b.value
    if op == "add":
        return a.chain(x + y, (a, 1.0), (b, 1.0))
    if op == "sub":
        return a.chain(x - y, (a, 1.0), (b, -1.0))
    if op == "mul":
        return a.chain(x * y, (a, y), (b, x))
    d = 1 + y * y  # a / (1 + b²)
    return a.chain(x / d, (a, 1 / d), (b, -2 * x * y / (d * d)))


def _tg_binary(op: str, a: tg.Node, b: tg.Node) -> tg.Node:
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    return a / (1.0 + b * b)


class RandomDAG(RuleBasedStateMachine):
    """Grow a DAG with reused nodes (a*a, diamonds, fan-out); backward from any node must equal
    the forward-mode reference for every leaf."""

    nodes = Bundle("nodes")

    def __init__(self) -> None:
        super().__init__()
        self.all: list[tuple[tg.Node, Dual]] = []
        self.leaves: list[tg.Node] = []

    @rule(target=nodes, x=st.floats(-2, 2))
    def leaf(self, x: float) -> tuple[tg.Node, Dual]:
        k = len(self.leaves)
        n = tg.Node(x, name=f"x{k}")
        self.leaves.append(n)
        self.all.append((n, Dual(x, {k: 1.0})))
        return self.all[-1]

    @rule(target=nodes, a=nodes, op=st.sampled_from(["tanh", "sigmoid", "square", "exptanh"]))
    def unary(self, a: tuple, op: str) -> tuple[tg.Node, Dual]:
        self.all.append((_tg_unary(op, a[0]), _ref_unary(op, a[1])))
        return self.all[-1]

    @rule(target=nodes, a=nodes, b=nodes, op=st.sampled_from(["add", "sub", "mul", "div"]))
    def binary(self, a: tuple, b: tuple, op: str) -> tuple[tg.Node, Dual]:
        self.all.append((_tg_binary(op, a[0], b[0]), _ref_binary(op, a[1], b[1])))
        return self.all[-1]

    @rule(target=nodes, a=nodes)
    def self_product(self, a: tuple) -> tuple[tg.Node, Dual]:
        return self.binary(a, a, "mul")

    @rule(root=nodes)
    def backward_matches_reference(self, root: tuple) -> None:
        node, ref = root
        for n, _ in self.all:
            n.zero_grad()
        node.backward()
        np.testing.assert_allclose(node.data, ref.value, rtol=1e-12)
        for k, leaf in enumerate(self.leaves):
            want = ref.partials.get(k, 0.0)
            got = 0.0 if leaf.grad is None else leaf.grad
            assert math.isclose(got, want, rel_tol=1e-10, abs_tol=1e-12), (k, got, want)

    @invariant()
    def values_match(self) -> None:
        for n, d in self.all[-1:]:
            assert math.isclose(n.data, d.value, rel_tol=1e-12, abs_tol=1e-300)


RandomDAG.TestCase.settings = settings(max_examples=100, stateful_step_count=25)
TestRandomDAG = RandomDAG.TestCase


# --- T8: determinism ------------------------------------------------------------------------------

_DETERMINISM = textwrap.dedent("""
    import numpy as np, tinygraph as tg
    rng = np.random.default_rng(1)
    xs = [tg.Node(float(v), name=f"x{i}") for i, v in enumerate(rng.normal(size=40))]
    acc = xs[0]
    for i, x in enumerate(xs[1:]):  # a scalar graph with fan-out and shared nodes
        acc = tg.tanh(acc * x + xs[i // 2]) + tg.sigmoid(x * x)
    W = tg.Node(rng.normal(size=(5, 7)))
    X = tg.Node(rng.normal(size=(9, 5)))
    loss = acc + tg.sum(tg.log_softmax(tg.tanh(X @ W) @ W.T @ W)) + tg.max(X)
    loss.backward()
    out = [x.grad.hex() for x in xs] + [float(v).hex() for v in np.ravel(W.grad)]
    out += [float(v).hex() for v in np.ravel(X.grad)]
    print(" ".join(out))
""")


def test_gradients_are_bit_identical_under_different_hash_seeds() -> None:
    outs = set()
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-c", _DETERMINISM], env=env, check=True,
                           capture_output=True, text=True)
        outs.add(r.stdout)
    assert len(outs) == 1 and len(next(iter(outs)).split()) == 40 + 35 + 45


# --- T9: deep and wide graphs, default recursion limit --------------------------------------------


def test_a_million_op_scalar_chain() -> None:
    assert sys.getrecursionlimit() <= 10_000
    x0 = tg.Node(1.0)
    x = x0
    for _ in range(500_000):
        x = x * 1.0001 + 0.0001
    x.backward()
    # d x_n / d x_0 = 1.0001^n; rounding over 10^6 ops stays far below 1e-9.
    assert math.isclose(x0.grad, 1.0001**500_000, rel_tol=1e-9)
    assert math.isclose(x.data, 2 * 1.0001**500_000 - 1, rel_tol=1e-9)


def test_a_deep_tensor_chain() -> None:
    n = 1_000_000 if BIG else 100_000
    x0 = tg.Node(np.array([1.0, 2.0]))
    x = x0
    for _ in range(n):
        x = x * 1.0
    tg.sum(x * x).backward()
    np.testing.assert_array_equal(x0.grad, [2.0, 4.0])


def test_fan_in_and_fan_out_of_a_hundred_thousand() -> None:
    n = 100_000
    xs = [tg.Node(float(i)) for i in range(n)]
    s = tg.sum(tg.stack(xs))  # one node with 10^5 inputs
    s.backward()
    assert all(x.grad == 1.0 for x in xs) and s.data == n * (n - 1) / 2
    y = tg.Node(2.0)
    acc = y * 0.0
    for i in range(n):  # y feeds 10^5 nodes
        acc = acc + y * float(i % 3)
    acc.backward()
    assert y.grad == sum(i % 3 for i in range(n))


def test_a_lattice_with_two_to_the_forty_paths() -> None:
    x, y = tg.Node(1.0), tg.Node(0.5)
    u, v = x, y
    for _ in range(40):  # each layer's u and v both feed both of the next: 2^40 paths
        u, v = u + v, u - v + u
    u.backward()
    assert len(tg.toposort(u)) == 2 + 40 + 2 * 39  # each node once, not once per path
    # d(u, v) = M d(u_prev, v_prev) with M = [[1, 1], [2, -1]]: compare with the matrix power.
    M = np.linalg.matrix_power(np.array([[1, 1], [2, -1]], dtype=object), 40)
    assert (x.grad, y.grad) == (float(M[0, 0]), float(M[0, 1]))


def test_freeing_a_deep_graph_does_not_recurse() -> None:
    code = textwrap.dedent("""
        import gc, tinygraph as tg
        gc.disable()
        x = tg.Node(1.0)
        for _ in range(1_000_000):
            x = tg.tanh(x)
        del x  # deallocation of a 10^6-deep chain must not overflow the C stack
        print("freed")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "freed", r.stderr[-2000:]


# --- T10: no reference cycles ---------------------------------------------------------------------


def _train_step() -> None:
    rng = np.random.default_rng(0)
    W = tg.Node(rng.normal(size=(3, 4)), name="W")
    b = tg.Node(np.zeros(4), name="b")
    w = [tg.Node(float(v), name=f"w{i}") for i, v in enumerate(rng.normal(size=3))]
    X = rng.normal(size=(8, 3))
    with tg.scope("tensor"):
        loss = tg.mean(tg.log_softmax(tg.tanh(X @ W + b)) ** 2)
    with tg.scope("scalar"):
        loss = loss + sum((wi * float(x) for wi, x in zip(w, X[0], strict=True)), 0.0).relu()
    loss.backward()
    for p in [W, b, *w]:
        p.data = p.data - 0.1 * p.grad
        p.zero_grad()


def test_a_training_step_leaves_no_cycles_for_the_collector() -> None:
    gc.collect()
    gc.disable()
    try:
        _train_step()
        gc.set_debug(gc.DEBUG_SAVEALL)  # keep what the collector finds so we can look at it
        gc.collect()
        found = [o for o in gc.garbage if type(o).__module__.startswith("tinygraph")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not found, f"{len(found)} tinygraph objects were only freed by the cycle collector"


def test_scalar_nodes_are_small() -> None:
    n = 100_000
    x = tg.Node(0.5)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(n):
        x = x * 0.999  # one node per step (the constant is cached)
    per_node = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    assert per_node <= 400, per_node


# --- T14: graph semantics ------------------------------------------------------------------------


def test_a_second_backward_adds_the_same_gradients_again() -> None:
    a, b = tg.Node(3.0), tg.Node(2.0)
    ab = a * b
    d = ab * a
    d.backward()
    assert (a.grad, b.grad, ab.grad, d.grad) == (12.0, 9.0, 3.0, 1.0)
    d.backward()  # documented: each pass adds its gradients; exactly twice, nothing corrupted
    assert (a.grad, b.grad, ab.grad, d.grad) == (24.0, 18.0, 6.0, 2.0)
    tg.zero_grad(a, b, ab, d)
    d.backward()
    assert (a.grad, b.grad) == (12.0, 9.0)


def test_second_backward_on_tensors_does_not_alias() -> None:
    a = tg.Node(np.array([1.0, 2.0]))
    y = tg.sum(a * a + a)
    y.backward()
    first = a.grad
    y.backward()
    np.testing.assert_array_equal(first, [3.0, 5.0])  # the first array was not written into
    np.testing.assert_array_equal(a.grad, [6.0, 10.0])


def test_no_grad_builds_no_parents() -> None:
    a = tg.Node(np.ones(3))
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = tg.tanh(a * 2.0) @ a
        s = a.sum() + 1.0
    assert tg.is_grad_enabled()
    for n in (y, s):
        assert n.parents == () and n.op is None and not n.requires_grad
    with pytest.raises(GraphError, match="does not require a gradient"):
        s.backward()


def test_detach_cuts_the_graph() -> None:
    a = tg.Node(2.0)
    b = a * 3.0
    c = b.detach()
    assert c.parents == () and not c.requires_grad and c.data == 6.0
    (a * c).backward()
    assert a.grad == 6.0  # no path through c back to a


def test_backward_from_a_node_that_requires_no_gradient() -> None:
    for n in (tg.Node(1.0, requires_grad=False), tg.const(np.ones(2)), tg.Node(1.0).detach()):
        with pytest.raises(GraphError, match="does not require a gradient"):
            n.backward()


def test_backward_from_a_leaf_gives_itself_one() -> None:
    x = tg.Node(4.0)
    x.backward()
    assert x.grad == 1.0


def test_a_stale_graph_raises_after_data_is_replaced() -> None:
    w = tg.Node(np.array([1.0, 2.0]), name="w")
    y = tg.sum(w * w)
    w.data = np.array([3.0, 4.0])
    with pytest.raises(GraphError, match=r"'w'.*stale"):
        y.backward()
    tg.sum(w * w).backward()  # a fresh forward pass works
    np.testing.assert_array_equal(w.grad, [6.0, 8.0])


def test_parents_are_ordered_and_kept_twice() -> None:
    a, b = tg.Node(1.0), tg.Node(2.0)
    assert (a - b).parents == (a, b) and (b - a).parents == (b, a)
    assert (a * a).parents == (a, a)


# --- backward order, stored gradients, fused primitives --------------------------------------


def test_parents_are_fixed_when_a_node_is_made() -> None:
    # Backward orders nodes by creation time, which holds because nothing can rewire parents.
    a, b = tg.Node(2.0), tg.Node(5.0)
    c = a * b
    d = a + 1.0  # made after c
    with pytest.raises(tg.GraphError, match="fixed when it is made"):
        c.parents = (d, b)
    assert c.parents == (a, b)
    c.backward()
    assert a.grad == 5.0 and b.grad == 2.0 and d.grad is None


def test_leaf_gradients_are_own_writable_arrays_intermediates_may_be_shared_read_only() -> None:
    a = tg.Node(np.arange(3.0))
    b = tg.Node(np.ones(3))
    y = a + b  # add hands the same gradient to both parents
    z = y * 2.0
    s = z.sum()  # sum's gradient is a broadcast view
    s.backward()
    for leaf in (a, b):
        assert leaf.grad.flags.writeable and leaf.grad.base is None
    assert not np.shares_memory(a.grad, b.grad)
    for inter in (y, z):
        assert not np.shares_memory(inter.grad, a.grad) and not np.shares_memory(inter.grad, b.grad)
        if not inter.grad.flags.writeable:  # shared or a view: locked, like .data
            with pytest.raises(ValueError):
                inter.grad[0] = 1.0
    a.grad *= 0.0  # an optimizer's in-place update touches no other gradient
    np.testing.assert_array_equal(b.grad, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(y.grad, [2.0, 2.0, 2.0])
    s.backward()  # a second pass adds into every stored gradient, read-only ones included
    np.testing.assert_array_equal(y.grad, [4.0, 4.0, 4.0])
    np.testing.assert_array_equal(z.grad, [2.0, 2.0, 2.0])


def test_a_primitive_can_save_forward_values_for_its_vjp() -> None:
    calls = []

    def fwd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = np.exp(x)
        return e / e.sum(), e  # softmax, and the exponentials for the backward

    def vjp(g: np.ndarray, out: np.ndarray, x: np.ndarray, saved: np.ndarray) -> np.ndarray:
        calls.append(saved)
        return out * (g - np.dot(g, out))

    sm = tg.primitive("softmax_saving", fwd, vjp, saves=True)
    x = np.array([0.5, -1.0, 2.0])
    assert tg.testing.gradcheck(lambda v: sm(v) * np.array([1.0, 2.0, 3.0]), x)
    np.testing.assert_allclose(calls[-1], np.exp(x))
    n = sm(tg.Node(x))
    assert n.attrs["saved"] is not None and n.data.shape == (3,)


def test_fused_softmax_cross_entropy_equals_its_composite() -> None:
    rng = np.random.default_rng(3)
    S, y = rng.normal(size=(7, 5)) * 3, rng.integers(0, 5, 7)
    for reduction in ("mean", "sum"):
        s1, s2 = tg.Node(S), tg.Node(S)
        fused = tg.losses.softmax_cross_entropy(s1, y, reduction)
        picked = -tg.log_softmax(s2, axis=1)[np.arange(7), y]
        comp = tg.mean(picked) if reduction == "mean" else tg.sum(picked)
        fused.backward()
        comp.backward()
        assert fused.op == "softmax_cross_entropy" and len(fused.parents) == 1
        assert fused.data == pytest.approx(comp.data, rel=1e-13)
        np.testing.assert_allclose(s1.grad, s2.grad, rtol=1e-12, atol=1e-15)


def test_fused_linear_and_l2_equal_their_composites() -> None:
    rng = np.random.default_rng(4)
    X, W, b = rng.normal(size=(6, 3)), rng.normal(size=(3, 4)), rng.normal(size=4)
    n1 = [tg.Node(v) for v in (X, W, b)]
    n2 = [tg.Node(v) for v in (X, W, b)]
    out1 = tg.linear(*n1)
    out1 = (tg.relu(out1) * out1).sum() + tg.losses.l2([n1[1], n1[2]], 0.3)
    out2 = n2[0] @ n2[1] + n2[2]
    out2 = (tg.relu(out2) * out2).sum() + 0.15 * ((n2[1] * n2[1]).sum() + (n2[2] * n2[2]).sum())
    out1.backward()
    out2.backward()
    assert out1.data == pytest.approx(out2.data, rel=1e-13)
    for p, q in zip(n1, n2, strict=True):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-12, atol=1e-14)
