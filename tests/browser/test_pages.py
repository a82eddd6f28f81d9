"""The interactive pages in a real headless chromium: offline load, tooltips, path highlight,
toggles, search, the step slider and the gradient-flow strip.

Every expectation comes from Python (the view data, or the run replayed in numpy by
browser.cases), never from the page's own script.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygraph as tg
import tinygraph.viz as viz
from browser import cases
from browser.conftest import _unavailable
from tinygraph.thresholds import DEFAULT
from tinygraph.viz.recorder import Recorder

if shutil.which("dot") is None:  # the pages' frames are drawn by Graphviz
    _unavailable("graphviz `dot` is not installed", install="make graphviz")
try:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    _unavailable("the selenium package is not installed (pip install -e '.[test]')")

ACT = "n7_L1_n0_act"  # the chain's sigmoid output: saturates during the run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Recorder, Path]:
    rec = cases.record()
    path = rec.html(tmp_path_factory.mktemp("pages") / "run.html", title="chain run")
    return rec, Path(path)


@pytest.fixture
def page(run: tuple[Recorder, Path], load: Any, browser: Any) -> Any:
    """The recorder page, freshly loaded (no console errors, no network requests)."""
    errors, requests = load(run[1])
    assert errors == []
    assert requests == []
    assert browser.execute_script("return document.body.dataset.ready") == "1"
    return browser


def _classes(drv: Any, element_id: str) -> set[str]:
    el = drv.find_element(By.CSS_SELECTOR, f'#tg-stage [id="{element_id}"]')
    return set(el.get_attribute("class").split())


def _move_slider(drv: Any, index: int) -> None:
    slider = drv.find_element(By.ID, "tg-slider")
    drv.execute_script("arguments[0].value = arguments[1];"
                       "arguments[0].dispatchEvent(new Event('input'));", slider, str(index))


def test_loads_offline_without_errors(page: Any, run: tuple[Recorder, Path]) -> None:
    rec, _ = run
    nodes = page.find_elements(By.CSS_SELECTOR, "#tg-stage g.node")
    assert {n.get_attribute("id") for n in nodes} >= {n.id for n in rec.views[0].nodes}
    assert page.find_element(By.ID, "tg-step").text.startswith("step 0 (1/16)")


def test_hover_shows_the_tooltip(page: Any, run: tuple[Recorder, Path]) -> None:
    rec, _ = run
    tip = page.find_element(By.ID, "tg-tip")
    assert not tip.is_displayed()
    node = page.find_element(By.ID, ACT)
    ActionChains(page).move_to_element(node).perform()
    expected = next(n.tooltip for n in rec.views[0].nodes if n.id == ACT)
    assert tip.is_displayed()
    assert tip.text == expected
    assert "σ'(z) = s(1-s)" in tip.text


def _downstream(rec: Recorder, start: str) -> tuple[set[str], set[str]]:
    """Nodes and edges between start and the loss, from the view data."""
    edges = rec.views[0].edges
    nodes, todo, on_path = {start}, [start], set()
    while todo:
        n = todo.pop()
        for e in edges:
            if e.tail == n:
                on_path.add(e.id)
                if e.head not in nodes:
                    nodes.add(e.head)
                    todo.append(e.head)
    return nodes, on_path


def test_click_highlights_exactly_the_gradient_path(page: Any, run: tuple[Recorder, Path]) -> None:
    rec, _ = run
    want_nodes, want_edges = _downstream(rec, ACT)
    assert len(want_nodes) > 1 and len(want_nodes) < len(rec.views[0].nodes)
    page.find_element(By.ID, ACT).click()
    lit = page.find_elements(By.CSS_SELECTOR, "#tg-stage .tg-path")
    got = {e.get_attribute("id") for e in lit}
    assert got == want_nodes | want_edges
    assert "tg-focus" in page.find_element(By.ID, "tg-stage").get_attribute("class").split()
    # the highlight survives a frame change, and a click on the background clears it
    _move_slider(page, 5)
    assert "tg-path" in _classes(page, ACT)
    # The stage's top-left corner is background (the picture may be wider than the stage, and
    # offsets count from the centre of an element's visible part).
    page.execute_script("document.getElementById('tg-stage').scrollTo(0, 0)")
    stage = page.find_element(By.ID, "tg-stage")
    corner = (4 - stage.size["width"] // 2, 4 - stage.size["height"] // 2)
    ActionChains(page).move_to_element_with_offset(stage, *corner).click().perform()
    assert page.find_elements(By.CSS_SELECTOR, "#tg-stage .tg-path") == []


def test_slider_changes_frame_and_the_flag_appears_on_time(page: Any) -> None:
    sat = cases.first_step(lambda f: f["deriv"] < DEFAULT.sigmoid_saturated)
    assert sat is not None and sat > 0
    _move_slider(page, sat - 1)
    assert page.find_element(By.ID, "tg-step").text.startswith(f"step {sat - 1} ")
    assert "saturated" not in _classes(page, ACT)
    before = page.find_element(By.ID, "tg-flags").text
    _move_slider(page, sat)
    assert page.find_element(By.ID, "tg-step").text.startswith(f"step {sat} ")
    assert "saturated" in _classes(page, ACT)
    after = page.find_element(By.ID, "tg-flags").text
    assert "saturated L1.n0.act" in after and "saturated L1.n0.act" not in before
    loss = cases.simulate()[sat]["loss"]
    assert page.find_element(By.ID, "tg-step").text.endswith(viz.fmt(loss))


def test_play_advances_frames(page: Any) -> None:
    page.find_element(By.ID, "tg-play").click()
    WebDriverWait(page, 10).until(
        lambda d: d.find_element(By.ID, "tg-slider").get_attribute("value") != "0")
    page.find_element(By.ID, "tg-play").click()  # pause
    assert page.find_element(By.ID, "tg-play").text == "play"


def test_flag_list_jumps_to_the_node(page: Any) -> None:
    _move_slider(page, cases.STEPS - 1)
    items = page.find_elements(By.CSS_SELECTOR, "#tg-flags li")
    assert [i.get_attribute("data-name") for i in items] == [ACT]
    items[0].click()
    assert "tg-flash" in _classes(page, ACT)


def test_gradient_flow_strip_has_one_series_per_layer(page: Any,
                                                      run: tuple[Recorder, Path]) -> None:
    rec, _ = run
    series = page.find_elements(By.CSS_SELECTOR, "#tg-strip g.tg-series")
    assert [s.get_attribute("data-layer") for s in series] == rec.layers() == ["L1", "L2"]
    for s in series:  # one point per recorded step (no gaps: every value is positive)
        points = s.find_element(By.TAG_NAME, "polyline").get_attribute("points").split()
        assert len(points) == len(rec.snapshots)
    cursor = page.find_element(By.ID, "tg-cursor")
    x0 = float(cursor.get_attribute("x1"))
    _move_slider(page, 3)
    assert float(cursor.get_attribute("x1")) > x0


def test_toggles_hide_rows(page: Any) -> None:
    data_rows = page.find_elements(By.CSS_SELECTOR, f'[id="{ACT}"] text.tg-row-data')
    grad_rows = page.find_elements(By.CSS_SELECTOR, f'[id="{ACT}"] text.tg-row-grad')
    texts = {t.text for t in data_rows}
    assert {"data", "z", "f'(z)"} <= texts and "grad" in {t.text for t in grad_rows}
    page.find_element(By.ID, "tg-show-data").click()
    assert not any(t.is_displayed() for t in data_rows)
    assert all(t.is_displayed() for t in grad_rows)
    page.find_element(By.ID, "tg-show-data").click()
    assert all(t.is_displayed() for t in data_rows)


def test_search_by_name(page: Any, run: tuple[Recorder, Path]) -> None:
    rec, _ = run
    box = page.find_element(By.ID, "tg-search")
    box.send_keys("L1.n0")
    found = {e.get_attribute("id") for e in page.find_elements(By.CSS_SELECTOR, ".tg-match")}
    want = {n.id for n in rec.views[0].nodes if "L1.n0" in n.header}  # by name
    assert found == want
    assert ACT in found and "n10_loss_loss" not in found
    box.send_keys("\n")  # Enter jumps to the first match
    assert "tg-flash" in _classes(page, sorted(found, key=_order(page))[0])


def _order(drv: Any) -> Any:
    """Sort key: document order of the stage's nodes."""
    ids = [g.get_attribute("id") for g in drv.find_elements(By.CSS_SELECTOR, "#tg-stage g.node")]
    return ids.index


def test_static_view_page(tmp_path: Path, load: Any, browser: Any) -> None:
    model, loss_fn = cases.chain()
    for _ in range(9):  # the chain saturates after 7 steps of the recorded run
        model.zero_grad()
        loss = loss_fn()
        loss.backward()
        for p in model.parameters():
            p.data = p.data - cases.LR * p.grad
    model.zero_grad()
    loss = loss_fn()
    loss.backward()
    view = viz.draw(loss)
    errors, requests = load(view.html(tmp_path / "view.html"))
    assert errors == [] and requests == []
    assert browser.find_elements(By.ID, "tg-slider") == []  # one frame: no slider
    items = browser.find_elements(By.CSS_SELECTOR, "#tg-flags li")
    assert {i.get_attribute("data-name") for i in items} == {f.node for f in view.flags}
    node = browser.find_element(By.CSS_SELECTOR, f'#tg-stage g.node[data-name="{ACT}"]')
    assert "saturated" in node.get_attribute("class").split()


def test_neuron_level_tooltip_gives_every_sample(tmp_path: Path, load: Any,
                                                 browser: Any) -> None:
    model = tg.nn.MLP(2, [2, 1], "sigmoid", seed=0)
    for p in model.layers[0].parameters():  # push L1 into saturation: the tooltip has a flag
        p.data = p.data * 8.0 + (6.0 if p.name == "b" else 0.0)
    X = np.random.default_rng(3).normal(size=(3, 2))
    loss = tg.Node(0.0, requires_grad=False)
    for x, t in zip(X.tolist(), [1.0, 0.0, 1.0], strict=True):
        loss = loss + (model(x) - t) ** 2
    loss.name = "loss"
    loss.backward()
    view = viz.draw(loss, level="neuron")
    errors, requests = load(view.html(tmp_path / "neurons.html"))
    assert errors == [] and requests == []
    node = browser.find_element(By.CSS_SELECTOR, '#tg-stage g.node[data-name="g_L1_n0"]')
    ActionChains(browser).move_to_element(node).perform()
    tip = browser.find_element(By.ID, "tg-tip")
    assert tip.is_displayed()
    lines = tip.text.split("\n")
    acts = [n for n in tg.walk(loss) if n.label == "L1.n0.act"]  # the 3 samples, in order
    zs = [a.parents[0] for a in acts]

    def listed(name: str, values: list[float]) -> str:
        return f"{name} = [{', '.join(repr(float(v)) for v in values)}]"

    assert listed("act", [a.data for a in acts]) in lines
    assert listed("z", [z.data for z in zs]) in lines
    assert listed("f'(z)", [a.data * (1.0 - a.data) for a in acts]) in lines
    assert listed("dL/dz", [z.grad for z in zs]) in lines
    flags = [f for f in view.flags if f.node == "g_L1_n0"]
    assert flags  # near saturation on most samples
    for f in flags:
        assert f"{viz.style.FLAG_STYLE[f.kind][0]} {f.kind}: {f.text}" in lines


def _edge_labels(drv: Any) -> list[Any]:
    return drv.find_elements(By.CSS_SELECTOR, "#tg-stage g.edge text")


def test_edge_labels_box_shows_and_hides_the_messages(page: Any,
                                                      run: tuple[Recorder, Path]) -> None:
    rec, _ = run
    box = page.find_element(By.ID, "tg-show-labels")
    assert not box.is_selected()  # a recorder page starts without them
    want = sorted(e.label for e in rec.views[0].edges)
    labels = _edge_labels(page)
    assert sorted(t.get_attribute("textContent") for t in labels) == want
    assert not any(t.is_displayed() for t in labels)
    box.click()
    assert all(t.is_displayed() for t in labels)
    assert sorted(t.text for t in labels) == want
    _move_slider(page, 5)  # the choice holds on another frame, with that frame's numbers
    labels = _edge_labels(page)
    assert all(t.is_displayed() for t in labels)
    assert sorted(t.text for t in labels) == sorted(e.label for e in rec.views[5].edges)
    box.click()
    assert not any(t.is_displayed() for t in _edge_labels(page))
