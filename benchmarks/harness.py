"""Shared benchmark plumbing: timing, the machine description, markdown tables."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


def timeit(fn: Callable[[], Any], budget_s: float, *, min_n: int = 5, max_n: int = 2000,
           warm_s: float = 0.2, min_warm: int = 2) -> tuple[Any, float, list[float]]:
    """(first result, first-call seconds, timed call seconds): first call, warm-up, timed calls."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    n, tw = 0, time.perf_counter()
    while n < min_warm or time.perf_counter() - tw < warm_s:
        fn()
        n += 1
    times: list[float] = []
    tb = time.perf_counter()
    while len(times) < min_n or (len(times) < max_n and time.perf_counter() - tb < budget_s):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return out, first, times


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
