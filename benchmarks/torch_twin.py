"""Plain-PyTorch twins of ``resnet18`` and ``vt_resnet18``, for a speed ratio (a module for benchmarks, not the package).

What it is: :func:`build_twin` makes a ``torch.nn.Module`` with the architecture that
``vt_edu.models.create_model(name, num_classes, width=width)`` builds with all its other
defaults: CIFAR stem, and for ``vt_resnet18`` the options of
:func:`vt_edu.models.vt_resnet.build_vt_resnet18` (a filter tokenizer in module 1, a
recurrent one in module 2, ``L = 16`` tokens of ``C_T = 4 C`` channels, value projections,
a projector between the modules only, one head, cosine attention, no transformer norm,
a LayerNorm on the averaged tokens, ``init="stable"``). It has the same layers, shapes,
parameters and forward arithmetic, written the way PyTorch code is usually written to be
fast: eager mode, NCHW tensors in ``torch.channels_last`` memory (the model and its
inputs), ``nn.Conv2d``/``nn.BatchNorm2d``/``nn.Linear``/``nn.LayerNorm`` and plain
``torch.matmul``/``F.softmax`` for the attention.

Why it exists: Keras on its PyTorch backend runs the same network through Keras' layer
machinery (channels-last ``keras.ops``, a BatchNormalization made of separate operations,
``Layer.__call__``, Keras' train step). How much that costs is a ratio of two speeds, and a speed ratio only
carries over when both sides are timed in turns on the machine of the moment
(:mod:`vt_edu.training.speed`). :func:`twin_steps` therefore makes a step function of the
same shape as :func:`vt_edu.training.speed.keras_steps`, so a benchmark can pass both to
:func:`vt_edu.training.speed.alternating_speed`::

    keras_model = create_model("vt_resnet18", width=0.25)    # compiled with the fast recipe
    twin = build_twin("vt_resnet18", width=0.25)
    copy_keras_weights(keras_model, twin)                    # the same starting point
    speed = alternating_speed({"keras": keras_steps(keras_model, x, y, 128),
                               "torch": twin_steps(twin, x, y, 128)}, batch_size=128, rounds=6, steps=5)

A step does the work of one ``fast``-recipe step with ``clip_norm=5``: forward, label-smoothed
cross-entropy, backward, global-norm clipping, a Nesterov SGD update with weight decay. It
is not the Keras optimizer's arithmetic to the last bit (PyTorch couples the weight decay
to the gradient; its BatchNorm keeps the unbiased batch variance as running variance,
Keras the biased one); the operations per step and their sizes are the same.

How it is checked: ``tests/test_torch_twin.py`` compares every twin's parameter count with
Keras' ``count_params()`` and, after :func:`copy_keras_weights` from a Keras model whose
weights were all randomised (so that no zero-initialised branch hides a difference), its
logits with Keras' on the same images, to float32 rounding; and it trains a few
:func:`twin_steps`.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vt_edu.layers.transformer import INITIAL_LOGIT_SCALE, LAYER_NORM_EPSILON, MAX_LOGIT_SCALE
from vt_edu.models.resnet import RESNET18_BLOCKS, STAGE_CHANNELS, STAGE_STRIDES, scaled
from vt_edu.models.vt_resnet import ATTENTION_INIT_SCALE
from vt_edu.names import DEFAULT_NUM_TOKENS

__all__ = ["MODELS", "build_twin", "copy_keras_weights", "keras_param_count", "twin_steps"]

MODELS = ("resnet18", "vt_resnet18")
BN_EPSILON = 1e-5
#: Keras' momentum 0.9 keeps 0.9 of the old moving statistics; PyTorch's momentum is the
#: share of the new batch's: 1 - 0.9.
BN_MOMENTUM = 0.1
#: The rsqrt guard of the token transformer's cosines (``TokenTransformer._cosines``).
COSINE_EPSILON = 1e-12


# --- initialisation: Keras' initializers, so a twin trains from the same kind of start ---

def _he_normal_(weight: torch.Tensor) -> None:
    """Keras' ``he_normal``: a normal truncated at 2 std, rescaled to variance 2 / fan_in."""
    fan_in = weight[0].numel()  # (out, in, kh, kw): in * kh * kw, Keras' fan_in of HWIO
    std = math.sqrt(2.0 / fan_in) / 0.87962566103423978  # std of the truncated normal
    nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def _glorot(features_in: int, features_out: int) -> nn.Linear:
    """A bias-free matrix with Keras' ``glorot_uniform`` draw (symmetric in fan-in and fan-out)."""
    layer = nn.Linear(features_in, features_out, bias=False)
    nn.init.xavier_uniform_(layer.weight)
    return layer


def _named(module: nn.Module, keras_name: str) -> nn.Module:
    """Tag ``module`` with the name of its Keras layer, which :func:`copy_keras_weights` reads."""
    module.keras_name = keras_name
    return module


# --- ResNet-18 (vt_edu.models.resnet) ---

class SameConv2d(nn.Conv2d):
    """A bias-free ``Conv2D(padding="same")`` as Keras computes it.

    "same" pads ``(out - 1) * stride + k - in`` pixels in all, the odd one at the bottom
    and right. PyTorch's ``padding=`` is symmetric, which agrees for stride 1 but not for a
    3x3 stride-2 convolution of an even-sized map (Keras pads 0 before and 1 after; a
    symmetric 1 would move every window up and left by a pixel); those get an explicit
    ``F.pad``, as Keras' own PyTorch backend does.
    """

    def __init__(self, channels_in: int, channels_out: int, kernel: int, stride: int, keras_name: str):
        super().__init__(channels_in, channels_out, kernel, stride=stride, padding=0, bias=False)
        self.keras_name = keras_name
        _he_normal_(self.weight)

    def _pads(self, size: int, axis: int):
        k, s = self.kernel_size[axis], self.stride[axis]
        total = max(0, (-(-size // s) - 1) * s + k - size)
        return total // 2, total - total // 2

    def forward(self, x):
        top, bottom = self._pads(x.shape[-2], 0)
        left, right = self._pads(x.shape[-1], 1)
        if top == bottom and left == right:
            return F.conv2d(x, self.weight, None, self.stride, (top, left))
        return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, None, self.stride)


def _bn(channels: int, keras_name: str) -> nn.BatchNorm2d:
    return _named(nn.BatchNorm2d(channels, eps=BN_EPSILON, momentum=BN_MOMENTUM), keras_name)


class BasicBlock(nn.Module):
    """``relu(shortcut(x) + BN(conv3x3(relu(BN(conv3x3(x))))))``; the shortcut is a 1x1
    convolution + BN where the stride or the width changes (``basic_block``)."""

    def __init__(self, channels_in: int, channels: int, stride: int, name: str):
        super().__init__()
        self.conv1 = SameConv2d(channels_in, channels, 3, stride, f"{name}_conv1")
        self.bn1 = _bn(channels, f"{name}_bn1")
        self.conv2 = SameConv2d(channels, channels, 3, 1, f"{name}_conv2")
        self.bn2 = _bn(channels, f"{name}_bn2")
        self.down = None
        if stride != 1 or channels_in != channels:
            self.down = nn.Sequential(SameConv2d(channels_in, channels, 1, stride, f"{name}_down_conv"),
                                      _bn(channels, f"{name}_down_bn"))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.down is None else self.down(x)
        return F.relu(shortcut + y)


class ResNetTrunk(nn.Module):
    """The CIFAR stem (3x3/1 convolution, BN, ReLU) and the first ``num_stages`` stages."""

    def __init__(self, width: float, num_stages: int):
        super().__init__()
        channels = scaled(64, width)
        self.stem = nn.Sequential(SameConv2d(3, channels, 3, 1, "stem_conv"), _bn(channels, "stem_bn"),
                                  nn.ReLU())
        blocks = []
        for stage, (count, stage_channels, stride) in enumerate(
                zip(RESNET18_BLOCKS[:num_stages], STAGE_CHANNELS, STAGE_STRIDES), 1):
            for block in range(1, count + 1):
                out = scaled(stage_channels, width)
                blocks.append(BasicBlock(channels, out, stride if block == 1 else 1,
                                         f"stage{stage}_block{block}"))
                channels = out
        self.blocks = nn.Sequential(*blocks)
        self.channels = channels

    def forward(self, x):
        return self.blocks(self.stem(x))


def _logits_head(features: int, num_classes: int) -> nn.Linear:
    """``Dense(num_classes)``: glorot-uniform kernel, zero bias, as Keras starts it."""
    head = _named(nn.Linear(features, num_classes), "head_logits")
    nn.init.xavier_uniform_(head.weight)
    nn.init.zeros_(head.bias)
    return head


class ResNet18(nn.Module):
    """``resnet18``: trunk, global average pooling, ``Dense(num_classes)``."""

    def __init__(self, num_classes: int, width: float):
        super().__init__()
        self.trunk = ResNetTrunk(width, num_stages=4)
        self.head = _logits_head(self.trunk.channels, num_classes)

    def forward(self, x):
        return self.head(self.trunk(x).mean(dim=(2, 3)))


# --- the VT modules (vt_edu.layers); matrices act on the right, x @ W, as in the paper ---
# A Keras VT matrix W of shape (in, out) is the weight W.T of a bias-free nn.Linear, and
# F.linear(x, W.T) is the same product x @ W (one GEMM, the transpose is a free view).

def _flatten(feature_map):
    """``(B, C, H, W)`` channels_last → the paper's ``X``, ``(B, H*W, C)``: a view, no copy,
    because channels_last memory already is row-major pixels of C channels."""
    b, c, h, w = feature_map.shape
    return feature_map.permute(0, 2, 3, 1).reshape(b, h * w, c)


class FilterTokenizer(nn.Module):
    """Eq. 1 with ``W_V``: ``T = softmax_HW(X W_A)ᵀ X W_V`` (``FilterTokenizer``)."""

    def __init__(self, channels: int, num_tokens: int, token_channels: int, keras_name: str):
        super().__init__()
        self.keras_name = keras_name
        self.w_a = _glorot(channels, num_tokens)
        self.w_v = _glorot(channels, token_channels)

    def forward(self, x):  # x: (B, H*W, C)
        attention = F.softmax(self.w_a(x), dim=1)  # over the pixels: (B, H*W, L)
        return self.w_v(torch.matmul(attention.transpose(1, 2), x))  # (Aᵀ X) W_V: (B, L, C_T)


class RecurrentTokenizer(nn.Module):
    """Eq. 2 with ``W_V``: ``W_R = T_in W_TR``, ``T = softmax_HW(X W_Rᵀ)ᵀ X W_V``."""

    def __init__(self, token_channels_in: int, channels: int, token_channels: int, keras_name: str):
        super().__init__()
        self.keras_name = keras_name
        self.w_tr = _glorot(token_channels_in, channels)
        self.w_v = _glorot(channels, token_channels)

    def forward(self, x, tokens):
        w_r = self.w_tr(tokens)  # (B, L, C)
        attention = F.softmax(torch.matmul(x, w_r.transpose(1, 2)), dim=1)  # (B, H*W, L)
        return self.w_v(torch.matmul(attention.transpose(1, 2), x))


class TokenTransformer(nn.Module):
    """Eqs. 3-4 with one head, no value matrix, no norm and cosine attention::

        T' = T + softmax_L(s · cos(T K, T Q)) T,     T_out = T' + relu(T' F1) F2
    """

    def __init__(self, token_channels: int, keras_name: str):
        super().__init__()
        self.keras_name = keras_name
        self.k = _glorot(token_channels, token_channels)
        self.q = _glorot(token_channels, token_channels)
        self.f1 = _glorot(token_channels, token_channels)
        self.f2 = _glorot(token_channels, token_channels)
        self.log_logit_scale = nn.Parameter(torch.full((1,), math.log(INITIAL_LOGIT_SCALE)))

    def forward(self, tokens):
        rows, cols = self.k(tokens), self.q(tokens)  # T K, T Q: (B, L, C_T)
        # Keras' x * rsqrt(sum(x²) + eps), not F.normalize's x / max(|x|, eps): the same
        # cosines, and the same rounding.
        rows = rows * torch.rsqrt(rows.square().sum(dim=-1, keepdim=True) + COSINE_EPSILON)
        cols = cols * torch.rsqrt(cols.square().sum(dim=-1, keepdim=True) + COSINE_EPSILON)
        scale = torch.exp(torch.clamp(self.log_logit_scale, max=math.log(MAX_LOGIT_SCALE)))
        attention = F.softmax(torch.matmul(rows, cols.transpose(1, 2)) * scale, dim=-1)  # (B, L, L)
        hidden = tokens + torch.matmul(attention, tokens)
        return hidden + self.f2(F.relu(self.f1(hidden)))


class Projector(nn.Module):
    """Eq. 5 with ``W_V``: ``X_out = X + softmax_L((X W_Q)(T W_K)ᵀ) T W_V``."""

    def __init__(self, channels: int, token_channels: int, keras_name: str):
        super().__init__()
        self.keras_name = keras_name
        self.w_q = _glorot(channels, channels)
        self.w_k = _glorot(token_channels, channels)
        self.w_v = _glorot(token_channels, channels)

    def forward(self, x, tokens):
        attention = F.softmax(torch.matmul(self.w_q(x), self.w_k(tokens).transpose(1, 2)), dim=-1)
        return x + torch.matmul(attention, self.w_v(tokens))  # (B, H*W, C)


def _stabilise(tokenizer, transformer, projector) -> None:
    """``init="stable"`` (``vt_edu.models.vt_resnet.stabilise``): zero F2 and the projector's
    W_V, shrink the matrices that make attention logits."""
    with torch.no_grad():
        transformer.f2.weight.zero_()
        for layer in (transformer.k, transformer.q):
            layer.weight.mul_(ATTENTION_INIT_SCALE)
        if projector is not None:
            projector.w_v.weight.zero_()
            projector.w_k.weight.mul_(ATTENTION_INIT_SCALE)
        if isinstance(tokenizer, RecurrentTokenizer):
            tokenizer.w_tr.weight.mul_(ATTENTION_INIT_SCALE)


class VTResNet18(nn.Module):
    """``vt_resnet18``: stages 1-3, VT module 1 (filter tokenizer, transformer, projector),
    VT module 2 (recurrent tokenizer, transformer), mean over tokens, LayerNorm, Dense."""

    def __init__(self, num_classes: int, width: float, num_tokens: int = DEFAULT_NUM_TOKENS):
        super().__init__()
        self.trunk = ResNetTrunk(width, num_stages=3)
        channels = self.trunk.channels
        token_channels = 4 * channels
        self.tokenizer1 = FilterTokenizer(channels, num_tokens, token_channels, "vt_m1_tokenizer")
        self.transformer1 = TokenTransformer(token_channels, "vt_m1_transformer")
        self.projector1 = Projector(channels, token_channels, "vt_m1_projector")
        self.tokenizer2 = RecurrentTokenizer(token_channels, channels, token_channels, "vt_m2_tokenizer")
        self.transformer2 = TokenTransformer(token_channels, "vt_m2_transformer")
        _stabilise(self.tokenizer1, self.transformer1, self.projector1)
        _stabilise(self.tokenizer2, self.transformer2, None)
        self.head_norm = _named(nn.LayerNorm(token_channels, eps=LAYER_NORM_EPSILON), "head_norm")
        self.head = _logits_head(token_channels, num_classes)

    def forward(self, x):
        x = _flatten(self.trunk(x))  # (B, H*W, C)
        tokens = self.transformer1(self.tokenizer1(x))
        x = self.projector1(x, tokens)
        tokens = self.transformer2(self.tokenizer2(x, tokens))
        return self.head(self.head_norm(tokens.mean(dim=1)))


def build_twin(name: str, num_classes: int = 10, width: float = 0.25) -> nn.Module:
    """The PyTorch twin of ``create_model(name, num_classes, width=width)``, in channels_last memory.

    Raises:
        ValueError: ``name`` is not one of :data:`MODELS`.
    """
    if name == "resnet18":
        twin = ResNet18(num_classes, width)
    elif name == "vt_resnet18":
        twin = VTResNet18(num_classes, width)
    else:
        raise ValueError(f"no PyTorch twin of {name!r}; twins exist for {', '.join(MODELS)}.")
    return twin.to(memory_format=torch.channels_last)


def keras_param_count(twin: nn.Module) -> int:
    """The twin's parameters counted as Keras' ``count_params()`` counts them.

    Keras counts BatchNormalization's moving mean and variance (non-trainable weights);
    PyTorch keeps them as buffers, outside ``parameters()``. So: all parameters plus the
    running means and variances (not the ``num_batches_tracked`` step counters).
    """
    count = sum(p.numel() for p in twin.parameters())
    for module in twin.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            count += module.running_mean.numel() + module.running_var.numel()
    return count


# --- weights from Keras ---

_NORM_VARIABLES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
                   "moving_variance": "running_var"}


def _target(module: nn.Module, variable: str):
    """``(tensor, transform)``: where a Keras variable of ``module``'s layer goes, and how
    its array is rearranged on the way (HWIO → OIHW, ``(in, out)`` → ``(out, in)``)."""
    if isinstance(module, nn.Conv2d) and variable == "kernel":
        return module.weight, lambda a: a.transpose(3, 2, 0, 1)
    if isinstance(module, nn.Linear) and variable in ("kernel", "bias"):
        return (module.weight, np.transpose) if variable == "kernel" else (module.bias, None)
    if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)) and variable in _NORM_VARIABLES:
        return getattr(module, _NORM_VARIABLES[variable], None), None
    part = getattr(module, variable, None)  # a VT matrix, by its Keras name
    if isinstance(part, nn.Linear):
        return part.weight, np.transpose
    if isinstance(part, nn.Parameter):
        return part, None
    return None, None


def copy_keras_weights(keras_model, twin: nn.Module) -> None:
    """Copy every weight of ``keras_model`` into ``twin`` (made by :func:`build_twin` with
    the model's name, classes and width), on any Keras backend.

    Weights are matched by Keras layer name and variable name (``stage2_block1_conv1`` /
    ``kernel``), never by position.

    Raises:
        ValueError: a Keras weight without a place in the twin, a shape that differs, or a
            twin tensor that no Keras weight filled.
    """
    modules = {m.keras_name: m for m in twin.modules() if hasattr(m, "keras_name")}
    filled, problems = set(), []
    for layer in keras_model.layers:
        if not layer.weights:
            continue
        module = modules.get(layer.name)
        if module is None:
            problems.append(f"Keras layer {layer.name!r} has no counterpart in the twin")
            continue
        for variable, array in zip(layer.weights, layer.get_weights()):
            leaf = variable.name.split("/")[-1]
            tensor, transform = _target(module, leaf)
            if tensor is None:
                problems.append(f"{layer.name}/{leaf} has no place in {type(module).__name__}")
                continue
            array = np.asarray(array, dtype=np.float32)
            if transform is not None:
                array = transform(array)
            if tuple(array.shape) != tuple(tensor.shape):
                problems.append(f"{layer.name}/{leaf}: Keras {array.shape} vs twin {tuple(tensor.shape)}")
                continue
            with torch.no_grad():
                tensor.copy_(torch.from_numpy(np.ascontiguousarray(array)))
            filled.add(id(tensor))
    wanted = [(n, t) for n, t in [*twin.named_parameters(), *twin.named_buffers()]
              if not n.endswith("num_batches_tracked")]
    problems += [f"twin tensor {n} received no Keras weight" for n, t in wanted if id(t) not in filled]
    if problems:
        raise ValueError("copy_keras_weights: the models do not match:\n  " + "\n  ".join(problems))


# --- training steps ---

def twin_steps(twin: nn.Module, x, y, batch_size: int, *, learning_rate: float = 0.05, momentum: float = 0.9,
               weight_decay: float = 5e-4, label_smoothing: float = 0.1,
               clip_norm: float = 5.0) -> Callable[[int], float]:
    """Step ``i`` of the twin: one SGD step on batch ``i`` of ``x, y`` (cycling); returns its loss.

    The counterpart of :func:`vt_edu.training.speed.keras_steps` for a model compiled with
    the ``fast`` recipe and ``clip_norm=5``: Nesterov SGD with PyTorch's (coupled) weight
    decay, label-smoothed cross-entropy, gradients clipped to a global norm, train mode.
    The images are converted once, to a channels_last tensor on the twin's device.

    Args:
        twin: a model of :func:`build_twin`.
        x: images ``(N, H, W, C)``, channels last as Keras takes them, float32.
        y: integer labels ``(N,)``, or ``(N, classes)`` probabilities (one-hot).
        batch_size: images per step.

    Raises:
        ValueError: fewer than ``batch_size`` images, or ``x`` not ``(N, H, W, C)``.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"x must be images (N, H, W, C), got shape {x.shape}.")
    if len(x) < batch_size:
        raise ValueError(f"at least {batch_size} images are needed for one batch, got {len(x)}.")
    device = next(twin.parameters()).device
    # A contiguous NHWC array seen as NCHW already has channels_last strides: no copy here.
    images = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
    images = images.to(device).contiguous(memory_format=torch.channels_last)
    y = np.asarray(y)
    labels = torch.from_numpy(y.astype(np.int64) if y.ndim == 1 else y.astype(np.float32)).to(device)
    batches = [(images[i:i + batch_size], labels[i:i + batch_size])
               for i in range(0, len(x) - batch_size + 1, batch_size)]
    parameters = list(twin.parameters())
    optimizer = torch.optim.SGD(parameters, lr=learning_rate, momentum=momentum, weight_decay=weight_decay,
                                nesterov=True)
    twin.train()

    def step(i: int) -> float:
        images_i, labels_i = batches[i % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(twin(images_i), labels_i, label_smoothing=label_smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, clip_norm)
        optimizer.step()
        return loss.item()  # the loss as a number, as a training loop reads it

    return step
