"""C14: a network with one hidden layer can approximate any continuous function (Cybenko 1989:
g(x) = Σ_j v_j σ(w_j x + b_j), to any ε on a compact interval, given enough hidden units).

A continuous target with a kink is fitted on [-2, 2] by one-hidden-layer sigmoid nets of growing
width, written directly with tinygraph's core ops (matmul, add, sigmoid; no nn module). The maximum
error is measured on a grid 10x denser than the training points, so it includes the points in
between. The theorem says a good g exists; gradient descent has to find it, so the measured error
is an upper bound on what each width can do.

    python examples/c14_approximation.py --out out/c14 [--fast]
"""

import numpy as np
from _common import parse_args, pyplot, save_figure, start, table

import tinygraph as tg

# -----------------------------------------------------------------------------
WIDTHS = [1, 2, 4, 8, 16, 32, 64]
LO, HI = -2.0, 2.0
N_TRAIN, N_EVAL = 200, 2000
STEPS = 6000
LR = 0.01
SEED = 0
# -----------------------------------------------------------------------------

args = parse_args("c14_approximation", __doc__)
if args.fast:
    WIDTHS, STEPS = [2, 8, 32], 1500
start(args, "C14: one hidden layer approximates a continuous function")


def target(x: np.ndarray) -> np.ndarray:
    """Continuous on [-2, 2], smooth parts and a kink at 0.5."""
    return np.sin(3 * x) + 0.3 * x**2 - np.abs(x - 0.5)


x_tr = np.linspace(LO, HI, N_TRAIN).reshape(-1, 1)  # (N, 1)
x_ev = np.linspace(LO, HI, N_EVAL).reshape(-1, 1)  # (M, 1)
y_tr, y_ev = target(x_tr), target(x_ev)

rows, fits = [], {}
for width in WIDTHS:
    rng = np.random.default_rng(SEED)
    # Steep-ish sigmoids whose midpoints -b/w are spread over the interval: every unit starts as a
    # step somewhere inside [LO, HI], the picture behind the theorem.
    w = rng.choice([-1.0, 1.0], width) * rng.uniform(2.0, 6.0, width)
    W1 = tg.Node(w.reshape(1, width), name="W1")  # (1, H)
    b1 = tg.Node(-w * rng.uniform(LO, HI, width), name="b1")  # (H,)
    W2 = tg.Node(rng.standard_normal((width, 1)) / np.sqrt(width), name="W2")  # (H, 1)
    b2 = tg.Node(np.zeros(1), name="b2")  # (1,)
    params = [W1, b1, W2, b2]

    def g(x: np.ndarray) -> tg.Node:
        """g(x) = σ(x W1 + b1) W2 + b2."""
        return tg.sigmoid(x @ W1 + b1) @ W2 + b2  # (N, 1)

    opt = tg.optim.Adam(params, lr=LR)
    for _ in range(STEPS):
        d = g(x_tr) - y_tr  # (N, 1)
        loss = tg.mean(d * d)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with tg.no_grad():
        pred = g(x_ev).data
    err = np.abs(pred - y_ev)
    fits[width] = pred[:, 0]
    rows.append((width, 3 * width + 1, float(np.sqrt(np.mean(err**2))), float(err.max()),
                 float(x_ev[np.argmax(err), 0])))
table(f"sigmoid nets g(x) fitted to f on [{LO}, {HI}] ({STEPS} Adam steps)",
      ["hidden units", "parameters", "RMS error", "max error", "worst x"], rows, args.out)

plt = pyplot()
if plt is not None:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    a1.plot(x_ev[:, 0], y_ev[:, 0], "k", lw=2, label="f")
    for width in WIDTHS[:: max(1, len(WIDTHS) // 4)]:
        a1.plot(x_ev[:, 0], fits[width], lw=1, label=f"{width} units")
    a1.set_title("fits")
    a1.legend(fontsize=8)
    a2.loglog([r[0] for r in rows], [r[3] for r in rows], "o-", label="max error")
    a2.loglog([r[0] for r in rows], [r[2] for r in rows], "s--", label="RMS error")
    a2.set_xlabel("hidden units")
    a2.set_title("error vs width")
    a2.legend(fontsize=8)
    save_figure(fig, args.out, "approximation")
