"""C7: tanh(x) = 2σ(2x) - 1, a scaled sigmoid; tanh is zero-centred and preferred over sigmoid.

Part 1 checks the identity with tinygraph's ops on a grid out to |x| = 30, values and gradients
(d/dx of both sides must be 1 - tanh²). tests/test_examples.py also checks it as a property test.
Part 2 trains the same MLP on digits with sigmoid and with tanh hidden units (same Xavier init,
same SGD, same minibatches), over several seeds.

    python examples/c07_tanh.py --out out/c07 [--fast]
"""

import numpy as np
from _common import (
    digits,
    mean_std,
    parse_args,
    pyplot,
    save_figure,
    sgd_steps,
    start,
    table,
)

import tinygraph as tg

# -----------------------------------------------------------------------------
HIDDEN = [64, 64]  # (B, 64) -> (B, 64) -> (B, 64) -> (B, 10)
STEPS = 800
BATCH = 32
LR = 0.05  # plain SGD, so the activation and not the optimizer does the work
EVAL_EVERY = 25
TARGET_LOSS = 0.3  # training loss the "steps to" column waits for
SEEDS = [0, 1, 2]
# -----------------------------------------------------------------------------

args = parse_args("c07_tanh", __doc__)
if args.fast:
    STEPS, SEEDS = 200, [0]
start(args, "C7: tanh(x) = 2σ(2x) - 1; zero-centred tanh trains better than sigmoid")

# Part 1: the identity, values and gradients.
x = tg.Node(np.linspace(-30, 30, 6001), name="x")  # (6001,)
lhs = tg.tanh(x)
rhs = 2 * tg.sigmoid(2 * x) - 1
lhs.sum().backward()
g_lhs = x.grad.copy()
x.zero_grad()
rhs.sum().backward()
table("tanh(x) vs 2σ(2x) - 1 on 6001 points in [-30, 30]",
      ["quantity", "max abs difference", "at x"],
      [("value", float(np.abs(lhs.data - rhs.data).max()),
        float(x.data[np.argmax(np.abs(lhs.data - rhs.data))])),
       ("derivative", float(np.abs(g_lhs - x.grad).max()),
        float(x.data[np.argmax(np.abs(g_lhs - x.grad))])),
       ("derivative vs 1 - tanh²", float(np.abs(g_lhs - (1 - np.tanh(x.data) ** 2)).max()), "")],
      args.out)

# Part 2: training curves.
Xtr, ytr, Xte, yte = digits(0)
loss_fn = tg.losses.softmax_cross_entropy
# σ' peaks at 0.25 and tanh' at 1, so sigmoid also runs with a 4x learning rate: is the gap only
# the gradient's scale, or also the non-zero-centred outputs?
RUNS = {"sigmoid": ("sigmoid", LR), "sigmoid, lr x 4": ("sigmoid", 4 * LR), "tanh": ("tanh", LR)}
curves: dict[str, list[list[float]]] = {k: [] for k in RUNS}
summary: dict[str, dict[str, list[float]]] = {}
for label, (act, lr) in RUNS.items():
    s = summary[label] = {"loss": [], "acc": [], "steps": [], "mean": []}
    for seed in SEEDS:
        net = tg.nn.TensorMLP(64, [*HIDDEN, 10], act, init="xavier", seed=seed)
        opt = tg.optim.SGD(net.parameters(), lr=lr)
        rng = np.random.default_rng(seed)  # the same minibatches for both activations
        curve, reached = [], None
        for step in sgd_steps(net, opt, loss_fn, Xtr, ytr, BATCH, STEPS, rng):
            if step % EVAL_EVERY == 0:
                with tg.no_grad():
                    full = loss_fn(net(Xtr), ytr).item()
                curve.append(full)
                if reached is None and full < TARGET_LOSS:
                    reached = step
        curves[label].append(curve)
        with tg.no_grad():
            h = net.layers[0](Xtr).data  # (N, 64) first hidden layer
            s["acc"].append(tg.losses.accuracy(net(Xte), yte))
        s["loss"].append(curve[-1])
        s["steps"].append(reached if reached is not None else np.nan)
        s["mean"].append(float(h.mean()))
rows = []
for act, s in summary.items():
    steps = [v for v in s["steps"] if np.isfinite(v)]
    rows.append((act, len(SEEDS), *mean_std(s["mean"]), *mean_std(s["loss"]),
                 *mean_std(s["acc"]),
                 mean_std(steps)[0] if steps else f"> {STEPS}", f"{len(steps)}/{len(SEEDS)}"))
table(f"64-{'-'.join(map(str, HIDDEN))}-10 on digits, SGD lr {LR}, {STEPS} steps of {BATCH}",
      ["hidden activation", "seeds", "mean hidden output", "std over seeds",
       "final train loss", "std", "test acc", "std", f"steps to loss < {TARGET_LOSS}",
       "seeds reaching it"], rows, args.out)

plt = pyplot()
if plt is not None:
    fig, ax = plt.subplots(figsize=(6, 4))
    t = np.arange(1, len(curves["tanh"][0]) + 1) * EVAL_EVERY
    for act, color in zip(RUNS, ("tab:orange", "tab:red", "tab:blue"), strict=True):
        c = np.array(curves[act])  # (seeds, evals)
        ax.plot(t, c.mean(axis=0), color=color, label=f"{act} (mean of {len(SEEDS)} seeds)")
        ax.fill_between(t, c.min(axis=0), c.max(axis=0), color=color, alpha=0.2)
    ax.axhline(TARGET_LOSS, color="k", lw=0.5, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("SGD step")
    ax.set_ylabel("training loss (full set)")
    ax.set_title("sigmoid vs tanh hidden units on digits")
    ax.legend(fontsize=8)
    save_figure(fig, args.out, "sigmoid_vs_tanh")
