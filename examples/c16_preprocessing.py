"""C16: preprocessing. Zero-centre and standardize every feature; PCA decorrelates the features
(diagonal covariance); whitening also scales every direction to unit variance (identity
covariance); for images, subtract the mean image (or the mean of each colour channel).

Every statistic is fitted on the training split only and then applied unchanged to the test split,
as the notes insist. Three data sets: a correlated 2-D Gaussian (the picture), scikit-learn's
bundled digits (64 features), and 16x16 colour patches cut from scikit-learn's two bundled sample
photographs (mean image and per-channel mean). The tables give the covariance before and after
each step, on train and on test.

    python examples/c16_preprocessing.py --out out/c16 [--fast]
"""

import numpy as np
from _common import parse_args, pyplot, save_figure, start, table

import tinygraph as tg

# -----------------------------------------------------------------------------
N_TOY = 1000
TOY_MEAN = np.array([3.0, -2.0])
TOY_COV = np.array([[4.0, 2.4], [2.4, 2.0]])
WHITEN_K = 40  # digits: keep the 40 directions with variance (8 pixels are constant on train)
PATCH = 16
N_PATCHES = 2000
SEED = 0
# -----------------------------------------------------------------------------

args = parse_args("c16_preprocessing", __doc__)
if args.fast:
    N_PATCHES = 400
start(args, "C16: centring, standardizing, PCA, whitening, mean image")
rng = np.random.default_rng(SEED)


def cov(X: np.ndarray) -> np.ndarray:
    """1/N covariance of the rows of X (N, D) about their own mean."""
    Xc = X - X.mean(axis=0)
    return Xc.T @ Xc / len(X)


def describe(X: np.ndarray) -> tuple[float, float, float, float, float]:
    """max abs mean, min and max variance, max abs off-diagonal covariance, max abs (C - I)."""
    C = cov(X)
    off = C - np.diag(np.diag(C))
    return (float(np.abs(X.mean(axis=0)).max()), float(np.diag(C).min()),
            float(np.diag(C).max()), float(np.abs(off).max()),
            float(np.abs(C - np.eye(len(C))).max()))


def steps(k: int | None) -> dict[str, tg.data.Preprocessor | None]:
    """The notes' pipeline, each step fitted separately on the same training data."""
    return {"raw": None, "zero-centred": tg.data.MeanCenter(),
            "standardized": tg.data.Standardize(), "PCA (decorrelated)": tg.data.PCA(k or 2),
            "whitened": tg.data.Whiten(k)}


HEADER = ["step", "split", "max abs mean", "min var", "max var", "max abs off-diag cov",
          "max abs (cov - I)"]

# 1. The picture: a correlated 2-D Gaussian.
X = rng.multivariate_normal(TOY_MEAN, TOY_COV, size=2 * N_TOY)  # (2N, 2)
Xtr, Xte = X[:N_TOY], X[N_TOY:]
rows, shown = [], {}
for name, prep in steps(None).items():
    tr = Xtr if prep is None else prep.fit(Xtr).transform(Xtr)
    te = Xte if prep is None else prep.transform(Xte)  # training statistics, applied to test
    shown[name] = tr
    rows += [(name, "train", *describe(tr)), (name, "test", *describe(te))]
table(f"correlated 2-D Gaussian ({N_TOY} train / {N_TOY} test points)", HEADER, rows, args.out)

# 2. Digits: 64 features; 8 corner pixels never vary on the training split.
try:
    from sklearn.datasets import load_digits, load_sample_images
except ImportError as e:
    raise SystemExit("this example needs scikit-learn's bundled data: pip install scikit-learn"
                     ) from e
D, _ = load_digits(return_X_y=True)
order = rng.permutation(len(D))
Dtr, Dte = D[order[:1300]], D[order[1300:]]
rows = []
for name, prep in steps(WHITEN_K).items():
    tr = Dtr if prep is None else prep.fit(Dtr).transform(Dtr)
    te = Dte if prep is None else prep.transform(Dte)
    rows += [(f"{name} ({tr.shape[1]} dims)", "train", *describe(tr)),
             (f"{name} ({te.shape[1]} dims)", "test", *describe(te))]
table(f"digits (1300 train / {len(Dte)} test, fitted on train; PCA and whitening keep "
      f"{WHITEN_K} dims)", HEADER, rows, args.out)
try:
    tg.data.Whiten().fit(Dtr)
    refused = "no"
except tg.InputError as e:
    refused = f"yes: {str(e).split(';')[0]}"
table("whitening all 64 digit pixels (some have zero variance)",
      ["refused with a clear error"], [(refused,)], args.out)

# 3. Images: 16x16 colour patches from the two bundled photographs (one per split).
photos = load_sample_images().images  # two (427, 640, 3) uint8 images


def patches(img: np.ndarray, n: int) -> np.ndarray:
    """n random PATCH x PATCH x 3 crops of img as float64: (n, PATCH, PATCH, 3)."""
    i = rng.integers(0, img.shape[0] - PATCH, n)
    j = rng.integers(0, img.shape[1] - PATCH, n)
    return np.stack([img[a:a + PATCH, b:b + PATCH] for a, b in zip(i, j, strict=True)]
                    ).astype(np.float64)


Ptr = np.concatenate([patches(photos[0], N_PATCHES // 2), patches(photos[1], N_PATCHES // 2)])
Pte = np.concatenate([patches(photos[0], N_PATCHES // 4), patches(photos[1], N_PATCHES // 4)])
rows = []
for name, prep in (("raw", None), ("minus mean image", tg.data.MeanImage()),
                   ("minus per-channel mean", tg.data.MeanImage(per_channel=True))):
    tr = Ptr if prep is None else prep.fit(Ptr).transform(Ptr)
    te = Pte if prep is None else prep.transform(Pte)
    ch_tr, ch_te = tr.mean(axis=(0, 1, 2)), te.mean(axis=(0, 1, 2))  # (3,) per channel
    rows += [(name, "train", float(np.abs(tr.mean(axis=0)).max()),
              *(float(c) for c in ch_tr)),
             (name, "test", float(np.abs(te.mean(axis=0)).max()), *(float(c) for c in ch_te))]
table(f"{N_PATCHES} train / {len(Pte)} test {PATCH}x{PATCH} RGB patches of the sample photos",
      ["step", "split", "max abs mean pixel", "mean R", "mean G", "mean B"], rows, args.out)

plt = pyplot()
if plt is not None:
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.3))
    for ax, (name, Z) in zip(axes, shown.items(), strict=True):
        ax.scatter(Z[:, 0], Z[:, 1], s=3, alpha=0.4)
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(0, color="k", lw=0.5)
        lim = np.abs(Z).max() * 1.05
        ax.set_xlim(-lim if name != "raw" else Z[:, 0].min() - 1, lim)
        ax.set_ylim(-lim if name != "raw" else Z[:, 1].min() - 1, lim)
        ax.set_aspect("equal")
        C = np.round(cov(Z), 2) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0
        ax.set_title(f"{name}\ncov [[{C[0, 0]:.2f}, {C[0, 1]:.2f}], [{C[1, 0]:.2f}, "
                     f"{C[1, 1]:.2f}]]", fontsize=8)
    save_figure(fig, args.out, "preprocessing_2d")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (name, M) in zip(axes, (("raw digits", cov(Dtr)),
                                    ("standardized", cov(tg.data.Standardize().fit_transform(Dtr))),
                                    (f"whitened ({WHITEN_K} dims)",
                                     cov(tg.data.Whiten(WHITEN_K).fit_transform(Dtr)))),
                             strict=True):
        im = ax.imshow(M, cmap="RdBu_r", vmin=-np.abs(M).max(), vmax=np.abs(M).max())
        ax.set_title(f"covariance: {name}", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    save_figure(fig, args.out, "digits_covariance")
