"""The offline HTML pages without a browser: self-contained, escaped, the strip's geometry; and
the browser tests' rule for a machine without chromium (skip, but fail in CI)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from browser import cases
from browser import conftest as browser_setup

import tinygraph as tg
import tinygraph.viz as viz
from tinygraph.errors import InputError
from tinygraph.viz.html import page, strip_svg

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")
ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "examples" / "record_training.py"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'


def _payload(text: str) -> dict:
    m = re.search(r'<script type="application/json" id="tg-data">(.*?)</script>', text, re.S)
    assert m is not None
    return json.loads(m.group(1))


def _assert_self_contained(text: str) -> None:
    # Nothing to fetch: no src/href attributes, no URLs but XML namespace names, and a
    # Content-Security-Policy that forbids every network fetch anyway.
    assert not re.search(r"\b(src|href)\s*=", text)
    urls = set(re.findall(r"(?:https?|ftp|wss?)://[^\s\"'<>\\]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert "default-src 'none'" in text
    assert text.count("<script") == 2  # the data block and the inline script


def test_page_is_self_contained() -> None:
    _assert_self_contained(page([SVG], [[]], title="t"))


def test_a_hostile_name_cannot_end_the_script_block() -> None:
    evil = "<!--<script></script><script>alert(1)</script>-->"
    x = tg.Node(2.0, name=evil)
    y = tg.sigmoid(x * 3.0)
    y.name = "loss"
    y.backward()
    data = viz.build(y)
    svg = f'<svg xmlns="http://www.w3.org/2000/svg"><text>{evil.replace("<", "&lt;")}</text></svg>'
    text = page([svg], [[("n0", evil, "saturated", evil)]], title=evil, banner=evil)
    assert text.count("</script>") == 2 and "<!--" not in text
    back = _payload(text)
    assert back["frames"] == [svg]
    assert back["flags"] == [[["n0", evil, "saturated", evil]]]
    assert data.nodes  # the view itself took the name without trouble


def test_page_refuses_mismatched_inputs() -> None:
    with pytest.raises(InputError, match="2 frames but 1 flag lists"):
        page([SVG, SVG], [[]], title="t")
    with pytest.raises(InputError, match="one per frame"):
        page([SVG, SVG], [[], []], title="t", steps=[0, 1], losses=[1.0], flow={"L1": [1, 2]})


def test_strip_draws_one_series_per_layer_on_a_log_axis() -> None:
    steps = [0, 10, 20, 30]
    flow = {"L1": [1e-1, 1e-3, None, 1e-5], "L2": [1.0, 0.5, 0.25, 0.125]}
    svg, xs = strip_svg(steps, flow)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    series = root.findall(f"{ns}g")
    assert [g.get("data-layer") for g in series] == ["L1", "L2"]
    # L1 has a gap at step 20: its line breaks there instead of inventing a value
    l1 = [p.get("points").split() for p in series[0].findall(f"{ns}polyline")]
    assert [len(p) for p in l1] == [2, 1]
    ys = [float(p.split(",")[1]) for part in l1 for p in part]
    # equal ratios give equal steps on a log axis, and smaller values sit lower (larger y)
    assert ys[0] < ys[1] < ys[2]
    assert ys[1] - ys[0] == pytest.approx(ys[2] - ys[1])
    assert xs == sorted(xs) and len(set(xs)) == len(steps)
    labels = [t.text for t in root.iter(f"{ns}text")]
    assert "1e-5" in labels and "1e0" in labels  # the axis spans the data's decades


@needs_dot
def test_view_html_holds_the_view(tmp_path: Path) -> None:
    model, loss_fn = cases.chain()
    loss = loss_fn()
    loss.backward()
    view = viz.draw(loss)
    path = view.html(tmp_path / "v.html")
    back = _payload(Path(path).read_text(encoding="utf-8"))
    assert len(back["frames"]) == 1
    ET.fromstring(back["frames"][0].encode())  # a well-formed SVG document
    titles = re.findall(r"<title>([^<]*)</title>", back["frames"][0])
    assert {n.id for n in view.data.nodes} <= set(titles)
    assert back["flags"] == [[[f.node, f.label, f.kind, f.text] for f in view.flags]]


@needs_dot
def test_recorder_page_carries_steps_losses_and_flow(tmp_path: Path) -> None:
    rec = cases.record(every=4, steps=12)
    text = Path(rec.html(tmp_path / "r.html")).read_text(encoding="utf-8")
    _assert_self_contained(text)
    back = _payload(text)
    assert back["steps"] == [0, 4, 8, 11]  # and the last step, so the slider reaches it
    assert back["losses"] == [viz.fmt(s.loss) for s in rec.snapshots]
    assert back["layers"] == ["L1", "L2"]
    assert back["flow"][1] == ["1", "1", "1", "1"]  # |dL/dz| at the linear output is always 1
    assert len(back["frames"]) == len(back["flags"]) == 4


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception),
                                             ("", pytest.skip.Exception)])
def test_missing_browser_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch,
                                                       ci: str, outcome: type) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no chromium"):
        browser_setup._unavailable("no chromium executable on PATH")


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_page_tests_without_dot_skip_locally_and_fail_in_ci(tmp_path: Path, ci: str,
                                                            outcome: str) -> None:
    """The pages' tests need Graphviz too: a missing `dot` goes through the same CI rule."""
    empty = tmp_path / "bin"  # a PATH without `dot` (the interpreter is called by path)
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs",
         str(Path(__file__).resolve().parent / "browser" / "test_pages.py")],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PATH": str(empty), "CI": ci}, cwd=ROOT,
    )
    assert "graphviz `dot` is not installed" in done.stdout, done.stdout
    if outcome == "failed":
        assert done.returncode not in (0, 5), done.stdout
        assert "browser tests cannot run in CI" in done.stdout
    else:
        # (a module-level skip alone exits 5, "nothing collected"; the full suite has more)
        assert re.search(r"^1 skipped in ", done.stdout, re.M), done.stdout
        assert "make graphviz" in done.stdout


@needs_dot
def test_record_training_example_runs_fast(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(RECORD), "--fast", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "screenshot" not in done.stdout  # a fast run leaves the repo's examples/figures/ be
    for run in ("sigmoid_saturated", "relu_high_lr"):
        back = _payload((tmp_path / f"{run}.html").read_text(encoding="utf-8"))
        stats = json.loads((tmp_path / f"{run}.json").read_text(encoding="utf-8"))
        # every 2nd of 20 steps, and the last step, which a recorder always keeps
        assert back["steps"] == [s["step"] for s in stats["snapshots"]] == [*range(0, 20, 2), 19]
        assert len(list((tmp_path / f"{run}_frames").glob("*.svg"))) == 11
    # the story each run tells: saturated sigmoid units from the start; ReLUs that fired at step 0
    # switch off ("inactive") and, once off for Thresholds.dead_snapshots frames, read "dead"
    sig = json.loads((tmp_path / "sigmoid_saturated.json").read_text(encoding="utf-8"))
    relu = json.loads((tmp_path / "relu_high_lr.json").read_text(encoding="utf-8"))
    assert any(f["kind"] == "saturated" for f in sig["snapshots"][0]["flags"])
    first, last = relu["snapshots"][0], relu["snapshots"][-1]
    assert not any(f["kind"] in ("dead", "inactive") for f in first["flags"])
    dead_at = next(i for i, s in enumerate(relu["snapshots"]) if s["dead_units"])
    assert any(s["inactive_units"] for s in relu["snapshots"][:dead_at])
    assert any(f["kind"] == "dead" for f in last["flags"]) and last["dead_units"] > 0


@needs_dot
def test_record_training_figures_option_puts_the_screenshots_there(tmp_path: Path) -> None:
    if browser_setup._which(browser_setup.BROWSERS) is None:
        browser_setup._unavailable("no chromium executable on PATH (apt-get install chromium)")
    figs = tmp_path / "figs"
    done = subprocess.run([sys.executable, str(RECORD), "--fast", "--out", str(tmp_path / "out"),
                           "--figures", str(figs)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    names = {f"record_{run}_step{step}.png" for run in ("sigmoid_saturated", "relu_high_lr")
             for step in (0, 19)}  # the first and the last recorded step (every 2 of 20, and 19)
    assert {p.name for p in figs.iterdir()} == names
    assert all((figs / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names)
    shots = re.findall(r"screenshot of step \d+: (.+) \(", done.stdout)
    assert sorted(Path(s).name for s in shots) == sorted(names)
    assert all(Path(s).parent == figs for s in shots)


@needs_dot
def test_edge_labels_box_only_when_the_frames_have_labels(tmp_path: Path) -> None:
    model, loss_fn = cases.chain()
    loss = loss_fn()
    loss.backward()
    box = re.compile(r'<input id="tg-show-labels" type="checkbox"( checked)?>')
    plain = Path(viz.draw(loss).html(tmp_path / "plain.html")).read_text(encoding="utf-8")
    assert box.search(plain) is None  # a box that could change nothing is left out
    shown = Path(viz.draw(loss, edge_labels=True).html(tmp_path / "labels.html")).read_text(
        encoding="utf-8")
    assert box.search(shown).group(1) == " checked"  # asked for labels: shown at first
    rec = cases.record(every=4, steps=8)  # a recorder draws them, hidden until asked
    text = Path(rec.html(tmp_path / "r.html")).read_text(encoding="utf-8")
    assert box.search(text).group(1) is None
    assert all(e.label for v in rec.views for e in v.edges)
