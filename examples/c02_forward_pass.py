"""C2: the forward pass of a fully-connected net is, per layer, one matrix multiply, a bias offset
and an activation: the notes' 3-layer sigmoid net, h1 = f(W1 x + b1), h2 = f(W2 h1 + b2),
out = W3 h2 + b3, with x a [3x1] column or a batch of columns [3xN].

The same pass is written three ways and compared: plain numpy (the notes' code), tinygraph ops in
the notes' column convention, and tinygraph.nn.TensorMLP (row convention, x @ W + b) loaded with
the same weights. A batch of N columns must give, column by column, what N single passes give.

    python examples/c02_forward_pass.py --out out/c02 [--fast]
"""

import numpy as np
from _common import parse_args, save_diagram, start, table

import tinygraph as tg

# -----------------------------------------------------------------------------
SIZES = [3, 4, 4, 1]  # the notes' 3-layer net: 3 inputs, two hidden layers of 4, one output
BATCH = 256  # columns in the batched pass
SEED = 0
# -----------------------------------------------------------------------------

args = parse_args("c02_forward_pass", __doc__)
start(args, "C2: a layer's forward pass is a matmul, a bias offset and an activation")
rng = np.random.default_rng(SEED)

# Parameters in the notes' layout: every neuron's weights are a row of W.
W1, b1 = rng.standard_normal((4, 3)), rng.standard_normal((4, 1))  # (4, 3), (4, 1)
W2, b2 = rng.standard_normal((4, 4)), rng.standard_normal((4, 1))  # (4, 4), (4, 1)
W3, b3 = rng.standard_normal((1, 4)), rng.standard_normal((1, 1))  # (1, 4), (1, 1)


def forward_numpy(x: np.ndarray) -> np.ndarray:
    """The notes' code, verbatim apart from names."""
    f = lambda v: 1.0 / (1.0 + np.exp(-v))  # sigmoid
    h1 = f(np.dot(W1, x) + b1)  # (4, N)
    h2 = f(np.dot(W2, h1) + b2)  # (4, N)
    return np.dot(W3, h2) + b3  # (1, N)


params = {k: tg.Node(v, name=k) for k, v in
          dict(W1=W1, b1=b1, W2=W2, b2=b2, W3=W3, b3=b3).items()}


def forward_tinygraph(x: np.ndarray) -> tg.Node:
    """The same three lines with tinygraph ops, in the column convention."""
    p = params
    with tg.scope("L1"):
        h1 = tg.sigmoid(p["W1"] @ x + p["b1"])  # (4, N)
    with tg.scope("L2"):
        h2 = tg.sigmoid(p["W2"] @ h1 + p["b2"])  # (4, N)
    with tg.scope("L3"):
        out = p["W3"] @ h2 + p["b3"]  # (1, N)
    out.name = "out"
    return out


# TensorMLP stores W as (nin, nout) and computes x @ W + b on rows: the transposes of the above.
mlp = tg.nn.TensorMLP(3, SIZES[1:], "sigmoid", seed=SEED)
mlp.load_state_dict({"L1.W": W1.T.copy(), "L1.b": b1[:, 0].copy(),
                     "L2.W": W2.T.copy(), "L2.b": b2[:, 0].copy(),
                     "L3.W": W3.T.copy(), "L3.b": b3[:, 0].copy()})

x1 = rng.standard_normal((3, 1))  # one input column (3, 1)
X = rng.standard_normal((3, BATCH))  # a batch of columns (3, N)

ref1, refN = forward_numpy(x1), forward_numpy(X)
tg1, tgN = forward_tinygraph(x1), forward_tinygraph(X)
mlp1, mlpN = mlp(x1.T), mlp(X.T)  # rows in, (1, 1) and (N, 1) out
one_by_one = np.concatenate([forward_tinygraph(X[:, [i]]).data for i in range(BATCH)], axis=1)

rows = [
    ("one column", "tinygraph ops (W x + b)", tg1.shape, float(np.abs(tg1.data - ref1).max())),
    ("one column", "nn.TensorMLP (x W + b)", mlp1.shape, float(np.abs(mlp1.data.T - ref1).max())),
    (f"batch of {BATCH}", "tinygraph ops (W x + b)", tgN.shape,
     float(np.abs(tgN.data - refN).max())),
    (f"batch of {BATCH}", "nn.TensorMLP (x W + b)", mlpN.shape,
     float(np.abs(mlpN.data.T - refN).max())),
    (f"batch of {BATCH}", f"{BATCH} single-column passes", one_by_one.shape,
     float(np.abs(one_by_one - refN).max())),
]
table("max |difference| from the notes' numpy forward pass",
      ["input", "computed with", "output shape", "max abs diff"], rows, args.out)

# Per layer the graph holds exactly one matmul, one add (the bias) and one activation.
ops = [n.op for n in tg.walk(tgN) if n.op is not None]
table("ops in the batched graph", ["op", "count"],
      [(op, ops.count(op)) for op in dict.fromkeys(ops)], args.out)

save_diagram(tg1, args.out, "forward_pass_graph", level="op")
