"""Small recorded training runs whose every number is known independently (numpy by hand).

A two-neuron chain: x = 1 -> L1.n0 (sigmoid) -> L2.n0 (linear) -> loss = -out. With w2 > 0,
gradient descent pushes z1 = w1·x + b1 up every step until the sigmoid saturates; simulate()
replays the same SGD in plain numpy, so tests can say at which step each flag must appear.
"""

from __future__ import annotations

import math

import numpy as np

import tinygraph as tg
from tinygraph import nn, optim
from tinygraph.viz.recorder import Recorder

START = {"L1.n0.w0": 0.5, "L1.n0.b": 0.0, "L2.n0.w0": 1.0, "L2.n0.b": 0.0}
LR = 1.5
STEPS = 16


def chain() -> tuple[nn.MLP, tg.Node]:
    """The model and its loss function (sigmoid hidden unit, linear output, loss = -out)."""
    model = nn.MLP(1, [1, 1], "sigmoid", seed=0)
    model.load_state_dict({k: np.array(v) for k, v in START.items()})

    def loss() -> tg.Node:
        out = model([1.0])
        with tg.scope("loss"):
            L = -out
        L.name = "loss"
        return L

    return model, loss


def record(every: int = 1, steps: int = STEPS, **view_options: object) -> Recorder:
    """A Recorder over steps of SGD on the chain."""
    model, loss = chain()
    rec = Recorder(model, loss, every=every, **view_options)
    rec.fit(optim.SGD(model.parameters(), lr=LR), steps)
    return rec


def simulate(steps: int = STEPS) -> list[dict[str, float]]:
    """The same run in plain floats, before each update: z1, s = σ(z1), s(1-s), |dL/dz1|,
    |dL/dz2| and the loss."""
    w1, b1, w2, b2 = START["L1.n0.w0"], START["L1.n0.b"], START["L2.n0.w0"], START["L2.n0.b"]
    out = []
    for _ in range(steps):
        z1 = w1 * 1.0 + b1
        s = 1.0 / (1.0 + math.exp(-z1))
        dz2 = -1.0  # d(-z2)/dz2
        dz1 = dz2 * w2 * s * (1.0 - s)
        out.append({"z1": z1, "s": s, "deriv": s * (1.0 - s), "dz1": abs(dz1), "dz2": abs(dz2),
                    "loss": -(w2 * s + b2)})
        w1, b1, w2, b2 = w1 - LR * dz1, b1 - LR * dz1, w2 - LR * dz2 * s, b2 - LR * dz2
    return out


def first_step(pred: object, steps: int = STEPS) -> int | None:
    """The first step at which pred(simulated figures) holds."""
    for i, f in enumerate(simulate(steps)):
        if pred(f):
            return i
    return None
