"""`python -m tinygraph demo` (or `tinygraph demo`): the notes' saturation story, end to end.

A small sigmoid MLP learns the two-moons set twice: once from a healthy initialization, once from
weights so large that the first layer's sigmoids saturate. The demo writes both nets' gradient-flow
diagrams, their interactive training pages, and a decision-region plot into one folder, and prints
what it measured: accuracy, saturated units per layer, and how much gradient reaches each layer.

Only numpy and Graphviz's Python package are required. tqdm (a nicer progress bar) and matplotlib
(the decision-region plot) come with `pip install "tinygraph[demo]"`; without them the demo shows
a plain progress line and skips the plot, saying so. Without Graphviz's `dot` executable it still
trains and prints its summary, and says once that the diagrams were skipped.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import tinygraph as tg
from tinygraph import data, diagnostics, losses, nn, optim, viz
from tinygraph._progress import _Quiet, _TextBar, progress_bar  # noqa: F401 - the bars, for tests

SIZES = [8, 8, 1]  # 2 -> 8 -> 8 -> 1: two sigmoid hidden layers, one logit
RUNS = {"healthy": None, "saturated": 50.0}  # init: Xavier/Glorot, or weights with std 50
DRAWN = 6  # samples in the neuron-level diagrams
LR, MOMENTUM = 1.0, 0.9  # plain SGD with momentum, as in the notes (Adam would rescale the tiny
# gradients of saturated units and hide the effect the demo is about)
EXTRA = 'pip install "tinygraph[demo]"'  # the optional packages: tqdm and matplotlib
NO_DOT = ("Graphviz's `dot` executable was not found, so the diagrams and training pages were "
          "skipped (the training and the numbers above are complete). Install Graphviz "
          "(`sudo apt-get install graphviz`, `brew install graphviz` or "
          "`conda install -c conda-forge graphviz`) and run the demo again to get them.")


def _progress(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar where tqdm is installed, else a plain one (_TextBar); _Quiet when disabled."""
    return progress_bar(total, desc, enabled=enabled)


class _Diagrams:
    """Draws while Graphviz's `dot` is there; after the first DotNotFoundError it skips the rest
    (every later drawing would fail the same way) and remembers that it did."""

    def __init__(self) -> None:
        self.skipped = False

    def __call__(self, draw: Callable[[], list[Path]]) -> list[Path]:
        if self.skipped:
            return []
        try:
            return draw()
        except viz.DotNotFoundError:
            self.skipped = True
            return []


def _train(name: str, scale: float | None, X: np.ndarray, y: np.ndarray, steps: int, every: int,
           out: Path, progress: bool, diagrams: _Diagrams) -> dict[str, Any]:
    model = nn.TensorMLP(2, SIZES, activation="sigmoid", scale=scale, seed=0)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def loss_fn() -> tg.Node:
        return losses.binary_cross_entropy_with_logits(model(X), y)

    before = _measure(model, X, y)
    files = diagrams(lambda: _draw_neurons(model, X, y, out / f"{name}_init"))
    recorder = viz.Recorder(model, loss_fn, every=every)
    bar = _progress(steps, f"{name:>9}", progress)
    for i in range(steps):
        recorder.step(snapshot=i == steps - 1)  # the slider reaches the last step
        opt.step()
        bar.update()
    bar.close()

    # The final state: one more forward/backward to draw and diagnose.
    model.zero_grad()
    loss = loss_fn()
    loss.backward()
    files += diagrams(lambda: _draw_neurons(model, X, y, out / f"{name}_trained"))
    files += diagrams(lambda: [recorder.html(
        out / f"{name}_training.html", title=f"tinygraph demo: {name} sigmoid MLP on two moons")])
    after = _measure(model, X, y)
    return {"name": name, "model": model, "acc": after["acc"], "before": before, "after": after,
            "files": files}


def _draw_neurons(model: nn.TensorMLP, X: np.ndarray, y: np.ndarray, stem: Path) -> list[Path]:
    """Draw the net neuron by neuron: a scalar-level copy with the same weights, on a few samples.

    The tensor net trains fast; the scalar copy is what the notes draw (one node per neuron), and
    its diagram shows each unit's saturation and the gradient reaching it.
    """
    copy = nn.MLP(2, SIZES, activation="sigmoid", seed=0)  # weights replaced below
    state = {}
    for layer in model.layers:
        W, b = layer.W.data, layer.b.data  # (nin, nout), (nout,)
        for j in range(W.shape[1]):
            state[f"{layer.name}.n{j}.b"] = np.array(b[j])
            for i in range(W.shape[0]):
                state[f"{layer.name}.n{j}.w{i}"] = np.array(W[i, j])
    copy.load_state_dict(state)
    loss = losses.binary_cross_entropy_with_logits(copy(X[:DRAWN]), y[:DRAWN])
    loss.backward()
    view = viz.draw(loss, level="neuron")
    return [view.save(stem.with_suffix(f".{ext}")) for ext in ("svg", "png")]


def _measure(model: nn.Module, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Accuracy, loss and the per-layer diagnostics of the model as it is now."""
    with tg.no_grad():
        scores = model(X)
        acc = losses.accuracy(scores, y)
        loss = losses.binary_cross_entropy_with_logits(scores, y).item()
    report = diagnostics.diagnose(model, X, y, loss=losses.binary_cross_entropy_with_logits)
    return {"acc": acc, "loss": loss, "report": report}


def _decision_plot(runs: list[dict[str, Any]], X: np.ndarray, y: np.ndarray,
                   path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    lo, hi = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.c_[gx.ravel(), gy.ravel()]  # (40000, 2)
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 4.2), constrained_layout=True)
    for ax, run in zip(np.atleast_1d(axes), runs):
        with tg.no_grad():
            p = tg.sigmoid(run["model"](grid)).data.reshape(gx.shape)  # P(class 1)
        ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.75)
        ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=1.2)
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", edgecolors="k", s=16, linewidths=0.5)
        ax.set_title(f"{run['name']} init: train accuracy {run['acc']:.1%}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Two moons, sigmoid MLP 2-8-8-1: decision regions after training")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _layer_row(report: diagnostics.Report, layer: str) -> list[str]:
    d = report[layer]
    g = d.grad_preact
    return [f"{d.saturated_fraction:.0%}", "-" if g is None else f"{g:.2e}"]


def demo(out: Path, steps: int, every: int, progress: bool = True) -> list[dict[str, Any]]:
    """Train the healthy and the saturated net, write the figures into out, print a summary."""
    out.mkdir(parents=True, exist_ok=True)
    X, y = data.make_moons(200, noise=0.15, seed=0)  # (200, 2), labels 0/1
    diagrams = _Diagrams()
    runs = [_train(name, scale, X, y, steps, every, out, progress, diagrams)
            for name, scale in RUNS.items()]
    plot = _decision_plot(runs, X, y, out / "decision_regions.png")

    layers = [f"L{i + 1}" for i in range(len(SIZES) - 1)]  # the hidden (sigmoid) layers
    print(f"\nSigmoid MLP 2-{'-'.join(map(str, SIZES))} on two moons (200 points), {steps} SGD "
          f"steps (lr {LR}, momentum {MOMENTUM})\n")
    head = ["run", "when", "train acc", "loss"]
    for L in layers:
        head += [f"{L} σ saturated", f"{L} mean|dL/dz|"]  # % of (unit, sample) activations
    rows = []
    for r in runs:
        for when in ("before", "after"):
            m = r[when]
            row = [r["name"], "init" if when == "before" else "trained", f"{m['acc']:.1%}",
                   f"{m['loss']:.4f}"]
            for L in layers:
                row += _layer_row(m["report"], L)
            rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)))
    for r in runs:
        print(f"\n{r['name']} net at init:")
        for d in r["before"]["report"].layers:
            print(f"  {d.describe()}")
    written = [f for r in runs for f in r["files"]] + ([plot] if plot else [])
    if written:  # nothing, without both dot and matplotlib: the notes below say why
        print(f"\nWrote into {out}/:")
    for f in written:
        print(f"  {Path(f).name}")
    # Said after the summary, where it is read, rather than lost above the progress bars.
    if diagrams.skipped:
        print(f"\n{NO_DOT}")
    if plot is None:
        print(f"\nmatplotlib is not installed, so the decision-region plot was skipped ({EXTRA} "
              "adds it).")
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="tinygraph", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="train a healthy and a saturated sigmoid MLP; draw both")
    d.add_argument("--out", type=Path, default=Path("tinygraph-demo"), help="output folder")
    d.add_argument("--steps", type=int, default=600, help="training steps per run")
    d.add_argument("--every", type=int, default=20, help="record a frame every k steps")
    d.add_argument("--fast", action="store_true", help="a few steps only (for tests)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.command != "demo":
        ap.print_help()
        return 0 if args.command is None and argv is None and len(sys.argv) == 1 else 2
    steps, every = (20, 5) if args.fast else (args.steps, args.every)
    demo(args.out, steps, every, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
