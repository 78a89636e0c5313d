"""Scenes: composition rules, consistency of the arrays, determinism, splits, cache and settings.

Objects are tiny constant-colour images with a 255 channel: the background texture never
reaches 255 (its channels stay within about 24..232), so a pixel's colour says which
image (or the background) it came from.
"""

from __future__ import annotations

import numpy as np
import pytest

import vt_edu.data.scenes as scenes_module
from vt_edu.data import (
    CIFAR10_CLASSES,
    CifarData,
    SceneData,
    SceneSet,
    SceneSettingsError,
    check_scene_settings,
    load_scenes,
    make_scenes,
    segmentation_class_names,
)
from vt_edu.config import cache_dir


def colour_of(label: int, tag: int = 0) -> np.ndarray:
    """A colour no background pixel has: red channel 255, green by label, blue by tag."""
    return np.array([255, 20 * label, 100 * tag], np.uint8)


def constant_images(labels, tag: int = 0, side: int = 8) -> np.ndarray:
    return np.stack([np.broadcast_to(colour_of(int(y), tag), (side, side, 3)) for y in labels]).copy()


LABELS = np.arange(10, dtype=np.int64).repeat(2)
IMAGES = constant_images(LABELS)
SMALL = dict(canvas_size=16, max_objects=3, min_object_size=4, max_object_size=10)


def small_scenes(n=200, seed=0, **settings):
    return make_scenes(IMAGES, LABELS, n, seed=seed, **{**SMALL, "num_classes": 10, **settings})


def test_shapes_and_dtypes_follow_the_contract():
    s = small_scenes(50)
    assert isinstance(s, SceneSet)
    assert s.scenes.shape == (50, 16, 16, 3) and s.scenes.dtype == np.uint8
    assert s.masks.shape == (50, 16, 16) and s.masks.dtype == np.uint8
    assert s.labels.shape == (50,) and s.labels.dtype == np.int64
    assert s.present.shape == (50, 10) and s.present.dtype == np.bool_
    assert s.boxes.shape == (50, 3, 4) and s.boxes.dtype == np.int32
    assert s.object_classes.shape == (50, 3) and s.object_classes.dtype == np.int32


def test_segmentation_class_names_put_background_first():
    assert segmentation_class_names(["cat", "dog"]) == ["background", "cat", "dog"]


def test_a_later_object_hides_an_earlier_one():
    # Objects as large as the canvas: each covers everything, so only the last one is visible.
    s = make_scenes(IMAGES, LABELS, 60, canvas_size=8, max_objects=2, min_object_size=8, max_object_size=8, seed=3)
    two = s.object_classes[:, 1] >= 0
    assert two.any() and (~two).any()
    for i in np.flatnonzero(two):
        last = s.object_classes[i, 1]
        assert (s.masks[i] == last + 1).all()
        assert (s.scenes[i] == colour_of(last)).all()
        assert s.labels[i] == last
        assert s.present[i].sum() == 1 and s.present[i, last]
        np.testing.assert_array_equal(s.boxes[i], [[0, 0, 8, 8], [0, 0, 8, 8]])  # the hidden one keeps its box


def test_the_last_object_is_fully_visible_and_pixels_come_from_their_object():
    s = small_scenes()
    for i in range(len(s.scenes)):
        used = np.flatnonzero(s.object_classes[i] >= 0)
        top, left, bottom, right = s.boxes[i, used[-1]]
        assert (s.masks[i, top:bottom, left:right] == s.object_classes[i, used[-1]] + 1).all()
        objects = s.masks[i] > 0
        np.testing.assert_array_equal(s.scenes[i][objects], np.stack([colour_of(c - 1) for c in s.masks[i][objects]]))
        assert (s.scenes[i][~objects] < 255).all()  # background never takes an object's colour


def test_present_boxes_and_classes_agree_with_the_masks():
    s = small_scenes()
    counts = (s.object_classes >= 0).sum(axis=1)
    assert set(counts) == {1, 2, 3}
    for i in range(len(s.scenes)):
        used = s.object_classes[i] >= 0
        assert used[: counts[i]].all() and not used[counts[i] :].any()  # slots fill in order
        assert (s.boxes[i, ~used] == -1).all()
        covered = np.zeros((16, 16), bool)
        for (top, left, bottom, right), cls in zip(s.boxes[i, used], s.object_classes[i, used]):
            assert 0 <= top < bottom <= 16 and 0 <= left < right <= 16
            assert bottom - top == right - left and 4 <= bottom - top <= 10
            covered[top:bottom, left:right] = True
        assert ((s.masks[i] > 0) == covered).all()
        visible = set(np.unique(s.masks[i])) - {0}
        np.testing.assert_array_equal(np.flatnonzero(s.present[i]), sorted(c - 1 for c in visible))
        assert visible <= {c + 1 for c in s.object_classes[i, used]}


def test_the_label_is_the_class_with_most_pixels_and_ties_go_to_the_lower_class():
    s = make_scenes(IMAGES, LABELS, 400, canvas_size=6, max_objects=3, min_object_size=2, max_object_size=3, seed=1)
    ties = 0
    for mask, label in zip(s.masks, s.labels):
        pixels = np.bincount(mask.ravel(), minlength=11)[1:]
        best = np.flatnonzero(pixels == pixels.max())
        assert label == best[0]
        ties += len(best) > 1
    assert ties > 0, "no tie among the scenes: the tie rule went untested"


def test_the_background_is_smooth():
    s = small_scenes(seed=5, canvas_size=64, min_object_size=20, max_object_size=40)
    background = s.masks == 0
    rows = s.scenes.astype(int)
    step = np.abs(np.diff(rows, axis=2)).max(axis=-1)
    both = background[:, :, 1:] & background[:, :, :-1]
    assert step[both].max() <= 8  # no edges: neighbouring background pixels differ by a few levels at most


def test_same_seed_same_scenes_and_different_seeds_differ():
    a, b, c = small_scenes(seed=7), small_scenes(seed=7), small_scenes(seed=8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.scenes, c.scenes) and not np.array_equal(a.boxes, c.boxes)


def test_num_classes_defaults_to_the_largest_label_plus_one():
    s = make_scenes(IMAGES[:6], LABELS[:6], 5, **SMALL)
    assert s.present.shape == (5, 3)


# -- settings and inputs ----------------------------------------------------------------------

BAD_SETTINGS = [
    (dict(canvas_size=0), "canvas_size"),
    (dict(canvas_size=16.0), "canvas_size"),
    (dict(canvas_size=True), "canvas_size"),
    (dict(max_objects=0), "max_objects"),
    (dict(min_object_size=0), "min_object_size"),
    (dict(min_object_size=11, max_object_size=10), "min_object_size"),
    (dict(max_object_size=17), "max_object_size"),
]


@pytest.mark.parametrize("settings, name", BAD_SETTINGS)
def test_check_scene_settings_names_the_setting_and_value(settings, name):
    with pytest.raises(SceneSettingsError, match=name) as raised:
        check_scene_settings(**{**SMALL, **settings})
    assert isinstance(raised.value, ValueError)
    assert repr(settings[name] if name in settings else settings["max_object_size"]) in str(raised.value)


def test_check_scene_settings_stride():
    check_scene_settings(64, 3, 20, 40, stride=32)
    with pytest.raises(SceneSettingsError, match=r"canvas_size \(60\).*stride \(32\)"):
        check_scene_settings(60, 3, 20, 40, stride=32)
    with pytest.raises(SceneSettingsError, match="stride"):
        check_scene_settings(64, 3, 20, 40, stride=0)


@pytest.mark.parametrize(
    "settings, name", [*BAD_SETTINGS, (dict(num_scenes=0), "num_scenes"), (dict(seed=-1), "seed")]
)
def test_make_scenes_checks_settings_before_looking_at_the_images(settings, name):
    settings = {**SMALL, "num_scenes": 5, **settings}
    with pytest.raises(SceneSettingsError, match=name):
        make_scenes(None, None, **settings)


@pytest.mark.parametrize(
    "images, labels, match",
    [
        (IMAGES.astype(np.float32), LABELS, "uint8"),
        (IMAGES[..., 0], LABELS, "shape"),
        (IMAGES, LABELS[:-1], "differ in length"),
        (IMAGES, LABELS.astype(float), "integer"),
        (IMAGES, LABELS[:, None], "1-D"),
        (IMAGES, LABELS - 1, ">= 0"),
        (IMAGES[:0], LABELS[:0], "at least one"),
    ],
)
def test_make_scenes_refuses_bad_images_and_labels(images, labels, match):
    with pytest.raises(ValueError, match=match):
        make_scenes(images, labels, 5, **SMALL)


def test_make_scenes_refuses_labels_beyond_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        make_scenes(IMAGES, LABELS, 5, num_classes=5, **SMALL)


# -- load_scenes: splits and cache -----------------------------------------------------------


def fake_cifar(train_tag=1, test_tag=2, brighten=0):
    y_train, y_test = np.arange(40) % 10, np.arange(20) % 10
    x_train = constant_images(y_train, train_tag)
    x_train[0, 0, 0, 1] += brighten
    return CifarData((x_train, y_train), (constant_images(y_test, test_tag), y_test), list(CIFAR10_CLASSES))


@pytest.fixture
def cifar(monkeypatch):
    """load_cifar replaced by tiny tagged data; ``cifar.data`` can be swapped, ``cifar.calls`` counts loads."""

    class Fake:
        data = fake_cifar()
        calls = 0

    def load(name, source=None, progress=True):
        Fake.calls += 1
        return Fake.data

    monkeypatch.setattr(scenes_module, "load_cifar", load)
    return Fake


@pytest.fixture
def compositions(monkeypatch):
    """Counts calls of make_scenes inside load_scenes (a cache hit makes none)."""
    calls = []
    real = scenes_module.make_scenes

    def counting(*args, **kwargs):
        calls.append(kwargs["seed"])
        return real(*args, **kwargs)

    monkeypatch.setattr(scenes_module, "make_scenes", counting)
    return calls


LOAD = dict(num_train=30, num_test=12, progress=False, **SMALL)


def assert_same(a: SceneData, b: SceneData):
    assert a.class_names == b.class_names
    for split in ("train", "test"):
        for x, y in zip(getattr(a, split), getattr(b, split)):
            np.testing.assert_array_equal(x, y)


def test_train_scenes_use_only_training_images_and_test_scenes_only_test_images(cifar):
    data = load_scenes("cifar10", **LOAD)
    assert data.class_names == list(CIFAR10_CLASSES)
    assert len(data.train.scenes) == 30 and len(data.test.scenes) == 12
    for split, tag in (("train", 1), ("test", 2)):
        s = getattr(data, split)
        objects = s.scenes[s.masks > 0]
        assert len(objects) and (objects[:, 2] == 100 * tag).all() and (objects[:, 0] == 255).all()
        assert (s.scenes[s.masks == 0] < 255).all()
    assert not np.array_equal(data.train.boxes[:12], data.test.boxes)  # the splits use different seeds


def test_a_cache_hit_returns_equal_arrays_without_composing(cifar, compositions):
    first = load_scenes("cifar10", **LOAD)
    assert len(compositions) == 2
    second = load_scenes("cifar10", **LOAD)
    assert len(compositions) == 2
    assert_same(first, second)


def test_other_settings_or_other_source_data_compose_again(cifar, compositions):
    first = load_scenes("cifar10", **LOAD)
    load_scenes("cifar10", **{**LOAD, "seed": 1})
    assert len(compositions) == 4
    cifar.data = fake_cifar(brighten=1)  # one pixel of one training image differs
    load_scenes("cifar10", **LOAD)
    assert len(compositions) == 6
    assert len(list(cache_dir().glob("scenes-*.npz"))) == 3
    cifar.data = fake_cifar()
    assert_same(first, load_scenes("cifar10", **LOAD))
    assert len(compositions) == 6


def entry():
    (path,) = cache_dir().glob("scenes-*.npz")
    return path


def test_a_truncated_entry_is_composed_again(cifar, compositions):
    first = load_scenes("cifar10", **LOAD)
    path = entry()
    path.write_bytes(path.read_bytes()[:1000])
    assert_same(first, load_scenes("cifar10", **LOAD))
    assert len(compositions) == 4
    load_scenes("cifar10", **LOAD)
    assert len(compositions) == 4  # the rewritten entry serves again


def test_an_edited_but_valid_entry_is_composed_again(cifar, compositions):
    first = load_scenes("cifar10", **LOAD)
    path = entry()
    with np.load(path) as stored:
        arrays = dict(stored)
    arrays["train_masks"] = arrays["train_masks"].copy()
    arrays["train_masks"][0, 0, 0] ^= 1
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    assert_same(first, load_scenes("cifar10", **LOAD))
    assert len(compositions) == 4


@pytest.mark.parametrize(
    "settings, name",
    [*BAD_SETTINGS, (dict(num_train=0), "num_train"), (dict(num_test=-1), "num_test"), (dict(seed=1.5), "seed")],
)
def test_load_scenes_checks_settings_before_loading_anything(cifar, settings, name):
    with pytest.raises(SceneSettingsError, match=name):
        load_scenes("cifar10", **{**LOAD, **settings})
    assert cifar.calls == 0


def test_load_scenes_refuses_an_unknown_data_set(cifar):
    with pytest.raises(ValueError, match="cifar10"):
        load_scenes("mnist", **LOAD)
    assert cifar.calls == 0
