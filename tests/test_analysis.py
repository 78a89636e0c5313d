"""vt_edu.analysis: every function checked on examples small enough to count by hand."""

from __future__ import annotations

import numpy as np
import pytest

from vt_edu.analysis import (
    attention_centroids,
    attention_tolerance,
    centroid_tracking,
    confusion_matrix,
    effective_count,
    effective_pixels_per_token,
    focus_ranking,
    foreground_attention_share,
    mask_fraction,
    most_confident_mistakes,
    neighbour_agreement,
    per_class_accuracy,
    pixel_assignment,
    relative_error,
    token_mask_correlation,
    token_maps,
    top_confusions,
    upsample,
)


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 2])
    m = confusion_matrix(y_true, y_pred, 3)
    assert m.tolist() == [[1, 2, 0], [0, 1, 1], [0, 0, 1]]
    assert m.sum() == 6 and m.dtype == np.int64
    assert per_class_accuracy(m) == pytest.approx([1 / 3, 1 / 2, 1.0])
    assert top_confusions(m, k=5) == [(0, 1, 2), (1, 2, 1)]  # only non-zero off-diagonal cells


def test_per_class_accuracy_is_nan_for_a_class_without_images():
    m = confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 0]), 3)
    accuracy = per_class_accuracy(m)
    assert accuracy[0] == 0.5 and accuracy[1] == 0.0 and np.isnan(accuracy[2])


@pytest.mark.parametrize(
    "y_true, y_pred, match",
    [
        (np.array([0, 1]), np.array([0]), "2 true labels but 1 predictions"),
        (np.array([0, 3]), np.array([0, 1]), "y_true holds labels outside 0..2"),
        (np.array([0, 1]), np.array([-1, 1]), "y_pred holds labels outside 0..2"),
        (np.array([0.0, 1.0]), np.array([0, 1]), "integer class labels"),
    ],
)
def test_confusion_matrix_rejects_bad_labels(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(y_true, y_pred, 3)


def test_most_confident_mistakes_orders_wrong_predictions_by_their_probability():
    y_true = np.array([0, 1, 2, 0])
    logits = np.array([
        [5.0, 0.0, 0.0],  # right
        [3.0, 0.0, 0.0],  # wrong (predicts 0), p ~ 0.91
        [0.0, 1.0, 0.0],  # wrong (predicts 1), p ~ 0.58
        [0.0, 0.0, 9.0],  # wrong (predicts 2), p ~ 1.00
    ])
    assert most_confident_mistakes(y_true, logits, k=12).tolist() == [3, 1, 2]
    assert most_confident_mistakes(y_true, logits, k=1).tolist() == [3]
    with pytest.raises(ValueError, match="4 labels but logits of shape"):
        most_confident_mistakes(y_true, logits[:3])


def test_effective_count_of_uniform_and_one_hot_distributions():
    assert effective_count(np.full(64, 1 / 64)) == pytest.approx(64)
    assert effective_count(np.eye(5)[2]) == pytest.approx(1)
    two = np.array([[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    assert effective_count(two, axis=1) == pytest.approx([2, 4])


def test_focus_ranking_puts_the_most_concentrated_image_first_for_each_token():
    hw, tokens = 4, 2
    spread = np.full((hw, tokens), 1 / hw)
    sharp = spread.copy()
    sharp[:, 0] = [1.0, 0.0, 0.0, 0.0]  # token 0 reads one pixel in this image
    half = spread.copy()
    half[:, 1] = [0.5, 0.5, 0.0, 0.0]  # token 1 reads two pixels in this image
    attention = np.stack([spread, half, sharp])  # (B=3, HW, L)
    ranking = focus_ranking(attention, k=2)
    assert ranking.shape == (tokens, 2)
    assert ranking[0, 0] == 2 and ranking[1, 0] == 1
    with pytest.raises(ValueError, match=r"\(B, HW, L\)"):
        focus_ranking(attention[0])


def test_pixel_assignment_is_the_argmax_token_laid_out_row_major():
    attention = np.zeros((1, 6, 3))
    winners = [0, 1, 2, 2, 1, 0]
    attention[0, np.arange(6), winners] = 1.0
    assert pixel_assignment(attention, 2, 3).tolist() == [[[0, 1, 2], [2, 1, 0]]]
    with pytest.raises(ValueError, match=r"\(B, 3\*3, L\)"):
        pixel_assignment(attention, 3, 3)


def test_upsample_repeats_each_cell_into_a_block():
    maps = np.array([[1, 2], [3, 4]])
    big = upsample(maps, 2)
    assert big.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]


def test_neighbour_agreement_counts_equal_adjacent_pairs():
    one_label = np.zeros((1, 2, 3), int)
    assert neighbour_agreement(one_label) == 1.0
    stripes = np.array([[[0, 1, 0], [0, 1, 0]]])  # 3 vertical pairs agree, 0 of 4 horizontal ones
    assert neighbour_agreement(stripes) == pytest.approx(3 / 7)


def test_token_maps_turns_columns_into_row_major_maps():
    attention = np.arange(12).reshape(6, 2)  # H*W = 2x3 pixels, L = 2 tokens
    maps = token_maps(attention, 2, 3)
    assert maps.shape == (2, 2, 3)
    assert maps[1].tolist() == [[1, 3, 5], [7, 9, 11]]  # column 1, pixel p at (p // 3, p % 3)
    assert token_maps(attention[None], 2, 3).shape == (1, 2, 2, 3)


def test_relative_error_and_attention_tolerance():
    assert relative_error([1.0, 2.5], [1.0, 2.0]) == 0.25
    assert attention_tolerance(np.array([3.0, -40.0])) == pytest.approx(4e-5)
    assert attention_tolerance(np.array([0.1])) == 1e-5


def test_attention_grid_draws_one_tile_per_token(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vt_edu.plots import attention_grid, heat

    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    images = np.full((2, 8, 8, 3), 255.0)
    attention = np.full((2, 4, 3), 0.25)  # 2x2 maps, 3 tokens
    attention_grid(images, attention, ["a", "b"], "title", scale="map")
    canvas = shown[0].axes[0].images[0].get_array()
    assert canvas.shape == (2 * 10 - 2, 4 * 10 - 2, 3)  # 2 rows, image + 3 maps, gap 2
    # A white image under a full-weight map: 0.35 grey + 0.65 of the colour map's top.
    top = np.array(plt.get_cmap("inferno")(1.0)[:3])
    np.testing.assert_allclose(heat(images[0], np.ones((8, 8)), 1.0)[0, 0], 0.35 + 0.65 * top)
    plt.close("all")


# ------------------------------------------------------------ tokens against object masks
def _scene_masks():
    """One 4x4 scene: class 3 (mask value 4) covers the top-left 2x2 block and one more pixel."""
    masks = np.zeros((1, 4, 4), np.uint8)
    masks[0, :2, :2] = 4
    masks[0, 2, 3] = 1
    return masks


def test_mask_fraction_brings_masks_down_to_a_feature_map_by_each_rule():
    masks = _scene_masks()  # 2x2 map: blocks hold 4, 0, 0 and 1 object pixels of 4
    assert mask_fraction(masks, 2, 2).tolist() == [[[1.0, 0.0], [0.0, 0.25]]]
    assert mask_fraction(masks, 2, 2, rule="majority").tolist() == [[[1.0, 0.0], [0.0, 0.0]]]
    assert mask_fraction(masks, 2, 2, rule="any").tolist() == [[[1.0, 0.0], [0.0, 1.0]]]
    assert mask_fraction(masks, 4, 4).sum() == 5  # at the input size: the mask itself
    assert mask_fraction(masks, 2, 2).mean() == (masks != 0).mean()  # the scene's object share, exactly
    with pytest.raises(ValueError, match="do not split into 3x3 equal blocks"):
        mask_fraction(masks, 3, 3)
    with pytest.raises(ValueError, match="unknown mask rule 'most'"):
        mask_fraction(masks, 2, 2, rule="most")
    with pytest.raises(ValueError, match=r"\(B, S, S\)"):
        mask_fraction(masks[0], 2, 2)


def test_foreground_attention_share_against_a_uniform_token():
    objects = np.array([[1.0, 0.0, 0.0, 0.25]])  # object shares of 4 cells: uniform share 1.25 / 4
    attention = np.array([[[0.5, 0.25], [0.5, 0.25], [0.0, 0.25], [0.0, 0.25]]])  # (1, HW=4, L=2)
    result = foreground_attention_share(attention, objects.reshape(1, 2, 2))
    assert result.per_scene.tolist() == [[0.5, 0.3125]]  # token 0: half on the object; token 1 = uniform
    assert result.uniform.tolist() == [0.3125]
    assert result.per_token.tolist() == [0.5, 0.3125]
    assert result.share == pytest.approx(0.40625) and result.uniform_share == 0.3125
    assert result.ratio == pytest.approx(0.40625 / 0.3125)  # 1.3: 30 % more attention on objects
    with pytest.raises(ValueError, match="do not match attention"):
        foreground_attention_share(attention, np.zeros((1, 3, 3)))


def test_foreground_share_is_a_ratio_of_means_over_scenes():
    # Scene 0: object share 0.5, the token entirely on it (1.0). Scene 1: no objects (0 and 0).
    attention = np.array([[[1.0], [0.0]], [[0.5], [0.5]]])
    result = foreground_attention_share(attention, np.array([[1.0, 0.0], [0.0, 0.0]]))
    assert result.share == 0.5 and result.uniform_share == 0.25 and result.ratio == 2.0
    assert np.isnan(foreground_attention_share(attention, np.zeros((2, 2))).ratio)


def test_effective_pixels_per_token_counts_cells_or_input_pixels():
    attention = np.array([[[0.5, 1.0], [0.5, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    assert effective_pixels_per_token(attention)[0] == pytest.approx([2.0, 1.0])
    assert effective_pixels_per_token(attention, pixels_per_cell=16)[0] == pytest.approx([32.0, 16.0])
    with pytest.raises(ValueError, match=r"\(B, HW, L\)"):
        effective_pixels_per_token(attention[0])


def test_attention_centroids_are_attention_weighted_cell_positions():
    attention = np.zeros((1, 6, 2))  # a 2x3 map, cells (row, col) in row-major order
    attention[0, 5, 0] = 1.0  # token 0 on cell (1, 2)
    attention[0, [0, 2], 1] = 0.5  # token 1 half on (0, 0), half on (0, 2)
    assert attention_centroids(attention, 2, 3).tolist() == [[[1.0, 2.0], [0.0, 1.0]]]
    with pytest.raises(ValueError, match=r"\(B, 3\*3, L\)"):
        attention_centroids(attention, 3, 3)


def test_centroid_tracking_is_one_for_a_token_that_moves_with_the_object_and_zero_for_one_that_stays():
    centres = np.array([[1.0, 1.0], [1.0, 3.0], [3.0, 1.0]])
    follower = centres + [0.5, -0.5]  # always at the same offset from the object
    stayer = np.tile([[2.0, 2.0]], (3, 1))
    half = centres / 2  # moves half as far
    slopes = centroid_tracking(np.stack([follower, stayer, half], axis=1), centres)
    assert slopes == pytest.approx([1.0, 0.0, 0.5])
    with pytest.raises(ValueError, match="does not move"):
        centroid_tracking(np.stack([follower], axis=1), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"centroids \(B, L, 2\)"):
        centroid_tracking(follower, centres)


def test_token_mask_correlation_per_scene_and_token():
    objects = np.array([[1.0, 1.0, 0.0, 0.0]])
    attention = np.array([[[0.5, 0.0, 0.25], [0.5, 0.0, 0.25], [0.0, 0.5, 0.25], [0.0, 0.5, 0.25]]])
    correlation = token_mask_correlation(attention, objects)
    assert correlation[0, :2] == pytest.approx([1.0, -1.0])  # on the object; exactly off it
    assert np.isnan(correlation[0, 2])  # a uniform token has no correlation
    assert np.isnan(token_mask_correlation(attention, np.zeros((1, 4)))).all()  # no object
