"""Every attention map of a VT-ResNet or a VT-FPN, for the chapters' pictures.

:func:`vt_resnet_attention` gives each VT module of a model built by
``create_model("vt_resnet18", ...)`` back its :class:`~vt_edu.layers.VTModule`
(:meth:`~vt_edu.layers.VTModule.from_parts`, sharing the model's layers and weights) and
runs :meth:`~vt_edu.layers.VTModule.forward_features` with ``return_attention=True``:
the wiring is the module's own, the same that built the model, so there is no second
copy of it here. The parts are recognised by their types, in the order of
``model.layers``; the tests check that the run ends at the model's own logits.
:func:`vt_fpn_attention` does the same for VT-FPN's tokens with
:class:`~vt_edu.models.fpn.PyramidTokens`.
"""

from __future__ import annotations

import keras
import numpy as np

from vt_edu.layers import FilterTokenizer, PoolingTokenizer, Projector, RecurrentTokenizer, TokenTransformer, VTModule
from vt_edu.models.fpn import PyramidTokens

_TOKENIZERS = (FilterTokenizer, RecurrentTokenizer, PoolingTokenizer)


def vt_modules(model) -> list:
    """The VT modules of a VT-ResNet, in the order they run.

    Args:
        model: a model from ``create_model("vt_resnet18", ...)``.

    Returns:
        A list of built :class:`~vt_edu.layers.VTModule`, one per module, sharing the
        model's layers.

    Raises:
        ValueError: the model has no VT tokenizer.
    """
    groups = []
    for layer in model.layers:
        if isinstance(layer, _TOKENIZERS):
            groups.append({"tokenizer": layer})
        elif groups and isinstance(layer, TokenTransformer) and "transformer" not in groups[-1]:
            groups[-1]["transformer"] = layer
        elif groups and isinstance(layer, Projector) and "transformer" in groups[-1]:
            groups[-1]["projector"] = layer
        elif groups and isinstance(layer, keras.layers.Dense) and "transformer" not in groups[-1]:
            groups[-1]["value"] = layer  # the pooling ablation's W_V
    if not groups:
        raise ValueError(f"model {model.name!r} has no VT modules (no VT tokenizer among its layers)")
    return [VTModule.from_parts(name=f"vt_m{i}", **parts) for i, parts in enumerate(groups, start=1)]


def vt_resnet_attention(model, images, batch_size: int = 64) -> dict:
    """Run a VT-ResNet on ``images`` and collect every intermediate attention map.

    Args:
        model: a model from ``create_model("vt_resnet18", ...)``.
        images: normalised float images ``(B, H, W, 3)`` (as the model was trained on).
        batch_size: images per forward pass.

    Returns:
        A dict of NumPy arrays:

        * ``"feature_map"``: the stage-3 map entering the VT modules, ``(B, h, w, C)``.
        * ``"modules"``: one dict per VT module with ``"tokenizer"`` ``(B, h*w, L)``
          (columns sum to 1 over pixels), ``"tokens"`` ``(B, L, C_T)`` (the tokenizer's
          output), ``"transformer"`` ``(B, L, L)`` (rows sum to 1 over tokens),
          ``"tokens_out"`` ``(B, L, C_T)``, and, for modules followed by a projector,
          ``"projector"`` ``(B, h*w, L)`` (rows sum to 1 over tokens) and
          ``"feature_map_out"`` ``(B, h, w, C)``.
        * ``"logits"``: ``(B, classes)``, the model's output.
    """
    modules = vt_modules(model)
    trunk = keras.Model(model.input, modules[0].tokenizer.input)
    head = keras.Model(modules[-1].transformer.output, model.outputs)

    parts = [_run(modules, trunk, head, images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    per_module = [
        {key: np.concatenate([p["modules"][m][key] for p in parts]) for key in parts[0]["modules"][m]}
        for m in range(len(modules))
    ]
    return {
        "feature_map": np.concatenate([p["feature_map"] for p in parts]),
        "modules": per_module,
        "logits": np.concatenate([p["logits"] for p in parts]),
    }


def _run(modules, trunk, head, images):
    x = trunk(images, training=False)
    result = {"feature_map": keras.ops.convert_to_numpy(x), "modules": []}
    tokens = None
    for module in modules:
        found = module.forward_features(
            x, tokens if module.tokenizer_kind == "recurrent" else None, return_attention=True
        )
        if module.projector is None:
            del found["feature_map_out"]  # the map passes through unchanged
        x, tokens = found.get("feature_map_out", x), found["tokens_out"]
        result["modules"].append({k: keras.ops.convert_to_numpy(v) for k, v in found.items()})
    result["logits"] = keras.ops.convert_to_numpy(head(tokens, training=False))
    return result


def vt_fpn_attention(model, images, batch_size: int = 64) -> dict:
    """Run a VT-FPN on ``images`` and collect its attention maps, level by level.

    The parts are the model's own (:meth:`~vt_edu.models.fpn.PyramidTokens.from_model`)
    and run through the one wiring that built the model
    (:meth:`~vt_edu.models.fpn.PyramidTokens.forward_features`).

    Args:
        model: a model from ``create_model("vt_fpn", ...)`` (with ``use_projector=True``).
        images: normalised float images ``(B, H, W, 3)`` (as the model was trained on).
        batch_size: images per forward pass.

    Returns:
        A dict of NumPy arrays:

        * ``"levels"``: ``{"p2": {...}, "p3": {...}, ...}`` (finest first), each with
          ``"size"`` ``(H_i, W_i)``, ``"tokenizer"`` ``(B, H_i*W_i, L)`` (columns sum to 1
          over the level's pixels), ``"projector"`` ``(B, H_i*W_i, L)`` (rows sum to 1
          over the level's tokens) and ``"tokens"``, the level's ``(start, stop)`` in the
          transformer's sequence.
        * ``"transformer"``: ``(B, N, N)`` with ``N`` = 4L tokens of all levels (rows sum
          to 1); entry ``[b, i, j]`` says how much token ``i`` takes from token ``j``.
        * ``"logits"``: ``(B, H, W, classes)``, the model's output.

    Raises:
        ValueError: the model has no VT-FPN tokens.
    """
    pyramid = PyramidTokens.from_model(model)
    trunk = keras.Model(model.input, [tokenizer.input for tokenizer in pyramid.tokenizers])
    head = keras.Model([projector.output for projector in pyramid.projectors], model.outputs)

    parts = []
    for start in range(0, len(images), batch_size):
        maps = trunk(images[start : start + batch_size], training=False)
        found = pyramid.forward_features(maps, return_attention=True)
        logits = head(found["maps_out"], training=False)
        numpy = keras.ops.convert_to_numpy
        parts.append({
            "tokenizer": [numpy(a) for a in found["tokenizer"]],
            "projector": [numpy(a) for a in found["projector"]],
            "transformer": numpy(found["transformer"]),
            "logits": numpy(logits),
        })
    levels = {}
    for i, (level, tokens) in enumerate(pyramid.token_ranges().items()):
        shape = pyramid.tokenizers[i].input.shape
        levels[level] = {
            "size": (int(shape[1]), int(shape[2])),
            "tokenizer": np.concatenate([p["tokenizer"][i] for p in parts]),
            "projector": np.concatenate([p["projector"][i] for p in parts]),
            "tokens": tokens,
        }
    return {
        "levels": levels,
        "transformer": np.concatenate([p["transformer"] for p in parts]),
        "logits": np.concatenate([p["logits"] for p in parts]),
    }
