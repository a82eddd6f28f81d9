"""The op table: every primitive with its forward and its VJPs side by side, then the composites.

VJP rules are pure maths on (g, out, *inputs): they may return a gradient of the output's
broadcast shape, and the engine sums it back to each input's shape. Each rule works on Python
floats, on arrays, and on Nodes: backward(create_graph=True) calls the same rules with nodes, so
they are written with operators and numpy spellings that run tinygraph ops on nodes (np.where,
np.exp, ...), with a node branch where a rule needs one (getitem's scatter is then an op of its
own, the softmax loss is rebuilt from ops). Composite ops at the bottom are built from primitives
and carry no derivative code.

Conventions at kinks (pinned in the tests): relu'(0) = 0, abs'(0) = 0, sqrt'(0) = inf; ties in
max/min/maximum/minimum split the gradient equally; clip passes the gradient at its bounds; an
all -inf row of logsumexp gets a zero gradient; d(a**b)/da is 0 where b == 0 (also at a = 0) and
d(a**b)/db is 0 where a == 0 and b >= 0 (PyTorch's values). Second derivatives at kinks: the first
derivative is piecewise constant there, so the second is 0 (relu, abs, leaky_relu, clip, maximum,
minimum, max ties).

Arrays an op's backward reads besides its inputs (index arrays, where()'s condition, class
labels) are private read-only copies: changing the caller's array afterwards cannot change a
gradient.
"""

from __future__ import annotations

import builtins
import math
import operator
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import engine
from ._check import check_float
from .engine import (
    PRIMITIVES,
    Node,
    Primitive,
    apply,
    binary,
    check_axis,
    const,
    operands,
    unary,
)
from .errors import AxisError, DTypeError, IndexOutOfRange, InputError, ShapeError

_INF = math.inf
# This module defines ops named max, min, sum and abs; helpers use the builtins by these names.
_bmax, _bmin, _babs = builtins.max, builtins.min, builtins.abs


def _prim(name: str, fwd: Any, *vjps: Any, scalar: Any = None, symbol: str | None = None,
          vjp: Any = None, saves: bool = False) -> Primitive:
    p = Primitive(name, fwd, vjps, scalar=scalar, vjp=vjp, symbol=symbol, builtin=True,
                  saves=saves)
    PRIMITIVES[name] = p
    return p


def _spow(a: float, b: float) -> float:
    r = a**b
    return math.nan if type(r) is complex else r  # (-2.0) ** 0.5 is complex in Python


def _sigmoid(x: Any) -> Any:
    """Stable logistic function: never evaluates exp of a large positive number."""
    if type(x) is float:
        if x >= 0:
            return 1.0 / (1.0 + math.exp(-x))
        e = math.exp(x)
        return e / (1.0 + e)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _softplus(x: Any) -> Any:
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|), finite for any finite x."""
    if type(x) is float:
        return _bmax(x, 0.0) + math.log1p(math.exp(-_babs(x)))
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _dsoftplus(x: Any) -> Any:
    """softplus' = σ, as the sigmoid op on a node (a recorded backward pass)."""
    return sigmoid(x) if isinstance(x, Node) else _sigmoid(x)


def _pow_da(g: Any, out: Any, a: Any, b: Any) -> Any:
    """g·b·a^(b-1), 0 where b == 0: x**0 is constant, even at x = 0 (where 0·inf would be NaN).

    Only the 0·inf points are masked: elsewhere b·a^(b-1) is already 0 at b = 0, and keeping it
    keeps its derivative in b (a^-1 at b = 0) for a recorded backward pass."""
    if type(a) is float and type(b) is float:
        return 0.0 if b == 0.0 else g * b * _spow(a, b - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = b * np.power(a, b - 1)
    return g * np.where((b == 0) & (a == 0), 0, d)


def _pow_db(g: Any, out: Any, a: Any, b: Any) -> Any:
    """g·a^b·log(a), 0 where a == 0 and b >= 0 (PyTorch's value; log 0 would make it -inf)."""
    if type(a) is float and type(b) is float:
        return 0.0 if a == 0.0 and b >= 0.0 else g * _xlogy(out, a)
    return g * np.where((a == 0) & (b >= 0), 0, _xlogy(out, a))


def _own(a: np.ndarray) -> np.ndarray:
    """A private read-only copy of an array a node keeps for its backward."""
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _xlogy(o: Any, a: Any) -> Any:
    """o * log(a), taken as 0 where o == 0 (d a**b / db at a = 0)."""
    if type(o) is float:
        return 0.0 if o == 0 else o * math.log(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(o == 0, 0.0, o * np.log(a))


def _masked(g: Any, mask: Any) -> Any:
    """g where mask holds, else 0. For arrays, naming the dtype lets numpy multiply by the
    booleans directly instead of casting them first (a third faster on an ReLU's gradient)."""
    if type(g) is np.ndarray:
        return np.multiply(g, mask, dtype=g.dtype)
    return g * mask


def _tie(a: Any, b: Any) -> Any:
    """1 where a wins, 1/2 where a and b tie, 0 where b wins."""
    return (a > b) + 0.5 * (a == b)


# ---------------------------------------------------------------------------------------------
# Elementwise primitives: forward | VJP per input
# ---------------------------------------------------------------------------------------------

ADD = _prim("add", np.add,
            lambda g, out, a, b: g,
            lambda g, out, a, b: g,
            scalar=operator.add, symbol="+")
SUB = _prim("sub", np.subtract,
            lambda g, out, a, b: g,
            lambda g, out, a, b: -g,
            scalar=operator.sub, symbol="−")
MUL = _prim("mul", np.multiply,
            lambda g, out, a, b: g * b,
            lambda g, out, a, b: g * a,
            scalar=operator.mul, symbol="×")
DIV = _prim("div", np.divide,
            lambda g, out, a, b: g / b,
            lambda g, out, a, b: -g * out / b,
            scalar=operator.truediv, symbol="÷")
POW = _prim("pow", np.power,
            _pow_da, _pow_db, scalar=_spow, symbol="^")
MAXIMUM = _prim("maximum", np.maximum,
                lambda g, out, a, b: g * _tie(a, b),
                lambda g, out, a, b: g * _tie(b, a),
                scalar=lambda a, b: a if a > b else b if b > a else a + 0.0 * b, symbol="max")
MINIMUM = _prim("minimum", np.minimum,
                lambda g, out, a, b: g * _tie(b, a),
                lambda g, out, a, b: g * _tie(a, b),
                scalar=lambda a, b: a if a < b else b if b < a else a + 0.0 * b, symbol="min")

NEG = _prim("neg", np.negative, lambda g, out, x: -g, scalar=operator.neg, symbol="−x")
EXP = _prim("exp", np.exp, lambda g, out, x: g * out, scalar=math.exp, symbol="exp")
LOG = _prim("log", np.log, lambda g, out, x: g / x, scalar=math.log, symbol="log")
SQRT = _prim("sqrt", np.sqrt, lambda g, out, x: g * 0.5 / out, scalar=math.sqrt, symbol="√")
ABS = _prim("abs", np.abs, lambda g, out, x: g * ((x > 0) * 1.0 - (x < 0)), scalar=_babs,
            symbol="|x|")
TANH = _prim("tanh", np.tanh, lambda g, out, x: g * (1.0 - out * out), scalar=math.tanh,
             symbol="tanh")
SIGMOID = _prim("sigmoid", _sigmoid, lambda g, out, x: g * out * (1.0 - out), scalar=_sigmoid,
                symbol="σ")
RELU = _prim("relu", lambda x: np.maximum(x, 0), lambda g, out, x: _masked(g, x > 0),
             scalar=lambda x: 0.0 if x <= 0 else x, symbol="ReLU")  # nan stays nan
SOFTPLUS = _prim("softplus", _softplus, lambda g, out, x: g * _dsoftplus(x), scalar=_softplus,
                 symbol="softplus")
LEAKY_RELU = _prim("leaky_relu",
                   lambda x, alpha: np.where(x > 0, x, alpha * x).astype(x.dtype, copy=False),
                   lambda g, out, x, alpha: g * ((x > 0) + alpha * (x <= 0)),
                   scalar=lambda x, alpha: x if x > 0 else alpha * x, symbol="LReLU")
CLIP = _prim("clip", lambda x, lo, hi: np.clip(x, lo, hi),
             lambda g, out, x, lo, hi: _masked(g, (x >= lo) & (x <= hi)),
             scalar=lambda x, lo, hi: _bmin(_bmax(x, lo), hi), symbol="clip")
WHERE = _prim("where", lambda a, b, cond: np.where(cond, a, b),
              lambda g, out, a, b, cond: _masked(g, cond),
              lambda g, out, a, b, cond: _masked(g, ~cond), symbol="where")


# ---------------------------------------------------------------------------------------------
# Reductions and shape primitives
# ---------------------------------------------------------------------------------------------


def _unreduce(g: Any, x: Any, axis: tuple[int, ...] | None, keepdims: bool) -> Any:
    """A reduction's output or gradient with the reduced axes put back as 1s: it broadcasts
    against x. A full reduction's float becomes a 0-d array of x's dtype (float32 stays 32)."""
    if type(g) is float:
        return np.array(g, dtype=x.dtype)
    if axis is not None and not keepdims:
        return np.expand_dims(g, axis)
    return g


def _expand(g: Any, x: Any, axis: tuple[int, ...] | None, keepdims: bool) -> Any:
    """Broadcast a reduction's gradient back over the reduced axes of x (a read-only view)."""
    if isinstance(g, Node):  # a recorded backward pass: broadcast by adding zeros of x's shape
        return _unreduce(g, x, axis, keepdims) + np.zeros(x.shape, x.dtype)
    if type(g) is float:  # full reduction: the zero-stride view np.broadcast_to makes, built
        v = np.ndarray(x.shape, x.dtype, np.array(g, dtype=x.dtype), 0, (0,) * x.ndim)  # directly
        v.flags.writeable = False
        return v
    return np.broadcast_to(_unreduce(g, x, axis, keepdims), x.shape)


def _sum_fwd(x: Any, axis: Any, keepdims: bool) -> Any:
    return np.add.reduce(x, axis=axis, keepdims=keepdims)  # np.sum's own kernel, minus its wrapper


def _max_vjp(g: Any, out: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    mask = x == _unreduce(out, x, axis, keepdims)
    count = np.sum(mask, axis=axis, keepdims=True)
    return _unreduce(g, x, axis, keepdims) * mask / count  # numpy broadcasts g over x


def _shifted(x: Any, axis: Any) -> tuple[Any, Any, Any]:
    """(m, x - m, log Σ exp(x - m)) over axis with keepdims, m the max: nothing overflows."""
    # ufunc reductions rather than np.max / np.sum: same kernels, without their Python wrappers
    m = np.maximum.reduce(x, axis=axis, keepdims=True)
    if math.isfinite(np.add.reduce(m, axis=None)):  # every max finite (one call, not two)
        sh = x - m
        return m, sh, np.log(np.add.reduce(np.exp(sh), axis=axis, keepdims=True))  # sums >= 1
    m = np.where(np.isfinite(m), m, 0.0)  # all -inf (or +inf) rows: shift by 0, not by inf
    sh = x - m
    with np.errstate(divide="ignore", over="ignore"):  # log(0) = -inf: right for all -inf rows
        return m, sh, np.log(np.add.reduce(np.exp(sh), axis=axis, keepdims=True))


def _lse_fwd(x: Any, axis: Any, keepdims: bool) -> Any:
    m, _, r = _shifted(x, axis)
    r += m
    return r if keepdims or axis is None and np.ndim(x) == 0 else np.squeeze(r, axis=axis)


def _lse_vjp(g: Any, out: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    o = _unreduce(out, x, axis, keepdims)
    o = np.where(o == -_INF, _INF, o)  # exp(x - inf) = 0: all -inf rows get a zero gradient
    return _unreduce(g, x, axis, keepdims) * np.exp(x - o)  # numpy broadcasts g over x


SUM = _prim("sum", _sum_fwd, lambda g, out, x, axis, keepdims: _expand(g, x, axis, keepdims),
            symbol="Σ")
MAX = _prim("max", lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims), _max_vjp,
            symbol="max")
LOGSUMEXP = _prim("logsumexp", _lse_fwd, _lse_vjp, symbol="logsumexp")
RESHAPE = _prim("reshape", lambda x, shape: np.reshape(x, shape),
                lambda g, out, x, shape: np.reshape(g, np.shape(x)), symbol="reshape")
TRANSPOSE = _prim("transpose", lambda x, axes: np.transpose(x, axes),
                  lambda g, out, x, axes: np.transpose(
                      g, None if axes is None else tuple(np.argsort(axes))),
                  symbol="ᵀ")


def _getitem_vjp(g: Any, out: Any, x: Any, index: Any) -> Any:
    if isinstance(g, Node):  # a recorded backward pass: the scatter as an op of its own
        return apply(GETITEM_GRAD, g, shape=x.shape, dtype=x.dtype, index=index)
    return _scatter(g, x.shape, x.dtype, index)


def _scatter(g: Any, shape: tuple[int, ...], dtype: Any, index: Any) -> Any:
    """g put at index into zeros of the given shape: getitem's gradient."""
    z = np.zeros(shape, dtype)
    if _is_basic(index):
        z[index] = g
    else:  # integer arrays may repeat an element: accumulate
        np.add.at(z, index, g)
    return z


GETITEM = _prim("getitem", lambda x, index: x[index], _getitem_vjp, symbol="[]")
# getitem's gradient (g scattered into zeros of x's shape), for recorded backward passes; its own
# gradient is getitem again, so derivatives of any order go through x[index].
GETITEM_GRAD = _prim("getitem_grad", _scatter,
                     lambda g, out, x, shape, dtype, index: g[index], symbol="[]ᵀ")


def _concat_vjp(i: int, g: Any, out: Any, xs: tuple, axis: int, bounds: tuple[int, ...]) -> Any:
    sl = [slice(None)] * g.ndim
    sl[axis] = slice(bounds[i], bounds[i + 1])
    return g[tuple(sl)]


CONCAT = _prim("concat", lambda *xs, axis, bounds: np.concatenate(xs, axis=axis),
               vjp=_concat_vjp, symbol="concat")


def _matmul_vjp_a(g: Any, out: Any, a: Any, b: Any) -> Any:
    if a.ndim == 2 and b.ndim == 2:
        return g @ b.T
    if a.ndim == 1 and b.ndim == 1:  # inner product: g is a scalar, no axes to expand
        return g * b
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = np.expand_dims(g, -1) if b.ndim == 1 else g
    g2 = np.expand_dims(g2, -2) if a.ndim == 1 else g2
    ga = g2 @ np.swapaxes(b2, -1, -2)
    return ga[..., 0, :] if a.ndim == 1 else ga


def _matmul_vjp_b(g: Any, out: Any, a: Any, b: Any) -> Any:
    if a.ndim == 2 and b.ndim == 2:
        return a.T @ g
    if a.ndim == 1 and b.ndim == 1:
        return g * a
    a2 = a[None, :] if a.ndim == 1 else a
    g2 = np.expand_dims(g, -2) if a.ndim == 1 else g
    g2 = np.expand_dims(g2, -1) if b.ndim == 1 else g2
    gb = np.swapaxes(a2, -1, -2) @ g2
    return gb[..., :, 0] if b.ndim == 1 else gb


MATMUL = _prim("matmul", np.matmul, _matmul_vjp_a, _matmul_vjp_b, symbol="@")


# ---------------------------------------------------------------------------------------------
# Fused primitives: what a training step spends most nodes on, as one node each. Each equals a
# composite of the primitives above (the tests check both ways); fused, the step builds a third
# of the nodes and skips the temporaries (the notes' "forward pass of a fully-connected layer",
# and dL/ds = softmax(s) - onehot(y) for the softmax loss, are one node each).
# ---------------------------------------------------------------------------------------------


def _linear_fwd(x: Any, w: Any, b: Any) -> Any:
    out = np.matmul(x, w)
    if (type(b) is np.ndarray and b.dtype is out.dtype) or out.dtype == np.result_type(out, b):
        out += b  # in place: the matmul result is fresh, so this saves a pass and a temporary
        return out
    return out + b


LINEAR = _prim("linear", _linear_fwd,
               lambda g, out, x, w, b: _matmul_vjp_a(g, out, x, w),
               lambda g, out, x, w, b: _matmul_vjp_b(g, out, x, w),
               lambda g, out, x, w, b: g,  # the engine sums the batch axes away
               symbol="xW+b")


def _ce_fwd(s: Any, labels: Any, mean: bool) -> tuple[float, Any]:
    _, logp, lse = _shifted(s, 1)
    logp -= lse  # log_softmax, saved: its exp is the backward's softmax
    total = -float(np.add.reduce(logp[np.arange(len(labels)), labels]))
    return (total / len(labels) if mean else total), logp


def _ce_vjp(g: Any, out: Any, s: Any, labels: Any, mean: bool, saved: Any) -> Any:
    if isinstance(s, Node):  # a recorded backward pass: softmax(s) - onehot(y) from ops
        onehot = np.zeros(s.shape, s.dtype)
        onehot[np.arange(len(labels)), labels] = 1.0
        return (softmax(s, axis=1) - onehot) * (g / len(labels) if mean else g)
    p = np.exp(saved)  # softmax(s)
    p[np.arange(len(labels)), labels] -= 1.0
    p *= g / len(labels) if mean else g
    return p


SOFTMAX_CE = _prim("softmax_cross_entropy", _ce_fwd, _ce_vjp, symbol="softmax CE", saves=True)


def _l2_fwd(*xs: Any, lam: float) -> float:
    total = 0.0
    for x in xs:
        total += x * x if type(x) is float else float(np.vdot(x, x))
    return 0.5 * lam * total


L2 = _prim("l2", _l2_fwd, vjp=lambda i, g, out, xs, lam: (lam * g) * xs[i], symbol="½λΣw²")


# ---------------------------------------------------------------------------------------------
# The functional API: primitives with argument checks, then composites (no derivative code)
# ---------------------------------------------------------------------------------------------


def _node(x: Any, op: str) -> Node:
    return x if isinstance(x, Node) else const(x, f"{op}: operand")


def add(a: Any, b: Any) -> Node:
    """a + b, broadcasting."""
    return binary(ADD, a, b)


def sub(a: Any, b: Any) -> Node:
    """a - b, broadcasting."""
    return binary(SUB, a, b)


def mul(a: Any, b: Any) -> Node:
    """a * b, broadcasting."""
    return binary(MUL, a, b)


def div(a: Any, b: Any) -> Node:
    """a / b, broadcasting."""
    return binary(DIV, a, b)


def pow(a: Any, b: Any) -> Node:  # noqa: A001 - the op's name
    """a ** b; b may be a number or a node (then d/db = a**b log a)."""
    return binary(POW, a, b)


def maximum(a: Any, b: Any) -> Node:
    """Elementwise max; at a tie each side gets half the gradient."""
    return binary(MAXIMUM, a, b)


def minimum(a: Any, b: Any) -> Node:
    """Elementwise min; at a tie each side gets half the gradient."""
    return binary(MINIMUM, a, b)


def neg(x: Any) -> Node:
    """-x."""
    return unary(NEG, x)


def exp(x: Any) -> Node:
    """e**x."""
    return unary(EXP, x)


def log(x: Any) -> Node:
    """Natural logarithm."""
    return unary(LOG, x)


def sqrt(x: Any) -> Node:
    """Square root; its derivative at 0 is inf."""
    return unary(SQRT, x)


def abs(x: Any) -> Node:  # noqa: A001
    """|x|; derivative 0 at 0."""
    return unary(ABS, x)


def tanh(x: Any) -> Node:
    """Hyperbolic tangent, (-1, 1), zero-centred."""
    return unary(TANH, x)


def sigmoid(x: Any) -> Node:
    """σ(x) = 1 / (1 + e^-x), computed without overflow."""
    return unary(SIGMOID, x)


def relu(x: Any) -> Node:
    """max(0, x); derivative 0 at 0."""
    return unary(RELU, x)


def softplus(x: Any) -> Node:
    """log(1 + e^x), stable for any x."""
    return unary(SOFTPLUS, x)


def leaky_relu(x: Any, alpha: float = 0.01) -> Node:
    """x for x > 0, alpha·x otherwise."""
    return apply(LEAKY_RELU, x, alpha=check_float("leaky_relu", "alpha", alpha))


def clip(x: Any, lo: float | None = None, hi: float | None = None) -> Node:
    """Clamp to [lo, hi]; the gradient passes inside and at the bounds."""
    lo = -_INF if lo is None else check_float("clip", "lo", lo, finite=False)
    hi = _INF if hi is None else check_float("clip", "hi", hi, finite=False)
    if lo > hi:
        raise InputError(f"clip: lo={lo} is greater than hi={hi}")
    return apply(CLIP, x, lo=lo, hi=hi)


def where(cond: Any, a: Any, b: Any) -> Node:
    """a where cond is true, else b (cond: a bool array or bool; not differentiated)."""
    c = np.asarray(cond.data if isinstance(cond, Node) else cond)
    if c.dtype != bool:
        raise DTypeError(f"where: the condition must be boolean, got dtype {c.dtype}")
    return apply(WHERE, a, b, cond=_own(c))


def _reduce_args(op: str, x: Node, axis: Any) -> tuple[int, ...] | None:
    if x.is_scalar and axis not in (None, (), 0, -1):
        raise AxisError(f"{op}: axis {axis!r} is out of range for {x.describe()}")
    return None if x.is_scalar else check_axis(op, x, axis)


def sum(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Node:  # noqa: A001
    """Sum over axis (all axes by default)."""
    x = _node(x, "sum")
    if x.is_scalar:
        return x
    return apply(SUM, x, axis=_reduce_args("sum", x, axis), keepdims=bool(keepdims))


def max(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Node:  # noqa: A001
    """Largest element over axis; tied maxima share the gradient equally."""
    x = _node(x, "max")
    if x.is_scalar:
        return x
    ax = _reduce_args("max", x, axis)
    reduced = range(x.ndim) if ax is None else ax
    if any(x.shape[a] == 0 for a in reduced):
        raise AxisError(f"max: cannot reduce over an empty axis of {x.describe()}")
    return apply(MAX, x, axis=ax, keepdims=bool(keepdims))


def logsumexp(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Node:
    """log Σ exp(x) over axis, shifted by the max so it never overflows."""
    x = _node(x, "logsumexp")
    if x.is_scalar:
        return x
    ax = _nonempty("logsumexp", x, axis)
    return apply(LOGSUMEXP, x, axis=ax, keepdims=bool(keepdims))


def _nonempty(op: str, x: Node, axis: Any) -> tuple[int, ...] | None:
    """The normalized axis of a reduction, which must not be empty (no max, no sum of exps)."""
    ax = _reduce_args(op, x, axis)
    if any(x.shape[a] == 0 for a in (range(x.ndim) if ax is None else ax)):
        raise AxisError(f"{op}: cannot reduce over an empty axis of {x.describe()}")
    return ax


def reshape(x: Any, *shape: Any) -> Node:
    """Same elements, new shape (one entry may be -1)."""
    x = _node(x, "reshape")
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        np.empty(x.shape, dtype=np.bool_).reshape(shape)
    except (ValueError, TypeError):
        raise ShapeError(
            f"reshape: cannot reshape {x.describe()} ({x.size} elements) to {shape}"
        ) from None
    return apply(RESHAPE, x, shape=tuple(int(s) for s in shape))


def transpose(x: Any, axes: Sequence[int] | None = None) -> Node:
    """Permute axes (reverse them by default)."""
    x = _node(x, "transpose")
    if axes is not None:
        if (not isinstance(axes, (tuple, list))
                or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                           for a in axes)):
            raise AxisError(f"transpose: axes must be a tuple of ints, got {axes!r:.60}")
        axes = tuple(int(a) % _bmax(x.ndim, 1) if -x.ndim <= a < x.ndim else a for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise AxisError(f"transpose: axes {axes} are not a permutation for {x.describe()}")
    if x.is_scalar:
        return x
    return apply(TRANSPOSE, x, axes=axes)


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis
               for i in items)


def getitem(x: Any, index: Any) -> Node:
    """x[index] for ints, slices, None, Ellipsis and integer arrays."""
    x = _node(x, "getitem")
    if x.is_scalar:
        raise IndexOutOfRange(f"getitem: {x.describe()} is a scalar and cannot be indexed")
    if isinstance(index, Node):
        index = index.data
    if isinstance(index, list):
        index = np.asarray(index)
    items = index if isinstance(index, tuple) else (index,)
    for i in items:
        if isinstance(i, np.ndarray) and i.dtype.kind not in "iub":
            raise DTypeError(f"getitem: index arrays must be integer or boolean, got {i.dtype}")
    if any(isinstance(i, (np.ndarray, list, Node)) for i in items):
        items = tuple(_own(i.data if isinstance(i, Node) else i)
                      if isinstance(i, (np.ndarray, list, Node)) else i for i in items)
        index = items if isinstance(index, tuple) else items[0]
    try:
        x.data[index]
    except IndexError as e:
        raise IndexOutOfRange(f"getitem: index {index!r} for {x.describe()}: {e}") from None
    return apply(GETITEM, x, index=index)


def concat(xs: Sequence[Any], axis: int = 0) -> Node:
    """Join nodes along an existing axis."""
    nodes = list(operands(xs, "concat"))
    if not nodes:
        raise InputError("concat: xs must hold at least one node, got none")
    for n in nodes:
        if n.is_scalar:
            raise ShapeError(f"concat: {n.describe()} has no axis to join along; use stack")
    ax = check_axis("concat", nodes[0], axis)[0]
    ref = nodes[0].shape
    for n in nodes[1:]:
        if n.ndim != len(ref) or any(s != r for k, (s, r) in enumerate(zip(n.shape, ref))
                                     if k != ax):
            shapes = ", ".join(m.describe() for m in nodes)
            raise ShapeError(f"concat: shapes differ off axis {ax}: {shapes}")
    bounds = tuple(np.cumsum([0] + [n.shape[ax] for n in nodes]).tolist())
    return apply(CONCAT, *nodes, axis=ax, bounds=bounds)


def matmul(a: Any, b: Any) -> Node:
    """Matrix product: 1-D, 2-D and batched (numpy's rules)."""
    a, b = operands((a, b), "matmul")
    if a.is_scalar or b.is_scalar:
        raise ShapeError(f"matmul: operands must have at least one axis, got {a.describe()} "
                         f"and {b.describe()}; use * for scalars")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise ShapeError(f"matmul: inner dimensions differ: {a.describe()} and {b.describe()} "
                         f"({ka} != {kb})")
    return apply(MATMUL, a, b)


def linear(x: Any, w: Any, b: Any) -> Node:
    """x @ w + b as one node: a fully-connected layer's pre-activation (w: (nin, nout))."""
    if not (isinstance(x, Node) and isinstance(w, Node) and isinstance(b, Node)):
        x, w, b = operands((x, w, b), "linear")
    xs, ws = x.shape, w.shape
    if len(ws) != 2 or not xs or xs[-1] != ws[0]:
        raise ShapeError(f"linear: expected x of shape (..., nin) and w of shape (nin, nout), got "
                         f"{x.describe()} and {w.describe()}")
    out_shape = xs[:-1] + (ws[1],)
    bs = b.shape
    if bs != out_shape[len(out_shape) - len(bs):]:  # not the usual (nout,) bias: check broadcasting
        try:
            ok = np.broadcast_shapes(out_shape, bs) == out_shape
        except ValueError:
            ok = False
    else:
        ok = len(bs) <= len(out_shape)
    if not ok:
        raise ShapeError(f"linear: the bias {b.describe()} does not broadcast to the output shape "
                         f"{out_shape} of {x.describe()} @ {w.describe()}")
    return apply(LINEAR, x, w, b)


# --- composites ------------------------------------------------------------------------------


def mean(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Node:
    """Average over axis."""
    x = _node(x, "mean")
    ax = _reduce_args("mean", x, axis)
    n = x.size if ax is None else int(np.prod([x.shape[a] for a in ax]))
    if n == 0:
        raise AxisError(f"mean: cannot average over an empty axis of {x.describe()}")
    return sum(x, ax, keepdims) / n


def min(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Node:  # noqa: A001
    """Smallest element over axis: -max(-x)."""
    x = _node(x, "min")
    if not x.is_scalar:
        ax = _reduce_args("min", x, axis)
        if any(x.shape[a] == 0 for a in (range(x.ndim) if ax is None else ax)):
            raise AxisError(f"min: cannot reduce over an empty axis of {x.describe()}")
    return -max(-x, axis, keepdims)


def log_sigmoid(x: Any) -> Node:
    """log σ(x) = -softplus(-x), finite for any finite x."""
    return -softplus(-_node(x, "log_sigmoid"))


def log_softmax(x: Any, axis: int = -1) -> Node:
    """(x - m) - log Σ exp(x - m) along axis, m the max (a constant: the result does not depend
    on it). Shifting first keeps float32 accurate at logits near 1e4, where x - logsumexp(x)
    would lose the small difference to rounding."""
    return _log_softmax("log_softmax", x, axis)


def _log_softmax(op: str, x: Any, axis: Any) -> Node:
    x = _node(x, op)
    if x.is_scalar:
        _reduce_args(op, x, axis)
        return x - x  # one element: log 1, with a zero gradient
    ax = _nonempty(op, x, axis)  # name this op, not logsumexp, in an axis error
    m = np.maximum.reduce(x.data, axis=ax, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False)  # all -inf rows: no shift
    sh = x - m
    return sh - logsumexp(sh, axis=ax, keepdims=True)


def softmax(x: Any, axis: int = -1) -> Node:
    """exp(log_softmax(x)): probabilities along axis, without overflow."""
    return exp(_log_softmax("softmax", x, axis))


def stack(xs: Sequence[Any], axis: int = 0) -> Node:
    """Join nodes along a new axis (scalar nodes stack into a vector)."""
    nodes = list(operands(xs, "stack"))
    if not nodes:
        raise InputError("stack: xs must hold at least one node, got none")
    shape = nodes[0].shape
    for n in nodes:
        if n.shape != shape:
            raise ShapeError("stack: shapes differ: " + ", ".join(m.describe() for m in nodes))
    nd = len(shape) + 1
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not -nd <= axis < nd:
        raise AxisError(f"stack: axis {axis} is out of range for a {nd}-d result from "
                        f"{len(nodes)} x {nodes[0].describe()}")
    ax = axis % nd
    new = shape[:ax] + (1,) + shape[ax:]
    return concat([reshape(n, new) for n in nodes], axis=ax)


def dot(a: Any, b: Any) -> Node:
    """np.dot: a product for a scalar operand, the inner product of two vectors, the matrix
    product of matrices, and for N-d arrays the sum product over a's last axis and b's
    second-to-last (b's only axis when b is 1-d)."""
    a, b = operands((a, b), "dot")
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    if b.ndim <= 2 or a.ndim == 1:
        return matmul(a, b)  # np.matmul agrees with np.dot here
    k = a.shape[-1]
    if b.shape[-2] != k:
        raise ShapeError(f"dot: shapes do not align: {a.describe()} and {b.describe()} "
                         f"({k} != {b.shape[-2]})")
    # N-d · M-d: every pair of a's rows and b's (..., k, m) blocks, as one matrix product
    nb = b.ndim
    bt = transpose(b, (nb - 2,) + tuple(range(nb - 2)) + (nb - 1,))  # (k, ..., m)
    out = matmul(reshape(a, (-1, k)), reshape(bt, (k, -1)))
    return reshape(out, a.shape[:-1] + b.shape[:-2] + b.shape[-1:])


# Node's operators and methods (defined in its class body) dispatch through this table.
engine._bind_ops(sys.modules[__name__])
