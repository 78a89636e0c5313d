"""The official CIFAR python layout, read with a restricted unpickler.

The official files (``cifar-10-batches-py/``, ``cifar-100-python/``) are Python
pickles. A pickle can name any importable callable and have it called while
loading, so a tampered file could run code (``os.system``) on the reader's machine.
We therefore allow exactly the globals that numpy arrays in these files need and
refuse everything else before it is imported or called.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from vt_edu.data.errors import CorruptFileError, LayoutError, UnsafePickleError
from vt_edu.data.names import official_class_names
from vt_edu.data.trees import FileTree

OFFICIAL_DIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}

_CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_FILES = {
    "cifar10": (*_CIFAR10_TRAIN, "test_batch", "batches.meta"),
    "cifar100": ("train", "test", "meta"),
}
#: The largest file read: the biggest official file (CIFAR-100's ``train``) has 156 MB.
MAX_FILE_BYTES = 256 << 20

# What numpy arrays reduce to when pickled: ``_reconstruct``/``ndarray``/``dtype`` for
# protocols 0-4 (``numpy.core`` in files written with numpy 1.x, as the originals
# were; ``numpy._core`` with numpy 2.x), ``_frombuffer`` for protocol 5, and
# ``_codecs.encode``, which protocols 0-2 use to rebuild a ``bytes`` object.
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }
)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS`.

    Args:
        file: a binary file object holding the pickle.
        where: how to name the file in an error message.
    """

    def __init__(self, file, where: str):
        # The originals were written by Python 2; "bytes" keeps their str keys and
        # pixel buffers as bytes instead of guessing a text encoding.
        super().__init__(file, encoding="bytes")
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self.where}: refused to load the pickle, which asks for the global "
            f"{module}.{name}; CIFAR files only need numpy arrays. The file is not an "
            "official CIFAR file or was tampered with: nothing from it was executed. "
            "Replace it with a fresh copy of the data set."
        )


def load_pickle(data: bytes, where: str) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`.

    Args:
        data: the pickle's bytes.
        where: how to name the file in an error message.

    Returns:
        The unpickled object.

    Raises:
        UnsafePickleError: if the pickle names a global outside the allow-list.
        CorruptFileError: if the bytes are not a readable pickle.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), where).load()
    except UnsafePickleError:
        raise
    # A damaged pickle fails in many ways (UnpicklingError, EOFError, ValueError,
    # TypeError from a malformed reduce...); to the reader they all mean "corrupt".
    except Exception as error:
        raise CorruptFileError(
            f"{where} is not a readable CIFAR pickle ({type(error).__name__}: {error}). "
            "Replace it with a fresh copy of the data set."
        ) from error


def _load_dict(tree: FileTree, relpath: str, data: bytes) -> dict[str, Any]:
    where = tree.describe(relpath)
    obj = load_pickle(data, where)
    if not isinstance(obj, dict):
        raise CorruptFileError(f"{where} holds a {type(obj).__name__}, not the dict of a CIFAR file.")
    return {k.decode("utf-8") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _get(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise CorruptFileError(f"{where} has no {key!r} entry (it has {sorted(d)}); it is not a CIFAR file.")
    return d[key]


def _batch(tree: FileTree, relpath: str, data: bytes, label_key: str, num_classes: int):
    """Images (N, 32, 32, 3) uint8 and labels (N,) int64 of one batch file."""
    where = tree.describe(relpath)
    d = _load_dict(tree, relpath, data)
    data, labels = _get(d, "data", where), _get(d, label_key, where)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        raise CorruptFileError(f"{where}: 'data' must be a uint8 array of shape (N, 3072), got {_describe(data)}.")
    try:
        labels = np.asarray(labels).reshape(-1)
    except (TypeError, ValueError) as error:
        raise CorruptFileError(f"{where}: {label_key!r} is not a list of integer labels ({error}).") from error
    # Casting would truncate 2.7 to 2 (or True to 1) and mislabel silently.
    if len(labels) and not np.issubdtype(labels.dtype, np.integer):
        raise CorruptFileError(
            f"{where}: {label_key!r} must hold integer labels, got {labels.dtype} values "
            f"(first: {labels[0]!r}). Replace the file with a fresh copy of the data set."
        )
    labels = labels.astype(np.int64)
    if len(labels) != len(data) or ((labels < 0) | (labels >= num_classes)).any():
        raise CorruptFileError(
            f"{where}: {label_key!r} must hold {len(data)} labels in [0, {num_classes}), "
            f"got {len(labels)} in [{labels.min(initial=0)}, {labels.max(initial=0)}]."
        )
    # Each row is channel-planar: 1024 red values, then 1024 green, then 1024 blue,
    # each plane row-major. Keras and the book use channels-last (NHWC).
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


def _names(tree: FileTree, relpath: str, data: bytes, key: str, official: list[str]) -> list[str]:
    """The class names of a meta file, which must be ``official`` in that order.

    The labels in the batch files are indices into this list; names in another order
    (or other names) would mislabel every class, so they are refused, not trusted.
    """
    where = tree.describe(relpath)
    names = _get(_load_dict(tree, relpath, data), key, where)
    if not isinstance(names, (list, tuple)):
        raise CorruptFileError(f"{where}: {key!r} must be a list of class names, got {_describe(names)}.")
    names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]
    if names != official:
        differ = [i for i in range(max(len(names), len(official))) if names[i : i + 1] != official[i : i + 1]]
        i = differ[0]
        got = repr(names[i]) if i < len(names) else "nothing"
        raise CorruptFileError(
            f"{where}: {key!r} are not the official class names in the official order "
            f"({len(names)} names; label {i} is {got}, officially {official[i]!r}"
            f"{f', and {len(differ) - 1} more labels differ' if len(differ) > 1 else ''}). "
            "Labels would name the wrong classes; replace the file with a fresh copy of the data set."
        )
    return names


def read_official(tree: FileTree, root: str, name: str, label_mode: str):
    """Read the official layout of CIFAR-10 or CIFAR-100 from ``root`` in ``tree``.

    Args:
        tree: the source.
        root: the relative path of ``cifar-10-batches-py``/``cifar-100-python``.
        name: ``"cifar10"`` or ``"cifar100"``.
        label_mode: ``"fine"`` or ``"coarse"`` (CIFAR-100 only).

    Returns:
        ``((x_train, y_train), (x_test, y_test), class_names)``.

    Raises:
        LayoutError: if a required file is missing.
        UnsafePickleError, CorruptFileError: see :func:`load_pickle`; CorruptFileError
            also for class names that are not the official ones in the official
            order, labels that are not integers in range, or a file larger than
            :data:`MAX_FILE_BYTES`.
    """
    prefix = f"{root}/" if root else ""
    missing = [f for f in _FILES[name] if prefix + f not in tree.files]
    if missing:
        raise LayoutError(
            f"{tree.describe(root or '.')} is missing {', '.join(missing)} of the official "
            f"{OFFICIAL_DIRS[name]} layout. Replace it with a complete copy."
        )
    for f in _FILES[name]:
        size = tree.size(prefix + f)
        if size > MAX_FILE_BYTES:
            raise CorruptFileError(
                f"{tree.describe(prefix + f)} has {size:,} bytes, more than the {MAX_FILE_BYTES:,} "
                "read for one official CIFAR file; it is not one. Replace it with a fresh copy."
            )
    # One pass over an archive for all the files (each is needed whole anyway).
    files = {relpath[len(prefix) :]: data for relpath, data in tree.read_files([prefix + f for f in _FILES[name]])}
    official = official_class_names(name, label_mode)
    if name == "cifar10":
        class_names = _names(tree, prefix + "batches.meta", files.pop("batches.meta"), "label_names", official)
        parts = [_batch(tree, prefix + f, files.pop(f), "labels", len(class_names)) for f in _CIFAR10_TRAIN]
        train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        test = _batch(tree, prefix + "test_batch", files.pop("test_batch"), "labels", len(class_names))
    else:
        key = f"{label_mode}_label_names"
        class_names = _names(tree, prefix + "meta", files.pop("meta"), key, official)
        train = _batch(tree, prefix + "train", files.pop("train"), f"{label_mode}_labels", len(class_names))
        test = _batch(tree, prefix + "test", files.pop("test"), f"{label_mode}_labels", len(class_names))
    return train, test, class_names


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
