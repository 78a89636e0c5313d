"""``train()``: one training run of a :class:`RunConfig`, in a resumable run folder.

A run folder (:mod:`vt_edu.training.run_folder`) holds ``config.json`` (the run's settings,
:meth:`RunConfig.to_json`), ``history.csv`` (one row per completed epoch), ``metrics.json``
(final test scores, time, images/s, params, MACs, provenance), ``best.weights.h5`` (the epoch
of the best test top-1, or mean IoU; EMA weights with EMA), ``model.keras`` (the final model)
and, while the run is unfinished, its newest checkpoint ``backup/epoch-K/``.

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
the budget (it predicts that batch's time as ``BUDGET_SAFETY`` (1.5) times the slowest of
the last ``BUDGET_LOOKBACK`` batches, leaving out a session's first batch, which also traces
the graph), so its training time stays inside the budget; the epoch
in progress is then validated and counted. With ``schedule_clock="time"`` the
learning-rate schedule also runs on the training clock instead of the step count (see
:class:`RunConfig`), so a cosine reaches its end exactly when the budget does, however fast
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

from dataclasses import dataclass, field
from pathlib import Path

from vt_edu.training.distribution import check_batch_split, describe_distribution, distribution_scope
from vt_edu.training.errors import TrainingError
from vt_edu.training.image_data import prepare_data
from vt_edu.training.optimizers import compile_for_training, default_jit_compile
from vt_edu.training.run_config import SCHEDULE_CLOCKS, TIME_CLOCK_EPOCH_CAP, RunConfig, positive_int
from vt_edu.training.run_folder import DIFFERENT, FINISHED, RunFolder, read_history
from vt_edu.training.scene_data import prepare_scenes

__all__ = [
    "SCHEDULE_CLOCKS", "TIME_CLOCK_EPOCH_CAP", "RunConfig", "RunResult", "TrainingError", "compile_for_training",
    "default_jit_compile", "default_run_dir", "prepare_data", "read_history", "train",
]


@dataclass
class RunResult:
    """What :func:`train` returns."""

    run_dir: Path
    config: dict
    metrics: dict
    history: list = field(default_factory=list)
    model: object = None  # the trained keras.Model (None when an earlier finished run was returned)


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
def train(config: RunConfig | str | None = None, dataset: str | None = None, *, data=None, source=None, run_dir=None,
          overwrite: bool = False, verbose="auto", callbacks=(), workers: int = 1, **settings) -> RunResult:
    """Train a registry model with a recipe and write a run folder (see the module doc).

    Two ways to call it, the same run::

        train(RunConfig("vt_resnet18", recipe="fast", epochs=5, width=0.25), run_dir="runs/a")
        train("vt_resnet18", recipe="fast", epochs=5, width=0.25, run_dir="runs/a")

    The second builds the :class:`RunConfig` from the model name (``model_name=`` works
    too), ``dataset`` and the ``settings`` keywords (any :class:`RunConfig` field).

    Args:
        config: the run's settings (:class:`RunConfig`), or a model name.
        dataset: with a model name, :attr:`RunConfig.dataset` (default ``cifar10``).
        data: arrays ``((x_train, y_train), (x_test, y_test), class_names)`` to use
            instead of loading the data set (which then only labels the run); for
            segmentation a :class:`vt_edu.data.scenes.SceneData` (its masks are the targets).
        source: a data source path for :func:`vt_edu.data.load_cifar`.
        run_dir: the run folder (default :func:`default_run_dir`).
        overwrite: replace a run of a different configuration in ``run_dir`` instead of
            refusing; only the files a run writes are deleted (a folder holding other
            files but no run is refused even so).
        verbose: Keras' ``fit`` verbosity (``"auto"``, 0, 1, 2).
        callbacks: extra Keras callbacks (run after the epoch's checkpoint is committed,
            so an exception raised by one leaves a resumable run).
        workers: threads preparing batches (``PyDataset`` workers).
        **settings: with a model name, the other :class:`RunConfig` fields.

    Returns:
        :class:`RunResult` with ``config`` (what ``config.json`` holds), ``metrics`` (what
        ``metrics.json`` holds), ``history`` (the rows of ``history.csv``) and the trained ``model``.

    Raises:
        TrainingError: bad settings (before any data are loaded or files written), a
            batch larger than the training set, a batch that does not split over the
            devices (before training), a run folder with a different configuration or
            not a run's, a NaN or diverging loss.
        vt_edu.data.DataError: the data cannot be loaded.
    """
    config = _run_config(config, dataset, settings, given_data=data is not None)
    workers = positive_int("workers", workers)
    # The run happens in its distribution (checked first); the previous one is restored afterwards.
    with distribution_scope(config.distribution):
        return _Run(config, workers, verbose).run(data, source, run_dir, overwrite, callbacks)


def _run_config(config, dataset, settings, given_data) -> RunConfig:
    """The :class:`RunConfig` of a :func:`train` call, from a config or from a model name and settings."""
    if isinstance(config, RunConfig):
        if dataset is not None or settings:
            given = ", ".join(["dataset"] * (dataset is not None) + sorted(settings))
            raise TrainingError(f"train() takes a RunConfig or settings, not both (got {given}); "
                                "use config.replace(...) to change a RunConfig.")
        return config if config.given_data == given_data else config.replace(given_data=given_data)
    model = settings.pop("model_name", None) if config is None else config
    if model is None:
        raise TrainingError("train() needs a RunConfig or a model name.")
    return RunConfig(model, **({} if dataset is None else {"dataset": dataset}), given_data=given_data, **settings)


class _Run:
    """The steps of one :func:`train` call, in order: check the machine, prepare the data,
    open the run folder, prepare the model, fit, write the results."""

    def __init__(self, config: RunConfig, workers: int, verbose):
        import keras

        from vt_edu.training.distillation import load_teacher

        backend = keras.backend.backend()
        if config.torch_fast_paths and backend != "torch":
            raise TrainingError(
                f"torch_fast_paths (--torch-fast-paths) needs the PyTorch backend; this is {backend!r}."
            )
        self.teacher = load_teacher(config.teacher)
        self.config = config.on_this_machine()
        self.backend, self.workers, self.verbose = backend, workers, verbose
        self.monitor = "val_mean_iou" if config.segmentation else "val_accuracy"  # what "best" means

    def run(self, data, source, run_dir, overwrite, callbacks) -> RunResult:
        config = self.config
        self.prepare_data(data, source)
        self.record = config.to_json(self.described, self.backend, describe_distribution())
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(
            config.model, config.dataset, config.recipe.name, config.epochs, config.seed, config.width
        )
        finished = self.open_folder(overwrite)
        if finished is not None:
            return finished
        self.prepare_model()
        history, final = self.fit(callbacks)
        return self.finish(history, final)

    # ---------------------------------------------------------------------- steps
    def prepare_data(self, data, source):
        """The arrays (loaded, or given), their description, and the batch checks."""
        config, progress = self.config, self.verbose != 0
        if config.segmentation:
            train_set, test_set, self.class_names, self.described = prepare_scenes(
                config.dataset, data, None if config.scenes is None else dict(config.scenes), source, progress
            )
        else:
            train_set, test_set, self.class_names, self.described = prepare_data(
                config.dataset, data, source, config.max_train_images, config.max_test_images, config.seed, progress
            )
        (self.x_train, self.y_train), (self.x_test, self.y_test) = train_set, test_set
        if config.batch_size > len(self.x_train):
            what = "scenes" if config.segmentation else "images"
            raise TrainingError(
                f"batch_size={config.batch_size} is larger than the {len(self.x_train)} training {what}; "
                f"lower --batch-size or use more {what}."
            )
        self.test_batch_size = min(max(config.batch_size, 256), len(self.x_test))
        # With a distribution, every batch must split evenly over the devices.
        check_batch_split(config.batch_size, self.test_batch_size, len(self.x_test))

    def open_folder(self, overwrite) -> RunResult | None:
        """The run folder: new, resumable, finished (its results are returned), of other
        settings (refused, or cleared with ``overwrite``), or not a run's (refused)."""
        folder = self.folder = RunFolder(self.run_dir)
        status = folder.status(self.record)
        if status == FINISHED:
            folder.remove_checkpoints()  # left if a kill came between metrics.json and their removal
            return RunResult(self.run_dir, self.record, folder.read_metrics(), folder.history())
        if status == DIFFERENT:
            if not overwrite:
                differences = RunFolder.differences(folder.read_config(), self.record)
                raise TrainingError(
                    f"run folder {str(self.run_dir)!r} holds a run with different settings "
                    f"({', '.join(differences)}); use another run folder or overwrite=True (--overwrite)."
                )
            folder.clear()
        if folder.path.exists():
            folder.remove_temporary_files()
        self.checkpoint = folder.latest_checkpoint()
        return None

    def prepare_model(self):
        """The model (a :class:`Distiller` around it with a teacher), its batches, compiled,
        restored from the newest checkpoint; then ``config.json`` is written."""
        import keras

        from vt_edu.data import channel_stats
        from vt_edu.flops import count_macs
        from vt_edu.models import create_model
        from vt_edu.training.distillation import Distiller
        from vt_edu.training.pipeline import ImageBatches, SceneBatches

        config, workers = self.config, self.workers
        keras.utils.set_random_seed(config.seed)
        previous_policy = keras.config.dtype_policy()
        try:
            if config.mixed_precision:
                keras.config.set_dtype_policy("mixed_float16")
            self.student = create_model(config.model, num_classes=len(self.class_names),
                                        input_shape=tuple(self.x_train.shape[1:]), **config.options)
        finally:
            keras.config.set_dtype_policy(previous_policy)
        self.table = count_macs(self.student)
        mean, std = channel_stats(self.x_train)
        recipe, batches = config.recipe, SceneBatches if config.segmentation else ImageBatches
        extra = {} if config.segmentation else dict(randaugment_ops=recipe.randaugment_ops,
                                                    randaugment_magnitude=recipe.randaugment_magnitude)
        self.train_batches = batches(
            self.x_train, self.y_train, config.batch_size, mean, std, augment=recipe.augment, shuffle=True,
            seed=config.seed, drop_remainder=True, workers=workers, **extra,
        )
        self.test_batches = batches(self.x_test, self.y_test, self.test_batch_size, mean, std, workers=workers)
        self.model = self.student
        if self.teacher is not None:
            self.model = Distiller(self.student, self.teacher, recipe.distillation_alpha,
                                   recipe.distillation_temperature, recipe.label_smoothing)
            self.model(self.train_batches[0][0][:1])  # build
        self.schedule = compile_for_training(
            self.model, recipe, config.batch_size, len(self.train_batches), config.epochs, len(self.class_names),
            config.schedule_clock, config.jit_compile, config.task,
        )
        if self.checkpoint is not None:
            self.model.optimizer.build(self.model.trainable_variables)  # as fit() would, so that its variables exist
            self.checkpoint.restore(self.model)
        self.folder.write_config(self.record)

    def fit(self, extra_callbacks):
        """Train the epochs the checkpoint has not done (none when it says training is done:
        a kill came before the last files), then evaluate the final model.

        Returns:
            The history rows and the final test scores.
        """
        import keras

        from vt_edu.torch_fast_paths import enabled as fast_paths_enabled
        from vt_edu.training.callbacks import (
            ClockSchedule, CommitCheckpoint, DivergenceGuard, EpochSetter, RunLogger, StageCheckpoint,
            UnshareEMAWeights,
        )
        from vt_edu.training.run_folder import PUBLISHED_WEIGHTS

        config, checkpoint, folder = self.config, self.checkpoint, self.folder
        logger = RunLogger(
            self.train_batches.num_images,
            None if config.time_budget_minutes is None else 60.0 * config.time_budget_minutes,
            history=[] if checkpoint is None else checkpoint.history,
        )
        if checkpoint is not None:
            folder.publish(checkpoint)  # history.csv and best.weights.h5 as committed with these weights
        with fast_paths_enabled(config.torch_fast_paths):
            if checkpoint is None or not checkpoint.state["training_done"]:
                stage = StageCheckpoint(folder)
                callbacks = [EpochSetter(self.train_batches),
                             DivergenceGuard(len(self.class_names), config.learning_rate), logger, stage]
                if config.recipe.ema_momentum:
                    # Validate and publish the EMA weights; the checkpoint's variables are the raw ones.
                    callbacks += [keras.callbacks.SwapEMAWeights(swap_on_epoch=True), UnshareEMAWeights()]
                callbacks.append(CommitCheckpoint(stage, self.student, logger, config.last_epoch,
                                                  previous=checkpoint, monitor=self.monitor))
                if config.schedule_clock == "time":
                    callbacks.append(ClockSchedule(self.schedule, config.epochs, logger))
                callbacks.extend(extra_callbacks)  # after the commit: an exception in one leaves a resumable run
                self.model.fit(
                    self.train_batches,
                    epochs=config.last_epoch,
                    initial_epoch=0 if checkpoint is None else checkpoint.epoch,
                    # ImageBatches orders each epoch from (seed, epoch); Keras' own shuffling
                    # of the batches would draw from the process's RNG, which a resumed run
                    # does not share with the uninterrupted one.
                    shuffle=False,
                    validation_data=self.test_batches,
                    callbacks=callbacks,
                    verbose=self.verbose,
                )
                checkpoint = self.checkpoint = folder.latest_checkpoint()
            else:
                self.student.load_weights(checkpoint.path / PUBLISHED_WEIGHTS)
            final = self.model.evaluate(self.test_batches, verbose=0, return_dict=True)
        history = [] if checkpoint is None else checkpoint.history
        if not history:
            raise TrainingError("no epoch was completed.")
        return history, final

    def finish(self, history, final) -> RunResult:
        """Write ``model.keras`` and ``metrics.json`` (the run is finished from then on)."""
        from vt_edu.training import provenance

        config, table = self.config, self.table
        best = max(history, key=lambda r: r.get(self.monitor, -1))
        train_seconds = sum(r["train_seconds"] for r in history)
        self.folder.save_model(self.student)
        metrics = {
            "model": config.model,
            "dataset": config.dataset,
            "recipe": config.recipe.name,
            "epochs_requested": config.epochs,
            "epochs_completed": history[-1]["epoch"],
            "stopped_early": "time budget" if self.checkpoint.state["stopped_by_budget"] else None,
            "schedule_clock": config.schedule_clock,
            **_scores(config.task, final, best),
            "best_epoch": int(best["epoch"]),
            "train_seconds": round(train_seconds, 2),
            "wall_seconds": round(sum(r["epoch_seconds"] for r in history), 2),
            "images_per_second": round(self.train_batches.num_images * len(history) / max(train_seconds, 1e-9), 1),
            "train_images": self.described["train_images"],
            "test_images": self.described["test_images"],
            "batch_size": config.batch_size,
            "params": table.total_params,
            "trainable_params": table.trainable_params,
            "macs": table.total_macs,
            "mixed_precision": config.mixed_precision,
            # What compiled: compile_for_training turns XLA off for a model with a layer it cannot compile.
            "jit_compile": config.jit_compile if self.model.jit_compile else False,
            "torch_fast_paths": bool(config.torch_fast_paths),
            "distilled_from": self.record["teacher"],
            "distribution": self.record.get("distribution"),
            **provenance.provenance(),
        }
        self.folder.write_metrics(metrics)  # the run is finished from here on
        self.folder.remove_checkpoints()
        return RunResult(self.run_dir, self.record, metrics, history, self.student)
