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


#: Float32 layers against the float64 oracle.
TOL = dict(rtol=1e-5, atol=1e-5)


def w(variable):
    """A layer's weight as float64 NumPy, or None for an absent (optional) weight."""
    return None if variable is None else to_np(variable)


def flat(x):
    """``(B, H, W, C)`` → ``(B, H*W, C)`` in float64, as the reference equations take X."""
    return x.reshape(x.shape[0], -1, x.shape[-1]).astype(np.float64)


def assert_distribution(attention, axis):
    """Attention weights are >= 0 and sum to 1 over ``axis``."""
    a = to_np(attention)
    assert (a >= 0).all()
    np.testing.assert_allclose(a.sum(axis=axis), 1.0, **TOL)


def reference_transformer(layer, tokens):
    """The NumPy oracle's transformer with ``layer``'s weights, on ``tokens``."""
    from vt_edu import reference as ref

    norms = {}
    if layer.norm is not None:
        norms = dict(
            norm1=(w(layer.norm1.gamma), w(layer.norm1.beta)),
            norm2=(w(layer.norm2.gamma), w(layer.norm2.beta)),
        )
    return ref.transformer(
        np.asarray(tokens, np.float64), w(layer.k), w(layer.q), w(layer.f1), w(layer.f2),
        W_V=w(layer.w_v), num_heads=layer.num_heads, scale=layer.scale_attention,
        norm=layer.norm, logit_scale=None if layer.logit_scale() is None else w(layer.logit_scale()), **norms,
    )  # fmt: skip
