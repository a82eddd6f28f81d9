"""tg.jit: trace a step once, replay it as generated Python you can read.

    step = tg.jit(lambda X, y: losses.softmax_cross_entropy(model(X), y))
    loss = step(X, y)        # first call: runs eagerly, records the graph, compiles it
    loss.backward()          # gradients into the parameters' .grad, exactly as eager backward
    print(step.source)       # the generated forward and backward code

The first call with a given signature runs the function eagerly on tracer nodes and records
the graph; the graph becomes the source text of two Python functions, `forward` and
`backward` (one line per op, named after the nodes' names and scopes), compiled with
compile()/exec. Later calls with the same signature read the current .data of every leaf the
graph uses (parameters captured from closures included, so an optimizer's updates are seen) and
run `forward`; the returned node's backward() runs `backward` and adds into each leaf's .grad as
eager backward does.

Signature (the cache key):
- a Node argument: its shape, dtype and requires_grad (its values are read on every call);
- a float numpy array argument: its shape and dtype. Inside the traced function it is a
  constant Node (as a tracer would be), so every computation on it is recorded;
- an int or bool array (class labels, indices): its shape, dtype and *values*: arrays derived
  from labels inside the function (masks, one-hot targets) would otherwise be frozen;
- Python numbers, strings, None: by value; lists and tuples: element by element;
  any other object (a model): by identity.
Each compiled function keeps the `cache_size` (default 8) most recently used signatures.

What replays and what is refused (see the README's "Compiled steps"):
- converting a traced value to Python (float(), bool(), .item(), format(), comparisons such as
  `node > 0` and numpy's np.greater / np.sign / np.where on nodes, reading .data) raises
  TracingError during tracing, naming the line: replay would silently reuse the value seen when
  tracing. So does assigning .data inside (replay runs the recorded ops, not the statement);
- numbers and numpy arrays the function captures or creates are constants frozen at trace
  time (an output that is such a constant node itself raises). Pass changing data as an
  argument. Ops on captured nodes replay from their current values even when no gradient flows
  (1 / T of a captured temperature node), and so do results computed under no_grad(), detach() and
  Node(node) inside: they are recorded as ops with no gradient. Drawing from numpy's or
  Python's global random generator while tracing raises TracingError naming the line (replay
  would reuse the one draw); a Generator object's draws cannot be seen and are frozen like any
  other array;
- custom primitives (tg.primitive) replay by calling their own forward and VJP functions;
- under tg.detect_anomaly() a compiled function runs eagerly, so anomalies name their line;
- scalar code that Python refuses (1/0, log(0), exp(1000)) falls back to an eager run, which
  gives numpy's inf/nan exactly as eager tinygraph does (a compiled training step: the whole
  step runs eagerly);
- replay writes .grad of leaves (parameters, node arguments) and of the returned node; the
  graph's intermediates exist only as local variables of the generated code. A compiled
  gradient is not a graph: backward(create_graph=True), tg.grad and tg.hessian through a
  compiled function raise;
- a training step compiles whole: backward() on a scalar made inside, then at most one
  optimizer step(), with zero_grad() before or after, are recorded (through the engine's event
  hook) and replayed in order. Plain optim.SGD over exactly the graph's parameters becomes
  generated code (backward_step: gradients and update together; with zero_grad() after the step
  the gradients are never assembled, the backward's seed is lr and an l2 term folds into the
  update; big parameters are updated in place when their reference count shows that nothing
  else holds their arrays, and a big weight matrix's update w·decay - aᵀ·(lr·dz) is fused into
  its gradient's product, one call to numpy's own BLAS: see tinygraph._blas); other optimizers
  run their own step() after the generated backward. Other uses of backward() raise
  TracingError, and so do zero_grad() between backward() and step() and a gradient changed
  after backward(), by assignment or in place (clipping written in Python would not replay; a
  clip that does not happen while tracing, `if norm > 1`, cannot be seen: clip outside).
  Gradients cleared by assignment (`p.grad = None` or 0, Node.zero_grad()) are recorded and
  replayed in their place: Node.grad is watched while a trace runs (_GradWatch). An in-place
  update waits while a view of the weight (w.T, a reshape or slice) is still to be read; an
  optimizer whose parameters changed since tracing steps by itself. A node argument made
  outside the function passes its gradient on to the nodes behind it before the step;
- a refused trace leaves nothing changed: gradients, parameters and optimizer state that its
  tracing run had already changed are put back.
Thread-safe: changes to the signature cache are locked; a replay allocates its own arrays and
shares no mutable state. The conversion guards, the event recording and the random-draw watch
are set only while a trace runs (each checks that its own thread is the one tracing).
TracingError, Compiled and TEMPLATES are also reachable as tg.jit.TracingError and so on.
"""

from __future__ import annotations

import functools
import gc
import inspect
import itertools
import keyword
import linecache
import math
import os
import random
import re
import sys
import textwrap
import threading
import time
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _blas, engine, ops
from .engine import Node, Primitive
from .errors import GraphError

__all__ = ["jit", "Compiled", "TracingError", "TEMPLATES"]

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


class TracingError(GraphError):
    """A traced function did something that replay could not reproduce."""


# ---------------------------------------------------------------------------------------------
# Templates: per primitive, the forward expression and one VJP expression per input.
# {0}, {1}: the inputs; {out}: the op's output; {g}: the output's gradient; {name}: an attribute.
# 'sfwd' is used when every input is a Python float (it must equal the primitive's scalar rule),
# 'afwd' otherwise. A VJP listed in 'svjps' replaces the one in 'vjps' for scalar nodes.
# 'gshape' says what shape a VJP returns: "out" (the output's, summed back to the input's shape
# where the trace shows broadcasting) or "in" (the input's own). test_jit checks every entry
# against the op table (fwd, scalar and vjps of ops.PRIMITIVES) on random inputs.
# Ops without an entry call their primitive's own functions from the generated code.
# ---------------------------------------------------------------------------------------------

_EW = ("out", "out")
TEMPLATES: dict[str, dict[str, Any]] = {
    "add": dict(sfwd="{0} + {1}", afwd="{0} + {1}", vjps=("{g}", "{g}"), prec=3, gshape=_EW),
    "sub": dict(sfwd="{0} - {1}", afwd="{0} - {1}", vjps=("{g}", "-{g}"), prec=3, gshape=_EW),
    "mul": dict(sfwd="{0} * {1}", afwd="{0} * {1}", vjps=("{g} * {1}", "{g} * {0}"), prec=2,
                gshape=_EW),
    "div": dict(sfwd="{0} / {1}", afwd="{0} / {1}", vjps=("{g} / {1}", "-{g} * {out} / {1}"),
                prec=2, gshape=_EW),
    "neg": dict(sfwd="-{0}", afwd="-{0}", vjps=("-{g}",), prec=1, gshape=("out",)),
    "exp": dict(sfwd="_math.exp({0})", afwd="np.exp({0})", vjps=("{g} * {out}",),
                gshape=("out",)),
    "log": dict(sfwd="_math.log({0})", afwd="np.log({0})", vjps=("{g} / {0}",), gshape=("out",)),
    "sqrt": dict(sfwd="_math.sqrt({0})", afwd="np.sqrt({0})", vjps=("{g} * 0.5 / {out}",),
                 gshape=("out",)),
    "tanh": dict(sfwd="_math.tanh({0})", afwd="np.tanh({0})",
                 vjps=("{g} * (1.0 - {out} * {out})",), gshape=("out",)),
    "sigmoid": dict(sfwd="_sigmoid({0})", afwd="_sigmoid({0})",
                    vjps=("{g} * {out} * (1.0 - {out})",), gshape=("out",)),
    # relu's mask from its output (out > 0 exactly where x > 0), so x may be overwritten
    "relu": dict(sfwd="0.0 if {0} <= 0 else {0}", afwd="np.maximum({0}, 0)", prec=9,
                 vjps=("np.multiply({g}, {out} > 0, dtype={g}.dtype)",),
                 svjps=("{g} * ({0} > 0)",), gshape=("out",)),
    "matmul": dict(afwd="{0} @ {1}", vjps=("_mm_a({g}, {out}, {0}, {1})",
                                           "_mm_b({g}, {out}, {0}, {1})"),
                   vjps2d=("{g} @ {1}.T", "{0}.T @ {g}"), prec=2, gshape=("in", "in")),
    "linear": dict(afwd="{0} @ {1} + {2}", vjps=("_mm_a({g}, {out}, {0}, {1})",
                                                 "_mm_b({g}, {out}, {0}, {1})", "{g}"),
                   vjps2d=("{g} @ {1}.T", "{0}.T @ {g}", "{g}"), prec=3,
                   gshape=("in", "in", "out")),
    "sum": dict(afwd="np.add.reduce({0}, axis={axis}, keepdims={keepdims})",
                vjps=("_expand({g}, {0}, {axis}, {keepdims})",), gshape=("in",), view=True),
    "reshape": dict(afwd="np.reshape({0}, {shape})", vjps=("np.reshape({g}, {in0_shape})",),
                    gshape=("in",), view=True),
    # variadic: 'vjpi' is every input's VJP, {x} standing for that input
    # 'afwdi': each input's term of the forward's sum, when every input is an array (the
    # builder writes (0.5·lam)·(term + term + ...), the op table's own arithmetic)
    "l2": dict(afwdi="float(np.vdot({x}, {x}))", vjpi="{lam} * {g} * {x}", gshape=("in",)),
    "getitem": dict(afwd="{0}[{index}]", vjps=("_getitem_vjp({g}, {out}, {0}, {index})",),
                    gshape=("in",)),
    # emitted by _Builder (several statements): the forward keeps e = exp(s - rowmax) and its row
    # sums se, so the backward's softmax is e / se instead of a second exp
    "softmax_cross_entropy": dict(emit="softmax_ce", gshape=("in",)),
}

# Names the generated code may use (bound in its globals).
_BASE_ENV: dict[str, Any] = {
    "np": np, "_math": math, "_spow": ops._spow,
    "_sigmoid": ops._sigmoid, "_mm_a": ops._matmul_vjp_a, "_mm_b": ops._matmul_vjp_b,
    "_expand": ops._expand, "_getitem_vjp": ops._getitem_vjp, "inf": math.inf, "nan": math.nan,
    "_sgd_gemm": _blas.sgd_gemm,
}
# a weight's SGD update is fused into its gradient's product when the product has this many
# multiply-adds (below it, the call's setup costs more than the pass it saves)
_GEMM_MIN = 1 << 22


def _softmax_ce(s: Any, flat: Any, n: int) -> tuple[float, Any, Any]:
    """Softmax cross-entropy's forward for compiled code: (loss, e, se), e = exp(s - rowmax) and
    se its row sums (the backward's softmax is e / se). flat: the labels' flat indices into s;
    n: the divisor (the batch size for a mean, else 1). Equals ops' softmax_cross_entropy."""
    m = np.maximum.reduce(s, axis=1, keepdims=True)
    # C order whatever s's layout ((W @ X).T is Fortran): the backward writes the label term
    # through e's reshape(-1), which must be a view; a row max of ±inf or nan makes nan here
    e = np.subtract(s, m, order="C")
    picked = float(np.add.reduce(e.take(flat)))  # the labels' shifted logits
    np.exp(e, out=e)
    se = np.add.reduce(e, axis=1, keepdims=True)  # >= 1 when the max is finite
    loss = (float(np.add.reduce(np.log(se), axis=None)) - picked) / n
    if math.isfinite(loss):
        return loss, e, se
    # again as ops does it: all -inf (or +inf) rows shifted by 0, not by inf
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.subtract(s, m, order="C")
    picked = float(np.add.reduce(e.take(flat)))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        np.exp(e, out=e)
        se = np.add.reduce(e, axis=1, keepdims=True)
        return (float(np.add.reduce(np.log(se), axis=None)) - picked) / n, e, se


def _fit(g: Any, shape: tuple[int, ...] | None, dtype: Any) -> Any:
    """A fallback rule's gradient brought to its input's shape and dtype (shape None: a float),
    as engine._fit does for eager backward (the generated code calls it only where needed)."""
    if shape is None:
        a = np.asarray(g)
        return float(a.sum()) if a.ndim else float(a)
    a = np.asarray(g)
    if a.shape != shape:
        lead = a.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(lead + k for k, t in enumerate(shape)
                                          if t == 1 and a.shape[lead + k] != 1)
        a = (a.sum(axis=axes, keepdims=True) if axes else a).reshape(shape)
    return a if a.dtype == dtype else a.astype(dtype)


_BASE_ENV["_fit"] = _fit
_BASE_ENV["_softmax_ce"] = _softmax_ce


# ---------------------------------------------------------------------------------------------
# Tracing guard: converting a traced value to Python raises, naming the line.
# ---------------------------------------------------------------------------------------------

_tls = threading.local()
_active = 0  # traces running in any thread; the engine's value hook is set while it is > 0
_guard_lock = threading.Lock()
# Node's own methods that hand a value out (float(), .data, comparisons, np.asarray): the frames
# between the hook and the code that asked for the value.
_NODE_FILES = {os.path.join(_PKG_DIR, "engine.py"), os.path.join(_PKG_DIR, "interop.py")}


def _user_site() -> tuple[bool, str]:
    """(asked by user code, file:line of the first frame outside tinygraph), looking past this
    function, the hook, and Node's own methods (engine.py, interop.py)."""
    f = sys._getframe(2)
    while f is not None and os.path.abspath(f.f_code.co_filename) in _NODE_FILES:
        f = f.f_back
    first = True
    while f is not None:
        fn = f.f_code.co_filename
        if not os.path.abspath(fn).startswith(_PKG_DIR + os.sep):
            return first, f"{fn}:{f.f_lineno} (in {f.f_code.co_name})"
        first = False
        f = f.f_back
    return False, "<unknown>"


def _guard(node: Node, what: str, out: bool = False) -> None:
    """The engine's value hook while a trace runs: refuse a traced value leaving the graph, if
    this thread is tracing and user code asked for it (tinygraph's own reads are fine, except
    where it hands the value out itself: out, from engine.value_out)."""
    if not getattr(_tls, "depth", 0):
        return  # another thread's trace is running, not ours
    user, site = _user_site()
    if not user and not out:
        return
    if what.startswith("assigning"):
        raise TracingError(
            f"tg.jit: {what} of {node.describe()} at {site}. A compiled replay runs the recorded "
            "ops, not the function's Python statements, so the assignment would happen once, "
            "while tracing. Change parameters outside the compiled function, or with an "
            "optimizer's step() inside it.")
    if what == "reading .data" and node._prim is None and node._ctime <= _tls.t0:
        raise TracingError(
            f"tg.jit: reading .data of {node.describe()}, which the function captures, at "
            f"{site}. Its value would be frozen into the compiled code. To update a parameter "
            "inside a compiled step, call an optimizer's step() (`p.data -= lr * p.grad` would "
            "run once, while tracing, and `p.data = ...` is refused); to compute with it, use "
            "the node itself in tinygraph ops; to read it, do so after the call.")
    if what.startswith(("comparison", "np.greater", "np.less", "np.equal", "np.not_equal",
                         "np.sign", "np.where")):
        raise TracingError(
            f"tg.jit: {what} of a traced value ({node.describe()}) at {site}. A mask computed "
            "from traced values while tracing would be frozen into the compiled code, and "
            "later calls with new data would silently reuse it. Write it with ops that "
            "choose by value themselves (tg.relu, tg.leaky_relu, tg.maximum, tg.minimum, "
            "tg.abs, tg.clip), or call the function without tg.jit.")
    raise TracingError(
        f"tg.jit: {what} of a traced value ({node.describe()}) at {site}. While tracing, "
        "tinygraph records the ops once; a Python value taken from a node would be frozen into "
        "the compiled code, and later calls with new data would silently reuse it. Keep the "
        "computation in tinygraph ops (tg.relu / tg.maximum / tg.where instead of an `if`), "
        "read values from the returned node after the call, or call the function without tg.jit."
    )


def _record(kind: str, obj: Any, *details: Any) -> None:
    """The engine's event hook while a trace runs: note this thread's backward passes and
    optimizer steps, which the compiled code then replays in the same order. What cannot be
    replayed raises here, before the pass or the step changes anything; what they change is
    noted first (_tls.undo), so that a trace refused later leaves no trace of them."""
    events = getattr(_tls, "events", None)
    if events is None or not getattr(_tls, "depth", 0):
        return
    if kind == "constant":  # an op with no gradient (its inputs need none, or no_grad is on):
        # kept as an op of the trace, so that replay computes it from the current values
        obj._prim, obj.attrs, obj._a, obj._b, obj._more = details
        return
    if kind == "copy":  # detach(), Node(node): a leaf to the engine, a copy op to the trace
        # (marked as one when the function has returned: a backward() inside it must see
        # the leaf that eager mode makes)
        _tls.copies.append((obj, details[0]))
        return
    if kind == "backward_done":  # the gradients as the pass left them, to compare at step()
        _tls.in_pass = False
        _tls.after = _grads_now()
        return
    kinds = [k for k, _ in events] + [kind]
    if kind == "backward" and (details[0] is not None or details[1]):
        raise TracingError(
            f"tg.jit: backward({'create_graph=True' if details[1] else 'grad'}) at "
            f"{_user_site()[1]}; a compiled function replays backward() with its default seed "
            "(1.0) and no recorded graph. Call it that way, or outside the compiled function.")
    if kinds.count("backward") > 1 or kinds.count("step") > 1 or (
            kind == "step" and "backward" not in kinds):
        raise TracingError(
            f"tg.jit: the function calls {', '.join(k + '()' for k in kinds)} (the last at "
            f"{_user_site()[1]}); a compiled step replays one backward() and at most one "
            "optimizer step() after it (zero_grad() before or after). Compile the loss alone "
            "and call the rest outside.")
    if kind == "zero_grad" and "backward" in kinds and "step" not in kinds:
        raise TracingError(
            f"tg.jit: zero_grad() at {_user_site()[1]} clears the gradients between backward() "
            "and step(); a compiled step replays backward() then step() with the gradients the "
            "pass made. Call zero_grad() before backward() or after step().")
    if kind == "backward" and (obj._prim is None or obj._ctime <= _tls.t0):
        raise TracingError(
            f"tg.jit: backward() on {obj.describe()} at {_user_site()[1]}, which was not "
            "computed inside the function; a compiled step can only replay a pass over its own "
            "graph")
    if kind == "backward":
        # every node made outside the function that the pass writes a gradient into
        _tls.outside = [n for n in engine.toposort(obj) if n._ctime <= _tls.t0]
        _keep_grads(_tls.outside)
        _tls.in_pass = True  # the pass's own writes into .grad (see _grad_assigned)
    elif kind == "zero_grad":
        _keep_grads(obj.params)
        _tls.clearing = {id(p) for p in obj.params}
        after = getattr(_tls, "after", None)
        if after is not None:
            after.update({p: (None, None) for p in obj.params})
    else:  # step
        after = getattr(_tls, "after", None) or {}
        for p in obj.params:
            g, copy = after.get(p, (p.grad, None))
            if p.grad is not g or not _same(g, copy):
                raise TracingError(
                    f"tg.jit: the gradient of {p.describe()} changed between backward() and "
                    f"step() (at {_user_site()[1]}): gradient clipping or scaling written in "
                    "Python runs once, while tracing, and a compiled replay would step with "
                    "the unclipped gradient. Compile the loss and backward() alone, then clip "
                    "and step outside the compiled function.")
        _hand_back()
        _keep_step(obj)
        _tls.step_t = next(engine._clock)  # ops made after this read the updated parameters
        _tls.after = _grads_now()  # handing back may add to a parameter's: see _grads_kept
    events.append((kind, obj))


def _grads_now() -> dict:
    """The gradients of the nodes made outside the function that the pass reaches, each with
    a copy, to tell later whether something changed them."""
    return {p: (p.grad, _snapshot(p.grad)) for p in _tls.outside}


def _shares(x: np.ndarray, arrays: list) -> bool:
    return any([np.may_share_memory(x, a) for a in arrays])


def _same(g: Any, copy: Any) -> bool:
    """Whether gradient g still equals its snapshot (nan equal to nan: a nan gradient that
    nothing changed is unchanged)."""
    if copy is None or g is None:
        return copy is g
    return bool(np.array_equal(g, copy, equal_nan=True))


class _GradSet:
    """Gradients the traced function cleared by assignment (PyTorch's `p.grad = None`,
    micrograd's `p.grad = 0.0`, Node.zero_grad()): recorded as an event and replayed in order,
    like an optimizer's zero_grad()."""

    def __init__(self) -> None:
        self.params: list[Node] = []
        self.values: list[Any] = []

    def zero_grad(self) -> None:
        for p, v in zip(self.params, self.values, strict=True):
            # a zero array is made anew each time: optimizers and backward write into .grad
            p.grad = v if type(v) is not np.ndarray else np.zeros_like(v)


def _grad_assigned(node: Node, value: Any) -> None:
    """`node.grad = value` while this thread traces (see _GradWatch), before the write: the
    engine's own passes, zero_grad() and nodes made inside pass; clearing a gradient made
    outside is recorded; anything else would not replay and raises."""
    ct = getattr(node, "_ctime", None)  # a node being made has none yet
    if ct is None or ct > _tls.t0 or getattr(_tls, "in_pass", False):
        return
    clearing = _tls.clearing
    if id(node) in clearing:  # an optimizer's or a module's zero_grad() at work
        clearing.discard(id(node))
        return
    zero = value is None or (type(value) in (float, int) and value == 0) or (
        type(value) is np.ndarray and value.dtype.kind == "f" and value.size > 0
        and not value.any())
    if zero and id(node) not in _tls.tracer_ids:
        events = _tls.events
        if not (events and events[-1][0] == "zero_grad" and type(events[-1][1]) is _GradSet):
            events.append(("zero_grad", _GradSet()))
        gs = events[-1][1]
        _keep_grads([node])
        gs.params.append(node)
        gs.values.append(value if type(value) is not np.ndarray else value.copy())
        after = getattr(_tls, "after", None)
        if after is not None and node in after:
            after[node] = (None, None)
        return
    why = ("the function's argument: assign its gradient outside, before or after the call"
           if zero else "a value computed while tracing (clipping, scaling): the assignment "
           "runs once, and a compiled replay would keep the pass's own gradient")
    raise TracingError(
        f"tg.jit: assigning .grad of {node.describe()} at {_user_site()[1]}, to {why}. "
        "Clearing gradients inside replays (`p.grad = None` or 0, opt.zero_grad(), "
        "model.zero_grad(), tg.zero_grad(...)); clip or scale outside the compiled function.")


def _grads_kept() -> None:
    """At the end of a trace: the gradients as the recorded events left them. One changed in
    place (`p.grad *= 0.5`, `np.clip(p.grad, -1, 1, out=p.grad)`) would not replay."""
    after = getattr(_tls, "after", None) or {}
    for p, (g, copy) in after.items():
        if g is None and copy is None:
            continue  # cleared by zero_grad() (to None or to zeros) or by assignment
        if p.grad is not g or not _same(g, copy):
            raise TracingError(
                f"tg.jit: the gradient of {p.describe()} was changed after backward() inside "
                f"{_tls.fn_name}: gradient clipping or scaling written in Python runs once, "
                "while tracing, and a compiled replay would leave the pass's own gradient. "
                "Compile the loss and backward() alone, then clip or scale outside.")


class _GradWatch:
    """Node.grad while any trace runs: reads as the slot does; an assignment by the thread
    that is tracing goes through _grad_assigned first."""

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else _GRAD_SLOT.__get__(obj, objtype)

    def __set__(self, obj: Any, value: Any) -> None:
        if getattr(_tls, "depth", 0) and getattr(_tls, "events", None) is not None:
            _grad_assigned(obj, value)
        _GRAD_SLOT.__set__(obj, value)

    def __delete__(self, obj: Any) -> None:
        _GRAD_SLOT.__delete__(obj)


_GRAD_SLOT = Node.__dict__["grad"]  # the slot's own descriptor


def _watch_grads(on: bool) -> None:
    """Install (or remove) _GradWatch as Node.grad. (Called under _guard_lock.)"""
    Node.grad = _GradWatch() if on else _GRAD_SLOT  # type: ignore[assignment]


def _detach_fwd(x: Any) -> Any:
    return x.copy() if type(x) is np.ndarray else x


# detach() and Node(node) while tracing: the engine sees a leaf (no parents: no gradient flows
# through it), the builder an op whose input is attrs["src"] (see _parents_of)
_DETACH = Primitive("detach", _detach_fwd, (lambda g, out, x: None,), symbol="detach")
_DETACH_T = dict(sfwd="{0}", afwd="{0}.copy()", vjps=("None",), gshape=("out",))


def _keep_grads(nodes: Any) -> None:
    saved = [(n, _snapshot(n.grad)) for n in nodes]

    def undo() -> None:
        for n, g in saved:
            n.grad = g
    _tls.undo.append(undo)


def _snapshot(v: Any) -> Any:
    """A copy of a gradient or of an optimizer's state value: arrays copied (an optimizer of your
    own may update its buffers in place), lists, tuples and dicts looked into, anything else
    kept as it is."""
    if isinstance(v, np.ndarray):
        return v.copy()
    if type(v) in (list, tuple):
        return type(v)(_snapshot(x) for x in v)
    if type(v) is dict:
        return {k: _snapshot(x) for k, x in v.items()}
    return v


def _keep_step(opt: Any) -> None:
    """Note what opt.step() changes: its parameters' data and its own state."""
    data = [(p, p._data, p._mtime) for p in opt.params]
    _tls.read = {p: d for p, d, _ in data}  # the arrays the traced forward read (see _views)
    state = {k: _snapshot(v) for k, v in vars(opt).items() if k != "params"}

    def undo() -> None:
        for p, d, mt in data:
            p._data, p._mtime = d, mt
        vars(opt).update(state)
    _tls.undo.append(undo)


def _hand_back() -> None:
    """Give the gradients that reached the node arguments' tracers to the arguments, as eager
    backward would have: a node made outside the function carries its gradient further back
    (to the parameters behind it, before an optimizer step inside the function reads them)."""
    pairs, _tls.hand_back = getattr(_tls, "hand_back", []), []
    depth, _tls.depth = _tls.depth, 0  # the engine's own passes here are not the function's
    try:
        for t, x in pairs:
            g = t.grad
            if g is None:
                continue
            if x._prim is not None and x.requires_grad:
                _keep_grads(engine.toposort(x))
                engine.backward(x, g)
            else:
                _keep_grads([x])
                x.grad = g if x.grad is None else x.grad + g
    finally:
        _tls.depth = depth


def _parents_of(n: Node) -> tuple:
    """A traced node's inputs as the builder sees them (a copy's: its source)."""
    return (n.attrs["src"],) if n._prim is _DETACH else n.parents


def _tracing() -> bool:
    return _active > 0 and getattr(_tls, "depth", 0) > 0


# ---------------------------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------------------------


def _key(x: Any) -> Any:
    t = type(x)
    if t is np.ndarray:  # the common cases first: this runs on every call
        if x.dtype.kind == "f":
            return (x.shape, x.dtype)
        return ("index", x.shape, x.dtype, x.tobytes())
    if t is float:  # -0.0 == 0.0, but 1 / -0.0 is -inf: the sign is part of the value
        return (t, x if x == x else "nan", math.copysign(1.0, x))  # (nan != nan: one key)
    if t is int or t is str:
        return (t, x)
    if isinstance(x, Node):
        d = x._data
        return ("node", type(d) is float or (d.shape, d.dtype), bool(x.requires_grad))
    if isinstance(x, np.ndarray):
        if x.dtype.kind == "f":
            return ("array", x.shape, x.dtype)
        return ("index", x.shape, x.dtype, x.tobytes())
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, tuple(_key(v) for v in x))
    if isinstance(x, dict):
        return ("dict", tuple((k, _key(v)) for k, v in x.items()))
    if x is None or isinstance(x, (bool, int, float, str, complex, np.generic)):
        if isinstance(x, (float, np.floating)):
            return ("value", type(x).__name__, x if x == x else "nan", math.copysign(1.0, x))
        return ("value", type(x).__name__, x)
    return ("object", id(x))


class _Arg:
    """Where one traced input comes from at replay: a path into (args, kwargs)."""

    __slots__ = ("path", "kind", "orig_rg")

    def __init__(self, path: tuple, kind: str, orig_rg: bool) -> None:
        self.path = path
        # "node" (read ._data), "array" (the argument itself) or "convert" (a 0-d array or an
        # ndarray subclass such as np.matrix: made a float or a plain array, as when tracing)
        self.kind = kind
        self.orig_rg = orig_rg


def _fetch(args: tuple, kwargs: dict, path: tuple) -> Any:
    x: Any = kwargs if path[0] == "kw" else args
    for p in path[1:]:
        x = x[p]
    return x


# ---------------------------------------------------------------------------------------------
# Code generation
# ---------------------------------------------------------------------------------------------

_IDENT = re.compile(r"[^0-9A-Za-z_]")
_MAX_DEPTH = 40  # inlined sub-expressions nest at most this deep (the parser has limits)


def _lit(v: Any) -> str | None:
    """A Python literal for an attribute or constant, or None if it needs a name."""
    if v is None or isinstance(v, (bool, int, str)):
        return repr(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, tuple):
        parts = [_lit(x) for x in v]
        if any(p is None for p in parts):
            return None
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    if isinstance(v, slice):
        parts = [_lit(x) for x in (v.start, v.stop, v.step)]
        return None if None in parts else f"slice({', '.join(parts)})"
    if v is Ellipsis:
        return "..."
    if isinstance(v, np.integer):
        return repr(int(v))
    return None


@functools.lru_cache(maxsize=1024)
def _top_level_add(s: str) -> bool:
    """Whether s has a binary + or - (or a conditional) outside brackets: then it needs
    parentheses as the right operand of a sum, or float addition would be reassociated."""
    depth = 0
    for i, ch in enumerate(s):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and ch in "+-" and i > 1 and s[i - 1] == " " and s[i + 1] == " ":
            return True
        elif depth == 0 and s.startswith(" if ", i):
            return True
    return False


# Elementwise ops that can write into a dead input's buffer: {0} the inputs, {1} the buffer,
# given as the ufunc's last argument (numpy parses that faster than the `out` keyword, which
# np.maximum requires).
_UFUNCS = {"add": "np.add({0}, {1})", "sub": "np.subtract({0}, {1})",
           "mul": "np.multiply({0}, {1})", "div": "np.divide({0}, {1})",
           "neg": "np.negative({0}, {1})", "exp": "np.exp({0}, {1})", "log": "np.log({0}, {1})",
           "sqrt": "np.sqrt({0}, {1})", "tanh": "np.tanh({0}, {1})",
           "relu": "np.maximum({0}, 0, out={1})"}
# A number in a template (not a {field}): in an array op it becomes a 0-d array constant.
_NUMBER = re.compile(r"(?<![\w.{])\d+(?:\.\d+)?(?![\w.}])")


def _base_name(n: Node) -> str:
    """A variable name from a node's scope and name (L1.z -> L1_z), else scope and op."""
    if n.name is not None:
        return n.label
    op = n._prim.name if n._prim is not None else "const"
    return f"{n.scope}.{op}" if n.scope else op


def _is_infix(text: str) -> bool:
    return bool(re.fullmatch(r"\{0\} [-+*/] \{1\}", text))


def _mentions(name: str, contrib: dict[Node, list[tuple[str, bool, bool]]]) -> bool:
    """Whether a gradient contribution not yet emitted reads the array called name (an add
    passes its gradient on to both inputs): then it must not be changed in place."""
    pat = re.compile(rf"\b{re.escape(name)}\b")
    return any(pat.search(c) for cs in contrib.values() for c, _, _ in cs)


class _Builder:
    """Turns a traced graph into the source of forward() and one backward() per output."""

    def __init__(self, outputs: list[Node], t0: int,
                 tracers: list[tuple[Node, str, _Arg]]) -> None:
        self.outputs = outputs
        self.env: dict[str, Any] = dict(_BASE_ENV)
        # builtins the generated code calls, and Python's keywords, are never variable names
        self.names: set[str] = (set(self.env) | set(keyword.kwlist)
                                | {"forward", "backward", "backward_step", "float", "slice",
                                   "None", "lr", "wd", "ws"})  # backward_step's own arguments
        self.var: dict[Node, str] = {}
        self.expr: dict[Node, tuple[str, int, int]] = {}  # inlined nodes: (text, prec, depth)
        self.literal: dict[Node, str] = {}
        self.counter: dict[str, itertools.count] = {}
        self.fwd_lines: dict[Node, list[str]] = {}
        self.bwd_lines: dict[Node, list[str]] = {}
        self._scalar: dict[Node, bool] = {}
        self._fields: dict[Node, dict[str, str]] = {}
        self._bound: dict[tuple[str, int], str] = {}
        self._name_of: dict[Node, str] = {}
        self.fresh_results: dict[int, tuple[bool, ...]] = {}
        self.extra_saved: dict[Node, list[str]] = {}  # arrays an emitted op keeps for backward
        self._ce_div: dict[Node, tuple[str, int]] = {}
        self._ones: dict[tuple[int, Any], str] = {}  # batch-sum vectors by length and dtype
        self._wgrads: dict[str, tuple[str, str, int]] = {}  # "a.T @ g" -> (a, g, a's rows)
        self.read: dict[Node, Any] = {}  # a stepped parameter -> the array the trace read
        self.nums: dict[tuple[float, str], str] = {}  # numbers as 0-d arrays, see num()
        self._collect(t0, tracers)
        self._forward()

    # --- naming ---------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        base = _IDENT.sub("_", base) or "v"
        if base[0].isdigit():
            base = "v" + base
        if base not in self.names:
            self.names.add(base)
            return base
        c = self.counter.setdefault(base, itertools.count(2))
        while True:
            name = f"{base}_{next(c)}"
            if name not in self.names:
                self.names.add(name)
                return name

    def bind(self, base: str, value: Any) -> str:
        """A name in the generated code's globals for a value with no literal."""
        key = (base, id(value))
        name = self._bound.get(key)
        if name is None:
            name = self._bound[key] = self.fresh(base)
            self.env[name] = value
        return name

    def num(self, v: float, dtype: np.dtype) -> str | None:
        """A name for the number v as a 0-d array of dtype, or None where v must stay a
        literal. numpy applies a 0-d array of an array's own dtype to it faster than a Python
        number (which it converts on every call), with the same result: the number is
        rounded to that dtype either way."""
        v = float(v)
        with np.errstate(all="ignore"):
            a = np.array(v, dtype)
        if not (math.isfinite(v) and np.isfinite(a)):
            return None
        key = (v, dtype.str)
        name = self.nums.get(key)
        if name is None:
            text = {0.0: "zero", 1.0: "one"}.get(v)
            if text is None:
                text = str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
                text = "_" + text.replace("-", "m").replace("+", "").replace(".", "_")
            suffix = "" if dtype == np.float64 else f"_{dtype.kind}{dtype.itemsize * 8}"
            name = self.nums[key] = self.fresh(text + suffix)
            a.setflags(write=False)  # shared by every call (and thread): an operand, never out
            self.env[name] = a
        return name

    def array_dtype(self, n: Node) -> np.dtype | None:
        """The float dtype of an array op whose array operands all share it (then its numbers
        may become 0-d arrays of that dtype), else None."""
        if type(n._data) is not np.ndarray or n.dtype.kind != "f" or self._mixed(n):
            return None
        return n.dtype

    def numbers(self, n: Node, names: list[str], text: str | None = None
                ) -> tuple[list[str], str | None]:
        """names (n's operands as written) and a template text with the numbers of an array
        op as 0-d arrays of its dtype (see num)."""
        dt = self.array_dtype(n)
        if dt is None:
            return names, text
        out = list(names)
        for i, p in enumerate(self.par[n]):
            if p in self.literal:
                out[i] = self.num(p._data, dt) or out[i]
        if text is not None:
            text = _NUMBER.sub(lambda m: self.num(float(m.group(0)), dt) or m.group(0), text)
        return out, text

    # --- the graph ------------------------------------------------------------------------
    def _collect(self, t0: int, tracers: list[tuple[Node, str, _Arg]]) -> None:
        """Nodes of the trace (parents before children); leaves sorted into inputs/constants."""
        tr = {n: (v, a) for n, v, a in tracers}
        seen: set[Node] = set()
        stack = list(self.outputs)
        nodes: list[Node] = []
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            nodes.append(n)
            if n._prim is not None and n._ctime > t0 and n not in tr:
                stack.extend(_parents_of(n))
        nodes.sort(key=lambda n: n._ctime)
        self.order = nodes
        self.par = {n: _parents_of(n) for n in nodes}  # asked many times per node
        self.ops = [n for n in nodes if n._prim is not None and n._ctime > t0 and n not in tr]
        self.inputs: list[tuple[str, Node]] = []  # (var, node): read node._data at replay
        self.arg_inputs: list[tuple[str, _Arg]] = []  # (var, where): arguments
        grad_leaves: list[Node] = []
        for n, v, a in tracers:  # every argument is a parameter of forward(), used or not
            var = self.fresh(v)
            self.var[n] = var
            self.arg_inputs.append((var, a))
        self.tracer_nodes = {n: a for n, _, a in tracers}
        for n in nodes:
            if n in self.var or (n._prim is not None and n._ctime > t0):
                if n in tr and tr[n][1].orig_rg:
                    grad_leaves.append(n)
                continue
            d = n._data
            if n._ctime > t0:  # made inside the function from numbers: a constant
                self._constant(n)
                continue
            if not n.requires_grad and type(d) is float and engine._CONSTS.get(d) is n:
                self._constant(n)  # a shared number constant: immutable
                continue
            var = self.fresh(n.label or ("param" if n.requires_grad else "const"))
            self.var[n] = var
            self.inputs.append((var, n))
            if n.requires_grad:
                grad_leaves.append(n)
        self.grad_leaves = grad_leaves
        need = set(grad_leaves)  # nodes on a path from a gradient leaf
        for n in self.ops:  # (not through an op with no gradient: no_grad(), detach())
            if n.requires_grad and n._prim is not _DETACH and any(p in need for p in self.par[n]):
                need.add(n)
        self.need = need
        users: dict[Node, list[Node]] = {}
        for n in self.ops:
            for p in self.par[n]:
                users.setdefault(p, []).append(n)
        self.users = users

    def _constant(self, n: Node) -> None:
        d = n._data
        lit = _lit(d) if type(d) is float else None
        if lit is not None:
            self.literal[n] = lit
        else:
            self.var[n] = self.bind(n.label or "const", d)

    # --- per-op rendering -------------------------------------------------------------------
    def fields(self, n: Node) -> dict[str, str]:
        out = self._fields.get(n)
        if out is None:
            out = {k: self._attr_value(k, v) for k, v in (n.attrs or {}).items()
                   if k not in ("saved", "src")}
            out["in0_shape"] = repr(self.par[n][0].shape)
            self._fields[n] = out
        return out

    def kwargs(self, n: Node) -> str:
        return "".join(f", {k}={self._attr_value(k, v)}" for k, v in (n.attrs or {}).items()
                       if k not in ("saved", "src"))

    def _attr_value(self, k: str, v: Any) -> str:
        if isinstance(v, tuple):
            lit = _lit(v)
            if lit is not None:
                return lit
            parts = [self._attr_value(k, x) for x in v]
            return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        lit = None if isinstance(v, np.ndarray) else _lit(v)
        return lit if lit is not None else self.bind(k, v)

    def ref(self, n: Node) -> tuple[str, int, int]:
        """(text, precedence, depth) of a node's value in an expression (precedence: 0 an
        atom, 1 unary minus, 2 * /, 3 + -, 9 anything else)."""
        if n in self.literal:
            lit = self.literal[n]
            return lit, (1 if lit.startswith("-") else 0), 0
        if n in self.expr:
            return self.expr[n]
        return self.var[n], 0, 0

    def name_of(self, n: Node) -> str:
        r = self._name_of.get(n)
        if r is None:
            t, p, _ = self.ref(n)
            r = t if p == 0 else f"({t})"
            if n in self.var or n in self.literal:  # final once named (inlined: not cached)
                self._name_of[n] = r
        return r

    def template(self, n: Node) -> dict[str, Any] | None:
        prim = n._prim
        if prim is _DETACH:
            return _DETACH_T
        t = TEMPLATES.get(prim.name) if prim.builtin else None
        if t is None:
            return None
        if self.scalar_op(n) and t.get("sfwd") is None:
            return None
        if prim.name in ("linear", "matmul") and len({q.dtype for q in self.par[n]}) > 1:
            return None
        if "emit" in t and not (type(self.par[n][0]._data) is np.ndarray
                                and self.par[n][0].ndim == 2
                                and isinstance(n.attrs.get("labels"), np.ndarray)):
            return None
        return t

    def scalar_op(self, n: Node) -> bool:
        """Whether every input of op n is a Python float (cached: asked several times per op)."""
        r = self._scalar.get(n)
        if r is None:
            r = self._scalar[n] = all(type(p._data) is float for p in self.par[n])
        return r

    def vjp_strings(self, n: Node, t: dict[str, Any]) -> tuple[str, ...]:
        if "vjpi" in t:
            return tuple(t["vjpi"].replace("{x}", "{" + str(i) + "}")
                         for i in range(len(self.par[n])))
        vjps = t["vjps"]
        if "svjps" in t and self.scalar_op(n):
            vjps = t["svjps"]
        if "vjps2d" in t and self.par[n][0].ndim == 2 and self.par[n][1].ndim == 2:
            vjps = t["vjps2d"]
        return vjps

    def fwd_text(self, n: Node, t: dict[str, Any] | None) -> tuple[str, int, int]:
        parents = self.par[n]
        scalar = self.scalar_op(n)
        refs = [self.ref(p) for p in parents]
        depth = 1 + max((r[2] for r in refs), default=0)
        if t is not None and "afwdi" in t and all(type(p._data) is np.ndarray for p in parents):
            terms = " + ".join(t["afwdi"].replace("{x}", r[0] if r[1] == 0 else f"({r[0]})")
                               for r in refs)
            # (0.5·lam) first, then the sum in order: the op table's own arithmetic
            return f"{0.5 * n.attrs['lam']!r} * ({terms})", 2, depth
        if t is None or (t.get("sfwd") if scalar else t.get("afwd")) is None:
            prim = n._prim
            use_scalar = prim.scalar is not None and scalar
            f = self.bind(f"{prim.name}_fwd", prim.scalar if use_scalar else prim.fwd)
            args = ", ".join([r[0] for r in refs])
            call = f"{f}({args}{self.kwargs(n)})".replace("(, ", "(")
            if type(n._data) is float and not (n.attrs and "saved" in n.attrs):
                call = f"float({call})"  # numpy scalars and 0-d arrays become floats
            return call, 0, depth
        text = t["sfwd"] if scalar else t["afwd"]
        prec = t.get("prec", 9) if scalar or _is_infix(text) or text.startswith("-") else 0
        if not scalar:
            names, text = self.numbers(n, [r[0] for r in refs], text)
            refs = [(m, 0, r[2]) if m != r[0] else r for m, r in zip(names, refs)]
        if _is_infix(text):
            args = [self.wrap(r[0], r[1], prec, right=i == 1) for i, r in enumerate(refs)]
        else:
            args = [r[0] if r[1] == 0 else f"({r[0]})" for r in refs]
        s = text.format(*args, **self.fields(n))
        if type(n._data) is float and not scalar:
            s, prec = f"float({s})", 0
        return s, prec, depth

    @staticmethod
    def wrap(text: str, prec: int, slot: int, right: bool) -> str:
        if prec < slot or (prec == slot and not right):
            return text
        return f"({text})"

    def vjp_text(self, n: Node, i: int, g: str, t: dict[str, Any] | None
                 ) -> tuple[str, bool, bool]:
        """(parent i's gradient contribution, whether it is a fresh value nobody else holds,
        whether it needs parentheses as a term of a sum)."""
        parents = self.par[n]
        p = parents[i]
        names = [self.name_of(q) for q in parents]
        out = self.var.get(n, "")
        if t is not None:
            v = self.vjp_strings(n, t)[i]
            names, text = self.numbers(n, names, v)
            raw = text.format(*names, g=g, out=out, **self.fields(n))
            gshape = t["gshape"][min(i, len(t["gshape"]) - 1)]
            fresh = v != "{g}" and not t.get("view")  # a view may share g's memory
            text, fresh = self._unbroadcast(raw, fresh, n, p, gshape)
            if v.startswith("_mm_") and not self._fits(n, i):
                # a product broadcast over batch axes: its rule's gradient keeps them
                dt = self.bind("float" + str(p.dtype.itemsize * 8), p.dtype)
                return f"_fit({text}, {p.shape!r}, {dt})", False, False
            if v == "{0}.T @ {g}" and text is raw and names[0].isidentifier():
                # a weight's gradient: see _sgd_update
                self._wgrads[text] = (names[0], g, parents[0].shape[0])
            return text, fresh, text is raw and _top_level_add(v)
        prim = n._prim
        kw = self.kwargs(n)
        if n.attrs and "saved" in n.attrs:
            kw += f", saved={out}_saved"
        if prim.vjps is None:
            f = self.bind(f"{prim.name}_vjp", prim.vjp)
            xs = ", ".join(names) + ("," if len(names) == 1 else "")
            text = f"{f}({i}, {g}, {out}, ({xs}){kw})"
        else:
            f = self.bind(f"{prim.name}_vjp{i}", prim.vjps[i])
            text = f"{f}({g}, {out}, {', '.join(names)}{kw})"
        # a rule's result may be a view of g (concat's): never written into in place
        if prim.builtin and self._fits(n, i):
            return text, False, False
        if type(p._data) is float:
            return f"_fit({text}, None, None)", False, False
        dt = self.bind("float" + str(p.dtype.itemsize * 8), p.dtype)
        return f"_fit({text}, {p.shape!r}, {dt})", False, False

    def _fits(self, n: Node, i: int) -> bool:
        """Whether a built-in rule, tried on the traced values, returns exactly the input's
        shape and dtype (then the generated code need not check it on every call)."""
        p = self.par[n][i]
        xs = tuple(q._data for q in self.par[n])
        try:
            with np.errstate(all="ignore"):
                gi = engine._call_rule(n._prim, i, n._data, n._data, xs, n.attrs)
        except Exception:  # noqa: BLE001 - any failure: keep the check
            return False
        if type(p._data) is float:
            return type(gi) is float
        return type(gi) is np.ndarray and gi.shape == p.shape and gi.dtype == p.dtype

    def _unbroadcast(self, text: str, fresh: bool, n: Node, p: Node,
                     gshape: str) -> tuple[str, bool]:
        """Sum broadcast axes away where the trace shows them, cast where dtypes are mixed."""
        pd, od = p._data, n._data
        if type(pd) is float:
            if self.scalar_op(n) and type(od) is float:
                return text, fresh
            return f"float(np.add.reduce({text}, axis=None))", True
        if self._mixed(n):
            dt = self.bind("float" + str(p.dtype.itemsize * 8), p.dtype)
            return f"_fit({text}, {pd.shape!r}, {dt})", False  # may return text's own array
        if gshape == "out" and type(od) is not float and od.shape != pd.shape:
            gs = od.shape
            lead = len(gs) - pd.ndim
            axes = tuple(range(lead)) + tuple(lead + k for k, s in enumerate(pd.shape)
                                              if s == 1 and gs[lead + k] != 1)
            if lead == 1 and len(gs) == 2 and gs[1:] == pd.shape and od.dtype == pd.dtype:
                # a bias's gradient: the batch sum as a vector-matrix product (one BLAS call,
                # without a reduction's setup)
                ones = self._ones.get((gs[0], od.dtype))
                if ones is None:
                    ones = self._ones[gs[0], od.dtype] = self.bind(
                        f"ones_{gs[0]}", np.ones(gs[0], od.dtype))
                arg = text if text.isidentifier() else f"({text})"
                text = f"{ones} @ {arg}"
            elif lead > 0 and gs[lead:] == pd.shape:
                text = f"np.add.reduce({text}, axis={0 if lead == 1 else axes!r})"
            else:
                text = (f"np.add.reduce({text}, axis={axes!r}, keepdims=True)"
                        f".reshape({pd.shape!r})")
            return text, True
        return text, fresh

    def _mixed(self, n: Node) -> bool:
        dts = {q.dtype for q in self.par[n] if type(q._data) is not float}
        if type(n._data) is not float:
            dts.add(n.dtype)
        return len(dts) > 1

    # --- forward ------------------------------------------------------------------------------
    def _forward(self) -> None:
        need = self.need
        self.tmpl = tmpl = {n: self.template(n) for n in self.ops}
        saved: set[Node] = set()  # values some backward rule reads
        for n in self.ops:
            t = tmpl[n]
            for i, p in enumerate(self.par[n]):
                if p not in need:
                    continue
                if t is None:
                    saved.add(n)
                    saved.update(self.par[n])
                    continue
                if "emit" in t:
                    continue  # keeps arrays of its own (self.extra_saved)
                v = self.vjp_strings(n, t)[i]
                if "{out}" in v:
                    saved.add(n)
                for k, q in enumerate(self.par[n]):
                    if "{" + str(k) + "}" in v:
                        saved.add(q)
        self.saved_nodes = saved
        outs = set(self.outputs)
        lines: list[str] = []
        owned: set[Node] = set()  # arrays made by this code and held by nobody else
        for n in self.ops:
            t = tmpl[n]
            if t is not None and "emit" in t:
                self.fwd_lines[n] = emitted = self._softmax_ce_fwd(n)
                lines += emitted
                continue
            text, prec, depth = self.fwd_text(n, t)
            if self._inline(n, depth, outs, saved):
                self.expr[n] = (text, prec, depth)
                continue
            name = self.var[n] = self.fresh(_base_name(n))
            emitted: list[str]
            pname = n._prim.name
            if t is not None and pname == "linear":
                x, w, b = (self.name_of(q) for q in self.par[n])
                emitted = [f"{name} = {x} @ {w}", f"{name} += {b}  # bias added in place"]
                owned.add(n)
            elif (t is not None and pname in _UFUNCS and type(n._data) is not float
                  and not self.scalar_op(n)
                  and (buf := self._dead_buffer(n, owned, saved, outs)) is not None):
                s_ = self.var[buf]
                args, uf = self.numbers(n, [self.name_of(q) for q in self.par[n]], _UFUNCS[pname])
                emitted = [f"{name} = {uf.format(', '.join(args), s_)}  # in place: {s_} is not "
                           "needed again"]
                owned.add(n)
            elif n.attrs and "saved" in n.attrs:
                emitted = [f"{name}, {name}_saved = {text}"]
                if type(n._data) is float:
                    emitted.append(f"{name} = float({name})")
            else:
                emitted = [f"{name} = {text}"]
                if (t is not None and type(n._data) is not float and not self.scalar_op(n)
                        and (pname in _UFUNCS or pname in ("matmul", "sigmoid"))):
                    owned.add(n)  # a new array that only this code holds
            self.fwd_lines[n] = emitted
            lines += emitted
        params = [v for v, _ in self.inputs] + [v for v, _ in self.arg_inputs]
        save_vars = []
        for n in self.order:
            if n in saved and n in self.var and n not in self.literal:
                save_vars.append(self.var[n])
                if n.attrs and "saved" in n.attrs and n in tmpl and tmpl[n] is None:
                    save_vars.append(f"{self.var[n]}_saved")
            if n in self.extra_saved and n in self.need:
                save_vars += self.extra_saved[n]
        self.save_vars = list(dict.fromkeys(save_vars))
        outs_text = ", ".join(self.ref(o)[0] for o in self.outputs)
        sv = ", ".join(self.save_vars) + ("," if len(self.save_vars) == 1 else "")
        body = lines + [f"return ({outs_text},), ({sv})"]
        self.forward_src = (f"def forward({', '.join(params)}):\n"
                            + "\n".join("    " + ln for ln in body) + "\n")

    def _softmax_ce_fwd(self, n: Node) -> list[str]:
        """Softmax cross-entropy's forward line; e = exp(s - rowmax) and its row sums se are
        kept for the backward (self.extra_saved)."""
        name = self.var[n] = self.fresh(_base_name(n))
        e, se = self.fresh(name + "_e"), self.fresh(name + "_se")
        self.extra_saved[n] = [e, se]
        s = self.par[n][0]
        labels = n.attrs["labels"]
        flat = np.arange(len(labels)) * s.shape[1] + labels  # labels' flat indices into s
        fl = self.bind(name + "_labels", flat)
        self._ce_div[n] = (fl, len(labels) if n.attrs.get("mean") else 1)
        return [f"{name}, {e}, {se} = _softmax_ce({self.name_of(s)}, {fl}, {self._ce_div[n][1]})"
                f"  # softmax CE; keeps {e} = exp(s - rowmax), {se} its row sums"]

    def _softmax_ce_bwd(self, n: Node, g: str, name: str) -> list[str]:
        """dL/ds = (softmax(s) - onehot(labels))·g/N from the forward's e and se."""
        e, se = self.extra_saved[n]
        fl, div = self._ce_div[n]
        gn = g if div == 1 else f"{g} / {div}"
        return [f"{name} = {e} * ({gn} / {se})  # softmax(s)·g/N",
                f"{name}.reshape(-1)[{fl}] -= {gn}  # minus g/N at each row's label"]

    def _dead_buffer(self, n: Node, owned: set, saved: set, outs: set) -> Node | None:
        """An input array of n that this code made, that nothing reads after n, and that has
        n's shape and dtype: n's result can be written into it (numpy's out=)."""
        for q in self.par[n]:
            if (q in owned and len(self.users.get(q, ())) == 1 and q not in saved
                    and q not in outs and q.shape == n.shape and q.dtype == n.dtype):
                return q
        return None

    def _inline(self, n: Node, depth: int, outs: set, saved: set) -> bool:
        """Paste a scalar op's expression into its only user instead of naming it: what turns
        micrograd-style graphs (one node per number) into a few lines per neuron."""
        if type(n._data) is not float or n in outs or n in saved or depth >= _MAX_DEPTH:
            return False
        if n.attrs and "saved" in n.attrs or not self.scalar_op(n):
            return False
        us = self.users.get(n, [])
        if len(us) != 1:
            return False
        u = us[0]
        if not self.scalar_op(u):
            return False
        t = self.tmpl[u]
        if t is None:
            return True
        k = self.par[u].index(n)
        if sum(1 for q in self.par[u] if q is n) > 1:
            return False
        return t["sfwd"].count("{" + str(k) + "}") == 1

    # --- backward -----------------------------------------------------------------------------
    def backward_src(self, k: int, sgd: tuple[list[Node], bool, bool, set] | None = None
                     ) -> str:
        """backward(dL_d<output k>, *saved): the gradient leaves' gradients, None where none.

        With sgd = (params, dead, has_wd, in_place):
        backward_step(dL_d<output k>, *saved, lr, wd, ws) instead, which also returns each
        parameter's new value under plain SGD (None where no gradient). When the gradients
        are dead after the step (zero_grad() follows it), they are not materialized: an l2
        term (lam·g·w) and the weight decay fold into w·(1 - lr·(wd + …)), as a hand-written
        step does. Parameters in in_place are updated in their own arrays.
        """
        # each backward is a function of its own: its local names start again from the
        # forward's (globals bound on the way stay taken)
        names = set(self.names)
        bwd_lines = self.bwd_lines
        if sgd is not None:
            self.bwd_lines = {}  # explain() shows the plain backward
        try:
            return self._backward_src(k, sgd)
        finally:
            self.names = names | {n for n in self.names if n in self.env}
            self.counter = {}
            self.bwd_lines = bwd_lines

    def _backward_src(self, k: int, sgd: tuple[list[Node], bool, bool, set] | None) -> str:
        need = self.need
        self._scaled: dict[tuple[Node, str], str] = {}  # (param, l2 term's text) -> lam·g
        self._wgrads = {}  # this function's own names
        upd = {} if sgd is None else {p: None for p in sgd[0]}
        self._deferred: list[str] = []  # in-place updates waiting for the last read of w
        new_of: dict[Node, str] = {}
        root = self.outputs[k]
        seed = self.fresh("dL_d" + self.ref(root)[0] if root in self.var else "dL_dout")
        owned: set[str] = set()
        contrib: dict[Node, list[tuple[str, bool, bool]]] = {}
        lines: list[str] = []
        # a leaf's gradient is written as soon as its last user is done (its inputs are still
        # in cache then, as in a hand-written backward); ops that no gradient reaches leave
        # theirs to the end
        left = {leaf: len(self.users.get(leaf, ())) for leaf in self.grad_leaves
                if leaf is not root}
        done: dict[Node, tuple[str | None, bool]] = {}
        for n in reversed(self.ops):
            if n not in need:
                continue
            start = len(lines)
            if n is root:
                g = seed
            else:
                g = self._finish(n, contrib.pop(n, None), lines, owned)
                if g is None:
                    continue
            t = self.tmpl[n]
            for i, p in enumerate(self.par[n]):
                if p not in need:
                    continue
                if (t is not None and n._prim.name == "relu" and type(n._data) is not float
                        and g in owned and not _mentions(g, contrib)
                        and all(r != g for r, _ in done.values())):
                    zero = self.num(0.0, n.dtype) or "0"
                    lines.append(f"{g} *= {self.var[n]} > {zero}  # dL_d{self.var.get(p, 'x')}"
                                 ": relu's gradient, in place")
                    owned.discard(g)
                    contrib.setdefault(p, []).append((g, True, False))
                    continue
                if t is not None and "emit" in t:
                    name = self.fresh("dL_d" + (self.var.get(p) or "scores"))
                    lines += self._softmax_ce_bwd(n, g, name)
                    contrib.setdefault(p, []).append((name, True, False))
                    continue
                c = self.vjp_text(n, i, g, t)
                if sgd is not None and t is not None and "vjpi" in t and n._prim.name == "l2":
                    coef = f"{self.fields(n)['lam']} * {g}"
                    if c[0] == f"{coef} * {self.name_of(p)}":
                        self._scaled[p, c[0]] = coef
                contrib.setdefault(p, []).append(c)
            shown = lines[start:]
            if n is root:
                shown = [f"# {g}: given to backward() (1.0 by default)"] + shown
            elif start == len(lines) or not lines[start].startswith(g + " "):
                shown = [f"# the same array as {g}"] + shown  # add passes g on unchanged
            self.bwd_lines.setdefault(n, []).extend(shown)
            for p in self.par[n]:
                if p in left:
                    left[p] -= 1
                    if not left[p]:
                        del left[p]
                        done[p] = self._finish_leaf(p, contrib, lines, owned, upd, new_of,
                                                    sgd)
        results = []
        fresh = []
        for leaf in self.grad_leaves:
            if leaf is root:
                results.append(seed)
                fresh.append(False)
                continue
            if leaf not in done:
                done[leaf] = self._finish_leaf(leaf, contrib, lines, owned, upd, new_of, sgd)
            g, own = done[leaf]
            fresh.append(own and g not in results)
            results.append("None" if g is None else g)
        if sgd is not None:
            lines += self._deferred
            if sgd[1]:
                lines.insert(0, f"# {seed} is lr: every gradient below is already lr·g (the "
                             "gradients are not kept)")

            def tup(xs: list[str]) -> str:
                return f"({', '.join(xs)}{',' if len(xs) == 1 else ''})"
            ps = sgd[0]
            lines.append(f"return {tup([upd[p] or 'None' for p in ps])}, "
                         f"{tup([new_of.get(p, 'None') for p in ps])}")
            # the parameters' values, for the update (the forward saves only what rules read)
            gl = set(self.grad_leaves)
            ws = [self.name_of(p) for p in ps if p in gl and p in new_of]
            if ws:
                lines.insert(0, f"{', '.join(ws)}{',' if len(ws) == 1 else ''} = ws")
            self.step_ws = [p for p in ps if p in gl and p in new_of]
            args = ", ".join([seed] + self.save_vars + ["lr", "wd", "ws"])
            return (f"def backward_step({args}):\n"
                    + "\n".join("    " + ln for ln in lines) + "\n")
        self.fresh_results[k] = tuple(f and results.count(r) == 1 for f, r in
                                      zip(fresh, results))
        lines.append(f"return ({', '.join(results)}{',' if len(results) == 1 else ''})")
        args = ", ".join([seed] + self.save_vars)
        return f"def backward({args}):\n" + "\n".join("    " + ln for ln in lines) + "\n"

    def _finish_leaf(self, leaf: Node, contrib: dict, lines: list[str], owned: set[str],
                     upd: dict | None = None, new_of: dict | None = None,
                     sgd: tuple | None = None) -> tuple[str | None, bool]:
        """(name, a new array nobody else holds) of a gradient leaf's finished gradient; for a
        parameter of a compiled SGD step, its update too (see backward_src)."""
        start = len(lines)
        cs = contrib.pop(leaf, None)
        if upd is not None and leaf in upd and cs:
            g = self._sgd_update(leaf, cs, lines, owned, upd, new_of, contrib, sgd)
        else:
            g = self._finish(leaf, cs, lines, owned)
        self.bwd_lines.setdefault(leaf, []).extend(lines[start:])
        return g, g is not None and g in owned

    def _sgd_update(self, w: Node, cs: list, lines: list[str], owned: set[str], upd: dict,
                    new_of: dict, contrib: dict, sgd: tuple) -> str | None:
        """Emit plain SGD's new value of parameter w, w - lr·(g + wd·w), with no more arrays
        and passes than a hand-written step; returns the name of the gradient array it reads
        (so that nothing writes into it afterwards).

        Dead gradients (sgd[1]): the backward runs with lr as its seed (it is linear in it),
        so every term is already lr·g: an l2 term lr·lam·w folds into a factor on w and the
        rest is subtracted as it is. Kept gradients: seed 1, .grad gets g, the step is lr·g.
        In place (w in sgd[3]), w's own array is updated; while a pending gradient term still
        reads w, that write waits for the end of the function."""
        _, dead, has_wd, big = sgd
        inplace = w in big
        wv = self.name_of(w)
        ks = [self._scaled[w, c] for c, _, _ in cs if (w, c) in self._scaled] if dead else []
        rest = [c for c in cs if not dead or (w, c[0]) not in self._scaled]
        late = self._deferred if inplace and self._read_later(w, contrib) else lines
        new = wv if inplace else self.fresh("new_" + wv)
        new_of[w] = new
        decay = " + ".join((["lr * wd"] if has_wd else []) + ks)
        shrink = f"(1.0 - ({decay}))" if decay else None
        if (dead and inplace and len(rest) == 1 and rest[0][0] in self._wgrads
                and w.size * self._wgrads[rest[0][0]][2] >= _GEMM_MIN and _blas.available()):
            # w·decay - aᵀ·(lr·dz) in one BLAS call writing into w: no gradient array, one
            # pass over w fewer (numpy's matmul has no beta; see tinygraph._blas)
            a, dz, _ = self._wgrads[rest[0][0]]
            owned.discard(dz)  # read when w is updated, which may wait for the end
            late.append(f"_sgd_gemm({wv}, {a}, {dz}, {shrink or '1.0'})  # SGD step in place, "
                        f"fused into the gradient's product: {wv}·decay - {a}.T @ {dz} "
                        "(one BLAS call)")
            return dz
        g = self._finish(w, rest, lines, owned) if rest else None
        if dead:
            step = g
            if g is not None and late is not lines:
                owned.discard(g)  # read at the end: nothing may write into it before
        else:
            if g not in owned:  # .grad gets an array of its own (optimizers write into it)
                own = self.fresh(g)
                lines.append(f"{own} = {g}.copy()")
                g = own
            owned.discard(g)  # kept as .grad: nothing writes into it from here on
            upd[w] = g
            step = self.fresh("step_" + wv)
            lines.append(f"{step} = lr * {g}  # SGD step")
        note = "  # SGD step" + (f", in place: nothing else holds {wv}" if inplace else "")
        if inplace:
            if shrink:
                late.append(f"{wv} *= {shrink}{note}")
            if step:
                late.append(f"{wv} -= {step}" + ("" if shrink else note))
        elif shrink:
            lines.append(f"{new} = {wv} * {shrink}{note}")
            if step:
                lines.append(f"{new} -= {step}")
        elif dead and step in owned and not _mentions(step, contrib):
            # the gradient's own array becomes the new value
            owned.discard(step)
            lines.append(f"np.subtract({wv}, {step}, {step}){note}, in lr·g's array")
            new_of[w] = step
        else:
            lines.append(f"{new} = {wv} - {step}{note}")
        return g if g is not None else wv

    def _read_later(self, w: Node, contrib: dict) -> bool:
        """Whether code still to be emitted (a gradient term, a deferred update) reads w's
        array, under w's name or a view's (w.T, a reshape or a slice of w, saved by the
        forward): then an update of w in its own array must wait for the end."""
        d = self.read.get(w, w._data)
        names = [self.name_of(w)] + [
            v for n, v in self.var.items() if n is not w and type(n._data) is np.ndarray
            and type(d) is np.ndarray and np.may_share_memory(n._data, d)]
        # and whatever may be a view on replay though it was a copy when tracing (a reshape of
        # a Fortran-ordered w): ops reached from w through reshapes, indexing and rules the
        # generated code calls (a transpose, a primitive of your own)
        todo, seen = [w], {w}
        while todo:
            for u in self.users.get(todo.pop(), ()):
                t = self.tmpl.get(u)
                if (u not in seen and type(u._data) is np.ndarray and u._prim is not _DETACH
                        and (t is None or u._prim.name in ("reshape", "getitem"))):
                    seen.add(u)
                    todo.append(u)
                    if u in self.var:
                        names.append(self.var[u])
        pat = re.compile("|".join(rf"\b{re.escape(v)}\b" for v in names))
        return any(pat.search(c) for cs in contrib.values() for c, _, _ in cs) or any(
            pat.search(line) for line in self._deferred)

    def _finish(self, n: Node, cs: list[tuple[str, bool, bool]] | None, lines: list[str],
                owned: set[str]) -> str | None:
        """Emit n's gradient, the sum of its contributions in eager backward's order."""
        if not cs:
            return None
        base = self.var.get(n) or n._prim.name
        if len(cs) == 1:
            text, fresh, _ = cs[0]
            if text.isidentifier():
                if fresh:
                    owned.add(text)
                return text
            name = self.fresh("dL_d" + base)
            lines.append(f"{name} = {text}")
            if fresh:
                owned.add(name)
            return name
        name = self.fresh("dL_d" + base)
        terms = [f"({c})" if top else c for c, _, top in cs]
        if type(n._data) is float:
            for s in range(0, len(terms), 100):
                chunk = " + ".join(terms[s:s + 100])
                lines.append(f"{name} = {chunk}" if s == 0 else f"{name} = {name} + {chunk}")
        elif cs[1][1] and not cs[0][1]:
            # a + b == b + a exactly: start from the fresh array and add into it in place
            lines.append(f"{name} = {cs[1][0]}")
            lines += [f"{name} += {c}  # in place" for c, _, _ in [cs[0]] + cs[2:]]
        elif cs[0][1]:
            lines.append(f"{name} = {cs[0][0]}")
            lines += [f"{name} += {c}  # in place" for c, _, _ in cs[1:]]
        else:
            lines.append(f"{name} = {cs[0][0]} + {terms[1]}")
            lines += [f"{name} += {c}" for c, _, _ in cs[2:]]
        owned.add(name)
        return name


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------


class _JitOutput(Node):
    """A node returned by a compiled function: its backward() runs the generated backward.

    It is also an ordinary node of one op (the compiled function) whose parents are the
    gradient leaves, so it can be used in further eager ops and backpropagated through.
    """

    __slots__ = ()

    def backward(self, grad: Any = None, create_graph: bool = False,
                 retain_graph: bool | None = None) -> None:
        if create_graph:
            raise _no_second(self)
        attrs = self.attrs
        frame = attrs.get("frame") if attrs else None
        if frame is None or not self.requires_grad:
            engine.backward(self, grad)
            return
        parents = self.parents
        ct = self._ctime
        for p in parents:
            if p._prim is not None:  # a node made outside: the engine carries it further back
                engine.backward(self, grad)
                return
            if p._mtime > ct:
                raise GraphError(
                    f"backward: {p.describe()} was given new data after "
                    f"{self._prim.name} used it; this graph is stale. Run the forward pass "
                    "again before backward()."
                )
        g0 = 1.0 if grad is None and type(self._data) is float else engine._root_grad(self, grad)
        k = attrs["k"]
        grads = _grads(frame, k, g0)
        old = self.grad
        self.grad = g0 if old is None else old + g0
        if frame[0].fresh[k] is None:  # every result a new array nobody else holds (common)
            for p, gi in zip(parents, grads):
                if gi is not None:
                    old = p.grad
                    p.grad = gi if old is None else old + gi
            return
        fresh = frame[0].fresh_flags[k]
        seen: set[int] = set()
        for p, gi, f in zip(parents, grads, fresh):
            if gi is None:
                continue
            if not f and type(gi) is not float:
                # a leaf's .grad is an array of its own (optimizers update it in place); the
                # generated code says which results are new arrays nobody else holds
                if gi.base is not None or not gi.flags.writeable or id(gi) in seen:
                    gi = gi.copy()
                seen.add(id(gi))
            old = p.grad
            p.grad = gi if old is None else old + gi


def _grads(frame: tuple, k: int, g: Any) -> tuple:
    """The gradient leaves' gradients for output k with seed g (None: no path)."""
    entry, saved, args, kwargs = frame
    if _anomaly_on() and entry.script is None:
        return entry.eager_grads(args, kwargs, k, g)  # so that an anomaly names its op
    # As in eager backward: the generated code makes no reference cycles, so the cyclic
    # collector has nothing to find, while its passes over a big traced graph cost time.
    off = entry.big and gc.isenabled()
    if off:
        gc.disable()
    try:
        return entry._bwd[k](g, *saved)
    except (ArithmeticError, ValueError):
        if entry.script is not None:
            raise _Fallback from None  # the whole step runs eagerly instead (see _Entry.run)
        return entry.eager_grads(args, kwargs, k, g)
    finally:
        if off:
            gc.enable()


def _no_second(node: Node) -> GraphError:
    return GraphError(
        f"backward(create_graph=True) through {node.describe()}: a compiled function's "
        "gradient is generated numpy code, not recorded ops, so it has no derivative of its "
        "own. Differentiate the uncompiled function (tg.grad, tg.hessian), or compile the "
        "function that computes the derivatives.")


def _jit_vjp(i: int, g: Any, out: Any, xs: tuple, frame: tuple, k: int, cache: list) -> Any:
    """Eager backward through a compiled output: every leaf's gradient at once, kept for the
    other parents of the same pass (the engine asks parent by parent, with the same g)."""
    if isinstance(g, Node):  # backward(create_graph=True), tg.grad, tg.hessian
        raise _no_second(out if isinstance(out, Node) else frame[0].graph)
    if cache[0] is not g:
        cache[1] = _grads(frame, k, g)
        cache[0] = g
    gi = cache[1][i]
    if gi is None:
        x = xs[i]
        return 0.0 if type(x) is float else np.zeros_like(x)
    return gi


def _no_forward(*xs: Any, **attrs: Any) -> Any:
    raise GraphError("a compiled function's node is made by the compiled function itself")


_RETRACE = object()  # _Entry.run's answer when the captured leaves changed since tracing


class _Fallback(Exception):
    """A compiled step's backward could not run on Python floats: replay the step eagerly."""
# In-place parameter updates rest on exact reference counts (CPython's, before 3.14 changed how
# some references are counted); elsewhere a compiled step always makes new arrays.
_REFCOUNTS = sys.implementation.name == "cpython" and sys.version_info < (3, 14)
_getrefcount = sys.getrefcount
_IN_PLACE_BYTES = 1 << 14  # parameters this big are updated in place by a compiled SGD step


class _Entry:
    """One signature's compiled code and what replay needs to feed it."""

    def __init__(self, fn: Callable, b: _Builder, graph: Any, struct: Any, trace_s: float
                 ) -> None:
        self.fn = fn
        self.graph = graph
        self.struct = struct
        self.builder = b
        self.trace_s = trace_s
        self.inputs = [n for _, n in b.inputs]
        self.args = [a for _, a in b.arg_inputs]
        self.flags = self._flags()
        self.names = [(o.name, o.scope) for o in b.outputs]
        # gradient leaves: a captured node, or the node passed at an argument position
        tr = b.tracer_nodes
        self.leaves = [("arg", tr[n].path) if n in tr else ("node", n) for n in b.grad_leaves]
        self.out_need = [o in b.need for o in b.outputs]
        self.prim = Primitive(f"jit({getattr(fn, '__name__', 'fn')})", _no_forward,
                              vjp=_jit_vjp, symbol="jit")
        self._bwd: dict[int, Callable] = {}
        self._bwd_src: dict[int, str] = {}
        self._lock = threading.Lock()
        t = time.perf_counter()
        if any(self.out_need):
            for k in range(len(b.outputs)):
                if self.out_need[k]:
                    self._bwd_src[k] = b.backward_src(k)
        head = (f"# tg.jit of {getattr(fn, '__qualname__', 'fn')}: {len(b.ops)} ops "
                f"({len(b.order)} nodes with leaves and constants)\n")
        rules = [k for k, v in b.env.items() if k not in _BASE_ENV and callable(v)]
        consts = [(k, v) for k, v in b.env.items() if k not in _BASE_ENV and not callable(v)]
        if rules:
            head += f"# {', '.join(rules)}: the op table's own functions\n"
        nums = set(b.nums.values())
        for dts in sorted({dt for _, dt in b.nums}):
            shown = sorted((v, k[0]) for k, v in b.nums.items() if k[1] == dts)
            head += (f"# numbers as 0-d {np.dtype(dts).name} arrays (numpy is faster with these "
                     f"than with Python floats): {', '.join(f'{v} = {x!r}' for v, x in shown)}\n")
        consts = [(k, v) for k, v in consts if k not in nums]
        for k, v in consts[:20]:
            what = (f"{v.dtype} array of shape {v.shape}" if isinstance(v, np.ndarray)
                    else type(v).__name__)
            head += f"# {k}: a constant ({what}) fixed when tracing\n"
        self.forward_src = head + b.forward_src
        ns = dict(b.env)
        exec(_compile(self.forward_src, fn), ns)
        self.forward = ns["forward"]
        for k in self._bwd_src:
            ns2 = dict(b.env)
            exec(_compile(self._bwd_src[k], fn), ns2)
            self._bwd[k] = ns2["backward"]
        # per output: None where every gradient result may be handed out as it is, else which
        # ones must be checked (and copied) before becoming a leaf's .grad
        self.fresh_flags = b.fresh_results
        self.fresh = {k: None if all(v) else v for k, v in b.fresh_results.items()}
        self.compile_s = time.perf_counter() - t
        # what replay needs, worked out once: positional arguments read directly, the parents
        # tuple of the outputs when it holds captured leaves only, gc toggled for big graphs
        self.arg_pos = ([(a.path[1], a.kind) for a in self.args]
                        if all(len(a.path) == 2 and a.path[0] == "args" for a in self.args)
                        else None)
        self.parents = (tuple(x for _, x in self.leaves)
                        if all(kind == "node" for kind, _ in self.leaves) else None)
        self.big = len(b.ops) > 200
        self.script: list[tuple[str, Any]] | None = None  # backward/step/zero_grad to replay
        self.step_big: list[Node] = []
        self.fast: Callable | None = None  # the generated replay of a whole SGD step
        self.n_out = len(b.outputs)

    def plan(self, events: list[tuple[str, Any]], root: Node | None, n_out: int) -> None:
        """Replay these events after the forward pass: opt.zero_grad(), the root's backward()
        and opt.step() as the traced call made them. The common training step, plain SGD
        whose parameters are exactly the graph's gradient leaves, becomes generated code."""
        from .optim import SGD

        b = self.builder
        self.n_out = n_out
        k = next((i for i, o in enumerate(b.outputs) if o is root), None)
        self.script = [(kind, k if kind == "backward" else obj) for kind, obj in events]
        kinds = [kind for kind, _ in events]
        stepped = [obj for kind, obj in events if kind == "step"]
        ids = {id(p) for p in stepped[0].params} if stepped else set()

        def as_zero_grad(obj: Any) -> bool:  # `p.grad = None` for each of the step's params
            return (type(obj) is _GradSet and all(v is None for v in obj.values)
                    and {id(p) for p in obj.params} == ids)
        opts = {id(obj): obj for kind, obj in events
                if kind != "backward" and not as_zero_grad(obj)}
        if "step" not in kinds or len(opts) != 1 or k is None or not self.out_need[k]:
            return
        opt = next(iter(opts.values()))
        ps = list(opt.params)
        ids = {id(p) for p in ps}
        if (type(opt) is not SGD or opt.momentum or any(kind != "node" for kind, _ in self.leaves)
                or any(id(x) not in ids for _, x in self.leaves)
                or any(type(p._data) is float for p in ps)
                # the generated replay's case: one scalar loss returned, positional arguments
                or self.struct is not None or self.arg_pos is None or self.big or k != 0
                or type(b.outputs[0]._data) is not float):
            return
        at = kinds.index("backward")
        if "zero_grad" in kinds[at:kinds.index("step")]:
            return  # gradients cleared by assignment before the step: it steps nothing
        self.zb = "zero_grad" in kinds[:at]
        self.za = "zero_grad" in kinds[kinds.index("step"):]
        self.has_wd = bool(opt.weight_decay)
        self.opt, self.step_params, self.root_k = opt, ps, k
        # two versions: big parameters updated in place when nothing but their node holds
        # their arrays (checked by reference count on each call), else new arrays as optim.SGD
        # makes (for a small array a new one costs less than unlocking and locking it)
        big = {p for p in ps if type(p._data) is np.ndarray and p._data.nbytes >= _IN_PLACE_BYTES}
        steps: dict[bool, Callable] = {}
        for in_place in (set(), big) if _REFCOUNTS and big else (set(),):
            src = b.backward_src(k, (ps, self.za, self.has_wd, in_place))
            ns = dict(b.env)
            exec(_compile(src, self.fn), ns)
            steps[bool(in_place)] = ns["backward_step"]
            self.step_ws = b.step_ws
            self._bwd_src[-1] = src
        self.step_big = [p for p in self.step_ws if p in big]
        self.fast = self._fast_step(steps[False], steps.get(True))

    def _fast_step(self, bstep: Callable, bstep_ip: Callable | None) -> Callable:
        """The whole replay of a compiled SGD step as one generated function of the call's
        positional arguments: the checks, the forward, backward_step (the in-place version
        when the reference counts allow) and the parameters' new values. It returns None,
        having changed nothing, where run() must replay the events one by one (the optimizer's
        settings or the gradients are not as traced, no_grad() is on, a leaf changed)."""
        ins = self.inputs
        idx = {id(n): i for i, n in enumerate(ins)}
        env: dict[str, Any] = {
            "_forward": self.forward, "_bstep": bstep, "_bstep_ip": bstep_ip,
            "_opt": self.opt, "_make": engine._make, "_new": object.__new__, "_Out": _JitOutput,
            "_prim": self.prim, "_clock": engine._clock, "_rc": _getrefcount,
            "_grad_on": engine.is_grad_enabled, "_float": float, "_type": type,
            "_split": engine._split(self.parents), "_names": self.names[0],
        }
        lines = []
        for i, n in enumerate(ins):
            env[f"_leaf{i}"] = n
        # reference counts first: the local names below hold the arrays too
        big = [f"_rc(_leaf{idx[id(p)]}._data) == 2 and _leaf{idx[id(p)]}._data.base is None"
               for p in self.step_big]
        if big:
            lines.append(f"ip = {' and '.join(big)}")
        checks = []
        for i, (needs_grad, dt) in enumerate(self.flags):
            lines.append(f"d{i} = _leaf{i}._data")
            checks.append(f"_leaf{i}.requires_grad is not {bool(needs_grad)}")
            if dt is True:
                checks.append(f"_type(d{i}) is not _float")
            else:
                env[f"_dt{i}"] = dt
                checks.append(f"_type(d{i}) is _float or d{i}.dtype != _dt{i}")
        opt = "_opt"
        env["_pids"] = tuple(map(id, self.step_params))  # params changed since: its own step()
        checks += [f"tuple(map(id, {opt}.params)) != _pids",
                   f"{opt}.momentum", f"_type({opt}.lr) is not _float",
                   f"({opt}.weight_decay != 0) is not {self.has_wd}", "not _grad_on()"]
        if not self.zb:  # what backward() adds to must be nothing, as zero_grad() leaves it
            env["_params"] = self.step_params
            checks.append("any([p.grad is not None for p in _params])")
        lines.append("if (" + "\n        or ".join(checks) + "):")
        lines.append("    return None")
        xs = []
        env["_as_data"] = engine.as_data
        for j, (i, kind) in enumerate(self.arg_pos):
            lines.append(f"x{j} = args[{i}]._data" if kind == "node" else f"x{j} = args[{i}]"
                         if kind == "array" else f"x{j} = _as_data(args[{i}])")
            xs.append(f"x{j}")
        fargs = ", ".join([f"d{i}" for i in range(len(ins))] + xs)
        lines += [
            "try:",
            f"    outs, saved = _forward({fargs})",
            "except (ArithmeticError, ValueError):",
            "    return None",
        ]
        ws = "[" + ", ".join(f"d{idx[id(p)]}" for p in self.step_ws) + "]"
        seed = f"{opt}.lr" if self.za else "1.0"  # dead gradients: the backward gives lr·g
        call = f"({seed}, *saved, {opt}.lr, {opt}.weight_decay, {ws})"
        if big:
            bigd = [f"d{idx[id(p)]}" for p in self.step_big]
            lines += ["if ip:"] + [f"    {d}.setflags(write=True)" for d in bigd] + [
                "    try:", f"        grads, news = _bstep_ip{call}", "    finally:"] + [
                f"        {d}.setflags(write=False)" for d in bigd] + [
                "else:", f"    grads, news = _bstep{call}"]
        else:
            lines.append(f"grads, news = _bstep{call}")
        lines += [
            "out = _new(_Out)",
            "a, b, more = _split",
            "_make(out, _prim, outs[0], a, b, more,",
            "      {'frame': None, 'k': 0, 'cache': [None, None]})",
            "out.name, out.scope = _names",
            "out.grad = 1.0",
        ]
        ws_ids = {id(p) for p in self.step_ws}
        if self.zb:  # zero_grad() before backward(): parameters no gradient reached have None
            env["_params"] = self.step_params
            lines += ["for p in _params:", "    p.grad = None"]
        for j, p in enumerate(self.step_params):
            if id(p) not in ws_ids:
                continue
            i = idx[id(p)]
            lines += [
                f"_leaf{i}.grad = grads[{j}]",
                f"n = news[{j}]",
                f"if n is not d{i}:",
                "    n.setflags(write=False)",
                f"    _leaf{i}._data = n",
                f"_leaf{i}._mtime = next(_clock)",
            ]
        lines += [f"{opt}.t += 1", "return out"]
        src = "def replay(args):\n" + "\n".join("    " + ln for ln in lines) + "\n"
        exec(_compile(src, self.fn), env)
        self.fast_src = src
        return env["replay"]

    @property
    def source(self) -> str:
        parts = [self.forward_src]
        for k, s in sorted(self._bwd_src.items()):
            if k == -1:
                parts.append("# the training step: the gradients and plain SGD's update "
                             "(replaces backward() and step())")
            elif -1 in self._bwd_src:
                parts.append("# backward() alone: replayed with the optimizer's own step() when "
                             "its settings or the gradients are not as traced")
            elif len(self._bwd_src) > 1:
                parts.append(f"# gradients for output {k}")
            parts.append(s)
        return "\n\n".join(parts)

    def _flags(self) -> list:
        return [(n.requires_grad, type(n._data) is float or n._data.dtype) for n in self.inputs]

    def run(self, args: tuple, kwargs: dict) -> Any:
        """Replay: the outputs as nodes, or _RETRACE if a captured leaf's requires_grad or
        dtype is no longer as traced (checked while reading the leaves' data)."""
        if self.fast is not None and not kwargs:
            out = self.fast(args)
            if out is not None:
                return out
        vals = []
        for n, (needs_grad, dt) in zip(self.inputs, self.flags):
            d = n._data
            if n.requires_grad != needs_grad or (d.dtype is not dt and d.dtype != dt
                                                 if type(d) is not float else dt is not True):
                return _RETRACE
            vals.append(d)
        pos = self.arg_pos
        if pos is not None:
            for i, kind in pos:
                x = args[i]
                vals.append(x._data if kind == "node" else x if kind == "array"
                            else engine.as_data(x))
        else:
            for a in self.args:
                x = _fetch(args, kwargs, a.path)
                vals.append(x._data if a.kind == "node" else x if a.kind == "array"
                            else engine.as_data(x))
        if self.script is not None and not engine.is_grad_enabled():
            return self.fn(*args, **kwargs)  # under no_grad its backward() raises, as eagerly
        off = self.big and gc.isenabled()
        if off:
            gc.disable()  # see _grads
        try:
            outs, saved = self.forward(*vals)
        except (ArithmeticError, ValueError):
            return self.fn(*args, **kwargs)  # Python floats refused a value: eager gives numpy's
        finally:
            if off:
                gc.enable()
        needs_grad = self.leaves and engine.is_grad_enabled()
        # array arguments are the caller's own arrays, where eager mode wraps a copy: what the
        # backward reads and what the outputs view of them must not change with them
        arrs = [v for v, a in zip(vals[len(self.inputs):], self.args, strict=True)
                if a.kind == "array"]
        if needs_grad and arrs and self.script is None:  # (a step's backward runs right away)
            saved = tuple([x.copy() if type(x) is np.ndarray and _shares(x, arrs) else x
                           for x in saved])
        if needs_grad:
            parents = self.parents
            if parents is None:
                parents = tuple([_fetch(args, kwargs, x) if kind == "arg" else x
                                 for kind, x in self.leaves])
            frame = (self, saved, args, kwargs)
        nodes = []
        for k, o in enumerate(outs):
            if type(o) is np.ndarray:
                if any([o is v for v in vals]) or _shares(o, arrs):
                    o = o.copy()  # an input handed back, or a view of an argument: its own
                o.setflags(write=False)
            n = object.__new__(_JitOutput)
            if needs_grad and self.out_need[k]:
                a, b, more = engine._split(parents)
                engine._make(n, self.prim, o, a, b, more,
                             {"frame": frame, "k": k, "cache": [None, None]})
            else:
                engine._make(n, None, o, None, None, None, None)
            n.name, n.scope = self.names[k]
            nodes.append(n)
        if self.script is not None:
            try:
                self._events(nodes)
            except _Fallback:
                # the generated backward met what Python floats refuse (x/0, sqrt'(0)) before
                # writing any gradient: the whole step runs eagerly, numpy's inf/nan included
                return self.fn(*args, **kwargs)
            nodes = nodes[:self.n_out]
        return nodes[0] if self.struct is None else self.struct[0](nodes)

    def _events(self, nodes: list[Node]) -> None:
        """Replay the traced call's backward() and optimizer calls, in their order."""
        for kind, x in self.script:
            if kind == "backward":
                nodes[x].backward()
            elif kind == "step":
                x.step()
            else:
                x.zero_grad()

    def eager_grads(self, args: tuple, kwargs: dict, k: int, g: Any) -> tuple:
        """The gradients by an eager run (where Python floats raised and numpy gives inf/nan)."""
        out = _flatten_out(self.fn(*args, **kwargs))[0][k]
        leaves = [_fetch(args, kwargs, x) if kind == "arg" else x for kind, x in self.leaves]
        saved = [p.grad for p in leaves]
        for p in leaves:
            p.grad = None
        try:
            engine.backward(out, g)
            return tuple(p.grad for p in leaves)
        finally:
            for p, s in zip(leaves, saved):
                p.grad = s


def _compile(src: str, fn: Callable) -> Any:
    name = f"<tg.jit {getattr(fn, '__qualname__', 'fn')} {next(_serial)}>"
    linecache.cache[name] = (len(src), None, src.splitlines(True), name)  # tracebacks show it
    return compile(src, name, "exec")


_serial = itertools.count(1)


def _flatten_out(res: Any) -> tuple[list[Node], Any]:
    if isinstance(res, Node):
        return [res], None
    if isinstance(res, (tuple, list)) and res and all(isinstance(r, Node) for r in res):
        return list(res), (type(res), len(res))
    what = type(res).__name__
    if isinstance(res, (tuple, list)) and res:
        k = next(i for i, r in enumerate(res) if not isinstance(r, Node))
        what += f" whose item {k} is {type(res[k]).__name__} {res[k]!r:.40}"
    raise TracingError(
        f"tg.jit: the function returned {what}; a compiled function returns a Node or a "
        "tuple/list of Nodes (compute numbers from them after the call, or make them nodes "
        "with tinygraph ops)")


def _retracing(c: Compiled, before: Any, now: Any) -> str:
    """The warning for a function that keeps tracing: what changed between two signatures."""
    what = "its signature changes from call to call"
    if type(before) is tuple and type(now) is tuple and len(before) == len(now):
        i = next((i for i, (a, b) in enumerate(zip(before, now)) if a != b), None)
        if i is not None:
            k = now[i]
            head = k[:1] if type(k) is tuple else ()
            if head == ("index",):
                kind = ("an int or bool array, whose values are part of the signature (take a "
                        "minibatch outside, f(X[idx], y[idx]); pass a mask as a float array)")
            elif head in ((float,), (int,)):
                kind = ("a number, part of the signature by value (pass it as a 0-d float "
                        "array to have it read on each call)")
            else:
                kind = "its shape, dtype or kind"
            what = f"argument {i} changes: {kind}"
    return (f"tg.jit: {getattr(c.fn, '__qualname__', 'the function')} has been traced "
            f"{c.traces} times ({c.cache_size} signatures are kept); {what}. Each new signature "
            "traces and compiles again, which costs more than running it eagerly.")


class Compiled:
    """A function compiled by tg.jit; call it like the function. See the module docstring."""

    def __init__(self, fn: Callable, cache_size: int = 8) -> None:
        if not callable(fn):
            raise TypeError(f"tg.jit: expected a function, got {type(fn).__name__}")
        if not isinstance(cache_size, int) or cache_size < 1:
            raise ValueError(f"tg.jit: cache_size must be a positive int, got {cache_size!r}")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.cache_size = cache_size
        self._cache: OrderedDict[Any, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._last: _Entry | None = None
        self._last_key: Any = None
        self.traces = 0
        try:
            self._params = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            self._params = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _anomaly_on() or _tracing():
            return self.fn(*args, **kwargs)  # eager: anomaly sites; inside another trace
        # float arrays (a batch) inline: the common argument, on every call
        key = tuple([(a.shape, a.dtype) if type(a) is np.ndarray and a.dtype.kind == "f"
                     else _key(a) for a in args])
        if kwargs:
            key = (key, _key(kwargs))
        entry = self._cache.get(key)  # a dict read is atomic; changes take the lock
        if entry is not None:
            if entry is not self._last:
                try:
                    self._cache.move_to_end(key)
                except KeyError:  # evicted by another thread just now: still usable
                    pass
                self._last = entry
            res = entry.run(args, kwargs)
            if res is not _RETRACE:
                return res
        if not engine.is_grad_enabled():
            return self.fn(*args, **kwargs)  # nothing to record under no_grad
        entry = self._trace(args, kwargs)
        with self._lock:
            self._cache[key] = entry
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        if self.traces == 2 * self.cache_size + 2:  # once: every call tracing costs its time
            warnings.warn(_retracing(self, self._last_key, key), RuntimeWarning, stacklevel=2)
        self._last, self._last_key = entry, key
        if entry.script is not None:
            # the tracing run did the step (parameters updated, gradients written, node
            # arguments given theirs by _hand_back): it was this call
            return entry.graph
        res = entry.run(args, kwargs)
        # another thread changed a leaf since this trace read it: this call runs eagerly
        return self.fn(*args, **kwargs) if res is _RETRACE else res

    def clear(self) -> None:
        """Forget every traced signature: the next call traces again. For after replacing a
        node or an optimizer the function captures (replay keeps the objects it traced)."""
        with self._lock:
            self._cache.clear()
            self._last = None

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        """@tg.jit on a method: bound to its instance (which becomes part of the signature)."""
        return self if obj is None else types.MethodType(self, obj)

    def _trace(self, args: tuple, kwargs: dict) -> _Entry:
        tracers: list[tuple[Node, str, _Arg]] = []

        def sub(x: Any, path: tuple, name: str) -> Any:
            if isinstance(x, Node):
                t = _tracer(x._data, x.name or name)
                tracers.append((t, name, _Arg(path, "node", bool(x.requires_grad))))
                return t
            if isinstance(x, np.ndarray) and x.dtype.kind == "f":
                t = _tracer(engine.as_data(x, name), name)
                t.requires_grad = True
                plain = type(x) is np.ndarray and x.ndim > 0
                tracers.append((t, name, _Arg(path, "array" if plain else "convert", False)))
                return t
            if isinstance(x, (list, tuple)):
                items = [sub(v, path + (i,), f"{name}_{i}") for i, v in enumerate(x)]
                # a namedtuple takes its fields one by one
                return type(x)(*items) if hasattr(x, "_fields") else type(x)(items)
            if isinstance(x, dict):
                d = x.copy()  # the same kind of dict (an OrderedDict, a defaultdict)
                for k, v in x.items():
                    d[k] = sub(v, path + (k,), f"{name}_{k}")
                return d
            return x

        targs = [sub(a, ("args", i), self._params[i] if i < len(self._params) else f"arg{i}")
                 for i, a in enumerate(args)]
        tkw = {k: sub(v, ("kw", k), k) for k, v in kwargs.items()}
        t_start = time.perf_counter()
        rng_before = _rng_states()
        t0 = next(engine._clock)
        undo: list[Callable[[], None]] = []
        try:
            return self._trace_run(args, kwargs, targs, tkw, tracers, t0, t_start, rng_before,
                                   undo)
        except TracingError:
            # a refused trace changes nothing: gradients and optimizer steps the function's
            # tracing run made are taken back, newest first. (An error of the function's own
            # leaves what it did, as the same error does eagerly.)
            for u in reversed(undo):
                u()
            raise

    def _trace_run(self, args: tuple, kwargs: dict, targs: list, tkw: dict,
                   tracers: list[tuple[Node, str, _Arg]], t0: int, t_start: float,
                   rng_before: tuple, undo: list[Callable[[], None]]) -> _Entry:
        global _active
        with _guard_lock:
            _active += 1
            engine.set_value_hook(_guard)
            engine.set_event_hook(_record)
            if _active == 1:
                _watch_draws(True)
                _watch_grads(True)
        _tls.depth = getattr(_tls, "depth", 0) + 1
        _tls.events, _tls.t0 = [], t0  # (no trace nests: a call while tracing runs eagerly)
        _tls.undo, _tls.after, _tls.read, _tls.step_t = undo, None, {}, None
        _tls.in_pass, _tls.clearing, _tls.copies = False, set(), []
        _tls.tracer_ids = {id(t) for t, _, _ in tracers}
        _tls.fn_name = getattr(self.fn, "__qualname__", "the function")
        _tls.hand_back = [(t, _fetch(args, kwargs, a.path)) for t, _, a in tracers
                          if a.kind == "node" and a.orig_rg]
        try:
            res = self.fn(*targs, **tkw)
            _grads_kept()
            for n, src in _tls.copies:
                n._prim, n.attrs = _DETACH, {"src": src}
            events, read, step_t = _tls.events, _tls.read, _tls.step_t
            _hand_back()  # what a step inside has not already handed back
        finally:
            _tls.depth -= 1
            _tls.events = _tls.after = _tls.outside = _tls.read = None
            _tls.hand_back, _tls.in_pass, _tls.clearing, _tls.tracer_ids = [], False, set(), set()
            _tls.copies = []
            with _guard_lock:
                _active -= 1
                if not _active:
                    engine.set_value_hook(None)
                    engine.set_event_hook(None)
                    _watch_draws(False)
                    _watch_grads(False)
        # a draw the watch did not see (a function imported by name before the trace): an
        # error when no other thread runs; else a warning, since another thread's draws change
        # the same state
        drew = _rng_states() != rng_before  # read once: another thread may draw meanwhile
        if drew and threading.active_count() > 1:
            warnings.warn(
                f"tg.jit: the global random state changed while tracing "
                f"{getattr(self.fn, '__qualname__', 'the function')}: another thread drew from "
                "it, or the function did through a name tinygraph could not watch (then replay "
                "reuses that one draw on every call)", RuntimeWarning, stacklevel=3)
        elif drew:
            raise TracingError(
                f"tg.jit: {getattr(self.fn, '__qualname__', 'the function')} drew random numbers "
                "from numpy's or Python's global generator while tracing; a compiled replay would "
                "reuse that one draw on every call (the same dropout mask, the same noise). Draw "
                "them outside and pass them as arguments, or do not compile the function.")
        root = next((obj for kind, obj in events if kind == "backward"), None)
        if res is None and root is not None:
            outs, struct = [], (lambda nodes: None, 0)  # a step that returns nothing
        else:
            outs, struct = _flatten_out(res)
        for k, o in enumerate(outs):
            if o._prim is None and o._ctime > t0 and not any(o is t for t, _, _ in tracers):
                raise TracingError(
                    f"tg.jit: output {k} ({o.describe()}) is a constant made inside the "
                    "function from numbers and arrays, so a compiled replay would return its "
                    "traced value forever; compute it from the arguments and parameters with "
                    "tinygraph ops, or do not compile it")
        trace_s = time.perf_counter() - t_start
        # Code generation makes millions of short-lived objects and no cycles; the collector's
        # full passes over them and over a big traced graph would triple its time.
        off = gc.isenabled()
        if off:
            gc.disable()
        try:
            hidden = [root] if root is not None and not any(root is o for o in outs) else []
            b = _Builder(outs + hidden, t0, tracers)
            late = [n for n in b.ops if step_t is not None and n._ctime > step_t]
            if late:
                raise TracingError(
                    f"tg.jit: {late[0].describe()} is computed after the optimizer's step() "
                    f"inside {getattr(self.fn, '__qualname__', 'the function')}; a compiled "
                    "step replays the forward pass before the step, so it would read the "
                    "parameters before their update. Compute it after the call, outside.")
            entry = _Entry(self.fn, b, res, struct, trace_s)
            entry.drawn = res if res is not None else root  # (a step may return nothing)
            if events:
                b.read = read
                entry.plan(events, root, len(outs))
        finally:
            if off:
                gc.enable()
        self.traces += 1
        # objects in the signature by identity stay alive while cached, so their id is not reused
        entry.keep = (args, kwargs)
        return entry

    # --- looking at it ------------------------------------------------------------------------
    def _entry(self) -> _Entry:
        if self._last is None:
            raise GraphError("tg.jit: nothing compiled yet; call the function once first")
        return self._last

    @property
    def source(self) -> str:
        """The generated code of the most recently used signature: forward() and backward()."""
        return self._entry().source

    @property
    def graph(self) -> Any:
        """The traced graph, for tinygraph.viz: the eager output node(s) of the tracing call,
        or the node backward() was called on when the function returns nothing."""
        return self._entry().drawn

    @property
    def stats(self) -> dict[str, Any]:
        """Trace and compile seconds, op count and cached signatures of the latest entry."""
        e = self._entry()
        return {"trace_s": e.trace_s, "compile_s": e.compile_s, "ops": len(e.builder.ops),
                "lines": e.source.count("\n"), "signatures": len(self._cache),
                "traces": self.traces}

    def explain(self, width: int = 44) -> str:
        """The traced graph, op by op, next to its forward line(s) and its gradient's line(s)
        (leaves last: their gradients are the backward's results)."""
        e = self._entry()
        b = e.builder
        rows = [("traced graph: node = op(inputs) shape", "forward", "backward: its gradient")]
        for n in [m for m in b.order if m._prim is not None] + [
                m for m in b.order if m._prim is None]:
            if n not in b.fwd_lines and n not in b.bwd_lines:
                continue
            who = b.var.get(n) or b.ref(n)[0]
            shape = str(n.shape) if n.shape else "scalar"
            fwd = "\n".join(b.fwd_lines.get(n, []))
            if n._prim is not None:
                ins = ", ".join(b.ref(p)[0][:20] for p in b.par[n])
                desc = f"{who} = {n._prim.name}({ins}) {shape}"
                fwd = fwd or "(written into the line that uses it)"
            else:
                desc = f"{who}: leaf {shape}"
            rows.append((desc, fwd, "\n".join(b.bwd_lines.get(n, []))))
        out = []
        for cells in rows:
            cols = [[piece for line in c.split("\n")
                     for piece in (textwrap.wrap(line, width, subsequent_indent="    ") or [""])]
                    for c in cells]
            for i in range(max(len(c) for c in cols)):
                out.append(" | ".join((c[i] if i < len(c) else "").ljust(width)
                                      for c in cols).rstrip())
            out.append("-" * (3 * width + 6))
        return "\n".join(out)

    def cache_clear(self) -> None:
        with self._lock:
            self._cache.clear()
        self._last = None

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", self.fn)
        return f"<tg.jit {name}, {len(self._cache)} signatures>"


_DRAWS: dict[tuple[Any, str], Any] = {}  # (module, name) -> its own function, while watched


def _watch_draws(on: bool) -> None:
    """While any trace runs, numpy's and Python's module-level random functions are wrapped:
    a draw by a thread that is tracing raises, naming its line; other threads draw as usual.
    (Called under _guard_lock.)"""
    if not on:
        for (mod, name), f in _DRAWS.items():
            setattr(mod, name, f)
        _DRAWS.clear()
        return
    for mod, owner in ((np.random, np.random.mtrand._rand), (np.random.mtrand,
                                                             np.random.mtrand._rand),
                       (random, random._inst)):
        for name in dir(mod):
            f = getattr(mod, name, None)
            if name in _NOT_DRAWS or not callable(f) or (
                    getattr(f, "__self__", None) is not owner and name not in _DRAW_FUNCTIONS):
                continue
            _DRAWS[(mod, name)] = f
            setattr(mod, name, _draw_guard(f, f"{mod.__name__}.{name}"))


_NOT_DRAWS = {"get_state", "set_state", "seed", "getstate", "setstate"}
_DRAW_FUNCTIONS = {"ranf", "sample"}  # numpy's aliases that are functions, not methods


def _draw_guard(f: Callable, where: str) -> Callable:
    def draw(*args: Any, **kwargs: Any) -> Any:
        if getattr(_tls, "depth", 0) and getattr(_tls, "events", None) is not None:
            raise TracingError(
                f"tg.jit: {where}() at {_user_site()[1]} draws from the global random "
                "generator while tracing; a compiled replay would reuse this one draw on every "
                "call (the same dropout mask, the same noise). Draw outside and pass the result "
                "as an argument, or do not compile the function.")
        return f(*args, **kwargs)
    draw.__wrapped__ = f  # type: ignore[attr-defined]
    draw.__name__ = getattr(f, "__name__", "draw")
    return draw


def _rng_states() -> tuple:
    """The global random generators' states (numpy's legacy one and Python's)."""
    st = np.random.get_state(legacy=True)
    return (st[1].tobytes(), st[2], random.getstate())


def _tracer(data: Any, name: str) -> Node:
    n = engine._make(object.__new__(Node), None, data, None, None, None, None)
    n.requires_grad = True
    n.name = name
    return n




_anomaly_on = engine.is_anomaly_enabled  # detect_anomaly() is on in this thread


def jit(fn: Callable | None = None, *, cache_size: int = 8) -> Any:
    """Compile a function of nodes and arrays that builds a graph: trace once, replay as code.

    Use as @tg.jit or tg.jit(fn, cache_size=8). See the module docstring for what is part of
    the signature, what replays and what is refused.
    """
    if fn is None:
        return lambda f: Compiled(f, cache_size)
    return Compiled(fn, cache_size)


# `tinygraph.jit` names this function once the package is imported (the module stays reachable
# as sys.modules["tinygraph.jit"]); these make tg.jit.TracingError and friends work too.
jit.Compiled = Compiled  # type: ignore[attr-defined]
jit.TracingError = TracingError  # type: ignore[attr-defined]
jit.TEMPLATES = TEMPLATES  # type: ignore[attr-defined]
