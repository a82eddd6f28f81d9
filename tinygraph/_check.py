"""Argument checks at the entry of public functions, with one message format everywhere:

    "<op>: <parameter> must be <what>, got <value>"

A value of the wrong type raises ArgTypeError (an InputError that is also a TypeError); a number
out of range, NaN or infinite raises InputError (a ValueError). Both are TinygraphErrors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import ArgTypeError, InputError

_MAX_SHOW = 60


def show(value: Any) -> str:
    """A short repr of a user's value for an error message (type named when it is not obvious)."""
    r = repr(value)
    if len(r) > _MAX_SHOW:
        r = r[:_MAX_SHOW - 3] + "..."
    if isinstance(value, (bool, int, float, str)) or value is None:
        return r
    return f"{r} ({type(value).__name__})"


def _is_real(value: Any) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)))


def check_float(op: str, name: str, value: Any, *, lo: float | None = None,
                hi: float | None = None, lo_open: bool = False, hi_open: bool = False,
                finite: bool = True) -> float:
    """value as a float: a real number (not a bool or str), not NaN, finite unless finite=False,
    within [lo, hi] (or open at either end)."""
    if not _is_real(value):
        raise ArgTypeError(f"{op}: {name} must be a real number, got {show(value)}")
    v = float(value)
    if math.isnan(v):
        raise InputError(f"{op}: {name} must be a number, got nan")
    if finite and math.isinf(v):
        raise InputError(f"{op}: {name} must be finite, got {v}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise InputError(f"{op}: {name} must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and (v >= hi if hi_open else v > hi):
        raise InputError(f"{op}: {name} must be {'<' if hi_open else '<='} {hi}, got {v}")
    return v


def check_int(op: str, name: str, value: Any, *, lo: int | None = None,
              hi: int | None = None) -> int:
    """value as an int: an int or numpy integer (not a bool or a float), within [lo, hi]."""
    what = ("a positive int" if lo == 1 else "a non-negative int" if lo == 0 else "an int")
    if lo is not None and lo not in (0, 1):
        what += f" >= {lo}"
    if hi is not None:
        what += f" <= {hi}"
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise ArgTypeError(f"{op}: {name} must be {what}, got {show(value)}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise InputError(f"{op}: {name} must be {what}, got {v}")
    return v


def check_bool(op: str, name: str, value: Any) -> bool:
    """value as a bool: True, False or a numpy bool (not 'no', not 2)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgTypeError(f"{op}: {name} must be True or False, got {show(value)}")
    return bool(value)


def check_str(op: str, name: str, value: Any, *, optional: bool = False,
              empty: bool = True) -> str | None:
    """value as a str (None allowed when optional; the empty string unless empty=False)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ArgTypeError(f"{op}: {name} must be a string, got {show(value)}")
    if not empty and not value:
        raise InputError(f"{op}: {name} must be a non-empty string, got ''")
    return value


def check_choice(op: str, name: str, value: Any, choices: tuple) -> Any:
    """value, which must be one of choices."""
    if not isinstance(value, (str, int, float, type(None))) or value not in choices:
        raise InputError(f"{op}: {name} must be one of {', '.join(map(repr, choices))}, "
                         f"got {show(value)}")
    return value


def check_seed(op: str, name: str, value: Any) -> Any:
    """A seed: None, a non-negative int or a numpy Generator."""
    if value is None or isinstance(value, np.random.Generator):
        return value
    return check_int(op, name, value, lo=0)


def check_dtype(op: str, name: str, value: Any) -> np.dtype:
    """A floating dtype (np.float32, 'float64', ...)."""
    try:
        dt = np.dtype(value)
    except TypeError:
        dt = None
    if value is None or dt is None or dt.kind != "f":
        raise ArgTypeError(f"{op}: {name} must be a float dtype such as np.float32 or "
                           f"np.float64, got {show(value)}")
    return dt
