"""RunConfig: a run's settings as one frozen, self-checking value, and its config.json."""

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from vt_edu.training import RunConfig, TrainingError, get_recipe, train
from vt_edu.training.scene_data import DEFAULT_SCENE_SEED, SCENE_DEFAULTS

# config.json of four runs as train() wrote them before RunConfig existed (tests/capture in the
# commit that added this file): a RunConfig of the same settings must write the same record, or
# run folders of that time would no longer resume.
BEFORE = json.loads((Path(__file__).parent / "config_json_before_run_config.json").read_text())
SETTINGS = {
    "classification": dict(model="cnn", recipe="fast", epochs=3, batch_size=10, seed=2, width=0.25,
                           max_train_images=20, time_budget_minutes=1.5, schedule_clock="time"),
    "classification_plain": dict(model="vt_resnet18", model_options={"num_tokens": 4}, batch_size=20),
    "segmentation_given": dict(model="fpn", recipe="seed", epochs=1, batch_size=4, width=0.5,
                               scenes={"num_train": 8}),
    "segmentation_plain": dict(model="fpn", batch_size=4, dataset="cifar100"),
}


@pytest.fixture(autouse=True)
def fpn_stand_in(monkeypatch):
    """A registry entry for "fpn" with a width option (the real model may not be in this branch)."""
    from vt_edu.models import registry

    def segmenter(num_classes, input_shape, *, width=1.0):
        raise AssertionError("no model is built here")

    monkeypatch.setitem(registry.MODELS, "fpn", registry.ModelSpec("fpn", segmenter, "stand-in segmenter"))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the records were written with TensorFlow")
@pytest.mark.parametrize("case", sorted(SETTINGS))
def test_config_json_is_what_train_wrote_before(case):
    expected = BEFORE[case]
    config = RunConfig(**SETTINGS[case], given_data=True).on_this_machine()
    assert config.to_json(expected["data"], "tensorflow", None) == expected
    # Key order too, so that a rewritten config.json reads the same.
    assert list(config.to_json(expected["data"], "tensorflow")) == list(expected)


def test_frozen_and_read_only():
    config = RunConfig("vt_resnet18", model_options={"num_tokens": 8})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3
    with pytest.raises(TypeError):
        config.model_options["num_tokens"] = 4
    assert config == RunConfig("vt_resnet18", model_options={"num_tokens": 8})


def test_defaults_are_resolved():
    config = RunConfig("cnn", recipe="fast", width=0.5)
    fast = get_recipe("fast")
    assert config.recipe == fast and config.epochs == fast.epochs and config.batch_size == fast.batch_size
    assert config.task == "classification" and config.scenes is None and config.seed == 0
    assert config.options == {"width": 0.5} and config.learning_rate == fast.scaled_learning_rate(fast.batch_size)
    assert config.mixed_precision is None and config.jit_compile is None  # the machine decides
    here = config.on_this_machine()
    assert isinstance(here.mixed_precision, bool) and here.jit_compile is not None
    # The recipe's regularisers reach the models that have them; explicit options win.
    advanced = RunConfig("vit", recipe="paper-advanced", model_options={"dropout": 0.0})
    assert advanced.options["dropout"] == 0.0 and "stochastic_depth" in advanced.options
    assert RunConfig("fpn").scenes == {**SCENE_DEFAULTS, "seed": DEFAULT_SCENE_SEED}
    assert RunConfig("fpn", scenes={"num_train": 8}).scenes["num_train"] == 8
    assert RunConfig("fpn", given_data=True).scenes is None  # given scenes are described, not named
    assert RunConfig("cnn", dataset="my-arrays", given_data=True).dataset == "my-arrays"


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(model="resnet50"), "unknown model 'resnet50'"),
        (dict(recipe="sota"), "unknown recipe 'sota'"),
        (dict(dataset="mnist"), "unknown dataset 'mnist'"),
        (dict(epochs=0), "epochs must be a positive integer"),
        (dict(seed=-1), "seed must be a non-negative integer"),
        (dict(max_test_images=1.5), "max_test_images must be a positive integer"),
        (dict(time_budget_minutes=0), "time budget must be > 0 minutes"),
        (dict(schedule_clock="time"), "schedule_clock='time' needs a time budget"),
        (dict(width=float("inf")), "width=inf is invalid"),
        (dict(model_options={"num_tokens": 8}), "has no option 'num_tokens'"),
        (dict(task="segmentation"), "model 'cnn' learns classification, not segmentation"),
        (dict(scenes={"num_train": 8}), "apply to segmentation runs only"),
        (dict(model="fpn", max_train_images=10), "max_train_images applies to classification"),
        (dict(model="fpn", scenes={"canvas_size": 0}), "canvas_size=0 is invalid"),
    ],
)
def test_bad_settings_are_refused_when_the_config_is_made(settings, message):
    with pytest.raises(TrainingError, match=message):
        RunConfig(**{"model": "cnn", **settings})


def test_replace_checks_again_and_resolves_what_it_is_told_to():
    config = RunConfig("cnn", recipe="fast", width=0.25)
    wider = config.replace(width=0.5)
    assert wider.options == {"width": 0.5} and wider.epochs == config.epochs and config.width == 0.25
    with pytest.raises(TrainingError, match="epochs must be a positive integer"):
        config.replace(epochs=0)
    with pytest.raises(TrainingError, match="model 'fpn' learns segmentation, not classification"):
        config.replace(model="fpn")  # the resolved task stays unless asked to resolve it again
    assert config.replace(model="fpn", task=None, recipe="seed").task == "segmentation"


def test_train_takes_a_config_and_refuses_a_config_with_settings(tmp_path):
    rng = np.random.default_rng(0)
    data = ((rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), np.arange(20) % 2),
            (rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), np.arange(10) % 2), ["a", "b"])
    config = RunConfig("cnn", recipe="seed", epochs=1, batch_size=10, width=0.25)
    with pytest.raises(TrainingError, match="a RunConfig or settings, not both .*epochs"):
        train(config, epochs=2, data=data, run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    result = train(config, data=data, run_dir=tmp_path / "r", verbose=0)
    assert result.config == json.loads((tmp_path / "r" / "config.json").read_text())
    # The keyword form is the same run: its folder is finished, not retrained or refused.
    again = train("cnn", recipe="seed", epochs=1, batch_size=10, width=0.25, data=data, run_dir=tmp_path / "r")
    assert again.model is None and again.metrics == result.metrics


def test_the_command_line_sets_every_field_of_a_run():
    from vt_edu.cli import build_parser, run_settings

    args = build_parser().parse_args(["train", "--model", "fpn", "--train-scenes", "8", "--minutes", "2", "--no-jit"])
    settings = run_settings(args)
    assert set(settings) == {f.name for f in dataclasses.fields(RunConfig)} - {"given_data"}
    assert settings["time_budget_minutes"] == 2 and settings["jit_compile"] is False
    assert RunConfig(**settings).scenes["num_train"] == 8
    # compare has no --task, --distribution or scene options: those fields keep their defaults.
    args = build_parser().parse_args(["compare", "--models", "cnn,vit", "--epochs", "2"])
    assert set(run_settings(args)) == {f.name for f in dataclasses.fields(RunConfig)} - {
        "given_data", "model", "task", "scenes", "distribution"}


@pytest.mark.parametrize("model, options, canvas, words", [
    ("vt_fpn", {}, 48, "multiples of 32"),
    ("vt_fpn", {"stem": "cifar"}, 60, "multiples of 8"),  # "fpn" is a stand-in in this file
])
def test_a_canvas_the_model_cannot_divide_is_refused_before_any_scene_is_made(monkeypatch, model, options, canvas,
                                                                             words):
    import vt_edu.data.scenes as scenes

    def no_scenes(*args, **kwargs):
        raise AssertionError("scenes were composed before the canvas was checked")

    monkeypatch.setattr(scenes, "load_scenes", no_scenes)
    with pytest.raises(TrainingError, match=f"{words}.*canvas_size"):
        RunConfig(model=model, model_options=options, scenes={"canvas_size": canvas})
    with pytest.raises(TrainingError, match=words):
        train(model, model_options=options, scenes={"canvas_size": canvas}, run_dir="never-written")
    assert RunConfig(model=model, model_options=options, scenes={"canvas_size": 64}).scenes["canvas_size"] == 64
