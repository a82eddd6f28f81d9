"""A small MLP trained with PyTorch's DistributedDataParallel on two CPU processes, rank 0
watched by tinygraph: its gradient-flow diagrams, autograd graph and training page.

The example starts both processes itself (torch.multiprocessing, gloo backend, rendezvous on
127.0.0.1 only). Each rank trains on its half of two-moons; DDP averages the gradients. Rank 0
measures what watching costs per step: the hooks alone, and a recorded frame.

    python examples/pytorch_ddp.py --out out/pytorch_ddp [--fast]

Needs the torch extra: pip install "tinygraph[torch]".
"""

import gc
import os
import socket
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from _common import parse_args, table

import tinygraph as tg
import tinygraph.pytorch as tp

# -----------------------------------------------------------------------------
WORLD = 2  # processes
SIZES = [16, 16, 1]  # 2 -> 16 -> 16 -> 1, tanh hidden layers, one logit
STEPS = 300
EVERY = 15  # a frame of the training page every 15 steps
LR, MOMENTUM = 0.1, 0.9
TIMED = 50  # steps timed for each way of running
# -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, port: int, steps: int, every: int, timed: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    torch.set_num_threads(1)  # two processes on a small machine
    X, y = tg.data.make_moons(400, noise=0.15, seed=0)
    Xr = torch.tensor(X[rank::WORLD])  # this rank's half
    yr = torch.tensor(y[rank::WORLD], dtype=torch.float64)
    net = tp.to_torch(tg.nn.TensorMLP(2, SIZES, activation="tanh", seed=0))  # same on both
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.SGD(ddp.parameters(), lr=LR, momentum=MOMENTUM)

    def step(model, w=None, record=False):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(Xr).squeeze(1), yr)
        loss.backward()
        if record:
            w.step(loss)
        opt.step()
        return loss

    if rank != 0:  # the other rank trains in step with rank 0 (every backward all-reduces)
        for _ in range(steps):
            step(ddp)
        dist.barrier()  # then waits while rank 0 draws and times, and both leave together
        dist.destroy_process_group()
        return

    w = tp.watch(ddp, every=every)
    for i in range(steps):
        if i == steps - 1:  # the last step: hook its autograd graph for the op-level drawing
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(ddp(Xr).squeeze(1), yr)
            w.before_backward(loss)
            loss.backward()
            w.step(loss)
            opt.step()
        else:
            step(ddp, w, record=True)
    w.close()
    os.makedirs(out, exist_ok=True)
    files = [w.draw("layer").save(os.path.join(out, f"ddp_layer.{e}")) for e in ("svg", "png")]
    files += [w.draw("neuron").save(os.path.join(out, "ddp_neuron.svg"))]
    files += [w.draw_autograd().save(os.path.join(out, f"ddp_autograd.{e}"))
              for e in ("svg", "png")]
    files += [w.html(os.path.join(out, "ddp_training.html"),
                     title="tinygraph watching rank 0 of a 2-process DDP run")]
    with torch.no_grad():
        acc = float(((net(Xr).squeeze(1) > 0).double() == yr).double().mean())
    table("DDP on 2 CPU processes (gloo, 127.0.0.1): rank 0 watched",
          ["steps", "loss at the last frame", "rank-0 accuracy", "frames"],
          [[steps, f"{w.recorder.snapshots[-1].loss:.4f}", f"{acc:.1%}",
            len(w.recorder.snapshots)]])
    # What watching costs: rank 0's own model (no all-reduce, so the other process's pace
    # does not enter), training steps plain, with the hooks, and recording a frame each step;
    # in blocks of 5 steps taken in turn, so that the machine's load falls on all alike, each
    # block starting from a collected heap so that none pays for another's garbage.
    times: dict[str, list[float]] = {"plain": [], "hooks": [], "frame": []}
    for i in range(max(1, timed // 5) + 1):
        for mode in times:
            wt = None if mode == "plain" else tp.watch(net)
            gc.collect()
            t0 = time.perf_counter()
            for _ in range(5):
                step(net, wt, record=mode == "frame")
            t1 = time.perf_counter()
            if wt is not None:
                wt.close()
            if i:  # the first round warms up
                times[mode].append((t1 - t0) / 5)
    plain, hooked, framed = (1000 * float(np.median(times[k])) for k in times)
    table(f"What watching costs per training step (rank 0's model, {len(Xr)} samples; median "
          f"of {len(times['plain'])} blocks of 5 steps each)",
          ["run", "ms / step", "vs plain"],
          [["plain step", f"{plain:.2f}", "1.00×"],
           ["watched: hooks only", f"{hooked:.2f}", f"{hooked / plain:.2f}×"],
           ["watched: hooks + a recorded frame", f"{framed:.2f}", f"{framed / plain:.2f}×"]])
    print(f"watching costs {hooked - plain:+.2f} ms per step for the hooks and "
          f"{framed - hooked:.2f} ms more for each recorded frame (one every {every} steps)\n")
    print(w.report())
    print("\nWrote: " + ", ".join(os.path.basename(str(f)) for f in files))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    args = parse_args("pytorch_ddp", __doc__)
    steps, every, timed = (STEPS, EVERY, TIMED) if not args.fast else (12, 4, 5)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback only
    np.random.seed(0)
    mp.spawn(worker, args=(free_port(), steps, every, timed, args.out), nprocs=WORLD, join=True)
