"""tinygraph.optim: update rules against hand-written formulas, staleness, fit() on two moons."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import data, losses, nn, optim


def _params():
    return tg.Node(np.array([1.0, -2.0, 3.0])), tg.Node(0.5)


def _set_grads(ps, gs):
    for p, g in zip(ps, gs, strict=True):
        p.grad = g


G = [np.array([0.1, -0.2, 0.3]), -0.4]


def test_plain_sgd_and_zero_grad():
    ps = _params()
    opt = optim.SGD(ps, lr=0.5)
    _set_grads(ps, G)
    opt.step()
    np.testing.assert_allclose(ps[0].data, [0.95, -1.9, 2.85], rtol=1e-15)
    assert ps[1].data == 0.7 and ps[1].is_scalar
    opt.zero_grad()
    assert ps[0].grad is None and ps[1].grad is None
    opt.step()  # parameters without a gradient are left alone
    assert ps[1].data == 0.7


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_and_nesterov_follow_the_notes(nesterov):
    ps = _params()
    w0 = [ps[0].numpy(), ps[1].data]
    opt = optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
    vs = [0.0, 0.0]
    ws = list(w0)
    for step in range(3):
        gs = [g * (step + 1) for g in G]
        _set_grads(ps, gs)
        opt.step()
        for i in range(2):
            g = gs[i] + 0.01 * ws[i]
            v_prev = vs[i]
            vs[i] = 0.9 * v_prev - 0.1 * g
            ws[i] = ws[i] - 0.9 * v_prev + 1.9 * vs[i] if nesterov else ws[i] + vs[i]
    np.testing.assert_allclose(ps[0].data, ws[0], rtol=1e-14)
    assert ps[1].data == pytest.approx(ws[1], rel=1e-14)


def test_weight_decay_is_gradual_forgetting():
    p = tg.Node(np.array([2.0, -4.0]))
    opt = optim.SGD([p], lr=0.1, weight_decay=0.5)
    for _ in range(3):
        p.grad = np.zeros(2)
        opt.step()
    np.testing.assert_allclose(p.data, np.array([2.0, -4.0]) * 0.95**3, rtol=1e-14)


def test_adam_matches_reference():
    ps = _params()
    opt = optim.Adam(ps, lr=0.01)
    w = np.r_[ps[0].data, ps[1].data]
    m = v = np.zeros(4)
    for t in range(1, 4):
        g = np.r_[G[0], G[1]] * t
        _set_grads(ps, [g[:3], float(g[3])])
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(ps[0].data, w[:3], rtol=1e-14)
    assert ps[1].is_scalar and ps[1].data == pytest.approx(w[3], rel=1e-14)
    assert ps[1].data > 0.5 + 0.029  # the first steps move by about lr each


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1),
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.1),
])
def test_optimizers_minimize_a_quadratic(make):
    target = np.array([1.0, -3.0, 2.0])
    x = tg.Node(np.zeros(3))
    opt = make([x])
    for _ in range(300):
        opt.zero_grad()
        tg.sum((x - target) * (x - target)).backward()
        opt.step()
    np.testing.assert_allclose(x.data, target, atol=1e-3)


def test_step_makes_old_graphs_stale():
    m = nn.TensorMLP(2, [3, 1], seed=0)
    loss = tg.sum(m(np.ones((2, 2))))
    opt = optim.SGD(m.parameters(), lr=0.1)
    loss.backward()
    opt.step()
    with pytest.raises(tg.GraphError, match="stale"):
        loss.backward()


def test_bad_settings():
    with pytest.raises(tg.InputError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(tg.InputError, match="lr"):
        optim.SGD([tg.Node(1.0)], lr=-1)
    with pytest.raises(tg.InputError, match="momentum"):
        optim.SGD([tg.Node(1.0)], momentum=1.5)
    with pytest.raises(tg.InputError, match="nesterov"):
        optim.SGD([tg.Node(1.0)], nesterov=True)
    with pytest.raises(tg.InputError, match="parameter 0"):
        optim.Adam([tg.const(1.0)])


# --- fit ----------------------------------------------------------------------------------------


def test_tensor_mlp_reaches_97_percent_on_two_moons():
    X, y = data.make_moons(200, noise=0.1, seed=0)
    m = nn.TensorMLP(2, [16, 16, 2], seed=0)
    hist = optim.fit(m, X, y, loss=losses.softmax_cross_entropy,
                     optimizer=optim.Adam(m.parameters(), lr=0.02), epochs=100, progress=False)
    assert len(hist.loss) == len(hist.accuracy) == 100
    assert hist.loss[-1] < hist.loss[0]
    assert losses.accuracy(m(X), y) >= 0.97


def test_scalar_mlp_learns_two_moons_like_the_tensor_one():
    X, y = data.make_moons(60, noise=0.1, seed=0)
    s, t = nn.MLP(2, [8, 8, 1], seed=3), nn.TensorMLP(2, [8, 8, 1], seed=3)
    kw = dict(loss=losses.binary_hinge, epochs=25, batch_size=20, l2=1e-4, progress=False)
    hs = optim.fit(s, X, y, optimizer=optim.SGD(s.parameters(), lr=0.1, momentum=0.9), **kw)
    ht = optim.fit(t, X, y, optimizer=optim.SGD(t.parameters(), lr=0.1, momentum=0.9), **kw)
    assert hs.accuracy[-1] >= 0.9
    # Same weights, same maths, same minibatches: the two levels follow the same trajectory.
    np.testing.assert_allclose(hs.loss, ht.loss, rtol=1e-8)


def test_fit_progress_bar_falls_back_quietly(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    X, y = data.make_xor(40, seed=0)
    m = nn.TensorMLP(2, [4, 2], seed=0)
    hist = optim.fit(m, X, y, epochs=2, batch_size=8, progress=True)
    assert len(hist.loss) == 2
    assert capsys.readouterr().err == ""
    with pytest.raises(tg.InputError, match="fit"):
        optim.fit(m, X, y[:5])


def test_adam_counts_each_parameters_steps_from_its_first_gradient() -> None:
    """A parameter first reached at step 3 (a layer unfrozen later) takes Adam's first step: a
    move of lr, whatever the optimizer's own count (PyTorch counts per parameter too)."""
    a, b = tg.Node(np.array([1.0, 2.0])), tg.Node(np.array([1.0]))
    opt = optim.Adam([a, b], lr=0.1)
    for step in range(4):
        opt.zero_grad()
        loss = tg.sum(a * a) + (tg.sum(b * 3.0) if step == 3 else 0.0)
        loss.backward()
        opt.step()
    np.testing.assert_allclose(b.data, [0.9], rtol=1e-8)
    assert opt.t == 4 and opt.steps == [4, 1]
