"""Hostile files for load() and killed saves: every case a LoadError naming the file (and the
parameter), bounded memory, no hang, no pickle run, and the model unchanged.

The archives are written byte by byte (tests/test_io_hostile.py's own small zip writer), so that
every field a zip reader trusts can lie: sizes, flags, compression methods, duplicate names.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import tracemalloc
import zlib

import numpy as np
import pytest
from numpy.lib import format as npy

import tinygraph as tg
import tinygraph.io as tgio
from tinygraph import nn

GiB = 1 << 30
MEMORY_BOUND = 16 << 20  # peak bytes any refused load may allocate (the model is 13 floats)

# --- building archives ---------------------------------------------------------------------------


def _npy(descr: str, shape: tuple, data: bytes = b"", *, version: int = 1,
         header: str | None = None, length: int | None = None) -> bytes:
    """A .npy member: magic, header (or the given header text), data."""
    if header is None:
        header = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    fmt = "<H" if version == 1 else "<I"
    pad = -(10 + (version - 1) * 2 + len(header) + 1) % 64
    text = (header + " " * pad + "\n").encode("latin1")
    return (b"\x93NUMPY" + bytes([version, 0])
            + struct.pack(fmt, len(text) if length is None else length) + text + data)


def _array(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


class Entry:
    """One zip member; every field may be set to a lie."""

    def __init__(self, name: str, raw: bytes, *, deflate: bool = False, method: int | None = None,
                 flag: int = 0, size: int | None = None, crc: int | None = None,
                 payload: bytes | None = None, zip64: bool = False) -> None:
        self.name = name.encode()
        if payload is None:
            if deflate:
                c = zlib.compressobj(9, zlib.DEFLATED, -15)
                payload = c.compress(raw) + c.flush()
            else:
                payload = raw
        self.payload = payload
        self.method = method if method is not None else (8 if deflate else 0)
        self.flag, self.size = flag, len(raw) if size is None else size
        self.crc = zlib.crc32(raw) if crc is None else crc
        self.extra = b""
        if zip64:  # sizes in a zip64 extra field: up to 2**64 - 1
            self.extra = struct.pack("<HHQQ", 1, 16, self.size, len(self.payload))


def _zip(path, entries: list[Entry]) -> None:
    out, central = bytearray(), bytearray()
    for e in entries:
        offset = len(out)
        size, csize = (0xFFFFFFFF, 0xFFFFFFFF) if e.extra else (e.size, len(e.payload))
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, e.flag, e.method, 0, 0x21, e.crc,
                           csize, size, len(e.name), len(e.extra)) + e.name + e.extra + e.payload
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 45, e.flag, e.method, 0, 0x21,
                               e.crc, csize, size, len(e.name), len(e.extra), 0, 0, 0, 0,
                               offset) + e.name + e.extra
    n = len(entries)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))


def _meta(model: nn.Module, user: str = "{}") -> bytes:
    names = ", ".join(f'"{n}"' for n, _ in model.named_parameters())
    text = (f'{{"format": "tinygraph-params", "version": 1, "model": "{type(model).__name__}", '
            f'"parameters": [{names}], "user": {user}}}')
    return _array(np.frombuffer(text.encode(), np.uint8))


def _genuine(model: nn.Module, **replace: Entry | None) -> list[Entry]:
    """The members of a valid file for model with every value changed (loading it would change
    the model), with members replaced (or dropped, given None) by parameter name."""
    entries = []
    for name, p in model.named_parameters():
        e = replace.pop(name, Entry(f"{name}.npy", _array(np.asarray(p.data) + 1.0)))
        if e is not None:
            entries.append(e)
    meta = replace.pop("meta", Entry("__tinygraph_meta__.npy", _meta(model)))
    assert not replace, replace
    if meta is not None:
        entries.append(meta)
    return entries


@functools.cache
def _bomb(name: str, declared: int = GiB, shape: tuple | None = None) -> Entry:
    """A member whose .npy header (declaring shape, by default all of it) is followed by
    `declared` bytes of zeros, deflated ~1000:1 into ~1 MiB."""
    header = _npy("<f8", (declared // 8,) if shape is None else shape)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib = bytes(1 << 20)
    first = c.compress(header + mib) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)  # the window is all zeros: repeats
    payload = first + block * (declared // (1 << 20) - 1) + c.flush()
    return Entry(f"{name}.npy", b"", payload=payload, method=8, size=len(header) + declared,
                 crc=0)


@pytest.fixture
def model() -> nn.Module:
    return nn.TensorMLP(2, [3, 1], seed=0)  # L1.W (2, 3), L1.b (3,), L2.W (3, 1), L2.b (1,)


def _refused(model: nn.Module, path, *names: str) -> str:
    """Load path; assert a LoadError naming the file and names, bounded memory, no change."""
    before = model.state_dict()
    tracemalloc.start()
    try:
        with pytest.raises(tg.LoadError) as e:
            tg.load(model, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(e.value)
    assert repr(os.fspath(path)) in msg, msg
    for n in names:
        assert n in msg, (n, msg)
    assert peak < MEMORY_BOUND, peak
    after = model.state_dict()
    assert all(before[k].tobytes() == after[k].tobytes() for k in before)
    return msg


# --- the catalogue -------------------------------------------------------------------------------

OBJ_PAYLOAD = "pwned"  # file an unpickled payload would create, relative: tests chdir first


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@functools.cache
def _cases() -> dict[str, tuple[list[Entry], tuple[str, ...]]]:
    """name: (members, what the message must name), for the model of the fixture below."""
    model = nn.TensorMLP(2, [3, 1], seed=0)
    shape_w = (2, 3)
    data_w = np.ones(shape_w).tobytes()
    good_w = _npy("<f8", shape_w, data_w)
    marker = OBJ_PAYLOAD
    deep = "[" * 100_000 + "]" * 100_000
    return {
        "zip bomb: 1 GiB declared": (_genuine(model, **{"L1.W": _bomb("L1.W")}),
                                     ("'L1.W'", "declares")),
        "zip bomb under an honest-looking size": (
            _genuine(model, **{"L1.W": Entry("L1.W.npy", b"", method=8, crc=0,
                                             payload=_bomb("L1.W", shape=shape_w).payload,
                                             size=len(good_w))}),
            ("'L1.W'", "CRC")),  # zipfile stops at the declared size, then checks the CRC
        "declared shape 10**12": (
            _genuine(model, **{"L1.W": Entry("L1.W.npy", _npy("<f8", (10**12,), data_w))}),
            ("'L1.W'", "shape (1000000000000,)")),
        "declared shape 10**12 and a 4 GiB member": (
            _genuine(model, **{"L1.W": Entry("L1.W.npy", b"", size=0xFFFF_FFFE,
                                             payload=_npy("<f8", (10**12,), data_w))}),
            ("'L1.W'", "declares 4294967294 bytes")),
        "zip64 member declaring 2**60 bytes": (
            _genuine(model, **{"L1.W": Entry("L1.W.npy", good_w, size=1 << 60, zip64=True)}),
            ("'L1.W'", f"declares {1 << 60} bytes")),
        "object dtype with a pickle payload": (
            _genuine(model, **{"L1.W": Entry("L1.W.npy", _npy(
                "|O", shape_w, pickle.dumps(np.array([_Payload(marker)] * 6, object))))}),
            ("'L1.W'", "object")),
        "int64 dtype": (_genuine(model, **{"L1.W": Entry("L1.W.npy", _npy("<i8", shape_w,
                                                                          data_w))}),
                        ("'L1.W'", "int64")),
        "big-endian float": (_genuine(model, **{"L1.W": Entry("L1.W.npy", _npy(">f8", shape_w,
                                                                               data_w))}),
                             ("'L1.W'", ">f8")),
        "structured dtype": (_genuine(model, **{"L1.W": Entry("L1.W.npy", _npy(
            [("a", "<f8")], shape_w, data_w))}), ("'L1.W'",)),
        "header the tokenizer cannot read": (
            _genuine(model, **{"L1.W": Entry("L1.W.npy", _npy("", (), data_w, header=(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), 'x': '''")))}),
            ("'L1.W'", "header")),
        "header that is not a dict": (
            _genuine(model, **{"L1.W": Entry("L1.W.npy", _npy("", (), data_w, header="[1, 2]"))}),
            ("'L1.W'", "header")),
        "header nested 1000 deep": (
            _genuine(model, **{"L1.W": Entry("L1.W.npy", _npy("", (), data_w,
                                                              header="(" * 1000 + ")" * 1000))}),
            ("'L1.W'", "header")),
        "header length 4 GiB": (
            _genuine(model, **{"L1.W": Entry("L1.W.npy", _npy("<f8", shape_w, data_w, version=2,
                                                              length=0xFFFFFFFF))}),
            ("'L1.W'", "header")),
        "npy format 3.0": (_genuine(model, **{"L1.W": Entry("L1.W.npy", _npy(
            "<f8", shape_w, data_w, version=3))}), ("'L1.W'", "version")),
        "not npy at all": (_genuine(model, **{"L1.W": Entry("L1.W.npy", b"\x80\x04junk" * 10)}),
                           ("'L1.W'",)),
        "data shorter than the header says": (
            _genuine(model, **{"L1.W": Entry("L1.W.npy", good_w[:-8])}), ("'L1.W'",)),
        "data longer than the header says": (
            _genuine(model, **{"L1.W": Entry("L1.W.npy", good_w + bytes(8))}), ("'L1.W'",)),
        "wrong CRC": (_genuine(model, **{"L1.W": Entry("L1.W.npy", good_w, crc=1)}),
                      ("'L1.W'", "CRC")),
        "encrypted member": (_genuine(model, **{"L1.b": Entry("L1.b.npy", _npy(
            "<f8", (3,), bytes(24)), flag=0x1)}), ("'L1.b'", "encrypted")),
        "compression method 99": (_genuine(model, **{"L1.b": Entry("L1.b.npy", _npy(
            "<f8", (3,), bytes(24)), method=99)}), ("'L1.b'", "compression method 99")),
        "bzip2 member": (_genuine(model, **{"L1.b": Entry("L1.b.npy", _npy(
            "<f8", (3,), bytes(24)), method=12)}), ("'L1.b'", "compression method 12")),
        "broken deflate stream": (_genuine(model, **{"L1.b": Entry(
            "L1.b.npy", _npy("<f8", (3,), bytes(24)), method=8, payload=b"\xff" * 200)}),
            ("'L1.b'",)),
        "duplicate member": (_genuine(model) + [Entry("L1.W.npy", good_w)], ("'L1.W.npy'",
                                                                               "twice")),
        "missing parameter": (_genuine(model, **{"L2.b": None}), ("missing 'L2.b'",)),
        "extra parameter": (_genuine(model) + [Entry("L3.W.npy", good_w)], ("unexpected 'L3.W'",)),
        "a pickle member": (_genuine(model) + [Entry("evil.pkl", pickle.dumps(_Payload(marker)))],
                            ("'evil.pkl'",)),
        "no metadata": (_genuine(model, meta=None), ("no tinygraph metadata",)),
        "metadata nested 10**5 deep": (
            _genuine(model, meta=Entry("__tinygraph_meta__.npy", _meta(model, deep))),
            ("metadata", "nested")),
        "metadata nested 10**5 deep inside strings is fine, outside not": (
            _genuine(model, meta=Entry("__tinygraph_meta__.npy", _meta(
                model, '{"s": "' + "[" * 1000 + '\\"' + '", "x": ' + deep + "}"))),
            ("metadata", "nested")),
        "metadata declaring 100 MB": (
            _genuine(model, meta=Entry("__tinygraph_meta__.npy", _meta(model), size=100 << 20)),
            ("metadata", "declares")),
        "metadata with a 10**6-digit number": (
            _genuine(model, meta=Entry("__tinygraph_meta__.npy", _meta(model, "9" * 10**6),
                                       deflate=True)),
            ("metadata",)),
        "metadata not UTF-8": (
            _genuine(model, meta=Entry("__tinygraph_meta__.npy", _array(
                np.frombuffer(b'{"format": "\xff"}', np.uint8)))), ("metadata", "JSON")),
        "metadata of another dtype": (
            _genuine(model, meta=Entry("__tinygraph_meta__.npy", _array(np.zeros(3)))),
            ("no tinygraph metadata",)),
        "metadata user field not an object": (
            _genuine(model, meta=Entry("__tinygraph_meta__.npy", _meta(model, "[1]"))),
            ("metadata",)),
        "non-finite value": (_genuine(model, **{"L1.b": Entry("L1.b.npy", _array(
            np.array([0.0, np.nan, 1.0])))}), ("'L1.b'", "non-finite")),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_hostile_archive_is_refused(tmp_path, monkeypatch, model, case):
    monkeypatch.chdir(tmp_path)
    entries, names = _cases()[case]
    path = tmp_path / "hostile.npz"
    _zip(path, entries)
    _refused(model, path, *names)
    assert not (tmp_path / OBJ_PAYLOAD).exists()


def test_the_zip_writer_writes_files_that_load(tmp_path, model):
    # The catalogue's archives differ from this one only in what each case changes.
    path = tmp_path / "genuine.npz"
    _zip(path, _genuine(model))
    before = model.state_dict()
    assert tg.load(model, path) == {}
    after = model.state_dict()
    assert all(np.array_equal(after[k], before[k] + 1.0) for k in before)
    deflated = tmp_path / "deflated.npz"
    _zip(deflated, [Entry(e.name.decode(), e.payload, deflate=True) for e in _genuine(model)])
    tg.load(model, deflated)
    assert all(np.array_equal(model.state_dict()[k], before[k] + 2.0) for k in before)
    # Fortran order and .npy format 2.0 are read as numpy writes them.
    w = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    buf = io.BytesIO()
    npy.write_array(buf, np.array([7.0, 8.0, 9.0]), version=(2, 0))
    other = tmp_path / "other.npz"
    _zip(other, _genuine(model, **{"L1.W": Entry("L1.W.npy", _array(w)),
                                   "L1.b": Entry("L1.b.npy", buf.getvalue())}))
    tg.load(model, other)
    assert np.array_equal(model.state_dict()["L1.W"], w)
    assert model.state_dict()["L1.W"].flags.c_contiguous
    assert np.array_equal(model.state_dict()["L1.b"], [7.0, 8.0, 9.0])


def test_a_large_model_round_trips(tmp_path):
    a, b = nn.TensorMLP(784, [256, 10], seed=0), nn.TensorMLP(784, [256, 10], seed=1)
    tg.save(a, tmp_path / "big.npz", metadata={"note": "x" * 100_000})
    assert tg.load(b, tmp_path / "big.npz") == {"note": "x" * 100_000}
    assert all(np.array_equal(u, v) for u, v in zip(a.state_dict().values(),
                                                    b.state_dict().values()))


@pytest.mark.parametrize("cut", [0, 3, 30, 200, -100, -23, -1])
def test_truncated_archive(tmp_path, model, cut):
    good = tmp_path / "good.npz"
    tg.save(nn.TensorMLP(2, [3, 1], seed=1), good)
    data = good.read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[:cut])
    _refused(model, path)


def test_pickle_in_front_of_a_genuine_archive(tmp_path, model):
    good = tmp_path / "good.npz"
    tg.save(nn.TensorMLP(2, [3, 1], seed=1), good)
    path = tmp_path / "hybrid.npz"
    path.write_bytes(pickle.dumps(_Payload(str(tmp_path / OBJ_PAYLOAD))) + good.read_bytes())
    _refused(model, path, "not a zip archive")
    assert not (tmp_path / OBJ_PAYLOAD).exists()


def test_thousands_of_members(tmp_path, model):
    path = tmp_path / "many.npz"
    _zip(path, _genuine(model) + [Entry(f"x{i}.npy", b"") for i in range(10_000)])
    msg = _refused(model, path, "unexpected 'x0'", "and 9990 more")
    assert len(msg) < 1000


def test_file_far_larger_than_the_model(tmp_path, model):
    path = tmp_path / "sparse.npz"
    with open(path, "wb") as f:
        f.truncate(GiB)  # sparse: costs no disk
    _refused(model, path, "1073741824 bytes")


def test_metadata_over_the_size_cap(tmp_path, model):
    path = tmp_path / "big-meta.npz"
    _zip(path, _genuine(model, meta=Entry("__tinygraph_meta__.npy", _meta(
        model, '"' + "x" * (tgio.MAX_USER_METADATA + 100_000) + '"'), deflate=True)))
    assert path.stat().st_size < 100_000  # passes the file-size cap: the member cap stops it
    _refused(model, path, "metadata")


# --- not regular files ---------------------------------------------------------------------------


def _refused_without_hanging(model, path, *names) -> None:
    result: list[BaseException | str] = []

    def run() -> None:
        try:
            result.append(_refused(model, path, *names))
        except BaseException as e:  # reported by the main thread
            result.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout=20)
    if t.is_alive():
        # Unblock a reader stuck in open() of the FIFO, so the test run can end.
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        pytest.fail(f"load({path}) blocked")
    if isinstance(result[0], BaseException):
        raise result[0]


posix_only = pytest.mark.skipif(os.name != "posix", reason="FIFOs, devices, sockets")


@posix_only
def test_fifo(tmp_path, model):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    _refused_without_hanging(model, fifo, "FIFO")


@posix_only
def test_symlink_to_a_fifo(tmp_path, model):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "model.npz"
    link.symlink_to(fifo)
    _refused_without_hanging(model, link, "FIFO")


@posix_only
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero(model):
    _refused(model, "/dev/zero", "device")


@posix_only
def test_socket(tmp_path, model):
    path = tmp_path / "s.npz"
    if len(str(path)) > 100:
        pytest.skip("socket path too long")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(path))
        _refused(model, path, "socket")
    finally:
        s.close()


def test_directory(tmp_path, model):
    _refused(model, tmp_path, "directory")


def test_symlink_to_a_regular_file_loads(tmp_path, model):
    target = tmp_path / "real.npz"
    tg.save(nn.TensorMLP(2, [3, 1], seed=1), target)
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    tg.load(model, link)
    assert all(np.array_equal(a, b) for a, b in zip(
        model.state_dict().values(), nn.TensorMLP(2, [3, 1], seed=1).state_dict().values()))


# --- under a hard memory cap ---------------------------------------------------------------------

_CAPPED = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import tinygraph as tg
    from tinygraph import nn
    model = nn.TensorMLP(2, [3, 1], seed=0)
    before = model.state_dict()
    # Address space now plus 256 MiB: a load that decompressed or allocated 1 GiB would fail.
    with open("/proc/self/statm") as f:
        vm = int(f.read().split()[0]) * resource.getpagesize()
    cap = vm + (256 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        np.ones(1 << 27)  # 1 GiB: the cap must stop this, else the test proves nothing
        print("cap not effective")
    except MemoryError:
        print("cap effective")
    for path in sys.argv[1:]:
        try:
            tg.load(model, path)
            print("loaded", path)
        except tg.LoadError:
            print("LoadError")
        except BaseException as e:
            print(type(e).__name__, e)
    after = model.state_dict()
    print("unchanged" if all((before[k] == after[k]).all() for k in before) else "changed")
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc")
def test_hostile_files_under_a_memory_cap(tmp_path, model):
    cases = _cases()
    paths = []
    for case in ["zip bomb: 1 GiB declared", "zip bomb under an honest-looking size",
                 "declared shape 10**12", "declared shape 10**12 and a 4 GiB member",
                 "metadata nested 10**5 deep", "metadata with a 10**6-digit number"]:
        paths.append(tmp_path / f"{len(paths)}.npz")
        _zip(paths[-1], cases[case][0])
    sparse = tmp_path / "sparse.npz"
    with open(sparse, "wb") as f:
        f.truncate(4 * GiB)
    paths += [sparse, "/dev/zero"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _CAPPED, *map(str, paths)], capture_output=True,
                         text=True, timeout=120, env=env, cwd=os.path.dirname(tg.__path__[0]))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines == ["cap effective"] + ["LoadError"] * len(paths) + ["unchanged"], out.stdout


# --- save: temporary files -----------------------------------------------------------------------


def _temporaries(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp"))


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, exc):
    old = nn.TensorMLP(2, [3, 1], seed=1)
    path = tmp_path / "m.npz"
    tg.save(old, path)

    def fail(f, arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise exc

    monkeypatch.setattr(tgio, "_write_npz", fail)
    with pytest.raises(type(exc)):
        tg.save(nn.TensorMLP(2, [3, 1], seed=2), path)
    assert os.listdir(tmp_path) == ["m.npz"]
    m = nn.TensorMLP(2, [3, 1], seed=0)
    tg.load(m, path)
    assert all(np.array_equal(a, b) for a, b in zip(m.state_dict().values(),
                                                    old.state_dict().values()))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@posix_only
def test_stale_temporaries_of_the_same_target_are_removed(tmp_path):
    dead = _dead_pid()
    stale = [f".m.npz.{dead}.abc_123x.tmp", f".m.npz.{dead}.zz99zz99.tmp"]
    keep = [f".m.npz.{os.getppid()}.abcd1234.tmp",  # a live process may be saving right now
            f".m.npz.{os.getpid()}.abcd1234.tmp",  # as may another thread of this one
            f".other.npz.{dead}.abcd1234.tmp",  # another target's
            ".m.npz.tmp", "m.npz.backup", ".m.npz.x.y.tmp"]  # not our pattern
    for n in stale + keep:
        (tmp_path / n).write_bytes(b"x")
    tg.save(nn.TensorMLP(2, [3, 1], seed=0), tmp_path / "m.npz")
    assert sorted(os.listdir(tmp_path)) == sorted(keep + ["m.npz"])


def test_temporary_names_of_long_and_odd_targets(tmp_path):
    for name in ["é" * 120 + ".npz", "a\nb.npz", "x" * 250]:
        path = tmp_path / name
        (tmp_path / f".{tgio._tmp_target(str(path))}.{_dead_pid()}.abcd1234.tmp").write_bytes(b"")
        tg.save(nn.TensorMLP(2, [3, 1], seed=0), path)
        assert _temporaries(tmp_path) == []


def test_save_refuses_metadata_that_load_would_refuse(tmp_path):
    m = nn.TensorMLP(2, [3, 1], seed=0)
    deep: list = []
    for _ in range(100):
        deep = [deep]
    cases = [({"x": "y" * (tgio.MAX_USER_METADATA + 1)}, "bytes"), ({"x": deep}, "nested"),
             ({"x": {1, 2}}, "JSON")]
    cases = [(m, match, tg.LoadError) for m, match in cases]
    cases.append(([1, 2], "must be a dict", tg.ArgTypeError))  # the wrong type: a TypeError
    for metadata, match, error in cases:
        with pytest.raises(error, match=match):
            tg.save(m, tmp_path / "m.npz", metadata=metadata)
    assert os.listdir(tmp_path) == []
    nested: dict = {}  # depth 1; the file's own object adds one level
    for _ in range(tgio.MAX_METADATA_DEPTH - 2):
        nested = {"k": nested}
    tg.save(m, tmp_path / "m.npz", metadata=nested)  # the deepest accepted
    assert tg.load(m, tmp_path / "m.npz") == nested
    with pytest.raises(tg.LoadError, match="nested"):
        tg.save(m, tmp_path / "m.npz", metadata={"k": nested})


def test_saves_of_one_target_from_threads_do_not_remove_each_others_files(tmp_path):
    path = tmp_path / "m.npz"
    models = [nn.TensorMLP(2, [8, 8, 1], seed=s) for s in range(2)]
    errors: list[BaseException] = []

    def run(m) -> None:
        try:
            for _ in range(15):
                tg.save(m, path)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert os.listdir(tmp_path) == ["m.npz"]
    tg.load(nn.TensorMLP(2, [8, 8, 1], seed=5), path)


_SAVER = textwrap.dedent("""
    import sys, time
    import tinygraph as tg
    import tinygraph.io as tgio
    from tinygraph import nn
    path = sys.argv[1]
    models = [nn.TensorMLP(4, [64, 64, 1], seed=s) for s in (1, 2)]
    real = tgio._write_npz

    def slow(f, arrays):  # the same bytes, written in small pieces: kills land mid-write
        import io
        buf = io.BytesIO()
        real(buf, arrays)
        data = buf.getvalue()
        for i in range(0, len(data), 2048):
            f.write(data[i:i + 2048])
            f.flush()
            time.sleep(0.0005)

    tgio._write_npz = slow
    tg.save(models[0], path)
    print("ready", flush=True)
    i = 1
    while True:
        tg.save(models[i % 2], path)
        i += 1
""")


@posix_only
def test_save_killed_mid_write(tmp_path):
    path = tmp_path / "m.npz"
    versions = [nn.TensorMLP(4, [64, 64, 1], seed=s).state_dict() for s in (1, 2)]
    rng = np.random.default_rng(0)
    leftovers = 0
    for _ in range(5):
        child = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)],
                                 stdout=subprocess.PIPE, text=True,
                                 cwd=os.path.dirname(tg.__path__[0]))
        try:
            assert child.stdout.readline() == "ready\n"
            threading.Event().wait(rng.uniform(0.0, 0.08))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        # The target is whole: one of the two versions, bit for bit.
        m = nn.TensorMLP(4, [64, 64, 1], seed=0)
        tg.load(m, path)
        got = m.state_dict()
        assert any(all(got[k].tobytes() == v[k].tobytes() for k in v) for v in versions)
        leftovers = max(leftovers, len(_temporaries(tmp_path)))
    assert leftovers >= 1  # the kills did land mid-write, leaving what the next save removes
    tg.save(nn.TensorMLP(4, [64, 64, 1], seed=3), path)
    assert os.listdir(tmp_path) == ["m.npz"]
