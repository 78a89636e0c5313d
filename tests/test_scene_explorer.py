"""vt_edu.scene_explorer.SceneTokenExplorer driven headless on synthetic scenes and attention maps."""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import pytest

from vt_edu.scene_explorer import SceneTokenExplorer, attention_levels, class_colors

N, S = 3, 16
NAMES = ["plane", "car", "bird"]


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class Scenes(NamedTuple):  # what a vt_edu.data.SceneSet holds, for the explorer
    scenes: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    object_classes: np.ndarray


@pytest.fixture
def scene_set():
    rng = np.random.default_rng(0)
    scenes = rng.integers(0, 256, size=(N, S, S, 3), dtype=np.uint8)
    masks = np.zeros((N, S, S), np.uint8)
    boxes = np.full((N, 2, 4), -1, np.int32)
    object_classes = np.full((N, 2), -1, np.int32)
    masks[0, 4:8, 8:12] = 3  # a bird exactly on position (1, 2) of the 4x4 level
    boxes[0, 0], object_classes[0, 0] = (4, 8, 8, 12), 2
    masks[1, 0:8, 0:8] = 1  # a plane, partly covered by a car
    masks[1, 4:12, 4:12] = 2
    boxes[1] = (0, 0, 8, 8), (4, 4, 12, 12)
    object_classes[1] = 0, 1
    return Scenes(scenes, masks, boxes, object_classes)


@pytest.fixture
def levels():
    rng = np.random.default_rng(1)
    fine = _softmax(rng.normal(size=(N, 16, 4)), axis=1)
    fine[0, :, 1] = 0.0
    fine[0, 1 * 4 + 2, 1] = 1.0  # scene 0, token 1 reads only the bird's position
    projector = _softmax(rng.normal(size=(N, 16, 4)), axis=-1)
    projector[0, :, 1] = -1.0
    projector[0, [6, 7], 1] = 5.0  # two positions read most from token 1
    coarse = _softmax(rng.normal(size=(N, 4, 3)), axis=1)  # 2x2, three tokens, no projector
    return [{"size": (4, 4), "tokenizer": fine, "projector": projector, "name": "stride 4"},
            {"tokenizer": coarse}]


def test_the_explorer_draws_the_selection_and_measures_where_the_token_reads(scene_set, levels):
    explorer = SceneTokenExplorer.from_scene_set(scene_set, levels, NAMES, token=1)
    assert explorer.class_names == ["background", *NAMES]
    assert explorer.class_shares() == {"bird": pytest.approx(1.0), "background": 0.0}
    text = explorer.describe()
    assert "Scene 0, level stride 4, token 1: reads about 1.0 of 16 positions; 100% on bird, 0% on background." in text
    assert "projector sends 2 of 16 positions mostly to token 1" in text
    fig = explorer.figure()
    scene_ax, mask_ax, reads_ax, projector_ax = fig.axes[:4]
    assert [t.get_text() for t in mask_ax.get_legend().get_texts()] == ["background", "bird"]
    assert [t.get_text() for t in scene_ax.texts] == ["bird"] and len(scene_ax.patches) == 1
    assert "token 1: where it reads" in reads_ax.get_title() and "100% on bird" in reads_ax.get_title()
    assert reads_ax.images[1].get_array().shape == (S, S)  # the 4x4 attention upsampled over the scene
    assert "token 1: 2 positions" in projector_ax.get_title() and projector_ax.collections  # its outline
    # The mask colours: grey background, one colour per class.
    np.testing.assert_allclose(mask_ax.images[0].get_array(), scene_set.masks[0])
    assert class_colors(4).shape == (4, 3) and len({tuple(c) for c in class_colors(11)}) == 11


def test_occluded_objects_split_the_attention_by_the_mask(scene_set, levels):
    uniform = np.full((N, 16, 4), 1 / 16)
    explorer = SceneTokenExplorer.from_scene_set(scene_set, [{"tokenizer": uniform}], ["background", *NAMES], scene=1)
    shares = explorer.class_shares()
    # Plane 64 - 16 covered = 48 pixels, car 64, background 256 - 112 = 144.
    assert shares == {"background": pytest.approx(144 / 256), "car": pytest.approx(64 / 256),
                      "plane": pytest.approx(48 / 256)}
    texts = [t.get_text() for ax in explorer.figure().axes for t in ax.texts]
    assert "level 4x4 has no projector" in texts and texts.count("plane") == 1 and texts.count("car") == 1


def test_levels_with_fewer_tokens_reset_the_token_and_bad_selections_are_messages(scene_set, levels):
    explorer = SceneTokenExplorer.from_scene_set(scene_set, {"levels": levels}, NAMES, scene=2, token=3)
    assert [label for label, _ in explorer.level.options] == ["0: stride 4", "1: 2x2"]
    explorer.set(level=1)
    assert (explorer.level.value, explorer.token.value, explorer.token.max) == (1, 0, 2)
    explorer.set(token=3)
    assert explorer.message == "token must be a whole number from 0 to 2, got 3." and explorer.token.value == 0
    assert "token must be" in explorer.info.value
    explorer.set(scene=3)
    assert "scene must be a whole number from 0 to 2" in explorer.message
    explorer.set(level=0, token=3)
    assert explorer.message == "" and (explorer.level.value, explorer.token.value, explorer.token.max) == (0, 3, 3)
    explorer.level.value = 1  # the dropdown itself (a live kernel) keeps the token in range too
    assert explorer.token.value == 0 and explorer.token.max == 2
    assert "Scene 2, level 2x2, token 0" in explorer.describe()


def test_an_impossible_initial_selection_is_refused(scene_set, levels):
    with pytest.raises(ValueError, match="the initial selection: token must be a whole number from 0 to 2, got 3"):
        SceneTokenExplorer.from_scene_set(scene_set, levels, NAMES, level=1, token=3)


def test_boxes_default_to_one_box_per_class_of_the_mask(scene_set, levels):
    explorer = SceneTokenExplorer(scene_set.scenes, scene_set.masks, levels, NAMES, scene=1)
    boxes = {explorer.class_names[c + 1]: tuple(b) for b, c in zip(explorer.boxes[1], explorer.object_classes[1])}
    assert boxes == {"plane": (0, 0, 8, 8), "car": (4, 4, 12, 12)}
    assert explorer.boxes[0, 1].tolist() == [-1, -1, -1, -1]  # scene 0 has one object


def _inputs(scene_set, levels):
    return dict(scenes=scene_set.scenes, masks=scene_set.masks, attention=levels, class_names=NAMES)


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda a: a.update(scenes=a["scenes"][:2]), "masks must be (N, S, S) = (2, 16, 16)"),
        (lambda a: a.update(masks=a["masks"] + 4), "outside 0..3"),
        (lambda a: a.update(attention=[{**a["attention"][0], "size": (2, 8)}, a["attention"][1]]),
         "its 2x8 grid does not tile the 16x16 scenes"),
        (lambda a: a.update(attention=[{**a["attention"][0], "size": (4, 2)}]), "4x2 but its tokenizer attention has 16"),
        (lambda a: a.update(attention=[{"tokenizer": np.ones((N, 12, 4)) / 12}]), "not a square grid"),
        (lambda a: a.update(attention=[{**a["attention"][0], "projector": np.ones((N, 16, 5))}]), "tokenizer's shape"),
        (lambda a: a.update(attention=[{"tokenizer": a["attention"][0]["tokenizer"][:2]}]), "maps of 2 scenes for 3"),
        (lambda a: a.update(attention=[]), "non-empty list"),
        (lambda a: a.update(attention={"tokenizer": np.ones((N, 16, 4))}), "non-empty list"),
        (lambda a: a.update(attention=[{"projector": np.ones((N, 16, 4))}]), "'tokenizer' map"),
        (lambda a: a.update(attention=[{"tokenizer": np.ones((N, 16))}]), "must be (B, H*W, L)"),
        (lambda a: a.update(boxes=np.zeros((N, 2, 4))), "boxes need their object_classes"),
        (lambda a: a.update(boxes=np.zeros((N, 2, 4)), object_classes=np.zeros((N, 3))), "boxes must be (N, M, 4)"),
    ],
)
def test_inputs_that_do_not_fit_together_are_refused(scene_set, levels, change, words):
    arguments = _inputs(scene_set, levels)
    change(arguments)
    with pytest.raises(ValueError, match=re.escape(words)):
        SceneTokenExplorer(**arguments)


def test_a_scene_size_that_is_no_multiple_of_the_level_grid_is_refused(scene_set):
    tokenizer = np.ones((N, 9, 2)) / 9
    with pytest.raises(ValueError, match="its 3x3 grid does not tile the 16x16 scenes"):
        SceneTokenExplorer(scene_set.scenes, scene_set.masks, [{"tokenizer": tokenizer}], NAMES)
    assert attention_levels([{"tokenizer": tokenizer}])[0]["size"] == (3, 3)  # fine without scenes


def test_the_levels_of_a_real_vt_fpn_are_read_by_name_finest_first():
    from vt_edu.models import create_model, vt_fpn_attention

    model = create_model("vt_fpn", num_classes=3, input_shape=(64, 64, 3), width=0.25, num_tokens=4)
    images = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    levels = attention_levels(vt_fpn_attention(model, images), count=2)
    assert [(level["name"], level["size"]) for level in levels] == [
        ("p2", (16, 16)), ("p3", (8, 8)), ("p4", (4, 4)), ("p5", (2, 2))]
    assert all(level["projector"].shape == level["tokenizer"].shape for level in levels)
