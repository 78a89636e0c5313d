"""Batch helpers: balanced subsets, channel statistics, normalisation, augmentation."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from vt_edu.data import balanced_subset, channel_stats, create_augmentation, normalize, random_crop_flip


def padded_crops(image: np.ndarray, pad: int):
    """Every window of the zero-padded ``image``, and its mirror image, with its shift."""
    height, width = image.shape[:2]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    for top in range(2 * pad + 1):
        for left in range(2 * pad + 1):
            crop = padded[top : top + height, left : left + width]
            yield (top - pad, left - pad, False), crop
            yield (top - pad, left - pad, True), crop[:, ::-1]


def explain(augmented: np.ndarray, original: np.ndarray, pad: int):
    """The (dy, dx, flipped) that turn ``original`` into ``augmented``, or None."""
    return next((how for how, crop in padded_crops(original, pad) if np.array_equal(crop, augmented)), None)


@pytest.fixture
def images():
    # Values from 1 so that the zeros of the padding can be told apart from content.
    return np.random.default_rng(0).integers(1, 256, size=(64, 32, 32, 3), dtype=np.uint8)


def test_balanced_subset_draws_n_per_class_in_mixed_order():
    y = np.repeat(np.arange(4), [10, 7, 12, 5])
    x = np.arange(len(y))
    x_sub, y_sub = balanced_subset(x, y, 5, seed=1)
    assert np.bincount(y_sub).tolist() == [5, 5, 5, 5]
    np.testing.assert_array_equal(y[x_sub], y_sub)
    assert len(set(x_sub.tolist())) == 20
    assert len(set(y_sub[:5].tolist())) > 1
    np.testing.assert_array_equal(balanced_subset(x, y, 5, seed=1)[0], x_sub)
    assert not np.array_equal(balanced_subset(x, y, 5, seed=2)[0], x_sub)


def test_balanced_subset_errors():
    y = np.repeat(np.arange(3), [4, 2, 4])
    with pytest.raises(ValueError, match=r"\{1: 2\}"):
        balanced_subset(np.zeros(10), y, 3)
    with pytest.raises(ValueError, match="reshape"):
        balanced_subset(np.zeros(10), y.reshape(-1, 1), 1)


def test_channel_stats_match_numpy_in_unit_scale(images):
    mean, std = channel_stats(images, batch_size=10)
    scaled = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, scaled.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(std, scaled.std(axis=(0, 1, 2)), rtol=1e-5)
    assert mean.dtype == std.dtype == np.float32 and mean.shape == (3,)
    float_mean, float_std = channel_stats(scaled.astype(np.float32))
    np.testing.assert_allclose(float_mean, mean, rtol=1e-5)
    np.testing.assert_allclose(float_std, std, rtol=1e-4)


def test_normalize_gives_zero_mean_unit_std_float32(images):
    mean, std = channel_stats(images)
    z = normalize(images, mean, std)
    assert z.dtype == np.float32 and z.shape == images.shape
    np.testing.assert_allclose(z.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=(0, 1, 2)), 1, atol=1e-4)
    np.testing.assert_allclose(normalize(images / 255, mean, std), z, atol=1e-5)


def test_random_crop_flip_is_a_zero_padded_crop_maybe_mirrored(images):
    out = random_crop_flip(images, np.random.default_rng(0), pad=4)
    assert out.shape == images.shape and out.dtype == images.dtype
    hows = [explain(a, o, pad=4) for a, o in zip(out, images)]
    assert None not in hows
    assert {flipped for _, _, flipped in hows} == {True, False}
    assert len({(dy, dx) for dy, dx, _ in hows}) > 20  # each image draws its own shift
    np.testing.assert_array_equal(random_crop_flip(images, 7), random_crop_flip(images, 7))


def test_random_crop_flip_without_padding_only_flips(images):
    out = random_crop_flip(images, 0, pad=0)
    for a, o in zip(out, images):
        assert np.array_equal(a, o) or np.array_equal(a, o[:, ::-1])


def test_keras_augmentation_matches_the_numpy_one(images):
    augment = create_augmentation(pad=4, seed=3)
    out = keras.ops.convert_to_numpy(augment(images, training=True))
    assert out.shape == images.shape
    hows = [explain(a.astype(np.uint8), o, pad=4) for a, o in zip(out, images)]
    assert None not in hows, "output is not a whole-pixel shift with zero fill"
    assert {flipped for _, _, flipped in hows} == {True, False}
    # Unlike RandomCrop, which cuts a whole batch at one place.
    assert len({(dy, dx) for dy, dx, _ in hows}) > 10


def test_keras_augmentation_is_identity_at_inference(images):
    out = keras.ops.convert_to_numpy(create_augmentation()(images, training=False))
    np.testing.assert_array_equal(out, images.astype(np.float32))


def test_keras_augmentation_runs_on_jax():
    code = (
        "import numpy as np, keras\n"
        "from vt_edu.data import create_augmentation\n"
        "x = np.random.default_rng(0).integers(1, 256, (8, 32, 32, 3)).astype('float32')\n"
        "y = keras.ops.convert_to_numpy(create_augmentation(seed=1)(x, training=True))\n"
        "assert y.shape == x.shape and not np.array_equal(x, y)\n"
        "print(keras.backend.backend())\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("jax")
