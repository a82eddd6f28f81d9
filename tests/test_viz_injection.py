"""Hostile names and scopes through every render path: SVG, DOT, report, both pages.

A name is text wherever it goes: no markup of its own, no DOT escape, control characters and
lone surrogates visible, very long names shortened. (The browser half loads the pages in
chromium: tests/browser/test_injection.py.)
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hostile import HOSTILE, is_markup_free

import tinygraph as tg
import tinygraph.viz as viz
from tinygraph.viz import style
from tinygraph.viz.html import page

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed")


def hostile_graph(name: str) -> tg.Node:
    """A small graph whose scope, leaf, intermediate and loss all carry name."""
    with tg.scope(name):
        w = tg.Node(np.array([[0.5, -1.0], [2.0, 0.1]]), name=name)
        x = tg.Node(np.array([[1.0, 2.0]]), requires_grad=False, name=name + "x")
        h = tg.sigmoid(x @ w)
        h.name = name
    loss = h.sum()
    loss.name = name
    loss.backward()
    return loss


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_text_is_plain_printable_and_bounded(name: str) -> None:
    t = style.text(name)
    assert len(t) <= style.LABEL_MAX
    assert all(c.isprintable() or c == " " for c in t)
    t.encode("utf-8")  # no lone surrogate left
    assert style.text(name, lines=True, limit=10**6).count("\n") == name.count("\n")


def test_text_makes_controls_visible() -> None:
    assert style.text("a\x1bb") == "a\\x1bb"
    assert style.text("\x00") == "\\x00"
    assert style.text("s\ud800") == "s\\ud800"
    assert style.text("x" * 100, 10) == "x" * 9 + "…"


@needs_dot
@pytest.mark.parametrize("level", ["op", "neuron"])
@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_names_render_as_text(name: str, level: str, tmp_path) -> None:
    loss = hostile_graph(name)
    view = viz.draw(loss, level=level, edge_labels=True)
    svg = view.svg()
    assert is_markup_free(svg) == []
    assert "<table" not in svg.lower() and "<font" not in svg.lower()
    view.report().encode("utf-8")
    assert "\x1b" not in view.report()
    # Both pages: the interactive one and a recorder page with a step strip.
    check_page(view.html(tmp_path / "v.html", title=name).read_text(encoding="utf-8"))
    check_page(page([svg, svg], [[("n0", name, "dead", name)], []], title=name, banner=name,
                    steps=[0, 1], losses=[1.0, 0.5], flow={name: [1.0, 0.1]}))


def check_page(text: str) -> None:
    """The page's own two script blocks and nothing else; its frames markup-free."""
    head, rest = text.split('<script type="application/json" id="tg-data">', 1)
    payload, tail = rest.split("</script>", 1)
    assert "<script" not in head.lower() and "<img" not in head.lower()
    assert tail.lower().count("<script") == 1  # the page's code
    assert "</script" not in payload.lower() and "<!--" not in payload
    data = json.loads(payload)
    for frame in data["frames"]:
        assert is_markup_free(frame) == []


@needs_dot
def test_scope_cannot_become_an_html_label() -> None:
    evil = '<<TABLE HREF="javascript:alert(3)"><TR><TD>x</TD></TR></TABLE>>'
    with tg.scope(evil):  # no activation: the cluster's label is the scope itself
        w = tg.Node(np.array([1.0, 2.0]), name="w")
        y = w * 3.0
    loss = y.sum()
    loss.backward()
    view = viz.draw(loss, level="op")
    assert any(c.label == evil for c in view.data.clusters)
    assert f"label={evil}" not in view.source  # a quoted DOT string, not an HTML-like label
    assert is_markup_free(view.svg()) == []
    assert "&lt;&lt;TABLE HREF" in view.svg()  # drawn as the text it is


@needs_dot
def test_trailing_backslash_and_dot_escapes_stay_literal() -> None:
    loss = hostile_graph("back\\")
    assert "back\\" in viz.draw(loss, level="op").svg()
    loss = hostile_graph("\\N\\G")
    svg = viz.draw(loss, level="op").svg()
    assert "\\N\\G" in svg and "tinygraph" not in svg.split("</title>", 1)[1].split("<title>")[0]
