"""Segmentation runs of train(): masks as targets, per-pixel loss, mean IoU, resume, CLI.

Tiny: 16 training and 8 test scenes of 16x16 with squares of 3 object classes, and a
two-convolution stand-in registered as "fpn" (monkeypatched into the model registry),
so each run takes seconds on a 2-core CPU. Scenes are loaded through the real
``vt_edu.data.scenes`` (tests that load them replace its ``load_scenes``).
"""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest

import vt_edu.data.scenes as scenes_module
from vt_edu.data.scenes import SceneData, SceneSet
from vt_edu.training import SparseSmoothedCrossEntropy, TrainingError, get_recipe, train
from vt_edu.training.pipeline import SceneBatches
from vt_edu.training.run_folder import SEGMENTATION_HISTORY_FIELDS
from vt_edu.training.scene_data import DEFAULT_SCENE_SEED

OBJECT_CLASSES = ["red", "green", "blue"]


def _scene_set(count, size=16, seed=0):
    """Noise scenes with up to 2 squares, each of a class colour; mask value = class + 1."""
    rng = np.random.default_rng(seed)
    scenes = rng.integers(0, 60, (count, size, size, 3)).astype(np.uint8)
    masks = np.zeros((count, size, size), np.uint8)
    boxes = np.full((count, 2, 4), -1, np.int32)
    classes = np.full((count, 2), -1, np.int32)
    for i in range(count):
        for j in range(1 + i % 2):
            c, side = int(rng.integers(0, 3)), int(rng.integers(4, 9))
            top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
            scenes[i, top:top + side, left:left + side] = 40
            scenes[i, top:top + side, left:left + side, c] = 230
            masks[i, top:top + side, left:left + side] = c + 1
            boxes[i, j], classes[i, j] = (top, left, top + side, left + side), c
    counts = np.stack([(masks == c + 1).sum(axis=(1, 2)) for c in range(3)], axis=1)
    return SceneSet(scenes, masks, counts.argmax(1).astype(np.int64), counts > 0, boxes, classes)


DATA = SceneData(_scene_set(16, seed=0), _scene_set(8, seed=1), OBJECT_CLASSES)
TINY = dict(model_name="fpn", batch_size=4, data=DATA, verbose=0)


def _tiny_segmenter(num_classes, input_shape, *, width=1.0):
    """(B, S, S, num_classes) logits from two convolutions (float32 logits under mixed precision)."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(max(1, int(8 * width)), 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.Conv2D(num_classes, 1, name="classifier")(x)
    outputs = keras.layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name="fpn")


@pytest.fixture(autouse=True)
def segmentation_stand_ins(monkeypatch):
    """The tiny model as "fpn" in the registry; returns the scenes module (whose load_scenes tests replace)."""
    from vt_edu.models import registry

    monkeypatch.setitem(registry.MODELS, "fpn", registry.ModelSpec("fpn", _tiny_segmenter, "tiny test segmenter"))
    return scenes_module


# ------------------------------------------------------------------------------ pieces
def test_per_pixel_loss_is_the_mean_over_pixels_also_in_float16():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(2, 3, 3, 4)).astype("float32"), rng.integers(0, 4, (2, 3, 3))
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    target = 0.9 * np.eye(4)[labels] + 0.1 / 4
    expected = -(target * log_p).sum(-1).mean()
    loss = SparseSmoothedCrossEntropy(0.1)
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)
    assert float(loss(labels, logits.astype("float16"))) == pytest.approx(expected, rel=1e-2)


def test_scene_batches_crop_and_flip_scene_and_mask_together():
    size = 16
    masks = DATA.train.masks
    scenes = np.repeat((masks * 20)[..., None], 3, axis=-1).astype(np.uint8)  # the scene draws its mask
    kwargs = dict(mean=[0.0] * 3, std=[1.0] * 3, augment="crop_flip", shuffle=True, seed=3)
    batches = SceneBatches(scenes, masks, 8, **kwargs)
    x, y = batches[0]
    assert x.shape == (8, size, size, 3) and y.shape == (8, size, size) and y.dtype == np.int32
    # Padded pixels are black and background: the scene still draws its mask exactly.
    np.testing.assert_array_equal(np.rint(x[..., 0] * 255).astype(int), y * 20)
    plain = [m for m in masks]
    assert not all(any(np.array_equal(m, p) for p in plain) for m in y)  # some were moved
    again = SceneBatches(scenes, masks, 8, **kwargs)
    np.testing.assert_array_equal(again[0][1], y)  # (seed, epoch) decide a batch
    again.set_epoch(1)
    assert not np.array_equal(again[0][1], y)
    with pytest.raises(ValueError, match="RandAugment"):
        SceneBatches(scenes, masks, 8, mean=[0.0] * 3, std=[1.0] * 3, augment="randaugment")


# -------------------------------------------------------------------------- train runs
def _mean_iou_and_pixel_accuracy(model, data, mean, std):
    x = ((data.scenes / 255.0 - mean) / std).astype("float32")
    predicted = model.predict(x, verbose=0).argmax(-1)
    truth = data.masks.astype(int)
    ious = []
    for c in range(len(OBJECT_CLASSES) + 1):
        union = ((truth == c) | (predicted == c)).sum()
        if union:
            ious.append(((truth == c) & (predicted == c)).sum() / union)
    return float(np.mean(ious)), float((predicted == truth).mean())


def test_a_segmentation_run_reports_mean_iou_and_pixel_accuracy(tmp_path):
    from vt_edu.data import channel_stats

    result = train(recipe="fast", epochs=2, run_dir=tmp_path / "run", **TINY)
    run = tmp_path / "run"
    for name in ("config.json", "history.csv", "metrics.json", "best.weights.h5", "model.keras"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("pixel_accuracy", "mean_iou", "best_mean_iou", "best_epoch", "test_loss", "train_seconds",
                "images_per_second", "params", "macs", "backend", "git_commit"):
        assert key in metrics, key
    assert "top1" not in metrics and "top5" not in metrics and metrics["task"] == "segmentation"
    mean, std = channel_stats(DATA.train.scenes)
    mean_iou, accuracy = _mean_iou_and_pixel_accuracy(result.model, DATA.test, mean, std)
    assert metrics["mean_iou"] == pytest.approx(mean_iou, abs=1e-5)
    assert metrics["pixel_accuracy"] == pytest.approx(accuracy, abs=1e-5)
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == SEGMENTATION_HISTORY_FIELDS
    best = max(result.history, key=lambda r: r["val_mean_iou"])
    assert (metrics["best_epoch"], metrics["best_mean_iou"]) == (best["epoch"], pytest.approx(best["val_mean_iou"]))
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "segmentation" and config["scenes"] is None  # data given, no settings
    assert config["data"]["num_classes"] == 4 and config["data"]["image_shape"] == [16, 16, 3]
    assert result.model.output.shape[1:] == (16, 16, 4)
    again = train(recipe="fast", epochs=2, run_dir=run, **TINY)  # a finished run is not retrained
    assert again.model is None and again.metrics == metrics


def test_scenes_are_loaded_with_their_settings_and_their_own_seed(tmp_path, monkeypatch, segmentation_stand_ins):
    calls = []

    def load_scenes(name="cifar10", **options):
        calls.append((name, options))
        return DATA

    monkeypatch.setattr(segmentation_stand_ins, "load_scenes", load_scenes)
    settings = dict(num_train=16, num_test=8, canvas_size=16, max_objects=2, min_object_size=4, max_object_size=8)
    result = train(recipe="seed", epochs=1, seed=7, scenes=settings, run_dir=tmp_path / "r", source="somewhere",
                   **{**TINY, "data": None})
    (name, options), = calls
    assert name == "cifar10" and options["seed"] == DEFAULT_SCENE_SEED != 7
    assert options["source"] == "somewhere" and {k: options[k] for k in settings} == settings
    assert result.config["scenes"] == {**settings, "seed": DEFAULT_SCENE_SEED}
    # Settings that contradict the scenes they describe are refused.
    with pytest.raises(TrainingError, match="contradict the scene data: num_train=32"):
        train(recipe="seed", epochs=1, scenes={"num_train": 32}, run_dir=tmp_path / "c", **TINY)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(model_name="cnn", task="segmentation"), "model 'cnn' learns classification, not segmentation"),
        (dict(task="classification"), "model 'fpn' learns segmentation, not classification"),
        (dict(task="detection"), "unknown task 'detection'; choose one of: classification, segmentation"),
        (dict(model_name="cnn", scenes={"num_train": 10}), "apply to segmentation runs only"),
        (dict(max_train_images=10), r"max_train_images applies to classification.*'num_train'.*--train-scenes"),
        (dict(max_test_images=10), r"max_test_images applies to classification.*--test-scenes"),
        (dict(recipe="paper-advanced"), "augments with randaugment"),
        (dict(teacher="t.keras"), "distillation .* classification only"),
        (dict(scenes={"num_trian": 10}), "unknown scene setting.*'num_trian'"),
        (dict(scenes={"canvas_size": 0}), "canvas_size=0 is invalid"),
        (dict(scenes={"canvas_size": 16}), "16"),  # default object sizes (20..40) do not fit a 16-pixel canvas
    ],
)
def test_bad_segmentation_options_fail_before_any_work(kwargs, message, tmp_path, monkeypatch):
    monkeypatch.setenv("VT_EDU_DATA", str(tmp_path / "missing"))
    args = dict(model_name="fpn", epochs=1, run_dir=tmp_path / "r", verbose=0)
    args.update(kwargs)
    with pytest.raises(TrainingError, match=message):
        train(**args)
    assert not (tmp_path / "r").exists()


def test_masks_that_are_not_per_pixel_are_refused(tmp_path):
    labels_only = SceneData(DATA.train._replace(masks=DATA.train.labels), DATA.test, OBJECT_CLASSES)
    with pytest.raises(TrainingError, match=r"masks must be \(N, S, S\)"):
        train(recipe="seed", epochs=1, run_dir=tmp_path / "r", **{**TINY, "data": labels_only})
    too_many = SceneData(DATA.train, DATA.test, OBJECT_CLASSES[:2])
    with pytest.raises(TrainingError, match="outside 0..2"):
        train(recipe="seed", epochs=1, run_dir=tmp_path / "r", **{**TINY, "data": too_many})


class _Interrupt(Exception):
    pass


class _InterruptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise _Interrupt("simulated crash after epoch 1")


_REPEATED = ("epoch", "lr", "loss", "accuracy", "mean_iou", "val_loss", "val_accuracy", "val_mean_iou")


def test_an_interrupted_segmentation_run_resumes_to_the_uninterrupted_run(tmp_path):
    recipe = get_recipe("fast")  # crop_flip: the augmentation draws must repeat too
    whole = train(recipe=recipe, epochs=2, run_dir=tmp_path / "whole", **TINY)
    with pytest.raises(_Interrupt):
        train(recipe=recipe, epochs=2, run_dir=tmp_path / "resumed", callbacks=[_InterruptAfterFirstEpoch()], **TINY)
    assert (tmp_path / "resumed" / "backup").exists() and not (tmp_path / "resumed" / "metrics.json").exists()
    resumed = train(recipe=recipe, epochs=2, run_dir=tmp_path / "resumed", **TINY)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    for a, b in zip(whole.history, resumed.history, strict=True):
        assert {k: b[k] for k in _REPEATED} == pytest.approx({k: a[k] for k in _REPEATED}, rel=1e-5, abs=1e-6)
    for a, b in zip(whole.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert resumed.metrics["mean_iou"] == pytest.approx(whole.metrics["mean_iou"])
    assert resumed.metrics["best_epoch"] == whole.metrics["best_epoch"]


def test_a_mixed_precision_segmentation_run(tmp_path):
    mixed = train(recipe="seed", epochs=1, run_dir=tmp_path / "mp", mixed_precision=True, **TINY)
    assert mixed.model.get_layer("conv").compute_dtype == "float16"
    assert math.isfinite(mixed.history[0]["loss"]) and 0 <= mixed.metrics["mean_iou"] <= 1


def test_an_xla_compiled_segmentation_run(tmp_path):
    compiled = train(recipe="seed", epochs=1, run_dir=tmp_path / "xla", jit_compile=True, **TINY)
    assert math.isfinite(compiled.history[0]["loss"]) and 0 <= compiled.metrics["mean_iou"] <= 1


def test_a_classification_config_has_no_segmentation_keys(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (20, 32, 32, 3)).astype(np.uint8)
    data = ((images, np.arange(20) % 2), (images[:10], np.arange(10) % 2), ["a", "b"])
    result = train("cnn", data=data, recipe="seed", epochs=1, batch_size=10, width=0.25, run_dir=tmp_path / "c",
                   verbose=0)
    assert list(result.config) == [
        "model", "model_options", "dataset", "data", "recipe", "epochs", "batch_size", "learning_rate", "seed",
        "max_train_images", "max_test_images", "teacher", "time_budget_minutes", "mixed_precision",
        "jit_compile", "backend",
    ]
    assert "task" not in result.metrics and "top1" in result.metrics


# --------------------------------------------------------------------------------- CLI
def test_cli_trains_a_segmentation_model_and_prints_mean_iou(tmp_path, monkeypatch, capsys, segmentation_stand_ins):
    from vt_edu.cli import main

    calls = []

    def load_scenes(name="cifar10", **options):
        calls.append(options)
        return DATA

    monkeypatch.setattr(segmentation_stand_ins, "load_scenes", load_scenes)
    argv = ["train", "--model", "fpn", "--train-scenes", "16", "--test-scenes", "8", "--canvas-size", "16",
            "--max-objects", "2", "--min-object-size", "4", "--max-object-size", "8", "--epochs", "1",
            "--batch-size", "4", "--run-dir", str(tmp_path / "r"), "--verbose", "0"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "fpn: test mIoU" in out and "pixel accuracy" in out and "top-1" not in out
    assert calls[0]["num_train"] == 16 and calls[0]["max_objects"] == 2
    assert main(["train", "--model", "cnn", "--task", "segmentation", "--epochs", "1"]) == 2
    assert "model 'cnn' learns classification" in capsys.readouterr().err
    assert main(["train", "--model", "fpn", "--max-train-images", "10", "--epochs", "1"]) == 2
    assert "--train-scenes" in capsys.readouterr().err


def test_compare_refuses_segmentation_models_with_a_clear_error(tmp_path):
    from vt_edu.training import compare

    with pytest.raises(TrainingError, match="segmentation model.*fpn.*train"):
        compare(["cnn", "fpn"], out_dir=tmp_path / "cmp", data=DATA, epochs=1, verbose=0)
    assert not (tmp_path / "cmp").exists()
