"""Health of a network on data: dead ReLU units, saturated sigmoid/tanh units, gradient flow.

Activations, their units and their local derivatives come from tinygraph.analysis (the diagrams
read the same): an activation in any spelling (tg.sigmoid, or the notes' 1/(1 + exp(-z))), f'(z)
through the op table's own rules, units along the layer's feature axis in the row (N, units) or
the column (units, N) convention. Layers are found by scope (node.scope "L1" for a Linear layer,
"L1.n2" for a scalar neuron); a scalar neuron is one unit, seen once per sample. Thresholds are
those of tinygraph.thresholds: an activation is saturated when σ'(z) < 0.01 (|z| > 4.6) or
1 - tanh² < 0.01, and a unit when at least half of its activations are (saturated_share); a
ReLU unit is dead when f'(z) = 0 (z <= 0) on every sample.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from . import analysis
from .analysis import (
    ACTIVATION_OPS,
    DEFAULT,
    PREACT,
    Thresholds,
    layer_of,
    unit_dead,
    unit_saturated,
)
from .engine import Node, walk
from .errors import InputError, NotFound
from .nn import Module

__all__ = ["ACTIVATION_OPS", "LayerDiagnostics", "Report", "activation_stats", "diagnose",
           "gradient_flow", "unit_dead", "unit_saturated"]


@dataclass
class LayerDiagnostics:
    """One layer's figures; counts are units, fractions are of (unit, sample) activations."""

    layer: str
    activation: str | None = None  # name of its activation (analysis), None for a linear layer
    family: str | None = None  # "gate" (ReLU-like) or "squash" (sigmoid-like), as analysis says
    units: int = 0
    samples: int = 0
    dead: int = 0  # ReLU units whose input was <= 0 on every sample (unit_dead)
    inactive_fraction: float = 0.0  # ReLU-family activations with z <= 0
    saturated: int = 0  # sigmoid/tanh units with >= saturated_share of activations saturated
    saturated_fraction: float = 0.0  # sigmoid/tanh activations in the saturated regime
    grad_params: float | None = None  # mean |dL/dθ| over the layer's parameters
    grad_preact: float | None = None  # mean |dL/dz| over its pre-activations

    @property
    def dead_fraction(self) -> float:
        """Fraction of the layer's units that are dead."""
        return self.dead / self.units if self.units else 0.0

    @property
    def saturated_units_fraction(self) -> float:
        """Fraction of the layer's units that count as saturated (unit_saturated)."""
        return self.saturated / self.units if self.units else 0.0

    def __repr__(self) -> str:
        return f"<LayerDiagnostics {self.describe()}>"

    def describe(self) -> str:
        """A one-line diagnosis, e.g. "L1: 7/8 sigmoid units saturated (87% of activations
        saturated)"."""
        parts = []
        if self.family == "gate":
            parts.append(f"{self.dead}/{self.units} {self.activation} units dead "
                         f"({self.inactive_fraction:.0%} of activations inactive)")
        elif self.family == "squash":
            parts.append(f"{self.saturated}/{self.units} {self.activation} units saturated "
                         f"({self.saturated_fraction:.0%} of activations saturated)")
        if self.grad_params is not None:
            parts.append(f"mean |dL/dθ| {self.grad_params:.2e}")
        if not parts:
            parts.append(f"{self.units} {self.activation or 'linear'} units")
        return f"{self.layer}: " + "; ".join(parts)


@dataclass
class Report:
    """Diagnostics of every layer, in order; str() gives a table."""

    layers: list[LayerDiagnostics]

    def __getitem__(self, layer: str) -> LayerDiagnostics:
        for d in self.layers:
            if d.layer == layer:
                return d
        raise NotFound(f"diagnostics: no layer {layer!r}; have {[d.layer for d in self.layers]}")

    def __repr__(self) -> str:
        return f"<diagnostics Report: {len(self.layers)} layers>\n{self.table()}"

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.table())}</pre>"

    def to_dicts(self) -> list[dict[str, Any]]:
        """The report as plain data (one dict per layer)."""
        return [asdict(d) | {"dead_fraction": d.dead_fraction,
                             "saturated_units_fraction": d.saturated_units_fraction}
                for d in self.layers]

    def table(self) -> str:
        """A fixed-width text table, one row per layer."""
        def g(v: float | None) -> str:
            return "-" if v is None else f"{v:.2e}"

        head = ("layer", "act", "units", "dead", "inactive", "saturated", "sat. acts",
                "mean|dL/dθ|", "mean|dL/dz|")
        rows = [head]
        for d in self.layers:
            relu = d.family == "gate"
            squash = d.family == "squash"
            rows.append((
                d.layer, d.activation or "linear", str(d.units),
                f"{d.dead} ({d.dead_fraction:.0%})" if relu else "-",
                f"{d.inactive_fraction:.0%}" if relu else "-",
                f"{d.saturated} ({d.saturated_units_fraction:.0%})" if squash else "-",
                f"{d.saturated_fraction:.0%}" if squash else "-",
                g(d.grad_params), g(d.grad_preact),
            ))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self) -> str:
        return self.table()


def _roots(outputs: Node | Sequence[Node]) -> list[Node]:
    if isinstance(outputs, Node):
        return [outputs]
    roots = list(outputs)
    if not all(isinstance(r, Node) for r in roots):
        raise InputError("diagnostics: expected a node or a list of nodes")
    return roots


def _nodes(outputs: Node | Sequence[Node]) -> list[Node]:
    """Every node the outputs depend on, each once, in topological order."""
    seen: set[Node] = set()
    out: list[Node] = []
    for r in _roots(outputs):
        for n in walk(r):
            if n not in seen:
                seen.add(n)
                out.append(n)
    return out


def activation_stats(outputs: Node | Sequence[Node],
                     thresholds: Thresholds = DEFAULT) -> dict[str, LayerDiagnostics]:
    """Dead and saturated units per layer, from the graph(s) that computed outputs (the unit
    statistics of tinygraph.analysis, which the diagrams read too)."""
    stats: dict[str, LayerDiagnostics] = {}
    for layer, acts in analysis.by_layer(analysis.find(_nodes(outputs)).values()).items():
        s = analysis.unit_stats(acts, thresholds, key=layer)
        stats[layer] = LayerDiagnostics(
            layer, activation="/".join(sorted(s.names)), family=s.family, units=s.units,
            samples=s.samples, dead=s.dead, inactive_fraction=s.inactive_fraction,
            saturated=s.saturated, saturated_fraction=s.saturated_fraction)
    return stats


def _mean_abs_over(grads: list[Any]) -> float | None:
    """Mean |g| over every entry of the gradients given (None ones skipped); None if none."""
    arrs = [np.abs(np.asarray(g, dtype=np.float64)).reshape(-1) for g in grads if g is not None]
    if not arrs:
        return None
    return float(np.concatenate(arrs).mean())


def gradient_flow(model: Module, outputs: Node | Sequence[Node]) -> dict[str, tuple[float | None,
                                                                                   float | None]]:
    """layer -> (mean |grad| of its parameters, mean |grad| of its pre-activations "z").

    Read after backward() from outputs (usually the loss) has filled the gradients.
    """
    params: dict[str, list[Any]] = {}
    for name, p in model.named_parameters():
        params.setdefault(layer_of(name) or name, []).append(p.grad)
    zs: dict[str, list[Any]] = {}
    for n in _nodes(outputs):
        layer = layer_of(n.scope)
        if n.name == PREACT and n.op is not None and layer is not None:
            zs.setdefault(layer, []).append(n.grad)
    return {k: (_mean_abs_over(params.get(k, [])), _mean_abs_over(zs.get(k, [])))
            for k in dict.fromkeys([*params, *zs])}


def diagnose(model: Module, X: Any, y: Any = None,
             loss: Callable[[Node, Any], Node] | None = None,
             thresholds: Thresholds = DEFAULT) -> Report:
    """Run model on the batch X and report every layer's dead/saturated units; with y and loss,
    also back-propagate loss(model(X), y) and report gradient flow.

    The model's own .grad values are restored afterwards, so diagnosing never disturbs training.
    """
    if not isinstance(model, Module):
        raise InputError(f"diagnose: model must be a tinygraph.nn Module, got "
                         f"{type(model).__name__}")
    if loss is not None and not callable(loss):
        raise InputError(f"diagnose: loss must be callable, got {type(loss).__name__}")
    if not isinstance(thresholds, Thresholds):
        raise InputError(f"diagnose: thresholds must be a tinygraph.thresholds.Thresholds, got "
                         f"{type(thresholds).__name__}")
    out = model(X)
    roots = _roots(out) if not isinstance(out, list) else out
    acts = activation_stats(roots, thresholds)
    flow: dict[str, tuple[float | None, float | None]] = {}
    if loss is not None:
        if y is None:
            raise InputError("diagnose: a loss needs the labels y")
        params = model.parameters()
        saved = [p.grad for p in params]
        try:
            for p in params:
                p.grad = None
            L = loss(out, y)
            L.backward()
            flow = gradient_flow(model, L)
        finally:
            for p, g in zip(params, saved, strict=True):
                p.grad = g
    names = list(dict.fromkeys(layer_of(name) or name for name, _ in model.named_parameters()))
    names += [k for k in acts if k not in names]
    # A layer's scope is its own name, or its path when it sits in a user's module or container.
    named = model.named_modules()
    widths = {m.name: getattr(m, "nout", 0) for _, m in named}
    widths.update((path, getattr(m, "nout", 0)) for path, m in named if path)
    layers = []
    for name in names:
        d = acts.get(name) or LayerDiagnostics(name, units=widths.get(name, 0))
        if name in flow:
            d.grad_params, d.grad_preact = flow[name]
        layers.append(d)
    return Report(layers)
