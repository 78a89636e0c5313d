"""Test-time evaluation: plain top-1 and top-1 with horizontal-flip test-time augmentation.

Flip test-time augmentation (TTA) classifies every test image and its mirror image and
averages the two softmax distributions. CIFAR's classes look the same mirrored (a car
facing left is still a car) and the training pipeline flips images at random, so the
model has seen both views; averaging them cancels part of its view-dependent error, at
twice the inference cost and no training cost. It measures a different classifier
(two forward passes per image) from plain top-1, so results report it beside plain
top-1, never in its place.

>>> scores = flip_tta_accuracy(model, x_test, y_test, mean, std)
>>> scores["top1"], scores["top1_flip_tta"]
"""

from __future__ import annotations

import numpy as np

__all__ = ["flip_tta_accuracy", "predict_probabilities"]


def predict_probabilities(model, images, mean, std, flip: bool = False, batch_size: int = 500) -> np.ndarray:
    """Softmax probabilities of a logits model on raw images.

    Args:
        model: a Keras model returning logits ``(B, K)`` (every :mod:`vt_edu.models` model).
        images: uint8 images ``(N, H, W, C)`` (or floats in [0, 1]).
        mean, std: the training set's channel statistics (:func:`vt_edu.data.channel_stats`),
            the normalisation the model was trained with.
        flip: average the probabilities of each image and its left-right mirror image.
        batch_size: images per forward pass.

    Returns:
        float64 array ``(N, K)``; each row sums to 1.
    """
    plain, mirrored = _views(model, images, mean, std, flip, batch_size)
    return plain if mirrored is None else (plain + mirrored) / 2.0


def _views(model, images, mean, std, flip, batch_size):
    """Probabilities of the images and (with ``flip``) of their mirror images."""
    from vt_edu.data import normalize
    from vt_edu.reference import softmax

    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {images.shape}.")
    x = normalize(images, mean, std)
    plain = softmax(model.predict(x, batch_size=batch_size, verbose=0))
    # Axis 2 is the width: the mirror image, not the upside-down one.
    mirrored = softmax(model.predict(x[:, :, ::-1], batch_size=batch_size, verbose=0)) if flip else None
    return plain, mirrored


def flip_tta_accuracy(model, images, labels, mean, std, batch_size: int = 500) -> dict:
    """Top-1 accuracy without and with horizontal-flip test-time augmentation.

    Args:
        model, images, mean, std, batch_size: as in :func:`predict_probabilities`.
        labels: integer labels ``(N,)``.

    Returns:
        ``{"top1": float, "top1_flip_tta": float}``, fractions in [0, 1].
    """
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels.")
    plain, mirrored = _views(model, images, mean, std, True, batch_size)
    return {
        "top1": float(np.mean(plain.argmax(axis=1) == labels)),
        "top1_flip_tta": float(np.mean((plain + mirrored).argmax(axis=1) == labels)),
    }
