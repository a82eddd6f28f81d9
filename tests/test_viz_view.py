"""tinygraph.viz: the plain view data (no graphviz, no `dot`): numbers, flags, edges, levels."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygraph as tg
import tinygraph.viz as viz
from tinygraph import diagnostics, losses, nn
from tinygraph.errors import InputError, TinygraphError
from tinygraph.thresholds import Thresholds
from tinygraph.viz import style
from tinygraph.viz.view import Activity


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
    # X is an input: backward stores no gradient for it, but its edge carries the gradient with
    # respect to it, G·Wᵀ, so a diagram shows how much gets back to the data.
    ex = next(e for e in d.edges if e.tail == d.node("X").id)
    assert ex.state == "flow"
    assert ex.magnitude == pytest.approx(np.abs(G @ W.data.T).mean(), rel=1e-12)
    # A constant (role given by the caller) still gets nothing.
    dc = viz.build(loss, roles={"X": "constant"})
    assert next(e for e in dc.edges if e.tail == dc.node("X").id).state == "none"


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


def test_activation_modules_and_user_module_children_get_their_own_clusters():
    x = np.random.default_rng(1).normal(size=(4, 3))
    out = nn.ReLU()(nn.Linear(3, 2, seed=0)(x))
    tg.sum(out).backward()
    d = viz.build(out, level="op")
    ids = {c.scope: c.id for c in d.clusters}
    assert {"L1", "relu"} <= set(ids)
    assert d.node("relu.act").cluster == ids["relu"]

    class Net(nn.Module):
        def __init__(self) -> None:
            self.fc1 = nn.Linear(3, 2, "tanh", seed=0)  # both left at the default name "L1"
            self.fc2 = nn.Linear(2, 1, seed=1)

    net = Net()
    out = net.fc2(net.fc1(x))
    tg.sum(out).backward()
    d = viz.build(out, level="op")
    scopes = {c.scope for c in d.clusters}
    assert {"fc1", "fc2"} <= scopes and "L1" not in scopes
    assert d.node("fc1.W").cluster == d.node("fc1.act").cluster != d.node("fc2.W").cluster


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


def test_a_graph_of_10_5_nodes_builds_at_a_coarse_level():
    # A scalar 2-16-16-1 MLP over 160 samples: about 10^5 nodes, far over max_nodes.
    model = nn.MLP(2, [16, 16, 1], "tanh", seed=0)
    X = np.random.default_rng(0).normal(size=(160, 2))
    loss = losses.mse(model(X), np.zeros(160))
    loss.backward()
    n = len(tg.walk(loss))
    assert n >= 100_000
    d = viz.build(loss)
    assert (d.requested_level, d.level, d.graph_nodes) == ("auto", "neuron", n)
    neurons = {f"L{k}.n{j}" for k in (1, 2) for j in range(16)} | {"L3.n0"}
    headers = [v.header for v in d.nodes]
    assert neurons <= set(headers) and len(headers) <= 250
    assert sum(v.members for v in d.nodes if v.header in neurons) > n // 2  # folded, not lost
    assert any("collapsed to neuron level" in b for b in d.banners)
    tight = viz.build(loss, max_nodes=20)
    assert tight.level == "layer" and len(tight.nodes) <= 20
    assert {"L1", "L2", "L3"} <= {v.header for v in tight.nodes}


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


def _legend_text(th: Thresholds | None = None) -> dict[str, str]:
    return {kind: text for kind, _, text in viz.build(_sig(0.0), thresholds=th).legend.flags}


def test_legend_saturation_bounds_are_solved_from_the_thresholds():
    assert _legend_text()["saturated"] == ("σ'(z) < 0.01 (|z| > 4.58), "
                                           "tanh'(z) < 0.01 (|z| > 2.99)")
    th = Thresholds(sigmoid_saturated=0.1, sigmoid_warning=0.2, tanh_saturated=0.5,
                    tanh_warning=0.9)
    text = _legend_text(th)

    def sig_z(t):  # σ'(z) = t
        s = (1 + math.sqrt(1 - 4 * t)) / 2
        return math.log(s / (1 - s))

    def tanh_z(t):  # 1 - tanh²(z) = t
        return math.atanh(math.sqrt(1 - t))

    for t, z in [(0.1, sig_z(0.1)), (0.2, sig_z(0.2))]:
        s = 1 / (1 + math.exp(-z))
        assert s * (1 - s) == pytest.approx(t)
    assert text["saturated"] == (f"σ'(z) < 0.1 (|z| > {sig_z(0.1):.3g}), "
                                 f"tanh'(z) < 0.5 (|z| > {tanh_z(0.5):.3g})")
    assert text["saturating"] == (f"σ'(z) < 0.2 (|z| > {sig_z(0.2):.3g}), "
                                  f"tanh'(z) < 0.9 (|z| > {tanh_z(0.9):.3g})")
    # Thresholds outside f''s range: never below 0, always below more than f'(0).
    edge = _legend_text(Thresholds(sigmoid_saturated=0.3, tanh_saturated=0.0))
    assert edge["saturated"] == "σ'(z) < 0.3 (every z), tanh'(z) < 0 (never)"


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


def test_tensor_activation_rows_summarize_z_like_the_data_row():
    lay = nn.Linear(3, 4, "sigmoid", scale=3.0, seed=0)
    out = lay(np.random.default_rng(0).normal(size=(5, 3)))
    tg.sum(out).backward()
    node = viz.build(out, level="op").node("L1.act")
    names = [name for name, _ in node.rows]
    assert names.index("z") < names.index("f'(z)")  # as for a scalar: z, then f'(z)
    z = out.parents[0].data
    f = viz.fmt
    want = f"μ {f(z.mean())}  σ {f(z.std())}  [{f(z.min())}, {f(z.max())}]"
    assert dict(node.rows)["z"] == want
    assert dict(node.rows)["data"].startswith("μ ")  # the same layout as the data row
    assert f"z: mean {viz.style.full(z.mean())}" in node.tooltip


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


# --- a unit saturated by share; folded nodes' tooltips; input boxes; a recorder's memory ---------


def _one_layer(act: Any, z: np.ndarray, scope: str | None = None) -> tg.Node:
    """loss = Σ act(z) over one tensor layer whose pre-activations (samples × units) are z."""
    with tg.scope(scope) if scope else contextlib.nullcontext():
        zn = tg.Node(z, name="z")
        a = act(zn)
        a.name = "act"
    loss = tg.sum(a)
    loss.name = "loss"
    loss.backward()
    return loss


def _sigmoid_layer(z: np.ndarray) -> tg.Node:
    """loss = Σ σ(z) over a tensor layer "L1"."""
    return _one_layer(tg.sigmoid, z, "L1")


def test_a_unit_is_saturated_when_at_least_the_share_of_its_activations_are():
    z = np.zeros((4, 3))
    z[:3, 0] = 10.0  # unit 0: saturated on 3 of 4 samples
    z[:2, 1] = -10.0  # unit 1: on 2 of 4, exactly the default share (0.5)
    z[:1, 2] = 10.0  # unit 2: on 1 of 4 only
    loss = _sigmoid_layer(z)
    sat = next(f for f in viz.build(loss).flags if f.kind == "saturated")
    assert sat.units == (2, 3)
    assert sat.text.startswith("2/3 σ units saturated (50% of activations saturated: f'(z) < ")
    st_ = diagnostics.activation_stats(loss)["L1"]  # the diagnostics count with the same rule
    assert (st_.saturated, st_.saturated_fraction) == (2, 0.5)
    strict = Thresholds(saturated_share=1.0)  # saturated on every sample: no unit here
    assert not any(f.kind == "saturated" for f in viz.build(loss, thresholds=strict).flags)
    assert diagnostics.activation_stats(loss, strict)["L1"].saturated == 0


def test_folded_neuron_tooltip_gives_each_sample_at_full_precision():
    _, loss = _saturated_mlp()  # 4 samples
    d = viz.build(loss, level="neuron")
    lines = d.node("L1.n0").tooltip.split("\n")
    acts = [n for n in tg.walk(loss) if n.label == "L1.n0.act"]  # in sample order
    zs = [a.parents[0] for a in acts]
    assert len(acts) == 4

    def listed(name, values):
        return f"{name} = [{', '.join(repr(float(v)) for v in values)}]"

    assert listed("act", [a.data for a in acts]) in lines
    assert listed("z", [z.data for z in zs]) in lines
    assert listed("f'(z)", [a.data * (1.0 - a.data) for a in acts]) in lines
    assert listed("dL/dz", [z.grad for z in zs]) in lines
    assert any(ln.startswith("⚠ saturated: 1/1 σ unit saturated") for ln in lines)
    # A linear neuron (no activation): its outputs and the gradients reaching them.
    outs = [n for n in tg.walk(loss) if n.label == "L3.n0.z"]
    lines = d.node("L3.n0").tooltip.split("\n")
    assert listed("out", [o.data for o in outs]) in lines
    assert listed("dL/dout", [o.grad for o in outs]) in lines


def test_folded_tooltip_over_many_samples_gives_mean_min_max():
    model = nn.MLP(2, [2, 1], "tanh", seed=0)
    X = np.random.default_rng(1).normal(size=(20, 2))
    loss = sum((model(x) ** 2 for x in X.tolist()), tg.Node(0.0, requires_grad=False))
    loss.name = "loss"
    loss.backward()
    tip = viz.build(loss, level="neuron").node("L1.n1").tooltip
    z = np.array([n.data for n in tg.walk(loss) if n.label == "L1.n1.z"])
    assert len(z) == 20
    mean, lo, hi = (repr(float(v)) for v in (z.mean(), z.min(), z.max()))
    assert f"z: mean {mean}, min {lo}, max {hi} over 20 values" in tip.split("\n")


def _mlp_on_batch(saturate: bool) -> tuple[nn.MLP, tg.Node]:
    model = nn.MLP(3, [4, 4, 1], "sigmoid", seed=1)
    if saturate:
        for p in model.layers[0].parameters():
            p.data = p.data * 6.0 + (12.0 if p.name == "b" else 0.0)
    X = np.random.default_rng(7).normal(size=(6, 3))
    loss = tg.Node(0.0, requires_grad=False)
    for x, t in zip(X.tolist(), [1, 0, 1, 0, 1, 0], strict=True):
        loss = loss + (model(x) - t) ** 2
    loss.name = "loss"
    loss.backward()
    return model, loss


def test_neuron_level_draws_the_inputs_and_their_edges_carry_the_gradient_wrt_them():
    model, loss = _mlp_on_batch(saturate=False)
    d = viz.build(loss, level="neuron")
    xs = [d.node(f"x{i}") for i in range(3)]
    assert [n.role for n in xs] == ["input"] * 3
    # x1 -> L1.n2 carries Σ over the samples of ∂z/∂x1 · dL/dz = w1 · dL/dz.
    w1 = model.layers[0].neurons[2].w[1].data
    zs = [n for n in tg.walk(loss) if n.label == "L1.n2.z"]
    e = next(e for e in d.edges if e.tail == xs[1].id and e.head == d.node("L1.n2").id)
    assert e.message == pytest.approx(sum(w1 * z.grad for z in zs), rel=1e-12)
    assert sum(e.tail in {x.id for x in xs} for e in d.edges) == 3 * 4  # each input, each unit
    # At layer level the inputs are one box; at op level they stay written into their × nodes.
    assert {e.tail for e in viz.build(loss, level="layer").edges} >= {"g_input_x"}
    assert not {"x0", "x1", "x2"} & {n.header for n in viz.build(loss, level="op").nodes}


def test_input_edges_fade_when_the_first_layer_saturates():
    def input_edges(saturate):
        d = viz.build(_mlp_on_batch(saturate)[1], level="neuron", g_ref=1.0)
        inputs = {n.id for n in d.nodes if n.role == "input"}
        return [e for e in d.edges if e.tail in inputs]

    healthy, saturated = input_edges(False), input_edges(True)
    assert len(healthy) == len(saturated) == 12
    # Every edge out of the saturated net's inputs is thinner and paler than any of the healthy
    # net's: the picture shows the gradient dying in L1 on the edges, not only in badges.
    assert max(e.r for e in saturated) < min(e.r for e in healthy)
    typical = [float(np.median([e.magnitude for e in es])) for es in (healthy, saturated)]
    assert typical[1] < 1e-2 * typical[0]  # over two decades less gets back to the inputs


def _relu_off(samples: int = 2) -> tg.Node:
    """Three ReLU units off on every sample."""
    return _one_layer(tg.relu, -np.ones((samples, 3)))


def test_with_a_recorders_memory_a_relu_off_only_now_is_inactive_not_dead():
    loss = _relu_off()
    first = viz.build(loss, activity=Activity())  # the first snapshot: off now is off always
    assert next(f for f in first.flags if f.kind == "dead").units == (3, 3)
    assert first.off_units == [("act", 0), ("act", 1), ("act", 2)]
    memory = Activity(2, {("act", 0): 2, ("act", 1): 1})  # unit 0 was off in both snapshots
    d = viz.build(loss, activity=memory)
    kinds = {f.kind: f for f in d.flags}
    assert kinds["dead"].units == (1, 3) and kinds["inactive"].units == (2, 3)
    assert "every sample of this step" in kinds["inactive"].text
    assert any(kind == "inactive" for kind, *_ in d.legend.flags)
    assert not any(kind == "inactive" for kind, *_ in viz.build(loss).legend.flags)
    # the memory keeps streaks: a unit on in the new snapshot (act 1) starts again from zero
    assert memory.after([("act", 0)]) == Activity(3, {("act", 0): 3})


def test_with_a_recorders_memory_a_relu_off_for_the_whole_streak_is_dead():
    loss = _relu_off()
    th = Thresholds(dead_snapshots=3)
    # 9 snapshots taken: unit 0 off in the last 2 (3 with this one), unit 1 in the last 1 only
    d = viz.build(loss, thresholds=th, activity=Activity(9, {("act", 0): 2, ("act", 1): 1}))
    kinds = {f.kind: f for f in d.flags}
    assert kinds["dead"].units == (1, 3) and kinds["inactive"].units == (2, 3)
    assert "at each of the last 3 recorded steps" in kinds["dead"].text
    assert "not of each of the last 3 recorded steps" in kinds["inactive"].text
    legend = dict((kind, text) for kind, _, text in d.legend.flags)
    assert "each of the last 3 recorded steps" in legend["dead"]


@pytest.mark.parametrize("bad", [0, -2, 2.0, True, "5"])
def test_thresholds_dead_snapshots_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(InputError, match="dead_snapshots must be a positive int"):
        Thresholds(dead_snapshots=bad)  # type: ignore[arg-type]


def test_input_boxes_follow_uses_not_shared_constant_nodes():
    # Equal Python numbers share one constant node: here x0, x1 and the target are all 1.0.
    model = nn.MLP(3, [2, 1], "sigmoid", seed=0)
    loss = (model([1.0, 1.0, 0.5]) - 1.0) ** 2
    loss.name = "loss"
    loss.backward()
    d = viz.build(loss, level="neuron")
    inputs = {n.id: n.header for n in d.nodes if n.role == "input"}
    assert sorted(inputs.values()) == ["x0", "x1", "x2"]
    into = {(inputs[e.tail], d.node(e.head).header) for e in d.edges if e.tail in inputs}
    assert into == {(f"x{i}", f"L1.n{j}") for i in range(3) for j in range(2)}


def test_a_tensor_layers_batch_is_one_input_box():
    model = nn.TensorMLP(3, [4, 2], "relu", seed=0)
    X = np.random.default_rng(2).normal(size=(5, 3))
    loss = tg.sum(model(X) ** 2)
    loss.name = "loss"
    loss.backward()
    d = viz.build(loss, level="layer")
    box = d.node("x")
    assert box.role == "input" and dict(box.rows)["shape"] == "5×3"
    e = next(e for e in d.edges if e.tail == box.id)
    z1 = next(n for n in tg.walk(loss) if n.label == "L1.z")
    want = np.abs(z1.grad @ model.layers[0].W.data.T).mean()  # mean |dL/dX| through L1
    assert e.head == d.node("L1").id and e.magnitude == pytest.approx(want, rel=1e-12)


def test_options_object_is_checked_once_and_builds_as_the_keywords_do() -> None:
    x = tg.Node(np.array([[-3.0, 2.0]]), name="x", requires_grad=False)
    with tg.scope("L1"):
        z = x @ tg.Node(np.array([[1.0], [1.0]]), name="W") + tg.Node(np.array([-5.0]), name="b")
        z.name = "z"
        a = tg.relu(z)
    loss = tg.sum(a)
    loss.backward()
    with pytest.raises(InputError, match="max_nodes"):
        viz.Options(max_nodes=0)
    with pytest.raises(InputError, match="g_ref"):
        viz.Options(g_ref="min")
    with pytest.raises(InputError, match="role"):
        viz.Options(roles={"x": "teacher"})
    opts = viz.Options(g_ref=2, edge_labels=True, roles={"x": "constant"})
    assert opts.g_ref == 2.0 and isinstance(opts.g_ref, float)
    kw = viz.build(loss, "op", g_ref=2, edge_labels=True, roles={"x": "constant"})
    ob = viz.build_view(loss, "op", opts)
    assert [(n.id, n.role, n.rows) for n in ob.nodes] == [(n.id, n.role, n.rows) for n in kw.nodes]
    assert [(e.id, e.label) for e in ob.edges] == [(e.id, e.label) for e in kw.edges]
    assert [f.kind for f in ob.flags] == [f.kind for f in kw.flags] == ["dead"]
    assert ob.node("x").role == "constant"
