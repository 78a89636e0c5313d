"""Decoded arrays cached on disk, so that only the first load pays for decoding.

Decoding the 60,000 JPEGs of the offline CIFAR-10 copy takes about 17 s; reading
the same arrays back from an uncompressed ``.npz`` takes a fraction of a second.
Entries live in :func:`vt_edu.config.cache_dir` and are keyed by the source's
content (see :func:`vt_edu.data.trees.identity`), the data set and the label mode,
so a changed source is decoded again instead of served stale.

An entry is checked before it is served: the arrays must have CIFAR's shapes and
dtypes, labels in range, the class names asked for, and the digest written with
them (so an entry edited or cut short after it was written, even into a valid
``.npz``, is detected). Anything else counts as no entry: the source is decoded again
and the entry rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from vt_edu.config import CACHE_ENV, cache_dir
from vt_edu.data.errors import CacheError
from vt_edu.data.image_folder import IMAGE_SIZE

# Part of every file name: bump it when the stored arrays change meaning, and old
# entries are simply no longer found.
FORMAT_VERSION = 2
_ARRAYS = ("x_train", "y_train", "x_test", "y_test", "class_names")
_KEYS = (*_ARRAYS, "digest")


def folder() -> Path:
    """The cache folder, created if need be.

    Raises:
        CacheError: if it cannot be created (``VT_EDU_CACHE`` under a regular file,
            or in a folder without write permission).
    """
    try:
        return cache_dir()
    except OSError as error:
        configured = os.environ.get(CACHE_ENV)
        setting = f"{CACHE_ENV}={configured}" if configured else f"the default, as {CACHE_ENV} is not set"
        # mkdir says "File exists" when the cache path itself is a regular file.
        why = "a file of that name is in the way" if isinstance(error, FileExistsError) else error.strerror or error
        raise CacheError(
            f"The data cache folder {error.filename or configured} cannot be created "
            f"({why}; from {setting}). Set {CACHE_ENV} to a folder you can write to."
        ) from error


def entry_path(identity: str, name: str, label_mode: str) -> Path:
    """Where the arrays of one (source, data set, label mode) are cached.

    Raises:
        CacheError: see :func:`folder`.
    """
    return folder() / f"{name}-{label_mode}-{identity[:32]}-v{FORMAT_VERSION}.npz"


def _contents_path(identity: str) -> Path:
    return folder() / f"contents-{identity[:32]}-v{FORMAT_VERSION}.json"


def load_contents(identity: str) -> list[str] | None:
    """The data sets a source was found to hold, or None if it was never inspected.

    Remembering this lets ``VT_EDU_DATA=cifar10.tar.gz`` answer "no CIFAR-100 here"
    without reading the whole archive again on every attempt.
    """
    try:
        names = json.loads(_contents_path(identity).read_text())
    except (OSError, ValueError):
        return None
    return names if isinstance(names, list) else None


def save_contents(identity: str, names: list[str]) -> None:
    """Record the data sets a source holds (see :func:`load_contents`)."""
    path = _contents_path(identity)
    write_atomically(path, lambda f: f.write(json.dumps(sorted(names)).encode()))


def load(path: Path, class_names: list[str] | None = None):
    """The cached ``(train, test, class_names)``, or None when there is no usable entry.

    Args:
        path: the entry (see :func:`entry_path`).
        class_names: the class names the entry must hold, in label order; None
            accepts the stored ones.

    An unreadable entry (say, truncated by a full disk outside our control) or one
    whose content fails the checks in the module docstring counts as missing: the
    data are decoded again and the entry rewritten.
    """
    try:
        # allow_pickle=False: a cache file must never be able to run code either.
        with np.load(path, allow_pickle=False) as entry:
            arrays = {key: entry[key] for key in _KEYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if not _valid(arrays, class_names):
        return None
    train = (arrays["x_train"], arrays["y_train"])
    test = (arrays["x_test"], arrays["y_test"])
    return train, test, [str(n) for n in arrays["class_names"]]


def _valid(arrays: dict[str, np.ndarray], class_names: list[str] | None) -> bool:
    if arrays["digest"].shape != () or str(arrays["digest"]) != _digest(arrays):
        return False
    stored = arrays["class_names"]
    if stored.ndim != 1 or (class_names is not None and [str(n) for n in stored] != class_names):
        return False
    class_names = [str(n) for n in stored]
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.shape[1:] != (*IMAGE_SIZE, 3) or x.ndim != 4:
            return False
        if y.dtype != np.int64 or y.shape != (len(x),):
            return False
        if len(y) and (y.min() < 0 or y.max() >= len(class_names)):
            return False
    return True


def _digest(arrays: dict[str, np.ndarray]) -> str:
    return array_digest({key: arrays[key] for key in _ARRAYS})


def array_digest(arrays) -> str:
    """sha256 of named arrays' names, dtypes, shapes and bytes, in the mapping's order.

    0.2-0.3 s for all of CIFAR-10. Other cached data (the scenes of
    :mod:`vt_edu.data.scenes`) key and check their entries with it too.

    Args:
        arrays: a mapping of name to ``np.ndarray``.

    Returns:
        The hex digest (64 characters).
    """
    digest = hashlib.sha256()
    for key, array in arrays.items():
        array = np.ascontiguousarray(array)
        digest.update(f"{key}\0{array.dtype.str}\0{array.shape}\n".encode())
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def save(path: Path, train, test, class_names) -> None:
    """Write one entry atomically: to a temporary file, renamed into place when complete.

    Ctrl-C or a crash mid-write never leaves a truncated entry under the real name
    (a killed process may leave a hidden ``.tmp`` file, which is never read).
    Failing to write (read-only or full disk) only costs speed, so it warns instead
    of raising.
    """
    arrays = dict(
        x_train=train[0],
        y_train=train[1],
        x_test=test[0],
        y_test=test[1],
        class_names=np.array(class_names, dtype=str),
    )
    write_atomically(path, lambda f: np.savez(f, digest=np.array(_digest(arrays)), **arrays))


def write_atomically(path: Path, write) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, renamed to ``path`` when complete.

    Other cached data reuse it. Failing to write only warns (see :func:`save`).
    """
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
        tmp = None
    except OSError as error:
        warnings.warn(
            f"Could not write the data cache {path} ({error}); the next load decodes again. "
            f"Set {CACHE_ENV} to a folder you can write to, to keep decoded data.",
            stacklevel=4,
        )
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
