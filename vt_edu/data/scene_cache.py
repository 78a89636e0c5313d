"""Cached scene arrays: one checked ``.npz`` entry per key, in the data cache folder.

Composing scenes takes seconds; reading them back a fraction of one. An entry holds
named arrays, the key it was written under (a digest of every setting and of the
source images, made by :func:`vt_edu.data.scenes.load_scenes`) and a digest of its own
content. It is served only if the key matches, the digest matches (so an entry cut
short or edited after writing, even into a valid ``.npz``, is noticed) and every array
has the dtype and shape asked for; otherwise it counts as missing and the caller
composes the scenes again and rewrites it. Writes are atomic (see
:func:`vt_edu.data.cache.write_atomically`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from vt_edu.data import cache


def entry_path(name: str, key: str, version: int) -> Path:
    """Where the scenes of data set ``name`` under ``key`` (hex) are cached.

    Raises:
        CacheError: if the cache folder cannot be created.
    """
    return cache.folder() / f"scenes-{name}-{key[:32]}-v{version}.npz"


def save(path: Path, key: str, arrays: dict) -> None:
    """Write ``arrays`` (name -> ndarray) with ``key`` and their digest; warns if it cannot."""
    arrays = {**arrays, "key": np.array(key)}
    digest = np.array(cache.array_digest(arrays))
    cache.write_atomically(path, lambda f: np.savez(f, digest=digest, **arrays))


def load(path: Path, key: str, expected: dict) -> dict | None:
    """The arrays of the entry at ``path``, or None if it is missing or fails a check.

    Args:
        path: the entry.
        key: the key it must have been written under.
        expected: name -> ``(dtype, shape)`` of every array to return.
    """
    try:
        with np.load(path, allow_pickle=False) as entry:
            arrays = {name: entry[name] for name in (*expected, "key")}
            digest = entry["digest"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if digest.shape != () or str(digest) != cache.array_digest(arrays) or str(arrays.pop("key")) != key:
        return None
    for name, (dtype, shape) in expected.items():
        if arrays[name].dtype != dtype or arrays[name].shape != tuple(shape):
            return None
    return arrays
