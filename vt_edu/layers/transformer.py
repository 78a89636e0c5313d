"""The token transformer (Eqs. 3-4): self-attention among the ``L`` tokens.

The ICCV model is deliberately minimal compared with the standard transformer
(Vaswani et al.): one head, no value projection, no ``1/√d`` scaling, no LayerNorm, no
positional encoding and a feed-forward net of width ``C_T`` (no expansion) without
biases. Each of these is an option here so that chapters can switch them on one at a
time; the defaults are the ICCV layer.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from vt_edu.layers._common import check_positive_int, check_shape, initializer_for
from vt_edu.layers.softmax import float32_matmul, softmax_float32

#: LayerNorm epsilon of the ``norm="pre"/"post"`` variants (PyTorch's default; Keras'
#: own default is 1e-3). :func:`vt_edu.reference.layer_norm` uses the same value.
LAYER_NORM_EPSILON = 1e-5

NORMS = (None, "pre", "post")
#: ``cosine_attention``: starting logit scale (Swin Transformer V2's) and its ceiling. The
#: scale multiplies cosines in [-1, 1], so it alone sets how sharp attention can get.
INITIAL_LOGIT_SCALE = 10.0
MAX_LOGIT_SCALE = 100.0


@keras.saving.register_keras_serializable(package="vt_edu")
class TokenTransformer(keras.layers.Layer):
    """Transformer over visual tokens (Eqs. 3-4).

    ICCV form (the defaults)::

        T'_out = T_in + softmax_L((T_in K)(T_in Q)ᵀ) T_in         (Eq. 3)
        T_out  = T'_out + relu(T'_out F1) F2                        (Eq. 4)

    with ``K, Q, F1, F2`` of shape ``(C_T, C_T)``. The softmax runs over the last
    (key) axis: row ``i`` of the ``L x L`` attention matrix says how token ``i``
    mixes all tokens. Note the paper's naming: the rows come from ``T K`` and the
    columns from ``T Q``, i.e. its ``K`` sits where the standard transformer puts
    the query. We keep the paper's symbols.

    There is no positional encoding, so the layer is permutation-equivariant: permuting
    the input tokens permutes the output tokens the same way.

    Variants (arXiv versions / standard transformer):

    * ``use_value_projection``: ``softmax(...) T_in W_V`` instead of ``... T_in``.
    * ``scale_attention``: logits divided by ``√d`` with ``d = C_T / num_heads``.
    * ``cosine_attention``: logits ``s · cos(T K, T Q)``, the cosine of each row of
      ``T K`` with each row of ``T Q`` times a learned scale ``s`` per head (Swin
      Transformer V2's scaled cosine attention), ``s = exp(log_logit_scale)`` starting at
      :data:`INITIAL_LOGIT_SCALE` and capped at :data:`MAX_LOGIT_SCALE`. Plain logits are a
      product of two learned matrices, so small ``K`` and ``Q`` make their gradients small
      too and attention near uniform stays uniform; cosines do not depend on the size of
      ``K`` and ``Q``, and ``s`` sets the sharpness directly.
    * ``num_heads = h > 1``: the columns of ``T K``, ``T Q`` and of the values are
      cut into ``h`` consecutive slices of width ``d``; each head attends with its
      own slice and the ``h`` results are concatenated back to ``C_T`` channels.
      There is no output projection: ``F1``/``F2`` right after mix the channels
      of all heads anyway, and without one ``num_heads=1`` stays exactly Eq. 3.
    * ``norm="pre"``: ``T' = T + Attn(LN1(T))``, ``T_out = T' + FFN(LN2(T'))``.
      ``norm="post"``: ``T' = LN1(T + Attn(T))``, ``T_out = LN2(T' + FFN(T'))``.
      LayerNorm over channels with ``epsilon=1e-5`` (:data:`LAYER_NORM_EPSILON`).

    Args:
        num_heads: number of heads; must divide ``C_T`` (``ValueError`` at build).
        scale_attention: divide the logits by ``√(C_T / num_heads)``.
        cosine_attention: learned scale times cosines instead of dot products (cannot be
            combined with ``scale_attention``).
        use_value_projection: learn ``W_V`` of shape ``(C_T, C_T)``.
        norm: ``None`` (ICCV), ``"pre"`` or ``"post"``.
        kernel_initializer: initializer of ``k``, ``q``, ``f1``, ``f2``, ``w_v``.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        tokens: ``T_in``, ``(B, L, C_T)``.
        return_attention: also return the attention matrix.

    Returns:
        Tokens ``(B, L, C_T)``; with ``return_attention=True`` the tuple
        ``(tokens, attention)`` where attention is ``(B, L, L)`` when
        ``num_heads == 1`` and ``(B, num_heads, L, L)`` otherwise; rows (the last
        axis) sum to 1.

    Weights:
        ``k``, ``q``, ``f1``, ``f2``: ``(C_T, C_T)``; ``w_v``: ``(C_T, C_T)`` or
        ``None``; ``log_logit_scale``: ``(num_heads,)`` or ``None``; ``norm1``, ``norm2``:
        ``keras.layers.LayerNormalization`` or ``None``.
    """

    def __init__(
        self,
        num_heads=1,
        scale_attention=False,
        use_value_projection=False,
        norm=None,
        cosine_attention=False,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("TokenTransformer", "num_heads", num_heads)
        self.scale_attention = bool(scale_attention)
        self.cosine_attention = bool(cosine_attention)
        if self.scale_attention and self.cosine_attention:
            raise ValueError(
                "TokenTransformer: scale_attention and cosine_attention cannot be combined; "
                "cosine attention learns its own logit scale."
            )
        self.use_value_projection = bool(use_value_projection)
        if norm not in NORMS:
            raise ValueError(
                f"TokenTransformer: norm must be one of {NORMS}, got {norm!r}."
            )
        self.norm = norm
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.log_logit_scale = None  # created in build with cosine_attention
        # Created here (not in build) so Keras tracks them for saving from the start.
        self.norm1 = self.norm2 = None
        if norm is not None:
            self.norm1, self.norm2 = (
                keras.layers.LayerNormalization(
                    epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name=name
                )
                for name in ("norm1", "norm2")
            )

    def _weight(self, name, channels, autocast=True):
        return self.add_weight(
            name=name,
            shape=(channels, channels),
            initializer=initializer_for(self.kernel_initializer, name),
            autocast=autocast,
        )

    def build(self, input_shape):
        channels = check_shape("TokenTransformer", "tokens", input_shape, 3, "(B, L, C_T)")
        if channels % self.num_heads:
            raise ValueError(
                f"TokenTransformer: num_heads={self.num_heads} does not divide the "
                f"{channels} token channels; each head gets C_T / num_heads channels."
            )
        # K and Q make logits: kept float32 (see vt_edu.layers.softmax).
        self.k = self._weight("k", channels, autocast=False)
        self.q = self._weight("q", channels, autocast=False)
        self.f1 = self._weight("f1", channels)
        self.f2 = self._weight("f2", channels)
        self.w_v = self._weight("w_v", channels) if self.use_value_projection else None
        if self.cosine_attention:
            self.log_logit_scale = self.add_weight(
                name="log_logit_scale",
                shape=(self.num_heads,),
                initializer=keras.initializers.Constant(math.log(INITIAL_LOGIT_SCALE)),
                autocast=False,
            )
        if self.norm is not None:
            self.norm1.build(input_shape)
            self.norm2.build(input_shape)

    def _split_heads(self, t):
        """``(B, L, C_T)`` → ``(B, h, L, d)``: head ``j`` gets channels ``j*d:(j+1)*d``."""
        length, channels = ops.shape(t)[1], ops.shape(t)[2]
        t = ops.reshape(t, (-1, length, self.num_heads, channels // self.num_heads))
        return ops.transpose(t, (0, 2, 1, 3))

    def _self_attention(self, tokens):
        """``softmax_L((T K)(T Q)ᵀ) T`` (Eq. 3 without the residual), per head.

        Returns:
            ``(mixed, attention)``: ``(B, L, C_T)`` and ``(B, L, L)`` or
            ``(B, h, L, L)``.
        """
        length, channels = ops.shape(tokens)[1], ops.shape(tokens)[2]
        # Logits in float32, the attention in the tokens' dtype (see vt_edu.layers.softmax).
        rows = self._split_heads(float32_matmul(tokens, self.k))  # T K: (B, h, L, d)
        cols = self._split_heads(float32_matmul(tokens, self.q))  # T Q: (B, h, L, d)
        values = tokens if self.w_v is None else ops.matmul(tokens, self.w_v)  # T [W_V]
        values = self._split_heads(values)  # (B, h, L, d)
        if self.cosine_attention:
            logits = self._cosines(rows, cols)  # s · cos(T K, T Q): (B, h, L, L)
        else:
            logits = ops.matmul(rows, ops.swapaxes(cols, -1, -2))  # (T K)(T Q)ᵀ: (B, h, L, L)
        if self.scale_attention:
            logits = logits * (1.0 / math.sqrt(channels // self.num_heads))  # / √d
        attention = softmax_float32(logits, axis=-1, dtype=tokens.dtype)  # softmax_L over keys
        mixed = ops.matmul(attention, values)  # (B, h, L, d)
        # Concatenate the heads back: (B, h, L, d) → (B, L, h, d) → (B, L, C_T).
        mixed = ops.reshape(ops.transpose(mixed, (0, 2, 1, 3)), (-1, length, channels))
        if self.num_heads == 1:
            attention = ops.squeeze(attention, axis=1)  # the paper's (B, L, L)
        return mixed, attention

    def logit_scale(self):
        """``s = exp(log_logit_scale)`` capped at :data:`MAX_LOGIT_SCALE`, ``(num_heads,)``;
        ``None`` without ``cosine_attention``."""
        if self.log_logit_scale is None:
            return None
        return ops.exp(ops.minimum(self.log_logit_scale, math.log(MAX_LOGIT_SCALE)))

    def _cosines(self, rows, cols):
        """``s · cos``: rows of ``T K`` against rows of ``T Q``, per head, ``(B, h, L, L)``."""
        rows = rows * ops.rsqrt(ops.sum(ops.square(rows), axis=-1, keepdims=True) + 1e-12)
        cols = cols * ops.rsqrt(ops.sum(ops.square(cols), axis=-1, keepdims=True) + 1e-12)
        cosines = ops.matmul(rows, ops.swapaxes(cols, -1, -2))
        return cosines * ops.reshape(self.logit_scale(), (1, self.num_heads, 1, 1))

    def _feed_forward(self, tokens):
        """``relu(T F1) F2``: no biases, no width expansion (Eq. 4)."""
        return ops.matmul(ops.relu(ops.matmul(tokens, self.f1)), self.f2)

    def call(self, tokens, return_attention=False):
        pre, post = self.norm == "pre", self.norm == "post"
        mixed, attention = self._self_attention(self.norm1(tokens) if pre else tokens)
        hidden = tokens + mixed  # Eq. 3: T'_out = T_in + softmax_L(...) T_in
        if post:
            hidden = self.norm1(hidden)
        out = hidden + self._feed_forward(self.norm2(hidden) if pre else hidden)  # Eq. 4
        if post:
            out = self.norm2(out)
        return (out, attention) if return_attention else out

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            scale_attention=self.scale_attention,
            use_value_projection=self.use_value_projection,
            norm=self.norm,
            cosine_attention=self.cosine_attention,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
