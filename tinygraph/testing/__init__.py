"""Checking gradients: backward() against central finite differences in float64.

gradcheck needs only numpy; the hypothesis strategies in tinygraph.testing.strategies need the
optional `hypothesis` package (pip install "tinygraph[test]").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import ops
from .._check import check_float, check_int, check_seed, show
from ..engine import Node, graph_cotangents
from ..errors import ArgTypeError, DTypeError, GradcheckError

__all__ = ["gradcheck", "gradgradcheck", "numerical_jacobian", "analytic_jacobian"]


def _as_input(x: Any, j: int) -> float | np.ndarray:
    """An input as float64 data: a Python float for scalars, a float64 array otherwise."""
    d = x.data if isinstance(x, Node) else x
    arr = np.asarray(d)
    if arr.dtype.kind not in "fiu" or arr.dtype == bool:
        raise DTypeError(f"gradcheck: input {j} has dtype {arr.dtype}, not a real number")
    if arr.ndim == 0:  # a scalar node holds a Python float, never a 0-d array
        return float(arr)
    return np.array(arr, dtype=np.float64)


def _flat(d: float | np.ndarray) -> np.ndarray:
    return np.asarray(d, dtype=np.float64).reshape(-1)


def _with(d: float | np.ndarray, flat: np.ndarray) -> float | np.ndarray:
    """flat (a modified copy of d's elements) in d's shape; a float for a scalar."""
    return float(flat[0]) if type(d) is float else flat.reshape(np.shape(d))


def _call(fn: Callable[..., Any], datas: Sequence[float | np.ndarray]) -> Node:
    nodes = [Node(d, name=f"x{j}") for j, d in enumerate(datas)]
    out = fn(*nodes)
    if not isinstance(out, Node):
        raise DTypeError(f"gradcheck: fn returned {type(out).__name__}, not a Node")
    return out


def _eval(fn: Callable[..., Any], datas: Sequence[float | np.ndarray]) -> np.ndarray:
    return _flat(_call(fn, datas).data)


def _step(x: float, eps: float) -> float:
    return eps * max(1.0, abs(x))


def numerical_jacobian(
    fn: Callable[..., Any], datas: Sequence[float | np.ndarray], j: int, eps: float = 1e-6
) -> np.ndarray:
    """d out / d input j by central differences: shape (out.size, input.size)."""
    x = _flat(datas[j])
    cols = []
    for i in range(x.size):
        h = _step(x[i], eps)
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        dp, dm = list(datas), list(datas)
        dp[j], dm[j] = _with(datas[j], xp), _with(datas[j], xm)
        # Divide by the step actually taken: x + h and x - h are rounded to float64.
        cols.append((_eval(fn, dp) - _eval(fn, dm)) / (xp[i] - xm[i]))
    n_out = _eval(fn, datas).size
    return np.stack(cols, axis=1) if cols else np.zeros((n_out, 0))


def _grads(out: Node, inputs: Sequence[Node], v: np.ndarray) -> list[np.ndarray]:
    """v^T J for every input, by one backward pass seeded with v (in out's shape)."""
    for n in inputs:
        n.grad = None
    seed = float(v[0]) if out.is_scalar else v.reshape(out.shape)
    out.backward(seed)
    return [np.zeros(n.size) if n.grad is None else _flat(n.grad) for n in inputs]


def analytic_jacobian(
    fn: Callable[..., Any], datas: Sequence[float | np.ndarray]
) -> list[np.ndarray]:
    """d out / d input from backward(), one pass per output element: (out.size, in.size) each."""
    inputs = [Node(d, name=f"x{j}") for j, d in enumerate(datas)]
    out = fn(*inputs)
    if not isinstance(out, Node):
        raise DTypeError(f"gradcheck: fn returned {type(out).__name__}, not a Node")
    m = out.size
    rows: list[list[np.ndarray]] = [[] for _ in inputs]
    if not out.requires_grad:  # nothing depends on the inputs: the Jacobian is zero
        return [np.zeros((m, n.size)) for n in inputs]
    for k in range(m):
        v = np.zeros(m)
        v[k] = 1.0
        for j, g in enumerate(_grads(out, inputs, v)):
            rows[j].append(g)
    return [np.stack(r) if r else np.zeros((0, n.size)) for r, n in zip(rows, inputs, strict=True)]


def _close(a: np.ndarray, n: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Elementwise |a - n| <= atol + rtol |n|; equal infinities count as close, NaN never."""
    with np.errstate(invalid="ignore"):
        ok = np.abs(a - n) <= atol + rtol * np.abs(n)
    return ok | ((a == n) & np.isinf(a))


def _index(k: int, shape: tuple[int, ...]) -> str:
    return "()" if not shape else str(tuple(int(i) for i in np.unravel_index(k, shape)))


def _report_full(j: int, shape_in: tuple, shape_out: tuple, a: np.ndarray, n: np.ndarray,
                 ok: np.ndarray) -> str:
    bad = np.argwhere(~ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(ok, 0.0, np.nan_to_num(np.abs(a - n), nan=np.inf))
    worst = np.unravel_index(int(np.argmax(err)), err.shape)
    lines = [
        f"Jacobian mismatch for output 0 with respect to input {j} (x{j}, shape {shape_in}): "
        f"{len(bad)} of {a.size} entries differ",
    ]
    for r, c in [tuple(worst)] + [tuple(b) for b in bad[:5] if tuple(b) != tuple(worst)][:4]:
        av, nv = a[r, c], n[r, c]
        rel = abs(av - nv) / max(abs(nv), 1e-300)
        lines.append(
            f"  d out{_index(r, shape_out)} / d x{j}{_index(c, shape_in)}: analytic {av:.10g}, "
            f"numerical {nv:.10g}, abs error {abs(av - nv):.3g}, rel error {rel:.3g}"
        )
    if a.size <= 36:
        lines.append(f"  analytic Jacobian:\n{np.array2string(a, precision=6)}")
        lines.append(f"  numerical Jacobian:\n{np.array2string(n, precision=6)}")
    return "\n".join(lines)


def gradcheck(
    fn: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    max_full: int = 64,
    n_proj: int = 8,
    seed: int = 0,
) -> bool:
    """Check fn's backward() against central differences in float64; True or GradcheckError.

    Each input (number, array, or Node whose data is used) becomes a float64 Node; fn(*nodes)
    returns a Node. The step for element x is eps * max(1, |x|). For an input, the full Jacobian
    is compared when it and the output have at most max_full elements, otherwise n_proj random
    projections v^T J u (unit u, v). An entry passes when |analytic - numerical| <= atol + rtol *
    |numerical|.
    """
    if not callable(fn):
        raise ArgTypeError(f"gradcheck: fn must be callable, got {show(fn)}")
    eps = check_float("gradcheck", "eps", eps, lo=0.0, lo_open=True)
    rtol = check_float("gradcheck", "rtol", rtol, lo=0.0)
    atol = check_float("gradcheck", "atol", atol, lo=0.0)
    max_full = check_int("gradcheck", "max_full", max_full, lo=0)
    n_proj = check_int("gradcheck", "n_proj", n_proj, lo=1)
    seed = check_seed("gradcheck", "seed", seed)
    datas = [_as_input(x, j) for j, x in enumerate(inputs)]
    if not datas:
        raise GradcheckError("gradcheck: give at least one input")
    out0 = _call(fn, datas)
    shape_out, m = out0.shape, out0.size
    full = [j for j, d in enumerate(datas) if m <= max_full and _flat(d).size <= max_full]
    proj = [j for j in range(len(datas)) if j not in full]
    failures = []
    if full:
        A = analytic_jacobian(fn, datas)
        for j in full:
            N = numerical_jacobian(fn, datas, j, eps)
            ok = _close(A[j], N, rtol, atol)
            if not ok.all():
                failures.append(_report_full(j, np.shape(datas[j]), shape_out, A[j], N, ok))
    if proj:
        failures += _check_projections(fn, datas, proj, eps, rtol, atol, n_proj, seed)
    if failures:
        raise GradcheckError("gradcheck failed:\n" + "\n".join(failures))
    return True


def _check_projections(fn: Callable[..., Any], datas: list, proj: list[int], eps: float,
                       rtol: float, atol: float, n_proj: int, seed: int) -> list[str]:
    """v^T J u, from backward (v^T J)·u and from central differences along u, per input."""
    rng = np.random.default_rng(seed)
    failures = []
    inputs = [Node(d, name=f"x{j}") for j, d in enumerate(datas)]
    out = fn(*inputs)
    for t in range(n_proj):
        v = rng.standard_normal(out.size)
        v /= np.linalg.norm(v)
        g = _grads(out, inputs, v) if out.requires_grad else [np.zeros(n.size) for n in inputs]
        for j in proj:
            x = _flat(datas[j])
            u = rng.standard_normal(x.size)
            u /= np.linalg.norm(u)
            h = _step(float(np.max(np.abs(x))), eps)
            dp, dm = list(datas), list(datas)
            dp[j], dm[j] = _with(datas[j], x + h * u), _with(datas[j], x - h * u)
            num = float(v @ (_eval(fn, dp) - _eval(fn, dm))) / (2 * h)
            ana = float(g[j] @ u)
            if not _close(np.array(ana), np.array(num), rtol, atol):
                failures.append(
                    f"Jacobian mismatch for output 0 with respect to input {j} (x{j}, shape "
                    f"{np.shape(datas[j])}), random projection {t} (seed {seed}): v^T J u analytic "
                    f"{ana:.10g}, numerical {num:.10g}, abs error {abs(ana - num):.3g}, "
                    f"rel error {abs(ana - num) / max(abs(num), 1e-300):.3g}"
                )
    return failures


def first_derivatives(fn: Callable[..., Any], seed: int = 0) -> Callable[..., Node]:
    """The function x -> (v^T d fn / d x_j for every input j, flattened and joined), computed by a
    recorded backward pass (create_graph), so that its own derivatives are fn's second ones.

    v is fixed: 1 for a one-element output, a seeded random vector otherwise.
    """
    def grads(*xs: Node) -> Node:
        out = fn(*xs)
        if not isinstance(out, Node):
            raise DTypeError(f"gradgradcheck: fn returned {type(out).__name__}, not a Node")
        parts = []
        if out.requires_grad:
            v = np.random.default_rng(seed).standard_normal(out.size) if out.size != 1 else None
            seed_grad = None if v is None else v.reshape(out.shape).astype(out.dtype)
            by_node = graph_cotangents(out, seed_grad)
        else:
            by_node = {}
        for x in xs:
            g = by_node.get(x)
            parts.append(ops.reshape(g, (-1,)) if g is not None
                         else Node(np.zeros(x.size), requires_grad=False))
        return ops.concat(parts)
    return grads


def gradgradcheck(
    fn: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_full: int = 64,
    n_proj: int = 8,
    seed: int = 0,
) -> bool:
    """Check fn's second derivatives: gradcheck of its gradient recorded with create_graph.

    The first derivatives v^T d fn / d x (v fixed: see first_derivatives) are computed as a graph
    of tinygraph ops; their backward() is compared with central differences of their values in
    float64 (an entry passes when |analytic - numerical| <= atol + rtol |numerical|). Returns True
    or raises GradcheckError; check the first derivatives themselves with gradcheck.
    """
    if not callable(fn):
        raise ArgTypeError(f"gradgradcheck: fn must be callable, got {show(fn)}")
    seed = check_seed("gradgradcheck", "seed", seed)
    try:
        return gradcheck(first_derivatives(fn, seed), *inputs, eps=eps, rtol=rtol, atol=atol,
                         max_full=max_full, n_proj=n_proj, seed=seed)
    except GradcheckError as e:
        raise GradcheckError("gradgradcheck (the first derivatives' gradient) "
                             + str(e)) from None
