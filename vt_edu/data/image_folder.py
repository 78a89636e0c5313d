"""The image-folder layout: ``train/<class>/*`` and ``test/<class>/*``.

This is the layout of ``keras.utils.image_dataset_from_directory`` and of the
offline JPEG copy of CIFAR-10. Folder names are class names; the label of a class
is its index in the official CIFAR order (:mod:`.names`), not its position in a
directory listing, which differs between file systems and archives.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from vt_edu.data.errors import ClassMismatchError, CorruptFileError, EmptyClassError, ImageSizeError, LayoutError
from vt_edu.data.names import CIFAR10_CLASSES, CIFAR100_FINE_CLASSES, CIFAR100_FINE_TO_COARSE, official_class_names
from vt_edu.data.trees import FileTree

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".webp")
IMAGE_SIZE = (32, 32)
# Image folders list files class by class. We return them in a fixed random order,
# as the official files are, so that ``x_train[:n]`` is a mix of classes.
SHUFFLE_SEED = 0


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _images(tree: FileTree, folder: str) -> list[str]:
    # Hidden files are skipped: macOS archives carry "._name.jpg" metadata files.
    _, files = tree.listdir(folder)
    return [f for f in files if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES)]


def _classes(tree: FileTree, root: str, split: str) -> list[str]:
    if _join(root, split) not in tree.dirs:
        other = SPLITS[1 - SPLITS.index(split)]
        raise LayoutError(
            f"{tree.describe(_join(root, other))} has no sibling {split}/ folder; an image-folder "
            f"source needs both train/<class>/ and test/<class>/."
        )
    subdirs, _ = tree.listdir(_join(root, split))
    return [d for d in subdirs if not d.startswith(".")]


def dataset_of(tree: FileTree, root: str) -> str:
    """Which CIFAR an image-folder tree holds, from its class folder names.

    Args:
        tree: the source.
        root: the relative path of the folder holding ``train/`` and ``test/``.

    Returns:
        ``"cifar10"`` or ``"cifar100"``.

    Raises:
        LayoutError: if a split is missing or the class folders are not the official
            CIFAR-10 or CIFAR-100 (fine) class names.
        ClassMismatchError: if ``train/`` and ``test/`` hold different class folders.
        EmptyClassError: if a class folder holds no image.
    """
    train, test = _classes(tree, root, "train"), _classes(tree, root, "test")
    if set(train) != set(test):
        raise ClassMismatchError(
            f"{tree.describe(root or '.')}: the class folders of train/ and test/ differ "
            f"(only in train/: {sorted(set(train) - set(test)) or 'none'}; "
            f"only in test/: {sorted(set(test) - set(train)) or 'none'}). "
            "Both splits need the same classes; add or remove folders so that they match."
        )
    for split in SPLITS:
        for cls in train:
            folder = _join(root, split, cls)
            if not _images(tree, folder):
                raise EmptyClassError(
                    f"{tree.describe(folder)} holds no image ({', '.join(IMAGE_SUFFIXES)}). "
                    "Every class needs images in both train/ and test/; add them or remove the folder."
                )
    for name, official in (("cifar10", CIFAR10_CLASSES), ("cifar100", CIFAR100_FINE_CLASSES)):
        if set(train) == set(official):
            return name
    if len(train) > len(CIFAR10_CLASSES):
        expected, title = CIFAR100_FINE_CLASSES, "CIFAR-100"
    else:
        expected, title = CIFAR10_CLASSES, "CIFAR-10"
    raise LayoutError(
        f"{tree.describe(_join(root, 'train'))}: {len(train)} class folders that are not the "
        f"official {title} classes "
        f"(missing: {sorted(set(expected) - set(train))}; unexpected: {sorted(set(train) - set(expected))}). "
        "Name the class folders exactly as the official classes, so that labels follow the official order."
    )


def _decode(tree: FileTree, relpath: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(tree.read(relpath))) as image:
            return np.asarray(image.convert("RGB"))
    # Pillow reports damaged files with several types (UnidentifiedImageError,
    # OSError "truncated", SyntaxError, ValueError); all mean the file is unusable.
    except Exception as error:
        raise CorruptFileError(
            f"{tree.describe(relpath)} cannot be decoded as an image ({error}). "
            "Replace or delete the file."
        ) from error


def read_image_folder(tree: FileTree, root: str, name: str, label_mode: str, progress: bool = True):
    """Decode every image of an image-folder tree.

    Args:
        tree: the source.
        root: the relative path of the folder holding ``train/`` and ``test/``.
        name: ``"cifar10"`` or ``"cifar100"`` (see :func:`dataset_of`).
        label_mode: ``"fine"`` or ``"coarse"``; coarse CIFAR-100 labels are derived
            from the fine class folders.
        progress: show a progress bar while decoding.

    Returns:
        ``((x_train, y_train), (x_test, y_test), class_names)`` with x of shape
        (N, 32, 32, 3) uint8 and y of shape (N,) int64, each split in a fixed
        random order.

    Raises:
        CorruptFileError: if an image cannot be decoded.
        ImageSizeError: if an image is not 32x32 pixels.
    """
    fine_names = CIFAR10_CLASSES if name == "cifar10" else CIFAR100_FINE_CLASSES
    splits = {
        split: [
            (_join(root, split, cls, f), label)
            for label, cls in enumerate(fine_names)
            for f in _images(tree, _join(root, split, cls))
        ]
        for split in SPLITS
    }
    total = sum(len(items) for items in splits.values())
    bar = tqdm(total=total, desc=f"Decoding {total} images", unit="img", disable=not progress)
    first = None
    result = []
    with bar:
        for split in SPLITS:
            items = splits[split]
            x = np.empty((len(items), *IMAGE_SIZE, 3), dtype=np.uint8)
            for i, (relpath, _) in enumerate(items):
                image = _decode(tree, relpath)
                if image.shape[:2] != IMAGE_SIZE:
                    height, width = image.shape[:2]
                    also = f"{tree.describe(first)} and " if first else ""
                    raise ImageSizeError(
                        f"{tree.describe(relpath)} is {width}x{height} pixels, but {also}CIFAR images "
                        f"are {IMAGE_SIZE[1]}x{IMAGE_SIZE[0]}. Resize or remove it."
                    )
                first = first or relpath
                x[i] = image
                bar.update()
            y = np.array([label for _, label in items], dtype=np.int64)
            if name == "cifar100" and label_mode == "coarse":
                y = np.asarray(CIFAR100_FINE_TO_COARSE, dtype=np.int64)[y]
            order = np.random.default_rng(SHUFFLE_SEED).permutation(len(items))
            result.append((x[order], y[order]))
    train, test = result
    return train, test, official_class_names(name, label_mode)
