"""Where and with what a result was produced: hardware, library versions, git commit, date."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """CPU cores this process may run on (the affinity mask where available)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def gpu_name() -> str | None:
    """The first accelerator's name as the active Keras backend sees it, or None."""
    from vt_edu.config import gpu_available

    if not gpu_available():
        return None
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpu = tf.config.list_physical_devices("GPU")[0]
            return tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
        if backend == "jax":
            import jax

            return jax.devices()[0].device_kind
        if backend == "torch":
            import torch

            return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - provenance must never break a run
        return "GPU (name unavailable)"
    return None


def hardware() -> dict:
    return {
        "cpu": cpu_model(),
        "cpu_cores": usable_cores(),
        "gpu": gpu_name(),
        "platform": platform.platform(),
    }


def versions() -> dict:
    """Versions of Python and of the libraries a result depends on (installed ones only)."""
    out = {"python": sys.version.split()[0]}
    for package in ("vt-edu", "keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    """``HEAD`` of the checkout the package runs from, with ``+dirty`` if tracked files changed."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=10,
        )
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def now() -> str:
    """The current time, ISO 8601 with time zone."""
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def provenance() -> dict:
    """Everything above in one dict (plus the Keras backend)."""
    import keras

    return {
        "date": now(),
        "backend": keras.backend.backend(),
        "hardware": hardware(),
        "versions": versions(),
        "git_commit": git_commit(),
    }
