"""One registry for every model of the book: ``create_model(name, ...)``.

>>> model = create_model("vt_resnet18", num_classes=10, width=0.25)

Names: ``cnn`` (the students' TensorFlow-tutorial CNN), ``resnet18``, ``vt_resnet18``,
``vit`` and ``tutorial_vit`` (the students' fallback, the Keras tutorial ViT) classify images (logits ``(B, classes)``); ``fpn`` and ``vt_fpn`` label
every pixel (logits ``(B, H, W, classes)``, 64x64 images by default). Every builder uses Keras layers and ``keras.ops`` only, so each model
runs on the TensorFlow, JAX and PyTorch backends, and every custom layer is
registered for ``.keras`` saving. Options are keyword arguments; a wrong name or an
option a model does not take raises :class:`ModelConfigError` listing the valid ones.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

from vt_edu.models.cnn import build_cnn
from vt_edu.models.fpn import build_fpn, build_vt_fpn
from vt_edu.models.resnet import STEMS, build_resnet18
from vt_edu.models.tutorial_vit import build_tutorial_vit
from vt_edu.models.vit import build_vit
from vt_edu.models.vt_resnet import TOKENIZER_CHOICES, build_vt_resnet18
from vt_edu.names import check_num_tokens


class ModelConfigError(ValueError):
    """A model name, option or option value that the registry cannot build."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, one-line description and option help."""

    name: str
    builder: Callable
    description: str
    option_help: dict = field(default_factory=dict)
    #: The image shape ``create_model`` builds for when none is given.
    input_shape: tuple = (32, 32, 3)

    @property
    def defaults(self) -> dict:
        """Option → default value, read from the builder's keyword-only arguments."""
        params = inspect.signature(self.builder).parameters.values()
        return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}


_COMMON_HELP = {
    "width": "channel multiplier (1.0 = the paper's widths; 0.25 for CPU-sized runs)",
    "dropout": "dropout rate before the classifier, in [0, 1)",
    "stochastic_depth": "survival probability of the last residual block (linear decay), in (0, 1]; 1 = off",
}

_FPN_HELP = {
    **_COMMON_HELP,
    "width": "channel multiplier of the ResNet-18 trunk and the default neck/head widths",
    "stem": "'imagenet' (default: finest level at 1/4 of the input; sides multiple of 32) or 'cifar' "
            "(finest level at full size, 16x the trunk's MACs; sides multiple of 8)",
    "neck_channels": "N, width of the laterals and merged maps; default 128 x width",
    "head_channels": "width of the semantic head's convs; default N / 2",
    "dropout": "dropout rate before the 1x1 classifier, in [0, 1)",
    "stochastic_depth": "survival probability of the trunk's last block (linear decay), in (0, 1]; 1 = off",
}

#: The registry; its names are :data:`vt_edu.names.MODEL_NAMES` (a test keeps them equal),
#: which the CLI reads without importing Keras.
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "cnn",
            build_cnn,
            "the TensorFlow tutorial CNN (3 conv + 2 dense; 122,570 params on CIFAR-10)",
            {"width": "multiplier of the 32/64/64 filters and the 64-unit hidden layer",
             "dropout": _COMMON_HELP["dropout"]},
        ),
        ModelSpec(
            "resnet18",
            build_resnet18,
            "ResNet-18 (BasicBlock [2,2,2,2]); stem 'cifar' for 32x32, 'imagenet' for 224x224",
            {**_COMMON_HELP, "stem": "'cifar' (3x3/1 conv, no pooling) or 'imagenet' (7x7/2 conv + max pool)"},
        ),
        ModelSpec(
            "vt_resnet18",
            build_vt_resnet18,
            "VT-ResNet-18: ResNet-18 stages 1-3 + VT modules (filter, then recurrent tokenizer)",
            {
                **_COMMON_HELP,
                "stem": "'cifar' or 'imagenet'",
                "num_tokens": "L, visual tokens per module (16 in the paper)",
                "num_modules": "VT modules replacing stage 4 (2 for R18)",
                "token_channels": "C_T; default 4 x the stage-3 channels (1024 at width 1)",
                "tokenizer": "'recurrent' (filter then recurrent, paper), 'filter' or 'pooling'",
                "use_projector": "project tokens back into the feature map between modules",
                "use_value_projection": "W_V in tokenizers/projectors; default: when C_T != C",
                "num_heads": "heads of the token transformer (must divide C_T)",
                "scale_attention": "divide transformer attention logits by sqrt(C_T/heads) (paper: no)",
                "cosine_attention": "transformer logits = learned scale x cosines (default; Swin V2; paper: no)",
                "transformer_norm": "None (paper), 'pre' or 'post' LayerNorm in the token transformer",
                "head_norm": "'layer' (default), 'batch' or None: norm of the averaged tokens before the classifier",
                "init": "'stable' (default: identity residual branches, small attention logits) or 'paper' (Glorot)",
                "stochastic_depth": "survival probability of the last ResNet block (VT modules are not dropped)",
            },
        ),
        ModelSpec(
            "vit",
            build_vit,
            "patch-token ViT (patch 4 → 64 tokens on 32x32; pre-norm blocks)",
            {
                **_COMMON_HELP,
                "width": "multiplier of dim and mlp_dim",
                "patch_size": "patch side (4 on 32x32 → 64 tokens)",
                "dim": "token width D",
                "depth": "number of transformer blocks",
                "num_heads": "attention heads",
                "mlp_dim": "hidden width of the MLPs",
                "pool": "'cls' (class token) or 'mean' (average of tokens)",
            },
        ),
        ModelSpec(
            "tutorial_vit",
            build_tutorial_vit,
            "the students' fallback: the Keras tutorial ViT (72x72, 6x6 patches → 144 tokens, flattened head)",
            {
                "image_size": "side the images are resized to inside the model (72)",
                "patch_size": "patch side (6 → 144 tokens at 72x72)",
                "token_dim": "numbers per token (64; 256 in the tutorial's current version)",
                "num_heads": "attention heads",
                "key_dim": "query/key width per head",
                "depth": "number of transformer blocks",
                "mlp_dim": "hidden width of the blocks' MLPs (128; 512 in the current version)",
                "head_units": "hidden widths of the classifier MLP",
                "block_dropout": "dropout in attention and the blocks' MLPs, in [0, 1) (0.1)",
                "dropout": "dropout in the classifier head, in [0, 1) (0.5)",
                "augment": "the tutorial's random flip, rotation and zoom inside the model (training only)",
                "width": "multiplier of token_dim, key_dim, mlp_dim and head_units (1.0 = the tutorial's sizes)",
            },
        ),
        ModelSpec(
            "fpn",
            build_fpn,
            "semantic FPN (Panoptic FPN's semantic branch) on ResNet-18: per-pixel logits",
            _FPN_HELP,
            input_shape=(64, 64, 3),
        ),
        ModelSpec(
            "vt_fpn",
            build_vt_fpn,
            "VT-FPN: the FPN's per-level 3x3 convs replaced by tokenizers, one transformer, projectors",
            {
                **_FPN_HELP,
                "num_tokens": "L, visual tokens per pyramid level (8 in the paper; 4 levels)",
                "token_channels": "C_T; default the neck width (the paper: 1024 = 4 x its 256)",
                "use_projector": "False: no tokens, the head reads the merged maps (the ablation)",
                "init": "'stable' (default: projectors start as the identity) or 'paper' (Glorot)",
            },
            input_shape=(64, 64, 3),
        ),
    )
}


def list_models() -> list[str]:
    """Registered model names."""
    return list(MODELS)


def model_options(name: str) -> dict:
    """The options of model ``name`` with their defaults."""
    return dict(_spec(name).defaults)


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ModelConfigError(
            f"unknown model {name!r}; choose one of: {', '.join(MODELS)}."
        )
    return MODELS[name]


def check_options(name: str, options: dict) -> None:
    """Fail with a readable message on an option name or value the model cannot use."""
    spec = _spec(name)
    unknown = sorted(set(options) - set(spec.defaults))
    if unknown:
        raise ModelConfigError(
            f"model {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options are: {', '.join(spec.defaults)}."
        )

    def bad(option, expected):
        raise ModelConfigError(
            f"model {name!r}: {option}={options[option]!r} is invalid; expected {expected}."
        )

    def number(option):
        value = options[option]
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    for option in options:
        value = options[option]
        if option == "width" and not (number(option) and value > 0):
            bad(option, "a number > 0")
        elif option in ("dropout", "block_dropout") and not (number(option) and 0 <= value < 1):
            bad(option, "a rate in [0, 1)")
        elif option == "stochastic_depth" and not (number(option) and 0 < value <= 1):
            bad(option, "a survival probability in (0, 1]")
        elif option == "stem" and value not in STEMS:
            bad(option, f"one of {', '.join(STEMS)}")
        elif option == "tokenizer" and value not in TOKENIZER_CHOICES:
            bad(option, f"one of {', '.join(TOKENIZER_CHOICES)}")
        elif option == "pool" and value not in ("cls", "mean"):
            bad(option, "'cls' or 'mean'")
        elif option == "num_tokens":
            try:
                check_num_tokens(value, name)
            except ValueError:
                bad(option, "a positive integer")
        elif option in ("num_modules", "num_heads", "patch_size", "dim", "depth", "mlp_dim", "image_size", "token_dim",
                        "key_dim"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                bad(option, "a positive integer")
        elif option in ("token_channels", "neck_channels", "head_channels") and value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                bad(option, "a positive integer or None")
        elif option == "init" and value not in ("stable", "paper"):
            bad(option, "'stable' or 'paper'")
        elif option == "head_norm" and value not in (None, "layer", "batch"):
            bad(option, "'layer', 'batch' or None")
        elif option == "transformer_norm" and value not in (None, "pre", "post"):
            bad(option, "None, 'pre' or 'post'")
        elif option == "head_units" and not (isinstance(value, (tuple, list)) and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
            bad(option, "a sequence of positive integers")
        elif option in ("use_projector", "scale_attention", "cosine_attention", "augment") and not isinstance(value, bool):
            bad(option, "True or False")
        elif option == "use_value_projection" and value not in (None, True, False):
            bad(option, "True, False or None")
    chosen = {**spec.defaults, **options}
    if chosen.get("scale_attention") and chosen.get("cosine_attention"):
        default = "" if "cosine_attention" in options else " (cosine_attention=True is the default)"
        raise ModelConfigError(
            f"model {name!r}: scale_attention=True and cosine_attention=True cannot be combined{default}; "
            "cosine attention learns its own logit scale. Pass cosine_attention=False for scaled dot products."
        )


def create_model(name: str, num_classes: int = 10, input_shape=None, **options):
    """Build the registered model ``name``.

    Args:
        name: one of :func:`list_models` (``cnn``, ``resnet18``, ``vt_resnet18``, ``vit``,
            ``fpn``, ``vt_fpn``).
        num_classes: number of output logits (the models return logits, no softmax); for
            ``fpn`` and ``vt_fpn`` the classes of a pixel, background included.
        input_shape: ``(H, W, C)`` of one image; ``None`` means the model's default
            (``MODELS[name].input_shape``: 32x32x3, 64x64x3 for the segmentation models).
        **options: model options; see :func:`model_options` or ``MODELS[name].option_help``.

    Returns:
        A built functional ``keras.Model`` named ``name``.

    Raises:
        ModelConfigError: unknown name, unknown option or invalid value (before any
            layer is built).
    """
    check_options(name, options)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ModelConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
    shape = tuple(_spec(name).input_shape if input_shape is None else input_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ModelConfigError(f"input_shape must be (H, W, C) with positive ints, got {input_shape!r}.")
    try:
        return _spec(name).builder(num_classes, shape, **options)
    except ModelConfigError:
        raise
    except ValueError as error:  # e.g. a VT layer refusing a shape: keep the message
        raise ModelConfigError(f"model {name!r} cannot be built with {options}: {error}") from error
