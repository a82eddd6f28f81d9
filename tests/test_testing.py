"""Tests of tinygraph.testing: gradcheck catches wrong rules (T6) and reports them usefully; the
strategies draw what they promise."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.errors import GradcheckError
from tinygraph.testing import analytic_jacobian, gradcheck, numerical_jacobian
from tinygraph.testing import strategies as tgs

RNG = np.random.default_rng(0)

# --- T6: deliberately wrong backward rules, defined as user primitives ---------------------------

SQUARE_SCALED = tg.primitive("mutant_square_scaled", lambda x: x * x,
                             lambda g, out, x: g * 2 * x * (1 + 1e-3))
SQUARE_OFF_5E4 = tg.primitive("mutant_square_off_5e-4", lambda x: x * x,
                              lambda g, out, x: g * 2 * x * (1 + 5e-4))
MATMUL_TRANSPOSED = tg.primitive("mutant_matmul_transposed", np.matmul,
                                 lambda g, out, a, b: g @ b,  # should be g @ b.T
                                 lambda g, out, a, b: a.T @ g)
ADD_ROW_NO_SUM = tg.primitive("mutant_add_row", lambda a, b: a + b,
                              lambda g, out, a, b: g,
                              lambda g, out, a, b: g[0])  # should be g.sum(axis=0)
SIN_SIGN = tg.primitive("mutant_sin_sign", np.sin, lambda g, out, x: -g * np.cos(x))


@pytest.mark.parametrize("n", [3, 10])  # full Jacobian, then random projections
@pytest.mark.parametrize("case", ["scaled", "off by 0.05%", "transposed",
                                  "broadcast reduction dropped", "sign flipped"])
def test_every_mutant_is_caught(case: str, n: int) -> None:
    a = RNG.uniform(0.5, 2.0, (n, n))
    b = RNG.uniform(-2.0, 2.0, (n, n))
    row = RNG.uniform(-2.0, 2.0, (n,))
    checks = {
        "scaled": (lambda x: SQUARE_SCALED(x), (a,)),
        "off by 0.05%": (lambda x: SQUARE_OFF_5E4(x), (a,)),
        "transposed": (lambda x, y: MATMUL_TRANSPOSED(x, y), (a, b)),
        "broadcast reduction dropped": (lambda x, y: ADD_ROW_NO_SUM(x, y), (a, row)),
        "sign flipped": (lambda x: SIN_SIGN(x), (b,)),
    }
    fn, inputs = checks[case]
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        gradcheck(fn, *inputs, max_full=16)


@pytest.mark.parametrize("mutant", [SQUARE_SCALED, SIN_SIGN])
def test_mutants_are_caught_on_scalars(mutant: tg.Primitive) -> None:
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: mutant(x), 0.7)


def test_correct_versions_of_the_mutants_pass() -> None:
    a, b = RNG.uniform(0.5, 2.0, (4, 4)), RNG.uniform(-2.0, 2.0, (4, 4))
    assert gradcheck(lambda x: x * x, a)
    assert gradcheck(lambda x, y: x @ y, a, b)
    assert gradcheck(lambda x, y: x + y, a, b[0])
    assert gradcheck(lambda x, y: x @ y, RNG.normal(size=(20, 10)), RNG.normal(size=(10, 8)))


# --- gradcheck itself ---------------------------------------------------------------------------


def test_failure_message_names_input_element_and_both_values() -> None:
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x, y: x + SQUARE_SCALED(y), np.ones(2), np.array([1.0, 3.0]))
    msg = str(info.value)
    assert "with respect to input 1" in msg and "input 0" not in msg
    assert "d out(1,) / d x1(1,): analytic 6.006, numerical 6" in msg
    assert "abs error 0.006" in msg and "rel error 0.001" in msg


def test_projection_failure_message_names_the_input() -> None:
    with pytest.raises(GradcheckError, match=r"input 0 \(x0, shape \(100,\)\), random projection"):
        gradcheck(lambda x: tg.sum(SQUARE_SCALED(x)), RNG.normal(size=100))


def test_gradcheck_is_an_assertion_error_and_returns_true() -> None:
    assert issubclass(GradcheckError, AssertionError)
    assert gradcheck(lambda x: tg.tanh(x), 0.3) is True


def test_inputs_become_float64_nodes() -> None:
    seen = []

    def fn(x: tg.Node, y: tg.Node) -> tg.Node:
        seen.append((x.dtype, y.dtype, x.is_scalar))
        return x * y

    gradcheck(fn, 2, tg.Node(np.ones(3, dtype=np.float32)))
    assert set(seen) == {(np.dtype(np.float64), np.dtype(np.float64), True)}


def test_jacobians_of_a_known_function() -> None:
    x = np.array([1.0, 2.0])
    fn = lambda v: v * v  # noqa: E731 - J = diag(2x)
    np.testing.assert_allclose(analytic_jacobian(fn, [x])[0], np.diag(2 * x), rtol=1e-15)
    np.testing.assert_allclose(numerical_jacobian(fn, [x], 0), np.diag(2 * x), rtol=1e-8)


def test_an_output_that_ignores_an_input_has_a_zero_jacobian() -> None:
    assert gradcheck(lambda x, y: x * 2.0, np.ones(3), np.ones(2))
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: tg.Node(x.data * 2.0, requires_grad=False), np.ones(2))


def test_misuse_raises_a_type_error_not_a_gradient_mismatch() -> None:
    with pytest.raises(tg.DTypeError, match="gradcheck: fn returned float, not a Node"):
        gradcheck(lambda x: 1.0, 0.5)
    with pytest.raises(tg.DTypeError, match="gradcheck: input 1 has dtype <U1"):
        gradcheck(lambda x, y: x, 0.5, "a")
    assert gradcheck(lambda x: x * x, np.array(2.0))  # a 0-d array is a scalar


def test_importing_tinygraph_testing_does_not_need_hypothesis() -> None:
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "from tinygraph.testing import gradcheck\n"
            "import tinygraph as tg\n"
            "assert gradcheck(lambda x: tg.exp(x), 0.5)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- strategies ---------------------------------------------------------------------------------


@given(st.data())
def test_floats_in_respects_bounds_and_avoided_points(data: st.DataObject) -> None:
    x = data.draw(tgs.floats_in(-2.0, 3.0, avoid=[0.0, 1.0], gap=0.25))
    assert -2.0 <= x <= 3.0
    assert abs(x) >= 0.25 and abs(x - 1.0) >= 0.25


def test_floats_in_with_nothing_left() -> None:
    with pytest.raises(ValueError, match="nothing"):
        tgs.floats_in(0.0, 1.0, avoid=[0.5], gap=1.0)


@given(tgs.separated_arrays((3, 4), gap=0.05))
def test_separated_arrays_have_no_near_ties(x: np.ndarray) -> None:
    v = np.sort(x.ravel())
    assert x.shape == (3, 4) and np.diff(v).min() >= 0.05 - 1e-12


@given(tgs.broadcastable_shapes(3))
def test_broadcastable_shapes_broadcast(shapes: tuple) -> None:
    assert len(shapes) == 3
    np.broadcast_shapes(*shapes)


@given(tgs.broadcastable_arrays(3, lo=-1.0, hi=2.0, avoid=[0.0], gap=0.1))
def test_broadcastable_arrays(xs: tuple) -> None:
    assert len(xs) == 3
    np.broadcast_shapes(*[np.shape(x) for x in xs])
    for x in xs:
        assert isinstance(x, (float, np.ndarray)) and np.ndim(x) == 0 or x.dtype == np.float64
        assert (np.abs(x) >= 0.1).all() and (-1.0 <= np.min(x)) and np.max(x) <= 2.0
    assert gradcheck(lambda a, b, c: a * tg.sigmoid(b) + c, *xs)


@settings(max_examples=300)
@given(tgs.matmul_shapes())
def test_matmul_shapes_are_accepted_by_numpy(shapes: tuple) -> None:
    a, b = shapes
    np.matmul(np.ones(a), np.ones(b))


def test_strategies_reach_scalars_size_one_axes_and_every_matmul_rank() -> None:
    from hypothesis import find

    find(tgs.broadcastable_shapes(2), lambda s: () in s)
    find(tgs.broadcastable_shapes(2), lambda s: any(1 in x for x in s))
    for ra, rb in [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (1, 4), (3, 4)]:
        find(tgs.matmul_shapes(), lambda s, ra=ra, rb=rb: (len(s[0]), len(s[1])) == (ra, rb))


@given(tgs.graphs())
def test_random_graphs_have_correct_gradients(graph_and_inputs: tuple) -> None:
    graph, inputs = graph_and_inputs
    assert gradcheck(graph, *inputs)


def test_graph_repr_shows_the_program() -> None:
    g = tgs.Graph(2, (("mul", 0, 0), ("add", 2, 1)))
    assert repr(g) == "Graph(v0 = mul(x0, x0); v1 = add(v0, x1))"
    x, y = tg.Node(3.0), tg.Node(2.0)
    out = g(x, y)
    out.backward()
    assert (out.data, x.grad, y.grad) == (11.0, 6.0, 1.0)
