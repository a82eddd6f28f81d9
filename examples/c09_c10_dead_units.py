"""C9: ReLU units can die for good: with a too-high learning rate as much as 40% of a network can
be dead (never active on any training example). C10: Leaky ReLU, PReLU and Maxout avoid dead
units; Maxout doubles the parameters.

A 64-100-100-10 net is trained on scikit-learn's bundled digits with SGD + momentum for a fixed
number of steps at a sweep of learning rates, over several seeds. Afterwards every hidden unit is
checked on the whole training set: "dead" means the activation's local gradient f'(z) is zero on
every example (no gradient can ever reach its weights through the data again); "never positive"
means its output is <= 0 on every example. Runs that overflowed to NaN/Inf are reported as
diverged. The diagram shows the ReLU net trained at a high rate, dead units flagged.

    python examples/c09_c10_dead_units.py --out out/c09 [--fast]
"""

import numpy as np
from _common import digits, mean_std, parse_args, pyplot, save_diagram, save_figure, start, table

import tinygraph as tg

# -----------------------------------------------------------------------------
HIDDEN = [100, 100]  # (B, 64) -> (B, 100) -> (B, 100) -> (B, 10)
RELU_LRS = [0.003, 0.01, 0.03, 0.1, 0.2, 0.3]
OTHER_LRS = [0.01, 0.1, 0.3]  # leaky ReLU, PReLU, maxout on the same setup
ACTIVATIONS = ["relu", "leaky_relu", "prelu", "maxout"]
STEPS = 300
BATCH = 32
MOMENTUM = 0.9
SEEDS = [0, 1, 2]
DIAGRAM_LR = 0.1
# -----------------------------------------------------------------------------

args = parse_args("c09_c10_dead_units", __doc__)
if args.fast:
    RELU_LRS, OTHER_LRS, SEEDS, STEPS = [0.01, 0.1, 0.3], [0.1], [0], 200
start(args, "C9/C10: dead ReLUs vs learning rate; leaky ReLU, PReLU and maxout")
Xtr, ytr, _, _ = digits(0)
loss_fn = tg.losses.softmax_cross_entropy


def train(act: str, lr: float, seed: int) -> tuple[tg.nn.TensorMLP, bool]:
    """The net after STEPS steps of SGD + momentum, and whether it stayed finite."""
    net = tg.nn.TensorMLP(64, [*HIDDEN, 10], act, seed=seed)
    opt = tg.optim.SGD(net.parameters(), lr=lr, momentum=MOMENTUM)
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):  # a diverging run overflows; it is reported, not hidden
        for _ in range(STEPS):
            idx = rng.integers(0, len(Xtr), BATCH)
            loss = loss_fn(net(Xtr[idx]), ytr[idx])
            if not np.isfinite(loss.item()):
                return net, False
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net, all(np.isfinite(p.data).all() for p in net.parameters())


def unit_health(net: tg.nn.TensorMLP, X: np.ndarray) -> tuple[int, int, int]:
    """(dead, never positive, hidden units) over the hidden layers, on the whole set X."""
    out = net(X)  # (N, 10); the graph keeps every layer's z and act
    nodes = {(n.scope, n.name): n for n in tg.walk(out) if n.name in ("z", "act")}
    dead = never = units = 0
    for layer in net.layers[:-1]:
        z, act = nodes[(layer.name, "z")], nodes[(layer.name, "act")]
        z.grad = None
        act.backward(np.ones(act.shape))  # z.grad = f'(z) elementwise, whatever f is
        d = z.grad.reshape(-1, *z.shape[-1:]) if z.ndim == 3 else z.grad  # maxout: (k·N, units)
        dead += int(np.all(d == 0, axis=0).sum())
        never += int(np.all(act.data <= 0, axis=0).sum())
        units += layer.nout
    return dead, never, units


def m(v: list[float]) -> tuple:
    """Mean and std over the runs that stayed finite ("-" when none did)."""
    return mean_std(v) if v else ("-", "-")


rows, sweep = [], {}
for act in ACTIVATIONS:
    for lr in RELU_LRS if act == "relu" else OTHER_LRS:
        dead, never, acc, diverged = [], [], [], 0
        for seed in SEEDS:
            net, finite = train(act, lr, seed)
            if not finite:
                diverged += 1
                continue
            d, nv, units = unit_health(net, Xtr)
            dead.append(d / units)
            never.append(nv / units)
            with tg.no_grad():
                acc.append(tg.losses.accuracy(net(Xtr), ytr))
        params = tg.nn.TensorMLP(64, [*HIDDEN, 10], act, seed=0).num_parameters()
        ok = len(SEEDS) - diverged
        sweep[(act, lr)] = (*m(dead), ok)
        rows.append((act, lr, params, *m(dead), *m(never), *m(acc), f"{diverged}/{len(SEEDS)}"))
table(f"hidden units of 64-{'-'.join(map(str, HIDDEN))}-10 on digits after {STEPS} SGD steps "
      f"(momentum {MOMENTUM}), {len(SEEDS)} seeds",
      ["activation", "lr", "parameters", "dead", "std", "never positive", "std", "train acc",
       "std", "diverged"], rows, args.out)

plt = pyplot()
if plt is not None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for act in ACTIVATIONS:
        pts = [(lr, *sweep[(act, lr)][:2]) for lr in (RELU_LRS if act == "relu" else OTHER_LRS)
               if sweep[(act, lr)][2] > 0]
        if pts:
            lr_, mu, sd = map(np.array, zip(*pts, strict=True))
            ax.errorbar(lr_, 100 * mu, yerr=100 * sd, marker="o", capsize=3, label=act)
    ax.axhline(40, color="k", lw=0.5, ls=":")
    ax.text(RELU_LRS[0], 42, "the notes' 40%", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (SGD, momentum 0.9)")
    ax.set_ylabel("dead hidden units (%)")
    ax.set_title("dead units after training on digits (missing points: diverged)")
    ax.legend(fontsize=8)
    save_figure(fig, args.out, "dead_vs_lr")

# The diagram: the ReLU net trained at a high rate, one backward pass on the whole training set
# (a unit is flagged dead when it is inactive on every example of the batch drawn).
net, _ = train("relu", DIAGRAM_LR, SEEDS[0])
loss = loss_fn(net(Xtr), ytr)
loss.backward()
save_diagram(loss, args.out, "dead_relu_net", level="layer", rankdir="TB")
