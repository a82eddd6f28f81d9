"""The notes' numpy code runs on nodes, and nodes behave like numbers and arrays in numpy code.

- the neuron class and the 3-layer forward pass of the CS231n notes, with nodes as parameters,
  gradients against finite differences in float64;
- numpy's ufuncs and functions on nodes record the graph (the op spec table checks each one;
  here: every dispatched numpy callable has a row, and what has no op raises, naming it);
- no numpy entry point yields an object array of nodes;
- promotion: numpy numbers of every real kind, int/bool arrays and float32/float64 nodes;
- node manners (==, bool, float, format, backward on one-element outputs, label=) and in-place
  updates of a node's data (p.data -= lr * p.grad).
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from specs import SPECS

import tinygraph as tg
from tinygraph import interop
from tinygraph.testing import gradcheck
from tinygraph.testing import strategies as tgs

# --- the notes' code --------------------------------------------------------------------------


class Neuron:
    # ...
    def forward(self, inputs):  # noqa: ANN001, ANN201 - the notes' code ("self" added)
        """ assume inputs and weights are 1-D numpy arrays and bias is a number """
        cell_body_sum = np.sum(inputs * self.weights) + self.bias
        firing_rate = 1.0 / (1.0 + math.exp(-cell_body_sum)) # sigmoid activation function  # noqa: E261
        return firing_rate


class GraphNeuron(Neuron):
    """The same neuron with np.exp: math.exp asks for float(node) and leaves the graph (as it
    does for a PyTorch tensor); np.exp keeps it."""

    def forward(self, inputs):  # noqa: ANN001, ANN201
        cell_body_sum = np.sum(inputs * self.weights) + self.bias
        firing_rate = 1.0 / (1.0 + np.exp(-cell_body_sum))
        return firing_rate


def _neuron_ref(x: np.ndarray, w: np.ndarray, b: float) -> float:
    return 1.0 / (1.0 + math.exp(-(float(np.sum(x * w)) + b)))


def test_the_notes_neuron_runs_with_node_weights() -> None:
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(5), rng.standard_normal(5), 0.3
    n = Neuron()
    n.weights, n.bias = tg.Node(w, name="w"), tg.Node(b, name="b")
    rate = n.forward(x)
    assert isinstance(rate, float) and math.isclose(rate, _neuron_ref(x, w, b), rel_tol=1e-12)

    g = GraphNeuron()
    g.weights, g.bias = n.weights, n.bias
    out = g.forward(x)
    assert isinstance(out, tg.Node) and math.isclose(out.item(), rate, rel_tol=1e-12)
    out.backward()
    s = _neuron_ref(x, w, b)
    np.testing.assert_allclose(g.weights.grad, s * (1 - s) * x, rtol=1e-10)

    def f(w: tg.Node, b: tg.Node) -> tg.Node:
        g.weights, g.bias = w, b
        return g.forward(x)

    assert gradcheck(f, w, b)


def _three_layer(W1, b1, W2, b2, W3, b3, x):  # noqa: ANN001, ANN202, N803
    # forward-pass of a 3-layer neural network:
    f = lambda x: 1.0/(1.0 + np.exp(-x)) # activation function (use sigmoid)  # noqa: E226, E261
    h1 = f(np.dot(W1, x) + b1) # calculate first hidden layer activations (4x1)  # noqa: E261
    h2 = f(np.dot(W2, h1) + b2) # calculate second hidden layer activations (4x1)  # noqa: E261
    out = np.dot(W3, h2) + b3 # output neuron (1x1)  # noqa: E261
    return out


def _params(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.standard_normal(s) for s in ((4, 3), (4, 1), (4, 4), (4, 1), (1, 4), (1, 1))]


@pytest.mark.parametrize("batch", [None, 5])
def test_the_notes_three_layer_forward_pass_runs_on_nodes(batch: int | None) -> None:
    rng = np.random.default_rng(1)
    arrays = _params(rng)
    x = np.random.randn(3, 1) if batch is None else rng.standard_normal((3, batch))
    nodes = [tg.Node(a, name=n) for a, n in zip(arrays, ["W1", "b1", "W2", "b2", "W3", "b3"],
                                                 strict=True)]
    out = _three_layer(*nodes, x)
    assert isinstance(out, tg.Node) and out.shape == (1, x.shape[1])
    np.testing.assert_allclose(out.data, _three_layer(*arrays, x), rtol=1e-12)
    (out if batch is None else np.sum(out)).backward()  # a (1, 1) output needs no grad=
    assert all(n.grad is not None and n.grad.shape == n.shape for n in nodes)
    assert gradcheck(lambda *ps: np.sum(_three_layer(*ps, x)), *arrays)


def test_the_notes_forward_pass_with_int_and_float32_data() -> None:
    rng = np.random.default_rng(2)
    nodes = [tg.Node(a.astype(np.float32)) for a in _params(rng)]
    x = rng.integers(-2, 3, size=(3, 1))  # an int array: takes the nodes' float32
    out = _three_layer(*nodes, x)
    assert out.dtype == np.float32
    out.backward()
    assert all(n.grad.dtype == np.float32 for n in nodes)


# --- the dispatch tables ----------------------------------------------------------------------


def _dispatched() -> set[str]:
    names = {f"np.{u.__name__}" for u in interop.UFUNCS}
    names |= {f"np.{u.__name__}.reduce" for u in interop.REDUCES}
    names |= {f"np.{f.__name__}" for f in interop.FUNCTIONS}
    return names


def test_every_dispatched_numpy_callable_has_a_spec_row() -> None:
    covered = {c for s in SPECS for c in s.covers}
    missing = sorted(_dispatched() - covered)
    assert not missing, f"numpy callables without a row in tests/specs.py: {missing}"
    for name in ["np.exp", "np.log", "np.tanh", "np.sqrt", "np.absolute", "np.negative",
                 "np.add", "np.subtract", "np.multiply", "np.divide", "np.power", "np.maximum",
                 "np.minimum", "np.dot", "np.matmul", "np.sum", "np.mean", "np.max", "np.amax",
                 "np.min", "np.amin", "np.where", "np.clip", "np.concatenate", "np.stack",
                 "np.reshape", "np.transpose"]:
        assert name in _dispatched(), name


@pytest.mark.parametrize(("call", "name", "nearest"), [
    (lambda x: np.sin(x), "np.sin", "trigonometric"),
    (lambda x: np.exp2(x), "np.exp2", "exp(x * log(2))"),
    (lambda x: np.log1p(x), "np.log1p", "log(1 + x)"),
    (lambda x: np.logaddexp(x, x), "np.logaddexp", "logsumexp"),
    (lambda x: np.prod(x), "np.prod", "exp(sum(log(x)))"),
    (lambda x: np.cumsum(x), "np.cumsum", "sum"),
    (lambda x: np.linalg.norm(x), "np.linalg.norm", "sqrt(sum(x * x))"),
    (lambda x: np.add.accumulate(x), "np.add.accumulate", "tg.primitive"),
    (lambda x: np.sum(x, out=np.empty(())), "np.sum", "in place"),
])
def test_numpy_without_an_op_names_the_function_and_the_nearest_op(call, name, nearest) -> None:
    x = tg.Node(np.array([0.5, 1.5]), name="x")
    with pytest.raises(tg.TinygraphError) as info:
        call(x)
    msg = str(info.value)
    assert name in msg and nearest in msg and ("'x'" in msg or "out=" in msg)


def test_numpy_reading_values_runs_on_the_data() -> None:
    x = tg.Node(np.array([3.0, -1.0, 2.0]))
    assert np.argmax(x) == 0 and np.shape(x) == (3,) and np.ndim(x) == 1
    assert np.allclose(x, [3.0, -1.0, 2.0]) and np.isfinite(x).all()
    np.testing.assert_array_equal(np.sign(x), [1.0, -1.0, 1.0])
    np.testing.assert_array_equal(np.greater(x, 0), [True, False, True])


def test_np_asarray_of_a_node_is_like_pytorchs_numpy() -> None:
    p = tg.Node(np.array([1.0, 2.0]), name="p")
    with pytest.raises(tg.GraphError, match="'p'.*requires a gradient.*detach"):
        np.asarray(p)
    with pytest.raises(tg.GraphError, match="tg.stack"):
        np.array([p, p])
    c = tg.Node(np.array([1.0, 2.0], dtype=np.float32), requires_grad=False)
    a = np.asarray(c)
    assert type(a) is np.ndarray and a.dtype == np.float32 and a.flags.writeable
    a[0] = 9.0
    assert c.data[0] == 1.0  # a copy
    np.testing.assert_array_equal(np.asarray(p.detach()), [1.0, 2.0])


# --- no object arrays of nodes, from any numpy entry point --------------------------------------

ENTRY_POINTS = {
    "asarray": np.asarray, "array": np.array, "asanyarray": np.asanyarray,
    "ascontiguousarray": np.ascontiguousarray, "atleast_1d": np.atleast_1d,
    "array_of_list": lambda x: np.array([x, x]), "asarray_of_list": lambda x: np.asarray([x]),
    "list_with_float": lambda x: np.array([x, 1.0]), "stack": lambda x: np.stack([x, x]),
    "concatenate": lambda x: np.concatenate([np.atleast_1d(x.data), x] if x.ndim else [x]),
    "exp": np.exp, "exp_of_list": lambda x: np.exp([x, x]), "sum": np.sum,
    "sum_of_list": lambda x: np.sum([x, x]), "dot": lambda x: np.dot(x, x),
    "add_array": lambda x: np.ones(np.shape(x.data)) + x, "radd": lambda x: x + np.ones(2),
    "where": lambda x: np.where(x.data > 0, x, 0.0), "clip": lambda x: np.clip(x, -1, 1),
    "mean": np.mean, "max": np.max, "reshape": lambda x: np.reshape(x, -1),
    "transpose": np.transpose, "sin": np.sin, "prod": np.prod, "cumsum": np.cumsum,
    "sort": np.sort, "copy": np.copy, "vectorize": lambda x: np.vectorize(float)(x),
    "frompyfunc": lambda x: np.frompyfunc(float, 1, 1)(x), "float64": np.float64,
    "float64_scalar_mul": lambda x: np.float64(2.0) * x,
    "int_scalar_mul": lambda x: np.int64(2) * x,
    "tolist_roundtrip": lambda x: np.array(x.data.tolist() if x.ndim else x.data),
}


@st.composite
def _nodes(draw: st.DrawFn) -> tg.Node:
    shape = draw(st.sampled_from([(), (2,), (2, 2)]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    data = draw(tgs.arrays(shape, -2, 2))
    return tg.Node(np.asarray(data, dtype=dtype) if shape else data,
                   requires_grad=draw(st.booleans()))


@given(entry=st.sampled_from(sorted(ENTRY_POINTS)), x=_nodes())
def test_no_numpy_entry_point_yields_an_object_array_of_nodes(entry: str, x: tg.Node) -> None:
    try:
        out = ENTRY_POINTS[entry](x)
    except tg.TinygraphError:
        return  # refused, with a message naming numpy's function
    except (ValueError, TypeError) as e:  # numpy's own complaint about an argument
        assert not isinstance(e, tg.TinygraphError)
        assert "object" not in str(e)
        return
    for a in out if isinstance(out, tuple) else (out,):
        if isinstance(a, np.ndarray):
            assert a.dtype != object, entry
        elif isinstance(a, tg.Node):
            assert a.dtype.kind == "f"
        else:
            assert isinstance(a, (float, np.floating, np.bool_, bool, int, np.integer)), entry


# --- promotion: numbers of every real kind, int/bool arrays, float32/float64 nodes ---------------

BINARY = {
    "x+c": (lambda x, c: x + c, lambda x, c: np.ones_like(x)),
    "c+x": (lambda x, c: c + x, lambda x, c: np.ones_like(x)),
    "x-c": (lambda x, c: x - c, lambda x, c: np.ones_like(x)),
    "c-x": (lambda x, c: c - x, lambda x, c: -np.ones_like(x)),
    "x*c": (lambda x, c: x * c, lambda x, c: c + 0 * x),
    "c*x": (lambda x, c: c * x, lambda x, c: c + 0 * x),
    "x/c": (lambda x, c: x / c, lambda x, c: 1 / c + 0 * x),
    "c/x": (lambda x, c: c / x, lambda x, c: -c / x**2),
    "np.multiply(c, x)": (lambda x, c: np.multiply(c, x), lambda x, c: c + 0 * x),
    "np.add(x, c)": (lambda x, c: np.add(x, c), lambda x, c: np.ones_like(x)),
}


def _sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    return g.sum() if shape == () else g


def _node_operand(level: str) -> st.SearchStrategy[tuple[tg.Node, np.ndarray]]:
    """A node at level "scalar", "float32" or "float64" ((3,) arrays), never 0: it may be a
    denominator; with its value in float64."""
    if level == "scalar":
        return tgs.floats_in(-3, 3, [0.0], 0.5).map(lambda v: (tg.Node(v), np.float64(v)))
    return tgs.arrays((3,), -3, 3, [0.0], 0.5).map(
        lambda a: (tg.Node(a.astype(level)), a.astype(level).astype(np.float64)))


def _operand(kind: str) -> st.SearchStrategy[object]:
    """A number of the kind, or an int/bool array ("array:<dtype>") of shape (3,) or (2, 3)."""
    if kind.startswith("array:"):
        return tgs.int_arrays(st.sampled_from([(3,), (2, 3)]), [np.dtype(kind[6:]).type],
                              nonzero=True)
    kinds = {k.__name__: k for k in tgs.NUMBER_KINDS}
    return tgs.numbers([kinds[kind]], nonzero=True)


# Every pairing: each number kind and int/bool array dtype against each kind of node.
OPERAND_KINDS = [k.__name__ for k in tgs.NUMBER_KINDS] + [
    f"array:{np.dtype(d).name}" for d in tgs.INT_ARRAY_DTYPES]


@pytest.mark.parametrize("level", ["scalar", "float32", "float64"])
@pytest.mark.parametrize("kind", OPERAND_KINDS)
@settings(max_examples=20)
@given(data=st.data())
def test_numbers_and_int_arrays_promote_like_pytorch(kind: str, level: str,
                                                     data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(sorted(BINARY)), label="op")
    xv = data.draw(_node_operand(level), label="node")
    c = data.draw(_operand(kind), label="operand")
    x, x64 = xv
    fn, grad = BINARY[op]
    out = fn(x, c)
    assert isinstance(out, tg.Node)
    if isinstance(c, np.ndarray):  # an int/bool array takes the node's float dtype
        assert out.dtype == (x.dtype if not x.is_scalar else np.float64)
        assert out.shape == np.broadcast_shapes(x.shape, c.shape)
    else:  # a number of any kind is like a Python number: the node's dtype, its level
        assert out.dtype == x.dtype and out.is_scalar == x.is_scalar
    c64 = np.asarray(c, dtype=np.float64)
    tol = 1e-6 if x.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, fn(x64, c64), rtol=tol)
    out.backward(np.ones(out.shape, out.dtype) if out.shape else None)
    assert (type(x.grad) is float) if x.is_scalar else (x.grad.dtype == x.dtype)
    np.testing.assert_allclose(x.grad, _sum_to(np.asarray(grad(x64, c64) * np.ones(
        np.broadcast_shapes(np.shape(x64), c64.shape))), x.shape), rtol=tol)


@given(c=tgs.numbers())
def test_numpy_numbers_are_numbers(c: object) -> None:
    n = tg.Node(c)
    assert n.is_scalar and n.data == float(c) and n.requires_grad
    assert (tg.Node(2.0) * c).data == 2.0 * float(c)


def test_int_and_bool_data_become_float64_nodes() -> None:
    assert tg.Node(np.arange(3)).dtype == np.float64
    assert tg.Node(np.array([True, False])).data.tolist() == [1.0, 0.0]
    assert tg.Node(True).data == 1.0 and tg.Node([True, 2]).dtype == np.float64
    w = tg.Node(np.arange(3))
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad, [0.0, 2.0, 4.0])


def test_int_arrays_in_matmul_concat_where_take_the_float32_dtype() -> None:
    w = tg.Node(np.ones((3, 2), dtype=np.float32))
    x = np.arange(6).reshape(2, 3)
    assert (x @ w).dtype == np.float32 and tg.matmul(x, w).dtype == np.float32
    assert np.dot(x, w).dtype == np.float32
    assert tg.linear(x, w, np.zeros(2, int)).dtype == np.float32
    assert tg.concat([w, np.zeros((1, 2), bool)]).dtype == np.float32
    assert tg.where(x.T > 1, w, np.zeros((3, 2), int)).dtype == np.float32
    mask = np.array([[True, False]] * 3)
    assert (w * mask).dtype == np.float32 and (w / np.sum(mask)).dtype == np.float32


@pytest.mark.parametrize(("value", "desc"), [
    (1 + 2j, "complex"), (np.complex64(1j), "complex64"), (np.array([1j]), "complex128"),
    (np.array([object()]), "object"), (np.array(["a"]), "<U1"), ("a", "str"),
])
def test_complex_object_and_string_data_are_refused(value: object, desc: str) -> None:
    with pytest.raises(tg.DTypeError, match=desc):
        tg.Node(value)
    with pytest.raises(tg.DTypeError, match=desc):
        tg.Node(np.ones(1)) + value


# --- node manners -----------------------------------------------------------------------------


def test_eq_and_ne_are_elementwise_and_hashing_is_by_identity() -> None:
    a = tg.Node(np.array([0.0, 1.0, 2.0]))
    np.testing.assert_array_equal(a == 0, [True, False, False])
    np.testing.assert_array_equal(a != a, [False, False, False])
    np.testing.assert_array_equal(a == np.array([0.0, 5.0, 2.0]), a.data == [0.0, 5.0, 2.0])
    s, t = tg.Node(1.0), tg.Node(1.0)
    assert (s == t) is True and (s != 2.0) is True and (s == 0) is False
    assert len({s, t}) == 2 and {s: 1, t: 2}[t] == 2
    assert tg.Node.__hash__ is object.__hash__


def test_one_element_nodes_convert_and_many_elements_are_ambiguous() -> None:
    loss = tg.Node(np.array([[0.25]]))
    assert bool(loss) and float(loss) == 0.25 and int(tg.Node(3.7)) == 3
    assert f"{loss:.4f}" == "0.2500" and f"{tg.Node(2.0):.1f}" == "2.0"
    assert not bool(tg.Node(0.0)) and not tg.Node(np.zeros(1))
    many = tg.Node(np.zeros(3), name="v")
    for conv in (bool, float, int, lambda n: f"{n:.2f}"):
        with pytest.raises(tg.ShapeError, match="'v'.*ambiguous") as info:
            conv(many)
        assert isinstance(info.value, ValueError)
    assert f"{many}" == str(many)


def test_backward_accepts_any_one_element_output() -> None:
    w = tg.Node(np.array([[2.0]]))
    out = w @ np.array([[3.0]])  # (1, 1)
    out.backward()
    np.testing.assert_array_equal(w.grad, [[3.0]])
    v = tg.Node(np.array([1.0]))
    (v * 5).backward()
    np.testing.assert_array_equal(v.grad, [5.0])


def test_label_is_micrograds_name_for_name() -> None:
    a = tg.Node(2.0, label="a")
    assert a.name == "a" and a.label == "a"
    assert tg.Node(1.0, label="").name is None
    with pytest.raises(TypeError, match="differ"):
        tg.Node(1.0, name="x", label="y")


def test_operators_and_op_methods_are_in_the_class_body() -> None:
    body = vars(tg.Node)
    for name in ["__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
                 "__truediv__", "__rtruediv__", "__pow__", "__rpow__", "__matmul__",
                 "__rmatmul__", "__neg__", "__pos__", "__abs__", "__getitem__", "T", "__eq__",
                 "exp", "log", "tanh", "sigmoid", "relu", "sum", "mean", "max", "min",
                 "reshape", "transpose", "dot", "matmul", "softmax", "clip"]:
        assert name in body, name
    assert inspect.signature(tg.Node.sum).parameters.keys() == {"self", "axis", "keepdims"}


def test_nothing_in_tinygraph_compares_nodes_with_eq(monkeypatch: pytest.MonkeyPatch) -> None:
    # Make == between nodes fail loudly, then train and draw: no code path may use it.
    def boom(self: tg.Node, other: object) -> None:
        raise AssertionError("== on a node")

    model = tg.nn.MLP(2, [3, 1], seed=0)
    x = np.random.default_rng(0).standard_normal((4, 2))
    monkeypatch.setattr(tg.Node, "__eq__", boom)
    monkeypatch.setattr(tg.Node, "__ne__", boom)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        loss = tg.losses.mse(model(x), np.zeros((4, 1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    tg.diagnostics.activation_stats(loss)
    tg.diagnostics.gradient_flow(model, loss)
    import tinygraph.viz as viz

    for level in ("op", "neuron", "layer"):
        assert viz.draw(loss, level=level) is not None
    s = tg.Node(1.0)
    y = (s * s + s).tanh()
    y.backward()
    assert viz.draw(y, level="op") is not None and len(tg.walk(y)) == 4


# --- data in place --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_p_data_in_place_updates_at_the_tensor_level(dtype: type) -> None:
    p = tg.Node(np.array([1.0, 2.0, 4.0], dtype=dtype), name="p")
    loss = (p * p).sum()
    loss.backward()
    p.data -= 0.5 * p.grad
    assert p.dtype == dtype and type(p._data) is np.ndarray
    np.testing.assert_allclose(p.data, [0.0, 0.0, 0.0])
    p.data += 1
    p.data *= np.array([1, 2, 3])
    p.data /= 2
    np.testing.assert_allclose(p.data, [0.5, 1.0, 1.5])
    with pytest.raises(tg.GraphError, match="'p'.*stale"):
        loss.backward()


def test_p_data_in_place_updates_at_the_scalar_level() -> None:
    p = tg.Node(3.0)
    loss = p * p
    loss.backward()
    p.data -= 0.1 * p.grad
    assert p.data == pytest.approx(2.4)
    with pytest.raises(tg.GraphError, match="stale"):
        loss.backward()


def test_writing_into_data_names_the_node_and_changes_nothing() -> None:
    p = tg.Node(np.array([1.0, 2.0]), name="w")
    y = tg.exp(p)
    for write in (lambda: p.data.__setitem__(0, 5.0), lambda: y.data.__setitem__(0, 5.0),
                  lambda: np.add(p.data, 1, out=p.data)):
        with pytest.raises(tg.ReadOnlyError, match="read-only") as info:
            write()
        assert isinstance(info.value, ValueError)
    with pytest.raises(tg.ReadOnlyError, match="'w'"):
        p.data[0] = 5.0
    with pytest.raises(tg.ReadOnlyError, match="'w'"):
        p.data[:1] -= 1.0
    np.testing.assert_array_equal(p.data, [1.0, 2.0])
    y.sum().backward()  # still fresh
    np.testing.assert_allclose(p.grad, np.exp([1.0, 2.0]))


def test_what_data_gives_never_leaks_its_read_only_type() -> None:
    p = tg.Node(np.array([1.0, -2.0]))
    d = p.data
    for r in (d + 1, d * d, np.exp(d), np.asarray(d), np.array(d), d.copy(), d.astype(np.float32),
              np.maximum(d, 0), d @ d.T if d.ndim == 2 else d[None] @ d[:, None]):
        assert type(r) is np.ndarray
    c = d.copy()
    c[0] = 7.0  # copies are writable
    assert p.data[0] == 1.0
    assert tg.Node(d).data.base is not p._data  # a new node copies, as from any array


def test_the_readme_numpy_example_prints_what_the_readme_says(
        capsys: pytest.CaptureFixture[str]) -> None:
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The notes' numpy code, on nodes", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own example
    printed = capsys.readouterr().out.splitlines()
    claims = [re.split(r"#\s*", line, maxsplit=1)[1].split(":")[0].strip()
              for line in code.splitlines() if line.startswith("print(") and "#" in line]
    assert len(claims) == len(printed) == 3
    for claim, line in zip(claims, printed, strict=True):
        assert line.strip() == claim
