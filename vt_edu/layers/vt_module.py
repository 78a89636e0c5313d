"""One VT module: tokenizer → transformer → projector (Fig. 1 of the paper)."""

from __future__ import annotations

import keras

from vt_edu.layers._common import check_positive_int, check_shape
from vt_edu.layers.projector import Projector
from vt_edu.layers.tokenizers import FilterTokenizer, PoolingTokenizer, RecurrentTokenizer
from vt_edu.layers.transformer import NORMS, TokenTransformer
from vt_edu.names import DEFAULT_NUM_TOKENS, check_num_tokens

TOKENIZERS = ("filter", "recurrent", "pooling")
#: Keys of the attention dict, in the order the maps are made.
ATTENTION_KEYS = ("tokenizer", "transformer", "projector")


@keras.saving.register_keras_serializable(package="vt_edu")
class VTModule(keras.layers.Layer):
    """A Visual Transformer module: tokenize, transform the tokens, project back.

    ::

        T     = tokenizer(X_in [, T_prev]) [W_V]  Eq. 1 / Eq. 2 / pooling
        T_out = transformer(T)                    Eqs. 3-4
        X_out = X_in + softmax_L(...) T_out       Eq. 5 (or X_in if no projector)

    In VT-ResNet the first module uses the filter tokenizer and the later ones the
    recurrent tokenizer fed with the previous module's ``T_out``. One set of keyword
    arguments configures all the parts, as ``keras.layers.MultiHeadAttention`` does
    for its projections, and :meth:`forward_features` is the only place where the
    parts are wired together: ``call`` uses it, and
    :func:`vt_edu.models.vt_resnet.build_vt_resnet18` applies it to symbolic tensors
    so that the parts are the model's own layers (``vt_m1_tokenizer``, ...).

    Args:
        num_tokens: ``L`` for the filter and pooling tokenizers. Ignored by the
            recurrent tokenizer, whose ``L`` is that of the incoming tokens.
        tokenizer: ``"filter"`` (Eq. 1), ``"recurrent"`` (Eq. 2) or ``"pooling"``.
        token_channels: ``C_T``; ``None`` means ``C``. Another width needs
            ``use_value_projection=True``.
        num_heads, scale_attention, norm, cosine_attention: passed to
            :class:`TokenTransformer`.
        use_value_projection: value projections ``W_V`` in the tokenizer (not
            pooling, see below), the transformer and the projector (the arXiv variant).
        tokenizer_value_projection: ``W_V`` ``(C, C_T)`` on the tokens; ``None`` means
            ``use_value_projection`` for the filter and recurrent tokenizers and
            ``False`` for pooling. ``True`` with pooling adds a bias-free ``Dense(C_T)``
            on the pooled tokens (sub-layer ``value``), so the pooling ablation of
            VT-ResNet changes only how ``A`` is made.
        transformer_value_projection: a ``(C_T, C_T)`` value matrix in the
            transformer; ``None`` means ``use_value_projection``. VT-ResNet uses
            ``False``: Eq. 3 mixes the tokens themselves.
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

    Sub-layers (made in ``build``, in the order they run, as
    ``keras.layers.MultiHeadAttention`` makes its projections, so that a seeded
    model draws the same initial weights as the parts built one after the other):
        ``tokenizer``, ``value`` (pooling with ``use_value_projection`` only, else
        ``None``), ``transformer``, ``projector`` (``None`` without projector),
        named ``{name}_tokenizer`` etc., e.g. ``module.tokenizer.w_a``.
    """

    def __init__(
        self,
        num_tokens=DEFAULT_NUM_TOKENS,
        tokenizer="filter",
        token_channels=None,
        num_heads=1,
        scale_attention=False,
        use_value_projection=False,
        norm=None,
        use_projector=True,
        kernel_initializer="glorot_uniform",
        tokenizer_value_projection=None,
        transformer_value_projection=None,
        cosine_attention=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if tokenizer not in TOKENIZERS:
            raise ValueError(
                f"VTModule: tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}."
            )
        if norm not in NORMS:
            raise ValueError(f"VTModule: norm must be one of {NORMS}, got {norm!r}.")
        self.num_tokens = check_num_tokens(num_tokens, "VTModule")
        self.tokenizer_kind = tokenizer
        self.token_channels = check_positive_int(
            "VTModule", "token_channels", token_channels, allow_none=True
        )
        self.num_heads = num_heads
        self.scale_attention = bool(scale_attention)
        self.cosine_attention = bool(cosine_attention)
        self.use_value_projection = bool(use_value_projection)
        if tokenizer_value_projection is None:
            tokenizer_value_projection = self.use_value_projection and tokenizer != "pooling"
        self.tokenizer_value_projection = bool(tokenizer_value_projection)
        self.transformer_value_projection = (
            self.use_value_projection
            if transformer_value_projection is None
            else bool(transformer_value_projection)
        )
        self.norm = norm
        self.use_projector = bool(use_projector)
        # Kept as given and resolved by each part: making an initializer object here
        # would draw a seed, and change the initial weights of a seeded model.
        self._initializer_spec = (
            kernel_initializer
            if isinstance(kernel_initializer, (str, dict))
            else keras.initializers.serialize(kernel_initializer)
        )
        self.tokenizer = None
        self.value = None
        self.transformer = None
        self.projector = None

    @classmethod
    def from_parts(cls, tokenizer, transformer, projector=None, value=None, name=None):
        """A module around parts that already exist, e.g. those of a VT-ResNet.

        ``build_vt_resnet18`` wires a module's parts into the model as layers of their
        own; this gives them back their module, so that :meth:`forward_features` (and
        its attention maps) runs on the model's own weights.

        Args:
            tokenizer: a built :class:`FilterTokenizer`, :class:`RecurrentTokenizer` or
                :class:`PoolingTokenizer`.
            transformer: a built :class:`TokenTransformer`.
            projector: a built :class:`Projector`, or ``None``.
            value: the pooling tokenizer's ``W_V`` (a ``Dense``), or ``None``.
            name: the module's name.

        Returns:
            A built ``VTModule`` sharing those layers (and their weights).
        """
        kinds = ((FilterTokenizer, "filter"), (RecurrentTokenizer, "recurrent"), (PoolingTokenizer, "pooling"))
        kind = next((k for layer_type, k in kinds if isinstance(tokenizer, layer_type)), None)
        if kind is None or not isinstance(transformer, TokenTransformer):
            raise ValueError(
                f"VTModule.from_parts: expected a VT tokenizer and a TokenTransformer, got "
                f"{type(tokenizer).__name__} and {type(transformer).__name__}."
            )
        module = cls(
            num_tokens=getattr(tokenizer, "num_tokens", DEFAULT_NUM_TOKENS),
            tokenizer=kind,
            num_heads=transformer.num_heads,
            scale_attention=transformer.scale_attention,
            cosine_attention=transformer.cosine_attention,
            use_value_projection=projector is not None and projector.w_v is not None,
            tokenizer_value_projection=value is not None or getattr(tokenizer, "w_v", None) is not None,
            transformer_value_projection=transformer.w_v is not None,
            norm=transformer.norm,
            use_projector=projector is not None,
            name=name,
        )
        module.tokenizer, module.value = tokenizer, value
        module.transformer, module.projector = transformer, projector
        module.built = True
        return module

    @property
    def kernel_initializer(self):
        """The initializer of the projection matrices (a fresh object)."""
        return keras.initializers.get(self._initializer_spec)

    def _needs_tokens(self, tokens):
        if self.tokenizer_kind == "recurrent" and tokens is None:
            raise ValueError(
                "VTModule(tokenizer='recurrent') needs the previous module's tokens: "
                "call it as module(feature_map, tokens)."
            )
        if self.tokenizer_kind != "recurrent" and tokens is not None:
            raise ValueError(
                f"VTModule(tokenizer={self.tokenizer_kind!r}) makes its own tokens "
                "from the feature map and does not take `tokens`; use "
                "tokenizer='recurrent' to feed the previous module's tokens."
            )

    def build(self, feature_map_shape, tokens_shape=None):
        channels = check_shape("VTModule", "feature_map", feature_map_shape, 4, "(B, H, W, C)")
        if self.tokenizer_kind == "recurrent" and tokens_shape is None:
            self._needs_tokens(None)
        batch = feature_map_shape[0]
        projection = dict(
            dtype=self.dtype_policy,
            kernel_initializer=self._initializer_spec,
            use_value_projection=self.use_value_projection,
        )
        tokenizer_projection = {**projection, "use_value_projection": self.tokenizer_value_projection}
        if self.tokenizer_kind == "pooling":
            token_channels = self.token_channels or channels
            if token_channels != channels and not self.tokenizer_value_projection:
                raise ValueError(
                    f"VTModule: the pooling tokenizer keeps the {channels} channels of "
                    f"the feature map; token_channels={self.token_channels} needs "
                    "tokenizer_value_projection=True (a learned W_V), or leave it None."
                )
            self.tokenizer = PoolingTokenizer(
                self.num_tokens, name=f"{self.name}_tokenizer", dtype=self.dtype_policy
            )
            self.tokenizer.build(feature_map_shape)
            num_tokens = self.num_tokens
            if self.tokenizer_value_projection:
                self.value = keras.layers.Dense(
                    token_channels,
                    use_bias=False,
                    kernel_initializer=self._initializer_spec,
                    dtype=self.dtype_policy,
                    name=f"{self.name}_value",
                )
                self.value.build((batch, num_tokens, channels))
        elif self.tokenizer_kind == "recurrent":
            self.tokenizer = RecurrentTokenizer(
                self.token_channels, name=f"{self.name}_tokenizer", **tokenizer_projection
            )
            self.tokenizer.build(feature_map_shape, tokens_shape)
            num_tokens = tokens_shape[1]
            token_channels = self.token_channels or channels
        else:
            self.tokenizer = FilterTokenizer(
                self.num_tokens, self.token_channels, name=f"{self.name}_tokenizer", **tokenizer_projection
            )
            self.tokenizer.build(feature_map_shape)
            num_tokens = self.num_tokens
            token_channels = self.token_channels or channels
        token_shape = (batch, num_tokens, token_channels)
        self.transformer = TokenTransformer(
            self.num_heads,
            self.scale_attention,
            norm=self.norm,
            cosine_attention=self.cosine_attention,
            name=f"{self.name}_transformer",
            **{**projection, "use_value_projection": self.transformer_value_projection},
        )
        self.transformer.build(token_shape)
        if self.use_projector:
            self.projector = Projector(name=f"{self.name}_projector", **projection)
            self.projector.build(feature_map_shape, token_shape)

    def forward_features(self, feature_map, tokens=None, return_attention=False):
        """Run the parts on ``feature_map`` (and ``tokens``): the module's one wiring.

        Works on tensors and on symbolic ``keras.KerasTensor``s; on the latter the
        parts become nodes of the functional graph being built (how VT-ResNet is made).

        Args:
            feature_map: ``(B, H, W, C)``.
            tokens: the previous module's ``(B, L, C_T_in)``, for the recurrent tokenizer.
            return_attention: also return the attention maps.

        Returns:
            A dict: ``"tokens"`` ``(B, L, C_T)`` (the tokenizer's output, after
            ``value``), ``"tokens_out"`` ``(B, L, C_T)``, ``"feature_map_out"``
            ``(B, H, W, C)`` and, with ``return_attention``, the maps of
            :data:`ATTENTION_KEYS` as described in the class docstring.
        """
        self._needs_tokens(tokens)
        if not self.built:
            shape = tuple(feature_map.shape)
            self.build(shape, None if tokens is None else tuple(tokens.shape))
            self.built = True
        found = {}
        tokenizer_inputs = (feature_map, tokens) if tokens is not None else (feature_map,)
        if return_attention:
            visual_tokens, found["tokenizer"] = self.tokenizer(*tokenizer_inputs, return_attention=True)
        else:
            visual_tokens = self.tokenizer(*tokenizer_inputs)
        if self.value is not None:
            visual_tokens = self.value(visual_tokens)
        found["tokens"] = visual_tokens
        if return_attention:
            tokens_out, found["transformer"] = self.transformer(visual_tokens, return_attention=True)
        else:
            tokens_out = self.transformer(visual_tokens)
        found["tokens_out"] = tokens_out
        if self.projector is None:
            found["feature_map_out"] = feature_map
        elif return_attention:
            feature_map_out, found["projector"] = self.projector(
                feature_map, tokens_out, return_attention=True
            )
            found["feature_map_out"] = feature_map_out
        else:
            found["feature_map_out"] = self.projector(feature_map, tokens_out)
        return found

    def call(self, feature_map, tokens=None, return_attention=False):
        found = self.forward_features(feature_map, tokens, return_attention)
        outputs = (found["feature_map_out"], found["tokens_out"])
        if return_attention:
            return outputs + ({key: found[key] for key in ATTENTION_KEYS if key in found},)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            num_tokens=self.num_tokens,
            tokenizer=self.tokenizer_kind,
            token_channels=self.token_channels,
            num_heads=self.num_heads,
            scale_attention=self.scale_attention,
            cosine_attention=self.cosine_attention,
            use_value_projection=self.use_value_projection,
            tokenizer_value_projection=self.tokenizer_value_projection,
            transformer_value_projection=self.transformer_value_projection,
            norm=self.norm,
            use_projector=self.use_projector,
            # As given (a name or a serialized initializer): making the object to
            # serialize it would draw a seed, so saving would change later draws.
            kernel_initializer=self._initializer_spec,
        )
        return config
