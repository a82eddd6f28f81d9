"""C4: L2 regularization acts as "gradual forgetting": it drives every weight toward zero after
each parameter update.

A logistic neuron is trained on a linearly separable 2-D set, where the data term alone keeps
growing the weights (the loss falls as the scores grow), once without and once with the L2 term
(λ/2)·Σw². With no data gradient at all, L2 alone must multiply every weight by exactly
(1 - lr·λ) per step: w_t = (1 - lr·λ)^t w_0, every weight shrinking in magnitude at every step.
The L2 term written as a loss (tinygraph.losses.l2) and as the optimizer's weight_decay must give
the same trajectory.

    python examples/c04_l2_forgetting.py --out out/c04 [--fast]
"""

import numpy as np
from _common import parse_args, pyplot, save_figure, start, table

import tinygraph as tg

# -----------------------------------------------------------------------------
N = 200
CENTERS = np.array([[-1.5, -1.0], [1.5, 1.0]])
STD = 0.6
LR = 0.5
STEPS = 1000
LAMBDAS = [0.0, 0.01, 0.1]
FORGET_DIM = 16  # weights of the "no data" run
SEED = 0
# -----------------------------------------------------------------------------

args = parse_args("c04_l2_forgetting", __doc__)
if args.fast:
    STEPS = 200
start(args, "C4: L2 regularization as gradual forgetting")
X, y = tg.data.make_blobs(N, CENTERS, std=STD, seed=SEED)  # (N, 2), (N,)


def train(lam: float, as_weight_decay: bool = False) -> list[float]:
    """‖w‖ after every step of full-batch gradient descent with L2 strength lam."""
    neuron = tg.nn.Linear(2, 1, None, seed=SEED)
    # Biases are not regularized (losses.l2 gets neuron.weights()), so they get their own SGD.
    opts = [tg.optim.SGD([neuron.W], lr=LR, weight_decay=lam if as_weight_decay else 0.0),
            tg.optim.SGD([neuron.b], lr=LR)]
    norms = []
    for _ in range(STEPS):
        loss = tg.losses.binary_cross_entropy_with_logits(neuron(X), y)  # (N, 1) scores
        if lam and not as_weight_decay:
            loss = loss + tg.losses.l2(neuron.weights(), lam)  # gradient λ·w
        for opt in opts:
            opt.zero_grad()
        loss.backward()
        for opt in opts:
            opt.step()
        norms.append(float(np.linalg.norm(neuron.W.data)))
    return norms


curves = {lam: train(lam) for lam in LAMBDAS}
decay = train(LAMBDAS[-1], as_weight_decay=True)
rows = [(lam, curves[lam][STEPS // 10 - 1], curves[lam][STEPS // 2 - 1], curves[lam][-1],
         curves[lam][-1] - curves[lam][-STEPS // 10]) for lam in LAMBDAS]
table("‖w‖ of a logistic neuron on separable data",
      ["λ", f"step {STEPS // 10}", f"step {STEPS // 2}", f"step {STEPS}",
       f"change over last {STEPS // 10} steps"], rows, args.out)
table("L2 as a loss term vs as the optimizer's weight_decay",
      ["λ", "max abs difference in ‖w‖ over all steps"],
      [(LAMBDAS[-1], float(np.max(np.abs(np.array(decay) - curves[LAMBDAS[-1]]))))], args.out)

# No data gradient at all: the loss is the L2 term alone.
rows = []
forget = {}
for lam in LAMBDAS[1:]:
    w = tg.Node(np.random.default_rng(SEED).standard_normal(FORGET_DIM), name="w")  # (D,)
    w0 = w.data.copy()
    opt = tg.optim.SGD([w], lr=LR)
    shrank, norms = True, [float(np.linalg.norm(w0))]
    for _ in range(STEPS):
        before = np.abs(w.data)
        loss = tg.losses.l2([w], lam)
        opt.zero_grad()
        loss.backward()
        opt.step()
        shrank &= bool(np.all(np.abs(w.data) < before))  # every weight, every step
        norms.append(float(np.linalg.norm(w.data)))
    forget[lam] = norms
    predicted = (1 - LR * lam) ** STEPS * w0
    rows.append((lam, float(np.linalg.norm(w0)), norms[-1], float(np.linalg.norm(predicted)),
                 float(np.max(np.abs(w.data - predicted) / np.abs(predicted))), shrank))
table("L2 alone (no data): w_t = (1 - lr·λ)^t w_0",
      ["λ", "‖w_0‖", f"‖w_{STEPS}‖ measured", "predicted", "max rel. error",
       "every weight shrank every step"], rows, args.out)

plt = pyplot()
if plt is not None:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for lam in LAMBDAS:
        a1.plot(curves[lam], label=f"data + L2, λ={lam}")
    a1.set_xlabel("step")
    a1.set_ylabel("‖w‖")
    a1.set_title("logistic neuron on separable data")
    a1.legend(fontsize=8)
    for lam, norms in forget.items():
        a2.semilogy(norms, label=f"L2 only, λ={lam}")
        a2.semilogy((1 - LR * lam) ** np.arange(len(norms)) * norms[0], "k:", lw=1)
    a2.set_xlabel("step")
    a2.set_title("no data: (1 - lr·λ)^t (dotted)")
    a2.legend(fontsize=8)
    save_figure(fig, args.out, "weight_norms")
