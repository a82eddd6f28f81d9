"""Tensor level: the MLP training step and the per-op overhead chain, every engine in one process.

Workloads (the same as the performance anchors):
- MLP step: D-H-H-C, ReLU, softmax cross-entropy (mean over the batch) + 0.5·L2·Σ|W|², plain SGD
  (lr 0.01, L2 1e-4), on digits (64-128-10, batch 64), mnist (784-256-10, 256) and cifar
  (3072-1024-10, 512); X ~ N(0, 1), uniform labels, He-initialised weights, zero biases.
- Chain: forward + backward of 1,000 elementwise ops on a (4,) array, op i being
  [x*1.001, x+0.001, tanh(x), x-0.001][i % 4], loss = sum; reported per op.

numpy-manual (the backward derived by hand) is the reference (1x). Engines that cannot be
imported are reported and skipped. Every engine's loss and parameters after one step are compared
with numpy-manual's (the "check" column).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from harness import log, median, settle, table

CONFIGS = {
    "digits": (64, 128, 10, 64),
    "mnist": (784, 256, 10, 256),
    "cifar": (3072, 1024, 10, 512),
}
LR, L2 = 0.01, 1e-4
CHAIN_OPS = 1000
CHAIN_SHAPE = (4,)
WARM = 0.03  # seconds of untimed calls at the start of a turn (see take_turns)
TURN = 0.005  # seconds per turn when the engines run one thread each
MIN_CALLS = 30  # timed calls per engine and cell at least: a median of fewer moves by several %


def _sgd(params: list, replace: Any) -> None:
    """SGD as an optimizer does it: .grad is the node's own array (never shared), so its buffer
    becomes the new data; replace_data takes it without a copy."""
    for p in params:
        g = p.grad
        g *= -LR
        g += p.data
        p.grad = None
        replace(p, g)


@dataclass
class Trainer:
    """One engine's training loop: step() runs fwd+bwd+SGD and returns the loss."""

    step: Callable[[], float]
    params: Callable[[], list[np.ndarray]]


class Engine:
    """An engine under test; setup() imports it and returns its version, or raises to skip it."""

    name = "?"

    def setup(self) -> str:
        raise ImportError(self.name)

    def mlp(self, params: list[np.ndarray], X: np.ndarray, y: np.ndarray, Y: np.ndarray) -> Trainer:
        raise ImportError(self.name)

    def chain(self, x0: np.ndarray) -> Callable[[], np.ndarray]:
        raise ImportError(self.name)


def chain_forward(x: Any, n_ops: int, tanh: Callable[[Any], Any]) -> Any:
    """The per-op-overhead chain for any engine with + - * overloaded."""
    for i in range(n_ops):
        k = i & 3
        if k == 0:
            x = x * 1.001
        elif k == 1:
            x = x + 0.001
        elif k == 2:
            x = tanh(x)
        else:
            x = x - 0.001
    return x


def make_problem(cfg: str, dtype: Any, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray,
                                                                np.ndarray, np.ndarray]:
    """Initial [W1, b1, W2, b2, W3, b3], inputs X, labels y and their one-hot Y."""
    D, H, C, B = CONFIGS[cfg]
    rng = np.random.default_rng(seed)
    params = []
    for fi, fo in ((D, H), (H, H), (H, C)):
        params.append((rng.standard_normal((fi, fo)) * np.sqrt(2.0 / fi)).astype(dtype))
        params.append(np.zeros(fo, dtype=dtype))
    X = rng.standard_normal((B, D)).astype(dtype)
    y = rng.integers(0, C, size=B).astype(np.int64)
    Y = np.zeros((B, C), dtype=dtype)
    Y[np.arange(B), y] = 1
    return params, X, y, Y


# ---------------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------------


class NumpyManual(Engine):
    """The same maths with the backward written by hand, in place where numpy allows."""

    name = "numpy-manual"

    def setup(self) -> str:
        return np.__version__

    def mlp(self, params, X, y, Y):
        W1, b1, W2, b2, W3, b3 = params
        B = X.shape[0]
        idx = np.arange(B)
        decay = 1.0 - LR * L2

        def step() -> float:
            z1 = X @ W1
            z1 += b1
            h1 = np.maximum(z1, 0, out=z1)
            z2 = h1 @ W2
            z2 += b2
            h2 = np.maximum(z2, 0, out=z2)
            lg = h2 @ W3
            lg += b3
            m = lg.max(axis=1, keepdims=True)
            e = np.exp(lg - m)
            s = e.sum(axis=1, keepdims=True)
            loss = (np.log(s[:, 0]) + m[:, 0] - lg[idx, y]).mean()
            loss += 0.5 * L2 * (np.vdot(W1, W1) + np.vdot(W2, W2) + np.vdot(W3, W3))
            d = e / s
            d[idx, y] -= 1
            d *= 1.0 / B
            gW3 = h2.T @ d
            gb3 = d.sum(axis=0)
            dh = d @ W3.T
            dh *= h2 > 0
            gW2 = h1.T @ dh
            gb2 = dh.sum(axis=0)
            dh = dh @ W2.T
            dh *= h1 > 0
            gW1 = X.T @ dh
            gb1 = dh.sum(axis=0)
            for W, g in ((W1, gW1), (W2, gW2), (W3, gW3)):  # L2's gradient folded in as decay
                W *= decay
                g *= LR
                W -= g
            for b, g in ((b1, gb1), (b2, gb2), (b3, gb3)):
                g *= LR
                b -= g
            return float(loss)

        return Trainer(step, lambda: [p.copy() for p in params])

    def chain(self, x0):
        def run() -> np.ndarray:
            xs = [x0]
            x = x0
            for i in range(CHAIN_OPS):
                k = i & 3
                if k == 0:
                    x = x * 1.001
                elif k == 1:
                    x = x + 0.001
                elif k == 2:
                    x = np.tanh(x)
                else:
                    x = x - 0.001
                xs.append(x)
            g = np.ones_like(x)
            for i in range(CHAIN_OPS - 1, -1, -1):
                k = i & 3
                if k == 0:
                    g = g * 1.001
                elif k == 2:
                    t = xs[i + 1]
                    g = g * (1.0 - t * t)
            return g

        return run


class Tinygraph(Engine):
    """tinygraph with core ops only: x @ W + b, relu, log_softmax, picking the label, L2."""

    name = "tinygraph"

    def setup(self) -> str:
        import tinygraph
        from tinygraph.engine import replace_data

        self.tg, self.replace = tinygraph, replace_data
        return tinygraph.__version__

    def loss(self, P: list[Any], Xn: Any, y: np.ndarray, Y: np.ndarray) -> Any:
        tg = self.tg
        W1, b1, W2, b2, W3, b3 = P
        h = tg.relu(Xn @ W1 + b1)
        h = tg.relu(h @ W2 + b2)
        logits = h @ W3 + b3
        nll = -tg.mean(tg.log_softmax(logits, axis=1)[self.idx, y])
        return nll + (0.5 * L2) * ((W1 * W1).sum() + (W2 * W2).sum() + (W3 * W3).sum())

    def mlp(self, params, X, y, Y):
        tg, replace = self.tg, self.replace
        P = [tg.Node(p) for p in params]
        Xn = tg.Node(X, requires_grad=False)  # the batch, wrapped once like torch.from_numpy
        self.idx = np.arange(X.shape[0])

        def step() -> float:
            loss = self.loss(P, Xn, y, Y)
            loss.backward()
            _sgd(P, replace)
            return loss.item()

        return Trainer(step, lambda: [np.array(p.data) for p in P])

    def chain(self, x0):
        tg = self.tg

        def run() -> np.ndarray:
            x = tg.Node(x0)
            chain_forward(x, CHAIN_OPS, tg.tanh).sum().backward()
            return x.grad

        return run


class TinygraphNN(Tinygraph):
    """tinygraph as its README writes a model: nn.TensorMLP, losses, optim.SGD."""

    name = "tinygraph.nn"

    def setup(self) -> str:
        version = super().setup()
        from tinygraph import losses, nn, optim

        self.losses, self.nn, self.optim = losses, nn, optim
        return version

    def mlp(self, params, X, y, Y):
        tg, nn, losses = self.tg, self.nn, self.losses
        D, H = params[0].shape
        C = params[-1].shape[0]
        model = nn.TensorMLP(D, [H, H, C], activation="relu", dtype=X.dtype)
        model.load_state_dict(dict(zip([n for n, _ in model.named_parameters()], params,
                                       strict=True)))
        weights = model.weights()
        opt = self.optim.SGD(model.parameters(), lr=LR)
        Xn = tg.Node(X, requires_grad=False)

        def step() -> float:
            loss = losses.softmax_cross_entropy(model(Xn), y) + losses.l2(weights, L2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

        return Trainer(step, lambda: [np.array(p.data) for p in model.parameters()])

    def chain(self, x0):
        raise ImportError("same chain as tinygraph")


class TinygraphJit(Tinygraph):
    """tinygraph's fused ops (linear, softmax cross-entropy, l2), backward() and optim.SGD's step
    compiled together with tg.jit: the first step traces and compiles (its time is reported),
    later steps replay generated code."""

    name = "tinygraph.jit"

    def mlp(self, params, X, y, Y):
        tg = self.tg
        from tinygraph import losses, optim

        P = [tg.Node(p) for p in params]
        W1, b1, W2, b2, W3, b3 = P
        opt = optim.SGD(P, lr=LR)

        @tg.jit
        def train_step(X: Any, y: Any) -> Any:
            h = tg.relu(tg.linear(X, W1, b1))
            h = tg.relu(tg.linear(h, W2, b2))
            loss = (losses.softmax_cross_entropy(tg.linear(h, W3, b3), y)
                    + losses.l2([W1, W2, W3], L2))
            loss.backward()
            opt.step()
            opt.zero_grad()  # the gradients are not needed after the step: not kept
            return loss

        def step() -> float:
            return train_step(X, y).item()

        self.compiled = train_step
        return Trainer(step, lambda: [np.array(p.data) for p in P])

    def chain(self, x0):
        tg = self.tg
        x = tg.Node(x0)
        f = tg.jit(lambda x: chain_forward(x, CHAIN_OPS, tg.tanh).sum())

        def run() -> np.ndarray:
            x.grad = None
            f(x).backward()
            return x.grad

        return run


class Torch(Engine):
    name = "torch"

    def setup(self) -> str:
        import torch

        self.torch = torch
        return torch.__version__

    def mlp(self, params, X, y, Y):
        torch = self.torch
        F = torch.nn.functional
        P = [torch.from_numpy(p).requires_grad_() for p in params]
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        opt = torch.optim.SGD(P, lr=LR)
        W1, b1, W2, b2, W3, b3 = P

        def step() -> float:
            opt.zero_grad(set_to_none=True)
            h = F.relu(torch.addmm(b1, Xt, W1))
            h = F.relu(torch.addmm(b2, h, W2))
            logits = torch.addmm(b3, h, W3)
            loss = F.cross_entropy(logits, yt) + 0.5 * L2 * (
                W1.square().sum() + W2.square().sum() + W3.square().sum())
            loss.backward()
            opt.step()
            return loss.item()

        return Trainer(step, lambda: [p.detach().numpy().copy() for p in P])

    def chain(self, x0):
        torch = self.torch

        def run() -> np.ndarray:
            x = torch.from_numpy(x0).requires_grad_()
            chain_forward(x, CHAIN_OPS, torch.tanh).sum().backward()
            return x.grad.numpy()

        return run


class MyGrad(Engine):
    name = "mygrad"

    def setup(self) -> str:
        import mygrad
        from mygrad.nnet.activations import relu
        from mygrad.nnet.losses import softmax_crossentropy

        self.mg, self.relu, self.sce = mygrad, relu, softmax_crossentropy
        return mygrad.__version__

    def mlp(self, params, X, y, Y):
        mg, relu, sce = self.mg, self.relu, self.sce
        P = [mg.Tensor(p) for p in params]
        W1, b1, W2, b2, W3, b3 = P

        def step() -> float:
            h = relu(mg.matmul(X, W1) + b1)
            h = relu(mg.matmul(h, W2) + b2)
            logits = mg.matmul(h, W3) + b3
            loss = sce(logits, y) + 0.5 * L2 * (mg.sum(W1 * W1) + mg.sum(W2 * W2)
                                                + mg.sum(W3 * W3))
            loss.backward()
            for p in P:
                p.data -= LR * p.grad
            return loss.item()

        return Trainer(step, lambda: [p.data.copy() for p in P])

    def chain(self, x0):
        mg = self.mg

        def run() -> np.ndarray:
            x = mg.Tensor(x0)
            chain_forward(x, CHAIN_OPS, mg.tanh).sum().backward()
            return x.grad

        return run


class HipsAutograd(Engine):
    name = "autograd"

    def setup(self) -> str:
        from importlib.metadata import version

        import autograd
        import autograd.numpy as anp
        from autograd.scipy.special import logsumexp

        self.ag, self.anp, self.lse = autograd, anp, logsumexp
        return version("autograd")

    def mlp(self, params, X, y, Y):
        anp, lse = self.anp, self.lse

        def loss_fn(P: list[Any]) -> Any:
            W1, b1, W2, b2, W3, b3 = P
            h = anp.maximum(anp.dot(X, W1) + b1, 0.0)
            h = anp.maximum(anp.dot(h, W2) + b2, 0.0)
            logits = anp.dot(h, W3) + b3
            nll = anp.mean(lse(logits, axis=1) - anp.sum(logits * Y, axis=1))
            return nll + 0.5 * L2 * (anp.sum(W1 * W1) + anp.sum(W2 * W2) + anp.sum(W3 * W3))

        vg = self.ag.value_and_grad(loss_fn)
        P = list(params)

        def step() -> float:
            loss, G = vg(P)
            for p, g in zip(P, G, strict=True):
                p -= LR * g
            return float(loss)

        return Trainer(step, lambda: [p.copy() for p in P])

    def chain(self, x0):
        anp = self.anp
        g = self.ag.grad(lambda x: anp.sum(chain_forward(x, CHAIN_OPS, anp.tanh)))
        return lambda: g(x0)


class Jax(Engine):
    def __init__(self, jit: bool) -> None:
        self.jit = jit
        self.name = "jax (jit)" if jit else "jax (eager)"

    def setup(self) -> str:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 allowed; float32 stays float32
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        return jax.__version__

    def mlp(self, params, X, y, Y):
        jax, jnp = self.jax, self.jnp

        def loss_fn(P: list[Any], X: Any, y: Any) -> Any:
            W1, b1, W2, b2, W3, b3 = P
            h = jax.nn.relu(X @ W1 + b1)
            h = jax.nn.relu(h @ W2 + b2)
            logp = jax.nn.log_softmax(h @ W3 + b3, axis=1)
            nll = -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
            return nll + 0.5 * L2 * (jnp.sum(W1 * W1) + jnp.sum(W2 * W2) + jnp.sum(W3 * W3))

        def step_fn(P: list[Any], X: Any, y: Any) -> Any:
            loss, G = jax.value_and_grad(loss_fn)(P, X, y)
            return [p - LR * g for p, g in zip(P, G, strict=True)], loss

        f = jax.jit(step_fn) if self.jit else step_fn
        state = {"P": [jnp.asarray(p) for p in params]}
        Xj, yj = jnp.asarray(X), jnp.asarray(y)

        def step() -> float:
            state["P"], loss = f(state["P"], Xj, yj)
            # JAX dispatches eagerly run ops asynchronously: the loss is ready before the new
            # parameters are, whose work would otherwise run into the next engine's time
            jax.block_until_ready(state["P"])
            return float(loss)

        return Trainer(step, lambda: [np.asarray(p) for p in state["P"]])

    def chain(self, x0):
        jax, jnp = self.jax, self.jnp
        g = jax.grad(lambda x: jnp.sum(chain_forward(x, CHAIN_OPS, jnp.tanh)))
        if self.jit:
            g = jax.jit(g)
        xj = jnp.asarray(x0)
        return lambda: np.asarray(g(xj))


ENGINES = {e.name: e for e in (NumpyManual(), Tinygraph(), TinygraphNN(), TinygraphJit(), Torch(),
                               MyGrad(), HipsAutograd(), Jax(jit=True), Jax(jit=False))}


# ---------------------------------------------------------------------------------------------
# Running and reporting
# ---------------------------------------------------------------------------------------------


def relerr(a: Any, b: Any) -> float:
    """max |a - b| / max |b|."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-30))


def start(names: list[str], threads: int) -> tuple[list[Engine], dict[str, str], dict[str, str]]:
    """Import the engines: (live engines, versions, why each missing one was skipped)."""
    live, versions, skipped = [], {}, {}
    for name in names:
        e = ENGINES[name]
        try:
            versions[name] = e.setup()
            live.append(e)
        except Exception as ex:  # noqa: BLE001 - any failure to import means "not installed"
            skipped[name] = f"{type(ex).__name__}: {ex}".splitlines()[0][:120]
    if any(e.name == "torch" for e in live):
        import torch

        torch.set_num_threads(threads)  # same threads as numpy's BLAS
    return live, versions, skipped


def take_turns(cell: list[tuple[dict[str, Any], Callable[[], Any]]], budget: float,
               rounds: int, gap: float, min_calls: int = MIN_CALLS) -> None:
    """Time each engine's call in turns, so that a slow spell of the machine hits all of them
    alike; each engine takes turns until it has run `budget` seconds and `min_calls` timed calls
    (a slow call, such as a cifar step, would otherwise be timed only a few times).

    gap > 0 (engines with several threads): `rounds` turns of budget/rounds seconds, each after
    a pause of gap seconds (the last engine's BLAS/OpenMP threads stop spinning) and WARM
    seconds of untimed calls (caches and branch predictors are cold after the pause).
    gap == 0 (one thread each: nothing to wait for): turns of TURN seconds, so that the engines
    alternate many times. An engine's first turn starts with WARM seconds of untimed calls, every
    later one with one untimed call: the other engines' turns have evicted its arrays from the
    caches, where a training loop running step after step finds them.
    Every turn makes at least one timed call. Times go to row["times"]; a failure to row["error"].
    """
    slot = budget / rounds if gap else min(budget / rounds, TURN)
    used = [0.0] * len(cell)
    while True:
        went = False
        for k, (row, call) in enumerate(cell):
            if "error" in row or (used[k] >= budget and len(row["times"]) >= min_calls):
                continue
            went = True
            if gap:
                settle(gap)
            try:
                if not gap and row["times"]:
                    call()
                elif not row["times"] or min(row["times"]) < WARM:
                    t_warm = time.perf_counter() + WARM
                    while time.perf_counter() < t_warm:
                        call()
                t_end = time.perf_counter() + slot
                while True:
                    t = time.perf_counter()
                    call()
                    done = time.perf_counter()
                    row["times"].append(done - t)
                    used[k] += done - t
                    if done >= t_end:
                        break
            except Exception as ex:  # noqa: BLE001 - report the engine's failure, go on
                row["error"] = f"{type(ex).__name__}: {ex}".splitlines()[0][:160]
        if not went:
            return


def run_mlp(live: list[Engine], configs: list[str], dtypes: list[str], budget: float,
            gap: float, rounds: int = 8, min_calls: int = MIN_CALLS) -> list[dict[str, Any]]:
    """Time every engine's training step on each (config, dtype); check it against numpy-manual.

    The engines take turns (take_turns); medians over all steps.
    """
    rows = []
    for cfg in configs:
        for dt in dtypes:
            ref, cell = None, []
            for e in live:
                params, X, y, Y = make_problem(cfg, np.dtype(dt))
                p0 = [p.copy() for p in params]
                row: dict[str, Any] = {"config": cfg, "dtype": dt, "engine": e.name, "times": []}
                try:
                    tr = e.mlp([p.copy() for p in params], X, y, Y)
                    t_first = time.perf_counter()
                    loss0 = tr.step()  # the first step (with any JIT compile) is timed apart
                    row["first_s"] = time.perf_counter() - t_first
                    P1 = tr.params()
                    if ref is None:
                        ref = (loss0, P1)
                    row["loss_err"] = abs(loss0 - ref[0]) / abs(ref[0])
                    # the parameter update is what must agree; compare it, not the parameters
                    row["param_err"] = max(relerr(a - c, b - c)
                                           for a, b, c in zip(P1, ref[1], p0, strict=True))
                    tr.step()  # warm-up
                    cell.append((row, tr.step))
                except Exception as ex:  # noqa: BLE001 - report the engine's failure, go on
                    row["error"] = f"{type(ex).__name__}: {ex}".splitlines()[0][:160]
                rows.append(row)
            take_turns(cell, budget, rounds, gap, min_calls)
            for row, _ in cell:
                if row["times"] and "error" not in row:
                    row["s"], row["n"] = median(row["times"]), len(row["times"])
                log(f"  mlp {cfg:6s} {dt:7s} {row['engine']:20s} "
                    + (f"{row['s'] * 1e3:9.3f} ms (n={row['n']})" if "s" in row
                       else row.get("error", "?")))
            del cell
            settle(gap)
    return rows


def run_chain(live: list[Engine], budget: float, gap: float, rounds: int = 8,
              min_calls: int = MIN_CALLS) -> list[dict[str, Any]]:
    """µs per op of the 1,000-op chain, float64; the engines take turns (take_turns)."""
    x0 = np.linspace(-0.5, 0.5, int(np.prod(CHAIN_SHAPE))).reshape(CHAIN_SHAPE)
    rows, cell, ref = [], [], None
    for e in live:
        row: dict[str, Any] = {"engine": e.name, "times": []}
        try:
            run = e.chain(x0.copy())
        except ImportError:
            continue
        try:
            t = time.perf_counter()
            g = np.asarray(run())
            row["first_ms"] = (time.perf_counter() - t) * 1e3
            ref = g if ref is None else ref
            row["grad_err"] = relerr(g, ref)
            run()  # warm-up
            cell.append((row, run))
        except Exception as ex:  # noqa: BLE001
            row["error"] = f"{type(ex).__name__}: {ex}".splitlines()[0][:160]
        rows.append(row)
    take_turns(cell, budget, rounds, gap, min_calls)
    for row in rows:
        if row["times"] and "error" not in row:
            row.update(us=median(row["times"]) * 1e6 / CHAIN_OPS, n=len(row["times"]))
        log(f"  chain {row['engine']:20s} " + (f"{row['us']:8.2f} µs/op" if "us" in row
                                               else row.get("error", "?")))
    settle(gap)
    return rows


def _check(errs: list[float], dtype: str) -> str:
    tol = 1e-3 if dtype == "float32" else 1e-8
    worst = max(errs)
    return f"ok ({worst:.0e})" if worst <= tol else f"**differs** ({worst:.1e})"


def mlp_table(rows: list[dict[str, Any]]) -> str:
    """ms per step and ratio to numpy-manual, one column per (shape, dtype), with checks."""
    cols = list(dict.fromkeys((r["config"], r["dtype"]) for r in rows))
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    idx = {(r["config"], r["dtype"], r["engine"]): r for r in rows}
    header = ["engine"] + [f"{c} {'-'.join(map(str, CONFIGS[c][:3]))} b{CONFIGS[c][3]} "
                           f"{d.replace('float', 'f')}" for c, d in cols]
    header.append("check vs numpy-manual")
    out = []
    for e in engines:
        cells, errs, failed = [], [], []
        for c, d in cols:
            r, base = idx.get((c, d, e)), idx.get((c, d, "numpy-manual"))
            if r is None or "s" not in r:
                cells.append("error" if r else "-")
                if r:
                    failed.append(f"{c} {d}: {r['error']}")
                continue
            ratio = r["s"] / base["s"] if base and "s" in base else float("nan")
            cells.append(f"{r['s'] * 1e3:.3g} ms ({ratio:.2f}x)")
            errs.append((max(r["loss_err"], r["param_err"]), d))
        worst = {d: [x for x, dd in errs if dd == d] for d in ("float32", "float64")}
        check = ", ".join(f"{d.replace('float', 'f')} {_check(v, d)}" for d, v in worst.items()
                          if v) if e != "numpy-manual" else "reference"
        if failed:
            check += "; " + "; ".join(failed)
        out.append([e] + cells + [check])
    first = [[e] + [f"{idx[(c, d, e)]['first_s'] * 1e3:.3g} ms" if "first_s" in
                    idx.get((c, d, e), {}) else "-" for c, d in cols]
             for e in engines if "jit" in e]
    if not first:
        return table(header, out)
    return (table(header, out) + "\n\nFirst step of the compiled engines (trace + compile + "
            "one step; not in the medians above)\n\n" + table(header[:-1], first))


def chain_table(rows: list[dict[str, Any]]) -> str:
    """µs per op and ratio to numpy-manual."""
    base = next((r["us"] for r in rows if r["engine"] == "numpy-manual" and "us" in r), None)
    out = []
    for r in rows:
        if "us" not in r:
            out.append([r["engine"], "error", "-", "-", r["error"]])
            continue
        ratio = f"{r['us'] / base:.2f}x" if base else "-"
        out.append([r["engine"], f"{r['us']:.3g}", ratio, f"{r['first_ms']:.3g} ms",
                    _check([r["grad_err"]], "float64")])
    return table(["engine", "µs per op", "vs numpy-manual", "first call", "gradient check"], out)
