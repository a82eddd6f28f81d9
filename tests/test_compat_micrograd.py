"""micrograd programs run on tinygraph unchanged but for the import lines and Value -> tg.Node.

The README example and the demo notebook's training loop of karpathy/micrograd, with a
micrograd-style MLP written from tg.Node the way a user ports micrograd's nn.py. Gradients are
checked against central finite differences in float64, and against micrograd itself when it is
installed (the bench extra).
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import tinygraph as tg

# --- the README example -------------------------------------------------------------------------


def test_readme_example_prints_micrograds_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    a = tg.Node(-4.0)
    b = tg.Node(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    print(f'{g.data:.4f}') # prints 24.7041, the outcome of this forward pass  # noqa: E261, Q000
    g.backward()
    print(f'{a.grad:.4f}') # prints 138.8338, i.e. the numerical value of dg/da  # noqa: E261, Q000
    print(f'{b.grad:.4f}') # prints 645.5773, i.e. the numerical value of dg/db  # noqa: E261, Q000

    assert capsys.readouterr().out.split() == ["24.7041", "138.8338", "645.5773"]
    h = 1e-6
    fd_a = (_readme_g(-4.0 + h, 2.0) - _readme_g(-4.0 - h, 2.0)) / (2 * h)
    fd_b = (_readme_g(-4.0, 2.0 + h) - _readme_g(-4.0, 2.0 - h)) / (2 * h)
    assert math.isclose(a.grad, fd_a, rel_tol=1e-6) and math.isclose(b.grad, fd_b, rel_tol=1e-6)
    assert f"{g:.4f}" == "24.7041"  # a node formats like its value


def _readme_g(a: float, b: float) -> float:
    """The README's expression on plain floats (relu written out): the finite-difference side."""
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + max(b + a, 0.0)
    d += 3 * d + max(b - a, 0.0)
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return g


def test_readme_example_matches_micrograd() -> None:
    engine = pytest.importorskip("micrograd.engine")
    grads = []
    for Value in (engine.Value, tg.Node):  # noqa: N806 - the README's name
        a, b = Value(-4.0), Value(2.0)
        c = a + b
        d = a * b + b**3
        c += c + 1
        c += 1 + c + (-a)
        d += d * 2 + (b + a).relu()
        d += 3 * d + (b - a).relu()
        e = c - d
        f = e**2
        g = f / 2.0
        g += 10.0 / f
        g.backward()
        grads.append((g.data, a.grad, b.grad))
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12)


# --- a micrograd-style MLP, ported to tg.Node ---------------------------------------------------


class Module:
    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0

    def parameters(self) -> list[tg.Node]:
        return []


class Neuron(Module):
    def __init__(self, nin: int, nonlin: bool = True) -> None:
        self.w = [tg.Node(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = tg.Node(0)
        self.nonlin = nonlin

    def __call__(self, x: list) -> tg.Node:
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[tg.Node]:
        return self.w + [self.b]


class Layer(Module):
    def __init__(self, nin: int, nout: int, **kwargs: bool) -> None:
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x: list) -> tg.Node | list[tg.Node]:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[tg.Node]:
        return [p for n in self.neurons for p in n.parameters()]


class MLP(Module):
    def __init__(self, nin: int, nouts: list[int]) -> None:
        sz = [nin] + nouts
        self.layers = [Layer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1)
                       for i in range(len(nouts))]

    def __call__(self, x: list) -> tg.Node:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[tg.Node]:
        return [p for layer in self.layers for p in layer.parameters()]


# --- the demo notebook ----------------------------------------------------------------------------


def _demo_setup(mlp: type, Value: type) -> tuple:  # noqa: N803 - the notebook's name
    """The notebook's cells up to its loss function, with the given MLP class and Value type."""
    from sklearn.datasets import make_moons

    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)  # noqa: N806

    y = y*2 - 1 # make y be -1 or 1  # noqa: E226, E261
    model = mlp(2, [16, 16, 1]) # 2-layer neural network  # noqa: E261

    # loss function
    def loss(batch_size: int | None = None) -> tuple:
        # inline DataLoader :)
        if batch_size is None:
            Xb, yb = X, y  # noqa: N806
        else:
            ri = np.random.permutation(X.shape[0])[:batch_size]
            Xb, yb = X[ri], y[ri]  # noqa: N806
        inputs = [list(map(Value, xrow)) for xrow in Xb]

        # forward the model to get scores
        scores = list(map(model, inputs))

        # svm "max-margin" loss
        losses = [(1 + -yi*scorei).relu() for yi, scorei in zip(yb, scores)]  # noqa: E226
        data_loss = sum(losses) * (1.0 / len(losses))
        # L2 regularization
        alpha = 1e-4
        reg_loss = alpha * sum((p*p for p in model.parameters()))  # noqa: E226, UP034
        total_loss = data_loss + reg_loss

        # also get accuracy
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(yb, scores)]
        return total_loss, sum(accuracy) / len(accuracy)

    return model, loss, y


def test_demo_labels_are_numpy_ints() -> None:
    _, _, y = _demo_setup(MLP, tg.Node)
    assert y.dtype.kind == "i"  # what micrograd's demo feeds into -yi * scorei


def test_demo_training_loop_reaches_full_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    model, loss, _ = _demo_setup(MLP, tg.Node)
    total_loss, acc = loss()
    print(total_loss, acc)

    # optimization
    for k in range(100):

        # forward
        total_loss, acc = loss()

        # backward
        model.zero_grad()
        total_loss.backward()

        # update (sgd)
        learning_rate = 1.0 - 0.9*k/100  # noqa: E226
        for p in model.parameters():
            p.data -= learning_rate * p.grad

        if k % 1 == 0:
            print(f"step {k} loss {total_loss.data}, accuracy {acc*100}%")  # noqa: E226

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 101 and lines[-1].startswith("step 99 loss ")
    first = float(lines[1].split()[3].rstrip(","))
    last = float(lines[-1].split()[3].rstrip(","))
    assert last < first / 10  # micrograd's own run: 0.896 -> 0.011
    assert acc == 1.0  # the notebook's run ends at 100% accuracy
    # the graph built before the last update is stale, exactly as after p.data = new
    with pytest.raises(tg.GraphError, match="stale"):
        total_loss.backward()


def test_demo_gradients_match_finite_differences() -> None:
    model, loss, _ = _demo_setup(MLP, tg.Node)
    total_loss, _ = loss()
    model.zero_grad()
    total_loss.backward()
    params = model.parameters()
    h = 1e-6
    for i in (0, 1, 17, 40, 100, 200, len(params) - 2, len(params) - 1):
        p = params[i]
        x0 = p.data
        p.data = x0 + h
        up = loss()[0].data
        p.data = x0 - h
        down = loss()[0].data
        p.data = x0
        assert math.isclose(p.grad, (up - down) / (2 * h), rel_tol=1e-5, abs_tol=1e-8), i


def test_demo_steps_match_micrograd() -> None:
    mg = pytest.importorskip("micrograd")
    from micrograd.engine import Value
    from micrograd.nn import MLP as MicrogradMLP

    runs = []
    for mlp, value in ((MicrogradMLP, Value), (MLP, tg.Node)):
        model, loss, _ = _demo_setup(mlp, value)
        trace = []
        for k in range(2):
            total_loss, acc = loss()
            model.zero_grad()
            total_loss.backward()
            trace.append((total_loss.data, acc, [p.grad for p in model.parameters()]))
            for p in model.parameters():
                p.data -= (1.0 - 0.9 * k / 100) * p.grad
        runs.append(trace)
    assert mg is not None
    for (l_mg, a_mg, g_mg), (l_tg, a_tg, g_tg) in zip(*runs, strict=True):
        assert math.isclose(l_tg, l_mg, rel_tol=1e-12) and a_tg == a_mg
        np.testing.assert_allclose(g_tg, g_mg, rtol=1e-9, atol=1e-12)
