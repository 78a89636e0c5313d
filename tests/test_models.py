"""vt_edu.models: every registry model builds, trains a step, saves and reloads identically."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest

from vt_edu.flops import count_macs
from vt_edu.models import ModelConfigError, StochasticDepth, create_model, list_models, model_options

# Tiny variants: 32x32 images, 1/8 of the channels (ResNet widths 8/16/32/64).
TINY = {
    "cnn": dict(width=0.25),
    "resnet18": dict(width=0.125),
    "vt_resnet18": dict(width=0.125),
    "vit": dict(dim=16, depth=2, num_heads=2, mlp_dim=32),
    "tutorial_vit": dict(image_size=16, patch_size=4, token_dim=8, num_heads=2, key_dim=4, depth=1, mlp_dim=16,
                         head_units=(16,)),
}


def _data(n=8, size=32, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size, size, 3)).astype("float32")
    y = rng.integers(0, classes, size=n)
    return x, y


def test_registry_lists_the_classifiers_then_the_segmentation_models():
    from vt_edu.names import CLASSIFICATION_MODELS, SEGMENTATION_MODELS

    assert list_models() == ["cnn", "resnet18", "vt_resnet18", "vit", "tutorial_vit", "fpn", "vt_fpn"]
    assert list_models() == [*CLASSIFICATION_MODELS, *SEGMENTATION_MODELS]
    assert set(TINY) == set(CLASSIFICATION_MODELS)  # the segmentation models: tests/test_fpn.py


@pytest.mark.parametrize("name", list(TINY))
def test_model_trains_saves_and_reloads(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = create_model(name, num_classes=10, **TINY[name])
    assert model.name == name
    x, y = _data()
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights())), "no weight moved"

    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    assert count_macs(model).total_params == model.count_params()


def test_a_saved_vt_resnet18_reloads_in_a_fresh_python_after_importing_vt_edu_models(tmp_path):
    # In this process building the model already registered its layers; a reader who
    # opens a run's model.keras in a new session has only imported the package.
    path = tmp_path / "vt.keras"
    create_model("vt_resnet18", num_classes=10, **TINY["vt_resnet18"]).save(path)
    script = f"import vt_edu.models, keras; print(keras.models.load_model({str(path)!r}).name)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("vt_resnet18")


def test_cnn_is_the_tensorflow_tutorial_network():
    model = create_model("cnn")
    assert model.count_params() == 122_570
    kinds = [type(l).__name__ for l in model.layers[1:]]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten", "Dense", "Dense"]
    assert model.output_shape == (None, 10)


def test_resnet18_widths_and_cifar_shapes():
    model = create_model("resnet18", width=0.25)
    convs = [l for l in model.layers if l.name.endswith("block2_conv2")]
    assert [l.filters for l in convs] == [16, 32, 64, 128]
    # CIFAR stem: no downsampling before stage 1, so stage 4 sees 4x4.
    assert model.get_layer("stage4_block2_relu2").output.shape[1:3] == (4, 4)


def test_resnet18_imagenet_has_torchvision_parameter_count():
    model = create_model("resnet18", num_classes=1000, input_shape=(224, 224, 3), stem="imagenet")
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 11_689_512  # torchvision resnet18: 11.69 M
    assert model.get_layer("stage3_block2_relu2").output.shape[1:] == (14, 14, 256)
    assert model.get_layer("stage4_block2_relu2").output.shape[1:] == (7, 7, 512)


def test_vt_resnet18_replaces_stage4_with_two_vt_modules():
    model = create_model("vt_resnet18", width=0.125)
    names = [l.name for l in model.layers]
    assert not any(n.startswith("stage4") for n in names)
    assert [n for n in names if n.startswith("vt_")] == [
        "vt_m1_tokenizer", "vt_m1_transformer", "vt_m1_projector", "vt_m2_tokenizer", "vt_m2_transformer",
    ]
    assert type(model.get_layer("vt_m1_tokenizer")).__name__ == "FilterTokenizer"
    assert type(model.get_layer("vt_m2_tokenizer")).__name__ == "RecurrentTokenizer"
    # Stage-3 map 8x8x32 at 32x32 input; 16 tokens of C_T = 4 * 32 channels.
    assert model.get_layer("vt_m2_transformer").output.shape[1:] == (16, 128)
    assert model.get_layer("vt_m1_projector").output.shape[1:] == (8, 8, 32)


@pytest.mark.parametrize(
    "options",
    [
        dict(tokenizer="filter", use_projector=False),
        dict(tokenizer="pooling", num_tokens=4),
        dict(num_modules=3, num_heads=2, token_channels=64),
        dict(token_channels=32, use_value_projection=False, dropout=0.2, stochastic_depth=0.8),
        dict(init="paper", head_norm=None, scale_attention=True, cosine_attention=False, transformer_norm="pre"),
        dict(cosine_attention=False),
        dict(num_heads=2),
    ],
    ids=["filter-noproj", "pooling", "3modules-2heads", "no-value-projection", "paper-init", "plain-logits",
         "cosine-2heads"],
)
def test_vt_resnet18_variants_run(options):
    model = create_model("vt_resnet18", width=0.125, **options)
    x, _ = _data(n=2)
    out = model(x, training=True)
    assert out.shape == (2, 10)
    assert count_macs(model).total_params == model.count_params()


def test_vt_resnet18_stable_init_starts_residual_branches_at_identity():
    stable = create_model("vt_resnet18", width=0.125)
    paper = create_model("vt_resnet18", width=0.125, init="paper")
    for model, zero in ((stable, True), (paper, False)):
        f2 = model.get_layer("vt_m1_transformer").f2.numpy()
        w_v = model.get_layer("vt_m1_projector").w_v.numpy()
        assert (not f2.any() and not w_v.any()) == zero
    assert stable.get_layer("head_norm") is not None
    with pytest.raises(ModelConfigError, match="init='glorot'"):
        create_model("vt_resnet18", init="glorot")
    with pytest.raises(ModelConfigError, match="cannot be combined;"):
        create_model("vt_resnet18", scale_attention=True, cosine_attention=True)


def test_vt_resnet18_learns_a_logit_scale_by_default_and_plain_logits_on_request():
    # results/token-attention: cosine logits are the default because plain ones stayed uniform.
    default = create_model("vt_resnet18", width=0.125)
    plain = create_model("vt_resnet18", width=0.125, cosine_attention=False)
    for m in (1, 2):
        assert np.allclose(default.get_layer(f"vt_m{m}_transformer").logit_scale(), 10.0)
        assert plain.get_layer(f"vt_m{m}_transformer").logit_scale() is None
    # scaled dot products need the paper's plain logits, and the error says the default is why
    with pytest.raises(ModelConfigError, match=r"\(cosine_attention=True is the default\).*cosine_attention=False"):
        create_model("vt_resnet18", scale_attention=True)
    create_model("vt_resnet18", width=0.125, scale_attention=True, cosine_attention=False)


def test_vit_has_64_patch_tokens_and_both_poolings():
    model = create_model("vit", dim=16, depth=1, num_heads=2, mlp_dim=32)
    assert model.get_layer("embed_pos").output.shape[1:] == (65, 16)  # 64 patches + CLS
    mean = create_model("vit", dim=16, depth=1, num_heads=2, mlp_dim=32, pool="mean")
    assert mean.get_layer("embed_pos").output.shape[1:] == (64, 16)


def test_stochastic_depth_and_dropout_are_train_only():
    model = create_model("resnet18", width=0.125, stochastic_depth=0.5, dropout=0.5)
    x, _ = _data(n=4)
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))
    layer = StochasticDepth(0.5, seed=1)
    ones = np.ones((64, 3), "float32")
    dropped = np.asarray(layer(ones, training=True))
    rows = set(np.unique(dropped.round(6)))
    assert rows <= {0.0, 2.0} and len(rows) == 2  # whole examples dropped, survivors x 1/p
    np.testing.assert_array_equal(np.asarray(layer(ones, training=False)), ones)
    assert StochasticDepth.from_config(layer.get_config()).survival_probability == 0.5


def test_bad_names_and_options_fail_with_the_valid_choices():
    with pytest.raises(ModelConfigError, match="choose one of: cnn, resnet18, vt_resnet18, vit, tutorial_vit, fpn, vt_fpn"):
        create_model("resnet50")
    with pytest.raises(ModelConfigError, match="has no option 'num_tokens'.*width"):
        create_model("cnn", num_tokens=16)
    with pytest.raises(ModelConfigError, match="width=0"):
        create_model("resnet18", width=0)
    with pytest.raises(ModelConfigError, match="tokenizer='conv'"):
        create_model("vt_resnet18", tokenizer="conv")
    with pytest.raises(ModelConfigError, match="stochastic_depth"):
        create_model("vit", stochastic_depth=0.0)
    with pytest.raises(ModelConfigError, match="num_classes"):
        create_model("cnn", num_classes=1)
    assert model_options("vt_resnet18")["num_tokens"] == 16


def test_vocabularies_are_defined_once_and_import_without_keras():
    from vt_edu import names
    from vt_edu.data import loader
    from vt_edu.layers import VTModule
    from vt_edu.models import MODELS

    assert tuple(MODELS) == names.MODEL_NAMES
    assert loader.DATASETS is names.DATASETS
    assert model_options("vt_resnet18")["num_tokens"] == names.DEFAULT_NUM_TOKENS
    assert VTModule().num_tokens == names.DEFAULT_NUM_TOKENS
    code = "import sys, vt_edu.names; sys.exit('keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    with pytest.raises(ModelConfigError, match="num_tokens=0"):
        create_model("vt_resnet18", num_tokens=0)


def test_vt_resnet18_modules_are_vt_modules_sharing_the_models_layers():
    from vt_edu.layers import VTModule
    from vt_edu.models.attention import vt_modules

    for options, kinds in ((dict(), ["filter", "recurrent"]), (dict(tokenizer="pooling", num_tokens=4), ["pooling"] * 2)):
        model = create_model("vt_resnet18", width=0.125, **options)
        modules = vt_modules(model)
        assert all(isinstance(m, VTModule) for m in modules)
        assert [m.tokenizer_kind for m in modules] == kinds
        assert modules[0].tokenizer is model.get_layer("vt_m1_tokenizer")
        assert modules[0].transformer.w_v is None  # no value matrix in the transformer
        assert (modules[0].value is not None) == (options.get("tokenizer") == "pooling")
        assert modules[-1].projector is None


def test_the_demo_weights_keep_their_layout_and_predictions(tmp_path):
    """The committed .weights.h5 is matched by layer path: the model must keep that layout."""
    import h5py

    from vt_edu import pretrained

    weights = pretrained.WEIGHTS_DIR / f"{pretrained.NAME}.weights.h5"
    model = create_model("vt_resnet18", num_classes=10, **pretrained.MODEL_OPTIONS)
    fresh = tmp_path / "fresh.weights.h5"
    model.save_weights(fresh)

    def layout(path):
        found = []
        with h5py.File(path) as f:
            f.visititems(lambda name, obj: found.append((name, getattr(obj, "shape", None))))
        return found

    assert layout(fresh) == layout(weights)
    demo = pretrained.load_demo_model(train_if_missing=False)
    images = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype("float32")
    logits = np.asarray(demo.model((images - demo.mean) / demo.std, training=False))
    expected = [  # computed with the functional wiring before VTModule built the model
        [-0.9059, -0.2131, -0.274, -0.1759, -0.9332, -1.6202, 3.5949, -1.0156, -0.4544, 0.9321],
        [-0.5716, -0.7802, 1.1236, 0.1543, 0.0917, -2.5393, 2.4983, -0.9437, -0.1695, 0.3135],
    ]
    np.testing.assert_allclose(logits, expected, atol=2e-4)


def test_tutorial_vit_is_the_keras_tutorials_model():
    from vt_edu.flops import count_macs

    model = create_model("tutorial_vit", num_classes=10)
    assert model.get_layer("embed_project").output.shape[1:] == (144, 64)  # 72x72 in 6x6 patches
    assert model.get_layer("head_flatten").output.shape[1:] == (144 * 64,)
    table = count_macs(model)
    # Blocks: 8 x 83,200; head: 9,216 -> 2,048 -> 1,024 -> 10; patches: 108 -> 64 plus 144 x 64 positions.
    assert table.total_params == model.count_params() == 21_666_762
    assert round(table.total_macs / 1e6) == 201
    assert not [r for r in table.rows if "UNCOUNTED" in r.note]
    assert create_model("tutorial_vit", num_classes=10, token_dim=256, mlp_dim=512).count_params() == 81_890_058
    quarter = create_model("tutorial_vit", num_classes=10, width=0.25)  # the panel's quick size
    assert quarter.get_layer("embed_project").output.shape[1:] == (144, 16)
    assert quarter.get_layer("head_mlp_dense1").output.shape[1:] == (512,)


def test_tutorial_vit_patches_are_squares_read_row_by_row():
    from vt_edu.models.tutorial_vit import Patches

    images = np.arange(2 * 4 * 6 * 3, dtype="float32").reshape(2, 4, 6, 3)
    patches = keras.ops.convert_to_numpy(Patches(2)(images))
    assert patches.shape == (2, 6, 12)  # 2 x 3 patches of 2 x 2 x 3
    np.testing.assert_array_equal(patches[1, 4], images[1, 2:4, 2:4].reshape(-1))  # row 1, column 1


def test_tutorial_vit_augments_in_training_only():
    model = create_model("tutorial_vit", num_classes=10, **TINY["tutorial_vit"])
    x, _ = _data(n=4)
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))
    without = create_model("tutorial_vit", num_classes=10, augment=False, dropout=0.0, block_dropout=0.0,
                           **{k: v for k, v in TINY["tutorial_vit"].items()})
    assert "augment_flip" not in [layer.name for layer in without.layers]
    with pytest.raises(ModelConfigError, match="head_units"):
        create_model("tutorial_vit", head_units=(16, 0))
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        create_model("tutorial_vit", image_size=70)
