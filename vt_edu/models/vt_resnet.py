"""VT-ResNet-18: ResNet-18 whose last stage is replaced by Visual Transformer modules.

Architecture (Wu et al., Sec. 4.1 / Table 1)::

    image → stem → stage1 → stage2 → stage3          (ResNet-18, unchanged)
          → VT module 1: filter tokenizer → transformer → projector
          → VT module 2: recurrent tokenizer (fed module 1's tokens) → transformer
          → mean over the L tokens → Dense(classes)

The feature map entering the VT modules is the stage-3 output: 14x14x256 for a
224x224 image (ImageNet stem), 8x8x256 for a 32x32 image (CIFAR stem), times
``width`` in channels.

Configuration decisions (what reproduces the paper's Table 2, see :mod:`vt_edu.flops`
for the arithmetic):

* **C = 256 feature channels, C_T = 1024 token channels** (``token_channels=None``
  means ``4 * C``, i.e. 1024 at ``width=1`` and scaled with ``width``). A token width
  different from the feature width needs the arXiv *value projections*: the
  tokenizer computes ``T = Aᵀ X W_V`` with ``W_V`` ``(C, C_T)`` and the projector
  adds ``A T W_V`` with ``W_V`` ``(C_T, C)``.
* **No value projection in the transformer** (Eq. 3 mixes the tokens themselves):
  each module is a :class:`~vt_edu.layers.VTModule` with
  ``transformer_value_projection=False``; a ``(C_T, C_T)`` value matrix would add
  1.05 M parameters and 16.8 M MACs per module.
* **Projectors only between modules.** The classifier reads the last module's tokens,
  so projecting them back into a feature map nobody reads would only cost
  HW·C² + 2·L·C_T·C + 2·HW·L·C MACs (22.8 M at 224) and 0.59 M parameters.
  ``use_projector=False`` removes the projector between modules too (the second
  module then re-tokenizes the stage-3 map).
* **L = 16 tokens, 2 modules, one head, no norm inside the transformer** (the paper's
  VT for R18).

Trainability (our additions; the paper does not describe its initialisation):

* ``init="stable"`` (default): residual branches start as the identity and attention
  starts near uniform. The transformer's ``F2`` and the projector's ``W_V`` start
  at zero (as ResNets zero-initialise the last BN of a block), and the matrices that
  make attention logits (transformer ``K``, ``Q``; projector ``W_K``; recurrent
  tokenizer ``W_TR``) start at 0.1 x their Glorot draw. ``init="paper"`` keeps the
  plain Glorot initialisation of :mod:`vt_edu.layers`.
* ``head_norm="layer"`` (default): a LayerNorm on the averaged tokens before the
  classifier (2·C_T parameters, no MACs counted).
* ``cosine_attention=True`` (default): the token transformer's logits are a learned
  scale times the cosines of ``T K`` and ``T Q`` (Swin V2) instead of the paper's plain
  dot products. With plain logits, training left the token attention near uniform (a
  token listens to nearly all L); with cosines module 1's attention became selective, at
  a top-1 no lower (``results/token-attention``, chapter 11). ``cosine_attention=False`` is the
  paper's transformer; it is the only way to combine with ``scale_attention``.

Why: the VT stage has no normalisation, so its token activations grow from module to
module and its unscaled attention logits saturate; with the plain Glorot start and no
head norm, SGD at the book's learning rates can reach a NaN loss in the first epoch,
and the gradients into the CNN trunk are much larger than ResNet-18's. Both defaults
keep the VT stage close to the identity at the start, so it trains under SGD and Adam;
``head_norm=None, init="paper", cosine_attention=False`` is the paper's model.

With these choices, at 224x224 and 1000 classes, VT-ResNet-18 has 1.577 G MACs
(paper: 1.569 G) and 13.58 M parameters (paper: 11.7 M); the parameter gap is the
transformer's key/query matrices, see :mod:`vt_edu.flops`.

Layer names: ``stem_*``, ``stage1_*`` .. ``stage3_*``, ``vt_m{i}_tokenizer``,
``vt_m{i}_value`` (pooling only), ``vt_m{i}_transformer``, ``vt_m{i}_projector``
(stage ``vt``) and ``head_*``. Module ``i`` is ``VTModule(name=f"vt_m{i}", ...)``
applied with :meth:`~vt_edu.layers.VTModule.forward_features` to the symbolic feature
map: its parts, not the module, are the model's layers, so the chapters reach them
with ``model.get_layer("vt_m1_tokenizer")`` and ``.weights.h5`` files keep their layout.
:func:`vt_edu.models.attention.vt_modules` gives the modules back.
"""

from __future__ import annotations

import keras
from keras import ops

from vt_edu.layers import RecurrentTokenizer, VTModule
from vt_edu.models.resnet import RESNET18_BLOCKS, classifier_head, resnet_trunk
from vt_edu.names import DEFAULT_NUM_TOKENS

TOKENIZER_CHOICES = ("recurrent", "filter", "pooling")
INITS = ("stable", "paper")
HEAD_NORMS = (None, "layer", "batch")
TRANSFORMER_NORMS = (None, "pre", "post")
#: init="stable": factor on the Glorot draw of the matrices that make attention logits.
ATTENTION_INIT_SCALE = 0.1


def _scale(variable, factor) -> None:
    if variable is not None:
        variable.assign(ops.multiply(variable, factor))


def stabilise_transformer(transformer) -> None:
    """``init="stable"`` for a built :class:`~vt_edu.layers.TokenTransformer`: zero ``F2``
    (the feed-forward branch starts as the identity) and shrink the logit matrices ``K``, ``Q``."""
    _scale(transformer.f2, 0.0)
    _scale(transformer.k, ATTENTION_INIT_SCALE)
    _scale(transformer.q, ATTENTION_INIT_SCALE)


def stabilise_projector(projector) -> None:
    """``init="stable"`` for a built :class:`~vt_edu.layers.Projector`: zero ``W_V`` (the
    projector starts as the identity) and shrink ``W_K`` (near-uniform attention)."""
    _scale(projector.w_v, 0.0)  # without W_V a projector cannot start as the identity
    _scale(projector.w_k, ATTENTION_INIT_SCALE)


def stabilise(module) -> None:
    """``init="stable"``: zero the residual branches' last matrices, shrink attention logits.

    Args:
        module: a built :class:`~vt_edu.layers.VTModule`; its parts are changed in place.
    """
    stabilise_transformer(module.transformer)
    if module.projector is not None:
        stabilise_projector(module.projector)
    if isinstance(module.tokenizer, RecurrentTokenizer):
        _scale(module.tokenizer.w_tr, ATTENTION_INIT_SCALE)


def build_vt_resnet18(
    num_classes,
    input_shape,
    *,
    num_tokens: int = DEFAULT_NUM_TOKENS,
    num_modules: int = 2,
    token_channels: int | None = None,
    tokenizer: str = "recurrent",
    use_projector: bool = True,
    use_value_projection: bool | None = None,
    num_heads: int = 1,
    scale_attention: bool = False,
    cosine_attention: bool = True,
    transformer_norm: str | None = None,
    head_norm: str | None = "layer",
    init: str = "stable",
    width: float = 1.0,
    stem: str = "cifar",
    dropout: float = 0.0,
    stochastic_depth: float = 1.0,
):
    """Build VT-ResNet-18.

    Args:
        num_classes: number of output logits.
        input_shape: ``(H, W, C)``.
        num_tokens: ``L``, visual tokens per module (16 in the paper). The pooling
            tokenizer needs a perfect square that divides the feature map's side.
        num_modules: number of VT modules replacing stage 4 (2 for R18 in the paper).
        token_channels: ``C_T``; ``None`` means ``4 * C`` where ``C`` is the stage-3
            width (1024 at ``width=1``, as in the paper).
        tokenizer: ``"recurrent"`` (paper: filter-based first, recurrent after),
            ``"filter"`` (filter-based everywhere) or ``"pooling"`` (the ablation:
            average pooling to a √L x √L grid, followed by the same ``W_V``).
        use_projector: project tokens back into the feature map between modules
            (the last module never projects: the head reads its tokens).
        use_value_projection: ``W_V`` in the tokenizers and projectors; ``None``
            means "when ``C_T != C``" (where it is required).
        num_heads: heads of the token transformer (must divide ``C_T``).
        scale_attention: divide the transformer's attention logits by ``√(C_T/heads)``
            (standard transformer; the paper does not scale).
        cosine_attention: the transformer's logits are a learned scale times cosines
            (see :class:`~vt_edu.layers.TokenTransformer`); default ``True``, ``False`` is
            the paper's plain dot product (and is needed by ``scale_attention``).
        transformer_norm: ``None`` (paper), ``"pre"`` or ``"post"`` LayerNorm in the
            token transformer.
        head_norm: ``"layer"`` (default), ``"batch"`` or ``None``: normalisation of
            the averaged tokens before the classifier.
        init: ``"stable"`` (default) or ``"paper"``; see the module docstring.
        width: channel multiplier of the ResNet part (and of the default ``C_T``).
        stem: ``"cifar"`` or ``"imagenet"`` (see :mod:`vt_edu.models.resnet`).
        dropout: dropout rate before the classifier.
        stochastic_depth: survival probability of the last *ResNet* block (linear
            decay over the 6 blocks of stages 1-3); the VT modules are not dropped.
    """
    if init not in INITS:
        raise ValueError(f"vt_resnet18: init must be one of {INITS}, got {init!r}.")
    if head_norm not in HEAD_NORMS:
        raise ValueError(f"vt_resnet18: head_norm must be one of {HEAD_NORMS}, got {head_norm!r}.")
    inputs = keras.Input(shape=input_shape, name="image")
    x = resnet_trunk(
        inputs,
        width=width,
        stem_kind=stem,
        num_stages=3,
        stochastic_depth=stochastic_depth,
        total_blocks=sum(RESNET18_BLOCKS[:3]),
    )
    channels = int(x.shape[-1])
    token_channels = token_channels or 4 * channels
    if use_value_projection is None:
        use_value_projection = token_channels != channels
    if token_channels != channels and not use_value_projection:
        raise ValueError(
            f"vt_resnet18: token_channels={token_channels} differs from the {channels} "
            "feature channels, which needs use_value_projection=True (or None)."
        )
    if token_channels % num_heads:
        raise ValueError(
            f"vt_resnet18: num_heads={num_heads} does not divide token_channels={token_channels}."
        )

    # Each VTModule wires its parts onto the symbolic stage-3 map, so the parts (not
    # the module) are the model's layers: vt_m1_tokenizer, vt_m1_transformer, ...
    tokens = None
    for m in range(1, num_modules + 1):
        # "recurrent" (the paper): a filter tokenizer first, recurrent ones after it.
        kind = "filter" if tokenizer == "recurrent" and m == 1 else tokenizer
        module = VTModule(
            num_tokens,
            tokenizer=kind,
            token_channels=token_channels,
            num_heads=num_heads,
            scale_attention=scale_attention,
            cosine_attention=cosine_attention,
            use_value_projection=use_value_projection,
            tokenizer_value_projection=use_value_projection,
            transformer_value_projection=False,
            norm=transformer_norm,
            use_projector=use_projector and m < num_modules,
            name=f"vt_m{m}",
        )
        found = module.forward_features(x, tokens if kind == "recurrent" else None)
        x, tokens = found["feature_map_out"], found["tokens_out"]
        if init == "stable":
            stabilise(module)

    pooled = keras.layers.GlobalAveragePooling1D(name="head_pool")(tokens)
    if head_norm == "layer":
        pooled = keras.layers.LayerNormalization(epsilon=1e-5, name="head_norm")(pooled)
    elif head_norm == "batch":
        pooled = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="head_norm")(pooled)
    outputs = classifier_head(pooled, num_classes, dropout)
    return keras.Model(inputs, outputs, name="vt_resnet18")
