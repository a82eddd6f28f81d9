"""Spec-table rows (NN_SPECS) for every tinygraph.nn layer and activation and every loss.

Each row runs the real module code with the checker's float64 nodes in place of the module's
parameters. Kinks are avoided by construction: biases are placed so that every ReLU-family
pre-activation (and every maxout piece difference) is at least GAP from 0, hinge scores keep away
from the hinge, and multiclass-hinge scores are k + u (k integer, u in [0.1, 0.4]) with margin 1.5,
so s_j - s_y + 1.5 is at least 0.2 from 0.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from specs import Case, OpSpec

import tinygraph as tg
from tinygraph import losses, nn
from tinygraph.testing import strategies as tgs

GAP = 0.05
KINKED = ("relu", "leaky_relu", "prelu", "maxout")
ACTS = ("relu", "tanh", "sigmoid", "leaky_relu", "prelu", "maxout", None)


def _away_from_zero(v: np.ndarray, b: float) -> float:
    """A bias near b such that every v + bias is at least GAP from 0."""
    bad = -np.sort(v)  # the biases that would put some element exactly on the kink
    if np.all(np.abs(b - bad) >= GAP):
        return b
    cands = np.r_[bad - 2 * GAP, bad + 2 * GAP]
    ok = [c for c in cands if np.all(np.abs(c - bad) >= GAP)]
    return float(min(ok, key=lambda c: abs(c - b)))


@contextmanager
def _params(module: nn.Module, nodes: tuple[tg.Node, ...]) -> Iterator[None]:
    """Temporarily put nodes in place of module's parameter attributes (W, b, a...)."""
    names = [n for n, _ in module.named_parameters()]
    old = {n: getattr(module, n) for n in names}
    for n, node in zip(names, nodes, strict=True):
        setattr(module, n, node)
    try:
        yield
    finally:
        for n, p in old.items():
            setattr(module, n, p)


# --- tensor layer rows ---------------------------------------------------------------------------


@functools.cache
def _layer(nin: int, nout: int, act: str | None, shared: bool) -> nn.Linear:
    # One layer per configuration: the checker calls the row hundreds of times per example.
    return nn.Linear(nin, nout, act, shared_slope=shared, seed=0)


def _linear_fn(x: tg.Node, *ps: tg.Node, act: str | None, shared: bool = False,
               nout: int = 1) -> tg.Node:
    lay = _layer(ps[0].shape[-2], nout, act, shared)
    with _params(lay, ps):
        return lay(x)


@st.composite
def _linear_case(data: st.DrawFn, act: str | None, shared: bool = False) -> Case:
    b_, nin, nout = (data(st.integers(1, 4)), data(st.integers(1, 3)), data(st.integers(1, 3)))
    x = data(tgs.arrays((b_, nin), -2, 2))
    k = 2 if act == "maxout" else 1
    W = data(tgs.arrays((k, nin, nout), -2, 2))
    b = data(tgs.arrays((k, nout), -2, 2))
    z = np.einsum("bi,kio->kbo", x, W)
    for j in range(nout):
        if act in ("relu", "leaky_relu", "prelu"):
            b[0, j] = _away_from_zero(z[0, :, j], b[0, j])
        elif act == "maxout":  # pieces never tie: z1 - z0 away from 0
            b[1, j] = _away_from_zero(z[1, :, j] - z[0, :, j] - b[0, j], b[1, j])
    args: tuple[Any, ...] = (x, W, b) if act == "maxout" else (x, W[0], b[0])
    if act == "prelu":
        args += (data(tgs.arrays((1 if shared else nout,), 0.05, 0.5)),)
    return Case(args, {"act": act, "shared": shared, "nout": nout})


def _np_linear(x: Any, *ps: Any, act: str | None, shared: bool = False, nout: int = 1) -> Any:
    if act == "maxout":
        return np.max(np.einsum("bi,kio->kbo", x, ps[0]) + ps[1][:, None, :], axis=0)
    z = x @ ps[0] + ps[1]
    if act is None:
        return z
    return {
        "relu": lambda: np.maximum(z, 0),
        "tanh": lambda: np.tanh(z),
        "sigmoid": lambda: 1 / (1 + np.exp(-z)),
        "leaky_relu": lambda: np.where(z > 0, z, 0.01 * z),
        "prelu": lambda: np.where(z > 0, z, ps[2] * z) if len(ps) > 2 else z,
    }[act]()


# --- containers: Sequential, and a user's module over a ModuleList --------------------------


def _two_layers(W1: tg.Node, b1: tg.Node, W2: tg.Node, b2: tg.Node) -> list[nn.Module]:
    """Linear -> Tanh -> Linear holding the checker's nodes as parameters."""
    l1, l2 = nn.Linear(*W1.shape, seed=0), nn.Linear(*W2.shape, seed=0)
    l1.W, l1.b, l2.W, l2.b = W1, b1, W2, b2
    return [l1, nn.Tanh(), l2]


class _Looped(nn.Module):
    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: tg.Node) -> tg.Node:
        for m in self.layers:
            x = m(x)
        return x


@st.composite
def _mlp_case(data: st.DrawFn) -> Case:
    b_, nin, h, nout = (data(st.integers(1, 3)) for _ in range(4))
    return Case(tuple(data(tgs.arrays(s, -2, 2))
                      for s in [(b_, nin), (nin, h), (h,), (h, nout), (nout,)]))


def _np_mlp(x: Any, W1: Any, b1: Any, W2: Any, b2: Any) -> Any:
    return np.tanh(x @ W1 + b1) @ W2 + b2


# --- scalar neuron rows ---------------------------------------------------------------------


def _neuron_fn(x: tg.Node, w: tg.Node, b: tg.Node, *rest: tg.Node, act: str | None) -> tg.Node:
    """One scalar Neuron on sample x (nin,), weights w (k, nin), biases b (k,) [, slope a]."""
    k, nin = w.shape
    n = nn.Neuron(nin, act, weights=np.zeros((k, nin)), k=k)
    n.w = [w[0, i] for i in range(nin)]
    n.b = b[0]
    n._pieces = [([w[j, i] for i in range(nin)], b[j]) for j in range(1, k)]
    if rest:
        n._slope = rest[0][0]
    return n(x)


@st.composite
def _neuron_case(data: st.DrawFn, act: str | None) -> Case:
    nin = data(st.integers(1, 4))
    k = 2 if act == "maxout" else 1
    x = data(tgs.arrays((nin,), -2, 2))
    w = data(tgs.arrays((k, nin), -2, 2))
    b = data(tgs.arrays((k,), -2, 2))
    z = w @ x
    if act in ("relu", "leaky_relu", "prelu"):
        b[0] = _away_from_zero(z[:1], b[0])
    elif act == "maxout":
        b[1] = _away_from_zero(np.array([z[1] - z[0] - b[0]]), b[1])
    args: tuple[Any, ...] = (x, w, b)
    if act == "prelu":
        args += (data(tgs.arrays((1,), 0.05, 0.5)),)
    return Case(args, {"act": act})


def _np_neuron(x: Any, w: Any, b: Any, *rest: Any, act: str | None) -> Any:
    out = _np_linear(x[None, :], w[:, :, None] if act == "maxout" else w[0][:, None],
                     b[:, None] if act == "maxout" else b[:1], *rest, act=act)
    return float(out.reshape(()))


# --- losses ---------------------------------------------------------------------------------


@st.composite
def _class_case(data: st.DrawFn, hinge: bool = False) -> Case:
    n, c = data(st.integers(1, 4)), data(st.integers(2, 4))
    if hinge:  # k + u, u in [0.1, 0.4]: margins s_j - s_y + 1.5 stay 0.2 away from 0
        k = data(hnp.arrays(np.int64, (n, c), elements=st.integers(-4, 4)))
        u = data(tgs.arrays((n, c), 0.1, 0.4))
        s = k + u
    else:
        s = data(tgs.arrays((n, c), -30, 30))
    y = np.array(data(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    red = data(st.sampled_from(["mean", "sum"]))
    kw: dict[str, Any] = {"y": y, "reduction": red}
    if hinge:
        kw["margin"] = 1.5
    return Case((s,), kw)


@st.composite
def _binary_case(data: st.DrawFn, hinge: bool = False) -> Case:
    n = data(st.integers(1, 6))
    if hinge:
        s = data(tgs.arrays((n,), -4, 4, avoid=[-1.0, 1.0], gap=0.05))
        y = np.array(data(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n)))
    else:
        s = data(tgs.arrays((n,), -30, 30))
        y = data(tgs.arrays((n,), 0, 1))
    return Case((s,), {"y": y, "reduction": data(st.sampled_from(["mean", "sum"]))})


@st.composite
def _mse_case(data: st.DrawFn) -> Case:
    shape = data(hnp.array_shapes(min_dims=1, max_dims=2, max_side=4))
    return Case((data(tgs.arrays(shape, -5, 5)),), {"target": data(tgs.arrays(shape, -5, 5)),
                                                     "reduction": "mean"})


@st.composite
def _l2_case(data: st.DrawFn) -> Case:
    shapes = data(st.lists(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), min_size=1,
                           max_size=3))
    return Case(tuple(data(tgs.arrays(s, -5, 5)) for s in shapes), {"lam": 0.3})


def _np_lsm(s: Any) -> Any:
    m = s.max(axis=1, keepdims=True)
    return s - m - np.log(np.exp(s - m).sum(axis=1, keepdims=True))


def _red(v: Any, reduction: str) -> float:
    return float(np.mean(v) if reduction == "mean" else np.sum(v))


def _np_ce(s: Any, y: Any, reduction: str) -> float:
    return _red(-_np_lsm(s)[np.arange(len(y)), y], reduction)


def _np_svm(s: Any, y: Any, reduction: str, margin: float) -> float:
    m = np.maximum(0, s - s[np.arange(len(y)), y][:, None] + margin)
    m[np.arange(len(y)), y] = 0
    return _red(m.sum(axis=1), reduction)


def _np_bce(z: Any, y: Any, reduction: str) -> float:
    return _red(np.logaddexp(0, z) - y * z, reduction)


def _np_bhinge(s: Any, y: Any, reduction: str) -> float:
    return _red(np.maximum(0, 1 - np.where(y > 0, 1, -1) * s), reduction)


def _row(name: str, fn: Callable[..., Any], case: st.SearchStrategy[Case], ref: Any,
         covers: tuple[str, ...], domains: tuple[str, ...] = ()) -> OpSpec:
    return OpSpec(name, fn, case, ref, domains, covers)


# The public functions and modules each activation row covers.
_ACT_NAMES: dict[str | None, tuple[str, ...]] = {
    "relu": ("nn.relu", "nn.ReLU"),
    "tanh": ("nn.tanh", "nn.Tanh"),
    "sigmoid": ("nn.sigmoid", "nn.Sigmoid"),
    "leaky_relu": ("nn.leaky_relu", "nn.LeakyReLU"),
    "prelu": ("nn.prelu", "nn.PReLU"),
    "maxout": ("nn.maxout", "nn.Maxout"),
    None: (),
}

NN_SPECS: list[OpSpec] = [
    *[_row(f"nn.Linear[{a or 'linear'}]", _linear_fn, _linear_case(a), _np_linear,
           ("nn.Linear", "nn.TensorMLP", *_ACT_NAMES[a]),
           ("x, W, b in [-2, 2]; ReLU-family z and maxout piece gaps >= 0.05 from 0",))
      for a in ACTS],
    _row("nn.Linear[prelu, shared]", _linear_fn,
         _linear_case("prelu", True), _np_linear, ("nn.PReLU",),
         ("one slope shared by the layer",)),
    *[_row(f"nn.Neuron[{a or 'linear'}]", _neuron_fn, _neuron_case(a), _np_neuron,
           ("nn.Neuron", "nn.Layer", "nn.MLP"),
           ("x, w, b in [-2, 2]; ReLU-family z and maxout piece gaps >= 0.05 from 0",))
      for a in ACTS],
    _row("nn.Sequential", lambda x, *ps: nn.Sequential(*_two_layers(*ps))(x), _mlp_case(),
         _np_mlp, ("nn.Sequential",)),
    _row("nn.ModuleList", lambda x, *ps: _Looped(_two_layers(*ps))(x), _mlp_case(), _np_mlp,
         ("nn.ModuleList",), ("a user's Module looping over a ModuleList in forward",)),
    _row("nn.prelu", lambda x, a: nn.prelu(x, a),
         st.builds(lambda x, a: Case((x, a)), tgs.arrays((3, 2), -3, 3, avoid=[0.0], gap=0.05),
                   tgs.arrays((2,), 0.05, 0.5)),
         lambda x, a: np.where(x > 0, x, a * x), ("nn.prelu", "nn.PReLU")),
    _row("losses.binary_cross_entropy_with_logits",
         lambda z, y, reduction: losses.binary_cross_entropy_with_logits(z, y, reduction),
         _binary_case(), _np_bce, ("losses.binary_cross_entropy_with_logits",)),
    _row("losses.binary_hinge", lambda s, y, reduction: losses.binary_hinge(s, y, 1.0, reduction),
         _binary_case(hinge=True), _np_bhinge, ("losses.binary_hinge",),
         ("scores in [-4, 4], 0.05 away from ±1",)),
    _row("losses.softmax_cross_entropy",
         lambda s, y, reduction: losses.softmax_cross_entropy(s, y, reduction),
         _class_case(), _np_ce, ("losses.softmax_cross_entropy", "softmax_cross_entropy")),
    _row("losses.multiclass_hinge", losses.multiclass_hinge, _class_case(hinge=True), _np_svm,
         ("losses.multiclass_hinge",), ("scores k + u, u in [0.1, 0.4], margin 1.5",)),
    _row("losses.mse", lambda p, target, reduction: losses.mse(p, target, reduction), _mse_case(),
         lambda p, target, reduction: float(np.mean((p - target) ** 2)), ("losses.mse",)),
    _row("losses.l2", lambda *ps, lam: losses.l2(ps, lam), _l2_case(),
         lambda *ps, lam: 0.5 * lam * sum(float(np.sum(np.square(p))) for p in ps),
         ("losses.l2", "l2")),
]
