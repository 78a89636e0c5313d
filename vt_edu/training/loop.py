"""``train()``: one training run of a registry model with a recipe, in a resumable run folder.

A run folder (:mod:`vt_edu.training.run_folder`) holds everything about one run::

    config.json        every setting of the run (what identifies it)
    history.csv        one row per completed epoch: lr, train/test loss, top-1, top-5, seconds
                       (segmentation: pixel accuracy and mean IoU instead of top-1/top-5)
    metrics.json       final test top-1/top-5 (segmentation: mean IoU, pixel accuracy), time,
                       images/s, params, MACs, provenance
    best.weights.h5    weights of the epoch with the best test top-1 (segmentation: mean IoU;
                       EMA weights with EMA)
    model.keras        the final model (EMA weights with EMA), reloadable with keras.models.load_model
    backup/epoch-K/    the newest checkpoint while a run is unfinished

A kill at any instant loses at most the epoch in progress: at the end of every epoch
the weights, the optimizer state (iteration count, moments, EMA), the dropout seed
states, the epoch count and the history rows are committed together as one checkpoint,
and every file is written atomically. Re-running the same call (or CLI command)
restores the newest checkpoint and continues with the next epoch; the data order and
the augmentation draws are functions of ``(seed, epoch)``, so the resumed run repeats
the uninterrupted one (same losses, same weights, up to float rounding). A finished run
(``metrics.json`` present) is not retrained: the call returns its results. A run
folder with a different configuration is refused unless ``overwrite=True``, which
deletes only the files a run writes; a folder that holds other files but no run is
always refused.

A loss that becomes NaN, or that diverges (above ``100 * ln(classes)``, see
:func:`vt_edu.training.callbacks.divergence_bound`), stops the run with a
:class:`TrainingError` naming the learning rate.

Time budgets: with ``time_budget_minutes`` a run stops before a batch that would end past
the budget (it predicts that batch's time from the slowest of the last
``BUDGET_LOOKBACK`` batches, leaving out a session's first batch, which also traces the
graph), so its training time stays inside the budget; the epoch
in progress is then validated and counted. With ``schedule_clock="time"`` the
learning-rate schedule also runs on the training clock instead of the step count (see
:func:`train`), so a cosine reaches its end exactly when the budget does, however fast
the machine turns out to be.

Note on "best": CIFAR has no separate validation split here, so the per-epoch test
accuracy both selects and scores ``best.weights.h5``; ``best_top1`` is therefore
optimistic. ``top1`` (the headline number) is the final model's. The same holds for a
segmentation run's ``best_mean_iou`` and ``mean_iou``.

Segmentation (``task="segmentation"``, the task of ``fpn`` and ``vt_fpn``): the targets
are masks ``(N, S, S)`` of scenes (:mod:`vt_edu.training.scene_data`), the loss is the
mean per-pixel cross-entropy, and the metrics are pixel accuracy (``accuracy``) and
mean IoU (``mean_iou``). Classification run folders are unchanged by it: ``config.json``
gains ``task`` and ``scenes`` only for segmentation.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vt_edu.names import DATASETS, SEGMENTATION_MODELS, TASKS, task_of
from vt_edu.training.distribution import check_batch_split, describe_distribution, with_distribution
from vt_edu.training.errors import TrainingError
from vt_edu.training.optimizers import make_optimizer
from vt_edu.training.recipes import Recipe, RecipeError, get_recipe
from vt_edu.training.run_folder import DIFFERENT, FINISHED, RunFolder, read_history
from vt_edu.training.scene_data import check_scene_options, fingerprint, prepare_scenes

__all__ = [
    "RunResult", "TrainingError", "compile_for_training", "default_jit_compile", "default_run_dir", "prepare_data",
    "read_history", "train",
]

SCHEDULE_CLOCKS = ("steps", "time")
# With schedule_clock="time", fit() may run this many times the planned epochs (a machine
# faster than planned goes on until the budget is spent).
TIME_CLOCK_EPOCH_CAP = 2


@dataclass
class RunResult:
    """What :func:`train` returns."""

    run_dir: Path
    config: dict
    metrics: dict
    history: list = field(default_factory=list)
    model: object = None  # the trained keras.Model (None when an earlier finished run was returned)


# ------------------------------------------------------------------------ validation
def _positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise TrainingError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_arguments(model_name, dataset, recipe, epochs, batch_size, seed, width, max_train_images,
                     max_test_images, model_options, data, time_budget_minutes, schedule_clock):
    from vt_edu.models.registry import ModelConfigError, check_options

    try:
        recipe = get_recipe(recipe)
    except RecipeError as error:
        raise TrainingError(str(error)) from None
    if data is None and dataset not in DATASETS:
        raise TrainingError(f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}.")
    epochs = _positive_int("epochs", recipe.epochs if epochs is None else epochs)
    batch_size = _positive_int("batch_size", recipe.batch_size if batch_size is None else batch_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TrainingError(f"seed must be a non-negative integer, got {seed!r}.")
    max_train_images = _positive_int("max_train_images", max_train_images, allow_none=True)
    max_test_images = _positive_int("max_test_images", max_test_images, allow_none=True)
    if time_budget_minutes is not None and not (time_budget_minutes > 0):
        raise TrainingError(f"time budget must be > 0 minutes, got {time_budget_minutes!r}.")
    if schedule_clock not in SCHEDULE_CLOCKS:
        raise TrainingError(f"unknown schedule clock {schedule_clock!r}; choose one of: {', '.join(SCHEDULE_CLOCKS)}.")
    if schedule_clock == "time" and time_budget_minutes is None:
        raise TrainingError("schedule_clock='time' needs a time budget (time_budget_minutes / --minutes).")
    options = _model_options(model_name, recipe, width, model_options)
    # A width of inf passes "> 0" but builds no model: refuse it here, before any file is written.
    value = options.get("width")
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        raise TrainingError(f"model {model_name!r}: width={value!r} is invalid; expected a finite number > 0.")
    try:
        check_options(model_name, options)
    except ModelConfigError as error:
        raise TrainingError(str(error)) from None
    return recipe, epochs, batch_size, max_train_images, max_test_images, options


def _check_task(model_name, task, scenes, data, recipe: Recipe, max_train_images, max_test_images, teacher):
    """The run's task, and its scene settings (``None`` for classification); raises before any work."""
    if task is None:
        task = task_of(model_name)
    if task not in TASKS:
        raise TrainingError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}.")
    if task != task_of(model_name):
        raise TrainingError(
            f"model {model_name!r} learns {task_of(model_name)}, not {task}; "
            f"the segmentation models are: {', '.join(SEGMENTATION_MODELS)}."
        )
    if task == "classification":
        if scenes is not None:
            raise TrainingError("scene settings (scenes, --train-scenes, ...) apply to segmentation runs only.")
        return task, None
    for name, value, flag in (("max_train_images", max_train_images, "--train-scenes"),
                              ("max_test_images", max_test_images, "--test-scenes")):
        if value is not None:
            key = "num_train" if name == "max_train_images" else "num_test"
            raise TrainingError(
                f"{name} applies to classification; a segmentation run sets its number of scenes with "
                f"scenes={{'{key}': N}} ({flag} N)."
            )
    from vt_edu.training.pipeline import SCENE_AUGMENTATIONS

    if recipe.augment not in SCENE_AUGMENTATIONS:
        raise TrainingError(
            f"recipe {recipe.name!r} augments with {recipe.augment}, whose translations and cutouts would not "
            f"move the masks; segmentation takes augment {' or '.join(map(repr, SCENE_AUGMENTATIONS))} "
            f"(e.g. get_recipe({recipe.name!r}, augment='crop_flip'))."
        )
    if teacher is not None:
        raise TrainingError("distillation (teacher, --teacher) is implemented for classification only.")
    return task, check_scene_options(scenes, loading=data is None)


def _model_options(model_name, recipe: Recipe, width, model_options) -> dict:
    """Model options: the recipe's regularisers where the model has them, then ``width``,
    then explicit ``model_options`` (which win)."""
    from vt_edu.models.registry import ModelConfigError, model_options as defaults_of

    try:
        supported = defaults_of(model_name)
    except ModelConfigError as error:
        raise TrainingError(str(error)) from None
    options = {}
    if recipe.dropout is not None and "dropout" in supported:
        options["dropout"] = recipe.dropout
    if recipe.stochastic_depth is not None and "stochastic_depth" in supported:
        options["stochastic_depth"] = recipe.stochastic_depth
    if width is not None:
        options["width"] = width
    options.update(model_options or {})
    return options


# ------------------------------------------------------------------------------ data
def _subset(x, y, limit, seed, what):
    if limit is None or limit >= len(x):
        return x, y
    from vt_edu.data import balanced_subset

    classes = len(np.unique(y))
    per_class = limit // classes
    if per_class < 1:
        raise TrainingError(f"{what}={limit} is fewer than the {classes} classes; use at least {classes}.")
    try:
        return balanced_subset(x, y, per_class, seed=seed)
    except ValueError:  # some class is short: fall back to the first images
        return x[:limit], y[:limit]


def prepare_data(dataset="cifar10", data=None, source=None, max_train_images=None, max_test_images=None,
                 seed=0, progress=True):
    """Load (or take) the arrays, apply the image limits, and describe them.

    Args:
        data: ``((x_train, y_train), (x_test, y_test), class_names)`` to use instead
            of :func:`vt_edu.data.load_cifar` (a hook for tests and notebooks).
        max_train_images, max_test_images: class-balanced random subsets
            (``n // classes`` images per class, drawn with ``seed``).

    Returns:
        ``((x_train, y_train), (x_test, y_test), class_names, description)``.
    """
    if data is None:
        from vt_edu.data import load_cifar

        data = load_cifar(dataset, source=source, progress=progress)
    (x_train, y_train), (x_test, y_test), class_names = data
    y_train, y_test = np.asarray(y_train).reshape(-1), np.asarray(y_test).reshape(-1)
    x_train, y_train = _subset(x_train, y_train, max_train_images, seed, "max_train_images")
    x_test, y_test = _subset(x_test, y_test, max_test_images, seed, "max_test_images")
    description = {
        "train_images": int(len(x_train)),
        "test_images": int(len(x_test)),
        "image_shape": [int(d) for d in x_train.shape[1:]],
        "num_classes": int(len(class_names)),
        "fingerprint": fingerprint(x_train, y_train, x_test, y_test),
    }
    return (x_train, y_train), (x_test, y_test), list(class_names), description


def _scores(task, final, best) -> dict:
    """The test scores of ``metrics.json``: the final model's (``final``, from ``evaluate``)
    and the best epoch's (``best``, a history row)."""
    if task == "segmentation":
        return {
            "task": task,
            "pixel_accuracy": float(final["accuracy"]),
            "mean_iou": float(final["mean_iou"]),
            "test_loss": float(final["loss"]),
            "best_mean_iou": float(best.get("val_mean_iou", float("nan"))),
        }
    return {
        "top1": float(final["accuracy"]),
        "top5": float(final["top5"]),
        "test_loss": float(final["loss"]),
        "best_top1": float(best.get("val_accuracy", float("nan"))),
    }


# ----------------------------------------------------------------------- run folders
def default_run_dir(model_name, dataset, recipe_name, epochs, seed, width=None) -> Path:
    """``runs/<model>[-w<width>]-<dataset>-<recipe>-e<epochs>-s<seed>``."""
    w = f"-w{width:g}" if width is not None else ""
    return Path("runs") / f"{model_name}{w}-{dataset}-{recipe_name}-e{epochs}-s{seed}"


# ----------------------------------------------------------------------------- train
def default_jit_compile(gpu: bool):
    """:func:`train`'s XLA setting when none is given."""
    import keras

    # XLA pays off on a GPU. On a CPU, TensorFlow runs these models 1.2-2x slower
    # with XLA (and compiles for tens of seconds); JAX always compiles ("auto").
    return True if gpu else ("auto" if keras.backend.backend() == "jax" else False)


def compile_for_training(model, recipe: Recipe, batch_size: int, steps_per_epoch: int, epochs: int,
                         num_classes: int, schedule_clock: str = "steps", jit_compile=None,
                         task: str = "classification"):
    """Compile ``model`` as :func:`train` does: the recipe's optimizer (learning rate scaled to
    ``batch_size``, weight decay, global-norm clipping, EMA), its label-smoothed loss, the
    ``accuracy`` and ``top5`` metrics, and XLA as :func:`default_jit_compile` says unless
    ``jit_compile`` is given. Speed probes use it too, so they time the step that training runs.

    For ``task="segmentation"`` (``(B, S, S, K)`` logits, ``(B, S, S)`` masks) the loss is the
    mean per-pixel cross-entropy and the metrics are ``accuracy`` (pixel accuracy) and
    ``mean_iou`` (``keras.metrics.MeanIoU`` over all pixels seen; ``num_classes``
    counts the background).

    Returns:
        The learning-rate schedule (what :class:`ClockSchedule` samples with ``schedule_clock="time"``).
    """
    import keras

    from vt_edu.config import gpu_available
    from vt_edu.training.distillation import SparseSmoothedCrossEntropy

    if jit_compile is None:
        jit_compile = default_jit_compile(gpu_available())
    optimizer, schedule = make_optimizer(recipe, batch_size, steps_per_epoch, epochs, schedule_clock)
    metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if task == "segmentation":
        metrics.append(keras.metrics.MeanIoU(num_classes, sparse_y_pred=False, name="mean_iou"))
    else:
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(k=min(5, num_classes), name="top5"))
    model.compile(
        optimizer=optimizer,
        loss=SparseSmoothedCrossEntropy(recipe.label_smoothing),
        metrics=metrics,
        jit_compile=jit_compile,
    )
    return schedule


def _load_teacher(teacher):
    import keras

    if teacher is None or isinstance(teacher, keras.Model):
        return teacher
    path = Path(teacher)
    if not path.exists():
        raise TrainingError(f"teacher model {str(path)!r} does not exist (a .keras file is expected).")
    return keras.models.load_model(path, compile=False)


@with_distribution  # train() runs in its `distribution`'s Keras distribution (restored afterwards)
def train(
    model_name: str,
    dataset: str = "cifar10",
    recipe="seed",
    epochs: int | None = None,
    batch_size: int | None = None,
    run_dir=None,
    seed: int = 0,
    width: float | None = None,
    max_train_images: int | None = None,
    max_test_images: int | None = None,
    model_options: dict | None = None,
    data=None,
    source=None,
    teacher=None,
    mixed_precision: bool | None = None,
    jit_compile=None,
    time_budget_minutes: float | None = None,
    schedule_clock: str = "steps",
    torch_fast_paths: bool = False,
    overwrite: bool = False,
    verbose="auto",
    callbacks=(),
    workers: int = 1,
    distribution: str | None = None,
    task: str | None = None,
    scenes: dict | None = None,
) -> RunResult:
    """Train a registry model with a recipe and write a run folder (see the module doc).

    Args:
        model_name: a :func:`vt_edu.models.create_model` name (``cnn``, ``resnet18``,
            ``vt_resnet18``, ``vit``; ``fpn``, ``vt_fpn`` for segmentation).
        dataset: ``cifar10`` or ``cifar100`` (read with :func:`vt_edu.data.load_cifar`;
            ``VT_EDU_DATA`` or ``source`` say where from). For segmentation, the data set
            whose images :func:`vt_edu.data.scenes.load_scenes` pastes into scenes.
        recipe: a recipe name of :data:`vt_edu.training.RECIPES` or a :class:`Recipe`.
        epochs: epochs to train (default: the recipe's).
        batch_size: default the recipe's; learning rates scale with it.
        run_dir: the run folder (default :func:`default_run_dir`).
        seed: seeds weights, data order, augmentation and dropout; the same seed on
            the same machine and backend gives the same run.
        width: the model's width multiplier.
        max_train_images, max_test_images: class-balanced subsets for quick runs
            (classification only; segmentation sets ``scenes["num_train"]``/``["num_test"]``).
        model_options: further :func:`create_model` options (e.g. ``num_tokens``).
        data: arrays ``((x_train, y_train), (x_test, y_test), class_names)`` to use
            instead of loading ``dataset`` (which then only labels the run); for
            segmentation a :class:`vt_edu.data.scenes.SceneData` (its masks are the targets).
        source: a data source path for :func:`vt_edu.data.load_cifar`.
        teacher: a ``.keras`` path or ``keras.Model`` to distil from (recipe's
            ``distillation_alpha`` and ``distillation_temperature``).
        mixed_precision: ``mixed_float16`` compute; default on with a GPU.
        jit_compile: XLA compilation; default ``True`` with a GPU; on a CPU ``"auto"``
            with JAX and ``False`` otherwise (TensorFlow's XLA is slower on CPU).
        time_budget_minutes: stop training before a batch that would end past this
            much training time (the started epoch is then validated and counted).
        schedule_clock: what moves the learning-rate schedule. ``"steps"`` (default):
            optimizer steps, over ``epochs`` epochs; the same seed repeats a run.
            ``"time"`` (needs ``time_budget_minutes``): training time, the budget standing for ``epochs`` epochs of the schedule
            (schedule epoch ``e`` after ``e / epochs`` of the budget), so a cosine ends
            when the budget does however fast the machine is; training goes on until
            the budget is spent, for at most ``TIME_CLOCK_EPOCH_CAP * epochs`` epochs.
            The rates then depend on the machine's speed, so such runs do not repeat
            exactly.
        torch_fast_paths: train with :mod:`vt_edu.torch_fast_paths` (fused BatchNorm,
            convolutions without input copies; PyTorch backend only; the same arithmetic
            as Keras' own code up to float rounding).
        overwrite: replace a run of a different configuration in ``run_dir`` instead of
            refusing; only the files a run writes are deleted (a folder holding other
            files but no run is refused even so).
        verbose: Keras' ``fit`` verbosity (``"auto"``, 0, 1, 2).
        callbacks: extra Keras callbacks (run after the epoch's checkpoint is committed,
            so an exception raised by one leaves a resumable run).
        workers: threads preparing batches (``PyDataset`` workers).
        distribution: ``None`` (one device) or ``"data-parallel"``: Keras'
            ``DataParallel`` over all local devices (JAX backend only; see
            :mod:`vt_edu.training.distribution`). ``batch_size`` is the global batch,
            split evenly over the devices; BatchNorm still normalises over the global
            batch. The previous Keras distribution is restored afterwards.
        task: ``"classification"`` or ``"segmentation"``; default the model's
            (:func:`vt_edu.names.task_of`); a task the model does not learn is refused.
            Segmentation trains on per-pixel masks with the per-pixel loss, reports pixel
            accuracy (``accuracy``) and mean IoU (``mean_iou``), and keeps the epoch of the
            best test mean IoU in ``best.weights.h5``. Its ``crop_flip`` augmentation crops
            and flips each scene and its mask identically; RandAugment recipes and
            distillation are refused.
        scenes: segmentation only: settings of :func:`vt_edu.data.scenes.load_scenes`
            (``num_train``, ``num_test``, ``canvas_size``, ``max_objects``,
            ``min_object_size``, ``max_object_size``, and ``seed``, the scenes' own seed,
            default :data:`vt_edu.training.scene_data.DEFAULT_SCENE_SEED` whatever the
            training ``seed``); missing ones take
            :data:`~vt_edu.training.scene_data.SCENE_DEFAULTS`. Recorded in
            ``config.json`` under ``"scenes"``. With ``data``, settings given are
            checked against the data (``None`` recorded when none are given).

    Returns:
        :class:`RunResult` with ``metrics`` (what ``metrics.json`` holds), ``history``
        (the rows of ``history.csv``) and the trained ``model``.

    Raises:
        TrainingError: bad options (before any data are loaded or files written), a
            batch larger than the training set, a batch that does not split over the
            devices (before training), a run folder with a different configuration or
            not a run's, a NaN or diverging loss.
        vt_edu.data.DataError: the data cannot be loaded.
    """
    import keras

    from vt_edu.config import gpu_available
    from vt_edu.flops import count_macs
    from vt_edu.models import create_model
    from vt_edu.torch_fast_paths import enabled as fast_paths_enabled
    from vt_edu.training import provenance
    from vt_edu.training.distillation import Distiller
    from vt_edu.training.callbacks import (
        ClockSchedule, CommitCheckpoint, DivergenceGuard, EpochSetter, RunLogger, StageCheckpoint, UnshareEMAWeights,
    )
    from vt_edu.training.pipeline import ImageBatches, SceneBatches
    from vt_edu.training.run_folder import PUBLISHED_WEIGHTS

    recipe, epochs, batch_size, max_train_images, max_test_images, options = _check_arguments(
        model_name, dataset, recipe, epochs, batch_size, seed, width, max_train_images, max_test_images,
        model_options, data, time_budget_minutes, schedule_clock,
    )
    task, scene_settings = _check_task(model_name, task, scenes, data, recipe, max_train_images, max_test_images,
                                       teacher)
    segmentation = task == "segmentation"
    workers = _positive_int("workers", workers)
    if torch_fast_paths and keras.backend.backend() != "torch":
        raise TrainingError(
            f"torch_fast_paths (--torch-fast-paths) needs the PyTorch backend; this is {keras.backend.backend()!r}."
        )
    teacher_model = _load_teacher(teacher)
    gpu = gpu_available()
    mixed_precision = gpu if mixed_precision is None else bool(mixed_precision)
    if jit_compile is None:
        jit_compile = default_jit_compile(gpu)

    if segmentation:
        (x_train, y_train), (x_test, y_test), class_names, described = prepare_scenes(
            dataset, data, scene_settings, source, progress=verbose != 0
        )
    else:
        (x_train, y_train), (x_test, y_test), class_names, described = prepare_data(
            dataset, data, source, max_train_images, max_test_images, seed, progress=verbose != 0
        )
    if batch_size > len(x_train):
        what = "scenes" if segmentation else "images"
        raise TrainingError(
            f"batch_size={batch_size} is larger than the {len(x_train)} training {what}; "
            f"lower --batch-size or use more {what}."
        )
    test_batch_size = min(max(batch_size, 256), len(x_test))
    check_batch_split(batch_size, test_batch_size, len(x_test))  # with a distribution: every batch splits evenly
    dataset_name = str(dataset)  # with `data`, a label for the arrays (the fingerprint identifies them)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(
        model_name, dataset_name, recipe.name, epochs, seed, width
    )
    config = {
        "model": model_name,
        "model_options": options,
        "dataset": dataset_name,
        "data": described,
        "recipe": recipe.to_dict(),
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": recipe.scaled_learning_rate(batch_size),
        "seed": int(seed),
        "max_train_images": max_train_images,
        "max_test_images": max_test_images,
        "teacher": None if teacher is None else (str(teacher) if not isinstance(teacher, keras.Model) else teacher.name),
        "time_budget_minutes": time_budget_minutes,
        "mixed_precision": mixed_precision,
        "jit_compile": jit_compile,
        "backend": keras.backend.backend(),
    }
    if segmentation:  # absent means classification, so run folders from before the option still resume
        config["task"] = task
        config["scenes"] = scene_settings
    if schedule_clock != "steps":  # absent means steps, so run folders from before the option still resume
        config["schedule_clock"] = schedule_clock
    if torch_fast_paths:  # absent means off, for the same reason
        config["torch_fast_paths"] = True
    distribution_record = describe_distribution()  # the distribution train() runs in (see with_distribution)
    if distribution_record is not None:  # absent means one device, for the same reason
        config["distribution"] = distribution_record
    config = json.loads(json.dumps(config))  # normalise tuples etc. for comparison

    # -- the run folder: new, resumable, finished, of other settings, or not a run's
    folder = RunFolder(run_dir)
    status = folder.status(config)
    if status == FINISHED:
        folder.remove_checkpoints()  # left if a kill came between metrics.json and their removal
        return RunResult(run_dir, config, folder.read_metrics(), folder.history())
    if status == DIFFERENT:
        if not overwrite:
            differences = RunFolder.differences(folder.read_config(), config)
            raise TrainingError(
                f"run folder {str(run_dir)!r} holds a run with different settings "
                f"({', '.join(differences)}); use another run folder or overwrite=True (--overwrite)."
            )
        folder.clear()
    if folder.path.exists():
        folder.remove_temporary_files()
    checkpoint = folder.latest_checkpoint()

    # -- model, optimizer, data
    keras.utils.set_random_seed(int(seed))
    previous_policy = keras.config.dtype_policy()
    try:
        if mixed_precision:
            keras.config.set_dtype_policy("mixed_float16")
        student = create_model(model_name, num_classes=len(class_names), input_shape=tuple(x_train.shape[1:]), **options)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    table = count_macs(student)

    from vt_edu.data import channel_stats

    mean, std = channel_stats(x_train)
    if segmentation:
        train_batches = SceneBatches(
            x_train, y_train, batch_size, mean, std, augment=recipe.augment, shuffle=True, seed=int(seed),
            drop_remainder=True, workers=workers,
        )
        test_batches = SceneBatches(x_test, y_test, test_batch_size, mean, std, workers=workers)
    else:
        train_batches = ImageBatches(
            x_train, y_train, batch_size, mean, std, augment=recipe.augment, shuffle=True, seed=int(seed),
            drop_remainder=True, randaugment_ops=recipe.randaugment_ops,
            randaugment_magnitude=recipe.randaugment_magnitude, workers=workers,
        )
        test_batches = ImageBatches(x_test, y_test, test_batch_size, mean, std, workers=workers)
    model = student
    if teacher_model is not None:
        model = Distiller(
            student, teacher_model, recipe.distillation_alpha, recipe.distillation_temperature,
            recipe.label_smoothing,
        )
        model(train_batches[0][0][:1])  # build
    schedule = compile_for_training(
        model, recipe, batch_size, len(train_batches), epochs, len(class_names), schedule_clock, jit_compile, task
    )
    monitor = "val_mean_iou" if segmentation else "val_accuracy"  # what "best" means
    if checkpoint is not None:
        model.optimizer.build(model.trainable_variables)  # as fit() would, so that its variables exist
        checkpoint.restore(model)
    folder.write_config(config)

    # -- training (skipped when the checkpoint says it is done: a kill came before the last files)
    last_epoch = epochs if schedule_clock == "steps" else TIME_CLOCK_EPOCH_CAP * epochs
    logger = RunLogger(
        train_batches.num_images, None if time_budget_minutes is None else 60.0 * time_budget_minutes,
        history=[] if checkpoint is None else checkpoint.history,
    )
    if checkpoint is not None:
        folder.publish(checkpoint)  # history.csv and best.weights.h5 as committed with these weights
    with fast_paths_enabled(torch_fast_paths):
        if checkpoint is None or not checkpoint.state["training_done"]:
            stage = StageCheckpoint(folder)
            callback_list = [
                EpochSetter(train_batches),
                DivergenceGuard(len(class_names), config["learning_rate"]),
                logger,
                stage,
            ]
            if recipe.ema_momentum:
                # Validate and publish the EMA weights; the checkpoint's variables are the raw ones.
                callback_list += [keras.callbacks.SwapEMAWeights(swap_on_epoch=True), UnshareEMAWeights()]
            callback_list.append(
                CommitCheckpoint(stage, student, logger, last_epoch, previous=checkpoint, monitor=monitor)
            )
            if schedule_clock == "time":
                callback_list.append(ClockSchedule(schedule, epochs, logger))
            callback_list.extend(callbacks)  # after the commit, so that an exception in one leaves a resumable run
            model.fit(
                train_batches,
                epochs=last_epoch,
                initial_epoch=0 if checkpoint is None else checkpoint.epoch,
                # ImageBatches orders each epoch from (seed, epoch); Keras' own shuffling
                # of the batches would draw from the process's RNG, which a resumed run
                # does not share with the uninterrupted one.
                shuffle=False,
                validation_data=test_batches,
                callbacks=callback_list,
                verbose=verbose,
            )
            checkpoint = folder.latest_checkpoint()
        else:
            student.load_weights(checkpoint.path / PUBLISHED_WEIGHTS)
        final = model.evaluate(test_batches, verbose=0, return_dict=True)

    # -- files
    history = [] if checkpoint is None else checkpoint.history
    if not history:
        raise TrainingError("no epoch was completed.")
    best = max(history, key=lambda r: r.get(monitor, -1))
    train_seconds = sum(r["train_seconds"] for r in history)
    epochs_done = history[-1]["epoch"]
    stopped_by_budget = checkpoint.state["stopped_by_budget"]
    folder.save_model(student)
    metrics = {
        "model": model_name,
        "dataset": dataset_name,
        "recipe": recipe.name,
        "epochs_requested": epochs,
        "epochs_completed": epochs_done,
        "stopped_early": "time budget" if stopped_by_budget else None,
        "schedule_clock": schedule_clock,
        **_scores(task, final, best),
        "best_epoch": int(best["epoch"]),
        "train_seconds": round(train_seconds, 2),
        "wall_seconds": round(sum(r["epoch_seconds"] for r in history), 2),
        "images_per_second": round(train_batches.num_images * len(history) / max(train_seconds, 1e-9), 1),
        "train_images": described["train_images"],
        "test_images": described["test_images"],
        "batch_size": batch_size,
        "params": table.total_params,
        "trainable_params": table.trainable_params,
        "macs": table.total_macs,
        "mixed_precision": mixed_precision,
        "jit_compile": jit_compile,
        "torch_fast_paths": bool(torch_fast_paths),
        "distilled_from": config["teacher"],
        "distribution": distribution_record,
        **provenance.provenance(),
    }
    folder.write_metrics(metrics)  # the run is finished from here on
    folder.remove_checkpoints()
    return RunResult(run_dir, config, metrics, history, student)
