"""Shared benchmark plumbing: timing, the machine description, markdown tables."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any


def median(xs: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return statistics.median(xs)


def settle(gap_s: float) -> None:
    """Free the last engine's garbage and let spinning BLAS/OpenMP threads go idle."""
    gc.collect()
    time.sleep(gap_s)


def fmt_time(s: float | None) -> str:
    """Seconds in the unit that reads best (µs, ms, s)."""
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def log(msg: str) -> None:
    """Progress goes to stderr so that stdout holds only the tables."""
    print(msg, file=sys.stderr, flush=True)


def machine() -> dict[str, str]:
    """CPU model, cores, Python, numpy and its BLAS (with thread counts via threadpoolctl)."""
    import numpy as np

    cpu = "?"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
            cpu = next(names, "?")
    info = {
        "cpu": cpu or platform.processor() or "?",
        "cores": str(os.cpu_count()),
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "numpy": np.__version__,
    }
    try:
        import threadpoolctl

        libs = [f"{d['internal_api']} {d.get('version') or ''} ({d['num_threads']} threads)"
                for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"]
        info["blas"] = ", ".join(libs) or "none found"
    except ImportError:
        info["blas"] = "? (pip install threadpoolctl to see it)"
    pinned = os.environ.get("TINYGRAPH_BENCH_PINNED")
    if pinned is not None:
        info["cores used"] = f"1 (the run is pinned to CPU {pinned}: --threads 1)"
    dropped = os.environ.get("TINYGRAPH_BENCH_DROPPED_ENV")
    if dropped:
        info["environment"] = f"unset for this run: {dropped}"
    return info


def blas_threads() -> int:
    """Threads numpy's BLAS uses (the other engines are matched to it)."""
    try:
        import threadpoolctl

        n = [d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"]
        if n:
            return max(n)
    except ImportError:
        pass
    return os.cpu_count() or 1
