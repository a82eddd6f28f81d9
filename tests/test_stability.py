"""Numerical stability for logits in [-1e4, 1e4] (T11): finite values and gradients with numpy
set to raise on overflow, invalid operations and division by zero; pinned extreme values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.testing import strategies as tgs

OPS = {
    "sigmoid": tg.sigmoid,
    "log_sigmoid": tg.log_sigmoid,
    "softplus": tg.softplus,
    "logsumexp": lambda x: tg.logsumexp(x, axis=-1) if not x.is_scalar else tg.logsumexp(x),
    "log_softmax": lambda x: tg.log_softmax(x, axis=-1),
}
LOGITS = tgs.arrays(st.sampled_from([(), (1,), (3,), (2, 4)]), -1e4, 1e4)


@pytest.mark.parametrize("name", sorted(OPS))
@given(x=LOGITS, data=st.data())
def test_extreme_logits_give_finite_values_and_gradients(name: str, x: object,
                                                         data: st.DataObject) -> None:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        node = tg.Node(x)
        y = OPS[name](node)
        assert np.isfinite(y.data).all()
        seed = data.draw(tgs.arrays(y.shape, -1.0, 1.0), label="upstream gradient")
        y.backward(seed)
        assert np.isfinite(node.grad).all()


@pytest.mark.parametrize("level", ["scalar", "tensor"])
def test_pinned_extremes(level: str) -> None:
    def at(v: float, op: object) -> tuple[float, float]:
        x = tg.Node(v if level == "scalar" else np.array([v]))
        y = op(x)
        (y if y.is_scalar else tg.sum(y)).backward()
        return float(np.ravel(y.data)[0]), float(np.ravel(x.grad)[0])

    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert at(-800.0, tg.log_sigmoid) == (-800.0, 1.0)
        assert at(800.0, tg.log_sigmoid) == (0.0, 0.0)
        assert at(800.0, tg.sigmoid) == (1.0, 0.0)
        assert at(-800.0, tg.sigmoid) == (0.0, 0.0)
        assert at(800.0, tg.softplus) == (800.0, 1.0)
        assert at(-800.0, tg.softplus) == (0.0, 0.0)


def test_logsumexp_of_two_large_equal_logits() -> None:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        x = tg.Node([1000.0, 1000.0])
        y = tg.logsumexp(x)
        assert math.isclose(y.data, 1000.0 + math.log(2.0), rel_tol=1e-12)
        y.backward()
        np.testing.assert_allclose(x.grad, [0.5, 0.5], rtol=1e-12)
        z = tg.Node([[-1e4, 1e4, 0.0]])
        s = tg.log_softmax(z)
        np.testing.assert_allclose(s.data, [[-2e4, 0.0, -1e4]], rtol=1e-12)
        s.backward(np.ones((1, 3)))
        np.testing.assert_allclose(z.grad, [[1.0, -2.0, 1.0]], rtol=1e-12)
