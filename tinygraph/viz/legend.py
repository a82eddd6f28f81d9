"""The legend and the diagnosis: one line per layer, the one that matters most, the scale."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .. import analysis
from ..analysis import (
    PREACT,
    Activation,
    Activity,
    Thresholds,
    Units,
    UnitStats,
    layer_of,
)
from ..engine import Node
from . import style
from .data import Legend
from .style import fmt
from .text import _mean_abs


@dataclass
class LayerLine:
    """One layer's line of the diagnosis."""

    layer: str
    text: str
    flagged: int  # saturated + dead units
    ratio: float | None  # mean |dL/dz| into the layer over |dL/dL|
    health: UnitStats | None = None  # its units' statistics; None for a layer with no activation


def _natural(name: str) -> tuple[str, int]:
    m = re.match(r"^(.*?)(\d+)$", name)
    return (m.group(1), int(m.group(2))) if m else (name, -1)


def layer_summary(drawn: Iterable[Node], th: Thresholds, ref: float | None,
                  activity: Activity | None = None,
                  found: Mapping[Node, Activation] | None = None) -> list[LayerLine]:
    """One line per layer: its flagged units and the gradient flowing into it, L1 first (the
    text is empty for a layer with nothing to say, which still carries its unit statistics)."""
    drawn = list(drawn)
    found = analysis.find(drawn) if found is None else found
    layers: dict[str, list[Node]] = {}
    for n in drawn:
        lay = layer_of(n.scope)
        if lay is not None:
            layers.setdefault(lay, []).append(n)
    out = []
    for lay, members in sorted(layers.items(), key=lambda kv: _natural(kv[0])):
        acts = [found[m] for m in members if m in found]
        parts = []
        flagged = 0
        health = None
        if acts:
            s = health = Units.of(acts, lay).stats(th, activity)
            sym = "/".join(s.symbols)
            if s.saturated:
                parts.append(f"{s.saturated}/{s.units} {sym} units {s.flat_word}")
            if s.dead:
                parts.append(f"{s.dead}/{s.units} ReLU units dead")
            if s.inactive:
                parts.append(f"{s.inactive}/{s.units} ReLU units inactive at this step")
            flagged = s.saturated + s.dead
            zs = [a.z.grad for a in acts]
        else:
            zs = [m.grad for m in members if m.name == PREACT]
        zs = [g for g in zs if g is not None]
        ratio = None
        if zs and ref:
            ratio = float(np.mean([_mean_abs(g) for g in zs])) / ref
            parts.append(f"gradient into {lay} is {fmt(ratio, 2)} of the gradient at the loss")
        if parts or health is not None:
            out.append(LayerLine(lay, f"{lay}: " + "; ".join(parts) if parts else "", flagged,
                                 ratio, health))
    return out


def diagnosis(lines: list[LayerLine]) -> str:
    """The one line that matters most: the flagged layer with the weakest gradient, else the
    layer with the weakest gradient."""
    if not lines:
        return ""
    pool = [ln for ln in lines if ln.flagged] or lines
    return min(pool, key=lambda ln: (ln.ratio is None, ln.ratio or 0.0)).text


def _z_beyond(op: str, t: float) -> str:
    """' (|z| > b)': the |z| beyond which σ'(z) (op "sigmoid") or tanh'(z) is below t, solved
    from the threshold (analysis.z_beyond), so the legend follows custom Thresholds."""
    if t <= 0:
        return " (never)"
    z = analysis.z_beyond(op, t)
    return " (every z)" if z is None else f" (|z| > {z:.3g})"


def _legend(lines: list[LayerLine], gref: float, th: Thresholds, ref: float | None,
            recorded: bool = False) -> Legend:
    samples = []
    for frac in (1.0, 1e-2, 1e-4, 1e-6):
        r = style.magnitude(frac * gref, gref, th.decades)
        samples.append((frac, r, style.edge_color(r), style.penwidth(r)))
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
