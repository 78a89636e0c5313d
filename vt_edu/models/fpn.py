"""Semantic FPN and the paper's VT-FPN: per-pixel logits from a ResNet-18 pyramid.

``fpn`` is the semantic branch of Panoptic FPN (Kirillov et al., 2019) on ResNet-18;
``vt_fpn`` is the Visual Transformer's FPN (Wu et al., arXiv 2006.03677, Sec. 4), in
which token operations replace the FPN's per-level convolutions. Both return logits
``(B, H, W, num_classes)`` at the input's resolution.

Architecture (64x64 input, ``stem="imagenet"``; channels at ``width=1``)::

    image → ResNet-18 stem (7x7/2 conv + 3x3/2 max pool) → stages 1-4
          C2 16x16x64, C3 8x8x128, C4 4x4x256, C5 2x2x512     (strides 4, 8, 16, 32)
    neck  lateral 1x1 conv of every C_i to N = neck_channels
          top-down: M5 = lateral5, M_i = lateral_i + nearest_up2(M_{i+1})
          fpn:    P_i = 3x3 conv(M_i)                    (N → N, one per level)
          vt_fpn: T_i = filter_tokenizer_i(M_i)          (L tokens of C_T channels per level)
                  T   = transformer(concat(T2, T3, T4, T5))   (ONE transformer, 4L tokens)
                  P_i = projector_i(M_i, T[level i's tokens])
    head  per level: [3x3 conv (→ head_channels) + BN + ReLU (+ 2x bilinear upsampling
          for levels coarser than P2)] repeated until 1/4 of the input (1, 1, 2, 3 times)
          sum of the four → [dropout] → 1x1 conv to the classes → bilinear upsampling x4

What VT-FPN replaces: exactly the four 3x3 output convolutions ``neck_output_p2`` ..
``neck_output_p5`` (N → N channels, each at its level's resolution). They are the
expensive part of the FPN module: 9·HW·N² MACs per level, 9·N² per pixel of P2,
where the map is largest. Each becomes a tokenizer (2·HW·N·L + L·N·C_T), a share of the
one transformer on the 4·L tokens, and a projector (HW·N² + 2·HW·L·N + 2·L·C_T·N). The
laterals, the top-down path and the semantic head are the same layers in both models,
so ``fpn`` and ``vt_fpn`` differ only where the paper changes them.

Choices for 64x64 scenes (the paper segments COCO-stuff and LIP images of ~800 pixels):

* ``stem="imagenet"`` (default): the pyramid's finest level P2 is 16x16 (1/4 of the
  input, as in Panoptic FPN) and the trunk costs about 1/16 of what the CIFAR stem
  would (whose P2 would be the full 64x64). The input side must be divisible by 32
  (the coarsest stride); with ``stem="cifar"`` by 8.
* ``neck_channels`` (default 128 x ``width``): Panoptic FPN uses 256 on ResNet-50, whose
  C2..C5 have 256..2048 channels; ResNet-18's have 64..512, and at 256 the neck alone
  would cost as much as the whole trunk at 64x64. 128 keeps the neck at the width of
  C3. ``head_channels`` (default half the neck) keeps Panoptic FPN's 256 → 128 ratio.
* ``num_tokens`` (default 8 per level, 32 in all): the paper's VT-FPN takes 8 tokens
  from each level. More would not help here: P5 has only 4 pixels and P4 16, and a
  token is a weighted average of its level's pixels.
* ``token_channels`` (default: the neck width ``N``; the paper uses 1024 = 4 x its 256):
  the transformer's cost 4·(4L)·C_T² does not shrink with the image, the convolutions
  it replaces do. On a 16x16 P2 a 4x wider token would make the VT neck cost about as
  much as the convolutions (the paper's saving comes from maps of ~200x300 pixels).
* ``use_projector=False`` is the ablation "no tokens": the head reads the merged maps
  ``M_i`` unchanged, so the model is the FPN without its 3x3 output convolutions (the
  tokenizers and the transformer are then not built at all: nothing would read them).
  Comparing it with ``vt_fpn`` measures what the tokens add; comparing it with ``fpn``
  what the convolutions add.
* ``init="stable"`` (default, as VT-ResNet's): each projector starts as the identity
  (``W_V`` = 0) with near-uniform attention, the transformer's ``F2`` starts at zero, so
  a fresh VT-FPN is the ``use_projector=False`` network plus zero.

Cost at 64x64 (11 classes, MACs per image from :func:`vt_edu.flops.count_macs`):

=====================  ========  ========  ========  ========  ===================
width 1                trunk     neck      head      total     FPN module (neck+head)
=====================  ========  ========  ========  ========  ===================
fpn                    148.0 M   54.07 M   30.56 M   232.7 M   84.62 M
vt_fpn                 148.0 M   14.83 M   30.56 M   193.4 M   45.38 M
vt_fpn, no projector   148.0 M    3.93 M   30.56 M   182.5 M   34.49 M
=====================  ========  ========  ========  ========  ===================

VT-FPN's neck is 3.6x cheaper than the FPN's (2.7x at ``width=0.25``), the FPN module
with the semantic head 1.9x (1.7x) and the whole network 1.20x (1.15x). The paper
reports 6.4x for the FPN module and 1.4x in total on images of ~800 pixels: here the
maps are small (P2 has 256 pixels), so the part of a token operation that does not
shrink with the map (the transformer, and each projector's ``X W_Q``, a 1x1
convolution) weighs more, and the unchanged trunk and head take a larger share.

Layer names encode the part for :func:`vt_edu.flops.count_macs`'s stages: ``stem_*`` and
``stage1_*`` .. ``stage4_*`` (the trunk), ``neck_*`` (laterals, top-down path, output
convolutions), ``vt_*`` (tokenizers, transformer, projectors) and ``head_*``.
:func:`vt_edu.flops.fpn_module_macs` totals everything after the trunk.
"""

from __future__ import annotations

import keras

from vt_edu.layers import FilterTokenizer, Projector, TokenTransformer
from vt_edu.models.blocks import TokenRange
from vt_edu.models.resnet import scaled, resnet_trunk
from vt_edu.models.vt_resnet import INITS, stabilise_projector, stabilise_transformer

#: The pyramid's levels, finest first: P_i has stride 2**i with the ImageNet stem.
LEVELS = ("p2", "p3", "p4", "p5")
#: Total downsampling of the coarsest level (C5) for each stem.
COARSEST_STRIDE = {"imagenet": 32, "cifar": 8}
#: The paper's VT-FPN: 8 tokens from each level.
FPN_NUM_TOKENS = 8


def _batch_norm(name):
    # The trunk's settings (PyTorch's momentum 0.1 = Keras' 0.9, epsilon 1e-5).
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def check_input_size(input_shape, stem: str, where: str) -> None:
    """Raise ``ValueError`` unless every level of the pyramid has a whole size.

    The top-down path adds a 2x upsampled coarser map to each finer one, so the input
    side must be divisible by the coarsest stride (32 with the ImageNet stem, 8 with the
    CIFAR stem).
    """
    stride = COARSEST_STRIDE[stem]
    height, width = input_shape[0], input_shape[1]
    if height % stride or width % stride:
        raise ValueError(
            f"{where}: a {height}x{width} input does not divide into the pyramid's strides; with "
            f"stem={stem!r} both sides must be multiples of {stride} (e.g. 64)."
        )


def fpn_merge(features, channels: int):
    """Lateral 1x1 convolutions and the top-down path: the merged maps ``M2`` .. ``M5``.

    Args:
        features: the trunk's stage outputs ``[C2, C3, C4, C5]``, finest first.
        channels: ``N``, the neck width.

    Returns:
        ``[M2, M3, M4, M5]``, each ``(B, H_i, W_i, N)``.
    """
    laterals = [
        keras.layers.Conv2D(channels, 1, name=f"neck_lateral_{level}")(c) for level, c in zip(LEVELS, features)
    ]
    merged = [laterals[-1]]
    for level, lateral in zip(reversed(LEVELS[:-1]), reversed(laterals[:-1])):
        coarser = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"neck_up_{level}")(merged[0])
        merged.insert(0, keras.layers.Add(name=f"neck_merge_{level}")([lateral, coarser]))
    return merged


def semantic_head(levels, channels: int, num_classes: int, dropout: float, upsample: int):
    """Panoptic FPN's semantic branch: per-level conv stacks to the finest level, summed.

    Level ``i`` (0 = finest) gets ``max(1, i)`` stages of 3x3 conv + BN + ReLU, each but
    the finest level's followed by 2x bilinear upsampling, so all reach the finest size.

    Returns:
        float32 logits ``(B, upsample·H_finest, upsample·W_finest, num_classes)``.
    """
    branches = []
    for index, (level, x) in enumerate(zip(LEVELS, levels)):
        for step in range(1, max(1, index) + 1):
            name = f"head_{level}_{step}"
            x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
            x = _batch_norm(f"{name}_bn")(x)
            x = keras.layers.ReLU(name=f"{name}_relu")(x)
            if index > 0:
                # float32 also under mixed precision: XLA refuses TensorFlow's gradient of a
                # float16 bilinear resize (it returns float32 into a float16 graph).
                x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_up", dtype="float32")(x)
        branches.append(x)
    x = keras.layers.Add(name="head_sum")(branches)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    # float32 logits also under mixed precision (as the classifiers' heads).
    x = keras.layers.Conv2D(num_classes, 1, name="head_logits", dtype="float32")(x)
    return keras.layers.UpSampling2D(upsample, interpolation="bilinear", name="head_upsample", dtype="float32")(x)


class PyramidTokens:
    """VT-FPN's token part: a filter tokenizer and a projector per level, one transformer.

    Like :class:`~vt_edu.layers.VTModule` for VT-ResNet, this object holds the parts and
    :meth:`forward_features` is their only wiring: the builder applies it to the symbolic
    merged maps (so the parts become the model's layers ``vt_p2_tokenizer``,
    ``vt_transformer``, ``vt_p2_projector``, ...) and :func:`vt_edu.models.vt_fpn_attention`
    applies it, with ``return_attention=True``, to the same parts recovered from a model
    by :meth:`from_model`.

    Args:
        tokenizers: one :class:`~vt_edu.layers.FilterTokenizer` per level, finest first.
        transformer: the shared :class:`~vt_edu.layers.TokenTransformer`.
        projectors: one :class:`~vt_edu.layers.Projector` per level, finest first.
    """

    def __init__(self, tokenizers, transformer, projectors):
        if len(tokenizers) != len(projectors) or not tokenizers:
            raise ValueError(
                f"PyramidTokens: need one tokenizer and one projector per level, got "
                f"{len(tokenizers)} and {len(projectors)}."
            )
        self.tokenizers, self.transformer, self.projectors = list(tokenizers), transformer, list(projectors)
        self.levels = LEVELS[: len(tokenizers)]

    @classmethod
    def create(cls, num_tokens: int, token_channels: int, num_levels: int = len(LEVELS)):
        """New, unbuilt parts: ``num_tokens`` tokens of ``token_channels`` per level.

        Tokenizers and projectors have value projections ``W_V`` (so the token width
        may differ from the neck's, and ``init="stable"`` can start each projector as the
        identity); the transformer has none, as in VT-ResNet (Eq. 3 mixes the tokens).
        """
        levels = LEVELS[:num_levels]
        return cls(
            [FilterTokenizer(num_tokens, token_channels, use_value_projection=True, name=f"vt_{level}_tokenizer")
             for level in levels],
            TokenTransformer(name="vt_transformer"),
            [Projector(use_value_projection=True, name=f"vt_{level}_projector") for level in levels],
        )

    @classmethod
    def from_model(cls, model):
        """The parts of a model from ``create_model("vt_fpn", ...)``, recognised by type.

        Levels are ordered by the size of the map each part reads, finest first.

        Raises:
            ValueError: the model has no VT parts (e.g. ``use_projector=False``).
        """
        tokenizers = [layer for layer in model.layers if isinstance(layer, FilterTokenizer)]
        transformers = [layer for layer in model.layers if isinstance(layer, TokenTransformer)]
        projectors = [layer for layer in model.layers if isinstance(layer, Projector)]
        if not tokenizers or len(transformers) != 1:
            raise ValueError(
                f"model {model.name!r} has no VT-FPN tokens (a vt_fpn built with use_projector=True has "
                f"one tokenizer and one projector per level and one transformer; found {len(tokenizers)} "
                f"tokenizers and {len(transformers)} transformers)."
            )

        def pixels(shape):
            return -int(shape[1]) * int(shape[2])  # finest (largest) map first

        tokenizers.sort(key=lambda layer: pixels(layer.input.shape))
        projectors.sort(key=lambda layer: pixels(layer.output.shape))
        return cls(tokenizers, transformers[0], projectors)

    def token_ranges(self) -> dict:
        """``{level: (start, stop)}``: each level's tokens in the transformer's sequence."""
        ranges, start = {}, 0
        for level, tokenizer in zip(self.levels, self.tokenizers):
            ranges[level] = (start, start + tokenizer.num_tokens)
            start += tokenizer.num_tokens
        return ranges

    def forward_features(self, maps, return_attention: bool = False) -> dict:
        """Tokenize every level, transform all tokens together, project each level's back.

        Args:
            maps: the merged maps ``[M2, .., M5]`` (tensors or symbolic tensors).
            return_attention: also return the attention maps.

        Returns:
            A dict: ``"maps_out"`` (the projected maps, finest first), ``"tokens_out"``
            ``(B, 4L, C_T)``; with ``return_attention`` also ``"tokenizer"`` and
            ``"projector"`` (lists, finest first, ``(B, H_i*W_i, L)``) and
            ``"transformer"`` ``(B, 4L, 4L)``.
        """
        found = {"tokenizer": [], "projector": [], "maps_out": []}
        tokens = []
        for tokenizer, x in zip(self.tokenizers, maps):
            if return_attention:
                t, attention = tokenizer(x, return_attention=True)
                found["tokenizer"].append(attention)
            else:
                t = tokenizer(x)
            tokens.append(t)
        sequence = keras.layers.Concatenate(axis=1, name="vt_tokens")(tokens)
        if return_attention:
            sequence, found["transformer"] = self.transformer(sequence, return_attention=True)
        else:
            sequence = self.transformer(sequence)
        found["tokens_out"] = sequence
        for (level, (start, stop)), projector, x in zip(self.token_ranges().items(), self.projectors, maps):
            level_tokens = TokenRange(start, stop, name=f"vt_{level}_tokens")(sequence)
            if return_attention:
                x, attention = projector(x, level_tokens, return_attention=True)
                found["projector"].append(attention)
            else:
                x = projector(x, level_tokens)
            found["maps_out"].append(x)
        if not return_attention:
            del found["tokenizer"], found["projector"]
        return found

    def stabilise(self) -> None:
        """``init="stable"``: projectors start as the identity, attention near uniform."""
        stabilise_transformer(self.transformer)
        for projector in self.projectors:
            stabilise_projector(projector)


def _trunk_levels(inputs, width, stem, stochastic_depth):
    return resnet_trunk(
        inputs, width=width, stem_kind=stem, num_stages=4, stochastic_depth=stochastic_depth, return_stages=True
    )


def build_fpn(
    num_classes,
    input_shape,
    *,
    width: float = 1.0,
    stem: str = "imagenet",
    neck_channels: int | None = None,
    head_channels: int | None = None,
    dropout: float = 0.0,
    stochastic_depth: float = 1.0,
):
    """Build the semantic FPN (Panoptic FPN's semantic branch) on ResNet-18.

    Args:
        num_classes: classes per pixel (including the background).
        input_shape: ``(H, W, C)``; ``H`` and ``W`` multiples of 32 (``stem="imagenet"``)
            or of 8 (``stem="cifar"``).
        width: channel multiplier of the trunk and of the default neck and head widths.
        stem: ``"imagenet"`` (P2 at 1/4 of the input) or ``"cifar"`` (P2 at full size).
        neck_channels: ``N``; ``None`` means 128 x ``width``.
        head_channels: width of the semantic head; ``None`` means ``N / 2``.
        dropout: dropout rate before the 1x1 classifier.
        stochastic_depth: survival probability of the trunk's last block (linear decay).

    Returns:
        A ``keras.Model`` named ``fpn``: ``(B, H, W, C)`` → logits ``(B, H, W, num_classes)``.
    """
    check_input_size(input_shape, stem, "fpn")
    inputs = keras.Input(shape=input_shape, name="image")
    features = _trunk_levels(inputs, width, stem, stochastic_depth)
    neck = neck_channels or scaled(128, width)
    merged = fpn_merge(features, neck)
    levels = [
        keras.layers.Conv2D(neck, 3, padding="same", name=f"neck_output_{level}")(m) for level, m in zip(LEVELS, merged)
    ]
    upsample = input_shape[0] // int(levels[0].shape[1])
    outputs = semantic_head(levels, head_channels or max(1, neck // 2), num_classes, dropout, upsample)
    return keras.Model(inputs, outputs, name="fpn")


def build_vt_fpn(
    num_classes,
    input_shape,
    *,
    width: float = 1.0,
    stem: str = "imagenet",
    neck_channels: int | None = None,
    head_channels: int | None = None,
    num_tokens: int = FPN_NUM_TOKENS,
    token_channels: int | None = None,
    use_projector: bool = True,
    init: str = "stable",
    dropout: float = 0.0,
    stochastic_depth: float = 1.0,
):
    """Build VT-FPN: the semantic FPN whose per-level 3x3 convolutions are token operations.

    Args:
        num_classes, input_shape, width, stem, neck_channels, head_channels, dropout,
            stochastic_depth: as :func:`build_fpn`.
        num_tokens: ``L``, tokens per level (8 in the paper; 4 levels → 4L tokens).
        token_channels: ``C_T``; ``None`` means the neck width ``N``.
        use_projector: ``False`` builds the ablation without tokens (the head reads the
            merged maps; see the module docstring).
        init: ``"stable"`` (default) or ``"paper"`` (plain Glorot), as in VT-ResNet.

    Returns:
        A ``keras.Model`` named ``vt_fpn``: ``(B, H, W, C)`` → logits ``(B, H, W, num_classes)``.
    """
    if init not in INITS:
        raise ValueError(f"vt_fpn: init must be one of {INITS}, got {init!r}.")
    check_input_size(input_shape, stem, "vt_fpn")
    inputs = keras.Input(shape=input_shape, name="image")
    features = _trunk_levels(inputs, width, stem, stochastic_depth)
    neck = neck_channels or scaled(128, width)
    levels = fpn_merge(features, neck)
    if use_projector:
        pyramid = PyramidTokens.create(num_tokens, token_channels or neck, len(levels))
        levels = pyramid.forward_features(levels)["maps_out"]
        if init == "stable":
            pyramid.stabilise()
    upsample = input_shape[0] // int(levels[0].shape[1])
    outputs = semantic_head(levels, head_channels or max(1, neck // 2), num_classes, dropout, upsample)
    return keras.Model(inputs, outputs, name="vt_fpn")
