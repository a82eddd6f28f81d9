"""tinygraph.nn: parameter counts, names and scopes, scalar/tensor agreement, activations, init."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph import nn
from tinygraph.testing import gradcheck

ACTS = ["relu", "tanh", "sigmoid", "leaky_relu", "prelu", "maxout", None]


# --- parameter counts (the notes' figures) ----------------------------------------------------


@pytest.mark.parametrize("cls", [nn.MLP, nn.TensorMLP])
def test_parameter_counts_from_the_notes(cls):
    assert cls(3, [4, 2]).num_parameters() == 26
    assert cls(3, [4, 4, 1]).num_parameters() == 41
    assert len(cls(3, [4, 4, 1]).parameters()) == (41 if cls is nn.MLP else 6)


@pytest.mark.parametrize("level", ["scalar", "tensor"])
def test_maxout_doubles_and_prelu_adds_parameters(level):
    make = nn.Layer if level == "scalar" else nn.Linear
    base = make(3, 4, "relu").num_parameters()
    assert base == 16
    assert make(3, 4, "maxout").num_parameters() == 2 * base
    assert make(3, 4, "maxout", k=3).num_parameters() == 3 * base
    assert make(3, 4, "prelu").num_parameters() == base + 4
    assert make(3, 4, "prelu", shared_slope=True).num_parameters() == base + 1


# --- names, scopes, module API -----------------------------------------------------------------


def test_scalar_names_and_scopes():
    m = nn.MLP(3, [4, 2], seed=0)
    names = [n for n, _ in m.named_parameters()]
    assert names[:4] == ["L1.n0.w0", "L1.n0.w1", "L1.n0.w2", "L1.n0.b"]
    assert names[-1] == "L2.n1.b" and len(names) == 26
    for name, p in m.named_parameters():
        assert p.label == name  # the node's own scope-qualified label agrees with the dotted name
    out = m([0.5, -1.0, 2.0])
    assert isinstance(out, list) and len(out) == 2
    assert out[0].label == "L2.n0.z" and out[0].op == "add"  # output layer: no activation
    act = [n for n in tg.walk(out[0]) if n.label == "L1.n2.act"]
    assert len(act) == 1 and act[0].op == "relu"
    assert act[0].parents[0].label == "L1.n2.z"


def test_tensor_names_and_scopes():
    m = nn.TensorMLP(3, [4, 2], activation="tanh", seed=0)
    assert [n for n, _ in m.named_parameters()] == ["L1.W", "L1.b", "L2.W", "L2.b"]
    assert m.layers[0].W.shape == (3, 4) and m.layers[0].b.shape == (4,)
    for name, p in m.named_parameters():
        assert p.label == name
    out = m(np.ones((5, 3)))
    assert out.shape == (5, 2) and out.label == "L2.z"
    act = [n for n in tg.walk(out) if n.label == "L1.act"]
    assert len(act) == 1 and act[0].op == "tanh" and act[0].parents[0].label == "L1.z"


def test_single_output_scalar_mlp_returns_a_node_and_batches_stack():
    m = nn.MLP(2, [3, 1], seed=0)
    assert isinstance(m([1.0, 2.0]), tg.Node) and m([1.0, 2.0]).is_scalar
    X = np.arange(8.0).reshape(4, 2)
    out = m(X)
    assert out.shape == (4, 1)
    np.testing.assert_allclose(out.data[:, 0], [m(list(r)).data for r in X], rtol=0, atol=0)


def test_zero_grad_state_dict_and_repr():
    m = nn.TensorMLP(2, [3, 1], seed=0)
    tg.sum(m(np.ones((2, 2)))).backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    sd = m.state_dict()
    assert list(sd) == ["L1.W", "L1.b", "L2.W", "L2.b"]
    sd["L1.W"][0, 0] = 123.0  # a copy: the model is not touched
    assert m.layers[0].W.data[0, 0] != 123.0
    m2 = nn.TensorMLP(2, [3, 1], seed=1)
    m2.load_state_dict(m.state_dict())
    for (_, a), (_, b) in zip(m.named_parameters(), m2.named_parameters(), strict=True):
        assert np.array_equal(a.data, b.data)
    r = repr(nn.MLP(3, [4, 4, 1]))
    assert "MLP(3 -> [4, 4, 1], 41 parameters" in r and "(L1): Layer(3 -> 4, relu" in r
    assert "(L2): Linear(3 -> 1, linear)" in repr(m)


def test_load_state_dict_checks_everything_first():
    m = nn.MLP(2, [2, 1], seed=0)
    before = m.state_dict()
    bad = dict(before)
    bad["L1.n0.w0"] = np.array(1.0)
    bad["L2.n0.b"] = np.array(np.nan)  # the last parameter is bad: nothing before it may change
    with pytest.raises(tg.LoadError, match="L2.n0.b"):
        m.load_state_dict(bad)
    after = m.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_weights_excludes_biases_and_slopes():
    m = nn.TensorMLP(2, [3, 1], activation="prelu", seed=0)
    assert [p.label for p in m.weights()] == ["L1.W", "L2.W"]
    s = nn.MLP(2, [2, 1], activation="maxout", seed=0)
    assert all(not p.name.startswith("b") for p in s.weights())
    assert len(s.weights()) == 2 * 2 * 2 + 2


class _TwoLayers(nn.Module):
    """A user's module: two Linear layers left at their default name "L1"."""

    def __init__(self, seed: int = 0) -> None:
        self.fc1 = nn.Linear(2, 3, "relu", seed=seed)
        self.fc2 = nn.Linear(3, 1, seed=seed + 1)

    def __call__(self, x):
        return self.fc2(self.fc1(x))


def test_user_module_names_children_by_attribute_and_scopes_them_apart():
    net = _TwoLayers()
    names = ["fc1.W", "fc1.b", "fc2.W", "fc2.b"]
    assert [n for n, _ in net.named_parameters()] == names
    assert list(net.state_dict()) == names  # fc1 is no longer dropped under a shared "L1.W"
    for name, p in net.named_parameters():
        assert p.label == name  # the parameters' scopes moved with the name
    out = net(np.ones((4, 2)))
    assert out.label == "fc2.z" and net.fc1.name == "fc1"
    assert [n.label for n in tg.walk(out) if n.op == "relu"] == ["fc1.act"]
    other = _TwoLayers(seed=5)
    other.load_state_dict(net.state_dict())
    for (_, a), (_, b) in zip(net.named_parameters(), other.named_parameters(), strict=True):
        assert np.array_equal(a.data, b.data)
    assert "(fc1): Linear(2 -> 3, relu)" in repr(net)


def test_user_module_lists_dicts_nested_mlps_and_explicit_names():
    class Net(nn.Module):
        def __init__(self) -> None:
            self.layers = [nn.Linear(2, 3, "tanh"), nn.ReLU(), nn.Linear(3, 1)]
            self.heads = {"cls": nn.Linear(1, 2), "reg": nn.Linear(1, 1, name="regressor")}
            self.body = nn.MLP(2, [1], seed=0)
            self.scale = tg.Node(1.0)

    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b", "heads.cls.W",
                     "heads.cls.b", "heads.reg.W", "heads.reg.b", "body.L1.n0.w0",
                     "body.L1.n0.w1", "body.L1.n0.b", "scale"]
    assert net.layers[1](np.ones(3)).label == "layers.1.act"
    assert net.layers[2](np.ones(3)).label == "layers.2.z"
    assert net.heads["reg"].W.label == "regressor.W"  # an explicit name= keeps its scope
    assert net.body([1.0, 2.0]).label == "body.L1.n0.z"
    assert nn.layer_of("layers.0.z") == "layers.0" and nn.layer_of("body.L1.n0") == "L1"
    assert nn.layer_of("fc1") == "fc1" and nn.layer_of("L2.n3") == "L2"


def test_dict_of_submodules_needs_string_keys_and_nothing_is_assigned():
    net = _TwoLayers()
    with pytest.raises(tg.InputError, match=r"_TwoLayers\.heads: .*string keys.*key 1 .*Linear"):
        net.heads = {1: nn.Linear(1, 2)}
    assert not hasattr(net, "heads")
    net.config = {1: "not a module"}  # dicts of other things are left alone
    assert len(net.parameters()) == 4


def test_duplicate_parameter_names_raise_instead_of_dropping_one():
    m = nn.TensorMLP(2, [3, 1], seed=0)
    m.layers[1].name = "L1"
    for call in (m.named_parameters, m.state_dict):
        with pytest.raises(tg.InputError, match=r"'L1\.W' \(shapes \(2, 3\) and \(3, 1\)\)"):
            call()
    shared = nn.Linear(2, 2)  # one parameter reached twice is not a clash: it is listed once
    net = _TwoLayers()
    net.tied = shared
    net.again = shared
    assert [n for n, _ in net.named_parameters()][-2:] == ["tied.W", "tied.b"]


def test_activation_modules_make_their_nodes_in_their_own_scope():
    x = tg.Node(np.array([[-1.0, 2.0]]), name="x")
    mods = [(nn.Sigmoid(), "sigmoid"), (nn.Tanh(), "tanh"), (nn.ReLU(), "relu"),
            (nn.LeakyReLU(0.1), "leaky_relu"), (nn.PReLU(), "prelu"),
            (nn.ReLU(name="r1"), "r1")]
    for mod, name in mods:
        out = mod(x)
        assert out.label == f"{name}.act"
        assert {n.scope for n in tg.walk(out) if n.op is not None} == {name}
    with pytest.raises(tg.InputError, match="ReLU: name must be a non-empty string"):
        nn.ReLU(name="")


def test_neuron_weights_are_checked_against_nin_and_pieces():
    n = nn.Neuron(3, "relu", weights=np.array([1.0, 2.0, 3.0]))  # (nin,) for one piece
    assert [w.data for w in n.w] == [1.0, 2.0, 3.0]
    assert len(nn.Neuron(3, "maxout", k=2, weights=np.ones((2, 3))).parameters()) == 8
    with pytest.raises(tg.ShapeError, match=r"Neuron 'n0'.*\(3,\) or \(1, 3\).*shape \(2,\)"):
        nn.Neuron(3, "relu", weights=np.ones(2))
    with pytest.raises(tg.ShapeError, match=r"Neuron 'u'.*\(3,\) or \(1, 3\).*\(2, 3\)"):
        nn.Neuron(3, "relu", name="u", weights=np.ones((2, 3)))  # extra rows are not ignored
    with pytest.raises(tg.ShapeError, match=r"\(2, 3\) \(k pieces\).*shape \(3,\)"):
        nn.Neuron(3, "maxout", k=2, weights=np.ones(3))
    with pytest.raises(tg.DTypeError, match="Neuron 'n0': weights must be real numbers"):
        nn.Neuron(2, weights=["a", "b"])


# --- bad input ---------------------------------------------------------------------------------


def test_wrong_width_names_the_layer():
    with pytest.raises(tg.ShapeError, match=r"Linear 'L1'.*\(batch, 3\).*\(5, 2\)"):
        nn.TensorMLP(3, [4, 1])(np.ones((5, 2)))
    with pytest.raises(tg.ShapeError, match=r"Layer 'L1'.*expected 3 inputs, got 2"):
        nn.MLP(3, [4, 1])([1.0, 2.0])
    with pytest.raises(ValueError, match="L1"):
        nn.MLP(3, [4, 1])(np.ones((5, 2)))


def test_bad_configuration():
    with pytest.raises(tg.InputError, match="unknown activation 'swish'"):
        nn.MLP(2, [3], activation="swish")
    with pytest.raises(tg.InputError, match="nin"):
        nn.Linear(0, 3)
    with pytest.raises(tg.InputError, match="init"):
        nn.Linear(2, 3, init="orthogonal")
    with pytest.raises(tg.InputError):
        nn.MLP(2, [])


# --- scalar and tensor levels agree -----------------------------------------------------------


@settings(deadline=None)  # examples: the profile in conftest.py
@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    nin=st.integers(1, 5),
    batch=st.integers(1, 8),
    act=st.sampled_from(ACTS),
    shared=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_scalar_and_tensor_mlps_agree(sizes, nin, batch, act, shared, seed):
    s = nn.MLP(nin, sizes, activation=act, seed=seed, shared_slope=shared)
    t = nn.TensorMLP(nin, sizes, activation=act, seed=seed + 1, shared_slope=shared)
    # Different seeds, then the scalar weights copied over: the agreement is in the maths.
    t.load_state_dict(nn.scalar_to_tensor_state(s.state_dict(), t))
    X = np.random.default_rng(seed).normal(size=(batch, nin))
    R = np.random.default_rng(seed + 2).normal(size=(batch, sizes[-1]))
    ys, yt = s(X), t(X)
    np.testing.assert_allclose(ys.data, yt.data, rtol=1e-10, atol=1e-12)
    tg.sum(ys * R).backward()
    tg.sum(yt * R).backward()
    got = nn.scalar_to_tensor_state(
        {n: np.array(0.0 if p.grad is None else p.grad) for n, p in s.named_parameters()}, t)
    for name, p in t.named_parameters():
        np.testing.assert_allclose(got[name], p.grad, rtol=1e-10, atol=1e-12, err_msg=name)


def test_same_seed_gives_same_weights_at_both_levels():
    s, t = nn.MLP(3, [5, 2], seed=7), nn.TensorMLP(3, [5, 2], seed=7)
    conv = nn.scalar_to_tensor_state(s.state_dict(), t)
    for name, v in t.state_dict().items():
        assert np.array_equal(conv[name], v)


# --- activations -------------------------------------------------------------------------------


def test_activation_values():
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(nn.sigmoid(x).data, 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(nn.tanh(x).data, np.tanh(x), rtol=1e-15)
    np.testing.assert_array_equal(nn.relu(x).data, np.maximum(x, 0))
    np.testing.assert_allclose(nn.leaky_relu(x).data, np.where(x > 0, x, 0.01 * x))
    np.testing.assert_allclose(nn.LeakyReLU(0.2)(x).data, np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(nn.prelu(x, 0.3).data, np.where(x > 0, x, 0.3 * x))
    np.testing.assert_allclose(nn.PReLU()(x).data, np.where(x > 0, x, 0.25 * x))
    assert nn.prelu(tg.Node(-2.0), tg.Node(0.5)).data == -1.0  # scalar level too
    for mod, f in [(nn.Sigmoid(), nn.sigmoid), (nn.Tanh(), nn.tanh), (nn.ReLU(), nn.relu)]:
        assert np.array_equal(mod(x).data, f(x).data)


def test_maxout_generalizes_relu():
    # ReLU is maxout with the second piece fixed at zero.
    lay = nn.Linear(3, 4, "maxout", seed=0)
    W = lay.W.numpy()
    W[1] = 0.0
    lay.W.data = W
    x = np.random.default_rng(1).normal(size=(6, 3))
    np.testing.assert_allclose(lay(x).data, np.maximum(x @ W[0], 0.0), rtol=1e-15)


@pytest.mark.parametrize("act", ACTS)
def test_linear_layer_gradcheck(act):
    lay = nn.Linear(3, 2, act, seed=0)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 3))
    params = [p.numpy() for p in lay.parameters()]

    names = [n for n, _ in lay.named_parameters()]  # "W", "b" (and "a"): attribute names too

    def run(x, *ps):
        # The layer reads its parameters at call time: put the checker's nodes in their place.
        old = {n: getattr(lay, n) for n in names}
        for n, p in zip(names, ps, strict=True):
            setattr(lay, n, p)
        try:
            return lay(x)
        finally:
            for n, p in old.items():
                setattr(lay, n, p)

    assert gradcheck(run, x, *params)


@pytest.mark.parametrize("act", ACTS)
def test_neuron_gradcheck(act):
    rng = np.random.default_rng(4)
    x = rng.normal(size=3)
    w = rng.normal(size=(2, 3))

    def run(x, w):
        # One neuron's maths, rebuilt with the checker's nodes as weights.
        n = nn.Neuron(3, act, weights=np.zeros((2 if act == "maxout" else 1, 3)), k=2)
        n.w = [w[0, i] for i in range(3)]
        if n._pieces:
            n._pieces = [([w[1, i] for i in range(3)], n._pieces[0][1])]
        return n([x[i] for i in range(3)])

    assert gradcheck(run, x, w)


def test_prelu_slope_gets_a_gradient():
    assert gradcheck(lambda x, a: nn.prelu(x, a), np.array([-2.0, -0.3, 0.7, 1.5]),
                     np.array([0.2, 0.1, 0.3, 0.4]))
    assert gradcheck(lambda x, a: nn.prelu(x, a), np.array([[-2.0, 0.5], [1.0, -1.0]]),
                     np.array([0.25]))


# --- initialization ----------------------------------------------------------------------------


def test_init_defaults_and_explicit_scale():
    he = nn.Linear(500, 400, "relu", seed=0).W.data
    assert abs(he.std() / np.sqrt(2 / 500) - 1) < 0.02
    xav = nn.Linear(500, 300, "tanh", seed=0).W.data
    assert abs(xav.std() / np.sqrt(2 / 800) - 1) < 0.02
    big = nn.Linear(500, 300, "sigmoid", scale=5.0, seed=0).W.data
    assert abs(big.std() / 5.0 - 1) < 0.02
    forced = nn.Linear(500, 300, "tanh", init="he", seed=0).W.data
    assert abs(forced.std() / np.sqrt(2 / 500) - 1) < 0.02
    assert np.all(nn.Linear(5, 3, seed=0).b.data == 0)
    assert np.array_equal(nn.Linear(5, 3, seed=4).W.data, nn.Linear(5, 3, seed=4).W.data)
    assert nn.Linear(5, 3, dtype=np.float32).W.dtype == np.float32


def test_large_init_saturates_sigmoids():
    # The notes' warning, reproduced on purpose: weights too large push sigmoids to 0 or 1.
    X = np.random.default_rng(0).normal(size=(200, 50))
    small = nn.Linear(50, 20, "sigmoid", seed=0)(X).data
    big = nn.Linear(50, 20, "sigmoid", scale=3.0, seed=0)(X).data
    assert np.mean(small * (1 - small) < 0.01) < 0.05
    assert np.mean(big * (1 - big) < 0.01) > 0.8


def test_every_layer_activation_and_loss_has_a_spec_row():
    from specs_nn import NN_SPECS

    from tinygraph import losses

    covered = {c for spec in NN_SPECS for c in spec.covers}
    # Every module class and every activation function: a new one without a row fails here.
    public = {f"nn.{n}" for n, o in vars(nn).items()
              if isinstance(o, type) and issubclass(o, nn.Module) and o is not nn.Module}
    public |= {f"nn.{a}" for a in nn.ACTIVATIONS}
    public |= {f"losses.{n}" for n in dir(losses)
               if not n.startswith("_") and callable(getattr(losses, n))
               and getattr(getattr(losses, n), "__module__", "") == "tinygraph.losses"
               and n != "accuracy"}  # accuracy is a metric, not differentiable
    assert public - covered == set()


# --- PyTorch-style modules: forward, containers, modes, state dicts -----------------------------


class _Block(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n, n, seed=n)
        self.act = nn.Tanh()

    def forward(self, x):
        return self.act(self.fc(x))


class _Deep(nn.Module):
    def __init__(self) -> None:  # no super().__init__(): it works all the same
        self.fc1 = nn.Linear(2, 3, seed=0)
        self.blocks = nn.ModuleList([_Block(3), _Block(3)])
        self.seq = nn.Sequential(nn.Linear(3, 3, seed=1), nn.ReLU(), nn.Linear(3, 1, seed=2))

    def forward(self, x):
        x = self.fc1(x)
        for b in self.blocks:
            x = b(x)
        return self.seq(x)


def test_calling_a_module_runs_forward_with_names_and_scopes_by_path():
    net = _Deep()
    names = ["fc1.W", "fc1.b", "blocks.0.fc.W", "blocks.0.fc.b", "blocks.1.fc.W",
             "blocks.1.fc.b", "seq.0.W", "seq.0.b", "seq.2.W", "seq.2.b"]
    assert [n for n, _ in net.named_parameters()] == names
    assert [p.label for p in net.parameters()] == names  # scopes follow the path
    x = np.array([[0.5, -1.0], [2.0, 0.1]])
    out = net(x)
    assert out.label == "seq.2.z" and out.shape == (2, 1)
    made = {n.label for n in tg.walk(out) if n.op is not None}
    assert {"fc1.z", "blocks.0.fc.z", "blocks.0.act.act", "blocks.1.act.act", "seq.1.act"} <= made
    # the same maths by hand
    h = x @ net.fc1.W.data + net.fc1.b.data
    for b in net.blocks:
        h = np.tanh(h @ b.fc.W.data + b.fc.b.data)
    h = np.maximum(h @ net.seq[0].W.data + net.seq[0].b.data, 0)
    np.testing.assert_allclose(out.data, h @ net.seq[2].W.data + net.seq[2].b.data, rtol=1e-12)
    # built-in modules run through forward too, and calling it directly gives the same values
    np.testing.assert_array_equal(net.fc1.forward(x).data, net.fc1(x).data)


def test_a_module_without_forward_says_to_define_it():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 1)

    with pytest.raises(tg.ModuleError, match=r"Net has no forward method: define forward"):
        Net()(np.ones(2))
    with pytest.raises(NotImplementedError):  # what PyTorch users catch
        nn.Module()(1.0)
    with pytest.raises(tg.ModuleError, match="ModuleList is not callable"):
        nn.ModuleList([nn.ReLU()])(np.ones(2))


def test_modules_named_modules_children_and_apply():
    net = _Deep()
    named = [n for n, _ in net.named_modules()]
    assert named == ["", "fc1", "blocks", "blocks.0", "blocks.0.fc", "blocks.0.act", "blocks.1",
                     "blocks.1.fc", "blocks.1.act", "seq", "seq.0", "seq.1", "seq.2"]
    assert net.modules()[0] is net and len(net.modules()) == len(named)
    assert [n for n, _ in net.named_children()] == ["fc1", "blocks", "seq"]
    assert net.children() == [net.fc1, net.blocks, net.seq]
    seen = []
    assert net.apply(lambda m: seen.append(m)) is net
    assert seen[-1] is net and seen.index(net.blocks[0].fc) < seen.index(net.blocks[0])
    assert len(seen) == len(named)
    shared = nn.Linear(2, 2)
    net.a = shared
    net.b = shared  # one module reached twice is listed once, under its first name
    assert [n for n, m in net.named_modules() if m is shared] == ["a"]
    net.me = net  # and a module holding itself does not loop
    assert len(net.modules()) == len(named) + 1 and len(net.parameters()) == 12


def test_sequential_indexing_len_iteration_and_names():
    a, r, b = nn.Linear(2, 4, seed=0), nn.ReLU(), nn.Linear(4, 1, seed=1)
    seq = nn.Sequential(a, r, b)
    assert len(seq) == 3 and list(seq) == [a, r, b] and seq[0] is a and seq[-1] is b
    assert [n for n, _ in seq.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and list(head) == [a, r]
    x = np.ones((3, 2))
    np.testing.assert_array_equal(seq(x).data, b(head(x)).data)
    keyed = nn.Sequential({"hidden": nn.Linear(2, 4, seed=0), "act": nn.Tanh()})
    assert [n for n, _ in keyed.named_parameters()] == ["hidden.W", "hidden.b"]
    assert keyed(x).label == "act.act" and keyed.hidden is keyed[0]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = keyed.nope
    keyed.append(nn.Linear(4, 1))
    assert [n for n, _ in keyed.named_parameters()][-1] == "2.b"
    np.testing.assert_array_equal(nn.Sequential()(x), x)  # empty: the identity
    fresh = nn.Linear(2, 2)
    with pytest.raises(tg.InputError, match="Sequential: argument 1 must be a Module, got a int"):
        nn.Sequential(fresh, 3)
    assert fresh.name == "L1" and fresh.W.label == "L1.W"  # left as it was
    with pytest.raises(tg.IndexOutOfRange, match="index 3 out of range for 3 modules"):
        seq[3]
    with pytest.raises(tg.InputError, match="names must be non-empty strings"):
        nn.Sequential({"a.b": nn.ReLU()})


def test_module_list_append_extend_insert_and_setitem():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList()

    net = Net()
    net.layers.append(nn.Linear(2, 2, seed=0)).extend([nn.Linear(2, 2, seed=1)])
    assert [n for n, _ in net.named_parameters()] == ["layers.0.W", "layers.0.b",
                                                     "layers.1.W", "layers.1.b"]
    assert [p.label for p in net.parameters()] == [n for n, _ in net.named_parameters()]
    first = net.layers[0]
    net.layers.insert(0, nn.Linear(2, 2, seed=2))  # renumbered, as in PyTorch
    assert net.layers[1] is first and first.W.label == "layers.1.W"
    assert first(np.ones(2)).label == "layers.1.z"
    net.layers[2] = nn.Linear(2, 3)
    assert net.layers[2].W.shape == (2, 3) and net.layers[2].W.label == "layers.2.W"
    assert len(net.layers) == 3 and len(list(net.layers)) == 3
    assert isinstance(net.layers[1:], nn.ModuleList) and len(net.layers[1:]) == 2
    with pytest.raises(tg.InputError, match="ModuleList.append: the argument must be a Module"):
        net.layers.append(tg.Node(1.0))
    with pytest.raises(tg.InputError, match="ModuleList: item 1 must be a Module"):
        net.layers.extend([nn.ReLU(), "relu"])
    assert len(net.layers) == 3  # extend checks everything first
    with pytest.raises(tg.IndexOutOfRange):
        net.layers[-4]


def test_train_and_eval_set_training_on_every_module():
    net = _Deep()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.seq.train()
    assert net.seq[1].training and not net.training and not net.blocks[0].training
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(tg.InputError, match=r"_Deep\.train: mode must be True or False"):
        net.train("no")


def test_zero_grad_to_none_or_zeros():
    net = _Deep()
    tg.sum(net(np.ones((2, 2)))).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(np.array_equal(p.grad, np.zeros(p.shape)) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_add_module():
    net = _Deep()
    net.add_module("extra", nn.Linear(1, 1))
    assert [n for n, _ in net.named_parameters()][-2:] == ["extra.W", "extra.b"]
    with pytest.raises(tg.InputError, match="add_module: name must be"):
        net.add_module("a.b", nn.ReLU())
    with pytest.raises(tg.InputError, match=r"add_module\('x'\): expected a Module, got a str"):
        net.add_module("x", "relu")


def test_load_state_dict_strict_and_not_strict():
    net = _Deep()
    state = _Deep().state_dict()
    for v in state.values():
        v += 1.0
    before = net.state_dict()
    partial = {k: v for k, v in state.items() if not k.startswith("seq.")}
    partial["old.W"] = np.zeros(2)
    with pytest.raises(tg.LoadError, match=r"missing 'seq\.0\.W', .*'seq\.2\.b'; unexpected "
                                           r"'old\.W'"):
        net.load_state_dict(partial)
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())
    keys = net.load_state_dict(partial, strict=False)
    assert keys.missing_keys == ["seq.0.W", "seq.0.b", "seq.2.W", "seq.2.b"]
    assert keys.unexpected_keys == ["old.W"]
    after = net.state_dict()
    assert all(np.array_equal(after[k], partial[k]) for k in partial if k != "old.W")
    assert all(np.array_equal(after[k], before[k]) for k in keys.missing_keys)
    # a bad shape is an error even when not strict, and nothing changes
    bad = dict(state)
    bad["seq.2.W"] = np.zeros((1, 3))
    with pytest.raises(tg.LoadError, match=r"'seq\.2\.W' has shape \(1, 3\), the model's is "
                                           r"\(3, 1\)"):
        net.load_state_dict(bad, strict=False)
    assert all(np.array_equal(after[k], v) for k, v in net.state_dict().items())
    assert net.load_state_dict(state) == ([], [])
    with pytest.raises(tg.LoadError, match="expected a dict of arrays by parameter name, got a "
                                           "list"):
        net.load_state_dict(list(state.values()))
    state["fc1.W"][0, 0] = 99.0  # the model keeps its own copy
    assert net.fc1.W.data[0, 0] != 99.0


def test_deepcopy_gives_an_independent_module():
    import copy

    net = _Deep()
    twin = copy.deepcopy(net)
    x = np.ones((2, 2))
    np.testing.assert_array_equal(twin(x).data, net(x).data)
    assert [n for n, _ in twin.named_parameters()] == [n for n, _ in net.named_parameters()]
    twin.seq[2].W.data = np.zeros((3, 1))
    assert not np.array_equal(twin(x).data, net(x).data)


def test_old_style_modules_with_call_still_work():
    net = _TwoLayers()  # defines __call__, never calls super().__init__()
    assert net(np.ones((1, 2))).shape == (1, 1)
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "fc2"]


# --- reproducibility: tg.manual_seed and np.random.seed -----------------------------------------


@pytest.fixture
def _fork_rng():
    with tg.random.fork_rng():
        yield


def _draws():
    """Everything drawn without seed=: module weights at both levels and every data helper."""
    out = [nn.MLP(2, [3, 1]).state_dict()["L1.n0.w0"], nn.TensorMLP(2, [4, 1]).layers[0].W.data,
           nn.Linear(3, 2).W.data, nn.Neuron(3).w[0].data, nn.Layer(2, 2).neurons[1].w[0].data]
    for make in (tg.data.make_moons, tg.data.make_circles, tg.data.make_spiral,
                 tg.data.make_blobs, tg.data.make_xor):
        out.append(make(20)[0])
    return out


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_manual_seed_makes_default_draws_reproducible(_fork_rng):
    tg.manual_seed(0)
    first = _draws()
    tg.manual_seed(0)
    assert _same(first, _draws())
    tg.manual_seed(1)
    other = _draws()
    assert not any(np.array_equal(x, y) for x, y in zip(first, other, strict=True))
    np.random.seed(0)  # numpy's habit works as well: the same global state
    assert _same(first, _draws())
    tg.manual_seed(0)
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)  # later draws continue the stream, as in PyTorch
    assert not np.array_equal(a.W.data, b.W.data)


def test_seed_arguments_keep_working_and_leave_the_global_state_alone(_fork_rng):
    tg.manual_seed(5)
    state = np.random.get_state()[1].copy()
    assert np.array_equal(nn.Linear(3, 2, seed=7).W.data, nn.Linear(3, 2, seed=7).W.data)
    assert np.array_equal(tg.data.make_moons(10, seed=3)[0],
                          tg.data.make_moons(10, random_state=3)[0])
    g = np.random.default_rng(1)
    assert nn.MLP(2, [2], seed=g).num_parameters() == 6
    assert np.array_equal(np.random.get_state()[1], state)
    with pytest.raises(tg.InputError, match=r"manual_seed: seed must be a non-negative int <= "):
        tg.manual_seed(-1)
    with pytest.raises(tg.InputError, match="manual_seed: seed must be"):
        tg.manual_seed(1.5)
    with pytest.raises(tg.InputError, match="Linear: seed must be a non-negative int"):
        nn.Linear(2, 2, seed="x")
    with pytest.raises(tg.InputError, match="make_moons: give seed= or random_state="):
        tg.data.make_moons(10, seed=1, random_state=1)


def test_parameters_as_attributes_take_their_names():
    class Affine(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(np.ones((2, 3)))  # PyTorch's spelling of tg.Node(...)
            self.b = tg.Node(np.zeros(3))
            self.fixed = tg.Node(np.ones(3), requires_grad=False)  # a constant: not a parameter

        def forward(self, x):
            return x @ self.w + self.b * self.fixed

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Affine()

    net = Net()
    assert [(n, p.label) for n, p in net.named_parameters()] == [("inner.w", "inner.w"),
                                                                 ("inner.b", "inner.b")]
    assert net.inner(np.ones((1, 2))).data.tolist() == [[2.0, 2.0, 2.0]]


def test_weights_pick_parameters_by_role() -> None:
    # A user's parameter named "bias" is a bias, a 2x2 matrix named "b_proj" a weight.
    class Proj(nn.Module):
        def __init__(self) -> None:
            self.bias = nn.Parameter(np.zeros(2))
            self.b_proj = nn.Parameter(np.eye(2))
            self.b2 = nn.Parameter(np.zeros(2))

    m = Proj()
    assert m.parameter_roles() == {"bias": "bias", "b_proj": "weight", "b2": "bias"}
    (w,) = m.weights()
    assert w is m.b_proj
    # The built-in modules declare theirs: a Linear's W is its weight, b its bias.
    lin = nn.Linear(3, 2, "prelu", name="L1")
    assert lin.parameter_roles() == {"W": "weight", "b": "bias", "a": "slope"}
