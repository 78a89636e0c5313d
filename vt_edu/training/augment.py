"""RandAugment-lite: a NumPy version of RandAugment (Cubuk et al., 2020) for uint8 batches.

The paper's advanced recipe uses AutoAugment. We implement the simpler RandAugment
policy, which needs no learned sub-policies: every image draws ``num_ops`` operations
uniformly from the list below and applies them with one global ``magnitude`` ``M``
(0..10; each signed operation flips its direction at random per image).

Operations (10 of RandAugment's 14, plus Cutout; on 32x32 images):

============  ==========================================================
identity      nothing
autocontrast  stretch each channel's min..max to 0..255
brightness    blend with black, factor ``1 ± 0.9·M/10``
contrast      blend with the image's mean grey, factor ``1 ± 0.9·M/10``
color         blend with the greyscale image (saturation), ``1 ± 0.9·M/10``
posterize     keep ``8 - round(4·M/10)`` bits
solarize      invert pixels above ``256 - 256·M/10``
translate_x   shift by ``± round(0.3·M/10·W)`` pixels, zero fill
translate_y   shift by ``± round(0.3·M/10·H)`` pixels, zero fill
cutout        zero a square of side ``round(0.5·M/10·H)`` at a random centre
============  ==========================================================

Left out: rotate and shear (they need interpolation), sharpness (a convolution) and
equalize (a histogram per image and channel), to keep a batch of 256 CIFAR images
within a few milliseconds on one CPU core. The standard pad-4 crop and flip
(:func:`vt_edu.data.random_crop_flip`) is applied after RandAugment by the data
pipeline.
"""

from __future__ import annotations

import numpy as np

OPS = (
    "identity",
    "autocontrast",
    "brightness",
    "contrast",
    "color",
    "posterize",
    "solarize",
    "translate_x",
    "translate_y",
    "cutout",
)


def _blend(degenerate, image, factor):
    out = degenerate + (image - degenerate) * factor[:, None, None, None]
    return np.clip(out, 0, 255)


def _signed_factor(rng, n, magnitude):
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return (1.0 + sign * 0.9 * magnitude / 10.0).astype(np.float32)


def _shift(images, rng, magnitude, axis):
    """Shift each image by ± the same number of pixels along ``axis`` (1 = rows, 2 = cols), zero fill."""
    n, h, w, _ = images.shape
    size = h if axis == 1 else w
    amount = int(round(0.3 * magnitude / 10.0 * size))
    if amount == 0:
        return images
    offsets = np.where(rng.random(n) < 0.5, -amount, amount)
    index = np.arange(size)[None, :] - offsets[:, None]  # source index of each output pixel
    valid = (index >= 0) & (index < size)
    index = np.clip(index, 0, size - 1)
    batch = np.arange(n)[:, None]
    if axis == 1:
        out = images[batch, index]  # (n, h, w, c)
        return out * valid[:, :, None, None]
    out = images[batch[:, :, None], np.arange(h)[None, :, None], index[:, None, :]]
    return out * valid[:, None, :, None]


def _apply(op, images, rng, magnitude):
    """One operation on a float32 batch in 0..255."""
    n = len(images)
    if op == "identity":
        return images
    if op == "autocontrast":
        lo = images.min(axis=(1, 2), keepdims=True)
        hi = images.max(axis=(1, 2), keepdims=True)
        scale = np.where(hi > lo, 255.0 / np.maximum(hi - lo, 1e-6), 1.0)
        return np.where(hi > lo, (images - lo) * scale, images)
    if op == "brightness":
        return _blend(np.zeros_like(images), images, _signed_factor(rng, n, magnitude))
    if op == "contrast":
        grey = images.mean(axis=(1, 2, 3), keepdims=True) * np.ones_like(images)
        return _blend(grey, images, _signed_factor(rng, n, magnitude))
    if op == "color":
        grey = (images @ np.array([0.299, 0.587, 0.114], np.float32))[..., None] * np.ones_like(images)
        return _blend(grey, images, _signed_factor(rng, n, magnitude))
    if op == "posterize":
        shift = int(round(4 * magnitude / 10.0))
        return ((images.astype(np.uint8) >> shift) << shift).astype(np.float32)
    if op == "solarize":
        threshold = 256.0 - 256.0 * magnitude / 10.0
        return np.where(images >= threshold, 255.0 - images, images)
    if op == "translate_x":
        return _shift(images, rng, magnitude, axis=2)
    if op == "translate_y":
        return _shift(images, rng, magnitude, axis=1)
    if op == "cutout":
        _, h, w, _ = images.shape
        side = int(round(0.5 * magnitude / 10.0 * h))
        if side == 0:
            return images
        cy, cx = rng.integers(0, h, n), rng.integers(0, w, n)
        rows, cols = np.arange(h)[None, :], np.arange(w)[None, :]
        inside_r = np.abs(rows - cy[:, None]) <= side // 2
        inside_c = np.abs(cols - cx[:, None]) <= side // 2
        mask = inside_r[:, :, None] & inside_c[:, None, :]
        return images * ~mask[..., None]
    raise ValueError(f"unknown RandAugment op {op!r}; known: {', '.join(OPS)}")


def rand_augment(images: np.ndarray, rng, num_ops: int = 2, magnitude: float = 9) -> np.ndarray:
    """Apply RandAugment-lite to a batch.

    Args:
        images: uint8 batch ``(N, H, W, C)`` (C = 3 for the colour ops).
        rng: a ``np.random.Generator`` or a seed.
        num_ops: operations per image (RandAugment's ``N``).
        magnitude: strength ``M`` in 0..10.

    Returns:
        A uint8 batch of the same shape.
    """
    if not 0 <= magnitude <= 10:
        raise ValueError(f"magnitude must be in 0..10, got {magnitude!r}.")
    rng = np.random.default_rng(rng)
    out = images.astype(np.float32)
    for _ in range(int(num_ops)):
        choice = rng.integers(0, len(OPS), size=len(out))
        for k, op in enumerate(OPS):
            picked = np.flatnonzero(choice == k)
            if len(picked):
                out[picked] = _apply(op, out[picked], rng, magnitude)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
