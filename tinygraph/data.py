"""Toy 2-D data sets (numpy only, seeded) and the notes' preprocessing.

Data sets return X of shape (N, 2), float64, and y of shape (N,), int64 class labels. seed=
(or scikit-learn's name, random_state=) fixes the noise; without one it is drawn from numpy's
global random state, so tg.manual_seed(n) or np.random.seed(n) makes it reproducible.
Each preprocessor is fitted on training data (fit) and then applies the same statistics to any
data (transform), as the notes insist: statistics come from the training split only.
Covariances use 1/N (the data's own covariance, not the unbiased estimate).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._check import check_bool, check_float, check_int
from .errors import InputError, ShapeError
from .random import Seed, generator

# ---------------------------------------------------------------------------------------------
# Toy sets
# ---------------------------------------------------------------------------------------------


def _count(who: str, n: Any, what: str = "n") -> int:
    return check_int(who, what, n, lo=1)


def _noise(who: str, noise: float, what: str = "noise") -> float:
    return check_float(who, what, noise, lo=0.0)


def _rng(who: str, seed: Seed, random_state: Seed) -> np.random.Generator:
    """The generator for seed= (or its scikit-learn name random_state=; give one of them)."""
    if random_state is not None:
        if seed is not None:
            raise InputError(f"{who}: give seed= or random_state= (the same thing), not both")
        seed = random_state
    return generator(seed, who)


def _split(n: int, k: int) -> list[int]:
    """n samples over k classes, as evenly as possible."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def make_moons(n: int = 200, noise: float = 0.1, seed: Seed = None, *,
               random_state: Seed = None) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (classes 0 and 1), as sklearn's make_moons."""
    who = "make_moons"
    n = _count(who, n)
    noise = _noise(who, noise)
    rng = _rng(who, seed, random_state)
    n0, n1 = _split(n, 2)
    t0 = np.linspace(0, np.pi, n0)
    t1 = np.linspace(0, np.pi, n1)
    X = np.concatenate([np.c_[np.cos(t0), np.sin(t0)], np.c_[1 - np.cos(t1), 0.5 - np.sin(t1)]])
    y = np.r_[np.zeros(n0, np.int64), np.ones(n1, np.int64)]
    return X + rng.normal(scale=noise, size=X.shape), y


def make_circles(n: int = 200, noise: float = 0.05, factor: float = 0.5,
                 seed: Seed = None, *,
                 random_state: Seed = None) -> tuple[np.ndarray, np.ndarray]:
    """An outer circle (class 0) around an inner one of radius factor (class 1)."""
    who = "make_circles"
    n = _count(who, n)
    noise = _noise(who, noise)
    factor = check_float(who, "factor", factor, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    rng = _rng(who, seed, random_state)
    n0, n1 = _split(n, 2)
    t0 = np.linspace(0, 2 * np.pi, n0, endpoint=False)
    t1 = np.linspace(0, 2 * np.pi, n1, endpoint=False)
    X = np.concatenate([np.c_[np.cos(t0), np.sin(t0)], factor * np.c_[np.cos(t1), np.sin(t1)]])
    y = np.r_[np.zeros(n0, np.int64), np.ones(n1, np.int64)]
    return X + rng.normal(scale=noise, size=X.shape), y


def make_spiral(n: int = 300, classes: int = 3, noise: float = 0.2,
                seed: Seed = None, *,
                random_state: Seed = None) -> tuple[np.ndarray, np.ndarray]:
    """CS231n's spiral: `classes` arms, radius 0..1, angle noise of std `noise` (radians)."""
    who = "make_spiral"
    n = _count(who, n)
    noise = _noise(who, noise)
    classes = _count(who, classes, "classes")
    rng = _rng(who, seed, random_state)
    Xs, ys = [], []
    for j, m in enumerate(_split(n, classes)):
        r = np.linspace(0.0, 1.0, m)
        t = np.linspace(j * 4.0, (j + 1) * 4.0, m) + rng.normal(scale=noise, size=m)
        Xs.append(np.c_[r * np.sin(t), r * np.cos(t)])
        ys.append(np.full(m, j, np.int64))
    return np.concatenate(Xs), np.concatenate(ys)


def make_blobs(n: int = 200, centers: int | np.ndarray = 3, std: float = 1.0,
               seed: Seed = None, *,
               random_state: Seed = None) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs around given centres (k, 2), or k centres drawn in [-5, 5]²."""
    who = "make_blobs"
    n = _count(who, n)
    std = _noise(who, std, "std")
    rng = _rng(who, seed, random_state)
    if isinstance(centers, (int, np.integer)):
        c = rng.uniform(-5, 5, size=(_count(who, centers, "centers"), 2))
    else:
        try:
            c = np.asarray(centers, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"make_blobs: centers must be an int or an array of shape (k, 2), "
                             f"got {centers!r:.60}") from None
        if c.ndim != 2 or c.shape[1] != 2 or len(c) == 0:
            raise ShapeError(f"make_blobs: centers must have shape (k, 2), got {c.shape}")
        if not np.isfinite(c).all():
            raise InputError("make_blobs: centers must be finite")
    sizes = _split(n, len(c))
    y = np.repeat(np.arange(len(c), dtype=np.int64), sizes)
    return c[y] + rng.normal(scale=std, size=(n, 2)), y


def make_xor(n: int = 200, noise: float = 0.1, seed: Seed = None, *,
             random_state: Seed = None) -> tuple[np.ndarray, np.ndarray]:
    """Points near the four corners (±1, ±1); class 1 where the signs differ (XOR)."""
    who = "make_xor"
    n = _count(who, n)
    noise = _noise(who, noise)
    rng = _rng(who, seed, random_state)
    corners = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    which = np.repeat(np.arange(4), _split(n, 4))
    y = (which >= 2).astype(np.int64)
    return corners[which] + rng.normal(scale=noise, size=(n, 2)), y


# ---------------------------------------------------------------------------------------------
# Preprocessing: fit on training data, transform any data
# ---------------------------------------------------------------------------------------------


class Preprocessor:
    """fit(X) learns statistics from training rows; transform(X) applies them to any rows."""

    def _fitted(self) -> bool:
        return getattr(self, "mean_", None) is not None

    def _check(self, X: Any, fitting: bool) -> np.ndarray:
        who = type(self).__name__
        X = np.asarray(X)
        if X.dtype.kind not in "iuf":
            raise InputError(f"{who}: expected numeric data, got dtype {X.dtype}")
        X = X.astype(np.float64, copy=False) if X.dtype.kind != "f" else X
        if X.ndim < 2 or len(X) == 0:
            raise ShapeError(f"{who}: expected data of shape (N, D...) with N >= 1, got {X.shape}")
        if not np.isfinite(X).all():
            raise InputError(f"{who}: the data holds NaN or Inf")
        if not fitting:
            if not self._fitted():
                raise InputError(f"{who}: call fit() on training data before transform()")
            if X.shape[1:] != self.mean_.shape:
                raise ShapeError(f"{who}: fitted on rows of shape {self.mean_.shape}, "
                                 f"got data of shape {X.shape}")
        return X

    def fit(self, X: Any) -> Preprocessor:
        """Learn the statistics from X (training data); returns self."""
        self._fit(self._check(X, True))
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Apply the fitted statistics to X."""
        return self._transform(self._check(X, False))

    def fit_transform(self, X: Any) -> np.ndarray:
        """fit(X) then transform(X)."""
        return self.fit(X).transform(X)

    def _fit(self, X: np.ndarray) -> None:
        self.mean_ = X.mean(axis=0)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return X - self.mean_


class MeanCenter(Preprocessor):
    """Subtract the training mean of every feature: X - μ."""

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None


class Standardize(Preprocessor):
    """(X - μ) / σ per feature; a constant feature (σ <= eps) is only centred."""

    def __init__(self, eps: float = 1e-12) -> None:
        self.eps = check_float("Standardize", "eps", eps, lo=0.0)
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def _fit(self, X: np.ndarray) -> None:
        super()._fit(X)
        s = X.std(axis=0)
        self.std_ = np.where(s > self.eps, s, 1.0)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.std_


def _eig(who: str, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors of the 1/N covariance of centred rows."""
    if X.ndim != 2:
        raise ShapeError(f"{who}: expected data of shape (N, D), got {X.shape}")
    cov = X.T @ X / X.shape[0]
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    return np.maximum(vals[order], 0.0), vecs[:, order]


def _k(who: str, k: Any) -> int:
    return check_int(who, "k", k, lo=1)


def _principal(who: str, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (D,), top-k principal axes (D, k) and their variances (k,), largest first."""
    if X.ndim != 2 or k > X.shape[1]:
        raise ShapeError(f"{who}: k={k} needs data of shape (N, D) with D >= k, got {X.shape}")
    mean = X.mean(axis=0)
    vals, vecs = _eig(who, X - mean)
    return mean, vecs[:, :k], vals[:k]


class PCA(Preprocessor):
    """Project centred data onto the top-k principal axes: (X - μ) @ U[:, :k]."""

    def __init__(self, k: int) -> None:
        self.k = _k("PCA", k)
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None  # (D, k)
        self.variances_: np.ndarray | None = None  # (k,) variance along each axis

    def _fit(self, X: np.ndarray) -> None:
        self.mean_, self.components_, self.variances_ = _principal("PCA", X, self.k)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) @ self.components_


class Whiten(PCA):
    """PCA whitening: rotate to the principal axes and divide by √(λ + eps), so the training data's
    covariance becomes the identity (exactly when eps = 0). k = None keeps every dimension.

    A direction with (near) zero variance cannot be whitened: it raises unless eps > 0 or k
    drops it.
    """

    def __init__(self, k: int | None = None, eps: float = 0.0) -> None:
        self.k = None if k is None else _k("Whiten", k)  # None: every dimension of the data
        self.eps = check_float("Whiten", "eps", eps, lo=0.0)
        self.mean_ = self.components_ = self.variances_ = None

    def _fit(self, X: np.ndarray) -> None:
        k = self.k if self.k is not None else X.shape[1] if X.ndim == 2 else 0
        mean, comps, vals = _principal("Whiten", X, k)
        flat = vals <= 1e-12 * max(vals[0], 1e-300)  # relative: the data's scale does not matter
        if self.eps == 0 and flat.any():  # raise before anything is assigned
            raise InputError(
                f"Whiten: the training data has (near) zero variance along principal axis "
                f"{int(np.argmax(flat))}; pass a smaller k or eps > 0"
            )
        self.mean_, self.components_, self.variances_ = mean, comps, vals

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return super()._transform(X) / np.sqrt(self.variances_ + self.eps)


class MeanImage(Preprocessor):
    """Subtract the training mean image (N, ...) -> per-pixel mean, or with per_channel=True one
    mean per channel (channel_axis of each image, e.g. -1 for (H, W, C), 0 for (C, H, W))."""

    def __init__(self, per_channel: bool = False, channel_axis: int = -1) -> None:
        self.per_channel = check_bool("MeanImage", "per_channel", per_channel)
        self.channel_axis = check_int("MeanImage", "channel_axis", channel_axis)
        self.mean_: np.ndarray | None = None

    def _fit(self, X: np.ndarray) -> None:
        mean = X.mean(axis=0)
        if self.per_channel:
            ax = self.channel_axis
            if not -mean.ndim <= ax < mean.ndim:
                raise ShapeError(f"MeanImage: channel_axis {ax} is out of range for images of "
                                 f"shape {mean.shape}")
            others = tuple(i for i in range(mean.ndim) if i != ax % mean.ndim)
            mean = np.broadcast_to(mean.mean(axis=others, keepdims=True), mean.shape).copy()
        self.mean_ = mean
