"""Flip test-time augmentation: the mirror is left-right, probabilities are averaged."""

import keras
import numpy as np
import pytest

from vt_edu.reference import softmax
from vt_edu.training.evaluation import flip_tta_accuracy, predict_probabilities

SIDE = 4
ZERO, ONE = np.zeros(3), np.ones(3)  # statistics that leave [0, 1] pixels as they are


def _column_vs_row_model():
    """Logit 0 = sum of the left column's pixels, logit 1 = sum of the top row's (all channels)."""
    inputs = keras.Input((SIDE, SIDE, 3))
    dense = keras.layers.Dense(2, use_bias=False)
    outputs = dense(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((SIDE * SIDE * 3, 2), np.float32)
    for row in range(SIDE):
        for col in range(SIDE):
            index = slice((row * SIDE + col) * 3, (row * SIDE + col + 1) * 3)
            kernel[index, 0] = 1.0 if col == 0 else 0.0
            kernel[index, 1] = 1.0 if row == 0 else 0.0
    dense.set_weights([kernel])
    return model


def _image(*pixels):
    image = np.zeros((SIDE, SIDE, 3), np.uint8)
    for row, col in pixels:
        image[row, col] = 255
    return image


def test_flip_averages_the_image_with_its_left_right_mirror():
    model = _column_vs_row_model()
    image = _image((1, 0))  # left column, not the top row: logits (3, 0); its mirror: (0, 0)
    plain = predict_probabilities(model, image[None], ZERO, ONE)
    flipped = predict_probabilities(model, image[None], ZERO, ONE, flip=True)
    np.testing.assert_allclose(plain[0], softmax([3.0, 0.0]), atol=1e-6)
    # An upside-down "mirror" would keep the pixel in the left column: (3, 0) again.
    np.testing.assert_allclose(flipped[0], (softmax([3.0, 0.0]) + [0.5, 0.5]) / 2, atol=1e-6)
    np.testing.assert_allclose(flipped.sum(axis=1), 1.0, atol=1e-9)


def test_flip_tta_can_correct_a_view_dependent_mistake():
    model = _column_vs_row_model()
    easy = _image((1, 0))  # class 0 in both views
    # Right column incl. the top-right corner: plain logits (0, 3) say class 1; the mirror
    # puts all three pixels in the left column, (9, 3), and outvotes it.
    hard = _image((0, 3), (1, 3), (2, 3))
    scores = flip_tta_accuracy(model, np.stack([easy, hard]), np.array([0, 0]), ZERO, ONE)
    assert scores == {"top1": 0.5, "top1_flip_tta": 1.0}


def test_a_mirror_symmetric_model_gains_nothing():
    inputs = keras.Input((SIDE, SIDE, 3))
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(inputs))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, SIDE, SIDE, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, 20)
    np.testing.assert_allclose(
        predict_probabilities(model, images, ZERO, ONE, flip=True),
        predict_probabilities(model, images, ZERO, ONE), atol=1e-6,
    )
    scores = flip_tta_accuracy(model, images, labels, ZERO, ONE)
    assert scores["top1"] == scores["top1_flip_tta"]


def test_bad_inputs_are_refused():
    model = _column_vs_row_model()
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        flip_tta_accuracy(model, np.stack([_image(), _image()]), np.zeros(3, int), ZERO, ONE)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        predict_probabilities(model, _image(), ZERO, ONE)
