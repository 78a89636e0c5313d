"""vt_edu.layers: gradients reach every weight; configs, serialization and .keras files.

Gradients are taken in the backend's own way (tf.GradientTape, jax.grad over
``stateless_call``, or torch autograd) by a helper that lives only in this test.
"""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

from vt_edu.layers import (
    FilterTokenizer,
    PoolingTokenizer,
    Projector,
    RecurrentTokenizer,
    TokenTransformer,
    VTModule,
)

from layer_helpers import randn, randomize, to_np


def gradients(layer, inputs, **kwargs):
    """d loss / d weight for every trainable weight; loss = <outputs, random R>.

    A random R (rather than a plain sum) avoids accidental zeros: the sum of a
    projector's output, say, does not depend on how attention is spread.
    """
    outputs = keras.tree.flatten(layer(*inputs, **kwargs))
    rng = np.random.default_rng(42)
    targets = [rng.normal(size=o.shape).astype("float32") for o in outputs]

    def loss_of(outs):
        return sum(keras.ops.sum(o * r) for o, r in zip(keras.tree.flatten(outs), targets))

    weights = layer.trainable_weights
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_of(layer(*inputs, **kwargs))
        grads = tape.gradient(loss, weights)
    elif backend == "jax":
        import jax

        def loss_fn(values):
            non_trainable = [v.value for v in layer.non_trainable_weights]
            outs, _ = layer.stateless_call(values, non_trainable, *inputs, **kwargs)
            return loss_of(outs)

        grads = jax.grad(loss_fn)([v.value for v in weights])
    elif backend == "torch":
        loss_of(layer(*inputs, **kwargs)).backward()
        grads = [v.value.grad for v in weights]
    else:  # pragma: no cover
        pytest.skip(f"no gradient helper for backend {backend}")
    return {v.path: (None if g is None else to_np(g)) for v, g in zip(weights, grads)}


GRADIENT_CASES = {
    "filter": (lambda: FilterTokenizer(4), False, 6),
    "filter_value": (lambda: FilterTokenizer(4, 10, use_value_projection=True), False, 6),
    "recurrent": (lambda: RecurrentTokenizer(), True, 6),
    "recurrent_value": (lambda: RecurrentTokenizer(8, use_value_projection=True), True, 10),
    "transformer": (lambda: TokenTransformer(), None, 6),
    "transformer_all": (
        lambda: TokenTransformer(2, True, use_value_projection=True, norm="pre"),
        None,
        6,
    ),
    "transformer_post": (lambda: TokenTransformer(3, norm="post"), None, 6),
    "projector": (lambda: Projector(), True, 6),
    "projector_value": (lambda: Projector(use_value_projection=True), True, 10),
    "vt_module": (lambda: VTModule(4, num_heads=2, norm="pre"), False, 6),
    "vt_module_recurrent": (
        lambda: VTModule(4, "recurrent", use_value_projection=True, token_channels=10),
        True,
        10,
    ),
}


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_gradients_reach_every_weight(name):
    make, needs_tokens, token_width = GRADIENT_CASES[name]
    layer = make()
    x = randn(2, 4, 8, 6)
    tokens = randn(2, 4, token_width, seed=3)
    inputs = (tokens,) if needs_tokens is None else (x, tokens) if needs_tokens else (x,)
    layer(*inputs)
    randomize(layer)
    grads = gradients(layer, inputs)
    expected = {"w_a", "w_v", "w_tr", "k", "q", "f1", "f2", "w_q", "w_k", "gamma", "beta"}
    assert grads and {path.split("/")[-1] for path in grads} <= expected
    for path, grad in grads.items():
        assert grad is not None, f"no gradient for {path}"
        assert np.isfinite(grad).all() and np.abs(grad).max() > 1e-6, f"zero gradient: {path}"


def test_pooling_tokenizer_has_no_weights():
    layer = PoolingTokenizer(4)
    layer(randn(1, 4, 4, 3))
    assert layer.weights == []


# --------------------------------------------------------------------------- configs

CONFIG_CASES = [
    FilterTokenizer(9, 12, use_value_projection=True, kernel_initializer="he_normal"),
    RecurrentTokenizer(token_channels=12, use_value_projection=True, name="rec"),
    PoolingTokenizer(25),
    TokenTransformer(4, True, use_value_projection=True, norm="post"),
    Projector(use_value_projection=True),
    VTModule(9, "recurrent", 12, 3, True, True, "pre", False, kernel_initializer="zeros"),
]


@pytest.mark.parametrize("layer", CONFIG_CASES, ids=lambda layer: type(layer).__name__)
def test_config_round_trip(layer):
    config = layer.get_config()
    params = inspect.signature(type(layer).__init__).parameters
    missing = {p for p in params if p not in ("self", "kwargs")} - set(config)
    assert not missing, f"get_config lacks {missing}"
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    # Registered under the vt_edu package, so generic deserialization finds the class.
    assert keras.saving.get_registered_name(type(layer)) == f"vt_edu>{type(layer).__name__}"
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer) and revived.get_config() == config


def test_from_config_with_weights_gives_identical_outputs():
    x = randn(2, 4, 8, 6)
    layer = VTModule(4, num_heads=2, scale_attention=True, norm="post")
    layer(x)
    randomize(layer)
    clone = VTModule.from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    for a, b in zip(layer(x), clone(x)):
        np.testing.assert_array_equal(to_np(a), to_np(b))


# --------------------------------------------------------------------------- .keras files


def vt_model():
    """Two VT modules as in VT-ResNet: filter tokenizer first, then recurrent."""
    inputs = keras.Input(shape=(4, 8, 6))
    x, t = VTModule(4, name="vt1")(inputs)
    x, t, attention = VTModule(
        4, "recurrent", num_heads=2, scale_attention=True, norm="pre", name="vt2"
    )(x, t, return_attention=True)
    return keras.Model(inputs, [x, t, attention["tokenizer"]])


def layers_model():
    """Every stand-alone layer, with value projections to a wider token space."""
    inputs = keras.Input(shape=(4, 8, 6))
    t = FilterTokenizer(4, 10, use_value_projection=True)(inputs)
    t = TokenTransformer(2, use_value_projection=True, norm="post")(t)
    x = Projector(use_value_projection=True)(inputs, t)
    t2 = RecurrentTokenizer()(x, t)
    pooled = PoolingTokenizer(4)(x)
    return keras.Model(inputs, [x, t2, pooled])


@pytest.mark.parametrize("build", [vt_model, layers_model])
def test_keras_file_round_trip_in_safe_mode(build, tmp_path):
    model = build()
    randomize(model, scale=0.2)
    data = randn(3, 4, 8, 6, seed=9)
    before = model.predict(data, verbose=0)
    path = tmp_path / "vt.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    after = loaded.predict(data, verbose=0)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]


def test_vt_model_trains():
    model = vt_model()
    model.compile(optimizer="adam", loss=["mse", "mse", None])
    x = randn(8, 4, 8, 6, seed=10)
    history = model.fit(
        x, [x, np.zeros((8, 4, 6), "float32")], epochs=2, batch_size=4, verbose=0
    )
    assert np.isfinite(history.history["loss"]).all()
