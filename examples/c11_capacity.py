"""C11: larger networks can represent more complicated functions: on a 2-D binary problem, nets
with one hidden layer of 3, 6 and 20 neurons give decision regions that go from broad strokes to
many disjoint pieces that fit the noise.

Noisy two-moons data (some points of each class lie inside the other), one hidden tanh layer,
Adam on the full batch until the training loss stops moving, no regularization. We count the
decision regions (connected pieces of the plane, on a grid) and measure train and test accuracy,
over several seeds; the figure shows the three nets for the first seed.

    python examples/c11_capacity.py --out out/c11 [--fast]
"""

import numpy as np
from _common import (
    count_regions,
    decision_grid,
    fit,
    mean_std,
    moons_split,
    parse_args,
    save_region_panels,
    start,
    table,
)

import tinygraph as tg

# -----------------------------------------------------------------------------
WIDTHS = [3, 6, 20]
N_TRAIN, N_TEST, NOISE = 120, 1000, 0.35  # few, noisy points: room to overfit
STEPS = 4000
LR = 0.02
GRID = 200
SEEDS = [0, 1, 2]
# -----------------------------------------------------------------------------

args = parse_args("c11_capacity", __doc__)
if args.fast:
    STEPS, GRID, SEEDS = 2000, 80, [0]
start(args, "C11: more hidden neurons, more complicated decision regions")


def train(width: int, seed: int, Xtr: np.ndarray, ytr: np.ndarray) -> tg.nn.TensorMLP:
    """A 2-width-1 tanh net fitted with Adam on the full batch."""
    net = tg.nn.TensorMLP(2, [width, 1], "tanh", seed=seed)
    opt = tg.optim.Adam(net.parameters(), lr=LR)
    return fit(net, opt, tg.losses.binary_cross_entropy_with_logits, Xtr, ytr, STEPS)  # (N, 1)


results: dict[int, dict[str, list[float]]] = {w: {"loss": [], "train": [], "test": [],
                                                  "regions": []} for w in WIDTHS}
panels = []
for seed in SEEDS:
    Xtr, ytr, Xte, yte = moons_split(N_TRAIN, N_TEST, NOISE, seed)
    for width in WIDTHS:
        net = train(width, seed, Xtr, ytr)
        xx, yy, labels = decision_grid(net, Xtr, GRID)
        r = results[width]
        with tg.no_grad():
            r["loss"].append(tg.losses.binary_cross_entropy_with_logits(net(Xtr), ytr).item())
            r["train"].append(tg.losses.accuracy(net(Xtr), ytr))
            r["test"].append(tg.losses.accuracy(net(Xte), yte))
        r["regions"].append(count_regions(labels))
        if seed == SEEDS[0]:
            panels.append((xx, yy, labels, Xtr, ytr,
                           f"{width} hidden neurons: {r['regions'][-1]} regions\n"
                           f"train {r['train'][-1]:.0%}, test {r['test'][-1]:.0%}"))
table(f"2-H-1 tanh nets on noisy moons ({N_TRAIN} train / {N_TEST} test points), "
      f"{len(SEEDS)} seeds", ["hidden neurons", "parameters", "train loss", "train acc", "std",
                              "test acc", "std", "decision regions", "std"],
      [(w, tg.nn.TensorMLP(2, [w, 1]).num_parameters(), mean_std(r["loss"])[0],
        *mean_std(r["train"]), *mean_std(r["test"]), *mean_std(r["regions"]))
       for w, r in results.items()], args.out)

save_region_panels(panels, args.out, "regions_by_width")
