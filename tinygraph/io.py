"""Safe save/load of a model's parameters: a .npz of named float arrays plus JSON metadata.

save() writes to a temporary file in the target's directory and renames it into place, so a crash
never leaves a half-written file under the real name. load() reads with allow_pickle=False and has
no pickle fallback: a file carrying a pickle payload (or an object array) is rejected before any of
it runs. Every name, shape, dtype and value is checked against the model before anything is
assigned, so a file that does not fit leaves the model unchanged.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

from ._check import show
from .errors import ArgTypeError, InputError, LoadError
from .nn import Module

FORMAT = "tinygraph-params"
VERSION = 1
_META = "__tinygraph_meta__"  # a uint8 array holding the JSON metadata


def save(model: Module, path: str | os.PathLike[str],
         metadata: dict[str, Any] | None = None) -> None:
    """Write model's parameters to path (.npz) atomically, with optional JSON-able metadata."""
    path = _check_args("save", model, path)
    if metadata is not None and not isinstance(metadata, dict):
        raise ArgTypeError(f"save: metadata must be a dict or None, got {show(metadata)}")
    state = model.state_dict()
    if _META in state:
        raise LoadError(f"save: a parameter is named {_META!r}, which the file format reserves")
    meta = {"format": FORMAT, "version": VERSION, "model": type(model).__name__,
            "parameters": list(state), "user": metadata or {}}
    try:
        blob = json.dumps(meta).encode("utf-8")
    except TypeError as e:
        raise LoadError(f"save: metadata is not JSON-serializable ({e})") from None
    arrays = dict(state)
    arrays[_META] = np.frombuffer(blob, dtype=np.uint8)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tinygraph-", suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode open() would have given.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _check_args(who: str, model: Any, path: Any) -> str:
    """The path as a str, after checking the argument types (a path, and a Module to save or
    load)."""
    if not isinstance(model, Module):
        raise ArgTypeError(f"{who}: model must be a tinygraph.nn Module, got {show(model)}")
    if not isinstance(path, (str, os.PathLike)):
        raise ArgTypeError(f"{who}: path must be a str or os.PathLike, got {show(path)}")
    path = os.fspath(path)
    if not isinstance(path, str) or not path or "\0" in path:
        raise InputError(f"{who}: path must be a non-empty file name, got {show(path)}")
    return path


def _umask() -> int:
    # The process umask can only be read by setting it: put it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata of a saved file, read without ever unpickling anything.

    A missing path raises FileNotFoundError (a directory IsADirectoryError), not LoadError.
    """
    path = os.fspath(path)
    # Checked first: is_zipfile() is False for a missing file too, which would read as "not a
    # tinygraph file".
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "load: no such file", path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "load: a directory, not a file", path)
    if not zipfile.is_zipfile(path):
        raise LoadError(f"load: {path!r} is not a tinygraph .npz file (not a zip archive; "
                        "pickles and other formats are refused)")
    state: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for key in z.files:
                try:
                    v = z[key]
                except ValueError as e:  # numpy refuses object arrays without allow_pickle
                    raise LoadError(f"load: array {key!r} in {path!r} cannot be read safely "
                                    f"({e})") from None
                if not isinstance(v, np.ndarray):  # a member that is not .npy comes back as bytes
                    raise LoadError(f"load: member {key!r} of {path!r} is not a .npy array")
                state[key] = v
    except LoadError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise LoadError(f"load: cannot read {path!r} as .npz ({e})") from None
    raw = state.pop(_META, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise LoadError(f"load: {path!r} has no tinygraph metadata; was it written by "
                        "tinygraph.save?")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LoadError(f"load: the metadata in {path!r} is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LoadError(f"load: {path!r} is not a tinygraph parameter file")
    if meta.get("version") != VERSION:
        raise LoadError(f"load: {path!r} has format version {meta.get('version')!r}; this "
                        f"tinygraph reads version {VERSION}")
    for key, v in state.items():
        if v.dtype.kind != "f":
            raise LoadError(f"load: parameter {key!r} has dtype {v.dtype}, not a float dtype")
    return state, meta


def load(model: Module, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load parameters saved by save() into model; returns the user metadata.

    Names, shapes, dtypes and finiteness are all checked first: on any mismatch a LoadError names
    the parameter and the model is left unchanged. A missing file raises FileNotFoundError.
    """
    path = _check_args("load", model, path)
    state, meta = read(path)
    model.load_state_dict(state)
    return meta.get("user", {})
