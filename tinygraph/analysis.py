"""Network health read from a graph's maths: activations, their local derivatives, their units.

The diagrams (tinygraph.viz), the diagnostics and the training recorder all read activations
from here, so they agree on what a unit is and when it is saturated or dead. This module also
declares the conventions tinygraph.nn builds with (node names PREACT "z", ACT "act", LOSS
"loss"; layer scopes LAYER_SCOPE "L1", "L2"...; parameter roles WEIGHT, BIAS, SLOPE) and applies
the Thresholds (defined in thresholds.py). Per-unit statistics are one UnitStats, computed once
per set of units (Units.stats): diagnostics.activation_stats, the diagrams' boxes, clusters and
legend, and Recorder.snapshot (through the view's health) all read it.

Activations. An activation is a chain of elementwise ops applied to one input z (its other
operands constants): `tg.sigmoid(z)`, `tg.relu(z)`, but also the notes' `1.0/(1.0 + tg.exp(-z))`
(neg, exp, add, div) or an RBF `tg.exp(-z**2)`. Its local derivative da/dz is taken through the
op table's own rules (engine.vjp_message, one chain link at a time), never written out again
here. A chain counts as an activation when it holds a sigmoid, tanh, ReLU or leaky ReLU, computes
sigmoid(z) or tanh(z) (checked on its values), or when
its input is a pre-activation (computed by matmul/linear, or a weight times an input, plus a
bias), it feeds the next layer (a matmul/linear or a weight's product) from the same layer scope,
and it holds a nonlinear op (exp, log, sqrt, pow, tanh, softplus, a division by z, ...);
chains on the loss side with no named activation are not units. A primitive of the user's own
(tg.primitive) with one operand of its output's shape counts as elementwise. A chain ends at a named
activation op, where a node has several users, or where the next op combines two varying
operands; trailing affine or polynomial ops after its last squashing op (the `(a - y)**2` of a
loss) are not part of it.

Families. "gate" activations are piecewise linear (relu, leaky_relu, maximum, minimum, clip,
abs): a unit is off where |f'(z)| < 0.5 (ReLU's 0, leaky ReLU's α) and dead when f'(z) = 0 on every
sample. Every other activation is a "squash": a unit is saturated when |f'(z)| is below the limit
(Thresholds.sigmoid_* for a sigmoid in any spelling, tanh_* for a tanh, sigmoid_* for any other
squash) on at least Thresholds.saturated_share of its samples. A chain whose forward values
equal sigmoid(z) or tanh(z) is named so, and flagged like tg.sigmoid / tg.tanh.

Units. A layer's units lie along its feature axis, whichever convention the code used:
- z = x @ W (+ b) or linear(x, W, b), the row convention (N, units): the last axis;
- z = W @ x (+ b), the notes' column convention (units, 1) or (units, N): the first axis.
The axis is read from the bias first (a (units, 1) bias means columns; (units,) or (1, units)
rows), then from which matmul operand is a trainable leaf (W @ x with W trainable and x not:
columns). When both or neither operand is trainable and there is no bias, a right operand of
shape (k, 1) means columns; anything else is read as rows: that is the ambiguous case (for a
square z with no bias and two trainable operands, pass the data as a constant,
requires_grad=False, to settle it). A 1-D z is one sample of units, a scalar z one unit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import PRIMITIVES, Node, vjp_message

# The flag thresholds are defined in thresholds.py and read by everyone from here.
from .thresholds import DEFAULT, Thresholds

# ---------------------------------------------------------------------------------------------
# Conventions: how tinygraph.nn names and scopes what it builds. The diagrams, the diagnostics
# and the recorder read a graph through these, and a hand-built graph that follows them (a
# scope "L1", a node named "z") is read like a module's.
# ---------------------------------------------------------------------------------------------

PREACT = "z"  # a layer's pre-activation (x @ W + b, or w·x + b)
ACT = "act"  # its activation output
LOSS = "loss"  # the loss a training step back-propagates from
LAYER_SCOPE = re.compile(r"^L\d+$")  # the scopes MLP and TensorMLP give their layers
# Parameter roles. Modules of tinygraph.nn declare theirs (Module._roles); a parameter of a
# user's module is given one by its name (param_role).
WEIGHT, BIAS, SLOPE = "weight", "bias", "slope"
# Names a hand-built graph's leaves get when they are parameters (w, W1, b, b_2, a, weight...):
# the diagrams draw them as parameters even outside a scope.
PARAM_NAME = re.compile(r"^(w|W|b|a)\d*(_\d+)?$|^(weight|bias)")
_BIAS_NAME = re.compile(r"^(b\d*(_\d+)?|bias\d*)$")
_SLOPE_NAME = re.compile(r"^(a\d*(_\d+)?|slope)$")


def param_role(name: str | None) -> str:
    """A parameter's role read from its last name component: "b", "b2", "b_1", "bias" are
    biases, "a" (a PReLU slope) a slope, anything else ("W", "w0", "b_proj") a weight."""
    last = (name or "").rsplit(".", 1)[-1]
    if _BIAS_NAME.match(last):
        return BIAS
    if _SLOPE_NAME.match(last):
        return SLOPE
    return WEIGHT


def layer_of(scope: str | None) -> str | None:
    """The layer a scope belongs to: its first component like 'L3', else its first component
    with the list index after it, if any ('layers.0' for 'layers.0.z', 'fc1' for 'fc1.z')."""
    if not scope:
        return None
    parts = scope.split(".")
    for p in parts:
        if LAYER_SCOPE.match(p):
            return p
    # A list in a user's module names its layers "layers.0", "layers.1": keep them apart.
    return ".".join(parts[:2]) if len(parts) > 1 and parts[1].isdigit() else parts[0]

# The activation ops that name themselves, with the symbol the diagrams write.
NAMED = {"sigmoid": "σ", "tanh": "tanh", "relu": "ReLU", "leaky_relu": "LReLU"}
ACTIVATION_OPS = tuple(NAMED)  # kept for callers that filter nodes by op name
SQUASHES = ("sigmoid", "tanh")  # the named squashing activations, recognised in any spelling
# Elementwise ops a chain may hold; of those, the piecewise-linear ones (gates) and the affine
# ones (which alone never make an activation).
ELEMENTWISE = frozenset({"add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt", "abs",
                         "tanh", "sigmoid", "relu", "leaky_relu", "softplus", "log_sigmoid",
                         "maximum", "minimum", "clip"})
GATES = frozenset({"relu", "leaky_relu", "maximum", "minimum", "clip", "abs"})
_AFFINE = frozenset({"add", "sub", "neg", "mul"})
_POLY = frozenset({"pow"})
GATE_OFF = 0.5  # a gate unit is off where f'(z) is below this


@dataclass(eq=False)
class Activation:
    """One activation: out = f(z) through chain (z's users first); derivative = df/dz."""

    out: Node
    z: Node
    chain: tuple[Node, ...]
    name: str  # "sigmoid", "tanh", "relu", "leaky_relu", or the chain's ops ("exp∘neg")
    family: str  # "squash" or "gate"
    derivative: Any  # float or array of z's shape

    def __repr__(self) -> str:
        where = self.out.label or self.out.op
        return (f"<Activation {self.name} ({self.family}) at {where}: {len(self.chain)} op(s), "
                f"z of shape {self.z.shape}>")

    @property
    def symbol(self) -> str:
        """How the diagrams write it: σ, tanh, ReLU, LReLU, or the chain's ops."""
        return NAMED.get(self.name, self.name)

    @property
    def composed(self) -> bool:
        """Whether it is spelled with several ops (the notes' 1/(1+exp(-z)))."""
        return len(self.chain) > 1


def _constant(p: Node) -> bool:
    return p.op is None and not p.requires_grad


def _varying(n: Node, op: str | None, parents: tuple[Node, ...]) -> int | None:
    """The index of n's one varying operand if n is an elementwise op of it, else None."""
    if op not in ELEMENTWISE:
        # A primitive of the user's own with one operand of the output's shape is taken to act
        # elementwise (its derivative still comes from its own rule).
        prim = n.primitive if op is not None else None
        if prim is None or prim.builtin or len(parents) != 1:
            return None
    k = -1
    for i, p in enumerate(parents):
        if p.requires_grad or p.op is not None:  # not a constant
            if k >= 0:
                return None
            k = i
    if k < 0 or parents[k].shape != n.shape:
        return None
    return k


def _nonlinear(n: Node, i: int) -> bool:
    """Whether n bends its varying operand i (a division by it does; a scaling does not)."""
    if n.op == "div":
        return i == 1
    if n.op == "pow":
        e = n.parents[1]
        return i == 0 and not (_constant(e) and np.all(np.asarray(e.data) == 1.0))
    return n.op not in _AFFINE


def _weight(p: Node) -> bool:
    return p.op is None and p.requires_grad


def _preactivation(z: Node) -> bool:
    """Whether z is computed like a layer's pre-activation: matmul/linear or w·x, plus a bias."""
    n = z
    for _ in range(64):  # a scalar neuron's sum of w_i·x_i is a chain of adds
        if n.op in ("matmul", "linear"):
            return True
        if n.op == "mul":
            return any(_weight(p) for p in n.parents)
        if n.op not in ("add", "sub"):
            return False
        inner = [p for p in n.parents if p.op is not None]
        if not inner:
            return False
        n = inner[0]
    return False


def _derivative(chain: tuple[Node, ...], links: tuple[int, ...]) -> Any:
    """d out / d z along the chain, from the op table's VJP rules (vjp_message)."""
    out = chain[-1]
    g: Any = 1.0 if type(out.data) is float else np.ones(out.shape, dtype=np.float64)
    for n, i in zip(reversed(chain), reversed(links), strict=True):
        g = vjp_message(n, i, g)
    return g


def _name(chain: tuple[Node, ...], z: Node, out: Node) -> str:
    named = [n.op for n in chain if n.op in NAMED]
    ops = [n.op for n in chain]
    if named or "exp" not in ops or len(ops) == 1:
        # Only a chain built on exp can be a sigmoid or tanh in disguise (checked on values:
        # a softplus far in its tail has the sigmoid's values to 1e-7, but no exp).
        return named[-1] if named else "∘".join(reversed(ops))
    with np.errstate(all="ignore"):
        zd = np.asarray(z.data, dtype=np.float64)
        od = np.asarray(out.data, dtype=np.float64)
        for known in SQUASHES:
            if np.allclose(PRIMITIVES[known].fwd(zd), od, rtol=1e-6, atol=1e-9):
                return known
    return "∘".join(n.op for n in reversed(chain))


def find(order: list[Node]) -> dict[Node, Activation]:
    """Every activation among order (parents before children), keyed by its output node."""
    users: dict[Node, int] = {}
    feeds: set[Node] = set()  # the inputs of a layer (the x of w·x or x @ W)
    # Grow chains along single-user links: tail[n] is the chain ending at n. (Parents come
    # first in order, so a node's users are all counted only after the loop: the single-user
    # test waits for the second pass.)
    tail: dict[Node, tuple[tuple[Node, ...], tuple[int, ...]]] = {}
    steps: list[tuple[Node, int, Node, bool]] = []
    for n in order:
        parents = n.parents
        if not parents:
            continue
        op = n.op
        for p in parents:
            users[p] = users.get(p, 0) + 1
        if op in ("matmul", "linear"):
            feeds.update(parents)
        elif op == "mul":
            for p in parents:
                if any(_weight(w) for w in parents if w is not p):
                    feeds.add(p)
        i = _varying(n, op, parents)
        if i is not None:
            steps.append((n, i, parents[i], op in NAMED))
    closed: set[Node] = set()
    for n, i, p, named in steps:
        if p in tail and p not in closed and users.get(p, 0) == 1:
            chain, links = tail.pop(p)
            tail[n] = (chain + (n,), links + (i,))
        else:
            tail[n] = ((n,), (i,))
        if named:  # a named activation ends its chain: what follows is another's
            closed.add(n)
    found: dict[Node, Activation] = {}
    for chain, links in tail.values():
        # Cut trailing affine/polynomial ops: they belong to what uses the activation.
        k = len(chain)
        while k and (chain[k - 1].op in _POLY or not _nonlinear(chain[k - 1], links[k - 1])):
            k -= 1
        if k == 0:
            continue
        chain, links = chain[:k], links[:k]
        z = chain[0].parents[links[0]]
        out = chain[-1]
        name = _name(chain, z, out)  # a chain computing sigmoid(z) or tanh(z) is one
        # Any other chain is a unit's activation only between two layers: on a pre-activation,
        # in its layer's scope, feeding the next layer (not a loss's softplus or softmax exp).
        if name not in NAMED and not (_preactivation(z) and out in feeds
                                      and layer_of(out.scope) == layer_of(z.scope)):
            continue
        bends = [n.op for n, i in zip(chain, links, strict=True) if _nonlinear(n, i)]
        family = "gate" if all(op in GATES for op in bends) else "squash"
        found[out] = Activation(out, z, chain, name, family, _derivative(chain, links))
    return found


# ---------------------------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------------------------


def feature_axis(z: Node) -> int:
    """The axis of z along which a layer's units lie: 0 (columns, W @ x) or -1 (rows, x @ W)."""
    if z.ndim < 2:
        return -1
    n = z
    bias = None
    for _ in range(8):
        if n.op == "linear":
            return -1
        if n.op == "matmul":
            a, b = n.parents
            if bias is not None and bias.ndim == 2 and bias.shape[1] == 1 and bias.shape[0] > 1:
                return 0
            if bias is not None and (bias.ndim == 1 or bias.shape[0] == 1):
                return -1
            if _weight(a) and not _weight(b):
                return 0
            if _weight(b) and not _weight(a):
                return -1
            return 0 if b.ndim == 2 and b.shape[1] == 1 and a.shape[0] > 1 else -1
        if n.op in ("add", "sub"):
            inner = [p for p in n.parents if p.op is not None]
            leaves = [p for p in n.parents if p.op is None]
            if not inner:
                break
            if leaves and bias is None:
                bias = leaves[0]
            n = inner[0]
            continue
        break
    return -1


def unit_matrix(values: Any, axis: int) -> np.ndarray:
    """values (an activation's z, a or f'(z)) as (samples, units), units along axis."""
    a = np.asarray(values)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1)
    if axis == 0:
        return a.reshape(a.shape[0], -1).T
    return a.reshape(-1, a.shape[-1])


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------


def limits(act: Activation | str, thresholds: Thresholds = DEFAULT) -> tuple[float, float]:
    """(saturated, near-saturation) limits on f'(z) for a squashing activation."""
    name = act if isinstance(act, str) else act.name
    if name == "tanh":
        return thresholds.tanh_saturated, thresholds.tanh_warning
    return thresholds.sigmoid_saturated, thresholds.sigmoid_warning


def off(derivative: Any) -> np.ndarray:
    """Where a gate (ReLU-like) unit is off: |f'(z)| < GATE_OFF (ReLU's 0, leaky ReLU's α)."""
    return np.abs(np.asarray(derivative)) < GATE_OFF


def unit_saturated(flat: Any, thresholds: Thresholds = DEFAULT) -> bool:
    """Whether a squashing unit counts as saturated, from flat = (f'(z) < limit) over its
    activations: at least thresholds.saturated_share of them are. The same rule serves the
    near-saturation band (flat = f'(z) < the warning limit)."""
    a = np.asarray(flat)
    return bool(a.size) and float(a.mean()) >= thresholds.saturated_share


def unit_dead(derivative: Any) -> bool:
    """Whether a gate unit is dead: f'(z) = 0 on every one of its activations."""
    a = np.asarray(derivative)
    return bool(a.size) and not bool(np.any(a != 0))


def z_beyond(name: str, t: float) -> float | None:
    """|z| beyond which σ'(z) (name "sigmoid") or tanh'(z) is below t; None when never/always.

    Solved from the threshold: σ'(z) = s(1-s) = t at s = (1 + r)/2, r = √(1-4t), i.e.
    z = 2·log(1+r) - log(4t); 1 - tanh²(z) = t at tanh(z) = √(1-t), z = log(1+q) - log(t)/2.
    """
    top = 0.25 if name == "sigmoid" else 1.0
    if t <= 0 or t > top:
        return None
    if name == "sigmoid":
        return 2 * math.log1p(math.sqrt(1 - 4 * t)) - math.log(4 * t)
    return math.log1p(math.sqrt(1 - t)) - 0.5 * math.log(t)


# ---------------------------------------------------------------------------------------------
# Per-unit statistics: computed once, read by the diagnostics, the diagrams and the recorder
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    """A recorder's memory of its earlier snapshots: how many there were and, per ReLU unit, in
    how many consecutive ones up to the latest it was off (z <= 0) on every sample (a unit
    absent from `off` was on in the latest).

    In a recording a ReLU off now is dead when that makes n consecutive off snapshots
    (Thresholds.dead_snapshots), or when it was off in every one so far and fewer than n were
    taken; otherwise it reads "inactive". So a one-sample frame does not flicker dead, yet a
    unit that dies partway through training is called dead n snapshots later.
    """

    snapshots: int = 0
    off: Mapping[Any, int] = field(default_factory=dict)

    def dead_if_off(self, unit: Any, n: int) -> bool:
        """Whether unit, off in the snapshot being taken, is dead: off in each of the n - 1
        snapshots before it, or in every earlier one when fewer were taken (true at the first)."""
        return self.off.get(unit, 0) >= min(n - 1, self.snapshots)

    def after(self, off_now: Iterable[Any]) -> Activity:
        """The memory once one more snapshot, with these units off, is recorded."""
        # A unit on in this snapshot starts its streak again: it is simply left out.
        return Activity(self.snapshots + 1, {u: self.off.get(u, 0) + 1 for u in set(off_now)})


@dataclass
class UnitStats:
    """Dead and saturated units of a set of activations (a node, a neuron, a layer).

    Counts are units; `off`, `flat` and `near` count (unit, sample) values, of `values`.
    """

    units: int = 0
    samples: int = 0  # the most values one unit was seen with
    values: int = 0
    dead: int = 0  # gate units with f'(z) = 0 on every sample (and, recorded, for long enough)
    inactive: int = 0  # gate units off on every sample now, but not for long enough to be dead
    saturated: int = 0  # squash units with >= saturated_share of their values flat
    saturating: int = 0  # squash units, not saturated, with that share below the warning limit
    off: int = 0  # gate values with |f'(z)| < GATE_OFF
    flat: int = 0  # squash values with |f'(z)| below the saturated limit
    near: int = 0  # squash values below the warning limit
    gate_values: int = 0
    squash_values: int = 0
    mean_derivative: float = math.nan  # mean f'(z) over every value
    names: list[str] = field(default_factory=list)  # the activations' names, first seen first
    symbols: list[str] = field(default_factory=list)  # and how the diagrams write them
    off_units: list[Any] = field(default_factory=list)  # gate units off on every sample now
    per_unit: list[tuple[Any, str, float]] = field(default_factory=list)  # (unit, state, |dL/dz|)

    @property
    def flagged_fraction(self) -> float:
        """Share of values off (gates) or flat (squashes)."""
        return (self.off + self.flat) / self.values if self.values else 0.0

    @property
    def near_fraction(self) -> float:
        """Share of values below the warning limit."""
        return self.near / self.values if self.values else 0.0

    @property
    def inactive_fraction(self) -> float:
        """Share of the gate values that are off."""
        return self.off / self.gate_values if self.gate_values else 0.0

    @property
    def saturated_fraction(self) -> float:
        """Share of the squash values that are flat."""
        return self.flat / self.squash_values if self.squash_values else 0.0

    @property
    def family(self) -> str | None:
        """"gate" or "squash" when all its units are of one family, else None."""
        if self.gate_values and not self.squash_values:
            return "gate"
        if self.squash_values and not self.gate_values:
            return "squash"
        return None

    @property
    def flat_word(self) -> str:
        """"saturated" for sigmoid/tanh units; for an activation of any other spelling, where
        the gradient leaving it is far smaller than the one arriving, "in a flat region"."""
        return "saturated" if set(self.names) <= set(SQUASHES) else "in a flat region"


@dataclass
class Units:
    """Activation units seen in a set of nodes: one per scalar neuron, one per entry along a
    tensor layer's feature axis.

    A scalar unit is keyed by its neuron's scope, a tensor unit by (activation's label or the
    key given, index): the same keys in every view of the same graph, which a recorder's
    Activity relies on.
    """

    z: dict[Any, list[np.ndarray]] = field(default_factory=dict)
    d: dict[Any, list[np.ndarray]] = field(default_factory=dict)
    g: dict[Any, list[np.ndarray]] = field(default_factory=dict)
    kind: dict[Any, Activation] = field(default_factory=dict)

    @classmethod
    def of(cls, acts: Iterable[Activation], key: str) -> Units:
        """The units of acts; key names a tensor activation's units when it has no label."""
        units = cls()
        for act in acts:
            units.add(act, key)
        return units

    def add(self, act: Activation, key: str) -> None:
        """Add act's units (its z, f'(z) and |dL/dz| per unit)."""
        a, zn, d = act.out, act.z, act.derivative
        zg = zn.grad
        if a.is_scalar:
            unit = a.scope or key
            cols = [(unit, np.array([zn.data]), np.array([d]),
                     None if zg is None else np.array([abs(zg)]))]
        else:
            axis = feature_axis(zn)  # units along the layer's feature axis, rows or columns
            z2 = unit_matrix(zn.data, axis)  # z has the activation's shape (elementwise ops)
            d2 = unit_matrix(np.broadcast_to(d, zn.shape), axis)
            g2 = None if zg is None else unit_matrix(np.abs(np.broadcast_to(zg, zn.shape)), axis)
            cols = [((a.label or key, j), z2[:, j], d2[:, j], None if g2 is None else g2[:, j])
                    for j in range(z2.shape[1])]
        for unit, z, dd, g in cols:
            self.z.setdefault(unit, []).append(z)
            self.d.setdefault(unit, []).append(dd)
            self.kind[unit] = act
            if g is not None:
                self.g.setdefault(unit, []).append(g)

    def stats(self, thresholds: Thresholds = DEFAULT,
              activity: Activity | None = None) -> UnitStats:
        """Counts of dead / inactive / saturated / saturating units and of flagged values. The
        unit rules are unit_dead and unit_saturated; with a recorder's activity, a ReLU off now
        but not for thresholds.dead_snapshots snapshots in a row (nor in every one so far, when
        fewer were taken) is inactive, not dead."""
        th = thresholds
        s = UnitStats(units=len(self.z))
        dvals: list[np.ndarray] = []
        for u, act in self.kind.items():
            if act.name not in s.names:
                s.names.append(act.name)
                s.symbols.append(act.symbol)
            d = np.concatenate(self.d[u])
            n = d.size
            s.values += n
            s.samples = max(s.samples, n)
            dvals.append(d)
            state = ""
            if act.family == "gate":
                s.gate_values += n
                s.off += int(off(d).sum())
                if unit_dead(d):
                    s.off_units.append(u)
                    if activity is None or activity.dead_if_off(u, th.dead_snapshots):
                        s.dead += 1
                        state = "dead"
                    else:
                        s.inactive += 1
                        state = "inactive"
            else:
                s.squash_values += n
                lim, warn = limits(act, th)
                flat = np.abs(d) < lim  # a composed chain may slope down: its size counts
                below = np.abs(d) < warn
                s.flat += int(flat.sum())
                s.near += int(below.sum())
                if unit_saturated(flat, th):
                    s.saturated += 1
                    state = "saturated"
                elif unit_saturated(below, th):
                    s.saturating += 1
                    state = "saturating"
            g = self.g.get(u)
            s.per_unit.append((u, state, float(np.concatenate(g).mean()) if g else math.nan))
        if s.values:
            s.mean_derivative = float(np.concatenate(dvals).mean())
        return s


def unit_stats(acts: Iterable[Activation], thresholds: Thresholds = DEFAULT,
               activity: Activity | None = None, key: str = "") -> UnitStats:
    """The UnitStats of acts' units (Units.of(acts, key).stats(thresholds, activity))."""
    return Units.of(acts, key).stats(thresholds, activity)


def by_layer(acts: Iterable[Activation]) -> dict[str, list[Activation]]:
    """The activations of each layer (layer_of their output's scope); unscoped ones (a loss's
    relu) belong to no layer and are left out."""
    out: dict[str, list[Activation]] = {}
    for act in acts:
        layer = layer_of(act.out.scope)
        if layer is not None:
            out.setdefault(layer, []).append(act)
    return out
