"""Every attention map of a VT-ResNet, for the chapters' pictures.

:func:`vt_resnet_attention` re-runs the VT part of a model built by
``create_model("vt_resnet18", ...)`` layer by layer, asking each layer for its attention
(``return_attention=True``). The layers are the model's own, so there is no second copy
of the maths: only the wiring of :mod:`vt_edu.models.vt_resnet` is followed here, by the
layer names it gives (``vt_m{i}_tokenizer``, ``vt_m{i}_value``, ``vt_m{i}_transformer``,
``vt_m{i}_projector``). The tests check that the walk ends at the model's own logits.
"""

from __future__ import annotations

import re

import keras
import numpy as np

from vt_edu.layers import RecurrentTokenizer


def _module_count(model) -> int:
    found = [re.fullmatch(r"vt_m(\d+)_tokenizer", layer.name) for layer in model.layers]
    count = max((int(m.group(1)) for m in found if m), default=0)
    if count == 0:
        raise ValueError(f"model {model.name!r} has no VT modules (no layer named vt_m1_tokenizer)")
    return count


def _optional_layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


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
    num_modules = _module_count(model)
    trunk = keras.Model(model.input, model.get_layer("vt_m1_tokenizer").input)
    head = keras.Model(model.get_layer("head_pool").input, model.outputs)

    parts = [_walk(model, trunk, head, num_modules, images[i : i + batch_size])
             for i in range(0, len(images), batch_size)]
    modules = [
        {key: np.concatenate([p["modules"][m][key] for p in parts]) for key in parts[0]["modules"][m]}
        for m in range(num_modules)
    ]
    return {
        "feature_map": np.concatenate([p["feature_map"] for p in parts]),
        "modules": modules,
        "logits": np.concatenate([p["logits"] for p in parts]),
    }


def _walk(model, trunk, head, num_modules, images):
    x = trunk(images, training=False)
    result = {"feature_map": keras.ops.convert_to_numpy(x), "modules": []}
    tokens = None
    for m in range(1, num_modules + 1):
        found = {}
        tokenizer = model.get_layer(f"vt_m{m}_tokenizer")
        if isinstance(tokenizer, RecurrentTokenizer):
            tokens, found["tokenizer"] = tokenizer(x, tokens, return_attention=True)
        else:
            tokens, found["tokenizer"] = tokenizer(x, return_attention=True)
        value = _optional_layer(model, f"vt_m{m}_value")  # the pooling ablation's W_V
        if value is not None:
            tokens = value(tokens)
        found["tokens"] = tokens
        tokens, found["transformer"] = model.get_layer(f"vt_m{m}_transformer")(tokens, return_attention=True)
        found["tokens_out"] = tokens
        projector = _optional_layer(model, f"vt_m{m}_projector")
        if projector is not None:
            x, found["projector"] = projector(x, tokens, return_attention=True)
            found["feature_map_out"] = x
        result["modules"].append({k: keras.ops.convert_to_numpy(v) for k, v in found.items()})
    result["logits"] = keras.ops.convert_to_numpy(head(tokens, training=False))
    return result
