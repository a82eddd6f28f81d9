"""Numbers, colours and line styles for the diagrams: one place for every visual mapping.

Numbers read with 4 significant figures and switch to scientific notation for |x| < 1e-3 or
|x| >= 1e4, so 1e-6 prints as 1e-6 and never as "0.0000". Edge magnitudes live on a log scale
of D decades: r = clip(1 + log10(|g| / g_ref) / D, 0, 1).
"""

from __future__ import annotations

import math
import re
import zlib
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
    """A number with sig significant figures; scientific when |x| < 1e-3 or |x| >= 1e4.

    Every float has a text: "NaN", "Inf", "-Inf", "0" for both zeros, subnormals in scientific
    form. The decision between the two forms reads the exponent after rounding, so 9999.7 gives
    "1e4" and 300 with sig=2 gives "300".
    """
    if x is None:
        return "—"
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    sig = max(1, int(sig))
    mant, exp = f"{x:.{sig - 1}e}".split("e")
    e = int(exp)
    if e < -3 or e >= 4:
        if "." in mant:
            mant = mant.rstrip("0").rstrip(".")
        return f"{mant}e{e}"
    s = f"{x:.{max(0, sig - 1 - e)}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
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


# ---------------------------------------------------------------------------------------------
# Text: every string a user can choose (names, scopes, labels) reaches Graphviz and the pages
# through text(), then the encoder of its context (HTML-like label, DOT string, HTML, JSON).
# ---------------------------------------------------------------------------------------------

LABEL_MAX = 80  # characters of a name, scope or header drawn in a box
TIP_MAX = 4000  # characters of a tooltip or a report line
# C0/C1 controls, DEL, lone surrogates, line/paragraph separators and the bidi overrides (which
# could make a name read backwards): each is written as its escape, so it is seen, not obeyed.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                        "\ud800-\udfff]")
_INVISIBLE_KEEP_NL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
                                "\u2066-\u2069\ud800-\udfff]")


def _visible(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def text(s: Any, limit: int = LABEL_MAX, *, lines: bool = False) -> str:
    """s as plain, printable text: control characters, lone surrogates and bidi overrides made
    visible as escapes (ESC reads "\\x1b"), cut to limit characters with an ellipsis.

    lines=True keeps newlines (multi-line tooltips). The result is still raw text: each output
    format then escapes it for its own syntax (render._e for labels, render._dot_text for DOT
    strings, html.escape for pages), which no string can get around.
    """
    s = s if type(s) is str else str(s)
    s = (_INVISIBLE_KEEP_NL if lines else _INVISIBLE).sub(_visible, s)
    if len(s) > limit:
        s = s[:max(0, limit - 1)] + "…"
    return s


def short_id(s: str, limit: int = 40) -> str:
    """An id part at most limit characters long; a longer one keeps a checksum of the whole, so
    two long names with the same start still differ."""
    if len(s) <= limit:
        return s
    return f"{s[:limit - 9]}_{zlib.crc32(s.encode('utf-8', 'surrogatepass')):08x}"
