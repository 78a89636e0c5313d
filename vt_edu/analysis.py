"""What a trained classifier and its tokens do, in NumPy: the numbers behind chapter 11,
and the small checks the layer chapters share (:func:`relative_error`,
:func:`attention_tolerance`; pictures are in :mod:`vt_edu.plots`).

Everything here takes plain arrays (labels, logits, and the attention maps that
:func:`vt_edu.models.attention.vt_resnet_attention` returns) and returns plain
arrays, so each function can be checked by hand on a small example (the tests do).

The token statistics of a VT-FPN on scenes (chapter 14 and ``benchmarks/scenes_benchmark.py``)
compare tokenizer attention with the scenes' object masks: :func:`mask_fraction`,
:func:`foreground_attention_share`, :func:`effective_pixels_per_token`,
:func:`attention_centroids`, :func:`centroid_tracking` and :func:`token_mask_correlation`.

Attention layouts (as :func:`vt_resnet_attention` returns them):

* tokenizer ``(B, HW, L)``: column ``l`` is token ``l``'s distribution over the
  ``HW`` pixels (sums to 1 over pixels);
* transformer ``(B, L, L)``: row ``i`` is token ``i``'s distribution over the tokens;
* projector ``(B, HW, L)``: row ``p`` is pixel ``p``'s distribution over the tokens.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vt_edu.reference import softmax

__all__ = [
    "MASK_RULES",
    "ForegroundShare",
    "attention_centroids",
    "attention_tolerance",
    "centroid_tracking",
    "confusion_matrix",
    "effective_count",
    "effective_pixels_per_token",
    "focus_ranking",
    "foreground_attention_share",
    "mask_fraction",
    "most_confident_mistakes",
    "neighbour_agreement",
    "per_class_accuracy",
    "pixel_assignment",
    "relative_error",
    "token_mask_correlation",
    "token_maps",
    "top_confusions",
    "upsample",
]


def _labels(y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D array of integer class labels, got shape {y.shape} and dtype {y.dtype}.")
    return y


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Args:
        y_true, y_pred: integer labels ``(N,)``.
        num_classes: ``K``.

    Returns:
        ``(K, K)`` int64 matrix ``M`` with ``M[i, j]`` = images of class ``i`` predicted as
        ``j``: rows are the true classes, the diagonal holds the correct predictions.

    Raises:
        ValueError: different lengths, or labels outside ``0 .. K-1``.
    """
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions.")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} holds labels outside 0..{num_classes - 1}.")
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def per_class_accuracy(matrix) -> np.ndarray:
    """Recall of every class, ``M[i, i] / sum_j M[i, j]`` (NaN for a class with no images)."""
    matrix = np.asarray(matrix, np.float64)
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / totals, np.nan)


def top_confusions(matrix, k: int = 5) -> list:
    """The ``k`` largest off-diagonal cells as ``(true, predicted, count)``, largest first."""
    matrix = np.asarray(matrix)
    off = matrix.copy()
    np.fill_diagonal(off, -1)
    order = np.argsort(off, axis=None, kind="stable")[::-1][:k]
    cells = [np.unravel_index(i, matrix.shape) for i in order]
    return [(int(i), int(j), int(matrix[i, j])) for i, j in cells if i != j and matrix[i, j] > 0]


def most_confident_mistakes(y_true, logits, k: int = 12) -> np.ndarray:
    """Indices of the ``k`` misclassified images whose wrong prediction had the highest
    softmax probability (the model's most confident errors), most confident first."""
    y_true = _labels(y_true, "y_true")
    logits = np.asarray(logits)
    if logits.shape[:1] != y_true.shape:
        raise ValueError(f"{len(y_true)} labels but logits of shape {logits.shape}.")
    probabilities = softmax(logits, axis=1)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_true)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:k]


def effective_count(distributions, axis: int = -1) -> np.ndarray:
    """``exp(entropy)`` of distributions along ``axis``: how many items they spread over.

    A distribution uniform over ``n`` items gives ``n``; one on a single item gives 1. For
    a tokenizer's columns (``axis=1`` of ``(B, HW, L)``) this is the number of pixels a
    token effectively reads; for the transformer's rows, the number of tokens a token
    listens to.
    """
    p = np.asarray(distributions, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return np.exp(-terms.sum(axis=axis))


def focus_ranking(tokenizer_attention, k: int = 6) -> np.ndarray:
    """For every token, the ``k`` images on which it reads the fewest pixels.

    Args:
        tokenizer_attention: ``(B, HW, L)``, columns summing to 1 over the pixels.
        k: images per token.

    Returns:
        ``(L, k)`` image indices, most focused first.
    """
    attention = np.asarray(tokenizer_attention)
    if attention.ndim != 3:
        raise ValueError(f"tokenizer attention must be (B, HW, L), got shape {attention.shape}.")
    pixels = effective_count(attention, axis=1)  # (B, L)
    return np.argsort(pixels, axis=0, kind="stable")[:k].T


def pixel_assignment(projector_attention, height: int, width: int) -> np.ndarray:
    """The token each pixel reads most from: ``argmax_l A[p, l]`` as ``(B, height, width)``."""
    attention = np.asarray(projector_attention)
    if attention.ndim != 3 or attention.shape[1] != height * width:
        raise ValueError(f"projector attention must be (B, {height}*{width}, L), got shape {attention.shape}.")
    return attention.argmax(axis=-1).reshape(len(attention), height, width)


def neighbour_agreement(labels) -> float:
    """Share of horizontally or vertically adjacent pixel pairs with the same label, over
    label maps ``(B, H, W)`` (1: every map one label; a map's shuffled pixels give the
    chance level of its mix of labels)."""
    labels = np.asarray(labels)
    pairs = [labels[:, 1:] == labels[:, :-1], labels[:, :, 1:] == labels[:, :, :-1]]
    return float(np.concatenate([p.reshape(len(labels), -1) for p in pairs], axis=1).mean())


def upsample(maps, factor: int = 4) -> np.ndarray:
    """Nearest-neighbour upsampling of the last two axes by ``factor`` (default: the 8x8
    stage-3 maps → the 32x32 CIFAR image)."""
    maps = np.asarray(maps)
    return np.repeat(np.repeat(maps, factor, axis=-2), factor, axis=-1)


def token_maps(attention, height: int, width: int) -> np.ndarray:
    """A tokenizer's or projector's ``(..., H*W, L)`` attention as ``(..., L, H, W)``
    maps, one per token (pixels in row-major order, as the layers flatten them)."""
    attention = np.asarray(attention)
    maps = np.swapaxes(attention, -1, -2)
    return maps.reshape(*maps.shape[:-1], height, width)


def relative_error(a, b) -> float:
    """Largest absolute difference of ``a`` and ``b``, relative to the largest entry of ``b``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def attention_tolerance(logits) -> float:
    """How far float32 attention weights may be from float64 ones.

    float32 keeps about 7 significant digits, so a logit of size s carries a rounding
    error of about 1e-7 * s; a softmax passes an error of δ in its logits through as at
    most δ/2 in its weights. We allow 1e-6 times the largest logit (and at least 1e-5).
    """
    return max(1e-5, 1e-6 * float(np.abs(logits).max()))


# ------------------------------------------------------------ tokens against object masks
#: How :func:`mask_fraction` turns the pixels of one feature-map cell into that cell's object share.
MASK_RULES = ("fraction", "majority", "any")


def mask_fraction(masks, height: int, width: int, rule: str = "fraction") -> np.ndarray:
    """Object masks at the input resolution brought down to a feature map's ``height x width``.

    A feature map of a stride-``s`` level has one cell per ``s x s`` block of input
    pixels (``s = S / height``); the cell's value says how much of its block is object
    (any mask value other than 0, the background).

    Args:
        masks: integer masks ``(B, S, S')`` with 0 = background (a scene's ``masks``), or
            booleans (True = object). ``S`` must be a multiple of ``height`` and ``S'`` of
            ``width``.
        height, width: the feature map's size.
        rule: ``"fraction"`` (default): the share of the block's pixels that are object
            (0 to 1, so no threshold decides a cell on an object's edge); ``"majority"``:
            1 if more than half of them are, else 0; ``"any"``: 1 if at least one is.

    Returns:
        float64 ``(B, height, width)``; its mean over a map is the scene's share of object
        pixels exactly with ``"fraction"``.

    Raises:
        ValueError: not ``(B, S, S')``, a size that is not a multiple, or an unknown rule.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (B, S, S), got shape {masks.shape}.")
    if rule not in MASK_RULES:
        raise ValueError(f"unknown mask rule {rule!r}; choose one of {', '.join(MASK_RULES)}.")
    b, rows, cols = masks.shape
    if height < 1 or width < 1 or rows % height or cols % width:
        raise ValueError(f"masks of {rows}x{cols} pixels do not split into {height}x{width} equal blocks.")
    blocks = (masks != 0).reshape(b, height, rows // height, width, cols // width)
    fraction = blocks.mean(axis=(2, 4), dtype=np.float64)
    if rule == "majority":
        return (fraction > 0.5).astype(np.float64)
    if rule == "any":
        return (fraction > 0).astype(np.float64)
    return fraction


def _tokenizer(attention) -> np.ndarray:
    attention = np.asarray(attention, np.float64)
    if attention.ndim != 3:
        raise ValueError(f"tokenizer attention must be (B, HW, L), got shape {attention.shape}.")
    return attention


class ForegroundShare(NamedTuple):
    """What :func:`foreground_attention_share` returns (see there for the definitions)."""

    per_scene: np.ndarray  # (B, L): each token's attention share on object pixels, per scene
    uniform: np.ndarray  # (B,): the share of a token spread evenly = the scene's object share
    per_token: np.ndarray  # (L,): per_scene averaged over the scenes
    share: float  # per_scene averaged over scenes and tokens
    uniform_share: float  # uniform averaged over the scenes
    ratio: float  # share / uniform_share (1: no preference; 1.283: the paper's 28.3 % more)


def foreground_attention_share(tokenizer_attention, objects) -> ForegroundShare:
    """How much of each token's attention falls on object pixels, against a token that looks
    everywhere alike.

    With ``A[b, p, l]`` the tokenizer attention (column ``l`` a distribution over the
    ``HW`` cells) and ``f[b, p]`` the object share of cell ``p`` (:func:`mask_fraction`):

    * ``per_scene[b, l] = sum_p A[b, p, l] f[b, p] / sum_p A[b, p, l]``: token ``l``'s
      share of attention on objects in scene ``b``;
    * ``uniform[b] = mean_p f[b, p]``: the same share for uniform attention, i.e. the
      scene's share of object pixels (the background baseline);
    * ``ratio = mean_{b,l} per_scene / mean_b uniform`` (a ratio of means, so scenes with
      few object pixels do not dominate): above 1, tokens prefer objects.

    Args:
        tokenizer_attention: ``(B, HW, L)``.
        objects: object shares ``(B, H, W)`` with ``H * W = HW`` (from :func:`mask_fraction`),
            or ``(B, HW)``.

    Returns:
        :class:`ForegroundShare` (``ratio`` is NaN if no scene holds an object).

    Raises:
        ValueError: shapes that do not match.
    """
    attention = _tokenizer(tokenizer_attention)
    objects = np.asarray(objects, np.float64)
    b, hw, _ = attention.shape
    if objects.shape[0] != b or objects[0].size != hw:
        raise ValueError(f"object shares of shape {objects.shape} do not match attention of shape {attention.shape}.")
    f = objects.reshape(b, hw)
    per_scene = np.einsum("bpl,bp->bl", attention, f) / attention.sum(axis=1)
    uniform = f.mean(axis=1)
    share, uniform_share = float(per_scene.mean()), float(uniform.mean())
    ratio = share / uniform_share if uniform_share > 0 else float("nan")
    return ForegroundShare(per_scene, uniform, per_scene.mean(axis=0), share, uniform_share, ratio)


def effective_pixels_per_token(tokenizer_attention, pixels_per_cell: int = 1) -> np.ndarray:
    """How many pixels each token reads: :func:`effective_count` of its column, ``(B, L)``.

    A token spread evenly over ``n`` cells gives ``n``; one on a single cell gives 1.
    ``pixels_per_cell`` (``stride**2``) turns cells of a feature map into input pixels.
    """
    return effective_count(_tokenizer(tokenizer_attention), axis=1) * pixels_per_cell


def attention_centroids(tokenizer_attention, height: int, width: int) -> np.ndarray:
    """Each token's centre of attention in cell coordinates, ``(B, L, 2)`` as (row, column).

    ``centroid[b, l] = sum_p A[b, p, l] (row(p), col(p)) / sum_p A[b, p, l]``, cells in
    row-major order, cell ``(i, j)`` at ``(i, j)`` (its centre, so ``(i + 0.5) * stride``
    in input pixels).
    """
    attention = _tokenizer(tokenizer_attention)
    if attention.shape[1] != height * width:
        raise ValueError(f"tokenizer attention must be (B, {height}*{width}, L), got shape {attention.shape}.")
    rows, cols = np.divmod(np.arange(height * width), width)
    weights = attention / attention.sum(axis=1, keepdims=True)
    return np.stack([np.einsum("bpl,p->bl", weights, rows), np.einsum("bpl,p->bl", weights, cols)], axis=-1)


def centroid_tracking(centroids, object_centres) -> np.ndarray:
    """How far each token's centre of attention follows an object that moves.

    For scenes that show the same object at different places (``object_centres``, in the
    centroids' units), the slope of a least-squares line through the origin from the
    object's displacement to the token's, both taken from their means over the scenes
    and pooled over rows and columns::

        slope[l] = sum_b (c[b, l] - mean_b c[b, l]) . (o[b] - mean_b o[b]) / sum_b |o[b] - mean_b o[b]|^2

    1: the token moves with the object; 0: it stays where it is (or moves at random);
    0.5: it moves half as far.

    Args:
        centroids: ``(B, L, 2)`` from :func:`attention_centroids`.
        object_centres: ``(B, 2)``, (row, column); at least two different ones.

    Returns:
        ``(L,)`` slopes.
    """
    centroids = np.asarray(centroids, np.float64)
    centres = np.asarray(object_centres, np.float64)
    if centroids.ndim != 3 or centroids.shape[-1] != 2 or centres.shape != (len(centroids), 2):
        raise ValueError(f"centroids (B, L, 2) and object centres (B, 2) expected, got {centroids.shape} and "
                         f"{centres.shape}.")
    moved = centres - centres.mean(axis=0)
    spread = float((moved ** 2).sum())
    if spread == 0:
        raise ValueError("the object does not move: centroid tracking needs at least two object positions.")
    followed = centroids - centroids.mean(axis=0)
    return np.einsum("blk,bk->l", followed, moved) / spread


def token_mask_correlation(tokenizer_attention, objects) -> np.ndarray:
    """Pearson correlation over the cells of each token's attention map with the object map,
    per scene: ``(B, L)`` (1: attention is an affine image of the mask; NaN where either
    map is constant, e.g. a scene without objects).

    Args:
        tokenizer_attention: ``(B, HW, L)``.
        objects: ``(B, H, W)`` or ``(B, HW)`` object shares (:func:`mask_fraction`), or the
            map of one object.
    """
    attention = _tokenizer(tokenizer_attention)
    b, hw, _ = attention.shape
    objects = np.asarray(objects, np.float64)
    if objects.shape[0] != b or objects[0].size != hw:
        raise ValueError(f"object maps of shape {objects.shape} do not match attention of shape {attention.shape}.")
    f = objects.reshape(b, hw, 1) - objects.reshape(b, hw, 1).mean(axis=1, keepdims=True)
    a = attention - attention.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a ** 2).sum(axis=1) * (f ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (a * f).sum(axis=1) / denominator, np.nan)
