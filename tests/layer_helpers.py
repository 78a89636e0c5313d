"""Helpers shared by the layer tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import keras
import numpy as np


def to_np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def randn(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape).astype("float32")


def randomize(layer, seed=1, scale=0.3):
    """Give every weight (sub-layers included) random values, so no test rests on init."""
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.normal(scale=scale, size=w.shape).astype("float32"))
