"""A PyTorch-style training script runs on tinygraph with only the names changed.

torch -> tinygraph, torch.nn -> tinygraph.nn, torch.optim -> tinygraph.optim, F.cross_entropy ->
losses.softmax_cross_entropy, torch.save/torch.load -> tg.save/tg.load. The modules subclass
nn.Module, define forward, use Sequential and ModuleList; the loop is PyTorch's. Gradients of the
very models being trained are compared with central differences in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import data, losses, nn, optim


@pytest.fixture(autouse=True)
def _keep_global_random_state():
    # The scripts seed the global state as PyTorch scripts do; other tests must not notice.
    with tg.random.fork_rng():
        yield


class Net(nn.Module):
    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, hidden)
        self.body = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        self.heads = nn.ModuleList([nn.Linear(hidden, 2), nn.Linear(hidden, 2)])

    def forward(self, x):
        x = nn.relu(self.fc1(x))
        x = self.body(x)
        return self.heads[0](x) + self.heads[1](x)


def _train(model: nn.Module, X: np.ndarray, y: np.ndarray, epochs: int = 60) -> list[float]:
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    history = []
    for _ in range(epochs):
        opt.zero_grad()
        out = model(X)
        loss = losses.softmax_cross_entropy(out, y)
        loss.backward()
        opt.step()
        history.append(loss.item())
    return history


def _central_differences(model: nn.Module, loss_of, eps: float = 1e-6) -> dict[str, np.ndarray]:
    """d loss / d p for every parameter entry, by (L(p + h) - L(p - h)) / 2h in float64."""
    out = {}
    for name, p in model.named_parameters():
        base = np.array(p.data, dtype=np.float64)
        g = np.zeros_like(base)
        for i in np.ndindex(base.shape):
            h = eps * max(1.0, abs(base[i]))
            for sign in (1, -1):
                moved = base.copy()
                moved[i] += sign * h
                p.data = moved if base.ndim else float(moved)
                g[i] += sign * loss_of().item() / (2 * h)
        p.data = base if base.ndim else float(base)
        out[name] = g
    return out


def test_pytorch_style_script_trains_and_round_trips(tmp_path):
    tg.manual_seed(0)
    X, y = data.make_moons(100, noise=0.1)
    model = Net()
    assert [n for n, _ in model.named_parameters()] == [
        "fc1.W", "fc1.b", "body.0.W", "body.0.b", "heads.0.W", "heads.0.b", "heads.1.W",
        "heads.1.b"]
    history = _train(model, X, y)
    assert history[-1] < 0.5 * history[0]
    model.eval()
    assert not any(m.training for m in model.modules())
    with tg.no_grad():
        scores = model(X)
    assert losses.accuracy(scores, y) > 0.9

    # torch.save(model.state_dict(), path); model2.load_state_dict(torch.load(path))
    path = tmp_path / "net.npz"
    tg.save(model, path, metadata={"epochs": 60})
    fresh = Net()
    assert not np.allclose(fresh(X).data, scores.data)
    assert tg.load(fresh, path) == {"epochs": 60}
    assert np.array_equal(fresh(X).data, scores.data)
    state, meta = tg.io.read(path, model)
    other = Net()
    assert other.load_state_dict(state) == ([], [])
    assert np.array_equal(other(X).data, scores.data)
    # The state dict is a plain dict of arrays: numpy's own files work too.
    np.savez(tmp_path / "plain.npz", **model.state_dict())
    third = Net()
    third.load_state_dict(dict(np.load(tmp_path / "plain.npz")))
    assert np.array_equal(third(X).data, scores.data)


def test_sequential_model_trains_like_pytorch():
    tg.manual_seed(1)
    X, y = data.make_moons(80, noise=0.1)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 2))
    assert len(model) == 5 and isinstance(model[1], nn.ReLU)
    assert [n for n, _ in model.named_parameters()] == ["0.W", "0.b", "2.W", "2.b", "4.W", "4.b"]
    history = _train(model, X, y, epochs=80)
    assert history[-1] < 0.5 * history[0]
    assert losses.accuracy(model.eval()(X), y) > 0.9


@pytest.mark.parametrize("make", [Net, lambda: nn.Sequential(nn.Linear(2, 5), nn.Tanh(),
                                                             nn.Linear(5, 3), nn.Sigmoid(),
                                                             nn.Linear(3, 2))])
def test_gradients_of_the_model_match_central_differences(make):
    tg.manual_seed(2)
    X, y = data.make_moons(12, noise=0.2)
    model = make() if make is not Net else Net(hidden=4)

    def loss_of():
        return losses.softmax_cross_entropy(model(X), y)

    model.zero_grad()
    loss_of().backward()
    numerical = _central_differences(model, loss_of)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, numerical[name], rtol=1e-5, atol=1e-7, err_msg=name)


def test_gradcheck_through_a_user_module_with_its_parameters_as_inputs():
    """tinygraph.testing.gradcheck on forward, with the module's parameters swapped for the
    checker's float64 nodes (the module reads them from its attributes, as PyTorch's do)."""
    from tinygraph.testing import gradcheck

    tg.manual_seed(3)
    net = Net(hidden=3)
    X = np.random.default_rng(0).normal(size=(4, 2))
    names = [n for n, _ in net.named_parameters()]

    def f(*ps):
        for name, p in zip(names, ps, strict=True):
            *path, attr = name.split(".")
            owner = net
            for part in path:
                owner = owner[int(part)] if part.isdigit() else getattr(owner, part)
            setattr(owner, attr, p)
        return tg.sum(tg.tanh(net(X)))

    assert gradcheck(f, *[p.data for p in net.parameters()])


def test_pytorch_shaped_weights_are_refused_naming_both_shapes():
    # PyTorch's Linear keeps weight (out, in); tinygraph keeps the notes' W (in, out).
    model = nn.Sequential(nn.Linear(3, 2))
    state = {"0.W": np.ones((2, 3)), "0.b": np.zeros(2)}
    before = model.state_dict()
    with pytest.raises(tg.LoadError, match=r"'0\.W' has shape \(2, 3\), the model's is \(3, 2\)"):
        model.load_state_dict(state)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    state["0.W"] = state["0.W"].T.copy()
    model.load_state_dict(state)
    assert np.array_equal(model[0].W.data, np.ones((3, 2)))


def test_manual_seed_makes_the_whole_script_reproducible():
    def run(seed):
        tg.manual_seed(seed)
        X, y = data.make_moons(40, noise=0.1)
        model = Net(hidden=4)
        _train(model, X, y, epochs=3)
        return X, model.state_dict()

    X0, s0 = run(0)
    X1, s1 = run(0)
    X2, s2 = run(1)
    assert np.array_equal(X0, X1) and all(np.array_equal(s0[k], s1[k]) for k in s0)
    assert not np.array_equal(X0, X2) and not np.array_equal(s0["fc1.W"], s2["fc1.W"])


def test_diagnose_reads_a_pytorch_style_model_by_path():
    from tinygraph import diagnostics

    tg.manual_seed(4)
    X, y = data.make_moons(30)
    report = diagnostics.diagnose(Net(hidden=5), X, y, loss=losses.softmax_cross_entropy)
    rows = {d.layer: d.units for d in report.layers}
    assert rows["fc1"] == 5 and rows["body.0"] == 5 and rows["heads.0"] == 2


def test_in_place_update_of_a_parameter_under_no_grad_is_the_manual_step() -> None:
    """PyTorch's `with torch.no_grad(): p -= lr * p.grad` updated nothing: Python rebound the
    loop variable to a new node. Under no_grad it now updates the parameter (dtype kept);
    elsewhere `x += y` still makes a new node, as micrograd's `out += w * x` needs."""
    model = nn.TensorMLP(2, [3, 1], "tanh", seed=0, dtype=np.float32)
    X = np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2)
    before = [p.data.copy() for p in model.parameters()]
    tg.sum(model(X) ** 2).backward()
    with tg.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    for p, b in zip(model.parameters(), before, strict=True):
        np.testing.assert_allclose(p.data, b - np.float32(0.1) * p.grad, rtol=1e-6)
        assert p.data.dtype == np.float32 and p.op is None
    w, x = tg.Node(2.0), 3.0
    out = tg.Node(0.0)
    out += w * x
    out.backward()
    assert out.op == "add" and w.grad == 3.0


def test_backward_takes_retain_graph_as_pytorch_spells_it() -> None:
    x = tg.Node(np.array([1.0, 2.0]))
    y = tg.sum(x * x)
    y.backward(retain_graph=True)
    y.backward()  # the graph was kept either way: the second pass adds again
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])
    f = tg.jit(lambda v: tg.sum(v * v))
    f(x)
    x.grad = None
    f(x).backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_filling_a_parameters_data_names_the_node() -> None:
    W = tg.Node(np.ones(3), name="W")
    with pytest.raises(tg.ReadOnlyError, match=r"fill\(\).*'W'"):
        W.data.fill(0.0)
    assert np.array_equal(W.data, np.ones(3))
