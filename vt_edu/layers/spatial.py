"""Flattening a feature map ``(B, H, W, C)`` to the paper's ``X`` of shape ``(B, H*W, C)``.

The paper writes a feature map as a matrix ``X`` with one row per pixel. The layers
take NHWC maps, flatten them with :func:`flatten_spatial`, and (in the projector)
fold the result back with :func:`unflatten_spatial`. Batch, height and width are
read from the tensor at call time, never stored, so one layer works for any batch
size and for maps of different (also non-square) sizes.
"""

from __future__ import annotations

from keras import ops


def flatten_spatial(feature_map):
    """``(B, H, W, C)`` → ``(B, H*W, C)``, rows in row-major (``y * W + x``) order.

    Returns:
        ``(x, (h, w))``: the flattened map and the spatial size to fold it back.
        ``h`` and ``w`` are Python ints when known, scalar tensors otherwise.
    """
    shape = ops.shape(feature_map)
    h, w, c = shape[1], shape[2], shape[3]
    # -1 for the batch: it is never baked into the graph.
    return ops.reshape(feature_map, (-1, h * w, c)), (h, w)


def unflatten_spatial(x, size):
    """``(B, H*W, C)`` → ``(B, H, W, C)``: the inverse of :func:`flatten_spatial`."""
    h, w = size
    return ops.reshape(x, (-1, h, w, ops.shape(x)[-1]))
