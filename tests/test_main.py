"""The demo command (`python -m tinygraph demo`) in its fast mode: files written, numbers sane."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinygraph.__main__ import main

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")


@needs_dot
def test_demo_fast_writes_everything_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "tinygraph", "demo", "--fast", "--no-progress", "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=True,
    )
    for run in ("healthy", "saturated"):
        for stem in (f"{run}_init", f"{run}_trained"):
            assert (out / f"{stem}.svg").stat().st_size > 1000
            assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        page = (out / f"{run}_training.html").read_text()
        assert "<svg" in page and "http://" not in page.split("<svg", 1)[0]
    assert (out / "decision_regions.png").exists()
    # Table rows: run | when | train acc | loss | L1 σ saturated | ...
    cell = r"\s*\|\s*"
    pattern = (rf"^(healthy|saturated){cell}(init|trained){cell}([\d.]+)%{cell}([\d.]+){cell}"
               r"(\d+)%")
    rows = {(m[0], m[1]): m for m in re.findall(pattern, proc.stdout, re.M)}
    assert set(rows) == {(r, w) for r in ("healthy", "saturated") for w in ("init", "trained")}
    # The saturating initialization saturates far more of the first layer's sigmoids.
    assert int(rows["saturated", "init"][4]) > 50 > int(rows["healthy", "init"][4])
    for r in rows.values():
        assert 0 <= float(r[2]) <= 100 and float(r[3]) >= 0


def test_main_without_a_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out
