"""benchmarks/cpu_benchmark.py plans epochs from a probe of real training steps."""

import importlib.util
from pathlib import Path

import numpy as np

from vt_edu.training import get_recipe

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cpu_benchmark.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("cpu_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_probe_times_training_steps_even_on_fewer_images_than_it_needs():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    y = np.arange(24) % 10
    # 3 batches of 8 images, but 2 warm-up + 4 timed steps: batches are reused.
    speed = _benchmark().probe_images_per_second("cnn", 1.0, {}, get_recipe("seed"), 8, x, y, steps=4)
    assert np.isfinite(speed) and speed > 0
