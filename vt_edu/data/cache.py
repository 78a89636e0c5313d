"""Decoded arrays cached on disk, so that only the first load pays for decoding.

Decoding the 60,000 JPEGs of the offline CIFAR-10 copy takes about 17 s; reading
the same arrays back from an uncompressed ``.npz`` takes a fraction of a second.
Entries live in :func:`vt_edu.config.cache_dir` and are keyed by the source's
content (see :func:`vt_edu.data.trees.identity`), the data set and the label mode,
so a changed source is decoded again instead of served stale.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from vt_edu.config import cache_dir

# Part of every file name: bump it when the stored arrays change meaning, and old
# entries are simply no longer found.
FORMAT_VERSION = 1
_KEYS = ("x_train", "y_train", "x_test", "y_test", "class_names")


def entry_path(identity: str, name: str, label_mode: str) -> Path:
    """Where the arrays of one (source, data set, label mode) are cached."""
    return cache_dir() / f"{name}-{label_mode}-{identity[:32]}-v{FORMAT_VERSION}.npz"


def _contents_path(identity: str) -> Path:
    return cache_dir() / f"contents-{identity[:32]}-v{FORMAT_VERSION}.json"


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
    _write_atomically(path, lambda f: f.write(json.dumps(sorted(names)).encode()))


def load(path: Path):
    """The cached ``(train, test, class_names)``, or None when there is no usable entry.

    An unreadable entry (say, truncated by a full disk outside our control) counts
    as missing: the data are decoded again and the entry rewritten.
    """
    try:
        # allow_pickle=False: a cache file must never be able to run code either.
        with np.load(path, allow_pickle=False) as entry:
            arrays = {key: entry[key] for key in _KEYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    train = (arrays["x_train"], arrays["y_train"])
    test = (arrays["x_test"], arrays["y_test"])
    return train, test, [str(n) for n in arrays["class_names"]]


def save(path: Path, train, test, class_names) -> None:
    """Write one entry atomically: to a temporary file, renamed into place when complete.

    Ctrl-C or a crash mid-write never leaves a truncated entry under the real name
    (a killed process may leave a hidden ``.tmp`` file, which is never read).
    Failing to write (read-only or full disk) only costs speed, so it warns instead
    of raising.
    """
    _write_atomically(
        path,
        lambda f: np.savez(
            f,
            x_train=train[0],
            y_train=train[1],
            x_test=test[0],
            y_test=test[1],
            class_names=np.array(class_names, dtype=str),
        ),
    )


def _write_atomically(path: Path, write) -> None:
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
        tmp = None
    except OSError as error:
        warnings.warn(f"Could not write the data cache {path} ({error}); the next load decodes again.", stacklevel=4)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
