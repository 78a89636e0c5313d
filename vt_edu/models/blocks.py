"""Small serializable layers shared by the registry models.

* :class:`StochasticDepth`: drop a whole residual branch per example (Huang et al.,
  2016), the regulariser of the paper's advanced recipe.
* :class:`ClassToken` and :class:`PositionEmbedding`: the two learned tensors of a
  ViT that are not ordinary ``Dense``/``Conv2D`` kernels; :class:`TokenPool` reduces
  a ViT's tokens to one vector.
* :class:`TokenRange`: one pyramid level's tokens out of VT-FPN's concatenated sequence.

All of them use ``keras.ops`` only, so they run on every Keras backend, and are
registered under the ``vt_edu`` package so ``.keras`` files reload without
``custom_objects``.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vt_edu")
class StochasticDepth(keras.layers.Layer):
    """Keep a residual branch with probability ``survival_probability``, per example.

    In training, each example's branch output is either zeroed (probability
    ``1 - p``) or scaled by ``1 / p`` ("inverted" scaling, as in dropout), so at
    inference the layer is the identity and needs no rescaling. Put it on the residual
    branch, right before the addition: ``x + StochasticDepth(p)(f(x))``.

    Args:
        survival_probability: ``p`` in ``(0, 1]``; ``1`` disables the layer.
        seed: optional int for the random draws.
    """

    def __init__(self, survival_probability: float = 1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        p = float(survival_probability)
        if not 0.0 < p <= 1.0:
            raise ValueError(
                f"StochasticDepth: survival_probability must be in (0, 1], got {survival_probability!r}."
            )
        self.survival_probability = p
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training or self.survival_probability >= 1.0:
            return inputs
        rank = len(inputs.shape)
        noise_shape = (ops.shape(inputs)[0],) + (1,) * (rank - 1)
        # keras.random.dropout zeroes with probability `rate` and scales the rest by
        # 1 / (1 - rate): exactly "drop the branch, rescale survivors".
        return keras.random.dropout(
            inputs,
            rate=1.0 - self.survival_probability,
            noise_shape=noise_shape,
            seed=self.seed_generator,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(survival_probability=self.survival_probability, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="vt_edu")
class ClassToken(keras.layers.Layer):
    """Prepend one learned token (ViT's ``[CLS]``) to a sequence ``(B, N, D)`` → ``(B, N+1, D)``."""

    def build(self, input_shape):
        self.token = self.add_weight(
            name="token", shape=(1, 1, int(input_shape[-1])), initializer="zeros"
        )

    def call(self, inputs):
        batch = ops.shape(inputs)[0]
        token = ops.broadcast_to(ops.cast(self.token, inputs.dtype), (batch, 1, ops.shape(inputs)[-1]))
        return ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        n = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], n, input_shape[2])


@keras.saving.register_keras_serializable(package="vt_edu")
class PositionEmbedding(keras.layers.Layer):
    """Add a learned position embedding of shape ``(1, N, D)`` to a sequence ``(B, N, D)``."""

    def __init__(self, initializer_stddev: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.initializer_stddev = float(initializer_stddev)

    def build(self, input_shape):
        if input_shape[1] is None:
            raise ValueError("PositionEmbedding needs a known sequence length (fixed input size).")
        self.embedding = self.add_weight(
            name="embedding",
            shape=(1, int(input_shape[1]), int(input_shape[2])),
            initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_stddev),
        )

    def call(self, inputs):
        return inputs + ops.cast(self.embedding, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(initializer_stddev=self.initializer_stddev)
        return config


@keras.saving.register_keras_serializable(package="vt_edu")
class TokenPool(keras.layers.Layer):
    """Reduce a token sequence ``(B, N, D)`` to one vector ``(B, D)``.

    Args:
        mode: ``"cls"`` takes token 0 (the class token); ``"mean"`` averages all tokens.
    """

    def __init__(self, mode: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("cls", "mean"):
            raise ValueError(f"TokenPool: mode must be 'cls' or 'mean', got {mode!r}.")
        self.mode = mode

    def call(self, inputs):
        if self.mode == "cls":
            return inputs[:, 0]
        return ops.mean(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode)
        return config


@keras.saving.register_keras_serializable(package="vt_edu")
class TokenRange(keras.layers.Layer):
    """Tokens ``start`` to ``stop - 1`` of a sequence: ``(B, N, D)`` → ``(B, stop - start, D)``.

    VT-FPN concatenates the tokens of all pyramid levels for one transformer; this
    layer gives each level its own tokens back.

    Args:
        start: index of the first token kept (>= 0).
        stop: one past the last token kept (> ``start``).
    """

    def __init__(self, start: int, stop: int, **kwargs):
        super().__init__(**kwargs)
        if isinstance(start, bool) or isinstance(stop, bool) or not (0 <= int(start) < int(stop)):
            raise ValueError(f"TokenRange: need 0 <= start < stop, got start={start!r}, stop={stop!r}.")
        self.start, self.stop = int(start), int(stop)

    def call(self, inputs):
        return inputs[:, self.start : self.stop]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.stop - self.start, input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(start=self.start, stop=self.stop)
        return config
