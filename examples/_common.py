"""Shared plumbing for the examples: command line, tables, output folder, optional figures.

Every example is a flat script (settings at the top, then the experiment); this module only keeps
what would otherwise be copied into each of them. Tables are printed as markdown, so they read well
in a terminal, paste into the README, and are easy to parse (tests/test_examples.py does).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def parse_args(
    name: str, doc: str | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """--out FOLDER (default out/<name>) and --fast (a reduced run that takes a few seconds);
    extra(parser) adds a script's own options."""
    p = argparse.ArgumentParser(prog=f"{name}.py", description=(doc or "").strip().split("\n")[0])
    p.add_argument("--out", default=os.path.join("out", name), help="folder for figures and tables")
    p.add_argument("--fast", action="store_true", help="reduced run (seconds), as the tests use")
    if extra is not None:
        extra(p)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    return args


def fmt(v: Any) -> str:
    """A table cell: 4 significant figures, scientific notation for tiny or huge numbers."""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v == 0 or (1e-3 <= abs(v) < 1e5):
            return f"{v:.4g}"
        return f"{v:.3e}"
    return str(v)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]],
          out: str | None = None) -> None:
    """Print a markdown table under '### title' (and append it to <out>/results.md)."""
    cells = [[fmt(c) for c in r] for r in rows]
    bad = [c for c in [*header, *(c for r in cells for c in r)] if "|" in c]
    if bad:  # a '|' would split a markdown cell in two
        raise ValueError(f"table {title!r}: cell {bad[0]!r} contains '|'")
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = [f"### {title}", "",
             "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
              for r in cells]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    if out is not None:
        with open(os.path.join(out, "results.md"), "a", encoding="utf-8") as f:
            f.write(text + "\n")


def start(args: argparse.Namespace, claim: str) -> None:
    """Print the claim being reproduced and start a fresh results.md in the output folder."""
    mode = "fast" if args.fast else "full"
    head = f"# {claim}\n\n(mode: {mode}; output folder: {args.out})\n"
    print(head, flush=True)
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(head + "\n")


def pyplot() -> Any:
    """matplotlib.pyplot with a file-only backend, or None (with a message) when not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping figures (pip install matplotlib)")
        return None
    return plt


def save_figure(fig: Any, out: str, name: str) -> None:
    """Save a matplotlib figure as <out>/<name>.png and close it."""
    path = os.path.join(out, f"{name}.png")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"figure: {path}")


def save_diagram(root: Any, out: str, name: str, **options: Any) -> None:
    """Render tinygraph's own diagram of the graph behind root to <out>/<name>.png and .svg.

    Skipped with a message when tinygraph.viz, the graphviz package or the `dot` program is
    missing: the numbers of an example never depend on a picture.
    """
    try:
        from tinygraph import viz
    except ImportError as e:
        print(f"tinygraph.viz unavailable ({e}): skipping diagram {name}")
        return
    try:
        view = viz.draw(root, **options)
        for ext in ("svg", "png"):
            path = os.path.join(out, f"{name}.{ext}")
            view.save(path)
            print(f"diagram: {path}")
    except Exception as e:  # noqa: BLE001 - a missing `dot` must not stop the measurements
        print(f"could not render diagram {name}: {type(e).__name__}: {e}")


def digits(seed: int = 0, test_fraction: float = 0.25) -> tuple[np.ndarray, ...]:
    """scikit-learn's bundled 8x8 digits (no download), split and standardized on the train part.

    Returns X_train (N, 64), y_train (N,), X_test, y_test; float64 features, int64 labels.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("this example needs scikit-learn's bundled digits: pip install scikit-learn")
    import tinygraph as tg

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    n_test = int(len(X) * test_fraction)
    te, tr = order[:n_test], order[n_test:]
    std = tg.data.Standardize().fit(X[tr])  # statistics from the training split only
    Xtr, Xte = std.transform(X[tr]), std.transform(X[te])
    return Xtr, y[tr].astype(np.int64), Xte, y[te].astype(np.int64)


def grid(X: np.ndarray, steps: int = 200, pad: float = 0.5) -> tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray]:
    """A (steps, steps) grid covering the 2-D points X: xx, yy and the points (steps², 2)."""
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], steps), np.linspace(lo[1], hi[1], steps))
    return xx, yy, np.c_[xx.ravel(), yy.ravel()]


def count_regions(mask: np.ndarray) -> int:
    """Number of 4-connected regions of equal value in a 2-D label grid (decision regions)."""
    seen = np.zeros(mask.shape, dtype=bool)
    h, w = mask.shape
    regions = 0
    for i0 in range(h):
        for j0 in range(w):
            if seen[i0, j0]:
                continue
            regions += 1
            v = mask[i0, j0]
            seen[i0, j0] = True
            todo = deque([(i0, j0)])
            while todo:  # iterative flood fill: a region can be far larger than the stack
                i, j = todo.popleft()
                for a, b in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
                    if 0 <= a < h and 0 <= b < w and not seen[a, b] and mask[a, b] == v:
                        seen[a, b] = True
                        todo.append((a, b))
    return regions


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation of a list of measurements."""
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std())



def decision_grid(model: Any, X: np.ndarray, steps: int = 200) -> tuple[np.ndarray, ...]:
    """A binary model's class (score > 0) on a grid around X: xx, yy, labels (steps, steps)."""
    import tinygraph as tg

    xx, yy, pts = grid(X, steps)
    with tg.no_grad():
        scores = model(pts).data.reshape(-1)  # (steps²,)
    return xx, yy, (scores > 0).reshape(xx.shape).astype(np.int64)


def region_panel(ax: Any, xx: np.ndarray, yy: np.ndarray, labels: np.ndarray, X: np.ndarray,
                 y: np.ndarray, title: str) -> None:
    """Draw decision regions with the training points on a matplotlib axis."""
    ax.contourf(xx, yy, labels, levels=[-0.5, 0.5, 1.5], colors=["#f4a6a6", "#a6d8a6"])
    ax.scatter(X[:, 0], X[:, 1], c=np.where(y > 0, "#1a7a1a", "#b01c1c"), s=10,
               edgecolors="k", linewidths=0.3)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def moons_split(n_train: int, n_test: int, noise: float, seed: int) -> tuple[np.ndarray, ...]:
    """Noisy two-moons train and test sets: Xtr, ytr, Xte, yte (test drawn from seed 1000+seed)."""
    import tinygraph as tg

    Xtr, ytr = tg.data.make_moons(n_train, noise, seed=seed)
    Xte, yte = tg.data.make_moons(n_test, noise, seed=1000 + seed)
    return Xtr, ytr, Xte, yte


def fit(net: Any, opt: Any, loss_fn: Any, X: np.ndarray, y: np.ndarray, steps: int,
        l2: float = 0.0) -> Any:
    """Full-batch training: steps of opt on loss_fn(net(X), y) (+ (l2/2)·Σw² on the weights)."""
    import tinygraph as tg

    for _ in range(steps):
        loss = loss_fn(net(X), y)
        if l2:
            loss = loss + tg.losses.l2(net.weights(), l2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def sgd_steps(net: Any, opt: Any, loss_fn: Any, X: np.ndarray, y: np.ndarray, batch: int,
              steps: int, rng: np.random.Generator) -> Any:
    """Minibatch training, one update per iteration: yields the step number (1..steps) after it."""
    for step in range(1, steps + 1):
        idx = rng.integers(0, len(X), batch)  # drawn with replacement, as the rng dictates
        loss = loss_fn(net(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        yield step


def save_region_panels(panels: Sequence[tuple], out: str, name: str) -> None:
    """One row of region_panel plots (arguments per panel) saved as <out>/<name>.png."""
    plt = pyplot()
    if plt is not None:
        fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4))
        for ax, p in zip(np.atleast_1d(axes), panels, strict=True):
            region_panel(ax, *p)
        save_figure(fig, out, name)
