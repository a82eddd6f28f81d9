"""C5: sigmoids saturate and kill gradients; if the initial weights are too large, most neurons
saturate and the network barely learns.

A sigmoid MLP on scikit-learn's bundled digits (64 standardized pixels, 10 classes) is initialized
with weights ~ N(0, scale²) for a sweep of scales. At initialization we measure the % of saturated
activations (σ'(z) < 0.01, tinygraph.thresholds) and the mean |dL/dW| reaching the first layer;
then we train every net the same way and report the loss. The notes' 3-4-4-1 net with too-large
weights is drawn with tinygraph's diagram, saturated nodes flagged.

    python examples/c05_saturation.py --out out/c05 [--fast]
"""

import numpy as np
from _common import digits, parse_args, pyplot, save_diagram, save_figure, start, table

import tinygraph as tg

# -----------------------------------------------------------------------------
HIDDEN = [100, 100]  # (B, 64) -> (B, 100) -> (B, 100) -> (B, 10)
SCALES = [0.01, 0.1, 0.5, 1.0, 3.0, 10.0]  # Xavier for this net is about 0.12 and 0.1
STEPS = 600
BATCH = 64
LR = 0.1
MOMENTUM = 0.9
SEED = 0
DIAGRAM_SCALE = 5.0  # the 3-4-4-1 net of the diagram
# -----------------------------------------------------------------------------

args = parse_args("c05_saturation", __doc__)
if args.fast:
    SCALES, STEPS = [0.1, 1.0, 10.0], 100
start(args, "C5: saturated sigmoids kill the gradient; too-large init weights stop learning")
Xtr, ytr, Xte, yte = digits(SEED)
loss_fn = tg.losses.softmax_cross_entropy

rows, curves = [], {}
for scale in SCALES:
    net = tg.nn.TensorMLP(64, [*HIDDEN, 10], "sigmoid", scale=scale, seed=SEED)
    report = tg.diagnostics.diagnose(net, Xtr, ytr, loss_fn)  # at initialization
    sat = [report[f"L{i + 1}"].saturated_fraction for i in range(len(HIDDEN))]
    g_first, g_last = report["L1"].grad_params, report[f"L{len(HIDDEN) + 1}"].grad_params
    with tg.no_grad():
        h1 = net.layers[0](Xtr).data  # (N, 100) first-layer activations
    dsig = float(np.mean(h1 * (1 - h1)))  # mean local gradient σ'(z); at most 0.25
    with tg.no_grad():
        loss0 = loss_fn(net(Xtr), ytr).item()
    opt = tg.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    rng = np.random.default_rng(SEED)
    curve = []
    for _ in range(STEPS):
        idx = rng.integers(0, len(Xtr), BATCH)
        loss = loss_fn(net(Xtr[idx]), ytr[idx])  # (B, 10) scores
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(loss.item())
    curves[scale] = curve
    with tg.no_grad():
        loss_end = loss_fn(net(Xtr), ytr).item()
        acc = tg.losses.accuracy(net(Xte), yte)
    rows.append((scale, *sat, dsig, g_first, g_last, loss0, loss_end, acc))
table(f"sigmoid {'-'.join(map(str, [64, *HIDDEN, 10]))} on digits, SGD {STEPS} steps",
      ["init scale", *[f"L{i + 1} saturated" for i in range(len(HIDDEN))],
       "mean σ'(z) in L1", "mean abs dL/dW1 at init", "mean abs dL/dW3 at init", "loss at init",
       f"loss after {STEPS} steps", "test acc"], rows, args.out)

plt = pyplot()
if plt is not None:
    fig, ax = plt.subplots(figsize=(6, 4))
    k = max(1, STEPS // 50)
    for scale, curve in curves.items():
        smooth = np.convolve(curve, np.ones(k) / k, mode="valid")
        ax.plot(smooth, label=f"scale {scale}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"minibatch loss (running mean of {k})")
    ax.set_title("sigmoid net on digits: init scale vs learning")
    ax.legend(fontsize=8)
    save_figure(fig, args.out, "loss_vs_init_scale")

# The notes' 3-4-4-1 net (scalar level, one node per weight) with too-large weights, one sample.
net = tg.nn.MLP(3, [4, 4, 1], "sigmoid", scale=DIAGRAM_SCALE, seed=SEED)
x = np.array([1.0, -2.0, 0.5])  # (3,)
loss = tg.losses.binary_cross_entropy_with_logits(net(x), 1.0)
loss.backward()
stats = tg.diagnostics.activation_stats(loss)
flow = tg.diagnostics.gradient_flow(net, loss)
table(f"3-4-4-1 sigmoid net, init scale {DIAGRAM_SCALE}, one sample",
      ["layer", "saturated units", "mean abs dL/dθ", "mean abs dL/dz"],
      [(k, f"{stats[k].saturated}/{stats[k].units}" if k in stats else "-", *flow[k])
       for k in flow], args.out)
save_diagram(loss, args.out, "saturated_net", level="neuron")
