"""The command line: fast failures with one readable line, and tiny end-to-end runs.

Data come from a tiny image-folder tree (10 classes x 3 training and 2 test PNGs of
32x32) that ``VT_EDU_DATA`` points at; ``VT_EDU_CACHE`` is a temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vt_edu.cli import MODEL_NAMES, main
from vt_edu.data import CIFAR10_CLASSES
from vt_edu.models import list_models

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-cifar")
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("test", 2)):
        for label, name in enumerate(CIFAR10_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(rng.normal(20 * label + 30, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.fixture
def tiny_env(tiny_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("VT_EDU_DATA", str(tiny_tree))
    monkeypatch.setenv("VT_EDU_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one readable line, no traceback
    assert err.startswith("error: ")
    return err


def test_cli_model_names_match_the_registry():
    assert list(MODEL_NAMES) == list_models()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--model", "resnet50", "--epochs", "1"], "unknown model 'resnet50'"),
        (["train", "--model", "cnn", "--recipe", "sota"], "unknown recipe 'sota'"),
        (["train", "--model", "cnn", "--epochs", "0"], "epochs must be a positive integer"),
        (["train", "--model", "cnn", "--epochs", "-2"], "epochs must be a positive integer"),
        (["train", "--model", "cnn", "--option", "num_tokens=8"], "has no option 'num_tokens'"),
        (["train", "--model", "vt_resnet18", "--option", "tokenizer=conv"], "tokenizer='conv' is invalid"),
        (["compare", "--models", "cnn,resnet50"], "unknown model(s) resnet50"),
        (["train", "--model", "cnn", "--schedule-clock", "time"], "schedule_clock='time' needs a time budget"),
        (["train", "--model", "cnn", "--torch-fast-paths"], "--torch-fast-paths) needs the PyTorch backend"),
        (["flops", "--model", "vit", "--stem", "cifar"], "--stem applies to resnet18"),
    ],
)
def test_bad_options_fail_fast_with_one_line(argv, message, capsys, tiny_env):
    assert main(argv) == 2
    assert message in _error_line(capsys)
    assert not (tiny_env / "runs").exists()


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--epochs", "1"])  # --model missing
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model", "cnn", "--width", "-1"])
    assert exit_info.value.code == 2
    assert "must be > 0" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "-inf"])
def test_a_width_that_is_not_a_finite_positive_number_is_one_line_and_writes_nothing(value, capsys, tiny_env):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model", "cnn", f"--width={value}", "--run-dir", "r"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--width" in err and "> 0" in err, err
    assert not (tiny_env / "r").exists()


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("config.json", "[1, 2]", "config.json' is not a vt_edu run's config.json"),
        ("config.json", "{not json", "config.json' is not a vt_edu run's config.json"),
        ("history.csv", "date,price\n2020-01-01,3\n", "holds files but no run"),
    ],
)
def test_a_run_dir_holding_someone_elses_files_is_one_line(name, content, message, capsys, tiny_env):
    folder = tiny_env / "mine"
    folder.mkdir()
    (folder / name).write_text(content)
    argv = ["train", "--model", "cnn", "--epochs", "1", "--batch-size", "10", "--run-dir", "mine", "--verbose", "0"]
    for extra in ([], ["--overwrite"]):
        assert main(argv + extra) == 2
        assert message in _error_line(capsys)
    assert [p.name for p in folder.iterdir()] == [name] and (folder / name).read_text() == content


def test_from_run_on_a_run_of_another_model_is_one_line(capsys, tmp_path):
    from vt_edu import pretrained

    run = tmp_path / "cnn-run"
    run.mkdir()
    config = {"model": "cnn", "model_options": {"width": 0.25}, "dataset": "cifar10", "recipe": {"name": "fast"},
              "epochs": 1, "seed": 0, "backend": "tensorflow"}
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text("{}")
    (run / "model.keras").write_bytes(b"")
    assert pretrained.main(["--from-run", str(run), "--out", str(tmp_path / "w")]) == 2
    err = _error_line(capsys)
    assert "trained cnn" in err and "the demo model is vt_resnet18" in err
    (run / "config.json").write_text("[1]")
    assert pretrained.main(["--from-run", str(run), "--out", str(tmp_path / "w")]) == 2
    assert "is not a vt_edu run's config.json" in _error_line(capsys)


def test_batch_larger_than_the_data_and_missing_data(capsys, tiny_env, monkeypatch):
    assert main(["train", "--model", "cnn", "--epochs", "1", "--batch-size", "64", "--verbose", "0"]) == 2
    assert "batch_size=64 is larger than the 30 training images" in _error_line(capsys)
    monkeypatch.setenv("VT_EDU_DATA", str(tiny_env / "nowhere"))
    assert main(["train", "--model", "cnn", "--epochs", "1", "--verbose", "0"]) == 2
    assert "nowhere" in _error_line(capsys)


def test_backend_cannot_change_once_keras_is_loaded(capsys):
    import keras

    other = "jax" if keras.backend.backend() != "jax" else "tensorflow"
    assert main(["flops", "--model", "cnn", "--backend", other]) == 2
    assert "already loaded" in _error_line(capsys)


def test_flops_prints_the_paper_numbers(capsys):
    assert main(["flops", "--model", "resnet18", "--input-size", "224", "--classes", "1000"]) == 0
    out = capsys.readouterr().out
    assert "1.814 G" in out and "stage4" in out and "11,689,512" in out
    assert main(["flops", "--model", "vt_resnet18", "--width", "0.25", "--per-layer", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["model"] == "vt_resnet18" and "vt" in table["stages"]


def test_list_shows_models_options_and_recipes(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in (*MODEL_NAMES, "num_tokens", "paper-advanced", "fast"):
        assert name in out


def test_compare_writes_table_and_plots(capsys, tiny_env):
    argv = ["compare", "--models", "cnn,vit", "--epochs", "1", "--batch-size", "10", "--width", "0.25",
            "--option", "depth=1", "--out", "cmp", "--verbose", "0"]
    assert main(argv) == 0
    out = tiny_env / "cmp"
    for name in ("compare.csv", "compare.md", "compare.json", "curves.png", "cnn/metrics.json", "vit/metrics.json"):
        assert (out / name).exists(), name
    report = json.loads((out / "compare.json").read_text())
    assert [r["model"] for r in report["rows"]] == ["cnn", "vit"]
    assert json.loads((out / "vit" / "config.json").read_text())["model_options"] == {"depth": 1, "width": 0.25}
    assert "| cnn |" in capsys.readouterr().out


@pytest.mark.parametrize("backend, model", [("tensorflow", "cnn"), ("jax", "vt_resnet18")])
def test_python_m_train_end_to_end(backend, model, tiny_env):
    """`python -m vt_edu train` in a fresh process; the VT model on the JAX backend."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KERAS_BACKEND", None)
    run_dir = tiny_env / f"run-{backend}"
    cmd = [sys.executable, "-m", "vt_edu", "train", "--model", model, "--width", "0.125",
           "--recipe", "fast", "--epochs", "1", "--batch-size", "10", "--run-dir", str(run_dir),
           "--backend", backend, "--verbose", "2"] + (["--tokens", "4"] if model == "vt_resnet18" else [])
    done = subprocess.run(cmd, env=env, cwd=tiny_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test top-1" in done.stdout
    for name in ("config.json", "history.csv", "metrics.json", "best.weights.h5", "model.keras"):
        assert (run_dir / name).exists(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["backend"] == backend and metrics["train_images"] == 30 and metrics["epochs_completed"] == 1


def test_an_ema_recipe_trains_on_jax(tiny_env):
    """paper-advanced (EMA weights) on JAX: saving the model after the last epoch failed
    with "Array has been deleted" (see vt_edu.training.callbacks.UnshareEMAWeights)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    run_dir = tiny_env / "run-ema-jax"
    cmd = [sys.executable, "-m", "vt_edu", "train", "--model", "cnn", "--width", "0.25", "--recipe", "paper-advanced",
           "--epochs", "1", "--batch-size", "10", "--run-dir", str(run_dir), "--backend", "jax", "--verbose", "0"]
    done = subprocess.run(cmd, env=env, cwd=tiny_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run_dir / "model.keras").exists() and json.loads((run_dir / "metrics.json").read_text())["backend"] == "jax"
