"""Save/load (testing.md T15): bit-identical round trips and hostile files rejected safely."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph import nn


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(
        sa[k].dtype == sb[k].dtype and sa[k].tobytes() == sb[k].tobytes() for k in sa)


@settings(deadline=None,  # examples: the profile in conftest.py
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    level=st.sampled_from(["scalar", "tensor"]),
    nin=st.integers(1, 4),
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    act=st.sampled_from(["relu", "tanh", "prelu", "maxout", "sigmoid"]),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 1000),
)
def test_round_trip_is_bit_identical(tmp_path, monkeypatch, level, nin, sizes, act, dtype, seed):
    # fsync is what this test would spend its time on, 200 times over; the other tests keep it.
    monkeypatch.setattr(tg.io, "FSYNC", False)
    if level == "scalar":
        make = lambda s: nn.MLP(nin, sizes, activation=act, seed=s)  # noqa: E731
    else:
        make = lambda s: nn.TensorMLP(nin, sizes, activation=act, seed=s, dtype=dtype)  # noqa: E731
    a, b = make(seed), make(seed + 1)
    path = tmp_path / f"model-{level}-{seed}.npz"
    tg.save(a, path, metadata={"epoch": 3})
    assert tg.load(b, path) == {"epoch": 3}
    assert _same(a, b)


def test_save_is_atomic_and_overwrites(tmp_path):
    m = nn.TensorMLP(2, [3, 1], seed=0)
    path = tmp_path / "m.npz"
    tg.save(m, path)
    tg.save(nn.TensorMLP(2, [3, 1], seed=1), path)  # replaces the old file in one rename
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]  # no temporary file left behind
    b = nn.TensorMLP(2, [3, 1], seed=0)
    tg.load(b, path)
    assert _same(b, nn.TensorMLP(2, [3, 1], seed=1))
    with zipfile.ZipFile(path) as z:  # plain .npy members only
        assert all(n.endswith(".npy") for n in z.namelist())
    with pytest.raises(tg.LoadError, match="JSON"):
        tg.save(m, tmp_path / "x.npz", metadata={"bad": object()})
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


# --- hostile and mismatching files --------------------------------------------------------------


class _Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _meta_blob(model: nn.Module, tmp_path) -> np.ndarray:
    """The metadata member of a genuine file for model."""
    p = tmp_path / "genuine.npz"
    tg.save(model, p)
    with np.load(p) as z:
        return z["__tinygraph_meta__"]


def _write(path, arrays: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


@pytest.fixture
def model():
    return nn.MLP(2, [2, 1], seed=0)


def _unchanged(model, before) -> bool:
    after = model.state_dict()
    return all(before[k].tobytes() == after[k].tobytes() for k in before)


def test_pickle_file_is_rejected_without_running_it(tmp_path, model):
    marker = tmp_path / "pwned"
    before = model.state_dict()
    raw = tmp_path / "evil.npz"
    raw.write_bytes(pickle.dumps({"L1.n0.w0": _Payload(str(marker))}))
    with pytest.raises(tg.LoadError, match="not a zip"):
        tg.load(model, raw)
    # A pickle with a zip archive appended: zip tools accept it, numpy sees the pickle first.
    good = tmp_path / "good.npz"
    tg.save(model, good)
    hybrid = tmp_path / "hybrid.npz"
    hybrid.write_bytes(pickle.dumps(_Payload(str(marker))) + good.read_bytes())
    with pytest.raises(tg.LoadError):
        tg.load(model, hybrid)
    # An object array inside an otherwise genuine archive.
    arrays = dict(model.state_dict(), __tinygraph_meta__=_meta_blob(model, tmp_path))
    arrays["L1.n0.w0"] = np.array([_Payload(str(marker))], dtype=object)
    obj = tmp_path / "object.npz"
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    obj.write_bytes(buf.getvalue())
    with pytest.raises(tg.LoadError, match="L1.n0.w0"):
        tg.load(model, obj)
    assert not marker.exists()
    assert _unchanged(model, before)


@pytest.mark.parametrize("change,match", [
    (lambda a: a.pop("L2.n0.b"), "missing 'L2.n0.b'"),
    (lambda a: a.update({"L3.n0.w0": np.array(1.0)}), "unexpected 'L3.n0.w0'"),
    (lambda a: a.update({"L2.n0.b": np.ones(2)}), r"'L2.n0.b' has shape \(2,\)"),
    (lambda a: a.update({"L2.n0.b": np.array(1.0, np.float32)}), "'L2.n0.b' has dtype float32"),
    (lambda a: a.update({"L2.n0.b": np.array(3)}), "'L2.n0.b' has dtype int64"),
    (lambda a: a.update({"L2.n0.b": np.array(np.inf)}), "'L2.n0.b' holds non-finite"),
    (lambda a: a.update({"L2.n0.b": np.array(np.nan)}), "'L2.n0.b' holds non-finite"),
    (lambda a: a.pop("__tinygraph_meta__"), "no tinygraph metadata"),
    (lambda a: a.update({"__tinygraph_meta__": np.frombuffer(b'{"format": "x"}', np.uint8)}),
     "not a tinygraph parameter file"),
])
def test_mismatching_files_leave_the_model_unchanged(tmp_path, model, change, match):
    before = model.state_dict()
    arrays = {k: v + 1.0 for k, v in before.items()}  # a valid file would change every value
    arrays["__tinygraph_meta__"] = _meta_blob(model, tmp_path)
    change(arrays)
    path = tmp_path / "bad.npz"
    _write(path, arrays)
    with pytest.raises(tg.LoadError, match=match) as e:
        tg.load(model, path)
    assert isinstance(e.value, ValueError)
    assert _unchanged(model, before)


def test_garbage_and_foreign_members(tmp_path, model):
    before = model.state_dict()
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(tg.LoadError):
        tg.load(model, junk)
    odd = tmp_path / "odd.npz"
    tg.save(model, odd)
    with zipfile.ZipFile(odd, "a") as z:
        z.writestr("payload.pkl", pickle.dumps(_Payload(str(tmp_path / "pwned"))))
    with pytest.raises(tg.LoadError, match="payload.pkl"):
        tg.load(model, odd)
    assert not (tmp_path / "pwned").exists()
    assert _unchanged(model, before)


def test_missing_file_is_file_not_found_naming_the_path(tmp_path):
    m = nn.TensorMLP(2, [3, 1], seed=0)
    before = m.state_dict()
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=r"load: no such file: '.*nope\.npz'") as e:
        tg.load(m, missing)
    assert not isinstance(e.value, tg.LoadError) and e.value.filename == str(missing)
    with pytest.raises(tg.LoadError, match="is a directory, not a regular file"):
        tg.load(m, tmp_path)
    assert all(np.array_equal(before[k], v) for k, v in m.state_dict().items())


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_file_has_the_mode_of_a_normal_file(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        tg.save(nn.TensorMLP(2, [3, 1], seed=0), tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == mode  # not mkstemp's 0600
