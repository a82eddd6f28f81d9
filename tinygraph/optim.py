"""Optimizers: SGD with momentum/Nesterov/weight decay, and Adam (the fit() loop is in
tinygraph.train, still reachable as optim.fit).

A step reads each parameter's .grad and assigns new data (p.data = new): tensor data is read-only,
and the assignment marks graphs built before the step as stale, so backward through them raises
instead of silently using new weights. Updates are plain arithmetic, so the same code serves
scalar parameters (Python floats) and tensor parameters (arrays).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from . import engine
from ._check import check_bool, check_float, show
from .engine import Node, replace_data
from .errors import ArgTypeError, GraphError, InputError, ShapeError


def _check_params(who: str, params: Iterable[Node]) -> list[Node]:
    if isinstance(params, Node) or not isinstance(params, Iterable):
        raise ArgTypeError(f"{who}: params must be an iterable of nodes (e.g. "
                           f"model.parameters()), got {show(params)}")
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
    """A hyperparameter in [lo, hi): a finite real number (not a str, bool or NaN)."""
    return check_float(who, what, v, lo=lo, hi=hi, hi_open=True)


class Optimizer:
    """Base: holds the parameters; zero_grad() clears their gradients, step() updates them."""

    def __init__(self, params: Iterable[Node], lr: float) -> None:
        self.params = _check_params(type(self).__name__, params)
        self.lr = _check_rate(type(self).__name__, "lr", lr)
        self.t = 0  # steps taken

    def zero_grad(self) -> None:
        """Set every parameter's .grad to None."""
        engine.notify("zero_grad", self)
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient (those without one are left alone)."""
        # Gradients are checked before any state (step count, momenta) changes, and every new
        # value is computed before any is assigned, so a failure leaves no half-stepped model.
        engine.notify("step", self)
        params = self.params
        # an update that changes no state (plain SGD) is computed in the checking pass itself
        update = self._update if self._stateless() else None
        grads, new = [], []
        for i, p in enumerate(params):
            g = p.grad
            if g is None:
                continue
            w = p._data
            # the common cases in two type tests; anything else by its shape
            if not (type(g) is np.ndarray and type(w) is np.ndarray and g.shape == w.shape
                    or type(g) is float and type(w) is float):
                g = self._checked(i, p, g)
            if update is None:
                grads.append((i, p, g))
            else:
                new.append((p, update(i, w, g)))
        self.t += 1
        if update is None:
            update = self._update
            new = [(p, update(i, p._data, g)) for i, p, g in grads]
        for p, value in new:
            # The value is a fresh array: the node takes it without the setter's defensive copy
            # (replace_data falls back to the setter for anything else).
            replace_data(p, value)

    def _stateless(self) -> bool:
        """Whether _update changes no state of the optimizer (so it may run while checking)."""
        return False

    def _checked(self, i: int, p: Node, g: Any) -> Any:
        """Parameter i's gradient as a value of its shape (a Node's value, as recorded by
        backward(create_graph=True)), or a ShapeError."""
        if isinstance(g, Node):
            g = g._data
        if np.shape(g) != p.shape or not isinstance(g, (float, np.ndarray)):
            raise ShapeError(f"{type(self).__name__}.step: parameter {i} ({p.describe()}) "
                             f"has a gradient of shape {np.shape(g)}, not {p.shape}")
        return g

    def _update(self, i: int, w: Any, g: Any) -> Any:
        """The new value of parameter i: a freshly computed float or array, held by nothing else."""
        raise GraphError(f"{type(self).__name__} does not define an update rule (_update)")


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
        nesterov = check_bool("SGD", "nesterov", nesterov)
        if nesterov and self.momentum == 0:
            raise InputError("SGD: nesterov needs a momentum > 0")
        self.nesterov = bool(nesterov)
        self.velocity: list[Any] = [0.0] * len(self.params)

    def _stateless(self) -> bool:
        return not self.momentum  # no velocity to keep

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
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ArgTypeError(f"Adam: betas must be a pair (beta1, beta2), got {show(betas)}")
        self.b1 = _check_rate("Adam", "betas[0]", betas[0], 0.0, 1.0)
        self.b2 = _check_rate("Adam", "betas[1]", betas[1], 0.0, 1.0)
        # eps > 0: with eps = 0 a zero gradient gives 0/0 = NaN weights
        self.eps = check_float("Adam", "eps", eps, lo=0.0, lo_open=True)
        self.weight_decay = _check_rate("Adam", "weight_decay", weight_decay)
        self.m: list[Any] = [0.0] * len(self.params)
        self.v: list[Any] = [0.0] * len(self.params)
        # each parameter's own steps, as PyTorch counts them: one that first gets a gradient
        # later (a layer unfrozen, a head some batches skip) is bias-corrected from its start
        self.steps: list[int] = [0] * len(self.params)

    def _update(self, i: int, w: Any, g: Any) -> Any:
        if self.weight_decay:
            g = g + self.weight_decay * w
        m = self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
        v = self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * (g * g)
        k = self.steps[i] = self.steps[i] + 1
        mhat = m / (1 - self.b1**k)
        vhat = v / (1 - self.b2**k)
        return w - self.lr * mhat / (np.sqrt(vhat) + self.eps)


def __getattr__(name: str) -> Any:
    # fit() and History live in tinygraph.train (a training loop needs the losses; the
    # optimizers do not); optim.fit keeps working.
    if name in ("fit", "History"):
        from . import train

        return getattr(train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
