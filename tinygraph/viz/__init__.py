"""Diagrams of tinygraph graphs that show where gradients flow and where they die.

    import tinygraph.viz as viz
    view = viz.draw(loss)          # after loss.backward()
    view.save("net.svg")           # or .png / .pdf / .dot; inline in Jupyter
    print(view.report())           # the flags as text, no graphviz needed

Edges carry the backward message g = (d child / d parent) · child.grad on a log scale; nodes flag
saturated sigmoid/tanh units, dead ReLUs, vanishing, exploding and non-finite gradients. The
activations, their units and f'(z) come from tinygraph.analysis (any spelling, either
convention); every user string reaches Graphviz and the pages through style.text.
"""

from __future__ import annotations

from ..analysis import Thresholds
from ..engine import Node
from . import style
from .recorder import Recorder
from .render import DotNotFoundError, View, to_digraph
from .style import fmt
from .view import (
    LEVELS,
    Cluster,
    Flag,
    Legend,
    Options,
    ViewData,
    ViewEdge,
    ViewNode,
    build,
    build_view,
)

__all__ = ["draw", "build", "build_view", "Options", "View", "ViewData", "ViewNode", "ViewEdge",
           "Cluster", "Flag", "Legend", "DotNotFoundError", "to_digraph", "fmt", "style", "LEVELS",
           "Recorder"]


def draw(root: Node, level: str = "auto", *, max_nodes: int = 250,
         focus: Node | str | None = None, thresholds: Thresholds | None = None,
         g_ref: float | str = "max", compact: bool = True, inline_constants: bool = True,
         edge_labels: bool = False, sign: bool = False, legend: bool = True,
         roles: dict[str, str] | None = None, heat: bool = True, rankdir: str = "LR",
         dpi: float | None = None) -> View:
    """Draw root's graph: a View that renders to SVG/PNG/PDF/DOT and reports its flags.

    level: "auto" (op level, collapsing to neuron then layer above max_nodes), "op", "neuron" or
    "layer". focus: a node (or its name) whose ancestors and descendants alone are drawn.
    thresholds: a tinygraph.thresholds.Thresholds. g_ref: "max" (largest edge message) or a
    number (1.0 keeps the scale comparable across steps). compact=False draws each op as its own
    node. roles: {"name": "input" | "parameter" | "constant" | "intermediate" | "loss"}.
    inline_constants: unnamed constants (the 2 in x*2) are written into their op, not drawn.
    edge_labels: write g on each edge (2 significant figures). sign: colour negative messages
    orange. legend / heat: the legend box, the heat strips of tensor nodes. rankdir / dpi: the
    graphviz layout direction and the PNG resolution.
    """
    data = build(root, level, max_nodes=max_nodes, focus=focus, thresholds=thresholds,
                 g_ref=g_ref, compact=compact, inline_constants=inline_constants,
                 edge_labels=edge_labels, sign=sign, legend=legend, roles=roles, heat=heat)
    return View(data, rankdir=rankdir, dpi=dpi)


def watch(module: object, **options: object) -> object:
    """Watch a PyTorch model with these diagrams: tinygraph.pytorch.watch (the torch extra)."""
    from ..pytorch import watch as _watch

    return _watch(module, **options)


__all__ += ["watch"]
