"""The demo's saturation story told on PyTorch: the same 2-8-8-1 sigmoid net, healthy and
saturated, trained with torch.optim and watched by tinygraph.

Each net starts from tinygraph's weights (Xavier, or std 50 for the saturated one), moves to
PyTorch with to_torch, and trains on two moons with torch.optim.SGD (lr 1, momentum 0.9, as
`tinygraph demo`). Its tinygraph twin trains alongside with tinygraph's own SGD, so the table
shows both sides' numbers: saturated share and mean |dL/dz| per layer, which agree to float
tolerance. The watched PyTorch nets' diagrams (neuron and layer level, at init and trained), the
autograd graph and the training pages are written into --out.

    python examples/pytorch_demo.py --out out/pytorch_demo [--fast]

Needs the torch extra: pip install "tinygraph[torch]".
"""

import os

import torch
import torch.nn.functional as F
from _common import parse_args, table

import tinygraph as tg
import tinygraph.pytorch as tp
from tinygraph import diagnostics, losses, nn, optim

# -----------------------------------------------------------------------------
SIZES = [8, 8, 1]  # as tinygraph's demo: 2 -> 8 -> 8 -> 1, sigmoid hidden layers, one logit
RUNS = {"healthy": None, "saturated": 50.0}
STEPS, EVERY = 600, 20
LR, MOMENTUM = 1.0, 0.9
# -----------------------------------------------------------------------------

args = parse_args("pytorch_demo", __doc__)
if args.fast:
    STEPS, EVERY = 20, 5
os.makedirs(args.out, exist_ok=True)
X, y = tg.data.make_moons(200, noise=0.15, seed=0)
Xt, yt = torch.tensor(X), torch.tensor(y, dtype=torch.float64)


def torch_loss(net):
    return F.binary_cross_entropy_with_logits(net(Xt).squeeze(1), yt)


def watched_report(net, label):
    """One watched forward/backward: tinygraph's report of the PyTorch net, and its figures."""
    with tp.watch(net) as w:
        net.zero_grad()
        torch_loss(net).backward()
    for level in ("neuron", "layer"):
        w.draw(level).save(os.path.join(args.out, f"{label}_{level}.png"))
    return w


rows, written = [], []
for name, scale in RUNS.items():
    model = nn.TensorMLP(2, SIZES, activation="sigmoid", scale=scale, seed=0)
    net = tp.to_torch(model)  # same weights
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    topt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    w0 = watched_report(net, f"{name}_init")
    before = diagnostics.diagnose(model, X, y, loss=losses.binary_cross_entropy_with_logits)
    rec = tp.watch(net, every=EVERY)
    for _ in range(STEPS):
        topt.zero_grad()
        loss = torch_loss(net)
        loss.backward()
        rec.step(loss)
        topt.step()
        model.zero_grad()  # the tinygraph twin, the same step
        losses.binary_cross_entropy_with_logits(model(X), y).backward()
        opt.step()
    rec.close()
    written.append(rec.html(os.path.join(args.out, f"{name}_training.html"),
                            title=f"PyTorch {name} sigmoid MLP on two moons, watched"))
    w1 = watched_report(net, f"{name}_trained")
    written.append(w1.draw_autograd().save(os.path.join(args.out, f"{name}_autograd.svg")))
    after = diagnostics.diagnose(model, X, y, loss=losses.binary_cross_entropy_with_logits)
    for when, w, rep in (("init", w0, before), ("trained", w1, after)):
        watched = w.diagnose()
        for L in ("L1", "L2"):
            a, b = rep[L], watched[L]
            rows.append([name, when, L, f"{a.saturated_fraction:.1%}",
                         f"{b.saturated_fraction:.1%}", f"{a.grad_preact:.4e}",
                         f"{b.grad_preact:.4e}", f"{a.saturated}/{a.units}",
                         f"{b.saturated}/{b.units}"])
    with torch.no_grad():
        acc = float(((net(Xt).squeeze(1) > 0).double() == yt).double().mean())
    print(f"{name}: PyTorch-trained accuracy {acc:.1%} after {STEPS} steps\n")
    print(w1.report() + "\n")

table(f"Sigmoid MLP 2-8-8-1 on two moons, {STEPS} SGD steps: the tinygraph twin (tg) and the "
      "watched PyTorch net (pt)",
      ["run", "when", "layer", "tg σ saturated", "pt σ saturated", "tg mean abs dL/dz",
       "pt mean abs dL/dz", "tg saturated units", "pt saturated units"], rows)
print("Wrote: " + ", ".join(sorted(f for f in os.listdir(args.out))))
