"""The plain view data of a diagram: nodes, edges, clusters, flags and legend, as dataclasses
that hold what is shown already formatted (view.build makes them, render.py and html.py draw
them). Flags are data: a renderer reads Flag.kind and Cluster.flagged, never label text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..analysis import (
    UnitStats,
)
from ..errors import NotFound
from . import style
from .style import fmt

LEVELS = ("auto", "op", "neuron", "layer")

@dataclass
class Flag:
    """One finding: which node, what kind, the measured value and the threshold it crossed."""

    node: str  # view node id
    label: str  # the name shown on the node
    kind: str  # one of style.FLAG_KINDS
    value: float
    threshold: float
    text: str
    units: tuple[int, int] | None = None  # (flagged units, units) for activations

    def __repr__(self) -> str:
        return f"<Flag {style.text(self.label)}: {self.kind}: {style.text(self.text, 200)}>"

    def as_dict(self) -> dict[str, Any]:
        """The flag as plain data."""
        return {"node": self.node, "label": self.label, "kind": self.kind, "value": self.value,
                "threshold": self.threshold, "text": self.text, "units": self.units}


@dataclass
class ViewNode:
    """One box of the diagram; what it shows is already formatted."""

    id: str
    header: str
    role: str  # one of style.ROLES
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

    def __repr__(self) -> str:
        flags = ", ".join(f.kind for f in self.flags)
        return (f"<ViewNode {self.id} {style.text(self.header)!r} ({self.role}, {self.kind}"
                f"{', ' + flags if flags else ''})>")

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

    def __repr__(self) -> str:
        g = "" if self.magnitude is None else f", |g| {fmt(self.magnitude)}"
        return f"<ViewEdge {self.tail} -> {self.head} ({self.state}{g})>"

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
    flagged: bool = False  # a unit of the layer is saturated or dead (the label says which)

    def __repr__(self) -> str:
        return f"<Cluster {style.text(self.scope)!r}: {len(self.nodes)} nodes>"


@dataclass
class Legend:
    """Edge samples on the log scale, flag swatches with thresholds, and the diagnosis."""

    g_ref: float | None
    decades: float
    samples: list[tuple[float, float, str, float]]  # (fraction of g_ref, r, colour, width)
    flags: list[tuple[str, str, str]]  # (kind, glyph and word, threshold text)
    diagnosis: str
    lines: list[str]

    def __repr__(self) -> str:
        return f"<Legend g_ref {fmt(self.g_ref)}: {style.text(self.diagnosis, 200)!r}>"


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
    # Each layer's unit statistics (analysis.UnitStats), as its cluster and the legend read them.
    health: dict[str, UnitStats] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"<tinygraph ViewData: {self.level} level, {len(self.nodes)} nodes, "
                f"{len(self.edges)} edges, {len(self.flags)} flags>")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter: the diagram (as tinygraph.viz.View shows it), with the report as text."""
        from .render import View  # render builds on this module

        return View(self)._repr_mimebundle_(include, exclude)

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
            lines.append(f"{f.label}: {style.FLAG_STYLE[f.kind][0]} {f.kind}: {f.text}")
        # Names are the user's: a terminal must not obey an escape sequence hidden in one.
        return "\n".join(style.text(line, style.TIP_MAX) for line in lines)
