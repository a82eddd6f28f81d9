"""Scalar level: tinygraph against micrograd, every measurement in a fresh subprocess.

- Moons step: MLP 2-16-16-1 on 100 make_moons points (noise 0.1, random_state 1), SVM max-margin
  loss + 1e-4·L2, one full-batch step = forward + zero_grad + backward + SGD. The garbage
  collector is on (the default interpreter); the same is also shown with it off.
  "tinygraph" builds the very graph micrograd builds (act = b + Σ w_i·x_i, relu; same random
  initial weights, so its losses equal micrograd's); "tinygraph.nn" uses tinygraph.nn.MLP (its
  own initial weights); "tinygraph.jit" is the "tinygraph" loss compiled with tg.jit (its first
  call, trace + compile, is reported apart and not counted as a step).
- Chain: x <- x*1.0001 + 0.0001, 500,000 times (10^6 ops), then tanh, then backward: time and
  peak memory.
- Bytes per node: memory held by the moons forward graph (tracemalloc) / its node count.

Run as a script with --worker it executes one measurement and prints one JSON line.
"""

from __future__ import annotations

import gc
import json
import math
import os
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from typing import Any

from harness import fmt_time, log, median, table

CHAIN_N = 500_000  # iterations: 10^6 ops
MICROGRAD_CHAIN_N = 1_000  # micrograd's recursive backward fails from about 496 iterations on
ENGINES = ("tinygraph", "tinygraph.nn", "tinygraph.jit", "micrograd")


# ---------------------------------------------------------------------------------------------
# Engines: the few calls the workloads need
# ---------------------------------------------------------------------------------------------


class MicrogradEngine:
    """karpathy/micrograd 0.1.0; tanh added through its own node protocol (it has none)."""

    def __init__(self) -> None:
        from micrograd.engine import Value
        from micrograd.nn import MLP

        self.Value, self.MLP = Value, MLP

    def value(self, x: float) -> Any:
        return self.Value(x)

    def relu(self, node: Any) -> Any:
        return node.relu()

    def tanh(self, node: Any) -> Any:
        t = math.tanh(node.data)
        out = self.Value(t, (node,), "tanh")

        def _backward() -> None:
            node.grad += (1.0 - t * t) * out.grad

        out._backward = _backward
        return out

    def mlp(self) -> tuple[Any, list[Any]]:
        random.seed(1337)
        model = self.MLP(2, [16, 16, 1])
        return model, model.parameters()

    def zero_grad(self, model: Any, params: list[Any]) -> None:
        model.zero_grad()

    def sgd(self, params: list[Any], lr: float) -> None:
        for p in params:
            p.data -= lr * p.grad

    def count(self, root: Any) -> int:
        seen, stack = {id(root)}, [root]
        while stack:
            for c in stack.pop()._prev:
                if id(c) not in seen:
                    seen.add(id(c))
                    stack.append(c)
        return len(seen)


class TinygraphEngine:
    """tinygraph with a micrograd-shaped MLP written here from core ops (same graph, same init)."""

    def __init__(self) -> None:
        import tinygraph

        self.tg = tinygraph

    def value(self, x: float) -> Any:
        return self.tg.Node(x)

    def relu(self, node: Any) -> Any:
        return self.tg.relu(node)

    def tanh(self, node: Any) -> Any:
        return self.tg.tanh(node)

    def mlp(self) -> tuple[Any, list[Any]]:
        Node, relu = self.tg.Node, self.tg.relu
        random.seed(1337)  # the same draws, in the same order, as micrograd.nn.MLP
        layers = []
        for nin, nout, nonlin in ((2, 16, True), (16, 16, True), (16, 1, False)):
            layers.append([([Node(random.uniform(-1, 1)) for _ in range(nin)], Node(0.0), nonlin)
                           for _ in range(nout)])

        def model(x: list[Any]) -> Any:
            for layer in layers:
                out = []
                for w, b, nonlin in layer:
                    act = sum((wi * xi for wi, xi in zip(w, x, strict=True)), b)
                    out.append(relu(act) if nonlin else act)
                x = out
            return x[0]

        params = [p for layer in layers for w, b, _ in layer for p in (*w, b)]
        return model, params

    def zero_grad(self, model: Any, params: list[Any]) -> None:
        self.tg.zero_grad(params)

    def sgd(self, params: list[Any], lr: float) -> None:
        for p in params:
            p.data = p.data - lr * p.grad

    def count(self, root: Any) -> int:
        return len(self.tg.walk(root))


class TinygraphNNEngine(TinygraphEngine):
    """tinygraph.nn.MLP(2, [16, 16, 1]) (its own initialisation, so its losses differ)."""

    def mlp(self) -> tuple[Any, list[Any]]:
        from tinygraph import nn

        model = nn.MLP(2, [16, 16, 1], seed=1337)
        return model, model.parameters()


class TinygraphJitEngine(TinygraphEngine):
    """The "tinygraph" graph, its loss function compiled with tg.jit: the first call traces the
    65,818-node graph and compiles it (reported as "first call"), later steps replay."""

    jit = True


def load(name: str) -> Any:
    """The engine object for a name (raises ImportError when it is not installed)."""
    if name == "micrograd":
        return MicrogradEngine()
    if name == "tinygraph.nn":
        import tinygraph.nn  # noqa: F401 - raises when the module is not there yet

        return TinygraphNNEngine()
    if name == "tinygraph.jit":
        from tinygraph import jit  # noqa: F401 - raises when the module is not there yet

        return TinygraphJitEngine()
    return TinygraphEngine()


# ---------------------------------------------------------------------------------------------
# Workloads (run inside the worker process)
# ---------------------------------------------------------------------------------------------


def moons() -> tuple[list[list[float]], list[float]]:
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=100, noise=0.1, random_state=1)
    return [[float(a), float(b)] for a, b in X], [float(2 * t - 1) for t in y]


def moons_loss(eng: Any, model: Any, params: list[Any], X: list[list[float]],
               y: list[float]) -> Any:
    """SVM max-margin loss + 1e-4·L2 over the whole batch, exactly as micrograd's demo."""
    inputs = [[eng.value(v) for v in row] for row in X]
    scores = [model(row) for row in inputs]
    margins = [eng.relu(1.0 + (-yi) * s) for yi, s in zip(y, scores, strict=True)]
    data_loss = sum(margins) * (1.0 / len(margins))
    reg_loss = 1e-4 * sum(p * p for p in params)
    return data_loss + reg_loss


def work_moons(eng: Any, steps: int, gc_off: bool) -> dict[str, Any]:
    if gc_off:  # the step without cyclic-GC passes; collect between steps, untimed
        gc.disable()
    X, y = moons()
    model, params = eng.mlp()
    fwd, bwd, step, losses, nodes = [], [], [], [], None
    first = None
    if getattr(eng, "jit", False):
        compiled = eng.tg.jit(lambda: moons_loss(eng, model, params, X, y))
        t0 = time.perf_counter()
        compiled()  # trace + compile (not a training step: no backward, no update)
        first = time.perf_counter() - t0
        nodes = eng.count(compiled.graph)

        def build() -> Any:
            return compiled()
    else:
        def build() -> Any:
            return moons_loss(eng, model, params, X, y)
    for k in range(steps):
        t0 = time.perf_counter()
        loss = build()
        t1 = time.perf_counter()
        eng.zero_grad(model, params)
        loss.backward()
        t2 = time.perf_counter()
        eng.sgd(params, 1.0 - 0.9 * k / 100)
        t3 = time.perf_counter()
        fwd.append(t1 - t0)
        bwd.append(t2 - t1)
        step.append(t3 - t0)
        losses.append(float(loss.data))
        if nodes is None:
            nodes = eng.count(loss)
        del loss
        if gc_off:
            gc.collect()
    return {"step_s": median(step), "forward_s": median(fwd), "backward_s": median(bwd),
            "nodes": nodes, "losses": losses[:2], "first_s": first}


def work_bytes(eng: Any) -> dict[str, Any]:
    X, y = moons()
    model, params = eng.mlp()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    loss = moons_loss(eng, model, params, X, y)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    n = eng.count(loss)
    return {"bytes_per_node": held / n, "nodes": n}


def _rss_mb() -> float:
    """Peak resident memory of this process, MB."""
    # VmHWM is this process's own peak; ru_maxrss can carry the parent's peak across exec.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def work_chain(eng: Any, n: int) -> dict[str, Any]:
    base = _rss_mb()
    t0 = time.perf_counter()
    x0 = eng.value(0.5)
    x = x0
    for _ in range(n):
        x = x * 1.0001 + 0.0001
    y = eng.tanh(x)
    t1 = time.perf_counter()
    out = {"n": n, "build_s": t1 - t0}
    try:
        y.backward()
    except RecursionError as e:
        out.update(error=f"RecursionError ({e})")
        return out
    t2 = time.perf_counter()
    a = 1.0001**n
    xn = 0.5 * a + (a - 1.0)  # closed form of the affine recurrence
    want = (1.0 - math.tanh(xn) ** 2) * a
    out.update(backward_s=t2 - t1, total_s=t2 - t0, peak_mb=_rss_mb(), growth_mb=_rss_mb() - base,
               grad_ok=math.isclose(x0.grad, want, rel_tol=1e-6))
    return out


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    eng = load(spec["engine"])
    w = spec["w"]
    if w == "moons":
        return work_moons(eng, spec["steps"], spec["gc_off"])
    if w == "bytes":
        return work_bytes(eng)
    return work_chain(eng, spec["n"])


# ---------------------------------------------------------------------------------------------
# Orchestration (parent process)
# ---------------------------------------------------------------------------------------------


def spawn(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its failure is reported, not raised."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"error": tail[0][:160]}


def repeat(spec: dict[str, Any], n: int, timeout: float) -> list[dict[str, Any]]:
    runs = []
    for _ in range(n):
        r = spawn(spec, timeout)
        runs.append(r)
        if "error" in r:
            break  # failures are deterministic
    return runs


def _med(runs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in runs if r.get(key) is not None]
    return median(vals) if vals else None


def run(engines: list[str], repeats: int, steps: int, chain_n: int,
        timeout: float = 600) -> dict[str, Any]:
    """All scalar measurements; returns raw results for tables()."""
    res: dict[str, Any] = {"chain_n": chain_n}
    for name in engines:
        try:
            load(name)
        except ImportError as e:
            res[name] = {"skipped": f"{type(e).__name__}: {e}"}
            log(f"  scalar {name}: skipped ({e})")
            continue
        r: dict[str, Any] = {}
        for gc_off in (False, True):
            key = "moons_nogc" if gc_off else "moons"
            # micrograd with the collector on is ~1 s a step: fewer steps, same median
            st = max(2, steps // 3) if name == "micrograd" and not gc_off else steps
            r[key] = repeat({"engine": name, "w": "moons", "steps": st, "gc_off": gc_off},
                            repeats, timeout)
            log(f"  scalar {name} moons gc {'off' if gc_off else 'on'}: "
                f"{fmt_time(_med(r[key], 'step_s'))}")
        if name != "tinygraph.jit":  # replay holds no graph; its first call is in the table
            r["bytes"] = repeat({"engine": name, "w": "bytes"}, 1, timeout)
        if name not in ("tinygraph.nn", "tinygraph.jit"):
            n = MICROGRAD_CHAIN_N if name == "micrograd" else chain_n
            r["chain"] = repeat({"engine": name, "w": "chain", "n": n}, repeats, timeout)
            log(f"  scalar {name} chain: {r['chain'][-1]}")
        res[name] = r
    return res


def tables(res: dict[str, Any]) -> str:
    """Markdown tables: moons step (gc on / off, ratio to micrograd), chain, bytes per node."""
    mg = res.get("micrograd", {})
    mg_on = _med(mg.get("moons", []), "step_s")
    mg_off = _med(mg.get("moons_nogc", []), "step_s")
    rows, chain_rows, notes = [], [], []
    for name in ENGINES:
        r = res.get(name)
        if r is None:
            continue
        if "skipped" in r:
            notes.append(f"- {name}: not measured ({r['skipped']})")
            continue
        on, off = r["moons"], r["moons_nogc"]
        s_on, s_off = _med(on, "step_s"), _med(off, "step_s")
        err = next((x["error"] for x in on + off if "error" in x), None)
        if err:
            rows.append([name, "error", "-", "-", "-", "-", "-", "-", err])
            continue
        sp_on = f"{mg_on / s_on:.1f}x" if mg_on and s_on else "-"
        sp_off = f"{mg_off / s_off:.1f}x" if mg_off and s_off else "-"
        first = on[0]
        bpn = r["bytes"][0].get("bytes_per_node") if "bytes" in r else None
        fc = _med(on, "first_s")
        rows.append([name, fmt_time(s_on), sp_on, fmt_time(s_off), sp_off,
                     f"{fmt_time(first['forward_s'])} / {fmt_time(first['backward_s'])}",
                     fmt_time(fc) if fc is not None else "-",
                     f"{first['nodes']:,}", f"{bpn:.0f}" if bpn else "-",
                     ", ".join(f"{v:.12f}" for v in first["losses"])])
        if "chain" in r:
            c = r["chain"][-1]
            n_ops = 2 * c.get("n", 0)
            if "error" in c:
                chain_rows.append([name, f"{n_ops:,}", c["error"][:90], "-", "-", "-"])
            else:
                ch = r["chain"]
                chain_rows.append([name, f"{n_ops:,}", fmt_time(_med(ch, "total_s")),
                                   f"{fmt_time(_med(ch, 'build_s'))} / "
                                   f"{fmt_time(_med(ch, 'backward_s'))}",
                                   f"{_med(ch, 'peak_mb'):.0f} MB ({_med(ch, 'growth_mb'):.0f} "
                                   "MB growth)", "ok" if c["grad_ok"] else "**wrong**"])
    out = [
        "Moons step (MLP 2-16-16-1, 100 points, SVM loss + L2; forward + zero_grad + backward + "
        "SGD), median over steps and fresh processes",
        "",
        table(["engine", "step, gc on", "vs micrograd", "step, gc off", "vs micrograd",
               "forward / backward (gc on)", "first call (trace + compile)", "nodes",
               "bytes/node", "loss at steps 1, 2"],
              rows),
        "",
        "Deep chain x <- x*1.0001 + 0.0001, then tanh, then backward (fresh process)",
        "",
        table(["engine", "ops", "total", "build / backward", "peak RSS", "gradient"], chain_rows),
    ]
    if notes:
        out += [""] + notes
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
        print(json.dumps(worker(json.loads(sys.argv[2]))))
        sys.stdout.flush()
        os._exit(0)  # skip tearing down a graph of 10^6 nodes
    sys.exit("run benchmarks/run.py; this module is its scalar section")
