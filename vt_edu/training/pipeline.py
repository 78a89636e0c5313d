"""A backend-neutral input pipeline: a ``keras.utils.PyDataset`` over NumPy arrays.

No ``tf.data``: batches are made in NumPy, so the same code feeds the TensorFlow, JAX
and PyTorch backends. Each batch is gathered from the uint8 images, augmented in
NumPy (optional), normalised to float32 with the training set's channel statistics,
and returned with its labels.

Reproducibility: the order of epoch ``e`` is a permutation drawn from
``np.random.default_rng([seed, e])`` and batch ``i`` of epoch ``e`` is augmented with
``np.random.default_rng([seed, e, i])``. So a batch does not depend on which batches
were drawn before it, nor on the number of loader threads, and a run resumed at
epoch ``e`` sees exactly the batches an uninterrupted run would have seen. The
training loop tells the dataset the epoch with :meth:`ImageBatches.set_epoch`.

:class:`SceneBatches` feeds segmentation: scenes with their masks as per-pixel targets,
augmented together.
"""

from __future__ import annotations

import math

import keras
import numpy as np

AUGMENTATIONS = ("none", "crop_flip", "randaugment")
#: What :class:`SceneBatches` applies: augmentations that move a scene and its mask together.
SCENE_AUGMENTATIONS = ("none", "crop_flip")


class ImageBatches(keras.utils.PyDataset):
    """Normalised float32 batches of images, optionally shuffled and augmented.

    Args:
        x: uint8 images ``(N, H, W, C)``.
        y: integer labels ``(N,)``.
        batch_size: images per batch.
        mean, std: per-channel statistics in [0, 1] units (``vt_edu.data.channel_stats``).
        augment: ``"none"``, ``"crop_flip"`` (pad 4, random crop, horizontal flip) or
            ``"randaugment"`` (RandAugment-lite, then crop and flip).
        shuffle: reshuffle every epoch.
        seed: seed of the order and of the augmentation.
        drop_remainder: leave out the last, smaller batch (training: every step then
            has the same shape, so compiled steps are traced once).
        randaugment_ops, randaugment_magnitude: RandAugment's ``N`` and ``M``.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
            ``PyDataset``.
    """

    def __init__(
        self,
        x,
        y,
        batch_size: int,
        mean,
        std,
        augment: str = "none",
        shuffle: bool = False,
        seed: int = 0,
        drop_remainder: bool = False,
        randaugment_ops: int = 2,
        randaugment_magnitude: float = 9,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}.")
        if len(x) != len(y):
            raise ValueError(f"{len(x)} images but {len(y)} labels.")
        if batch_size < 1 or batch_size > len(x):
            raise ValueError(f"batch_size={batch_size} must be between 1 and the {len(x)} images.")
        self.x, self.y = x, np.asarray(y)  # cast per batch (masks stay uint8 in memory)
        self.batch_size = int(batch_size)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.augment = augment
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_remainder = bool(drop_remainder)
        self.randaugment_ops = int(randaugment_ops)
        self.randaugment_magnitude = float(randaugment_magnitude)
        self.epoch = 0
        self._order = self._make_order(0)

    def _make_order(self, epoch: int):
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def set_epoch(self, epoch: int) -> None:
        """Use the order and augmentation draws of ``epoch`` (0-based)."""
        if epoch != self.epoch:
            self.epoch = int(epoch)
            self._order = self._make_order(self.epoch)

    @property
    def num_images(self) -> int:
        """Images seen per epoch (without the dropped remainder)."""
        return len(self) * self.batch_size if self.drop_remainder else len(self.x)

    def __len__(self):
        if self.drop_remainder:
            return len(self.x) // self.batch_size
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        from vt_edu.data import normalize

        picked = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        images, targets = self.x[picked], self.y[picked]
        if self.augment != "none":
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            images, targets = self.augment_batch(images, targets, rng)
        return normalize(images, self.mean, self.std), targets.astype("int32")

    def augment_batch(self, images, targets, rng):
        """Augment one uint8 batch with ``rng``; returns ``(images, targets)``."""
        from vt_edu.data import random_crop_flip

        if self.augment == "randaugment":
            from vt_edu.training.augment import rand_augment

            images = rand_augment(images, rng, self.randaugment_ops, self.randaugment_magnitude)
        return random_crop_flip(images, rng, pad=4), targets


class SceneBatches(ImageBatches):
    """Batches of scenes with their masks as targets ``(B, S, S)`` int32, for segmentation.

    The same order, seeding and resume rules as :class:`ImageBatches`. Augmentation
    ``"crop_flip"`` crops and flips each scene and its mask with the same offsets and
    the same flip (padded pixels are black in the scene and background, 0, in the
    mask); ``"randaugment"`` is refused, since its translations and cutouts would
    move or hide objects without moving their masks.

    Args:
        x: uint8 scenes ``(N, S, S, C)``.
        masks: integer masks ``(N, S, S)`` (0 = background).
        batch_size, mean, std, shuffle, seed, drop_remainder, **kwargs: as for
            :class:`ImageBatches`.
        augment: ``"none"`` or ``"crop_flip"``.
    """

    def __init__(self, x, masks, batch_size: int, mean, std, augment: str = "none", **kwargs):
        if augment not in SCENE_AUGMENTATIONS:
            raise ValueError(
                f"scene augment must be one of {SCENE_AUGMENTATIONS}, got {augment!r} (RandAugment's "
                "translations and cutouts would not move the masks)."
            )
        if np.shape(masks) != np.shape(x)[:3]:
            raise ValueError(f"masks must be (N, S, S) = {np.shape(x)[:3]}, got {np.shape(masks)}.")
        super().__init__(x, masks, batch_size, mean, std, augment=augment, **kwargs)

    def augment_batch(self, images, masks, rng):
        from vt_edu.data import random_crop_flip

        # The mask as a fourth channel: one gather crops and flips both identically.
        joined = np.concatenate([images, masks[..., None].astype(images.dtype)], axis=-1)
        joined = random_crop_flip(joined, rng, pad=4)
        return joined[..., :-1], joined[..., -1]
