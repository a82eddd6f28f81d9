"""The plain view data of a diagram: nodes, edges, clusters, flags and legend, without graphviz.

build(root, ...) is a pure function of the graph and the options. It reads the graph through
tinygraph.walk (one iterative traversal) and tinygraph.vjp_message (the gradient each edge
carries), so the same graph always gives the same data, with ids made of topological index and
name. Rendering (render.py) only turns this data into graphviz; a recorder can keep the structure
(ids, clusters) of one build and restyle it from later builds of the same graph.
"""

from __future__ import annotations

import functools
import gc
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import numpy as np

from .._check import check_bool, check_float, check_int
from ..diagnostics import (
    ACTIVATION_OPS,
    squash_derivative,
    squash_limits,
    unit_columns,
    unit_dead,
    unit_saturated,
)
from ..engine import Node, vjp_message, walk
from ..errors import InputError, NotFound
from ..nn import layer_of
from ..thresholds import DEFAULT, Thresholds
from . import style as F

LEVELS = ("auto", "op", "neuron", "layer")
_SYMBOL = {"sigmoid": "σ", "tanh": "tanh", "relu": "ReLU", "leaky_relu": "LReLU"}
_PARAM_NAME = re.compile(r"^(w|W|b|a)\d*(_\d+)?$|^(weight|bias)")
_INFIX = {"add", "sub", "mul", "div", "matmul"}
_SUPER = {2.0: "²", 3.0: "³"}
_HOLE = "□"  # an operand drawn as its own node, in an op expression like "□ × 2"
_WEIGHT = re.compile(r"^w(\d+)(_\d+)?$")  # a scalar neuron's weight w{i}: it multiplies input i
_LIST_MAX = 16  # tooltips list up to this many values in full, else mean, min and max


# ---------------------------------------------------------------------------------------------
# The data
# ---------------------------------------------------------------------------------------------


@dataclass
class Flag:
    """One finding: which node, what kind, the measured value and the threshold it crossed."""

    node: str  # view node id
    label: str  # the name shown on the node
    kind: str  # one of format.FLAG_KINDS
    value: float
    threshold: float
    text: str
    units: tuple[int, int] | None = None  # (flagged units, units) for activations

    def as_dict(self) -> dict[str, Any]:
        """The flag as plain data."""
        return {"node": self.node, "label": self.label, "kind": self.kind, "value": self.value,
                "threshold": self.threshold, "text": self.text, "units": self.units}


@dataclass
class ViewNode:
    """One box of the diagram; what it shows is already formatted."""

    id: str
    header: str
    role: str  # one of format.ROLES
    kind: str = "value"  # "value", "op" (a separate op node), "group" (folded neuron/layer/block)
    sub: str | None = None  # the op expression under a named header, e.g. "σ(·)"
    rows: list[tuple[str, str]] = field(default_factory=list)
    heat: list[tuple[str, list[list[str]]]] = field(default_factory=list)  # (row name, colours)
    colors: dict[str, str] = field(default_factory=dict)  # row name -> background of its value
    flags: list[Flag] = field(default_factory=list)
    tooltip: str = ""
    cluster: str | None = None  # id of the innermost cluster holding the node
    scope: str | None = None
    op: str | None = None
    shape: tuple[int, ...] = ()
    data: float | None = None  # scalars: the value; tensors: mean
    grad: float | None = None  # scalars: the gradient; tensors: mean |grad|
    members: int = 1  # graph nodes folded into this box

    @property
    def classes(self) -> list[str]:
        """SVG classes: the role, then each flag kind."""
        return [self.role] + list(dict.fromkeys(f.kind for f in self.flags))


@dataclass
class ViewEdge:
    """The gradient message flowing back along parent -> child (drawn as tail -> head)."""

    id: str
    tail: str
    head: str
    message: float | None  # signed message for scalars (summed over folded edges), else None
    magnitude: float | None  # |g| (mean |g| for tensors); None before backward
    r: float  # position on the log scale, 0..1
    state: str  # "none" (no backward), "flow", "vanished", "zero", "nonfinite"
    label: str | None = None
    tooltip: str = ""

    @property
    def negative(self) -> bool:
        """Whether the (scalar) message is negative: drawn orange with the sign option."""
        return self.message is not None and self.message < 0


@dataclass
class Cluster:
    """A scope drawn as a box around its nodes; nested through parent."""

    id: str
    scope: str
    label: str
    parent: str | None
    nodes: list[str] = field(default_factory=list)


@dataclass
class Legend:
    """Edge samples on the log scale, flag swatches with thresholds, and the diagnosis."""

    g_ref: float | None
    decades: float
    samples: list[tuple[float, float, str, float]]  # (fraction of g_ref, r, colour, width)
    flags: list[tuple[str, str, str]]  # (kind, glyph and word, threshold text)
    diagnosis: str
    lines: list[str]


@dataclass
class ViewData:
    """Everything a renderer needs, as plain data."""

    nodes: list[ViewNode]
    edges: list[ViewEdge]
    clusters: list[Cluster]
    flags: list[Flag]
    legend: Legend | None
    banners: list[str]
    level: str
    requested_level: str
    backward_done: bool
    graph_nodes: int  # nodes in the graph that were considered (after focus)
    options: dict[str, Any]
    off_units: list[Any] = field(default_factory=list)  # ReLU units off (z <= 0) on every sample

    def node(self, key: str) -> ViewNode:
        """A node by id or by header (its name)."""
        for n in self.nodes:
            if n.id == key:
                return n
        for n in self.nodes:
            if n.header == key:
                return n
        raise NotFound(f"view: no node {key!r}")

    def report(self) -> str:
        """The flags as text, one per line, with the diagnosis."""
        lines = list(self.banners)
        if self.legend is not None and self.legend.lines:
            lines += self.legend.lines
        if not self.flags:
            lines.append("no flags: no saturated, dead, vanishing, exploding or non-finite nodes")
        for f in self.flags:
            lines.append(f"{f.label}: {F.FLAG_STYLE[f.kind][0]} {f.kind}: {f.text}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _mean_abs(d: Any) -> float:
    if d is None:
        return math.nan
    if type(d) is float:
        return abs(d)
    with np.errstate(all="ignore"):
        return float(np.mean(np.abs(d))) if d.size else 0.0


def _finite(d: Any) -> bool:
    if type(d) is float:
        return math.isfinite(d)
    return bool(np.isfinite(d).all())


def _count_nonfinite(d: Any) -> int:
    if d is None:
        return 0
    if type(d) is float:
        return 0 if math.isfinite(d) else 1
    return int(d.size - np.count_nonzero(np.isfinite(d)))


_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


@functools.lru_cache(maxsize=4096)
def _safe_id(text: str) -> str:
    # Cached: a big graph asks this for the same few op names on every node.
    return _UNSAFE.sub("_", text)


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


def _plug(v: float) -> str:
    """A number plugged into a formula: 5 significant figures, 2 when tiny."""
    return f"{v:.2g}" if v != 0 and abs(v) < 1e-3 else f"{v:.5g}"


def _role(n: Node, root: Node, roles: dict[str, str]) -> str:
    lab = n.label
    if lab is not None and lab in roles:
        return roles[lab]
    if (n is root and n.is_scalar) or n.name == "loss":
        return "loss"
    if n.op is not None:
        return "intermediate"
    if not n.requires_grad:
        return "input" if n.name is not None else "constant"
    if n.scope is not None or _PARAM_NAME.match(n.name or ""):
        return "parameter"
    return "input"


# ---------------------------------------------------------------------------------------------
# Activations: units, local derivatives, saturated and dead
# ---------------------------------------------------------------------------------------------


def _derivative(a: Node) -> Any:
    """f'(z) of an activation node, elementwise, from its output and input."""
    s = a.data
    z = a.parents[0].data
    op = a.op
    if op in ("sigmoid", "tanh"):
        return squash_derivative(op, s)
    if op == "relu":
        return (z > 0) * 1.0
    alpha = (a.attrs or {}).get("alpha", 0.01)
    return np.where(np.asarray(z) > 0, 1.0, alpha) if type(z) is not float else (
        1.0 if z > 0 else alpha)


@dataclass(frozen=True)
class Activity:
    """A recorder's memory of its earlier snapshots: how many there were and, per ReLU unit, in
    how many consecutive ones up to the latest it was off (z <= 0) on every sample (a unit
    absent from `off` was on in the latest).

    In a recording a ReLU off now is dead when that makes n consecutive off snapshots
    (Thresholds.dead_snapshots), or when it was off in every one so far and fewer than n were
    taken; otherwise it reads "inactive". So a one-sample frame does not flicker dead, yet a
    unit that dies partway through training is called dead n snapshots later.
    """

    snapshots: int = 0
    off: Mapping[Any, int] = field(default_factory=dict)

    def dead_if_off(self, unit: Any, n: int) -> bool:
        """Whether unit, off in the snapshot being taken, is dead: off in each of the n - 1
        snapshots before it, or in every earlier one when fewer were taken (true at the first)."""
        return self.off.get(unit, 0) >= min(n - 1, self.snapshots)

    def after(self, off_now: Iterable[Any]) -> Activity:
        """The memory once one more snapshot, with these units off, is recorded."""
        # A unit on in this snapshot starts its streak again: it is simply left out.
        return Activity(self.snapshots + 1, {u: self.off.get(u, 0) + 1 for u in set(off_now)})


@dataclass
class _Units:
    """Activation units seen in a set of nodes: one per scalar neuron, one per tensor column.

    A scalar unit is keyed by its neuron's scope, a tensor unit by (activation name, column):
    the same keys in every view of the same graph, which a recorder's Activity relies on.
    """

    ops: list[str] = field(default_factory=list)
    z: dict[Any, list[np.ndarray]] = field(default_factory=dict)
    d: dict[Any, list[np.ndarray]] = field(default_factory=dict)
    g: dict[Any, list[np.ndarray]] = field(default_factory=dict)
    kind: dict[Any, str] = field(default_factory=dict)

    def add(self, a: Node, key: str) -> None:
        zn = a.parents[0]
        d = _derivative(a)
        if a.op not in self.ops:
            self.ops.append(a.op)
        zg = zn.grad
        if a.is_scalar:
            unit = a.scope or key
            cols = [(unit, np.array([zn.data]), np.array([d]),
                     None if zg is None else np.array([abs(zg)]))]
        else:
            z2 = unit_columns(zn.data)  # z has the activation's shape (elementwise op)
            d2 = np.asarray(d).reshape(z2.shape)
            g2 = None if zg is None else np.abs(np.broadcast_to(zg, zn.shape)).reshape(z2.shape)
            cols = [((a.label or key, j), z2[:, j], d2[:, j], None if g2 is None else g2[:, j])
                    for j in range(z2.shape[1])]
        for unit, z, dd, g in cols:
            self.z.setdefault(unit, []).append(z)
            self.d.setdefault(unit, []).append(dd)
            self.kind[unit] = a.op
            if g is not None:
                self.g.setdefault(unit, []).append(g)

    def summary(self, th: Thresholds, activity: Activity | None = None) -> dict[str, Any]:
        """Counts of dead / inactive / saturated / saturating units and the fraction of flagged
        values. The unit rules are diagnostics.unit_dead and unit_saturated; with a recorder's
        activity, a ReLU off now but not for th.dead_snapshots snapshots in a row (nor in every
        one so far, when fewer were taken) is inactive, not dead."""
        units = list(self.z)
        dead = inactive = sat = warn = 0
        flagged = near = total = 0
        off_units = []
        dvals: list[np.ndarray] = []
        per_unit = []
        for u in units:
            op = self.kind[u]
            z = np.concatenate(self.z[u])
            d = np.concatenate(self.d[u])
            dvals.append(d)
            total += z.size
            state = ""
            if op in ("relu", "leaky_relu"):
                off = z <= 0
                flagged += int(off.sum())
                if op == "relu" and unit_dead(off):
                    off_units.append(u)
                    if activity is None or activity.dead_if_off(u, th.dead_snapshots):
                        dead += 1
                        state = "dead"
                    else:
                        inactive += 1
                        state = "inactive"
            else:
                lim, wl = squash_limits(op, th)
                flat = d < lim
                flagged += int(flat.sum())
                near += int((d < wl).sum())
                if unit_saturated(flat, th):
                    sat += 1
                    state = "saturated"
                elif unit_saturated(d < wl, th):
                    warn += 1
                    state = "saturating"
            g = self.g.get(u)
            per_unit.append((u, state, float(np.concatenate(g).mean()) if g else math.nan))
        dall = np.concatenate(dvals) if dvals else np.zeros(0)
        return {"units": len(units), "dead": dead, "inactive": inactive, "saturated": sat,
                "saturating": warn, "off_units": off_units, "values": total,
                "near_fraction": near / total if total else 0.0,
                "flagged_fraction": flagged / total if total else 0.0,
                "mean_d": float(dall.mean()) if dall.size else math.nan,
                "per_unit": per_unit, "samples": max((sum(a.size for a in v)
                                                      for v in self.z.values()), default=0)}


def _act_flags(vid: str, label: str, units: _Units, th: Thresholds,
               activity: Activity | None = None) -> tuple[list[Flag], dict]:
    s = units.summary(th, activity)
    flags: list[Flag] = []
    n = s["units"]
    sym = "/".join(_SYMBOL[o] for o in units.ops)
    squash = [o for o in units.ops if o in ("sigmoid", "tanh")]
    lim, wl = squash_limits("sigmoid" if "sigmoid" in squash else "tanh", th)
    plural = "unit" if n == 1 else "units"
    mean = F.fmt(s["mean_d"], 2)

    def why(fraction: float, word: str, limit: float) -> str:
        # On a batch a unit counts when most of its activations do (Thresholds.saturated_share),
        # so the text gives that share; the mean f'(z) may then sit above the limit.
        if s["values"] == 1:
            return f": f'(z) = {mean} < {limit:g}"
        return f" ({fraction:.0%} of activations {word}: f'(z) < {limit:g}); mean f'(z) = {mean}"

    if s["saturated"]:
        flags.append(Flag(vid, label, "saturated", s["mean_d"], lim,
                          f"{s['saturated']}/{n} {sym} {plural} saturated"
                          + why(s["flagged_fraction"], "saturated", lim), (s["saturated"], n)))
    elif s["saturating"]:
        flags.append(Flag(vid, label, "saturating", s["mean_d"], wl,
                          f"{s['saturating']}/{n} {sym} {plural} near saturation"
                          + why(s["near_fraction"], "near saturation", wl),
                          (s["saturating"], n)))
    if s["dead"]:
        k = s["samples"]
        steps = "" if activity is None else (
            f" at each of the {activity.snapshots + 1} recorded steps"
            if activity.snapshots < th.dead_snapshots
            else f" at each of the last {th.dead_snapshots} recorded steps")
        flags.append(Flag(vid, label, "dead", s["dead"] / n, 0.0,
                          f"{s['dead']}/{n} ReLU {plural} dead: z ≤ 0 on every sample "
                          f"({k} seen){steps}, so no gradient passes", (s["dead"], n)))
    if s["inactive"]:
        k = s["inactive"]
        flags.append(Flag(vid, label, "inactive", k / n, 0.0,
                          f"{k}/{n} ReLU {'unit' if k == 1 else 'units'} inactive: z ≤ 0 on every "
                          "sample of this step, but not of each of the last "
                          f"{th.dead_snapshots} recorded steps, so not dead",
                          (k, n)))
    return flags, s


def _grad_flags(vid: str, label: str, data: Any, grad: Any, ref: float | None,
                th: Thresholds) -> list[Flag]:
    flags = []
    bad = _count_nonfinite(data) + _count_nonfinite(grad)
    if bad:
        where = "data" if _count_nonfinite(data) else "grad"
        flags.append(Flag(vid, label, "nonfinite", float(bad), 0.0,
                          f"{bad} non-finite value(s) (NaN/Inf) in {where}"))
        return flags
    if grad is None or ref is None:
        return flags
    g = _mean_abs(grad)
    if g > th.exploding:
        flags.append(Flag(vid, label, "exploding", g, th.exploding,
                          f"mean |grad| = {F.fmt(g)} > {th.exploding:g}"))
    elif ref > 0 and 0 < g < th.vanishing * ref:
        # Exactly zero is not "vanishing": it comes from a dead unit or a zero input, which
        # their own flags and the dotted edges already show.
        flags.append(Flag(vid, label, "vanishing", g / ref, th.vanishing,
                          f"mean |grad| = {F.fmt(g)} is {F.fmt(g / ref, 2)} of |dL/dL| "
                          f"(< {th.vanishing:g})"))
    return flags


# ---------------------------------------------------------------------------------------------
# Text of a node: expression, rows, tooltip
# ---------------------------------------------------------------------------------------------


def _const_text(p: Node) -> str:
    return F.fmt(p.data) if p.is_scalar else f"const{p.shape}"


def _expr(n: Node, inline: set[Node]) -> str:
    """The op as a maths expression; drawn operands are '□', inlined constants their value."""
    prim = n.primitive
    sym = prim.symbol
    op = prim.name
    ps = n.parents
    args = [_const_text(p) if p in inline else _HOLE for p in ps]
    attrs = n.attrs
    extra = ", ".join(f"{k}={v}" for k, v in attrs.items()
                      if k in ("axis", "alpha", "lo", "hi") and v is not None) if attrs else ""
    if op == "pow" and len(ps) == 2 and ps[1] in inline and ps[1].is_scalar:
        e = float(ps[1].data)
        return f"{args[0]}{_SUPER[e]}" if e in _SUPER else f"{args[0]} ^ {args[1]}"
    if len(ps) == 2 and (op in _INFIX or len(sym) == 1):
        if args[0] == _HOLE and args[1] == _HOLE:
            return sym
        return f"{args[0]} {sym} {args[1]}"
    if len(ps) == 1 and args[0] == _HOLE:
        return f"{sym}({extra})" if extra else sym
    return f"{sym}({', '.join(args + ([extra] if extra else []))})"


def _stats(d: Any) -> tuple[float, float, float, float]:
    a = np.asarray(d, dtype=np.float64)
    if a.size == 0:  # a (0, 3) tensor has no statistics: shown as nan, not an error
        return math.nan, math.nan, math.nan, math.nan
    with np.errstate(all="ignore"):
        return float(a.mean()), float(a.std()), float(a.min()), float(a.max())


def _tensor_rows(n: Node) -> list[tuple[str, str]]:
    mu, sd, lo, hi = _stats(n.data)
    rows = [("data", f"μ {F.fmt(mu)}  σ {F.fmt(sd)}  [{F.fmt(lo)}, {F.fmt(hi)}]")]
    if n.grad is None:
        rows.append(("grad", "—"))
    else:
        rows.append(("grad", f"mean|·| {F.fmt(_mean_abs(n.grad))}  max|·| "
                             f"{F.fmt(float(np.max(np.abs(n.grad))) if n.grad.size else 0.0)}"))
    return rows


def _local_derivative(n: Node, inline: set[Node]) -> list[str]:
    """The local derivative with numbers plugged in (scalars); a summary for tensors."""
    op = n.op
    if op in ACTIVATION_OPS:
        z = n.parents[0].data
        d = _derivative(n)
        if not n.is_scalar:
            dd = np.asarray(d)
            name = {"sigmoid": "σ'(z) = s(1-s)", "tanh": "tanh'(z) = 1-t²",
                    "relu": "ReLU'(z) = [z > 0]", "leaky_relu": "LReLU'(z) = 1 or α"}[op]
            return [f"{name}: mean {F.fmt(float(dd.mean()))}, min {F.fmt(float(dd.min()))}, "
                    f"max {F.fmt(float(dd.max()))}"]
        s = n.data
        if op == "sigmoid":
            return [f"σ'(z) = s(1-s) = {_plug(s)}·{_plug(1 - s)} = {F.fmt(d, 2)}"]
        if op == "tanh":
            return [f"tanh'(z) = 1-t² = 1-{_plug(s)}² = {F.fmt(d, 2)}"]
        if op == "relu":
            return [f"ReLU'(z) = [z > 0] = [{_plug(z)} > 0] = {F.fmt(d)}"]
        return [f"LReLU'(z) = 1 if z > 0 else α = {F.fmt(d)} (z = {_plug(z)})"]
    if op is None or type(n.data) is not float:
        return []
    out = []
    name = n.name or "out"
    for i, p in enumerate(n.parents):
        if p in inline or type(p.data) is not float:
            continue
        # The derivative alone (g = 1), not the edge's message: that one is times n.grad, and
        # dividing it back out would not round to the same digits.
        local = vjp_message(n, i, 1.0)  # silences numpy's warnings itself
        who = p.label or f"input {i + 1} ({p.op or 'leaf'})"
        out.append(f"∂{name}/∂{who} = {_plug(local)}")
    return out


def _heat(n: Node, g_ref: float, decades: float) -> list[tuple[str, list[list[str]]]]:
    if n.size == 0:  # nothing to colour
        return []
    cells = F.downsample(n.data)
    vmax = float(np.nanmax(np.abs(cells))) if cells.size else 0.0
    out = [("data", [[F.data_color(v, vmax) for v in row] for row in cells])]
    if n.grad is not None:
        gc = F.downsample(np.abs(n.grad))
        out.append(("|grad|", [[F.grad_color(v, g_ref, decades) for v in row] for row in gc]))
    return out


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


@_without_gc
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
    check_int("draw", "max_nodes", max_nodes, lo=1)
    for flag, v in (("compact", compact), ("inline_constants", inline_constants),
                    ("edge_labels", edge_labels), ("sign", sign), ("legend", legend),
                    ("heat", heat)):
        check_bool("draw", flag, v)
    th = DEFAULT if thresholds is None else thresholds
    if not isinstance(th, Thresholds):
        raise InputError(f"draw: thresholds must be a tinygraph.thresholds.Thresholds, got "
                         f"{type(th).__name__}")
    if not (isinstance(g_ref, str) and g_ref == "max"):
        if isinstance(g_ref, str):
            raise InputError(f"draw: g_ref must be 'max' or a positive number, got {g_ref!r}")
        g_ref = check_float("draw", "g_ref", g_ref, lo=0.0, lo_open=True)
    if roles is not None and not isinstance(roles, Mapping):
        raise InputError(f"draw: roles must be a dict of name -> role, got {roles!r:.60}")
    roles = dict(roles or {})
    for lab, r in roles.items():
        if r not in F.ROLES:
            raise InputError(f"draw: role {r!r} for {lab!r} is not one of {', '.join(F.ROLES)}")

    order, target = _select(root, focus)
    index = {n: i for i, n in enumerate(order)}
    inline = {n for n in order if inline_constants and n.op is None and not n.requires_grad
              and n.name is None and n is not root}
    drawn = [n for n in order if n not in inline]
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
            if lv == "block" or _count(drawn, index, lv, max_nodes, after) <= max_nodes:
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
        uses, boxes = _input_uses(drawn, inline, chosen)

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
    vnodes, flags = _make_nodes(drawn, keys, chosen, root, roles, inline, th, ref, gref,
                                heat, compact, names, activity)
    counts: dict[str, int] = {}
    for box in uses.values():
        counts[box] = counts.get(box, 0) + 1
    vnodes[:0] = [_input_node(f"g_{_safe_id(box)}", box.split(" ", 1)[1], counts[box], values)
                  for box, values in boxes.items()]
    edges = _make_edges(raw_edges, chosen, gref, th, edge_labels, vnodes, backward_done)
    clusters = _make_clusters(vnodes, chosen)
    summary = layer_summary(drawn, th, ref, activity)
    for cl in clusters:  # a layer's box says what is wrong with it
        for line in summary:
            if line.layer == cl.scope:
                cl.label = line.text
    if target is not None:
        banners.append(f"focus: {target.label or keys[target]} with its ancestors and "
                       "descendants")
    lg = _legend(summary, gref, th, ref, activity is not None) if legend else None
    opts = {"max_nodes": max_nodes, "g_ref": g_ref, "compact": compact, "sign": sign,
            "edge_labels": edge_labels, "thresholds": th}
    every = _Units()  # every activation drawn, keyed as the nodes key them, for off_units
    for n in drawn:
        if n.op in ACTIVATION_OPS:
            every.add(n, keys[n])
    return ViewData(vnodes, edges, clusters, flags, lg, banners, chosen, level, backward_done,
                    len(order), opts, every.summary(th)["off_units"])


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


def _make_nodes(drawn: list[Node], keys: dict[Node, str], level: str, root: Node,
                roles: dict[str, str], inline: set[Node], th: Thresholds, ref: float | None,
                gref: float, heat: bool, compact: bool, names: dict[str, str],
                activity: Activity | None = None) -> tuple[list[ViewNode], list[Flag]]:
    groups: dict[str, list[Node]] = {}
    for n in drawn:
        groups.setdefault(keys[n], []).append(n)
    out: list[ViewNode] = []
    flags: list[Flag] = []
    for vid, members in groups.items():
        if len(members) == 1 and not vid.startswith("g_"):
            vn = _value_node(vid, members[0], root, roles, inline, th, ref, gref, heat,
                             compact or level != "op", activity)
        else:
            vn = _group_node(vid, names[vid], members, level, root, th, ref, gref, activity)
        out.append(vn)
        flags.extend(vn.flags)
        if level == "op" and not compact and members[0].op is not None:
            n = members[0]
            out.append(ViewNode(f"{vid}_op", _expr(n, inline), "intermediate", kind="op",
                                cluster=None, scope=n.scope, op=n.op,
                                tooltip=f"{n.op} ({n.primitive.symbol})"))
    sev = {k: v[5] for k, v in F.FLAG_STYLE.items()}
    flags.sort(key=lambda f: -sev[f.kind])
    return out, flags


def _value_node(vid: str, n: Node, root: Node, roles: dict[str, str], inline: set[Node],
                th: Thresholds, ref: float | None, gref: float, heat: bool,
                compact: bool = True, activity: Activity | None = None) -> ViewNode:
    # Node's properties are read once into locals: this runs once per node of graphs of 10^5.
    op, lab, d, g = n.op, n.label, n.data, n.grad
    scalar = type(d) is float
    role = _role(n, root, roles)
    # In compact mode the op is folded into its output box; otherwise its own node shows it.
    expr = _expr(n, inline) if op is not None and compact else None
    header = lab or expr or ("const" if role == "constant" else vid.split("_", 1)[0])
    sub = expr if lab and expr else None
    label = lab or vid
    rows: list[tuple[str, str]]
    tip = [f"{label}  ({role}{', op ' + op if op else ''})"]
    flags: list[Flag] = []
    if scalar:
        rows = [("data", F.fmt(d)), ("grad", F.fmt(g))]
        tip += [f"data = {F.full(d)}", f"grad = {F.full(g)}"]
    else:
        rows = [("shape", "×".join(map(str, n.shape)) + f"  {n.dtype}")]
        rows += _tensor_rows(n)
        tip += [f"shape {n.shape}, {n.dtype}", f"data: mean {F.full(_stats(d)[0])}",
                f"grad: mean |·| {F.full(_mean_abs(g)) if g is not None else '—'}"]
    if op in ACTIVATION_OPS:
        units = _Units()
        units.add(n, vid)
        aflags, s = _act_flags(vid, label, units, th, activity)
        flags += aflags
        z = n.parents[0].data
        if scalar:
            rows.append(("z", F.fmt(z)))
            rows.append(("f'(z)", F.fmt(_derivative(n))))
        else:
            # z summarized as the data row is: its spread says how far into the tails it goes.
            mu, sd, lo, hi = _stats(z)
            rows.append(("z", f"μ {F.fmt(mu)}  σ {F.fmt(sd)}  [{F.fmt(lo)}, {F.fmt(hi)}]"))
            tip.append(f"z: mean {F.full(mu)}, min {F.full(lo)}, max {F.full(hi)}")
            rows.append(("f'(z)", f"mean {F.fmt(s['mean_d'])}"))
            what = "inactive" if op in ("relu", "leaky_relu") else "saturated"
            rows.append((what, f"{s['flagged_fraction']:.0%} of elements"))
    if op is not None:  # a leaf has no local derivative
        tip += _local_derivative(n, inline)
    flags += _grad_flags(vid, label, d, g if n.requires_grad else None, ref, th)
    if flags:
        tip += [f"{F.FLAG_STYLE[f.kind][0]} {f.kind}: {f.text}" for f in flags]
    data = d if scalar else _stats(d)[0]
    grad = g if (g is None or scalar) else _mean_abs(g)
    return ViewNode(vid, header, role, sub=sub, rows=rows,
                    heat=_heat(n, gref, th.decades) if heat and not scalar else [],
                    flags=flags, tooltip="\n".join(tip), scope=n.scope, op=op,
                    shape=() if scalar else d.shape, data=data, grad=grad)


def _outputs(members: list[Node]) -> list[Node]:
    """The members a group hands on: its activation outputs, else those named like outputs."""
    for pick in (lambda m: m.name == "act", lambda m: m.op in ACTIVATION_OPS,
                 lambda m: m.name in ("z", "loss")):
        found = [m for m in members if pick(m)]
        if found:
            return found
    return [members[-1]]


def _series(name: str, parts: Iterable[Any]) -> str:
    """A tooltip line at full precision: the values (up to 16), else their mean, min and max."""
    arrs = [np.ravel(np.asarray(p, dtype=np.float64)) for p in parts]
    v = np.concatenate(arrs) if arrs else np.zeros(0)
    if v.size == 0:
        return f"{name} = —"
    if v.size == 1:
        return f"{name} = {F.full(v[0])}"
    if v.size <= _LIST_MAX:
        return f"{name} = [{', '.join(F.full(x) for x in v)}]"
    with np.errstate(all="ignore"):
        return (f"{name}: mean {F.full(v.mean())}, min {F.full(v.min())}, "
                f"max {F.full(v.max())} over {v.size} values")


def _input_node(vid: str, header: str, uses: int, values: list[Any]) -> ViewNode:
    """One box for a network input at neuron or layer level (the x of w·x, over the samples)."""
    v = np.concatenate([np.ravel(np.asarray(x, dtype=np.float64)) for x in values])
    if all(np.ndim(x) == 0 for x in values):  # one number per sample
        rows = [("data", F.fmt(v[0]) if v.size == 1 else f"mean {F.fmt(v.mean())} over {v.size}")]
    else:  # a batch array, summarized as tensor nodes are
        mu, sd, lo, hi = _stats(v)
        rows = [("shape", " + ".join("×".join(map(str, np.shape(x))) for x in values)),
                ("data", f"μ {F.fmt(mu)}  σ {F.fmt(sd)}  [{F.fmt(lo)}, {F.fmt(hi)}]")]
    tip = [f"{header}  (input: {uses} uses folded)", _series(header, values),
           "its edges carry the gradient with respect to this input, w·dL/dz summed over the "
           "samples (not stored: an input needs no gradient)"]
    return ViewNode(vid, header, "input", kind="group", rows=rows, tooltip="\n".join(tip),
                    data=float(v.mean()) if v.size else None, members=uses)


def _group_node(vid: str, key: str, members: list[Node], level: str, root: Node,
                th: Thresholds, ref: float | None, gref: float,
                activity: Activity | None = None) -> ViewNode:
    """One box for a folded neuron, layer, block of nodes, or the unscoped ops around them."""
    first = members[0]
    has_loss = any(m is root or m.name == "loss" for m in members)
    name = "loss" if key == "(output)" and has_loss and root.name == "loss" else key
    outs = _outputs(members)
    acts = [m for m in members if m.op in ACTIVATION_OPS]
    role = "loss" if has_loss else (
        "parameter" if all(m.op is None and m.requires_grad for m in members) else
        "intermediate")
    rows: list[tuple[str, str]] = []
    flags: list[Flag] = []
    heat: list[tuple[str, list[list[str]]]] = []
    colors: dict[str, str] = {}
    tip = [f"{name}: {len(members)} graph nodes folded ({level} level)"]
    out_data = [m.data for m in outs]
    out_grad = [m.grad for m in outs if m.grad is not None]
    scalar_out = all(m.is_scalar for m in outs)
    if scalar_out:
        vals = np.array(out_data, dtype=np.float64)
        rows.append(("act" if acts else "out", F.fmt(vals.mean()) if len(vals) == 1 else
                     f"mean {F.fmt(vals.mean())} over {len(vals)}"))
    else:
        rows.append(("out", "  ".join(f"{m.name or m.op}{m.shape}" for m in outs[:2])))
    g_out = None
    if out_grad:
        g_out = float(np.mean([_mean_abs(g) for g in out_grad]))
        rows.append(("grad", F.fmt(g_out) if scalar_out and len(out_grad) == 1 else
                     f"mean|·| {F.fmt(g_out)}"))
    elif ref is None:
        rows.append(("grad", "—"))
    # The rows round and average; the tooltip gives every sample at full precision (or mean,
    # min and max over many).
    tip.append(_series("act" if acts else "out", out_data))
    if not acts:
        tip.append(_series("dL/dout", out_grad))
    s = None
    if acts:
        zns = [a.parents[0] for a in acts]
        tip += [_series("z", [z.data for z in zns]),
                _series("f'(z)", [_derivative(a) for a in acts]),
                _series("dL/dz", [z.grad for z in zns if z.grad is not None])]
        units = _Units()
        for a in acts:
            units.add(a, vid)
        aflags, s = _act_flags(vid, name, units, th, activity)
        flags += aflags
        zs = np.concatenate([np.ravel(a.parents[0].data) for a in acts])
        rows.append(("z", F.fmt(zs.mean()) if zs.size == 1 else f"mean {F.fmt(zs.mean())}"))
        rows.append(("f'(z)", F.fmt(s["mean_d"]) if zs.size == 1 else
                     f"mean {F.fmt(s['mean_d'])}"))
        zg = [a.parents[0].grad for a in acts if a.parents[0].grad is not None]
        if zg:
            # The gradient after the activation's derivative: where a saturated unit loses it.
            gz = float(np.mean([_mean_abs(g) for g in zg]))
            rows.append(("dL/dz", F.fmt(gz) if zs.size == 1 else f"mean|·| {F.fmt(gz)}"))
            colors["dL/dz"] = F.grad_color(gz, gref, th.decades)
        if level == "layer" or s["units"] > 1:
            rows.append(("units", f"{s['units']} {'/'.join(_SYMBOL[o] for o in units.ops)}"
                                  + (f", {s['dead']} dead" if s["dead"] else "")
                                  + (f", {s['inactive']} inactive" if s["inactive"] else "")
                                  + (f", {s['saturated']} saturated" if s["saturated"] else "")))
            heat.append(("|dL/dz| per unit",
                         [[F.grad_color(g, gref, th.decades) if math.isfinite(g) else "#FFFFFF"
                           for _, _, g in s["per_unit"][:64]]]))
        for f in aflags:
            tip.append(f"{F.FLAG_STYLE[f.kind][0]} {f.kind}: {f.text}")
    # Gradient flags read the gradient flowing into the group: its pre-activations if it has
    # them, else its outputs (the vanishing a learner asks about is dL/dz of the layer).
    inside = set(members)
    zs_nodes = [a.parents[0] for a in acts if a.parents[0] in inside]
    probe = zs_nodes or outs
    grads = [m.grad for m in probe if m.grad is not None and m.requires_grad]
    bad = sum(_count_nonfinite(m.data) + _count_nonfinite(m.grad) for m in members)
    if bad:
        flags.append(Flag(vid, name, "nonfinite", float(bad), 0.0,
                          f"{bad} non-finite value(s) (NaN/Inf) among {len(members)} nodes"))
    elif grads and ref is not None:
        g = float(np.mean([_mean_abs(x) for x in grads]))
        flags += _grad_flags(vid, name, 0.0, g, ref, th)
    tip += [f"{F.FLAG_STYLE[f.kind][0]} {f.kind}: {f.text}" for f in flags
            if f.kind not in ("saturated", "saturating", "dead", "inactive")]
    if scalar_out and len(outs) == 1 and acts:
        tip += _local_derivative(outs[0], set())
    vals = [m.data if m.is_scalar else _stats(m.data)[0] for m in outs]
    scope = first.scope if level == "neuron" else None
    return ViewNode(vid, name, role, kind="group", rows=rows, heat=heat, colors=colors,
                    flags=flags,
                    tooltip="\n".join(tip), scope=scope, op=None,
                    data=float(np.mean(vals)), grad=g_out, members=len(members))


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
        bad = not math.isfinite(mag) or not all(_finite(g) for g in gs)
    if bad:
        state, r = "nonfinite", 1.0
    elif mag == 0:
        state, r = "zero", 0.0
    elif mag < gref * 10.0 ** (-th.decades):
        state, r = "vanished", 0.0
    else:
        state, r = "flow", F.magnitude(mag, gref, th.decades)
    what = "g" if msg is not None else "mean |g|"
    folded = f" (sum of {n} edges)" if n > 1 else ""
    tip = f"{who}: {what} = {F.full(msg if msg is not None else mag)}{folded}"
    label = F.fmt(msg if msg is not None else mag, 2) if labels else None
    return ViewEdge(eid, tail, head, msg, mag, r, state, label, tip)


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


# ---------------------------------------------------------------------------------------------
# Legend and diagnosis
# ---------------------------------------------------------------------------------------------


@dataclass
class LayerLine:
    """One layer's line of the diagnosis."""

    layer: str
    text: str
    flagged: int  # saturated + dead units
    ratio: float | None  # mean |dL/dz| into the layer over |dL/dL|


def _natural(name: str) -> tuple[str, int]:
    m = re.match(r"^(.*?)(\d+)$", name)
    return (m.group(1), int(m.group(2))) if m else (name, -1)


def layer_summary(drawn: Iterable[Node], th: Thresholds, ref: float | None,
                  activity: Activity | None = None) -> list[LayerLine]:
    """One line per layer: its flagged units and the gradient flowing into it, L1 first."""
    layers: dict[str, list[Node]] = {}
    for n in drawn:
        lay = layer_of(n.scope)
        if lay is not None:
            layers.setdefault(lay, []).append(n)
    out = []
    for lay, members in sorted(layers.items(), key=lambda kv: _natural(kv[0])):
        acts = [m for m in members if m.op in ACTIVATION_OPS]
        parts = []
        flagged = 0
        if acts:
            units = _Units()
            for a in acts:
                units.add(a, lay)
            s = units.summary(th, activity)
            sym = "/".join(_SYMBOL[o] for o in units.ops)
            if s["saturated"]:
                parts.append(f"{s['saturated']}/{s['units']} {sym} units saturated")
            if s["dead"]:
                parts.append(f"{s['dead']}/{s['units']} ReLU units dead")
            if s["inactive"]:
                parts.append(f"{s['inactive']}/{s['units']} ReLU units inactive at this step")
            flagged = s["saturated"] + s["dead"]
            zs = [a.parents[0].grad for a in acts]
        else:
            zs = [m.grad for m in members if m.name == "z"]
        zs = [g for g in zs if g is not None]
        ratio = None
        if zs and ref:
            ratio = float(np.mean([_mean_abs(g) for g in zs])) / ref
            parts.append(f"gradient into {lay} is {F.fmt(ratio, 2)} of the gradient at the loss")
        if parts:
            out.append(LayerLine(lay, f"{lay}: " + "; ".join(parts), flagged, ratio))
    return out


def diagnosis(lines: list[LayerLine]) -> str:
    """The one line that matters most: the flagged layer with the weakest gradient, else the
    layer with the weakest gradient."""
    if not lines:
        return ""
    pool = [ln for ln in lines if ln.flagged] or lines
    return min(pool, key=lambda ln: (ln.ratio is None, ln.ratio or 0.0)).text


def _z_beyond(op: str, t: float) -> str:
    """' (|z| > b)': the |z| beyond which σ'(z) (op "sigmoid") or tanh'(z) is below t.

    Solved from the threshold, so the legend follows custom Thresholds: σ'(z) = s(1-s) = t at
    s = (1 + r)/2, r = √(1-4t), i.e. z = log(s/(1-s)) = 2·log(1+r) - log(4t); 1 - tanh²(z) = t
    at tanh(z) = q = √(1-t), i.e. z = atanh(q) = log(1+q) - log(t)/2. (These forms stay finite
    for tiny t, where s/(1-s) and atanh(q) would divide by 0.)
    """
    top = 0.25 if op == "sigmoid" else 1.0  # f'(0), the largest value f' takes
    if t <= 0:
        return " (never)"
    if t > top:
        return " (every z)"
    if op == "sigmoid":
        z = 2 * math.log1p(math.sqrt(1 - 4 * t)) - math.log(4 * t)
    else:
        z = math.log1p(math.sqrt(1 - t)) - 0.5 * math.log(t)
    return f" (|z| > {z:.3g})"


def _legend(lines: list[LayerLine], gref: float, th: Thresholds, ref: float | None,
            recorded: bool = False) -> Legend:
    samples = []
    for frac in (1.0, 1e-2, 1e-4, 1e-6):
        r = F.magnitude(frac * gref, gref, th.decades)
        samples.append((frac, r, F.edge_color(r), F.penwidth(r)))
    fl = [
        ("saturated", "⚠ saturated", f"σ'(z) < {th.sigmoid_saturated:g}"
                                     f"{_z_beyond('sigmoid', th.sigmoid_saturated)}, "
                                     f"tanh'(z) < {th.tanh_saturated:g}"
                                     f"{_z_beyond('tanh', th.tanh_saturated)}"),
        ("saturating", "⚠ near saturation", f"σ'(z) < {th.sigmoid_warning:g}"
                                            f"{_z_beyond('sigmoid', th.sigmoid_warning)}, "
                                            f"tanh'(z) < {th.tanh_warning:g}"
                                            f"{_z_beyond('tanh', th.tanh_warning)}"),
        ("dead", "✖ dead", "ReLU with z ≤ 0 on every sample"
                           + (f" of each of the last {th.dead_snapshots} recorded steps (or all "
                              "so far)" if recorded else "")),
        *([("inactive", "○ inactive", "ReLU with z ≤ 0 on every sample of this step, not of "
                                      f"each of the last {th.dead_snapshots}")]
          if recorded else []),
        ("vanishing", "▼ vanishing", f"|grad| < {th.vanishing:g} · |dL/dL|"),
        ("exploding", "▲ exploding", f"|grad| > {th.exploding:g}"),
        ("nonfinite", "✖ NaN/Inf", "any NaN or Inf in data or grad"),
    ]
    diag = diagnosis(lines)
    if not diag and ref is None:
        diag = "call backward() to see the gradient flow"
    return Legend(gref if ref is not None else None, th.decades, samples, fl, diag,
                  [ln.text for ln in lines])
