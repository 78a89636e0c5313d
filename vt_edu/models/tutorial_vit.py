"""The ViT the students fell back to: the Keras tutorial "Image classification with Vision Transformer".

The tutorial (Khalid Salama, keras.io, 2021; ported to Keras 3 unchanged in 2023) resizes
32x32 images to 72x72 and cuts them into 6x6 patches: 144 tokens of 64 numbers. Its
augmentation is part of the model and runs in training only::

    Resizing(72) → RandomFlip("horizontal") → RandomRotation(0.02) → RandomZoom(0.2, 0.2)
    → patches (144 x 108) → Dense(64) + learned position embedding
    → 8 x [LN → MHA(4 heads, key_dim 64, dropout 0.1) → add → LN → MLP(128, 64) → add]
    → LN → Flatten (144·64 = 9,216) → Dropout(0.5) → MLP(2048, 1024) → Dense(classes)

MLPs are Dense + GELU + Dropout per layer (0.1 in the blocks, 0.5 in the head). Unlike the
ViT paper (and :mod:`vt_edu.models.vit`) it has no class token: the head reads all tokens
flattened, so 19 of its 21.7 M parameters sit in the first head layer.

Two differences, both deliberate: the tutorial's first layer ``Normalization`` (adapted
to the training set) is left out, because the book's input pipeline already standardises
every channel with the training set's mean and standard deviation (the same operation);
and the position embedding starts from the book's truncated normal (std 0.02) instead of
Keras' ``Embedding`` default (uniform in ±0.05).

The current keras.io version (changed in 2026) widens the tokens to ``projection_dim x
num_heads`` = 256 numbers and its block MLPs to (512, 256), about 4 times the MACs:
``token_dim=256, mlp_dim=512`` builds that version.
"""

from __future__ import annotations

import keras
from keras import ops

from vt_edu.models.blocks import PositionEmbedding


@keras.saving.register_keras_serializable(package="vt_edu")
class Patches(keras.layers.Layer):
    """Cut images ``(B, H, W, C)`` into non-overlapping ``p x p`` patches ``(B, HW/p², p·p·C)``,
    row by row; each patch flattened in (row, column, channel) order.

    Args:
        patch_size: ``p``; ``H`` and ``W`` must be multiples of it.
    """

    def __init__(self, patch_size: int, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)

    def call(self, images):
        p = self.patch_size
        _, h, w, c = images.shape
        x = ops.reshape(images, (-1, h // p, p, w // p, p, c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (B, rows, cols, p, p, C)
        return ops.reshape(x, (-1, (h // p) * (w // p), p * p * c))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        p = self.patch_size
        return (b, (h // p) * (w // p), p * p * c)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size}


def _mlp(x, units, dropout, prefix):
    for i, n in enumerate(units, start=1):
        x = keras.layers.Dense(n, activation="gelu", name=f"{prefix}_dense{i}")(x)
        x = keras.layers.Dropout(dropout, name=f"{prefix}_dropout{i}")(x)
    return x


def build_tutorial_vit(
    num_classes,
    input_shape,
    *,
    image_size: int = 72,
    patch_size: int = 6,
    token_dim: int = 64,
    num_heads: int = 4,
    key_dim: int = 64,
    depth: int = 8,
    mlp_dim: int = 128,
    head_units: tuple = (2048, 1024),
    block_dropout: float = 0.1,
    dropout: float = 0.5,
    augment: bool = True,
    width: float = 1.0,
):
    """Build the Keras tutorial's ViT (defaults: the tutorial's settings).

    Args:
        num_classes: number of output logits.
        input_shape: ``(H, W, C)`` of the images given to the model (resized inside).
        image_size: side the images are resized to (72); a multiple of ``patch_size``.
        patch_size: side of the square patches (6 → 144 tokens at 72x72).
        token_dim: numbers per token (64; 256 in the June 2026 version).
        num_heads, key_dim: attention heads and their query/key width.
        depth: transformer blocks (8).
        mlp_dim: hidden width of the blocks' MLPs (their output is ``token_dim``).
        head_units: hidden widths of the classifier MLP.
        block_dropout: dropout in attention and the blocks' MLPs.
        dropout: dropout in the classifier head (before and inside its MLP), as ``dropout``
            is before the classifier in the book's other models (a recipe's ``dropout`` sets it).
        augment: the tutorial's random flip, rotation and zoom (training only).
        width: multiplier of ``token_dim``, ``key_dim``, ``mlp_dim`` and ``head_units``
            (1.0: the tutorial's sizes).

    Returns:
        A functional ``keras.Model`` named ``tutorial_vit``: images ``(B, H, W, C)`` → logits ``(B, classes)``.
    """
    if image_size % patch_size:
        raise ValueError(f"tutorial_vit: image_size {image_size} is not a multiple of patch_size {patch_size}.")
    token_dim, key_dim, mlp_dim = (max(1, round(n * width)) for n in (token_dim, key_dim, mlp_dim))
    head_units = tuple(max(1, round(n * width)) for n in head_units)
    L = keras.layers
    inputs = keras.Input(shape=input_shape, name="image")
    x = L.Resizing(image_size, image_size, name="augment_resize")(inputs)
    if augment:
        x = L.RandomFlip("horizontal", name="augment_flip")(x)
        x = L.RandomRotation(0.02, name="augment_rotate")(x)
        x = L.RandomZoom(0.2, 0.2, name="augment_zoom")(x)
    x = Patches(patch_size, name="embed_patches")(x)
    x = L.Dense(token_dim, name="embed_project")(x)
    x = PositionEmbedding(name="embed_pos")(x)
    for i in range(1, depth + 1):
        y = L.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm1")(x)
        y = L.MultiHeadAttention(num_heads, key_dim, dropout=block_dropout, name=f"block{i}_attn")(y, y)
        x = L.Add(name=f"block{i}_add1")([y, x])
        y = L.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm2")(x)
        y = _mlp(y, (mlp_dim, token_dim), block_dropout, f"block{i}_mlp")
        x = L.Add(name=f"block{i}_add2")([y, x])
    x = L.LayerNormalization(epsilon=1e-6, name="head_norm")(x)
    x = L.Flatten(name="head_flatten")(x)
    x = L.Dropout(dropout, name="head_dropout")(x)
    x = _mlp(x, tuple(head_units), dropout, "head_mlp")
    outputs = L.Dense(num_classes, name="head_logits", dtype="float32")(x)  # float32 also under mixed precision
    return keras.Model(inputs, outputs, name="tutorial_vit")
