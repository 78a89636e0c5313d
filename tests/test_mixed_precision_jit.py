"""Every classification model trains under ``mixed_float16`` with XLA (``jit_compile=True``).

This is what a GPU run uses by default (:func:`vt_edu.training.train` turns on mixed
precision and XLA when it sees a GPU), checked here on the CPU with tiny models, 32
normal-scale images and a few batches: the weights stay float32, the layers compute in
float16, and the loss stays finite and falls. Nothing is timed.

TensorFlow compiles these steps with XLA on a CPU. JAX's CPU backend cannot: its
float16 batched matmuls (attention in ViT and VT) fail with "The precision
'F16_F16_F32' is not supported by dot_general on CPU", a limit of that backend only.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from test_models import TINY
from vt_edu.models import create_model
from vt_edu.names import CLASSIFICATION_MODELS
from vt_edu.training import get_recipe
from vt_edu.training.loop import compile_for_training

EPOCHS, BATCH, IMAGES = 3, 16, 32


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="XLA with float16 on a CPU: TensorFlow only")
@pytest.mark.parametrize("name", CLASSIFICATION_MODELS)  # per-pixel models: tests/test_fpn.py
def test_model_trains_with_mixed_float16_and_xla(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(IMAGES, 32, 32, 3)).astype("float32")  # the scale of normalised images
    y = rng.integers(0, 10, size=IMAGES)
    keras.utils.set_random_seed(0)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    # The tutorial ViT's RandomRotation cannot be compiled (test below): the rest of it can.
    options = {**TINY[name], **({"augment": False} if name == "tutorial_vit" else {})}
    try:
        model = create_model(name, num_classes=10, **options)
    finally:
        keras.config.set_dtype_policy(previous)
    compile_for_training(model, get_recipe("seed"), BATCH, IMAGES // BATCH, EPOCHS, 10, jit_compile=True)
    assert model.jit_compile is True

    losses = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0).history["loss"]

    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    assert "float16" in {layer.compute_dtype for layer in model.layers if layer.weights}
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses


def test_a_model_xla_cannot_compile_trains_without_it_and_without_a_warning(recwarn):
    model = create_model("tutorial_vit", num_classes=10, **TINY["tutorial_vit"])
    compile_for_training(model, get_recipe("seed"), BATCH, IMAGES // BATCH, EPOCHS, 10, jit_compile=True)
    assert model.jit_compile is False
    assert not [w for w in recwarn if "jit_compile" in str(w.message)]


def test_a_run_records_that_xla_was_left_off(tmp_path):
    from vt_edu.training import train

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (16, 32, 32, 3)).astype(np.uint8)
    data = ((images, np.arange(16) % 2), (images[:8], np.arange(8) % 2), ["a", "b"])
    result = train("tutorial_vit", data=data, recipe="seed", epochs=1, batch_size=8, jit_compile=True, verbose=0,
                   model_options=TINY["tutorial_vit"], run_dir=tmp_path / "run")
    assert result.config["jit_compile"] is True  # asked for
    assert result.metrics["jit_compile"] is False  # what compiled: RandomRotation cannot be
