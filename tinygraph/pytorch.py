"""Graduating to PyTorch: models across both ways, and tinygraph's diagrams of PyTorch training.

    import tinygraph.pytorch as tp
    net = tp.to_torch(model)              # a torch.nn.Sequential with the same weights
    back = tp.from_torch(net)             # and back: a tinygraph TensorMLP
    with tp.watch(net) as w:              # forward hooks and tensor hooks, removed on exit
        F.binary_cross_entropy_with_logits(net(X), y).backward()
    w.draw(level="layer").save("net.png") # the same diagram and flags as a tinygraph net's

PyTorch is optional (`pip install "tinygraph[torch]"`) and imported only when one of these
functions runs. The family that crosses: tinygraph's Linear (every activation of the notes that
PyTorch has: sigmoid, tanh, relu, leaky_relu with slope 0.01, prelu, and maxout as the small
torch module Maxout), TensorMLP, the scalar MLP (converted as its tensor twin) and a Sequential of
those; on the PyTorch side nn.Linear, nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.PReLU,
nn.Identity, Maxout and nn.Sequential. Weights are W (fan_in, fan_out) here and weight
(out, in) in PyTorch; the state-dict converters transpose. Anything else is refused by name.

A watched module's forward and backward are ordinary PyTorch: the hooks only keep references to
the tensors they see (and a copy of each layer's weights). Drawing rebuilds the forward as a
tinygraph graph of the same layers, puts the captured activations and gradients on its nodes and
hands it to tinygraph.viz, so a PyTorch net is diagnosed by the very code, thresholds and
renderer that diagnose a tinygraph net. tinygraph.viz is reached through its public entry points
only: viz.draw (in _view_adapter), viz.Recorder(...).snapshot / .html, and the View / ViewData
they return; Watch.diagnose uses tinygraph.diagnostics.activation_stats and gradient_flow.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import nn, ops
from .diagnostics import ACTIVATION_OPS
from .engine import Node, Primitive, apply, postorder, scope, walk
from .errors import InputError, LoadError, ShapeError, TinygraphError
from .thresholds import DEFAULT, Thresholds

__all__ = ["to_torch", "from_torch", "state_dict_to_torch", "state_dict_from_torch", "watch",
           "Watch", "draw_autograd", "TorchMissingError", "UnsupportedModuleError",
           "INSTALL"]

INSTALL = 'pip install "tinygraph[torch]"'


class TorchMissingError(TinygraphError, ImportError):
    """PyTorch is not installed: the bridge needs the optional extra."""


class UnsupportedModuleError(TinygraphError, TypeError):
    """A module (or a setting of one) with no counterpart on the other side."""


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:  # the only place torch is imported
        raise TorchMissingError(f"tinygraph.pytorch needs PyTorch: {INSTALL}") from e
    return torch


# ---------------------------------------------------------------------------------------------
# Maxout as a torch module (defined on first use, so that importing this module needs no torch)
# ---------------------------------------------------------------------------------------------

_CLASSES: dict[str, type] = {}


def _maxout_class() -> type:
    cls = _CLASSES.get("Maxout")
    if cls is not None:
        return cls
    torch = _torch()

    class Maxout(torch.nn.Module):
        """max over k affine pieces: out = max_j (x @ weight[j].T + bias[j]).

        weight (k, out_features, in_features), bias (k, out_features), initialized as
        nn.Linear initializes each piece. Tied maxima share the gradient equally (torch.amax),
        as in tinygraph.
        """

        def __init__(self, in_features: int, out_features: int, k: int = 2, *,
                     dtype: Any = None) -> None:
            super().__init__()
            self.in_features, self.out_features, self.k = in_features, out_features, k
            w = torch.empty(k, out_features, in_features, dtype=dtype)
            bound = 1 / math.sqrt(in_features)
            torch.nn.init.uniform_(w, -bound, bound)
            self.weight = torch.nn.Parameter(w)
            self.bias = torch.nn.Parameter(torch.zeros(k, out_features, dtype=dtype))

        def forward(self, x: Any) -> Any:
            if x.dim() == 1:
                z = torch.matmul(self.weight, x) + self.bias  # (k, out)
            else:
                z = torch.matmul(x, self.weight.transpose(1, 2)) + self.bias.unsqueeze(-2)
            return torch.amax(z, dim=0)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, k={self.k}"

    Maxout.__module__ = __name__  # pickled (torch.multiprocessing) as tinygraph.pytorch.Maxout
    _CLASSES["Maxout"] = Maxout
    return Maxout


def __getattr__(name: str) -> Any:
    if name == "Maxout":
        return _maxout_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------
# The layer plan both directions share: one tinygraph Linear <-> a torch linear + activation
# ---------------------------------------------------------------------------------------------

_SIMPLE_TORCH = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU"}
_LEAKY = 0.01  # the slope of tinygraph layers' leaky_relu
SUPPORTED_TORCH = ("Linear", "Sigmoid", "Tanh", "ReLU", "LeakyReLU(negative_slope=0.01)",
                   "PReLU", "Identity", "Maxout", "Sequential")


@dataclass
class _Spec:
    """One layer: a torch linear (nn.Linear or Maxout) and the activation module after it."""

    name: str
    linear: Any
    act: Any = None
    activation: str | None = None  # tinygraph's name for it
    path: str = ""  # the linear's path in the torch module, for messages
    act_path: str = ""


def _activation_of(m: Any, path: str, nout: int | None) -> str | None:
    """tinygraph's activation name for a torch activation module (None for Identity)."""
    torch = _torch()
    t = type(m)
    for name, cls in _SIMPLE_TORCH.items():
        if t is getattr(torch.nn, cls):
            if getattr(m, "inplace", False):
                raise UnsupportedModuleError(
                    f"{cls}(inplace=True) at {path!r}: it overwrites its input, the "
                    "pre-activation the bridge reads; use inplace=False")
            return name
    if t is torch.nn.LeakyReLU:
        if m.negative_slope != _LEAKY or m.inplace:
            raise UnsupportedModuleError(
                f"LeakyReLU(negative_slope={m.negative_slope}, inplace={m.inplace}) at {path!r}: "
                f"tinygraph's layers use leaky_relu with slope {_LEAKY} and need inplace=False")
        return "leaky_relu"
    if t is torch.nn.PReLU:
        if nout is not None and m.num_parameters not in (1, nout):
            raise UnsupportedModuleError(
                f"PReLU(num_parameters={m.num_parameters}) at {path!r} after a layer of "
                f"{nout} units: tinygraph's prelu has 1 slope or one per unit")
        return "prelu"
    if t is torch.nn.Identity:
        return None
    raise _unsupported(m, path)


def _unsupported(m: Any, path: str) -> UnsupportedModuleError:
    return UnsupportedModuleError(
        f"torch.nn.{type(m).__name__} at {path!r} has no tinygraph counterpart; supported: "
        f"{', '.join(SUPPORTED_TORCH)}")


def _is_linear(m: Any) -> bool:
    return type(m) is _torch().nn.Linear or type(m) is _maxout_class()


def _is_activation(m: Any) -> bool:
    torch = _torch()
    return type(m) in (torch.nn.Sigmoid, torch.nn.Tanh, torch.nn.ReLU, torch.nn.LeakyReLU,
                       torch.nn.PReLU, torch.nn.Identity)


def _group(mods: Sequence[tuple[str, Any]], names: Sequence[str] | None = None) -> list[_Spec]:
    """Group a chain of torch leaf modules into layers: each linear with the activation after it.

    names: the layer names (default L1, L2, ...); an activation not after a linear is refused.
    """
    specs: list[_Spec] = []
    prev: Any = None
    for path, m in mods:
        if _is_linear(m):
            name = names[len(specs)] if names else f"L{len(specs) + 1}"
            specs.append(_Spec(name, m, path=path))
            prev = m
        elif _is_activation(m):
            nout = specs[-1].linear.out_features if specs else None
            act = _activation_of(m, path, nout)
            if act is None:
                continue  # Identity
            if not specs or prev is not specs[-1].linear or type(prev) is _maxout_class():
                raise UnsupportedModuleError(
                    f"torch.nn.{type(m).__name__} at {path!r} does not follow a Linear: "
                    "tinygraph layers apply one activation right after their affine map")
            specs[-1].act, specs[-1].activation, specs[-1].act_path = m, act, path
            prev = m
        else:
            raise _unsupported(m, path)
    return specs


def _torch_leaves(module: Any) -> list[tuple[str, Any]]:
    """A torch model's leaf modules in order: a Sequential (nested ones flattened), a linear or
    an activation; a module of another kind is refused (its forward order is unknown)."""
    torch = _torch()
    out: list[tuple[str, Any]] = []
    stack: list[tuple[str, Any]] = [("", module)]
    while stack:
        path, m = stack.pop()
        if type(m) is torch.nn.Sequential:
            stack.extend(reversed([(f"{path}.{k}" if path else k, c)
                                   for k, c in m.named_children()]))
        elif _is_linear(m) or _is_activation(m):
            out.append((path or type(m).__name__, m))
        else:
            raise UnsupportedModuleError(
                f"from_torch: torch module {type(m).__name__} at {path or '(root)'!r}: only "
                f"{', '.join(SUPPORTED_TORCH)} cross (a module with its own forward() cannot be "
                "read layer by layer; watch() can draw it)")
    return out


def _children(model: Any) -> list[Any]:
    """A Sequential's modules, in order (duck-typed: iterable, else its module attributes)."""
    try:
        return list(model)
    except TypeError:
        return [m for _, m in model._members() if isinstance(m, nn.Module)]


_TG_ACTS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "ReLU": "relu", "LeakyReLU": "leaky_relu"}


def _tg_layers(model: Any) -> list[tuple[nn.Linear, str | None]]:
    """A tinygraph model's tensor layers in order, each with its activation: its own, or that
    of an activation module right after it in a Sequential."""
    if isinstance(model, nn.Linear):
        return [(model, model.activation)]
    if isinstance(model, nn.TensorMLP):
        return [(la, la.activation) for la in model.layers]
    seq = getattr(nn, "Sequential", None)
    if seq is not None and isinstance(model, seq):
        out: list[tuple[nn.Linear, str | None]] = []
        for m in _children(model):
            name = type(m).__name__
            if name in _TG_ACTS and isinstance(m, getattr(nn, name)):
                if name == "LeakyReLU" and m.slope != _LEAKY:
                    raise UnsupportedModuleError(
                        f"to_torch: LeakyReLU(slope={m.slope}) in a Sequential: tinygraph's "
                        f"layers use slope {_LEAKY}")
                if not out or out[-1][1] is not None:
                    raise UnsupportedModuleError(
                        f"to_torch: {name} in a Sequential does not follow a Linear without "
                        "activation")
                out[-1] = (out[-1][0], _TG_ACTS[name])
            elif isinstance(m, (nn.Linear, nn.TensorMLP)) or isinstance(m, seq):
                out += _tg_layers(m)
            else:
                raise UnsupportedModuleError(
                    f"to_torch: {name} inside a Sequential: only Linear, TensorMLP, Sequential "
                    "and the activation modules Sigmoid, Tanh, ReLU, LeakyReLU cross (PReLU and "
                    "maxout as Linear(nin, nout, activation=...))")
        return out
    raise UnsupportedModuleError(
        f"to_torch: tinygraph {type(model).__name__} has no PyTorch counterpart here; supported: "
        "Linear (every activation), Maxout, TensorMLP, MLP, Sequential")


def _tg_linears(model: Any) -> list[nn.Linear]:
    """A tinygraph model's tensor layers in order (a scalar MLP is refused here: see _twin)."""
    return [la for la, _ in _tg_layers(model)]


def _twin(model: Any) -> Any:
    """A scalar MLP's tensor twin (same maths, same weights); other models as they are."""
    if not isinstance(model, nn.MLP):
        return model
    layers = []
    for la in model.layers:
        k = len(la.neurons[0]._pieces) + 1 if la.activation == "maxout" else 2
        shared = la.activation == "prelu" and hasattr(la, "a")
        layers.append(nn.Linear(la.nin, la.nout, la.activation, name=la.name, k=k,
                                shared_slope=shared))
    twin = nn.TensorMLP(layers[0].nin, [la.nout for la in layers])
    twin.layers = layers
    twin.load_state_dict(nn.scalar_to_tensor_state(model.state_dict(), twin))
    return twin


def _torch_skeleton(layers: list[tuple[nn.Linear, str | None]],
                    bare: bool) -> tuple[Any, list[_Spec]]:
    """An nn.Sequential shaped like these tinygraph layers, with its layer plan."""
    torch = _torch()
    mods: list[Any] = []
    for la, act in layers:
        dt = getattr(torch, np.dtype(la.W.dtype).name)
        if act == "maxout":
            mods.append(_maxout_class()(la.nin, la.nout, la.W.shape[0], dtype=dt))
            continue
        mods.append(torch.nn.Linear(la.nin, la.nout, dtype=dt))
        if act in _SIMPLE_TORCH:
            mods.append(getattr(torch.nn, _SIMPLE_TORCH[act])())
        elif act == "leaky_relu":
            mods.append(torch.nn.LeakyReLU(_LEAKY))
        elif act == "prelu":
            mods.append(torch.nn.PReLU(la.a.size, dtype=dt))
    seq = torch.nn.Sequential(*mods)
    if bare and len(seq) == 1:  # a tinygraph Linear without activation: the nn.Linear itself
        seq = seq[0]
    return seq, _group(_torch_leaves(seq))


def _tg_skeleton(specs: list[_Spec], single: bool = False) -> Any:
    """The tinygraph model for a layer plan: a TensorMLP, or with single=True (a bare
    nn.Linear or Maxout) its one Linear."""
    layers = []
    for s in specs:
        dt = np.dtype(str(s.linear.weight.dtype).replace("torch.", ""))
        if dt.kind != "f" or dt.itemsize < 4:
            raise UnsupportedModuleError(
                f"layer {s.path!r} has dtype {s.linear.weight.dtype}; tinygraph holds float32 "
                "and float64")
        if type(s.linear) is _maxout_class():
            layers.append(nn.Linear(s.linear.in_features, s.linear.out_features, "maxout",
                                    name=s.name, k=s.linear.k, dtype=dt))
        else:
            shared = s.activation == "prelu" and s.act.num_parameters == 1
            layers.append(nn.Linear(s.linear.in_features, s.linear.out_features, s.activation,
                                    name=s.name, shared_slope=shared, dtype=dt))
    if not layers:
        raise UnsupportedModuleError("from_torch: the module has no Linear layer")
    for a, b in zip(layers, layers[1:]):
        if a.nout != b.nin:
            raise ShapeError(f"from_torch: layer {a.name!r} gives {a.nout} features but "
                             f"{b.name!r} takes {b.nin}")
    if single and len(layers) == 1:
        return layers[0]
    model = nn.TensorMLP(layers[0].nin, [la.nout for la in layers])
    model.layers = layers
    return model


def _pairs(tg_model: Any, layers: list[nn.Linear], specs: list[_Spec],
           torch_module: Any) -> list[tuple[str, str, str]]:
    """(tinygraph key, torch key, kind) for every parameter; kind "W" is transposed."""
    tg_names = {id(p): k for k, p in tg_model.named_parameters()}
    th_names = {id(p): k for k, p in torch_module.named_parameters()}
    out = []
    for la, s in zip(layers, specs, strict=True):
        out.append((tg_names[id(la.W)], th_names[id(s.linear.weight)], "W"))
        out.append((tg_names[id(la.b)], th_names[id(s.linear.bias)], "b"))
        if la.activation == "prelu":
            out.append((tg_names[id(la.a)], th_names[id(s.act.weight)], "a"))
    return out


def _to_torch_array(v: np.ndarray, kind: str) -> np.ndarray:
    return np.swapaxes(v, -1, -2) if kind == "W" else v


def _check_torch_state(state: dict[str, Any], torch_module: Any, who: str) -> None:
    want = torch_module.state_dict()
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    if missing or extra:
        raise LoadError(f"{who}: state dict keys do not fit the module: missing {missing}, "
                        f"unexpected {extra}")
    for k, v in want.items():
        shape = tuple(getattr(state[k], "shape", np.shape(state[k])))
        if shape != tuple(v.shape):
            raise LoadError(f"{who}: {k!r} has shape {shape}, the module's is {tuple(v.shape)}")


# ---------------------------------------------------------------------------------------------
# Models and state dicts across
# ---------------------------------------------------------------------------------------------


def to_torch(model: Any) -> Any:
    """A torch.nn.Module computing what the tinygraph model computes, with the same weights.

    Linear -> nn.Linear followed by its activation module (nn.Sequential of the two), Maxout ->
    tinygraph.pytorch.Maxout, TensorMLP, MLP or Sequential -> one flat nn.Sequential. The dtype
    (float32/float64) is kept. Anything else raises UnsupportedModuleError naming it.
    """
    twin = _twin(model)
    layers = _tg_layers(twin)
    seq, specs = _torch_skeleton(layers, isinstance(twin, nn.Linear))
    seq.load_state_dict(_state_to_torch(twin.state_dict(), twin, [la for la, _ in layers],
                                        specs, seq))
    return seq


def from_torch(module: Any) -> Any:
    """The tinygraph model for a torch model of the supported family, with the same weights:
    a Linear for a bare nn.Linear or Maxout, else a TensorMLP with layers L1, L2, ... ."""
    specs = _group(_torch_leaves(_unwrap(module)))
    model = _tg_skeleton(specs, _is_linear(_unwrap(module)))
    layers = _tg_linears(model)
    model.load_state_dict(_state_from_torch(_unwrap(module).state_dict(), model, layers, specs,
                                            _unwrap(module)))
    return model


def state_dict_to_torch(state: dict[str, Any], model: Any) -> dict[str, Any]:
    """A tinygraph state dict of model (model.state_dict()'s keys) as the state dict of
    to_torch(model): torch tensors, weights transposed to (out, in)."""
    twin = _twin(model)
    if twin is not model:
        state = nn.scalar_to_tensor_state(state, twin)
    layers = _tg_layers(twin)
    seq, specs = _torch_skeleton(layers, isinstance(twin, nn.Linear))
    return _state_to_torch(state, twin, [la for la, _ in layers], specs, seq)


def state_dict_from_torch(state: dict[str, Any], module: Any) -> dict[str, np.ndarray]:
    """A torch state dict of module as the state dict of from_torch(module): numpy arrays,
    weights transposed to (fan_in, fan_out)."""
    specs = _group(_torch_leaves(_unwrap(module)))
    model = _tg_skeleton(specs, _is_linear(_unwrap(module)))
    return _state_from_torch(state, model, _tg_linears(model), specs, _unwrap(module))


def _state_to_torch(state: dict[str, Any], model: Any, layers: list[nn.Linear],
                    specs: list[_Spec], seq: Any) -> dict[str, Any]:
    torch = _torch()
    pairs, _ = nn.check_state(model, state)
    checked = dict(zip((k for k, _ in model.named_parameters()), (v for _, v in pairs)))
    out = {}
    for tk, thk, kind in _pairs(model, layers, specs, seq):
        v = np.asarray(checked[tk])
        out[thk] = torch.from_numpy(np.ascontiguousarray(_to_torch_array(v, kind)).copy())
    return out


def _state_from_torch(state: dict[str, Any], model: Any, layers: list[nn.Linear],
                      specs: list[_Spec], module: Any) -> dict[str, np.ndarray]:
    _check_torch_state(state, module, "from_torch")
    out = {}
    for tk, thk, kind in _pairs(model, layers, specs, module):
        v = state[thk]
        v = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        out[tk] = np.ascontiguousarray(_to_torch_array(v, kind)).copy()
    return out


def _unwrap(module: Any) -> Any:
    """The model inside DistributedDataParallel / DataParallel."""
    torch = _torch()
    wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    return module.module if isinstance(module, wrappers) else module


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


# ---------------------------------------------------------------------------------------------
# Mirror graphs: what was captured, as a tinygraph graph for tinygraph.viz
# ---------------------------------------------------------------------------------------------


def _loss_prim() -> Primitive:
    """The loss of a PyTorch step in a mirror graph: its value, and as its derivative the
    gradient PyTorch sent into the model's output."""
    prim = _CLASSES.get("loss")
    if prim is None:
        prim = Primitive("loss", lambda x, value, gout: value,
                         (lambda g, out, x, value, gout: g * gout,), symbol="loss")
        _CLASSES["loss"] = prim  # type: ignore[assignment]
    return prim  # type: ignore[return-value]


def _loss_node(out: Node, value: float, gout: np.ndarray) -> Node:
    loss = apply(_loss_prim(), out, value=float(value), gout=np.asarray(gout, dtype=out.dtype))
    loss.name = "loss"
    return loss


def _view_adapter(root: Node, thresholds: Thresholds, options: dict[str, Any]) -> Any:
    """The one call into tinygraph.viz: a View of the mirror graph, built exactly as
    tinygraph.viz.draw builds one of a tinygraph graph."""
    from . import viz

    return viz.draw(root, thresholds=thresholds, **options)


@dataclass
class _Call:
    path: str
    module: Any
    x: Any  # the input tensor
    out: Any  # the output tensor
    params: dict[str, Any] = field(default_factory=dict)  # weights at forward time (tensors)
    grad: Any = None  # dL/d out, from a tensor hook


class _Spy:
    """A TorchFunctionMode, made on first use: it sees loss.backward() inside `with watch()`."""

    _cls: type | None = None

    @classmethod
    def make(cls, watch: Watch) -> Any:
        if cls._cls is None:
            torch = _torch()
            from torch.overrides import TorchFunctionMode

            class BackwardSpy(TorchFunctionMode):
                def __init__(self, w: Watch) -> None:
                    super().__init__()
                    self.w = w

                def __torch_function__(self, func: Any, types: Any, args: Any = (),
                                       kwargs: Any = None) -> Any:
                    kwargs = kwargs or {}
                    if func is torch.Tensor.backward or func is torch.autograd.backward:
                        root = args[0] if args else kwargs.get("tensors")
                        if isinstance(root, (list, tuple)):
                            root = root[0] if len(root) == 1 else None
                        if root is not None:
                            self.w.before_backward(root)
                    return func(*args, **kwargs)

            cls._cls = BackwardSpy
        return cls._cls(watch)


class Watch:
    """Hooks on a PyTorch model that capture one training step for tinygraph's diagrams.

    Made by watch(module). Each forward of the module records, per supported leaf module in
    call order, its input, its output and its weights; tensor hooks record the gradient that
    reaches each output in backward, and the parameters' .grad is read after it. Inside
    `with watch(...)` the loss is noticed when .backward() is called on it (and, with
    ops=True, every autograd node's gradients for draw_autograd); outside, pass it to
    step(loss) / draw(loss=...).

    draw(level=..., **viz options) -> tinygraph.viz.View (.save, .html, .report), report(),
    view() -> ViewData, step(loss) records a frame every `every` steps (html(path) writes
    the training page with the gradient-flow strip, .recorder is the tinygraph.viz.Recorder),
    close() removes every hook (also on leaving `with`).
    """

    def __init__(self, module: Any, *, every: int = 1, thresholds: Thresholds = DEFAULT,
                 samples: int = 6, ops: bool = True, **view_options: Any) -> None:
        torch = _torch()
        if not isinstance(module, torch.nn.Module):
            raise InputError(f"watch: expected a torch.nn.Module, got {type(module).__name__}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise InputError(f"watch: every must be a positive int, got {every!r}")
        if not isinstance(thresholds, Thresholds):
            raise InputError(f"watch: thresholds must be a tinygraph.thresholds.Thresholds, got "
                             f"{type(thresholds).__name__}")
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise InputError(f"watch: samples must be a positive int, got {samples!r}")
        self.module = _unwrap(module)
        self.every, self.thresholds, self.samples, self.ops = every, thresholds, samples, ops
        self.view_options = view_options
        seq = type(self.module) is torch.nn.Sequential
        leaves = [(p, m) for p, m in self.module.named_modules() if not any(m.children())]
        for p, m in leaves:  # refuse up front, by name
            if not (_is_linear(m) or _is_activation(m) or _is_dropout(m)):
                raise _unsupported(m, p or type(m).__name__)
            if _is_activation(m):
                _activation_of(m, p, None)
        self._names = {m: p or type(m).__name__ for p, m in leaves}
        # Layers are L1, L2, ... in a Sequential or a bare layer (as from_torch names them),
        # else named by their attribute paths (fc1, encoder.0).
        self._auto_names = seq or not any(True for _ in self.module.children())
        self.calls: list[_Call] = []
        self.loss: Any = None  # the last loss seen inside `with`
        self.steps_run = 0
        self.recorder: Any = None
        self._mirror_cache: dict[tuple, tuple[Any, list[_Spec]]] = {}
        self._fn_grads: dict[Any, tuple[Any, Any]] = {}  # autograd node -> (grad_in, grad_out)
        self._fn_handles: list[Any] = []
        self._spy: Any = None
        self._handles = [self.module.register_forward_pre_hook(self._pre)]
        self._handles += [m.register_forward_hook(self._hook) for _, m in leaves]
        self.closed = False

    # --- hooks ---------------------------------------------------------------------------------
    def _pre(self, module: Any, args: Any) -> None:
        self.calls = []  # a new forward of the whole model: a new step
        self._fn_grads = {}

    def _hook(self, module: Any, args: Any, out: Any) -> None:
        x = args[0] if args else None
        # The weights as they were in this forward (optimizer.step() may follow before drawing).
        params = {k: v.detach().clone() for k, v in module._parameters.items() if v is not None}
        call = _Call(self._names[module], module, x, out, params)
        self.calls.append(call)
        if getattr(out, "requires_grad", False):
            def keep(g: Any, call: _Call = call) -> None:
                call.grad = g.detach()
            out.register_hook(keep)

    def before_backward(self, root: Any) -> None:
        """Note the loss about to be back-propagated (done by itself inside `with`): its
        value, and with ops=True hooks on its autograd graph for draw_autograd."""
        self.loss = root  # its value, and its grad_fn for draw_autograd
        if self.ops and root.grad_fn is not None:
            self._hook_autograd(root.grad_fn)

    def _hook_autograd(self, fn: Any) -> None:
        for h in self._fn_handles:
            h.remove()
        self._fn_handles, self._fn_grads = [], {}
        for f in _autograd_nodes(fn):
            def keep(gin: Any, gout: Any, f: Any = f) -> None:
                self._fn_grads[f] = (tuple(None if g is None else g.detach() for g in gin),
                                     tuple(None if g is None else g.detach() for g in gout))
            self._fn_handles.append(f.register_hook(keep))

    # --- context and clean-up ------------------------------------------------------------------
    def __enter__(self) -> Watch:
        self._spy = _Spy.make(self)
        self._spy.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._spy is not None:
            self._spy.__exit__(*exc)
            self._spy = None
        self.close()

    def close(self) -> None:
        """Remove every hook: the model runs exactly as if it had never been watched."""
        for h in self._handles + self._fn_handles:
            h.remove()
        self._handles, self._fn_handles = [], []
        self.closed = True

    # --- the mirror graph ----------------------------------------------------------------------
    def _loss_value(self, loss: Any) -> float:
        loss = self.loss if loss is None else loss
        if loss is None:
            raise InputError("watch: no loss seen; call loss.backward() inside `with watch(...)`"
                             " or pass the loss (draw(loss=...), step(loss))")
        value = loss.detach() if hasattr(loss, "detach") else loss
        return float(value.item() if hasattr(value, "item") else value)

    def _specs(self) -> tuple[Any, list[_Spec], list[tuple[_Call, _Call | None]], list[Any]]:
        """The layer plan of the last forward, its tinygraph mirror model (cached), each
        layer's (linear call, activation call) and the tensor each layer handed on."""
        if not self.calls:
            raise InputError("watch: the model has not run forward since it was watched")
        order = [(c.path, c.module) for c in self.calls if not _is_dropout(c.module)]
        names = None
        if not self._auto_names:
            names = [c.path for c in self.calls if _is_linear(c.module)]
        specs = _group(order, names)
        pairs: list[tuple[_Call, _Call | None]] = []
        i = 0
        for s in specs:
            while self.calls[i].module is not s.linear:
                i += 1
            lin = self.calls[i]
            act = None
            if s.act is not None:
                act = next(c for c in self.calls[i + 1:] if c.module is s.act)
            pairs.append((lin, act))
            i += 1
        # An activation applied in forward() as a function (F.relu(self.fc1(x))) has no module
        # to hook; autograd shows it between one layer's output and the next layer's input.
        outs = [(act or lin).out for lin, act in pairs]
        for k in range(len(specs) - 1):
            if specs[k].act is None and type(specs[k].linear) is not _maxout_class():
                name = _functional_activation(pairs[k + 1][0].x, outs[k])
                if name is not None:
                    specs[k].activation = name
                    outs[k] = pairs[k + 1][0].x
        key = tuple(id(c.module) for c in self.calls) + tuple(s.activation for s in specs)
        model = self._mirror_cache.get(key)
        if model is None:
            model = self._mirror_cache[key] = _tg_skeleton(specs)
        return model, specs, pairs, outs

    def mirror(self, loss: Any = None) -> tuple[Node, Any]:
        """The last step as a tinygraph graph: (loss node, tinygraph model). Values and
        gradients on the layer nodes are the ones PyTorch computed (captured by the hooks)."""
        value = self._loss_value(loss)
        model, specs, pairs, outs = self._specs()
        layers = _tg_linears(model)
        state = {}
        for (tk, thk, kind) in _pairs(model, layers, specs, self.module):
            mod_path, pname = thk.rsplit(".", 1) if "." in thk else ("", thk)
            holder = self.module.get_submodule(mod_path)
            call = next(c for c in self.calls if c.module is holder)
            state[tk] = _to_torch_array(_np(call.params[pname]), kind)
        model.load_state_dict(state)
        x: Any = None
        gaps = []
        prev_out, prev_name = None, ""
        for la, (lin, _), out in zip(layers, pairs, outs):
            drop = next((c for c in self.calls if _is_dropout(c.module) and c.out is lin.x
                         and c.x is prev_out), None) if x is not None else None
            if drop is not None:
                x = _dropout_node(x, drop, prev_name)
            elif x is None or lin.x is not prev_out:
                if x is not None:
                    gaps.append(la.name)
                x = _np(lin.x).astype(la.W.dtype)
            x = la(x)
            prev_out, prev_name = out, la.name
        out_call = pairs[-1][1] or pairs[-1][0]
        if out_call.grad is None:
            raise InputError("watch: no gradient reached the model's output; call "
                             "loss.backward() after the forward")
        root = _loss_node(x, value, _np(out_call.grad))
        root.backward()  # the ops inside a layer (maxout's pieces, prelu's branches)
        self._overwrite(layers, specs, pairs, outs, root)
        self._gaps = gaps
        return root, model

    def _overwrite(self, layers: list[nn.Linear], specs: list[_Spec],
                   pairs: list[tuple[_Call, _Call | None]], outs: list[Any], root: Node) -> None:
        """Put PyTorch's own numbers on the mirror: layer outputs and the gradients reaching
        them (tensor hooks), and the parameters' gradients (.grad after backward)."""
        nodes = {(n.scope, n.name): n for n in walk(root) if n.name in ("z", "act")}
        for la, s, (lin, act), out in zip(layers, specs, pairs, outs):
            z = nodes.get((la.name, "z"))
            a = nodes.get((la.name, "act"))
            lin_node = a if la.activation == "maxout" else z
            if lin_node is not None:
                lin_node.data = _np(lin.out).astype(la.W.dtype)
                if lin.grad is not None:
                    lin_node.grad = _np(lin.grad).astype(la.W.dtype)
            if act is not None and a is not None:
                a.data = _np(act.out).astype(la.W.dtype)
                if act.grad is not None:
                    a.grad = _np(act.grad).astype(la.W.dtype)
            elif a is not None and la.activation != "maxout":
                # A functional activation: its output is the next layer's captured input; its
                # gradient is the one tinygraph computed from PyTorch's at the next layer.
                a.data = _np(out).astype(la.W.dtype)
            for node, tparam, kind in ((la.W, s.linear.weight, "W"), (la.b, s.linear.bias, "b"),
                                       (getattr(la, "a", None),
                                        getattr(s.act, "weight", None), "a")):
                if node is None or tparam is None:
                    continue
                node.grad = None if tparam.grad is None else np.ascontiguousarray(
                    _to_torch_array(_np(tparam.grad), kind)).astype(la.W.dtype)

    def _neuron_root(self, loss: Any) -> Node:
        """The first `samples` rows of the step as a scalar-level graph (one node per neuron),
        with PyTorch's weights, layer outputs and the gradient it sent into the output."""
        value = self._loss_value(loss)
        _, _, pairs, _ = self._specs()
        root, model = self.mirror(loss)
        layers = _tg_linears(model)
        for la in layers:
            if la.activation in ("maxout", "prelu"):
                raise InputError(f"watch: level='neuron' draws sigmoid, tanh, relu, leaky_relu "
                                 f"and linear layers; layer {la.name!r} is {la.activation}")
        scalar = nn.MLP(layers[0].nin, [la.nout for la in layers])
        scalar.layers = [nn.Layer(la.nin, la.nout, la.activation, name=la.name) for la in layers]
        st = {}
        for la in layers:
            W, b = np.asarray(la.W.data, np.float64), np.asarray(la.b.data, np.float64)
            for j in range(la.nout):
                st[f"{la.name}.n{j}.b"] = np.array(b[j])
                for i in range(la.nin):
                    st[f"{la.name}.n{j}.w{i}"] = np.array(W[i, j])
        scalar.load_state_dict(st)
        k = self.samples
        x = np.asarray(_np(pairs[0][0].x), np.float64)[:k]
        out_call = pairs[-1][1] or pairs[-1][0]
        out = scalar(x)
        r = _loss_node(out, value, np.asarray(_np(out_call.grad), np.float64)[:k])
        r.backward()
        return r

    # --- what users call -----------------------------------------------------------------------
    def draw(self, level: str = "auto", *, loss: Any = None, **options: Any) -> Any:
        """A tinygraph.viz.View of the last step (after loss.backward()).

        level "auto", "op" or "layer" draws the batch's tensors layer by layer; "neuron" draws
        the first `samples` samples one node per neuron, as tinygraph's demo does. options:
        those of tinygraph.viz.draw (g_ref, edge_labels, ...).
        """
        root = self._neuron_root(loss) if level == "neuron" else self.mirror(loss)[0]
        opts = {**self.view_options, **options}
        view = _view_adapter(root, self.thresholds, {"level": level, **opts})
        if getattr(self, "_gaps", None):
            view.data.banners.append(
                "layers fed by operations outside modules (drawn from their captured input): "
                + ", ".join(self._gaps))
        return view

    def view(self, level: str = "auto", *, loss: Any = None, **options: Any) -> Any:
        """The view data (tinygraph.viz.ViewData) of draw()."""
        return self.draw(level, loss=loss, **options).data

    def report(self, level: str = "layer", *, loss: Any = None, **options: Any) -> str:
        """The flags and per-layer diagnosis as text (no Graphviz needed)."""
        return self.view(level, loss=loss, **options).report()

    def diagnose(self, loss: Any = None) -> Any:
        """The last step's tinygraph.diagnostics.Report (saturated and dead units, mean |dL/dθ|
        and |dL/dz| per layer), from PyTorch's captured values and gradients."""
        from .diagnostics import LayerDiagnostics, Report, activation_stats, gradient_flow

        root, model = self.mirror(loss)
        acts = activation_stats(root, self.thresholds)
        flow = gradient_flow(model, root)
        layers = []
        for la in _tg_linears(model):
            d = acts.get(la.name) or LayerDiagnostics(la.name, units=la.nout)
            d.grad_params, d.grad_preact = flow.get(la.name, (None, None))
            layers.append(d)
        return Report(layers)

    def step(self, loss: Any = None) -> Any:
        """Call once per training step after loss.backward() (before optimizer.step()): a
        frame is recorded at steps 0, every, 2·every, ...; returns its snapshot or None."""
        snap = None
        if self.steps_run % self.every == 0:
            root, model = self.mirror(loss)
            if self.recorder is None:
                from .viz import Recorder

                def no_loss_fn() -> Node:
                    raise InputError("watch: the recorder of a PyTorch model records frames "
                                     "from step(loss); it does not run the model")

                opts = {"level": "layer", **self.view_options}
                self.recorder = Recorder(model, no_loss_fn, every=1,
                                         thresholds=self.thresholds, **opts)
            snap = self.recorder.snapshot(root, self.steps_run)
        self.steps_run += 1
        return snap

    def html(self, path: str | os.PathLike[str], title: str = "tinygraph: PyTorch training"
             ) -> Any:
        """The interactive training page of the recorded frames (step slider, gradient strip)."""
        if self.recorder is None:
            raise InputError("watch.html: no frame recorded; call step(loss) each training step")
        return self.recorder.html(path, title=title)

    def draw_autograd(self, loss: Any = None, **options: Any) -> Any:
        """The op-level autograd graph of the last loss, with the gradients the hooks saw."""
        loss = self.loss if loss is None else loss
        if loss is None:
            raise InputError("watch.draw_autograd: no loss seen; pass loss=")
        return draw_autograd(loss, grads=self._fn_grads, names=self._param_names(),
                             values={c.out.grad_fn: _np(c.out) for c in self.calls
                                     if getattr(c.out, "grad_fn", None) is not None},
                             thresholds=self.thresholds, **options)

    def _param_names(self) -> dict[Any, str]:
        return {p: k for k, p in self.module.named_parameters()}


def _is_dropout(m: Any) -> bool:
    return type(m) is _torch().nn.Dropout


def _dropout_node(x: Node, call: _Call, layer: str) -> Node:
    """Dropout after a layer, in the mirror: its input times the mask PyTorch drew (scaled by
    1/(1-p); read off as output / input, 0 where the input is 0), in the layer's scope. In eval
    mode it passes its input through."""
    xin, xout = _np(call.x), _np(call.out)
    if np.array_equal(xin, xout):
        return x
    with np.errstate(all="ignore"):
        mask = np.where(xin != 0, xout / np.where(xin != 0, xin, 1), 0.0)
    with scope(layer):
        out = ops.mul(x, mask.astype(x.dtype))
    out.name = "dropout"
    return out


_FUNCTIONAL = {"ReluBackward0": "relu", "SigmoidBackward0": "sigmoid",
               "TanhBackward0": "tanh", "LeakyReluBackward0": "leaky_relu"}


def _functional_activation(x: Any, prev: Any) -> str | None:
    """The activation, if x = f(prev) for one of tinygraph's activations applied as a function
    (F.relu, torch.sigmoid, torch.tanh, F.leaky_relu with slope 0.01), as autograd recorded it."""
    f = getattr(x, "grad_fn", None)
    name = _FUNCTIONAL.get(type(f).__name__) if f is not None else None
    if name is None or prev.grad_fn is None or not f.next_functions:
        return None
    if f.next_functions[0][0] is not prev.grad_fn:
        return None
    if name == "leaky_relu" and getattr(f, "_saved_negative_slope", None) != _LEAKY:
        return None
    return name


def watch(module: Any, *, every: int = 1, thresholds: Thresholds = DEFAULT, samples: int = 6,
          ops: bool = True, **view_options: Any) -> Watch:
    """Watch a PyTorch model (or its DistributedDataParallel wrapper) with tinygraph's diagrams.

        with watch(model) as w:
            loss_fn(model(X), y).backward()
        w.draw(level="layer").save("net.png"); print(w.report())

    every: record a frame each every-th step(loss); samples: rows drawn at level="neuron";
    ops: hook every autograd node at backward (for draw_autograd); view_options go to
    tinygraph.viz.draw. Leaf modules outside the supported family are refused by name.
    """
    return Watch(module, every=every, thresholds=thresholds, samples=samples, ops=ops,
                 **view_options)


# ---------------------------------------------------------------------------------------------
# Op level: the autograd graph behind a loss, drawn by tinygraph's renderer
# ---------------------------------------------------------------------------------------------


def _autograd_nodes(fn: Any) -> list[Any]:
    """Every autograd node behind fn, inputs before their users (iterative)."""
    return postorder(fn, lambda f: [nxt for nxt, _ in f.next_functions if nxt is not None])


_OP_PRIMS: dict[str, Primitive] = {}


def _op_prim(name: str) -> Primitive:
    """A primitive standing for one kind of autograd node: its VJP hands back, for input i,
    the gradient PyTorch sent along that edge (kept in the node's attributes)."""
    prim = _OP_PRIMS.get(name)
    if prim is None:
        def vjp(i: int, g: Any, out: Any, xs: tuple, value: Any, messages: tuple) -> Any:
            m = messages[i]
            return np.zeros_like(xs[i]) if m is None else m

        prim = _OP_PRIMS[name] = Primitive(name, lambda *xs, value, messages: value, vjp=vjp,
                                           symbol=name)
    return prim


def _op_name(fn: Any) -> str:
    name = type(fn).__name__
    for tail in ("Backward0", "Backward1", "Backward"):
        if name.endswith(tail):
            return name[: -len(tail)].lower() or name
    return name


def _data_like(value: Any, grad: Any) -> Any:
    """A node's value as tinygraph data: the known value, else zeros shaped like its gradient."""
    if value is not None:
        v = np.asarray(value, dtype=np.float64)
        return float(v) if v.ndim == 0 else v
    if grad is not None:
        g = np.asarray(grad, dtype=np.float64)
        return 0.0 if g.ndim == 0 else np.zeros_like(g)
    return 0.0


def _saved_result(f: Any) -> Any:
    """The output an autograd node saved for its backward (sigmoid, tanh, relu, exp keep it),
    while the graph still holds it."""
    try:
        return getattr(f, "_saved_result", None)
    except RuntimeError:  # freed by a backward without retain_graph
        return None


_RESHAPES = {"view", "reshape", "reshapealias", "unsafeview", "squeeze", "unsqueeze"}


def _replay(op: str, parents: list[Node], known: set[Node], grad: Any) -> Any:
    """The value of a transpose or reshape node whose input value is known (autograd keeps
    no values of its own for them)."""
    if len(parents) != 1 or parents[0] not in known or grad is None:
        return None
    d = np.asarray(parents[0].data)
    if op == "t" and d.ndim == 2 and d.T.shape == np.shape(grad):
        return d.T
    if op in _RESHAPES and d.size == np.size(grad):
        return d.reshape(np.shape(grad))
    return None


def draw_autograd(loss: Any, *, grads: dict[Any, tuple[Any, Any]] | None = None,
                  names: dict[Any, str] | None = None, values: dict[Any, Any] | None = None,
                  thresholds: Thresholds = DEFAULT, **options: Any) -> Any:
    """Draw the autograd graph behind a PyTorch loss (loss.grad_fn, as torchviz walks it) with
    tinygraph's renderer: one box per autograd node, parameters as leaves named as in the
    model. grads (from a watch: autograd node -> (grads into its inputs, grad of its output))
    puts the gradient on each edge where PyTorch's hooks saw it; edges without one are drawn as
    before backward. Values are shown where known (the loss, parameters, layer outputs given in
    values), else as zeros of the right shape. Returns a tinygraph.viz.View.
    """
    torch = _torch()
    if not isinstance(loss, torch.Tensor) or loss.grad_fn is None:
        raise InputError("draw_autograd: expected a tensor with a grad_fn (the output of a "
                         f"computation on parameters), got {type(loss).__name__}")
    grads, names, values = grads or {}, names or {}, values or {}
    known: set[Node] = set()  # nodes whose value is the real one, not zeros
    order = _autograd_nodes(loss.grad_fn)
    made: dict[Any, Node] = {}
    for f in order:
        gin, gout = grads.get(f, (None, None))
        g_here = None if gout is None or gout[0] is None else _np(gout[0]).astype(np.float64)
        if not f.next_functions and hasattr(f, "variable"):  # AccumulateGrad: a parameter
            p = f.variable
            n = Node(_np(p).astype(np.float64), name=names.get(p, "param"))
            n.grad = None if p.grad is None else _np(p.grad).astype(np.float64)
            made[f] = n
            known.add(n)
            continue
        parents, messages = [], []
        for i, (nxt, _) in enumerate(f.next_functions):
            if nxt is None:
                continue
            parents.append(made[nxt])
            m = None if gin is None or i >= len(gin) or gin[i] is None else _np(gin[i])
            messages.append(None if m is None else m.astype(np.float64))
        op = _op_name(f)
        value = loss.detach() if f is loss.grad_fn else values.get(f)
        if value is None:
            value = _saved_result(f)
        if value is None:
            value = _replay(op, parents, known, g_here)
        data = _data_like(None if value is None else _np(value), g_here)
        if op in ACTIVATION_OPS and not (value is not None and len(parents) == 1 and parents[0]
                                         in known and np.shape(parents[0].data) == np.shape(data)):
            # Diagnosed from its output and input: made-up zeros would read as saturated or
            # dead units.
            op += " (values not kept)"
        if not parents:  # a node whose inputs need no gradient: a leaf here
            made[f] = Node(data, name=op)
            continue
        for i, (p, m) in enumerate(zip(parents, messages)):
            if m is not None and np.shape(m) != np.shape(p.data):
                messages[i] = None  # another output of a multi-output node: not drawn
        node = apply(_op_prim(op), *parents, value=data, messages=tuple(messages))
        if value is not None:
            known.add(node)
        if f is loss.grad_fn:
            node.name = "loss"
            node.grad = 1.0 if gin is not None or grads else None
            if type(node.data) is not float:
                node.grad = None if node.grad is None else np.ones_like(node.data)
        else:
            node.grad = g_here
        made[f] = node
    if not grads:
        made[loss.grad_fn].grad = None
    return _view_adapter(made[loss.grad_fn], thresholds, {"level": "op", **options})

