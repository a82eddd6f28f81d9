"""The spec table (T1): one row per public differentiable op, driving the per-op tests.

A row says how to call the op (fn on float64 Nodes plus static keyword arguments), how to draw its
inputs (a hypothesis strategy of Case: positional data plus keyword arguments), each input's
domain in words, a numpy reference forward, tolerances (looser than 1e-6 only with a reason) and
the public names it covers. Kinks are avoided by construction in the strategies, never with
assume(). tests/specs_nn.py adds NN_SPECS (layers, losses) built from the same OpSpec.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygraph as tg
from tinygraph.testing import strategies as tgs

TOL = 1e-6


@dataclass(frozen=True)
class Case:
    """One drawn example: positional inputs (floats or float64 arrays) and static keywords."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpSpec:
    """One row of the spec table.

    fn(*nodes, **case.kwargs) -> Node; ref(*datas, **case.kwargs) -> float or ndarray (None: no
    reference forward, e.g. layers with their own tests). elementwise rows broadcast their inputs
    against each other and get the T4 broadcasting test. second is the second-order column: empty
    when the row's second derivatives pass gradgradcheck (tests/test_higher_order.py), else why
    they cannot be checked; kink conventions of second derivatives are pinned there too.
    """

    name: str
    fn: Callable[..., Any]
    inputs: st.SearchStrategy[Case]
    ref: Callable[..., Any] | None
    domains: tuple[str, ...] = ()
    covers: tuple[str, ...] = ()
    rtol: float = TOL
    atol: float = TOL
    reason: str = ""
    elementwise: bool = False
    second: str = ""

    def __post_init__(self) -> None:
        if (self.rtol > TOL or self.atol > TOL) and not self.reason:
            raise ValueError(f"spec {self.name}: a tolerance looser than {TOL} needs a reason")
        if not self.covers:
            object.__setattr__(self, "covers", (self.name,))

    def __repr__(self) -> str:  # pytest ids and hypothesis reports
        return f"OpSpec({self.name})"


# ---------------------------------------------------------------------------------------------
# Input strategies
# ---------------------------------------------------------------------------------------------

Dom = tuple[float, float, tuple[float, ...], float]  # lo, hi, points to keep away from, gap


def dom(lo: float, hi: float, avoid: Sequence[float] = (), gap: float = 1e-2) -> Dom:
    """A per-input domain: [lo, hi], at least gap away from the points in avoid."""
    return (lo, hi, tuple(avoid), gap)


def _dom_str(d: Dom) -> str:
    lo, hi, avoid, gap = d
    s = f"[{lo:g}, {hi:g}]"
    return s + (f" at least {gap:g} from {', '.join(f'{a:g}' for a in avoid)}" if avoid else "")


def elementwise_case(*doms: Dom, max_dims: int = 3, max_side: int = 4,
                     kwargs: dict[str, Any] | None = None) -> st.SearchStrategy[Case]:
    """Inputs of mutually broadcastable shapes (0-d ones as Python floats), each in its domain."""

    @st.composite
    def draw(data: st.DrawFn) -> Case:
        shapes = data(tgs.broadcastable_shapes(len(doms), 0, max_dims, 1, max_side))
        args = tuple(data(tgs.arrays(s, *d)) for s, d in zip(shapes, doms, strict=True))
        return Case(args, dict(kwargs or {}))

    return draw()


def _shape(min_dims: int = 1, max_dims: int = 3, max_side: int = 4) -> st.SearchStrategy:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


@st.composite
def _axis(data: st.DrawFn, ndim: int, allow_none: bool = True, allow_tuple: bool = True) -> Any:
    choices = [st.integers(-ndim, ndim - 1)]
    if allow_none:
        choices.append(st.none())
    if allow_tuple:
        choices.append(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                                unique=True).map(tuple))
    return data(st.one_of(choices))


def reduction_case(d: Dom = (-5.0, 5.0, (), 0.0), separated: bool = False, keepdims: bool = True,
                   tuple_axes: bool = True) -> st.SearchStrategy[Case]:
    """One tensor and an axis (int, tuple or None), keepdims drawn when the op takes it."""

    @st.composite
    def draw(data: st.DrawFn) -> Case:
        shape = data(_shape())
        x = data(tgs.separated_arrays(shape) if separated else tgs.arrays(shape, *d))
        kw: dict[str, Any] = {"axis": data(_axis(len(shape), allow_tuple=tuple_axes))}
        if keepdims:
            kw["keepdims"] = data(st.booleans())
        return Case((x,), kw)

    return draw()


def _tie_free_pair() -> st.SearchStrategy[Case]:
    """Two broadcastable inputs that never tie: a = k + [0, 0.4], b = k + [0.5, 0.9], k integer."""
    low = st.integers(-5, 5).flatmap(lambda k: st.floats(k, k + 0.4))
    high = st.integers(-5, 5).flatmap(lambda k: st.floats(k + 0.5, k + 0.9))

    @st.composite
    def draw(data: st.DrawFn) -> Case:
        sa, sb = data(tgs.broadcastable_shapes(2))
        ea, eb = (low, high) if data(st.booleans()) else (high, low)

        def arr(s: tuple[int, ...], e: st.SearchStrategy) -> Any:
            return data(e) if s == () else data(hnp.arrays(np.float64, s, elements=e))

        return Case((arr(sa, ea), arr(sb, eb)))

    return draw()


@st.composite
def _matmul_case(data: st.DrawFn) -> Case:
    sa, sb = data(tgs.matmul_shapes())
    return Case((data(tgs.arrays(sa, -3, 3)), data(tgs.arrays(sb, -3, 3))))


@st.composite
def _dot_case(data: st.DrawFn) -> Case:
    """np.dot's operand ranks: scalars, vectors, matrices and stacks of them (0-3 axes each)."""
    na, nb = data(st.integers(0, 3)), data(st.integers(0, 3))
    k, side = data(st.integers(1, 3)), st.integers(1, 3)
    if na == 0 or nb == 0:
        sa = tuple(data(side) for _ in range(na))
        sb = tuple(data(side) for _ in range(nb))
    else:
        sa = tuple(data(side) for _ in range(na - 1)) + (k,)
        sb = (k,) if nb == 1 else tuple(data(side) for _ in range(nb - 2)) + (k, data(side))
    return Case((data(tgs.arrays(sa, -3, 3)), data(tgs.arrays(sb, -3, 3))))


@st.composite
def _linear_case(data: st.DrawFn) -> Case:
    """x (nin,), (batch, nin) or (k, batch, nin); w (nin, nout); b (nout,) or broadcastable."""
    nin, nout = data(st.integers(1, 4)), data(st.integers(1, 4))
    lead = data(st.sampled_from([(), (3,), (2, 3)]))
    bshape = data(st.sampled_from([(nout,), (1, nout)] if lead else [(nout,)]))
    return Case((data(tgs.arrays(lead + (nin,), -3, 3)), data(tgs.arrays((nin, nout), -3, 3)),
                 data(tgs.arrays(bshape, -3, 3))))


@st.composite
def _reshape_case(data: st.DrawFn) -> Case:
    shape = data(_shape())
    n = int(np.prod(shape))
    # A target shape with the same size: a factorization of n, maybe with one -1.
    dims, rest = [], n
    while rest > 1 and len(dims) < 3:
        d = data(st.sampled_from([k for k in range(1, rest + 1) if rest % k == 0]))
        dims.append(d)
        rest //= d
    dims.append(rest)
    if data(st.booleans()):
        dims[data(st.integers(0, len(dims) - 1))] = -1
    return Case((data(tgs.arrays(shape)),), {"shape": tuple(dims)})


@st.composite
def _transpose_case(data: st.DrawFn) -> Case:
    shape = data(_shape())
    axes = data(st.none() | st.permutations(range(len(shape))).map(tuple))
    return Case((data(tgs.arrays(shape)),), {"axes": axes})


@st.composite
def _getitem_case(data: st.DrawFn) -> Case:
    shape = data(_shape())
    kind = data(st.sampled_from(["basic", "int", "array", "bool"]))
    n0 = shape[0]
    if kind == "basic":
        index = data(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    elif kind == "int":
        index = data(st.integers(-n0, n0 - 1))
    elif kind == "array":  # repeated indices must accumulate
        index = np.array(data(st.lists(st.integers(-n0, n0 - 1), min_size=1, max_size=6)))
    else:
        index = data(hnp.arrays(bool, (n0,)))
    return Case((data(tgs.arrays(shape)),), {"index": index})


@st.composite
def _join_case(data: st.DrawFn, new_axis: bool) -> Case:
    """2-4 arrays for concat (sizes differ along the axis) or stack (same shapes)."""
    shape = list(data(_shape(max_dims=3)))
    k = data(st.integers(2, 4))
    nd = len(shape) + (1 if new_axis else 0)
    axis = data(st.integers(-nd, nd - 1))
    xs = []
    for _ in range(k):
        s = list(shape)
        if not new_axis:
            s[axis] = data(st.integers(1, 3))
        xs.append(data(tgs.arrays(tuple(s))))
    return Case(tuple(xs), {"axis": axis})


@st.composite
def _same_shape_case(data: st.DrawFn, n: int, d: Dom = (-5.0, 5.0, (), 0.0)) -> Case:
    shape = data(_shape())
    return Case(tuple(data(tgs.arrays(shape, *d)) for _ in range(n)))


@st.composite
def _softmax_case(data: st.DrawFn) -> Case:
    shape = data(_shape())
    x = data(tgs.arrays(shape, -20, 20))
    return Case((x,), {"axis": data(st.integers(-len(shape), len(shape) - 1))})


@st.composite
def _reflected_case(data: st.DrawFn, d_node: Dom, d_const: Dom) -> Case:
    """A node operand and a raw constant (float or array) on the other side of an operator."""
    s_node, s_const = data(tgs.broadcastable_shapes(2))
    return Case((data(tgs.arrays(s_node, *d_node)),), {"c": data(tgs.arrays(s_const, *d_const))})


# ---------------------------------------------------------------------------------------------
# numpy references (the forward, written independently of tinygraph's op table)
# ---------------------------------------------------------------------------------------------


def _np_sigmoid(x: Any) -> Any:
    return np.exp(-np.logaddexp(0.0, -np.asarray(x, dtype=np.float64)))


def _np_lse(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    m = np.max(x, axis=axis, keepdims=True)
    r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

R = dom(-10, 10)
POS = dom(0.1, 10)
NONZERO = dom(-10, 10, [0.0], 0.5)
KINK0 = dom(-10, 10, [0.0], 1e-2)
NO_TIE = "[-5, 6), never within 0.1 of the other input"


def _ew(name: str, fn: Callable, ref: Callable, *doms: Dom, covers: Sequence[str] = (),
        **kw: Any) -> OpSpec:
    return OpSpec(name, fn, elementwise_case(*doms), ref, tuple(_dom_str(d) for d in doms),
                  tuple(covers) or (name,), elementwise=True, **kw)


def _forms(**forms: Callable[..., Any]) -> Callable[..., Any]:
    """One row for an op's function and operator spellings: the case draws which one to call."""

    def fn(*xs: Any, form: str, **kw: Any) -> Any:
        return forms[form](*xs, **kw)

    fn.forms = tuple(forms)  # type: ignore[attr-defined]
    return fn


def _with_form(cases: st.SearchStrategy[Case], fn: Callable[..., Any]) -> st.SearchStrategy[Case]:
    return st.tuples(cases, st.sampled_from(fn.forms)).map(  # type: ignore[attr-defined]
        lambda cf: Case(cf[0].args, {**cf[0].kwargs, "form": cf[1]}))


def _ew2(name: str, ref: Callable, *doms: Dom, covers: Sequence[str], **forms: Callable) -> OpSpec:
    fn = _forms(**forms)
    return OpSpec(name, fn, _with_form(elementwise_case(*doms), fn),
                  lambda *xs, form: ref(*xs), tuple(_dom_str(d) for d in doms), tuple(covers),
                  elementwise=True)


# .T only reverses the axes: that form ignores a drawn permutation.
_T = _forms(f=tg.transpose, T=lambda x, axes: x.T if axes is None else tg.transpose(x, axes))
_GETITEM = _forms(f=tg.getitem, op=lambda x, index: x[index])
_MATMUL = _forms(f=tg.matmul, op=lambda a, b: a @ b, np=np.matmul)
_DOT = _forms(f=tg.dot, np=np.dot, method=lambda a, b: a.dot(b))
_RESHAPE = _forms(f=lambda x, shape: tg.reshape(x, shape), np=lambda x, shape: np.reshape(x, shape),
                  method=lambda x, shape: x.reshape(shape))
_CONCAT = _forms(f=lambda *xs, axis: tg.concat(xs, axis),
                 np=lambda *xs, axis: np.concatenate(xs, axis))
_STACK = _forms(f=lambda *xs, axis: tg.stack(xs, axis), np=lambda *xs, axis: np.stack(xs, axis))
_CLIP = _forms(f=tg.clip, np=lambda x, lo=None, hi=None: np.clip(x, lo, hi))


def _pair(name: str, ref: Callable, **forms: Callable) -> OpSpec:
    """maximum / minimum: two inputs that never tie, in each spelling."""
    fn = _forms(**forms)
    return OpSpec(name, fn, _with_form(_tie_free_pair(), fn), lambda a, b, form: ref(a, b),
                  (NO_TIE,) * 2, (name, f"np.{name}"), elementwise=True)


def _reduce(name: str, ref: Callable, cases: st.SearchStrategy[Case], domains: tuple[str, ...],
            covers: tuple[str, ...], **forms: Callable) -> OpSpec:
    """A reduction in each spelling: tg.f, np.f (np.amax...), np.ufunc.reduce, the method."""
    fn = _forms(**forms)
    return OpSpec(name, fn, _with_form(cases, fn),
                  lambda x, axis, keepdims, form: ref(x, axis, keepdims=keepdims), domains,
                  (name, *covers))


CORE_SPECS: list[OpSpec] = [
    # --- elementwise binary: function and operator spellings in one row ---
    _ew2("add", np.add, R, R, covers=["add", "__add__", "np.add"], f=tg.add,
         op=lambda a, b: a + b, np=np.add),
    _ew2("sub", np.subtract, R, R, covers=["sub", "__sub__", "np.subtract"], f=tg.sub,
         op=lambda a, b: a - b, np=np.subtract),
    _ew2("mul", np.multiply, R, R, covers=["mul", "__mul__", "np.multiply"], f=tg.mul,
         op=lambda a, b: a * b, np=np.multiply),
    _ew2("div", np.divide, R, NONZERO, covers=["div", "__truediv__", "np.divide",
                                               "np.true_divide"],
         f=tg.div, op=lambda a, b: a / b, np=np.divide, np_true=np.true_divide),
    _ew2("pow", np.power, POS, dom(-3, 3), covers=["pow", "__pow__", "np.power"], f=tg.pow,
         op=lambda a, b: a**b, np=np.power),
    _pair("maximum", np.maximum, f=tg.maximum, np=np.maximum),
    _pair("minimum", np.minimum, f=tg.minimum, np=np.minimum),
    _ew("x**3 (negative base)", lambda a: a**3, lambda a: np.power(a, 3.0), R,
        covers=["__pow__"]),
    # --- operators with a raw constant on the other side (reflected operators) ---
    OpSpec("c+x", lambda x, c: c + x, _reflected_case(R, R), lambda x, c: c + x, (_dom_str(R),),
           covers=("__radd__",)),
    OpSpec("c-x", lambda x, c: c - x, _reflected_case(R, R), lambda x, c: c - x, (_dom_str(R),),
           covers=("__rsub__",)),
    OpSpec("c*x", lambda x, c: c * x, _reflected_case(R, R), lambda x, c: c * x, (_dom_str(R),),
           covers=("__rmul__",)),
    OpSpec("c/x", lambda x, c: c / x, _reflected_case(NONZERO, R), lambda x, c: c / x,
           (_dom_str(NONZERO),),
           covers=("__rtruediv__",)),
    OpSpec("c**x", lambda x, c: c**x, _reflected_case(dom(-3, 3), POS), lambda x, c: c**x,
           ("[-3, 3]; c in [0.1, 10]",),
           covers=("__rpow__",)),
    # --- elementwise unary ---
    _ew2("neg", np.negative, R, covers=["neg", "__neg__", "__pos__", "np.negative",
                                        "np.positive"],
         f=tg.neg, op=lambda x: -x, pos=lambda x: +(-x), np=np.negative,
         np_pos=lambda x: np.positive(np.negative(x))),
    _ew2("exp", np.exp, dom(-10, 5), covers=["exp", "np.exp"], f=tg.exp, np=np.exp,
         method=lambda x: x.exp()),
    _ew2("log", np.log, POS, covers=["log", "np.log"], f=tg.log, np=np.log),
    _ew2("sqrt", np.sqrt, POS, covers=["sqrt", "np.sqrt"], f=tg.sqrt, np=np.sqrt),
    _ew2("abs", np.abs, KINK0, covers=["abs", "__abs__", "np.absolute", "np.fabs"], f=tg.abs,
         op=lambda x: abs(x), np=np.abs, np_fabs=np.fabs),
    _ew2("tanh", np.tanh, R, covers=["tanh", "np.tanh"], f=tg.tanh, np=np.tanh,
         method=lambda x: x.tanh()),
    _ew2("square", np.square, R, covers=["np.square"], np=np.square),
    _ew2("reciprocal", np.reciprocal, NONZERO, covers=["np.reciprocal"], np=np.reciprocal),
    _ew("sigmoid", tg.sigmoid, _np_sigmoid, dom(-30, 30)),
    _ew("relu", tg.relu, lambda x: np.maximum(x, 0.0), KINK0),
    _ew("softplus", tg.softplus, lambda x: np.logaddexp(0.0, x), dom(-30, 30)),
    _ew("log_sigmoid", tg.log_sigmoid, lambda x: -np.logaddexp(0.0, -x), dom(-30, 30)),
    OpSpec("leaky_relu", tg.leaky_relu,
           elementwise_case(KINK0, kwargs={"alpha": 0.1}) | elementwise_case(KINK0),
           lambda x, alpha=0.01: np.where(x > 0, x, alpha * x), (_dom_str(KINK0),),
           elementwise=True),
    OpSpec("clip", _CLIP,
           _with_form(elementwise_case(dom(-3, 3, [-1.0, 1.0]), kwargs={"lo": -1.0, "hi": 1.0})
                      | elementwise_case(dom(-3, 3, [0.5]), kwargs={"lo": 0.5})
                      | elementwise_case(dom(-3, 3, [0.5]), kwargs={"hi": 0.5}), _CLIP),
           lambda x, lo=None, hi=None, form="f": np.clip(x, lo, hi),
           ("[-3, 3] away from the bounds",), covers=("clip", "np.clip"), elementwise=True),
    _ew2("where", lambda a, b: np.where(np.asarray(a) > 0, a, b), KINK0, R,
         covers=["where", "np.where"], f=lambda a, b: tg.where(a > 0, a, b),
         np=lambda a, b: np.where(a > 0, a, b)),
    # --- reductions ---
    _reduce("sum", np.sum, reduction_case(), ("[-5, 5]",), ("np.sum", "np.add.reduce"),
            f=tg.sum, np=np.sum,
            method=lambda x, axis, keepdims: x.sum(axis, keepdims),
            np_reduce=lambda x, axis, keepdims: np.add.reduce(x, axis, keepdims=keepdims)),
    _reduce("mean", np.mean, reduction_case(), ("[-5, 5]",), ("np.mean",), f=tg.mean,
            np=np.mean),
    _reduce("max", np.max, reduction_case(separated=True), ("all elements at least 0.01 apart",),
            ("np.max", "np.amax", "np.maximum.reduce"), f=tg.max, np=np.max, np_amax=np.amax,
            np_reduce=lambda x, axis, keepdims: np.maximum.reduce(x, axis, keepdims=keepdims)),
    _reduce("min", np.min, reduction_case(separated=True), ("all elements at least 0.01 apart",),
            ("np.min", "np.amin", "np.minimum.reduce"), f=tg.min, np=np.min, np_amin=np.amin,
            np_reduce=lambda x, axis, keepdims: np.minimum.reduce(x, axis, keepdims=keepdims)),
    OpSpec("logsumexp", tg.logsumexp, reduction_case(dom(-20, 20)), _np_lse, ("[-20, 20]",)),
    OpSpec("dot", _DOT, _with_form(_dot_case(), _DOT), lambda a, b, form: np.dot(a, b),
           ("[-3, 3]",) * 2, covers=("dot", "np.dot")),
    OpSpec("np.outer", np.outer, _same_shape_case(2), np.outer, ("[-5, 5]",) * 2),
    # --- normalizers ---
    OpSpec("log_softmax", tg.log_softmax, _softmax_case(),
           lambda x, axis: x - _np_lse(x, axis, True), ("[-20, 20]",)),
    OpSpec("softmax", tg.softmax, _softmax_case(),
           lambda x, axis: np.exp(x - _np_lse(x, axis, True)), ("[-20, 20]",)),
    # --- shape ops ---
    OpSpec("reshape", _RESHAPE, _with_form(_reshape_case(), _RESHAPE),
           lambda x, shape, form: np.reshape(x, shape), ("[-10, 10]",),
           covers=("reshape", "np.reshape")),
    OpSpec("transpose", _T, _with_form(_transpose_case(), _T),
           lambda x, axes, form: np.transpose(x, axes), ("[-10, 10]",),
           covers=("transpose", "T", "np.transpose")),
    OpSpec("np.ravel", np.ravel, _same_shape_case(1), np.ravel, ("[-5, 5]",)),
    OpSpec("np.squeeze", np.squeeze, _same_shape_case(1), np.squeeze, ("[-5, 5]",)),
    OpSpec("np.expand_dims", lambda x: np.expand_dims(x, 0), _same_shape_case(1),
           lambda x: np.expand_dims(x, 0), ("[-5, 5]",)),
    OpSpec("np.swapaxes", lambda x: np.swapaxes(x, 0, -1), _same_shape_case(1),
           lambda x: np.swapaxes(x, 0, -1), ("[-5, 5]",)),
    OpSpec("getitem", _GETITEM, _with_form(_getitem_case(), _GETITEM),
           lambda x, index, form: x[index], ("[-10, 10]",),
           # getitem's gradient is an op of its own in a recorded backward pass (getitem_grad):
           # the second-order check of this row runs its forward and its gradient
           covers=("getitem", "__getitem__", "getitem_grad")),
    OpSpec("concat", _CONCAT, _with_form(_join_case(False), _CONCAT),
           lambda *xs, axis, form: np.concatenate(xs, axis), ("[-10, 10] each",),
           covers=("concat", "np.concatenate")),
    OpSpec("stack", _STACK, _with_form(_join_case(True), _STACK),
           lambda *xs, axis, form: np.stack(xs, axis), ("[-10, 10] each",),
           covers=("stack", "np.stack")),
    # --- matmul ---
    OpSpec("matmul", _MATMUL, _with_form(_matmul_case(), _MATMUL),
           lambda a, b, form: np.matmul(a, b), ("[-3, 3]",) * 2,
           covers=("matmul", "__matmul__", "np.matmul")),
    OpSpec("linear", tg.linear, _linear_case(), lambda x, w, b: np.matmul(x, w) + b,
           ("[-3, 3]",) * 3, covers=("linear",)),
    OpSpec("c@x", lambda x, c: c @ x,
           _matmul_case().map(lambda k: Case((k.args[1],), {"c": k.args[0]})),
           lambda x, c: c @ x, ("[-3, 3]",), covers=("__rmatmul__",)),
]

# Node operators the table must cover (T1), next to the builtins of tg.PRIMITIVES.
OPERATORS = (
    "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
    "__rtruediv__", "__pow__", "__rpow__", "__matmul__", "__rmatmul__", "__neg__", "__pos__",
    "__abs__", "__getitem__", "T",
)


def nn_specs() -> list[OpSpec]:
    """NN_SPECS from tests/specs_nn.py (layers and losses), or [] while that file does not exist."""
    if importlib.util.find_spec("specs_nn") is None:
        return []
    # Imported at call time, not at import time: specs_nn itself imports this module.
    return list(getattr(importlib.import_module("specs_nn"), "NN_SPECS", []))


def __getattr__(name: str) -> Any:
    # SPECS = CORE_SPECS + NN_SPECS, resolved when first asked for (see nn_specs).
    if name == "SPECS":
        return CORE_SPECS + nn_specs()
    raise AttributeError(name)
