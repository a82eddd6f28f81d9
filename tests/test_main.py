"""The demo command (`python -m tinygraph demo`) in its fast mode: files written, numbers sane."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinygraph.__main__ import NO_DOT, _progress, _Quiet, _TextBar, main

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


# ---------------------------------------------------------------------------------------------
# A bare install: no Graphviz `dot`, no tqdm, no matplotlib
# ---------------------------------------------------------------------------------------------

ROW = re.compile(r"^(healthy|saturated)\s*\|\s*(init|trained)\s*\|\s*([\d.]+)%", re.M)


def _demo(out: Path, *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m tinygraph demo --fast` in a subprocess, env overriding this process's."""
    return subprocess.run(
        [sys.executable, "-m", "tinygraph", "demo", "--fast", "--out", str(out), *flags],
        capture_output=True, text=True, timeout=300, check=True, env={**os.environ, **env},
    )


def _hide(folder: Path, *packages: str) -> str:
    """A PYTHONPATH entry whose packages shadow the installed ones and fail to import."""
    for name in packages:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('{name} hidden')\n")
    return str(folder)


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_demo_without_dot_trains_reports_and_says_so_once(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    empty = tmp_path / "bin"  # a PATH with no `dot` on it (the interpreter is called by path)
    empty.mkdir()
    proc = _demo(out, "--no-progress", PATH=str(empty))
    assert {(m[0], m[1]) for m in ROW.findall(proc.stdout)} == {
        (r, w) for r in ("healthy", "saturated") for w in ("init", "trained")}
    assert proc.stdout.count(NO_DOT) == 1
    assert "apt-get install graphviz" in NO_DOT
    assert "Traceback" not in proc.stderr
    # No diagram and no training page, but the plot is not a diagram: it is still written.
    written = sorted(p.name for p in out.iterdir())
    assert written == (["decision_regions.png"] if _has_matplotlib() else [])


def test_demo_without_tqdm_or_matplotlib_shows_progress_and_names_the_extra(
        tmp_path: Path) -> None:
    out = tmp_path / "demo"
    empty = tmp_path / "bin"  # no `dot` either: the bare-install case, and no Graphviz needed
    empty.mkdir()
    proc = _demo(out, PATH=str(empty),
                 PYTHONPATH=_hide(tmp_path / "hidden", "tqdm", "matplotlib"))
    # The built-in bar (not tqdm's, which would show it/s): one finished line per run.
    for run in ("healthy", "saturated"):
        assert re.search(rf"^\s*{run}: 100%\|#{{{_TextBar.WIDTH}}}\| 20/20$", proc.stderr, re.M)
    assert "it/s" not in proc.stderr
    assert proc.stdout.count("matplotlib is not installed") == 1
    assert 'pip install "tinygraph[demo]"' in proc.stdout
    assert not (out / "decision_regions.png").exists()
    assert len(ROW.findall(proc.stdout)) == 4


def test_progress_falls_back_to_the_text_bar_without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `from tqdm import tqdm` fail
    assert isinstance(_progress(5, "run", enabled=True), _TextBar)
    assert isinstance(_progress(5, "run", enabled=False), _Quiet)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_text_bar_redraws_per_percent_on_a_terminal_and_once_elsewhere() -> None:
    done = "run: 100%|" + "#" * _TextBar.WIDTH + "| 400/400\n"
    tty = _Tty()
    bar = _TextBar(400, "run", stream=tty)
    for _ in range(400):
        bar.update()
    bar.close()
    frames = tty.getvalue().split("\r")[1:]
    # 0%..100% drawn once each (not 400 times), then the final line with its newline.
    assert len(frames) == 102
    assert frames[0].startswith("run:   0%|" + " " * _TextBar.WIDTH)
    assert frames[-1] == done and tty.getvalue().count("\n") == 1

    log = io.StringIO()  # a pipe or a file: no carriage returns piling up, one line at the end
    bar = _TextBar(400, "run", stream=log)
    for _ in range(400):
        bar.update()
    assert log.getvalue() == ""
    bar.close()
    assert log.getvalue() == done
