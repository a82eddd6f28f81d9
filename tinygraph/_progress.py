"""Progress bars: tqdm where installed, else a plain text bar or nothing (one place for both
the training loop and the demo)."""

from __future__ import annotations

import sys
from typing import Any


class _Quiet:
    """The progress interface, showing nothing (--no-progress)."""

    def update(self, n: int = 1) -> None: ...

    def set_postfix_str(self, s: str) -> None: ...

    def close(self) -> None: ...


class _TextBar:
    """A minimal progress bar on stderr, for when tqdm is not installed.

    On a terminal it redraws one line in place; elsewhere (a log, a pipe) carriage returns would
    pile up, so it writes a single line when done.
    """

    WIDTH = 30

    def __init__(self, total: int, desc: str, stream: Any = None) -> None:
        self.total, self.desc, self.n = total, desc, 0
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.shown = -1  # last percentage drawn: redraw only when it changes, not every step

    def _pct(self) -> int:
        return 100 * self.n // self.total if self.total else 100

    def _line(self) -> str:
        done = self.WIDTH * self._pct() // 100
        pct = self._pct()
        bar = "#" * done + " " * (self.WIDTH - done)
        return f"{self.desc}: {pct:3d}%|{bar}| {self.n}/{self.total}"

    def update(self, n: int = 1) -> None:
        self.n = min(self.n + n, self.total)
        pct = self._pct()
        if self.live and pct != self.shown:
            self.shown = pct
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def set_postfix_str(self, s: str) -> None: ...

    def close(self) -> None:
        self.stream.write(("\r" if self.live else "") + self._line() + "\n")
        self.stream.flush()


def progress_bar(total: int, desc: str = "", *, enabled: bool = True, leave: bool = True,
                 fallback: bool = True) -> Any:
    """A tqdm bar where tqdm is installed; without it a _TextBar (fallback=True) or nothing
    (_Quiet); _Quiet when not enabled. leave: keep tqdm's bar on screen when done."""
    if not enabled:
        return _Quiet()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _TextBar(total, desc) if fallback else _Quiet()
    return tqdm(total=total, desc=desc or None, leave=leave, file=sys.stderr)
