"""build(): a graph's diagram as plain view data (data.py), without graphviz.

The middle of the three steps analysis -> view data -> rendering. build(root, ...) is a pure
function of the graph and the options. It reads the graph through tinygraph.walk (one iterative
traversal), its activations and unit statistics through tinygraph.analysis, and the gradient
each edge carries through tinygraph.vjp_message, so the same graph always gives the same data,
with ids made of topological index and name. This module chooses the level and folds nodes into
groups; the boxes are made in nodes.py (their text in text.py, their flags in flags.py), the
edges in edges.py, the legend and diagnosis in legend.py. Rendering (render.py: DOT/SVG/PNG;
html.py: the page) only draws this data; a recorder can keep the structure (ids, clusters) of
one build and restyle it from later builds of the same graph.
"""

from __future__ import annotations

import functools
import gc
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from .. import analysis
from .._check import check_bool, check_float, check_int
from ..analysis import (
    DEFAULT,
    Activity,
    Thresholds,
    Units,
    layer_of,
)
from ..engine import Node, vjp_message, walk
from ..errors import InputError
from . import style
from .data import LEVELS, Cluster, Flag, Legend, ViewData, ViewEdge, ViewNode
from .edges import _make_edges
from .legend import _legend, _natural, layer_summary
from .nodes import Context, _input_node, _make_nodes, _role
from .text import _LIST_MAX, _mean_abs

__all__ = ["LEVELS", "Activity", "Cluster", "Flag", "Legend", "Options", "ViewData", "ViewEdge",
           "ViewNode", "build", "build_view"]

_WEIGHT = re.compile(r"^w(\d+)(_\d+)?$")  # a scalar neuron's weight w{i}: it multiplies input i


_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


@functools.lru_cache(maxsize=4096)
def _safe_id(text: str) -> str:
    # Cached: a big graph asks this for the same few op names on every node. Ids stay short
    # (a 20 KB name must not make a 20 KB id); a long one keeps a checksum of the whole.
    return style.short_id(_UNSAFE.sub("_", text))


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _without_gc(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """fn with the cyclic garbage collector paused while it runs, as engine.backward does."""

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        # A build allocates several small objects per graph node and makes no reference cycles,
        # so the collector finds nothing; on a 10^5-node graph its runs cost a third of the build.
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return run


# ---------------------------------------------------------------------------------------------
# Building the view
# ---------------------------------------------------------------------------------------------


def _select(root: Node, focus: Node | str | None) -> tuple[list[Node], Node | None]:
    order = walk(root)
    if focus is None:
        return order, None
    target = focus if isinstance(focus, Node) else None
    if target is None:
        for i, n in enumerate(order):
            if n.label == focus or f"n{i}" == focus or _node_id(i, n) == focus:
                target = n
                break
    if target is None or target not in set(order):
        raise InputError(f"draw: focus {focus!r} is not a node of this graph")
    keep = set(walk(target))
    below = {target}
    for n in order:  # parents come before children: one pass finds every descendant
        if any(p in below for p in n.parents):
            below.add(n)
    keep |= below
    return [n for n in order if n in keep], target


def _node_id(i: int, n: Node) -> str:
    name = n.label or n.op or ("const" if not n.requires_grad else "leaf")
    return f"n{i}_{_safe_id(name)}"


def _group_key(level: str, n: Node, i: int, chunk: int, after: set[Node]) -> str | None:
    if level == "block":
        return f"block{i // chunk}"
    if level not in ("neuron", "layer"):
        return None
    if n.scope is None:
        # Unscoped ops fold too: those downstream of the modules (the loss) into one box, those
        # upstream (input preprocessing) into another. Unscoped leaves stay visible.
        if n.op is None:
            return None
        return "(output)" if n in after else "(ops)"
    return n.scope if level == "neuron" else layer_of(n.scope)


def _downstream(order: list[Node]) -> set[Node]:
    """Unscoped op nodes computed from something inside a scope (parents come first)."""
    after: set[Node] = set()
    for n in order:
        if n.scope is None and n.op is not None and any(
                p.scope is not None or p in after for p in n.parents):
            after.add(n)
    return after


@dataclass(frozen=True)
class Options:
    """What build() draws and how; tinygraph.viz.draw documents each. Checked when made, so a
    bad option fails before any work, naming "draw" and the option."""

    max_nodes: int = 250
    focus: Node | str | None = None
    thresholds: Thresholds = DEFAULT
    g_ref: float | str = "max"
    compact: bool = True
    inline_constants: bool = True
    edge_labels: bool = False
    sign: bool = False
    legend: bool = True
    roles: Mapping[str, str] = field(default_factory=dict)
    heat: bool = True

    def __post_init__(self) -> None:
        check_int("draw", "max_nodes", self.max_nodes, lo=1)
        for flag in ("compact", "inline_constants", "edge_labels", "sign", "legend", "heat"):
            check_bool("draw", flag, getattr(self, flag))
        if not isinstance(self.thresholds, Thresholds):
            raise InputError(f"draw: thresholds must be a tinygraph.thresholds.Thresholds, got "
                             f"{type(self.thresholds).__name__}")
        g_ref = self.g_ref
        if not (isinstance(g_ref, str) and g_ref == "max"):
            if isinstance(g_ref, str):
                raise InputError(f"draw: g_ref must be 'max' or a positive number, got "
                                 f"{g_ref!r}")
            object.__setattr__(self, "g_ref",
                               check_float("draw", "g_ref", g_ref, lo=0.0, lo_open=True))
        roles = self.roles
        if not isinstance(roles, Mapping):
            raise InputError(f"draw: roles must be a dict of name -> role, got {roles!r:.60}")
        roles = dict(roles)
        for lab, r in roles.items():
            if r not in style.ROLES:
                raise InputError(f"draw: role {r!r} for {lab!r} is not one of "
                                 f"{', '.join(style.ROLES)}")
        object.__setattr__(self, "roles", roles)


def build(root: Node, level: str = "auto", *, max_nodes: int = 250,
          focus: Node | str | None = None, thresholds: Thresholds | None = None,
          g_ref: float | str = "max", compact: bool = True, inline_constants: bool = True,
          edge_labels: bool = False, sign: bool = False, legend: bool = True,
          roles: dict[str, str] | None = None, heat: bool = True,
          activity: Activity | None = None) -> ViewData:
    """The plain view data of root's graph (see the module docstring and tinygraph.viz.draw).

    activity: a recorder's memory of earlier snapshots; a ReLU off now is then dead only when it
    was off in the last thresholds.dead_snapshots - 1 of them too, or in all of them when fewer
    were taken (tinygraph.viz.recorder passes it).
    """
    if not isinstance(root, Node):
        raise InputError(f"draw: expected a Node, got {type(root).__name__}")
    if level not in LEVELS:
        raise InputError(f"draw: level must be one of {', '.join(LEVELS)}, got {level!r}")
    options = Options(max_nodes, focus, DEFAULT if thresholds is None else thresholds, g_ref,
                      compact, inline_constants, edge_labels, sign, legend,
                      {} if roles is None else roles, heat)
    return build_view(root, level, options, activity)


@_without_gc
def build_view(root: Node, level: str, options: Options,
               activity: Activity | None = None) -> ViewData:
    """build() with its options already made (and checked) as an Options."""
    o = options
    th, roles, g_ref, max_nodes = o.thresholds, o.roles, o.g_ref, o.max_nodes

    order, target = _select(root, o.focus)
    index = {n: i for i, n in enumerate(order)}
    acts = analysis.find(order)  # activations in any spelling, with f'(z) from the op table
    inline = {n for n in order if o.inline_constants and n.op is None and not n.requires_grad
              and n.name is None and n is not root}
    drawn = [n for n in order if n not in inline]
    # Leaves fed by data (micrograd's list(map(Value, xrow))): inputs like the plain numbers.
    fed = _data_leaves(order, root)
    backward_done = root.grad is not None
    ref = _mean_abs(root.grad) if backward_done else None
    banners: list[str] = []
    if not backward_done:
        banners.append("backward() has not been called: grads read —")

    scoped = any(n.scope is not None for n in drawn)
    after = _downstream(order) if scoped and level != "op" else set()
    chosen = level
    if level == "auto":
        chosen = "op"
        # Without scopes, neuron and layer levels have nothing to fold by: go to blocks of
        # consecutive nodes (in topological order) straight away.
        for lv in ("op", "neuron", "layer", "block") if scoped else ("op", "block"):
            chosen = lv
            pool = drawn if lv in ("op", "block") else [n for n in drawn if n not in fed]
            if lv == "block" or _count(pool, index, lv, max_nodes, after) <= max_nodes:
                break
        if chosen != "op":
            banners.append(f"{len(drawn)} nodes exceed max_nodes={max_nodes}: collapsed to "
                           f"{chosen} level (pass level='op' to see every node)")
    chunk = max(1, math.ceil(len(drawn) / max(1, max_nodes // 2)))

    # Folded levels draw the network's inputs (constants inlined into w·x) as input boxes, so
    # the edges into the first layer show how much gradient gets back through it: a saturated
    # first layer makes them fade. (At op level they stay written into their × nodes.) A box
    # stands for uses of constants, not for constant nodes: equal numbers share one node.
    uses: dict[tuple[Node, int], str] = {}
    boxes: dict[str, list[Any]] = {}
    if chosen in ("neuron", "layer"):
        drawn = [n for n in drawn if n not in fed]
        uses, boxes = _input_uses(drawn, inline | fed, chosen)

    keys: dict[Node, str] = {}
    group_ids: dict[str, str] = {}
    for n in drawn:
        k = None if chosen == "op" else _group_key(chosen, n, index[n], chunk, after)
        if k is None:
            keys[n] = _node_id(index[n], n)
        else:
            gid = group_ids.get(k)
            if gid is None:
                gid = group_ids[k] = f"g_{_safe_id(k)}"
            keys[n] = gid

    # Edge messages first: g_ref (the largest message) scales every edge and heat strip.
    raw_edges: list[tuple[str, str, Any, Node, int]] = []
    for c in drawn:
        if c.op is None:
            continue
        h = keys[c]
        has_grad = c.grad is not None
        for i, p in enumerate(c.parents):
            box = uses.get((c, i)) if uses else None
            if box is not None:  # the gradient with respect to this use of an input
                g = vjp_message(c, i) if has_grad else None
                raw_edges.append((f"g_{_safe_id(box)}", h, g, c, i))
                continue
            t = keys.get(p)  # only drawn nodes have keys
            if t is None:  # an inlined constant, or outside the focus
                continue
            if t == h:
                continue  # folded inside one group: never computed
            g = None
            # Backward sends nothing to constants. An input gets no gradient either, but its
            # edge still carries the message (the gradient w.r.t. the input): it shows how much
            # gets back through the first layer.
            if has_grad and (p.requires_grad or (
                    p.op is None and _role(p, root, roles) == "input")):
                g = vjp_message(c, i)
            raw_edges.append((t, h, g, c, i))
    mags = [_mean_abs(g) for *_, g, _c, _i in raw_edges if g is not None]
    finite = [m for m in mags if math.isfinite(m)]
    if g_ref == "max":
        gref = max(finite) if finite and max(finite) > 0 else 1.0
    else:
        gref = float(g_ref)

    names = {gid: k for k, gid in group_ids.items()}
    ctx = Context(root, roles, inline, th, ref, gref, o.heat, o.compact, acts, activity)
    vnodes, flags = _make_nodes(drawn, keys, chosen, names, ctx)
    counts: dict[str, int] = {}
    for box in uses.values():
        counts[box] = counts.get(box, 0) + 1
    vnodes[:0] = [_input_node(f"g_{_safe_id(box)}", box.split(" ", 1)[1], counts[box], values)
                  for box, values in boxes.items()]
    edges = _make_edges(raw_edges, chosen, gref, th, o.edge_labels, vnodes, backward_done)
    clusters = _make_clusters(vnodes, chosen)
    lines = layer_summary(drawn, th, ref, activity, acts)
    summary = [line for line in lines if line.text]
    for cl in clusters:  # a layer's box says what is wrong with it
        for line in summary:
            if line.layer == cl.scope:
                cl.label = line.text
                cl.flagged = line.flagged > 0
    if target is not None:
        banners.append(f"focus: {target.label or keys[target]} with its ancestors and "
                       "descendants")
    lg = _legend(summary, gref, th, ref, activity is not None) if o.legend else None
    opts = {"max_nodes": max_nodes, "g_ref": g_ref, "compact": o.compact, "sign": o.sign,
            "edge_labels": o.edge_labels, "thresholds": th}
    every = Units()  # every activation drawn, keyed as the nodes key them, for off_units
    for n in drawn:
        if n in acts:
            every.add(acts[n], keys[n])
    return ViewData(vnodes, edges, clusters, flags, lg, banners, chosen, level, backward_done,
                    len(order), opts, every.stats(th).off_units,
                    {line.layer: line.health for line in lines if line.health is not None})


def _data_leaves(order: list[Node], root: Node) -> set[Node]:
    """Unnamed, unscoped trainable leaves used only as the x of a layer's w·x: numbers the user
    wrapped in a Node (micrograd's inputs), which the folded levels draw as input boxes."""
    users: dict[Node, list[Node]] = {}
    for c in order:
        for p in c.parents:
            if p.op is None and p.requires_grad and p.name is None and p.scope is None:
                users.setdefault(p, []).append(c)

    def feeds(c: Node, p: Node) -> bool:
        return (c.op in ("mul", "matmul", "linear") and layer_of(c.scope) is not None
                and any(w is not p and w.op is None and w.requires_grad and w.scope is not None
                        for w in c.parents))

    return {p for p, cs in users.items() if p is not root and all(feeds(c, p) for c in cs)}


def _input_uses(drawn: list[Node], inline: set[Node],
                level: str) -> tuple[dict[tuple[Node, int], str], dict[str, list[Any]]]:
    """Where inlined constants enter a layer through its weights (the x of w·x): (op, operand
    index) -> the key of its input box, "input x0", "input x1", ... after the weight names of
    scalar neurons (w0, w1, ...); one box "input x" for a tensor layer, at layer level, or past
    16 features. Also each box's values, one per sample (the uses its first weight meets)."""
    found: dict[tuple[Node, int], tuple[str, Node]] = {}
    for c in drawn:  # w·x in a scalar neuron, x @ W or the fused linear(x, W, b) in a layer
        if c.op not in ("mul", "matmul", "linear") or layer_of(c.scope) is None:
            continue
        weights = [w for w in c.parents if w.op is None and w.requires_grad and w.scope]
        if not weights:
            continue
        m = _WEIGHT.match(weights[0].name or "")
        for i, p in enumerate(c.parents):
            if p in inline:
                found[(c, i)] = (f"x{m.group(1)}" if m and p.is_scalar else "x", weights[0])
    one = level == "layer" or len({k for k, _ in found.values()}) > _LIST_MAX
    first: dict[str, Node] = {}
    uses: dict[tuple[Node, int], str] = {}
    values: dict[str, list[Any]] = {}
    for (c, i), (k, w) in found.items():
        box = "input x" if one else f"input {k}"
        uses[(c, i)] = box
        if first.setdefault(k, w) is w:  # the other weights meet the same samples again
            values.setdefault(box, []).append(c.parents[i].data)
    return uses, dict(sorted(values.items(), key=lambda kv: _natural(kv[0])))


def _count(drawn: list[Node], index: dict[Node, int], level: str, max_nodes: int,
           after: set[Node]) -> int:
    if level == "op":
        return len(drawn)
    seen: set[Any] = set()
    for n in drawn:
        k = _group_key(level, n, index[n], 1, after)
        seen.add(n if k is None else k)
        if len(seen) > max_nodes:
            break
    return len(seen)




def _make_clusters(vnodes: list[ViewNode], level: str) -> list[Cluster]:
    if level in ("layer", "block"):
        return []
    clusters: dict[str, Cluster] = {}

    def ensure(scope: str) -> Cluster:
        # Create the scope's cluster and its ancestors, outermost first (no recursion).
        parts = scope.split(".")
        parent = None
        for k in range(1, len(parts) + 1):
            path = ".".join(parts[:k])
            if path not in clusters:
                clusters[path] = Cluster(f"cluster_{_safe_id(path)}", path, path, parent)
            parent = clusters[path].id
        return clusters[scope]

    for vn in vnodes:
        scope = vn.scope
        if vn.kind == "group":  # a folded neuron sits in its layer's box, not in its own
            scope = scope.rsplit(".", 1)[0] if scope and "." in scope else None
        if scope:
            cl = ensure(scope)
            cl.nodes.append(vn.id)
            vn.cluster = cl.id
    return list(clusters.values())
