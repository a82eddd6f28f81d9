"""tinygraph._blas: the SGD update fused into a weight gradient's product, against numpy."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from tinygraph import _blas


def _want(w, a, g, decay):
    return w.astype(np.float64) * decay - a.T.astype(np.float64) @ g.astype(np.float64)


def test_numpys_bundled_blas_is_found_where_numpy_ships_one():
    """numpy's wheels bundle OpenBLAS next to the package: it must be bound (else the compiled
    step silently loses its fused update)."""
    here = os.path.dirname(os.path.abspath(np.__file__))
    bundled = glob.glob(os.path.join(here + ".libs", "*openblas64*")) + glob.glob(
        os.path.join(here, ".dylibs", "*openblas64*"))
    if not bundled:
        pytest.skip("this numpy does not bundle OpenBLAS")
    assert _blas.available()


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("a_order", ["C", "F"])
@pytest.mark.parametrize("g_order", ["C", "F"])
@pytest.mark.parametrize("decay", [1.0, 0.999])
@pytest.mark.parametrize("shape", [(6, 5, 3), (64, 33, 17), (1, 4, 1)])
def test_sgd_gemm_equals_numpy(dtype, tol, a_order, g_order, decay, shape):
    k, m, n = shape
    rng = np.random.default_rng(k * 100 + m)
    a = np.asarray(rng.standard_normal((k, m)), dtype=dtype, order=a_order)
    g = np.asarray(rng.standard_normal((k, n)), dtype=dtype, order=g_order)
    w = rng.standard_normal((m, n)).astype(dtype)
    want = _want(w, a, g, decay)
    _blas.sgd_gemm(w, a, g, decay)
    assert w.dtype == dtype and w.shape == (m, n)
    np.testing.assert_allclose(w, want, rtol=tol, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("case", ["overlap", "mixed dtypes", "strided", "fortran w",
                                  "array decay", "byte-swapped", "zero decay", "no blas"])
def test_sgd_gemm_falls_back_to_numpy_where_blas_would_be_wrong(case, monkeypatch):
    """Arrays the BLAS call cannot take (or would read while writing) give numpy's result."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 4))
    a, g = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    decay = 0.9
    if case == "overlap":
        a = w  # w = 0.9·w - wᵀ·g: BLAS would read w while writing it
    elif case == "mixed dtypes":
        g = g.astype(np.float32)
    elif case == "strided":
        a = rng.standard_normal((4, 8))[:, ::2]
    elif case == "fortran w":
        w = np.asfortranarray(w)
    elif case == "array decay":
        decay = np.full((4, 4), 0.9)
    elif case == "byte-swapped":
        w = w.astype(">f8")
    elif case == "zero decay":
        decay, w[0, 0], w[1, 1] = 0.0, np.nan, np.inf  # 0·nan and 0·inf are nan, as numpy has it
    else:
        monkeypatch.setattr(_blas, "_gemms", lambda: {})
    want = _want(w.copy(), a.copy(), g, decay)
    _blas.sgd_gemm(w, a, g, decay)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(w, want, rtol=1e-12, atol=1e-12)
