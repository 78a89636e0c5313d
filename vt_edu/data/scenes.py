"""Scenes: CIFAR objects pasted onto a larger canvas, with per-pixel masks.

The paper's segmentation experiments (VT-FPN on COCO-stuff and LIP) need images
holding several objects and a label for every pixel. CIFAR has neither, so a scene is
composed here: a canvas of ``S x S`` pixels (default 64) with 1 to ``max_objects``
CIFAR images (the count drawn uniformly), each resized to a random square side in
``[min_object_size, max_object_size]`` and placed at a random position fully inside
the canvas. Objects are pasted in order, so a later object hides the parts of earlier
ones it covers. The mask holds ``c + 1`` where CIFAR class ``c`` is visible and ``0``
(:data:`vt_edu.names.SCENE_BACKGROUND`) elsewhere.

The background is a smooth random colour texture: a 4 x 4 grid of colours around a
random mid-grey-ish base (channels in about 24..232, offsets of at most +-40),
bilinearly stretched over the canvas. It is chosen over a blurred CIFAR image because
a CIFAR image, even blurred, still carries its class's colours (blue water behind
ships, green fields behind horses): the background would hint at a class that is not
in the scene, and the mask would call a ship-like region background. A smooth,
low-contrast texture has no edges, no fine detail and no class, so it cannot be
mistaken for an object, yet it is not a flat colour a model could learn to subtract.

Everything is drawn from ``np.random.default_rng(seed)``: the same images, settings
and seed give the same scenes on any machine.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from typing import NamedTuple

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from vt_edu.data import cache, scene_cache
from vt_edu.data.loader import load_cifar
from vt_edu.names import DATASETS, SCENE_BACKGROUND

# Part of every entry's key and file name: bump it when scenes are composed differently.
FORMAT_VERSION = 2
_GRID = 4  # background control points per side
_BASE_RANGE = (64.0, 192.0)  # background base colour, per channel
_OFFSET = 40.0  # largest offset of a control point from the base colour
_CHUNK = 512  # backgrounds computed per vectorised step


class SceneSettingsError(ValueError):
    """A scene setting (canvas size, object count or sizes, stride) is invalid."""


class SceneSet(NamedTuple):
    """Composed scenes and what they hold.

    Attributes:
        scenes: uint8 (N, S, S, 3), the images.
        masks: uint8 (N, S, S), 0 = background, ``c + 1`` where CIFAR class ``c`` is visible.
        labels: int64 (N,), the class covering the most pixels (ties: the lowest class),
            the scene-classification label.
        present: bool (N, num_classes), whether a class has visible pixels.
        boxes: int32 (N, max_objects, 4), each object's whole placed square as
            ``(top, left, bottom, right)`` with bottom/right exclusive, also where it
            is partly hidden; -1 in slots without an object. Slots are in placement
            order (slot 0 is pasted first, at the bottom).
        object_classes: int32 (N, max_objects), each object's class, -1 where none.
    """

    scenes: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    present: np.ndarray
    boxes: np.ndarray
    object_classes: np.ndarray


class SceneData(NamedTuple):
    """Scenes of a data set: ``train`` from its training images, ``test`` from its test images.

    Attributes:
        train: a :class:`SceneSet`.
        test: a :class:`SceneSet`.
        class_names: the CIFAR class names (class ``c`` is mask value ``c + 1``).
    """

    train: SceneSet
    test: SceneSet
    class_names: list[str]


def segmentation_class_names(class_names) -> list[str]:
    """Names of the mask values: ``["background", *class_names]``."""
    return [SCENE_BACKGROUND, *class_names]


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_scene_settings(canvas_size, max_objects, min_object_size, max_object_size, stride=None) -> None:
    """Raise :class:`SceneSettingsError` unless the settings describe valid scenes.

    Args:
        canvas_size: ``S``, the side of the square canvas; a positive int.
        max_objects: the most objects per scene; an int >= 1.
        min_object_size, max_object_size: the range of object sides, with
            ``1 <= min_object_size <= max_object_size <= canvas_size``.
        stride: if given, the total stride of a model that will see the scenes:
            ``canvas_size`` must be a multiple of it.

    Raises:
        SceneSettingsError: naming the setting, its value and the fix.
    """
    for name, value, least in (
        ("canvas_size", canvas_size, 1),
        ("max_objects", max_objects, 1),
        ("min_object_size", min_object_size, 1),
        ("max_object_size", max_object_size, 1),
    ):
        if not _is_int(value) or value < least:
            raise SceneSettingsError(f"{name} must be an integer >= {least}, got {value!r}. Pass e.g. {name}=1.")
    if min_object_size > max_object_size:
        raise SceneSettingsError(
            f"min_object_size ({min_object_size}) is larger than max_object_size ({max_object_size}). "
            f"Lower min_object_size or raise max_object_size."
        )
    if max_object_size > canvas_size:
        raise SceneSettingsError(
            f"max_object_size ({max_object_size}) is larger than canvas_size ({canvas_size}): an object must fit "
            f"on the canvas. Use max_object_size <= {canvas_size} or a larger canvas_size."
        )
    if stride is not None:
        if not _is_int(stride) or stride < 1:
            raise SceneSettingsError(f"stride must be a positive integer, got {stride!r}.")
        if canvas_size % stride:
            raise SceneSettingsError(
                f"canvas_size ({canvas_size}) must be a multiple of the model's stride ({stride}). "
                f"Use e.g. canvas_size={max(stride, canvas_size // stride * stride)}."
            )


def _check_count(name: str, value) -> None:
    if not _is_int(value) or value < 1:
        raise SceneSettingsError(f"{name} must be an integer >= 1, got {value!r}.")


def _check_seed(seed) -> None:
    if not _is_int(seed) or seed < 0:
        raise SceneSettingsError(f"seed must be a non-negative integer, got {seed!r}.")


def _check_images(images, labels, num_classes) -> int:
    """Validate the source images and labels; return the number of classes."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"images must be a uint8 array of shape (N, height, width, 3), got {got}.")
    if len(images) == 0 or 0 in images.shape[1:3]:
        raise ValueError(f"images must hold at least one non-empty image, got shape {images.shape}.")
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        got = f"{labels.dtype} {labels.shape}" if isinstance(labels, np.ndarray) else type(labels).__name__
        raise ValueError(f"labels must be a 1-D integer array, got {got}.")
    if len(labels) != len(images):
        raise ValueError(f"images and labels differ in length: {len(images)} images, {len(labels)} labels.")
    if labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got {labels.min()}.")
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    elif not _is_int(num_classes) or num_classes < 1:
        raise SceneSettingsError(f"num_classes must be a positive integer or None, got {num_classes!r}.")
    if labels.max() >= num_classes:
        raise ValueError(f"labels must be < num_classes ({num_classes}), got {labels.max()}.")
    if num_classes > 255:
        raise SceneSettingsError(
            f"num_classes must be at most 255 (masks are uint8 and class c is c + 1), got {num_classes}."
        )
    return int(num_classes)


def _interpolation_matrix(size: int, grid: int) -> np.ndarray:
    """(size, grid) weights of linear interpolation from ``grid`` points spanning ``size`` pixels."""
    position = np.linspace(0, grid - 1, size) if size > 1 else np.zeros(1)
    low = np.minimum(np.floor(position).astype(int), grid - 2) if grid > 1 else np.zeros(size, int)
    frac = position - low
    weights = np.zeros((size, grid))
    weights[np.arange(size), low] = 1 - frac
    if grid > 1:
        weights[np.arange(size), low + 1] += frac
    return weights


def _paint_backgrounds(out: np.ndarray, base: np.ndarray, offsets: np.ndarray) -> None:
    """Fill ``out`` (N, S, S, 3) with bilinear stretches of ``base + offsets`` (N, G, G, 3)."""
    n, size, grid = len(out), out.shape[1], offsets.shape[1]
    weights = _interpolation_matrix(size, grid)
    # The stretch is linear in the G*G control colours: one (G*G, S*S) basis, one matmul.
    basis = np.einsum("si,tj->stij", weights, weights).reshape(size * size, grid * grid).astype(np.float32)
    for start in range(0, n, _CHUNK):
        colours = (base[start : start + _CHUNK] + offsets[start : start + _CHUNK]).astype(np.float32)
        smooth = basis @ colours.reshape(len(colours), grid * grid, 3)
        # Weights are convex and the colours lie in 0..255, so rounding needs no clipping.
        smooth += 0.5
        out[start : start + _CHUNK] = smooth.reshape(len(colours), size, size, 3)


def _resized(image: np.ndarray, side: int) -> np.ndarray:
    if image.shape[:2] == (side, side):
        return image
    return np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR))


def make_scenes(
    images,
    labels,
    num_scenes,
    *,
    canvas_size=64,
    max_objects=3,
    min_object_size=20,
    max_object_size=40,
    num_classes=None,
    seed=0,
    progress=False,
) -> SceneSet:
    """Compose ``num_scenes`` scenes from ``images`` (see the module docstring).

    Args:
        images: uint8 (M, h, w, 3), the objects to paste (e.g. CIFAR images).
        labels: integer (M,), their classes.
        num_scenes: how many scenes, >= 1.
        canvas_size: ``S``, the side of the square canvas.
        max_objects: the most objects per scene; each scene has 1..max_objects,
            drawn uniformly.
        min_object_size, max_object_size: objects are resized to a square side drawn
            uniformly from this range (inclusive).
        num_classes: the number of classes (the width of ``present``); None means
            ``labels.max() + 1``.
        seed: the seed of ``np.random.default_rng``.
        progress: show a progress bar.

    Returns:
        A :class:`SceneSet`.

    Raises:
        SceneSettingsError: for an invalid setting (checked before any work).
        ValueError: for images or labels of the wrong dtype, shape or range.
    """
    check_scene_settings(canvas_size, max_objects, min_object_size, max_object_size)
    _check_count("num_scenes", num_scenes)
    _check_seed(seed)
    num_classes = _check_images(images, labels, num_classes)
    labels = labels.astype(np.int64)

    n, size, slots = num_scenes, canvas_size, max_objects
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, slots + 1, size=n)
    picks = rng.integers(0, len(images), size=(n, slots))
    sides = rng.integers(min_object_size, max_object_size + 1, size=(n, slots))
    tops = (rng.random((n, slots)) * (size - sides + 1)).astype(np.int64)
    lefts = (rng.random((n, slots)) * (size - sides + 1)).astype(np.int64)
    base = rng.uniform(*_BASE_RANGE, size=(n, 1, 1, 3))
    offsets = rng.uniform(-_OFFSET, _OFFSET, size=(n, _GRID, _GRID, 3))

    scenes = np.empty((n, size, size, 3), np.uint8)
    _paint_backgrounds(scenes, base, offsets)
    masks = np.zeros((n, size, size), np.uint8)
    used = np.arange(slots)[None, :] < counts[:, None]
    object_classes = np.where(used, labels[picks], -1).astype(np.int32)
    boxes = np.stack([tops, lefts, tops + sides, lefts + sides], axis=-1)
    boxes = np.where(used[..., None], boxes, -1).astype(np.int32)

    pixels = np.empty((n, num_classes + 1), np.int64)  # visible pixels of each mask value
    for i in tqdm(range(n), desc=f"Composing {n} scenes", unit="scene", disable=not progress):
        for k in range(counts[i]):
            top, left, bottom, right = boxes[i, k]
            scenes[i, top:bottom, left:right] = _resized(images[picks[i, k]], int(sides[i, k]))
            masks[i, top:bottom, left:right] = object_classes[i, k] + 1
        pixels[i] = np.bincount(masks[i].ravel(), minlength=num_classes + 1)
    pixels = pixels[:, 1:]
    return SceneSet(
        scenes=scenes,
        masks=masks,
        labels=pixels.argmax(axis=1).astype(np.int64),
        present=pixels > 0,
        boxes=boxes,
        object_classes=object_classes,
    )


def load_scenes(
    name="cifar10",
    *,
    num_train=5000,
    num_test=1000,
    canvas_size=64,
    max_objects=3,
    min_object_size=20,
    max_object_size=40,
    seed=0,
    source=None,
    progress=True,
) -> SceneData:
    """Scenes composed from CIFAR: training scenes from training images, test scenes from test images.

    The scenes are cached in :func:`vt_edu.config.cache_dir` under a key made of all
    settings and a digest of the CIFAR arrays they are composed from, so a changed
    source or setting composes them again. An entry is checked (its own digest, key,
    shapes and dtypes) before it is served; anything else is composed again and
    rewritten. The two splits use two seeds derived from ``seed``.

    Args:
        name: ``"cifar10"`` or ``"cifar100"`` (fine labels).
        num_train, num_test: how many scenes in each split.
        canvas_size, max_objects, min_object_size, max_object_size: see
            :func:`make_scenes`.
        seed: the seed the two splits' seeds are derived from.
        source: where CIFAR comes from (see :func:`vt_edu.data.load_cifar`).
        progress: show progress bars.

    Returns:
        A :class:`SceneData`.

    Raises:
        SceneSettingsError: for an invalid setting (checked before loading anything).
        ValueError: for an unknown ``name``.
        DataError: see :func:`vt_edu.data.load_cifar`.
    """
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}.")
    check_scene_settings(canvas_size, max_objects, min_object_size, max_object_size)
    _check_count("num_train", num_train)
    _check_count("num_test", num_test)
    _check_seed(seed)
    (x_train, y_train), (x_test, y_test), class_names = load_cifar(name, source=source, progress=progress)
    # Every setting and the images themselves name the entry: nothing else changes the scenes.
    identity = dict(
        name=name,
        num_train=int(num_train),
        num_test=int(num_test),
        canvas_size=int(canvas_size),
        max_objects=int(max_objects),
        min_object_size=int(min_object_size),
        max_object_size=int(max_object_size),
        seed=int(seed),
        format=FORMAT_VERSION,
        class_names=list(class_names),
        source=cache.array_digest(dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)),
    )
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    path = scene_cache.entry_path(name, key, FORMAT_VERSION)
    sizes = {"train": num_train, "test": num_test}
    cached = scene_cache.load(path, key, _entry_layout(sizes, canvas_size, max_objects, len(class_names)))
    if cached is not None and _in_range(cached, len(class_names)):
        splits = {split: SceneSet(*(cached[f"{split}_{field}"] for field in SceneSet._fields)) for split in sizes}
        return SceneData(**splits, class_names=list(class_names))
    train_seed, test_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    common = dict(
        canvas_size=canvas_size,
        max_objects=max_objects,
        min_object_size=min_object_size,
        max_object_size=max_object_size,
        num_classes=len(class_names),
        progress=progress,
    )
    result = SceneData(
        train=make_scenes(x_train, y_train, num_train, seed=train_seed, **common),
        test=make_scenes(x_test, y_test, num_test, seed=test_seed, **common),
        class_names=list(class_names),
    )
    arrays = {f"{split}_{field}": value for split in sizes for field, value in getattr(result, split)._asdict().items()}
    scene_cache.save(path, key, arrays)
    return result


def _entry_layout(sizes: dict, canvas_size: int, max_objects: int, num_classes: int) -> dict:
    """The dtype and shape of every array of a cache entry: ``"<split>_<field>"``."""
    s, m, k = canvas_size, max_objects, num_classes
    layout = {}
    for split, n in sizes.items():
        layout.update({
            f"{split}_scenes": (np.uint8, (n, s, s, 3)),
            f"{split}_masks": (np.uint8, (n, s, s)),
            f"{split}_labels": (np.int64, (n,)),
            f"{split}_present": (np.bool_, (n, k)),
            f"{split}_boxes": (np.int32, (n, m, 4)),
            f"{split}_object_classes": (np.int32, (n, m)),
        })  # fmt: skip
    return layout


def _in_range(arrays: dict, num_classes: int) -> bool:
    masks = [a for name, a in arrays.items() if name.endswith("_masks")]
    labels = [a for name, a in arrays.items() if name.endswith("_labels")]
    return all(m.max() <= num_classes for m in masks) and all(0 <= y.min() and y.max() < num_classes for y in labels)
