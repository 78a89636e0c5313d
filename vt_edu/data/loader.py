"""``load_cifar``: CIFAR-10/100 as NumPy arrays, from wherever they are."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from vt_edu.data import cache, cifar_pickle, image_folder, sources, trees
from vt_edu.data.errors import LayoutError
from vt_edu.data.names import DISPLAY_NAMES, official_class_names
from vt_edu.names import DATASETS
LABEL_MODES = ("fine", "coarse")


class CifarData(NamedTuple):
    """CIFAR arrays; unpacks as ``(x_train, y_train), (x_test, y_test), class_names``.

    Attributes:
        train: ``(x_train, y_train)``: images (N, 32, 32, 3) uint8, labels (N,) int64.
        test: ``(x_test, y_test)``, shaped likewise.
        class_names: list of str; ``class_names[k]`` is the name of label ``k``.
    """

    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    class_names: list[str]


def load_cifar(name: str = "cifar10", source=None, label_mode: str = "fine", progress: bool = True) -> CifarData:
    """Load CIFAR-10 or CIFAR-100 as NumPy arrays.

    The data come from the first of:

    1. ``source``, if given;
    2. the entries of the ``VT_EDU_DATA`` environment variable (one path, or several
       joined with ``os.pathsep``); the first entry holding the data set is used;
    3. the official archive, downloaded once by ``keras.utils.get_file`` into Keras'
       cache (``~/.keras/datasets``), as ``keras.datasets`` does.

    A source is a folder or a ``.tar.gz``/``.tgz`` of one, holding either an
    image-folder tree (``train/<class>/*``, ``test/<class>/*``; class folders named
    as the official classes; 10 classes mean CIFAR-10, 100 mean CIFAR-100) or the
    official python layout (``cifar-10-batches-py/``, ``cifar-100-python/``),
    possibly inside one top-level folder.

    Decoded arrays are cached under ``vt_edu.config.cache_dir()`` (``VT_EDU_CACHE``),
    keyed by the source's content, so only the first load of a source decodes it.

    Unlike ``keras.datasets.cifar10.load_data()``, which returns labels of shape
    (N, 1), labels here are flat, shape (N,): that is what NumPy indexing
    (``class_names[y[i]]``, ``x[y == k]``), ``np.bincount`` and the sparse
    categorical losses and metrics expect, and a stray (N, 1) broadcasts silently
    against (N,) predictions (``(y_pred == y).mean()`` becomes an (N, N) comparison).

    Image-folder sources are returned in a fixed random order (the same on every
    load), as the official files are, so that ``x_train[:n]`` mixes all classes.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        source: a folder or archive path (str or ``os.PathLike``), or None to use
            ``VT_EDU_DATA`` or the download.
        label_mode: ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses);
            CIFAR-100 only.
        progress: show a progress bar while decoding images.

    Returns:
        A :class:`CifarData`: ``(x_train, y_train), (x_test, y_test), class_names``
        with x uint8 of shape (N, 32, 32, 3) (channels last, values 0..255), y int64
        of shape (N,), labels in the official order, and ``class_names`` in that order.

    Raises:
        ValueError: for an unknown ``name`` or ``label_mode``.
        SourceNotFoundError: if ``source`` or a ``VT_EDU_DATA`` entry does not exist.
        LayoutError: if a source has no recognised layout, or ``source`` does not
            hold the requested data set (subclasses: ``ClassMismatchError``,
            ``EmptyClassError``).
        ArchiveError: if a file is not a readable tar(.gz) archive.
        CorruptFileError, ImageSizeError: for an undecodable or wrongly sized image
            or a malformed CIFAR batch file.
        UnsafePickleError: if a pickle asks for anything but numpy arrays.
        DownloadError: if no local source holds the data set and the download fails.
        CacheError: if the cache folder (``VT_EDU_CACHE``) cannot be created.

    All of these derive from :class:`vt_edu.data.DataError`.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test), class_names = load_cifar("cifar10")
    assert x_train.shape == (50000, 32, 32, 3) and y_train.shape == (50000,)
    ```
    """
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}.")
    if label_mode not in LABEL_MODES or (name == "cifar10" and label_mode != "fine"):
        allowed = LABEL_MODES if name == "cifar100" else ("fine",)
        raise ValueError(f"label_mode for {name} must be one of {allowed}, got {label_mode!r}.")
    paths, origin = sources.candidates(source)
    for path in paths:
        data = _load_from(path, origin, name, label_mode, progress, required=source is not None)
        if data is not None:
            return data
    archive, sha256 = sources.download(name, searched=paths)
    return _load_from(archive, "Keras' download", name, label_mode, progress, required=True, identity=sha256)


def _load_from(path: Path, origin: str, name, label_mode, progress, required: bool, identity: str | None = None):
    """The data set from one source, or None if it is not there and not ``required``."""
    sources.check_exists(path, origin)
    identity = identity or trees.identity(path)
    entry = cache.entry_path(identity, name, label_mode)
    cached = cache.load(entry, official_class_names(name, label_mode))
    if cached is not None:
        return CifarData(*cached)
    held = cache.load_contents(identity)
    if held is not None and name not in held and not required:
        return None
    tree = trees.open_tree(path)
    layouts = sources.find_layouts(tree)
    cache.save_contents(identity, list(layouts))
    layout = layouts.get(name)
    if layout is None:
        if not required:
            return None
        raise LayoutError(
            f"{path} (from {origin}) holds {', '.join(DISPLAY_NAMES[n] for n in layouts)}, "
            f"not {DISPLAY_NAMES[name]}. Give a source that holds it, or load the data set it holds."
        )
    if layout.kind == "official":
        data = cifar_pickle.read_official(tree, layout.root, name, label_mode)
    else:
        data = image_folder.read_image_folder(tree, layout.root, name, label_mode, progress)
    cache.save(entry, *data)
    return CifarData(*data)
