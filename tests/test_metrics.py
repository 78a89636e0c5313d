"""Segmentation metrics: hand-counted cases, the NaN rule, and agreement with Keras' MeanIoU."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vt_edu.training.metrics import mean_iou, per_class_iou, pixel_accuracy, segmentation_confusion

# A 2x3 pair counted by hand:
#   truth       prediction
#   0 0 1       0 1 1
#   1 2 2       1 2 0
# class 0: TP 1, FP 1 (the bottom-right 2 predicted 0), FN 1 (the top-middle 0 predicted 1) -> 1/3
# class 1: TP 2, FP 1, FN 0 -> 2/3
# class 2: TP 1, FP 0, FN 1 -> 1/2
Y_TRUE = np.array([[0, 0, 1], [1, 2, 2]])
Y_PRED = np.array([[0, 1, 1], [1, 2, 0]])


def test_confusion_counts_pixels_with_truth_in_rows():
    confusion = segmentation_confusion(Y_TRUE, Y_PRED, 3)
    np.testing.assert_array_equal(confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert confusion.dtype == np.int64
    assert confusion.sum() == Y_TRUE.size


def test_hand_counted_ious_mean_and_accuracy():
    np.testing.assert_allclose(per_class_iou(segmentation_confusion(Y_TRUE, Y_PRED, 3)), [1 / 3, 2 / 3, 1 / 2])
    assert mean_iou(Y_TRUE, Y_PRED, 3) == pytest.approx(0.5)
    assert pixel_accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)


def test_a_class_absent_from_truth_and_prediction_is_nan_and_left_out_of_the_mean():
    iou = per_class_iou(segmentation_confusion(Y_TRUE, Y_PRED, 5))
    assert np.isnan(iou[3]) and np.isnan(iou[4])
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 1 / 2])
    assert mean_iou(Y_TRUE, Y_PRED, 5) == pytest.approx(0.5)


def test_a_class_only_predicted_counts_as_iou_zero():
    y_true, y_pred = np.array([0, 0]), np.array([0, 1])
    np.testing.assert_allclose(per_class_iou(segmentation_confusion(y_true, y_pred, 2)), [0.5, 0.0])
    assert mean_iou(y_true, y_pred, 2) == pytest.approx(0.25)


def test_a_class_only_true_counts_as_iou_zero():
    y_true, y_pred = np.array([1, 1, 0]), np.array([0, 0, 0])
    np.testing.assert_allclose(per_class_iou(segmentation_confusion(y_true, y_pred, 2)), [1 / 3, 0.0])


def test_perfect_prediction():
    y = np.random.default_rng(0).integers(0, 4, (2, 5, 5))
    assert mean_iou(y, y, 4) == 1.0 and pixel_accuracy(y, y) == 1.0


def test_matches_a_per_class_set_definition_on_random_masks():
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 6, (3, 7, 9)), rng.integers(0, 5, (3, 7, 9))
    iou = per_class_iou(segmentation_confusion(y_true, y_pred, 7))
    for c in range(7):
        inter = np.sum((y_true == c) & (y_pred == c))
        union = np.sum((y_true == c) | (y_pred == c))
        if union == 0:
            assert math.isnan(iou[c])
        else:
            assert iou[c] == pytest.approx(inter / union)
    assert np.isnan(iou[6]) and iou[5] == 0.0
    assert mean_iou(y_true, y_pred, 7) == pytest.approx(np.mean(iou[:6]))


def test_agrees_with_keras_mean_iou():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(2)
    y_true, y_pred = rng.integers(0, 4, (2, 6, 6)), rng.integers(0, 3, (2, 6, 6))
    metric = keras.metrics.MeanIoU(num_classes=5, sparse_y_pred=True)
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(mean_iou(y_true, y_pred, 5), abs=1e-6)


@pytest.mark.parametrize(
    "y_true, y_pred, num_classes, match",
    [
        (np.zeros((2, 3), int), np.zeros((3, 2), int), 2, "same shape"),
        (np.zeros(3), np.zeros(3, int), 2, "integer"),
        (np.zeros(3, int), np.full(3, 2), 2, "outside"),
        (np.full(3, -1), np.zeros(3, int), 2, "outside"),
        (np.zeros(3, int), np.zeros(3, int), 0, "num_classes"),
        (np.zeros(3, int), np.zeros(3, int), 2.0, "num_classes"),
    ],
)
def test_bad_inputs_are_refused(y_true, y_pred, num_classes, match):
    with pytest.raises(ValueError, match=match):
        segmentation_confusion(y_true, y_pred, num_classes)
    with pytest.raises(ValueError, match=match):
        mean_iou(y_true, y_pred, num_classes)


def test_pixel_accuracy_refuses_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        pixel_accuracy(np.zeros(3, int), np.zeros(4, int))
    with pytest.raises(ValueError, match="integer"):
        pixel_accuracy(np.zeros(3, np.float32), np.zeros(3, int))
    with pytest.raises(ValueError, match="empty"):
        pixel_accuracy(np.zeros(0, int), np.zeros(0, int))
    with pytest.raises(ValueError, match="empty"):
        mean_iou(np.zeros(0, int), np.zeros(0, int), 3)


@pytest.mark.parametrize("confusion", [np.zeros((2, 3)), np.zeros(4), np.zeros((0, 0)), -np.eye(2)])
def test_per_class_iou_refuses_a_bad_confusion(confusion):
    with pytest.raises(ValueError, match="confusion"):
        per_class_iou(confusion)
