"""tinygraph.viz rendering: the DOT text (graphviz package only), real SVG, files, missing `dot`."""

from __future__ import annotations

import math
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import tinygraph as tg
import tinygraph.viz as viz
from tinygraph.errors import TinygraphError
from tinygraph.viz.render import DotNotFoundError

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
SNAPSHOTS = Path(__file__).parent / "snapshots"
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


def _mlp_loss(saturate: bool = True) -> tg.Node:
    model = tg.nn.MLP(3, [4, 4, 1], "sigmoid", seed=1)
    if saturate:
        for p in model.layers[0].parameters():
            p.data = p.data * 6.0 + (12.0 if p.name == "b" else 0.0)
    loss = (model([0.3, -1.1, 0.8]) - 1.0) ** 2
    loss.name = "loss"
    loss.backward()
    return loss


def _neuron() -> tg.Node:
    x = [tg.Node(v, name=f"x{i}", requires_grad=False) for i, v in enumerate([1.0, -2.0])]
    with tg.scope("n0"):
        w = [tg.Node(v, name=f"w{i}") for i, v in enumerate([3.0, -2.0])]
        b = tg.Node(1.0, name="b")
        z = w[0] * x[0] + w[1] * x[1] + b
        z.name = "z"
        act = tg.sigmoid(z)
        act.name = "act"
    loss = (act - 1.0) ** 2
    loss.name = "loss"
    loss.backward()
    return loss


# --- DOT text -------------------------------------------------------------------------------------


def test_dot_text_is_deterministic():
    a = viz.draw(_mlp_loss(), level="op").source
    b = viz.draw(_mlp_loss(), level="op").source
    assert a == b
    assert "0x" not in a  # no memory addresses


def test_dot_carries_penwidth_classes_clusters_and_dashes():
    v = viz.draw(_mlp_loss(), level="op")
    dot = v.source
    g = v.digraph()
    assert "subgraph cluster_L1 {" in dot and "subgraph cluster_L1_n0 {" in dot
    assert "penwidth=" in dot
    sat = [n for n in v.data.nodes if any(f.kind == "saturated" for f in n.flags)]
    assert sat
    for n in sat:
        line = next(ln for ln in g.body if ln.lstrip().startswith(f"{n.id} ["))
        assert 'class="' in line and "saturated" in line.split('class="')[1].split('"')[0]
        assert 'color="#CC3311"' in line  # the red border
        assert "⚠ saturated" in line  # glyph and word in the label
    vanished = [e for e in v.data.edges if e.state == "vanished"]
    assert vanished
    for e in vanished:
        line = next(ln for ln in g.body if ln.lstrip().startswith(f"{e.tail} -> {e.head} "))
        assert "style=dashed" in line and "class=vanished" in line


def test_dot_snapshot_of_one_neuron():
    # The text is deterministic, so a stored snapshot pins it. After a deliberate visual change,
    # rewrite it with TINYGRAPH_UPDATE_SNAPSHOTS=1 and look at the gallery.
    dot = viz.draw(_neuron(), legend=False).source
    path = SNAPSHOTS / "viz_neuron.dot"
    if os.environ.get("TINYGRAPH_UPDATE_SNAPSHOTS") == "1":
        path.write_text(dot, encoding="utf-8")
    assert dot == path.read_text(encoding="utf-8")
    assert dot.count(" -> ") == 11 and "\tsubgraph cluster_n0 {" in dot


def test_edge_labels_option():
    v = viz.draw(_neuron(), edge_labels=True)
    labelled = [e for e in v.data.edges if e.label]
    assert labelled and all(e.label == viz.fmt(e.message, 2) for e in labelled)
    assert "label=" in v.source


def test_sign_option_colours_negative_messages_orange():
    v = viz.draw(_neuron(), sign=True)
    neg = [e for e in v.data.edges if e.state == "flow" and e.negative]
    assert neg
    e = neg[0]
    line = next(ln for ln in v.digraph().body if ln.lstrip().startswith(f"{e.tail} -> {e.head}"))
    assert viz.style.edge_color(e.r, negative=True) in line


def test_non_compact_mode_draws_op_nodes_with_symbols():
    v = viz.draw(_neuron(), compact=False)
    ops = [n for n in v.data.nodes if n.kind == "op"]
    assert {n.header for n in ops} >= {"×", "σ"}
    assert all(any(e.head == n.id for e in v.data.edges) for n in ops)


# --- real SVG -------------------------------------------------------------------------------------


def _svg_groups(svg: str, cls: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [g for g in root.iter(f"{SVG}g") if cls in g.get("class", "").split()]


def _title(g: ET.Element) -> str:
    return g.find(f"{SVG}title").text


@needs_dot
def test_svg_saturated_classes_are_exactly_the_saturated_nodes():
    v = viz.draw(_mlp_loss(), level="op")
    svg = v.svg()
    got = {_title(g) for g in _svg_groups(svg, "saturated")}
    want = {n.id for n in v.data.nodes if any(f.kind == "saturated" for f in n.flags)}
    assert got == want and len(want) == 4


@needs_dot
def test_svg_clusters_match_layers():
    v = viz.draw(_mlp_loss(), level="neuron")
    got = {_title(g) for g in _svg_groups(v.svg(), "cluster")}
    assert got == {"cluster_L1", "cluster_L2", "cluster_L3"}


@needs_dot
def test_svg_stroke_width_grows_with_message_and_vanished_edges_are_dashed():
    v = viz.draw(_mlp_loss(), level="op")
    edges = {e.id.split("#")[0]: e for e in v.data.edges}
    seen = []
    dashed = 0
    for g in _svg_groups(v.svg(), "edge"):
        e = edges[_title(g)]  # the parser turns Graphviz's &#45;&gt; back into "->"
        path = g.find(f".//{SVG}path")
        width = float(path.get("stroke-width", "1"))
        if e.state == "flow":
            seen.append((e.magnitude, width))
        if e.state == "vanished":
            assert path.get("stroke-dasharray")
            dashed += 1
    assert dashed > 0
    seen.sort()
    widths = [w for _, w in seen]
    assert widths == sorted(widths) and widths[0] < widths[-1]


@needs_dot
def test_svg_tooltips_hold_the_local_derivative():
    v = viz.draw(_neuron())
    act = v.data.node("n0.act")
    node = next(g for g in _svg_groups(v.svg(), "node") if _title(g) == act.id)
    tip = node.find(f".//{SVG}a").get(f"{XLINK}title")
    tip = tip.replace("\xa0", " ")  # Graphviz turns double spaces into no-break spaces
    s = 1 / (1 + math.exp(-8.0))
    assert f"σ'(z) = s(1-s) = {s:.5g}·" in tip
    assert f"data = {act.data!r}" in tip


@needs_dot
@pytest.mark.parametrize(("suffix", "magic"), [
    (".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF"), (".dot", b"digraph"),
])
def test_save_writes_each_format(tmp_path, suffix, magic):
    v = viz.draw(_neuron())
    path = v.save(tmp_path / f"n{suffix}")
    assert path.read_bytes().startswith(magic)


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(ValueError, match="format"):
        viz.draw(_neuron()).save(tmp_path / "n.jpeg")


@needs_dot
def test_jupyter_bundle_has_svg_and_text():
    bundle = viz.draw(_neuron())._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
    assert "text/plain" in bundle


# --- missing dot ----------------------------------------------------------------------------------


def test_missing_dot_gives_a_tinygraph_error_with_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", "")
    v = viz.draw(_neuron())
    with pytest.raises(DotNotFoundError) as e:
        v.svg()
    assert isinstance(e.value, TinygraphError)
    msg = str(e.value)
    assert "apt-get install graphviz" in msg and "brew install graphviz" in msg
    assert "conda install" in msg
    with pytest.raises(DotNotFoundError):
        v.save(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()  # nothing half-written
    # What needs no `dot` keeps working.
    assert v.source.startswith("digraph")
    assert "saturated" in v.report() or "no flags" in v.report()
    assert v.save(tmp_path / "x.dot").exists()


def test_missing_dot_falls_back_to_text_in_jupyter(monkeypatch):
    monkeypatch.setenv("PATH", "")
    v = viz.draw(_neuron())
    bundle = v._repr_mimebundle_()
    assert set(bundle) == {"text/plain"}
    assert "brew install graphviz" in bundle["text/plain"]
    assert "digraph tinygraph" in bundle["text/plain"]
    assert v._repr_svg_() is None


def test_tensor_graph_renders_heat_strips_in_dot():
    rng = np.random.default_rng(0)
    X = tg.Node(rng.normal(size=(6, 3)), name="X", requires_grad=False)
    lin = tg.nn.Linear(3, 4, "relu", seed=0)
    loss = tg.mean(lin(X))
    loss.name = "loss"
    loss.backward()
    dot = viz.draw(loss).source
    assert 'BGCOLOR="#' in dot and "|grad|" in dot
