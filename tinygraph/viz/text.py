"""The text of a diagram's boxes: numbers, op expressions, rows, tooltips and heat strips."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..analysis import (
    SQUASHES,
    Activation,
)
from ..engine import Node, vjp_message
from . import style
from .style import fmt, full

_INFIX = {"add", "sub", "mul", "div", "matmul"}
_SUPER = {2.0: "²", 3.0: "³"}
_HOLE = "□"  # an operand drawn as its own node, in an op expression like "□ × 2"
_LIST_MAX = 16  # tooltips list up to this many values in full, else mean, min and max


def _mean_abs(d: Any) -> float:
    """Mean |d| of one value or array; NaN for None (no gradient)."""
    if d is None:
        return math.nan
    if type(d) is float:
        return abs(d)
    with np.errstate(all="ignore"):
        return float(np.mean(np.abs(d))) if d.size else 0.0


def _all_finite(d: Any) -> bool:
    if type(d) is float:
        return math.isfinite(d)
    return bool(np.isfinite(d).all())


def _count_nonfinite(d: Any) -> int:
    if d is None:
        return 0
    if type(d) is float:
        return 0 if math.isfinite(d) else 1
    return int(d.size - np.count_nonzero(np.isfinite(d)))



def _plug(v: float) -> str:
    """A number plugged into a formula: 5 significant figures, 2 when tiny."""
    return f"{v:.2g}" if v != 0 and abs(v) < 1e-3 else f"{v:.5g}"



def _const_text(p: Node) -> str:
    return fmt(p.data) if p.is_scalar else f"const{p.shape}"


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
    rows = [("data", f"μ {fmt(mu)}  σ {fmt(sd)}  [{fmt(lo)}, {fmt(hi)}]")]
    if n.grad is None:
        rows.append(("grad", "—"))
    else:
        rows.append(("grad", f"mean|·| {fmt(_mean_abs(n.grad))}  max|·| "
                             f"{fmt(float(np.max(np.abs(n.grad))) if n.grad.size else 0.0)}"))
    return rows


# How the tooltips write each named activation's derivative (the value comes from the op table).
_FORMULA = {"sigmoid": "σ'(z) = s(1-s)", "tanh": "tanh'(z) = 1-t²", "relu": "ReLU'(z) = [z > 0]",
            "leaky_relu": "LReLU'(z) = 1 or α"}


def _local_derivative(n: Node, inline: set[Node], acts: Mapping[Node, Activation]) -> list[str]:
    """The local derivative with numbers plugged in (scalars); a summary for tensors."""
    act = acts.get(n)
    if act is not None:
        op = act.name if not act.composed or act.name in SQUASHES else ""
        z = act.z.data
        d = act.derivative
        name = _FORMULA.get(op, "f'(z)")
        if act.composed:
            name += " through " + ", ".join(m.op for m in act.chain)
        if not n.is_scalar or act.composed:
            dd = np.asarray(d)
            return [f"{name}: mean {fmt(float(dd.mean()))}, min {fmt(float(dd.min()))}, "
                    f"max {fmt(float(dd.max()))}"]
        s = n.data
        if op == "sigmoid":
            return [f"σ'(z) = s(1-s) = {_plug(s)}·{_plug(1 - s)} = {fmt(d, 2)}"]
        if op == "tanh":
            return [f"tanh'(z) = 1-t² = 1-{_plug(s)}² = {fmt(d, 2)}"]
        if op == "relu":
            return [f"ReLU'(z) = [z > 0] = [{_plug(z)} > 0] = {fmt(d)}"]
        if op == "leaky_relu":
            return [f"LReLU'(z) = 1 if z > 0 else α = {fmt(d)} (z = {_plug(z)})"]
        return [f"f'(z) = {fmt(d)} (z = {_plug(z)})"]
    op = n.op
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
    cells = style.downsample(n.data)
    vmax = float(np.nanmax(np.abs(cells))) if cells.size else 0.0
    out = [("data", [[style.data_color(v, vmax) for v in row] for row in cells])]
    if n.grad is not None:
        cells = style.downsample(np.abs(n.grad))
        out.append(("|grad|", [[style.grad_color(v, g_ref, decades) for v in row]
                               for row in cells]))
    return out



def _series(name: str, parts: Iterable[Any]) -> str:
    """A tooltip line at full precision: the values (up to 16), else their mean, min and max."""
    arrs = [np.ravel(np.asarray(p, dtype=np.float64)) for p in parts]
    v = np.concatenate(arrs) if arrs else np.zeros(0)
    if v.size == 0:
        return f"{name} = —"
    if v.size == 1:
        return f"{name} = {full(v[0])}"
    if v.size <= _LIST_MAX:
        return f"{name} = [{', '.join(full(x) for x in v)}]"
    with np.errstate(all="ignore"):
        return (f"{name}: mean {full(v.mean())}, min {full(v.min())}, "
                f"max {full(v.max())} over {v.size} values")
