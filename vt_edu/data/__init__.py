"""The data layer: CIFAR-10/100 from a download or local files, scenes composed from them, and batch helpers.

Everything a chapter needs is importable from here::

    from vt_edu.data import load_cifar, balanced_subset, channel_stats, normalize

See :func:`load_cifar` for where data come from and what it returns, and
:mod:`vt_edu.data.errors` for the errors (all derive from :class:`DataError`).
"""

from vt_edu.data.augmentation import create_augmentation
from vt_edu.data.errors import (
    ArchiveError,
    CacheError,
    ClassMismatchError,
    CorruptFileError,
    DataError,
    DownloadError,
    EmptyClassError,
    ImageSizeError,
    LayoutError,
    SourceNotFoundError,
    UnsafePickleError,
)
from vt_edu.data.loader import CifarData, load_cifar
from vt_edu.data.names import CIFAR10_CLASSES, CIFAR100_COARSE_CLASSES, CIFAR100_FINE_CLASSES
from vt_edu.data.scenes import (
    SceneData,
    SceneSet,
    SceneSettingsError,
    check_scene_settings,
    load_scenes,
    make_scenes,
    segmentation_class_names,
)
from vt_edu.data.transforms import balanced_subset, channel_stats, normalize, random_crop_flip

__all__ = [
    "ArchiveError",
    "CacheError",
    "CIFAR100_COARSE_CLASSES",
    "CIFAR100_FINE_CLASSES",
    "CIFAR10_CLASSES",
    "CifarData",
    "ClassMismatchError",
    "SceneData",
    "SceneSet",
    "SceneSettingsError",
    "CorruptFileError",
    "DataError",
    "DownloadError",
    "EmptyClassError",
    "ImageSizeError",
    "LayoutError",
    "SourceNotFoundError",
    "UnsafePickleError",
    "balanced_subset",
    "channel_stats",
    "check_scene_settings",
    "create_augmentation",
    "load_cifar",
    "load_scenes",
    "make_scenes",
    "normalize",
    "random_crop_flip",
    "segmentation_class_names",
]
