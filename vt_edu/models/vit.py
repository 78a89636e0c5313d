"""A small patch-token Vision Transformer (Dosovitskiy et al., 2021) for 32x32 images.

It is the book's contrast to the VT: a ViT turns *every* ``patch x patch`` square into
a token (patch 4 on 32x32 → 64 tokens, fixed positions on a grid), while a VT pools a
CNN feature map into 16 *semantic* tokens. Design: a strided convolution embeds the
patches, a learned position embedding is added, a learned class token is prepended
(``pool="cls"``) or the tokens are averaged at the end (``pool="mean"``), and
``depth`` pre-norm blocks follow::

    x = x + DropPath(MHA(LN(x)))
    x = x + DropPath(MLP(LN(x)))       # MLP: Dense(mlp_dim, gelu) → Dense(dim)

Defaults (dim 128, depth 6, 4 heads, MLP 256) give a CPU-sized model of about 0.8 M
parameters.
"""

from __future__ import annotations

import keras

from vt_edu.models.blocks import ClassToken, PositionEmbedding, StochasticDepth, TokenPool
from vt_edu.models.resnet import classifier_head, survival_probabilities


def build_vit(
    num_classes,
    input_shape,
    *,
    patch_size: int = 4,
    dim: int = 128,
    depth: int = 6,
    num_heads: int = 4,
    mlp_dim: int = 256,
    pool: str = "cls",
    width: float = 1.0,
    dropout: float = 0.0,
    stochastic_depth: float = 1.0,
):
    """Build the ViT.

    Args:
        num_classes: number of output logits.
        input_shape: ``(H, W, C)`` with ``H`` and ``W`` divisible by ``patch_size``.
        patch_size: side of the square patches (4 on 32x32 → 64 tokens).
        dim: token width ``D`` (divided evenly between the heads).
        depth: number of transformer blocks.
        num_heads: attention heads per block.
        mlp_dim: hidden width of the MLPs.
        pool: ``"cls"`` (class token) or ``"mean"`` (average of the patch tokens).
        width: multiplier of ``dim`` and ``mlp_dim`` (``dim`` stays a multiple of
            ``num_heads``).
        dropout: dropout rate in the MLPs and before the classifier.
        stochastic_depth: survival probability of the last block's branches (linear
            decay over the blocks); 1.0 disables it.
    """
    height, width_px = input_shape[0], input_shape[1]
    if height % patch_size or width_px % patch_size:
        raise ValueError(
            f"vit: the {height}x{width_px} input is not divisible into {patch_size}x{patch_size} patches."
        )
    head_dim = max(1, int(round(dim * width / num_heads)))
    dim = head_dim * num_heads
    mlp_dim = max(1, int(round(mlp_dim * width)))
    num_patches = (height // patch_size) * (width_px // patch_size)

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(dim, patch_size, strides=patch_size, name="embed_patch")(inputs)
    x = keras.layers.Reshape((num_patches, dim), name="embed_flatten")(x)
    if pool == "cls":
        x = ClassToken(name="embed_cls")(x)
    x = PositionEmbedding(name="embed_pos")(x)
    survivals = survival_probabilities(depth, stochastic_depth)
    for i in range(1, depth + 1):
        p = survivals[i - 1]
        y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm1")(x)
        y = keras.layers.MultiHeadAttention(num_heads, head_dim, name=f"block{i}_attn")(y, y)
        if p < 1.0:
            y = StochasticDepth(p, name=f"block{i}_drop_path1")(y)
        x = keras.layers.Add(name=f"block{i}_add1")([x, y])
        y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm2")(x)
        y = keras.layers.Dense(mlp_dim, activation="gelu", name=f"block{i}_mlp1")(y)
        if dropout > 0:
            y = keras.layers.Dropout(dropout, name=f"block{i}_dropout1")(y)
        y = keras.layers.Dense(dim, name=f"block{i}_mlp2")(y)
        if dropout > 0:
            y = keras.layers.Dropout(dropout, name=f"block{i}_dropout2")(y)
        if p < 1.0:
            y = StochasticDepth(p, name=f"block{i}_drop_path2")(y)
        x = keras.layers.Add(name=f"block{i}_add2")([x, y])
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="head_norm")(x)
    x = TokenPool(pool, name="head_pool")(x)
    outputs = classifier_head(x, num_classes, dropout)
    return keras.Model(inputs, outputs, name="vit")
