"""Record two training runs that go wrong, as interactive pages with a step slider.

1. A sigmoid 3-4-4-1 MLP started with saturating weights (N(0, 8²)) on inputs that were not
   centred (each feature shifted to start at 0, so every z has the same sign on most samples):
   whole units sit in a flat tail of σ on every sample, flagged "saturated", they stay there, the
   loss stalls, and the gradient that reaches the first layer is about a tenth of the one at the
   output.
2. A ReLU 3-4-4-1 MLP trained with a learning rate that is too high (5.0): a few large updates
   push units into the region where z <= 0 for every sample; they die (flagged "○ inactive" when
   they first switch off, "✖ dead" once they have stayed off for Thresholds.dead_snapshots = 5
   recorded steps in a row), the loss stalls, and the gradient into the first layer falls by
   four orders of magnitude.

Both are scalar-level (micrograd-style) MLPs on 16 points of the two-moons data with a third
feature x1·x2, trained by full-batch SGD on the logistic loss. The recorder snapshots the graph
every EVERY steps; each page (open it from disk, it needs no network) has a step slider, a play
button, hover tooltips, click-to-highlight of a node's gradient path, a list of flagged nodes and
a log-scale strip of mean |dL/dz| per layer. The per-step figures are written as JSON, every frame
as an SVG, and (when chromium is installed) screenshots of the first and last step go to the
--figures folder.

--figures DIR: where the screenshots go. By default a full run writes them into the repository's
examples/figures/ (that is how the README's figures are regenerated) and a --fast run takes none;
give --figures to keep a run out of the repository (it then takes screenshots in --fast runs too).

    python examples/record_training.py --out out/record_training [--fast] [--figures DIR]
"""

import os
import shutil
import subprocess
import tempfile
import time

import numpy as np
from _common import parse_args, start, table

import tinygraph as tg
from tinygraph.viz.recorder import Recorder

# -----------------------------------------------------------------------------
SIZES = [4, 4, 1]  # (3,) -> 4 -> 4 -> 1 score
N = 16  # samples in the (full) batch
STEPS = 200
EVERY = 1  # 200 frames: the size the page must still load quickly with
RUNS = {  # name: (activation, initial weight scale (None: He/Xavier), learning rate, seed,
    #               centre the inputs)
    "sigmoid_saturated": ("sigmoid", 8.0, 0.1, 1, False),
    "relu_high_lr": ("relu", None, 5.0, 2, True),
}
SHOTS = 2  # screenshots per run: the first frame and the last
FIGURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")
# -----------------------------------------------------------------------------

args = parse_args("record_training", __doc__, extra=lambda p: p.add_argument(
    "--figures", default=None, metavar="DIR",
    help="folder for the page screenshots (default: examples/figures/ in full runs, "
         "none with --fast)"))
# The screenshots' folder, or None for no screenshots.
shots_dir = args.figures if args.figures is not None else (None if args.fast else FIGURES)
if args.fast:
    STEPS, EVERY = 20, 2
start(args, "Recorded training runs: saturated sigmoids and dead ReLUs, step by step")

X, y = tg.data.make_moons(N, noise=0.1, seed=0)
X = np.c_[X, X[:, 0] * X[:, 1]]  # (N, 3)
t = 2.0 * y - 1.0  # labels as ±1 for the logistic loss log(1 + e^(-t·s)) = softplus(-t·s)


def screenshot(page: str, frame: int, png: str) -> bool:
    """PNG of page at frame with headless chromium (kept off the network); False without it."""
    exe = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
    if exe is None:
        return False
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--disable-quic", f"--user-data-dir={profile}",
               "--window-size=1600,900", f"--screenshot={os.path.abspath(png)}",
               f"file://{os.path.abspath(page)}#frame={frame}"]
        done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    return done.returncode == 0 and os.path.exists(png)


rows = []
for name, (act, scale, lr, seed, centre) in RUNS.items():
    model = tg.nn.MLP(3, SIZES, act, scale=scale, seed=seed)
    Xr = (X - X.mean(0)) / X.std(0) if centre else X - X.min(0)

    def loss_fn(model=model, Xr=Xr) -> tg.Node:
        scores = [model(x) for x in Xr.tolist()]  # N scalar nodes
        with tg.scope("loss"):  # one box in the diagram's neuron-level view
            total = sum((tg.softplus(-ti * s) for s, ti in zip(scores, t, strict=True)), 0.0)
            loss = total * (1.0 / N)
        loss.name = "loss"
        return loss

    rec = Recorder(model, loss_fn, every=EVERY)
    t0 = time.perf_counter()
    rec.fit(tg.optim.SGD(model.parameters(), lr=lr), STEPS)
    t_rec = time.perf_counter() - t0
    t0 = time.perf_counter()
    page = rec.html(os.path.join(args.out, f"{name}.html"), title=f"tinygraph: {name} (lr {lr})")
    t_page = time.perf_counter() - t0
    rec.save_stats(os.path.join(args.out, f"{name}.json"))
    rec.save_svgs(os.path.join(args.out, f"{name}_frames"))

    first, last = rec.snapshots[0], rec.snapshots[-1]
    flow = rec.grad_flow("preact")
    for label, snap, i in (("first", first, 0), ("last", last, -1)):
        kinds = [f["kind"] for f in snap.flags]
        rows.append([name, snap.step, snap.loss, flow["L1"][i] or 0.0, flow["L3"][i] or 0.0,
                     kinds.count("saturated"), snap.dead_units, snap.inactive_units, label])
    print(f"{name}: {len(rec.snapshots)} frames, recorded in {t_rec:.1f} s, page "
          f"{os.path.getsize(page) / 1e6:.1f} MB written in {t_page:.1f} s -> {page}")
    # When units died: the step at which each new count of dead ReLU units was first reached.
    deaths = [(s.dead_units, s.step) for i, s in enumerate(rec.snapshots)
              if s.dead_units and (i == 0 or s.dead_units != rec.snapshots[i - 1].dead_units)]
    if deaths:
        print("  dead ReLU units: " + ", ".join(f"{d} from step {k}" for d, k in deaths))
    if shots_dir is not None:
        os.makedirs(shots_dir, exist_ok=True)
        for frame in (0, len(rec.snapshots) - 1)[:SHOTS]:
            png = os.path.join(shots_dir, f"record_{name}_step{rec.steps[frame]}.png")
            if screenshot(str(page), frame, png):
                print(f"  screenshot of step {rec.steps[frame]}: {png} "
                      f"({os.path.getsize(png) / 1e3:.0f} KB)")
            else:
                print("  no screenshot: chromium is not installed (make browser)")

table("First and last recorded step of each run",
      ["run", "step", "loss", "mean abs dL/dz, L1", "mean abs dL/dz, L3", "saturated flags",
       "dead ReLU units", "inactive ReLU units", ""], rows, args.out)
