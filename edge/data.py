"""Datasets for training and verification: the bundled 8x8 digits (offline) and user .npz files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from frontend.errors import EdgeError

DIGITS_FILE = Path(__file__).parent / "datasets" / "digits.npz"
SPLIT_SEED = 0
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Dataset:
    """Images in NCHW float32 scaled to [0, 1] and integer labels, already split into train and test."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _split(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Deterministic stratified split: the same seed always gives the same test set."""
    rng = np.random.default_rng(seed)
    test_idx: list[np.ndarray] = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        test_idx.append(idx[: max(1, round(len(idx) * TEST_FRACTION))])
    test = np.sort(np.concatenate(test_idx))
    train = np.setdiff1d(np.arange(len(y)), test)
    return x[train], y[train], x[test], y[test]


def load_digits_dataset(seed: int = SPLIT_SEED) -> Dataset:
    """The UCI 8x8 handwritten digits as scikit-learn ships them (1,797 images, 10 classes), bundled with the
    package (edge/datasets/digits.npz), pixel values 0..16 scaled to [0, 1]."""
    with np.load(DIGITS_FILE) as raw:
        x = (raw["images"].astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
        y = raw["target"].astype(np.int64)
    return Dataset("digits", *_split(x, y, seed))


def _as_nchw(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 2:  # flat feature vectors: one channel, one row
        x = x.reshape(x.shape[0], 1, 1, x.shape[1])
    elif x.ndim == 3:  # N, H, W grayscale
        x = x[:, None]
    elif x.ndim != 4:
        raise EdgeError(f"{where}: 'x' must have 2 to 4 dimensions (N,F / N,H,W / N,C,H,W), got shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer):
        peak = max(int(x.max()), 1)
        return (x.astype(np.float32) / peak).astype(np.float32)
    return x.astype(np.float32)


def load_npz_dataset(path: Path, seed: int = SPLIT_SEED) -> Dataset:
    """A user dataset: arrays `x` (N,C,H,W / N,H,W / N,F) and `y` (N,), optionally `split` (1 = test).

    Integer images are divided by their maximum; float images are used as they are.
    """
    where = str(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise EdgeError(f"{where}: no such file") from None
    except (OSError, ValueError) as exc:
        raise EdgeError(f"{where}: not a readable .npz file ({exc})") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise EdgeError(f"{where}: missing array '{key}' (expected x, y and optionally split)")
    x, y = _as_nchw(arrays["x"], where), arrays["y"].astype(np.int64).ravel()
    if len(x) != len(y):
        raise EdgeError(f"{where}: 'x' has {len(x)} samples but 'y' has {len(y)}")
    if y.min() < 0:
        raise EdgeError(f"{where}: labels in 'y' must be 0..K-1")
    if "split" in arrays:
        test = arrays["split"].astype(bool).ravel()
        if len(test) != len(y) or test.all() or not test.any():
            raise EdgeError(f"{where}: 'split' must mark some but not all of the {len(y)} samples as test (1)")
        return Dataset(path.stem, x[~test], y[~test], x[test], y[test])
    return Dataset(path.stem, *_split(x, y, seed))


def load_dataset(name: str, seed: int = SPLIT_SEED) -> Dataset:
    """`digits` or a path to an .npz file."""
    if name == "digits":
        return load_digits_dataset(seed)
    if name.endswith(".npz"):
        return load_npz_dataset(Path(name), seed)
    raise EdgeError(f"unknown dataset '{name}': use 'digits' or a path to an .npz file with arrays x and y")
