"""C6: sigmoid outputs are not zero-centred. A neuron fed by sigmoids (x > 0) gets, for one
example, weight gradients dL/dw_i = (dL/dz)·x_i that are all positive or all negative, which makes
updates zig-zag; summed over a batch the signs can mix again.

Part 1 counts signs on a 64-H-10 net trained on digits: for each output neuron of the second layer
(its inputs are the hidden activations), is its weight gradient all one sign? Per example and per
batch, with a sigmoid hidden layer (inputs > 0) and with tanh (zero-centred inputs).
Part 2 shows the zig-zag itself: a 2-weight neuron fitted by per-example SGD to a target w* whose
weights have opposite signs, once on positive inputs (sigmoid outputs) and once on the same inputs
zero-centred; we count the steps to get near w*.

    python examples/c06_zigzag.py --out out/c06 [--fast]
"""

import numpy as np
from _common import digits, parse_args, pyplot, save_figure, start, table

import tinygraph as tg

# -----------------------------------------------------------------------------
HIDDEN = 32
EXAMPLES = 300  # examples whose single-example gradients are counted
BATCHES = [1, 8, 64, 256]
PRETRAIN_STEPS = 100  # train a little first, so the gradients are not those of a random net
LR = 0.1
W_STAR = np.array([1.0, -1.0])  # part 2: the target weights, opposite signs
ZZ_LRS = [0.5, 1.0, 2.0, 4.0, 8.0]  # the first one is drawn
ZZ_STEPS, ZZ_TOL = 2000, 0.05
SEED = 0
# -----------------------------------------------------------------------------

args = parse_args("c06_zigzag", __doc__)
if args.fast:
    EXAMPLES, BATCHES, PRETRAIN_STEPS, ZZ_STEPS = 128, [1, 8, 64], 30, 1000
start(args, "C6: non-zero-centred inputs give same-sign weight gradients per example")
Xtr, ytr, _, _ = digits(SEED)
loss_fn = tg.losses.softmax_cross_entropy


def one_sign(g: np.ndarray) -> np.ndarray:
    """For each column (one neuron's incoming weights): are its non-zero gradients one sign?"""
    pos, neg = (g > 0).any(axis=0), (g < 0).any(axis=0)
    return ~(pos & neg)


rows = []
for act in ("sigmoid", "tanh"):
    net = tg.nn.TensorMLP(64, [HIDDEN, 10], act, seed=SEED)
    opt = tg.optim.SGD(net.parameters(), lr=LR, momentum=0.9)
    rng = np.random.default_rng(SEED)
    for _ in range(PRETRAIN_STEPS):
        idx = rng.integers(0, len(Xtr), 64)
        loss = loss_fn(net(Xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    W2 = net.layers[1].W  # (H, 10): column j holds output neuron j's incoming weights
    with tg.no_grad():
        h = net.layers[0](Xtr[:EXAMPLES]).data  # (E, H) the inputs of layer 2
    for batch in BATCHES:
        same = []
        for i0 in range(0, EXAMPLES - batch + 1, batch):
            net.zero_grad()
            loss_fn(net(Xtr[i0:i0 + batch]), ytr[i0:i0 + batch]).backward()
            same.append(one_sign(W2.grad))  # (10,)
        rows.append((act, f"({h.min():.2f}, {h.max():.2f})", batch, len(same),
                     float(np.mean(same))))
table(f"second-layer weight gradients of a 64-{HIDDEN}-10 net on digits",
      ["hidden activation", "range of layer-2 inputs", "batch size", "batches",
       "neurons whose gradient is all one sign"], rows, args.out)

# Part 2: the zig-zag. Inputs x > 0 (sigmoid outputs) or the same inputs zero-centred.
rng = np.random.default_rng(SEED)
x_pos = 1 / (1 + np.exp(-rng.standard_normal((ZZ_STEPS, 2))))  # (T, 2), all in (0, 1)
INPUTS = {"sigmoid outputs (x > 0)": x_pos, "zero-centred (x - mean)": x_pos - x_pos.mean(axis=0)}


def sgd_path(xs: np.ndarray, lr: float) -> tuple[np.ndarray, int | None, float]:
    """Per-example SGD on (w·x - w*·x)² from w = 0: the path, steps to reach w*, same-sign share."""
    w = tg.Node(np.zeros(2), name="w")  # (2,)
    opt = tg.optim.SGD([w], lr=lr)
    path, reached, same, moved = [w.data.copy()], None, 0, 0
    for t, x in enumerate(xs):
        loss = tg.losses.mse(tg.dot(w, x), float(x @ W_STAR))  # one example per step
        opt.zero_grad()
        loss.backward()
        same += int(w.grad[0] * w.grad[1] > 0)  # a step along (+,+) or (-,-)
        moved += int(w.grad[0] * w.grad[1] != 0)  # at w* the gradient is exactly 0: no sign
        opt.step()
        path.append(w.data.copy())
        if not np.isfinite(w.data).all() or np.abs(w.data).max() > 1e6:
            break  # diverged
        if reached is None and np.linalg.norm(w.data - W_STAR) < ZZ_TOL:
            reached = t + 1
    return np.array(path), reached, same / max(moved, 1)


paths, rows = {}, []
for kind, xs in INPUTS.items():
    best = None
    for lr in ZZ_LRS:
        path, reached, same = sgd_path(xs, lr)
        if lr == ZZ_LRS[0]:
            paths[kind] = path
        rows.append((kind, lr, same, reached if reached is not None else "never"))
        if reached is not None and (best is None or reached < best):
            best = reached
    rows.append((kind, "best", "", best if best is not None else "never"))
table(f"per-example SGD of a 2-weight neuron towards w* = {tuple(W_STAR.tolist())}",
      ["inputs", "learning rate", "steps with same-sign gradient",
       f"steps to within {ZZ_TOL} of w*"], rows, args.out)

plt = pyplot()
if plt is not None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for kind, path in paths.items():
        p = path[:400]
        ax.plot(p[:, 0], p[:, 1], ".-", ms=2, lw=0.7, label=kind)
    ax.plot(*W_STAR, "k*", ms=12, label="w*")
    ax.set_xlabel("w1")
    ax.set_ylabel("w2")
    ax.set_title(f"first 400 SGD steps from w = 0 (lr {ZZ_LRS[0]})")
    ax.legend(fontsize=8)
    save_figure(fig, args.out, "zigzag")
