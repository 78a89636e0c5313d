"""Data-parallel training over all local devices, with Keras' own distribution API.

Data parallelism keeps one copy (replica) of the model on every device and splits
each global batch of ``B`` images into equal shares of ``B / n`` for the ``n``
devices. Every device computes the gradients of its share; the gradients are
averaged over the devices, and the same averaged update keeps the replicas
identical. One step therefore computes what one device would compute on the whole
batch, ``n`` times faster at best.

Keras 3 carries this as ``keras.distribution.DataParallel``: on the JAX backend the
variables are replicated over a one-axis device mesh (axis ``"batch"``), every
input batch is sharded along that axis, and XLA's SPMD partitioner turns the one
jitted training step into per-device programs joined by the all-reduces that the
global computation needs. :func:`vt_edu.training.train` (``distribution=
"data-parallel"``, on the command line ``--distribution data-parallel``) uses it
over all devices of the process: the 8 cores of a Colab TPU, the GPUs of a
machine, or virtual CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``, set before JAX starts).

BatchNorm and the per-device batch: under SPMD partitioning every operation means
what it means in the unpartitioned program. BatchNormalization's batch mean and
variance are reductions over the batch axis, so XLA reduces them *across* the
devices: the statistics (and the moving averages built from them) are those of the
global batch, as in a single-device run with the same global batch; the
per-device batch ``B / n`` only divides the work and the memory and changes nothing
but float rounding (``tests/test_distribution.py`` checks this against a
single-device run, moving averages included). Frameworks that run one program per
device (PyTorch's ``DistributedDataParallel``, TensorFlow's ``MirroredStrategy``)
instead normalise each device's share on its own unless told to synchronise
(``SyncBatchNorm``); there the statistics, and the results, depend on ``B / n``.

Several hosts (a TPU pod, GPU machines on a network) need more: every process calls
``jax.distributed.initialize()`` (``keras.distribution.initialize()``) first, the
mesh then spans the devices of all hosts, and each host must feed its own share of
every batch. :func:`train`'s input pipeline feeds one process, so it refuses to run
in several.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile

#: The values of ``train(distribution=...)`` and ``--distribution``; ``None`` trains on one device.
DISTRIBUTIONS = ("data-parallel",)
#: The only Keras backend whose distribution API trains (TensorFlow's is a prototype, PyTorch has none).
DISTRIBUTION_BACKEND = "jax"
COMPARISON_REPORT_PREFIX = "VT_EDU_DATA_PARALLEL_REPORT "
# XLA settings that compile small CPU programs several times faster (and run them a
# little slower): compiling, not computing, dominates a comparison of a few steps.
QUICK_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def _error(message):
    from vt_edu.training.loop import TrainingError

    return TrainingError(message)


def check_distribution(distribution) -> None:
    """Refuse a ``distribution`` setting that cannot run here, before any data are loaded.

    Args:
        distribution: ``None`` (one device) or one of :data:`DISTRIBUTIONS`.

    Raises:
        TrainingError: an unknown setting, a backend other than JAX, or several processes.
    """
    if distribution is None:
        return
    if distribution not in DISTRIBUTIONS:
        raise _error(f"unknown distribution {distribution!r}; choose one of: {', '.join(DISTRIBUTIONS)} (or None).")
    import keras

    backend = keras.backend.backend()
    if backend != DISTRIBUTION_BACKEND:
        raise _error(
            f"distribution={distribution!r} (--distribution) needs the JAX backend (Keras' distribution API "
            f"trains on JAX only); this is {backend!r}. Set KERAS_BACKEND=jax before starting Python, "
            "or use --backend jax."
        )
    import jax

    if jax.process_count() > 1:
        raise _error(
            f"distribution={distribution!r} in {jax.process_count()} processes: train()'s input pipeline "
            "feeds one process and would give every host the same batches; train on the devices of one host "
            "(without jax.distributed.initialize()), or give each host its own share of the data with "
            "keras.distribution directly."
        )


def make_distribution(distribution):
    """The ``keras.distribution.Distribution`` for a setting (``None`` for ``None``).

    ``"data-parallel"``: ``keras.distribution.DataParallel`` over all devices that
    ``keras.distribution.list_devices()`` returns (the accelerators if there are
    any, else the CPU devices), on a one-axis mesh named ``"batch"``.
    """
    check_distribution(distribution)
    if distribution is None:
        return None
    import keras

    return keras.distribution.DataParallel(devices=keras.distribution.list_devices())


@contextlib.contextmanager
def distribution_scope(distribution):
    """Make ``distribution``'s Keras distribution the global one inside the block and
    restore the previous one afterwards (also after an error), so that later code,
    e.g. a notebook's next cells, is unaffected. ``None`` leaves things as they are.

    Yields:
        The ``keras.distribution.Distribution`` (or ``None``).
    """
    active = make_distribution(distribution)
    if active is None:
        yield None
        return
    with active.scope():  # Keras' scope sets the distribution and restores the previous one
        yield active


def describe_distribution() -> dict | None:
    """The active Keras distribution as plain data for ``config.json`` and ``metrics.json``.

    Returns:
        ``None`` when none is set (one device), else ``{"kind", "devices",
        "device_type", "mesh", "processes"}``, e.g. ``{"kind": "data-parallel",
        "devices": 8, "device_type": "tpu", "mesh": {"batch": 8}, "processes": 1}``.
    """
    import keras

    active = keras.distribution.distribution()
    if active is None:
        return None
    mesh = active.device_mesh
    devices = [str(device) for device in mesh.devices.flatten()]
    kind = "data-parallel" if isinstance(active, keras.distribution.DataParallel) else type(active).__name__
    return {
        "kind": kind,
        "devices": len(devices),
        "device_type": devices[0].split(":")[0].lower() if devices else None,
        "mesh": {str(name): int(size) for name, size in zip(mesh.axis_names, mesh.shape)},
        "processes": int(active.num_processes),
    }


def check_batch_split(batch_size: int, test_batch_size: int, test_images: int) -> None:
    """Refuse, before training, batches that do not split evenly over the devices that
    share each batch under the active Keras distribution (nothing to check without one).

    Every training batch has ``batch_size`` images (the remainder is dropped); the
    test set is evaluated in batches of ``test_batch_size`` and a last, smaller one,
    all of which divide when ``test_batch_size`` and ``test_images`` do. (Keras
    shards every batch like the first one, so a last batch that does not divide would
    fail in the middle of the evaluation.)

    Raises:
        TrainingError: naming the setting to change.
    """
    import keras

    active = keras.distribution.distribution()
    if active is None:
        return
    mesh = active.device_mesh
    shares = int(dict(zip(mesh.axis_names, mesh.shape)).get(active.batch_dim_name, 1))
    if batch_size % shares:
        raise _error(
            f"batch_size={batch_size} does not split evenly over the {shares} devices of data-parallel training; "
            f"use a multiple of {shares} (--batch-size), e.g. {_multiple_near(batch_size, shares)}."
        )
    if test_images % shares:
        raise _error(
            f"the {test_images} test images do not split evenly over the {shares} devices of data-parallel "
            f"evaluation; set max_test_images (--max-test-images) to a multiple of {shares} times the number "
            "of classes."
        )
    if test_batch_size % shares:
        raise _error(
            f"the test batch of {test_batch_size} images (max(batch_size, 256) unless the test set is smaller) "
            f"does not split evenly over the {shares} devices; use a batch_size of at least 256 that is a "
            f"multiple of {shares}."
        )


def _multiple_near(value: int, factor: int) -> int:
    return max(factor, factor * round(value / factor))


# ------------------------------------------------------------------ the comparison
def compare_on_virtual_devices(devices: int = 2, model: str = "resnet18", width: float = 0.0625,
                               image_size: int = 16, train_images: int = 64, test_images: int = 260,
                               batch_size: int = 16, epochs: int = 2, recipe: str = "fast", seed: int = 0,
                               quick_compile: bool = True, timeout: float = 600) -> dict:
    """Train the same run on one device and data-parallel on ``devices`` virtual CPU
    devices, in a fresh JAX process, and report how far apart they end up.

    The virtual devices must be configured before JAX starts (``XLA_FLAGS=
    --xla_force_host_platform_device_count``), hence the subprocess; the calling
    process may use any backend. Both runs use :func:`vt_edu.training.train` with the
    same seed (weights, data order, augmentation), the same synthetic images (the
    class sets the brightness) and the same global batch.

    Args:
        devices: virtual CPU devices of the data-parallel run.
        model, width: the registry model and its width multiplier.
        image_size, train_images, test_images: the synthetic data (10 classes);
            ``test_images`` above 256 makes a last, smaller test batch.
        batch_size: the global batch (a multiple of ``devices``).
        epochs, recipe, seed: as for :func:`vt_edu.training.train`.
        quick_compile: add :data:`QUICK_COMPILE_FLAGS` to ``XLA_FLAGS``.
        timeout: seconds before the subprocess is stopped.

    Returns:
        A dict: ``devices``, ``per_device_batch``, ``steps``; ``single`` and
        ``data_parallel``, each with ``step_losses`` (Keras' running mean after each
        training step) and ``top1``; ``max_loss_difference``;
        ``max_weight_difference`` (largest absolute difference of any weight,
        BatchNorm moving averages included) and ``max_weight`` (the largest absolute
        weight); ``distribution`` and ``metrics_distribution`` (what the
        data-parallel run's ``config.json`` and ``metrics.json`` record); ``restored`` (no distribution is active after the run);
        ``batchnorm``: a lone BatchNormalization layer's batch variance after one
        data-parallel step on a batch whose device shares differ in mean
        (``data_parallel``), next to the global batch's variance (``global``) and
        the mean of the per-device variances (``per_device``), per channel.

    Raises:
        RuntimeError: the subprocess failed (with the end of its output).
    """
    arguments = dict(devices=devices, model=model, width=width, image_size=image_size, train_images=train_images,
                     test_images=test_images, batch_size=batch_size, epochs=epochs, recipe=recipe, seed=seed)
    flags = [os.environ.get("XLA_FLAGS", ""), QUICK_COMPILE_FLAGS if quick_compile else "",
             f"--xla_force_host_platform_device_count={int(devices)}"]
    env = dict(
        os.environ, KERAS_BACKEND=DISTRIBUTION_BACKEND, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu",
        XLA_FLAGS=" ".join(flag for flag in flags if flag),
    )
    process = subprocess.run(
        [sys.executable, "-m", "vt_edu.training.distribution", json.dumps(arguments)],
        env=env, capture_output=True, text=True, timeout=timeout,
    )
    reports = [line for line in process.stdout.splitlines() if line.startswith(COMPARISON_REPORT_PREFIX)]
    if process.returncode or not reports:
        raise RuntimeError(
            f"the data-parallel comparison failed (exit {process.returncode}):\n{process.stdout[-2000:]}\n"
            f"{process.stderr[-4000:]}"
        )
    return json.loads(reports[-1][len(COMPARISON_REPORT_PREFIX):])


def _synthetic_images(count: int, size: int, classes: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = np.arange(count) % classes
    # Brightness depends on the class, so there is something to learn.
    images = rng.normal(20 * labels[:, None, None, None] + 30, 30, (count, size, size, 3))
    return np.clip(images, 0, 255).astype(np.uint8), labels


def _run_comparison(devices, model, width, image_size, train_images, test_images, batch_size, epochs, recipe,
                    seed) -> dict:
    """The body of :func:`compare_on_virtual_devices`, in the JAX process."""
    import jax
    import keras
    import numpy as np

    from vt_edu.training import train

    if jax.device_count() != devices:
        raise RuntimeError(f"expected {devices} devices, JAX sees {jax.device_count()}: {jax.devices()}")
    classes = [f"class{i}" for i in range(10)]
    data = (
        _synthetic_images(train_images, image_size, len(classes), seed),
        _synthetic_images(test_images, image_size, len(classes), seed + 1),
        classes,
    )

    class StepLosses(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses = []

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(float(logs["loss"]))

    runs = {}
    with tempfile.TemporaryDirectory() as root:
        for name, distribution in (("single", None), ("data_parallel", "data-parallel")):
            losses = StepLosses()
            result = train(
                model, data=data, recipe=recipe, epochs=epochs, batch_size=batch_size, width=width, seed=seed,
                run_dir=os.path.join(root, name), distribution=distribution, callbacks=[losses], verbose=0,
            )
            runs[name] = dict(result=result, losses=losses, restored=keras.distribution.distribution() is None)
    single, parallel = runs["single"], runs["data_parallel"]
    weights = [(np.asarray(a), np.asarray(b))
               for a, b in zip(single["result"].model.weights, parallel["result"].model.weights)]
    return {
        "devices": devices,
        "per_device_batch": batch_size // devices,
        "steps": len(parallel["losses"].losses),
        **{name: {"step_losses": run["losses"].losses, "top1": run["result"].metrics["top1"]}
           for name, run in runs.items()},
        "max_loss_difference": float(np.max(np.abs(np.subtract(single["losses"].losses, parallel["losses"].losses)))),
        "max_weight_difference": max(float(np.max(np.abs(a - b))) for a, b in weights),
        "max_weight": max(float(np.max(np.abs(a))) for a, _ in weights),
        "distribution": parallel["result"].config.get("distribution"),
        "metrics_distribution": parallel["result"].metrics.get("distribution"),
        "restored": parallel["restored"],
        "batchnorm": _batchnorm_statistics(devices),
    }


def _batchnorm_statistics(devices: int) -> dict:
    """One data-parallel training step of a lone BatchNormalization layer (momentum
    0, so its moving variance becomes the batch variance) on a batch whose device
    shares differ in mean: what it stores, next to the variance of the global batch
    and the mean of the per-device variances."""
    import keras
    import numpy as np

    # The share of device d is centred at 3 d: each share has variance ~1, the batch much more.
    shares = [np.random.default_rng(d).normal(3.0 * d, 1.0, (8, 4)) for d in range(devices)]
    x = np.concatenate(shares).astype("float32")
    with distribution_scope("data-parallel"):
        model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(momentum=0.0)])
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x, np.zeros_like(x), batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        stored = np.asarray(model.layers[0].moving_variance, dtype=float)
    return {
        "data_parallel": [float(v) for v in stored],
        "global": [float(v) for v in x.astype(float).var(axis=0)],
        "per_device": [float(v) for v in np.mean([share.var(axis=0) for share in shares], axis=0)],
    }


if __name__ == "__main__":
    report = _run_comparison(**json.loads(sys.argv[1]))
    print(COMPARISON_REPORT_PREFIX + json.dumps(report))
