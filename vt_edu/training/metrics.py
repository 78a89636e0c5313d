"""Segmentation metrics in NumPy, on class-index arrays of any (equal) shape.

With ``K`` classes (class 0 is the background of a scene mask), the confusion matrix
``C`` counts pixels: ``C[t, p]`` is the number of pixels of true class ``t`` predicted
as class ``p`` (rows = truth, columns = prediction). For class ``c``:

* ``TP_c = C[c, c]``, the pixels of ``c`` predicted as ``c``;
* ``FP_c = sum_t C[t, c] - TP_c``, pixels predicted as ``c`` that are not;
* ``FN_c = sum_p C[c, p] - TP_c``, pixels of ``c`` predicted as something else;
* ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``: the overlap of the true and predicted
  regions of ``c`` over their union.

A class absent from both truth and prediction has an empty union: its IoU is
undefined (NaN) and left out of the mean. A class only predicted (or only true) has
IoU 0 and counts. ``mean IoU`` is the mean over the classes with a defined IoU, the
same quantity as ``keras.metrics.MeanIoU`` accumulates over batches. Pixel accuracy
is the fraction of pixels whose class is predicted right (``trace(C) / sum(C)``);
dominated by the background when objects are small, which is why mean IoU is the
headline number of segmentation.
"""

from __future__ import annotations

import numbers

import numpy as np


def _class_array(name: str, values) -> np.ndarray:
    array = np.asarray(values)
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise ValueError(
            f"{name} must hold class indices (an integer array), got dtype {array.dtype}. "
            f"Take argmax over the class axis of logits first."
        )
    return array


def _check_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _class_array("y_true", y_true), _class_array("y_pred", y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}.")
    return y_true, y_pred


def segmentation_confusion(y_true, y_pred, num_classes) -> np.ndarray:
    """The confusion matrix of per-pixel classes.

    Args:
        y_true: integer array of true classes in ``[0, num_classes)``, any shape.
        y_pred: integer array of predicted classes, the same shape.
        num_classes: ``K``, a positive int.

    Returns:
        int64 (K, K): ``[t, p]`` = number of pixels of true class ``t`` predicted as ``p``.

    Raises:
        ValueError: shapes differ, a dtype is not integer, ``num_classes`` is not a
            positive int, or a value lies outside ``[0, num_classes)``.
    """
    if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}.")
    y_true, y_pred = _check_pair(y_true, y_pred)
    k = int(num_classes)
    for name, array in (("y_true", y_true), ("y_pred", y_pred)):
        if array.size and (array.min() < 0 or array.max() >= k):
            raise ValueError(
                f"{name} holds classes outside [0, {k}): min {array.min()}, max {array.max()}. "
                f"Check num_classes (it includes the background)."
            )
    pairs = y_true.astype(np.int64).ravel() * k + y_pred.astype(np.int64).ravel()
    return np.bincount(pairs, minlength=k * k).reshape(k, k).astype(np.int64)


def per_class_iou(confusion) -> np.ndarray:
    """IoU of each class from a confusion matrix (rows = truth).

    Args:
        confusion: (K, K) non-negative counts, e.g. from :func:`segmentation_confusion`.

    Returns:
        float64 (K,): ``TP / (TP + FP + FN)``; NaN for a class absent from both truth
        and prediction.

    Raises:
        ValueError: ``confusion`` is not a square 2-D array of non-negative numbers.
    """
    confusion = np.asarray(confusion)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1] or confusion.shape[0] == 0:
        raise ValueError(f"confusion must be a square (K, K) matrix with K >= 1, got shape {confusion.shape}.")
    if not np.issubdtype(confusion.dtype, np.number) or (confusion < 0).any():
        raise ValueError("confusion must hold non-negative counts.")
    confusion = confusion.astype(np.float64)
    true_positives = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positives
    iou = np.full(len(union), np.nan)
    np.divide(true_positives, union, out=iou, where=union > 0)
    return iou


def mean_iou(y_true, y_pred, num_classes) -> float:
    """Mean IoU over the classes present in truth or prediction (NaN classes left out).

    Args:
        y_true, y_pred, num_classes: as for :func:`segmentation_confusion`.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: as :func:`segmentation_confusion`, or for empty arrays (no pixel,
            no IoU).
    """
    confusion = segmentation_confusion(y_true, y_pred, num_classes)
    if confusion.sum() == 0:
        raise ValueError("mean_iou needs at least one pixel; y_true and y_pred are empty.")
    return float(np.nanmean(per_class_iou(confusion)))


def pixel_accuracy(y_true, y_pred) -> float:
    """The fraction of pixels whose predicted class equals the true one.

    Args:
        y_true, y_pred: integer arrays of classes, the same shape.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: shapes differ, a dtype is not integer, or the arrays are empty.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    if y_true.size == 0:
        raise ValueError("pixel_accuracy needs at least one pixel; y_true and y_pred are empty.")
    return float(np.mean(y_true == y_pred))
