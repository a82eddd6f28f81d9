"""The plain view data of a diagram: nodes, edges, clusters, flags and legend, without graphviz.

build(root, ...) is a pure function of the graph and the options. It reads the graph through
tinygraph.walk (one iterative traversal) and tinygraph.vjp_message (the gradient each edge
carries), so the same graph always gives the same data, with ids made of topological index and
name. Rendering (render.py) only turns this data into graphviz; a recorder can keep the structure
(ids, clusters) of one build and restyle it from later builds of the same graph.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..diagnostics import ACTIVATION_OPS, squash_derivative, squash_limits, unit_columns
from ..engine import Node, vjp_message, walk
from ..errors import InputError
from ..nn import layer_of
from ..thresholds import DEFAULT, Thresholds
from . import style as F

LEVELS = ("auto", "op", "neuron", "layer")
_SYMBOL = {"sigmoid": "σ", "tanh": "tanh", "relu": "ReLU", "leaky_relu": "LReLU"}
_PARAM_NAME = re.compile(r"^(w|W|b|a)\d*(_\d+)?$|^(weight|bias)")
_INFIX = {"add", "sub", "mul", "div", "matmul"}
_SUPER = {2.0: "²", 3.0: "³"}
_HOLE = "□"  # an operand drawn as its own node, in an op expression like "□ × 2"


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

    def node(self, key: str) -> ViewNode:
        """A node by id or by header (its name)."""
        for n in self.nodes:
            if n.id == key:
                return n
        for n in self.nodes:
            if n.header == key:
                return n
        raise KeyError(f"view: no node {key!r}")

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


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


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


@dataclass
class _Units:
    """Activation units seen in a set of nodes: one per scalar neuron, one per tensor column."""

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
            cols = [((key, j), z2[:, j], d2[:, j], None if g2 is None else g2[:, j])
                    for j in range(z2.shape[1])]
        for unit, z, dd, g in cols:
            self.z.setdefault(unit, []).append(z)
            self.d.setdefault(unit, []).append(dd)
            self.kind[unit] = a.op
            if g is not None:
                self.g.setdefault(unit, []).append(g)

    def summary(self, th: Thresholds) -> dict[str, Any]:
        """Counts of dead / saturated / saturating units and the fraction of flagged values."""
        units = list(self.z)
        dead = sat = warn = 0
        flagged = total = 0
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
                if op == "relu" and off.all():
                    dead += 1
                    state = "dead"
            else:
                lim, wl = squash_limits(op, th)
                flat = d < lim
                flagged += int(flat.sum())
                if flat.all():
                    sat += 1
                    state = "saturated"
                elif (d < wl).all():
                    warn += 1
                    state = "saturating"
            g = self.g.get(u)
            per_unit.append((u, state, float(np.concatenate(g).mean()) if g else math.nan))
        dall = np.concatenate(dvals) if dvals else np.zeros(0)
        return {"units": len(units), "dead": dead, "saturated": sat, "saturating": warn,
                "flagged_fraction": flagged / total if total else 0.0,
                "mean_d": float(dall.mean()) if dall.size else math.nan,
                "per_unit": per_unit, "samples": max((sum(a.size for a in v)
                                                      for v in self.z.values()), default=0)}


def _act_flags(vid: str, label: str, units: _Units, th: Thresholds) -> tuple[list[Flag], dict]:
    s = units.summary(th)
    flags: list[Flag] = []
    n = s["units"]
    sym = "/".join(_SYMBOL[o] for o in units.ops)
    squash = [o for o in units.ops if o in ("sigmoid", "tanh")]
    lim, wl = squash_limits("sigmoid" if "sigmoid" in squash else "tanh", th)
    plural = "unit" if n == 1 else "units"
    if s["saturated"]:
        flags.append(Flag(vid, label, "saturated", s["mean_d"], lim,
                          f"{s['saturated']}/{n} {sym} {plural} saturated: mean f'(z) = "
                          f"{F.fmt(s['mean_d'], 2)} < {lim:g}", (s["saturated"], n)))
    elif s["saturating"]:
        flags.append(Flag(vid, label, "saturating", s["mean_d"], wl,
                          f"{s['saturating']}/{n} {sym} {plural} near saturation: mean f'(z) = "
                          f"{F.fmt(s['mean_d'], 2)} < {wl:g}", (s["saturating"], n)))
    if s["dead"]:
        k = s["samples"]
        flags.append(Flag(vid, label, "dead", s["dead"] / n, 0.0,
                          f"{s['dead']}/{n} ReLU {plural} dead: z ≤ 0 on every sample "
                          f"({k} seen), so no gradient passes", (s["dead"], n)))
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
    ps = n.parents
    args = [_const_text(p) if p in inline else _HOLE for p in ps]
    attrs = n.attrs or {}
    extra = ", ".join(f"{k}={v}" for k, v in attrs.items()
                      if k in ("axis", "alpha", "lo", "hi") and v is not None)
    if n.op == "pow" and len(ps) == 2 and ps[1] in inline and ps[1].is_scalar:
        e = float(ps[1].data)
        return f"{args[0]}{_SUPER[e]}" if e in _SUPER else f"{args[0]} ^ {args[1]}"
    if len(ps) == 2 and (n.op in _INFIX or len(sym) == 1):
        if all(a == _HOLE for a in args):
            return sym
        return f"{args[0]} {sym} {args[1]}"
    if len(ps) == 1 and args[0] == _HOLE:
        return f"{sym}({extra})" if extra else sym
    return f"{sym}({', '.join(args + ([extra] if extra else []))})"


def _stats(d: Any) -> tuple[float, float, float, float]:
    a = np.asarray(d, dtype=np.float64)
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
    if op is None or not n.is_scalar:
        return []
    out = []
    for i, p in enumerate(n.parents):
        if p in inline or not p.is_scalar:
            continue
        with np.errstate(all="ignore"):
            local = vjp_message(n, i, 1.0)
        who = p.label or f"input {i + 1} ({p.op or 'leaf'})"
        out.append(f"∂{n.name or 'out'}/∂{who} = {_plug(local)}")
    return out


def _heat(n: Node, g_ref: float, decades: float) -> list[tuple[str, list[list[str]]]]:
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


def build(root: Node, level: str = "auto", *, max_nodes: int = 250,
          focus: Node | str | None = None, thresholds: Thresholds | None = None,
          g_ref: float | str = "max", compact: bool = True, inline_constants: bool = True,
          edge_labels: bool = False, sign: bool = False, legend: bool = True,
          roles: dict[str, str] | None = None, heat: bool = True) -> ViewData:
    """The plain view data of root's graph (see the module docstring and tinygraph.viz.draw)."""
    if not isinstance(root, Node):
        raise InputError(f"draw: expected a Node, got {type(root).__name__}")
    if level not in LEVELS:
        raise InputError(f"draw: level must be one of {', '.join(LEVELS)}, got {level!r}")
    if not isinstance(max_nodes, int) or max_nodes < 1:
        raise InputError(f"draw: max_nodes must be a positive int, got {max_nodes!r}")
    th = DEFAULT if thresholds is None else thresholds
    if not isinstance(th, Thresholds):
        raise InputError(f"draw: thresholds must be a tinygraph.thresholds.Thresholds, got "
                         f"{type(th).__name__}")
    if not (g_ref == "max" or (isinstance(g_ref, (int, float)) and g_ref > 0)):
        raise InputError(f"draw: g_ref must be 'max' or a positive number, got {g_ref!r}")
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
        for i, p in enumerate(c.parents):
            if p in inline or p not in keys:  # a constant, or outside the focus
                continue
            t, h = keys[p], keys[c]
            if t == h:
                continue  # folded inside one group: never computed
            g = None
            if c.grad is not None and p.requires_grad:  # backward sends nothing to constants
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
                                heat, compact, names)
    edges = _make_edges(raw_edges, chosen, gref, th, edge_labels, vnodes, backward_done)
    clusters = _make_clusters(vnodes, chosen)
    summary = layer_summary(drawn, th, ref)
    for cl in clusters:  # a layer's box says what is wrong with it
        for line in summary:
            if line.layer == cl.scope:
                cl.label = line.text
    if target is not None:
        banners.append(f"focus: {target.label or keys[target]} with its ancestors and "
                       "descendants")
    lg = _legend(summary, gref, th, ref) if legend else None
    opts = {"max_nodes": max_nodes, "g_ref": g_ref, "compact": compact, "sign": sign,
            "edge_labels": edge_labels, "thresholds": th}
    return ViewData(vnodes, edges, clusters, flags, lg, banners, chosen, level, backward_done,
                    len(order), opts)


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
                gref: float, heat: bool, compact: bool,
                names: dict[str, str]) -> tuple[list[ViewNode], list[Flag]]:
    groups: dict[str, list[Node]] = {}
    for n in drawn:
        groups.setdefault(keys[n], []).append(n)
    out: list[ViewNode] = []
    flags: list[Flag] = []
    for vid, members in groups.items():
        if len(members) == 1 and not vid.startswith("g_"):
            vn = _value_node(vid, members[0], root, roles, inline, th, ref, gref, heat,
                             compact or level != "op")
        else:
            vn = _group_node(vid, names[vid], members, level, root, th, ref, gref)
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
                compact: bool = True) -> ViewNode:
    role = _role(n, root, roles)
    # In compact mode the op is folded into its output box; otherwise its own node shows it.
    expr = _expr(n, inline) if n.op is not None and compact else None
    header = n.label or expr or ("const" if role == "constant" else vid.split("_", 1)[0])
    sub = expr if n.label and expr else None
    label = n.label or vid
    rows: list[tuple[str, str]] = []
    tip = [f"{label}  ({role}{', op ' + n.op if n.op else ''})"]
    flags: list[Flag] = []
    if n.is_scalar:
        rows.append(("data", F.fmt(n.data)))
        rows.append(("grad", F.fmt(n.grad)))
        tip += [f"data = {F.full(n.data)}", f"grad = {F.full(n.grad)}"]
    else:
        rows.append(("shape", "×".join(map(str, n.shape)) + f"  {n.dtype}"))
        rows += _tensor_rows(n)
        tip += [f"shape {n.shape}, {n.dtype}", f"data: mean {F.full(_stats(n.data)[0])}",
                f"grad: mean |·| {F.full(_mean_abs(n.grad)) if n.grad is not None else '—'}"]
    if n.op in ACTIVATION_OPS:
        units = _Units()
        units.add(n, vid)
        aflags, s = _act_flags(vid, label, units, th)
        flags += aflags
        z = n.parents[0].data
        if n.is_scalar:
            rows.append(("z", F.fmt(z)))
            rows.append(("f'(z)", F.fmt(_derivative(n))))
        else:
            rows.append(("f'(z)", f"mean {F.fmt(s['mean_d'])}"))
            what = "inactive" if n.op in ("relu", "leaky_relu") else "saturated"
            rows.append((what, f"{s['flagged_fraction']:.0%} of elements"))
    tip += _local_derivative(n, inline)
    flags += _grad_flags(vid, label, n.data, n.grad if n.requires_grad else None, ref, th)
    tip += [f"{F.FLAG_STYLE[f.kind][0]} {f.kind}: {f.text}" for f in flags]
    data = n.data if n.is_scalar else _stats(n.data)[0]
    grad = n.grad if (n.grad is None or n.is_scalar) else _mean_abs(n.grad)
    return ViewNode(vid, header, role, sub=sub, rows=rows,
                    heat=_heat(n, gref, th.decades) if heat and not n.is_scalar else [],
                    flags=flags, tooltip="\n".join(tip), scope=n.scope, op=n.op,
                    shape=n.shape, data=data, grad=grad)


def _outputs(members: list[Node]) -> list[Node]:
    """The members a group hands on: its activation outputs, else those named like outputs."""
    for pick in (lambda m: m.name == "act", lambda m: m.op in ACTIVATION_OPS,
                 lambda m: m.name in ("z", "loss")):
        found = [m for m in members if pick(m)]
        if found:
            return found
    return [members[-1]]


def _group_node(vid: str, key: str, members: list[Node], level: str, root: Node,
                th: Thresholds, ref: float | None, gref: float) -> ViewNode:
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
    s = None
    if acts:
        units = _Units()
        for a in acts:
            units.add(a, vid)
        aflags, s = _act_flags(vid, name, units, th)
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
            if f.kind not in ("saturated", "saturating", "dead")]
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
    # Fold parallel edges between two groups into one carrying the summed message.
    folded: dict[tuple[str, str], list[tuple[Any, Node, int]]] = {}
    seq: list[tuple[str, str, list[tuple[Any, Node, int]]]] = []
    for t, h, g, c, i in raw:
        if level == "op":
            seq.append((t, h, [(g, c, i)]))
            continue
        lst = folded.get((t, h))
        if lst is None:
            lst = folded[(t, h)] = []
            seq.append((t, h, lst))
        lst.append((g, c, i))
    ops = {n.id for n in vnodes if n.kind == "op"}
    edges: list[ViewEdge] = []
    count: dict[tuple[str, str], int] = {}
    for t, h, items in seq:
        head = f"{h}_op" if f"{h}_op" in ops else h
        k = count[(t, head)] = count.get((t, head), -1) + 1
        eid = f"{t}->{head}" + (f"#{k}" if k else "")
        gs = [g for g, _, _ in items]
        c, i = items[0][1], items[0][2]
        who = f"{c.parents[i].label or t} → {c.label or c.op}"
        edges.append(_edge(eid, t, head, gs, gref, th, labels, who, len(items), done))
    for vid in sorted(ops, key=lambda s: s):  # op node -> its output carries the output's grad
        out = vid[:-3]
        node = next(n for n in vnodes if n.id == out)
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
    if all(type(g) is float for g in gs):
        msg = float(sum(gs))
        mag = abs(msg)
    else:
        msg = None
        shapes = {np.shape(g) for g in gs}
        if len(shapes) == 1:
            with np.errstate(all="ignore"):
                mag = _mean_abs(np.sum(np.stack([np.asarray(g) for g in gs]), axis=0)
                                if len(gs) > 1 else gs[0])
        else:
            mag = float(sum(_mean_abs(g) for g in gs))
    if not math.isfinite(mag) or not all(_finite(g) for g in gs):
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


def layer_summary(drawn: Iterable[Node], th: Thresholds, ref: float | None) -> list[LayerLine]:
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
            s = units.summary(th)
            sym = "/".join(_SYMBOL[o] for o in units.ops)
            if s["saturated"]:
                parts.append(f"{s['saturated']}/{s['units']} {sym} units saturated")
            if s["dead"]:
                parts.append(f"{s['dead']}/{s['units']} ReLU units dead")
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


def _legend(lines: list[LayerLine], gref: float, th: Thresholds, ref: float | None) -> Legend:
    samples = []
    for frac in (1.0, 1e-2, 1e-4, 1e-6):
        r = F.magnitude(frac * gref, gref, th.decades)
        samples.append((frac, r, F.edge_color(r), F.penwidth(r)))
    fl = [
        ("saturated", "⚠ saturated", f"σ'(z) < {th.sigmoid_saturated:g} (|z| > 4.6), "
                                     f"tanh'(z) < {th.tanh_saturated:g}"),
        ("saturating", "⚠ near saturation", f"σ'(z) < {th.sigmoid_warning:g}, tanh'(z) < "
                                            f"{th.tanh_warning:g}"),
        ("dead", "✖ dead", "ReLU with z ≤ 0 on every sample"),
        ("vanishing", "▼ vanishing", f"|grad| < {th.vanishing:g} · |dL/dL|"),
        ("exploding", "▲ exploding", f"|grad| > {th.exploding:g}"),
        ("nonfinite", "✖ NaN/Inf", "any NaN or Inf in data or grad"),
    ]
    diag = diagnosis(lines)
    if not diag and ref is None:
        diag = "call backward() to see the gradient flow"
    return Legend(gref if ref is not None else None, th.decades, samples, fl, diag,
                  [ln.text for ln in lines])
