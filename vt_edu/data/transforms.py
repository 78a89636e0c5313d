"""NumPy helpers on image batches: subsets, statistics, normalisation, augmentation.

All functions take channels-last batches ``(N, H, W, C)``. Pixel values are either
uint8 in 0..255 or floats already scaled to [0, 1].
"""

from __future__ import annotations

import numpy as np


def _unit_scale(x: np.ndarray) -> float:
    """The factor that brings ``x`` to [0, 1] units."""
    return 1 / 255 if x.dtype == np.uint8 else 1.0


def balanced_subset(x: np.ndarray, y: np.ndarray, n_per_class: int, seed: int = 0):
    """Draw the same number of random examples from every class.

    Quick experiments train on a few thousand images; a plain ``x[:n]`` slice would
    leave the class balance to chance, which makes small runs harder to compare.

    Args:
        x: examples, shape (N, ...).
        y: integer labels, shape (N,).
        n_per_class: examples to keep from each class present in ``y``.
        seed: seed of the random choice; the same seed gives the same subset.

    Returns:
        ``(x_subset, y_subset)`` with ``n_per_class * num_classes`` examples, in a
        random order (classes mixed).

    Raises:
        ValueError: if ``y`` is not flat and as long as ``x``, or a class has fewer
            than ``n_per_class`` examples.
    """
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y must have shape ({len(x)},), got {y.shape}; flatten (N, 1) labels with y.reshape(-1).")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    short = {int(c): int(n) for c, n in zip(classes, counts) if n < n_per_class}
    if short:
        raise ValueError(f"n_per_class={n_per_class}, but these classes have fewer examples (class: count): {short}.")
    picked = np.concatenate([rng.choice(np.flatnonzero(y == c), n_per_class, replace=False) for c in classes])
    rng.shuffle(picked)
    return x[picked], y[picked]


def channel_stats(x: np.ndarray, batch_size: int = 4096):
    """Per-channel mean and standard deviation, in [0, 1] units.

    Works through ``x`` in batches, so 50,000 CIFAR images never become one 1.2 GB
    float copy. For uint8 images it counts how often each of the 256 values occurs
    per channel and takes the moments of those counts: exact, and faster than
    summing floats.

    Args:
        x: images (N, H, W, C), uint8 (0..255) or float ([0, 1]).
        batch_size: images processed at a time.

    Returns:
        ``(mean, std)``, each float32 of shape (C,).
    """
    channels = x.shape[-1]
    if x.dtype == np.uint8:
        # Value v of channel c lands in bin 256 * c + v of one shared histogram.
        offsets = 256 * np.arange(channels, dtype=np.int32)
        counts = np.zeros(256 * channels, dtype=np.int64)
        for start in range(0, len(x), batch_size):
            part = x[start : start + batch_size].reshape(-1, channels)
            counts += np.bincount((part + offsets).ravel(), minlength=256 * channels)
        counts = counts.reshape(channels, 256)
        values = np.arange(256) / 255
        total, total_sq = counts @ values, counts @ values**2
    else:
        total, total_sq = np.zeros(channels), np.zeros(channels)
        for start in range(0, len(x), batch_size):
            part = x[start : start + batch_size].reshape(-1, channels).astype(np.float64)
            total += part.sum(axis=0)
            total_sq += np.square(part).sum(axis=0)
    count = x.size // channels
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)


def normalize(x: np.ndarray, mean, std) -> np.ndarray:
    """Scale to [0, 1] units, then standardise each channel: ``(x - mean) / std``.

    Args:
        x: images (..., C), uint8 (0..255) or float ([0, 1]).
        mean: per-channel mean, shape (C,), in [0, 1] units (from :func:`channel_stats`).
        std: per-channel standard deviation, shape (C,), in [0, 1] units.

    Returns:
        float32 array shaped like ``x``.
    """
    scaled = x.astype(np.float32) * np.float32(_unit_scale(x))
    return (scaled - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


def random_crop_flip(x: np.ndarray, rng, pad: int = 4) -> np.ndarray:
    """The standard CIFAR augmentation: zero-pad, random crop, random horizontal flip.

    Each image is padded with ``pad`` pixels of zeros on every side (as in He et al.,
    2016, and as :func:`create_augmentation` does in Keras), a window of the
    original size is cut at a uniformly random offset in ``0..2*pad`` on each axis,
    and the result is mirrored left-right with probability 1/2. Every image draws its
    own offset and flip.

    Args:
        x: images (N, H, W, C), any dtype.
        rng: a ``np.random.Generator`` (or a seed for one).
        pad: padding on each side, in pixels; the crop shifts by at most ``pad``.

    Returns:
        Array of the shape and dtype of ``x``.
    """
    rng = np.random.default_rng(rng)
    n, height, width, _ = x.shape
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    top = rng.integers(0, 2 * pad + 1, size=n)
    left = rng.integers(0, 2 * pad + 1, size=n)
    rows = top[:, None] + np.arange(height)
    cols = left[:, None] + np.arange(width)
    flip = rng.random(n) < 0.5
    cols = np.where(flip[:, None], cols[:, ::-1], cols)
    # One fancy-indexing gather does crop and flip for the whole batch: image i takes
    # rows[i] x cols[i] of its padded copy.
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
