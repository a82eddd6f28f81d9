"""tinygraph.viz: the plain view data (no graphviz, no `dot`): numbers, flags, edges, levels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygraph as tg
import tinygraph.viz as viz
from tinygraph import nn
from tinygraph.errors import InputError, TinygraphError
from tinygraph.thresholds import Thresholds
from tinygraph.viz import style


def _sig(z: float, name: str = "act") -> tg.Node:
    """loss = σ(z)·1, with z a named leaf, after backward."""
    zn = tg.Node(z, name="z")
    a = tg.sigmoid(zn)
    a.name = name
    a.backward()
    return a


def _kinds(data: viz.ViewData, header: str) -> set[str]:
    return {f.kind for f in data.node(header).flags}


def _saturated_mlp() -> tuple[nn.MLP, tg.Node]:
    model = nn.MLP(3, [4, 4, 1], "sigmoid", seed=1)
    for p in model.layers[0].parameters():
        p.data = p.data * 6.0 + (12.0 if p.name == "b" else 0.0)
    xs = np.random.default_rng(7).normal(size=(4, 3))
    loss = tg.Node(0.0, requires_grad=False)
    for x in xs.tolist():
        loss = loss + model(x) ** 2
    loss.name = "loss"
    loss.backward()
    return model, loss


# --- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("x", "text"), [
    (1e-6, "1e-6"), (-2.034e-4, "-2.034e-4"), (0.5, "0.5"), (0.001234, "0.001234"),
    (3.14159, "3.142"), (12346.0, "1.235e4"), (9999.7, "1e4"), (0.0, "0"),
    (math.nan, "NaN"), (math.inf, "Inf"), (-math.inf, "-Inf"), (None, "—"),
])
def test_fmt_four_significant_figures_and_scientific_outside_range(x, text):
    assert viz.fmt(x) == text


def test_fmt_never_prints_zero_for_a_tiny_number():
    for e in range(-3, -300, -7):
        assert viz.fmt(10.0 ** e) != "0"
        assert "0.0000" not in viz.fmt(10.0 ** e)


# --- flags ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("z", [10.0, -10.0, 4.6, -4.6])
def test_sigmoid_saturated(z):
    d = viz.build(_sig(z))
    assert "saturated" in _kinds(d, "act")
    f = next(f for f in d.flags if f.kind == "saturated")
    s = 1 / (1 + math.exp(-z))
    assert f.value == pytest.approx(s * (1 - s))
    assert f.threshold == Thresholds().sigmoid_saturated


@pytest.mark.parametrize("z", [0.0, 1.0, -2.0, 4.55, -4.55])
def test_sigmoid_not_saturated(z):
    assert "saturated" not in _kinds(viz.build(_sig(z)), "act")


def test_sigmoid_warning_band():
    # σ'(z) < 0.05 from |z| ≈ 2.89; the warning never appears below it or together with saturated.
    assert "saturating" in _kinds(viz.build(_sig(3.5)), "act")
    assert "saturating" in _kinds(viz.build(_sig(-3.0)), "act")
    assert not _kinds(viz.build(_sig(2.8)), "act") & {"saturating", "saturated"}
    assert "saturating" not in _kinds(viz.build(_sig(8.0)), "act")


@pytest.mark.parametrize(("z", "flagged"), [(3.0, True), (-3.0, True), (2.98, False), (0.5, False)])
def test_tanh_saturated_boundary(z, flagged):
    zn = tg.Node(z, name="z")
    t = tg.tanh(zn)
    t.name = "t"
    t.backward()
    assert ("saturated" in _kinds(viz.build(t), "t")) is flagged


def test_thresholds_are_configurable():
    # With a threshold above the maximum 0.25, even σ(0) counts as saturated.
    d = viz.build(_sig(0.0), thresholds=Thresholds(sigmoid_saturated=0.3))
    assert "saturated" in _kinds(d, "act")
    with pytest.raises(InputError, match="Thresholds"):
        viz.build(_sig(0.0), thresholds={"sigmoid_saturated": 0.3})


def _relu_batch(z: np.ndarray, op: str = "relu") -> viz.ViewData:
    zn = tg.Node(z, name="z")
    a = tg.relu(zn) if op == "relu" else tg.leaky_relu(zn)
    a.name = "act"
    loss = tg.sum(a)
    loss.name = "loss"
    loss.backward()
    return viz.build(loss)


def test_relu_dead_when_inactive_on_the_whole_batch():
    d = _relu_batch(-np.abs(np.random.default_rng(0).normal(size=(8, 3))) - 0.1)
    dead = next(f for f in d.flags if f.kind == "dead")
    assert dead.units == (3, 3)
    assert dead.label == "act"


def test_relu_unit_alive_on_one_sample_is_not_dead():
    z = -np.ones((8, 3))
    z[5, 1] = 0.5  # unit 1 fires once
    d = _relu_batch(z)
    dead = next(f for f in d.flags if f.kind == "dead")
    assert dead.units == (2, 3)
    rows = dict(d.node("act").rows)
    assert rows["inactive"] == f"{23 / 24:.0%} of elements"


def test_leaky_relu_is_never_dead():
    d = _relu_batch(-np.ones((8, 3)), op="leaky")
    assert "dead" not in {f.kind for f in d.flags}


def test_nan_is_flagged_on_node_and_edge():
    x = tg.Node(-1.0, name="x")
    with np.errstate(all="ignore"):
        y = tg.sqrt(x)  # NaN data, and the local derivative 0.5 / NaN is NaN too
        y.name = "y"
        y.backward()
        d = viz.build(y)
    assert "nonfinite" in _kinds(d, "y")
    edge = next(e for e in d.edges if e.head == d.node("y").id)
    assert edge.state == "nonfinite"


def test_vanishing_and_exploding_gradients():
    x = tg.Node(1.0, name="x")
    tiny = x * 1e-8
    tiny.name = "tiny"
    big = tiny * 1e12
    big.name = "big"
    big.backward()
    d = viz.build(big)
    assert "exploding" in _kinds(d, "tiny")  # dL/dtiny = 1e12
    x2 = tg.Node(1.0, name="x")
    y = x2 * 1e-8
    y.name = "y"
    y.backward()
    d2 = viz.build(y)
    assert "vanishing" in _kinds(d2, "x")
    assert "vanishing" not in _kinds(d2, "y")


# --- edges ----------------------------------------------------------------------------------------


def test_edge_message_is_local_derivative_times_child_grad():
    a, b = tg.Node(0.7, name="a"), tg.Node(-1.3, name="b")
    p = a * b
    p.name = "p"
    out = tg.sigmoid(p)
    out.name = "out"
    out.backward()
    d = viz.build(out)
    s = 1 / (1 + math.exp(-0.7 * -1.3))
    e = next(e for e in d.edges if e.tail == d.node("a").id)
    assert e.message == pytest.approx(-1.3 * s * (1 - s), rel=1e-12)  # ∂p/∂a = b, p.grad = σ'
    e2 = next(e for e in d.edges if e.tail == d.node("p").id)
    assert e2.message == pytest.approx(s * (1 - s), rel=1e-12)


def test_tensor_edge_carries_mean_abs_message():
    rng = np.random.default_rng(1)
    X = tg.Node(rng.normal(size=(5, 3)), name="X", requires_grad=False)
    W = tg.Node(rng.normal(size=(3, 2)), name="W")
    z = X @ W
    z.name = "z"
    loss = tg.sum(z * z)
    loss.name = "loss"
    loss.backward()
    d = viz.build(loss)
    e = next(e for e in d.edges if e.tail == d.node("W").id)
    G = 2 * (X.data @ W.data)
    assert e.magnitude == pytest.approx(np.abs(X.data.T @ G).mean(), rel=1e-12)
    # X does not require a gradient: backward sends it nothing, and the edge says so.
    ex = next(e for e in d.edges if e.tail == d.node("X").id)
    assert ex.state == "none"


def test_magnitude_mapping_is_monotone_and_clipped():
    gs = np.logspace(-9, 1, 60)
    rs = [style.magnitude(g, 1.0, 6.0) for g in gs]
    assert rs == sorted(rs)
    assert rs[0] == 0.0 and rs[-1] == 1.0
    widths = [style.penwidth(r) for r in rs]
    assert widths == sorted(widths) and widths[0] == style.PEN_MIN and widths[-1] == style.PEN_MAX
    lum = [sum(int(style.edge_color(r)[i:i + 2], 16) for i in (1, 3, 5)) for r in rs]
    assert lum == sorted(lum, reverse=True)  # darker as |g| grows
    assert style.magnitude(0.0, 1.0, 6.0) == 0.0
    assert style.magnitude(math.nan, 1.0, 6.0) == 1.0


def test_vanished_and_zero_edges():
    x = tg.Node(1.0, name="x")
    y = tg.Node(-2.0, name="y")
    small = x * 1e-9
    small.name = "small"
    r = tg.relu(y)
    r.name = "r"
    out = small + r + x
    out.name = "out"
    out.backward()
    d = viz.build(out)
    by_tail = {e.tail: e for e in d.edges}
    assert by_tail[d.node("x").id].state in ("vanished", "flow")
    assert by_tail[d.node("y").id].state == "zero"  # relu'(-2) = 0: exactly nothing flows
    e = next(e for e in d.edges if e.tail == d.node("x").id and e.head == d.node("small").id)
    assert e.state == "vanished" and e.r == 0.0  # 1e-9 < 1e-6 · g_ref (g_ref = 1)


def test_g_ref_option():
    a = _sig(0.0)
    d_max = viz.build(a)
    d_one = viz.build(a, g_ref=1.0)
    e_max = d_max.edges[0]
    e_one = d_one.edges[0]
    assert e_max.r == 1.0  # the only edge is the largest
    assert e_one.r == pytest.approx(1 + math.log10(0.25) / 6)
    with pytest.raises(InputError, match="g_ref"):
        viz.build(a, g_ref=-1.0)


# --- structure ------------------------------------------------------------------------------------


def test_ids_are_deterministic_and_not_memory_addresses():
    _, loss = _saturated_mlp()
    d1, d2 = viz.build(loss, level="op"), viz.build(loss, level="op")
    assert [n.id for n in d1.nodes] == [n.id for n in d2.nodes]
    assert [e.id for e in d1.edges] == [e.id for e in d2.edges]
    assert all(str(id(n)) not in v.id for v in d1.nodes for n in [loss])
    assert d1.nodes[-1].id.startswith("n") and d1.nodes[-1].id.endswith("loss")


def test_unnamed_constants_are_inline():
    x = tg.Node(3.0, name="x")
    y = x * 2
    y.backward()
    d = viz.build(y)
    assert len(d.nodes) == 2
    assert d.node(d.nodes[1].id).header == "□ × 2"


def test_before_backward_grads_read_dash_with_banner():
    x = tg.Node(3.0, name="x")
    y = tg.tanh(x)
    y.name = "y"
    d = viz.build(y)
    assert not d.backward_done
    assert any("backward()" in b for b in d.banners)
    assert dict(d.node("y").rows)["grad"] == "—"
    assert all(e.state == "none" for e in d.edges)


def test_clusters_follow_scopes():
    model, loss = _saturated_mlp()
    d = viz.build(loss, level="op")
    ids = {c.scope: c for c in d.clusters}
    assert {"L1", "L2", "L3", "L1.n0", "L2.n3"} <= set(ids)
    assert ids["L1.n0"].parent == ids["L1"].id
    assert d.node("L1.n0.w0").cluster == ids["L1.n0"].id
    assert "4/4 σ units saturated" in ids["L1"].label


def test_neuron_level_folds_each_neuron_and_sums_messages():
    model, loss = _saturated_mlp()
    d = viz.build(loss, level="neuron")
    headers = {n.header for n in d.nodes}
    assert {f"L{k}.n{j}" for k in (1, 2) for j in range(4)} | {"L3.n0"} <= headers
    assert "L1.n0.w0" not in headers
    assert "L1.n0" in {f.label for f in d.flags if f.kind == "saturated"}
    # L2.n1's activations feed only L3.n0: the folded edge carries the sum of their gradients.
    acts = [n for n in tg.walk(loss) if n.label == "L2.n1.act"]
    e = next(e for e in d.edges if e.tail == "g_L2_n1" and e.head == "g_L3_n0")
    assert e.message == pytest.approx(sum(a.grad for a in acts), rel=1e-12)


def test_layer_level_one_node_per_layer_with_unit_heat_row():
    _, loss = _saturated_mlp()
    d = viz.build(loss, level="layer")
    layers = [n for n in d.nodes if n.header in ("L1", "L2", "L3")]
    assert len(layers) == 3
    l1 = d.node("L1")
    assert len(l1.heat[0][1][0]) == 4  # one cell per unit
    assert next(f for f in l1.flags if f.kind == "saturated").units == (4, 4)


def test_auto_collapses_above_max_nodes_with_banner():
    _, loss = _saturated_mlp()
    full = viz.build(loss)
    assert full.level == "neuron"  # 4 samples of a 3-4-4-1 MLP: over 250 nodes
    assert any("max_nodes=250" in b for b in full.banners)
    small = viz.build(loss, max_nodes=10_000)
    assert small.level == "op" and not any("max_nodes" in b for b in small.banners)
    tight = viz.build(loss, max_nodes=5)
    assert tight.level in ("layer", "block") and len(tight.nodes) <= 10


def test_deep_unscoped_chain_collapses_to_blocks_without_recursion():
    x = tg.Node(1.0, name="x")
    y = x
    for _ in range(5000):
        y = y * 1.0001 + 0.0001
    y.backward()
    d = viz.build(y, max_nodes=100)
    assert d.level == "block"
    assert 2 <= len(d.nodes) <= 100
    assert all(e.state == "flow" for e in d.edges)


def test_focus_keeps_ancestors_and_descendants_only():
    a, b, c = (tg.Node(v, name=n) for v, n in ((1.0, "a"), (2.0, "b"), (3.0, "c")))
    ab = a * b
    ab.name = "ab"
    out = ab + c
    out.name = "out"
    out.backward()
    d = viz.build(out, focus="ab")
    assert {n.header for n in d.nodes} == {"a", "b", "ab", "out"}
    with pytest.raises(InputError, match="focus"):
        viz.build(out, focus="nope")


def test_legend_and_diagnosis():
    _, loss = _saturated_mlp()
    d = viz.build(loss, level="neuron")
    lg = d.legend
    assert [s[0] for s in lg.samples] == [1.0, 1e-2, 1e-4, 1e-6]
    assert [s[3] for s in lg.samples] == sorted((s[3] for s in lg.samples), reverse=True)
    assert lg.diagnosis.startswith("L1: 4/4 σ units saturated; gradient into L1 is ")
    assert "of the gradient at the loss" in lg.diagnosis
    assert viz.build(loss, legend=False).legend is None


def test_report_works_without_graphviz_and_lists_each_flag():
    _, loss = _saturated_mlp()
    v = viz.draw(loss, level="neuron")
    text = v.report()
    assert "L1.n0: ⚠ saturated" in text
    assert all(f.label in text for f in v.flags)
    assert {f.as_dict()["kind"] for f in v.flags} >= {"saturated"}


def test_activation_rows_and_plugged_in_tooltip():
    d = viz.build(_sig(8.5))
    rows = dict(d.node("act").rows)
    assert rows["z"] == "8.5" and rows["f'(z)"] == "2.034e-4"
    assert "σ'(z) = s(1-s) = 0.9998·0.0002" in d.node("act").tooltip
    assert d.node("act").tooltip.rstrip().split("\n")[2].startswith("grad = ")


def test_roles():
    x = tg.Node(1.0, name="x", requires_grad=False)
    with tg.scope("L1"):
        w = tg.Node(0.5, name="w0")
    y = w * x
    y.name = "loss"
    y.backward()
    d = viz.build(y)
    assert [d.node(h).role for h in ("x", "L1.w0", "loss")] == ["input", "parameter", "loss"]
    d2 = viz.build(y, roles={"x": "constant"})
    assert d2.node("x").role == "constant"
    with pytest.raises(InputError, match="role"):
        viz.build(y, roles={"x": "weight"})


def test_bad_arguments_name_draw():
    a = _sig(0.0)
    with pytest.raises(InputError, match="draw: level") as e:
        viz.build(a, level="neurons")
    assert isinstance(e.value, TinygraphError) and isinstance(e.value, ValueError)
    with pytest.raises(InputError, match="max_nodes"):
        viz.build(a, max_nodes=0)
    with pytest.raises(InputError, match="expected a Node"):
        viz.build(1.0)


def test_tensor_node_summary_and_heat_strip_at_most_8x8():
    rng = np.random.default_rng(3)
    W = tg.Node(rng.normal(size=(20, 30)), name="W")
    loss = tg.sum(tg.sigmoid(W))
    loss.name = "loss"
    loss.backward()
    d = viz.build(loss)
    n = d.node("W")
    assert dict(n.rows)["shape"].startswith("20×30")
    for _, cells in n.heat:
        assert len(cells) <= 8 and all(len(r) <= 8 for r in cells)
    assert n.data == pytest.approx(W.data.mean())


def test_unscoped_ops_fold_into_input_and_output_boxes_at_coarse_levels():
    model = nn.MLP(2, [3, 1], "tanh", seed=0)
    x0 = tg.Node(0.5, name="x0")
    out = model([x0 * 2, tg.Node(0.1, name="x1")])  # x0 * 2 is an unscoped op before L1
    loss = (out - 1.0) ** 2
    loss.name = "loss"
    loss.backward()
    neuron = viz.build(loss, level="neuron")
    assert [n.header for n in neuron.nodes].count("(ops)") == 1
    assert "loss" in {n.header for n in neuron.nodes}  # the unscoped tail holds the loss
    assert {n.header for n in viz.build(loss, level="layer").nodes} == {
        "L1", "L2", "x0", "x1", "(ops)", "loss"}


def test_non_compact_mode_moves_the_op_out_of_the_value_box():
    x = tg.Node(3.0, name="x")
    y = x * 2
    y.backward()
    d = viz.build(y, compact=False)
    op = next(n for n in d.nodes if n.kind == "op")
    assert op.header == "□ × 2"
    value = next(n for n in d.nodes if n.id == op.id[:-3])
    assert value.header != "□ × 2" and value.sub is None
    assert {(e.tail, e.head) for e in d.edges} == {(d.node("x").id, op.id), (op.id, value.id)}


# --- property: the edge messages into a node add up to its gradient ------------------------------

_UNARY = (tg.tanh, tg.sigmoid, tg.relu, tg.exp)
_BINARY = (lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b)


@st.composite
def _graphs(draw):
    """A random scalar DAG over a few named leaves, with reused nodes (diamonds, a*a)."""
    n_leaves = draw(st.integers(1, 3))
    vals = st.floats(-2.0, 2.0, allow_nan=False).filter(lambda v: abs(v) > 1e-3)
    nodes = [tg.Node(draw(vals), name=f"x{i}") for i in range(n_leaves)]
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            f = draw(st.sampled_from(_UNARY))
            nodes.append(f(draw(st.sampled_from(nodes))))
        else:
            f = draw(st.sampled_from(_BINARY))
            nodes.append(f(draw(st.sampled_from(nodes)), draw(st.sampled_from(nodes))))
    return nodes[-1]


@settings(max_examples=100)
@given(_graphs())
def test_messages_into_each_node_sum_to_its_gradient(root):
    with np.errstate(all="ignore"):
        root.backward()
    if not all(math.isfinite(n.data) and math.isfinite(n.grad) for n in tg.walk(root)):
        return  # exp of exp can overflow; NaN flags are tested on their own above
    d = viz.build(root, level="op", inline_constants=False)
    by_id = {n.id: n for n in d.nodes}
    total: dict[str, float] = {}
    for e in d.edges:
        if e.message is not None:
            total[e.tail] = total.get(e.tail, 0.0) + e.message
    for vid, s in total.items():
        assert s == pytest.approx(by_id[vid].grad, rel=1e-9, abs=1e-12)
    # And the build is deterministic.
    assert [n.id for n in viz.build(root, level="op").nodes] == [
        n.id for n in viz.build(root, level="op").nodes]
