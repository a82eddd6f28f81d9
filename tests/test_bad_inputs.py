"""The bad-input catalogue across every public entry point (T12).

Each case calls one entry point with one bad argument and expects a TinygraphError of the given
kind (which also subclasses the matching builtin) whose message names the op and the parameter.
Cases are generated from tables: a parameter's spec (its op, its name, a factory that passes the
value) crossed with the bad values of its kind. A second table checks that calls which hold
state (a node's data, an optimizer, a fitted preprocessor, a model) leave it unchanged when they
fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import data, diagnostics, losses, nn, optim, testing, viz
from tinygraph.errors import (
    ArgTypeError,
    AxisError,
    DTypeError,
    GradcheckError,
    GraphError,
    IndexOutOfRange,
    InputError,
    LoadError,
    NotFound,
    ShapeError,
    TinygraphError,
)
from tinygraph.thresholds import Thresholds

nan, inf = math.nan, math.inf
BUILTINS = (ValueError, TypeError, RuntimeError, KeyError, IndexError, AssertionError)

CASES: list[Any] = []


def case(cid: str, call: Callable[[], object], kind: type, *phrases: str) -> None:
    CASES.append(pytest.param(call, kind, phrases, id=cid))


# --- value families ------------------------------------------------------------------------
# (value, expected kind) for a float parameter, by what the parameter accepts
NOT_A_NUMBER = [("str", "a", ArgTypeError), ("None", None, ArgTypeError),
                ("bool", True, ArgTypeError), ("list", [0.1], ArgTypeError),
                ("complex", 1j, ArgTypeError), ("object", object(), ArgTypeError)]
NONFINITE = [("nan", nan, InputError), ("inf", inf, InputError), ("-inf", -inf, InputError)]
NEGATIVE = [("neg", -1.0, InputError), ("tiny-neg", -1e-12, InputError)]
NOT_AN_INT = [("float", 2.5, ArgTypeError), ("str", "3", ArgTypeError),
              ("None", None, ArgTypeError), ("bool", True, ArgTypeError),
              ("list", [2], ArgTypeError)]
NOT_POSITIVE_INT = [("zero", 0, InputError), ("neg", -1, InputError)]
BAD_SEED = [("neg", -1, InputError), ("str", "a", ArgTypeError), ("float", 1.5, ArgTypeError)]
BAD_NAME = [("int", 123, ArgTypeError), ("bytes", b"x", ArgTypeError), ("empty", "", InputError)]


def family(op: str, param: str, make: Callable[[Any], object], *sets: list) -> None:
    """One case per bad value: make(value) must raise naming op and param."""
    for values in sets:
        for vid, v, kind in values:
            case(f"{op}-{param}-{vid}", (lambda v=v: make(v)), kind, f"{op}:", param)


def P() -> list[tg.Node]:
    return [tg.Node(np.ones(3), name="w"), tg.Node(0.5, name="b")]


# --- optimizers ----------------------------------------------------------------------------
family("SGD", "lr", lambda v: optim.SGD(P(), lr=v), NOT_A_NUMBER, NONFINITE, NEGATIVE)
family("SGD", "momentum", lambda v: optim.SGD(P(), lr=0.1, momentum=v), NOT_A_NUMBER,
       NONFINITE, NEGATIVE, [("one", 1.0, InputError), ("big", 1.5, InputError)])
family("SGD", "weight_decay", lambda v: optim.SGD(P(), lr=0.1, weight_decay=v), NOT_A_NUMBER,
       NONFINITE, NEGATIVE)
family("SGD", "nesterov", lambda v: optim.SGD(P(), lr=0.1, momentum=0.9, nesterov=v),
       [("str", "yes", ArgTypeError), ("int", 1, ArgTypeError), ("None", None, ArgTypeError)])
family("Adam", "lr", lambda v: optim.Adam(P(), lr=v), NOT_A_NUMBER, NONFINITE, NEGATIVE)
family("Adam", "eps", lambda v: optim.Adam(P(), eps=v), NOT_A_NUMBER, NONFINITE, NEGATIVE,
       [("zero", 0.0, InputError)])
family("Adam", "betas[0]", lambda v: optim.Adam(P(), betas=(v, 0.999)), NOT_A_NUMBER[:3],
       NONFINITE, NEGATIVE, [("one", 1.0, InputError)])
family("Adam", "betas[1]", lambda v: optim.Adam(P(), betas=(0.9, v)), NOT_A_NUMBER[:3],
       NONFINITE, [("one", 1.0, InputError)])
family("Adam", "betas", lambda v: optim.Adam(P(), betas=v),
       [("one", (0.9,), ArgTypeError), ("three", (0.9, 0.99, 0.1), ArgTypeError),
        ("float", 0.9, ArgTypeError), ("str", "ab", ArgTypeError)])
family("Adam", "weight_decay", lambda v: optim.Adam(P(), weight_decay=v), NOT_A_NUMBER[:3],
       NONFINITE, NEGATIVE)
for opt in (optim.SGD, optim.Adam):
    case(f"{opt.__name__}-params-empty", lambda o=opt: o([], lr=0.1), InputError,
         opt.__name__, "empty")
    case(f"{opt.__name__}-params-node", lambda o=opt: o(tg.Node(1.0), lr=0.1), ArgTypeError,
         opt.__name__, "params")
    case(f"{opt.__name__}-params-int", lambda o=opt: o(123, lr=0.1), ArgTypeError,
         opt.__name__, "params")
    case(f"{opt.__name__}-params-float", lambda o=opt: o([1.0], lr=0.1), InputError,
         opt.__name__, "parameter 0")
    case(f"{opt.__name__}-params-const", lambda o=opt: o([tg.const(np.ones(2))], lr=0.1),
         InputError, opt.__name__, "parameter 0")

X4 = np.zeros((4, 2))
Y4 = np.array([0, 1, 0, 1])


def _fit(**kw: Any) -> object:
    return optim.fit(nn.TensorMLP(2, [2], seed=0), X4, Y4, **kw)


family("fit", "epochs", lambda v: _fit(epochs=v), NOT_AN_INT, NOT_POSITIVE_INT)
family("fit", "batch_size", lambda v: _fit(batch_size=v), NOT_AN_INT[:2], NOT_POSITIVE_INT)
family("fit", "l2", lambda v: _fit(l2=v), NOT_A_NUMBER[:3], NONFINITE, NEGATIVE)
family("fit", "seed", lambda v: _fit(seed=v), BAD_SEED)
family("fit", "optimizer", lambda v: _fit(optimizer=v), [("str", "sgd", ArgTypeError)])
case("fit-X-1d", lambda: optim.fit(nn.TensorMLP(2, [2]), np.zeros(4), Y4), InputError, "fit:")
case("fit-y-count", lambda: optim.fit(nn.TensorMLP(2, [2]), X4, Y4[:3]), InputError, "fit:")

# --- nn ------------------------------------------------------------------------------------
for mod, make in [("Linear", lambda **kw: nn.Linear(**{"nin": 2, "nout": 3, **kw})),
                  ("Layer", lambda **kw: nn.Layer(**{"nin": 2, "nout": 3, **kw})),
                  ("Neuron", lambda **kw: nn.Neuron(**{"nin": 2, **kw}))]:
    family(mod, "nin", lambda v, m=make: m(nin=v), NOT_AN_INT, NOT_POSITIVE_INT)
    family(mod, "scale", lambda v, m=make: m(scale=v), [NOT_A_NUMBER[0], NOT_A_NUMBER[2]],
           NONFINITE, NEGATIVE)
    family(mod, "seed", lambda v, m=make: m(seed=v), BAD_SEED)
    family(mod, "name", lambda v, m=make: m(name=v), BAD_NAME)
    family(mod, "k", lambda v, m=make: m(activation="maxout", k=v), NOT_AN_INT[:2],
           NOT_POSITIVE_INT)
    case(f"{mod}-activation-unknown", lambda m=make: m(activation="swish"), InputError, mod,
         "activation")
    case(f"{mod}-activation-int", lambda m=make: m(activation=5), ArgTypeError, mod,
         "activation")
    case(f"{mod}-init-unknown", lambda m=make: m(init="lecun"), InputError, "init")
    case(f"{mod}-init-int", lambda m=make: m(init=5), ArgTypeError, "init")
for mod, make in [("Linear", lambda v: nn.Linear(2, v)), ("Layer", lambda v: nn.Layer(2, v))]:
    family(mod, "nout", make, NOT_AN_INT, NOT_POSITIVE_INT)
family("Linear", "dtype", lambda v: nn.Linear(2, 3, dtype=v),
       [("int32", "int32", ArgTypeError), ("int", int, ArgTypeError),
        ("bogus", "bogus", ArgTypeError), ("None", None, ArgTypeError)])
for mod, cls in [("MLP", nn.MLP), ("TensorMLP", nn.TensorMLP)]:
    family(mod, "nin", lambda v, c=cls: c(v, [2]), NOT_AN_INT, NOT_POSITIVE_INT)
    family(mod, "sizes", lambda v, c=cls: c(2, v),
           [("str", "ab", ArgTypeError), ("None", None, ArgTypeError),
            ("float", 2.5, ArgTypeError)])
    family(mod, "a layer size", lambda v, c=cls: c(2, [3, v]), NOT_AN_INT[:2],
           NOT_POSITIVE_INT)
    family(mod, "seed", lambda v, c=cls: c(2, [2], seed=v), BAD_SEED)
    family(mod, "scale", lambda v, c=cls: c(2, [2], scale=v), NONFINITE, NEGATIVE[:1])
    case(f"{mod}-sizes-empty", lambda c=cls: c(2, []), InputError, mod, "layer size")
    case(f"{mod}-activation", lambda c=cls: c(2, [2], activation="swish"), InputError, mod,
         "activation")
    case(f"{mod}-output_activation", lambda c=cls: c(2, [2], output_activation="bogus"),
         InputError, mod, "activation")
family("LeakyReLU", "slope", lambda v: nn.LeakyReLU(v), NOT_A_NUMBER[:3], NONFINITE)
family("leaky_relu", "slope", lambda v: nn.leaky_relu(tg.Node(1.0), v), NOT_A_NUMBER[:2],
       NONFINITE[:1])
family("PReLU", "num", lambda v: nn.PReLU(num=v), NOT_AN_INT[:2], NOT_POSITIVE_INT)
family("PReLU", "init", lambda v: nn.PReLU(init=v), NOT_A_NUMBER[:2], NONFINITE)
family("PReLU", "dtype", lambda v: nn.PReLU(dtype=v), [("int32", np.int32, ArgTypeError)])
for cls in (nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.PReLU):
    family(cls.__name__, "name", lambda v, c=cls: c(name=v), BAD_NAME)
case("Linear-call-shape", lambda: nn.Linear(2, 3)(np.zeros((4, 5))), ShapeError, "Linear",
     "(batch, 2)")
case("TensorMLP-call-shape", lambda: nn.TensorMLP(2, [3])(np.zeros((4, 5))), ShapeError, "2")
case("MLP-call-shape", lambda: nn.MLP(2, [3])(np.zeros((4, 5))), ShapeError, "MLP", "2 inputs")
case("maxout-empty", lambda: nn.maxout([]), InputError, "maxout")

# --- losses --------------------------------------------------------------------------------
S43 = np.zeros((4, 3))
CLASS_LOSSES = {"softmax_cross_entropy": losses.softmax_cross_entropy,
                "multiclass_hinge": losses.multiclass_hinge}
BAD_CLASS_LABELS = [
    ("2x2-for-4-rows", np.array([[0, 1], [2, 1]]), ShapeError, "labels"),
    ("3-for-4-rows", [0, 1, 2], ShapeError, "labels"),
    ("5-for-4-rows", [0, 1, 2, 1, 0], ShapeError, "labels"),
    ("scalar", 1, ShapeError, "labels"),
    ("out-of-range", [0, 1, 3, 1], InputError, "class index 3"),
    ("negative", [0, -1, 2, 1], InputError, "class index -1"),
    ("fractional", [0, 0.5, 2, 1], InputError, "integers"),
    ("nan", [0, nan, 2, 1], InputError, "integers"),
    ("strings", ["a", "b", "c", "d"], InputError, "dtype"),
    ("bools", [True, False, True, False], InputError, "dtype"),
]
for name, fn in CLASS_LOSSES.items():
    for lid, lab, kind, phrase in BAD_CLASS_LABELS:
        case(f"{name}-labels-{lid}", lambda f=fn, y=lab: f(tg.Node(S43), y), kind, name, phrase)
    case(f"{name}-reduction", lambda f=fn: f(tg.Node(S43), Y4 % 3, reduction="avg"),
         InputError, name, "reduction")
    case(f"{name}-scores-3d", lambda f=fn: f(tg.Node(np.zeros((2, 2, 3))), [0, 1]),
         ShapeError, name)
    case(f"{name}-scores-empty", lambda f=fn: f(tg.Node(np.zeros((0, 3))), []), ShapeError,
         name)
    case(f"{name}-scores-str", lambda f=fn: f("abc", [0]), DTypeError, name)
family("multiclass_hinge", "margin",
       lambda v: losses.multiclass_hinge(tg.Node(S43), Y4 % 3, margin=v),
       NOT_A_NUMBER[:2], NONFINITE[:2])
BINARY = {"binary_cross_entropy_with_logits": (losses.binary_cross_entropy_with_logits,
                                               [0.0, 1.5, 1.0, 0.0], "[0, 1]"),
          "binary_hinge": (losses.binary_hinge, [1, 2, 0, 1], "{-1, +1}")}
for name, (fn, bad_vals, phrase) in BINARY.items():
    z = np.zeros(4)
    case(f"{name}-targets-2x2", lambda f=fn: f(tg.Node(z), np.zeros((2, 2))), ShapeError, name)
    case(f"{name}-targets-3", lambda f=fn: f(tg.Node(z), [0, 1, 0]), ShapeError, name)
    case(f"{name}-targets-range", lambda f=fn, t=bad_vals: f(tg.Node(z), t), InputError, name,
         phrase)
    case(f"{name}-targets-str", lambda f=fn: f(tg.Node(z), ["a"] * 4), InputError, name,
         "dtype")
    case(f"{name}-targets-nan", lambda f=fn: f(tg.Node(z), [0, nan, 1, 0]), InputError, name)
    case(f"{name}-reduction", lambda f=fn: f(tg.Node(z), [0, 1, 0, 1], reduction=None),
         InputError, name, "reduction")
    case(f"{name}-scores-2d", lambda f=fn: f(tg.Node(S43), [0, 1, 0, 1]), ShapeError, name)
family("binary_hinge", "margin",
       lambda v: losses.binary_hinge(tg.Node(np.zeros(4)), [0, 1, 0, 1], margin=v),
       NOT_A_NUMBER[:2], NONFINITE[:1])
case("mse-target-shape", lambda: losses.mse(tg.Node(np.zeros(4)), np.zeros((2, 2))),
     ShapeError, "mse")
case("mse-target-transposed", lambda: losses.mse(tg.Node(np.zeros((2, 3))), np.zeros((3, 2))),
     ShapeError, "mse")
case("mse-target-str", lambda: losses.mse(tg.Node(np.zeros(2)), ["a", "b"]), InputError, "mse",
     "dtype")
case("mse-reduction", lambda: losses.mse(tg.Node(np.zeros(2)), [0, 1], reduction="max"),
     InputError, "mse", "reduction")
family("l2", "lam", lambda v: losses.l2(P(), v), NOT_A_NUMBER, NONFINITE, NEGATIVE)
case("l2-empty", lambda: losses.l2([], 0.1), InputError, "l2")
case("accuracy-labels-2x2", lambda: losses.accuracy(S43, np.zeros((2, 2), int)), ShapeError,
     "accuracy", "labels")
case("accuracy-labels-3", lambda: losses.accuracy(S43, [0, 1, 2]), ShapeError, "accuracy")
case("accuracy-binary-labels-2x2", lambda: losses.accuracy(np.zeros(4), np.zeros((2, 2))),
     ShapeError, "accuracy")
case("accuracy-scores-3d", lambda: losses.accuracy(np.zeros((2, 2, 2)), [0, 1]), ShapeError,
     "accuracy")

# --- Node, ops, backward -------------------------------------------------------------------
for did, d, phrase in [("str", "a", "str"), ("None", None, "None"), ("object", object(), ""),
                       ("mixed-list", [1, "a"], ""), ("complex", 1j, "complex"),
                       ("object-array", np.array([1, None], dtype=object), "object"),
                       ("dict", {"a": 1}, ""), ("str-array", np.array(["x"]), "")]:
    case(f"Node-data-{did}", lambda d=d: tg.Node(d), DTypeError, "Node", phrase)
family("Node", "name", lambda v: tg.Node(1.0, name=v), BAD_NAME[:2])
family("scope", "name", lambda v: tg.scope(v), BAD_NAME + [("None", None, ArgTypeError)])
case("primitive-name", lambda: tg.primitive(123, lambda x: x), ArgTypeError, "primitive",
     "name")
case("primitive-fwd", lambda: tg.primitive("f", 3), ArgTypeError, "primitive", "fwd")
case("primitive-vjp", lambda: tg.primitive("f", lambda x: x, "g"), ArgTypeError, "primitive",
     "vjps[0]")
case("primitive-builtin-name", lambda: tg.primitive("add", lambda x: x), GraphError, "add")

A23 = np.ones((2, 3))
B4 = np.ones(4)
for op in (tg.add, tg.sub, tg.mul, tg.div, tg.maximum, tg.minimum, tg.pow):
    case(f"{op.__name__}-broadcast", lambda f=op: f(tg.Node(A23, name="a"), tg.Node(B4)),
         ShapeError, f"{op.__name__}:", "(2, 3)", "(4,)")
    case(f"{op.__name__}-str-operand", lambda f=op: f(tg.Node(1.0), "x"), DTypeError,
         op.__name__)
for op in (tg.exp, tg.log, tg.sqrt, tg.abs, tg.tanh, tg.sigmoid, tg.relu, tg.softplus, tg.neg,
           tg.log_sigmoid):
    for vid, v in [("str", "a"), ("None", None)]:
        case(f"{op.__name__}-{vid}", lambda f=op, v=v: f(v), DTypeError, op.__name__)
REDUCTIONS = {"sum": tg.sum, "max": tg.max, "min": tg.min, "mean": tg.mean,
              "logsumexp": tg.logsumexp, "softmax": tg.softmax, "log_softmax": tg.log_softmax}
for name, fn in REDUCTIONS.items():
    for aid, ax in [("big", 5), ("neg", -4), ("str", "a"), ("float", 1.5), ("repeat", (0, 0)),
                    ("bool-in-tuple", (True,))]:
        case(f"{name}-axis-{aid}", lambda f=fn, a=ax: f(tg.Node(A23), axis=a), AxisError,
             f"{name}:", "axis")
for name in ("max", "min", "mean", "logsumexp", "softmax", "log_softmax"):
    case(f"{name}-empty-axis", lambda f=REDUCTIONS[name]: f(tg.Node(np.zeros((2, 0))), axis=1),
         AxisError, f"{name}:", "empty")
family("clip", "lo", lambda v: tg.clip(tg.Node(1.0), lo=v), NOT_A_NUMBER[2:4],
       [("str", "a", ArgTypeError), ("nan", nan, InputError)])
family("clip", "hi", lambda v: tg.clip(tg.Node(1.0), hi=v), NOT_A_NUMBER[2:4],
       [("str", "a", ArgTypeError), ("nan", nan, InputError)])
case("clip-lo-gt-hi", lambda: tg.clip(tg.Node(1.0), 2.0, 1.0), InputError, "clip", "lo=2.0")
family("leaky_relu", "alpha", lambda v: tg.leaky_relu(tg.Node(1.0), v), NOT_A_NUMBER[:3],
       NONFINITE)
case("where-float-cond", lambda: tg.where(np.ones(3), tg.Node(B4[:3]), 0.0), DTypeError,
     "where", "boolean")
case("where-str-cond", lambda: tg.where("yes", tg.Node(1.0), 0.0), DTypeError, "where")
case("where-shapes", lambda: tg.where(np.ones(2, bool), tg.Node(np.ones(3)), 0.0), ShapeError,
     "where")
case("concat-empty", lambda: tg.concat([]), InputError, "concat", "xs")
case("stack-empty", lambda: tg.stack([]), InputError, "stack", "xs")
case("concat-shapes", lambda: tg.concat([tg.Node(A23), tg.Node(np.ones((3, 2)))]), ShapeError,
     "concat")
case("concat-scalars", lambda: tg.concat([tg.Node(1.0), tg.Node(2.0)]), ShapeError, "concat")
case("concat-axis", lambda: tg.concat([tg.Node(A23)], axis=3), AxisError, "concat", "axis")
case("stack-shapes", lambda: tg.stack([tg.Node(A23), tg.Node(B4)]), ShapeError, "stack")
case("stack-axis", lambda: tg.stack([tg.Node(B4)], axis=5), AxisError, "stack", "axis")
case("matmul-inner", lambda: tg.matmul(tg.Node(A23), tg.Node(A23)), ShapeError, "matmul",
     "(2, 3)")
case("matmul-scalar", lambda: tg.matmul(tg.Node(1.0), tg.Node(A23)), ShapeError, "matmul")
case("linear-w-1d", lambda: tg.linear(tg.Node(A23), tg.Node(np.ones(3)), tg.Node(1.0)),
     ShapeError, "linear")
case("linear-inner", lambda: tg.linear(tg.Node(A23), tg.Node(np.ones((2, 2))),
                                       tg.Node(np.ones(2))), ShapeError, "linear")
case("linear-bias", lambda: tg.linear(tg.Node(A23), tg.Node(np.ones((3, 2))),
                                      tg.Node(np.ones(5))), ShapeError, "linear", "bias")
case("reshape-size", lambda: tg.reshape(tg.Node(A23), 5), ShapeError, "reshape", "(5,)")
case("reshape-str", lambda: tg.reshape(tg.Node(A23), "a"), ShapeError, "reshape")
case("reshape-two-minus-one", lambda: tg.reshape(tg.Node(A23), (-1, -1)), ShapeError,
     "reshape")
case("transpose-repeat", lambda: tg.transpose(tg.Node(A23), (0, 0)), AxisError, "transpose",
     "axes")
case("transpose-length", lambda: tg.transpose(tg.Node(A23), (0, 1, 2)), AxisError, "transpose")
case("transpose-str", lambda: tg.transpose(tg.Node(A23), ("a", 0)), AxisError, "transpose",
     "axes")
case("transpose-int", lambda: tg.transpose(tg.Node(A23), 1), AxisError, "transpose", "axes")
case("getitem-range", lambda: tg.Node(B4)[10], IndexOutOfRange, "getitem", "10")
case("getitem-float", lambda: tg.Node(B4)[1.5], IndexOutOfRange, "getitem")
case("getitem-str", lambda: tg.Node(B4)["a"], IndexOutOfRange, "getitem")
case("getitem-float-array", lambda: tg.Node(B4)[np.array([0.0, 1.0])], DTypeError, "getitem",
     "float64")
case("getitem-scalar", lambda: tg.Node(1.0)[0], IndexOutOfRange, "getitem", "scalar")
case("getitem-array-range", lambda: tg.Node(B4)[np.array([0, 9])], IndexOutOfRange, "getitem")
case("setitem", lambda: tg.Node(B4).__setitem__(0, 1.0), GraphError, "setitem")
case("len-scalar", lambda: len(tg.Node(1.0)), ArgTypeError, "len()")
case("iter-scalar", lambda: iter(tg.Node(1.0)), ArgTypeError, "iteration")
case("backward-not-node", lambda: tg.backward(123), GraphError, "backward", "Node")
case("backward-const", lambda: tg.const(1.0).backward(), GraphError, "backward")
case("backward-nonscalar", lambda: (tg.Node(B4) * 2).backward(), GraphError, "backward",
     "grad=")
case("backward-grad-shape", lambda: (tg.Node(B4) * 2).backward(np.ones(3)), ShapeError,
     "backward")
case("backward-grad-str", lambda: (tg.Node(1.0) * 2).backward("a"), DTypeError, "backward")
case("zero_grad-int", lambda: tg.zero_grad(123), ArgTypeError, "zero_grad", "123")
case("zero_grad-list-of-str", lambda: tg.zero_grad(["w"]), ArgTypeError, "zero_grad", "'w'")
case("walk-int", lambda: tg.walk(123), ArgTypeError, "walk", "root")
case("toposort-int", lambda: tg.toposort(123), ArgTypeError, "toposort", "root")
case("stack-axis-str", lambda: tg.stack([tg.Node(B4)], axis="a"), AxisError, "stack", "axis")
family("Node", "requires_grad", lambda v: tg.Node(1.0, requires_grad=v),
       [("str", "no", ArgTypeError), ("None", None, ArgTypeError)])
case("vjp_message-leaf", lambda: tg.vjp_message(tg.Node(1.0), 0), GraphError, "vjp_message")


def _vjp_message_index() -> None:
    y = tg.Node(1.0) * 2.0
    y.backward()
    tg.vjp_message(y, 5)


case("vjp_message-index", _vjp_message_index, IndexOutOfRange, "vjp_message", "parents")


def _stale() -> None:
    x = tg.Node(1.0)
    y = x * 2.0
    x.data = 3.0
    y.backward()


case("backward-stale", _stale, GraphError, "backward", "stale")
case("data-frozen-const", lambda: setattr(tg.Node(1.0) * 3.0, "data", 1.0) or setattr(
    (tg.Node(1.0) * 3.0).parents[1], "data", 7.0), GraphError, "data", "constant")
case("data-shape", lambda: setattr(tg.Node(B4), "data", A23), ShapeError, "data", "(2, 3)")
case("data-str", lambda: setattr(tg.Node(B4), "data", "a"), DTypeError, ".data")

# --- data ----------------------------------------------------------------------------------
MAKERS = {"make_moons": data.make_moons, "make_circles": data.make_circles,
          "make_spiral": data.make_spiral, "make_blobs": data.make_blobs,
          "make_xor": data.make_xor}
for name, fn in MAKERS.items():
    family(name, "n", lambda v, f=fn: f(n=v), NOT_AN_INT, NOT_POSITIVE_INT)
    family(name, "seed", lambda v, f=fn: f(seed=v), BAD_SEED)
    if name == "make_blobs":
        family(name, "std", lambda v, f=fn: f(std=v), NOT_A_NUMBER[:3], NONFINITE[:2], NEGATIVE)
    else:
        family(name, "noise", lambda v, f=fn: f(noise=v), NOT_A_NUMBER[:3], NONFINITE[:2],
               NEGATIVE)
family("make_circles", "factor", lambda v: data.make_circles(factor=v), NOT_A_NUMBER[:2],
       [("zero", 0.0, InputError), ("one", 1.0, InputError), ("nan", nan, InputError)])
family("make_spiral", "classes", lambda v: data.make_spiral(classes=v), NOT_AN_INT[:2],
       NOT_POSITIVE_INT)
family("make_blobs", "centers", lambda v: data.make_blobs(centers=v),
       [("zero", 0, InputError), ("neg", -2, InputError)])
case("make_blobs-centers-shape", lambda: data.make_blobs(centers=[[1, 2, 3]]), ShapeError,
     "make_blobs", "centers")
case("make_blobs-centers-nan", lambda: data.make_blobs(centers=[[nan, 0.0]]), InputError,
     "make_blobs", "centers")
case("make_blobs-centers-str", lambda: data.make_blobs(centers="ab"), InputError,
     "make_blobs", "centers")
family("Standardize", "eps", lambda v: data.Standardize(eps=v), NOT_A_NUMBER[:3], NONFINITE,
       NEGATIVE)
family("Whiten", "eps", lambda v: data.Whiten(eps=v), NOT_A_NUMBER[:2], NONFINITE[:2],
       NEGATIVE[:1])
family("Whiten", "k", lambda v: data.Whiten(k=v), NOT_AN_INT[:2], NOT_POSITIVE_INT)
family("PCA", "k", lambda v: data.PCA(k=v), NOT_AN_INT, NOT_POSITIVE_INT)
family("MeanImage", "per_channel", lambda v: data.MeanImage(per_channel=v),
       [("str", "yes", ArgTypeError), ("int", 1, ArgTypeError)])
family("MeanImage", "channel_axis", lambda v: data.MeanImage(channel_axis=v), NOT_AN_INT[:3])
for cls in (data.MeanCenter, data.Standardize, data.PCA, data.Whiten):
    nm = cls.__name__
    mk = (lambda c=cls: c(1)) if cls is data.PCA else cls
    for xid, X, kind in [("str", np.array([["a", "b"]]), InputError),
                         ("nan", np.array([[nan, 1.0]]), InputError),
                         ("1d", np.ones(3), ShapeError), ("empty", np.zeros((0, 2)), ShapeError),
                         ("None", None, InputError)]:
        case(f"{nm}-fit-{xid}", lambda m=mk, X=X: m().fit(X), kind, nm)
    case(f"{nm}-transform-unfitted", lambda m=mk: m().transform(np.ones((2, 2))), InputError, nm,
         "fit")
    case(f"{nm}-transform-shape",
         lambda m=mk: m().fit(np.random.default_rng(0).normal(size=(9, 3))).transform(
             np.ones((2, 2))), ShapeError, nm)
case("PCA-k-too-big", lambda: data.PCA(5).fit(np.eye(3)), ShapeError, "PCA", "k=5")
case("MeanImage-channel-range", lambda: data.MeanImage(True, 5).fit(np.ones((2, 3, 3))),
     ShapeError, "MeanImage", "channel_axis")

# --- viz, thresholds, diagnostics ----------------------------------------------------------


def _graph() -> tg.Node:
    x = tg.Node(np.array([[0.5, -1.0]]), name="x")
    return losses.softmax_cross_entropy(nn.Linear(2, 3, activation="relu", seed=0)(x), [1])


def _draw(**kw: Any) -> object:
    return viz.draw(_graph(), **kw)


family("draw", "g_ref", lambda v: _draw(g_ref=v),
       [("inf", inf, InputError), ("nan", nan, InputError), ("zero", 0.0, InputError),
        ("neg", -1.0, InputError), ("min", "min", InputError), ("None", None, ArgTypeError),
        ("list", [1.0], ArgTypeError), ("bool", True, ArgTypeError)])
family("draw", "max_nodes", lambda v: _draw(max_nodes=v), NOT_AN_INT[:3], NOT_POSITIVE_INT)
for flag in ("compact", "inline_constants", "edge_labels", "sign", "legend", "heat"):
    family("draw", flag, lambda v, f=flag: _draw(**{f: v}), [("str", "yes", ArgTypeError)])
family("draw", "rankdir", lambda v: _draw(rankdir=v),
       [("bogus", "XY", InputError), ("lower", "lr", InputError), ("int", 1, InputError)])
family("draw", "dpi", lambda v: _draw(dpi=v), NOT_A_NUMBER[:1], NONFINITE[:2], NEGATIVE[:1],
       [("zero", 0, InputError)])
case("draw-root", lambda: viz.draw(123), InputError, "draw", "Node")
case("draw-level", lambda: _draw(level="atom"), InputError, "draw", "level")
case("draw-thresholds", lambda: _draw(thresholds={"decades": 3}), InputError, "draw",
     "thresholds")
case("draw-roles-value", lambda: _draw(roles={"x": "weight"}), InputError, "draw", "role")
case("draw-roles-type", lambda: _draw(roles="x"), InputError, "draw", "roles")
case("draw-focus", lambda: _draw(focus="nowhere"), InputError, "draw", "focus")
case("build-g_ref", lambda: viz.build(_graph(), g_ref=inf), InputError, "draw", "g_ref")
case("view-node", lambda: viz.build(_graph()).node("nowhere"), NotFound, "view", "nowhere")
case("view-format", lambda: _draw().pipe("gif"), InputError, "render", "format")
case("view-suffix", lambda: _draw().render("picture.bmp"), InputError, "render", "suffix")
for fld in ("sigmoid_saturated", "sigmoid_warning", "tanh_saturated", "tanh_warning",
            "vanishing"):
    family("Thresholds", fld, lambda v, f=fld: Thresholds(**{f: v}), NOT_A_NUMBER[:2],
           NONFINITE[:2], NEGATIVE[:1])
for fld in ("decades", "exploding"):
    family("Thresholds", fld, lambda v, f=fld: Thresholds(**{f: v}), NOT_A_NUMBER[:2],
           NONFINITE[:2], NEGATIVE[:1], [("zero", 0.0, InputError)])
family("Thresholds", "saturated_share", lambda v: Thresholds(saturated_share=v),
       NOT_A_NUMBER[:1], [("big", 1.5, InputError), ("neg", -0.1, InputError)])
family("Thresholds", "dead_snapshots", lambda v: Thresholds(dead_snapshots=v), NOT_AN_INT[:3],
       NOT_POSITIVE_INT)


def _model() -> nn.Module:
    return nn.TensorMLP(2, [3, 2], seed=0)


case("Report-lookup", lambda: diagnostics.diagnose(_model(), X4)["L9"], NotFound,
     "diagnostics", "L9")
case("diagnose-model", lambda: diagnostics.diagnose("net", X4), InputError, "diagnose", "model")
case("diagnose-loss", lambda: diagnostics.diagnose(_model(), X4, Y4, loss=3), InputError,
     "diagnose", "loss")
case("diagnose-no-labels", lambda: diagnostics.diagnose(_model(), X4, loss=losses.mse),
     InputError, "diagnose", "labels")
case("diagnose-thresholds", lambda: diagnostics.diagnose(_model(), X4, thresholds=3),
     InputError, "diagnose", "thresholds")


def _recorder(**kw: Any) -> viz.Recorder:
    m = _model()
    return viz.Recorder(m, lambda: losses.softmax_cross_entropy(m(X4), Y4), **kw)


family("Recorder", "every", lambda v: _recorder(every=v), NOT_AN_INT[:3], NOT_POSITIVE_INT)
case("Recorder-model", lambda: viz.Recorder("m", lambda: None), InputError, "Recorder", "model")
case("Recorder-loss_fn", lambda: viz.Recorder(_model(), 3), InputError, "Recorder", "loss_fn")
case("Recorder-thresholds", lambda: _recorder(thresholds="t"), InputError, "Recorder",
     "thresholds")
family("Recorder.fit", "steps", lambda v: _recorder().fit(optim.SGD(P()), v), NOT_AN_INT[:3],
       [("neg", -1, InputError)])
case("Recorder.fit-optimizer", lambda: _recorder().fit("sgd", 2), InputError, "Recorder.fit",
     "optimizer")

# --- save / load arguments -----------------------------------------------------------------
family("save", "model", lambda v: tg.save(v, "never-written.npz"),
       [("int", 123, ArgTypeError), ("dict", {}, ArgTypeError), ("None", None, ArgTypeError)])
family("save", "path", lambda v: tg.save(_model(), v),
       [("int", 123, ArgTypeError), ("None", None, ArgTypeError), ("empty", "", InputError),
        ("nul", "a\0b.npz", InputError)])
family("save", "metadata", lambda v: tg.save(_model(), "never-written.npz", metadata=v),
       [("list", [1], ArgTypeError), ("str", "x", ArgTypeError)])
case("save-metadata-json", lambda: tg.save(_model(), "never-written.npz", metadata={"a": {1}}),
     LoadError, "save", "metadata")


def _bad_state(change: Callable[[dict], object]) -> Callable[[], object]:
    def call() -> object:
        m = _model()
        st = m.state_dict()
        change(st)
        return m.load_state_dict(st)
    return call


for sid, change, phrase in [
        ("missing", lambda st: st.pop("L1.W"), "missing"),
        ("extra", lambda st: st.update(zz=np.ones(2)), "unexpected"),
        ("shape", lambda st: st.update({"L1.W": np.ones((3, 3))}), "shape"),
        ("dtype", lambda st: st.update({"L1.W": np.ones((2, 3), np.float32)}), "dtype"),
        ("nan", lambda st: st.update({"L1.b": np.full(3, nan)}), "non-finite"),
        ("list", lambda st: st.update({"L1.b": [0.0, 0.0, 0.0]}), "array")]:
    case(f"load_state_dict-{sid}", _bad_state(change), LoadError, "load", phrase)
family("load", "model", lambda v: tg.load(v, "never-read.npz"),
       [("int", 123, ArgTypeError), ("str", "m", ArgTypeError)])
family("load", "path", lambda v: tg.load(_model(), v),
       [("int", 123, ArgTypeError), ("None", None, ArgTypeError), ("empty", "", InputError)])

# --- testing.gradcheck arguments -----------------------------------------------------------


def _gc(**kw: Any) -> object:
    return testing.gradcheck(lambda x: x * x, 1.5, **kw)


family("gradcheck", "eps", lambda v: _gc(eps=v), NOT_A_NUMBER[:2], NONFINITE[:2],
       NEGATIVE[:1], [("zero", 0.0, InputError)])
family("gradcheck", "rtol", lambda v: _gc(rtol=v), NOT_A_NUMBER[:2], NONFINITE[:1],
       NEGATIVE[:1])
family("gradcheck", "atol", lambda v: _gc(atol=v), NOT_A_NUMBER[:2], NONFINITE[:1],
       NEGATIVE[:1])
family("gradcheck", "max_full", lambda v: _gc(max_full=v), NOT_AN_INT[:2],
       [("neg", -1, InputError)])
family("gradcheck", "n_proj", lambda v: _gc(n_proj=v), NOT_AN_INT[:2], NOT_POSITIVE_INT)
family("gradcheck", "seed", lambda v: _gc(seed=v), BAD_SEED)
case("gradcheck-fn", lambda: testing.gradcheck(3, 1.0), ArgTypeError, "gradcheck", "fn")
case("gradcheck-no-inputs", lambda: testing.gradcheck(lambda: tg.Node(1.0)), GradcheckError,
     "gradcheck", "input")
case("gradcheck-returns-float", lambda: testing.gradcheck(lambda x: 1.0, 2.0), DTypeError,
     "gradcheck", "fn")


@pytest.mark.parametrize(("call", "kind", "phrases"), CASES)
def test_bad_input_raises_a_named_tinygraph_error(call: Callable[[], object], kind: type,
                                                  phrases: tuple[str, ...]) -> None:
    assert issubclass(kind, TinygraphError)
    with np.errstate(all="ignore"), pytest.raises(kind) as info:
        call()
    err = info.value
    assert isinstance(err, BUILTINS), f"{type(err).__name__} subclasses no matching builtin"
    msg = str(err)
    for p in phrases:
        assert p in msg, f"{p!r} not in {msg!r}"


def test_the_catalogue_has_at_least_300_cases() -> None:
    assert len(CASES) >= 300


# --- nothing half-changed ------------------------------------------------------------------


def _node_state() -> tuple[Any, Callable[[], object], Callable[[Any], object]]:
    n = tg.Node(np.arange(3.0), name="w")
    return n, lambda: setattr(n, "data", np.ones((2, 2))), lambda s: s.data.copy()


def _optimizer_state() -> tuple[Any, Callable[[], object], Callable[[Any], object]]:
    ps = [tg.Node(np.arange(3.0), name="a"), tg.Node(np.ones((2, 2)), name="b")]
    opt = optim.Adam(ps, lr=0.1)
    ps[0].grad = np.ones(3)
    ps[1].grad = np.ones((3, 2))  # the wrong shape: found before anything moves

    def snap(o: optim.Adam) -> object:
        return (o.t, [p.data.copy() for p in o.params], [np.copy(m) for m in o.m])
    return opt, opt.step, snap


def _sgd_momentum_state() -> tuple[Any, Callable[[], object], Callable[[Any], object]]:
    ps = [tg.Node(1.0, name="a"), tg.Node(np.ones(2), name="b")]
    opt = optim.SGD(ps, lr=0.1, momentum=0.9)
    ps[0].grad = 1.0
    ps[1].grad = np.ones((2, 2))

    def snap(o: optim.SGD) -> object:
        return (o.t, [np.copy(p.data) for p in o.params], [np.copy(v) for v in o.velocity])
    return opt, opt.step, snap


def _preprocessor_state() -> tuple[Any, Callable[[], object], Callable[[Any], object]]:
    s = data.Standardize().fit(np.array([[1.0, 2.0], [3.0, 5.0]]))
    return s, lambda: s.fit(np.array([[nan, 1.0]])), lambda p: (p.mean_.copy(), p.std_.copy())


def _model_state() -> tuple[Any, Callable[[], object], Callable[[Any], object]]:
    m = _model()
    bad = {k: v.copy() for k, v in m.state_dict().items()}
    bad[list(bad)[-1]] = np.full_like(bad[list(bad)[-1]], nan)  # the last one is bad
    return m, lambda: m.load_state_dict(bad), lambda mm: {k: v.copy() for k, v in
                                                          mm.state_dict().items()}


def _load_args_state() -> tuple[Any, Callable[[], object], Callable[[Any], object]]:
    m = _model()
    return m, lambda: tg.load(m, 123), lambda mm: {k: v.copy() for k, v in
                                                   mm.state_dict().items()}


def _scope_state() -> tuple[Any, Callable[[], object], Callable[[Any], object]]:
    return None, lambda: tg.scope(123).__enter__(), lambda _: (tg.current_scope(),
                                                               tg.is_grad_enabled())


def _zero_grad_state() -> tuple[Any, Callable[[], object], Callable[[Any], object]]:
    w = tg.Node(2.0)
    (w * w).backward()
    return w, lambda: tg.zero_grad(w, 5), lambda n: n.grad


def _const_state() -> tuple[Any, Callable[[], object], Callable[[Any], object]]:
    c = (tg.Node(1.0) * 3.0).parents[1]
    return c, lambda: setattr(c, "data", 4.0), lambda cc: (cc.data, (tg.Node(2.0) * 3.0).data)


@pytest.mark.parametrize("setup", [_node_state, _optimizer_state, _sgd_momentum_state,
                                   _preprocessor_state, _model_state, _load_args_state,
                                   _scope_state, _const_state, _zero_grad_state],
                         ids=lambda f: f.__name__.strip("_"))
def test_a_failed_call_leaves_its_state_unchanged(setup: Callable[[], tuple]) -> None:
    obj, bad, snap = setup()
    before = snap(obj)
    with pytest.raises(TinygraphError):
        bad()
    after = snap(obj)
    assert _same(before, after)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (float, np.ndarray)):
        return bool(np.array_equal(a, b, equal_nan=True))
    return a == b
