"""The engine's fast paths give the same answers as the plain ones: replace_data, in-place
gradient accumulation, float32 reductions."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.engine import replace_data


def test_replace_data_takes_a_fresh_array_without_copying_and_locks_it() -> None:
    w = tg.Node(np.ones(3))
    new = np.arange(3.0)
    replace_data(w, new)
    assert w._data is new
    assert not new.flags.writeable


def test_replace_data_makes_old_graphs_stale_like_the_setter() -> None:
    w = tg.Node(np.ones(3))
    loss = tg.sum(w * w)
    replace_data(w, np.zeros(3))
    with pytest.raises(tg.GraphError, match="stale"):
        loss.backward()


@pytest.mark.parametrize("make", [
    lambda: np.arange(6.0)[::2],  # a view: its base could still be written
    lambda: np.arange(3, dtype=np.float32),  # another dtype
    lambda: [1.0, 2.0, 3.0],  # not an array
])
def test_replace_data_falls_back_to_the_checked_copying_setter(make) -> None:
    w = tg.Node(np.ones(3))
    value = make()
    replace_data(w, value)
    want = tg.Node(np.ones(3))
    want.data = make()
    np.testing.assert_array_equal(w.data, want.data)
    assert w.data.dtype == want.data.dtype
    assert w.data is not value and not w.data.flags.writeable


def test_replace_data_rejects_a_new_shape_and_leaves_the_node_unchanged() -> None:
    w = tg.Node(np.ones(3))
    with pytest.raises(tg.ShapeError):
        replace_data(w, np.ones(4))
    np.testing.assert_array_equal(w.data, np.ones(3))


def test_replace_data_on_a_scalar_node() -> None:
    w = tg.Node(2.0)
    replace_data(w, 3.5)
    assert w.data == 3.5
    with pytest.raises(tg.ShapeError):
        replace_data(w, np.ones(2))


def test_many_uses_of_one_node_accumulate_exactly() -> None:
    # x feeds a matmul, two products and an add: the sum of four terms, some of them built in
    # place by the engine, must equal the hand-derived gradient.
    rng = np.random.default_rng(0)
    xv, wv, c = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(4)
    x, w = tg.Node(xv), tg.Node(wv)
    y = x + 1.0  # add passes its incoming gradient on unchanged to x: it must not be mutated
    loss = tg.sum(x @ w) + tg.sum(x * x) + tg.sum(x * c) + tg.sum(y * 3.0)
    loss.backward()
    want = np.ones((3, 2)) @ wv.T + 2 * xv + c + 3.0
    np.testing.assert_allclose(x.grad, want, rtol=1e-12)
    np.testing.assert_allclose(y.grad, np.full((3, 4), 3.0))
    np.testing.assert_allclose(w.grad, xv.T @ np.ones((3, 2)), rtol=1e-12)


def test_stored_gradients_are_never_shared_between_nodes() -> None:
    a, b = tg.Node(np.ones(3)), tg.Node(np.ones(3))
    s = a + b  # both parents receive the same incoming gradient object
    tg.sum(s * 2.0).backward()
    grads = [a.grad, b.grad, s.grad]
    assert len({id(g) for g in grads}) == 3
    a.grad *= 10.0  # in-place changes to one .grad leave the others alone
    np.testing.assert_array_equal(b.grad, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(s.grad, [2.0, 2.0, 2.0])


@pytest.mark.parametrize("op", ["sum", "max", "logsumexp", "mean"])
def test_float32_full_reductions_keep_float32_gradients(op: str) -> None:
    v = np.array([[0.5, -1.0, 2.0], [2.0, 0.25, -3.0]])
    x32, x64 = tg.Node(v.astype(np.float32)), tg.Node(v)
    getattr(tg, op)(x32).backward()
    getattr(tg, op)(x64).backward()
    assert x32.grad.dtype == np.float32
    np.testing.assert_allclose(x32.grad, x64.grad, rtol=1e-6, atol=1e-7)


def test_two_backward_passes_give_twice_the_gradient_with_in_place_sums() -> None:
    x = tg.Node(np.array([1.0, -2.0, 3.0]))
    loss = tg.sum(x * x) + tg.sum(x * x * x)
    loss.backward()
    first = x.grad.copy()
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    np.testing.assert_allclose(first, 2 * x.data + 3 * x.data**2)


def test_backward_leaves_the_garbage_collector_as_it_found_it() -> None:
    w = tg.Node(np.ones(2))
    stale = tg.sum(w * w)
    replace_data(w, np.zeros(2))
    assert gc.isenabled()
    with pytest.raises(tg.GraphError):
        stale.backward()  # paused for the pass, restored even when it raises
    assert gc.isenabled()
    gc.disable()
    try:
        tg.sum(w * w).backward()
        assert not gc.isenabled()
    finally:
        gc.enable()
