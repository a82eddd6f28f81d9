"""detect_anomaly (T13): it names the first op whose inputs were finite (or NaN-free) and whose
output or local gradient was not, with the file:line that created that node."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.errors import AnomalyError

MARK = "# <- here"


def _site(fn: object) -> str:
    """This file's name and the line of fn marked with MARK."""
    lines, start = inspect.getsourcelines(fn)
    k = next(i for i, line in enumerate(lines) if MARK in line)
    return f"{os.path.basename(__file__)}:{start + k}"


def log0(v):
    return tg.log(v * 0.0)  # <- here


def sqrt_neg(v):
    return tg.sqrt(v - 2.0)  # <- here


def zero_by_zero(v):
    z = v * 0.0
    return z / z  # <- here


def exp800(v):
    return tg.exp(v * 800.0) * 2.0  # <- here


def inf_minus_inf(v):
    big = tg.exp(v * 800.0)  # <- here
    return big - big


def inf_minus_inf_from_data(v):
    with np.errstate(over="ignore"):
        big = v * 1e308 * 10.0  # inf from constants: mul of finite inputs is flagged  # <- here
    return big - big


def softmax_all_minus_inf_row(v):
    return tg.softmax(tg.log(v * 0.0 + 1.0) * 0.0 + np.array([[-np.inf, -np.inf]]))  # <- here


def naive_bce_at_one(v):
    p = v * 0.0 + 1.0
    y = 0.0
    return -(y * tg.log(p) + (1 - y) * tg.log(1 - p))  # <- here


def negative_to_half(v):
    return (v - 3.0) ** 0.5  # <- here


def divide_by_zero_std(v):
    x = v * 1.0 if not v.is_scalar else tg.stack([v, v, v])
    m = tg.mean(x)
    sd = tg.sqrt(tg.mean((x - m) ** 2))
    return (x - m) / sd  # <- here


FORWARD = [
    (log0, "log", "Inf"),
    (sqrt_neg, "sqrt", "NaN"),
    (zero_by_zero, "div", "NaN"),
    (exp800, "exp", "Inf"),
    (inf_minus_inf, "exp", "Inf"),
    (inf_minus_inf_from_data, "mul", "Inf"),
    (naive_bce_at_one, "log", "Inf"),
    (negative_to_half, "pow", "NaN"),
    (divide_by_zero_std, "div", "NaN"),
]


@pytest.mark.parametrize("level", ["scalar", "tensor"])
@pytest.mark.parametrize(("case", "op", "what"), FORWARD, ids=[c[0].__name__ for c in FORWARD])
def test_forward_anomalies_name_the_first_bad_op_and_its_line(case: object, op: str, what: str,
                                                              level: str) -> None:
    v = tg.Node(1.0 if level == "scalar" else np.ones(3), name="v")
    with tg.detect_anomaly(), pytest.raises(AnomalyError) as info:
        case(v)
    msg = str(info.value)
    assert msg.startswith(f"{op} produced {what}"), msg
    assert _site(case) in msg, msg


def test_an_all_minus_inf_softmax_row() -> None:
    with tg.detect_anomaly(), pytest.raises(AnomalyError) as info:
        softmax_all_minus_inf_row(tg.Node(1.0))
    msg = str(info.value)
    # -inf - (-inf) inside log_softmax is the first NaN; the report points at the softmax call.
    assert msg.startswith("sub produced NaN from NaN-free inputs"), msg
    assert _site(softmax_all_minus_inf_row) in msg


def sqrt_at_zero(v):
    y = tg.sqrt(v * 0.0)  # <- here
    return y if y.is_scalar else tg.sum(y)


def pow_half_at_zero(v):
    y = (v * 0.0) ** 0.5  # <- here
    return y if y.is_scalar else tg.sum(y)


@pytest.mark.parametrize("level", ["scalar", "tensor"])
@pytest.mark.parametrize(("case", "op"), [(sqrt_at_zero, "sqrt"), (pow_half_at_zero, "pow")])
def test_backward_anomalies_name_the_op_whose_local_gradient_broke(case: object, op: str,
                                                                   level: str) -> None:
    v = tg.Node(1.0 if level == "scalar" else np.ones(3), name="v")
    with tg.detect_anomaly():
        y = case(v)  # the forward is finite: sqrt(0) = 0
        with pytest.raises(AnomalyError) as info:
            y.backward()
    msg = str(info.value)
    assert msg.startswith(f"backward of {op}: the gradient for input 1"), msg
    assert "Inf" in msg and _site(case) in msg


def test_without_anomaly_mode_nothing_is_raised_and_values_flow() -> None:
    with np.errstate(all="ignore"):
        y = log0(tg.Node(np.ones(2)))
        np.testing.assert_array_equal(y.data, [-np.inf, -np.inf])
        assert np.isnan(zero_by_zero(tg.Node(1.0)).data)


def test_anomaly_mode_is_silent_on_a_healthy_graph() -> None:
    x = tg.Node(np.array([0.5, -1.0]))
    with tg.detect_anomaly():
        y = tg.sum(tg.log_softmax(tg.tanh(x) * 3.0))
        y.backward()
    assert np.isfinite(x.grad).all()
