"""Grad mode, scope and anomaly mode belong to the thread that sets them (real threads)."""

from __future__ import annotations

import threading
import time

import numpy as np

import tinygraph as tg


def _run(*targets: object) -> list[BaseException]:
    """Run the targets in threads started together; return what any of them raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets))

    def wrap(f: object) -> None:
        try:
            start.wait()
            f()  # type: ignore[operator]
        except BaseException as e:  # noqa: BLE001 - reported to the test
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(f,)) for f in targets]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return errors


def test_no_grad_in_one_thread_does_not_stop_another_threads_graphs() -> None:
    stop = threading.Event()
    off_seen: list[bool] = []

    def in_no_grad() -> None:
        while not stop.is_set():
            with tg.no_grad():
                y = tg.Node(2.0) * 3.0
                off_seen.append(tg.is_grad_enabled() or y.requires_grad)

    ok = []

    def builds_graphs() -> None:
        try:
            for i in range(2000):
                x = tg.Node(float(i))
                w = tg.Node(np.arange(3.0))
                y = x * x + (w * x).sum()
                y.backward()
                assert tg.is_grad_enabled()
                assert x.grad == 2.0 * i + 3.0 and np.array_equal(w.grad, np.full(3, float(i)))
                ok.append(i)
            # the two threads must have overlapped: on a busy machine the other one may not
            # have been scheduled yet
            for _ in range(5000):
                if off_seen:
                    break
                time.sleep(0.001)
        finally:
            stop.set()

    assert _run(in_no_grad, builds_graphs) == []
    assert len(ok) == 2000
    assert off_seen and not any(off_seen)  # inside its block, the other thread had grad off
    assert tg.is_grad_enabled()


def test_main_thread_grad_mode_is_intact_after_threads_use_no_grad() -> None:
    def f() -> None:
        for _ in range(500):
            with tg.no_grad():
                pass

    assert _run(f, f, f) == []
    assert tg.is_grad_enabled()
    with tg.no_grad():
        # a thread started inside no_grad starts with grad on (the default), like PyTorch
        seen = []
        t = threading.Thread(target=lambda: seen.append(tg.is_grad_enabled()))
        t.start()
        t.join()
        assert seen == [True] and not tg.is_grad_enabled()
    assert tg.is_grad_enabled()


def test_scopes_in_two_threads_do_not_mix() -> None:
    got: dict[str, list[str | None]] = {"A": [], "B": []}

    def in_scope(name: str) -> None:
        for _ in range(400):
            with tg.scope(name), tg.scope("inner"):
                n = tg.Node(1.0) + 1.0
                got[name].append(n.scope)
                assert tg.current_scope() == f"{name}.inner"
        assert tg.current_scope() is None

    assert _run(lambda: in_scope("A"), lambda: in_scope("B")) == []
    assert got["A"] == ["A.inner"] * 400 and got["B"] == ["B.inner"] * 400
    assert tg.current_scope() is None


def test_modules_built_in_two_threads_get_their_own_prefixes() -> None:
    names: dict[str, list[str]] = {"left": [], "right": []}

    def build(prefix: str) -> None:
        for _ in range(50):
            with tg.scope(prefix):
                x = tg.Node(np.ones((2, 3)))
                out = tg.nn.Linear(3, 2)(x)
                names[prefix].append(out.scope or "")

    assert _run(lambda: build("left"), lambda: build("right")) == []
    assert all(s.startswith("left") for s in names["left"])
    assert all(s.startswith("right") for s in names["right"])


def test_anomaly_mode_is_per_thread() -> None:
    seen: list[bool] = []
    inside = threading.Event()
    done = threading.Event()

    def anomalous() -> None:
        with tg.detect_anomaly():
            inside.set()
            done.wait(30)

    def other() -> None:
        inside.wait(30)
        # log(0) outside anomaly mode: an -inf result, no error in this thread
        with np.errstate(divide="ignore"):
            y = tg.log(tg.Node(0.0))
        seen.append(y.item() == -np.inf)
        done.set()

    assert _run(anomalous, other) == []
    assert seen == [True]


def test_grad_mode_restored_when_scope_is_left_inside_no_grad() -> None:
    with tg.scope("s"):
        with tg.no_grad():
            assert tg.current_scope() == "s" and not tg.is_grad_enabled()
        assert tg.is_grad_enabled() and tg.current_scope() == "s"
    assert tg.current_scope() is None
