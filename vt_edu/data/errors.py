"""Errors raised by :mod:`vt_edu.data`.

Every error derives from :class:`DataError`, so a caller can catch one class for
"the data could not be loaded" (the data chapter does so to skip CIFAR-100 when it
is unavailable). Each also derives from the built-in exception a caller would expect
(``FileNotFoundError``, ``ValueError``, ``OSError``, ...), so generic handlers keep
working. Messages name the offending path, say what is wrong and what to do.
"""

from __future__ import annotations

import pickle


class DataError(Exception):
    """Base class of every error raised while locating, reading or decoding data."""


class SourceNotFoundError(DataError, FileNotFoundError):
    """A data source path does not exist."""


class ArchiveError(DataError, ValueError):
    """A file given as a source is not a readable (gzip-compressed) tar archive."""


class LayoutError(DataError, ValueError):
    """A source does not hold a recognised data set layout, or not the one asked for."""


class ClassMismatchError(LayoutError):
    """The class folders under ``train/`` and ``test/`` differ."""


class EmptyClassError(LayoutError):
    """A class folder holds no images."""


class CorruptFileError(DataError, ValueError):
    """An image cannot be decoded, or a CIFAR batch file does not hold what it should."""


class ImageSizeError(DataError, ValueError):
    """Images differ in size, or are not the 32x32 pixels of CIFAR."""


class UnsafePickleError(DataError, pickle.UnpicklingError):
    """A pickle refers to a global outside the allow-list; it was refused, not executed."""


class CacheError(DataError, OSError):
    """The data cache folder (``VT_EDU_CACHE``) cannot be created."""


class DownloadError(DataError, OSError):
    """No local source holds the data set and Keras could not download it."""
