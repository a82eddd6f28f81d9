"""C1: a 3-4-2 net has 6 neurons, 20 weights, 6 biases = 26 parameters; a 3-4-4-1 net has
9 neurons, 32 weights, 9 biases = 41 (the notes' two example networks).

Both nets are built with tinygraph.nn at the scalar level (one node per weight, MLP) and at the
tensor level (one matrix per layer, TensorMLP), and their parameters are counted from the modules
themselves, not from a formula. Their diagrams are drawn at the neuron level.

    python examples/c01_parameter_counts.py --out out/c01 [--fast]
"""

import numpy as np
from _common import parse_args, save_diagram, start, table

import tinygraph as tg

# -----------------------------------------------------------------------------
NETS = {"3-4-2": (3, [4, 2]), "3-4-4-1": (3, [4, 4, 1])}  # nin, layer sizes
NOTES = {"3-4-2": (6, 20, 6, 26), "3-4-4-1": (9, 32, 9, 41)}  # neurons, weights, biases, total
HIDDEN = "sigmoid"  # the activation does not change the count (maxout would: see c09_c10)
SEED = 0
# -----------------------------------------------------------------------------

args = parse_args("c01_parameter_counts", __doc__)
start(args, "C1: parameter counts of the notes' two networks")

rows = []
for name, (nin, sizes) in NETS.items():
    for level, cls in (("scalar", tg.nn.MLP), ("tensor", tg.nn.TensorMLP)):
        net = cls(nin, sizes, HIDDEN, seed=SEED)
        neurons = sum(layer.nout for layer in net.layers)
        weights = sum(p.size for p in net.weights())  # everything L2 would cover
        total = net.num_parameters()
        biases = total - weights
        nodes = len(net.parameters())  # parameter nodes: one per number, or one per matrix
        rows.append((name, level, neurons, weights, biases, total, nodes,
                     (neurons, weights, biases, total) == NOTES[name]))
table("parameter counts", ["net", "level", "neurons", "weights", "biases", "parameters",
                           "parameter nodes", "matches notes"], rows, args.out)

# The diagrams: one forward pass of each scalar net on one input, drawn one node per neuron.
x = np.array([0.5, -1.0, 2.0])  # (3,)
for name, (nin, sizes) in NETS.items():
    net = tg.nn.MLP(nin, sizes, HIDDEN, seed=SEED)
    out = net(x)
    if not isinstance(out, tg.Node):  # 3-4-2 has two outputs; a diagram is drawn from one root
        out = tg.sum(tg.stack(out))
        out.name = "sum of the 2 outputs"
    root = out
    save_diagram(root, args.out, f"net_{name}", level="neuron", legend=False)
