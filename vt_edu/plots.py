"""Pictures of attention maps over CIFAR images, as the tokenizer chapters draw them.

Matplotlib is imported when a picture is drawn, so importing this module costs nothing.
"""

from __future__ import annotations

import math

import numpy as np

from vt_edu.analysis import token_maps, upsample

__all__ = ["attention_grid", "heat"]


def heat(image, weights, vmax):
    """An attention map in colour over a grey copy of the image.

    Args:
        image: ``(h, w, 3)`` uint8-range image.
        weights: ``(h, w)`` map at the image's size; bright = heavy.
        vmax: the weight drawn at full brightness.

    Returns:
        ``(h, w, 3)`` floats in ``[0, 1]``.
    """
    import matplotlib.pyplot as plt

    grey = image.mean(axis=-1, keepdims=True) / 255.0
    return 0.35 * grey + 0.65 * plt.get_cmap("inferno")(np.clip(weights / vmax, 0, 1))[..., :3]


def attention_grid(images, attention, row_labels, title, col_labels=None, gap=2, group=None, scale="row"):
    """Per row an image and its ``L`` attention maps, drawn as one mosaic (fast), and shown.

    Args:
        images: ``(R, h, w, 3)`` uint8-range images.
        attention: ``(R, H*W, L)`` tokenizer attention of a square ``H x W`` map;
            each map is upsampled to the image's size.
        row_labels: ``R`` labels.
        title: the figure's title.
        col_labels: ``L + 1`` labels; default ``"image"``, ``"0"``, ``"1"``, ...
        gap: pixels between tiles.
        group: a wider gap every ``group`` rows.
        scale: ``"row"``: one colour scale per row, from 0 to the row's largest
            weight; ``"map"``: each map stretched from its smallest to its largest weight.
    """
    import matplotlib.pyplot as plt

    images, attention = np.asarray(images), np.asarray(attention)
    side = math.isqrt(attention.shape[-2])
    tile = images.shape[1]
    rows, cols = len(images), attention.shape[-1] + 1
    size = tile + gap
    extra = [(r // group) * 3 * gap if group else 0 for r in range(rows)]  # space between groups
    canvas = np.ones((rows * size - gap + extra[-1], cols * size - gap, 3))
    for r, (img, a) in enumerate(zip(images, attention)):
        maps = upsample(token_maps(a, side, side), tile // side)
        if scale == "map":
            tiles = [heat(img, m - m.min(), m.max() - m.min() + 1e-12) for m in maps]
        else:
            tiles = [heat(img, m, a.max()) for m in maps]
        tiles = [img / 255.0] + tiles
        top = r * size + extra[r]
        for c, picture in enumerate(tiles):
            canvas[top : top + tile, c * size : c * size + tile] = picture
    fig, ax = plt.subplots(figsize=(max(0.8 * cols, 4.5), 0.8 * rows + 0.8))
    ax.imshow(canvas)
    col_labels = col_labels or ["image"] + [f"{l}" for l in range(cols - 1)]
    ax.set_xticks(np.arange(cols) * size + tile // 2, col_labels, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(np.arange(rows) * size + np.array(extra) + tile // 2, row_labels, fontsize=9)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=10, pad=18)
    plt.show()
