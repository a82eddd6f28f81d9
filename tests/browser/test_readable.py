"""The pages are readable on open at common window sizes: the default zoom keeps node labels
legible, the picture fills the stage rather than a corner of it, and the slider reaches the
last step of the run (tests/browser/screenshot.py takes the same pictures for looking)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import tinygraph as tg
from browser.conftest import _unavailable
from browser.screenshot import SMALLEST_LABEL, set_viewport
from tinygraph import losses, nn, optim
from tinygraph.viz.recorder import Recorder

if shutil.which("dot") is None:
    _unavailable("graphviz `dot` is not installed", install="make graphviz")
try:
    from selenium.webdriver.common.by import By
except ImportError:
    _unavailable("the selenium package is not installed (pip install -e '.[test]')")

LEGIBLE_PX = 9.5
STEPS, EVERY = 25, 10


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small run of the demo's net (sigmoid 2-8-8-1 on two moons, saturating weights)."""
    X, y = tg.data.make_moons(64, noise=0.15, seed=0)
    model = nn.TensorMLP(2, [8, 8, 1], activation="sigmoid", scale=50.0, seed=0)
    rec = Recorder(model, lambda: losses.binary_cross_entropy_with_logits(model(X), y),
                   every=EVERY)
    rec.fit(optim.SGD(model.parameters(), lr=1.0, momentum=0.9), STEPS)
    return Path(rec.html(tmp_path_factory.mktemp("demo") / "run.html"))


@pytest.fixture
def sized(browser: Any) -> Any:
    yield lambda w, h: set_viewport(browser, w, h)
    browser.set_window_size(1400, 1000)  # the other browser tests' size


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)], ids=["1366x768", "1920x1080"])
def test_page_is_readable_on_open(browser: Any, load: Any, sized: Any, demo_page: Path,
                                  size: tuple[int, int]) -> None:
    sized(*size)
    errors, _ = load(demo_page)
    assert errors == []
    assert browser.execute_script(SMALLEST_LABEL) >= LEGIBLE_PX
    stage = browser.find_element(By.ID, "tg-stage").rect
    svg = browser.find_element(By.CSS_SELECTOR, "#tg-stage svg").rect
    # The picture spans the stage's width (scrolling on) rather than sitting in a corner.
    assert min(svg["width"], stage["width"]) >= 0.9 * (stage["width"] - 20)
    # The whole page fits the window: header, stage and side panel, no page scrollbar.
    assert browser.execute_script(
        "return document.documentElement.scrollHeight <= window.innerHeight")
    assert stage["y"] + stage["height"] <= browser.execute_script("return window.innerHeight") + 1
    assert browser.execute_script("return [window.innerWidth, window.innerHeight]") == list(size)


def test_slider_reaches_the_last_step(browser: Any, load: Any, demo_page: Path) -> None:
    load(demo_page)
    slider = browser.find_element(By.ID, "tg-slider")
    frames = (STEPS - 1) // EVERY + 2  # 0, 10, 20 and the last step, 24
    assert int(slider.get_attribute("max")) == frames - 1
    browser.execute_script("arguments[0].value = arguments[0].max;"
                           "arguments[0].dispatchEvent(new Event('input'));", slider)
    assert browser.find_element(By.ID, "tg-step").text.startswith(
        f"step {STEPS - 1} ({frames}/{frames})")


def test_zoom_choices(browser: Any, load: Any, sized: Any, demo_page: Path) -> None:
    sized(1366, 768)
    load(demo_page)
    box = browser.find_element(By.ID, "tg-zoom")
    for value, check in (("1", lambda z: z == 1.0), ("0.5", lambda z: z == 0.5),
                         ("fit", lambda z: 0 < z < 1.0)):
        browser.execute_script("arguments[0].value = arguments[1];"
                               "arguments[0].dispatchEvent(new Event('change'));", box, value)
        assert check(float(browser.execute_script("return document.body.dataset.zoom")))
