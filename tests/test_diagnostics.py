"""tinygraph.diagnostics on constructed cases: dead ReLUs, saturated units, gradient flow."""

from __future__ import annotations

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import data, diagnostics, losses, nn
from tinygraph.viz import build

X = np.random.default_rng(0).normal(size=(20, 3))
Y = (X[:, 0] > 0).astype(int)


def _set(layer, W=None, b=None):
    """Give a layer chosen weights (tensor Linear)."""
    if W is not None:
        layer.W.data = np.asarray(W, dtype=np.float64)
    if b is not None:
        layer.b.data = np.asarray(b, dtype=np.float64)


@pytest.mark.parametrize("cls", [nn.MLP, nn.TensorMLP])
def test_all_negative_relu_layer_is_100_percent_dead(cls):
    m = cls(3, [4, 2], activation="relu", seed=0)
    # Shift every first-layer unit far below zero through the state dict (works at both levels).
    sd = m.state_dict()
    for k in sd:
        if k.startswith("L1") and k.split(".")[-1] == "b":
            sd[k] = np.full_like(sd[k], -100.0)
    m.load_state_dict(sd)
    rep = diagnostics.diagnose(m, X, Y, losses.softmax_cross_entropy)
    l1 = rep["L1"]
    assert (l1.activation, l1.units, l1.dead, l1.dead_fraction) == ("relu", 4, 4, 1.0)
    assert l1.inactive_fraction == 1.0 and l1.samples == 20
    assert l1.grad_params == 0.0  # nothing flows back through dead units
    assert rep["L2"].activation is None and rep["L2"].units == 2
    assert "4 (100%)" in str(rep)
    assert l1.describe().startswith("L1: 4/4 relu units dead (100% of activations inactive)")


def test_partly_dead_layer_and_leaky_relu_is_never_dead():
    lay = nn.Linear(3, 3, "relu", seed=0)
    _set(lay, W=np.zeros((3, 3)), b=[-1.0, 1.0, -1.0])  # units 0 and 2 always off, 1 always on
    st = diagnostics.activation_stats(lay(X))["L1"]
    assert st.dead == 2 and st.units == 3
    leaky = nn.Linear(3, 3, "leaky_relu", seed=0)
    _set(leaky, W=np.zeros((3, 3)), b=[-1.0, -1.0, -1.0])
    st = diagnostics.activation_stats(leaky(X))["L1"]
    assert st.dead == 0 and st.inactive_fraction == 1.0


@pytest.mark.parametrize("op,limit", [("sigmoid", 4.6), ("tanh", 3.0)])
def test_saturation_thresholds(op, limit):
    # z = ±(limit + 0.05) is saturated, ±(limit - 0.1) is not (specs/viz.md thresholds).
    z = np.array([[limit + 0.05, limit - 0.1, -(limit + 0.05), 0.0]])
    lay = nn.Linear(1, 4, op, seed=0)
    _set(lay, W=z, b=np.zeros(4))
    inputs = np.array([[1.0], [1.0]])
    st = diagnostics.activation_stats(lay(inputs))["L1"]
    assert st.activation == op and st.units == 4
    assert st.saturated == 2 and st.saturated_fraction == 0.5


def test_saturated_scalar_sigmoid_neurons():
    m = nn.MLP(3, [5, 1], activation="sigmoid", scale=50.0, seed=0)
    st = diagnostics.activation_stats(m(X))["L1"]
    assert st.units == 5 and st.samples == 20
    assert st.saturated_fraction > 0.9


def test_graph_built_by_hand_with_scopes():
    with tg.scope("L1"):
        z = tg.Node(np.array([[-6.0, 0.0], [7.0, 0.1]]), name="z")
        a = tg.sigmoid(z)
    st = diagnostics.activation_stats(a)["L1"]
    # column 0 (z = -6, 7) is saturated on both samples, column 1 (0, 0.1) on neither
    assert st.units == 2 and st.saturated == 1 and st.saturated_fraction == 0.5


def test_gradient_flow_matches_hand_computation():
    m = nn.TensorMLP(3, [4, 2], activation="tanh", seed=1)
    out = m(X)
    loss = losses.softmax_cross_entropy(out, Y)
    loss.backward()
    flow = diagnostics.gradient_flow(m, loss)
    L1 = m.layers[0]
    expected = np.abs(np.r_[L1.W.grad.ravel(), L1.b.grad]).mean()
    assert flow["L1"][0] == pytest.approx(expected, rel=1e-12)
    z1 = [n for n in tg.walk(loss) if n.label == "L1.z"][0]
    assert flow["L1"][1] == pytest.approx(np.abs(z1.grad).mean(), rel=1e-12)


def test_diagnose_restores_gradients_and_levels_agree():
    s = nn.MLP(3, [4, 2], activation="relu", seed=2)
    t = nn.TensorMLP(3, [4, 2], activation="relu", seed=2)
    marker = tg.Node(0.0).grad
    for p in s.parameters():
        p.grad = 7.0
    rs = diagnostics.diagnose(s, X, Y, losses.softmax_cross_entropy)
    rt = diagnostics.diagnose(t, X, Y, losses.softmax_cross_entropy)
    assert all(p.grad == 7.0 for p in s.parameters())
    assert all(p.grad is marker for p in t.parameters())
    for a, b in zip(rs.layers, rt.layers, strict=True):
        assert (a.layer, a.units, a.dead, a.inactive_fraction) == (
            b.layer, b.units, b.dead, b.inactive_fraction)
        assert a.grad_params == pytest.approx(b.grad_params, rel=1e-10)
        assert a.grad_preact == pytest.approx(b.grad_preact, rel=1e-10)
    table = rt.table().splitlines()
    assert table[0].split()[:3] == ["layer", "act", "units"] and len(table) == 3
    assert rt.to_dicts()[0]["layer"] == "L1"
    with pytest.raises(KeyError):
        rt["L9"]
    with pytest.raises(tg.InputError, match="labels"):
        diagnostics.diagnose(t, X, loss=losses.softmax_cross_entropy)


def test_unscoped_activations_are_not_layers():
    # The multiclass hinge applies relu outside any layer scope: it must not count as a layer.
    m = nn.TensorMLP(3, [4, 2], activation="tanh", seed=0)
    loss = losses.multiclass_hinge(m(X), Y)
    assert list(diagnostics.activation_stats(loss)) == ["L1"]


def test_a_layer_saturated_on_most_samples_counts_its_units_by_share():
    # The demo's saturated net: 87% of L1's activations are saturated but hardly any unit is on
    # every one of the 200 points; a unit counts when at least half of its activations are.
    X, _ = data.make_moons(200, noise=0.15, seed=0)
    m = nn.TensorMLP(2, [8, 8, 1], activation="sigmoid", scale=50.0, seed=0)
    out = m(X)
    l1 = diagnostics.activation_stats(out)["L1"]
    W, b = m.layers[0].W.data, m.layers[0].b.data
    s = 1.0 / (1.0 + np.exp(-(X @ W + b)))
    flat = s * (1.0 - s) < 0.01  # (200, 8): which activations are saturated
    assert l1.saturated_fraction == pytest.approx(flat.mean())
    assert not flat.all(axis=0).any()  # no unit is saturated on every point...
    want = int((flat.mean(axis=0) >= 0.5).sum())
    assert want >= 6 and l1.saturated == want  # ...yet most count as saturated
    assert l1.describe() == (f"L1: {want}/8 sigmoid units saturated "
                             f"({flat.mean():.0%} of activations saturated)")
    # The diagram flags the same units (one rule: diagnostics.unit_saturated).
    flag = next(f for f in build(out.sum()).flags if f.label == "L1.act")
    assert flag.kind == "saturated" and flag.units == (want, 8)
    assert f"({flat.mean():.0%} of activations saturated: f'(z) < 0.01)" in flag.text


def test_unit_rules():
    assert diagnostics.unit_saturated(np.array([True, True, False, False]))
    assert not diagnostics.unit_saturated(np.array([True, False, False]))
    assert not diagnostics.unit_saturated(np.array([], dtype=bool))
    # dead: f'(z) = 0 on every activation (a ReLU's z <= 0 on every sample)
    assert diagnostics.unit_dead(np.array([0.0, 0.0])) and not diagnostics.unit_dead(
        np.array([0.0, 1.0]))
    assert not diagnostics.unit_dead(np.array([0.01, 0.01]))  # leaky: never dead
    assert not diagnostics.unit_dead(np.array([]))
