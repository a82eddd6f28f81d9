"""C15: for fully-connected nets, 3 layers often outperform 2, but going deeper (4, 5, 6 layers)
rarely helps much more.

scikit-learn's bundled digits (64 pixels, 10 classes). Nets with 1 to 5 hidden ReLU layers (a
2-layer to a 6-layer net, the notes' counting: the input layer is not counted), the width of
each chosen so that every net has about the same number of parameters. Same Adam schedule, test
accuracy over several seeds.

    python examples/c15_depth.py --out out/c15 [--fast]
"""

import numpy as np
from _common import digits, mean_std, parse_args, pyplot, save_figure, start, table

import tinygraph as tg

# -----------------------------------------------------------------------------
HIDDEN_LAYERS = [1, 2, 3, 4, 5]  # a (k + 1)-layer net
BUDGET = 6000  # parameters, about
EPOCHS = 40
BATCH = 64
LR = 1e-3
SEEDS = [0, 1, 2]
# -----------------------------------------------------------------------------

args = parse_args("c15_depth", __doc__)
if args.fast:
    HIDDEN_LAYERS, EPOCHS, SEEDS = [1, 2, 3], 8, [0]
start(args, "C15: depth of fully-connected nets at a fixed parameter budget")


def params(k: int, w: int, nin: int = 64, nout: int = 10) -> int:
    """Parameters of nin-w-...-w-nout with k hidden layers of width w."""
    return (nin + 1) * w + (k - 1) * (w + 1) * w + (w + 1) * nout


def width_for(k: int) -> int:
    """The width that brings a k-hidden-layer net closest to BUDGET."""
    return min(range(1, 1000), key=lambda w: abs(params(k, w) - BUDGET))


rows, accs = [], {}
for k in HIDDEN_LAYERS:
    w = width_for(k)
    test, train = [], []
    for seed in SEEDS:
        Xtr, ytr, Xte, yte = digits(seed)  # a different split per seed, too
        net = tg.nn.TensorMLP(64, [w] * k + [10], "relu", seed=seed)
        tg.optim.fit(net, Xtr, ytr, optimizer=tg.optim.Adam(net.parameters(), lr=LR),
                     epochs=EPOCHS, batch_size=BATCH, seed=seed, progress=False)
        with tg.no_grad():
            test.append(tg.losses.accuracy(net(Xte), yte))
            train.append(tg.losses.accuracy(net(Xtr), ytr))
    accs[k] = test
    rows.append((k + 1, k, w, net.num_parameters(), *mean_std(train), *mean_std(test)))
table(f"ReLU MLPs on digits, ~{BUDGET} parameters, Adam {EPOCHS} epochs, {len(SEEDS)} seeds",
      ["layers", "hidden layers", "width", "parameters", "train acc", "std", "test acc", "std"],
      rows, args.out)

plt = pyplot()
if plt is not None:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ks = list(accs)
    m = [np.mean(accs[k]) for k in ks]
    s = [np.std(accs[k]) for k in ks]
    ax.errorbar([k + 1 for k in ks], m, yerr=s, marker="o", capsize=3)
    ax.set_xticks([k + 1 for k in ks])
    ax.set_xlabel("layers (hidden + output)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"depth at ~{BUDGET} parameters (digits)")
    save_figure(fig, args.out, "accuracy_vs_depth")
