"""The CIFAR augmentation as Keras layers, for use inside a model."""

from __future__ import annotations

import keras


def create_augmentation(pad: int = 4, image_size: int = 32, seed: int | None = None) -> keras.Sequential:
    """Random shift by up to ``pad`` pixels (zero fill) and random horizontal flip.

    This is :func:`random_crop_flip` as Keras layers: shifting an image by
    ``(dy, dx)`` with ``|dy|, |dx| <= pad`` and filling with zeros gives exactly the
    crops of the zero-padded image. It is built from ``RandomTranslation`` rather
    than ``ZeroPadding2D`` + ``RandomCrop`` because ``RandomCrop`` cuts every image
    of a batch at the *same* place, while here each image draws its own shift and
    flip. Nearest-neighbour interpolation keeps shifts whole pixels, so values are
    moved, never blended. Uses only Keras layers, so it runs on every backend.

    Like all Keras preprocessing layers it is active only when called with
    ``training=True`` (as ``model.fit`` does); otherwise it returns its input
    unchanged (as float32).

    Args:
        pad: largest shift, in pixels, on each axis.
        image_size: height and width of the input images, to express ``pad`` as the
            fraction of the image that ``RandomTranslation`` expects.
        seed: seed of the layers' random generators, for reproducible runs.

    Returns:
        A ``keras.Sequential`` mapping (N, image_size, image_size, C) to the same shape.
    """
    factor = pad / image_size
    # Equal seeds would give both layers the same random stream, tying each image's
    # flip to its shift.
    flip_seed = None if seed is None else seed + 1
    return keras.Sequential(
        [
            keras.layers.RandomTranslation(factor, factor, fill_mode="constant", interpolation="nearest", seed=seed),
            keras.layers.RandomFlip("horizontal", seed=flip_seed),
        ],
        name="augmentation",
    )
