"""Derivatives as functions, autograd/JAX style: grad, value_and_grad, jacobian, hessian, hvp.

    >>> d2 = tg.grad(tg.grad(lambda x: x**3))   # 6x
    >>> d2(2.0)
    12.0

Each transform takes a function of numbers, arrays or Nodes and returns a new function. Called on
Python floats or numpy arrays it returns floats or arrays; called on Nodes, or from inside another
transform (nesting, as in grad(grad(f))), it records its backward pass as tinygraph ops
(backward(create_graph=True)) and returns Nodes, which the outer transform differentiates again.
Nothing here writes .grad: gradients are returned, as torch.autograd.grad does. Nodes that f
closes over count as constants when the arguments are plain numbers at the top level (the result
is a number); pass a Node to get a Node that depends on them too.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import engine, ops
from ._check import show
from .engine import Node, cotangents, graph_cotangents
from .errors import ArgTypeError, IndexOutOfRange, ShapeError

__all__ = ["grad", "value_and_grad", "jacobian", "hessian", "hvp"]

# How many transforms are evaluating their function in this thread/task right now: inside one,
# every transform records its pass, since the function may close over the outer one's nodes.
_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("tinygraph_transform_depth",
                                                              default=0)


@contextmanager
def _recording() -> Iterator[None]:
    """Grad mode on while a transform runs: inside no_grad() a transform still differentiates
    (and an inner one must record for the outer one), like jax.grad under torch.no_grad()."""
    grad_on, scope_, anomaly = engine._modes()
    if grad_on:
        yield
        return
    token = engine._MODES.set((True, scope_, anomaly))
    try:
        yield
    finally:
        engine._MODES.reset(token)


def _argnums(fname: str, argnums: Any) -> tuple[tuple[int, ...], bool]:
    """(the argument positions, whether the caller gave one int)."""
    if isinstance(argnums, (int, np.integer)) and not isinstance(argnums, bool):
        return (int(argnums),), True
    if (isinstance(argnums, (tuple, list)) and argnums
            and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                    for a in argnums)):
        return tuple(int(a) for a in argnums), False
    raise ArgTypeError(f"{fname}: argnums must be an int or a non-empty tuple of ints, got "
                       f"{show(argnums)}")


def _check_fn(fname: str, f: Any) -> None:
    if not callable(f):
        raise ArgTypeError(f"{fname}: f must be callable, got {show(f)}")


class _Call:
    """One evaluation of f with the differentiated arguments as nodes."""

    def __init__(self, fname: str, f: Callable[..., Any], args: tuple, nums: tuple[int, ...],
                 create_graph: bool = False):
        for i in nums:
            if not -len(args) <= i < len(args):
                raise IndexOutOfRange(f"{fname}: argnums {i} is out of range for {len(args)} "
                                      "positional arguments")
        nums = tuple(i % len(args) for i in nums)
        self.fname = fname
        # Record the pass as ops when nested inside another transform or given nodes: the
        # result must then stay differentiable.
        self.nested = (create_graph or _DEPTH.get() > 0
                       or any(isinstance(args[i], Node) for i in nums))
        new = list(args)
        self.wrt: list[Node] = []
        for i in nums:
            a = args[i]
            if isinstance(a, Node) and a.requires_grad:
                v = a  # an outer transform's variable: differentiate through it
            else:
                v = Node(a, name=f"x{i}")  # a copy of a node's value (tg.jit records it)
            self.wrt.append(v)
            new[i] = v
        token = _DEPTH.set(_DEPTH.get() + 1)
        try:
            out = f(*new)
        finally:
            _DEPTH.reset(token)
        if not isinstance(out, Node):
            try:
                out = Node(out, requires_grad=False)
            except Exception:
                raise ArgTypeError(f"{fname}: f must return a number, array or Node, got "
                                   f"{show(out)}") from None
        self.out = out

    def grads(self, seed: Any = None) -> list[Any]:
        """d out / d wrt (seeded with seed, 1 by default) for each differentiated argument."""
        out = self.out
        if out.requires_grad:
            if self.nested:
                floor = min(v._ctime for v in self.wrt)
                by_node: dict = graph_cotangents(out, seed, floor)
            else:
                by_node = cotangents(out, seed)
        else:
            by_node = {}
        res = []
        for v in self.wrt:
            g = by_node.get(v)
            if self.nested:
                if g is None:
                    g = Node(np.zeros(v.shape, v.dtype) if v.shape else 0.0, requires_grad=False)
                res.append(g)
            else:
                res.append(_plain(g, v))
        return res

    def value(self) -> Any:
        return self.out if self.nested else _plain(self.out._data, self.out)


def _plain(g: Any, like: Node) -> Any:
    """A gradient as the user's kind of number: a float for a scalar, a fresh array otherwise."""
    if g is None:
        return 0.0 if like.is_scalar else np.zeros(like.shape, like.dtype)
    if type(g) is float:
        return g
    return np.array(g, dtype=like.dtype, copy=True)


def _one_element(fname: str, out: Node) -> None:
    if out.size != 1:
        raise ShapeError(f"{fname}: f must return one number (a scalar or one-element node) to "
                         f"be differentiated, got {out.describe()}; use jacobian for vector "
                         "outputs")


def value_and_grad(f: Callable[..., Any], argnums: int | Sequence[int] = 0, *,
                   create_graph: bool = False) -> Callable[..., tuple[Any, Any]]:
    """A function returning (f(*args), the gradient of f with respect to args[argnums]).

    f must return one number. With a tuple argnums the gradient is a tuple, one per argument.
    create_graph=True returns Nodes recorded as ops even for plain-number arguments (what Node
    arguments and nesting do anyway): differentiable again, also in the nodes f closes over.
    """
    _check_fn("value_and_grad", f)
    nums, single = _argnums("value_and_grad", argnums)

    def vg(*args: Any) -> tuple[Any, Any]:
        with _recording():
            c = _Call("value_and_grad", f, args, nums, bool(create_graph))
            _one_element("value_and_grad", c.out)
            gs = c.grads()
        return c.value(), (gs[0] if single else tuple(gs))

    vg.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return vg


def grad(f: Callable[..., Any], argnums: int | Sequence[int] = 0, *,
         create_graph: bool = False) -> Callable[..., Any]:
    """The gradient of f (a function returning one number) as a function, like autograd.grad.

    Composes to any order: grad(grad(f)) is f''. On floats and arrays it returns floats and
    arrays; on Nodes (or nested, or with create_graph=True) Nodes that can be differentiated again.
    """
    _check_fn("grad", f)
    vg = value_and_grad(f, argnums, create_graph=create_graph)

    def g(*args: Any) -> Any:
        return vg(*args)[1]

    g.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    return g


def jacobian(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """The Jacobian of f as a function: shape f(x).shape + x.shape, one reverse pass per output
    element (row by row)."""
    _check_fn("jacobian", f)
    nums, single = _argnums("jacobian", argnums)
    if not single:
        raise ArgTypeError(f"jacobian: argnums must be one int, got {show(argnums)}")

    def jac(*args: Any) -> Any:
        with _recording():
            return _jacobian(f, args, nums)

    jac.__name__ = f"jacobian({getattr(f, '__name__', 'f')})"
    return jac


def _jacobian(f: Callable[..., Any], args: tuple, nums: tuple[int, ...]) -> Any:
    """The Jacobian, one reverse pass per element of f's output."""
    c = _Call("jacobian", f, args, nums)
    out, v = c.out, c.wrt[0]
    if out.is_scalar:
        return c.grads()[0]
    rows = []
    for k in range(out.size):
        seed = np.zeros(out.size, out.dtype)
        seed[k] = 1.0
        rows.append(c.grads(seed.reshape(out.shape))[0])
    if c.nested:
        flat = ops.stack([ops.reshape(r, (-1,)) for r in rows])
        return ops.reshape(flat, out.shape + v.shape)
    return np.stack([np.reshape(r, v.shape) for r in rows]).reshape(out.shape + v.shape)


def hessian(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """The Hessian of f (one number out) as a function: jacobian(grad(f)), shape x.shape * 2."""
    _check_fn("hessian", f)
    return jacobian(grad(f, argnums), argnums)


def hvp(f: Callable[..., Any], x: Any, v: Any) -> Any:
    """The Hessian of f at x times v, without forming the Hessian: the gradient of grad(f)·v.

    Costs two reverse passes whatever the size of x (the Hessian would cost one per element).
    """
    _check_fn("hvp", f)
    vd = v.data if isinstance(v, Node) else v
    if np.shape(vd) != np.shape(x.data if isinstance(x, Node) else x):
        raise ShapeError(f"hvp: v has shape {np.shape(vd)} but x has shape "
                         f"{np.shape(x.data if isinstance(x, Node) else x)}")
    df = grad(f)

    def along(y: Any) -> Any:
        gy = df(y)
        return ops.sum(gy * v)

    return grad(along)(x)
