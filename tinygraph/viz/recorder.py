"""Training recorder: snapshots of one graph's data, gradients and flags every k steps.

    rec = Recorder(model, lambda: losses.mse(model(X), y), every=5)
    for step in range(200):
        rec.step()            # forward, backward into fresh gradients, a snapshot when due
        opt.step()
    rec.html("run.html")      # step slider, play button, log-scale gradient-flow strip
    rec.stats()               # per-step figures as plain data (for plots and tests)
    rec.save_svgs("frames/")  # one SVG per recorded step

Every recorded step must build the same graph structure (same ops, names and shapes in the same
order), so that one layout serves all frames: graphviz places the nodes once (`dot -Tjson`) and
each frame is restyled and drawn at those positions (`neato -n2`). Nodes stay still while the
widths and colours of the gradient flow change.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import graphviz

from .._check import check_int
from ..analysis import DEFAULT, Activity, Thresholds
from ..diagnostics import gradient_flow
from ..engine import Node, walk
from ..errors import GraphError, InputError
from ..nn import Module
from .html import flag_rows, page, write
from .render import INSTALL_HINT, DotNotFoundError, to_digraph
from .style import fmt
from .view import ViewData, build

INLINE_FRAMES = 60  # Jupyter shows a recording inline up to this many frames


@dataclass(repr=False)
class Snapshot:
    """What one recorded step saw: its loss, per-layer figures and flagged nodes."""

    def __repr__(self) -> str:
        return (f"<Snapshot step {self.step}: loss {fmt(self.loss)}, {len(self.flags)} flags, "
                f"{self.dead_units} dead units>")

    step: int
    loss: float
    grad_preact: dict[str, float | None] = field(default_factory=dict)  # mean |dL/dz| per layer
    grad_params: dict[str, float | None] = field(default_factory=dict)  # mean |dL/dθ| per layer
    saturated: dict[str, float] = field(default_factory=dict)  # fraction of σ/tanh activations
    inactive: dict[str, float] = field(default_factory=dict)  # fraction of ReLU activations <= 0
    flags: list[dict[str, Any]] = field(default_factory=list)  # {node, kind, value, threshold}
    # ReLU units off on every sample of each of the last Thresholds.dead_snapshots snapshots
    # (this one included), or of every one so far when fewer were taken
    dead_units: int = 0
    inactive_units: int = 0  # ReLU units off on every sample of this one, but not dead


def _structure(root: Node) -> list[tuple[Any, ...]]:
    """The graph's shape without its numbers: per node op, label, shape and parent positions."""
    order = walk(root)
    index = {n: i for i, n in enumerate(order)}
    return [(n.op, n.label, n.shape, tuple(index[p] for p in n.parents)) for n in order]


def _finite_or_none(v: float | None) -> float | None:
    """v, or None when it is not finite (JSON has no NaN)."""
    return v if v is None or math.isfinite(v) else None


class Recorder:
    """Snapshots of a training run every `every` steps, for an animated, interactive page.

    model: the Module being trained (its parameters give the per-layer dL/dθ figures).
    loss_fn: builds the loss from the model's current parameters, with no arguments (it closes
    over the batch); the recorder runs it, back-propagates and snapshots. view options (level,
    g_ref, ...) go to tinygraph.viz; g_ref defaults to 1.0 (the loss's own gradient), so edge
    widths and colours mean the same across steps, and edge_labels to True (the page's "edge
    labels" box shows and hides them).

    A ReLU unit is dead when it has been off (z <= 0 on every sample) in each of the last
    thresholds.dead_snapshots snapshots (default 5), this one included, or in every snapshot so
    far when fewer were taken (so a unit off from the start is dead from the first frame); off
    now but not for that long, it is flagged "inactive" (self.activity counts, per unit, its
    consecutive off snapshots). So a one-sample frame does not flag dead a unit that fires again
    at the next step, and a unit that dies partway through training is called dead
    dead_snapshots - 1 snapshots after it first stays off.
    """

    def __init__(self, model: Module, loss_fn: Callable[[], Node], *, every: int = 1,
                 thresholds: Thresholds = DEFAULT, **view_options: Any) -> None:
        if not isinstance(model, Module):
            raise InputError(f"Recorder: model must be a tinygraph.nn Module, got "
                             f"{type(model).__name__}")
        if not callable(loss_fn):
            raise InputError(f"Recorder: loss_fn must be callable, got {type(loss_fn).__name__}")
        check_int("Recorder", "every", every, lo=1)
        if not isinstance(thresholds, Thresholds):
            raise InputError(f"Recorder: thresholds must be a tinygraph.thresholds.Thresholds, "
                             f"got {type(thresholds).__name__}")
        self.model = model
        self.loss_fn = loss_fn
        self.every = every
        self.thresholds = thresholds
        self.view_options = {"g_ref": 1.0, "edge_labels": True, **view_options}
        self.activity = Activity()
        self.snapshots: list[Snapshot] = []
        self.views: list[Any] = []  # the view data of each snapshot, for drawing
        self.steps_run = 0
        self._structure: list[tuple[Any, ...]] | None = None
        self._layout: Any = None

    # --- recording ---------------------------------------------------------------------------
    def step(self, snapshot: bool = False) -> Node:
        """One training step's forward and backward: gradients start from zero, a snapshot is
        taken when the step is due (0, every, 2·every, ...) or asked for (snapshot=True: the
        last step of a run, so the page's slider reaches it). Returns the loss; the caller then
        updates the parameters (optimizer.step())."""
        self.model.zero_grad()
        loss = self.loss_fn()
        if not isinstance(loss, Node) or not loss.is_scalar and loss.size != 1:
            what = loss.describe() if isinstance(loss, Node) else type(loss).__name__
            raise InputError(f"Recorder: loss_fn must return a scalar Node, got {what}")
        loss.backward()
        if snapshot or self.steps_run % self.every == 0:
            self.snapshot(loss, self.steps_run)
        self.steps_run += 1
        return loss

    def fit(self, optimizer: Any, steps: int) -> list[float]:
        """Run steps training steps (step(), then optimizer.step()); returns every step's loss.
        The last step is always recorded, so a run of 600 steps every 20 ends at step 599."""
        out = []
        if not hasattr(optimizer, "step"):
            raise InputError(f"Recorder.fit: optimizer must have a step() method, got "
                             f"{type(optimizer).__name__}")
        n = check_int("Recorder.fit", "steps", steps, lo=0)
        for i in range(n):
            out.append(self.step(snapshot=i == n - 1).item())
            optimizer.step()
        return out

    def snapshot(self, loss: Node, step: int) -> Snapshot:
        """Record the graph behind loss (backward() already run) as the frame of this step."""
        if loss.grad is None:
            raise GraphError(f"Recorder.snapshot: {loss.describe()} has no gradient; call "
                             "loss.backward() before recording")
        shape = _structure(loss)
        if self._structure is None:
            self._structure = shape
        elif shape != self._structure:
            raise GraphError(_difference("Recorder.snapshot", step, self._structure, shape))
        flow = gradient_flow(self.model, loss)
        view = _view(loss, self.thresholds, self.view_options, self.activity)
        health = view.health  # each layer's unit statistics, computed once for the diagram
        n = self.thresholds.dead_snapshots
        dead = sum(self.activity.dead_if_off(u, n) for u in view.off_units)
        snap = Snapshot(
            step=int(step), loss=loss.item(),
            grad_preact={k: _finite_or_none(v[1]) for k, v in flow.items()},
            grad_params={k: _finite_or_none(v[0]) for k, v in flow.items()},
            saturated={k: h.saturated_fraction for k, h in health.items()
                       if h.family == "squash"},
            inactive={k: h.inactive_fraction for k, h in health.items()
                      if h.family == "gate"},
            flags=_flags(view),
            dead_units=dead, inactive_units=len(view.off_units) - dead,
        )
        self.activity = self.activity.after(view.off_units)
        self.snapshots.append(snap)
        self.views.append(view)
        self._layout = None  # the layout covers every frame's label sizes: redo it
        return snap

    # --- display -----------------------------------------------------------------------------
    def __repr__(self) -> str:
        if not self.snapshots:
            return (f"<tinygraph Recorder: {type(self.model).__name__}, every {self.every} "
                    "steps, nothing recorded yet>")
        first, last = self.snapshots[0], self.snapshots[-1]
        return (f"<tinygraph Recorder: {type(self.model).__name__}, {len(self.snapshots)} "
                f"snapshots of steps {first.step}..{last.step} (every {self.every}), loss "
                f"{fmt(first.loss)} -> {fmt(last.loss)}, {len(last.flags)} flags at the last>")

    def _repr_html_(self) -> str:
        """Jupyter: the interactive page inline (an iframe's srcdoc) for up to INLINE_FRAMES
        frames, else (or without `dot`) a summary that says how to write the page."""
        summary = f"<pre>{html.escape(repr(self))}</pre>"
        if not self.snapshots or len(self.snapshots) > INLINE_FRAMES:
            return summary + ("<p>rec.html(\"run.html\") writes the page.</p>"
                              if self.snapshots else "")
        try:
            text = self.page()
        except DotNotFoundError as e:
            return summary + f"<pre>{html.escape(str(e))}</pre>"
        return (summary + '<iframe style="width:100%;height:640px;border:1px solid #ccc" '
                f'sandbox="allow-scripts" srcdoc="{html.escape(text, quote=True)}"></iframe>')

    # --- data out ----------------------------------------------------------------------------
    @property
    def steps(self) -> list[int]:
        """The recorded steps."""
        return [s.step for s in self.snapshots]

    def layers(self) -> list[str]:
        """Layer names in model order (those with any recorded figure)."""
        seen: dict[str, None] = {}
        for s in self.snapshots:
            seen |= dict.fromkeys(s.grad_preact)
        return list(seen)

    def grad_flow(self, kind: str = "preact") -> dict[str, list[float | None]]:
        """layer -> mean |dL/dz| (kind "preact") or mean |dL/dθ| ("params") at each recorded
        step; None where the layer had no such gradient."""
        if kind not in ("preact", "params"):
            raise InputError(f"Recorder.grad_flow: kind must be 'preact' or 'params', got {kind!r}")
        attr = "grad_preact" if kind == "preact" else "grad_params"
        return {L: [getattr(s, attr).get(L) for s in self.snapshots] for L in self.layers()}

    def stats(self) -> list[dict[str, Any]]:
        """Every snapshot as a plain dict (JSON-ready)."""
        return [asdict(s) for s in self.snapshots]

    def save_stats(self, path: str | os.PathLike[str]) -> Path:
        """Write stats() as JSON; returns the path."""
        p = Path(path)
        p.write_text(json.dumps({"every": self.every, "snapshots": self.stats()}, indent=1),
                     encoding="utf-8")
        return p

    def first_flagged(self, label: str, kind: str) -> int | None:
        """The first recorded step at which the node named label carries flag kind."""
        for s in self.snapshots:
            if any(f["node"] == label and f["kind"] == kind for f in s.flags):
                return s.step
        return None

    # --- drawing -----------------------------------------------------------------------------
    def layout(self) -> dict[str, dict[str, str]]:
        """Fixed positions for every frame, computed once by `dot` (DOT attributes by id).

        Node sizes are the largest each node takes in a sample of frames (the first, the last,
        evenly spaced ones and the first of each new set of flags), so any frame's label fits.
        """
        if not self.views:
            raise GraphError("Recorder: nothing recorded yet; call step() or snapshot() first")
        if self._layout is None:
            sized = _place([_digraph(self.views[i]) for i in _sample(self.snapshots)])
            width: dict[str, float] = {}
            height: dict[str, float] = {}
            for objects, _, _ in sized:
                for name, o in objects.items():
                    if "width" in o:
                        width[name] = max(width.get(name, 0.0), float(o["width"]))
                        height[name] = max(height.get(name, 0.0), float(o["height"]))
            sizes = {k: {"width": f"{width[k]:.4f}", "height": f"{height[k]:.4f}"}
                     for k in width}
            objects, edges, bb = _place([_digraph(self.views[0], sizes)])[0]
            out: dict[str, dict[str, str]] = {"graph": {"bb": bb}}
            for name, o in objects.items():
                if "bb" in o:  # a cluster
                    out[name] = {"bb": o["bb"]}
                elif "pos" in o:
                    out[name] = {"pos": o["pos"], "width": o["width"], "height": o["height"],
                                 "fixedsize": "true"}
            for eid, e in edges.items():
                out[eid] = {"id": eid, "pos": e["pos"]}
                if "lp" in e:  # where dot put the edge label (neato -n2 would centre it on it)
                    out[eid]["lp"] = e["lp"]
            self._layout = out
        return self._layout

    def svgs(self) -> list[str]:
        """Every frame as SVG text, drawn at the shared layout's positions (one `neato -n2` run)."""
        lay = self.layout()
        src = "\n".join(_digraph(v, lay).source for v in self.views)
        try:
            out = graphviz.pipe("neato", "svg", src.encode("utf-8"), neato_no_op=2,
                                quiet=True).decode("utf-8")
        except graphviz.ExecutableNotFound:
            raise DotNotFoundError(INSTALL_HINT) from None
        frames = ["<?xml" + part for part in out.split("<?xml")[1:]]
        if len(frames) != len(self.views):
            raise GraphError(f"Recorder: graphviz drew {len(frames)} frames for "
                             f"{len(self.views)} snapshots")
        return frames

    def save_svgs(self, directory: str | os.PathLike[str], prefix: str = "step") -> list[Path]:
        """Write every frame as directory/{prefix}_{step:06d}.svg; returns the paths."""
        frames = self.svgs()  # drawn first: a graphviz failure leaves no half-written folder
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for snap, svg in zip(self.snapshots, frames, strict=True):
            path = folder / f"{prefix}_{snap.step:06d}.svg"
            path.write_text(svg, encoding="utf-8")
            paths.append(path)
        return paths

    def html(self, path: str | os.PathLike[str], title: str = "tinygraph training run") -> Path:
        """Write the interactive page: frames with a step slider and play button, hover,
        click-to-highlight, toggles, flagged-node list, search, and the gradient-flow strip."""
        return write(path, self.page(title))

    def page(self, title: str = "tinygraph training run") -> str:
        """The interactive page's HTML text (what html() writes)."""
        banner = " · ".join(self.views[0].banners) if self.views else ""
        return page(
            self.svgs(), [flag_rows(v) for v in self.views], title=title, banner=banner,
            steps=self.steps, losses=[s.loss for s in self.snapshots],
            flow=self.grad_flow("preact"),
            # Every frame's numbers on every edge would crowd the picture: hidden until asked.
            edge_labels=any(e.label for v in self.views for e in v.edges), labels_shown=False,
        )


def _view(loss: Node, thresholds: Thresholds, options: dict[str, Any],
          activity: Activity) -> ViewData:
    return build(loss, thresholds=thresholds, activity=activity, **options)


def _flags(view: ViewData) -> list[dict[str, Any]]:
    return [{"node": f.label, "id": f.node, "kind": f.kind, "value": _finite_or_none(f.value),
             "threshold": f.threshold, "text": f.text} for f in view.flags]


def _digraph(view: ViewData, extra: dict[str, dict[str, str]] | None = None) -> graphviz.Digraph:
    """The frame's Digraph; nodes and edges carry their view ids, so graphviz's JSON and SVG
    output name them (SVG <g id="n7_L1_n0_act">)."""
    ids = {x.id: {"id": x.id} for x in (*view.nodes, *view.edges)}
    if extra:
        for k, v in extra.items():
            ids[k] = {**ids.get(k, {}), **v}
    return to_digraph(view, extra=ids)


def _place(graphs: list[graphviz.Digraph]) -> list[tuple[dict[str, dict], dict[str, dict], str]]:
    """Lay out graphs with one `dot -Tjson` run: (objects by name, edges by id, graph bb) each."""
    src = "\n".join(g.source for g in graphs)
    try:
        raw = graphviz.pipe("dot", "json", src.encode("utf-8"), quiet=True).decode("utf-8")
    except graphviz.ExecutableNotFound:
        raise DotNotFoundError(INSTALL_HINT) from None
    dec = json.JSONDecoder()
    out = []
    i = 0
    while len(out) < len(graphs):
        while raw[i].isspace():
            i += 1
        doc, i = dec.raw_decode(raw, i)
        objects = {o["name"]: o for o in doc.get("objects", [])}
        edges = {e["id"]: e for e in doc.get("edges", []) if "id" in e}
        out.append((objects, edges, doc["bb"]))
    return out


def _sample(snaps: list[Snapshot], k: int = 10) -> list[int]:
    """Frames whose label sizes bound the others: first, last, k evenly spaced, and the first
    frame of every new set of flags (a flag adds a badge row to its node)."""
    n = len(snaps)
    pick = {0, n - 1, *(round(j * (n - 1) / max(1, k - 1)) for j in range(k))}
    seen: set[frozenset] = set()
    for i, s in enumerate(snaps):
        sig = frozenset((f["id"], f["kind"]) for f in s.flags)
        if sig not in seen:
            seen.add(sig)
            pick.add(i)
    return sorted(pick)


def _difference(who: str, step: int, first: list[tuple[Any, ...]],
                now: list[tuple[Any, ...]]) -> str:
    """Say where the graph at step stopped matching the first recorded one."""
    if len(first) != len(now):
        head = f"{len(now)} nodes instead of {len(first)}"
    else:
        head = "a node differs"
    for i, (a, b) in enumerate(zip(first, now, strict=False)):
        if a != b:
            what = ("op", "name", "shape", "parents")
            diff = next(w for w, x, y in zip(what, a, b, strict=True) if x != y)
            return (f"{who}: the graph at step {step} does not match the first recorded one "
                    f"({head}; node {i} ({b[1] or b[0]}) has {diff} {b[what.index(diff)]!r}, "
                    f"was {a[what.index(diff)]!r}). A recorder needs the same graph structure at "
                    "every step: keep the batch size and the model fixed")
    return (f"{who}: the graph at step {step} does not match the first recorded one ({head}). "
            "A recorder needs the same graph structure at every step: keep the batch size and "
            "the model fixed")
