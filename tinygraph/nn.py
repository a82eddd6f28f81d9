"""Neural-network modules made of tinygraph's public graph ops, at two levels with the same maths.

Scalar level (one node per weight, the notes' picture of a neuron): Neuron, Layer, MLP.
Tensor level (each layer one matrix multiply, bias offset and activation): Linear, TensorMLP.

Every module creates its nodes inside tinygraph.scope, so diagrams cluster by layer and neuron:
a scalar MLP's layer k is scope "Lk", its neuron j scope "Lk.nj" with weights "w0".., bias "b",
pre-activation "z" and activation output "act"; a Linear layer has "W" (nin, nout), "b" (nout,),
"z" and "act". The output layer has no activation by default (class scores). Given the same seed,
MLP and TensorMLP draw the same weights, so they compute the same outputs and gradients.

A module you write works as in PyTorch: subclass Module, assign layers as attributes (named by
attribute: self.fc1 = Linear(...) gives "fc1.W"), define forward, call it; Sequential and
ModuleList hold modules in order. See Module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np

from . import engine, ops
from ._check import check_dtype, check_float, check_int, check_str, show
from .analysis import ACT, BIAS, PREACT, SLOPE, WEIGHT, param_role
from .analysis import layer_of as layer_of  # re-exported: scopes' layers were looked up here
from .engine import Node, current_scope, postorder, scope
from .errors import (
    ArgTypeError,
    DTypeError,
    IndexOutOfRange,
    InputError,
    LoadError,
    ModuleError,
    ShapeError,
)
from .random import Seed, generator

# ---------------------------------------------------------------------------------------------
# Activations as functions
# ---------------------------------------------------------------------------------------------


def sigmoid(x: Any) -> Node:
    """σ(x) = 1 / (1 + e^-x): squashes to (0, 1); saturates for |x| > 4.6."""
    return ops.sigmoid(x)


def tanh(x: Any) -> Node:
    """tanh(x) = 2σ(2x) - 1: zero-centred, (-1, 1); saturates for |x| > 3."""
    return ops.tanh(x)


def relu(x: Any) -> Node:
    """max(0, x); relu'(0) = 0. A unit whose input is never positive is dead."""
    return ops.relu(x)


def leaky_relu(x: Any, slope: float = 0.01) -> Node:
    """x for x > 0, slope·x otherwise (the notes' fix for dying ReLUs)."""
    return ops.leaky_relu(x, check_float("leaky_relu", "slope", slope))


def prelu(x: Any, a: Node | float) -> Node:
    """PReLU: x for x > 0, a·x otherwise, with a learnable slope a (broadcast over x).

    Same value and derivative convention as leaky_relu at 0 (the slope side).
    """
    x = x if isinstance(x, Node) else ops.const(x, "prelu: input")
    # relu(x) + a·min(x, 0), min(x, 0) = x - relu(x): exact on each side, slope a at 0 (relu'(0)
    # is 0), and no mask read from the data (tg.jit would freeze it)
    r = ops.relu(x)
    return r + a * (x - r)


def maxout(pieces: Sequence[Node]) -> Node:
    """max over k linear pieces w_j·x + b_j (elementwise); ReLU is the case w_1, b_1 = 0."""
    if not pieces:
        raise InputError("maxout: needs at least one piece")
    out = pieces[0]
    for p in pieces[1:]:
        out = ops.maximum(out, p)
    return out


# Activations without parameters; "prelu" and "maxout" own parameters and are built by layers.
_SIMPLE: dict[str, Callable[[Node], Node]] = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
}
ACTIVATIONS = (*_SIMPLE, "prelu", "maxout")
# He init for the ReLU family (their derivative is 0 or 1 on half the inputs); Xavier otherwise.
_HE = {"relu", "leaky_relu", "prelu", "maxout"}


def _check_activation(who: str, activation: str | None) -> str | None:
    check_str(who, "activation", activation, optional=True)
    if activation is None or activation == "linear":
        return None
    if activation not in ACTIVATIONS:
        raise InputError(
            f"{who}: unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}, "
            "'linear' or None"
        )
    return activation


def init_std(init: str, activation: str | None, nin: int, nout: int) -> float:
    """Standard deviation of the initial weights.

    "he": sqrt(2 / nin) (ReLU family); "xavier": sqrt(2 / (nin + nout)) (Glorot; sigmoid, tanh,
    linear); "auto" picks by activation.
    """
    check_str("init", "init", init)
    if init == "auto":
        init = "he" if activation in _HE else "xavier"
    if init == "he":
        return float(np.sqrt(2.0 / nin))
    if init == "xavier":
        return float(np.sqrt(2.0 / (nin + nout)))
    raise InputError(f"init: unknown scheme {init!r}; choose 'auto', 'he' or 'xavier'")


def _rng(seed: Seed, who: str) -> np.random.Generator:
    """seed= as a generator; None draws from the global state (tg.manual_seed, np.random.seed)."""
    return generator(seed, who)


def _draw(rng: np.random.Generator, shape: tuple[int, ...], init: str, scale: float | None,
          activation: str | None, nin: int, nout: int, who: str = "init") -> np.ndarray:
    """Initial weights ~ N(0, std²), std from init or, when given, the explicit scale."""
    std = (init_std(init, activation, nin, nout) if scale is None
           else check_float(who, "scale", scale, lo=0.0))
    return rng.standard_normal(shape) * std


def _check_size(who: str, what: str, n: Any) -> int:
    return check_int(who, what, n, lo=1)


# ---------------------------------------------------------------------------------------------
# Module base
# ---------------------------------------------------------------------------------------------


def _join(*parts: str | None) -> str | None:
    """Dotted path of the non-empty parts, or None."""
    return ".".join(p for p in parts if p) or None


def _is_member(it: Any) -> bool:
    return isinstance(it, Module) or isinstance(it, Node) and it.requires_grad


def _entries(owner: Module, key: str, v: Any) -> Iterator[tuple[str, Any]]:
    """(path, item) of one attribute: itself, or each item of a list/tuple ("key.0") or a dict
    ("key.name"). Dict keys must make valid path components, or two names could collide."""
    if isinstance(v, (list, tuple)):
        for i, it in enumerate(v):
            yield f"{key}.{i}", it
    elif isinstance(v, dict):
        for k, it in v.items():
            if _is_member(it) and (not isinstance(k, str) or not k or "." in k):
                raise InputError(
                    f"{type(owner).__name__}.{key}: a dict of submodules or parameters needs "
                    f"non-empty string keys without '.', got key {k!r} for a "
                    f"{type(it).__name__}")
            yield f"{key}.{k}", it
    else:
        yield key, v


def _set_name(module: Module, name: str | None, default: str) -> None:
    """A built-in module's name; left at the default, a user's module may rename it (Module)."""
    check_str(type(module).__name__, "name", name, optional=True, empty=False)
    module.name = default if name is None else name
    module._auto_name = name is None


class IncompatibleKeys(NamedTuple):
    """What load_state_dict(strict=False) left out (PyTorch's names): the model's parameters
    the state lacks and the state's keys the model does not have."""

    missing_keys: list[str]
    unexpected_keys: list[str]


_M = TypeVar("_M", bound="Module")


class Module:
    """Base of all modules, as in PyTorch: calling a module runs its forward(...).

    Parameters are the Node attributes that require a gradient, found (with submodules, and
    lists, tuples, dicts, ModuleLists or Sequentials of either) in attribute order; names are
    dotted. A module you write names its members by attribute: self.fc1 = Linear(2, 3) gives
    "fc1.W", a list self.layers gives "layers.0.W", a dict self.heads = {"cls": ...} gives
    "heads.cls.W". A module assigned there without a name= (built-in or your own) also takes
    that path as its name and scope, so its nodes are labelled (and drawn) "fc1.z",
    "layers.0.act", apart from its siblings' (items added to a plain list after it is assigned
    keep their names as scopes; a ModuleList names them). The built-in MLP, TensorMLP, Layer and
    Neuron name their members by the members' own names ("L1.n0.w0"), which are also the nodes'
    scopes.

    Nothing needs setting up, so a subclass may call super().__init__() (as in PyTorch) or not.
    """

    name: str = ""
    training: bool = True  # train() / eval() set it on every module
    _own_names = False  # name members by their own .name (the built-in containers), not by key
    # Attribute -> role of the parameters it holds (analysis.WEIGHT, BIAS, SLOPE); others are
    # given one by name (parameter_roles).
    _roles: dict[str, str] = {}
    _auto_name = True  # nameless or a default name: the path it is assigned to replaces it
    _home: str | None = None  # the scope current when the module was made

    def __new__(cls, *args: Any, **kwargs: Any) -> Module:
        self = super().__new__(cls)
        # Where the parameters' scopes start, so _adopt can rewrite them; in __new__ so that it
        # holds for subclasses whatever their __init__ does.
        object.__setattr__(self, "_home", current_scope())
        return self

    def __init__(self) -> None:
        """Nothing to set up (a subclass may skip calling it)."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The module's computation; a subclass defines it, and calling the module runs it."""
        raise ModuleError(
            f"{type(self).__name__} has no forward method: define forward(self, x) in the "
            f"subclass; calling the module runs it, as in PyTorch")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """forward(...), with the nodes it makes in the module's scope."""
        if self.name:
            with scope(self.name):
                return self.forward(*args, **kwargs)
        return self.forward(*args, **kwargs)

    def __setattr__(self, key: str, value: Any) -> None:
        adopt: list[tuple[str, Module]] = []
        if not self._own_names and not key.startswith("_"):
            # Checked (dict keys) before anything is assigned.
            adopt = [(path, it) for path, it in _entries(self, key, value)
                     if isinstance(it, Module) and it._auto_name and it is not self]
            if type(value) is Node and value.name is None and value.requires_grad:
                value.name = key  # an unnamed parameter takes its attribute's name (diagrams)
        object.__setattr__(self, key, value)
        if key == "name":  # set by hand: an explicit name, kept
            object.__setattr__(self, "_auto_name", False)
        for path, it in adopt:
            it._adopt(path)

    def _adopt(self, name: str) -> None:
        """Take name (this module's path in a user's module) as its name and its nodes' scope."""
        old = _join(self._home, self.name)
        new = _join(self._home, name)
        for _, p in self.named_parameters():
            s = p.scope
            if old is None:  # a nameless module (MLP): its scopes gain the prefix
                p.scope = _join(new, s)
            elif s is not None and (s == old or s.startswith(old + ".")):
                p.scope = new + s[len(old):]
        self.name = name
        self._auto_name = False

    def _members(self) -> Iterator[tuple[str, Node | Module]]:
        own = self._own_names
        for key, v in vars(self).items():
            if key.startswith("_"):
                continue
            for path, it in _entries(self, key, v):
                if _is_member(it):
                    yield ((it.name or path) if own else path), it

    def named_parameters(self) -> list[tuple[str, Node]]:
        """(dotted name, parameter) pairs, e.g. ("fc1.W", node); each parameter once.

        Raises InputError if two different parameters would get the same name (state_dict and
        save would silently keep only one of them).
        """
        out: list[tuple[str, Node]] = []
        seen: set[int] = set()
        names: dict[str, Node] = {}
        # Depth first in attribute order, iteratively: one members iterator per open module.
        stack: list[tuple[str, Iterator[tuple[str, Node | Module]]]] = [("", self._members())]
        open_: list[int] = [id(self)]  # the modules on the stack, against cycles
        while stack:
            prefix, members = stack[-1]
            item = next(members, None)
            if item is None:
                stack.pop()
                open_.pop()
                continue
            name, m = item
            full = f"{prefix}{name}"
            if isinstance(m, Module):
                if id(m) not in open_:
                    stack.append((f"{full}.", m._members()))
                    open_.append(id(m))
            elif id(m) not in seen:
                if full in names:
                    other = names[full]
                    raise InputError(
                        f"{type(self).__name__}.named_parameters: two different parameters "
                        f"would both be named {full!r} (shapes {other.shape} and {m.shape}); "
                        "give the submodules or nodes distinct names")
                seen.add(id(m))
                names[full] = m
                out.append((full, m))
        return out

    def parameters(self) -> list[Node]:
        """Every learnable node, in named_parameters() order."""
        return [p for _, p in self.named_parameters()]

    def named_modules(self) -> list[tuple[str, Module]]:
        """(dotted name, module) for this module (named "") and every submodule, each once,
        depth first in attribute order, as PyTorch's named_modules()."""
        out: list[tuple[str, Module]] = [("", self)]
        seen = {id(self)}
        stack = [("", self._members())]
        while stack:
            prefix, members = stack[-1]
            item = next(members, None)
            if item is None:
                stack.pop()
                continue
            name, m = item
            if isinstance(m, Module) and id(m) not in seen:
                seen.add(id(m))
                out.append((f"{prefix}{name}", m))
                stack.append((f"{prefix}{name}.", m._members()))
        return out

    def modules(self) -> list[Module]:
        """This module and every submodule, each once, in named_modules() order."""
        return [m for _, m in self.named_modules()]

    def named_children(self) -> list[tuple[str, Module]]:
        """(name, module) of the direct submodules, each once."""
        out: list[tuple[str, Module]] = []
        seen: set[int] = set()
        for name, m in self._members():
            if isinstance(m, Module) and id(m) not in seen:
                seen.add(id(m))
                out.append((name, m))
        return out

    def children(self) -> list[Module]:
        """The direct submodules, each once."""
        return [m for _, m in self.named_children()]

    def apply(self: _M, fn: Callable[[Module], Any]) -> _M:
        """Call fn on every submodule, then on this one (children first, as PyTorch's apply)."""
        for m in postorder(self, Module.children):
            fn(m)
        return self

    def add_module(self, name: str, module: Module | None) -> None:
        """Assign a submodule under a name given as a string (as setattr, with checks)."""
        if not isinstance(name, str) or not name or "." in name or name.startswith("_"):
            raise InputError(f"{type(self).__name__}.add_module: name must be a non-empty "
                             f"string without '.' that does not start with '_', got {name!r}")
        if module is not None and not isinstance(module, Module):
            raise InputError(f"{type(self).__name__}.add_module({name!r}): expected a Module, "
                             f"got a {type(module).__name__}")
        setattr(self, name, module)

    def train(self: _M, mode: bool = True) -> _M:
        """Set .training on this module and every submodule (True: training, False: eval)."""
        if not isinstance(mode, (bool, np.bool_)):
            raise InputError(f"{type(self).__name__}.train: mode must be True or False, got "
                             f"{mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self: _M) -> _M:
        """train(False): evaluation mode for this module and every submodule."""
        return self.train(False)

    def weights(self) -> list[Node]:
        """The parameters that L2 regularization usually covers: all but biases and PReLU slopes
        (by role: parameter_roles())."""
        roles = self.parameter_roles()
        return [p for n, p in self.named_parameters() if roles[n] == WEIGHT]

    def parameter_roles(self) -> dict[str, str]:
        """Dotted parameter name -> its role, "weight", "bias" or "slope" (tinygraph.analysis).

        A module of tinygraph.nn declares the role of each of its attributes (its class's
        _roles); a parameter of a user's module, or one a module leaves undeclared, is given a
        role by its name (analysis.param_role: "b", "b_1", "bias" are biases, "a" a slope,
        "W", "w0", "b_proj" weights)."""
        declared: dict[int, str] = {}
        for m in self.modules():
            for key, role in type(m)._roles.items():
                for _, it in _entries(m, key, vars(m).get(key)):
                    if isinstance(it, Node):
                        declared.setdefault(id(it), role)
        return {n: declared.get(id(p)) or param_role(n)
                for n, p in self.named_parameters()}

    def num_parameters(self) -> int:
        """Number of learnable scalars."""
        return sum(p.size for p in self.parameters())

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (set_to_none=False: set it to zeros instead)."""
        clear = engine._Nodes(self.parameters(), zeros=not set_to_none)
        engine.notify("zero_grad", clear)  # tg.jit's trace records it, to replay it
        clear.zero_grad()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters as float arrays (scalars as 0-d float64 arrays), by name."""
        return {n: np.array(p.data, dtype=p.dtype) for n, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Assign parameters from a state dict; everything is checked before anything changes.

        strict=True: the names must match exactly (LoadError naming the missing and unexpected
        keys); strict=False loads the names both have and returns the others as
        (missing_keys, unexpected_keys). Shapes, dtypes and finiteness are checked either way.
        """
        checked, keys = check_state(self, state, strict)
        for p, value in checked:
            p.data = value
        return keys

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        subs = self.named_children()
        if not subs or len(subs) > 8 and isinstance(self, Layer):
            return head + ")"
        lines = [head]
        for n, m in subs:
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({n}): {body}")
        return "\n".join(lines) + "\n)"


def check_state(model: Module, state: Mapping[str, Any],
                strict: bool = True) -> tuple[list[tuple[Node, Any]], IncompatibleKeys]:
    """Validate a state dict against model: names, shapes, dtypes, finiteness.

    Returns (parameter, value) pairs ready to assign and the keys left out (only strict=False
    allows any); raises LoadError naming the parameter that does not fit. Nothing is assigned
    here.
    """
    if not isinstance(state, Mapping):
        raise LoadError(f"load_state_dict: expected a dict of arrays by parameter name, got a "
                        f"{type(state).__name__}")
    params = dict(model.named_parameters())
    missing = [n for n in params if n not in state]
    extra = [str(n) for n in state if n not in params]
    if strict and (missing or extra):
        parts = []
        if missing:
            parts.append(f"missing {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"unexpected {', '.join(map(repr, extra))}")
        raise LoadError(f"load: the state does not fit {type(model).__name__}: {'; '.join(parts)}")
    out: list[tuple[Node, Any]] = []
    for name, p in params.items():
        if name not in state:
            continue
        v = state[name]
        if not isinstance(v, np.ndarray):
            raise LoadError(f"load: parameter {name!r}: expected an array, got {type(v).__name__}")
        if v.dtype != p.dtype:
            raise LoadError(f"load: parameter {name!r} has dtype {v.dtype}, the model's is "
                            f"{p.dtype}")
        if v.shape != p.shape:
            raise LoadError(f"load: parameter {name!r} has shape {v.shape}, the model's is "
                            f"{p.shape}")
        if not np.isfinite(v).all():
            raise LoadError(f"load: parameter {name!r} holds non-finite values (NaN or Inf)")
        out.append((p, float(v) if p.is_scalar else v))
    return out, IncompatibleKeys(missing, extra)


def Parameter(data: Any, name: str | None = None) -> Node:  # noqa: N802 - PyTorch's spelling
    """A learnable node, as PyTorch's nn.Parameter: the same as tg.Node(data), which requires a
    gradient already; a module finds it by attribute."""
    return Node(data, name=name, requires_grad=True)


# ---------------------------------------------------------------------------------------------
# Containers: Sequential, ModuleList
# ---------------------------------------------------------------------------------------------


def _as_module(who: str, where: str, m: Any) -> Module:
    if not isinstance(m, Module):
        raise InputError(f"{who}: {where} must be a Module, got a {type(m).__name__}")
    return m


class Sequential(Module):
    """Modules applied one after another, as PyTorch's nn.Sequential.

    Sequential(m1, m2, ...) names them "0", "1", ... (parameters "0.W", scopes "0", ...);
    Sequential({"fc1": m1, "act": m2}) by key. Indexable (an int gives the module, a slice a
    Sequential of the same modules), len(), iteration, append().
    """

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        self._mods: dict[str, Module] = {}
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            items = list(modules[0].items())
            for k, m in items:
                if not isinstance(k, str) or not k or "." in k:
                    raise InputError(f"Sequential: names must be non-empty strings without '.',"
                                     f" got {k!r}")
                _as_module("Sequential", f"item {k!r}", m)
        else:
            items = [(str(i), _as_module("Sequential", f"argument {i}", m))
                     for i, m in enumerate(modules)]
        for k, m in items:  # all checked first: no module is renamed for a failed call
            self._add(k, m)

    def _add(self, key: str, m: Module) -> None:
        self._mods[key] = m
        if m._auto_name and m is not self:
            m._adopt(key)

    def _members(self) -> Iterator[tuple[str, Node | Module]]:
        yield from self._mods.items()

    def __getattr__(self, key: str) -> Module:
        # Only called when the usual lookup fails: seq.fc1 for Sequential({"fc1": ...}).
        mods = self.__dict__.get("_mods")
        if mods is not None and key in mods:
            return mods[key]
        raise AttributeError(f"'Sequential' object has no attribute {key!r}")

    def append(self, module: Module) -> Sequential:
        """Add a module at the end (named by its index)."""
        self._add(str(len(self._mods)), _as_module("Sequential.append", "the argument", module))
        return self

    def forward(self, x: Any) -> Any:
        """Each module's output is the next one's input."""
        for m in self._mods.values():
            x = m(x)
        return x

    def __getitem__(self, i: int | slice) -> Any:
        items = list(self._mods.items())
        if isinstance(i, slice):
            return Sequential(dict(items[i]))
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise InputError(f"Sequential: index with an int or a slice, got {i!r}")
        if not -len(items) <= i < len(items):
            raise IndexOutOfRange(f"Sequential: index {i} out of range for {len(items)} modules")
        return items[i][1]

    def __len__(self) -> int:
        return len(self._mods)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._mods.values()))


class ModuleList(Module):
    """A list of modules whose parameters its owner finds, as PyTorch's nn.ModuleList.

    Assigned to self.layers, its items are named "layers.0", "layers.1", ... (parameters
    "layers.0.W"; that is also their scope). Not callable: loop over it in forward.
    """

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        self._list: list[Module] = []
        self._named: set[int] = set()  # ids of the items it named (scope: its path + index)
        self.extend(modules)

    def _path(self, i: int) -> str:
        return f"{self.name}.{i}" if self.name else str(i)

    def _name(self, i: int, m: Module) -> None:
        if m._auto_name and m is not self:
            self._named.add(id(m))
            m._adopt(self._path(i))
        elif id(m) in self._named:  # moved by insert
            m._adopt(self._path(i))

    def _adopt(self, name: str) -> None:
        # Not called itself, so no scope of its own: its items take the full path instead.
        self.name = name
        for i, m in enumerate(self._list):
            if id(m) in self._named:
                m._adopt(self._path(i))

    def _members(self) -> Iterator[tuple[str, Node | Module]]:
        for i, m in enumerate(self._list):
            yield str(i), m

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise ModuleError("ModuleList is not callable: loop over its modules in your forward "
                          "(or use Sequential)")

    def append(self, module: Module) -> ModuleList:
        """Add a module at the end."""
        m = _as_module("ModuleList.append", "the argument", module)
        self._list.append(m)
        self._name(len(self._list) - 1, m)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Add modules at the end (all checked first)."""
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise InputError(f"ModuleList: expected an iterable of modules, got a "
                             f"{type(modules).__name__}")
        new = [_as_module("ModuleList", f"item {i}", m) for i, m in enumerate(modules)]
        for m in new:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert a module before index; the items after it are renumbered."""
        self._list.insert(index, _as_module("ModuleList.insert", "the argument", module))
        for i, m in enumerate(self._list):
            self._name(i, m)

    def _index(self, i: Any) -> int:
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise InputError(f"ModuleList: index with an int or a slice, got {i!r}")
        if not -len(self._list) <= i < len(self._list):
            raise IndexOutOfRange(f"ModuleList: index {i} out of range for {len(self._list)} "
                                  "modules")
        return int(i) % len(self._list)

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return ModuleList(self._list[i])
        return self._list[self._index(i)]

    def __setitem__(self, i: int, module: Module) -> None:
        m = _as_module("ModuleList", f"item {i}", module)
        j = self._index(i)
        self._list[j] = m
        self._name(j, m)

    def __len__(self) -> int:
        return len(self._list)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._list))


# ---------------------------------------------------------------------------------------------
# Activation modules (tensor or scalar input; the layers below use the functions directly)
# ---------------------------------------------------------------------------------------------


def _activate(f: Callable[..., Node], x: Any, *args: Any) -> Node:
    # Output named "act" as in the layers (and, called, in the module's scope): diagrams box it.
    out = f(x, *args)
    out.name = ACT
    return out


class Sigmoid(Module):
    """Module form of sigmoid; its nodes are made in scope name (default "sigmoid")."""

    def __init__(self, name: str | None = None) -> None:
        _set_name(self, name, "sigmoid")

    def forward(self, x: Any) -> Node:
        return _activate(sigmoid, x)


class Tanh(Module):
    """Module form of tanh; its nodes are made in scope name (default "tanh")."""

    def __init__(self, name: str | None = None) -> None:
        _set_name(self, name, "tanh")

    def forward(self, x: Any) -> Node:
        return _activate(tanh, x)


class ReLU(Module):
    """Module form of relu; its nodes are made in scope name (default "relu")."""

    def __init__(self, name: str | None = None) -> None:
        _set_name(self, name, "relu")

    def forward(self, x: Any) -> Node:
        return _activate(relu, x)


class LeakyReLU(Module):
    """Module form of leaky_relu with a fixed slope (0.01 by default), in scope name
    (default "leaky_relu")."""

    def __init__(self, slope: float = 0.01, name: str | None = None) -> None:
        _set_name(self, name, "leaky_relu")
        self.slope = check_float("LeakyReLU", "slope", slope)

    def forward(self, x: Any) -> Node:
        return _activate(leaky_relu, x, self.slope)

    def extra_repr(self) -> str:
        return f"slope={self.slope}"


class PReLU(Module):
    """PReLU with a learnable slope "a": shared (num=1) or one per unit (num = width), in scope
    name (default "prelu")."""

    _roles = {"a": SLOPE}

    def __init__(self, num: int = 1, init: float = 0.25, name: str | None = None,
                 dtype: Any = np.float64) -> None:
        num = _check_size("PReLU", "num", num)
        init = check_float("PReLU", "init", init)
        dtype = check_dtype("PReLU", "dtype", dtype)
        _set_name(self, name, "prelu")
        with scope(self.name):
            self.a = Node(np.full(num, init, dtype=dtype), name="a")

    def forward(self, x: Any) -> Node:
        return _activate(prelu, x, self.a)

    def extra_repr(self) -> str:
        return f"num={self.a.size}"


# ---------------------------------------------------------------------------------------------
# Scalar level: Neuron, Layer, MLP
# ---------------------------------------------------------------------------------------------


def _as_inputs(who: str, x: Any, nin: int) -> Sequence[Any]:
    """A sample as a sequence of floats/scalar nodes, with its width checked against nin."""
    if isinstance(x, Node):
        if x.is_scalar or x.ndim != 1:
            raise ShapeError(f"{who}: expected {nin} inputs, got {x.describe()}")
        x = [ops.getitem(x, i) for i in range(x.shape[0])]
    elif isinstance(x, np.ndarray):
        if x.ndim != 1:
            raise ShapeError(f"{who}: expected a 1-D sample of {nin} inputs, got shape {x.shape}")
        x = x.tolist()
    elif not isinstance(x, (list, tuple)):
        raise ShapeError(f"{who}: expected {nin} inputs, got a {type(x).__name__}")
    if len(x) != nin:
        raise ShapeError(f"{who}: expected {nin} inputs, got {len(x)}")
    return x


def _check_weights(name: str, weights: Any, pieces: int, nin: int) -> np.ndarray:
    """Initial weights as a (pieces, nin) float array; (nin,) is accepted for one piece."""
    w = np.asarray(weights)
    if w.dtype.kind not in "biuf":
        raise DTypeError(f"Neuron {name!r}: weights must be real numbers, got dtype {w.dtype}")
    if pieces == 1 and w.shape == (nin,):
        w = w.reshape(1, nin)
    if w.shape != (pieces, nin):
        want = f"({nin},) or (1, {nin})" if pieces == 1 else f"({pieces}, {nin}) (k pieces)"
        raise ShapeError(f"Neuron {name!r}: weights must have shape {want} for nin={nin}, got "
                         f"shape {w.shape}")
    return w


class Neuron(Module):
    """One unit: act = f(w·x + b), one scalar node per weight.

    Weights "w0".."w{nin-1}" and bias "b" (maxout pieces j >= 1: "w{i}_{j}", "b_{j}"); the weighted
    sum is named "z" and the activation output "act". Without an activation the output is z.
    weights sets the initial weights: shape (nin,) or (1, nin), or (k, nin) for maxout's k
    pieces; biases start at 0. The scope is name (default "n0").
    """

    _roles = {"w": WEIGHT, "b": BIAS, "a": SLOPE}

    _own_names = True  # weights "w0".., not "w.0"

    def __init__(self, nin: int, activation: str | None = "relu", *, name: str | None = None,
                 init: str = "auto", scale: float | None = None, seed: Seed = None,
                 weights: Any = None, k: int = 2, slope: Node | None = None) -> None:
        nin = _check_size("Neuron", "nin", nin)
        act = _check_activation("Neuron", activation)
        pieces = _check_size("Neuron", "k", k) if act == "maxout" else 1
        if weights is None:  # (pieces, nin): piece j's weights
            weights = _draw(_rng(seed, "Neuron"), (pieces, nin), init, scale, act, nin, 1,
                            "Neuron")
        else:
            weights = _check_weights(name or "n0", weights, pieces, nin)
        _set_name(self, name, "n0")
        self.nin = nin
        self.activation = act
        with scope(self.name):
            self.w = [Node(float(v), name=f"w{i}") for i, v in enumerate(weights[0])]
            self.b = Node(0.0, name="b")
            # Maxout pieces j >= 1, kept flat for named_parameters and grouped for the forward.
            self._pieces = [
                ([Node(float(v), name=f"w{i}_{j}") for i, v in enumerate(weights[j])],
                 Node(0.0, name=f"b_{j}"))
                for j in range(1, pieces)
            ]
            self.pieces = [n for w, b in self._pieces for n in (*w, b)]
            self._slope = slope  # a PReLU slope shared across the layer (owned by the layer)
            if act == "prelu" and slope is None:
                self.a = Node(0.25, name="a")
                self._slope = self.a

    def _sum(self, w: list[Node], b: Node, x: Sequence[Any]) -> Node:
        # b + w0*x0 + w1*x1 + ...: n multiplies and n adds, the fewest binary nodes possible.
        z = b
        for wi, xi in zip(w, x, strict=True):
            z = z + wi * xi
        return z

    def forward(self, x: Any) -> Node:
        """The neuron's output for one sample (a sequence of nin numbers or scalar nodes)."""
        return self._forward(_as_inputs(f"Neuron {self.name!r}", x, self.nin))

    def _forward(self, x: Sequence[Any]) -> Node:
        z = self._sum(self.w, self.b, x)
        z.name = PREACT
        act = self.activation
        if act is None:
            return z
        if act == "maxout":
            zs = [z]
            for j, (w, b) in enumerate(self._pieces, 1):
                zj = self._sum(w, b, x)
                zj.name = f"z_{j}"
                zs.append(zj)
            out = maxout(zs)
        elif act == "prelu":
            out = prelu(z, self._slope)
        else:
            out = _SIMPLE[act](z)
        out.name = ACT
        return out

    def extra_repr(self) -> str:
        return f"{self.nin}, {self.activation or 'linear'}"


def _layer_args(who: str, nin: int, nout: int, activation: str | None,
                k: int) -> tuple[int, int, str | None, int]:
    """Checked (nin, nout, activation, number of maxout pieces) of a Layer or Linear."""
    nin = _check_size(who, "nin", nin)
    nout = _check_size(who, "nout", nout)
    act = _check_activation(who, activation)
    return nin, nout, act, _check_size(who, "k", k) if act == "maxout" else 1


class Layer(Module):
    """nout neurons "n0".. reading the same inputs; returns a list of nout scalar nodes.

    The scope is name (default "L1"), each neuron's "L1.n0"...
    """

    _roles = {"a": SLOPE}

    _own_names = True  # neurons "n0".., not "neurons.0"

    def __init__(self, nin: int, nout: int, activation: str | None = "relu", *,
                 name: str | None = None, init: str = "auto", scale: float | None = None,
                 seed: Seed = None, k: int = 2, shared_slope: bool = False) -> None:
        nin, nout, act, pieces = _layer_args("Layer", nin, nout, activation, k)
        _set_name(self, name, "L1")
        self.nin, self.nout, self.activation = nin, nout, act
        # Drawn as the tensor level draws them, so TensorMLP(seed=s) has the same weights.
        W = _draw(_rng(seed, "Layer"), (pieces, nin, nout), init, scale, act, nin, nout, "Layer")
        with scope(self.name):
            slope = None
            if act == "prelu" and shared_slope:
                self.a = slope = Node(0.25, name="a")
            self.neurons = [
                Neuron(nin, act, name=f"n{j}", weights=W[:, :, j], k=pieces, slope=slope)
                for j in range(nout)
            ]

    def forward(self, x: Any) -> list[Node]:
        """The layer's nout outputs for one sample."""
        x = _as_inputs(f"Layer {self.name!r}", x, self.nin)
        out = []
        for n in self.neurons:
            with scope(n.name):
                out.append(n._forward(x))
        return out

    def extra_repr(self) -> str:
        return f"{self.nin} -> {self.nout}, {self.activation or 'linear'}"


def _stack(who: str, make: Callable[..., Module], nin: int, sizes: Sequence[int],
           activation: str | None, output_activation: str | None, seed: Seed,
           **kw: Any) -> list[Module]:
    """Layers "L1".."Ln" of an MLP: activation on the hidden ones, output_activation on the last."""
    if isinstance(sizes, (int, np.integer)):
        sizes = [sizes]
    if not isinstance(sizes, (list, tuple, np.ndarray)):
        raise ArgTypeError(f"{who}: sizes must be a list of layer widths, got {show(sizes)}")
    sizes = list(sizes)
    if not sizes:
        raise InputError(f"{who}: give at least one layer size")
    dims = [_check_size(who, "nin", nin)] + [_check_size(who, "a layer size", s) for s in sizes]
    if kw.get("scale") is not None:  # named by this constructor, not by its first layer
        check_float(who, "scale", kw["scale"], lo=0.0)
    _check_activation(who, activation)  # even when every layer is the output layer
    _check_activation(who, output_activation)
    rng = _rng(seed, who)  # one generator for all layers, so each draws after the previous
    n = len(dims) - 1
    return [make(dims[i], dims[i + 1], activation if i < n - 1 else output_activation,
                 name=f"L{i + 1}", seed=rng, **kw)
            for i in range(n)]


class _Stack:
    """What MLP and TensorMLP share: a list of layers fed one into the next (a mixin)."""

    layers: list[Any]
    num_parameters: Callable[[], int]  # from Module
    _own_names = True  # layers "L1".., not "layers.0"
    _auto_name = True  # nameless, so unscoped; in a user's module, its attribute is its scope

    @property
    def nin(self) -> int:
        return self.layers[0].nin

    @property
    def nout(self) -> int:
        return self.layers[-1].nout

    def extra_repr(self) -> str:
        sizes = [la.nout for la in self.layers]
        return f"{self.nin} -> {sizes}, {self.num_parameters()} parameters"


class MLP(_Stack, Module):
    """Scalar-level multilayer perceptron, micrograd-style: MLP(nin, [sizes...]).

    Hidden layers use activation; the last layer uses output_activation (None: raw class scores).
    Called on one sample (nin numbers) it returns a scalar node when the last layer has one unit,
    else a list; on a 2-D array of samples it returns a tensor node (N, nout) stacked from the
    per-sample outputs (as TensorMLP returns), ready for tinygraph.losses.
    """

    def __init__(self, nin: int, sizes: Sequence[int], activation: str | None = "relu", *,
                 output_activation: str | None = None, init: str = "auto",
                 scale: float | None = None, seed: Seed = None, k: int = 2,
                 shared_slope: bool = False) -> None:
        self.layers = _stack("MLP", Layer, nin, sizes, activation, output_activation, seed,
                             init=init, scale=scale, k=k, shared_slope=shared_slope)

    def forward(self, x: Any) -> Node | list[Node]:
        """One sample's output (a node, or a list of nout), or (N, nout) for a 2-D array or
        node."""
        if isinstance(x, (np.ndarray, Node)) and x.ndim == 2:
            if x.shape[1] != self.nin:
                raise ShapeError(f"MLP: layer 'L1' expects {self.nin} inputs per sample, got "
                                 f"an array of shape {x.shape}")
            # a node (a batch under tg.jit is one) is split by ops, so a replay reads its rows
            rows = [self._one(row) for row in (
                x.tolist() if isinstance(x, np.ndarray) else [x[i] for i in range(x.shape[0])])]
            return ops.stack([ops.stack(r if isinstance(r, list) else [r]) for r in rows])
        return self._one(x)

    def _one(self, x: Any) -> Node | list[Node]:
        for layer in self.layers:
            x = layer(x)
        return x[0] if len(x) == 1 else x


# ---------------------------------------------------------------------------------------------
# Tensor level: Linear, TensorMLP
# ---------------------------------------------------------------------------------------------


class Linear(Module):
    """A fully-connected layer: act = f(x @ W + b), W of shape (nin, nout), b of shape (nout,).

    Maxout keeps k pieces: W (k, nin, nout), b (k, nout), act = max_j (x @ W[j] + b[j]). PReLU
    adds a slope "a" of shape (nout,) (or (1,) when shared). Input: (nin,) or (batch, nin).
    The scope is name (default "L1").
    """

    _roles = {"W": WEIGHT, "b": BIAS, "a": SLOPE}

    def __init__(self, nin: int, nout: int, activation: str | None = None, *,
                 name: str | None = None, init: str = "auto", scale: float | None = None,
                 seed: Seed = None, k: int = 2, shared_slope: bool = False,
                 dtype: Any = np.float64) -> None:
        nin, nout, act, pieces = _layer_args("Linear", nin, nout, activation, k)
        _set_name(self, name, "L1")
        self.nin, self.nout, self.activation = nin, nout, act
        dtype = check_dtype("Linear", "dtype", dtype)
        W = _draw(_rng(seed, "Linear"), (pieces, nin, nout), init, scale, act, nin, nout,
                  "Linear").astype(dtype)
        with scope(self.name):
            if act == "maxout":
                self.W = Node(W, name="W")
                self.b = Node(np.zeros((pieces, nout), dtype=dtype), name="b")
            else:
                self.W = Node(W[0], name="W")
                self.b = Node(np.zeros(nout, dtype=dtype), name="b")
            if act == "prelu":
                self.a = Node(np.full(1 if shared_slope else nout, 0.25, dtype=dtype), name="a")

    def forward(self, x: Any) -> Node:
        """x @ W + b, then the activation; x of shape (nin,) or (batch, nin)."""
        shape = x.shape if isinstance(x, (Node, np.ndarray)) else np.shape(x)
        if len(shape) not in (1, 2) or shape[-1] != self.nin:
            raise ShapeError(f"Linear {self.name!r}: expected input of shape (batch, {self.nin}) "
                             f"or ({self.nin},), got shape {tuple(shape)}")
        act = self.activation
        if act == "maxout":
            b = self.b if len(shape) == 1 else ops.reshape(self.b, (self.b.shape[0], 1,
                                                                     self.nout))
            z = ops.matmul(x, self.W) + b  # (k, batch, nout): all pieces at once
            z.name = PREACT
            out = ops.max(z, axis=0)
        else:
            z = ops.linear(x, self.W, self.b)  # one node: z = x @ W + b
            z.name = PREACT
            if act is None:
                return z
            out = prelu(z, self.a) if act == "prelu" else _SIMPLE[act](z)
        out.name = ACT
        return out

    def extra_repr(self) -> str:
        return f"{self.nin} -> {self.nout}, {self.activation or 'linear'}"


class Maxout(Linear):
    """A maxout layer: max over k linear pieces (k = 2 doubles a layer's parameters)."""

    def __init__(self, nin: int, nout: int, k: int = 2, **kw: Any) -> None:
        super().__init__(nin, nout, "maxout", k=k, **kw)


class TensorMLP(_Stack, Module):
    """Tensor-level multilayer perceptron: TensorMLP(nin, [sizes...]); each layer is a Linear.

    Same arguments and, for the same seed, the same weights as the scalar MLP. Input (batch, nin)
    gives output (batch, nout).
    """

    def __init__(self, nin: int, sizes: Sequence[int], activation: str | None = "relu", *,
                 output_activation: str | None = None, init: str = "auto",
                 scale: float | None = None, seed: Seed = None, k: int = 2,
                 shared_slope: bool = False, dtype: Any = np.float64) -> None:
        self.layers = _stack("TensorMLP", Linear, nin, sizes, activation, output_activation,
                             seed, init=init, scale=scale, k=k, shared_slope=shared_slope,
                             dtype=dtype)

    def forward(self, x: Any) -> Node:
        """(batch, nin) -> (batch, nout), layer after layer."""
        for layer in self.layers:
            x = layer(x)
        return x


def scalar_to_tensor_state(state: dict[str, np.ndarray], model: TensorMLP) -> dict[str, np.ndarray]:
    """Convert a scalar MLP's state dict to the equivalent TensorMLP state (same maths)."""
    out: dict[str, np.ndarray] = {}
    for layer in model.layers:
        L = layer.name
        pieces = layer.W.shape[0] if layer.activation == "maxout" else 1
        W = np.empty((pieces, layer.nin, layer.nout))
        b = np.empty((pieces, layer.nout))
        for j in range(layer.nout):
            for p in range(pieces):
                sfx = "" if p == 0 else f"_{p}"
                b[p, j] = state[f"{L}.n{j}.b{sfx}"]
                for i in range(layer.nin):
                    W[p, i, j] = state[f"{L}.n{j}.w{i}{sfx}"]
        dt = layer.W.dtype
        out[f"{L}.W"] = (W if pieces > 1 else W[0]).astype(dt)
        out[f"{L}.b"] = (b if pieces > 1 else b[0]).astype(dt)
        if layer.activation == "prelu":
            n = layer.a.size
            key = f"{L}.a" if f"{L}.a" in state else None
            a = [state[key]] if key else [state[f"{L}.n{j}.a"] for j in range(n)]
            out[f"{L}.a"] = np.asarray(a, dtype=dt).reshape(n)
    return out


def iter_modules(model: Module) -> Iterable[Module]:
    """model and all its submodules, each once, depth first, in attribute order."""
    return model.modules()
