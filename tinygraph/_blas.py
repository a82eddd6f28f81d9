"""numpy's own BLAS gemm, for the one product numpy cannot write: w = beta·w - aᵀ·g in w's array.

A plain-SGD step on a weight matrix is w·decay - lr·(xᵀ·dz). numpy computes the product into a
new array, then makes two more passes over w; gemm's beta does the whole update in the
product's own pass. tg.jit's compiled training step uses this for its big weight matrices.

Only the BLAS that numpy's wheels bundle is used (OpenBLAS with 64-bit integers, whose
functions end in "64_"), so the product runs in the same kernels as numpy's matmul. Where it is
not found (another build of numpy, another platform), `available()` is False and the compiled
step keeps its numpy lines. `sgd_gemm` itself falls back to numpy whenever its arrays do not fit
(dtype, layout, overlap).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
from typing import Any

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_I = ctypes.c_int64  # ILP64: the "64_" suffix of numpy's bundled OpenBLAS
_char = ctypes.c_char


def _bind(lib: Any, name: str, real: Any) -> Any:
    f = getattr(lib, name)
    f.restype = None
    f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, _I, _I, _I, real, ctypes.c_void_p,
                  _I, ctypes.c_void_p, _I, real, ctypes.c_void_p, _I]
    return f


@functools.cache
def _gemms() -> dict[Any, Any]:
    """{float32: sgemm, float64: dgemm} (native byte order) from numpy's bundled OpenBLAS, or {}."""
    here = os.path.dirname(os.path.abspath(np.__file__))
    paths: list[str] = []
    for d in (here + ".libs", os.path.join(here, ".dylibs")):  # Linux/Windows, macOS wheels
        paths += sorted(glob.glob(os.path.join(d, "*openblas*")))
    for path in paths:
        try:
            lib = ctypes.CDLL(path)  # already loaded by numpy: the same library, not a copy
        except OSError:
            continue
        for prefix in ("scipy_cblas_", "cblas_"):
            try:
                found = {np.dtype(np.float32): _bind(lib, prefix + "sgemm64_", ctypes.c_float),
                         np.dtype(np.float64): _bind(lib, prefix + "dgemm64_", ctypes.c_double)}
            except AttributeError:
                continue
            if _works(found):
                return found
    return {}


def _works(found: dict[Any, Any]) -> bool:
    """Check the binding on a small product against numpy's matmul before trusting it."""
    rng = np.random.default_rng(0)
    for dt in found:
        a, g = rng.standard_normal((5, 3)).astype(dt), rng.standard_normal((5, 4)).astype(dt)
        w = rng.standard_normal((3, 4)).astype(dt)
        want = w * 0.5 - a.T @ g
        if not _gemm(found[dt], w, a, g, 0.5) or not np.allclose(w, want, rtol=1e-4, atol=1e-5):
            return False
    return True


def available() -> bool:
    """Whether numpy's own BLAS was found (sgd_gemm then runs in one BLAS call)."""
    return bool(_gemms())


def _addr(x: np.ndarray) -> int:
    if x.flags.writeable and x.flags.c_contiguous:
        return ctypes.addressof(_char.from_buffer(x))  # the cheapest way to the pointer
    return x.ctypes.data


def _gemm(f: Any, w: np.ndarray, a: np.ndarray, g: np.ndarray, beta: float) -> bool:
    """w = beta·w - aᵀ·g by BLAS; False (nothing done) if the arrays do not fit."""
    k, m = a.shape
    n = g.shape[1]
    if not (k and m and n) or g.shape[0] != k or w.shape != (m, n):
        return False
    ta, tb = _layout(a, True), _layout(g, False)
    if ta is None or tb is None or np.may_share_memory(w, a) or np.may_share_memory(w, g):
        return False
    f(_ROW_MAJOR, ta[0], tb[0], m, n, k, -1.0, _addr(a), ta[1], _addr(g), tb[1], beta, _addr(w), n)
    return True


def _layout(x: np.ndarray, transposed: bool) -> tuple[int, int] | None:
    """(BLAS transpose flag, leading dimension) of a row-major operand x (or xᵀ); None if x is
    neither C- nor Fortran-contiguous. A Fortran array is its transpose in C order."""
    if x.flags.c_contiguous:
        return (_TRANS if transposed else _NO_TRANS), x.shape[1]
    if x.flags.f_contiguous:
        return (_NO_TRANS if transposed else _TRANS), x.shape[0]
    return None


def sgd_gemm(w: np.ndarray, a: np.ndarray, g: np.ndarray, decay: Any) -> None:
    """w = decay·w - aᵀ·g, in w's own array: one BLAS call where numpy's BLAS is bound and the
    arrays fit (2-D, one float dtype, w C-contiguous and writable, no overlap), else numpy's
    step = a.T @ g; w *= decay; w -= step."""
    f = _gemms().get(w.dtype)  # a byte-swapped dtype is not a key: numpy does those
    # decay 0: BLAS would not read w at all, where numpy's 0·w keeps w's nan and inf as nan
    if (f is None or type(decay) is not float or not decay or w.ndim != 2 or a.ndim != 2
            or g.ndim != 2 or a.dtype != w.dtype or g.dtype != w.dtype
            or not w.flags.c_contiguous or not w.flags.writeable or not _gemm(f, w, a, g, decay)):
        step = a.T @ g  # first: a or g may be (a view of) w
        if type(decay) is not float or decay != 1.0:
            w *= decay
        w -= step
