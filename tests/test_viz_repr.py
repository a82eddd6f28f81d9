"""Jupyter displays: every public viz object shows a diagram, the page inline or a short
summary; never a dataclass dump of its data or a bare <... at 0x...>."""

from __future__ import annotations

import html
import shutil

import numpy as np
import pytest
from browser import cases

import tinygraph as tg
import tinygraph.viz as viz
from tinygraph import diagnostics, nn

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed")


def _short(obj: object, limit: int = 400) -> str:
    text = repr(obj)
    assert " at 0x" not in text
    assert len(text) <= limit, text[:200]
    return text


def _loss() -> tg.Node:
    model = nn.TensorMLP(3, [4, 1], activation="sigmoid", scale=30.0, seed=0)
    X = np.random.default_rng(0).normal(size=(64, 3))
    loss = (model(X) ** 2).mean()
    loss.backward()
    return loss


def test_view_objects_have_short_reprs() -> None:
    view = viz.draw(_loss(), level="op")
    d = view.data
    assert _short(d).startswith("<tinygraph ViewData: op level")
    _short(view)
    for obj in (*d.nodes, *d.edges, *d.clusters, *d.flags, d.legend):
        _short(obj, 600)


@needs_dot
def test_viewdata_displays_as_the_diagram() -> None:
    bundle = viz.draw(_loss(), level="op").data._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
    assert "saturated" in bundle["text/plain"]


@needs_dot
def test_recorder_displays_inline_and_summarizes() -> None:
    rec = cases.record(steps=4)
    text = _short(rec)
    assert "4 snapshots of steps 0..3" in text
    out = rec._repr_html_()
    assert "<iframe" in out and "srcdoc=" in out
    inner = html.unescape(out.split('srcdoc="', 1)[1].rsplit('"', 1)[0])
    assert inner.startswith("<!DOCTYPE html>") and 'id="tg-slider"' in inner
    _short(rec.snapshots[0])
    empty = viz.Recorder(*cases.chain())
    assert "nothing recorded yet" in _short(empty)
    assert "<iframe" not in empty._repr_html_()


def test_diagnostics_report_shows_its_table() -> None:
    model = nn.TensorMLP(3, [4, 1], activation="relu", seed=0)
    X = np.random.default_rng(1).normal(size=(8, 3))
    report = diagnostics.diagnose(model, X)
    text = repr(report)
    assert " at 0x" not in text and "layer" in text and "L1" in text
    assert report._repr_html_().startswith("<pre>")
    assert repr(report.layers[0]).startswith("<LayerDiagnostics L1:")


def test_activation_repr_is_short() -> None:
    from tinygraph import analysis
    from tinygraph.engine import walk

    z = tg.Node(np.zeros((500, 40)), name="z")
    h = 1.0 / (1.0 + tg.exp(-z))
    (act,) = analysis.find(walk(h)).values()
    assert _short(act).startswith("<Activation sigmoid (squash)")
