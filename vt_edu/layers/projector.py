"""The projector (Eq. 5): write what the tokens learned back into every pixel."""

from __future__ import annotations

import keras
from keras import ops

from vt_edu.layers._common import check_shape, initializer_for
from vt_edu.layers.softmax import float32_matmul, softmax_float32
from vt_edu.layers.spatial import flatten_spatial, unflatten_spatial


@keras.saving.register_keras_serializable(package="vt_edu")
class Projector(keras.layers.Layer):
    """Projector (Eq. 5): ``X_out = X_in + softmax_L((X_in W_Q)(T W_K)ᵀ) T``.

    Each pixel is a query over the ``L`` tokens: the softmax runs over the token axis,
    so every pixel adds a convex combination of the tokens to its features. Unlike
    the tokenizer's softmax over pixels, this attention is ``(B, H*W, L)`` with
    *rows* summing to 1.

    Variant (arXiv, ``use_value_projection=True``): ``... softmax(...) T W_V`` with
    ``W_V`` of shape ``(C_T, C)``. It is required when the token width ``C_T``
    differs from the feature map's ``C`` (``ValueError`` at build otherwise), because
    tokens must be added to pixels.

    Args:
        use_value_projection: learn ``W_V`` ``(C_T, C)``.
        kernel_initializer: initializer of ``w_q``, ``w_k``, ``w_v``.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        feature_map: ``X_in``, ``(B, H, W, C)``.
        tokens: ``T``, ``(B, L, C_T)``.
        return_attention: also return the attention.

    Returns:
        ``X_out`` ``(B, H, W, C)``; with ``return_attention=True`` the tuple
        ``(feature_map_out, attention)``, attention ``(B, H*W, L)`` with rows summing
        to 1 over ``L``.

    Weights:
        ``w_q``: ``W_Q``, ``(C, C)``. ``w_k``: ``W_K``, ``(C_T, C)``. ``w_v``:
        ``(C_T, C)`` or ``None``.
    """

    def __init__(
        self, use_value_projection=False, kernel_initializer="glorot_uniform", **kwargs
    ):
        super().__init__(**kwargs)
        self.use_value_projection = bool(use_value_projection)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, feature_map_shape, tokens_shape):
        channels = check_shape("Projector", "feature_map", feature_map_shape, 4, "(B, H, W, C)")
        token_channels = check_shape("Projector", "tokens", tokens_shape, 3, "(B, L, C_T)")
        if token_channels != channels and not self.use_value_projection:
            raise ValueError(
                f"Projector: tokens have {token_channels} channels but the feature map "
                f"has {channels}; tokens are added to pixels, so pass "
                "use_value_projection=True to learn W_V of shape (C_T, C)."
            )
        def add(name, shape, autocast=True):
            return self.add_weight(
                name=name,
                shape=shape,
                initializer=initializer_for(self.kernel_initializer, name),
                autocast=autocast,
            )

        # W_Q and W_K make logits: kept float32 (see vt_edu.layers.softmax).
        self.w_q = add("w_q", (channels, channels), autocast=False)
        self.w_k = add("w_k", (token_channels, channels), autocast=False)
        self.w_v = None
        if self.use_value_projection:
            self.w_v = add("w_v", (token_channels, channels))

    def call(self, feature_map, tokens, return_attention=False):
        x, size = flatten_spatial(feature_map)  # X_in: (B, H*W, C)
        # Logits in float32, the attention in x's dtype (see vt_edu.layers.softmax).
        queries = float32_matmul(x, self.w_q)  # X_in W_Q: (B, H*W, C)
        keys = float32_matmul(tokens, self.w_k)  # T W_K: (B, L, C)
        # softmax_L((X_in W_Q)(T W_K)ᵀ): (B, H*W, L), normalised over tokens (last axis).
        logits = ops.matmul(queries, ops.swapaxes(keys, 1, 2))
        attention = softmax_float32(logits, axis=-1, dtype=x.dtype)
        values = tokens if self.w_v is None else ops.matmul(tokens, self.w_v)  # T [W_V]
        out = x + ops.matmul(attention, values)  # X_out = X_in + A T: (B, H*W, C)
        out = unflatten_spatial(out, size)  # (B, H, W, C)
        return (out, attention) if return_attention else out

    def get_config(self):
        config = super().get_config()
        config.update(
            use_value_projection=self.use_value_projection,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
