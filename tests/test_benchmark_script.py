"""benchmarks/cpu_benchmark.py: epochs planned from a probe of real training steps; recipe changes."""

import numpy as np
import pytest

from script_loader import load_script
from vt_edu.training import get_recipe


def _benchmark():
    return load_script("benchmarks/cpu_benchmark.py")


def test_probe_times_training_steps_even_on_fewer_images_than_it_needs():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    y = np.arange(24) % 10
    # 3 batches of 8 images, but 2 warm-up + 4 timed steps: batches are reused.
    speed = _benchmark().probe_images_per_second("cnn", 1.0, {}, get_recipe("seed"), 8, x, y, steps=4)
    assert np.isfinite(speed) and speed > 0


def test_probe_times_the_step_that_training_runs(monkeypatch):
    # The probe compiles through train()'s own compile_for_training (the recipe's optimizer,
    # global-norm clipping and loss): a probe with its own optimizer timed another step.
    import vt_edu.training.loop as loop
    from training_helpers import assert_compiled_with

    compiled, real = [], loop.compile_for_training

    def spy(model, *args, **kwargs):
        compiled.append(model)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(loop, "compile_for_training", spy)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    y = np.arange(24) % 10
    recipe = get_recipe("fast", clip_norm=5.0)
    _benchmark().probe_images_per_second("cnn", 0.25, {}, recipe, 8, x, y, steps=2)
    assert len(compiled) == 1
    assert_compiled_with(compiled[0], recipe, 8)


def test_recipe_set_changes_the_recipe_that_the_parts_train_with():
    bench = _benchmark()
    args = bench.parse_args(["--recipe", "fast", "--recipe-set", "clip_norm=5", "--recipe-set", "clip_norm=null",
                             "--recipe-set", "augment=none", "--recipe-set", "label_smoothing=0.2"])
    recipe = bench.recipe_of(args)
    assert recipe.name == "fast" and recipe.clip_norm is None  # the last of repeated keys wins
    assert recipe.augment == "none" and recipe.label_smoothing == 0.2
    assert recipe.learning_rate == get_recipe("fast").learning_rate  # the rest is the named recipe
    assert bench.recipe_of(bench.parse_args([])) == get_recipe("fast")


@pytest.mark.parametrize("setting, message", [("clipnorm=5", "no setting clipnorm"),
                                               ("clip_norm", "expects KEY=VALUE")])
def test_bad_recipe_set_fails_before_any_data_are_loaded(setting, message, tmp_path, capsys):
    # --data points nowhere: an error about it would mean the data were read first.
    code = _benchmark().main(["--out", str(tmp_path), "--data", str(tmp_path / "missing"), "--parts", "target",
                              "--recipe-set", setting])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_torch_fast_paths_on_another_backend_fail_before_any_data_are_loaded(tmp_path, capsys):
    import keras

    assert keras.backend.backend() != "torch"
    code = _benchmark().main(["--out", str(tmp_path), "--data", str(tmp_path / "missing"), "--parts", "target",
                              "--target-torch-fast-paths"])
    assert code == 2
    assert "--target-torch-fast-paths needs KERAS_BACKEND=torch" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
