"""Numbers, colours and line styles for the diagrams: one place for every visual mapping.

Numbers read with 4 significant figures and switch to scientific notation for |x| < 1e-3 or
|x| >= 1e4, so 1e-6 prints as 1e-6 and never as "0.0000". Edge magnitudes live on a log scale
of D decades: r = clip(1 + log10(|g| / g_ref) / D, 0, 1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Colour-blind-safe role colours (Paul Tol's "light" scheme), used as header fills.
ROLE_COLORS = {
    "input": "#99DDFF",  # light cyan
    "parameter": "#EEDD88",  # light yellow
    "constant": "#DDDDDD",  # pale grey
    "intermediate": "#F4F4F4",  # near white
    "loss": "#44BB99",  # mint
}
ROLES = tuple(ROLE_COLORS)

# Flag borders: each flag also has a glyph and a word, so colour is never the only cue.
FLAG_STYLE = {
    # kind: (glyph, word, border colour, penwidth, border style, severity)
    "nonfinite": ("✖", "NaN/Inf", "#EE3377", 3.5, "bold", 6),
    "saturated": ("⚠", "saturated", "#CC3311", 3.0, "solid", 5),
    "dead": ("✖", "dead", "#000000", 2.5, "dashed", 4),
    "exploding": ("▲", "exploding", "#EE7733", 3.0, "bold", 3),
    "vanishing": ("▼", "vanishing", "#0077BB", 2.0, "dashed", 2),
    "saturating": ("⚠", "near saturation", "#EE7733", 2.0, "solid", 1),
    # Recordings only: a ReLU off on every sample of this step but not of each of the last
    # Thresholds.dead_snapshots recorded steps.
    "inactive": ("○", "inactive", "#666666", 1.5, "dashed", 0),
}
FLAG_KINDS = tuple(FLAG_STYLE)

# Edge colours along one sequential hue (light grey -> strong blue), and a diverging pair for
# the sign option (blue positive, orange negative: safe for the common colour-vision deficits).
_SEQ = ((0.0, (0xDD, 0xDD, 0xDD)), (0.45, (0x6B, 0xAE, 0xD6)), (1.0, (0x08, 0x30, 0x6B)))
_NEG = ((0.0, (0xDD, 0xDD, 0xDD)), (0.45, (0xFD, 0xAE, 0x61)), (1.0, (0x99, 0x34, 0x04)))
VANISHED_COLOR = "#999999"
NONFINITE_COLOR = "#EE3377"
PLAIN_EDGE_COLOR = "#888888"  # before backward(): no message to show
PEN_MIN, PEN_MAX = 0.6, 5.0
ARROW_MIN, ARROW_MAX = 0.4, 1.2


def fmt(x: Any, sig: int = 4) -> str:
    """A number with sig significant figures; scientific when |x| < 1e-3 or |x| >= 1e4."""
    if x is None:
        return "—"
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    a = abs(x)
    if a < 1e-3 or a >= 1e4:
        mant, exp = f"{x:.{sig - 1}e}".split("e")
        if "." in mant:
            mant = mant.rstrip("0").rstrip(".")
        return f"{mant}e{int(exp)}"
    s = f"{x:.{sig}g}"
    if "e" in s:  # rounding pushed it across a power of ten (9999.7 -> 1e+04)
        return fmt(float(s), sig)
    return s


def full(x: Any) -> str:
    """Full precision for tooltips (shortest repr that round-trips)."""
    return "—" if x is None else repr(float(x))


def magnitude(g: float, g_ref: float, decades: float) -> float:
    """r = clip(1 + log10(|g| / g_ref) / decades, 0, 1); 0 for g == 0, 1 for non-finite g."""
    g = abs(g)
    if not math.isfinite(g):
        return 1.0
    if g == 0 or g_ref <= 0 or not math.isfinite(g_ref):
        return 0.0
    return min(1.0, max(0.0, 1.0 + math.log10(g / g_ref) / decades))


def _ramp(stops: tuple, r: float) -> str:
    r = min(1.0, max(0.0, r))
    for (r0, c0), (r1, c1) in zip(stops, stops[1:], strict=False):
        if r <= r1:
            t = 0.0 if r1 == r0 else (r - r0) / (r1 - r0)
            rgb = (round(a + (b - a) * t) for a, b in zip(c0, c1, strict=True))
            return "#" + "".join(f"{v:02X}" for v in rgb)
    return "#" + "".join(f"{v:02X}" for v in stops[-1][1])


def edge_color(r: float, negative: bool = False) -> str:
    """Colour for magnitude r in [0, 1]; the orange ramp marks negative messages (sign option)."""
    return _ramp(_NEG if negative else _SEQ, r)


def penwidth(r: float) -> float:
    """Edge line width for magnitude r (monotone, clipped to [PEN_MIN, PEN_MAX])."""
    return round(PEN_MIN + (PEN_MAX - PEN_MIN) * min(1.0, max(0.0, r)), 2)


def arrowsize(r: float) -> float:
    """Arrow head size for magnitude r."""
    return round(ARROW_MIN + (ARROW_MAX - ARROW_MIN) * min(1.0, max(0.0, r)), 2)


# Heat strips: data on a diverging blue-white-orange scale, gradients on the edge ramp.
_DIV = ((0.0, (0x21, 0x66, 0xAC)), (0.5, (0xF7, 0xF7, 0xF7)), (1.0, (0xB3, 0x58, 0x06)))


def data_color(v: float, vmax: float) -> str:
    """Diverging colour for a data value scaled by vmax = max |data|."""
    if not math.isfinite(v):
        return NONFINITE_COLOR
    t = 0.5 if vmax <= 0 else 0.5 + 0.5 * max(-1.0, min(1.0, v / vmax))
    return _ramp(_DIV, t)


def grad_color(g: float, g_ref: float, decades: float) -> str:
    """Sequential colour for a gradient magnitude (same scale as the edges)."""
    if not math.isfinite(g):
        return NONFINITE_COLOR
    return edge_color(magnitude(g, g_ref, decades))


def downsample(a: np.ndarray, cells: int = 8) -> np.ndarray:
    """A 2-D summary of at most cells x cells: block means of the array seen as (rows, rest)."""
    a = np.asarray(a, dtype=np.float64)
    a = a.reshape(1, -1) if a.ndim <= 1 else a.reshape(a.shape[0], -1)
    rows = np.array_split(np.arange(a.shape[0]), min(cells, a.shape[0]))
    cols = np.array_split(np.arange(a.shape[1]), min(cells, a.shape[1]))
    with np.errstate(invalid="ignore"):
        return np.array([[a[np.ix_(r, c)].mean() for c in cols] for r in rows])
