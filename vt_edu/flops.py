"""Analytic multiply-accumulate (MAC) and parameter counts, per layer and per stage.

What is counted
---------------
One **MAC** is one multiplication followed by one addition, ``a += w * x``. The
"FLOPs" of the VT paper (and of most vision papers: ResNet-18 "1.8 GFLOPs") are MACs,
so this module calls them MACs; multiply by 2 for floating-point operations.
Counts are **per image** (the batch axis is ignored) and cover every matrix product:

* ``Conv2D``: ``H_out·W_out · k_h·k_w · C_in/groups · C_out``; ``Dense`` and the
  ViT's ``MultiHeadAttention`` (Q/K/V/output projections plus the two ``N x N``
  products) likewise from their shapes.
* The VT layers (symbols of :mod:`vt_edu.layers`: ``HW`` pixels with ``C`` channels,
  ``L`` tokens with ``C_T`` channels), exactly as the layers compute them:

  - filter tokenizer: ``X W_A`` HW·C·L, ``Aᵀ X`` HW·L·C, then ``(Aᵀ X) W_V``
    L·C·C_T when there is a value projection (the layer projects the L tokens,
    not the HW pixels, which is cheaper and equal);
  - recurrent tokenizer: ``W_R = T_in W_TR`` L·C_T_in·C, then as the filter
    tokenizer with ``W_R`` in place of ``W_A``;
  - transformer: ``T K`` and ``T Q`` L·C_T·C_T each, ``(TK)(TQ)ᵀ`` and
    ``softmax(...)·T`` L·L·C_T each, ``F1`` and ``F2`` L·C_T·C_T each
    (+ L·C_T·C_T for an optional ``W_V``);
  - projector: ``X W_Q`` HW·C·C, ``T W_K`` L·C_T·C, ``(X W_Q)(T W_K)ᵀ`` HW·L·C,
    optional ``T W_V`` L·C_T·C, and ``softmax(...)·T`` HW·L·C.

Not counted (0 MACs): batch/layer normalisation (BN folds into the preceding
convolution at inference; the paper's and torchvision's counts exclude it too),
activations, softmax, pooling, residual additions and biases, and the FPNs'
weight-free plumbing: ``UpSampling2D``/``Resizing`` (nearest copies pixels; bilinear
mixes 4 pixels with fixed weights, as pooling does), ``Add`` (the top-down path and
the head's sum), ``Concatenate`` and slicing of token sequences. This is the convention
under which torchvision's ResNet-18 is "1.814 G": our count is 1,814,073,344.

Parameters are read from each layer's weights, trainable and not (BN's moving mean
and variance are non-trainable), so the table's total equals ``model.count_params()``;
``trainable_params`` gives the number papers and torchvision report.

Reproducing the paper (Table 2, 224x224, 1000 classes)
------------------------------------------------------
=================  ===========  ==========  =============  ==========
model              MACs (ours)  MACs paper  params (ours)  params paper
=================  ===========  ==========  =============  ==========
ResNet-18          1.8141 G     1.814 G     11.690 M       11.7 M
VT-ResNet-18       1.5774 G     1.569 G     13.579 M       11.7 M
=================  ===========  ==========  =============  ==========

ResNet-18 is exact. VT-ResNet-18 (configuration in :mod:`vt_edu.models.vt_resnet`:
C=256, C_T=1024, L=16, 2 modules, value projections in tokenizers/projectors, no
projector after the last module, a LayerNorm of 2,048 parameters before the classifier)
is 0.5 % above the paper in MACs and 16 % above in parameters. The parameter gap is
the transformer's key and query matrices: the
layers of :mod:`vt_edu.layers` use square ``K, Q`` of shape ``(C_T, C_T)``, whereas the
paper's (arXiv) transformer uses ``K, Q`` of shape ``(C_T, C_T/2)``. Halving them removes
2 modules x 2 matrices x 1024 x 512 = 2.10 M parameters and 2 x 2 x 16 x 1024 x 512 =
33.6 M MACs, which gives 11.48 M parameters (-1.9 %; without our head norm) and
1.544 G MACs (-1.6 %),
both within 2 % of Table 2; see :func:`vt_stage_counts` (``key_channels=512``). The
stage that VT replaces, ResNet-18's stage 4 (14x14x256 → 7x7x512), costs 0.411 G MACs
and 8.39 M parameters; the two VT modules and the token head cost 0.175 G, a 2.35x
reduction of the last stage (Table 1 reports ~2.4x).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

__all__ = [
    "CLASSES_RANGE",
    "INPUT_SIZE_RANGE",
    "LayerCount",
    "MAX_WIDTH",
    "MacTable",
    "PAPER_TABLE2",
    "check_table_settings",
    "count_macs",
    "filter_tokenizer_macs",
    "format_table",
    "fpn_module_macs",
    "projector_macs",
    "recurrent_tokenizer_macs",
    "transformer_macs",
    "vt_stage_counts",
]

#: The paper's Table 2 (ImageNet, 224x224, 1000 classes): MACs ("FLOPs") and params.
PAPER_TABLE2 = {
    "resnet18": {"macs": 1.814e9, "params": 11.7e6},
    "vt_resnet18": {"macs": 1.569e9, "params": 11.7e6},
}

# The table is read from a built Keras model, and building allocates every weight:
# the CNN's first Dense layer grows with the square of the image side, every layer
# with the square of the width, the classifier with the class count. Within these
# bounds (the paper's setting is 224 pixels, 1000 classes, width 1) the largest model,
# the CNN at 512 pixels and width 2, has 0.25 G weights (1 GB); an absurd setting
# gets one clear line instead of an allocation that fails deep inside Keras or
# exhausts the machine's memory.
#: Smallest and largest image side, in pixels (8: the smallest the models accept).
INPUT_SIZE_RANGE = (8, 512)
#: Smallest and largest number of classes (ImageNet-21k has 21,841).
CLASSES_RANGE = (2, 100_000)
#: Largest channel multiplier (1.0 = the paper's widths).
MAX_WIDTH = 2.0


def check_table_settings(input_size: int, num_classes: int, width: float | None = None) -> None:
    """Refuse sizes the MAC table is not built for, before any model is built.

    Args:
        input_size: image side in pixels (``--input-size``).
        num_classes: number of classes (``--classes``).
        width: channel multiplier (``--width``), or ``None`` for the model's default.

    Raises:
        ValueError: one line naming the setting, its range and the paper's value.
    """
    low, high = INPUT_SIZE_RANGE
    if isinstance(input_size, bool) or not isinstance(input_size, int) or not low <= input_size <= high:
        raise ValueError(f"input size {input_size!r} (--input-size) is out of range: use {low} to {high:,} pixels "
                         "(the paper: 224).")
    low, high = CLASSES_RANGE
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not low <= num_classes <= high:
        raise ValueError(f"{num_classes!r} classes (--classes) is out of range: use {low} to {high:,} "
                         "(CIFAR-10: 10, ImageNet: 1000).")
    if width is not None and not 0 < width <= MAX_WIDTH:
        raise ValueError(f"width {width!r} (--width) is out of range: use a multiplier above 0 and at most "
                         f"{MAX_WIDTH:g} (1.0: the paper's channels).")


# --------------------------------------------------------------------------- formulas
def filter_tokenizer_macs(hw: int, c: int, l: int, c_t: int | None = None) -> int:
    """``X W_A`` (HW·C·L) + ``Aᵀ X`` (HW·L·C) [+ ``(Aᵀ X) W_V`` (L·C·C_T)]."""
    return hw * c * l + hw * l * c + (l * c * c_t if c_t else 0)


def recurrent_tokenizer_macs(hw: int, c: int, l: int, c_t_in: int, c_t: int | None = None) -> int:
    """``T_in W_TR`` (L·C_T_in·C) + the filter tokenizer's products with ``W_R``."""
    return l * c_t_in * c + filter_tokenizer_macs(hw, c, l, c_t)


def pooling_tokenizer_macs(hw: int, c: int, l: int) -> int:
    """``Aᵀ X`` with the fixed pooling ``A`` as the layer computes it (a dense HW·L·C product)."""
    return hw * l * c


def transformer_macs(l: int, c_t: int, value_projection: bool = False, key_channels: int | None = None) -> int:
    """``T K``, ``T Q`` (L·C_T·d each), ``(TK)(TQ)ᵀ`` (L·L·d), ``A T`` (L·L·C_T),
    ``F1``, ``F2`` (L·C_T·C_T each) [+ ``T W_V`` (L·C_T·C_T)]; ``d = key_channels or C_T``."""
    d = key_channels or c_t
    macs = 2 * l * c_t * d + l * l * d + l * l * c_t + 2 * l * c_t * c_t
    return macs + (l * c_t * c_t if value_projection else 0)


def projector_macs(hw: int, c: int, l: int, c_t: int, value_projection: bool = False) -> int:
    """``X W_Q`` (HW·C·C) + ``T W_K`` (L·C_T·C) + ``(XW_Q)(TW_K)ᵀ`` (HW·L·C)
    [+ ``T W_V`` (L·C_T·C)] + ``A T`` (HW·L·C, values of width C)."""
    macs = hw * c * c + l * c_t * c + hw * l * c + hw * l * c
    return macs + (l * c_t * c if value_projection else 0)


def vt_stage_counts(
    hw: int = 196,
    c: int = 256,
    c_t: int = 1024,
    l: int = 16,
    num_modules: int = 2,
    num_classes: int = 1000,
    key_channels: int | None = None,
    projector_after_last: bool = False,
    head_norm: bool = True,
    cosine_attention: bool = True,
) -> dict:
    """MACs and parameters of VT-ResNet's VT stage plus its token classifier, on paper.

    The arithmetic twin of :func:`count_macs` on ``vt_resnet18`` (filter tokenizer,
    then recurrent ones; value projections in tokenizers and projectors), with two
    knobs the Keras layers do not have, to explain the gap to the paper:
    ``key_channels`` (width of ``K`` and ``Q``; the arXiv paper's ``C_T/2``) and
    ``projector_after_last``. ``head_norm`` adds the 2·C_T parameters of the
    LayerNorm before the classifier (our default; not in the paper), and
    ``cosine_attention`` the learned logit scale of each module's one-head transformer
    (one parameter each; our default, not in the paper; its normalisation of ``L x C_T``
    keys and queries is not counted as MACs, as the Keras count does not).

    Returns:
        ``{"macs": int, "params": int}`` (trainable parameters: weights, the
        classifier's bias and the head norm's scale and offset).
    """
    d = key_channels or c_t
    macs = params = 0
    for m in range(num_modules):
        if m == 0:
            macs += filter_tokenizer_macs(hw, c, l, c_t)
            params += c * l + c * c_t
        else:
            macs += recurrent_tokenizer_macs(hw, c, l, c_t, c_t)
            params += c_t * c + c * c_t
        macs += transformer_macs(l, c_t, key_channels=d)
        params += 2 * c_t * d + 2 * c_t * c_t + (1 if cosine_attention else 0)
        if m < num_modules - 1 or projector_after_last:
            macs += projector_macs(hw, c, l, c_t, value_projection=True)
            params += c * c + 2 * c_t * c
    macs += c_t * num_classes
    params += c_t * num_classes + num_classes + (2 * c_t if head_norm else 0)
    return {"macs": macs, "params": params}


# ------------------------------------------------------------------------------ table
@dataclass
class LayerCount:
    """One row of a :class:`MacTable`."""

    name: str
    stage: str
    kind: str
    output_shape: tuple
    macs: int
    params: int
    trainable_params: int
    note: str = ""


@dataclass
class MacTable:
    """Per-layer counts of one model, with per-stage and total views."""

    model_name: str
    input_shape: tuple
    rows: list = field(default_factory=list)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable_params for r in self.rows)

    def stages(self) -> dict:
        """``{stage: {"macs", "params", "trainable_params", "layers"}}`` in network order."""
        out: dict = {}
        for r in self.rows:
            s = out.setdefault(r.stage, {"macs": 0, "params": 0, "trainable_params": 0, "layers": 0})
            s["macs"] += r.macs
            s["params"] += r.params
            s["trainable_params"] += r.trainable_params
            s["layers"] += 1
        return out

    def to_dicts(self) -> list:
        """The rows as plain dicts (e.g. for ``pandas.DataFrame`` or JSON)."""
        return [asdict(r) for r in self.rows]

    def summary(self) -> dict:
        return {
            "model": self.model_name,
            "input_shape": list(self.input_shape),
            "macs": self.total_macs,
            "params": self.total_params,
            "trainable_params": self.trainable_params,
            "stages": self.stages(),
        }

    def format_table(self, per_layer: bool = False) -> str:
        return format_table(self, per_layer=per_layer)


def stage_of(layer_name: str) -> str:
    """The stage a layer belongs to: its name up to the first ``_`` (``stage2_block1_conv1`` → ``stage2``)."""
    return layer_name.split("_", 1)[0]


def _shape(t):
    return tuple(None if d is None else int(d) for d in t.shape)


def _call_shapes(layer):
    """Shapes of the tensor arguments (positional, then keyword) and of the outputs of
    the layer's first call in the functional graph (``layer.input``/``layer.output``)."""
    import keras

    try:
        inputs, outputs = layer.input, layer.output
    except (AttributeError, ValueError):  # Keras: "has never been called"
        raise ValueError(f"layer {layer.name!r} was never called; count a built functional model.") from None

    def tensors(structure):
        return [_shape(t) for t in keras.tree.flatten(structure) if hasattr(t, "shape") and hasattr(t, "dtype")]

    return tensors(inputs), tensors(outputs)


def _prod(values) -> int:
    return int(math.prod(int(v) for v in values))


def _size(variable) -> int:
    return _prod(variable.shape)


def _kind(layer) -> str:
    """The layer's class name, shown in the table (never used to choose a MAC rule)."""
    return type(layer).__name__


def _vt_counts(layer, inputs, outputs):
    """MACs and a note for the VT layers, or ``None`` for other layers."""
    from vt_edu import layers as vt  # lazily, as keras: `vt_edu.flops` imports without them

    if isinstance(layer, (vt.FilterTokenizer, vt.RecurrentTokenizer, vt.PoolingTokenizer)):
        _, h, w, c = inputs[0]
        _, l, c_t = outputs[0]
        hw = h * w
        w_v = getattr(layer, "w_v", None)
        if isinstance(layer, vt.FilterTokenizer):
            return filter_tokenizer_macs(hw, c, l, c_t if w_v is not None else None), "HW·C·L + HW·L·C [+ L·C·C_T]"
        if isinstance(layer, vt.RecurrentTokenizer):
            c_t_in = inputs[1][-1]
            macs = recurrent_tokenizer_macs(hw, c, l, c_t_in, c_t if w_v is not None else None)
            return macs, "L·C_T·C + HW·C·L + HW·L·C [+ L·C·C_T]"
        return pooling_tokenizer_macs(hw, c, l), "fixed A as a dense HW·L·C product"
    if isinstance(layer, vt.TokenTransformer):
        _, l, c_t = inputs[0]
        return transformer_macs(l, c_t, getattr(layer, "w_v", None) is not None), "4·L·C_T² + 2·L²·C_T"
    if isinstance(layer, vt.Projector):
        _, h, w, c = inputs[0]
        _, l, c_t = inputs[1]
        return (
            projector_macs(h * w, c, l, c_t, getattr(layer, "w_v", None) is not None),
            "HW·C² + L·C_T·C + 2·HW·L·C [+ L·C_T·C]",
        )
    if isinstance(layer, vt.VTModule):
        fmap = inputs[0]
        _, h, w, c = fmap
        _, tokens_out = outputs
        l, c_t = tokens_out[1], tokens_out[2]
        tok = layer.tokenizer
        tok_out = (None, l, c_t if getattr(tok, "w_v", None) is not None else c)
        tok_in = [fmap] + ([inputs[1]] if len(inputs) > 1 else [])
        macs, _ = _vt_counts(tok, tok_in, [tok_out])
        macs += _vt_counts(layer.transformer, [tokens_out], [tokens_out])[0]
        if layer.value is not None:  # the pooling tokenizer's W_V: L·C·C_T
            macs += l * c * layer.value.units
        if layer.projector is not None:
            macs += _vt_counts(layer.projector, [fmap, tokens_out], [fmap])[0]
        return macs, "tokenizer + transformer + projector"
    return None




def _layer_macs(layer, inputs, outputs):
    """``(macs, note)`` for one layer from its call shapes."""
    import keras

    L = keras.layers
    vt = _vt_counts(layer, inputs, outputs)
    if vt is not None:
        return vt
    if isinstance(layer, L.DepthwiseConv2D):
        _, h, w, c = outputs[0]
        kh, kw = layer.kernel_size
        return h * w * kh * kw * int(layer.kernel.shape[2]) * int(layer.kernel.shape[3]), "depthwise conv"
    if isinstance(layer, L.Conv2D):
        _, h, w, c_out = outputs[0]
        kh, kw = layer.kernel_size
        c_in = inputs[0][-1]
        return h * w * kh * kw * (c_in // layer.groups) * c_out, "H·W·k²·C_in·C_out"
    if isinstance(layer, L.Dense):
        positions = _prod(outputs[0][1:-1])
        return positions * inputs[0][-1] * layer.units, "positions·in·out"
    if isinstance(layer, L.MultiHeadAttention):
        q_shape = inputs[0]
        v_shape = inputs[1] if len(inputs) > 1 else inputs[0]
        k_shape = inputs[2] if len(inputs) > 2 else v_shape
        nq, nv = _prod(q_shape[1:-1]), _prod(v_shape[1:-1])
        heads, kd = layer.num_heads, layer.key_dim
        vd = layer.value_dim or kd
        out_dim = outputs[0][-1]
        macs = (
            nq * q_shape[-1] * heads * kd  # query projection
            + nv * k_shape[-1] * heads * kd  # key projection
            + nv * v_shape[-1] * heads * vd  # value projection
            + nq * nv * heads * kd  # Q Kᵀ
            + nq * nv * heads * vd  # softmax(...) V
            + nq * heads * vd * out_dim  # output projection
        )
        return macs, "QKV/out projections + 2·N²·D"
    if isinstance(layer, (L.BatchNormalization, L.LayerNormalization)):
        return 0, "not counted (normalisation)"
    # Fixed interpolation (as pooling) and additions: no weights, by convention 0.
    if isinstance(layer, (L.UpSampling2D, L.Resizing)):
        return 0, "not counted (interpolation)"
    if isinstance(layer, (L.Add, L.Concatenate)):
        return 0, "not counted (additions / concatenation)"
    from vt_edu.models.blocks import ClassToken, PositionEmbedding

    # Weights that are only added or concatenated (no multiplications).
    if isinstance(layer, (ClassToken, PositionEmbedding, L.Embedding)):
        return 0, "additions only"
    if layer.weights and any(len(v.shape) >= 2 for v in layer.trainable_weights):
        # A weight matrix we have no rule for: say so instead of silently counting 0.
        return 0, "UNCOUNTED: no MAC rule for this layer type"
    return 0, ""


def count_macs(model) -> MacTable:
    """Count MACs and parameters of every layer of a built functional Keras model.

    Works for every model of :func:`vt_edu.models.create_model`: the counts come from
    each layer's call shapes in the functional graph and its weights, so width, input
    size and number of classes are taken into account.

    Returns:
        A :class:`MacTable`; ``table.total_macs``, ``table.stages()``,
        ``table.format_table()``. ``table.total_params == model.count_params()``.
    """
    import keras

    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        inputs, outputs = _call_shapes(layer)
        macs, note = _layer_macs(layer, inputs, outputs)
        rows.append(
            LayerCount(
                name=layer.name,
                stage=stage_of(layer.name),
                kind=_kind(layer),
                output_shape=tuple(outputs[0][1:]) if outputs else (),
                macs=int(macs),
                params=sum(_size(v) for v in layer.weights),
                trainable_params=sum(_size(v) for v in layer.trainable_weights),
                note=note,
            )
        )
    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return MacTable(model_name=model.name, input_shape=input_shape, rows=rows)


#: Stages of the ResNet-18 trunk (see :mod:`vt_edu.models.resnet`'s layer names).
TRUNK_STAGES = ("stem", "stage1", "stage2", "stage3", "stage4")
#: Stages of the FPN neck: laterals, top-down path, output convs (``neck``) or tokens (``vt``).
NECK_STAGES = ("neck", "vt")


def fpn_module_macs(model, include_head: bool = True) -> int:
    """MACs per image of a segmentation model's FPN module: everything after the trunk.

    For ``fpn`` and ``vt_fpn`` (:mod:`vt_edu.models.fpn`) that is the neck (laterals,
    top-down path and the per-level 3x3 convolutions, or VT-FPN's tokenizers, transformer
    and projectors, counted with the formulas above) plus the semantic head (its convs,
    the 1x1 classifier; upsampling counts 0).

    Args:
        model: a built ``fpn`` or ``vt_fpn``.
        include_head: ``False`` counts the neck only (stages ``neck`` and ``vt``), the
            part where VT-FPN differs from the FPN.

    Raises:
        ValueError: the model has no FPN neck (e.g. a classifier).
    """
    stages = count_macs(model).stages()
    if "neck" not in stages:
        raise ValueError(f"model {model.name!r} has no FPN neck (no 'neck_*' layers); build fpn or vt_fpn.")
    parts = [s for s in stages if s not in TRUNK_STAGES] if include_head else [s for s in stages if s in NECK_STAGES]
    return sum(stages[s]["macs"] for s in parts)


def _fmt_count(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.3f} G"
    if n >= 1e6:
        return f"{n / 1e6:.3f} M"
    if n >= 1e3:
        return f"{n / 1e3:.1f} K"
    return str(n)


def format_table(table: MacTable, per_layer: bool = False) -> str:
    """A plain-text table: one line per stage (or per layer) with MACs, share and params."""
    total = table.total_macs or 1
    lines = [
        f"{table.model_name}  input {'x'.join(map(str, table.input_shape))}",
        f"{'stage' if not per_layer else 'layer':<32} {'type':<20} {'MACs':>12} {'share':>7} {'params':>12}",
        "-" * 87,
    ]
    if per_layer:
        for r in table.rows:
            if r.macs == 0 and r.params == 0:
                continue
            lines.append(
                f"{r.name:<32} {r.kind:<20} {_fmt_count(r.macs):>12} {100 * r.macs / total:>6.1f}% {_fmt_count(r.params):>12}"
            )
    else:
        for stage, s in table.stages().items():
            lines.append(
                f"{stage:<32} {str(s['layers']) + ' layers':<20} {_fmt_count(s['macs']):>12} "
                f"{100 * s['macs'] / total:>6.1f}% {_fmt_count(s['params']):>12}"
            )
    lines.append("-" * 87)
    lines.append(
        f"{'total':<32} {'':<20} {_fmt_count(table.total_macs):>12} {'100.0%':>7} {_fmt_count(table.total_params):>12}"
    )
    lines.append(
        f"(MACs per image; 1 MAC = 1 multiply-add = 2 FLOPs. Trainable params: {table.trainable_params:,}; "
        f"total incl. BN statistics: {table.total_params:,}.)"
    )
    uncounted = [r.name for r in table.rows if r.note.startswith("UNCOUNTED")]
    if uncounted:
        lines.append(f"warning: no MAC rule for {', '.join(uncounted)}")
    return "\n".join(lines)
