"""The data of a classification run: CIFAR arrays (loaded or given), class-balanced subsets, and
their description (what ``config.json`` records under ``"data"``)."""

from __future__ import annotations

import numpy as np

from vt_edu.training.errors import TrainingError
from vt_edu.training.scene_data import fingerprint

__all__ = ["prepare_data"]


def _subset(x, y, limit, seed, what):
    if limit is None or limit >= len(x):
        return x, y
    from vt_edu.data import balanced_subset

    classes = len(np.unique(y))
    per_class = limit // classes
    if per_class < 1:
        raise TrainingError(f"{what}={limit} is fewer than the {classes} classes; use at least {classes}.")
    try:
        return balanced_subset(x, y, per_class, seed=seed)
    except ValueError:  # some class is short: fall back to the first images
        return x[:limit], y[:limit]


def prepare_data(dataset="cifar10", data=None, source=None, max_train_images=None, max_test_images=None,
                 seed=0, progress=True):
    """Load (or take) the arrays, apply the image limits, and describe them.

    Args:
        data: ``((x_train, y_train), (x_test, y_test), class_names)`` to use instead
            of :func:`vt_edu.data.load_cifar` (a hook for tests and notebooks).
        max_train_images, max_test_images: class-balanced random subsets
            (``n // classes`` images per class, drawn with ``seed``).

    Returns:
        ``((x_train, y_train), (x_test, y_test), class_names, description)``.
    """
    if data is None:
        from vt_edu.data import load_cifar

        data = load_cifar(dataset, source=source, progress=progress)
    (x_train, y_train), (x_test, y_test), class_names = data
    y_train, y_test = np.asarray(y_train).reshape(-1), np.asarray(y_test).reshape(-1)
    x_train, y_train = _subset(x_train, y_train, max_train_images, seed, "max_train_images")
    x_test, y_test = _subset(x_test, y_test, max_test_images, seed, "max_test_images")
    description = {
        "train_images": int(len(x_train)),
        "test_images": int(len(x_test)),
        "image_shape": [int(d) for d in x_train.shape[1:]],
        "num_classes": int(len(class_names)),
        "fingerprint": fingerprint(x_train, y_train, x_test, y_test),
    }
    return (x_train, y_train), (x_test, y_test), list(class_names), description
