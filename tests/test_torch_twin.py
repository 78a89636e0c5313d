"""benchmarks/torch_twin.py: the plain-PyTorch twins are the Keras models, layer for layer.

The proof is arithmetic: with every weight of a Keras model copied in, a twin returns the
same logits on the same images (float32 rounding), on whatever ``KERAS_BACKEND`` runs the
tests. The Keras weights are randomised first, so that no branch that ``init="stable"``
starts at zero (the transformer's F2, the projector's W_V) or BN statistic at 0/1 could
hide a difference.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from script_loader import load_script  # noqa: E402

from vt_edu.models import create_model  # noqa: E402

twin_script = load_script("benchmarks/torch_twin.py")

MODELS = ("resnet18", "vt_resnet18")
WIDTH = 0.125


def _randomise(keras_model, seed=0):
    """Give every Keras weight a random value of a scale that keeps activations near 1."""
    rng = np.random.default_rng(seed)
    for layer in keras_model.layers:
        if not layer.weights:
            continue
        values = []
        for variable, old in zip(layer.weights, layer.get_weights()):
            leaf = variable.name.split("/")[-1]
            if leaf == "moving_variance":
                new = rng.uniform(0.5, 1.5, old.shape)
            elif leaf == "gamma":
                new = 1.0 + 0.2 * rng.standard_normal(old.shape)
            elif leaf in ("beta", "moving_mean", "bias"):
                new = 0.2 * rng.standard_normal(old.shape)
            elif leaf == "log_logit_scale":
                new = np.log(10.0) + 0.3 * rng.standard_normal(old.shape)
            else:  # a kernel or a VT matrix: (..., fan_in, fan_out)
                fan_in = int(np.prod(old.shape[:-1]))
                new = rng.standard_normal(old.shape) / np.sqrt(fan_in)
            values.append(new.astype(np.float32))
        layer.set_weights(values)


@pytest.mark.parametrize("name", MODELS)
def test_a_twin_has_the_parameters_keras_counts(name):
    # Keras' count_params() includes BN's moving mean and variance; PyTorch keeps them as
    # buffers outside parameters(), so keras_param_count adds them back: like with like.
    for width in (WIDTH, 0.25):
        keras_model = create_model(name, num_classes=10, width=width)
        twin = twin_script.build_twin(name, num_classes=10, width=width)
        assert twin_script.keras_param_count(twin) == keras_model.count_params()
        trainable = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
        assert sum(p.numel() for p in twin.parameters()) == trainable


@pytest.mark.parametrize("name", MODELS)
def test_a_twin_with_the_keras_weights_gives_the_keras_logits(name):
    keras_model = create_model(name, num_classes=10, width=WIDTH)
    _randomise(keras_model)
    twin = twin_script.build_twin(name, num_classes=10, width=WIDTH)
    twin_script.copy_keras_weights(keras_model, twin)
    x = np.random.default_rng(1).standard_normal((4, 32, 32, 3)).astype(np.float32)
    # convert_to_numpy: on the torch backend the output is a tensor that tracks gradients.
    expected = keras.ops.convert_to_numpy(keras_model(x, training=False))
    twin.eval()
    with torch.no_grad():
        images = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        found = twin(images).numpy()
    assert found.shape == expected.shape == (4, 10)
    assert np.std(expected) > 0.1  # logits that differ between images and classes, not a flat output
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-4)


def test_copying_refuses_a_model_of_another_shape():
    keras_model = create_model("resnet18", num_classes=10, width=WIDTH)
    with pytest.raises(ValueError, match="stem_conv/kernel"):
        twin_script.copy_keras_weights(keras_model, twin_script.build_twin("resnet18", num_classes=10, width=0.25))
    with pytest.raises(ValueError, match="no counterpart"):
        twin_script.copy_keras_weights(keras_model, twin_script.build_twin("vt_resnet18", num_classes=10, width=WIDTH))


def test_twin_steps_train_the_twin():
    torch.manual_seed(0)
    twin = twin_script.build_twin("vt_resnet18", num_classes=10, width=WIDTH)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, size=12)
    before = [p.detach().clone() for p in twin.parameters()]
    step = twin_script.twin_steps(twin, x, y, batch_size=4)
    losses = [step(i) for i in range(3)]
    assert all(np.isfinite(losses)) and twin.training
    changed = [not torch.equal(b, p) for b, p in zip(before, twin.parameters())]
    assert all(changed)  # weight decay alone moves every weight, the gradient most of them
    with pytest.raises(ValueError, match="at least 4 images"):
        twin_script.twin_steps(twin, x[:3], y[:3], batch_size=4)


def test_only_the_two_resnets_have_twins():
    with pytest.raises(ValueError, match="resnet18, vt_resnet18"):
        twin_script.build_twin("vit")
