"""C13: small networks' final loss varies a lot across random initializations (some runs get
lucky, some are trapped in bad minima); large networks reach about equally good losses whatever
the seed.

CS231n's 3-class spiral (300 points), one hidden ReLU layer of a few widths, each trained from many
random initializations (seeds) with the same Adam schedule on the full batch. We report the final
training loss over seeds: mean, standard deviation, spread (max - min), and a histogram.

    python examples/c13_seed_variance.py --out out/c13 [--fast]
"""

import numpy as np
from _common import fit, parse_args, pyplot, save_figure, start, table

import tinygraph as tg

# -----------------------------------------------------------------------------
WIDTHS = [3, 10, 100]
N, CLASSES, NOISE = 300, 3, 0.2
STEPS = 2000
LR = 0.01
SEEDS = list(range(20))
DATA_SEED = 0  # one data set; only the initialization changes
# -----------------------------------------------------------------------------

args = parse_args("c13_seed_variance", __doc__)
if args.fast:
    STEPS, SEEDS = 600, list(range(5))
start(args, "C13: final loss across seeds, small vs large nets")
X, y = tg.data.make_spiral(N, CLASSES, NOISE, seed=DATA_SEED)  # (N, 2), (N,)

final: dict[int, list[float]] = {}
for width in WIDTHS:
    final[width] = []
    for seed in SEEDS:
        net = tg.nn.TensorMLP(2, [width, CLASSES], "relu", seed=seed)
        opt = tg.optim.Adam(net.parameters(), lr=LR)
        fit(net, opt, tg.losses.softmax_cross_entropy, X, y, STEPS)  # (N, 3) scores
        with tg.no_grad():
            final[width].append(tg.losses.softmax_cross_entropy(net(X), y).item())
rows = []
for width, v in final.items():
    a = np.array(v)
    rows.append((width, tg.nn.TensorMLP(2, [width, CLASSES]).num_parameters(), len(a),
                 float(a.mean()), float(a.std()), float(a.std() / a.mean()), float(a.min()),
                 float(a.max()), float(a.max() - a.min())))
table(f"final training loss on the spiral after {STEPS} Adam steps, over {len(SEEDS)} seeds",
      ["hidden neurons", "parameters", "seeds", "mean", "std", "std / mean", "min", "max",
       "max - min"],
      rows, args.out)

plt = pyplot()
if plt is not None:
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, max(max(v) for v in final.values()) * 1.05, 30)
    for width, v in final.items():
        ax.hist(v, bins=bins, alpha=0.6, label=f"{width} hidden neurons")
    ax.set_xlabel("final training loss")
    ax.set_ylabel("seeds")
    ax.set_title(f"spread of the final loss over {len(SEEDS)} initializations")
    ax.legend(fontsize=8)
    save_figure(fig, args.out, "final_loss_hist")
