"""vt_edu.config asks the active Keras backend for GPUs: no TensorFlow needed on JAX.

Colab's TPU image has Keras and JAX but no TensorFlow. Each check runs in a fresh
interpreter in which importing tensorflow fails.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_TENSORFLOW = "import sys; sys.modules['tensorflow'] = None  # import tensorflow -> ModuleNotFoundError\n"


def _python(code: str, tmp_path, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("VT_EDU_PROFILE", "KERAS_BACKEND")}
    environment.update(PYTHONPATH=str(ROOT), KERAS_HOME=str(tmp_path), **env)  # KERAS_HOME: no keras.json
    return subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW + code], env=environment, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_profile_without_tensorflow_on_jax(tmp_path):
    proc = _python("import vt_edu, keras\n"
                   "print(vt_edu.profile(), vt_edu.gpu_available(), keras.backend.backend(), "
                   "sys.modules.get('tensorflow'))", tmp_path, KERAS_BACKEND="jax")
    assert proc.returncode == 0, proc.stderr[-3000:]
    profile, gpu, backend, tensorflow = proc.stdout.split()
    assert profile in ("quick", "full") and gpu in ("True", "False")
    assert (profile == "full") == (gpu == "True")
    assert backend == "jax" and tensorflow == "None"


def test_a_backend_that_is_not_installed_is_one_clear_error(tmp_path):
    proc = _python("import vt_edu\ntry:\n    vt_edu.profile()\nexcept RuntimeError as error:\n    print(error)",
                   tmp_path)  # no KERAS_BACKEND, no keras.json: Keras' default, tensorflow
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("Keras' backend is tensorflow, which is not installed here: set KERAS_BACKEND")
    assert len(proc.stdout.strip().splitlines()) == 1
