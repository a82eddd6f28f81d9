"""tinygraph.losses: values against numpy, gradients, stability (T11) and label validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygraph as tg
from tinygraph import losses
from tinygraph.testing import gradcheck

rng = np.random.default_rng(0)
S = rng.normal(size=(6, 4)) * 3
Y = np.array([0, 3, 1, 1, 2, 0])
Z = rng.normal(size=6) * 3
B = np.array([0.0, 1.0, 1.0, 0.0, 0.3, 1.0])


def _log_softmax(s):
    m = s.max(axis=1, keepdims=True)
    return s - m - np.log(np.exp(s - m).sum(axis=1, keepdims=True))


# --- values against independent numpy formulas --------------------------------------------------


def test_values_match_numpy():
    bce = -(B * np.log(1 / (1 + np.exp(-Z))) + (1 - B) * np.log(1 - 1 / (1 + np.exp(-Z))))
    assert losses.binary_cross_entropy_with_logits(Z, B).item() == pytest.approx(bce.mean(), 1e-12)
    sign = np.where(B[[0, 1, 2, 3, 5]] > 0, 1, -1)
    hinge = np.maximum(0, 1 - sign * Z[[0, 1, 2, 3, 5]])
    got = losses.binary_hinge(Z[[0, 1, 2, 3, 5]], B[[0, 1, 2, 3, 5]]).item()
    assert got == pytest.approx(hinge.mean(), 1e-12)
    ce = -_log_softmax(S)[np.arange(6), Y]
    assert losses.softmax_cross_entropy(S, Y).item() == pytest.approx(ce.mean(), 1e-12)
    assert losses.softmax_cross_entropy(S, Y, "sum").item() == pytest.approx(ce.sum(), 1e-12)
    svm = sum(max(0.0, S[i, j] - S[i, Y[i]] + 1.0)
              for i in range(6) for j in range(4) if j != Y[i]) / 6
    assert losses.multiclass_hinge(S, Y).item() == pytest.approx(svm, 1e-12)
    assert losses.mse(Z, B).item() == pytest.approx(np.mean((Z - B) ** 2), 1e-12)


def test_multiclass_hinge_example_from_the_notes():
    # Scores [13, -7, 11], first class correct, Δ = 10: max(0, -20 + 10) + max(0, -2 + 10) = 8.
    assert losses.multiclass_hinge(np.array([[13.0, -7.0, 11.0]]), [0], margin=10).item() == 8.0


def test_loss_node_is_named_and_scalar_inputs_work():
    out = losses.softmax_cross_entropy(tg.Node(S), Y)
    assert out.name == "loss" and out.is_scalar
    z = tg.Node(0.3)  # one sample, scalar level
    loss = losses.binary_cross_entropy_with_logits(z, 1.0)
    assert loss.item() == pytest.approx(np.log1p(np.exp(-0.3)), 1e-14)
    loss.backward()
    assert z.grad == pytest.approx(1 / (1 + np.exp(-0.3)) - 1, 1e-14)
    outs = [tg.Node(1.0), tg.Node(-2.0)]  # a list of scalar nodes is stacked
    assert losses.binary_hinge(outs, [1, 0]).item() == 0.0
    assert losses.binary_hinge(tg.Node(np.array([[0.5], [-0.5]])), [1, 0]).item() == 0.5


def test_l2_convention():
    W = tg.Node(np.array([[1.0, -2.0], [3.0, 0.5]]))
    w = tg.Node(-1.5)
    reg = losses.l2([W, w], lam=0.1)
    assert reg.item() == pytest.approx(0.05 * (1 + 4 + 9 + 0.25 + 2.25), 1e-14)
    reg.backward()
    np.testing.assert_allclose(W.grad, 0.1 * W.data, rtol=1e-14)  # (λ/2)·Σw² has gradient λ·w
    assert w.grad == pytest.approx(-0.15, 1e-14)
    with pytest.raises(tg.InputError, match="l2"):
        losses.l2([], 0.1)


def test_accuracy():
    assert losses.accuracy(S, Y) == np.mean(S.argmax(1) == Y)
    assert losses.accuracy(np.array([1.0, -1.0, 2.0]), [1, 0, 0]) == pytest.approx(2 / 3)
    assert losses.accuracy(np.array([[1.0], [-1.0]]), [1, 1]) == 0.5


# --- gradients ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradchecks(reduction):
    r = reduction
    assert gradcheck(lambda s: losses.softmax_cross_entropy(s, Y, r), S)
    assert gradcheck(lambda s: losses.multiclass_hinge(s, Y, reduction=r), S)
    assert gradcheck(lambda z: losses.binary_cross_entropy_with_logits(z, B, r), Z)
    Bh = np.array([0, 1, 1, 0, 0, 1])
    Zh = np.array([0.5, -0.3, 2.0, -2.0, 0.2, 0.1])  # away from the hinge kinks at ±1
    assert gradcheck(lambda z: losses.binary_hinge(z, Bh, reduction=r), Zh)
    assert gradcheck(lambda p: losses.mse(p, B, r), Z)
    assert gradcheck(lambda a, b: losses.l2([a, b], 0.3), S, Z)


@settings(deadline=None)  # examples: the profile in conftest.py
@given(
    s=hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 5)),
                 elements=st.floats(-30, 30)),
    data=st.data(),
)
def test_cross_entropy_gradient_is_softmax_minus_onehot(s, data):
    n, c = s.shape
    y = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    x = tg.Node(s)
    losses.softmax_cross_entropy(x, y, "sum").backward()
    p = np.exp(_log_softmax(s))
    p[np.arange(n), y] -= 1
    np.testing.assert_allclose(x.grad, p, rtol=1e-10, atol=1e-12)


# --- numerical stability (T11) ------------------------------------------------------------------


def test_stability_at_extreme_logits():
    assert losses.binary_cross_entropy_with_logits(40.0, 0.0).item() == 40.0
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for v in (1e4, -1e4):
            z = tg.Node(np.array([v, -v, 0.0]))
            loss = losses.binary_cross_entropy_with_logits(z, np.array([0.0, 1.0, 1.0]))
            loss.backward()
            assert np.isfinite(loss.item()) and np.isfinite(z.grad).all()
            wrong = 2e4 if v > 0 else 0.0  # v > 0: both confident logits are wrong by 1e4
            assert loss.item() == pytest.approx((wrong + np.log(2)) / 3, rel=1e-12)
            s = tg.Node(np.array([[v, -v, 0.0], [0.0, v, -v]]))
            ce = losses.softmax_cross_entropy(s, [1, 2])
            ce.backward()
            assert np.isfinite(ce.item()) and np.isfinite(s.grad).all()
            assert ce.item() == pytest.approx(2e4 if v > 0 else 0.0, rel=1e-12, abs=1e-300)


# --- label validation (T12) ---------------------------------------------------------------------


def test_class_index_out_of_range():
    with pytest.raises(tg.InputError, match=r"class index 4 at sample 1 .* 4 classes") as e:
        losses.softmax_cross_entropy(S, [0, 4, 1, 1, 2, 0])
    assert isinstance(e.value, ValueError)
    with pytest.raises(tg.InputError, match="class index -1"):
        losses.multiclass_hinge(S, [0, -1, 1, 1, 2, 0])
    with pytest.raises(tg.InputError, match="integers"):
        losses.softmax_cross_entropy(S, [0, 0.5, 1, 1, 2, 0])
    with pytest.raises(tg.ShapeError, match="5 labels for 6 rows"):
        losses.softmax_cross_entropy(S, Y[:5])


def test_binary_targets_validated():
    with pytest.raises(tg.InputError, match=r"target 1.5 at index 2 is outside \[0, 1\]"):
        losses.binary_cross_entropy_with_logits(Z[:3], [0.0, 1.0, 1.5])
    with pytest.raises(tg.InputError, match="outside"):
        losses.binary_cross_entropy_with_logits(Z[:2], [np.nan, 1.0])
    with pytest.raises(tg.InputError, match="outside"):
        losses.binary_hinge(Z[:3], [0, 1, 0.5])
    with pytest.raises(tg.InputError, match="mix -1 and 0"):
        losses.binary_hinge(Z[:3], [0, 1, -1])
    with pytest.raises(tg.ShapeError):
        losses.binary_cross_entropy_with_logits(Z, B[:4])
    with pytest.raises(tg.ShapeError):
        losses.mse(Z, B[:4])
    with pytest.raises(tg.InputError, match="reduction"):
        losses.mse(Z, B, reduction="max")
    assert losses.binary_hinge(np.array([2.0, -2.0]), [1, -1]).item() == 0.0


def test_binary_losses_accept_a_column_of_targets():
    # (N, 1) scores, as a TensorMLP with one output gives, with (N, 1) targets: both flattened.
    col = Z.reshape(6, 1)
    for f in (losses.binary_cross_entropy_with_logits, losses.binary_hinge):
        y = (B > 0.5).astype(float)
        want = f(Z, y).item()
        assert f(col, y.reshape(6, 1)).item() == pytest.approx(want, 1e-15)
        assert f(Z, y.reshape(6, 1)).item() == pytest.approx(want, 1e-15)
    with pytest.raises(tg.ShapeError, match=r"binary_hinge: 4 targets of shape \(4, 1\)"):
        losses.binary_hinge(col, np.ones((4, 1)))
    with pytest.raises(tg.ShapeError, match=r"\(6, 2\)"):
        losses.binary_hinge(col, np.ones((6, 2)))


def test_mse_requires_matching_shapes_not_just_sizes():
    P = np.arange(6.0).reshape(2, 3)
    with pytest.raises(tg.ShapeError, match=r"mse: target of shape \(3, 2\) .* predictions of "
                                            r"shape \(2, 3\)"):
        losses.mse(P, P.T)  # same size, transposed: would pair the wrong elements
    with pytest.raises(tg.ShapeError, match=r"mse: target of shape \(1, 3\).*\(3, 1\)"):
        losses.mse(P.reshape(6, 1)[:3], np.ones((1, 3)))
    with pytest.raises(tg.ShapeError, match=r"mse: target of shape \(\)"):
        losses.mse(np.ones(2), 2.0)  # a scalar target is not broadcast over several predictions
    col = Z.reshape(6, 1)
    want = np.mean((Z - B) ** 2)
    assert losses.mse(col, B).item() == pytest.approx(want, 1e-12)  # (N, 1) with (N,)
    assert losses.mse(Z, B.reshape(6, 1)).item() == pytest.approx(want, 1e-12)
    assert losses.mse(tg.Node(1.0), [3.0]).item() == 4.0  # one value with one value
    assert losses.mse(np.ones(1), 3.0).item() == 4.0


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_a_target_node_that_requires_a_gradient_gets_it(loss) -> None:
    """Autoencoders and distillation differentiate both sides (PyTorch's mse_loss(a, b)); the
    target used to be detached silently. Checked against finite differences in float64."""
    a0, b0 = np.array([0.3, -1.2, 2.0]), np.array([0.5, 0.2, 0.9])

    def f(a, b):
        if loss == "mse":
            return losses.mse(a, b)
        return losses.binary_cross_entropy_with_logits(a, b)

    assert gradcheck(f, a0, b0)
    a, b = tg.Node(a0), tg.Node(b0)
    f(a, b).backward()
    assert b.grad is not None
    c = tg.Node(b0, requires_grad=False)
    f(tg.Node(a0), c).backward()
    assert c.grad is None
