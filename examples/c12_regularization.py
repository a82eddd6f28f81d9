"""C12: regularization strength, not network size, is the preferred way to control overfitting:
a net with 20 hidden neurons gets smoother decision regions as the L2 strength λ grows
(0.001, 0.01, 0.1 in the notes' figure).

Same data and training as c11_capacity.py (noisy two-moons, one hidden tanh layer of 20, Adam on
the full batch), with the L2 term (λ/2)·Σw² over the weights added to the loss. We count decision
regions and measure train and test accuracy over several seeds, and draw the three nets.

    python examples/c12_regularization.py --out out/c12 [--fast]
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
WIDTH = 20
LAMBDAS = [0.0, 0.0001, 0.001, 0.01, 0.1]  # the notes: 0.001, 0.01, 0.1; 0 is c11's 20-net
N_TRAIN, N_TEST, NOISE = 120, 1000, 0.35
STEPS = 4000
LR = 0.02
GRID = 200
SEEDS = [0, 1, 2]
# -----------------------------------------------------------------------------

args = parse_args("c12_regularization", __doc__)
if args.fast:
    STEPS, GRID, SEEDS = 2000, 80, [0]
start(args, "C12: L2 strength smooths a 20-neuron net's decision regions")

results = {lam: {"train": [], "test": [], "regions": [], "norm": []} for lam in LAMBDAS}
panels = []
for seed in SEEDS:
    Xtr, ytr, Xte, yte = moons_split(N_TRAIN, N_TEST, NOISE, seed)
    for lam in LAMBDAS:
        net = tg.nn.TensorMLP(2, [WIDTH, 1], "tanh", seed=seed)
        opt = tg.optim.Adam(net.parameters(), lr=LR)
        # loss = BCE(net(Xtr), ytr) + (λ/2)·Σw² on the weights (not the biases), full batch
        fit(net, opt, tg.losses.binary_cross_entropy_with_logits, Xtr, ytr, STEPS, l2=lam)
        xx, yy, labels = decision_grid(net, Xtr, GRID)
        r = results[lam]
        with tg.no_grad():
            r["train"].append(tg.losses.accuracy(net(Xtr), ytr))
            r["test"].append(tg.losses.accuracy(net(Xte), yte))
        r["regions"].append(count_regions(labels))
        r["norm"].append(float(np.sqrt(sum(np.sum(w.data ** 2) for w in net.weights()))))
        if seed == SEEDS[0] and lam:
            panels.append((xx, yy, labels, Xtr, ytr,
                           f"λ = {lam}: {r['regions'][-1]} regions\n"
                           f"train {r['train'][-1]:.0%}, test {r['test'][-1]:.0%}"))
table(f"2-{WIDTH}-1 tanh net on noisy moons ({N_TRAIN} train / {N_TEST} test), {len(SEEDS)} seeds",
      ["λ", "weight norm", "train acc", "std", "test acc", "std", "decision regions", "std"],
      [(lam, mean_std(r["norm"])[0], *mean_std(r["train"]), *mean_std(r["test"]),
        *mean_std(r["regions"])) for lam, r in results.items()], args.out)

save_region_panels(panels, args.out, "regions_by_lambda")
