"""The boxes of a diagram: one per value (op level) or per folded neuron, layer or block."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis import (
    ACT,
    LOSS,
    PARAM_NAME,
    PREACT,
    Activation,
    Activity,
    Thresholds,
    Units,
)
from ..engine import Node
from . import style
from .data import Flag, ViewNode
from .flags import _act_flags, _grad_flags
from .style import fmt, full
from .text import (
    _count_nonfinite,
    _expr,
    _heat,
    _local_derivative,
    _mean_abs,
    _series,
    _stats,
    _tensor_rows,
)


def _role(n: Node, root: Node, roles: dict[str, str]) -> str:
    lab = n.label
    if lab is not None and lab in roles:
        return roles[lab]
    if (n is root and n.is_scalar) or n.name == LOSS:
        return "loss"
    if n.op is not None:
        return "intermediate"
    if not n.requires_grad:
        return "input" if n.name is not None else "constant"
    if n.scope is not None or PARAM_NAME.match(n.name or ""):
        return "parameter"
    return "input"



@dataclass
class Context:
    """What every box of one build reads besides its own nodes."""

    root: Node
    roles: Mapping[str, str]  # label -> role, the user's overrides
    inline: set[Node]  # constants written into their users' expressions
    thresholds: Thresholds
    ref: float | None  # |dL/dL|, None before backward
    gref: float  # the message that draws as the widest edge
    heat: bool  # draw tensors' heat strips
    compact: bool  # op folded into its output's box
    acts: Mapping[Node, Activation]  # analysis.find's activations, by output node
    activity: Activity | None = None  # a recorder's memory of earlier snapshots


def _make_nodes(drawn: list[Node], keys: dict[Node, str], level: str, names: dict[str, str],
                ctx: Context) -> tuple[list[ViewNode], list[Flag]]:
    """The boxes: one per key of keys (a value, or a group named by names), with their flags,
    the most severe first."""
    compact = ctx.compact
    groups: dict[str, list[Node]] = {}
    for n in drawn:
        groups.setdefault(keys[n], []).append(n)
    out: list[ViewNode] = []
    flags: list[Flag] = []
    for vid, members in groups.items():
        if len(members) == 1 and not vid.startswith("g_"):
            vn = _value_node(vid, members[0], ctx, compact or level != "op")
        else:
            vn = _group_node(vid, names[vid], members, level, ctx)
        out.append(vn)
        flags.extend(vn.flags)
        if level == "op" and not compact and members[0].op is not None:
            n = members[0]
            out.append(ViewNode(f"{vid}_op", _expr(n, ctx.inline), "intermediate", kind="op",
                                cluster=None, scope=n.scope, op=n.op,
                                tooltip=f"{n.op} ({n.primitive.symbol})"))
    sev = {k: v[5] for k, v in style.FLAG_STYLE.items()}
    flags.sort(key=lambda f: -sev[f.kind])
    return out, flags


def _value_node(vid: str, n: Node, ctx: Context, compact: bool = True) -> ViewNode:
    """The box of one graph node: its value, gradient, activation rows and flags."""
    root, roles, inline, th, ref = ctx.root, ctx.roles, ctx.inline, ctx.thresholds, ctx.ref
    acts, activity = ctx.acts, ctx.activity
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
        rows = [("data", fmt(d)), ("grad", fmt(g))]
        tip += [f"data = {full(d)}", f"grad = {full(g)}"]
    else:
        rows = [("shape", "×".join(map(str, n.shape)) + f"  {n.dtype}")]
        rows += _tensor_rows(n)
        tip += [f"shape {n.shape}, {n.dtype}", f"data: mean {full(_stats(d)[0])}",
                f"grad: mean |·| {full(_mean_abs(g)) if g is not None else '—'}"]
    act = acts.get(n)
    if act is not None:
        s = Units.of([act], vid).stats(th, activity)
        aflags = _act_flags(vid, label, s, th, activity)
        flags += aflags
        z = act.z.data
        if scalar:
            rows.append(("z", fmt(z)))
            rows.append(("f'(z)", fmt(act.derivative)))
        else:
            # z summarized as the data row is: its spread says how far into the tails it goes.
            mu, sd, lo, hi = _stats(z)
            rows.append(("z", f"μ {fmt(mu)}  σ {fmt(sd)}  [{fmt(lo)}, {fmt(hi)}]"))
            tip.append(f"z: mean {full(mu)}, min {full(lo)}, max {full(hi)}")
            rows.append(("f'(z)", f"mean {fmt(s.mean_derivative)}"))
            what = "inactive" if act.family == "gate" else "saturated"
            rows.append((what, f"{s.flagged_fraction:.0%} of elements"))
    if op is not None:  # a leaf has no local derivative
        tip += _local_derivative(n, inline, acts)
    flags += _grad_flags(vid, label, d, g if n.requires_grad else None, ref, th)
    if flags:
        tip += [f"{style.FLAG_STYLE[f.kind][0]} {f.kind}: {f.text}" for f in flags]
    data = d if scalar else _stats(d)[0]
    grad = g if (g is None or scalar) else _mean_abs(g)
    return ViewNode(vid, header, role, sub=sub, rows=rows,
                    heat=_heat(n, ctx.gref, th.decades) if ctx.heat and not scalar else [],
                    flags=flags, tooltip="\n".join(tip), scope=n.scope, op=op,
                    shape=() if scalar else d.shape, data=data, grad=grad)


def _outputs(members: list[Node], acts: Mapping[Node, Activation]) -> list[Node]:
    """The members a group hands on: its activation outputs, else those named like outputs."""
    for pick in (lambda m: m.name == ACT, lambda m: m in acts,
                 lambda m: m.name in (PREACT, LOSS)):
        found = [m for m in members if pick(m)]
        if found:
            return found
    return [members[-1]]



def _input_node(vid: str, header: str, uses: int, values: list[Any]) -> ViewNode:
    """One box for a network input at neuron or layer level (the x of w·x, over the samples)."""
    v = np.concatenate([np.ravel(np.asarray(x, dtype=np.float64)) for x in values])
    if all(np.ndim(x) == 0 for x in values):  # one number per sample
        rows = [("data", fmt(v[0]) if v.size == 1 else f"mean {fmt(v.mean())} over {v.size}")]
    else:  # a batch array, summarized as tensor nodes are
        mu, sd, lo, hi = _stats(v)
        rows = [("shape", " + ".join("×".join(map(str, np.shape(x))) for x in values)),
                ("data", f"μ {fmt(mu)}  σ {fmt(sd)}  [{fmt(lo)}, {fmt(hi)}]")]
    tip = [f"{header}  (input: {uses} uses folded)", _series(header, values),
           "its edges carry the gradient with respect to this input, w·dL/dz summed over the "
           "samples (not stored: an input needs no gradient)"]
    return ViewNode(vid, header, "input", kind="group", rows=rows, tooltip="\n".join(tip),
                    data=float(v.mean()) if v.size else None, members=uses)


@dataclass
class _Box:
    """What a group's box collects as it is built: its rows, flags, heat strips, row colours
    and tooltip lines, in display order."""

    rows: list[tuple[str, str]]
    tip: list[str]
    flags: list[Flag]
    heat: list[tuple[str, list[list[str]]]]
    colors: dict[str, str]


def _group_node(vid: str, key: str, members: list[Node], level: str, ctx: Context) -> ViewNode:
    """One box for a folded neuron, layer, block of nodes, or the unscoped ops around them."""
    root, found = ctx.root, ctx.acts
    has_loss = any(m is root or m.name == LOSS for m in members)
    name = "loss" if key == "(output)" and has_loss and root.name == LOSS else key
    outs = _outputs(members, found)
    acts = [found[m] for m in members if m in found]
    role = "loss" if has_loss else (
        "parameter" if all(m.op is None and m.requires_grad for m in members) else
        "intermediate")
    box = _Box([], [f"{name}: {len(members)} graph nodes folded ({level} level)"], [], [], {})
    g_out = _output_rows(box, outs, bool(acts), ctx.ref)
    if acts:
        _activation_rows(box, vid, name, acts, level, ctx)
    _gradient_flags(box, vid, name, members, outs, acts, ctx)
    if len(outs) == 1 and outs[0].is_scalar and acts:
        box.tip += _local_derivative(outs[0], set(), found)
    vals = [m.data if m.is_scalar else _stats(m.data)[0] for m in outs]
    scope = members[0].scope if level == "neuron" else None
    return ViewNode(vid, name, role, kind="group", rows=box.rows, heat=box.heat,
                    colors=box.colors, flags=box.flags, tooltip="\n".join(box.tip), scope=scope,
                    op=None, data=float(np.mean(vals)), grad=g_out, members=len(members))


def _output_rows(box: _Box, outs: list[Node], has_acts: bool, ref: float | None) -> float | None:
    """The group's output and gradient rows; returns the mean |gradient| of its outputs."""
    out_data = [m.data for m in outs]
    out_grad = [m.grad for m in outs if m.grad is not None]
    scalar_out = all(m.is_scalar for m in outs)
    if scalar_out:
        vals = np.array(out_data, dtype=np.float64)
        box.rows.append(("act" if has_acts else "out", fmt(vals.mean()) if len(vals) == 1 else
                         f"mean {fmt(vals.mean())} over {len(vals)}"))
    else:
        box.rows.append(("out", "  ".join(f"{m.name or m.op}{m.shape}" for m in outs[:2])))
    g_out = None
    if out_grad:
        g_out = float(np.mean([_mean_abs(g) for g in out_grad]))
        box.rows.append(("grad", fmt(g_out) if scalar_out and len(out_grad) == 1 else
                         f"mean|·| {fmt(g_out)}"))
    elif ref is None:
        box.rows.append(("grad", "—"))
    # The rows round and average; the tooltip gives every sample at full precision (or mean,
    # min and max over many).
    box.tip.append(_series("act" if has_acts else "out", out_data))
    if not has_acts:
        box.tip.append(_series("dL/dout", out_grad))
    return g_out


def _activation_rows(box: _Box, vid: str, name: str, acts: list[Activation], level: str,
                     ctx: Context) -> None:
    """Rows, heat strip and flags of a group's activations: z, f'(z), dL/dz, units."""
    th, gref = ctx.thresholds, ctx.gref
    zns = [a.z for a in acts]
    box.tip += [_series("z", [z.data for z in zns]),
                _series("f'(z)", [a.derivative for a in acts]),
                _series("dL/dz", [z.grad for z in zns if z.grad is not None])]
    s = Units.of(acts, vid).stats(th, ctx.activity)
    aflags = _act_flags(vid, name, s, th, ctx.activity)
    box.flags += aflags
    zs = np.concatenate([np.ravel(a.z.data) for a in acts])
    box.rows.append(("z", fmt(zs.mean()) if zs.size == 1 else f"mean {fmt(zs.mean())}"))
    box.rows.append(("f'(z)", fmt(s.mean_derivative) if zs.size == 1 else
                     f"mean {fmt(s.mean_derivative)}"))
    zg = [a.z.grad for a in acts if a.z.grad is not None]
    if zg:
        # The gradient after the activation's derivative: where a saturated unit loses it.
        gz = float(np.mean([_mean_abs(g) for g in zg]))
        box.rows.append(("dL/dz", fmt(gz) if zs.size == 1 else f"mean|·| {fmt(gz)}"))
        box.colors["dL/dz"] = style.grad_color(gz, gref, th.decades)
    if level == "layer" or s.units > 1:
        box.rows.append(("units", f"{s.units} {'/'.join(s.symbols)}"
                                  + (f", {s.dead} dead" if s.dead else "")
                                  + (f", {s.inactive} inactive" if s.inactive else "")
                                  + (f", {s.saturated} saturated" if s.saturated else "")))
        box.heat.append(("|dL/dz| per unit",
                         [[style.grad_color(g, gref, th.decades) if math.isfinite(g)
                           else "#FFFFFF" for _, _, g in s.per_unit[:64]]]))
    for f in aflags:
        box.tip.append(f"{style.FLAG_STYLE[f.kind][0]} {f.kind}: {f.text}")


def _gradient_flags(box: _Box, vid: str, name: str, members: list[Node], outs: list[Node],
                    acts: list[Activation], ctx: Context) -> None:
    """Non-finite values, or else vanishing/exploding gradient flowing into the group: into
    its pre-activations if it has them, else into its outputs (the vanishing a learner asks
    about is the layer's dL/dz)."""
    inside = set(members)
    zs_nodes = [a.z for a in acts if a.z in inside]
    probe = zs_nodes or outs
    grads = [m.grad for m in probe if m.grad is not None and m.requires_grad]
    bad = sum(_count_nonfinite(m.data) + _count_nonfinite(m.grad) for m in members)
    flags: list[Flag] = []
    if bad:
        flags.append(Flag(vid, name, "nonfinite", float(bad), 0.0,
                          f"{bad} non-finite value(s) (NaN/Inf) among {len(members)} nodes"))
    elif grads and ctx.ref is not None:
        g = float(np.mean([_mean_abs(x) for x in grads]))
        flags += _grad_flags(vid, name, 0.0, g, ctx.ref, ctx.thresholds)
    box.flags += flags
    box.tip += [f"{style.FLAG_STYLE[f.kind][0]} {f.kind}: {f.text}" for f in box.flags
                if f.kind not in ("saturated", "saturating", "dead", "inactive")]
