"""Rendering: the op-level diagram of a 3-4-4-1 MLP with its loss to SVG, and the plain view data
of a 10^5-node graph. Skipped with a message while tinygraph.viz is not importable."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Any

from harness import fmt_time, log, median, table

# The viz module's entry points, by the names it may give them (first one found is used).
VIEW_NAMES = ("build_view", "view_data", "view", "build")
DRAW_NAMES = ("draw", "render", "diagram")


def _find(mod: Any, names: tuple[str, ...]) -> Callable[..., Any] | None:
    return next((getattr(mod, n) for n in names if callable(getattr(mod, n, None))), None)


def mlp_3441() -> Any:
    """A 3-4-4-1 sigmoid MLP on one sample with a squared-error loss, after backward."""
    import random

    import tinygraph as tg

    random.seed(0)
    x = [tg.Node(v, name=f"x{i}", requires_grad=False) for i, v in enumerate((0.5, -1.0, 2.0))]
    for li, (nin, nout) in enumerate(((3, 4), (4, 4), (4, 1)), 1):
        with tg.scope(f"L{li}"):
            out = []
            for j in range(nout):
                with tg.scope(f"n{j}"):
                    z = tg.Node(0.0, name="b")
                    for i in range(nin):
                        z = z + tg.Node(random.uniform(-1, 1), name=f"w{i}") * x[i]
                    out.append(tg.sigmoid(z) if li < 3 else z)
            x = out
    loss = (x[0] - 1.0) * (x[0] - 1.0)
    loss.name = "loss"
    loss.backward()
    return loss


def big_graph(n: int = 100_000) -> Any:
    """A graph of about n scalar nodes: a pairwise sum of n/2 products, after backward."""
    import tinygraph as tg

    level = [tg.Node(0.001 * i) * tg.Node(1.0) for i in range(n // 4)]
    while len(level) > 1:
        nxt = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        level = nxt + level[len(nxt) * 2:]
    level[0].backward()
    return level[0]


def run(quick: bool) -> str:
    """Time the two rendering workloads; a message instead when viz is missing."""
    try:
        import tinygraph.viz as viz
    except ImportError as e:
        return f"Rendering: skipped, tinygraph.viz is not importable yet ({e})."
    import tinygraph as tg

    view, draw = _find(viz, VIEW_NAMES), _find(viz, DRAW_NAMES)
    if view is None or draw is None:
        return (f"Rendering: skipped, tinygraph.viz has none of {VIEW_NAMES} / {DRAW_NAMES} "
                f"(it has {', '.join(n for n in dir(viz) if not n.startswith('_'))}).")
    rows = []
    loss = mlp_3441()
    if shutil.which("dot"):
        times = []
        for _ in range(1 if quick else 3):
            t = time.perf_counter()
            d = draw(loss, level="op")
            svg = d.pipe(format="svg") if hasattr(d, "pipe") else d.svg()  # graphviz.Digraph or own
            times.append(time.perf_counter() - t)
        rows.append(["3-4-4-1 MLP + loss, op level, to SVG", f"{len(tg.walk(loss)):,}",
                     fmt_time(median(times)), f"{len(svg):,} bytes of SVG"])
    else:
        rows.append(["3-4-4-1 MLP + loss, op level, to SVG", "-", "skipped", "no `dot` on PATH"])
    big = big_graph()
    n = len(tg.walk(big))
    times = []
    for _ in range(1 if quick else 3):
        t = time.perf_counter()
        view(big)
        times.append(time.perf_counter() - t)
    rows.append([f"plain view data, {n:,}-node graph", f"{n:,}", fmt_time(median(times)),
                 "no graphviz involved"])
    log(f"  render: {rows}")
    return "Rendering (median of runs)\n\n" + table(["workload", "nodes", "time", "notes"], rows)
