"""tinygraph.data: toy sets (shapes, seeding, geometry) and fit-then-transform preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import data

MAKERS = [data.make_moons, data.make_circles, data.make_spiral, data.make_blobs, data.make_xor]


@pytest.mark.parametrize("make", MAKERS)
def test_toy_sets_are_seeded_and_shaped(make):
    X, y = make(101, seed=3)
    assert X.shape == (101, 2) and X.dtype == np.float64
    assert y.shape == (101,) and y.dtype == np.int64
    counts = np.bincount(y)
    assert counts.max() - counts.min() <= 1  # classes as balanced as n allows
    X2, y2 = make(101, seed=3)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    assert not np.array_equal(X, make(101, seed=4)[0])
    with pytest.raises(tg.InputError):
        make(0)


def test_moons_match_sklearn_without_noise():
    from sklearn.datasets import make_moons

    X, y = data.make_moons(40, noise=0.0)
    Xs, ys = make_moons(40, noise=0.0, shuffle=False)
    np.testing.assert_allclose(X, Xs, atol=1e-12)
    assert np.array_equal(y, ys)


def test_geometry_of_circles_spiral_xor():
    X, y = data.make_circles(100, noise=0.0, factor=0.3)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(r[y == 0], 1.0)
    np.testing.assert_allclose(r[y == 1], 0.3)
    X, y = data.make_spiral(300, classes=3, noise=0.0)
    assert set(np.unique(y)) == {0, 1, 2}
    assert np.hypot(X[:, 0], X[:, 1]).max() <= 1.0 + 1e-12
    X, y = data.make_xor(200, noise=0.0)
    assert np.array_equal(y, (np.sign(X[:, 0]) != np.sign(X[:, 1])).astype(int))
    X, y = data.make_blobs(90, centers=[[0.0, 0.0], [10.0, 10.0]], std=0.1)
    assert np.all(X[y == 1].mean(0) > 9.9)


# --- preprocessing ------------------------------------------------------------------------------

rng = np.random.default_rng(0)
A = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5)) + np.array([1.0, -2.0, 3.0, 0.0, 5.0])
T = rng.normal(size=(30, 5))


def test_mean_center_and_standardize_use_training_statistics():
    mc = data.MeanCenter().fit(A)
    np.testing.assert_allclose(mc.transform(A).mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(mc.transform(T), T - A.mean(0), rtol=1e-15)  # train mean, not T's
    sd = data.Standardize()
    Z = sd.fit_transform(A)
    np.testing.assert_allclose(Z.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(0), 1, rtol=1e-12)
    np.testing.assert_allclose(sd.transform(T), (T - A.mean(0)) / A.std(0), rtol=1e-14)
    C = np.c_[A[:, :2], np.full(200, 7.0)]  # a constant feature is centred, not divided by 0
    assert np.all(data.Standardize().fit_transform(C)[:, 2] == 0)


def test_pca_matches_sklearn():
    from sklearn.decomposition import PCA as SKPCA

    p = data.PCA(2).fit(A)
    ours = p.transform(T)
    ref = SKPCA(2).fit(A).transform(T)
    signs = np.sign((ours * ref).sum(0))  # principal axes are defined up to sign
    np.testing.assert_allclose(ours * signs, ref, rtol=1e-8, atol=1e-10)
    assert ours.shape == (30, 2) and p.variances_[0] >= p.variances_[1]


def test_whitened_training_data_has_identity_covariance():
    W = data.Whiten().fit(A)
    Z = W.transform(A)
    cov = Z.T @ Z / len(Z)
    np.testing.assert_allclose(cov, np.eye(5), atol=1e-8)
    np.testing.assert_allclose(Z.mean(0), 0, atol=1e-10)
    Z2 = data.Whiten(k=3).fit_transform(A)
    np.testing.assert_allclose(Z2.T @ Z2 / len(Z2), np.eye(3), atol=1e-8)
    assert W.transform(T).shape == (30, 5)


def test_whiten_refuses_flat_directions_unless_told():
    flat = np.c_[A[:, :2], A[:, 0] + A[:, 1]]  # rank 2 in 3 dimensions
    with pytest.raises(tg.InputError, match="zero variance"):
        data.Whiten().fit(flat)
    assert data.Whiten(k=2).fit_transform(flat).shape == (200, 2)
    assert np.isfinite(data.Whiten(eps=1e-5).fit_transform(flat)).all()


def test_mean_image_per_pixel_and_per_channel():
    imgs = rng.normal(size=(10, 4, 4, 3)) + np.array([1.0, 2.0, 3.0])
    mi = data.MeanImage().fit(imgs)
    np.testing.assert_allclose(mi.transform(imgs).mean(0), 0, atol=1e-12)
    pc = data.MeanImage(per_channel=True).fit(imgs)
    np.testing.assert_allclose(pc.mean_[0, 0], imgs.mean(axis=(0, 1, 2)), rtol=1e-14)
    np.testing.assert_allclose(pc.transform(imgs).mean(axis=(0, 1, 2)), 0, atol=1e-12)
    chw = np.moveaxis(imgs, -1, 1)
    pc0 = data.MeanImage(per_channel=True, channel_axis=0).fit(chw)
    np.testing.assert_allclose(pc0.mean_[:, 0, 0], imgs.mean(axis=(0, 1, 2)), rtol=1e-14)


def test_preprocessing_bad_input():
    with pytest.raises(tg.InputError, match="fit"):
        data.Standardize().transform(A)
    with pytest.raises(tg.ShapeError, match=r"Standardize.*\(5,\)"):
        data.Standardize().fit(A).transform(np.ones((3, 4)))
    with pytest.raises(tg.InputError, match="NaN"):
        data.MeanCenter().fit(np.array([[1.0, np.nan]]))
    with pytest.raises(tg.ShapeError, match="PCA"):
        data.PCA(6).fit(A)


def test_failed_fit_keeps_the_previous_statistics():
    w = data.Whiten().fit(A[:, :3])
    before = w.transform(T[:, :3])
    with pytest.raises(tg.InputError):
        w.fit(np.c_[A[:, :2], A[:, 0] + A[:, 1]])
    np.testing.assert_array_equal(w.transform(T[:, :3]), before)
    with pytest.raises(tg.InputError, match="k"):
        data.Whiten(k=0)
