"""tinygraph.pytorch: models across both ways, watched PyTorch training, autograd drawings.

Without PyTorch these tests skip and say how to install it; in CI (CI=true) they fail instead,
since `make test` installs the torch extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph import data, losses, nn, optim, viz
from tinygraph.errors import LoadError, TinygraphError

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("PyTorch is not installed in CI: `make test` installs the torch extra "
                    "(make torch)", pytrace=False)
    pytest.skip('PyTorch bridge tests skipped: PyTorch is not installed (install with '
                '`make torch` or `pip install "tinygraph[torch]"`)', allow_module_level=True)

import tinygraph.pytorch as tp  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ACTS = ["sigmoid", "tanh", "relu", "leaky_relu", "prelu", "maxout", None]
TOL = {np.float64: 1e-12, np.float32: 1e-5}


def _close(a: np.ndarray, b: np.ndarray, dtype: type) -> None:
    """Equal to the dtype's tolerance, relative to the size of the numbers."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL[dtype] * scale)


def _both_ways(model: nn.Module, net: torch.nn.Module, X: np.ndarray, R: np.ndarray,
               dtype: type, keys: str = "torch") -> None:
    """Outputs, parameter gradients and input gradients of sum(out * R) agree; the gradients
    are compared under the torch net's names (keys="torch", net = to_torch(model)) or the
    tinygraph model's (keys="tinygraph", model = from_torch(net))."""
    x = tg.Node(X.astype(dtype), name="x")
    out = model(x)
    (out * R.astype(dtype)).sum().backward()
    xt = torch.tensor(X.astype(dtype), requires_grad=True)
    ot = net(xt)
    (ot * torch.tensor(R.astype(dtype))).sum().backward()
    _close(ot.detach().numpy(), out.data, dtype)
    _close(xt.grad.numpy(), x.grad, dtype)
    tg_grads = {k: p.grad for k, p in model.named_parameters()}
    th_grads = {k: p.grad for k, p in net.named_parameters()}
    if keys == "torch":
        tg_grads = {k: g.numpy() for k, g in tp.state_dict_to_torch(tg_grads, model).items()}
        th_grads = {k: g.numpy() for k, g in th_grads.items()}
    else:
        th_grads = tp.state_dict_from_torch(th_grads, net)
    assert set(tg_grads) == set(th_grads)
    for k, g in tg_grads.items():
        _close(th_grads[k], g, dtype)


architectures = st.tuples(
    st.integers(1, 4),  # nin
    st.lists(st.integers(1, 5), min_size=1, max_size=3),  # layer sizes
    st.sampled_from(ACTS),  # hidden activation
    st.sampled_from(ACTS),  # output activation
    st.sampled_from([np.float64, np.float32]),
    st.integers(1, 6),  # batch
    st.integers(0, 2**31 - 1),  # seed
    st.booleans(),  # shared prelu slope
)


# Each example builds models on both sides: a quarter of the profile's examples (50 in CI).
FEWER = settings(max_examples=max(10, settings().max_examples // 4))


@FEWER
@given(architectures)
def test_to_torch_agrees_in_outputs_and_gradients(arch: tuple) -> None:
    nin, sizes, act, out_act, dtype, batch, seed, shared = arch
    model = nn.TensorMLP(nin, sizes, activation=act, output_activation=out_act, seed=seed,
                         dtype=dtype, shared_slope=shared, k=3)
    rng = np.random.default_rng(seed)
    for la in model.layers:  # non-zero biases and slopes, so that every parameter counts
        la.b.data = rng.normal(size=la.b.shape).astype(dtype)
        if la.activation == "prelu":
            la.a.data = rng.uniform(0.05, 0.5, size=la.a.shape).astype(dtype)
    net = tp.to_torch(model)
    X = rng.normal(size=(batch, nin))
    R = rng.normal(size=(batch, sizes[-1]))
    _both_ways(model, net, X, R, dtype)
    back = tp.from_torch(net)  # and back, exactly
    assert list(back.state_dict()) == list(model.state_dict())
    for k, v in model.state_dict().items():
        assert back.state_dict()[k].dtype == v.dtype
        np.testing.assert_array_equal(back.state_dict()[k], v)


@FEWER
@given(st.integers(1, 4), st.lists(st.integers(1, 5), min_size=1, max_size=3),
       st.lists(st.sampled_from(["Sigmoid", "Tanh", "ReLU", "LeakyReLU", "PReLU", "Identity",
                                 "none"]), min_size=3, max_size=3),
       st.sampled_from([torch.float64, torch.float32]), st.integers(0, 2**31 - 1))
def test_from_torch_agrees_with_a_pytorch_built_net(nin: int, sizes: list[int], acts: list[str],
                                                    dtype: torch.dtype, seed: int) -> None:
    torch.manual_seed(seed)
    mods: list[torch.nn.Module] = []
    dims = [nin, *sizes]
    for i in range(len(sizes)):
        mods.append(torch.nn.Linear(dims[i], dims[i + 1], dtype=dtype))
        a = acts[i]
        if a == "LeakyReLU":
            mods.append(torch.nn.LeakyReLU(0.01))
        elif a == "PReLU":
            mods.append(torch.nn.PReLU(dims[i + 1], dtype=dtype))
        elif a != "none":
            mods.append(getattr(torch.nn, a)())
    net = torch.nn.Sequential(*mods)
    model = tp.from_torch(net)
    npdt = np.float64 if dtype == torch.float64 else np.float32
    rng = np.random.default_rng(seed)
    _both_ways(model, net, rng.normal(size=(4, nin)), rng.normal(size=(4, sizes[-1])), npdt,
               keys="tinygraph")
    again = tp.to_torch(model)  # the same weights, in a Sequential without the Identity
    pairs = list(zip(net.state_dict().values(), again.state_dict().values(), strict=True))
    assert all(torch.equal(v, v2) for v, v2 in pairs)


def test_single_layers_scalar_mlp_and_maxout() -> None:
    rng = np.random.default_rng(0)
    X, R = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    lin = nn.Linear(3, 2, "tanh", seed=1)
    net = tp.to_torch(lin)
    assert isinstance(net, torch.nn.Sequential) and len(net) == 2
    _both_ways(lin, net, X, R, np.float64)
    plain = tp.to_torch(nn.Linear(3, 2, seed=1))
    assert type(plain) is torch.nn.Linear and plain.weight.shape == (2, 3)
    mx = nn.Maxout(3, 2, k=4, seed=2)
    net = tp.to_torch(mx)
    assert type(net) is tp.Maxout and net.weight.shape == (4, 2, 3)
    _both_ways(mx, net, X, R, np.float64)
    # The scalar MLP crosses as its tensor twin: same outputs as the scalar graph.
    mlp = nn.MLP(3, [4, 2], activation="relu", seed=3)
    net = tp.to_torch(mlp)
    with tg.no_grad():
        want = mlp(X).data
    np.testing.assert_allclose(net(torch.tensor(X)).detach().numpy(), want, atol=1e-12)


def test_maxout_ties_share_the_gradient_as_in_tinygraph() -> None:
    mx = nn.Maxout(2, 3, k=2, seed=0)
    W = mx.W.data.copy()
    W[1] = W[0]  # both pieces equal: every maximum is a tie
    mx.W.data = W
    rng = np.random.default_rng(1)
    _both_ways(mx, tp.to_torch(mx), rng.normal(size=(4, 2)), rng.normal(size=(4, 3)), np.float64)


def test_state_dicts_convert_both_ways() -> None:
    model = nn.TensorMLP(3, [4, 2], activation="prelu", seed=0)
    state = tp.state_dict_to_torch(model.state_dict(), model)
    assert list(state) == ["0.weight", "0.bias", "1.weight", "2.weight", "2.bias"]
    assert state["0.weight"].shape == (4, 3)  # (out, in)
    np.testing.assert_array_equal(state["0.weight"].numpy(), model.layers[0].W.data.T)
    net = tp.to_torch(model)
    for k, v in net.state_dict().items():
        assert torch.equal(state[k], v)
    back = tp.state_dict_from_torch(net.state_dict(), net)
    assert back["L1.W"].shape == (3, 4)  # (fan_in, fan_out)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(back[k], v)
    with pytest.raises(LoadError, match=r"missing \['2.bias'\]"):
        tp.state_dict_from_torch({k: v for k, v in state.items() if k != "2.bias"}, net)
    bad = dict(state, **{"0.weight": torch.zeros(3, 4, dtype=torch.float64)})
    with pytest.raises(LoadError, match="0.weight"):
        tp.state_dict_from_torch(bad, net)
    with pytest.raises(TinygraphError, match="L1.W"):
        tp.state_dict_to_torch({**model.state_dict(), "L1.W": np.zeros((4, 3))}, model)


@pytest.mark.parametrize("module, name", [
    (lambda: torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ELU()), "ELU"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Dropout()), "Dropout"),
    (lambda: torch.nn.Sequential(torch.nn.Conv1d(1, 1, 2)), "Conv1d"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.LeakyReLU(0.2)),
     "negative_slope=0.2"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(inplace=True)),
     "inplace=True"),
    (lambda: torch.nn.Sequential(torch.nn.Sigmoid(), torch.nn.Linear(2, 3)), "does not follow"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Sigmoid(), torch.nn.Tanh()),
     "does not follow"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.PReLU(2)), "num_parameters=2"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(4, 1)), "takes 4"),
    (lambda: torch.nn.Bilinear(2, 2, 1), "Bilinear"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(2, 3, dtype=torch.float16)), "float16"),
])
def test_from_torch_refuses_by_name(module, name: str) -> None:
    with pytest.raises(TinygraphError, match=name):
        tp.from_torch(module())


@pytest.mark.parametrize("model, name", [
    (lambda: nn.Neuron(2), "Neuron"),
    (lambda: nn.Sigmoid(), "Sigmoid"),
    (lambda: nn.Layer(2, 3), "Layer"),
])
def test_to_torch_refuses_by_name(model, name: str) -> None:
    with pytest.raises(tp.UnsupportedModuleError, match=name):
        tp.to_torch(model())


def test_watch_refuses_unsupported_leaves_and_bad_arguments() -> None:
    with pytest.raises(tp.UnsupportedModuleError, match="BatchNorm1d"):
        tp.watch(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3)))
    with pytest.raises(TinygraphError, match="torch.nn.Module"):
        tp.watch(nn.TensorMLP(2, [3]))
    with pytest.raises(TinygraphError, match="every"):
        tp.watch(torch.nn.Linear(2, 1), every=0)
    w = tp.watch(torch.nn.Linear(2, 1))
    with pytest.raises(TinygraphError, match="not run forward"):
        w.report(loss=1.0)
    w.close()


# ---------------------------------------------------------------------------------------------
# The demo's story on PyTorch: the same 2-8-8-1 sigmoid net, healthy and saturated
# ---------------------------------------------------------------------------------------------

SIZES = [8, 8, 1]
RUNS = {"healthy": None, "saturated": 50.0}
MOONS = data.make_moons(200, noise=0.15, seed=0)


def _tg_step(model: nn.TensorMLP, X: np.ndarray, y: np.ndarray) -> tg.Node:
    model.zero_grad()
    loss = losses.binary_cross_entropy_with_logits(model(X), y)
    loss.backward()
    return loss


def _torch_loss(net: torch.nn.Module, X: np.ndarray, y: np.ndarray) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(net(torch.tensor(X)).squeeze(1),
                                              torch.tensor(y, dtype=torch.float64))


def _numbers(v: viz.ViewData) -> dict[str, tuple]:
    return {n.header: (n.data, n.grad, [(f.kind, f.units) for f in n.flags]) for n in v.nodes}


def _same_view(a: viz.ViewData, b: viz.ViewData) -> None:
    """Same layer nodes, flags, units and per-layer text; numbers equal to float tolerance.

    At op level the loss is one node in the mirror of a PyTorch step and the few ops of
    tinygraph's loss in a tinygraph graph: the model's part is compared, up to the output.
    """
    def model_part(v: viz.ViewData) -> list[str]:
        return [n.header for n in v.nodes if n.header == "x" or n.header.startswith("L")]

    assert model_part(a) == model_part(b)
    assert [(f.label, f.kind, f.units) for f in a.flags] == [
        (f.label, f.kind, f.units) for f in b.flags]
    assert a.legend.lines == b.legend.lines
    na, nb = _numbers(a), _numbers(b)
    for k in model_part(a):
        for x, y in zip(na[k][:2], nb[k][:2]):
            if x is None or y is None:
                assert x is y is None or k == "x", k
            else:
                assert x == pytest.approx(y, rel=1e-9, abs=1e-12), k
        assert na[k][2] == nb[k][2], k
    ids = {n.id for n in a.nodes if n.header in model_part(a)}
    ea = [e for e in a.edges if e.tail in ids and e.head in ids]
    eb = [e for e in b.edges if e.tail in ids and e.head in ids]
    assert [(e.tail, e.head, e.state) for e in ea] == [(e.tail, e.head, e.state) for e in eb]
    for x, y in zip(ea, eb):
        if x.magnitude is not None:
            assert x.magnitude == pytest.approx(y.magnitude, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("run", list(RUNS))
def test_demo_story_watched_pytorch_net_shows_the_same_saturation(run: str) -> None:
    X, y = MOONS
    model = nn.TensorMLP(2, SIZES, activation="sigmoid", scale=RUNS[run], seed=0)
    net = tp.to_torch(model)
    opt = optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    topt = torch.optim.SGD(net.parameters(), lr=1.0, momentum=0.9)
    for step in range(12):  # the same training on both sides
        loss = _tg_step(model, X, y)
        with tp.watch(net) as w:
            topt.zero_grad()
            tloss = _torch_loss(net, X, y)
            tloss.backward()
        assert tloss.item() == pytest.approx(loss.item(), rel=1e-10)
        if step in (0, 11):
            for level in ("layer", "op"):
                _same_view(w.view(level), viz.build(loss, level))
            assert w.report() == viz.build(loss, "layer").report()
        opt.step()
        topt.step()
    for k, v in tp.state_dict_from_torch(net.state_dict(), net).items():
        np.testing.assert_allclose(v, model.state_dict()[k], rtol=1e-8, atol=1e-10)
    report = w.report()
    if run == "saturated":
        assert "L1: ⚠ saturated" in report and "L2: ⚠ saturated" in report
    else:
        assert "saturated" not in report.split("\n")[0]


def test_neuron_level_draws_pytorchs_gradients_neuron_by_neuron() -> None:
    X, y = MOONS
    model = nn.TensorMLP(2, SIZES, activation="sigmoid", scale=50.0, seed=0)
    net = tp.to_torch(model)
    with tp.watch(net, samples=6) as w:
        _torch_loss(net, X, y).backward()
    v = w.view("neuron")
    assert v.level == "neuron"
    assert {f.label for f in v.flags if f.kind == "saturated"} >= {"L1.n2", "L2.n1"}
    # Each neuron's z on each drawn sample carries PyTorch's dL/dz (a hook on the Linear's
    # output), though the scalar graph computed it from the gradient at the output alone.
    dz = w.calls[0].grad.numpy()[:6]  # (6, 8): L1's pre-activations
    zs = [n for n in tg.walk(w._neuron_root(None)) if n.name == "z" and n.scope.startswith("L1.")]
    got = np.zeros((6, 8))
    seen = np.zeros(8, int)
    for n in sorted(zs, key=lambda n: n._ctime):  # samples are built one after the other
        j = int(n.scope.split(".n")[1])
        got[seen[j], j] = n.grad
        seen[j] += 1
    np.testing.assert_allclose(got, dz, rtol=1e-9, atol=1e-300)


def test_watch_leaves_the_model_as_it_was() -> None:
    torch.manual_seed(0)
    net = tp.to_torch(nn.TensorMLP(3, [6, 5, 2], activation="relu", seed=1))
    X = torch.randn(7, 3, dtype=torch.float64)

    def run() -> tuple:
        net.zero_grad()
        out = net(X)
        (out ** 2).sum().backward()
        return out.detach().clone(), [p.grad.clone() for p in net.parameters()]

    before = run()
    with tp.watch(net) as w:
        during = run()
        assert len(net[0]._forward_hooks) == 1
    after = run()
    for a, b in ((before, during), (before, after)):
        assert torch.equal(a[0], b[0])
        assert all(torch.equal(x, y) for x, y in zip(a[1], b[1]))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert w.closed
    assert "no flags" in w.report() or "L" in w.report()


def test_dead_relu_and_nan_are_flagged_as_in_tinygraph() -> None:
    model = nn.TensorMLP(2, [4, 1], activation="relu", seed=0)
    b = model.layers[0].b.data.copy()
    b[1] = -100.0  # unit 1 never fires
    model.layers[0].b.data = b
    X = np.random.default_rng(0).normal(size=(16, 2))
    loss = (model(X) ** 2).mean()
    loss.backward()
    net = tp.to_torch(model)
    with tp.watch(net) as w:
        (net(torch.tensor(X)) ** 2).mean().backward()
    _same_view(w.view("layer"), viz.build(loss, "layer"))
    assert any(f.kind == "dead" for f in w.view("layer").flags)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with tp.watch(net) as w:
        (net(torch.tensor(Xn)) ** 2).mean().backward()
    assert any(f.kind == "nonfinite" for f in w.view("op").flags)


def test_custom_module_is_watched_with_its_attribute_names() -> None:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = torch.nn.Linear(2, 4, dtype=torch.float64)
            self.act = torch.nn.Tanh()
            self.fc2 = torch.nn.Linear(4, 1, dtype=torch.float64)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(self.act(self.fc1(x)))

    net = Net()
    with tp.watch(net) as w:
        (net(torch.randn(5, 2, dtype=torch.float64)) ** 2).sum().backward()
    v = w.view("layer")
    assert [n.header for n in v.nodes] == ["x", "fc1", "fc2", "loss"]
    g = v.node("fc1").grad  # mean |dL/dz| of fc1, as PyTorch computed it
    assert g is not None and g > 0


def test_recorder_over_pytorch_steps_matches_tinygraphs() -> None:
    X, y = MOONS
    model = nn.TensorMLP(2, SIZES, activation="sigmoid", scale=50.0, seed=0)
    net = tp.to_torch(model)
    rec = viz.Recorder(model, lambda: losses.binary_cross_entropy_with_logits(model(X), y),
                       every=3, level="layer")
    opt = optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    topt = torch.optim.SGD(net.parameters(), lr=1.0, momentum=0.9)
    w = tp.watch(net, every=3)
    for _ in range(7):
        rec.step()
        opt.step()
        topt.zero_grad()
        loss = _torch_loss(net, X, y)
        loss.backward()
        w.step(loss)
        topt.step()
    w.close()
    assert w.recorder.steps == rec.steps == [0, 3, 6]
    for L, flow in rec.grad_flow().items():
        np.testing.assert_allclose(w.recorder.grad_flow()[L], flow, rtol=1e-8)
    assert [s.saturated for s in w.recorder.snapshots] == [s.saturated for s in rec.snapshots]
    assert [[(f["node"], f["kind"]) for f in s.flags] for s in w.recorder.snapshots] == [
        [(f["node"], f["kind"]) for f in s.flags] for s in rec.snapshots]


def test_recorder_page_is_written(tmp_path: Path) -> None:
    X, y = MOONS
    net = tp.to_torch(nn.TensorMLP(2, SIZES, activation="sigmoid", seed=0))
    topt = torch.optim.SGD(net.parameters(), lr=1.0)
    w = tp.watch(net, every=2)
    for _ in range(4):
        topt.zero_grad()
        loss = _torch_loss(net, X, y)
        loss.backward()
        w.step(loss)
        topt.step()
    w.close()
    page = w.html(tmp_path / "run.html").read_text()
    assert "<svg" in page and "L1" in page


def test_draw_autograd_puts_pytorchs_gradients_on_the_edges() -> None:
    net = tp.to_torch(nn.TensorMLP(2, [3, 1], activation="sigmoid", seed=0))
    X = torch.randn(4, 2, dtype=torch.float64)
    with tp.watch(net) as w:
        loss = (net(X) ** 2).mean()
        loss.backward()
    v = w.draw_autograd().data
    heads = {n.id: n.header for n in v.nodes}
    assert {"0.weight", "0.bias", "2.weight", "2.bias", "loss"} <= set(heads.values())
    assert any(n.sub == "sigmoid" or n.header == "sigmoid" for n in v.nodes)
    # The edge out of a parameter carries exactly its gradient (mean |.| of it).
    by_header = {n.header: n.id for n in v.nodes}
    for name, p in net.named_parameters():
        e = [e for e in v.edges if e.tail == by_header[name]]
        assert len(e) == 1
        assert e[0].magnitude == pytest.approx(float(p.grad.abs().mean()), rel=1e-12)
    # Structure only, without a watch: no gradients.
    bare = tp.draw_autograd((net(X) ** 2).mean()).data
    assert not bare.backward_done and {e.state for e in bare.edges} == {"none"}
    assert not bare.flags  # no values, no made-up flags
    sig = next(n for n in bare.nodes if (n.op or "").startswith("sigmoid"))
    assert sig.op == "sigmoid (values not kept)"
    with torch.no_grad():
        want = float(torch.sigmoid(X @ net[0].weight.T + net[0].bias).mean())
    assert sig.data == pytest.approx(want, rel=1e-12)  # its saved output
    with pytest.raises(TinygraphError, match="grad_fn"):
        tp.draw_autograd(torch.zeros(2))


def test_pictures_render(tmp_path: Path) -> None:
    """The watch's diagrams go through tinygraph's renderer to real files."""
    pytest.importorskip("graphviz")
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    X, y = MOONS
    net = tp.to_torch(nn.TensorMLP(2, SIZES, activation="sigmoid", scale=50.0, seed=0))
    with tp.watch(net) as w:
        _torch_loss(net, X, y).backward()
    for level in ("layer", "neuron"):
        p = w.draw(level).save(tmp_path / f"{level}.svg")
        assert "saturated" in p.read_text()
    assert w.draw_autograd().save(tmp_path / "ops.png").stat().st_size > 1000
    assert "<svg" in w.draw("layer").html(tmp_path / "one.html").read_text()


def test_ddp_example_runs_briefly(tmp_path: Path) -> None:
    """Two CPU processes (gloo on 127.0.0.1), rank 0 watched: diagrams and the page appear."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "pytorch_ddp.py"), "--fast",
                        "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                       timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    for f in ("ddp_layer.svg", "ddp_training.html", "ddp_autograd.svg"):
        assert (tmp_path / f).stat().st_size > 1000, f
    assert "watching costs" in r.stdout


def test_viz_watch_is_the_readme_three_lines_and_cleans_up_after_an_error() -> None:
    X, y = MOONS
    net = tp.to_torch(nn.TensorMLP(2, SIZES, activation="sigmoid", scale=50.0, seed=0))
    with viz.watch(net) as w:
        F.binary_cross_entropy_with_logits(net(torch.tensor(X)).squeeze(1),
                                           torch.tensor(y, dtype=torch.float64)).backward()
    assert isinstance(w, tp.Watch)
    assert "L1: ⚠ saturated" in w.draw(level="layer").report()
    with pytest.raises(RuntimeError, match="in the middle"):
        with viz.watch(net):
            net(torch.tensor(X))
            raise RuntimeError("an error in the middle of a step")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    # No torch function mode is left behind either: a tensor op runs plainly.
    assert not torch.overrides._is_torch_function_mode_enabled()


def test_bare_linear_and_float32_are_watched() -> None:
    lin = torch.nn.Linear(3, 2)  # float32
    with tp.watch(lin) as w:
        (lin(torch.randn(5, 3)) ** 2).sum().backward()
    v = w.view("op")
    assert v.node("L1.z").grad == pytest.approx(
        float(w.calls[0].grad.abs().mean()), rel=1e-6)
    assert v.node("L1.W").grad == pytest.approx(float(lin.weight.grad.abs().mean()), rel=1e-6)


def test_a_tinygraph_sequential_crosses() -> None:
    seq = nn.Sequential
    model = seq(nn.Linear(2, 4, seed=0), nn.Tanh(), nn.Linear(4, 3, "relu", seed=1),
                nn.Linear(3, 1, seed=2), nn.Sigmoid())
    net = tp.to_torch(model)
    assert [type(m).__name__ for m in net] == ["Linear", "Tanh", "Linear", "ReLU", "Linear",
                                               "Sigmoid"]
    rng = np.random.default_rng(0)
    _both_ways(model, net, rng.normal(size=(5, 2)), rng.normal(size=(5, 1)), np.float64)
    with pytest.raises(tp.UnsupportedModuleError, match="does not follow"):
        tp.to_torch(seq(nn.Sigmoid(), nn.Linear(2, 1)))
    with pytest.raises(tp.UnsupportedModuleError, match="slope"):
        tp.to_torch(seq(nn.Linear(2, 1), nn.LeakyReLU(0.2)))


@pytest.mark.parametrize("f, op", [(torch.tanh, "tanh"), (F.relu, "relu"),
                                   (torch.sigmoid, "sigmoid"),
                                   (lambda z: F.leaky_relu(z, 0.01), "leaky_relu")])
def test_activations_applied_as_functions_in_forward_are_seen(f, op: str) -> None:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = torch.nn.Linear(3, 5, dtype=torch.float64)
            self.fc2 = torch.nn.Linear(5, 2, dtype=torch.float64)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = f(self.fc1(x))
            h.retain_grad()
            self.h = h
            return self.fc2(h)

    torch.manual_seed(0)
    net = Net()
    with tp.watch(net) as w:
        (net(torch.randn(6, 3, dtype=torch.float64)) ** 2).sum().backward()
    v = w.view("op")
    assert not v.banners
    act = v.node("fc1.act")
    assert act.op == op
    assert act.data == pytest.approx(float(net.h.detach().mean()), rel=1e-12)
    assert act.grad == pytest.approx(float(net.h.grad.abs().mean()), rel=1e-12)


def test_dropout_is_drawn_with_the_mask_pytorch_drew() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 8, dtype=torch.float64), torch.nn.Sigmoid(),
                              torch.nn.Dropout(0.5), torch.nn.Linear(8, 1, dtype=torch.float64))
    kept = {}

    def keep(m: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
        kept["act"] = out

    net[1].register_forward_hook(keep)
    with tp.watch(net) as w:
        out = net(torch.randn(16, 2, dtype=torch.float64))
        kept["act"].retain_grad()
        (out ** 2).mean().backward()
    v = w.view("op")
    assert not v.banners
    drop, act = v.node("L1.dropout"), v.node("L1.act")
    edge = next(e for e in v.edges if e.tail == act.id and e.head == drop.id)
    # The gradient sent back through the mask is PyTorch's gradient at the sigmoid's output.
    assert edge.magnitude == pytest.approx(float(kept["act"].grad.abs().mean()), rel=1e-12)
    net.eval()  # no mask: nothing between the layers
    with tp.watch(net) as w:
        (net(torch.randn(16, 2, dtype=torch.float64)) ** 2).mean().backward()
    assert "L1.dropout" not in [n.header for n in w.view("op").nodes]
    with pytest.raises(tp.UnsupportedModuleError, match="Dropout"):
        tp.from_torch(net)
