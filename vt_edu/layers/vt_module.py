"""One VT module: tokenizer → transformer → projector (Fig. 1 of the paper)."""

from __future__ import annotations

import keras

from vt_edu.layers._common import check_positive_int, check_shape
from vt_edu.layers.projector import Projector
from vt_edu.layers.tokenizers import FilterTokenizer, PoolingTokenizer, RecurrentTokenizer
from vt_edu.layers.transformer import NORMS, TokenTransformer

TOKENIZERS = ("filter", "recurrent", "pooling")


@keras.saving.register_keras_serializable(package="vt_edu")
class VTModule(keras.layers.Layer):
    """A Visual Transformer module: tokenize, transform the tokens, project back.

    ::

        T     = tokenizer(X_in [, T_prev])        Eq. 1 / Eq. 2 / pooling
        T_out = transformer(T)                    Eqs. 3-4
        X_out = X_in + softmax_L(...) T_out       Eq. 5 (or X_in if no projector)

    In VT-ResNet the first module uses the filter tokenizer and the later ones the
    recurrent tokenizer fed with the previous module's ``T_out``.

    Args:
        num_tokens: ``L`` for the filter and pooling tokenizers. Ignored by the
            recurrent tokenizer, whose ``L`` is that of the incoming tokens.
        tokenizer: ``"filter"`` (Eq. 1), ``"recurrent"`` (Eq. 2) or ``"pooling"``.
        token_channels: ``C_T``; ``None`` means ``C``. Another width needs
            ``use_value_projection=True``; the pooling tokenizer cannot change width.
        num_heads, scale_attention, norm: passed to :class:`TokenTransformer`.
        use_value_projection: value projections in the tokenizer (not pooling), the
            transformer and the projector (the arXiv variant).
        use_projector: if ``False`` the feature map passes through unchanged and only
            the tokens are computed (e.g. the last module before a token classifier).
        kernel_initializer: initializer of every projection matrix.
        **kwargs: base ``keras.layers.Layer`` arguments; the dtype policy is passed
            on to the sub-layers.

    Call arguments:
        feature_map: ``(B, H, W, C)``.
        tokens: ``(B, L, C_T_in)``; required by the recurrent tokenizer (``ValueError``
            if missing) and refused by the others (``ValueError``) so a mis-wired
            chain fails loudly.
        return_attention: also return the attention maps.

    Returns:
        ``(feature_map_out, tokens_out)``: ``(B, H, W, C)`` and ``(B, L, C_T)``.
        With ``return_attention=True`` a third element, a dict with
        ``"tokenizer"``: ``(B, H*W, L)`` (columns sum to 1 over ``H*W``),
        ``"transformer"``: ``(B, L, L)`` or ``(B, num_heads, L, L)`` (rows sum to 1),
        and, when ``use_projector``, ``"projector"``: ``(B, H*W, L)`` (rows sum to 1
        over ``L``; the key is absent without a projector).

    Sub-layers:
        ``tokenizer``, ``transformer``, ``projector`` (``None`` without projector),
        e.g. ``module.tokenizer.w_a`` or ``module.transformer.k``.
    """

    def __init__(
        self,
        num_tokens=16,
        tokenizer="filter",
        token_channels=None,
        num_heads=1,
        scale_attention=False,
        use_value_projection=False,
        norm=None,
        use_projector=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if tokenizer not in TOKENIZERS:
            raise ValueError(
                f"VTModule: tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}."
            )
        if norm not in NORMS:
            raise ValueError(f"VTModule: norm must be one of {NORMS}, got {norm!r}.")
        self.num_tokens = check_positive_int("VTModule", "num_tokens", num_tokens)
        self.tokenizer_kind = tokenizer
        self.token_channels = check_positive_int(
            "VTModule", "token_channels", token_channels, allow_none=True
        )
        self.num_heads = num_heads
        self.scale_attention = bool(scale_attention)
        self.use_value_projection = bool(use_value_projection)
        self.norm = norm
        self.use_projector = bool(use_projector)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        init = keras.initializers.serialize(self.kernel_initializer)
        common = dict(dtype=self.dtype_policy, kernel_initializer=init)
        projection = dict(use_value_projection=self.use_value_projection, **common)
        if tokenizer == "filter":
            self.tokenizer = FilterTokenizer(
                num_tokens, token_channels, name="tokenizer", **projection
            )
        elif tokenizer == "recurrent":
            self.tokenizer = RecurrentTokenizer(
                token_channels, name="tokenizer", **projection
            )
        else:
            self.tokenizer = PoolingTokenizer(
                num_tokens, name="tokenizer", dtype=self.dtype_policy
            )
        self.transformer = TokenTransformer(
            num_heads, scale_attention, norm=norm, name="transformer", **projection
        )
        self.projector = (
            Projector(name="projector", **projection) if self.use_projector else None
        )

    def build(self, feature_map_shape, tokens_shape=None):
        channels = check_shape("VTModule", "feature_map", feature_map_shape, 4, "(B, H, W, C)")
        batch = feature_map_shape[0]
        if self.tokenizer_kind == "recurrent":
            if tokens_shape is None:
                raise ValueError(
                    "VTModule(tokenizer='recurrent') needs the previous module's tokens: "
                    "call it as module(feature_map, tokens)."
                )
            self.tokenizer.build(feature_map_shape, tokens_shape)
            num_tokens = tokens_shape[1]
        else:
            self.tokenizer.build(feature_map_shape)
            num_tokens = self.num_tokens
        if self.tokenizer_kind == "pooling":
            if self.token_channels not in (None, channels):
                raise ValueError(
                    f"VTModule: the pooling tokenizer keeps the {channels} channels of "
                    f"the feature map; token_channels={self.token_channels} is not "
                    "possible (leave it None)."
                )
            token_channels = channels
        else:
            token_channels = self.token_channels or channels
        token_shape = (batch, num_tokens, token_channels)
        self.transformer.build(token_shape)
        if self.projector is not None:
            self.projector.build(feature_map_shape, token_shape)

    def call(self, feature_map, tokens=None, return_attention=False):
        if self.tokenizer_kind == "recurrent":
            if tokens is None:
                raise ValueError(
                    "VTModule(tokenizer='recurrent') needs the previous module's tokens: "
                    "call it as module(feature_map, tokens)."
                )
            tokens, tokenizer_attention = self.tokenizer(
                feature_map, tokens, return_attention=True
            )
        else:
            if tokens is not None:
                raise ValueError(
                    f"VTModule(tokenizer={self.tokenizer_kind!r}) makes its own tokens "
                    "from the feature map and does not take `tokens`; use "
                    "tokenizer='recurrent' to feed the previous module's tokens."
                )
            tokens, tokenizer_attention = self.tokenizer(feature_map, return_attention=True)
        tokens, transformer_attention = self.transformer(tokens, return_attention=True)
        attention = {"tokenizer": tokenizer_attention, "transformer": transformer_attention}
        if self.projector is not None:
            feature_map, attention["projector"] = self.projector(
                feature_map, tokens, return_attention=True
            )
        if return_attention:
            return feature_map, tokens, attention
        return feature_map, tokens

    def get_config(self):
        config = super().get_config()
        config.update(
            num_tokens=self.num_tokens,
            tokenizer=self.tokenizer_kind,
            token_channels=self.token_channels,
            num_heads=self.num_heads,
            scale_attention=self.scale_attention,
            use_value_projection=self.use_value_projection,
            norm=self.norm,
            use_projector=self.use_projector,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
