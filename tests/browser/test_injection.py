"""Hostile names and scopes, rendered into both pages and loaded in headless chromium: the only
scripts are the page's own two, no element links to javascript:, no image, and the page runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hostile import HOSTILE

import tinygraph as tg
import tinygraph.viz as viz
from browser.conftest import _unavailable
from tinygraph import nn, optim
from tinygraph.viz.recorder import Recorder

if shutil.which("dot") is None:
    _unavailable("graphviz `dot` is not installed", install="make graphviz")
try:
    from selenium.webdriver.common.by import By
except ImportError:
    _unavailable("the selenium package is not installed (pip install -e '.[test]')")

# Every hostile string becomes a scope, a parameter name, an intermediate name and a flag name.
_PROBE = """
const bad = [];
document.querySelectorAll("script").forEach(function (s, i) {
  if (!(s.id === "tg-data" || (i === 1 && s.textContent.indexOf("use strict") >= 0)))
    bad.push("script " + i);
});
document.querySelectorAll("*").forEach(function (el) {
  for (const a of el.attributes) {
    const v = a.value.replace(/\\s/g, "").toLowerCase();
    const link = /(^|:)(href|src|action|formaction|data)$/.test(a.name.toLowerCase());
    if ((link && v.indexOf("javascript:") >= 0) || a.name.toLowerCase().startsWith("on"))
      bad.push(el.tagName + " " + a.name + "=" + a.value.slice(0, 40));
  }
  const t = el.tagName.toLowerCase();
  if (t === "img" || t === "image" || t === "iframe" || t === "object" || t === "embed")
    bad.push("element " + t);
});
return bad;
"""


def hostile_loss() -> tg.Node:
    x = tg.Node(np.array([[1.0, -2.0]]), requires_grad=False, name=HOSTILE[0])
    total = None
    for k, name in enumerate(HOSTILE):
        with tg.scope(name):
            w = tg.Node(np.array([[0.3 * k - 2.0], [1.5]]), name=name)
            h = tg.sigmoid(x @ w)
            h.name = name
        total = h if total is None else total + h
    # A scope with no activation: its box is labelled with the scope itself.
    with tg.scope('<<TABLE HREF="javascript:alert(7)"><TR><TD>y</TD></TR></TABLE>>'):
        extra = tg.Node(np.array([2.0]), name="k") * 3.0
    loss = total.sum() + extra.sum()
    loss.name = HOSTILE[2]
    return loss


def hostile_recorder() -> Recorder:
    model = nn.MLP(2, [3, 1], "sigmoid", seed=0)
    X = np.array([[1.0, -1.0], [0.5, 2.0]])

    def loss_fn() -> tg.Node:
        with tg.scope(HOSTILE[2]):
            out = model(X)
        with tg.scope(HOSTILE[3]):
            L = tg.sigmoid(out * 1e3).sum()
        L.name = HOSTILE[1]
        return L

    rec = Recorder(model, loss_fn, every=1)
    rec.fit(optim.SGD(model.parameters(), lr=0.1), 2)
    return rec


def _check(drv: Any, load: Any, path: Path) -> None:
    errors, requests = load(path)
    assert errors == [] and requests == []
    assert drv.execute_script("return document.body.dataset.ready") == "1"
    assert drv.execute_script(_PROBE) == []
    assert len(drv.find_elements(By.CSS_SELECTOR, "#tg-stage g.node")) > 3


@pytest.mark.parametrize("level", ["op", "neuron"])
def test_view_page_with_hostile_names(browser: Any, load: Any, tmp_path: Path,
                                      level: str) -> None:
    loss = hostile_loss()
    loss.backward()
    view = viz.draw(loss, level=level, edge_labels=True)
    path = view.html(tmp_path / "view.html", title=HOSTILE[1])
    _check(browser, load, path)
    # The search box sees the names as text: typing one finds its node, runs nothing.
    box = browser.find_element(By.ID, "tg-search")
    box.send_keys("<script>")
    assert browser.find_element(By.ID, "tg-nmatch").text.endswith("found")
    assert browser.execute_script(_PROBE) == []


def test_recorder_page_with_hostile_names(browser: Any, load: Any, tmp_path: Path) -> None:
    rec = hostile_recorder()
    path = rec.html(tmp_path / "run.html", title=HOSTILE[0])
    _check(browser, load, path)
    assert browser.title.startswith("<script>")  # the title shows the name as text
