"""Argument and shape checks shared by the VT layers.

They exist so that a wrong option fails at construction or build time with a message
that names the layer and the paper's symbols, rather than as a matmul shape error deep
inside a backend.
"""

from __future__ import annotations

import zlib


def initializer_for(initializer, weight_name: str):
    """A copy of ``initializer`` of its own for the weight called ``weight_name``.

    One Keras 3 initializer instance draws the same values on every call (an unseeded
    one fixes its seed when it is made). Shared by all the weights of a layer, it would
    start the transformer with K = Q = F1 = F2 and the projector with W_K = W_V. A copy
    per weight draws independently; a seeded initializer's copy is seeded with the seed
    plus a number derived from the weight's name, so seeded layers stay reproducible.
    """
    config = initializer.get_config()
    if config.get("seed") is not None:
        config["seed"] = int(config["seed"]) + zlib.crc32(weight_name.encode()) % 65536
    return type(initializer).from_config(config)


def check_positive_int(layer: str, name: str, value, allow_none: bool = False):
    """Raise ``ValueError`` unless ``value`` is a positive int (or ``None`` if allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{layer}: `{name}` must be a positive int, got {value!r}.")
    return value


def check_shape(layer: str, name: str, shape, rank: int, layout: str):
    """Check the rank of an input shape and that its channel axis is known.

    Returns:
        The number of channels (the last dimension) as an int.
    """
    if shape is None or len(shape) != rank:
        raise ValueError(
            f"{layer}: `{name}` must have rank {rank} {layout}, got shape {shape}."
        )
    if shape[-1] is None:
        raise ValueError(
            f"{layer}: the channel axis of `{name}` must be known, got shape {shape}."
        )
    return int(shape[-1])


def resolve_token_channels(
    layer: str, channels: int, token_channels, use_value_projection: bool
) -> int:
    """The token width ``C_T`` that a tokenizer produces from ``C`` input channels.

    Rule (the same in every layer): ``token_channels=None`` means ``C_T = C``. A token
    width different from ``C`` needs a value projection ``W_V`` of shape ``(C, C_T)``;
    without one a weighted average of pixels has ``C`` channels and cannot have any
    other width, so we refuse instead of silently adding weights.
    """
    width = channels if token_channels is None else token_channels
    if width != channels and not use_value_projection:
        raise ValueError(
            f"{layer}: token_channels={width} differs from the {channels} channels of "
            "the feature map. Tokens without a value projection are weighted averages "
            "of pixels and have the feature map's width; pass "
            "use_value_projection=True to learn W_V of shape (C, C_T), or leave "
            "token_channels=None."
        )
    return width
