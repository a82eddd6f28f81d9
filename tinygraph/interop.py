"""numpy interoperability: numpy's ufuncs and functions called on nodes run tinygraph's ops.

Node implements NEP 13 (__array_ufunc__) and NEP 18 (__array_function__) through this module, so
the notes' numpy code runs on nodes unchanged and records the graph:

    f = lambda x: 1.0 / (1.0 + np.exp(-x))
    h1 = f(np.dot(W1, x) + b1)          # W1, b1 nodes, x an array: h1 is a node

The two tables below are the whole mapping from numpy callables to ops (ops.py). A numpy
function that only reads values (np.shape, np.argmax, np.allclose, comparisons...) runs on the
nodes' data; anything else raises a TinygraphError naming the numpy function and the nearest
tinygraph op. numpy never gets to build an object array of nodes: np.asarray(node) refuses a node
that requires a gradient (as PyTorch's .numpy() does) and gives a copy of a constant's data.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from . import engine, ops
from .engine import Node
from .errors import DTypeError, GraphError

_NOVALUE = getattr(np, "_NoValue", None)


def _unsupported(what: str, value: Any) -> bool:
    if what == "out" and isinstance(value, tuple):  # numpy passes out as a tuple
        return any(v is not None for v in value)
    return value is not None and value is not _NOVALUE and value is not False


def _refuse(fname: str, **given: Any) -> None:
    """Refuse numpy arguments tinygraph cannot honour on nodes (out=, dtype=, where=...)."""
    for k, v in given.items():
        if k == "keepdims" or k == "axis":
            continue
        if _unsupported(k, v) and not (k == "where" and v is True):
            hint = ("a node's data cannot be written in place; use the returned node"
                    if k == "out" else "cast the data first, or leave it to the node's dtype"
                    if k == "dtype" else "not supported on nodes")
            raise DTypeError(f"np.{fname}(..., {k}=...) on a Node: {hint}")


# --- ufuncs: numpy ufunc -> function on its inputs (nodes, numbers, arrays) ---------------------

UFUNCS: dict[Any, Callable[..., Any]] = {
    np.add: ops.add,
    np.subtract: ops.sub,
    np.multiply: ops.mul,
    np.true_divide: ops.div,  # np.divide is np.true_divide
    np.power: ops.pow,
    np.negative: ops.neg,
    np.positive: lambda x: x,
    np.absolute: ops.abs,  # np.abs
    np.fabs: ops.abs,
    np.exp: ops.exp,
    np.log: ops.log,
    np.sqrt: ops.sqrt,
    np.tanh: ops.tanh,
    np.square: lambda x: ops.mul(x, x),
    np.reciprocal: lambda x: ops.div(1.0, x),
    np.maximum: ops.maximum,
    np.minimum: ops.minimum,
    np.matmul: ops.matmul,
}

# ufunc.reduce on a node: the reduction op of the same meaning
REDUCES: dict[Any, Callable[..., Any]] = {np.add: ops.sum, np.maximum: ops.max,
                                          np.minimum: ops.min}

# ufuncs whose result has no gradient (booleans, signs): computed on the data, like x < 0
DATA_UFUNCS = {np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
               np.isfinite, np.isnan, np.isinf, np.signbit, np.sign}

NEAREST = {
    "exp2": "exp(x * log(2))", "expm1": "exp(x) - 1", "log1p": "log(1 + x)",
    "log2": "log(x) / log(2)", "log10": "log(x) / log(10)", "logaddexp": "logsumexp",
    "logaddexp2": "logsumexp", "cbrt": "x ** (1/3)", "float_power": "pow (x ** y)",
    "sinh": "(exp(x) - exp(-x)) / 2", "cosh": "(exp(x) + exp(-x)) / 2", "arctanh": "log",
    "fmax": "maximum", "fmin": "minimum", "clip": "clip", "divide": "div",
    "prod": "exp(sum(log(x))) for positive x, or a product of nodes", "linalg.norm":
    "sqrt(sum(x * x))", "inner": "dot", "vdot": "dot", "tensordot": "dot or matmul",
    "einsum": "matmul", "cumsum": "sum", "var": "mean((x - mean(x)) ** 2)",
    "std": "sqrt(mean((x - mean(x)) ** 2))", "average": "mean", "copy": "node.detach()",
    "hstack": "concat", "vstack": "concat", "column_stack": "stack", "ptp": "max - min",
    "sort": "getitem with np.argsort(node.data)", "tile": "concat", "repeat": "getitem",
}


def _nearest(name: str) -> str:
    if name in NEAREST:
        return f"the nearest tinygraph op: {NEAREST[name]}"
    if any(name.startswith(p) for p in ("sin", "cos", "tan", "arc", "deg", "rad", "hypot")):
        return ("tinygraph has no trigonometric ops; define one with tg.primitive(name, forward, "
                "vjp)")
    return ("tinygraph has no op for it; compute on node.data (no gradient) or define one with "
            "tg.primitive(name, forward, vjp)")


def _no_op(name: str, args: Any) -> DTypeError:
    who = ", ".join(a.describe() for a in _nodes_in(args)) or "a Node"
    return DTypeError(f"np.{name} on {who}: {_nearest(name)}")


def _nodes_in(args: Any) -> list[Node]:
    out: list[Node] = []
    for a in args:
        if isinstance(a, Node):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(_nodes_in(a))
    return out


def _read(x: Any, what: str) -> Any:
    """_values(x) for a result computed outside the graph: the engine's value hook sees each
    node first (tg.jit's tracing refuses values that would be frozen into compiled code)."""
    hook = engine._value_hook
    if hook is not None:
        for n in _nodes_in(x if isinstance(x, (list, tuple)) else (x,)):
            hook(n, what)
    return _values(x)


def _values(x: Any) -> Any:
    """x with every node replaced by its data (lists and tuples looked into)."""
    if isinstance(x, Node):
        return x._data
    if isinstance(x, (list, tuple)):
        return type(x)(_values(v) for v in x)
    return x


def array_ufunc(ufunc: Any, method: str, inputs: tuple, kwargs: dict) -> Any:
    """Node.__array_ufunc__: run the tinygraph op for a numpy ufunc called on nodes."""
    if method == "__call__" and not kwargs:  # array + node, np.exp(node): the common case
        f = UFUNCS.get(ufunc)
        if f is not None:
            return f(*inputs)
    name = ufunc.__name__
    if ufunc in DATA_UFUNCS and method == "__call__":
        if "out" in kwargs:
            _refuse(name, out=kwargs["out"])
        return getattr(ufunc, method)(*_read(inputs, f"np.{name}"), **kwargs)
    if method == "__call__":
        f = UFUNCS.get(ufunc)
        if f is None:
            raise _no_op(name, inputs)
        _refuse(name, **kwargs)
        return f(*inputs)
    if method == "reduce" and ufunc in REDUCES:
        out = kwargs.pop("out", None)
        _refuse(f"{name}.reduce", out=out, dtype=kwargs.pop("dtype", None),
                initial=kwargs.pop("initial", None), where=kwargs.pop("where", True))
        axis = kwargs.pop("axis", 0)
        if kwargs.keys() - {"keepdims"}:
            raise DTypeError(f"np.{name}.reduce: arguments {sorted(kwargs)} are not supported on "
                             "nodes")
        return REDUCES[ufunc](inputs[0], axis, bool(kwargs.get("keepdims", False)))
    raise _no_op(f"{name}.{method}", inputs)


# --- numpy functions (NEP 18): numpy function -> implementation with numpy's signature ----------


def _sum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False,
         initial: Any = None, where: Any = True) -> Node:
    _refuse("sum", dtype=dtype, out=out, initial=initial, where=where)
    return ops.sum(a, axis, bool(keepdims))


def _mean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False,
          *, where: Any = True) -> Node:
    _refuse("mean", dtype=dtype, out=out, where=where)
    return ops.mean(a, axis, bool(keepdims))


def _reduction(f: Callable[..., Node], name: str) -> Callable[..., Node]:
    def run(a: Any, axis: Any = None, out: Any = None, keepdims: Any = False,
            initial: Any = None, where: Any = True) -> Node:
        _refuse(name, out=out, initial=initial, where=where)
        return f(a, axis, bool(keepdims))

    return run


def _dot(a: Any, b: Any, out: Any = None) -> Node:
    _refuse("dot", out=out)
    return ops.dot(a, b)


def _outer(a: Any, b: Any, out: Any = None) -> Node:
    _refuse("outer", out=out)
    return ops.mul(ops.reshape(a, (-1, 1)), ops.reshape(b, (1, -1)))


def _where(condition: Any, x: Any = None, y: Any = None) -> Node:
    if x is None or y is None:
        raise DTypeError("np.where(condition) on a Node: gives indices, not values; use "
                         "np.nonzero(node.data)")
    return ops.where(np.asarray(_read(condition, "np.where's condition")), x, y)


def _number_or_none(v: Any) -> bool:
    return v is None or v is _NOVALUE or (np.ndim(_values(v)) == 0 and not isinstance(v, Node))


def _clip(a: Any, a_min: Any = _NOVALUE, a_max: Any = _NOVALUE, out: Any = None, *,
          min: Any = _NOVALUE, max: Any = _NOVALUE, **kwargs: Any) -> Node:  # noqa: A002
    _refuse("clip", out=out, **kwargs)
    lo = a_min if a_min is not _NOVALUE else min
    hi = a_max if a_max is not _NOVALUE else max
    lo = None if lo is _NOVALUE else lo
    hi = None if hi is _NOVALUE else hi
    if _number_or_none(lo) and _number_or_none(hi):
        return ops.clip(a, lo, hi)
    # array or node bounds: elementwise, as max(lo, min(x, hi))
    x = a if hi is None else ops.minimum(a, hi)
    return x if lo is None else ops.maximum(x, lo)


def _concatenate(arrays: Any, axis: Any = 0, out: Any = None, dtype: Any = None,
                 casting: Any = None) -> Node:
    _refuse("concatenate", out=out, dtype=dtype)
    if axis is None:
        return ops.concat([ops.reshape(a, -1) for a in arrays], 0)
    return ops.concat(list(arrays), axis)


def _stack(arrays: Any, axis: Any = 0, out: Any = None, *, dtype: Any = None,
           casting: Any = None) -> Node:
    _refuse("stack", out=out, dtype=dtype)
    return ops.stack(list(arrays), axis)


def _reshape(a: Any, shape: Any = None, order: Any = "C", *, newshape: Any = None,
             copy: Any = None) -> Node:
    if order != "C":
        raise DTypeError(f"np.reshape(..., order={order!r}) on a Node: only order='C'")
    return ops.reshape(a, shape if shape is not None else newshape)


def _transpose(a: Any, axes: Any = None) -> Node:
    return ops.transpose(a, axes)


def _swapaxes(a: Any, axis1: int, axis2: int) -> Node:
    n = ops._node(a, "swapaxes")
    axes = list(range(n.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return ops.transpose(n, tuple(axes))


def _squeeze(a: Any, axis: Any = None) -> Node:
    n = ops._node(a, "squeeze")
    ref = np.empty(n.shape, dtype=np.bool_).squeeze(axis)
    return ops.reshape(n, ref.shape) if n.ndim else n


def _expand_dims(a: Any, axis: Any) -> Node:
    n = ops._node(a, "expand_dims")
    return ops.reshape(n, np.expand_dims(np.empty(n.shape, dtype=np.bool_), axis).shape)


def _ravel(a: Any, order: Any = "C") -> Node:
    return ops.reshape(a, -1)


FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.sum: _sum,
    np.mean: _mean,
    np.max: _reduction(ops.max, "max"),
    np.min: _reduction(ops.min, "min"),
    np.dot: _dot,
    np.outer: _outer,
    np.where: _where,
    np.clip: _clip,
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.reshape: _reshape,
    np.transpose: _transpose,
    np.swapaxes: _swapaxes,
    np.squeeze: _squeeze,
    np.expand_dims: _expand_dims,
    np.ravel: _ravel,
}
for _alias in ("amax", "amin"):  # the same functions as np.max / np.min where they exist
    if getattr(np, _alias, None) is not None and getattr(np, _alias) not in FUNCTIONS:
        FUNCTIONS[getattr(np, _alias)] = FUNCTIONS[np.max if _alias == "amax" else np.min]

# numpy functions whose result has no gradient (shapes, indices, booleans): run on the data
DATA_FUNCTIONS = {np.shape, np.ndim, np.size, np.argmax, np.argmin, np.argsort, np.allclose,
                  np.isclose, np.array_equal, np.any, np.all, np.count_nonzero, np.nonzero}
SHAPE_FUNCTIONS = {np.shape, np.ndim, np.size}  # of these, the ones that read no values


def array_function(func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
    """Node.__array_function__: run the tinygraph op for a numpy function called on nodes."""
    f = FUNCTIONS.get(func)
    if f is not None:
        return f(*args, **kwargs)
    if func in DATA_FUNCTIONS:
        # a node's shape is fixed in a compiled function: only values go through the hook
        vals = _values(args) if func in SHAPE_FUNCTIONS else _read(args, f"np.{func.__name__}")
        return func(*vals, **{k: _values(v) for k, v in kwargs.items()})
    mod = getattr(func, "__module__", "") or ""
    name = func.__name__ if not mod.startswith("numpy.linalg") else f"linalg.{func.__name__}"
    raise _no_op(name, args)


# --- np.asarray(node), np.array(node) -----------------------------------------------------------


def to_array(node: Node, dtype: Any = None, copy: Any = None) -> np.ndarray:
    """Node.__array__: a constant's data (a copy, as an ndarray); refused for a node that
    requires a gradient, like PyTorch's .numpy(): the array would silently leave the graph."""
    if node.requires_grad:
        raise GraphError(
            f"np.asarray/np.array of {node.describe()}: it requires a gradient, and an array of "
            "its values would silently leave the graph. Use node.data (its values, read-only), "
            "node.numpy() (a copy) or node.detach(); for a list of nodes, tg.stack(nodes) makes "
            "one node and the builtin sum(nodes) adds them."
        )
    d = _read(node, "np.asarray")
    if copy is False:
        return np.asarray(d, dtype=dtype)
    return np.array(d, dtype=dtype if dtype is not None else node.dtype)


# Node's numpy protocol methods (defined in its class body) dispatch through this module.
engine._interop = sys.modules[__name__]
