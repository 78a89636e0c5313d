"""Run-time settings shared by the package, the chapters and the CLI.

Two environment settings are part of the project's contract (tests and CI rely on
their names):

* ``VT_EDU_DATA``: a local data source (a folder or ``.tar.gz``, in image-folder or
  official CIFAR layout). See :mod:`vt_edu.data`.
* ``VT_EDU_PROFILE``: ``quick`` or ``full``. Heavy cells size their data and epochs
  from it. The default is ``full`` when a GPU is visible and ``quick`` otherwise, so
  the same notebook executes in minutes on a 2-core CPU and trains at full scale in
  Colab.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

DATA_ENV = "VT_EDU_DATA"
PROFILE_ENV = "VT_EDU_PROFILE"
CACHE_ENV = "VT_EDU_CACHE"
PROFILES = ("quick", "full")


@functools.cache
def gpu_available() -> bool:
    """Whether the active Keras backend sees a GPU (cached: the answer cannot change).

    Asks that backend only (``tf.config``, ``jax``, ``torch.cuda``), so TensorFlow need
    not be installed when Keras runs on JAX or PyTorch (Colab's TPU image has no
    TensorFlow). With JAX, a TPU counts as well.

    Raises:
        RuntimeError: Keras' backend (``KERAS_BACKEND``, else ``~/.keras/keras.json``,
            else ``tensorflow``) is not installed.
    """
    try:
        import keras
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        if missing not in ("tensorflow", "jax", "torch"):
            raise
        raise RuntimeError(
            f"Keras' backend is {missing}, which is not installed here: set KERAS_BACKEND to an installed "
            "one (tensorflow, jax or torch) at the start of a fresh session, before importing keras or vt_edu, "
            "e.g. os.environ['KERAS_BACKEND'] = 'jax'."
        ) from error

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def profile() -> str:
    """The active profile: ``"quick"`` or ``"full"``.

    Reads ``VT_EDU_PROFILE``; when unset, ``full`` on a GPU and ``quick`` on a CPU.

    Raises:
        ValueError: if ``VT_EDU_PROFILE`` holds anything but ``quick`` or ``full``.
    """
    value = os.environ.get(PROFILE_ENV, "").strip().lower()
    if not value:
        return "full" if gpu_available() else "quick"
    if value not in PROFILES:
        raise ValueError(
            f"{PROFILE_ENV}={os.environ[PROFILE_ENV]!r} is not a profile; "
            f"use one of {', '.join(PROFILES)}."
        )
    return value


def by_profile(quick, full):
    """Return ``quick`` in the quick profile and ``full`` in the full one.

    Chapters use it to size heavy cells in one line, e.g.
    ``epochs = by_profile(quick=2, full=30)``.
    """
    return quick if profile() == "quick" else full


def cache_dir() -> Path:
    """Folder for decoded data and other derived files (``VT_EDU_CACHE`` or ``~/.cache/vt_edu``)."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "vt_edu"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
