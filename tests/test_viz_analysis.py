"""Activations read from the graph's maths (tinygraph.analysis), as the diagrams and the
diagnostics see them: any spelling of an activation, units in either convention, wrapped inputs.
Expected values come from numpy by hand or from finite differences, never from analysis itself.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import tinygraph as tg
import tinygraph.viz as viz
from tinygraph import analysis, diagnostics
from tinygraph.engine import walk

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed")

# The notes' first layer: activations [1, 1, 1, 0.937] on one sample; three units saturated.
W1 = np.array([[4.0, 3.0, 2.0], [5.0, 2.0, 3.0], [3.0, 4.0, 5.0], [0.5, 0.4, 0.6]])
B1 = np.array([1.0, 1.0, 1.0, 0.5])


def notes_sigmoid(x: tg.Node) -> tg.Node:
    return 1.0 / (1.0 + tg.exp(-x))  # the notes' spelling, f = lambda x: 1.0/(1.0 + np.exp(-x))


def columns(X: np.ndarray, f=notes_sigmoid, scope: str | None = None) -> tg.Node:
    """The notes' column convention: h1 = f(W1 @ x + b1), x of shape (3, N), b1 (4, 1)."""
    with tg.scope(scope) if scope else _null():
        W = tg.Node(W1, name="W1")
        b = tg.Node(B1.reshape(4, 1), name="b1")
        x = tg.Node(X.T, requires_grad=False, name="x")
        h = f(W @ x + b)
        h.name = "h1"
    loss = h.sum()
    loss.backward()
    return loss


def rows(X: np.ndarray, f=notes_sigmoid, scope: str | None = None) -> tg.Node:
    """The row convention: h1 = f(x @ W1.T + b1), x of shape (N, 3)."""
    with tg.scope(scope) if scope else _null():
        W = tg.Node(W1.T.copy(), name="W1")
        b = tg.Node(B1, name="b1")
        x = tg.Node(X, requires_grad=False, name="x")
        h = f(x @ W + b)
        h.name = "h1"
    loss = h.sum()
    loss.backward()
    return loss


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def _expected_saturated(X: np.ndarray) -> tuple[int, float]:
    s = 1.0 / (1.0 + np.exp(-(X @ W1.T + B1)))  # (N, 4), numpy by hand
    flat = s * (1 - s) < 0.01
    return int((flat.mean(axis=0) >= 0.5).sum()), float(flat.mean())


@pytest.mark.parametrize("n", [1, 5])
@pytest.mark.parametrize("build", [columns, rows], ids=["columns", "rows"])
def test_composed_sigmoid_flagged_like_tg_sigmoid_in_both_conventions(build, n: int) -> None:
    X = np.random.default_rng(n).normal(size=(n, 3)) + np.array([1.0, 2.0, 1.5])
    units, share = _expected_saturated(X)
    assert units >= 2
    composed = viz.draw(build(X), level="op")
    named = viz.draw(build(X, f=tg.sigmoid), level="op")
    for view in (composed, named):
        flag = next(f for f in view.flags if f.label == "h1")
        assert flag.kind == "saturated"
        assert flag.units == (units, 4)  # four units, along the feature axis
        assert f"{units}/4 σ units saturated" in flag.text
        if n > 1:
            assert f"({share:.0%} of activations saturated" in flag.text


def test_the_notes_forward_pass_reports_three_of_four_units() -> None:
    x = np.array([[1.0, 2.0, 1.5]])
    for build in (columns, rows):
        report = viz.draw(build(x)).report()
        assert "h1: ⚠ saturated: 3/4 σ units saturated" in report


@pytest.mark.parametrize("build", [columns, rows], ids=["columns", "rows"])
def test_diagnostics_count_units_in_both_conventions(build) -> None:
    X = np.random.default_rng(3).normal(size=(6, 3)) + 1.0
    units, share = _expected_saturated(X)
    d = diagnostics.activation_stats(build(X, scope="L1"))["L1"]
    assert (d.units, d.samples, d.saturated) == (4, 6, units)
    assert d.saturated_fraction == pytest.approx(share)
    assert d.activation == "sigmoid" and d.family == "squash"


def test_derivative_comes_from_the_op_table_and_matches_finite_differences() -> None:
    z0 = np.array([[-6.0, -1.0, 0.0, 0.5, 7.0]])
    z = tg.Node(z0, name="z")
    h = notes_sigmoid(z * 1.0)
    loss = h.sum()
    loss.backward()
    acts = analysis.find(walk(loss))
    (act,) = acts.values()
    eps = 1e-6
    f = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    fd = (f(z0 + eps) - f(z0 - eps)) / (2 * eps)
    np.testing.assert_allclose(act.derivative, fd, rtol=1e-6, atol=1e-12)
    assert act.name == "sigmoid" and act.composed and act.family == "squash"
    # A primitive of the user's own: its derivative is its own VJP rule, nothing restated.
    softsign = tg.primitive("softsign_t", lambda x: x / (1 + np.abs(x)),
                            lambda g, out, x: g / (1 + np.abs(x)) ** 2)
    W = tg.Node(np.array([[2.0, -30.0]]), name="W")
    xin = tg.Node(np.array([[1.0], [1.0]]), requires_grad=False)
    out = softsign(tg.Node(np.array([[0.0]]), name="b") + W @ xin)
    nxt = tg.Node(np.array([[1.0]]), name="V") @ out  # the next layer
    nxt.sum().backward()
    (act,) = analysis.find(walk(nxt)).values()
    assert act.name == "softsign_t"
    np.testing.assert_allclose(act.derivative, 1 / (1 + 28.0) ** 2)


def test_a_flat_region_in_any_spelling_is_flagged() -> None:
    # An RBF unit exp(-z²) far from its centre passes almost no gradient.
    W = tg.Node(np.array([[3.0, 0.1], [0.0, 0.2]]), name="W")
    x = tg.Node(np.array([[2.0, 1.0]]), requires_grad=False)
    h = tg.exp(-(x @ W) ** 2)
    h.name = "rbf"
    V = tg.Node(np.array([[1.0], [1.0]]), name="V")  # the next layer
    loss = (h @ V).sum()
    loss.backward()
    (act,) = analysis.find(walk(loss)).values()
    zz = np.array([[6.0, 0.4]])
    np.testing.assert_allclose(act.derivative, -2 * zz * np.exp(-zz**2), rtol=1e-9)
    assert act.family == "squash" and act.name == "exp∘neg∘pow"
    flag = next(f for f in viz.draw(loss).flags if f.label == "rbf")
    assert flag.kind == "saturated" and flag.units == (1, 2)
    assert "1/2 exp∘neg∘pow units in a flat region" in flag.text


def test_a_loss_softplus_or_softmax_exp_is_not_a_unit() -> None:
    W = tg.Node(np.array([[3.0, -40.0]]), name="W")
    x = tg.Node(np.array([[1.0]]), requires_grad=False)
    with tg.scope("L1"):
        s = x @ W
    with tg.scope("loss"):
        loss = tg.softplus(-s).sum()
    e = tg.exp(x @ W)  # a softmax's exp: not a unit either
    loss = loss + (e / e.sum()).sum()
    loss.backward()
    assert analysis.find(walk(loss)) == {}


def test_loss_side_chains_are_not_units() -> None:
    # (a - y)**2 after an activation is the loss, not part of the activation.
    z = tg.Node(np.array([0.3, -0.2]), name="z")
    with tg.scope("L1"):
        a = tg.tanh(z * 2.0)
    loss = ((a - 1.0) ** 2).sum()
    loss.backward()
    acts = list(analysis.find(walk(loss)).values())
    assert [x.name for x in acts] == ["tanh"]
    np.testing.assert_allclose(acts[0].derivative, 2.0 * (1 - np.tanh(z.data * 2.0) ** 2))


def test_feature_axis_rules_and_the_ambiguous_case() -> None:
    W = tg.Node(np.ones((4, 3)))
    x = tg.Node(np.ones((3, 5)), requires_grad=False)
    assert analysis.feature_axis(W @ x) == 0  # weight on the left: columns
    assert analysis.feature_axis(x.T @ W.T) == -1  # weight on the right: rows
    b_col = tg.Node(np.ones((4, 1)))
    both = tg.Node(np.ones((3, 5)))  # trainable too: the bias decides
    assert analysis.feature_axis(W @ both + b_col) == 0
    assert analysis.feature_axis(both.T @ W.T + tg.Node(np.ones(4))) == -1
    # Ambiguous: two trainable square operands and no bias read as rows.
    A, B = tg.Node(np.ones((3, 3))), tg.Node(np.ones((3, 3)))
    assert analysis.feature_axis(A @ B) == -1
    assert analysis.feature_axis(tg.Node(np.ones(4))) == -1


@needs_dot
def test_micrograd_readme_expression_draws() -> None:
    a = tg.Node(-4.0)
    b = tg.Node(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    # micrograd's README: 24.7041, 138.8338, 645.5773
    assert (round(g.data, 4), round(a.grad, 4), round(b.grad, 4)) == (24.7041, 138.8338, 645.5773)
    view = viz.draw(g, edge_labels=True)
    svg = view.svg()
    assert svg.count('class="node') >= 10
    assert "24.7" in svg and "138.8" in svg
    # (b + a).relu() = relu(-2) is off: the one dead unit of the expression
    assert [f.kind for f in view.flags] == ["dead"]


def _moons_port(wrap: bool, n: int = 30) -> tg.Node:
    """micrograd's demo.ipynb, line for line, with tinygraph's Node as Value."""
    Value = tg.Node
    model = tg.nn.MLP(2, [16, 16, 1], seed=0)
    X, y = tg.data.make_moons(n, noise=0.1, seed=1)
    y = y * 2 - 1
    inputs = [list(map(Value, xrow)) if wrap else xrow for xrow in X.tolist()]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y.tolist(), scores, strict=True)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    total = data_loss + reg_loss
    total.backward()
    return total


def test_micrograd_moons_port_draws_like_the_float_version() -> None:
    plain = viz.draw(_moons_port(False)).data
    wrapped = viz.draw(_moons_port(True)).data
    assert wrapped.level == plain.level == "neuron"
    assert [n.header for n in wrapped.nodes] == [n.header for n in plain.nodes]
    assert len(wrapped.edges) == len(plain.edges)
    # the inputs are the two input boxes x0, x1; the units are the MLP's 16 + 16 + 1 neurons
    assert [n.header for n in wrapped.nodes if n.role == "input"] == ["x0", "x1"]
    neurons = [n.header for n in wrapped.nodes if n.scope and n.scope.count(".") == 1]
    assert sum(h.startswith("L1.") for h in neurons) == 16
    assert sum(h.startswith("L2.") for h in neurons) == 16
    report = viz.draw(_moons_port(True)).report()
    for layer in ("L1", "L2", "L3"):
        assert f"{layer}: " in report


def test_micrograd_moons_port_diagnostics_name_units() -> None:
    stats = diagnostics.activation_stats(_moons_port(True, n=20))
    assert (stats["L1"].units, stats["L2"].units) == (16, 16)
    assert stats["L1"].activation == "relu" and stats["L1"].samples == 20


def test_unit_stats_match_numpy_and_are_what_diagnostics_and_diagrams_report() -> None:
    # One ReLU layer in the row convention, (N, units): unit 0 gets z <= 0 on every sample
    # (dead), unit 1 on some, unit 2 never. Expected counts come from numpy on z.
    X = np.array([[1.0, 2.0], [2.0, 0.5], [0.5, 1.0], [-1.0, 3.0]])
    W = np.array([[-1.0, 1.0, 1.0], [-1.0, -1.0, 1.0]])
    b = np.array([0.0, 0.5, 4.0])
    with tg.scope("L1"):
        z = tg.Node(X, requires_grad=False) @ tg.Node(W, name="W") + tg.Node(b, name="b")
        z.name = "z"
        act = tg.relu(z)
        act.name = "act"
    loss = tg.sum(act * act)
    loss.backward()
    zs = X @ W + b
    acts = list(analysis.find(walk(loss)).values())
    s = analysis.unit_stats(acts)
    assert (s.units, s.samples, s.values) == (3, 4, 12)
    assert s.dead == int(np.all(zs <= 0, axis=0).sum()) == 1
    assert s.off == int((zs <= 0).sum())
    assert s.inactive_fraction == pytest.approx(float((zs <= 0).mean()))
    assert s.family == "gate" and s.names == ["relu"]
    assert s.off_units == [("L1.act", 0)]  # keyed by the activation's label and index
    # Diagnostics and diagrams report the same figures.
    d = diagnostics.activation_stats(loss)["L1"]
    assert (d.units, d.dead, d.inactive_fraction) == (s.units, s.dead, s.inactive_fraction)
    data = viz.build(loss)
    assert data.health["L1"].dead == 1 and data.off_units == [("L1.act", 0)]
    assert [f.kind for f in data.flags if f.kind == "dead"] == ["dead"]
