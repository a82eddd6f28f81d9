"""From view data to graphviz: the Digraph, SVG/PNG/PDF/DOT text, files and Jupyter display.

The `graphviz` Python package writes the DOT (no hand-built DOT strings); the `dot` executable
only runs when an image is asked for, and its absence becomes DotNotFoundError with the install
hint. Everything else (the view data, the flag report, the DOT text) works without it.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import graphviz

from .._check import check_choice, check_float
from ..errors import InputError, TinygraphError
from . import style
from .data import Cluster, Flag, ViewData, ViewEdge, ViewNode
from .html import write_view

FONT = "Helvetica,Arial,sans-serif"
FORMATS = ("svg", "png", "pdf", "dot")
_SUFFIX = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
INSTALL_HINT = (
    "Graphviz's `dot` executable was not found on PATH. Install Graphviz: "
    "`sudo apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) or "
    "`conda install -c conda-forge graphviz`. Without it, view.report() and view.source still "
    "work."
)


class DotNotFoundError(TinygraphError, RuntimeError):
    """Graphviz's `dot` executable is missing; the message says how to install it."""


def _e(text: Any, limit: int = style.LABEL_MAX) -> str:
    """Text for a graphviz HTML-like label: style.text (controls visible, shortened), then
    HTML-escaped, so no name can open a tag of its own."""
    return html.escape(style.text(text, limit), quote=True)


def _dot_text(text: Any, limit: int = style.TIP_MAX) -> graphviz.quoting.NoHtml:
    """Text for a plain DOT string attribute (tooltip, cluster or graph label): style.text, then
    backslashes doubled and marked as no HTML (graphviz.escape): a string written "<...>" stays
    text, and a trailing backslash or "\\N" is never read as an escape."""
    return graphviz.escape(style.text(text, limit, lines=True))


def _badge(f: Flag) -> str:
    glyph, word, color, *_ = style.FLAG_STYLE[f.kind]
    extra = f" {f.units[0]}/{f.units[1]}" if f.units and f.units[1] > 1 else ""
    return (f'<TR><TD COLSPAN="2" BGCOLOR="{color}"><FONT COLOR="#FFFFFF" POINT-SIZE="11">'
            f"<B>{_e(glyph)} {_e(word)}{_e(extra)}</B></FONT></TD></TR>")


def _heat_table(cells: list[list[str]]) -> str:
    rows = "".join(
        "<TR>" + "".join(f'<TD WIDTH="10" HEIGHT="9" BGCOLOR="{c}"></TD>'
                         for c in row) + "</TR>"
        for row in cells)
    return (f'<TABLE BORDER="1" COLOR="#BBBBBB" CELLBORDER="0" CELLSPACING="0" '
            f'CELLPADDING="0">{rows}</TABLE>')


def _dark(color: str) -> bool:
    """Whether a #RRGGBB background needs white text (relative luminance below ~0.4)."""
    r, g, b = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.4


def node_label(n: ViewNode) -> str:
    """The HTML-like label of a node: flag badges, header in the role colour, rows, heat."""
    if n.kind == "op":
        return f"<<B>{_e(n.header)}</B>>"
    parts = ['<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2">']
    seen = set()
    for f in n.flags:
        if f.kind not in seen:
            seen.add(f.kind)
            parts.append(_badge(f))
    role = style.ROLE_COLORS[n.role]
    parts.append(f'<TR><TD COLSPAN="2" BGCOLOR="{role}"><B>{_e(n.header)}</B></TD></TR>')
    if n.sub:
        parts.append(f'<TR><TD COLSPAN="2"><FONT POINT-SIZE="11">{_e(n.sub, 200)}</FONT></TD>'
                     "</TR>")
    for k, v in n.rows:
        bg = n.colors.get(k)
        cell = f' BGCOLOR="{bg}"' if bg else ""
        ink = "#FFFFFF" if bg and _dark(bg) else "#000000"
        parts.append(f'<TR><TD ALIGN="LEFT"><FONT COLOR="#555555" POINT-SIZE="11">{_e(k)}'
                     f'</FONT></TD><TD ALIGN="RIGHT"{cell}><FONT COLOR="{ink}" POINT-SIZE="12">'
                     f"{_e(v, 200)}</FONT></TD></TR>")
    if n.heat:
        # Heat strips side by side (data, then |grad|) under one caption row: a short box.
        names = "".join(f'<TD><FONT COLOR="#555555" POINT-SIZE="10">{_e(k)}</FONT></TD>'
                        for k, _ in n.heat)
        strips = "".join(f"<TD>{_heat_table(cells)}</TD>" for _, cells in n.heat)
        parts.append(f'<TR><TD COLSPAN="2"><TABLE BORDER="0" CELLSPACING="2" CELLPADDING="0">'
                     f"<TR>{names}</TR><TR>{strips}</TR></TABLE></TD></TR>")
    parts.append("</TABLE>>")
    return "".join(parts)


def _node_attrs(n: ViewNode) -> dict[str, str]:
    if n.kind == "op":
        return {"shape": "ellipse", "style": "filled", "fillcolor": "#FFFFFF",
                "color": "#666666", "fontsize": "14", "margin": "0.02",
                "class": " ".join(["op"] + n.classes[1:])}
    attrs = {"shape": "box", "style": "rounded", "color": "#777777", "penwidth": "1",
             "margin": "0.05", "class": " ".join(n.classes)}
    if n.flags:
        # The most severe flag draws the border; every flag also has its badge and class.
        top = max(n.flags, key=lambda f: style.FLAG_STYLE[f.kind][5])
        _, _, color, width, line, _ = style.FLAG_STYLE[top.kind]
        attrs.update(color=color, penwidth=f"{width:g}",
                     style="rounded" if line == "solid" else f"rounded,{line}")
    return attrs


def _edge_attrs(e: ViewEdge, sign: bool) -> dict[str, str]:
    a: dict[str, str] = {"class": e.state, "tooltip": _dot_text(e.tooltip)}
    if e.state == "none":
        a.update(color=style.PLAIN_EDGE_COLOR, penwidth="1", arrowsize="0.6")
    elif e.state == "nonfinite":
        a.update(color=style.NONFINITE_COLOR, penwidth=f"{style.PEN_MAX:g}", style="bold",
                 arrowsize=f"{style.ARROW_MAX:g}")
    elif e.state in ("vanished", "zero"):
        a.update(color=style.VANISHED_COLOR, penwidth="1", arrowsize="0.5",
                 style="dashed" if e.state == "vanished" else "dotted")
    else:
        a.update(color=style.edge_color(e.r, sign and e.negative),
                 penwidth=f"{style.penwidth(e.r):g}",
                 arrowsize=f"{style.arrowsize(e.r):g}")
    if e.label:
        a.update(label=_dot_text(e.label, style.LABEL_MAX), fontsize="10", fontcolor="#333333")
    return a


def legend_label(data: ViewData) -> str:
    """The legend as an HTML-like table: edge scale, line styles, flags, roles, diagnosis."""
    lg = data.legend
    rows = []

    def row(left: str, right: str) -> None:
        rows.append(f'<TR><TD ALIGN="LEFT">{left}</TD><TD ALIGN="LEFT">'
                    f'<FONT POINT-SIZE="11">{right}</FONT></TD></TR>')

    rows.append('<TR><TD COLSPAN="2" ALIGN="LEFT"><B>Legend</B></TD></TR>')
    if lg.diagnosis:
        alarm = "#CC3311" if data.flags else "#222222"  # red only when something is flagged
        rows.append(f'<TR><TD COLSPAN="2" ALIGN="LEFT"><FONT COLOR="{alarm}"><B>'
                    f"{_e(lg.diagnosis, 300)}</B></FONT></TD></TR>")
    for line in lg.lines:
        if line != lg.diagnosis:
            rows.append(f'<TR><TD COLSPAN="2" ALIGN="LEFT"><FONT POINT-SIZE="11">{_e(line, 300)}'
                        "</FONT></TD></TR>")
    ref = "g_ref = " + (style.fmt(lg.g_ref, 2) if lg.g_ref is not None else "—")
    rows.append('<TR><TD COLSPAN="2" ALIGN="LEFT"><FONT POINT-SIZE="11">edge: gradient message '
                f"g = ∂child/∂parent · child.grad ({_e(ref)})</FONT></TD></TR>")
    for frac, _, color, width in lg.samples:
        bar = (f'<TABLE BORDER="0" CELLPADDING="0" CELLSPACING="0"><TR><TD WIDTH="48" '
               f'HEIGHT="{max(1, round(width * 1.5))}" FIXEDSIZE="TRUE" BGCOLOR="{color}"></TD>'
               "</TR></TABLE>")
        row(bar, f"|g| = {style.fmt(frac, 1)} · g_ref")
    row(f'<FONT COLOR="{style.VANISHED_COLOR}">╌ ╌ ╌ ╌</FONT>',
        f"dashed: vanished, |g| &lt; 1e-{lg.decades:g} · g_ref")
    row(f'<FONT COLOR="{style.VANISHED_COLOR}">· · · · ·</FONT>', "dotted: exactly 0")
    row(f'<FONT COLOR="{style.NONFINITE_COLOR}"><B>━━━━</B></FONT>', "magenta: NaN or Inf")
    for kind, word, thr in lg.flags:
        color = style.FLAG_STYLE[kind][2]
        row(f'<FONT COLOR="{color}"><B>{_e(word)}</B></FONT>', _e(thr, 300))
    swatches = "".join(f'<TD BGCOLOR="{c}"><FONT POINT-SIZE="10">{r}</FONT></TD>'
                       for r, c in style.ROLE_COLORS.items())
    rows.append('<TR><TD COLSPAN="2" ALIGN="LEFT"><TABLE BORDER="0" CELLSPACING="2" '
                f'CELLPADDING="3"><TR>{swatches}</TR></TABLE></TD></TR>')
    return ('<<TABLE BORDER="1" COLOR="#999999" CELLBORDER="0" CELLSPACING="1" '
            f'CELLPADDING="2">{"".join(rows)}</TABLE>>')


def to_digraph(data: ViewData, *, rankdir: str = "LR", dpi: float | None = None,
               fontname: str = FONT,
               extra: Mapping[str, Mapping[str, str]] | None = None) -> graphviz.Digraph:
    """The graphviz.Digraph of the view data (deterministic: same data, same DOT text).

    extra: more DOT attributes by node, edge or cluster id ("graph" for the graph itself); the
    training recorder passes fixed positions this way (tinygraph.viz.recorder).
    """
    extra = extra or {}
    g = graphviz.Digraph("tinygraph", strict=False)
    g.attr("graph", rankdir=rankdir, fontname=fontname, nodesep="0.18", ranksep="0.45",
           bgcolor="white")
    if data.level != "op":
        # Rank folded nodes globally rather than cluster by cluster: without it, edges between
        # the neurons of two layer clusters loop far around the boxes. (At op level the
        # per-cluster ranking keeps each layer's box compact, so it stays off there.)
        g.attr("graph", newrank="true")
    if dpi:
        g.attr("graph", dpi=f"{dpi:g}")
    g.attr("node", fontname=fontname, fontsize="12")
    g.attr("edge", fontname=fontname)
    if data.banners:
        g.attr("graph", label=_dot_text("\n".join(data.banners)), labelloc="t", labeljust="l",
               fontsize="14", fontcolor="#333333")
    if "graph" in extra:
        g.attr("graph", **extra["graph"])
    subs = {c.id: graphviz.Digraph(name=c.id) for c in data.clusters}
    for c in data.clusters:
        s = subs[c.id]
        s.attr(label=_dot_text(c.label, 300), style="rounded", color="#AAAAAA", fontsize="13",
               fontcolor="#CC3311" if c.flagged else "#333333", labeljust="l")
        s.attr(**extra.get(c.id, {}))
    for n in data.nodes:
        target = subs[n.cluster] if n.cluster else g
        attrs = _node_attrs(n)
        if n.tooltip:
            attrs["tooltip"] = _dot_text(n.tooltip)
        attrs.update(extra.get(n.id, {}))
        target.node(n.id, label=node_label(n), _attributes=attrs)
    # Nest clusters deepest first, so each is complete before it is copied into its parent.
    depth = {c.id: c.scope.count(".") for c in data.clusters}
    for c in sorted(data.clusters, key=lambda c: (-depth[c.id], _order(data.clusters, c))):
        (subs[c.parent] if c.parent else g).subgraph(subs[c.id])
    sign = bool(data.options.get("sign"))
    # At op level an edge between two top-level scopes (layers) spans at least two ranks, so
    # the next layer's weights (leaves) do not share a rank with the previous layer and the layer
    # boxes sit side by side instead of in a staircase. Folded levels have no such leaves, and
    # there the longer edges only loop around the boxes.
    top = {n.id: n.scope.split(".")[0] if n.cluster and n.scope else None for n in data.nodes}
    for e in data.edges:
        attrs = _edge_attrs(e, sign)
        if data.level == "op" and top.get(e.tail) != top.get(e.head):
            attrs["minlen"] = "2"
        g.edge(e.tail, e.head, _attributes={**attrs, **extra.get(e.id, {})})
    if data.legend is not None:
        with g.subgraph(name="legend") as s:
            s.attr(rank="sink")
            s.node("legend", label=legend_label(data), shape="plaintext",
                   _attributes={"class": "legend", **extra.get("legend", {})})
    return g


def _order(clusters: list[Cluster], c: Cluster) -> int:
    return clusters.index(c)


class View:
    """A drawn graph: view data plus rendering to SVG/PNG/PDF/DOT, files and Jupyter display."""

    def __init__(self, data: ViewData, *, rankdir: str = "LR", dpi: float | None = None) -> None:
        self.data = data
        self.rankdir = check_choice("draw", "rankdir", rankdir, ("LR", "TB", "RL", "BT"))
        self.dpi = None if dpi is None else check_float("draw", "dpi", dpi, lo=0.0, lo_open=True)
        self._digraph: graphviz.Digraph | None = None

    @property
    def flags(self) -> list[Flag]:
        """Every flag (node, kind, value, threshold, text), most severe first."""
        return self.data.flags

    @property
    def level(self) -> str:
        """The level drawn ("op", "neuron", "layer", or "block" for huge unscoped graphs)."""
        return self.data.level

    def report(self) -> str:
        """The flags and the diagnosis as text; needs no graphviz."""
        return self.data.report()

    def digraph(self) -> graphviz.Digraph:
        """The graphviz.Digraph (built once)."""
        if self._digraph is None:
            self._digraph = to_digraph(self.data, rankdir=self.rankdir, dpi=self.dpi)
        return self._digraph

    @property
    def source(self) -> str:
        """The DOT text."""
        return self.digraph().source

    def dot(self) -> str:
        """The DOT text (same as .source)."""
        return self.source

    def pipe(self, format: str = "svg") -> bytes:  # noqa: A002 - graphviz's own name
        """The rendered bytes in format ("svg", "png", "pdf" or "dot")."""
        if format not in FORMATS:
            raise InputError(f"render: format must be one of {', '.join(FORMATS)}, "
                             f"got {format!r}")
        if format == "dot":
            return self.source.encode("utf-8")
        try:
            return self.digraph().pipe(format=format)
        except graphviz.ExecutableNotFound:
            raise DotNotFoundError(INSTALL_HINT) from None

    def svg(self) -> str:
        """The SVG text."""
        return self.pipe("svg").decode("utf-8")

    def png(self) -> bytes:
        """The PNG bytes."""
        return self.pipe("png")

    def pdf(self) -> bytes:
        """The PDF bytes."""
        return self.pipe("pdf")

    def render(self, path: str | os.PathLike[str], format: str | None = None) -> Path:  # noqa: A002
        """Write the picture to path (format from the suffix unless given); returns the path."""
        p = Path(path)
        fmt = format or _SUFFIX.get(p.suffix.lower())
        if fmt is None:
            raise InputError(f"render: cannot tell the format of {str(p)!r}; use a suffix in "
                             f"{', '.join(_SUFFIX)} or pass format=")
        data = self.pipe(fmt)  # render before opening the file: a failure leaves no file
        p.write_bytes(data)
        return p

    def save(self, path: str | os.PathLike[str], format: str | None = None) -> Path:  # noqa: A002
        """Same as render(path, format)."""
        return self.render(path, format)

    def html(self, path: str | os.PathLike[str], title: str | None = None) -> Path:
        """Write an offline interactive page: hover tooltips, click a node to highlight its
        gradient path, data/grad/label toggles, flagged-node list, search (viz.html)."""
        return write_view(self.data, self.svg(), path, title)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter: the SVG, or (without `dot`) the flag report and the DOT source as text."""
        try:
            return {"image/svg+xml": self.svg(), "text/plain": self.report()}
        except DotNotFoundError as e:
            return {"text/plain": f"{e}\n\n{self.report()}\n\n{self.source}"}

    def _repr_svg_(self) -> str | None:
        try:
            return self.svg()
        except DotNotFoundError:
            return None

    def __repr__(self) -> str:
        d = self.data
        return (f"<tinygraph View: {d.level} level, {len(d.nodes)} nodes, {len(d.edges)} edges, "
                f"{len(d.flags)} flags>")
