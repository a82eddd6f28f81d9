"""Hypothesis strategies for property-testing graphs and ops (needs the optional `hypothesis`).

- floats_in / arrays: float64 values in bounds, kept away from given points (kinks) by
  construction, so no example is thrown away with assume();
- separated_arrays: elements pairwise at least a gap apart (no ties for max/min);
- broadcastable_shapes: mutually broadcastable shape sets, 0-d and size-1 axes included;
- broadcastable_arrays: inputs of such shapes, ready for an elementwise op;
- matmul_shapes: operand shapes for every rank pair matmul accepts;
- numbers / int_arrays: operands tinygraph treats as numbers (Python and numpy numbers and
  bools of every real kind) and int/bool arrays (promoted to the other operand's float dtype);
- graphs: small random expression DAGs with reused nodes, as a builder and its inputs;
- tensor_graphs: the same over matrices, with reductions, softmax, matmul, indexing, reshapes and
  joins between the elementwise steps (for gradgradcheck: every rule's own derivative in play).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .. import ops
from ..engine import Node
from ..errors import InputError

__all__ = [
    "floats_in", "arrays", "separated_arrays", "broadcastable_shapes", "broadcastable_arrays",
    "matmul_shapes", "numbers", "int_arrays", "NUMBER_KINDS", "INT_ARRAY_DTYPES",
    "graphs", "Graph", "tensor_graphs", "TensorGraph",
]


def _allowed(lo: float, hi: float, avoid: Sequence[float], gap: float) -> list[tuple[float, float]]:
    """[lo, hi] minus the open intervals (p - gap, p + gap): a list of closed intervals."""
    pieces = [(lo, hi)]
    for p in sorted(avoid):
        nxt = []
        for a, b in pieces:
            if p + gap <= a or p - gap >= b:
                nxt.append((a, b))
                continue
            if a <= p - gap:
                nxt.append((a, p - gap))
            if p + gap <= b:
                nxt.append((p + gap, b))
        pieces = nxt
    if not pieces:
        raise InputError(f"floats_in: nothing of [{lo}, {hi}] is {gap} away from {list(avoid)}")
    return pieces


def floats_in(lo: float = -10.0, hi: float = 10.0, avoid: Sequence[float] = (),
              gap: float = 1e-3) -> st.SearchStrategy[float]:
    """Floats in [lo, hi] at least gap away from each point in avoid (by construction)."""
    pieces = _allowed(float(lo), float(hi), avoid, float(gap))
    total = sum(b - a for a, b in pieces)

    def place(t: float) -> float:
        # Lay the allowed intervals end to end and map t in [0, total] onto them.
        for a, b in pieces:
            if t <= b - a:
                return float(min(a + t, b))
            t -= b - a
        return float(pieces[-1][1])

    # Examples also include the interval ends exactly (bounds are often interesting).
    ends = [v for ab in pieces for v in ab]
    return st.one_of(st.sampled_from(ends), st.floats(0.0, total).map(place))


def arrays(shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]],
           lo: float = -10.0, hi: float = 10.0, avoid: Sequence[float] = (),
           gap: float = 1e-3) -> st.SearchStrategy[Any]:
    """float64 arrays of shape (a float for shape ()) with elements from floats_in(...)."""
    elements = floats_in(lo, hi, avoid, gap)
    shapes = shape if isinstance(shape, st.SearchStrategy) else st.just(tuple(shape))

    def draw(s: tuple[int, ...]) -> st.SearchStrategy[Any]:
        if s == ():
            return elements
        return hnp.arrays(np.float64, s, elements=elements)

    return shapes.flatmap(draw)


def separated_arrays(shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]],
                     lo: float = -5.0, gap: float = 0.01,
                     max_step: float = 1.0) -> st.SearchStrategy[Any]:
    """float64 arrays whose elements differ pairwise by at least gap (no ties, by construction):
    increasing values lo + cumulative steps in [gap, max_step], then shuffled."""
    shapes = shape if isinstance(shape, st.SearchStrategy) else st.just(tuple(shape))

    @st.composite
    def draw(data: st.DrawFn, s: tuple[int, ...]) -> Any:
        n = int(np.prod(s)) if s else 1
        steps = data(st.lists(st.floats(gap, max_step), min_size=n, max_size=n))
        vals = lo + np.cumsum(steps)
        perm = data(st.permutations(range(n)))
        arr = vals[np.asarray(perm, dtype=np.intp)] if n else vals
        return float(arr[0]) if s == () else arr.reshape(s)

    return shapes.flatmap(draw)


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = 3,
                         min_side: int = 1, max_side: int = 4
                         ) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """Tuples of num_shapes mutually broadcastable shapes (0-d and size-1 axes included)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=min_side,
        max_side=max_side,
    ).map(lambda bs: bs.input_shapes)


@st.composite
def broadcastable_arrays(draw: st.DrawFn, n: int = 2, lo: float = -10.0, hi: float = 10.0,
                         avoid: Sequence[float] = (), gap: float = 1e-3, max_dims: int = 3,
                         max_side: int = 4) -> tuple[Any, ...]:
    """n inputs of mutually broadcastable shapes (0-d ones as floats), elements as in arrays()."""
    shapes = draw(broadcastable_shapes(n, 0, max_dims, 1, max_side))
    return tuple(draw(arrays(s, lo, hi, avoid, gap)) for s in shapes)


# Every real scalar kind tinygraph takes as a number, exactly like a Python float.
NUMBER_KINDS: tuple[type, ...] = (
    int, float, bool, np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
    np.uint32, np.uint64, np.float16, np.float32, np.float64,
)
# Array dtypes that an operand array may have besides float32/float64: promoted like PyTorch.
INT_ARRAY_DTYPES: tuple[type, ...] = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                      np.uint16, np.uint32, np.uint64)


def numbers(kinds: Sequence[type] = NUMBER_KINDS, lo: int = -3, hi: int = 3,
            nonzero: bool = False) -> st.SearchStrategy[Any]:
    """A number of one of kinds (Python or numpy scalar), its value an integer in [lo, hi]
    (clipped to the kind's range: 0 or 1 for bools, >= 0 for unsigned ones), so every kind
    holds it exactly. nonzero: never 0 (a denominator)."""

    def make(kv: tuple[type, int]) -> Any:
        kind, v = kv
        if kind in (bool, np.bool_):
            v = 1 if nonzero else v % 2
        elif kind not in (int, float) and np.dtype(kind).kind == "u":
            v = abs(v)
        if nonzero and v == 0:
            v = 1
        return kind(v)

    return st.tuples(st.sampled_from(list(kinds)), st.integers(lo, hi)).map(make)


def int_arrays(shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]],
               dtypes: Sequence[type] = INT_ARRAY_DTYPES, lo: int = -3, hi: int = 3,
               nonzero: bool = False) -> st.SearchStrategy[np.ndarray]:
    """Integer or bool arrays of shape, values in [lo, hi] (>= 0 unsigned, 0/1 bool);
    nonzero: no zeros."""
    shapes = shape if isinstance(shape, st.SearchStrategy) else st.just(tuple(shape))

    @st.composite
    def draw(data: st.DrawFn, s: tuple[int, ...]) -> np.ndarray:
        dt = np.dtype(data(st.sampled_from(list(dtypes))))
        n = int(np.prod(s)) if s else 1
        vals = np.array(data(st.lists(st.integers(lo, hi), min_size=n, max_size=n)), dtype=int)
        if dt.kind == "b":
            vals = np.ones(n, dtype=int) if nonzero else vals % 2
        elif dt.kind == "u":
            vals = np.abs(vals)
        if nonzero:
            vals[vals == 0] = 1
        return vals.astype(dt).reshape(s)

    return shapes.flatmap(draw)


@st.composite
def matmul_shapes(draw: st.DrawFn, max_batch_dims: int = 2, max_side: int = 4
                  ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(a.shape, b.shape) for a @ b: vector or matrix on each side, batched and broadcasting."""
    side = st.integers(1, max_side)
    n, k, m = draw(side), draw(side), draw(side)
    a_vec, b_vec = draw(st.booleans()), draw(st.booleans())
    ba, bb = draw(broadcastable_shapes(2, 0, max_batch_dims, 1, 3))
    a = (k,) if a_vec else ba + (n, k)
    b = (k,) if b_vec else bb + (k, m)
    return a, b


# ---------------------------------------------------------------------------------------------
# Random expression graphs
# ---------------------------------------------------------------------------------------------

# Smooth ops only (no kinks, no overflow): gradients are then checkable by finite differences
# anywhere. Each entry: (name, arity, function on nodes).
_UNARY: dict[str, Callable[[Node], Node]] = {
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
    "softplus": ops.softplus,
    "exp∘tanh": lambda x: ops.exp(ops.tanh(x)),
    "square": lambda x: x * x,
    "neg": ops.neg,
    "log(1+x²)": lambda x: ops.log(1.0 + x * x),
}
_BINARY: dict[str, Callable[[Node, Node], Node]] = {
    "add": ops.add,
    "sub": ops.sub,
    "mul": ops.mul,
    "div(1+b²)": lambda a, b: a / (1.0 + b * b),
}


@dataclass(frozen=True)
class Graph:
    """A random expression DAG: call it on input nodes to build it; repr shows the program.

    steps are (op, i, j): value number len(inputs)+k = op(value i[, value j]). Values may be
    used any number of times, so a*a, diamonds and long shared chains all occur.
    """

    n_inputs: int
    steps: tuple[tuple[str, int, int], ...]
    reduce: bool = True

    def __call__(self, *xs: Node) -> Node:
        vals: list[Node] = list(xs)
        for op, i, j in self.steps:
            if op in _UNARY:
                vals.append(_UNARY[op](vals[i]))
            else:
                vals.append(_BINARY[op](vals[i], vals[j]))
        out = vals[-1]
        return ops.sum(out) if self.reduce and not out.is_scalar else out

    def __repr__(self) -> str:
        names = [f"x{i}" for i in range(self.n_inputs)]
        lines = []
        for k, (op, i, j) in enumerate(self.steps):
            v = f"v{k}"
            args = names[i] if op in _UNARY else f"{names[i]}, {names[j]}"
            lines.append(f"{v} = {op}({args})")
            names.append(v)
        return f"Graph({'; '.join(lines)})"


@st.composite
def graphs(draw: st.DrawFn, max_inputs: int = 3, max_steps: int = 8,
           shape: tuple[int, ...] | None = None, lo: float = -3.0, hi: float = 3.0
           ) -> tuple[Graph, list[Any]]:
    """(graph, inputs): a small random DAG over smooth tinygraph ops and float64 inputs for it.

    shape=None draws scalar inputs half of the time and small tensors otherwise; () gives Python
    floats. Later steps prefer recent values, so the last value usually depends on most others.
    """
    n_in = draw(st.integers(1, max_inputs))
    n_steps = draw(st.integers(1, max_steps))
    steps = []
    for k in range(n_steps):
        n_vals = n_in + k
        # Bias towards recent values (long chains) while still reusing old ones (fan-out).
        pick = st.integers(0, n_vals - 1) | st.integers(max(0, n_vals - 2), n_vals - 1)
        if draw(st.booleans()):
            op = draw(st.sampled_from(sorted(_UNARY)))
            steps.append((op, draw(pick), 0))
        else:
            op = draw(st.sampled_from(sorted(_BINARY)))
            steps.append((op, draw(pick), draw(pick)))
    if shape is None:
        shape = draw(st.sampled_from([(), (), (3,), (2, 2)]))
    inputs = [draw(arrays(shape, lo, hi)) for _ in range(n_in)]
    return Graph(n_in, tuple(steps)), inputs


# Steps that keep an (n, m) value (n, m) but mix its elements: each rule's derivative on nodes
# (a recorded backward pass) is then exercised in any combination with the elementwise ones.
_MIXING: dict[str, Callable[[Node, Node], Node]] = {
    "softmax(a)": lambda a, b: ops.softmax(a, axis=-1),
    "log_softmax(a, 0)": lambda a, b: ops.log_softmax(a, axis=0),
    "a·Σ_row b": lambda a, b: a * ops.sum(b, axis=1, keepdims=True),
    "a - lse_col(b)": lambda a, b: a - ops.logsumexp(b, axis=0, keepdims=True),
    "(a bᵀ) a / m": lambda a, b: (a @ b.T) @ a / a.shape[1],
    "reshape(aᵀ)": lambda a, b: ops.reshape(a.T, a.shape),
    "a[::-1] + a[[0, 0, ...]]": lambda a, b: a[::-1] * 0.5 + a[[0] * a.shape[0]] * 0.5,
    "concat(a[:, :1], b[:, 1:])": lambda a, b: ops.concat([a[:, :1], b[:, 1:]], axis=1),
    "mean(a)·b": lambda a, b: ops.mean(a) * b,
}


@dataclass(frozen=True)
class TensorGraph:
    """A random DAG over (n, m) matrices: elementwise steps and mixing steps; sums to a scalar.

    steps are (op, i, j) as in Graph; op names come from the elementwise tables and _MIXING.
    """

    n_inputs: int
    steps: tuple[tuple[str, int, int], ...]

    def __call__(self, *xs: Node) -> Node:
        vals: list[Node] = list(xs)
        for op, i, j in self.steps:
            if op in _UNARY:
                vals.append(_UNARY[op](vals[i]))
            elif op in _BINARY:
                vals.append(_BINARY[op](vals[i], vals[j]))
            else:
                vals.append(_MIXING[op](vals[i], vals[j]))
        return ops.sum(vals[-1])

    def __repr__(self) -> str:
        names = [f"x{i}" for i in range(self.n_inputs)] + [f"v{k}" for k in range(len(self.steps))]
        lines = [f"v{k} = {op} with a={names[i]}, b={names[j]}"
                 for k, (op, i, j) in enumerate(self.steps)]
        return f"TensorGraph({'; '.join(lines)})"


@st.composite
def tensor_graphs(draw: st.DrawFn, max_inputs: int = 2, max_steps: int = 5,
                  lo: float = -2.0, hi: float = 2.0) -> tuple[TensorGraph, list[Any]]:
    """(graph, inputs): a random DAG over (n, m) float64 matrices (n, m in 2..3) mixing
    elementwise steps with reductions, softmax, matmul, indexing, reshapes and joins (all smooth:
    no kinks, so finite differences hold anywhere)."""
    n_in = draw(st.integers(1, max_inputs))
    n_steps = draw(st.integers(1, max_steps))
    names = sorted(_UNARY) + sorted(_BINARY) + sorted(_MIXING)
    steps = []
    for k in range(n_steps):
        n_vals = n_in + k
        pick = st.integers(0, n_vals - 1) | st.integers(max(0, n_vals - 2), n_vals - 1)
        op = draw(st.sampled_from(names))
        steps.append((op, draw(pick), draw(pick)))
    shape = (draw(st.integers(2, 3)), draw(st.integers(2, 3)))
    inputs = [draw(arrays(shape, lo, hi)) for _ in range(n_in)]
    return TensorGraph(n_in, tuple(steps)), inputs
