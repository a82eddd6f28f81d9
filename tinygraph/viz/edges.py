"""The edges of a diagram: the gradient message each carries, folded between groups."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..analysis import (
    Thresholds,
)
from ..engine import Node
from . import style
from .data import ViewEdge, ViewNode
from .style import fmt, full
from .text import _all_finite, _mean_abs


def _make_edges(raw: list[tuple[str, str, Any, Node, int]], level: str, gref: float,
                th: Thresholds, labels: bool, vnodes: list[ViewNode],
                done: bool) -> list[ViewEdge]:
    # Fold parallel edges between two groups into one carrying the summed messages; the first
    # of them (child c, operand i) names it. At op level nothing folds.
    seq: list[tuple[str, str, list[Any], Node, int]]
    if level == "op":
        seq = [(t, h, [g], c, i) for t, h, g, c, i in raw]
    else:
        seq = []
        folded: dict[tuple[str, str], list[Any]] = {}
        for t, h, g, c, i in raw:
            gs = folded.get((t, h))
            if gs is None:
                gs = folded[(t, h)] = []
                seq.append((t, h, gs, c, i))
            gs.append(g)
    ops = {n.id for n in vnodes if n.kind == "op"}
    header = {n.id: n.header for n in vnodes}
    edges: list[ViewEdge] = []
    count: dict[tuple[str, str], int] = {}
    for t, h, gs, c, i in seq:
        head = h
        if ops and f"{h}_op" in ops:
            head = f"{h}_op"
        key = (t, head)
        k = count[key] = count.get(key, -1) + 1
        eid = f"{t}->{head}#{k}" if k else f"{t}->{head}"
        who = f"{c.parents[i].label or header.get(t, t)} → {c.label or header.get(h, c.op)}"
        edges.append(_edge(eid, t, head, gs, gref, th, labels, who, len(gs), done))
    first: dict[str, ViewNode] = {}  # the first node of each id: a scan per op node is O(n^2)
    for vn in vnodes if ops else ():
        first.setdefault(vn.id, vn)
    for vid in sorted(ops, key=lambda s: s):  # op node -> its output carries the output's grad
        out = vid[:-3]
        node = first[out]
        g = None if node.grad is None else node.grad
        edges.append(_edge(f"{vid}->{out}", vid, out, [g], gref, th, labels, node.header, 1,
                           done))
    return edges


def _edge(eid: str, tail: str, head: str, gs: list[Any], gref: float, th: Thresholds,
          labels: bool, who: str, n: int, done: bool) -> ViewEdge:
    gs = [g for g in gs if g is not None]
    if not gs:
        why = "backward() has not been called" if not done else "a constant gets none"
        return ViewEdge(eid, tail, head, None, None, 0.0, "none",
                        tooltip=f"{who}: no gradient message ({why})")
    if type(gs[0]) is float and (len(gs) == 1 or all(type(g) is float for g in gs)):
        msg = float(sum(gs))
        mag = abs(msg)
        # One float message is finite exactly when its magnitude is: skip the check per part.
        bad = not math.isfinite(mag) or (len(gs) > 1 and not all(map(math.isfinite, gs)))
    else:
        msg = None
        shapes = {np.shape(g) for g in gs}
        if len(shapes) == 1:
            with np.errstate(all="ignore"):
                mag = _mean_abs(np.sum(np.stack([np.asarray(g) for g in gs]), axis=0)
                                if len(gs) > 1 else gs[0])
        else:
            mag = float(sum(_mean_abs(g) for g in gs))
        bad = not math.isfinite(mag) or not all(_all_finite(g) for g in gs)
    if bad:
        state, r = "nonfinite", 1.0
    elif mag == 0:
        state, r = "zero", 0.0
    elif mag < gref * 10.0 ** (-th.decades):
        state, r = "vanished", 0.0
    else:
        state, r = "flow", style.magnitude(mag, gref, th.decades)
    what = "g" if msg is not None else "mean |g|"
    folded = f" (sum of {n} edges)" if n > 1 else ""
    tip = f"{who}: {what} = {full(msg if msg is not None else mag)}{folded}"
    label = fmt(msg if msg is not None else mag, 2) if labels else None
    return ViewEdge(eid, tail, head, msg, mag, r, state, label, tip)
