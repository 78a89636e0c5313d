"""ResNet-18 (He et al., 2016) in two input regimes, with a width multiplier.

* ``stem="cifar"`` (default, for 32x32 images): one 3x3 convolution with stride 1 and
  no max pooling, so the four stages see 32, 16, 8 and 4 pixel maps. This is the
  usual CIFAR adaptation; the ImageNet stem would shrink a 32x32 image to 8x8 before
  the first block.
* ``stem="imagenet"`` (for 224x224 images): the original 7x7/2 convolution and 3x3/2
  max pooling; stages see 56, 28, 14 and 7 pixel maps. With ``width=1`` and 1000
  classes the network has the 11,689,512 trainable parameters of torchvision's
  ``resnet18`` and 1.814 G multiply-accumulates (see :mod:`vt_edu.flops`).

Stages have ``[2, 2, 2, 2]`` BasicBlocks with ``64, 128, 256, 512`` channels (times
``width``) and strides ``1, 2, 2, 2``; a block whose stride or width changes gets a
1x1 convolution + BN shortcut ("option B"). Convolutions have no bias (BN follows).
BN uses momentum 0.9 and epsilon 1e-5, PyTorch's defaults, which also suit short
training runs better than Keras' 0.99.

Layer names encode the stage (``stem_*``, ``stage1_*`` ... ``stage4_*``, ``head_*``)
so that :func:`vt_edu.flops.count_macs` can total per stage.
"""

from __future__ import annotations

import keras

from vt_edu.models.blocks import StochasticDepth

STAGE_CHANNELS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
RESNET18_BLOCKS = (2, 2, 2, 2)
STEMS = ("cifar", "imagenet")


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1 (e.g. 64 → 16 at width 0.25)."""
    return max(1, int(round(channels * width)))


def _bn(name):
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def _conv(filters, kernel, stride, name):
    return keras.layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )


def stem(x, channels: int, kind: str):
    """The input stem: ``cifar`` (3x3/1 conv) or ``imagenet`` (7x7/2 conv + 3x3/2 max pool)."""
    if kind == "cifar":
        x = _conv(channels, 3, 1, "stem_conv")(x)
        x = _bn("stem_bn")(x)
        return keras.layers.ReLU(name="stem_relu")(x)
    # Explicit zero padding reproduces PyTorch's symmetric padding (Keras' "same"
    # pads stride-2 convolutions asymmetrically); shapes and counts are the same.
    x = keras.layers.ZeroPadding2D(3, name="stem_pad")(x)
    x = keras.layers.Conv2D(
        channels, 7, strides=2, use_bias=False, kernel_initializer="he_normal", name="stem_conv"
    )(x)
    x = _bn("stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)


def basic_block(x, filters: int, stride: int, name: str, survival: float = 1.0):
    """``relu(shortcut(x) + BN(conv3x3(relu(BN(conv3x3(x))))))``, optional stochastic depth."""
    shortcut = x
    y = _conv(filters, 3, stride, f"{name}_conv1")(x)
    y = _bn(f"{name}_bn1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(filters, 3, 1, f"{name}_conv2")(y)
    y = _bn(f"{name}_bn2")(y)
    if survival < 1.0:
        y = StochasticDepth(survival, name=f"{name}_drop_path")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv(filters, 1, stride, f"{name}_down_conv")(x)
        shortcut = _bn(f"{name}_down_bn")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_relu2")(y)


def survival_probabilities(num_blocks: int, final_survival: float):
    """Linear decay rule (Huang et al.): block ``i`` of ``N`` keeps its branch with
    probability ``1 - i/N * (1 - p)``, so the first block is almost never dropped and
    the last one has survival ``p``."""
    return [1.0 - (i + 1) / num_blocks * (1.0 - final_survival) for i in range(num_blocks)]


def resnet_trunk(inputs, *, width: float, stem_kind: str, num_stages: int, stochastic_depth: float,
                 total_blocks: int | None = None, return_stages: bool = False):
    """Stem and the first ``num_stages`` stages of ResNet-18; returns the feature map.

    ``total_blocks`` is the number of residual blocks the stochastic-depth rule spreads
    over (default: the blocks built here). With ``return_stages`` the result is the list
    of every stage's output map instead (what a feature pyramid reads).
    """
    blocks = RESNET18_BLOCKS[:num_stages]
    survivals = survival_probabilities(total_blocks or sum(blocks), stochastic_depth)
    x = stem(inputs, scaled(64, width), stem_kind)
    index = 0
    stage_outputs = []
    for stage, (count, channels, stride) in enumerate(zip(blocks, STAGE_CHANNELS, STAGE_STRIDES), 1):
        for block in range(1, count + 1):
            x = basic_block(
                x,
                scaled(channels, width),
                stride if block == 1 else 1,
                name=f"stage{stage}_block{block}",
                survival=survivals[index],
            )
            index += 1
        stage_outputs.append(x)
    return stage_outputs if return_stages else x


def classifier_head(x, num_classes: int, dropout: float):
    """``[dropout →] Dense(num_classes)`` returning float32 logits (also under mixed precision)."""
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.layers.Dense(num_classes, name="head_logits", dtype="float32")(x)


def build_resnet18(
    num_classes,
    input_shape,
    *,
    width: float = 1.0,
    stem: str = "cifar",
    dropout: float = 0.0,
    stochastic_depth: float = 1.0,
):
    """Build ResNet-18.

    Args:
        num_classes: number of output logits.
        input_shape: ``(H, W, C)``.
        width: channel multiplier (0.25 → stages of 16/32/64/128 channels).
        stem: ``"cifar"`` (3x3/1, no pooling) or ``"imagenet"`` (7x7/2 + max pool).
        dropout: dropout rate before the classifier.
        stochastic_depth: survival probability of the last residual block (linear
            decay over the 8 blocks); 1.0 disables it.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = resnet_trunk(
        inputs, width=width, stem_kind=stem, num_stages=4, stochastic_depth=stochastic_depth
    )
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = classifier_head(x, num_classes, dropout)
    return keras.Model(inputs, outputs, name="resnet18")
