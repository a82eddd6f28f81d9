"""Optimizers (SGD with momentum/Nesterov/weight decay, Adam) and a small fit() helper.

A step reads each parameter's .grad and assigns new data (p.data = new): tensor data is read-only,
and the assignment marks graphs built before the step as stale, so backward through them raises
instead of silently using new weights. Updates are plain arithmetic, so the same code serves
scalar parameters (Python floats) and tensor parameters (arrays).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import losses
from .engine import Node, replace_data
from .errors import InputError


def _check_params(who: str, params: Iterable[Node]) -> list[Node]:
    ps = list(params)
    if not ps:
        raise InputError(f"{who}: got an empty parameter list")
    for i, p in enumerate(ps):
        if not isinstance(p, Node) or not p.requires_grad:
            what = p.describe() if isinstance(p, Node) else type(p).__name__
            raise InputError(f"{who}: parameter {i} ({what}) is not a node that requires a "
                             "gradient")
    return ps


def _check_rate(who: str, what: str, v: float, lo: float = 0.0, hi: float = math.inf) -> float:
    v = float(v)
    if not (lo <= v < hi) or math.isnan(v):
        raise InputError(f"{who}: {what} must be in [{lo}, {hi}), got {v}")
    return v


class Optimizer:
    """Base: holds the parameters; zero_grad() clears their gradients, step() updates them."""

    def __init__(self, params: Iterable[Node], lr: float) -> None:
        self.params = _check_params(type(self).__name__, params)
        self.lr = _check_rate(type(self).__name__, "lr", lr)
        self.t = 0  # steps taken

    def zero_grad(self) -> None:
        """Set every parameter's .grad to None."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient (those without one are left alone)."""
        self.t += 1
        # Compute every new value before assigning any, so a failure leaves no half-stepped model.
        new = [(p, self._update(i, p._data, p.grad)) for i, p in enumerate(self.params)
               if p.grad is not None]
        for p, value in new:
            # The value is a fresh array: the node takes it without the setter's defensive copy
            # (replace_data falls back to the setter for anything else).
            replace_data(p, value)

    def _update(self, i: int, w: Any, g: Any) -> Any:
        """The new value of parameter i: a freshly computed float or array, held by nothing else."""
        raise TypeError(f"{type(self).__name__} does not define an update rule")


class SGD(Optimizer):
    """Stochastic gradient descent: v = μ·v - lr·(g + λ·w); w += v.

    weight_decay λ shrinks weights towards zero each step (the notes' "gradual forgetting");
    nesterov uses the look-ahead form w += -μ·v_prev + (1 + μ)·v (CS231n's notes).
    """

    def __init__(self, params: Iterable[Node], lr: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum = _check_rate("SGD", "momentum", momentum, 0.0, 1.0)
        self.weight_decay = _check_rate("SGD", "weight_decay", weight_decay)
        if nesterov and self.momentum == 0:
            raise InputError("SGD: nesterov needs a momentum > 0")
        self.nesterov = bool(nesterov)
        self.velocity: list[Any] = [0.0] * len(self.params)

    def _update(self, i: int, w: Any, g: Any) -> Any:
        if self.weight_decay:
            g = g + self.weight_decay * w
        if not self.momentum:
            if type(g) is float:
                return w - self.lr * g
            step = g * -self.lr  # one temporary instead of two for w - lr·g
            step += w
            return step
        prev = self.velocity[i]
        v = self.momentum * prev - self.lr * g
        self.velocity[i] = v
        if self.nesterov:
            return w - self.momentum * prev + (1.0 + self.momentum) * v
        return w + v


class Adam(Optimizer):
    """Adam with bias correction: m, v running means of g and g²; w -= lr·m̂ / (√v̂ + eps)."""

    def __init__(self, params: Iterable[Node], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.b1 = _check_rate("Adam", "betas[0]", betas[0], 0.0, 1.0)
        self.b2 = _check_rate("Adam", "betas[1]", betas[1], 0.0, 1.0)
        self.eps = _check_rate("Adam", "eps", eps)
        self.weight_decay = _check_rate("Adam", "weight_decay", weight_decay)
        self.m: list[Any] = [0.0] * len(self.params)
        self.v: list[Any] = [0.0] * len(self.params)

    def _update(self, i: int, w: Any, g: Any) -> Any:
        if self.weight_decay:
            g = g + self.weight_decay * w
        m = self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
        v = self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * (g * g)
        mhat = m / (1 - self.b1**self.t)
        vhat = v / (1 - self.b2**self.t)
        return w - self.lr * mhat / (np.sqrt(vhat) + self.eps)


# ---------------------------------------------------------------------------------------------
# fit(): the loop the examples would otherwise write by hand
# ---------------------------------------------------------------------------------------------


@dataclass
class History:
    """Per-epoch mean training loss and accuracy."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


def _progress(total: int, enabled: bool) -> Any:
    """A tqdm bar where installed and wanted, else a quiet stand-in with the same methods."""
    if enabled:
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, leave=False, file=sys.stderr)
        except ImportError:
            pass

    class _Quiet:
        def update(self, n: int = 1) -> None:
            pass

        def set_postfix_str(self, s: str) -> None:
            pass

        def close(self) -> None:
            pass

    return _Quiet()


def fit(model: Callable[[Any], Node], X: np.ndarray, y: np.ndarray, *,
        loss: Callable[[Node, np.ndarray], Node] = losses.softmax_cross_entropy,
        optimizer: Optimizer | None = None, epochs: int = 10, batch_size: int | None = None,
        l2: float = 0.0, seed: int | None = 0, progress: bool | None = None) -> History:
    """Train model on (X, y) with minibatches; returns the per-epoch History.

    model(X_batch) must return scores of shape (batch, ...) (TensorMLP, or the scalar MLP, which
    stacks per-sample outputs). l2 adds losses.l2(model.weights(), l2). batch_size None is full
    batch. progress: a tqdm bar (None: only when there are more than 200 steps).
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
        raise InputError(f"fit: need X of shape (N, D) and N labels, got X {X.shape}, y {y.shape}")
    if not isinstance(epochs, int) or epochs < 1:
        raise InputError(f"fit: epochs must be a positive int, got {epochs!r}")
    n = len(X)
    bs = n if batch_size is None else int(batch_size)
    if bs < 1:
        raise InputError(f"fit: batch_size must be positive, got {batch_size!r}")
    params = model.parameters()  # type: ignore[attr-defined]
    opt = optimizer if optimizer is not None else SGD(params, lr=0.1, momentum=0.9)
    weights = model.weights() if l2 else []  # type: ignore[attr-defined]
    rng = np.random.default_rng(seed)
    steps = epochs * math.ceil(n / bs)
    bar = _progress(steps, steps > 200 if progress is None else progress)
    hist = History()
    try:
        for _ in range(epochs):
            order = rng.permutation(n)
            tot_loss = tot_acc = 0.0
            for start in range(0, n, bs):
                idx = order[start:start + bs]
                scores = model(X[idx])
                data_loss = loss(scores, y[idx])
                total = data_loss + losses.l2(weights, l2) if l2 else data_loss
                total.name = "loss"
                opt.zero_grad()
                total.backward()
                opt.step()
                tot_loss += total.item() * len(idx)
                tot_acc += losses.accuracy(scores, y[idx]) * len(idx)
                bar.update(1)
            hist.loss.append(tot_loss / n)
            hist.accuracy.append(tot_acc / n)
            bar.set_postfix_str(f"loss {hist.loss[-1]:.4f} acc {hist.accuracy[-1]:.3f}")
    finally:
        bar.close()
    return hist
