#!/usr/bin/env python3
"""tinygraph's benchmarks: every table in one run, each engine measured in the same run.

    python benchmarks/run.py                    # everything (< 10 minutes on 2 cores)
    python benchmarks/run.py --quick            # shorter budgets, one repeat (< 2 minutes)
    python benchmarks/run.py --sections mlp,ops # pick sections: mlp, ops, scalar, render
    python benchmarks/run.py --configs digits --dtypes float64 --engines torch,tinygraph

Tables go to stdout (markdown), progress to stderr. Engines that are not installed (torch, MyGrad,
HIPS autograd, JAX, micrograd) are reported and skipped; `pip install -e ".[bench]"` installs them.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, when set, make current numpy slower; this command unsets
them for its own process (before numpy loads) and says so in the machine table. Pass
--keep-openblas-env to measure with them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_DROP = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if "--keep-openblas-env" not in sys.argv:
    _dropped = [f"{k}={os.environ.pop(k)}" for k in _DROP if k in os.environ]
    if _dropped:
        os.environ["TINYGRAPH_BENCH_DROPPED_ENV"] = ", ".join(_dropped)
os.environ.setdefault("JAX_PLATFORMS", "cpu")
_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--threads", type=int, default=None)
if _pre.parse_known_args()[0].threads == 1:  # JAX reads its thread settings once, at import
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen"
                               "=false intra_op_parallelism_threads=1").strip()
    # XLA's CPU runtime still runs a matmul on two threads with these flags: one core for the
    # whole process (and the fresh processes it starts) makes "one thread" true for every engine
    if hasattr(os, "sched_setaffinity"):
        _cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {_cpu})
        os.environ["TINYGRAPH_BENCH_PINNED"] = str(_cpu)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import render_bench  # noqa: E402
import scalar_bench  # noqa: E402
import tensor_bench  # noqa: E402

SECTIONS = ("mlp", "ops", "scalar", "render")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma list of " +
                    ", ".join(SECTIONS))
    ap.add_argument("--quick", action="store_true", help="short budgets and one repeat")
    ap.add_argument("--configs", default="digits,mnist,cifar")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--engines", default="", help="tensor engines (numpy-manual is always run): "
                    + ", ".join(tensor_bench.ENGINES))
    ap.add_argument("--scalar-engines", default=",".join(scalar_bench.ENGINES))
    ap.add_argument("--budget", type=float, default=None, help="seconds of timed calls per cell")
    ap.add_argument("--rounds", type=int, default=None,
                    help="turns the engines take within an MLP cell and in the chain (default 8; "
                    "2 with --quick): "
                    "more, shorter turns let a slow spell of the machine hit every engine alike")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for numpy's BLAS and torch (default: numpy's BLAS default); "
                    "1 also pins the run to one core, and gives steadier numbers on a machine "
                    "that other jobs share")
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="do not unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE")
    args = ap.parse_args()
    sections = [s for s in args.sections.split(",") if s]
    for s in sections:
        if s not in SECTIONS:
            ap.error(f"unknown section {s!r}; choose from {', '.join(SECTIONS)}")
    limiter = None
    if args.threads is not None:
        try:
            import threadpoolctl

            limiter = threadpoolctl.threadpool_limits(args.threads, user_api="blas")  # noqa: F841
        except ImportError:
            ap.error("--threads needs threadpoolctl (pip install threadpoolctl)")
    budget = args.budget if args.budget is not None else (0.25 if args.quick else 1.0)
    # idle time between engines' turns, for their threads to stop spinning: none with one thread
    gap = 0.0 if args.threads == 1 else 0.1 if args.quick else 0.3
    t0 = time.perf_counter()

    out = ["## Machine", ""]
    info = harness.machine()
    out.append(harness.table(["", ""], list(info.items())))

    if "mlp" in sections or "ops" in sections:
        names = list(tensor_bench.ENGINES)
        if args.engines:
            want = set(args.engines.split(",")) | {"numpy-manual"}
            names = [n for n in names if n in want]
        live, versions, skipped = tensor_bench.start(names, harness.blas_threads())
        out += ["", "## Engines", "",
                harness.table(["engine", "version"], [[k, v] for k, v in versions.items()]
                              + [[k, f"not measured: {v}"] for k, v in skipped.items()])]
        rounds = args.rounds or (2 if args.quick else 8)
        min_calls = 3 if args.quick else tensor_bench.MIN_CALLS
        if "mlp" in sections:
            rows = tensor_bench.run_mlp(live, args.configs.split(","), args.dtypes.split(","),
                                        budget, gap, rounds=rounds, min_calls=min_calls)
            out += ["", "## MLP training step: median per step (ratio to numpy-manual)", "",
                    "D-H-H-C, ReLU, softmax cross-entropy (mean) + 0.5·L2·Σ|W|², plain SGD; "
                    f"lr {tensor_bench.LR}, L2 {tensor_bench.L2}.", "",
                    tensor_bench.mlp_table(rows)]
        if "ops" in sections:
            rows = tensor_bench.run_chain(live, budget, gap, rounds=rounds, min_calls=min_calls)
            out += ["", "## Per-op overhead: 1,000-op elementwise chain on a (4,) array, "
                    "float64, forward + backward", "", tensor_bench.chain_table(rows)]

    if "scalar" in sections:
        res = scalar_bench.run(args.scalar_engines.split(","), repeats=1 if args.quick else 3,
                               steps=3 if args.quick else 6, chain_n=scalar_bench.CHAIN_N)
        out += ["", "## Scalar level vs micrograd", "", scalar_bench.tables(res)]

    if "render" in sections:
        out += ["", "## Rendering", "", render_bench.run(args.quick)]

    out += ["", f"Whole run: {time.perf_counter() - t0:.0f} s"
            f"{' (--quick)' if args.quick else ''}."]
    print("\n".join(out))


if __name__ == "__main__":
    main()
