"""fpn and vt_fpn: per-pixel logits, options, saving, attention maps and MAC counts."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from vt_edu.flops import count_macs, filter_tokenizer_macs, fpn_module_macs, projector_macs, transformer_macs
from vt_edu.models import ModelConfigError, create_model, vt_fpn_attention
from vt_edu.models.fpn import LEVELS, PyramidTokens
from vt_edu.names import SEGMENTATION_MODELS

TINY = dict(width=0.125)  # trunk 8/16/32/64 channels, neck 16, head 8
CLASSES = 11


def _images(n=2, size=64, seed=0):
    return np.random.default_rng(seed).normal(size=(n, size, size, 3)).astype("float32")


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    return {name: create_model(name, num_classes=CLASSES, **TINY) for name in SEGMENTATION_MODELS}


def test_both_models_return_logits_for_every_pixel(models):
    x = _images()
    for name, model in models.items():
        assert model.name == name
        assert model.input_shape == (None, 64, 64, 3)  # the segmentation models' default
        logits = model(x, training=False)
        assert tuple(logits.shape) == (2, 64, 64, CLASSES)
        assert np.all(np.isfinite(np.asarray(logits)))
    # Other canvases and the CIFAR stem: P2 is 1/4 of the input, or the whole input.
    assert create_model("fpn", num_classes=3, input_shape=(96, 32, 3), **TINY).output_shape == (None, 96, 32, 3)
    cifar = create_model("vt_fpn", num_classes=3, input_shape=(16, 16, 3), stem="cifar", num_tokens=2, **TINY)
    assert cifar.output_shape == (None, 16, 16, 3)
    assert cifar.get_layer("vt_p2_tokenizer").input.shape[1:3] == (16, 16)


def test_the_pyramid_has_four_levels_and_vt_fpn_replaces_only_the_output_convs(models):
    fpn, vt_fpn = models["fpn"], models["vt_fpn"]
    sizes = [fpn.get_layer(f"neck_output_{level}").output.shape[1:3] for level in LEVELS]
    assert sizes == [(16, 16), (8, 8), (4, 4), (2, 2)]  # finest level at least 16x16
    fpn_names = {layer.name for layer in fpn.layers}
    vt_names = {layer.name for layer in vt_fpn.layers}
    assert fpn_names - vt_names == {f"neck_output_{level}" for level in LEVELS}
    assert {n for n in vt_names - fpn_names if not n.startswith("vt_")} == set()
    assert sum(isinstance(layer, keras.layers.Conv2D) and layer.name.startswith("vt_") for layer in vt_fpn.layers) == 0
    transformer = vt_fpn.get_layer("vt_transformer")
    assert transformer.input.shape[1:] == (4 * 8, 16)  # 8 tokens per level, C_T = neck width, one transformer


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("fpn", dict(input_shape=(48, 48, 3)), "multiples of 32"),
        ("vt_fpn", dict(input_shape=(64, 40, 3)), "multiples of 32"),
        ("fpn", dict(input_shape=(20, 20, 3), stem="cifar"), "multiples of 8"),
        ("vt_fpn", dict(num_tokens=0), "num_tokens=0"),
        ("vt_fpn", dict(token_channels=0), "token_channels=0"),
        ("fpn", dict(neck_channels=2.5), "neck_channels=2.5"),
        ("fpn", dict(head_channels=0), "head_channels=0"),
        ("fpn", dict(num_tokens=8), "has no option 'num_tokens'"),
        ("vt_fpn", dict(init="glorot"), "init='glorot'"),
        ("vt_fpn", dict(use_projector="no"), "use_projector='no'"),
        ("fpn", dict(stem="tiny"), "stem='tiny'"),
    ],
)
def test_bad_options_raise_model_config_error(name, options, message):
    with pytest.raises(ModelConfigError, match=message):
        create_model(name, num_classes=CLASSES, **{**TINY, **options})


def test_keras_round_trip_gives_the_same_logits(models, tmp_path):
    x = _images()
    for name, model in models.items():
        path = tmp_path / f"{name}.keras"
        model.save(path)
        reloaded = keras.models.load_model(path)
        np.testing.assert_allclose(
            np.asarray(reloaded(x, training=False)), np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-5
        )
    # A reloaded VT-FPN (what a run folder holds) still gives its attention maps.
    found = vt_fpn_attention(reloaded, x)
    np.testing.assert_allclose(found["logits"], np.asarray(model(x, training=False)), rtol=1e-4, atol=1e-4)


def test_one_training_step_moves_the_weights_and_the_loss_is_finite():
    keras.utils.set_random_seed(0)
    model = create_model("vt_fpn", num_classes=CLASSES, **TINY, init="paper", dropout=0.1)
    x = _images(4)
    y = np.random.default_rng(1).integers(0, CLASSES, size=(4, 64, 64))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    transformer = model.get_layer("vt_transformer")
    before = transformer.k.numpy().copy()
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(before, transformer.k.numpy())  # gradients reach the shared transformer


def test_stable_init_starts_vt_fpn_as_the_network_without_tokens():
    keras.utils.set_random_seed(0)
    stable = create_model("vt_fpn", num_classes=CLASSES, **TINY)
    keras.utils.set_random_seed(0)
    paper = create_model("vt_fpn", num_classes=CLASSES, init="paper", **TINY)
    for level in LEVELS:
        assert not stable.get_layer(f"vt_{level}_projector").w_v.numpy().any()
        assert paper.get_layer(f"vt_{level}_projector").w_v.numpy().any()
    assert not stable.get_layer("vt_transformer").f2.numpy().any()


@pytest.mark.parametrize("init", ["paper", "stable"])
def test_vt_fpn_attention_has_one_map_per_level_and_reproduces_the_logits(init):
    keras.utils.set_random_seed(1)
    # "paper": the projectors' W_V are not zero, so the tokens change the logits and a
    # mis-wired attention run could not end at the model's own output.
    model = create_model("vt_fpn", num_classes=CLASSES, num_tokens=4, init=init, **TINY)
    x = _images(3)
    found = vt_fpn_attention(model, x, batch_size=2)
    assert list(found["levels"]) == list(LEVELS)
    sizes = [found["levels"][level]["size"] for level in LEVELS]
    assert sizes == [(16, 16), (8, 8), (4, 4), (2, 2)]
    for level, (h, w) in zip(LEVELS, sizes):
        maps = found["levels"][level]
        assert maps["tokenizer"].shape == maps["projector"].shape == (3, h * w, 4)
        np.testing.assert_allclose(maps["tokenizer"].sum(axis=1), 1.0, atol=1e-5)  # columns: over pixels
        np.testing.assert_allclose(maps["projector"].sum(axis=2), 1.0, atol=1e-5)  # rows: over tokens
    assert [found["levels"][level]["tokens"] for level in LEVELS] == [(0, 4), (4, 8), (8, 12), (12, 16)]
    assert found["transformer"].shape == (3, 16, 16)
    np.testing.assert_allclose(found["transformer"].sum(axis=-1), 1.0, atol=1e-5)
    logits = np.asarray(model(x, training=False))
    np.testing.assert_allclose(found["logits"], logits, rtol=1e-4, atol=1e-4)
    projector = model.get_layer("vt_p2_projector")
    merged, projected = keras.Model(model.input, [projector.input[0], projector.output])(x, training=False)
    changed = not np.allclose(np.asarray(merged), np.asarray(projected))
    assert changed == (init == "paper")  # "stable": the projectors start as the identity


def test_the_parts_are_the_models_own_layers(models):
    model = models["vt_fpn"]
    pyramid = PyramidTokens.from_model(model)
    assert [t.name for t in pyramid.tokenizers] == [f"vt_{level}_tokenizer" for level in LEVELS]
    assert [p.name for p in pyramid.projectors] == [f"vt_{level}_projector" for level in LEVELS]
    assert pyramid.transformer is model.get_layer("vt_transformer")
    with pytest.raises(ValueError, match="no VT-FPN tokens"):
        vt_fpn_attention(models["fpn"], _images(1))


def test_module_macs_vt_fpn_is_cheaper_and_the_vt_parts_use_the_paper_formulas(models):
    fpn, vt_fpn = models["fpn"], models["vt_fpn"]
    trunk = ("stem", "stage1", "stage2", "stage3", "stage4")
    for model in (fpn, vt_fpn):
        stages = count_macs(model).stages()
        assert fpn_module_macs(model) == count_macs(model).total_macs - sum(stages[s]["macs"] for s in trunk)
        assert not [r.name for r in count_macs(model).rows if r.note.startswith("UNCOUNTED")]
    assert fpn_module_macs(vt_fpn) < fpn_module_macs(fpn)
    assert fpn_module_macs(vt_fpn, include_head=False) < fpn_module_macs(fpn, include_head=False)

    # The 3x3 output convs cost 9·HW·N² per level (N = 16 at width 0.125).
    n, hws, l = 16, [256, 64, 16, 4], 8
    rows = {r.name: r.macs for r in count_macs(fpn).rows}
    assert [rows[f"neck_output_{level}"] for level in LEVELS] == [9 * hw * n * n for hw in hws]
    # VT-FPN's token part: per level a tokenizer and a projector (with W_V), one transformer on 4L tokens.
    vt_rows = {r.name: r.macs for r in count_macs(vt_fpn).rows}
    expected = sum(filter_tokenizer_macs(hw, n, l, n) + projector_macs(hw, n, l, n, True) for hw in hws)
    expected += transformer_macs(4 * l, n)
    assert count_macs(vt_fpn).stages()["vt"]["macs"] == expected
    assert sum(vt_rows[f"vt_{level}_tokenizer"] for level in LEVELS) == sum(
        filter_tokenizer_macs(hw, n, l, n) for hw in hws
    )
    # Everything but the neck is the same in both models.
    assert fpn_module_macs(fpn) - fpn_module_macs(fpn, include_head=False) == (
        fpn_module_macs(vt_fpn) - fpn_module_macs(vt_fpn, include_head=False)
    )


def test_without_projector_the_tokens_and_their_macs_are_gone(models):
    vt_fpn = models["vt_fpn"]
    ablation = create_model("vt_fpn", num_classes=CLASSES, use_projector=False, **TINY)
    assert not [layer for layer in ablation.layers if layer.name.startswith("vt_")]
    vt_part = count_macs(vt_fpn).stages()["vt"]["macs"]
    assert vt_part > 0
    assert fpn_module_macs(ablation) == fpn_module_macs(vt_fpn) - vt_part
    # ... which is the FPN without its four output convolutions.
    fpn = models["fpn"]
    outputs = sum(r.macs for r in count_macs(fpn).rows if r.name.startswith("neck_output_"))
    assert fpn_module_macs(ablation) == fpn_module_macs(fpn) - outputs
    with pytest.raises(ValueError, match="no FPN neck"):
        fpn_module_macs(create_model("cnn"))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="XLA with float16 on a CPU: TensorFlow only")
def test_vt_fpn_trains_with_mixed_float16_and_xla():
    """What a GPU run uses (see tests/test_mixed_precision_jit.py); vt_fpn has all of fpn's layer types.

    XLA compiles the whole step on the CPU (about half a minute): it is the check that
    the bilinear upsampling's gradient fits a float16 graph, which fails only under XLA.
    """
    keras.utils.set_random_seed(0)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = create_model("vt_fpn", num_classes=CLASSES, init="paper", **TINY)
    finally:
        keras.config.set_dtype_policy(previous)
    x = _images(8)
    y = np.random.default_rng(1).integers(0, CLASSES, size=(8, 64, 64))
    assert keras.backend.standardize_dtype(model(x[:2], training=False).dtype) == "float32"
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    losses = model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0).history["loss"]
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    assert "float16" in {layer.compute_dtype for layer in model.layers if layer.weights}
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses


_JAX_CHECK = """
import sys, numpy as np, keras
assert keras.backend.backend() == "jax"
import vt_edu.models
x = np.load(sys.argv[1])
for name in ("fpn", "vt_fpn"):
    model = keras.models.load_model(f"{sys.argv[2]}/{name}.keras")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.load(f"{sys.argv[2]}/{name}.npy"),
                               rtol=1e-4, atol=1e-4)
    print(name, "ok")
"""


def test_the_models_give_the_same_logits_on_jax(models, tmp_path):
    """Saved on this process' backend, reloaded and run on JAX in a fresh process."""
    x = _images()
    np.save(tmp_path / "x.npy", x)
    for name, model in models.items():
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}.npy", np.asarray(model(x, training=False)))
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    # As tests/test_backends.py: these tiny shapes gain nothing from XLA's expensive passes.
    env.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")
    done = subprocess.run([sys.executable, "-c", _JAX_CHECK, str(tmp_path / "x.npy"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["fpn", "ok", "vt_fpn", "ok"]


def test_the_documented_costs_at_width_1():
    """The table in vt_edu.models.fpn's docstring (64x64, 11 classes)."""
    fpn = create_model("fpn", num_classes=CLASSES)
    vt_fpn = create_model("vt_fpn", num_classes=CLASSES)
    assert round(fpn_module_macs(fpn) / 1e6, 2) == 84.62 and round(fpn_module_macs(vt_fpn) / 1e6, 2) == 45.38
    neck, vt_neck = fpn_module_macs(fpn, include_head=False), fpn_module_macs(vt_fpn, include_head=False)
    assert round(neck / 1e6, 2) == 54.07 and round(vt_neck / 1e6, 2) == 14.83
    assert round(count_macs(fpn).total_macs / count_macs(vt_fpn).total_macs, 2) == 1.20


def test_cli_flops_counts_the_segmentation_models_at_their_own_size(capsys):
    from vt_edu.cli import main

    assert main(["flops", "--model", "vt_fpn", "--width", "0.125", "--classes", "11", "--stem", "imagenet"]) == 0
    out = capsys.readouterr().out
    assert "input 64x64x3" in out and "vt " in out and "neck" in out and "head" in out
