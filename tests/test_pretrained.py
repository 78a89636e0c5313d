"""The chapters' trained demo model and the attention walk over a VT-ResNet."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vt_edu import pretrained
from vt_edu.models import create_model
from vt_edu.models.attention import vt_resnet_attention


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).normal(size=(5, 32, 32, 3)).astype("float32")


@pytest.mark.parametrize("tokenizer", ["recurrent", "pooling"])
def test_attention_walk_ends_at_the_models_own_logits(images, tokenizer):
    model = create_model("vt_resnet18", num_classes=10, width=0.125, num_tokens=16, tokenizer=tokenizer)
    maps = vt_resnet_attention(model, images, batch_size=2)  # batches of 2, 2, 1

    np.testing.assert_allclose(maps["logits"], np.asarray(model(images, training=False)), rtol=1e-4, atol=1e-4)
    assert maps["feature_map"].shape == (5, 8, 8, 32)
    first, last = maps["modules"]
    assert first["tokenizer"].shape == (5, 64, 16) and first["transformer"].shape == (5, 16, 16)
    assert first["tokens"].shape == first["tokens_out"].shape == (5, 16, 128)
    np.testing.assert_allclose(first["tokenizer"].sum(axis=1), 1.0, atol=1e-5)  # over pixels
    np.testing.assert_allclose(first["transformer"].sum(axis=-1), 1.0, atol=1e-5)  # over tokens
    np.testing.assert_allclose(first["projector"].sum(axis=-1), 1.0, atol=1e-5)  # over tokens
    assert first["feature_map_out"].shape == (5, 8, 8, 32)
    assert "projector" not in last  # the head reads the last module's tokens


def test_attention_walk_refuses_a_model_without_vt_modules(images):
    with pytest.raises(ValueError, match="no VT modules"):
        vt_resnet_attention(create_model("resnet18", num_classes=10, width=0.125), images)


def test_demo_model_trains_once_then_loads_from_the_cache(tiny_cifar, monkeypatch, tmp_path):
    source, _ = tiny_cifar.image_folder(per_class=(3, 1))
    monkeypatch.setenv("VT_EDU_DATA", str(source))
    monkeypatch.setenv("VT_EDU_PROFILE", "quick")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "no-committed-weights")
    calls = []
    real_train = pretrained.train_demo_model

    def small_train(folder, epochs, max_train_images, max_test_images, batch_size=None, verbose="auto"):
        calls.append(folder)
        real_train(folder, epochs=1, max_train_images=None, max_test_images=None, batch_size=10, verbose=0)

    monkeypatch.setattr(pretrained, "train_demo_model", small_train)
    with pytest.raises(FileNotFoundError):
        pretrained.load_demo_model(train_if_missing=False)

    demo = pretrained.load_demo_model()
    assert len(calls) == 1 and "trained just now" in demo.origin
    meta = json.loads((calls[0] / f"{pretrained.NAME}.json").read_text())
    assert meta["trained"]["train_images"] == 30 and meta["model_options"] == pretrained.MODEL_OPTIONS
    assert demo.mean.shape == demo.std.shape == (3,) and len(demo.class_names) == 10
    assert 0.0 <= demo.test_accuracy <= 1.0

    again = pretrained.load_demo_model()
    assert len(calls) == 1 and "trained earlier" in again.origin
    x = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(again.model(x)), np.asarray(demo.model(x)), rtol=1e-5, atol=1e-5)


def test_stale_cached_weights_are_retrained_but_stale_committed_weights_fail(monkeypatch, tmp_path):
    """Weights saved by another model definition: the cache is rebuilt, a committed file is a bug."""
    from vt_edu.config import cache_dir

    other = create_model("vt_resnet18", num_classes=10, width=0.125)  # not MODEL_OPTIONS' width
    meta = {"model_options": pretrained.MODEL_OPTIONS, "class_names": list("abcdefghij"), "mean": [0.5] * 3,
            "std": [0.2] * 3, "test_accuracy": 0.5,
            "trained": {"train_images": 1, "epochs": 1, "recipe": "fast", "hardware": "test"}}
    for folder in (cache_dir() / "demo", tmp_path / "committed"):
        folder.mkdir(parents=True)
        other.save_weights(folder / f"{pretrained.NAME}.weights.h5")
        (folder / f"{pretrained.NAME}.json").write_text(json.dumps(meta))

    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "none")
    with pytest.raises(FileNotFoundError):  # the stale cache counts as no weights
        pretrained.load_demo_model(train_if_missing=False)

    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "committed")
    with pytest.raises(ValueError):
        pretrained.load_demo_model(train_if_missing=False)


def test_a_finished_run_of_the_demo_configuration_exports_as_the_demo_model(tiny_cifar, monkeypatch, tmp_path):
    from vt_edu.training import train

    source, _ = tiny_cifar.image_folder(per_class=(3, 1))
    monkeypatch.setenv("VT_EDU_DATA", str(source))
    options = {k: v for k, v in pretrained.MODEL_OPTIONS.items() if k != "width"}
    run = train("vt_resnet18", "cifar10", recipe="fast", epochs=1, batch_size=10, width=0.25,
                model_options=options, run_dir=tmp_path / "run", verbose=0)
    demo = pretrained.export_run(run.run_dir, tmp_path / "weights")
    assert "exported from" in demo.origin and demo.test_accuracy == pytest.approx(run.metrics["top1"])
    x = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(demo.model(x)), np.asarray(run.model(x)), rtol=1e-5, atol=1e-5)
    meta = json.loads((tmp_path / "weights" / f"{pretrained.NAME}.json").read_text())
    assert meta["trained"]["epochs"] == 1 and meta["trained"]["train_images"] == 30

    other = train("vt_resnet18", "cifar10", recipe="fast", epochs=1, batch_size=10, width=0.125,
                  run_dir=tmp_path / "other", verbose=0)
    with pytest.raises(ValueError, match="the demo model is vt_resnet18"):
        pretrained.export_run(other.run_dir, tmp_path / "weights2")
    with pytest.raises(ValueError, match="not a finished run folder"):
        pretrained.export_run(tmp_path / "nothing", tmp_path / "weights3")


COMMITTED = pretrained.WEIGHTS_DIR  # tests below point WEIGHTS_DIR elsewhere


def _demo_files(folder):
    return folder / f"{pretrained.NAME}.weights.h5", folder / f"{pretrained.NAME}.json"


def _damage(folder, how):
    """Copy the committed demo files into ``folder`` and damage one of them."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for source in _demo_files(COMMITTED):
        shutil.copy(source, folder / source.name)
    weights, meta = _demo_files(folder)
    data = weights.read_bytes()
    if how == "truncated weights":
        weights.write_bytes(data[: len(data) // 2])
    elif how == "corrupt weights":  # still a valid HDF5 file: only the recorded checksum tells
        middle = len(data) // 2
        weights.write_bytes(data[:middle] + bytes(4096) + data[middle + 4096:])
    elif how == "truncated description":
        meta.write_text(meta.read_text()[:100])
    return weights, meta


DAMAGE = ["truncated weights", "corrupt weights", "truncated description"]


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_committed_weights_fail_in_one_line_naming_the_file(how, monkeypatch, tmp_path):
    weights, meta = _damage(tmp_path / "committed", how)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "committed")
    with pytest.raises(pretrained.DemoWeightsError) as info:
        pretrained.load_demo_model(train_if_missing=False)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert str(meta if how == "truncated description" else weights) in message
    assert "git checkout -- vt_edu/weights" in message


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_cached_copy_is_retrained_as_documented(how, monkeypatch, tmp_path, capsys):
    from vt_edu.config import cache_dir

    _damage(cache_dir() / "demo", how)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "no-committed-weights")
    with pytest.raises(FileNotFoundError):  # the damaged copy counts as none ...
        pretrained.load_demo_model(train_if_missing=False)
    assert "retraining" in capsys.readouterr().out

    calls = []

    def retrain(folder, *args, **kwargs):  # ... and is replaced by a new training run (here: the good files)
        calls.append(folder)
        _damage(folder, "nothing")

    monkeypatch.setattr(pretrained, "train_demo_model", retrain)
    demo = pretrained.load_demo_model()
    assert calls == [cache_dir() / "demo"] and "trained just now" in demo.origin


def test_committed_weights_match_their_recorded_checksum():
    import hashlib

    weights, meta = _demo_files(COMMITTED)
    assert json.loads(meta.read_text())["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_the_export_command_reports_a_bad_run_folder_in_one_line(tmp_path, capsys):
    assert pretrained.main(["--from-run", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not a finished run folder" in lines[0]
