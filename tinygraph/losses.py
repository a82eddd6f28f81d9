"""Loss functions made of tinygraph ops, numerically stable for any finite scores.

Shapes: N samples, C classes. Scores are a Node (tensor, or a scalar for one sample) or a list of
scalar nodes (stacked first). Each loss averages over samples (reduction="mean", or "sum") and
names its output node "loss". Labels are checked before anything is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from . import engine, ops
from ._check import check_float
from .engine import Node
from .errors import InputError, ShapeError

_REDUCTIONS = ("mean", "sum")


def _as_scores(who: str, scores: Any) -> Node:
    if isinstance(scores, Node):
        return scores
    if isinstance(scores, (list, tuple)) and scores and all(isinstance(s, Node) for s in scores):
        return ops.stack(scores)
    return ops.const(scores, f"{who}: scores")


def _targets(who: str, y: Any, t: np.ndarray, like: Node, grad: bool = False) -> Any:
    """The targets t (checked, in like's shape and dtype) as the loss computes with them. Given
    as a node of like's dtype, they stay in the graph: with their gradient where grad is True
    and they require one (PyTorch's mse_loss(a, b) differentiates b too), else detached (a
    constant of the loss, but one that tg.jit's replay reads anew on every call instead of the
    value seen when tracing); otherwise the array t, or a float for one value. A node of another
    dtype is refused while tracing, since its cast would be frozen."""
    if isinstance(y, Node):
        if type(y._data) is not float and y.dtype == like.dtype and y._data.size == t.size:
            n = y if grad and y.requires_grad else y.detach()
            return n if n.shape == t.shape else ops.reshape(n, t.shape)
        engine.value_out(y, f"{who}: targets of dtype {y.dtype} for scores of dtype "
                            f"{like.dtype} (pass them in the scores' dtype)")
    return t if t.ndim else float(t)


def _reduce(who: str, per_sample: Node, reduction: str) -> Node:
    if reduction not in _REDUCTIONS:
        raise InputError(f"{who}: reduction must be 'mean' or 'sum', got {reduction!r}")
    out = ops.mean(per_sample) if reduction == "mean" else ops.sum(per_sample)
    out.name = "loss"
    return out


def _binary_scores(who: str, scores: Any, y: Any) -> tuple[Node, np.ndarray]:
    """Scores of shape (), (N,) or (N, 1) and targets y of shape (N,) or (N, 1), both flattened
    to (N,) (() for one sample)."""
    s = _as_scores(who, scores)
    if s.ndim == 2 and s.shape[1] == 1:
        s = ops.reshape(s, (s.shape[0],))
    if s.ndim > 1:
        raise ShapeError(f"{who}: expected scores of shape (N,) or (N, 1), got {s.describe()}")
    t = np.asarray(y.data if isinstance(y, Node) else y)
    if t.dtype.kind not in "biuf":
        raise InputError(f"{who}: targets must be numbers, got dtype {t.dtype}")
    shape = t.shape
    if t.ndim == 2 and t.shape[1] == 1:  # a column of targets, as a TensorMLP's (N, 1) output
        t = t.reshape(t.shape[0])
    if t.shape != s.shape:
        raise ShapeError(f"{who}: {t.size} targets of shape {shape} for scores {s.describe()}")
    return s, t.astype(s.dtype)


def _first_bad(who: str, t: np.ndarray, ok: np.ndarray, allowed: str) -> None:
    if not ok.all():
        idx = np.flatnonzero(~ok.reshape(-1))[0]
        raise InputError(f"{who}: target {t.reshape(-1)[idx].item()!r} at index {idx} is outside "
                         f"{allowed}")


def binary_cross_entropy_with_logits(logits: Any, y: Any, reduction: str = "mean") -> Node:
    """Logistic regression / binary softmax loss from logits z and targets y in [0, 1].

    -[y log σ(z) + (1 - y) log(1 - σ(z))] = softplus(z) - y·z, which never takes log of 0:
    logit 40 with y = 0 costs exactly 40.
    """
    who = "binary_cross_entropy_with_logits"
    z, t = _binary_scores(who, logits, y)
    _first_bad(who, t, np.isfinite(t) & (t >= 0) & (t <= 1), "[0, 1]")
    return _reduce(who, ops.softplus(z) - z * _targets(who, y, t, z, grad=True), reduction)


def binary_hinge(scores: Any, y: Any, margin: float = 1.0, reduction: str = "mean") -> Node:
    """Binary SVM loss max(0, margin - y·s), labels in {-1, +1} or {0, 1} (0 counts as -1)."""
    who = "binary_hinge"
    s, t = _binary_scores(who, scores, y)
    _first_bad(who, t, (t == -1) | (t == 0) | (t == 1), "{-1, +1} or {0, 1}")
    if (t == -1).any() and (t == 0).any():
        raise InputError(f"{who}: labels mix -1 and 0; use {{-1, +1}} or {{0, 1}}")
    margin = check_float(who, "margin", margin)
    tt = _targets(who, y, t, s)
    if isinstance(tt, Node):
        sign = tt - 1.0 + ops.abs(tt)  # +1 for 1, -1 for 0 and -1: no mask frozen when tracing
    else:
        sign = np.where(t > 0, 1.0, -1.0).astype(s.dtype)
        sign = sign if sign.ndim else float(sign)
    return _reduce(who, ops.relu(margin - s * sign), reduction)


def _class_scores(who: str, scores: Any, y: Any) -> tuple[Node, np.ndarray]:
    """Scores (N, C) (or (C,) for one sample, made (1, C)) and integer labels (N,) in [0, C)."""
    s = _as_scores(who, scores)
    if s.ndim == 1:
        s = ops.reshape(s, (1, s.shape[0]))
    if s.ndim != 2:
        raise ShapeError(f"{who}: expected scores of shape (N, C), got {s.describe()}")
    n, c = s.shape
    if n == 0 or c == 0:
        missing = "samples" if n == 0 else "classes"
        raise ShapeError(f"{who}: scores {s.describe()} have no {missing}; the softmax needs at "
                         "least one of each")
    lab = _labels(who, y, n, f"{n} rows of scores {s.describe()}")
    if lab.dtype.kind == "f":
        if not (np.isfinite(lab) & (lab == np.round(lab))).all():
            raise InputError(f"{who}: class labels must be integers, got {lab[:5]!r}...")
        lab = lab.astype(np.int64)
    if lab.dtype.kind not in "iu":
        raise InputError(f"{who}: class labels must be integers, got dtype {lab.dtype}")
    if n and (np.minimum.reduce(lab) < 0 or np.maximum.reduce(lab) >= c):  # two C calls
        i = int(np.flatnonzero((lab < 0) | (lab >= c))[0])
        raise InputError(f"{who}: class index {int(lab[i])} at sample {i} is out of range for "
                         f"{c} classes (valid: 0..{c - 1})")
    # A private read-only copy: the node's backward reads the labels, and the caller may change
    # their array before calling backward().
    lab = np.array(lab, dtype=np.int64)
    lab.flags.writeable = False
    return s, lab


def _labels(who: str, y: Any, n: int, what: str) -> np.ndarray:
    """Labels of shape (n,) or (n, 1) as (n,): a (2, 2) array for 4 rows is an error, not
    silently flattened."""
    if isinstance(y, Node):  # labels become the op's constants: refused while tracing
        engine.value_out(y, f"{who}: class labels from a node or a float array (a float "
                            "array argument of a compiled function is traced as a node; pass "
                            "labels as an int array, whose values are part of its signature)")
    lab = np.asarray(y.data if isinstance(y, Node) else y)
    if not (lab.shape == (n,) or lab.shape == (n, 1) or (n == 1 and lab.ndim == 0)):
        raise ShapeError(f"{who}: {lab.size} labels for {what} (labels of shape {lab.shape}; "
                         f"expected ({n},) or ({n}, 1))")
    return lab.reshape(-1)


def softmax_cross_entropy(scores: Any, y: Any, reduction: str = "mean") -> Node:
    """Multiclass softmax loss -log softmax(s)[y] (finite at logits ±1e4).

    One node (the fused primitive in the op table), whose gradient is the notes' softmax(s) -
    onehot(y) per sample; it equals -mean(log_softmax(s)[rows, y]) built from core ops.
    """
    who = "softmax_cross_entropy"
    s, lab = _class_scores(who, scores, y)
    if reduction not in _REDUCTIONS:
        raise InputError(f"{who}: reduction must be 'mean' or 'sum', got {reduction!r}")
    out = ops.apply(ops.SOFTMAX_CE, s, labels=lab, mean=reduction == "mean")
    out.name = "loss"
    return out


def multiclass_hinge(scores: Any, y: Any, margin: float = 1.0, reduction: str = "mean") -> Node:
    """Multiclass SVM loss Σ_{j≠y} max(0, s_j - s_y + Δ) with Δ = margin (the notes' classifier)."""
    who = "multiclass_hinge"
    s, lab = _class_scores(who, scores, y)
    rows = np.arange(len(lab))
    correct = ops.reshape(ops.getitem(s, (rows, lab)), (len(lab), 1))  # (N, 1)
    others = np.ones(s.shape, dtype=s.dtype)
    others[rows, lab] = 0.0  # the correct class is not a margin violation against itself
    margins = ops.relu(s - correct + check_float(who, "margin", margin)) * others
    return _reduce(who, ops.sum(margins, axis=1), reduction)


def mse(pred: Any, target: Any, reduction: str = "mean") -> Node:
    """Mean squared error mean((pred - target)²) over all elements (a target node that
    requires a gradient gets one, as in PyTorch).

    pred and target must have the same shape, except (N,) with (N, 1) either way round and a
    single value with a single value (() with (1,) or (1, 1)).
    """
    who = "mse"
    p = _as_scores(who, pred)
    t = np.asarray(target.data if isinstance(target, Node) else target)
    if t.dtype.kind not in "biuf":
        raise InputError(f"{who}: targets must be numbers, got dtype {t.dtype}")
    ps, ts = p.shape, t.shape
    # Equal sizes are not enough: (2, 3) targets would silently pair with the wrong (3, 2)
    # predictions. A column against a vector is the one mismatch that cannot mispair.
    column = {len(ps), len(ts)} == {1, 2} and ps[0] == ts[0] and max(ps, ts, key=len)[1] == 1
    single = (not ps or not ts) and p.size == t.size == 1
    if ps != ts and not (column or single):
        raise ShapeError(f"{who}: target of shape {ts} does not match predictions of shape "
                         f"{ps}; they must be equal, or (N,) with (N, 1)")
    t = t.reshape(ps).astype(p.dtype)
    d = p - _targets(who, target, t, p, grad=True)
    return _reduce(who, d * d, reduction)


def l2(params: Iterable[Node], lam: float) -> Node:
    """L2 regularization (λ/2)·Σ w² over params, so its gradient is λ·w.

    The 1/2 is the notes' convention; without it (as in micrograd's demo, alpha·Σ w²) pass
    lam = 2·alpha. Usually given model.weights() (biases are not regularized).
    """
    lam = check_float("l2", "lam", lam, lo=0.0)
    ps = [p if isinstance(p, Node) else ops.const(p, "l2: parameter") for p in params]
    if not ps:
        raise InputError("l2: no parameters given")
    # One node over all parameters (the fused primitive): no w·w temporaries, gradient λ·w.
    out = ops.apply(ops.L2, *ps, lam=lam)
    out.name = "l2"
    return out


def accuracy(scores: Any, y: Any) -> float:
    """Fraction of samples classified right: sign of (N,)/(N, 1) scores, else argmax of (N, C)."""
    nodes = [scores] if isinstance(scores, Node) else scores if isinstance(scores, Sequence) else []
    for n in nodes:  # a Python number made of them: refused while tracing
        if isinstance(n, Node):
            engine.value_out(n, "losses.accuracy")
    s = np.asarray(scores.data if isinstance(scores, Node) else
                   [x.data for x in scores] if isinstance(scores, Sequence) else scores)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim > 2:
        raise ShapeError(f"accuracy: expected scores of shape (N,), (N, 1) or (N, C), got "
                         f"{s.shape}")
    lab = _labels("accuracy", y, s.shape[0] if s.ndim else 1, f"scores of shape {s.shape}")
    pred = (s > 0).astype(int) if s.ndim <= 1 else s.argmax(axis=1)
    truth = (lab > 0).astype(int) if s.ndim <= 1 else lab
    if np.size(pred) != truth.size:
        raise ShapeError(f"accuracy: {truth.size} labels for scores of shape {s.shape}")
    return float(np.mean(np.reshape(pred, -1) == truth))
