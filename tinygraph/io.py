"""Safe save/load of a model's parameters: a .npz of named float arrays plus JSON metadata.

save() writes to a temporary file in the target's directory and renames it into place, so a crash
never leaves a half-written file under the real name; the temporary file is removed on every exit
path Python sees, and one left by a killed process is removed by the next save of the same target.

load() treats the file as hostile until proven otherwise. It reads regular files only (a FIFO,
device or directory is refused without blocking), refuses a file larger than the model's
parameters plus a metadata allowance, checks every member's declared size, compression,
encryption flag, dtype and shape against the model before reading any of its data, and never
reads more than a member needs, so neither a zip bomb nor a lying header makes it decompress or
allocate more than the model's own size. Nothing is unpickled, ever. Every failure is a LoadError
naming the file (and the parameter where one is involved), and the model is only assigned once
everything has been read and checked.
"""

from __future__ import annotations

import errno
import functools
import io
import json
import math
import os
import re
import stat
import tempfile
import time
import tokenize
import zipfile
import zlib
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy

from ._check import show
from .errors import ArgTypeError, InputError, LoadError
from .nn import Module, check_state

FORMAT = "tinygraph-params"
VERSION = 1
_META = "__tinygraph_meta__"  # a uint8 array holding the JSON metadata

# Limits of what load() accepts beyond the model's own parameters.
MAX_USER_METADATA = 1 << 20  # bytes of JSON for the user's metadata
MAX_METADATA_DEPTH = 64  # nesting of JSON arrays/objects in the metadata
_NPY_HEADER_MAX = 4096  # magic + header of one .npy member (numpy writes 128 bytes for ours)
_ZIP_ENTRY_OVERHEAD = 256  # local + central header, zip64 extras, data descriptor, per member
_ZIP_SLACK = 64 << 10  # end records, a comment, deflate's worst-case growth
_OK_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # what np.savez(_compressed) write

# fsync the file and its directory before save() returns: a power cut after save() then loses
# neither. Tests that write thousands of files may switch it off.
FSYNC = True

# ---------------------------------------------------------------------------------------------
# save
# ---------------------------------------------------------------------------------------------

_TMP_SUFFIX = ".tmp"


def _tmp_target(path: str) -> str:
    # The target's name, shortened so that the temporary name stays within 255 bytes.
    return os.fsdecode(os.fsencode(os.path.basename(path))[:100])


def _tmp_prefix(path: str) -> str:
    # ".{name}.{pid}." ties a temporary file to its target and to the process writing it.
    return f".{_tmp_target(path)}.{os.getpid()}."


_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]+\.tmp$", re.S)
_STALE_AGE = 3600.0  # seconds; without a way to ask whether a process lives (not POSIX)


def save(model: Module, path: str | os.PathLike[str],
         metadata: dict[str, Any] | None = None) -> None:
    """Write model's parameters to path (.npz) atomically, with optional JSON-able metadata.

    The metadata must serialize to at most MAX_USER_METADATA bytes of JSON nested at most
    MAX_METADATA_DEPTH deep (what load() accepts); otherwise LoadError, and nothing is written.
    """
    path = _check_args("save", model, path)
    if metadata is not None and not isinstance(metadata, dict):
        raise ArgTypeError(f"save: metadata must be a dict or None, got {show(metadata)}")
    state = model.state_dict()
    if _META in state:
        raise LoadError(f"save: a parameter is named {_META!r}, which the file format reserves")
    if metadata is not None and not isinstance(metadata, dict):
        raise LoadError(f"save: metadata must be a dict, got {type(metadata).__name__}")
    try:
        user = json.dumps(metadata or {}).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as e:
        raise LoadError(f"save: metadata is not JSON-serializable ({e})") from None
    if len(user) > MAX_USER_METADATA:
        raise LoadError(f"save: metadata is {len(user)} bytes of JSON; load() accepts at most "
                        f"{MAX_USER_METADATA}")
    if _json_depth(user) > MAX_METADATA_DEPTH - 1:  # it sits inside the file's own object
        raise LoadError(f"save: metadata is nested deeper than load() accepts "
                        f"({MAX_METADATA_DEPTH - 1} levels)")
    meta = {"format": FORMAT, "version": VERSION, "model": type(model).__name__,
            "parameters": list(state), "user": metadata or {}}
    arrays = dict(state)
    arrays[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    path = os.fsdecode(path)  # str, bytes or PathLike
    folder = os.path.dirname(os.path.abspath(path))
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=_TMP_SUFFIX, dir=folder)
    done = False
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            if FSYNC:
                os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode open() would have given.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        done = True
        if FSYNC:
            _fsync_dir(folder)
    finally:
        if not done:  # an exception, KeyboardInterrupt, SystemExit: no trace left
            try:
                os.remove(tmp)
            except FileNotFoundError:
                pass


def _write_npz(f: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    np.savez(f, **arrays)


def _check_args(who: str, model: Any, path: Any) -> str:
    """The path as a str, after checking the argument types (a path, and a Module to save or
    load)."""
    if not isinstance(model, Module):
        raise ArgTypeError(f"{who}: model must be a tinygraph.nn Module, got {show(model)}")
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise ArgTypeError(f"{who}: path must be a str, bytes or os.PathLike, got {show(path)}")
    path = os.fsdecode(os.fspath(path))
    if not isinstance(path, str) or not path or "\0" in path:
        raise InputError(f"{who}: path must be a non-empty file name, got {show(path)}")
    return path


def _umask() -> int:
    # The process umask can only be read by setting it: put it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: str) -> None:
    # Makes the rename itself durable; directories cannot be opened this way on Windows.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_temporaries(path: str) -> None:
    """Remove temporary files of path left by saves that were killed before they could."""
    folder = os.path.dirname(os.path.abspath(path))
    target = _tmp_target(path)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return  # mkstemp will report an unusable folder
    for entry in entries:
        m = _TMP_NAME.match(entry.name)
        if m is None or m["name"] != target:
            continue
        if not _stale(entry, int(m["pid"])):
            continue
        try:
            os.remove(entry.path)
        except OSError:
            pass  # gone already, or not ours to remove: it must not stop this save


def _stale(entry: os.DirEntry[str], pid: int) -> bool:
    if os.name == "posix":
        if pid == os.getpid():
            return False  # another thread's save in progress (this process's own end in finally)
        try:
            os.kill(pid, 0)  # signal 0 only asks whether the process exists
        except (ProcessLookupError, OverflowError):  # no such process (or no such pid)
            return True
        except PermissionError:
            return False  # alive, another user's
        return False  # alive: perhaps saving the same target right now
    try:
        return time.time() - entry.stat().st_mtime > _STALE_AGE
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------------------------

# What a hostile archive can make zipfile, zlib or the .npy header parser raise (RecursionError
# is a RuntimeError).
_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                RuntimeError, MemoryError, SyntaxError, tokenize.TokenError, OverflowError,
                KeyError, TypeError, IndexError, UnicodeError)


class _Bounded:
    """A read-only stream that hands out at most `left` bytes of the stream it wraps.

    Whatever a header claims, reading through it decompresses at most that many bytes (zipfile
    reads ahead at most one chunk of compressed input).
    """

    def __init__(self, raw: IO[bytes], left: int) -> None:
        self.raw, self.left, self.got = raw, left, 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.raw.read(n) if n else b""
        self.left -= len(data)
        self.got += len(data)
        return data


def _expected(model: Module) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    return {name: (np.dtype(p.dtype), tuple(p.shape)) for name, p in model.named_parameters()}


def _member_limit(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    return _NPY_HEADER_MAX + _nbytes(dtype, shape)


def _nbytes(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    return math.prod(shape) * dtype.itemsize  # the model's own shape: small Python ints


def _metadata_limit(names: list[str]) -> int:
    # The file's own keys and the parameter list, plus the user's allowance.
    return MAX_USER_METADATA + sum(len(json.dumps(n)) + 2 for n in names) + 4096


def read(path: str | os.PathLike[str], model: Module) -> tuple[dict[str, np.ndarray],
                                                                  dict[str, Any]]:
    """The arrays and metadata of a file saved for model, checked but not assigned.

    Raises LoadError naming the file (and the parameter) for anything that does not fit model;
    a missing path raises FileNotFoundError.
    """
    path = os.fsdecode(path)  # str, bytes or PathLike
    expected = _expected(model)
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        cap = (sum(_member_limit(*e) + _ZIP_ENTRY_OVERHEAD + 2 * len(n.encode()) + 8
                   for n, e in expected.items())
               + _metadata_limit(list(expected)) + _ZIP_ENTRY_OVERHEAD + _ZIP_SLACK)
        cap += cap // 64  # deflate's worst case on incompressible data
        if size > cap:
            raise LoadError(f"load: {path!r} is {size} bytes; a file of {type(model).__name__}'s "
                            f"parameters has at most {cap}")
        # Zip readers skip anything in front of the archive; numpy and tinygraph write none, and
        # a pickle could hide there.
        if f.read(4) != b"PK\x03\x04":
            raise LoadError(f"load: {path!r} is not a tinygraph .npz file (not a zip archive; "
                            "pickles and other formats are refused)")
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as z:
                return _read_archive(z, path, expected, type(model).__name__)
        except LoadError:
            raise
        except _READ_ERRORS as e:
            raise LoadError(f"load: cannot read {path!r} as .npz ({type(e).__name__}: {e})"
                            ) from None


def _open_regular(path: str) -> IO[bytes]:
    """path opened for reading if it is a regular file (following symlinks); never blocks."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "load: no such file", path) from None
    except OSError as e:
        raise LoadError(f"load: cannot read {path!r} ({e.strerror or e})") from None
    _require_regular(path, st.st_mode)
    # O_NONBLOCK: if path was swapped for a FIFO since the stat, open() still returns at once.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise LoadError(f"load: cannot open {path!r} ({e.strerror or e})") from None
    try:
        _require_regular(path, os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _require_regular(path: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a file")
    raise LoadError(f"load: {path!r} is {kind}, not a regular file")


def _read_archive(z: zipfile.ZipFile, path: str, expected: dict[str, tuple[np.dtype, tuple]],
                  model_name: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in z.infolist():
        if info.filename in infos:
            raise LoadError(f"load: {path!r} holds member {info.filename!r} twice")
        infos[info.filename] = info
    meta_info = infos.pop(_META + ".npy", None)
    if meta_info is None:
        raise LoadError(f"load: {path!r} has no tinygraph metadata; was it written by "
                        "tinygraph.save?")
    meta = _read_metadata(z, meta_info, path, list(expected))

    foreign = [n for n in infos if not n.endswith(".npy")]
    if foreign:
        raise LoadError(f"load: {path!r} holds members that are not .npy arrays: "
                        f"{_some(foreign)}")
    names = {n[:-len(".npy")]: info for n, info in infos.items()}
    missing = [n for n in expected if n not in names]
    extra = [n for n in names if n not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {_some(missing)}")
        if extra:
            parts.append(f"unexpected {_some(extra)}")
        raise LoadError(f"load: {path!r} does not fit {model_name}: {'; '.join(parts)}")

    # Every member's zip entry and .npy header first, then the data: a file that fails
    # anywhere fails before the bulk of it is read. One member open at a time.
    headers = {name: _check_member(z, names[name], path, name, dtype, shape)
               for name, (dtype, shape) in expected.items()}
    state = {name: _read_member(z, names[name], path, name, dtype, shape, *headers[name])
             for name, (dtype, shape) in expected.items()}
    return state, meta


def _some(names: list[str], most: int = 10) -> str:
    # A hostile file can hold thousands of members: name the first few.
    shown = ", ".join(map(repr, names[:most]))
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _open(z: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, what: str,
          limit: int) -> _Bounded:
    """The member's stream, bounded to limit bytes, after checking its zip entry."""
    if info.flag_bits & 0x1:
        raise LoadError(f"load: {path!r}: {what} is encrypted")
    if info.compress_type not in _OK_COMPRESSION:
        raise LoadError(f"load: {path!r}: {what} uses compression method "
                        f"{info.compress_type}; only stored and deflated members are read")
    if info.file_size > limit:
        raise LoadError(f"load: {path!r}: {what} declares {info.file_size} bytes; the model "
                        f"needs at most {limit}")
    try:
        return _Bounded(z.open(info), limit)
    except _READ_ERRORS as e:
        raise LoadError(f"load: {path!r}: {what} cannot be read ({type(e).__name__}: {e})"
                        ) from None


def _read_header(raw: _Bounded, path: str, what: str) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) from the .npy header: a literal, never unpickled."""
    try:
        version = npy.read_magic(raw)
        if version == (1, 0):
            return npy.read_array_header_1_0(raw, _NPY_HEADER_MAX)
        if version == (2, 0):
            return npy.read_array_header_2_0(raw, _NPY_HEADER_MAX)
    except _READ_ERRORS as e:
        raise LoadError(f"load: {path!r}: {what} has no valid .npy header "
                        f"({type(e).__name__}: {e})") from None
    raise LoadError(f"load: {path!r}: {what} has .npy format version {version}; 1.0 and 2.0 "
                    "are read")


def _check_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, name: str,
                  dtype: np.dtype, shape: tuple[int, ...]) -> tuple[int, bool]:
    """Check a parameter's zip entry and .npy header against the model, reading no data.

    Returns the header's length and whether the data is in Fortran order.
    """
    what = f"parameter {name!r}"
    usual = _usual_header(dtype, shape)
    raw = _open(z, info, path, what, _member_limit(dtype, shape))
    try:
        # Fast path: byte for byte the header numpy writes for this parameter.
        if _take(raw, len(usual), path, what, exact=False) == usual:
            got_shape, fortran, got_dtype = shape, False, dtype
        else:
            raw.raw.close()
            raw = _open(z, info, path, what, _member_limit(dtype, shape))
            got_shape, fortran, got_dtype = _read_header(raw, path, what)
    finally:
        raw.raw.close()
    if got_dtype.hasobject:  # would need unpickling: never
        raise LoadError(f"load: {path!r}: {what} has dtype {got_dtype} (Python objects); "
                        "refused, nothing is unpickled")
    if got_dtype != dtype:
        swapped = (" (the same type in the other byte order: write the file with native "
                   "arrays, a.astype(a.dtype.newbyteorder('=')))"
                   if got_dtype.newbyteorder("=") == dtype else "")
        raise LoadError(f"load: {path!r}: {what} has dtype {got_dtype}, the model's is "
                        f"{dtype}{swapped}")
    if tuple(got_shape) != shape:
        raise LoadError(f"load: {path!r}: {what} has shape {tuple(got_shape)}, the model's is "
                        f"{shape}")
    if info.file_size != raw.got + _nbytes(dtype, shape):
        raise LoadError(f"load: {path!r}: {what} declares {info.file_size} bytes; its header "
                        f"and data take {raw.got + _nbytes(dtype, shape)}")
    return raw.got, fortran


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, name: str,
                 dtype: np.dtype, shape: tuple[int, ...], header: int,
                 fortran: bool) -> np.ndarray:
    """A parameter's data, whose entry and header _check_member accepted."""
    what = f"parameter {name!r}"
    n = _nbytes(dtype, shape)
    raw = _open(z, info, path, what, header + n + 1)  # a byte more finds an overlong member
    try:
        _take(raw, header, path, what)
        data = _take(raw, n, path, what, last=True)
    finally:
        raw.raw.close()
    a = np.frombuffer(data, dtype=dtype)
    a = a.reshape(shape[::-1]).T if fortran else a.reshape(shape)
    return np.array(a, dtype=dtype, order="C")  # writable, owning its memory


@functools.lru_cache(maxsize=256)
def _usual_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The .npy magic and header numpy writes for a C-ordered array of dtype and shape."""
    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": npy.dtype_to_descr(dtype),
                                     "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _take(raw: _Bounded, n: int, path: str, what: str, last: bool = False,
          exact: bool = True) -> bytes:
    """Exactly n bytes of raw (up to n if not exact); with last=True, the member must end there."""
    chunks, got = [], 0
    try:
        while got < n:
            c = raw.read(n - got)
            if not c:
                if not exact:
                    break
                raise LoadError(f"load: {path!r}: {what} is truncated ({got} of {n} bytes)")
            chunks.append(c)
            got += len(c)
        # Reading past the end makes zipfile check the CRC.
        more = raw.read(1) if last else b""
    except _READ_ERRORS as e:
        raise LoadError(f"load: {path!r}: {what} cannot be read ({type(e).__name__}: {e})"
                        ) from None
    if more:
        raise LoadError(f"load: {path!r}: {what} holds more data than its header declares")
    return b"".join(chunks)


def _read_metadata(z: zipfile.ZipFile, info: zipfile.ZipInfo, path: str,
                   names: list[str]) -> dict[str, Any]:
    limit = _metadata_limit(names)
    what = "the metadata"
    raw = _open(z, info, path, what, _NPY_HEADER_MAX + limit)
    try:
        shape, _, dtype = _read_header(raw, path, what)
        if dtype != np.uint8 or len(shape) != 1:
            raise LoadError(f"load: {path!r} has no tinygraph metadata (a {dtype} array of shape "
                            f"{shape}); was it written by tinygraph.save?")
        if shape[0] > limit:
            raise LoadError(f"load: {path!r}: {what} is {shape[0]} bytes; at most {limit} "
                            "are read")
        if info.file_size != raw.got + shape[0]:
            raise LoadError(f"load: {path!r}: {what} declares {info.file_size} bytes; its "
                            f"header and data take {raw.got + shape[0]}")
        raw.left = shape[0] + 1
        blob = _take(raw, shape[0], path, what, last=True)
    finally:
        raw.raw.close()
    if _json_depth(blob) > MAX_METADATA_DEPTH:
        raise LoadError(f"load: {path!r}: {what} is nested deeper than "
                        f"{MAX_METADATA_DEPTH} levels")
    try:
        meta = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise LoadError(f"load: {path!r}: {what} is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LoadError(f"load: {path!r} is not a tinygraph parameter file")
    if meta.get("version") != VERSION:
        raise LoadError(f"load: {path!r} has format version {meta.get('version')!r}; this "
                        f"tinygraph reads version {VERSION}")
    if not isinstance(meta.get("user", {}), dict):
        raise LoadError(f"load: {path!r}: {what} has no user metadata object")
    return meta


# A JSON string, escapes included; the unrolled form never backtracks.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
# Brackets to +1 / -1 (as int8), everything else to 0.
_NESTING = bytes(1 if c in b"[{" else 255 if c in b"]}" else 0 for c in range(256))


def _json_depth(blob: bytes) -> int:
    """How deeply arrays and objects nest in JSON text, counted without parsing it.

    json.loads recurses once per level, so deep input would exhaust the stack (RecursionError,
    or in C a crash); this count is linear and iterative.
    """
    steps = np.frombuffer(_JSON_STRING.sub(b"", blob).translate(_NESTING), np.int8)
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def load(model: Module, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load parameters saved by save() into model; returns the user metadata.

    Names, shapes, dtypes and finiteness are all checked first: on any mismatch or damage a
    LoadError names the file and the parameter and the model is left unchanged. A missing file
    raises FileNotFoundError.
    """
    path = _check_args("load", model, path)
    state, meta = read(path, model)
    try:
        checked, _ = check_state(model, state)  # finiteness; names, shapes and dtypes again
    except LoadError as e:
        raise LoadError(f"load: {path!r}: {str(e).removeprefix('load: ')}") from None
    for p, value in checked:  # everything is checked: now assign all
        p.data = value
    return meta.get("user", {})

