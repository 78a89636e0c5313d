"""CPU fast paths for Keras 3's PyTorch backend (opt-in; results equal up to float rounding).

Profiling VT-ResNet-18 and ResNet-18 at width 0.25 on a 2-core CPU (``torch.profiler`` and
``cProfile``, Keras 3.15.1, PyTorch 2.13) against plain-PyTorch twins of the same networks
(``benchmarks/torch_twin.py``) showed four places where Keras' PyTorch backend does more
than the twin:

1. **BatchNormalization is computed op by op.** ``ops.moments`` and
   ``ops.batch_normalization`` make about ten full passes (mean, square, mean,
   subtract, multiply, add, and their gradients) over every activation; on the
   32x32 stage these element-wise passes cost more than the convolutions.
   PyTorch's ``batch_norm`` does the same arithmetic in one fused kernel each way.
2. **Every convolution copies its input twice.** ``keras.src.backend.torch.nn.conv``
   permutes the channels-last input to channels-first and makes it ``contiguous()``
   (a copy), then converts it to the channels-last *memory format* for oneDNN (a copy
   back). The permuted view of a contiguous ``(B, H, W, C)`` tensor already *is* a
   channels-last ``(B, C, H, W)`` tensor, so both copies can be skipped. (Keras 3.15
   added the ``contiguous()``; before it the replacement is the same as Keras' own.)
3. **Every layer call runs Keras' whole call machinery.** ``Layer.__call__`` converts and
   checks its inputs, binds the call signature, opens name and autocast scopes and looks
   for masks: about 0.1 ms of Python per call, whatever the batch size (a ResNet-18 forward
   pass makes 67 such calls: 15.4 ms at batch 2, against 8.2 ms with every layer's ``call``
   run directly and 3.3 ms for the twin). Inside a functional model, a built Keras
   layer of the plain kinds these models use (:data:`DIRECT_CALL_LAYERS`) is called
   directly (``layer.call``) when none of that machinery has anything to do: float32
   throughout, PyTorch tensors without masks, no autocast scope, distribution, activity
   regularizer, rematerialisation, quantisation or PyTorch hook. Anything else goes
   through ``Layer.__call__`` as before (:func:`needs_layer_call`).
4. **Global-norm clipping is one small operation per weight.** Keras'
   ``clip_by_global_norm`` squares and sums every gradient separately (three operations
   per weight, ~190 for ResNet-18); PyTorch's multi-tensor ``_foreach_norm`` and
   ``_foreach_mul`` do it in two calls, as ``torch.nn.utils.clip_grad_norm_`` does.

:func:`enable` replaces those four pieces while the process runs; everything else in
Keras is untouched, and the layers of :mod:`vt_edu` stay backend-neutral
(``keras.ops`` only): this module is backend plumbing, used only with
``KERAS_BACKEND=torch``. The replacements compute what Keras computes: the same
outputs and gradients up to float rounding, the same moving-statistics update
(biased batch variance, Keras' momentum), the same ``training``/``trainable``
rules; anything they do not cover (masks, renorm, synchronized BN, non-float32
inputs, axes other than the last) falls back to Keras' own code.
``tests/test_torch_fast_paths.py`` checks outputs, gradients and moving statistics
against stock Keras for every registry model. Measured gain: ``benchmarks/matched_benchmark.py
--speed`` times Keras with and without them and the plain-PyTorch twins side by side
(``results/matched/benchmark.md``).

Use::

    import vt_edu.torch_fast_paths as fast
    fast.enable()      # before training; a no-op on other backends (returns False)
    with fast.enabled():   # or only for a block (what ``train(torch_fast_paths=True)`` does)
        model.fit(...)

or ``python -m vt_edu train --torch-fast-paths ...``.
"""

from __future__ import annotations

import contextlib

__all__ = ["enable", "disable", "is_enabled", "enabled", "missing_keras_internals", "needs_keras_code",
           "needs_layer_call", "DIRECT_CALL_LAYERS"]

_ORIGINALS: dict = {}
# What the fused BatchNormalization reads from a built Keras layer: present, with the
# same meaning, in every Keras from 3.8 to 3.15 (renorm, added in 3.14, is optional).
BATCH_NORM_ATTRIBUTES = ("axis", "epsilon", "momentum", "center", "scale", "synchronized", "trainable",
                         "compute_dtype", "gamma", "beta", "moving_mean", "moving_variance")
TRANSPOSE_HELPER = "_transpose_spatial_inputs"  # private helper of keras.src.backend.torch.nn
#: The function that makes a functional model's per-layer callables (keras.src.models.functional)
#: and Keras' global-norm clipping (keras.src.optimizers.base_optimizer).
OPERATION_FN = "operation_fn"
CLIP_BY_GLOBAL_NORM = "clip_by_global_norm"
#: Keras layers whose ``call`` needs nothing from ``Layer.__call__`` once built (float32, no
#: masks): the ones the registry's ResNets and ViTs are made of.
DIRECT_CALL_LAYERS = ("Conv2D", "BatchNormalization", "ReLU", "Activation", "Add", "Dense",
                      "LayerNormalization", "GlobalAveragePooling1D", "GlobalAveragePooling2D")
_DIRECT_CALL_NAMES = frozenset(DIRECT_CALL_LAYERS)


def needs_keras_code(layer, ndim: int, is_float32: bool, mask=None) -> bool:
    """Whether a BatchNormalization call is one the fused path does not cover.

    Args:
        layer: the (built) Keras ``BatchNormalization`` layer.
        ndim: rank of its input.
        is_float32: whether the input is float32.
        mask: the call's mask.

    Returns:
        ``True`` for Keras' own code: a mask, batch renormalization (Keras 3.14+; older
        versions have no ``renorm``), synchronized statistics, a rank other than 2 or 4,
        an axis other than the last, or anything but float32.
    """
    return (
        mask is not None
        or bool(getattr(layer, "renorm", False))
        or layer.synchronized
        or ndim not in (2, 4)
        or layer.axis not in (-1, ndim - 1)
        or not is_float32
        or layer.compute_dtype != "float32"
    )


def needs_layer_call(layer, tensors, kwargs) -> bool:
    """Whether a layer inside a functional model must go through Keras' ``Layer.__call__``.

    Args:
        layer: the Keras layer about to be called.
        tensors: its positional arguments, lists opened (a nested list is not a tensor: Keras' code).
        kwargs: its keyword arguments (the call-context ones, ``training``, included).

    Returns:
        ``False`` only for a built layer of :data:`DIRECT_CALL_LAYERS` (the class itself, not a
        subclass) computing and storing float32, given float32 PyTorch tensors (not subclasses) without Keras
        masks and no keyword but ``training`` and ``mask=None`` (which a functional model
        records for every layer that takes a mask), outside an autocast scope and a distribution,
        with no activity regularizer, rematerialisation, quantisation or PyTorch forward hook
        (the layer's or a global one).
    """
    import torch
    from keras.src.backend.common.global_state import get_global_attribute
    from torch.nn.modules import module as torch_module

    return (
        type(layer).__name__ not in _DIRECT_CALL_NAMES
        or not type(layer).__module__.startswith("keras.")
        or not layer.built
        or layer.compute_dtype != "float32"
        or layer.variable_dtype != "float32"
        or getattr(layer, "activity_regularizer", None) is not None
        or getattr(layer, "_remat_mode", None) is not None
        or getattr(layer, "quantization_mode", None) is not None
        or bool(layer._forward_hooks or layer._forward_pre_hooks)
        or bool(getattr(torch_module, "_global_forward_hooks", None)
                or getattr(torch_module, "_global_forward_pre_hooks", None))
        or any(k != "training" and not (k == "mask" and v is None) for k, v in kwargs.items())
        or not tensors
        or any(type(t) is not torch.Tensor or t.dtype != torch.float32
               or getattr(t, "_keras_mask", None) is not None for t in tensors)
        or get_global_attribute("autocast_scope") is not None
        or get_global_attribute("distribution") is not None
    )


def _one_level(args) -> list:
    """Positional arguments with lists and tuples opened one level (``Add`` takes a list)."""
    flat = []
    for a in args:
        if isinstance(a, (list, tuple)):
            flat.extend(a)
        else:
            flat.append(a)
    return flat


def missing_keras_internals(batch_norm_layer, torch_nn, functional=None, base_optimizer=None) -> list:
    """What the fast paths rely on and this Keras lacks.

    Args:
        batch_norm_layer: a built ``keras.layers.BatchNormalization``.
        torch_nn: the module ``keras.src.backend.torch.nn``.
        functional: the module ``keras.src.models.functional`` (not checked if ``None``).
        base_optimizer: the module ``keras.src.optimizers.base_optimizer`` (not checked if ``None``).

    Returns:
        Names of the missing pieces (``[]``: the fast paths can be enabled).
    """
    import inspect

    missing = []
    if not callable(getattr(torch_nn, TRANSPOSE_HELPER, None)):
        missing.append(f"keras.src.backend.torch.nn.{TRANSPOSE_HELPER}")
    if functional is not None:
        fn = getattr(functional, OPERATION_FN, None)
        # Keras 3.8: operation_fn(operation, training); 3.13 and 3.15: (operation, **call_context_args).
        if not callable(fn) or list(inspect.signature(fn).parameters) not in (["operation", "training"],
                                                                             ["operation", "call_context_args"]):
            missing.append(f"keras.src.models.functional.{OPERATION_FN}(operation, training)")
    if base_optimizer is not None:
        fn = getattr(base_optimizer, CLIP_BY_GLOBAL_NORM, None)
        if not callable(fn) or list(inspect.signature(fn).parameters) != ["value_list", "clip_norm"]:
            missing.append(f"keras.src.optimizers.base_optimizer.{CLIP_BY_GLOBAL_NORM}(value_list, clip_norm)")
    call = getattr(type(batch_norm_layer), "call", None)
    if call is None or list(inspect.signature(call).parameters)[:4] != ["self", "inputs", "training", "mask"]:
        missing.append("BatchNormalization.call(inputs, training, mask)")
    missing += [f"BatchNormalization.{name}" for name in BATCH_NORM_ATTRIBUTES if not hasattr(batch_norm_layer, name)]
    return missing


def _fused_batch_norm_call(original_call):
    import torch
    import torch.nn.functional as F
    from keras.src.backend.common.stateless_scope import in_stateless_scope

    def call(self, inputs, training=None, mask=None):
        if needs_keras_code(self, inputs.ndim, inputs.dtype == torch.float32, mask):
            return original_call(self, inputs, training=training, mask=mask)
        # (B, H, W, C) -> (B, C, H, W) as a view: PyTorch normalises dimension 1.
        x = inputs.permute(0, 3, 1, 2) if inputs.ndim == 4 else inputs
        gamma = self.gamma.value if self.scale else None
        beta = self.beta.value if self.center else None
        if training and self.trainable:
            # One fused pass normalises and returns the batch mean and 1/sqrt(var + eps) it used;
            # the moving statistics follow Keras' rule, new = momentum * old + (1 - momentum) *
            # batch, with the *biased* batch variance (PyTorch's own running update would take
            # the unbiased one, and a separate var_mean pass costs as much as the normalisation).
            y, mean, inverse_std = torch.native_batch_norm(x, gamma, beta, None, None, True, 0.0, self.epsilon)
            with torch.no_grad():
                variance = inverse_std.pow(-2) - self.epsilon
                if in_stateless_scope():  # the scope collects new values: assign() hands them over
                    self.moving_mean.assign(self.moving_mean.value * self.momentum + mean * (1.0 - self.momentum))
                    self.moving_variance.assign(
                        self.moving_variance.value * self.momentum + variance * (1.0 - self.momentum)
                    )
                else:  # in place: the same update without assign()'s conversions and checks
                    self.moving_mean.value.mul_(self.momentum).add_(mean, alpha=1.0 - self.momentum)
                    self.moving_variance.value.mul_(self.momentum).add_(variance, alpha=1.0 - self.momentum)
        else:
            y = F.batch_norm(
                x, self.moving_mean.value, self.moving_variance.value, gamma, beta,
                training=False, eps=self.epsilon,
            )
        return y.permute(0, 2, 3, 1) if inputs.ndim == 4 else y

    return call


def _transpose_without_copies(original):
    import torch

    def transpose(inputs):
        if inputs.ndim == 4:
            # A view; for a contiguous (B, H, W, C) input it is (B, C, H, W) in the
            # channels-last memory format that oneDNN's convolution wants anyway.
            return torch.permute(inputs, (0, 3, 1, 2))
        return original(inputs)

    return transpose


def _direct_layer_calls(original_operation_fn):
    def operation_fn(operation, **context):
        keras_call = original_operation_fn(operation, **context)
        if type(operation).__name__ not in _DIRECT_CALL_NAMES:  # the common case, decided once per model call
            return keras_call
        training = context.pop("training", None)
        if any(value is not None for value in context.values()):  # other call-context arguments: Keras' code
            return keras_call

        def call(*args, **kwargs):
            if needs_layer_call(operation, _one_level(args), kwargs):
                return keras_call(*args, **kwargs)
            if training is not None and operation._call_has_training_arg:
                return operation.call(*args, training=training)
            return operation.call(*args)

        return call

    return operation_fn


def _foreach_clip_by_global_norm(original):
    import torch

    def clip_by_global_norm(value_list, clip_norm):
        present = [v for v in value_list if v is not None]
        if not present or any(not isinstance(v, torch.Tensor) or v.dtype != torch.float32 for v in present):
            return original(value_list, clip_norm)
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(present)))
        # Keras' scale, NaN for a non-finite norm included: clip_norm * min(1/norm, 1/clip_norm) + (norm - norm).
        scale = clip_norm * torch.minimum(1.0 / norm, torch.tensor(1.0 / clip_norm)) + (norm - norm)
        scaled = iter(torch._foreach_mul(present, scale))
        return [None if v is None else next(scaled) for v in value_list]

    return clip_by_global_norm


def enable() -> bool:
    """Switch the fast paths on (idempotent). Returns ``True`` if they are on.

    Returns ``False`` and changes nothing when the Keras backend is not PyTorch.

    Raises:
        RuntimeError: this Keras version lacks a private piece the fast paths read or replace.
    """
    import keras

    if keras.backend.backend() != "torch":
        return False
    if _ORIGINALS:
        return True
    from keras.src.backend.torch import nn as torch_nn
    from keras.src.layers.normalization.batch_normalization import BatchNormalization
    from keras.src.models import functional
    from keras.src.optimizers import base_optimizer

    probe = BatchNormalization()
    probe.build((None, 2))
    missing = missing_keras_internals(probe, torch_nn, functional, base_optimizer)
    if not hasattr(probe, "_call_has_training_arg"):
        missing.append("Layer._call_has_training_arg")
    if missing:
        raise RuntimeError(
            f"Keras {keras.__version__} lacks {', '.join(missing)}: vt_edu.torch_fast_paths needs updating for "
            "it (train without --torch-fast-paths meanwhile)."
        )
    _ORIGINALS["call"] = BatchNormalization.call
    _ORIGINALS["transpose"] = torch_nn._transpose_spatial_inputs
    _ORIGINALS["operation_fn"] = functional.operation_fn
    _ORIGINALS["clip"] = base_optimizer.clip_by_global_norm
    BatchNormalization.call = _fused_batch_norm_call(_ORIGINALS["call"])
    torch_nn._transpose_spatial_inputs = _transpose_without_copies(_ORIGINALS["transpose"])
    functional.operation_fn = _direct_layer_calls(_ORIGINALS["operation_fn"])
    base_optimizer.clip_by_global_norm = _foreach_clip_by_global_norm(_ORIGINALS["clip"])
    return True


def disable() -> None:
    """Restore Keras' own code (idempotent)."""
    if not _ORIGINALS:
        return
    from keras.src.backend.torch import nn as torch_nn
    from keras.src.layers.normalization.batch_normalization import BatchNormalization
    from keras.src.models import functional
    from keras.src.optimizers import base_optimizer

    BatchNormalization.call = _ORIGINALS.pop("call")
    torch_nn._transpose_spatial_inputs = _ORIGINALS.pop("transpose")
    functional.operation_fn = _ORIGINALS.pop("operation_fn")
    base_optimizer.clip_by_global_norm = _ORIGINALS.pop("clip")


def is_enabled() -> bool:
    """Whether :func:`enable` is in effect."""
    return bool(_ORIGINALS)


@contextlib.contextmanager
def enabled(on: bool = True):
    """Context manager: the fast paths on inside the block, the previous state after it.

    Args:
        on: ``False`` leaves everything as it is (so callers can pass their option through).

    Raises:
        RuntimeError: ``on`` and the Keras backend is not PyTorch.
    """
    if not on:
        yield
        return
    was_on = is_enabled()
    if not enable():
        import keras

        raise RuntimeError(f"the PyTorch fast paths need KERAS_BACKEND=torch, not {keras.backend.backend()!r}.")
    try:
        yield
    finally:
        if not was_on:
            disable()
