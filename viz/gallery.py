"""Render the diagram gallery into this folder as SVG and PNG: `python viz/gallery.py`.

Each entry builds a small network with tinygraph.nn, runs one forward and backward pass on fixed
data, and draws it with tinygraph.viz. Seeds are fixed, so the pictures only change when the code
does. viz/README.md says what to look at in each.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import tinygraph as tg
import tinygraph.viz as viz
from tinygraph import losses, nn

OUT = Path(__file__).resolve().parent
DPI = 96


def single_neuron() -> viz.View:
    """The notes' neuron: act = σ(w·x + b) with three inputs, and a squared-error loss."""
    x = [tg.Node(v, name=f"x{i}", requires_grad=False) for i, v in enumerate([1.0, -2.0, 0.5])]
    neuron = nn.Neuron(3, "sigmoid", name="n0", weights=np.array([[0.8, 0.3, -0.5]]))
    act = neuron(x)
    loss = (act - 1.0) ** 2
    loss.name = "loss"
    loss.backward()
    return viz.draw(loss, dpi=DPI)


def _sample_loss(model: nn.MLP, x: list[float], target: list[float]) -> tg.Node:
    out = model(x)
    outs = out if isinstance(out, list) else [out]
    loss = tg.Node(0.0, requires_grad=False)
    for o, t in zip(outs, target, strict=True):
        loss = loss + (o - t) ** 2
    loss.name = "loss"
    return loss


def mlp_3_4_2() -> viz.View:
    """The notes' 2-layer net: three inputs, a hidden layer of 4 ReLUs, 2 output scores."""
    model = nn.MLP(3, [4, 2], "relu", seed=3)
    loss = _sample_loss(model, [0.5, -1.0, 2.0], [1.0, 0.0])
    loss.backward()
    return viz.draw(loss, dpi=DPI)


def mlp_3_4_4_1() -> viz.View:
    """The notes' 3-layer net 3-4-4-1 (sigmoid hidden layers), every op drawn."""
    model = nn.MLP(3, [4, 4, 1], "sigmoid", seed=0)
    loss = _sample_loss(model, [0.5, -1.0, 2.0], [1.0])
    loss.backward()
    return viz.draw(loss, level="op", dpi=DPI)


BATCH = np.random.default_rng(7).normal(size=(6, 3))
TARGET = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]


def _batch_loss(model: nn.MLP) -> tg.Node:
    """Squared error over the fixed batch, one scalar graph per sample."""
    loss = tg.Node(0.0, requires_grad=False)
    for x, t in zip(BATCH.tolist(), TARGET, strict=True):
        loss = loss + (model(x) - t) ** 2
    loss = loss / len(TARGET)
    loss.name = "loss"
    return loss


def healthy_sigmoid() -> viz.View:
    """A 3-4-4-1 sigmoid MLP with Xavier weights, on a batch: folded to one box per neuron."""
    model = nn.MLP(3, [4, 4, 1], "sigmoid", seed=1)
    loss = _batch_loss(model)
    loss.backward()
    return viz.draw(loss, level="neuron", dpi=DPI)


def _saturated_model() -> nn.MLP:
    """The healthy MLP with first-layer weights x6 and biases +12: every L1 unit has z > 4.6."""
    model = nn.MLP(3, [4, 4, 1], "sigmoid", seed=1)
    for p in model.layers[0].parameters():
        p.data = p.data * 6.0 + (12.0 if p.name == "b" else 0.0)
    return model


def saturated_sigmoid() -> viz.View:
    """The same MLP with saturating first-layer weights: the gradient dies in L1."""
    model = _saturated_model()
    loss = _batch_loss(model)
    loss.backward()
    return viz.draw(loss, level="neuron", dpi=DPI)


def saturated_sigmoid_ops() -> viz.View:
    """The saturated MLP on one sample with every op drawn: watch the edges fade inside L1."""
    model = _saturated_model()
    loss = _sample_loss(model, BATCH[0].tolist(), [TARGET[0]])
    loss.backward()
    return viz.draw(loss, level="op", dpi=DPI)


def saturated_sigmoid_layers() -> viz.View:
    """The saturated MLP at layer level: one box per layer, a heat cell per unit."""
    loss = _batch_loss(_saturated_model())
    loss.backward()
    return viz.draw(loss, level="layer", dpi=DPI)


def dead_relu() -> viz.View:
    """A tensor-level ReLU net 3-8-8-1 on a batch of 16 whose first layer has 3 dead units."""
    model = nn.TensorMLP(3, [8, 8, 1], "relu", seed=2)
    b = model.layers[0].b.numpy()
    b[[1, 4, 6]] = -6.0  # pushed so far below zero that no sample reaches them
    model.layers[0].b.data = b
    X = tg.Node(np.random.default_rng(5).normal(size=(16, 3)), name="X", requires_grad=False)
    y = np.random.default_rng(6).normal(size=(16, 1))
    loss = losses.mse(model(X), y)
    loss.backward()
    return viz.draw(loss, dpi=DPI)


def notes_forward_pass() -> viz.View:
    """The notes' forward pass as written there, in the column convention with the sigmoid
    spelled out: f = lambda x: 1.0/(1.0 + exp(-x)); h1 = f(W1 @ x + b1); ..., x of shape (3, 1)."""
    rng = np.random.default_rng(4)

    def f(v: tg.Node) -> tg.Node:
        return 1.0 / (1.0 + tg.exp(-v))

    x = tg.Node(np.array([[1.0], [2.0], [1.5]]), name="x", requires_grad=False)
    # Three units with large weights (z of 14 to 19.5: flat tails of σ), one with small ones.
    W1 = tg.Node(np.array([[4.0, 3.0, 2.0], [5.0, 2.0, 3.0], [3.0, 4.0, 5.0], [0.5, 0.4, -0.6]]),
                 name="W1")
    b1 = tg.Node(np.array([[1.0], [1.0], [1.0], [0.0]]), name="b1")
    W2 = tg.Node(rng.normal(size=(4, 4)), name="W2")
    b2 = tg.Node(np.zeros((4, 1)), name="b2")
    W3 = tg.Node(rng.normal(size=(1, 4)), name="W3")
    b3 = tg.Node(np.zeros((1, 1)), name="b3")
    h1 = f(W1 @ x + b1)
    h1.name = "h1"
    h2 = f(W2 @ h1 + b2)
    h2.name = "h2"
    out = W3 @ h2 + b3
    out.name = "out"
    loss = (out - 1.0).sum() ** 2
    loss.name = "loss"
    loss.backward()
    return viz.draw(loss, heat=False, dpi=DPI)


GALLERY: dict[str, Callable[[], viz.View]] = {
    "single_neuron": single_neuron,
    "mlp_3_4_2": mlp_3_4_2,
    "mlp_3_4_4_1": mlp_3_4_4_1,
    "healthy_sigmoid": healthy_sigmoid,
    "saturated_sigmoid": saturated_sigmoid,
    "saturated_sigmoid_ops": saturated_sigmoid_ops,
    "saturated_sigmoid_layers": saturated_sigmoid_layers,
    "dead_relu": dead_relu,
    "notes_forward_pass": notes_forward_pass,
}


def main(names: list[str]) -> None:
    for name in names or GALLERY:
        t0 = time.perf_counter()
        view = GALLERY[name]()
        for ext in ("svg", "png"):
            view.save(OUT / f"{name}.{ext}")
        print(f"{name}: {view.level} level, {len(view.data.nodes)} nodes, "
              f"{len(view.flags)} flags, {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
