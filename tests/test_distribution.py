"""Data-parallel training (vt_edu.training.distribution) on virtual CPU devices.

JAX fixes the number of virtual CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count``)
when it starts, and these tests run on TensorFlow by default, so the data-parallel runs happen in
fresh JAX processes: :func:`compare_on_virtual_devices` (the comparison chapter 9 shows) and this
file's ``__main__`` part (``KERAS_BACKEND=jax python tests/test_distribution.py``), which checks the
errors and prints one JSON report, as tests/test_backends.py does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from vt_edu.cli import main
from vt_edu.training import TrainingError, train
from vt_edu.training.distribution import QUICK_COMPILE_FLAGS, compare_on_virtual_devices

REPORT_PREFIX = "VT_EDU_DISTRIBUTION_REPORT "
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")


@needs_jax
def test_data_parallel_run_matches_the_single_device_run():
    # ResNet-18 (BatchNorm after every convolution) at 1/16 width on 16x16 images: 64 training
    # images in global batches of 16 (8 per device), 2 epochs = 8 steps; 260 test images are
    # evaluated in a batch of 256 and a last one of 4.
    report = compare_on_virtual_devices(devices=2, model="resnet18", width=0.0625, image_size=16, train_images=64,
                                        test_images=260, batch_size=16, epochs=2)
    assert report["steps"] == 8 and report["per_device_batch"] == 8
    single, parallel = report["single"], report["data_parallel"]
    np.testing.assert_allclose(parallel["step_losses"], single["step_losses"], rtol=1e-5)
    # Every weight, BatchNorm's moving means and variances included, up to float rounding.
    assert report["max_weight_difference"] < 1e-5 * max(1.0, report["max_weight"]), report
    assert abs(parallel["top1"] - single["top1"]) <= 1 / 260
    expected = {"kind": "data-parallel", "devices": 2, "device_type": "cpu", "mesh": {"batch": 2}, "processes": 1}
    assert report["distribution"] == expected and report["metrics_distribution"] == expected
    assert report["restored"]  # no distribution is left active after train()
    # BatchNorm normalises over the global batch, not over each device's share: the stored
    # variance is the global batch's, and the per-device alternative is far from it.
    batchnorm = report["batchnorm"]
    np.testing.assert_allclose(batchnorm["data_parallel"], batchnorm["global"], rtol=1e-5)
    assert min(np.subtract(batchnorm["global"], batchnorm["per_device"])) > 1.0, batchnorm


@needs_jax
def test_uneven_batches_fail_before_training_and_the_distribution_is_restored():
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"{QUICK_COMPILE_FLAGS} --xla_force_host_platform_device_count=3")
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve())], env=env, capture_output=True, text=True,
                          timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(REPORT_PREFIX)]
    assert lines, f"no report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    checks = json.loads(lines[-1][len(REPORT_PREFIX):])
    failed = {name: result for name, result in checks.items() if result != "ok"}
    assert not failed, json.dumps(failed, indent=2)
    assert len(checks) == 4 and proc.returncode == 0


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="checks the error of the other backends")
@pytest.mark.parametrize("distribution, message", [
    ("data-parallel", "needs the JAX backend.*this is 'tensorflow'"),
    ("model-parallel", "unknown distribution 'model-parallel'; choose one of: data-parallel"),
])
def test_distribution_fails_before_loading_data(distribution, message, tmp_path, monkeypatch):
    monkeypatch.setenv("VT_EDU_DATA", str(tmp_path / "missing"))  # loading would fail differently
    with pytest.raises(TrainingError, match=message):
        train("cnn", epochs=1, run_dir=tmp_path / "r", verbose=0, distribution=distribution)
    assert not (tmp_path / "r").exists()
    assert keras.distribution.distribution() is None


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="checks the error of the other backends")
def test_cli_distribution_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VT_EDU_DATA", str(tmp_path / "missing"))
    status = main(["train", "--model", "cnn", "--epochs", "1", "--distribution", "data-parallel",
                   "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "needs the JAX backend" in err and "--backend jax" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model", "cnn", "--distribution", "pipeline"])
    assert exit_info.value.code == 2


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="checks the error of the other backends")
def test_experiment_panel_passes_the_distribution_to_train(tmp_path):
    from vt_edu.widgets import ExperimentPanel

    arrays = ((np.zeros((20, 32, 32, 3), np.uint8), np.arange(20) % 10),
              (np.zeros((10, 32, 32, 3), np.uint8), np.arange(10) % 10), [f"class{k}" for k in range(10)])
    panel = ExperimentPanel(run_root=tmp_path, data={"cifar10": arrays}, distribution="data-parallel", model="cnn",
                            recipe="seed", epochs=1, batch_size=10, width=0.25, max_train_images=0, max_test_images=0)
    assert panel.train() is None
    assert isinstance(panel.last_error, TrainingError) and "needs the JAX backend" in panel.message


# --------------------------------------------------------------------------- subprocess


def _run_checks():
    """Errors of data-parallel train() on 3 virtual devices, each raised before training."""
    import tempfile
    import traceback

    classes = [f"c{i}" for i in range(10)]
    checks = {}
    root = Path(tempfile.mkdtemp())

    def images(count):
        return np.zeros((count, 32, 32, 3), np.uint8), np.arange(count) % len(classes)

    def data(test_images):
        return images(60), images(test_images), classes

    def refused(name, message, **kwargs):
        """train() raises ``message`` before creating the run folder."""
        try:
            args = dict(model_name="cnn", data=data(30), epochs=1, batch_size=6, run_dir=root / name, verbose=0,
                        distribution="data-parallel")
            try:
                train(**{**args, **kwargs})
            except TrainingError as error:
                assert message in str(error), str(error)
            else:
                raise AssertionError("no error")
            assert not (root / name).exists(), "the run folder was created"
            checks[name] = "ok"
        except Exception:  # report every failure, not just the first
            checks[name] = traceback.format_exc(limit=4)

    refused("batch", "batch_size=16 does not split evenly over the 3 devices of data-parallel training; "
                     "use a multiple of 3 (--batch-size), e.g. 15.", batch_size=16)
    refused("test_images", "the 31 test images do not split evenly over the 3 devices", data=data(31))
    refused("test_batch", "the test batch of 256 images", data=data(300))
    try:
        # A distribution set before train() is active again after it, also after an error.
        before = keras.distribution.DataParallel()
        keras.distribution.set_distribution(before)
        refused("restored_after_error", "batch_size=16 does not split", batch_size=16)
        assert keras.distribution.distribution() is before, keras.distribution.distribution()
    except Exception:
        checks["restored_after_error"] = traceback.format_exc(limit=4)
    finally:
        keras.distribution.set_distribution(None)
    return checks


if __name__ == "__main__":
    results = _run_checks()
    print(REPORT_PREFIX + json.dumps(results))
    sys.exit(0 if all(v == "ok" for v in results.values()) else 1)
