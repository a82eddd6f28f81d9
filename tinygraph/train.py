"""fit(): the minibatch training loop the examples would otherwise write by hand, and its
per-epoch History. Built on tinygraph.optim (the optimizers) and tinygraph.losses; also
reachable as tinygraph.optim.fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import losses
from ._check import check_bool, check_float, check_int, check_seed, show
from ._progress import progress_bar
from .engine import Node
from .errors import ArgTypeError, InputError
from .optim import SGD, Optimizer


@dataclass
class History:
    """Per-epoch mean training loss and accuracy."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


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
    if X.ndim != 2 or y.ndim not in (1, 2) or len(X) != len(y) or len(X) == 0:
        raise InputError(f"fit: need X of shape (N, D) and N labels, got X {X.shape}, y {y.shape}")
    epochs = check_int("fit", "epochs", epochs, lo=1)
    n = len(X)
    bs = n if batch_size is None else check_int("fit", "batch_size", batch_size, lo=1)
    l2 = check_float("fit", "l2", l2, lo=0.0)
    check_seed("fit", "seed", seed)
    if progress is not None:
        check_bool("fit", "progress", progress)
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise ArgTypeError(f"fit: optimizer must be an Optimizer (SGD, Adam), got "
                           f"{show(optimizer)}")
    params = model.parameters()  # type: ignore[attr-defined]
    opt = optimizer if optimizer is not None else SGD(params, lr=0.1, momentum=0.9)
    weights = model.weights() if l2 else []  # type: ignore[attr-defined]
    rng = np.random.default_rng(seed)
    steps = epochs * math.ceil(n / bs)
    bar = progress_bar(steps, enabled=steps > 200 if progress is None else progress,
                       leave=False, fallback=False)
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
