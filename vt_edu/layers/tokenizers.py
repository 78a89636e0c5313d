"""Tokenizers: from a feature map ``X`` (``H*W`` pixels) to ``L`` visual tokens.

All three tokenizers share one idea: a spatial attention map ``A`` of shape
``(B, H*W, L)`` whose columns sum to 1 over the pixels, and tokens ``T = Aᵀ X``, i.e.
every token is a weighted average of pixels. They differ only in where ``A`` comes
from:

* :class:`FilterTokenizer` (Eq. 1): a learned 1x1 convolution ``W_A`` scores every
  pixel for every token.
* :class:`RecurrentTokenizer` (Eq. 2): the scoring filters are computed from the
  previous module's tokens, so later modules look for what earlier ones found.
* :class:`PoolingTokenizer` (the paper's ablation baseline): ``A`` is fixed, uniform
  over the cells of a ``√L x √L`` grid, i.e. average pooling.

Value projection (arXiv variants, ``use_value_projection=True``): tokens are
``T = Aᵀ X W_V`` with ``W_V`` of shape ``(C, C_T)``, which is what lets the token width
``C_T`` differ from ``C``. The ICCV model has no ``W_V`` and ``C_T = C``.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from vt_edu.layers._common import (
    check_positive_int,
    check_shape,
    initializer_for,
    resolve_token_channels,
)
from vt_edu.layers.softmax import float32_matmul, softmax_float32
from vt_edu.layers.spatial import flatten_spatial
from vt_edu.names import DEFAULT_NUM_TOKENS


def tokens_from_attention(attention, x, w_v=None):
    """``T = Aᵀ X`` (or ``Aᵀ X W_V``): each token is an ``A``-weighted average of pixels.

    Args:
        attention: ``(B, H*W, L)``, columns summing to 1 over ``H*W``.
        x: the flattened feature map, ``(B, H*W, C)``.
        w_v: optional value projection ``(C, C_T)``.

    Returns:
        Tokens ``(B, L, C_T)`` (``C_T = C`` without ``w_v``).
    """
    tokens = ops.matmul(ops.swapaxes(attention, 1, 2), x)  # T = Aᵀ X: (B, L, C)
    if w_v is not None:
        # (Aᵀ X) W_V = Aᵀ (X W_V); projecting L tokens is cheaper than H*W pixels.
        tokens = ops.matmul(tokens, w_v)  # (B, L, C_T)
    return tokens


class _ProjectingTokenizer(keras.layers.Layer):
    """Options shared by the learned tokenizers: token width and value projection."""

    def __init__(
        self,
        token_channels=None,
        use_value_projection=False,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.token_channels = check_positive_int(
            name, "token_channels", token_channels, allow_none=True
        )
        self.use_value_projection = bool(use_value_projection)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _add_value_projection(self, channels: int):
        """Create ``w_v`` ``(C, C_T)`` if asked for; returns ``C_T``."""
        token_channels = resolve_token_channels(
            type(self).__name__, channels, self.token_channels, self.use_value_projection
        )
        self.w_v = None
        if self.use_value_projection:
            self.w_v = self.add_weight(
                name="w_v",
                shape=(channels, token_channels),
                initializer=initializer_for(self.kernel_initializer, "w_v"),
            )
        return token_channels

    def get_config(self):
        config = super().get_config()
        config.update(
            token_channels=self.token_channels,
            use_value_projection=self.use_value_projection,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="vt_edu")
class FilterTokenizer(_ProjectingTokenizer):
    """Filter-based tokenizer (Eq. 1): ``T = softmax_HW(X W_A)ᵀ X``.

    A 1x1 convolution without bias, ``W_A`` of shape ``(C, L)``, gives each pixel one
    score per token. The softmax runs over the ``H*W`` pixels (not over the tokens), so
    column ``l`` of ``A`` is a distribution over the image and token ``l`` is the
    ``A[:, l]``-weighted average of the pixel features: a "semantic group" of pixels.

    Args:
        num_tokens: ``L``, the number of tokens.
        token_channels: ``C_T``. ``None`` (default) means ``C``. Any other width
            requires ``use_value_projection=True`` (``ValueError`` at build).
        use_value_projection: arXiv variant; tokens are ``Aᵀ X W_V`` with a learned
            ``W_V`` of shape ``(C, C_T)``.
        kernel_initializer: initializer of ``w_a`` and ``w_v``.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Call arguments:
        feature_map: ``(B, H, W, C)``, channels last. ``B``, ``H``, ``W`` may change
            between calls.
        return_attention: also return ``A``.

    Returns:
        Tokens ``(B, L, C_T)``; with ``return_attention=True`` the tuple
        ``(tokens, attention)`` where ``attention`` is ``A``, ``(B, H*W, L)``, each
        column summing to 1 over ``H*W`` (pixels in row-major ``y * W + x`` order).

    Weights:
        ``w_a``: ``W_A``, ``(C, L)``. ``w_v``: ``W_V``, ``(C, C_T)`` or ``None``.
    """

    def __init__(
        self,
        num_tokens=DEFAULT_NUM_TOKENS,
        token_channels=None,
        use_value_projection=False,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(
            token_channels=token_channels,
            use_value_projection=use_value_projection,
            kernel_initializer=kernel_initializer,
            **kwargs,
        )
        self.num_tokens = check_positive_int("FilterTokenizer", "num_tokens", num_tokens)

    def build(self, input_shape):
        channels = check_shape(
            "FilterTokenizer", "feature_map", input_shape, 4, "(B, H, W, C)"
        )
        self.w_a = self.add_weight(
            name="w_a",
            shape=(channels, self.num_tokens),
            initializer=initializer_for(self.kernel_initializer, "w_a"),
            autocast=False,  # makes logits: kept float32 (see vt_edu.layers.softmax)
        )
        self._add_value_projection(channels)

    def call(self, feature_map, return_attention=False):
        x, _ = flatten_spatial(feature_map)  # X: (B, H*W, C)
        # A = softmax_HW(X W_A): scores (B, H*W, L), normalised over pixels (axis 1);
        # logits in float32, A in x's dtype (see vt_edu.layers.softmax).
        attention = softmax_float32(float32_matmul(x, self.w_a), axis=1, dtype=x.dtype)
        tokens = tokens_from_attention(attention, x, self.w_v)  # T = Aᵀ X [W_V]
        return (tokens, attention) if return_attention else tokens

    def get_config(self):
        config = super().get_config()
        config.update(num_tokens=self.num_tokens)
        return config


@keras.saving.register_keras_serializable(package="vt_edu")
class RecurrentTokenizer(_ProjectingTokenizer):
    """Recurrent tokenizer (Eq. 2): filters computed from the previous tokens.

    ``W_R = T_in W_{T→R}`` turns each of the ``L`` incoming tokens into a 1x1 filter
    over the ``C`` channels, then tokens are formed as in Eq. 1:
    ``T = softmax_HW(X W_Rᵀ)ᵀ X``.

    The paper prints ``softmax_HW(X W_R)``; with ``X`` of shape ``(H*W, C)`` and
    ``W_R`` of shape ``(L, C)`` the product only exists as ``X W_Rᵀ`` (``(H*W, L)``),
    so the transpose is written out here.

    Args:
        token_channels: ``C_T`` of the *output* tokens; ``None`` (default) means ``C``.
            Any other width requires ``use_value_projection=True``. The width of the
            *input* tokens is read from ``tokens`` at build time.
        use_value_projection: arXiv variant; tokens are ``Aᵀ X W_V``, ``W_V`` of shape
            ``(C, C_T)``.
        kernel_initializer: initializer of ``w_tr`` and ``w_v``.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        feature_map: ``(B, H, W, C)``.
        tokens: ``T_in``, ``(B, L, C_T_in)``, e.g. the previous VT module's output.
        return_attention: also return ``A``.

    Returns:
        Tokens ``(B, L, C_T)`` (``L`` as in ``tokens``); with
        ``return_attention=True`` the tuple ``(tokens, attention)``, attention
        ``(B, H*W, L)`` with columns summing to 1 over ``H*W``.

    Weights:
        ``w_tr``: ``W_{T→R}``, ``(C_T_in, C)``. ``w_v``: ``(C, C_T)`` or ``None``.
    """

    def build(self, feature_map_shape, tokens_shape):
        channels = check_shape(
            "RecurrentTokenizer", "feature_map", feature_map_shape, 4, "(B, H, W, C)"
        )
        in_width = check_shape(
            "RecurrentTokenizer", "tokens", tokens_shape, 3, "(B, L, C_T)"
        )
        self.w_tr = self.add_weight(
            name="w_tr",
            shape=(in_width, channels),
            initializer=initializer_for(self.kernel_initializer, "w_tr"),
            autocast=False,  # makes logits: kept float32 (see vt_edu.layers.softmax)
        )
        self._add_value_projection(channels)

    def call(self, feature_map, tokens, return_attention=False):
        x, _ = flatten_spatial(feature_map)  # X: (B, H*W, C)
        w_r = float32_matmul(tokens, self.w_tr)  # W_R = T_in W_{T→R}: (B, L, C)
        # A = softmax_HW(X W_Rᵀ): (B, H*W, L), normalised over pixels (axis 1);
        # logits in float32, A in x's dtype (see vt_edu.layers.softmax).
        logits = float32_matmul(x, ops.swapaxes(w_r, 1, 2))
        attention = softmax_float32(logits, axis=1, dtype=x.dtype)
        new_tokens = tokens_from_attention(attention, x, self.w_v)  # T = Aᵀ X [W_V]
        return (new_tokens, attention) if return_attention else new_tokens


def pooling_attention(height: int, width: int, num_tokens: int) -> np.ndarray:
    """The fixed ``A`` of average pooling to a ``√L x √L`` grid, ``(H*W, L)`` float32.

    Pixel ``y * W + x`` belongs to cell ``(y // (H/√L)) * √L + x // (W/√L)`` and gets
    weight ``1 / cell_area`` there, 0 elsewhere; so each column sums to 1.
    """
    grid = math.isqrt(num_tokens)
    cell_h, cell_w = height // grid, width // grid
    rows = np.arange(height)[:, None] // cell_h  # (H, 1) grid row of each pixel row
    cols = np.arange(width)[None, :] // cell_w  # (1, W) grid column of each pixel col
    cell = (rows * grid + cols).reshape(-1)  # (H*W,) token index, row-major
    attention = np.zeros((height * width, num_tokens), dtype=np.float32)
    attention[np.arange(height * width), cell] = 1.0 / (cell_h * cell_w)
    return attention


@keras.saving.register_keras_serializable(package="vt_edu")
class PoolingTokenizer(keras.layers.Layer):
    """Pooling tokenizer: the paper's ablation baseline with a fixed, uniform ``A``.

    Tokens are the feature map average-pooled to a ``√L x √L`` grid and read in
    row-major order. It is written as ``T = Aᵀ X`` with a constant pooling matrix
    ``A`` (see :func:`pooling_attention`) so that it returns an attention map like the
    learned tokenizers and visualisation code works unchanged. It has no weights.

    Args:
        num_tokens: ``L``; must be a perfect square (4, 9, 16, ...), else
            ``ValueError``.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        feature_map: ``(B, H, W, C)``. ``H`` and ``W`` must be known (static) and
            divisible by ``√L``, else ``ValueError``.
        return_attention: also return ``A``.

    Returns:
        Tokens ``(B, L, C)``; with ``return_attention=True`` the tuple
        ``(tokens, attention)``, attention ``(B, H*W, L)`` with ``1 / cell_area`` on
        the pixels of each cell (columns sum to 1 over ``H*W``).
    """

    def __init__(self, num_tokens=DEFAULT_NUM_TOKENS, **kwargs):
        super().__init__(**kwargs)
        self.num_tokens = check_positive_int("PoolingTokenizer", "num_tokens", num_tokens)
        self.grid = math.isqrt(self.num_tokens)
        if self.grid * self.grid != self.num_tokens:
            raise ValueError(
                f"PoolingTokenizer: num_tokens={num_tokens} is not a perfect square; "
                "pooling makes a √L x √L grid of tokens (use 4, 9, 16, 25, ...)."
            )

    def _check_size(self, height, width):
        if not (isinstance(height, int) and isinstance(width, int)):
            raise ValueError(
                "PoolingTokenizer needs a static height and width to build its "
                f"pooling matrix, got H={height}, W={width}."
            )
        if height % self.grid or width % self.grid:
            raise ValueError(
                f"PoolingTokenizer: a {height}x{width} feature map cannot be split into "
                f"a {self.grid}x{self.grid} grid (num_tokens={self.num_tokens}); H and "
                f"W must be divisible by {self.grid}."
            )

    def build(self, input_shape):
        check_shape("PoolingTokenizer", "feature_map", input_shape, 4, "(B, H, W, C)")
        if input_shape[1] is not None and input_shape[2] is not None:
            self._check_size(int(input_shape[1]), int(input_shape[2]))  # fail early

    def call(self, feature_map, return_attention=False):
        x, (height, width) = flatten_spatial(feature_map)  # X: (B, H*W, C)
        self._check_size(height, width)
        pooling = ops.convert_to_tensor(
            pooling_attention(height, width, self.num_tokens), dtype=self.compute_dtype
        )
        # One constant A shared by the batch; broadcast so the output has the shape
        # and the code path of the learned tokenizers.
        attention = ops.broadcast_to(
            pooling, (ops.shape(x)[0], height * width, self.num_tokens)
        )
        tokens = tokens_from_attention(attention, x)  # T = Aᵀ X: (B, L, C)
        return (tokens, attention) if return_attention else tokens

    def get_config(self):
        config = super().get_config()
        config.update(num_tokens=self.num_tokens)
        return config
