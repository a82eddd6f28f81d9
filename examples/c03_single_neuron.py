"""C3: one neuron is a linear classifier. With a sigmoid and cross-entropy it is a binary softmax
(logistic regression) classifier whose predictions threshold σ(w·x + b) at 0.5; with a hinge loss
on its raw score it is a binary SVM.

Both are trained on a 2-D linearly separable set (two Gaussian blobs, train and test split), from
the same start, with plain gradient descent. The table gives accuracy and the learned line
w·x + b = 0, and checks that the notes' scalar neuron (tinygraph.nn.Neuron, one node per weight)
with the learned weights predicts "firing rate σ > 0.5" exactly where w·x + b > 0.
scikit-learn's LogisticRegression and LinearSVC, when installed, give independent reference lines
(the table gives the angle between the lines).

    python examples/c03_single_neuron.py --out out/c03 [--fast]
"""

import numpy as np
from _common import parse_args, pyplot, save_figure, start, table

import tinygraph as tg

# -----------------------------------------------------------------------------
N_TRAIN, N_TEST = 200, 200
CENTERS = np.array([[-1.5, -1.0], [1.5, 1.0]])  # class 0, class 1
STD = 0.6  # small enough that the two blobs are linearly separable
LR = 0.5
STEPS = 3000  # full-batch gradient-descent steps
LAMBDA = 1e-3  # a little L2: an SVM needs it to pick the widest margin
SEED = 0
# -----------------------------------------------------------------------------

args = parse_args("c03_single_neuron", __doc__)
if args.fast:
    STEPS = 150
start(args, "C3: a single neuron as a binary softmax (logistic) classifier and as a binary SVM")

X, y = tg.data.make_blobs(N_TRAIN + N_TEST, CENTERS, std=STD, seed=SEED)  # (N, 2), (N,)
order = np.random.default_rng(SEED).permutation(len(X))
Xtr, ytr, Xte, yte = X[order[:N_TRAIN]], y[order[:N_TRAIN]], X[order[N_TRAIN:]], y[order[N_TRAIN:]]

LOSSES = {
    "logistic (sigmoid + cross-entropy)": tg.losses.binary_cross_entropy_with_logits,
    "SVM (hinge)": tg.losses.binary_hinge,  # labels {0, 1} are read as {-1, +1}
}
rows, lines = [], {}
for kind, loss_fn in LOSSES.items():
    neuron = tg.nn.Linear(2, 1, None, seed=SEED)  # one neuron: z = x·w + b, no activation
    opt = tg.optim.SGD(neuron.parameters(), lr=LR)
    for _ in range(STEPS):
        z = neuron(Xtr)  # (N, 1) raw scores
        loss = loss_fn(z, ytr) + tg.losses.l2(neuron.weights(), LAMBDA)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with tg.no_grad():
        z_tr, z_te = neuron(Xtr).data[:, 0], neuron(Xte).data[:, 0]  # (N,)
    w, b = neuron.W.data[:, 0].copy(), float(neuron.b.data[0])
    # The notes' neuron, one node per weight, firing rate σ(w·x + b), with the learned weights:
    # its prediction is "firing rate > 0.5", which must be the same as z > 0.
    cell = tg.nn.Neuron(2, "sigmoid", weights=w[None, :])  # weights (pieces=1, nin=2)
    cell.b.data = b
    with tg.no_grad():
        prob_pred = np.array([cell(x).data for x in Xte]) > 0.5  # (N,)
    lines[kind] = (w, b)
    rows.append((kind, float(loss.item()), float(np.mean((z_tr > 0) == ytr)),
                 float(np.mean((z_te > 0) == yte)), float(np.mean(prob_pred == (z_te > 0))),
                 f"{w[0]:.3f} x1 + {w[1]:.3f} x2 + {b:.3f} = 0"))
table("single neuron, two losses", ["classifier", "final loss", "train acc", "test acc",
                                    "σ(z)>0.5 agrees with z>0", "decision line"], rows, args.out)

# An independent reference for the direction of each line (optional dependency).
try:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    refs = {"logistic (sigmoid + cross-entropy)": LogisticRegression(C=1 / (LAMBDA * N_TRAIN)),
            "SVM (hinge)": LinearSVC(C=1 / (LAMBDA * N_TRAIN), loss="hinge", max_iter=100_000)}
    ref_rows = []
    for kind, model in refs.items():
        model.fit(Xtr, ytr)
        wr = model.coef_[0]
        w = lines[kind][0]
        cos = float(w @ wr / np.linalg.norm(w) / np.linalg.norm(wr))
        ref_rows.append((kind, type(model).__name__, float(model.score(Xte, yte)),
                         float(np.degrees(np.arccos(np.clip(cos, -1, 1))))))
    table("reference: scikit-learn on the same split",
          ["classifier", "reference", "reference test acc", "angle to tinygraph line (deg)"],
          ref_rows, args.out)
except ImportError:
    print("scikit-learn is not installed: skipping the reference lines")

plt = pyplot()
if plt is not None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(Xtr[:, 0], Xtr[:, 1], c=ytr, cmap="coolwarm", s=14, edgecolors="k", linewidths=0.3)
    xs = np.linspace(X[:, 0].min() - 0.5, X[:, 0].max() + 0.5, 2)
    for (kind, (w, b)), style in zip(lines.items(), ("-", "--"), strict=True):
        ax.plot(xs, -(w[0] * xs + b) / w[1], style, color="k", label=kind)
    ax.set_ylim(X[:, 1].min() - 0.5, X[:, 1].max() + 0.5)
    ax.set_title("one neuron: logistic vs SVM decision line")
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, args.out, "decision_lines")
