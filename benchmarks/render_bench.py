"""Rendering: the op-level diagram of a 3-4-4-1 MLP with its loss to SVG, and the plain view data
of a 10^5-node graph. Skipped with a message while tinygraph.viz is not importable."""

from __future__ import annotations

import shutil
import time
from typing import Any

from harness import fmt_time, log, median, table


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
    """Time the rendering workloads; a message instead when viz is missing."""
    try:
        import tinygraph.viz as viz

        build, draw = viz.build, viz.draw
    except (ImportError, AttributeError) as e:
        return f"Rendering: skipped, tinygraph.viz is not ready ({type(e).__name__}: {e})."
    import tinygraph as tg

    reps = 1 if quick else 3
    rows = []
    loss = mlp_3441()
    n_small = len(tg.walk(loss))
    if shutil.which("dot"):
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            svg = draw(loss, level="op").svg()
            times.append(time.perf_counter() - t)
        rows.append(["3-4-4-1 MLP + loss: draw(level='op').svg()", f"{n_small:,}",
                     fmt_time(median(times)), f"{len(svg):,} characters of SVG"])
    else:
        rows.append(["3-4-4-1 MLP + loss: draw(level='op').svg()", f"{n_small:,}", "skipped",
                     "no `dot` on PATH"])
    big = big_graph()
    n_big = len(tg.walk(big))
    for level in ("auto", "op"):
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            data = build(big, level, max_nodes=250 if level == "auto" else n_big + 1)
            times.append(time.perf_counter() - t)
        shown = getattr(data, "level", "?")
        rows.append([f"pairwise sum of products: build(level={level!r})", f"{n_big:,}",
                     fmt_time(median(times)), f"plain view data at level {shown!r}, "
                     f"{len(getattr(data, 'nodes', ())):,} view nodes; no graphviz"])
    log(f"  render: {rows}")
    return "Rendering (median of runs)\n\n" + table(["workload", "graph nodes", "time", "notes"],
                                                      rows)
