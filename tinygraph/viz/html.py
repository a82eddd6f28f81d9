"""Offline interactive HTML pages: one self-contained file holding the SVG and a little plain JS.

No CDN, no fonts, no network: the file works from file:// and by e-mail. The script reads what
graphviz already wrote into the SVG (node and edge <title>s, tooltips, SVG classes for flags),
so the page needs nothing from the graph beyond the rendering:

- hover a node: its tooltip (full-precision values, the local derivative, its flags);
- click a node: the path its gradient takes from the loss is highlighted, the rest dimmed
  (click the background to clear);
- toggles: data rows, grad rows, and edge labels when the frames have them;
- a list of flagged nodes (saturated, dead, NaN, ...) that jumps to each;
- search by name (Enter steps through the matches).

A recorder page (tinygraph.viz.recorder) adds a step slider, a play button and a log-scale
gradient-flow strip; its frames share one layout, so swapping them keeps every node in place.
`page.html#frame=12` opens frame 12. The page's Content-Security-Policy forbids every fetch.
"""

from __future__ import annotations

import html as _html
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .data import ViewData
from .style import LABEL_MAX, TIP_MAX, fmt, text

# Series colours for the gradient-flow strip (Okabe-Ito: colour-blind safe).
_SERIES = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_SCRIPT_UNSAFE = re.compile(r"<(?=/|!|script)", re.I)

# The page may load nothing from anywhere: everything it needs is inline.
_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'")

_CSS = """
:root { font-family: system-ui, sans-serif; font-size: 14px; color: #222; }
html, body { height: 100%; }
body { margin: 0; display: flex; flex-direction: column; }
header { flex: none; padding: 8px 12px; background: #f4f4f4; border-bottom: 1px solid #ccc; }
header h1 { font-size: 16px; margin: 0 0 6px 0; }
.tg-bar { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; }
.tg-bar label { white-space: nowrap; }
#tg-slider { width: 320px; }
/* The picture and the side panel share what the header leaves of the window, each scrolling
   on its own: at 1366x768 as at 1920x1080 the slider and the picture are both in view. */
#tg-main { flex: 1; min-height: 0; display: flex; }
#tg-stage { flex: 1; min-width: 0; overflow: auto; padding: 8px; }
#tg-stage svg { display: block; }
#tg-side { flex: none; width: 300px; padding: 8px; border-left: 1px solid #ccc; overflow: auto; }
#tg-side h2 { font-size: 14px; margin: 8px 0 4px 0; }
#tg-flags { list-style: none; padding: 0; margin: 0; }
#tg-flags li { cursor: pointer; padding: 2px 4px; border-radius: 3px; }
#tg-flags li:hover { background: #e8eefc; }
#tg-flags .tg-kind { font-weight: bold; margin-right: 4px; }
#tg-tip { position: fixed; display: none; max-width: 420px; white-space: pre-wrap;
          background: #fffbe6; border: 1px solid #b8a600; padding: 6px 8px; font: 12px monospace;
          pointer-events: none; z-index: 10; box-shadow: 2px 2px 6px rgba(0,0,0,.2); }
#tg-strip { display: block; }
#tg-strip .tg-series polyline { fill: none; stroke-width: 2; }
#tg-strip text { font-size: 10px; }
#tg-values div { font: 12px monospace; }
.tg-banner { color: #8a5a00; }
g.node { cursor: pointer; }
/* The whole box answers hover and click, not only its painted strokes and text. */
#tg-stage g.node path, #tg-stage g.node polygon, #tg-stage g.node ellipse {
  pointer-events: all; }
#tg-stage.tg-focus g.node:not(.legend), #tg-stage.tg-focus g.edge { opacity: 0.2; }
#tg-stage.tg-focus g.node.tg-path, #tg-stage.tg-focus g.edge.tg-path { opacity: 1; }
g.node.tg-match polygon, g.node.tg-match ellipse, g.node.tg-match path { stroke: #D55E00;
  stroke-width: 4px; }
g.node.tg-flash { animation: tg-flash 0.4s 3; }
@keyframes tg-flash { 50% { opacity: 0.1; } }
#tg-stage.tg-hide-data .tg-row-data, #tg-stage.tg-hide-grad .tg-row-grad,
#tg-stage.tg-hide-labels .tg-row-label { display: none; }
"""

# The page script. DATA (JSON in a <script type="application/json">) holds the frames as SVG
# strings, each frame's flagged nodes and, for a recorder page, steps, losses and the strip's
# cursor positions.
_JS = r"""
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("tg-data").textContent);
  const XLINK = "http://www.w3.org/1999/xlink";
  // Row keys of the node labels (tinygraph.viz.render) and the toggle that hides each.
  const ROWS = {"data": "tg-row-data", "act": "tg-row-data", "z": "tg-row-data",
                "f'(z)": "tg-row-data", "out": "tg-row-data", "shape": "tg-row-data",
                "grad": "tg-row-grad", "|grad|": "tg-row-grad", "dL/dz": "tg-row-grad"};
  const stage = document.getElementById("tg-stage");
  const tip = document.getElementById("tg-tip");
  const flagList = document.getElementById("tg-flags");
  const search = document.getElementById("tg-search");
  let byName = {}, outEdges = {}, selected = null, frame = -1, matches = [], matchAt = -1;

  function titleOf(g) {
    const t = g.querySelector("title");
    return t ? t.textContent : "";
  }
  function endpoint(s) {  // "n3:p0" -> "n3": ports do not matter for paths
    return s.split(":")[0].trim();
  }

  // Index the current SVG: nodes by name, edges by tail; tooltips move from the SVG's native
  // <title>/xlink:title into data-tip, so that only the page's own tooltip shows.
  function decorate() {
    byName = {}; outEdges = {};
    stage.querySelectorAll("g.node").forEach(function (g) {
      const name = titleOf(g);
      byName[name] = g;
      g.dataset.name = name;
      let text = "";
      g.querySelectorAll("a").forEach(function (a) {
        const t = a.getAttributeNS(XLINK, "title") || a.getAttribute("title");
        if (t && !text) text = t;
        a.removeAttributeNS(XLINK, "title"); a.removeAttribute("title");
      });
      g.dataset.tip = text || name;
      const own = g.querySelector("title");
      if (own) own.textContent = "";
      // A row is a key cell ("data", "grad", ...) and the value cells on the same baseline.
      const texts = Array.from(g.querySelectorAll("text"));
      texts.forEach(function (t) {
        const cls = ROWS[t.textContent.trim()];
        if (!cls) return;
        const y = parseFloat(t.getAttribute("y"));
        texts.forEach(function (u) {
          if (Math.abs(parseFloat(u.getAttribute("y")) - y) < 3) u.classList.add(cls);
        });
      });
    });
    stage.querySelectorAll("g.edge").forEach(function (g) {
      const parts = titleOf(g).split("->");
      if (parts.length !== 2) return;
      const tail = endpoint(parts[0]), head = endpoint(parts[1]);
      g.dataset.tail = tail; g.dataset.head = head;
      (outEdges[tail] = outEdges[tail] || []).push(g);
      g.querySelectorAll("text").forEach(function (t) { t.classList.add("tg-row-label"); });
      g.querySelectorAll("a").forEach(function (a) {
        const t = a.getAttributeNS(XLINK, "title");
        if (t) { g.dataset.tip = t; a.removeAttributeNS(XLINK, "title"); }
      });
    });
  }

  // The gradient path of a node: everything between it and the loss, i.e. every node and edge
  // reachable from it along the forward edges (the loss is the only sink).
  function highlight(name) {
    stage.querySelectorAll(".tg-path").forEach(function (e) { e.classList.remove("tg-path"); });
    selected = name;
    if (name === null || !byName[name]) {
      stage.classList.remove("tg-focus"); selected = null; return;
    }
    const seen = new Set([name]), todo = [name];
    while (todo.length) {
      const n = todo.pop();
      if (byName[n]) byName[n].classList.add("tg-path");
      (outEdges[n] || []).forEach(function (e) {
        e.classList.add("tg-path");
        if (!seen.has(e.dataset.head)) { seen.add(e.dataset.head); todo.push(e.dataset.head); }
      });
    }
    stage.classList.add("tg-focus");
  }

  function jump(g) {
    g.scrollIntoView({block: "center", inline: "center"});
    g.classList.remove("tg-flash"); void g.getBoundingClientRect(); g.classList.add("tg-flash");
  }
  function listFlags() {
    flagList.textContent = "";
    const flags = DATA.flags[frame];
    flags.forEach(function (f) {  // [node id, name, kind, text]
      const li = document.createElement("li");
      li.dataset.name = f[0];
      li.title = f[3];
      const k = document.createElement("span");
      k.className = "tg-kind"; k.textContent = f[2];
      li.appendChild(k);
      li.appendChild(document.createTextNode(" " + f[1]));
      li.addEventListener("click", function () {
        if (byName[li.dataset.name]) jump(byName[li.dataset.name]);
      });
      flagList.appendChild(li);
    });
    document.getElementById("tg-nflags").textContent = String(flags.length);
  }

  function runSearch(step) {
    stage.querySelectorAll(".tg-match").forEach(function (e) { e.classList.remove("tg-match"); });
    const q = search.value.trim().toLowerCase();
    matches = [];
    if (q) {
      Object.keys(byName).forEach(function (name) {
        const g = byName[name];
        const text = (name + " " + g.textContent).toLowerCase();
        if (text.indexOf(q) >= 0) { g.classList.add("tg-match"); matches.push(g); }
      });
    }
    document.getElementById("tg-nmatch").textContent = q ? matches.length + " found" : "";
    if (step && matches.length) {
      matchAt = (matchAt + 1) % matches.length; jump(matches[matchAt]);
    }
  }

  function show(i) {
    i = Math.max(0, Math.min(DATA.frames.length - 1, i));
    if (i === frame) return;
    frame = i;
    stage.innerHTML = DATA.frames[i];
    applyZoom();
    decorate();
    highlight(selected);
    listFlags();
    runSearch(false);
    if (DATA.steps) {
      document.getElementById("tg-slider").value = String(i);
      document.getElementById("tg-step").textContent =
        "step " + DATA.steps[i] + " (" + (i + 1) + "/" + DATA.frames.length + "), loss " +
        DATA.losses[i];
      const cur = document.getElementById("tg-cursor");
      cur.setAttribute("x1", DATA.cursor[i]); cur.setAttribute("x2", DATA.cursor[i]);
      DATA.layers.forEach(function (layer, j) {
        document.getElementById("tg-val-" + j).textContent = layer + ": " + DATA.flow[j][i];
      });
    }
  }

  // Zoom. Graphviz sizes the picture in points; "auto" fits the width but never shrinks the
  // smallest label below LEGIBLE px (then the stage scrolls) and never enlarges past 100 %.
  const LEGIBLE = 10, zoomBox = document.getElementById("tg-zoom");
  let smallest = null;
  function applyZoom() {
    const svg = stage.querySelector("svg");
    if (!svg) return;
    const pt = function (v) { return parseFloat(v) * (String(v).endsWith("pt") ? 4 / 3 : 1); };
    const w = pt(svg.getAttribute("width")), h = pt(svg.getAttribute("height"));
    const vb = svg.viewBox && svg.viewBox.baseVal;
    if (smallest === null) {  // the smallest label, in picture units: the frames share it
      smallest = 0;
      svg.querySelectorAll("g.node text").forEach(function (t) {
        const f = parseFloat(t.getAttribute("font-size"));
        if (f && (!smallest || f < smallest)) smallest = f;
      });
    }
    const small = smallest;
    const unit = vb && vb.width ? w / vb.width : 1;  // px per picture unit at 100 %
    const fit = (stage.clientWidth - 16) / w;
    const floor = small ? LEGIBLE / (small * unit) : 0;
    let z = parseFloat(zoomBox.value);
    if (zoomBox.value === "fit") z = fit;
    if (zoomBox.value === "auto") z = Math.min(1, Math.max(fit, floor));
    svg.style.width = (w * z) + "px"; svg.style.height = (h * z) + "px";
    document.body.dataset.zoom = z.toFixed(3);
  }
  zoomBox.addEventListener("change", applyZoom);
  window.addEventListener("resize", applyZoom);

  stage.addEventListener("mouseover", function (ev) {
    const g = ev.target.closest("g.node, g.edge");
    if (!g || !g.dataset.tip) return;
    tip.textContent = g.dataset.tip;
    tip.style.display = "block";
  });
  stage.addEventListener("mousemove", function (ev) {
    tip.style.left = (ev.clientX + 14) + "px"; tip.style.top = (ev.clientY + 14) + "px";
  });
  stage.addEventListener("mouseout", function (ev) {
    const g = ev.target.closest("g.node, g.edge");
    if (g && !g.contains(ev.relatedTarget)) tip.style.display = "none";
  });
  stage.addEventListener("click", function (ev) {
    const g = ev.target.closest("g.node");
    highlight(g ? g.dataset.name : null);
  });
  ["data", "grad", "labels"].forEach(function (what) {
    const box = document.getElementById("tg-show-" + what);
    if (!box) return;  // no edge labels in the frames: the page has no box for them
    const apply = function () { stage.classList.toggle("tg-hide-" + what, !box.checked); };
    box.addEventListener("change", apply);
    apply();
  });
  search.addEventListener("input", function () { matchAt = -1; runSearch(false); });
  search.addEventListener("keydown", function (ev) { if (ev.key === "Enter") runSearch(true); });

  if (DATA.steps) {
    const slider = document.getElementById("tg-slider");
    const play = document.getElementById("tg-play");
    let timer = null;
    slider.addEventListener("input", function () { show(parseInt(slider.value, 10)); });
    play.addEventListener("click", function () {
      if (timer) { clearInterval(timer); timer = null; play.textContent = "play"; return; }
      if (frame >= DATA.frames.length - 1) show(0);
      play.textContent = "pause";
      timer = setInterval(function () {
        if (frame >= DATA.frames.length - 1) {
          clearInterval(timer); timer = null; play.textContent = "play"; return;
        }
        show(frame + 1);
      }, DATA.interval);
    });
  }
  // A link may open a given frame: page.html#frame=12 (also how screenshots pick a step).
  const wanted = /frame=(\d+)/.exec(window.location.hash);
  show(wanted ? parseInt(wanted[1], 10) : 0);
  document.body.dataset.ready = "1";
  document.body.dataset.readyMs = String(Math.round(performance.now()));
})();
"""


def strip_svg(steps: Sequence[int], flow: Mapping[str, Sequence[float | None]],
              width: int = 284, height: int = 180) -> tuple[str, list[float]]:
    """The log-scale gradient-flow strip: one polyline per layer of mean |dL/dz| over steps.

    Returns the SVG and the x position of each step (where the page draws its cursor). Missing
    or non-positive values break the line instead of dragging it to an invented floor.
    """
    left, right, top, bottom = 40, 8, 8, 22
    vals = [v for s in flow.values() for v in s if v is not None and v > 0 and math.isfinite(v)]
    lo = math.floor(math.log10(min(vals))) if vals else -6
    hi = math.ceil(math.log10(max(vals))) if vals else 0
    hi = max(hi, lo + 1)
    n = len(steps)
    s0, s1 = (steps[0], steps[-1]) if n else (0, 1)
    span = (s1 - s0) or 1

    def x(step: float) -> float:
        return round(left + (step - s0) / span * (width - left - right), 2)

    def y(v: float) -> float:
        return round(top + (hi - math.log10(v)) / (hi - lo) * (height - top - bottom), 2)

    out = [f'<svg id="tg-strip" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="mean |dL/dz| per layer over the recorded steps, log scale">']
    out.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" '
               f'height="{height - top - bottom}" fill="none" stroke="#999"/>')
    for e in range(lo, hi + 1):  # one grid line and label per decade
        yy = y(10.0**e)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{yy}" y2="{yy}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 4}" y="{yy + 3}" text-anchor="end">1e{e}</text>')
    out.append(f'<text x="{left}" y="{height - 6}">step {s0}</text>')
    out.append(f'<text x="{width - right}" y="{height - 6}" text-anchor="end">{s1}</text>')
    for j, (layer, series) in enumerate(flow.items()):
        colour = _SERIES[j % len(_SERIES)]
        parts: list[list[str]] = [[]]
        for step, v in zip(steps, series, strict=True):
            if v is None or not (v > 0 and math.isfinite(v)):
                if parts[-1]:
                    parts.append([])
                continue
            parts[-1].append(f"{x(step)},{y(v)}")
        lines = "".join(f'<polyline points="{" ".join(p)}"/>' for p in parts if p)
        out.append(f'<g class="tg-series" data-layer="{_html.escape(text(layer))}" '
                   f'stroke="{colour}">{lines}</g>')
    out.append(f'<line id="tg-cursor" x1="{left}" x2="{left}" y1="{top}" '
               f'y2="{height - bottom}" stroke="#D55E00" stroke-width="1.5"/>')
    out.append("</svg>")
    return "".join(out), [x(s) for s in steps]


def page(frames: Sequence[str], flags: Sequence[Sequence[tuple[str, str, str, str]]], *,
         title: str, banner: str = "",
         steps: Sequence[int] | None = None, losses: Sequence[float] | None = None,
         flow: Mapping[str, Sequence[float | None]] | None = None,
         interval_ms: int = 120, edge_labels: bool = False, labels_shown: bool = True) -> str:
    """The HTML text of a page showing frames (SVG strings) and, per frame, the flagged nodes as
    (node id, name, kind, text); with steps, losses and flow, a recorder page. edge_labels: the
    frames have edge labels, so the page gets a box to show or hide them (checked when
    labels_shown)."""
    recorder = steps is not None
    if len(flags) != len(frames):
        raise InputError(f"page: {len(frames)} frames but {len(flags)} flag lists")
    # Inline SVG needs no XML prolog or DOCTYPE (whose DTD address is the only URL graphviz
    # writes) nor graphviz's comments: keep each frame from its <svg> element on, uncommented.
    inline = [_COMMENT.sub("", f[f.find("<svg"):] if "<svg" in f else f) for f in frames]
    # Flag rows carry user names: plain text for the page's textContent (never innerHTML).
    rows = [[[text(node), text(name), text(kind), text(why, TIP_MAX)]
             for node, name, kind, why in f] for f in flags]
    data: dict[str, Any] = {"frames": inline, "flags": rows}
    controls = ""
    side_extra = ""
    if recorder:
        if (losses is None or flow is None or not len(steps) == len(frames) == len(losses)
                or any(len(s) != len(steps) for s in flow.values())):
            raise InputError("page: a recorder page needs steps, losses and flow, one per frame")
        strip, cursor = strip_svg(steps, flow)
        data |= {"steps": list(steps), "losses": [fmt(v) for v in losses], "cursor": cursor,
                 "layers": [text(k) for k in flow],
                 "flow": [[fmt(v) for v in s] for s in flow.values()],
                 "interval": int(interval_ms)}
        controls = (f'<button id="tg-play" type="button">play</button>'
                    f'<input id="tg-slider" type="range" min="0" max="{len(frames) - 1}" '
                    'value="0" step="1" aria-label="recorded step">'
                    '<span id="tg-step"></span>')
        values = "".join(
            f'<div id="tg-val-{j}" style="color:{_SERIES[j % len(_SERIES)]}"></div>'
            for j in range(len(flow)))
        side_extra = (f"<h2>Gradient flow: mean |dL/dz| per layer (log scale)</h2>{strip}"
                      f'<div id="tg-values">{values}</div>')
    # "</" inside a script block would end it early, and "<!--" or "<script" would change how
    # it is parsed: write their "<" as the JSON escape \u003c (the same string once parsed).
    payload = _SCRIPT_UNSAFE.sub(r"\\u003c", json.dumps(data, separators=(",", ":")))

    def esc(s: str) -> str:
        return _html.escape(text(s, TIP_MAX), quote=True)

    labels_box = ("<label><input id=\"tg-show-labels\" type=\"checkbox\""
                  f"{' checked' if labels_shown else ''}> edge labels</label>"
                  if edge_labels else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{_html.escape(text(title, LABEL_MAX))}</title><style>{_CSS}</style></head>
<body><header><h1>{esc(title)}</h1>
<div class="tg-bar">{controls}
<label>zoom <select id="tg-zoom"><option value="auto" selected>auto</option>
<option value="fit">fit width</option><option value="0.5">50 %</option>
<option value="0.75">75 %</option><option value="1">100 %</option>
<option value="1.5">150 %</option></select></label>
<label><input id="tg-show-data" type="checkbox" checked> data</label>
<label><input id="tg-show-grad" type="checkbox" checked> grad</label>
{labels_box}
<label>find <input id="tg-search" type="search" placeholder="name, e.g. L1.n0.z"></label>
<span id="tg-nmatch"></span>
<span class="tg-banner">{esc(banner)}</span></div></header>
<div id="tg-main"><div id="tg-stage"></div>
<aside id="tg-side"><h2>Flagged nodes (<span id="tg-nflags">0</span>)</h2><ul id="tg-flags"></ul>
{side_extra}</aside></div>
<div id="tg-tip" role="tooltip"></div>
<script type="application/json" id="tg-data">{payload}</script>
<script>{_JS}</script>
</body></html>
"""


def write(path: str | os.PathLike[str], text: str) -> Path:
    """Write a page as UTF-8 and return its path."""
    p = Path(path)
    p.write_text(text, encoding="utf-8")
    return p


def flag_rows(data: ViewData) -> list[tuple[str, str, str, str]]:
    """A view's flags as the page lists them: (node id, name, kind, text)."""
    return [(f.node, f.label, f.kind, f.text) for f in data.flags]


def write_view(data: ViewData, svg: str, path: str | os.PathLike[str],
               title: str | None = None) -> Path:
    """Write a diagram (its view data and rendered SVG) as an offline interactive page (see the
    module docstring); returns the path."""
    text = page([svg], [flag_rows(data)], title=title or f"tinygraph: {data.level} view",
                banner=" · ".join(data.banners), edge_labels=any(e.label for e in data.edges))
    return write(path, text)
