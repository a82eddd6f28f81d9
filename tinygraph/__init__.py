"""tinygraph: a computational-graph autodiff engine on numpy, for learning, teaching and building
neural networks. One Node type serves scalars (micrograd-style) and tensors (numpy arrays)."""

from __future__ import annotations

from .engine import (
    PRIMITIVES,
    Node,
    Primitive,
    backward,
    const,
    current_scope,
    detect_anomaly,
    is_anomaly_enabled,
    is_grad_enabled,
    no_grad,
    primitive,
    scope,
    toposort,
    vjp_message,
    walk,
    zero_grad,
)
from .errors import (
    AnomalyError,
    ArgTypeError,
    AxisError,
    DTypeError,
    GradcheckError,
    GraphError,
    IndexOutOfRange,
    InputError,
    LoadError,
    ModuleError,
    NotFound,
    ReadOnlyError,
    ShapeError,
    TinygraphError,
)
from .ops import (
    abs,
    add,
    clip,
    concat,
    div,
    dot,
    exp,
    getitem,
    leaky_relu,
    linear,
    log,
    log_sigmoid,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    pow,
    relu,
    reshape,
    sigmoid,
    softmax,
    softplus,
    sqrt,
    stack,
    sub,
    sum,
    tanh,
    transpose,
    where,
)

__version__ = "0.1.0"

__all__ = [
    "PRIMITIVES", "Node", "Primitive", "backward", "const", "current_scope", "detect_anomaly",
    "is_anomaly_enabled", "is_grad_enabled", "no_grad", "primitive", "scope", "toposort",
    "vjp_message", "walk",
    "zero_grad",
    "AnomalyError", "ArgTypeError", "AxisError", "DTypeError", "GradcheckError", "GraphError",
    "IndexOutOfRange", "InputError", "LoadError", "ModuleError", "NotFound", "ReadOnlyError",
    "ShapeError", "TinygraphError",
    "abs", "add", "clip", "concat", "div", "dot", "exp", "getitem", "leaky_relu", "linear", "log",
    "log_sigmoid", "log_softmax", "logsumexp", "matmul", "max", "maximum", "mean", "min",
    "minimum", "mul", "neg", "pow", "relu", "reshape", "sigmoid", "softmax", "softplus", "sqrt",
    "stack", "sub", "sum", "tanh", "transpose", "where",
]

# Modules, losses, optimizers, the training loop, data, diagnostics and save/load, built on the ops.
from . import data, diagnostics, interop, losses, nn, optim, random, train  # noqa: E402
from .functional import grad, hessian, hvp, jacobian, value_and_grad  # noqa: E402
from .io import load, save  # noqa: E402
from .jit import jit  # noqa: E402
from .random import manual_seed  # noqa: E402

__all__ += ["data", "diagnostics", "interop", "losses", "nn", "optim", "random", "train", "load",
            "save", "manual_seed", "jit", "grad", "value_and_grad", "jacobian", "hessian", "hvp"]
