"""The image-folder layout: ``train/<class>/*`` and ``test/<class>/*``.

This is the layout of ``keras.utils.image_dataset_from_directory`` and of the
offline JPEG copy of CIFAR-10. Folder names are class names; the label of a class
is its index in the official CIFAR order (:mod:`.names`), not its position in a
directory listing, which differs between file systems and archives.

Image files are untrusted input: a small PNG can declare 9000x9000 pixels and cost a
gigabyte to decode. So a file larger than :data:`MAX_IMAGE_FILE_BYTES` is refused
before it is read, and an image's size is read from its header and refused unless it
is CIFAR's 32x32 before any pixel is decoded.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from vt_edu.data.errors import ClassMismatchError, CorruptFileError, EmptyClassError, ImageSizeError, LayoutError
from vt_edu.data.names import (
    CIFAR10_CLASSES,
    CIFAR100_FINE_CLASSES,
    CIFAR100_FINE_TO_COARSE,
    DISPLAY_NAMES,
    official_class_names,
)
from vt_edu.data.trees import FileTree

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".webp")
IMAGE_SIZE = (32, 32)
#: The largest image file read: a 32x32 image takes at most a few KiB in any format
#: (3 KiB as raw BMP), so anything near 1 MiB is not a CIFAR image.
MAX_IMAGE_FILE_BYTES = 1 << 20
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
            f"source needs both train/<class>/ and test/<class>/.{tree.links_note()}"
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
    datasets = {"cifar10": CIFAR10_CLASSES, "cifar100": CIFAR100_FINE_CLASSES}
    for name, official in datasets.items():
        if set(train) == set(official):
            return name
    raise LayoutError(_class_folders_message(tree.describe(_join(root, "train")), train, datasets))


def _class_folders_message(where: str, classes: list[str], datasets: dict[str, tuple[str, ...]]) -> str:
    """Why ``classes`` are neither data set's, compared with the closer of the two."""
    # The data set sharing the most names, and of those the one closest in count.
    name = max(
        datasets,
        key=lambda n: (len(set(classes) & set(datasets[n])), -abs(len(classes) - len(datasets[n]))),
    )
    official = datasets[name]
    missing, unexpected = sorted(set(official) - set(classes)), sorted(set(classes) - set(official))
    if len(classes) in {len(names) for names in datasets.values()}:
        what = f"{len(classes)} class folders that are not the official {DISPLAY_NAMES[name]} classes"
    else:
        counts = " nor ".join(f"{DISPLAY_NAMES[n]}'s {len(names)}" for n, names in datasets.items())
        what = f"{len(classes)} class folders match neither {counts}; compared with {DISPLAY_NAMES[name]}"
    return (
        f"{where}: {what} (unexpected: {_some(unexpected)}; missing: {_some(missing)}). "
        "Name the class folders exactly as the official classes of one data set, so that labels "
        "follow the official order, and remove any other folder."
    )


def _some(names: list[str], limit: int = 10) -> str:
    """A list for a message, cut after ``limit`` names."""
    if not names:
        return "none"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{names[:limit]}{more}"


def _decode(tree: FileTree, relpath: str, data: bytes, first: str | None) -> np.ndarray:
    """One image as (32, 32, 3) uint8; its size is checked from the header first.

    ``first`` is an image already read (for the message), or None.
    """
    try:
        image = Image.open(io.BytesIO(data))  # lazy: reads the header only
    # Pillow reports damaged files with several types (UnidentifiedImageError,
    # OSError "truncated", SyntaxError, ValueError); all mean the file is unusable.
    except Exception as error:
        raise _undecodable(tree, relpath, error) from error
    with image:
        if image.size != (IMAGE_SIZE[1], IMAGE_SIZE[0]):
            width, height = image.size
            also = f"{tree.describe(first)} and " if first else ""
            raise ImageSizeError(
                f"{tree.describe(relpath)} is {width}x{height} pixels, but {also}CIFAR images "
                f"are {IMAGE_SIZE[1]}x{IMAGE_SIZE[0]}. Resize or remove it."
            )
        try:
            return np.asarray(image.convert("RGB"))
        except Exception as error:
            raise _undecodable(tree, relpath, error) from error


def _undecodable(tree: FileTree, relpath: str, error: Exception) -> CorruptFileError:
    return CorruptFileError(
        f"{tree.describe(relpath)} cannot be decoded as an image ({error}). Replace or delete the file."
    )


def _check_file_sizes(tree: FileTree, relpaths: list[str]) -> None:
    for relpath in relpaths:
        size = tree.size(relpath)
        if size > MAX_IMAGE_FILE_BYTES:
            raise ImageSizeError(
                f"{tree.describe(relpath)} is a {size:,}-byte file, more than the "
                f"{MAX_IMAGE_FILE_BYTES:,} bytes read for one image; a {IMAGE_SIZE[1]}x{IMAGE_SIZE[0]} "
                "CIFAR image takes a few KiB. Remove it or replace it with a 32x32 image."
            )


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
        CorruptFileError: if an image cannot be read or decoded.
        ImageSizeError: if an image is not 32x32 pixels (read from its header, before
            decoding), or its file is larger than :data:`MAX_IMAGE_FILE_BYTES`.
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
    # Where each file goes: (split, row). Archives deliver files in their own order.
    slots = {relpath: (split, i) for split in SPLITS for i, (relpath, _) in enumerate(splits[split])}
    _check_file_sizes(tree, list(slots))
    images = {split: np.empty((len(splits[split]), *IMAGE_SIZE, 3), dtype=np.uint8) for split in SPLITS}
    bar = tqdm(total=len(slots), desc=f"Decoding {len(slots)} images", unit="img", disable=not progress)
    first = None
    with bar:
        for relpath, data in tree.read_files(slots):
            split, i = slots[relpath]
            images[split][i] = _decode(tree, relpath, data, first)
            first = first or relpath
            bar.update()
    result = []
    for split in SPLITS:
        x = images[split]
        y = np.array([label for _, label in splits[split]], dtype=np.int64)
        if name == "cifar100" and label_mode == "coarse":
            y = np.asarray(CIFAR100_FINE_TO_COARSE, dtype=np.int64)[y]
        order = np.random.default_rng(SHUFFLE_SEED).permutation(len(x))
        result.append((x[order], y[order]))
    train, test = result
    return train, test, official_class_names(name, label_mode)
