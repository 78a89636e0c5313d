"""The data of a segmentation run: scene options, the scenes themselves, and their description.

A segmentation run trains on the scenes of :func:`vt_edu.data.scenes.load_scenes` (CIFAR
objects pasted on a canvas, one class per pixel). Its ``scenes`` option is a dict of
``load_scenes`` settings; what is not given takes :data:`SCENE_DEFAULTS`. The scenes are
drawn with ``seed`` (default :data:`DEFAULT_SCENE_SEED`), NOT with the training seed:
every model of a comparison, and every training seed, sees the same scenes unless the
scene seed is asked to change. ``config.json`` records the settings under ``"scenes"``.

``max_train_images``/``max_test_images`` do not apply to scenes (a run is refused with
them): the number of scenes is the ``num_train``/``num_test`` setting.

This module imports NumPy only; ``vt_edu.data.scenes`` is imported when scenes are loaded.
"""

from __future__ import annotations

import hashlib

import numpy as np

from vt_edu.names import SCENE_BACKGROUND
from vt_edu.training.errors import TrainingError

__all__ = ["DEFAULT_SCENE_SEED", "SCENE_DEFAULTS", "check_scene_options", "fingerprint", "prepare_scenes"]

#: The settings of :func:`vt_edu.data.scenes.load_scenes` that a run's ``scenes`` option may give.
SCENE_DEFAULTS = {
    "num_train": 5000,
    "num_test": 1000,
    "canvas_size": 64,
    "max_objects": 3,
    "min_object_size": 20,
    "max_object_size": 40,
}
#: Seed of the scenes (placement and choice of objects), independent of the training seed.
DEFAULT_SCENE_SEED = 0


def fingerprint(*arrays) -> str:
    """A short hash of the arrays' shapes, dtypes and bytes (what identifies a run's data)."""
    digest = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(str((a.shape, a.dtype.str)).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:16]


def check_scene_options(scenes, loading: bool) -> dict | None:
    """Validate a run's ``scenes`` option (before any data are loaded).

    Args:
        scenes: ``None`` or a dict with keys of :data:`SCENE_DEFAULTS` and ``seed``.
        loading: whether the run makes its scenes (no ``data`` given). Then the
            settings are completed with the defaults and checked by
            :func:`vt_edu.data.scenes.check_scene_settings`; with ``data`` given,
            the settings given only label the data (and are checked against them
            in :func:`prepare_scenes`).

    Returns:
        The settings to record (``None`` when ``data`` is given without settings).

    Raises:
        TrainingError: an unknown key, a value that is not a positive integer (a
            non-negative one for ``seed``), or settings that make no scenes.
    """
    if scenes is None and not loading:
        return None
    if scenes is not None and not isinstance(scenes, dict):
        raise TrainingError(f"scenes must be a dict of scene settings, got {scenes!r}.")
    given = dict(scenes or {})
    known = (*SCENE_DEFAULTS, "seed")
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise TrainingError(
            f"unknown scene setting(s) {', '.join(map(repr, unknown))}; the settings are: {', '.join(known)}."
        )
    for key, value in given.items():
        smallest = 0 if key == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < smallest:
            kind = "a non-negative integer" if key == "seed" else "a positive integer"
            raise TrainingError(f"scene setting {key}={value!r} is invalid; expected {kind}.")
        given[key] = int(value)
    if not loading:
        return given
    settings = {**SCENE_DEFAULTS, "seed": DEFAULT_SCENE_SEED, **given}
    from vt_edu.data.scenes import check_scene_settings

    try:
        check_scene_settings(settings["canvas_size"], settings["max_objects"], settings["min_object_size"],
                             settings["max_object_size"])
    except ValueError as error:
        raise TrainingError(str(error)) from None
    return settings


def _split(part, which):
    """``(scenes, masks)`` of a SceneSet (or of a ``(scenes, masks, ...)`` tuple)."""
    try:
        scenes, masks = np.asarray(part[0]), np.asarray(part[1])
    except (TypeError, IndexError):
        raise TrainingError(f"the {which} part of the scene data must be a SceneSet (scenes, masks, ...).") from None
    if scenes.ndim != 4 or scenes.shape[1] != scenes.shape[2]:
        raise TrainingError(f"{which} scenes must be square images (N, S, S, C), got shape {scenes.shape}.")
    if masks.shape != scenes.shape[:3]:
        raise TrainingError(
            f"{which} masks must be (N, S, S) = {scenes.shape[:3]} to match the scenes, got {masks.shape} "
            "(a segmentation run needs one class per pixel, not one label per image)."
        )
    if not np.issubdtype(masks.dtype, np.integer):
        raise TrainingError(f"{which} masks must hold integer classes, got dtype {masks.dtype}.")
    return scenes, masks


def prepare_scenes(dataset="cifar10", data=None, settings=None, source=None, progress=True):
    """Load (or take) the scenes of a segmentation run and describe them.

    Args:
        dataset: the CIFAR data set whose images are pasted (``load_scenes``' ``name``).
        data: a :class:`vt_edu.data.scenes.SceneData` (or ``(train, test, class_names)``
            whose parts begin with scenes and masks) to use instead of loading.
        settings: what :func:`check_scene_options` returned.
        source: the CIFAR data source for ``load_scenes``.

    Returns:
        ``((x_train, masks_train), (x_test, masks_test), class_names, description)``;
        ``class_names`` starts with ``"background"`` (mask value 0; CIFAR class ``c``
        is mask value ``c + 1``), so its length is the number of model outputs.

    Raises:
        TrainingError: data that are not scenes with masks, mask values outside the
            classes, or settings that contradict the given data.
    """
    if data is None:
        from vt_edu.data.scenes import load_scenes

        options = {k: v for k, v in settings.items() if k != "seed"}
        data = load_scenes(dataset, **options, seed=settings["seed"], source=source, progress=progress)
    try:
        train_part, test_part, object_names = data
    except (TypeError, ValueError):
        raise TrainingError("segmentation data must be a SceneData (train, test, class_names).") from None
    x_train, m_train = _split(train_part, "training")
    x_test, m_test = _split(test_part, "test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise TrainingError(f"training scenes are {x_train.shape[1:]} but test scenes {x_test.shape[1:]}.")
    class_names = [SCENE_BACKGROUND, *object_names]
    for which, masks in (("training", m_train), ("test", m_test)):
        if masks.size and (masks.min() < 0 or masks.max() >= len(class_names)):
            raise TrainingError(
                f"{which} masks hold values {masks.min()}..{masks.max()}, outside 0..{len(class_names) - 1} "
                f"(background and the {len(object_names)} object classes)."
            )
    found = {"num_train": len(x_train), "num_test": len(x_test), "canvas_size": x_train.shape[1]}
    contradicted = [f"{k}={settings[k]} (the data: {v})" for k, v in found.items()
                    if settings and k in settings and settings[k] != v]
    if contradicted:
        raise TrainingError(f"the scene settings contradict the scene data: {', '.join(contradicted)}.")
    description = {
        "train_images": int(len(x_train)),
        "test_images": int(len(x_test)),
        "image_shape": [int(d) for d in x_train.shape[1:]],
        "num_classes": int(len(class_names)),
        "fingerprint": fingerprint(x_train, m_train, x_test, m_test),
    }
    return (x_train, m_train), (x_test, m_test), class_names, description
