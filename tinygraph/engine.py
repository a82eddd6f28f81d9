"""The engine core: the Node, primitives, and reverse-mode backward.

A Node holds a Python float (scalar level) or a float ndarray of at least one dimension (tensor
level). A primitive is a forward function plus one vector-Jacobian product (VJP) per input; the
table of them lives in ops.py. This module knows nothing about any particular op: it applies
primitives, undoes broadcasting, and walks the graph backwards in topological order, iteratively.
backward(create_graph=True) walks it with the same rules called on nodes, which records the pass
as ops: its gradients are nodes, differentiable again (tinygraph.functional builds on it).
"""

from __future__ import annotations

import contextvars
import gc
import itertools
import math
import operator
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ._check import check_bool, check_str, show
from .errors import (
    AnomalyError,
    ArgTypeError,
    AxisError,
    DTypeError,
    GraphError,
    IndexOutOfRange,
    InputError,
    ReadOnlyError,
    ShapeError,
)

Data = float | np.ndarray

# The modes (grad enabled, scope path, anomaly detection) belong to the running thread: one
# context variable holding an immutable (grad, scope, anomaly) tuple (each thread has its own
# context). A new thread starts from the defaults: grad on, no scope, no anomaly detection.
_DEFAULT_MODES = (True, None, False)
_MODES: contextvars.ContextVar[tuple[bool, str | None, bool]] = contextvars.ContextVar(
    "tinygraph_modes", default=_DEFAULT_MODES)
_modes = _MODES.get
# Mode blocks open in any thread right now. Node creation reads the context variable only when
# this is non-zero: while it is 0 every thread has the defaults, and a plain graph pays one
# global read per node instead of a ContextVar.get. A thread counts its block in before setting
# its modes and out after restoring them, so its own reads never see a stale 0.
_open_modes = 0
_open_lock = threading.Lock()


def _count_mode(k: int) -> None:
    global _open_modes
    with _open_lock:
        _open_modes += k


# Called as _value_hook(node, what) just before a node's value leaves the graph as a Python value
# or an array (float(), .item(), reading .data, comparisons...); tg.jit's tracing sets it to
# refuse them. None whenever no trace is running: each of those methods pays one global read.
_value_hook: Callable[[Any, str], None] | None = None


def value_out(node: Any, what: str) -> None:
    """Tell the value hook that tinygraph is handing node's value to the user as a Python value
    (an accuracy, a report): refused while tracing, like float(node) in user code."""
    if _value_hook is not None:
        _value_hook(node, what, True)


def set_value_hook(hook: Callable[..., None] | None) -> None:
    """Install (or with None remove) the function called before a node's value is read out."""
    global _value_hook
    _value_hook = hook


# Called as _event_hook(kind, obj, *details) when a reverse pass ("backward", root, grad,
# create_graph) or an optimizer's "step" / "zero_grad" starts, when a pass has stored its
# gradients ("backward_done", root), when an op makes a constant ("constant", node, prim, attrs,
# a, b, more) and when a node is copied into a new leaf ("copy", new, source). tg.jit's tracing
# sets it to record them, so that a compiled function replays them. None when no trace runs.
_event_hook: Callable[..., None] | None = None


def set_event_hook(hook: Callable[..., None] | None) -> None:
    """Install (or with None remove) the function told of backward passes and optimizer steps."""
    global _event_hook
    _event_hook = hook


def notify(kind: str, obj: Any, *details: Any) -> None:
    """Tell the event hook, if any, that `kind` starts on obj (optimizers call it)."""
    if _event_hook is not None:
        _event_hook(kind, obj, *details)


# One clock ticks at every node creation and every replacement of a node's .data. A node's
# parents were made before it (lower _ctime), which gives backward its order; a parent whose
# _mtime is later than a child's _ctime changed after the child used it (a stale graph).
_clock = itertools.count(1)

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_new = object.__new__
_F64 = np.dtype(np.float64)
_NDARRAY = np.ndarray


class Primitive:
    """An op with its forward and its vector-Jacobian products, one per input.

    fwd(*xs, **attrs) computes the output with numpy (arrays, or floats via numpy scalars);
    scalar(*xs, **attrs), if given, computes it for Python floats without numpy. vjps[i](g, out,
    *xs, **attrs) returns the gradient for input i given the output's gradient g. A VJP may return
    a gradient with the output's broadcast shape: the engine sums it back to the input's shape.
    Variadic primitives (concat) give vjp(i, g, out, xs, **attrs) instead of vjps, with the
    inputs as one tuple (unpacking n inputs for each of n calls would cost O(n^2)).
    With saves=True, fwd returns (output, saved) and the VJPs get saved=... among the attributes:
    what the forward computed anyway and the backward needs (the softmax loss keeps its
    log-probabilities), kept with the node instead of recomputed.
    """

    __slots__ = ("name", "fwd", "scalar", "vjps", "vjp", "symbol", "builtin", "saves")

    def __init__(
        self,
        name: str,
        fwd: Callable[..., Any],
        vjps: tuple[Callable[..., Any], ...] = (),
        *,
        scalar: Callable[..., Any] | None = None,
        vjp: Callable[..., Any] | None = None,
        symbol: str | None = None,
        builtin: bool = False,
        saves: bool = False,
    ) -> None:
        if not vjps and vjp is None:
            raise GraphError(f"primitive {name!r}: give vjps (one per input) or vjp")
        self.name = name
        self.fwd = fwd
        self.scalar = scalar
        self.vjps = tuple(vjps) if vjps else None
        self.vjp = vjp
        self.symbol = symbol or name
        self.builtin = builtin
        self.saves = saves

    def __call__(self, *args: Any, **attrs: Any) -> Node:
        return apply(self, *args, **attrs)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


PRIMITIVES: dict[str, Primitive] = {}


def primitive(
    name: str,
    fwd: Callable[..., Any],
    *vjps: Callable[..., Any],
    scalar: Callable[..., Any] | None = None,
    symbol: str | None = None,
    saves: bool = False,
) -> Primitive:
    """Define a new differentiable op from its forward and one VJP per input.

    >>> cube = primitive("cube", lambda x: x**3, lambda g, out, x: g * 3 * x**2)
    >>> y = cube(Node(2.0)); y.backward()

    With saves=True the forward returns (output, saved) and each VJP receives saved=... (what
    the backward would otherwise recompute). The engine checks what each VJP returns (shape,
    dtype) and names the op when it is wrong.
    """
    check_str("primitive", "name", name, empty=False)
    for what, f in (("fwd", fwd), *((f"vjps[{i}]", v) for i, v in enumerate(vjps)),
                    ("scalar", scalar if scalar is not None else fwd)):
        if not callable(f):
            raise ArgTypeError(f"primitive {name!r}: {what} must be callable, got "
                               f"{type(f).__name__}")
    if name in PRIMITIVES and PRIMITIVES[name].builtin:
        raise GraphError(f"primitive {name!r}: a built-in op already has this name")
    prim = Primitive(name, fwd, vjps, scalar=scalar, symbol=symbol, saves=saves)
    PRIMITIVES[name] = prim
    return prim


# ---------------------------------------------------------------------------------------------
# Data validation
# ---------------------------------------------------------------------------------------------


def _bad_dtype(what: str, desc: str) -> DTypeError:
    return DTypeError(
        f"{what}: got {desc}; tinygraph holds real numbers (Python or numpy numbers and bools, "
        "lists of them, or int, bool, float32 or float64 arrays). Convert it first, e.g. with "
        ".astype(np.float64)."
    )


# numpy scalars that are numbers exactly like Python's (complex ones are not: no order, no VJP)
_NP_NUMBERS = (np.floating, np.integer, np.bool_)


def as_data(data: Any, what: str = "Node") -> Data:
    """Turn a number, list or array into what a Node holds: a Python float or a float ndarray.

    Python and numpy numbers and bools become Python floats; int and bool arrays become float64
    (a node holds floats: Node(np.arange(3)) is a float64 vector).
    """
    t = type(data)
    if t is float:
        return data
    if t is int or t is bool:
        return _int_float(data, what)
    if isinstance(data, np.ndarray):
        kind = data.dtype.kind
        if kind in "biu":
            data = data.astype(np.float64)
        elif kind != "f" or data.dtype.itemsize not in (4, 8):
            raise _bad_dtype(what, f"an array of dtype {data.dtype}")
        if isinstance(data, np.ma.MaskedArray):  # its mask would be dropped without a word
            raise DTypeError(f"{what}: got a masked array; a node holds plain values, so pass "
                             "x.filled(value) (or x.compressed() for the unmasked ones)")
        if data.ndim == 0:
            return float(data)
        # native byte order: a '>f8' array is float64 to every op, optimizer and saved file
        arr = (np.array(data, copy=True) if data.dtype.isnative
               else data.astype(data.dtype.newbyteorder("=")))
        arr.flags.writeable = False
        return arr
    if isinstance(data, np.generic):
        if isinstance(data, _NP_NUMBERS):
            return float(data)
        raise _bad_dtype(what, f"a numpy {type(data).__name__}")
    if isinstance(data, (float, int)):  # float and int subclasses
        return _int_float(data, what) if isinstance(data, int) else float(data)
    if isinstance(data, (list, tuple)):
        if any(isinstance(x, Node) for x in data):
            raise DTypeError(f"{what}: got a list of Nodes; tg.stack(nodes) makes one tensor node "
                             "of them (and keeps the graph)")
        try:
            arr = np.array(data)
        except ValueError as e:  # ragged lists
            raise ShapeError(f"{what}: cannot make an array from this list ({e})") from None
        if arr.dtype.kind in "biu" or (arr.dtype.kind == "f" and arr.size == 0):
            arr = arr.astype(np.float64)
        if arr.dtype.kind != "f":
            raise _bad_dtype(what, f"a list that makes an array of dtype {arr.dtype}")
        return as_data(arr, what)
    name = "None" if data is None else type(data).__name__
    raise _bad_dtype(what, f"a value of type {name}")


def _int_float(n: int, what: str) -> float:
    try:
        return float(n)
    except OverflowError:  # beyond float64: not inf, as numpy would make it, but an error
        raise InputError(f"{what}: an integer of {n.bit_length()} bits is too large for a "
                         "float (at most 1024 bits)") from None


def _shape(d: Data) -> tuple[int, ...]:
    return () if type(d) is float else d.shape


# ---------------------------------------------------------------------------------------------
# The Node
# ---------------------------------------------------------------------------------------------


class Node:
    """A value in the graph: a Python float or a float ndarray, with its gradient after backward.

    Node(data, name=None, requires_grad=True, *, label=None). Numbers, bools, lists and arrays
    mixed into operators are wrapped as constants (requires_grad=False), for which no gradient
    work is done. label= is micrograd's name for name=.
    """

    # Parents live in slots _a, _b (and _more for three or more) rather than in a tuple: one
    # GC-tracked object per node instead of two halves the cyclic collector's work on big graphs.
    __slots__ = ("_data", "grad", "name", "scope", "requires_grad", "_a", "_b", "_more", "_prim",
                 "attrs", "_ctime", "_mtime", "_site")
    # == and != are elementwise (like <), so hashing stays by identity, as in PyTorch: nodes are
    # dict keys and set members. Nothing in tinygraph compares nodes with ==.
    __hash__ = object.__hash__

    def __init__(self, data: Any, name: str | None = None, requires_grad: bool = True, *,
                 label: str | None = None) -> None:
        if label is not None and label != "":  # micrograd's Value(..., label='') default
            if name is not None and name != label:
                raise ArgTypeError(f"Node: name={name!r} and label={label!r} differ; give one")
            name = label
        check_str("Node", "name", name, optional=True)
        check_bool("Node", "requires_grad", requires_grad)
        src = data if isinstance(data, Node) else None
        if src is not None:
            data = src._data
        _make(self, None, as_data(data, f"Node({name!r})" if name else "Node"), None, None,
              None, None)
        self.requires_grad = bool(requires_grad)
        self.name = name
        if src is not None and _event_hook is not None:
            _event_hook("copy", self, src)  # tg.jit's trace: a copy of a value it recomputes

    # --- data, with a modification time so that backward can spot a stale graph --------------
    @property
    def data(self) -> Data:
        """The value: a Python float or a read-only float ndarray.

        An array comes as a read-only view (a DataView) whose in-place operators give the node
        new data, so that p.data -= lr * p.grad works like p.data = p.data - lr * p.grad;
        writing into it (p.data[0] = 1) raises a ReadOnlyError naming the node.
        """
        if _value_hook is not None:
            _value_hook(self, "reading .data")
        d = self._data
        if type(d) is float:
            return d
        v = d.view(DataView)
        v._owner = self
        v._whole = True
        return v

    @data.setter
    def data(self, value: Any) -> None:
        if self._mtime < 0:
            raise _frozen(self)
        if _value_hook is not None:
            _value_hook(self, "assigning .data")
        if type(value) is DataView and value._owner is self and value.base is self._data:
            return  # p.data -= v: DataView's operator has already replaced the data
        new = as_data(value, f"{self.describe()}.data")
        old = self._data
        if type(old) is not float and _shape(new) != old.shape:
            raise ShapeError(f"data: new value of shape {_shape(new)} for {self.describe()}")
        if type(old) is float and type(new) is not float:
            raise ShapeError(f"data: new value of shape {_shape(new)} for scalar {self.describe()}")
        self._data = new
        self._mtime = next(_clock)

    @property
    def parents(self) -> tuple[Node, ...]:
        """The nodes this one was computed from, in operand order (empty for a leaf)."""
        if self._more is not None:
            return self._more
        a = self._a
        if a is None:
            return ()
        b = self._b
        return (a,) if b is None else (a, b)

    @parents.setter
    def parents(self, ps: Any) -> None:
        # Fixed at creation: backward's order (parents are older than their children) and the
        # absence of cycles both rest on it.
        raise GraphError(
            f"parents: the parents of {self.describe()} are fixed when it is made; build a new "
            "node from the operands you want instead")

    # --- descriptive ------------------------------------------------------------------------
    @property
    def op(self) -> str | None:
        """The name of the op that made this node; None for a leaf."""
        return None if self._prim is None else self._prim.name

    @property
    def primitive(self) -> Primitive | None:
        """The primitive that made this node (None for a leaf)."""
        return self._prim

    # These read _data, not the data property: ops ask them on every call.
    @property
    def shape(self) -> tuple[int, ...]:
        d = self._data
        return () if type(d) is float else d.shape

    @property
    def ndim(self) -> int:
        d = self._data
        return 0 if type(d) is float else d.ndim

    @property
    def size(self) -> int:
        d = self._data
        return 1 if type(d) is float else d.size

    @property
    def dtype(self) -> np.dtype:
        d = self._data
        return _F64 if type(d) is float else d.dtype

    @property
    def is_scalar(self) -> bool:
        return type(self._data) is float

    @property
    def label(self) -> str | None:
        """Scope-qualified name, e.g. 'L1.n2.w0'; None if the node has no name."""
        if self.name is None:
            return None
        return f"{self.scope}.{self.name}" if self.scope else self.name

    def describe(self) -> str:
        """A short description for error messages: name, shape and dtype."""
        if self.name is not None:
            who = repr(self.label)
        elif self._prim is not None:
            who = f"the output of {self._prim.name}"
        else:
            who = "a constant" if not self.requires_grad else "an unnamed node"
        if type(self._data) is float:
            return f"{who} (scalar)"
        return f"{who} (shape {self._data.shape}, {self._data.dtype})"

    def __repr__(self) -> str:
        parts = [f"data={_short(self._data)}"]
        if self.grad is not None:
            parts.append(f"grad={_short(self.grad)}")
        if self.name is not None:
            parts.append(f"name={self.label!r}")
        if self._prim is not None:
            parts.append(f"op={self._prim.name!r}")
        if not self.requires_grad:
            parts.append("requires_grad=False")
        return f"Node({', '.join(parts)})"

    def item(self) -> float:
        """The value as a Python float (for a scalar or a one-element tensor)."""
        if _value_hook is not None:
            _value_hook(self, ".item()")
        d = self._data
        if type(d) is float:
            return d
        if d.size != 1:
            raise ShapeError(f"item: {self.describe()} has {d.size} elements, not one")
        return float(d.reshape(()))

    def numpy(self) -> np.ndarray:
        """A writable copy of the data as an array."""
        if _value_hook is not None:
            _value_hook(self, ".numpy()")
        return np.array(self._data, dtype=self.dtype)

    # --- Python conversions: one-element nodes only, like numpy arrays --------------------------
    def _one(self, what: str) -> float:
        if _value_hook is not None:
            _value_hook(self, what)
        d = self._data
        if type(d) is float:
            return d
        if d.size != 1:
            raise ShapeError(
                f"{what}: the truth value or number of {self.describe()} is ambiguous: it has "
                f"{d.size} elements, not one (as numpy says: the truth value of an array with "
                "more than one element is ambiguous; use .data.any() or .data.all())"
            )
        return float(d.reshape(()))

    def __bool__(self) -> bool:
        return bool(self._one("bool()"))

    def __float__(self) -> float:
        return self._one("float()")

    def __int__(self) -> int:
        return int(self._one("int()"))

    def __format__(self, spec: str) -> str:
        if not spec:
            return str(self)
        return format(self._one(f"format(..., {spec!r})"), spec)

    def __len__(self) -> int:
        if type(self._data) is float:
            raise ArgTypeError(f"len() of a scalar node: {self.describe()}")
        return len(self._data)

    def __iter__(self) -> Iterator[Node]:
        if type(self._data) is float:
            raise ArgTypeError(f"iteration over a scalar node: {self.describe()}")
        return (self[i] for i in range(len(self._data)))

    def __setitem__(self, key: Any, value: Any) -> None:
        raise GraphError(
            f"setitem: {self.describe()} cannot be written in place (backward may still need it); "
            "build a new node instead, e.g. with where()"
        )

    # Comparisons, == and != included, give plain booleans/bool arrays (for masks and where()),
    # not nodes: nothing to differentiate. Hashing stays by identity (see __hash__ above).
    def __lt__(self, other: Any) -> Any:
        if _value_hook is not None:
            _value_hook(self, "comparison <")
        return self._data < _raw(other)

    def __le__(self, other: Any) -> Any:
        if _value_hook is not None:
            _value_hook(self, "comparison <=")
        return self._data <= _raw(other)

    def __gt__(self, other: Any) -> Any:
        if _value_hook is not None:
            _value_hook(self, "comparison >")
        return self._data > _raw(other)

    def __ge__(self, other: Any) -> Any:
        if _value_hook is not None:
            _value_hook(self, "comparison >=")
        return self._data >= _raw(other)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        if _value_hook is not None:
            _value_hook(self, "comparison ==")
        return self._data == _raw(other)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        if _value_hook is not None:
            _value_hook(self, "comparison !=")
        return self._data != _raw(other)

    # --- operators: one primitive each, from the op table ops.py binds into this module -------
    # (defined here rather than attached at import so that IDEs and type checkers see them; the
    # arithmetic ones call binary() and unary() directly: they are the hot path of scalar graphs)
    def __add__(self, other: Any) -> Node:
        return binary(_ADD, self, other)

    def __radd__(self, other: Any) -> Node:
        return binary(_ADD, other, self)

    def __sub__(self, other: Any) -> Node:
        return binary(_SUB, self, other)

    def __rsub__(self, other: Any) -> Node:
        return binary(_SUB, other, self)

    def __mul__(self, other: Any) -> Node:
        return binary(_MUL, self, other)

    def __rmul__(self, other: Any) -> Node:
        return binary(_MUL, other, self)

    def __truediv__(self, other: Any) -> Node:
        return binary(_DIV, self, other)

    # `with no_grad(): p -= lr * p.grad` (PyTorch's manual step) updates the parameter p, as
    # p.data -= ... does; anywhere else x -= y is x = x - y, a new node (micrograd's `out += w * x`
    # builds its graph so)
    def _update(self, ufunc: Any, other: Any) -> bool:
        if self._prim is not None or not self.requires_grad or is_grad_enabled():
            return False
        new = ufunc(self._data, _raw(other))
        if type(self._data) is not float and isinstance(new, np.ndarray):
            new = new.astype(self._data.dtype, copy=False)  # in place keeps the dtype
        self.data = new
        return True

    def __iadd__(self, other: Any) -> Node:
        return self if self._update(np.add, other) else binary(_ADD, self, other)

    def __isub__(self, other: Any) -> Node:
        return self if self._update(np.subtract, other) else binary(_SUB, self, other)

    def __imul__(self, other: Any) -> Node:
        return self if self._update(np.multiply, other) else binary(_MUL, self, other)

    def __itruediv__(self, other: Any) -> Node:
        return self if self._update(np.true_divide, other) else binary(_DIV, self, other)

    def __rtruediv__(self, other: Any) -> Node:
        return binary(_DIV, other, self)

    def __pow__(self, other: Any) -> Node:
        return binary(_POW, self, other)

    def __rpow__(self, other: Any) -> Node:
        return binary(_POW, other, self)

    def __matmul__(self, other: Any) -> Node:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Node:
        return _ops.matmul(other, self)

    def __neg__(self) -> Node:
        return unary(_NEG, self)

    def __pos__(self) -> Node:
        return self

    def __abs__(self) -> Node:
        return unary(_ABS, self)

    def __getitem__(self, index: Any) -> Node:
        return _ops.getitem(self, index)

    @property
    def T(self) -> Node:  # noqa: N802 - numpy's name
        """The transpose (axes reversed)."""
        return _ops.transpose(self)

    # --- ops as methods (the functions of the same name in tinygraph) -------------------------
    add, sub, mul, div, pow = __add__, __sub__, __mul__, __truediv__, __pow__  # noqa: A003

    def maximum(self, other: Any) -> Node:
        return _ops.maximum(self, other)

    def minimum(self, other: Any) -> Node:
        return _ops.minimum(self, other)

    def exp(self) -> Node:
        return unary(_EXP, self)

    def log(self) -> Node:
        return unary(_LOG, self)

    def sqrt(self) -> Node:
        return unary(_SQRT, self)

    def abs(self) -> Node:
        return unary(_ABS, self)

    def tanh(self) -> Node:
        return unary(_TANH, self)

    def sigmoid(self) -> Node:
        return unary(_SIGMOID, self)

    def relu(self) -> Node:
        return unary(_RELU, self)

    def softplus(self) -> Node:
        return unary(_SOFTPLUS, self)

    def leaky_relu(self, alpha: float = 0.01) -> Node:
        return _ops.leaky_relu(self, alpha)

    def log_sigmoid(self) -> Node:
        return _ops.log_sigmoid(self)

    def clip(self, lo: float | None = None, hi: float | None = None) -> Node:
        return _ops.clip(self, lo, hi)

    def sum(self, axis: Any = None, keepdims: bool = False) -> Node:
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Node:
        return _ops.mean(self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Node:
        return _ops.max(self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Node:
        return _ops.min(self, axis, keepdims)

    def logsumexp(self, axis: Any = None, keepdims: bool = False) -> Node:
        return _ops.logsumexp(self, axis, keepdims)

    def log_softmax(self, axis: int = -1) -> Node:
        return _ops.log_softmax(self, axis)

    def softmax(self, axis: int = -1) -> Node:
        return _ops.softmax(self, axis)

    def reshape(self, *shape: Any) -> Node:
        return _ops.reshape(self, *shape)

    def transpose(self, axes: Any = None) -> Node:
        return _ops.transpose(self, axes)

    def matmul(self, other: Any) -> Node:
        return _ops.matmul(self, other)

    def dot(self, other: Any) -> Node:
        return _ops.dot(self, other)

    def linear(self, w: Any, b: Any) -> Node:
        return _ops.linear(self, w, b)

    # --- numpy: its ufuncs and functions called on a node run tinygraph's ops (interop.py) ----
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _interop.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _interop.array_function(func, types, args, kwargs)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if _value_hook is not None:
            _value_hook(self, "numpy conversion")
        return _interop.to_array(self, dtype, copy)

    # --- graph ------------------------------------------------------------------------------
    def detach(self) -> Node:
        """A constant leaf with the same data, cut from the graph."""
        n = Node.__new__(Node)
        _make(n, None, self._data, None, None, None, None)
        n.name = self.name
        if _event_hook is not None:
            _event_hook("copy", n, self)  # tg.jit's trace: a copy of a value it recomputes
        return n

    def zero_grad(self) -> None:
        """Forget this node's gradient."""
        self.grad = None

    def backward(self, grad: Any = None, create_graph: bool = False,
                 retain_graph: bool | None = None) -> None:
        """Add d(self)/d(node) * grad into .grad of every node self depends on.

        Each call adds its own pass into .grad (intermediates included), so calling it twice on the
        same graph gives exactly twice the gradients. grad defaults to 1.0 for a scalar root.
        With create_graph=True the pass itself is recorded as tinygraph ops: each .grad is then a
        Node that can be differentiated again (second derivatives, Hessian-vector products).
        retain_graph is PyTorch's spelling, accepted and not needed: the graph is always kept.
        """
        backward(self, grad, create_graph)


def _raw(x: Any) -> Any:
    return x._data if isinstance(x, Node) else x


# Filled by ops.py (the op table) and interop.py when they are imported: Node's operators and
# methods above dispatch through these, which keeps this module free of any particular op.
_ops: Any = None
_interop: Any = None
_ADD: Primitive
_SUB: Primitive
_MUL: Primitive
_DIV: Primitive
_POW: Primitive
_NEG: Primitive
_ABS: Primitive
_EXP: Primitive
_LOG: Primitive
_SQRT: Primitive
_TANH: Primitive
_SIGMOID: Primitive
_RELU: Primitive
_SOFTPLUS: Primitive


def _bind_ops(ops: Any) -> None:
    """Called once by ops.py with itself: the primitives Node's operators and methods use."""
    global _ops, _ADD, _SUB, _MUL, _DIV, _POW, _NEG, _ABS, _EXP, _LOG, _SQRT, _TANH, _SIGMOID
    global _RELU, _SOFTPLUS
    _ops = ops
    _ADD, _SUB, _MUL, _DIV, _POW = ops.ADD, ops.SUB, ops.MUL, ops.DIV, ops.POW
    _NEG, _ABS, _EXP, _LOG, _SQRT = ops.NEG, ops.ABS, ops.EXP, ops.LOG, ops.SQRT
    _TANH, _SIGMOID, _RELU, _SOFTPLUS = ops.TANH, ops.SIGMOID, ops.RELU, ops.SOFTPLUS


# ---------------------------------------------------------------------------------------------
# node.data for tensor nodes: a read-only view whose in-place operators assign new data
# ---------------------------------------------------------------------------------------------


class DataView(np.ndarray):
    """What node.data returns for a tensor node: a read-only view of the node's array.

    An ndarray in every way but two. Its in-place operators (+=, -=, *=, /=, **=) give the node
    new data, as `p.data = p.data - v` would: `p.data -= lr * p.grad` works at both levels, keeps
    the node's dtype, and graphs built before it are stale. Writing into it (`p.data[0] = 1`,
    `out=p.data`) raises a ReadOnlyError that names the node. numpy's results on it are plain
    arrays, and so are its copies (.copy(), .astype()). tinygraph itself reads node._data.
    """

    # _owner: the node, for in-place updates and error messages; _whole: True only on the view
    # node.data returns, not on slices of it
    __slots__ = ("_owner", "_whole")

    def __array_finalize__(self, obj: Any) -> None:
        # slices, reshapes, .T: still read-only, still naming the node
        self._owner = getattr(obj, "_owner", None)
        self._whole = False

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # Every ufunc on a DataView comes through here (g += p.data in an optimizer loop):
        # plain loops and type() tests keep the detour to about a microsecond.
        if kwargs:
            out = kwargs.get("out")
            if out:
                for o in out:
                    if isinstance(o, DataView) and not o.flags.writeable:
                        raise _read_only(o, f"np.{ufunc.__name__}(..., out=...)")
                kwargs["out"] = tuple([_plain(o) for o in out])
        args = [x.view(_NDARRAY) if isinstance(x, DataView) else x for x in inputs]
        if method == "__call__":
            return ufunc(*args, **kwargs)
        return getattr(ufunc, method)(*args, **kwargs)

    def _inplace(self, ufunc: Any, other: Any, symbol: str) -> Any:
        if self.flags.writeable:  # a copy that kept this type (np.concatenate...): plain numpy
            ufunc(_plain(self), _raw(other), out=_plain(self))
            return self
        owner = self._owner
        if owner is None or not self._whole or self.base is not owner._data:
            raise _read_only(self, f"{symbol}= on a part or an earlier value of it")
        new = ufunc(_plain(self), _raw(other))
        if new.dtype != self.dtype:  # in place keeps the dtype (float32 stays float32)
            new = new.astype(self.dtype)
        replace_data(owner, new)
        return owner.data  # Python then assigns it back to owner.data: a no-op (see the setter)

    def __iadd__(self, other: Any) -> Any:
        return self._inplace(np.add, other, "+")

    def __isub__(self, other: Any) -> Any:
        return self._inplace(np.subtract, other, "-")

    def __imul__(self, other: Any) -> Any:
        return self._inplace(np.multiply, other, "*")

    def __itruediv__(self, other: Any) -> Any:
        return self._inplace(np.true_divide, other, "/")

    def __ipow__(self, other: Any) -> Any:
        return self._inplace(np.power, other, "**")

    def __setitem__(self, key: Any, value: Any) -> None:
        if not self.flags.writeable:
            raise _read_only(self, "item assignment")
        np.ndarray.__setitem__(self, key, value)

    def fill(self, value: Any) -> None:
        if not self.flags.writeable:
            raise _read_only(self, "fill()")
        np.ndarray.fill(self, value)

    def copy(self, order: Any = "C") -> np.ndarray:  # type: ignore[override]
        return _plain(self).copy(order)

    def astype(self, *args: Any, **kwargs: Any) -> np.ndarray:  # type: ignore[override]
        return _plain(self).astype(*args, **kwargs)

    def __copy__(self) -> np.ndarray:
        return _plain(self).copy()

    def __deepcopy__(self, memo: Any) -> np.ndarray:
        return _plain(self).copy()

    def __reduce__(self) -> Any:
        return _plain(self).copy().__reduce__()


def _plain(x: Any) -> Any:
    return x.view(np.ndarray) if isinstance(x, DataView) else x


def _read_only(v: DataView, what: str) -> ReadOnlyError:
    who = v._owner.describe() if v._owner is not None else "a node"
    return ReadOnlyError(
        f"{what}: the data of {who} is read-only (a graph may still use it). Give the node new "
        "data instead: p.data = new, or p.data -= v (also +=, *=, /=); a graph built before "
        "then raises at backward()."
    )


def _short(d: Data) -> str:
    if type(d) is float:
        return f"{d:.6g}"
    if d.size <= 6:
        return np.array2string(d, precision=4, separator=", ")
    return f"<array {d.shape} {d.dtype}>"


def _site() -> str:
    """file:line of the first frame outside tinygraph's engine and ops (for anomaly reports)."""
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if os.path.dirname(os.path.abspath(fn)) != _PKG_DIR:
            return f"{fn}:{f.f_lineno}"
        f = f.f_back
    return "<unknown>"


_CONSTS: dict[float, Node] = {}


def _number(x: Any, what: str, like: Any = None) -> Node:
    """A constant node for an operand that is not a node; like is the other operand.

    Python numbers are shared through a small cache: a chain like x*1.0001 + 0.0001 repeated 10^6
    times then holds two constants instead of 2·10^6. Constants are immutable leaves, so sharing
    them is invisible to gradients (zero is not cached: 0.0 and -0.0 compare equal). numpy
    numbers and bools are numbers like Python's; int and bool arrays take like's float dtype.
    """
    t = type(x)
    if t is not float and t is not int:
        if not isinstance(x, _NUMBERS):
            if type(x) is np.ndarray and x.dtype.kind == "f":
                return const(x, what)
            return const(_promoted(x, _float_dtype((like,))), what)
        x = float(x)
    if x:
        n = _CONSTS.get(x)
        if n is None:
            if len(_CONSTS) >= 4096:
                _CONSTS.clear()
            n = _CONSTS[x] = const(x, what)
            n.scope = None
        return n
    return const(x, what)


_NUMBERS = (float, int, np.floating, np.integer, np.bool_)  # bool is an int


def _float_dtype(xs: Iterable[Any]) -> np.dtype:
    """The float dtype int and bool arrays take among operands xs: that of the float arrays
    among them (float32 stays float32, as in PyTorch), float64 when there are none."""
    dt = None
    for x in xs:
        d = x._data if isinstance(x, Node) else x
        if type(d) is np.ndarray or isinstance(d, np.ndarray):
            if d.dtype.kind == "f" and d.dtype.itemsize in (4, 8):
                dt = d.dtype if dt is None else np.promote_types(dt, d.dtype)
    return _F64 if dt is None else dt


def _promoted(x: Any, dtype: np.dtype) -> Any:
    """x with int and bool arrays (or lists of ints and bools) cast to dtype; the rest as is."""
    if isinstance(x, (list, tuple)) and x and not any(isinstance(v, Node) for v in x):
        try:
            arr = np.asarray(x)
        except ValueError:
            return x  # ragged: as_data names the problem
        x = arr if arr.dtype.kind in "biu" else x
    if isinstance(x, np.ndarray) and x.dtype.kind in "biu":
        return x.astype(dtype)
    return x


def operands(args: Sequence[Any], op: str) -> tuple[Node, ...]:
    """Nodes for an op's operands: raw numbers and arrays become constants, int and bool arrays
    with the float dtype of the others (see _float_dtype)."""
    dt = None
    out = []
    for i, a in enumerate(args):
        if not isinstance(a, Node):
            if dt is None:
                dt = _float_dtype(args)
            a = const(_promoted(a, dt), f"{op}: operand {i + 1}")
        out.append(a)
    return tuple(out)


def const(x: Any, what: str = "constant") -> Node:
    """Wrap a raw number or array as a constant leaf (no gradient)."""
    n = _new(Node)
    _make(n, None, as_data(x, what), None, None, None, None)
    n._mtime = -1  # frozen: shared through _number's cache, so the data setter refuses it
    return n


def _frozen(node: Node) -> GraphError:
    return GraphError(
        f"data: {node.describe()} is a constant made from a raw number or array (maybe shared by "
        "every op that used the same number) and cannot be given new data; use a leaf "
        "Node(value, requires_grad=False) for a constant you want to replace")


# ---------------------------------------------------------------------------------------------
# Applying a primitive
# ---------------------------------------------------------------------------------------------


def _normalize(out: Any, prim: Primitive) -> Data:
    """Op outputs: 0-d results become Python floats; arrays are locked read-only."""
    if type(out) is np.ndarray:
        if out.ndim == 0:
            return float(out)
        if out.dtype.kind != "f":
            raise GraphError(
                f"{prim.name}: forward returned an array of dtype {out.dtype}, not float")
        out.flags.writeable = False
        return out
    if type(out) is float:
        return out
    if isinstance(out, (np.floating, int, float)) and not isinstance(out, bool):
        return float(out)
    raise GraphError(f"{prim.name}: forward returned {type(out).__name__}, not a float or array")


def _forward(prim: Primitive, xs: tuple, attrs: dict, nodes: tuple) -> Data:
    scalar = prim.scalar
    if scalar is not None:
        for x in xs:
            if type(x) is not float:
                break
        else:
            try:
                return scalar(*xs, **attrs)
            except (ArithmeticError, ValueError):
                # Python floats raise where numpy returns inf/nan (1/0, log(0), exp(1000)): take
                # numpy's answer so both levels agree.
                xs = tuple([np.float64(x) for x in xs])
    try:
        out = prim.fwd(*xs, **attrs)
        if prim.saves:
            out, attrs["saved"] = out  # attrs is the node's own dict (see apply)
    except ShapeError:
        raise
    except ValueError as e:
        if "broadcast" in str(e):
            shapes = ", ".join(n.describe() for n in nodes)
            raise ShapeError(f"{prim.name}: operands do not broadcast: {shapes}") from None
        raise
    return _normalize(out, prim)


def apply(prim: Primitive, *args: Any, **attrs: Any) -> Node:
    """Run a primitive on nodes (raw numbers and arrays become constants) and record it."""
    nodes = args
    for a in args:  # plain loops, not generator expressions: this runs once per op
        if not isinstance(a, Node):
            nodes = operands(args, prim.name)
            break
    xs = tuple([n._data for n in nodes])
    out = _forward(prim, xs, attrs, nodes)
    a, b, more = _split(nodes)
    return _make(_new(Node), prim, out, a, b, more, attrs or None)


def binary(prim: Primitive, a: Any, b: Any) -> Node:
    """apply() for two operands and no attributes, the hot path of scalar graphs (a + b, a * b):
    number operands come from a cache of constants, and floats go straight to the float rule."""
    if not isinstance(a, Node):
        a = _number(a, f"{prim.name}: left operand", b)
    if not isinstance(b, Node):
        b = _number(b, f"{prim.name}: right operand", a)
    x = a._data
    y = b._data
    if type(x) is float and type(y) is float:
        try:
            out = prim.scalar(x, y)
        except (ArithmeticError, ValueError):
            out = _forward(prim, (x, y), {}, (a, b))
    else:
        out = _forward(prim, (x, y), {}, (a, b))
    return _make(_new(Node), prim, out, a, b, None, None)


def unary(prim: Primitive, a: Any) -> Node:
    """apply() for one operand and no attributes (tanh, exp, relu...): floats go straight to the
    float rule."""
    if not isinstance(a, Node):
        a = const(a, f"{prim.name}: operand")
    x = a._data
    if type(x) is float:
        try:
            out = prim.scalar(x)
        except (ArithmeticError, ValueError):
            out = _forward(prim, (x,), {}, (a,))
    else:
        out = _forward(prim, (x,), {}, (a,))
    return _make(_new(Node), prim, out, a, None, None, None)


def _make(n: Node, prim: Primitive | None, out: Data, a: Node | None, b: Node | None,
          more: tuple | None, attrs: dict | None) -> Node:
    """Fill the new node n: every node is made here (leaves with prim None, no parents).

    Parents are a (and b), or for three or more the tuple more (see _split). An op's node keeps
    its primitive, parents and attributes only when grad mode is on and some parent needs a
    gradient; otherwise it is a constant result, and the graph behind it can be freed.
    """
    if _open_modes:
        grad_on, scope_, anomaly = _modes()
    else:  # the defaults: see _open_modes
        grad_on, scope_, anomaly = True, None, False
    n._data = out
    n.grad = n.name = None
    n.scope = scope_
    n._ctime = next(_clock)
    n._mtime = 0
    if grad_on and (a is None or not a.requires_grad):  # a's need decides, or else the rest's
        if more is not None:
            grad_on = any([p.requires_grad for p in more])
        else:
            grad_on = b is not None and b.requires_grad
    if grad_on:
        n.requires_grad = True
        n._prim = prim
        n.attrs = attrs
        n._a = a
        n._b = b
        n._more = more
    else:  # a constant result: no parents kept, so the graph behind it can be freed
        n.requires_grad = False
        n._prim = n.attrs = n._a = n._b = n._more = None
        if _event_hook is not None and prim is not None:
            _event_hook("constant", n, prim, attrs, a, b, more)  # tg.jit's trace keeps the op
    if anomaly:  # _site is left unset otherwise: an unset slot costs the collector nothing
        n._site = _site()
        if prim is not None:
            ps = more if more is not None else [p for p in (a, b) if p is not None]
            _check_forward(prim, tuple([p._data for p in ps]), out, n)
    return n


def _split(parents: Sequence[Node]) -> tuple[Node | None, Node | None, tuple | None]:
    """(a, b, more) for _make: one or two parents in slots, three or more as a tuple."""
    k = len(parents)
    if k > 2:
        return parents[0], None, tuple(parents)
    return (parents[0] if k else None), (parents[1] if k == 2 else None), None


# ---------------------------------------------------------------------------------------------
# Backward
# ---------------------------------------------------------------------------------------------


_CTIME = operator.attrgetter("_ctime")


def toposort(root: Node, floor: int = 0) -> list[Node]:
    """Nodes that need a gradient and that root depends on, parents before children; with
    floor, only those created at or after that clock time.

    Iterative (no recursion, so any depth works), deterministic, each node once however many
    paths reach it. A node's parents are fixed when it is made, from nodes made before it, so
    the nodes reached from root, sorted by creation time, are in topological order: one pass to
    collect them and one sort in C, instead of a depth-first search's bookkeeping. (Nothing can
    rewire parents, so the graph has no cycle.)
    """
    if not isinstance(root, Node):
        raise ArgTypeError(f"toposort: root must be a Node, got {show(root)}")
    seen = {root}
    stack = [root]
    pop, push, add = stack.pop, stack.append, seen.add
    while stack:
        node = pop()
        ps = node._more
        if ps is None:  # node.parents unrolled (no tuple): this runs once per node
            a = node._a
            if a is not None and a.requires_grad and a not in seen and a._ctime >= floor:
                add(a)
                push(a)
            b = node._b
            if b is not None and b.requires_grad and b not in seen and b._ctime >= floor:
                add(b)
                push(b)
            continue
        for p in ps:
            if p.requires_grad and p not in seen and p._ctime >= floor:
                add(p)
                push(p)
    return sorted(seen, key=_CTIME)


def walk(root: Node) -> list[Node]:
    """Every node root depends on (constants and inputs included), parents before children.

    The one traversal the diagrams and diagnostics use: iterative and deterministic, each node once.
    """
    if not isinstance(root, Node):
        raise ArgTypeError(f"walk: root must be a Node, got {show(root)}")
    return postorder(root, _PARENTS)


_PARENTS = operator.attrgetter("parents")


def postorder(root: Any, children: Callable[[Any], Sequence[Any]]) -> list[Any]:
    """Everything reachable from root through children(x), each once, every object after the
    ones it reaches: a depth-first search, iterative (any depth) and deterministic (children in
    their order). Nodes' parents, modules' submodules and PyTorch's autograd graph are all walked
    with it; the objects are told apart by their hash, identity for each of them (as PyTorch's
    own module walks do)."""
    order: list[Any] = []
    seen: set[Any] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    pop, push, add = stack.pop, stack.append, seen.add
    while stack:
        x, done = pop()
        if done:
            order.append(x)
            continue
        if x in seen:
            continue
        add(x)
        push((x, True))
        for c in reversed(children(x)):
            if c not in seen:
                push((c, False))
    return order


def vjp_message(node: Node, i: int, g: Any = None) -> Data:
    """The gradient that flows from node back to its i-th parent: (d node / d parent) · g.

    g defaults to node.grad. This is the quantity the diagrams draw on each edge; summed over a
    parent's children it is the parent's gradient.
    """
    prim = node._prim
    if prim is None:
        raise GraphError(f"vjp_message: {node.describe()} is a leaf and has no parents")
    g = node.grad if g is None else g
    if g is None:
        raise GraphError(f"vjp_message: {node.describe()} has no gradient; call backward() first")
    if isinstance(g, Node):  # a gradient recorded by backward(create_graph=True): its value
        g = g._data
    parents = node.parents
    if not 0 <= i < len(parents):
        raise IndexOutOfRange(
            f"vjp_message: {node.describe()} has {len(parents)} parents, not {i + 1}")
    xs = tuple(p._data for p in parents)
    out = node._data
    if type(g) is float and type(out) is float and all(type(x) is float for x in xs):
        # Plain floats first, as backward does: a diagram asks this once per edge, and numpy's
        # scalars and error-state switching cost ten times the rule itself.
        try:
            gi = _call_rule(prim, i, g, out, xs, node.attrs)
        except (ArithmeticError, ValueError):
            gi = None
        if type(gi) is float:
            return gi
    with np.errstate(all="ignore"):
        gi = _rule_numpy(prim, i, g, out, xs, node.attrs)
    return _fit(gi, parents[i], node, i)


def _fit(gi: Any, p: Node, node: Node, i: int) -> Data:
    """Check a VJP's result and sum broadcast axes away so it has p's shape and dtype.

    This is the one place where broadcasting is undone.
    """
    pd = p._data
    if type(gi) is np.ndarray and type(pd) is np.ndarray and gi.dtype.kind == "f":
        lead = gi.ndim - pd.ndim
        if lead > 0 and gi.shape[lead:] == pd.shape:  # leading axes only, as for a bias: fast
            gi = np.add.reduce(gi, axis=0 if lead == 1 else tuple(range(lead)))
            return gi if gi.dtype == pd.dtype else gi.astype(pd.dtype)
    prim = node._prim
    if not isinstance(gi, (np.ndarray, float, np.floating)) or isinstance(gi, bool):
        raise GraphError(
            f"{prim.name}: the gradient rule for input {i + 1} ({p.describe()}) returned "
            f"{type(gi).__name__}, not a float or float array"
        )
    garr = np.asarray(gi)
    if garr.dtype.kind != "f":
        raise GraphError(
            f"{prim.name}: the gradient rule for input {i + 1} ({p.describe()}) returned dtype "
            f"{garr.dtype}, not a float dtype"
        )
    target = _shape(pd)
    if garr.shape != target:
        lead = garr.ndim - len(target)
        ok = lead >= 0 and all(t == 1 or t == s for t, s in zip(target, garr.shape[lead:]))
        if not ok:
            raise GraphError(
                f"{prim.name}: the gradient for input {i + 1} ({p.describe()}) has shape "
                f"{garr.shape}, which does not reduce to the input's shape {target}"
            )
        axes = tuple(range(lead)) + tuple(
            lead + k for k, t in enumerate(target) if t == 1 and garr.shape[lead + k] != 1
        )
        garr = garr.sum(axis=axes, keepdims=True) if axes else garr
        garr = garr.reshape(target)
    if type(pd) is float:
        return float(garr)
    if garr.dtype != pd.dtype:
        garr = garr.astype(pd.dtype)
    return garr


def _root_grad(root: Node, grad: Any) -> Data:
    if grad is None:
        d = root._data
        if type(d) is float:
            return 1.0
        if d.size != 1:
            raise GraphError(
                f"backward: the root, {root.describe()}, is not a scalar ({d.size} elements); pass "
                f"grad= with its shape {root.shape} (e.g. np.ones({root.shape}))"
            )
        return np.ones(d.shape, d.dtype)  # any one-element output: (1, 1) scores, (1,) sums
    g = as_data(grad._data if isinstance(grad, Node) else grad, "backward: grad")
    if _shape(g) != root.shape:
        raise ShapeError(
            f"backward: grad has shape {_shape(g)} but the root, {root.describe()}, has shape "
            f"{root.shape}"
        )
    if type(g) is not float and g.dtype != root._data.dtype:
        g = g.astype(root._data.dtype)
    return g


def backward(root: Node, grad: Any = None, create_graph: bool = False) -> None:
    """Reverse pass from root; see Node.backward."""
    if _event_hook is not None:
        notify("backward", root, grad, create_graph)
    if create_graph:
        _store_graph(graph_cotangents(root, grad))
        return
    if not gc.isenabled():
        _backward(root, grad)
    else:
        # The pass allocates two small tuples per node and makes no reference cycles, so the
        # cyclic collector has nothing to find in it; on a 65k-node graph its runs cost a fifth
        # of the pass.
        gc.disable()
        try:
            _backward(root, grad)
        finally:
            gc.enable()
    if _event_hook is not None:
        notify("backward_done", root)


def _backward(root: Node, grad: Any) -> None:
    _store(cotangents(root, grad))


def cotangents(root: Node, grad: Any = None) -> dict[Node, Any]:
    """The reverse pass without storing: every node's gradient (a float or array), by node.

    Arrays in the result may be shared between nodes or be read-only views: copy before writing.
    """
    if not isinstance(root, Node):
        raise GraphError(f"backward: expected a Node, got {type(root).__name__}")
    if not root.requires_grad:
        raise GraphError(
            f"backward: {root.describe()} does not require a gradient (a constant, a detached "
            "node, or made under no_grad()), so nothing can flow back from it"
        )
    grads: dict[Node, Any] = {root: _root_grad(root, grad)}
    order = toposort(root)
    order.reverse()
    if _open_modes and _modes()[2]:
        owned: set[Node] = set()
        for node in order:
            if node._prim is not None:
                _vjp_step(node, grads, owned, True)
    else:
        _float_pass(order, grads)
    return grads


def _float_pass(order: list[Node], grads: dict[Node, Any]) -> None:
    """The reverse pass over order (children first), with the float rules called directly for
    micrograd-style nodes: float gradient, one or two float parents, no attributes. Every other
    node, and any float rule that raises or leaves the floats, takes the general _vjp_step."""
    owned: set[Node] = set()  # see _vjp_step
    get = grads.get
    for node in order:
        prim = node._prim
        if prim is None:
            continue
        g = grads[node]
        vjps = prim.vjps
        if type(g) is float and node.attrs is None and node._more is None and vjps is not None:
            a = node._a
            b = node._b
            ctime = node._ctime
            xa = a._data
            out = node._data
            if type(xa) is float and a._mtime <= ctime:
                if b is None:
                    if a.requires_grad:
                        try:
                            ga = vjps[0](g, out, xa)
                        except (ArithmeticError, ValueError):
                            ga = None
                        if type(ga) is float:
                            prev = get(a)
                            grads[a] = ga if prev is None else prev + ga
                            continue
                else:
                    xb = b._data
                    if type(xb) is float and b._mtime <= ctime:
                        ra, rb = a.requires_grad, b.requires_grad
                        try:
                            ga = vjps[0](g, out, xa, xb) if ra else 0.0
                            gb = vjps[1](g, out, xa, xb) if rb else 0.0
                        except (ArithmeticError, ValueError):
                            ga = gb = None
                        if type(ga) is float and type(gb) is float:
                            if ra:
                                prev = get(a)
                                grads[a] = ga if prev is None else prev + ga
                            if rb:
                                prev = get(b)
                                grads[b] = gb if prev is None else prev + gb
                            continue
        _vjp_step(node, grads, owned, False)


def _vjp_step(node: Node, grads: dict[Node, Any], owned: set[Node], anomaly: bool) -> None:
    """Send node's gradient to each parent that needs one: the rule, then _fit, then the sum.

    owned holds the nodes whose gradient array this pass made by its own sums: later terms go
    into it in place.
    """
    prim = node._prim
    g = grads[node]
    out = node._data
    parents = node._more
    if parents is None:  # node.parents, inlined
        a = node._a
        b = node._b
        if b is None:
            parents = (a,)
            xs = (a._data,)
        else:
            parents = (a, b)
            xs = (a._data, b._data)
    else:
        xs = tuple([p._data for p in parents])
    ctime = node._ctime
    attrs = node.attrs
    vjps = prim.vjps
    ndarray = np.ndarray
    i = -1
    for p in parents:
        i += 1
        if p._mtime > ctime:
            raise GraphError(
                f"backward: {p.describe()} was given new data after {prim.name} used it; "
                "this graph is stale. Run the forward pass again before backward()."
            )
        if not p.requires_grad:
            continue
        try:
            if vjps is None:
                gi = prim.vjp(i, g, out, xs, **(attrs or {}))
            elif attrs is None:
                gi = vjps[i](g, out, *xs)
            else:
                gi = vjps[i](g, out, *xs, **attrs)
        except (ArithmeticError, ValueError):
            gi = _rule_numpy(prim, i, g, out, xs, attrs)
        # _fit checks and un-broadcasts; a gradient that already fits skips the call
        pd = p._data
        if type(gi) is float:
            if type(pd) is not float:
                gi = _fit(gi, p, node, i)
        elif (type(gi) is not ndarray or type(pd) is not ndarray or gi.shape != pd.shape
              or (gi.dtype is not pd.dtype and gi.dtype != pd.dtype)):
            gi = _fit(gi, p, node, i)
        if anomaly:
            _check_backward(prim, node, i, p, g, gi)
        prev = grads.get(p)
        if prev is None:
            grads[p] = gi
            # A built-in rule's writable array that is neither a view nor g itself is fresh
            # (matmul, mul, ...): later terms can go into it in place.
            if (prim.builtin and type(gi) is ndarray and gi.base is None and gi is not g
                    and gi.flags.writeable):
                owned.add(p)
        elif type(prev) is float:
            grads[p] = prev + gi
        elif p in owned:
            prev += gi
        else:
            # The first sum gives an array only this pass holds; later terms go into it in
            # place. (A VJP's own result may be shared: add passes g on to both parents.)
            grads[p] = prev + gi
            owned.add(p)


def _rule_numpy(prim: Primitive, i: int, g: Any, out: Any, xs: tuple, attrs: dict | None) -> Any:
    """Redo a rule with numpy scalars: Python floats raise where numpy gives inf or nan."""
    f64 = np.float64
    g = f64(g) if type(g) is float else g
    out = f64(out) if type(out) is float else out
    xs = tuple(f64(x) if type(x) is float else x for x in xs)
    return _call_rule(prim, i, g, out, xs, attrs)


def _call_rule(prim: Primitive, i: int, g: Any, out: Any, xs: tuple, attrs: dict | None) -> Any:
    """The VJP of prim for input i (the two calling conventions: per-input or variadic)."""
    if prim.vjps is None:
        return prim.vjp(i, g, out, xs, **(attrs or {}))
    return prim.vjps[i](g, out, *xs, **(attrs or {}))


def _store(grads: dict[Node, Any]) -> None:
    """Add this pass's gradients into .grad.

    A leaf's .grad (a parameter's) is always an array of its own, writable, since optimizers
    update it in place. An intermediate's may be shared with its neighbours (add hands one
    gradient to both parents; sum's is a broadcast view): it is then locked read-only, like
    .data, instead of copied, which saves an array-sized copy per node.
    """
    first: dict[int, Node] = {}  # id of each array stored -> the node that took it first
    for node, g in grads.items():  # every node of the pass has a cotangent, and only those
        if type(g) is not float:
            leaf = node._prim is None
            other = first.setdefault(id(g), node)
            if other is not node:  # a second holder: leaves copy, the rest share it read-only
                if other._prim is None and other.grad is g:
                    other.grad = g.copy()
                if leaf:
                    g = g.copy()
                else:
                    g.flags.writeable = False
            elif leaf:
                if g.base is not None or not g.flags.writeable:
                    g = g.copy()
            elif g.base is not None:
                g.flags.writeable = False
        old = node.grad
        node.grad = g if old is None else old + g


# --- create_graph: the backward pass recorded as tinygraph ops ---------------------------------
# The same VJP rules as above, called with nodes for g, out and the inputs: each rule is written
# with operators and numpy spellings that run tinygraph ops on nodes (interop.py), so the op table
# stays the one place where each derivative lives, and the gradients it returns are nodes whose own
# gradients are the second derivatives.

BACKWARD_SCOPE = "∇"  # the scope of every node a recorded backward pass makes (diagrams style it)


def graph_cotangents(root: Node, grad: Any = None, floor: int = 0) -> dict[Node, Node]:
    """The reverse pass recorded as a graph: every node's gradient as a Node, by node.

    Nodes created before clock time floor are left out (nothing made before the inputs one
    differentiates with respect to can depend on them: the functional API passes their time).
    """
    if not isinstance(root, Node):
        raise GraphError(f"backward: expected a Node, got {type(root).__name__}")
    if not root.requires_grad:
        raise GraphError(
            f"backward: {root.describe()} does not require a gradient (a constant, a detached "
            "node, or made under no_grad()), so nothing can flow back from it"
        )
    if isinstance(grad, Node):
        if grad.shape != root.shape:
            raise ShapeError(f"backward: grad has shape {grad.shape} but the root, "
                             f"{root.describe()}, has shape {root.shape}")
        g0 = grad
    else:
        g0 = const(_root_grad(root, grad), "backward: grad")
    order = toposort(root, floor)
    grads: dict[Node, Node] = {root: g0}
    with scope(BACKWARD_SCOPE):
        for node in reversed(order):
            prim = node._prim
            g = grads.get(node)
            if prim is None or g is None:
                continue
            parents = node.parents
            attrs = node.attrs or {}
            ctime = node._ctime
            for i, p in enumerate(parents):
                if p._mtime > ctime:
                    raise GraphError(
                        f"backward: {p.describe()} was given new data after {prim.name} used it; "
                        "this graph is stale. Run the forward pass again before backward()."
                    )
                if not p.requires_grad or p._ctime < floor:
                    continue
                gi = _fit_graph(_graph_rule(prim, i, g, node, parents, attrs), p, node, i)
                prev = grads.get(p)
                grads[p] = gi if prev is None else prev + gi
    return grads


def _graph_rule(prim: Primitive, i: int, g: Node, node: Node, parents: tuple,
                attrs: dict) -> Any:
    """Run prim's VJP for input i on nodes; a rule that cannot names the op."""
    if prim.saves and not prim.builtin:
        raise GraphError(
            f"backward(create_graph=True): primitive {prim.name!r} keeps forward results for its "
            "backward (saves=True), so its gradient cannot be recorded as ops and it has no "
            "second derivative; write it from tinygraph ops, or with saves=False"
        )
    try:
        gi = _call_rule(prim, i, g, node, parents, attrs)
    except (ArithmeticError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise GraphError(
            f"backward(create_graph=True): the gradient rule of {prim.name!r} for input {i + 1} "
            f"cannot run on nodes ({type(e).__name__}: {e}); write it with operators and numpy "
            "functions that work on nodes (np.exp, np.where, ...) to get second derivatives"
        ) from None
    if isinstance(gi, Node):
        return gi
    if not prim.builtin:  # a custom rule turned nodes into plain numbers: the graph is lost
        raise GraphError(
            f"backward(create_graph=True): the gradient rule of {prim.name!r} for input {i + 1} "
            f"returned {type(gi).__name__}, not a Node, when given nodes, so its second "
            "derivative is unknown; write it with operators and numpy functions that work on "
            "nodes"
        )
    return const(_fit(gi, parents[i], node, i), f"{prim.name}: gradient")


def _fit_graph(gi: Node, p: Node, node: Node, i: int) -> Node:
    """_fit for a recorded pass: sum broadcast axes away with the sum and reshape ops."""
    target = p.shape
    shape = gi.shape
    if shape == target:
        return gi
    lead = len(shape) - len(target)
    if lead < 0 or not all(t == 1 or t == s for t, s in zip(target, shape[lead:])):
        raise GraphError(
            f"{node._prim.name}: the gradient for input {i + 1} ({p.describe()}) has shape "
            f"{shape}, which does not reduce to the input's shape {target}"
        )
    if not target:
        return _ops.sum(gi)
    axes = tuple(range(lead)) + tuple(
        lead + k for k, t in enumerate(target) if t == 1 and shape[lead + k] != 1)
    if axes:
        gi = _ops.sum(gi, axes, keepdims=True)
    return _ops.reshape(gi, target) if gi.shape != target else gi


def _store_graph(grads: dict[Node, Node]) -> None:
    """Add a recorded pass's gradients into .grad: nodes on leaves (the inputs and parameters one
    differentiates again), values on intermediates, as after a plain pass (diagrams read them)."""
    for node, g in grads.items():
        old = node.grad
        if node._prim is None:
            node.grad = g if old is None else old + g
        else:
            d = g._data
            node.grad = d if old is None else old + d


def zero_grad(*nodes: Node | Iterable[Node]) -> None:
    """Set .grad to None on the given nodes (or iterables of nodes, e.g. model.parameters())."""
    # Checked before any gradient is cleared: a bad argument clears nothing.
    flat = []
    for n in nodes:
        ms = [n] if isinstance(n, Node) else list(n) if isinstance(n, Iterable) else [n]
        for m in ms:
            if not isinstance(m, Node):
                raise ArgTypeError(f"zero_grad: expected nodes or iterables of nodes, got "
                                   f"{show(m)}")
        flat += ms
    clear = _Nodes(flat)
    notify("zero_grad", clear)  # tg.jit's trace records it, to replay it
    clear.zero_grad()


class _Nodes:
    """Nodes whose gradients tg.zero_grad or a module's zero_grad() clears, as tg.jit's trace
    records and replays it (zeros: set to zeros instead of None)."""

    def __init__(self, nodes: Iterable[Node], zeros: bool = False) -> None:
        self.params = list(nodes)
        self.zeros = zeros

    def zero_grad(self) -> None:
        for m in self.params:
            m.grad = None if not self.zeros else (
                0.0 if type(m._data) is float else np.zeros(m._data.shape, m._data.dtype))


def replace_data(node: Node, new: Any) -> None:
    """Set node.data to a freshly computed value, taking ownership of it instead of copying it.

    For optimizers (p.data - lr * p.grad is a new array nobody else holds): an array of the node's
    shape and dtype that owns its memory is locked read-only and kept as is. Anything else goes
    through the .data setter (checked and copied). Either way, graphs that used the old value
    become stale, exactly as with the setter.
    """
    old = node._data
    if node._mtime < 0:
        raise _frozen(node)
    if (type(new) is np.ndarray and type(old) is np.ndarray and new.base is None
            and new.dtype == old.dtype and new.shape == old.shape):
        new.setflags(write=False)  # a third of the time of .flags.writeable = False
        node._data = new
        node._mtime = next(_clock)
    elif type(new) is float and type(old) is float:
        node._data = new
        node._mtime = next(_clock)
    else:
        node.data = new


# ---------------------------------------------------------------------------------------------
# Modes: no_grad, scope, detect_anomaly
# ---------------------------------------------------------------------------------------------


@contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block, ops record no parents: results are constants.

    Per thread, like PyTorch's grad mode: another thread's graphs keep recording, and a thread
    started inside the block starts with grad enabled.
    """
    _count_mode(1)
    grad_on, scope_, anomaly = _modes()
    _MODES.set((False, scope_, anomaly))
    try:
        yield
    finally:
        # Restore only our own flag: a scope entered and left inside the block is gone by now.
        _, scope_, anomaly = _modes()
        _MODES.set((grad_on, scope_, anomaly))
        _count_mode(-1)


def is_grad_enabled() -> bool:
    """Whether ops record their parents in the calling thread (False inside no_grad())."""
    return _modes()[0]


class scope:  # noqa: N801 - used like a function: `with tg.scope("L1"):`
    """Stamp a scope path ('L1', then 'L1.n2' when nested) on every node created inside.

    Per thread: nodes another thread creates meanwhile get that thread's own scope. A class
    rather than a generator context manager: modules enter one per layer and neuron on every
    forward pass, and this costs a third as much.
    """

    __slots__ = ("name", "_prev")

    def __init__(self, name: str) -> None:
        self.name = check_str("scope", "name", name, empty=False)
        self._prev: str | None = None

    def __enter__(self) -> str:
        _count_mode(1)
        grad_on, prev, anomaly = _modes()
        self._prev = prev
        path = f"{prev}.{self.name}" if prev else self.name
        _MODES.set((grad_on, path, anomaly))
        return path

    def __exit__(self, *exc: object) -> None:
        grad_on, _, anomaly = _modes()
        _MODES.set((grad_on, self._prev, anomaly))
        _count_mode(-1)


def current_scope() -> str | None:
    """The calling thread's scope path ('L1.n2'), or None outside any scope."""
    return _modes()[1]


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise AnomalyError at the first op whose inputs were finite and whose output or local
    gradient was not, naming the op and the file:line that created the node.

    Per thread, like no_grad().
    """
    _count_mode(1)
    grad_on, scope_, prev = _modes()
    _MODES.set((grad_on, scope_, True))
    try:
        with np.errstate(all="ignore"):
            yield
    finally:
        grad_on, scope_, _ = _modes()
        _MODES.set((grad_on, scope_, prev))
        _count_mode(-1)


def is_anomaly_enabled() -> bool:
    """Whether detect_anomaly() is on in the calling thread."""
    return _modes()[2]


def _nonfinite(d: Any) -> tuple[bool, bool]:
    """(has NaN, has any non-finite) for a float or array."""
    if isinstance(d, float):
        return math.isnan(d), not math.isfinite(d)
    a = np.asarray(d)
    fin = np.isfinite(a).all()
    return (not fin) and bool(np.isnan(a).any()), not fin


def _check_forward(prim: Primitive, xs: tuple, out: Data, node: Node) -> None:
    onan, obad = _nonfinite(out)
    if not obad:
        return
    ins = [_nonfinite(x) for x in xs]
    if (onan and not any(n for n, _ in ins)) or not any(b for _, b in ins):
        ops = ", ".join(p.describe() for p in node.parents) or "its inputs"
        inputs = "NaN-free" if any(b for _, b in ins) else "finite"
        raise AnomalyError(
            f"{prim.name} produced {'NaN' if onan else 'Inf'} from {inputs} inputs ({ops}); "
            f"created at {getattr(node, '_site', None) or '<unknown>'}"
        )


def _check_backward(prim: Primitive, node: Node, i: int, p: Node, g: Any, gi: Any) -> None:
    gnan, gbad = _nonfinite(gi)
    if not gbad:
        return
    innan, inbad = _nonfinite(g)
    if (gnan and not innan) or not inbad:
        raise AnomalyError(
            f"backward of {prim.name}: the gradient for input {i + 1} ({p.describe()}) is "
            f"{'NaN' if gnan else 'Inf'} although the incoming gradient was "
            f"{'finite' if not inbad else 'NaN-free'}; the node was created at "
            f"{getattr(node, '_site', None) or '<unknown>'}"
        )


def check_axis(op: str, node: Node, axis: Any) -> tuple[int, ...] | None:
    """Normalize an axis argument (int, tuple or None) against node's shape, naming the op."""
    if axis is None:
        return None
    nd = node.ndim
    if not isinstance(axis, (int, np.integer, tuple, list)):
        raise AxisError(f"{op}: axis must be an int or tuple of ints, got {axis!r:.60}")
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise AxisError(f"{op}: axis must be an int or tuple of ints, got {axis!r}")
        if not -nd <= a < nd:
            raise AxisError(f"{op}: axis {a} is out of range for {node.describe()}")
        out.append(int(a) % nd)
    if len(set(out)) != len(out):
        raise AxisError(f"{op}: repeated axis in {axis!r}")
    return tuple(out)
