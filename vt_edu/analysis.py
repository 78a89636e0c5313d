"""What a trained classifier and its tokens do, in NumPy: the numbers behind chapter 11,
and the small checks the layer chapters share (:func:`relative_error`,
:func:`attention_tolerance`; pictures are in :mod:`vt_edu.plots`).

Everything here takes plain arrays (labels, logits, and the attention maps that
:func:`vt_edu.models.attention.vt_resnet_attention` returns) and returns plain
arrays, so each function can be checked by hand on a small example (the tests do).

Attention layouts (as :func:`vt_resnet_attention` returns them):

* tokenizer ``(B, HW, L)``: column ``l`` is token ``l``'s distribution over the
  ``HW`` pixels (sums to 1 over pixels);
* transformer ``(B, L, L)``: row ``i`` is token ``i``'s distribution over the tokens;
* projector ``(B, HW, L)``: row ``p`` is pixel ``p``'s distribution over the tokens.
"""

from __future__ import annotations

import numpy as np

from vt_edu.reference import softmax

__all__ = [
    "attention_tolerance",
    "confusion_matrix",
    "effective_count",
    "focus_ranking",
    "most_confident_mistakes",
    "neighbour_agreement",
    "per_class_accuracy",
    "pixel_assignment",
    "relative_error",
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
