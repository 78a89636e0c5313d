"""A run's identity as one value: :class:`RunConfig`, the settings :func:`~vt_edu.training.train` runs.

>>> from vt_edu.training import RunConfig, train
>>> config = RunConfig("vt_resnet18", recipe="fast", epochs=5, width=0.25)
>>> config.batch_size, config.task            # resolved: the recipe's batch, the model's task
(128, 'classification')
>>> result = train(config)                    # the same as train("vt_resnet18", recipe="fast", ...)

A :class:`RunConfig` is frozen and checks itself when it is made (a bad setting raises
:class:`TrainingError` before any data are loaded or files written), so a config that
exists is one that can run. :meth:`RunConfig.replace` makes a changed copy, checked again.
:meth:`RunConfig.to_json` gives the run folder's ``config.json`` (the record that decides
whether a folder resumes, see :mod:`vt_edu.training.run_folder`); what only the running
machine knows (the data's description, the backend, the distribution) is passed to it.

What a config holds is what identifies a run; what only affects how it runs (the data
arrays handed over, the run folder, verbosity, callbacks, worker threads) are arguments
of :func:`train`.

This module imports no Keras (the command line reads its fields before choosing a backend).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from vt_edu.names import DATASETS, SEGMENTATION_MODELS, TASKS, task_of
from vt_edu.training.errors import TrainingError
from vt_edu.training.recipes import Recipe, RecipeError, get_recipe
from vt_edu.training.scene_data import check_scene_options

__all__ = ["SCHEDULE_CLOCKS", "TIME_CLOCK_EPOCH_CAP", "RunConfig"]

SCHEDULE_CLOCKS = ("steps", "time")
# With schedule_clock="time", fit() may run this many times the planned epochs (a machine
# faster than planned goes on until the budget is spent).
TIME_CLOCK_EPOCH_CAP = 2


def positive_int(name, value, allow_none=False):
    """``value`` as an int; a :class:`TrainingError` naming ``name`` unless it is a positive integer."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise TrainingError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _read_only(mapping):
    return None if mapping is None else MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class RunConfig:
    """The settings of one training run, resolved and checked.

    Fields left ``None`` take defaults when the config is made: ``epochs`` and
    ``batch_size`` the recipe's, ``task`` the model's (:func:`vt_edu.names.task_of`),
    ``scenes`` :data:`~vt_edu.training.scene_data.SCENE_DEFAULTS` (segmentation).
    ``mixed_precision`` and ``jit_compile`` stay ``None`` ("this machine's default")
    until :meth:`on_this_machine` resolves them.

    Args:
        model: a :func:`vt_edu.models.create_model` name (``cnn``, ``resnet18``,
            ``vt_resnet18``, ``vit``; ``fpn``, ``vt_fpn`` for segmentation).
        dataset: ``cifar10`` or ``cifar100`` (read with :func:`vt_edu.data.load_cifar`).
            For segmentation, the data set whose images are pasted into scenes. With
            ``given_data``, only a label for the arrays handed to :func:`train`.
        recipe: a recipe name of :data:`vt_edu.training.RECIPES` or a :class:`Recipe`
            (held as a :class:`Recipe`).
        epochs: epochs to train (default: the recipe's).
        batch_size: default the recipe's; learning rates scale with it.
        seed: seeds weights, data order, augmentation and dropout; the same seed on
            the same machine and backend gives the same run.
        width: the model's width multiplier.
        model_options: further :func:`create_model` options (e.g. ``num_tokens``), as
            given (read-only); :attr:`options` adds the recipe's regularisers and ``width``.
        max_train_images, max_test_images: class-balanced subsets for quick runs
            (classification only; segmentation sets ``scenes["num_train"]``/``["num_test"]``).
        task: ``"classification"`` or ``"segmentation"``; default the model's; a task the
            model does not learn is refused. Segmentation trains on per-pixel masks with the
            per-pixel loss, reports pixel accuracy and mean IoU, and keeps the epoch of the
            best test mean IoU; RandAugment recipes and distillation are refused.
        scenes: segmentation only: settings of :func:`vt_edu.data.scenes.load_scenes`
            (``num_train``, ``num_test``, ``canvas_size``, ``max_objects``,
            ``min_object_size``, ``max_object_size``, and ``seed``, the scenes' own seed);
            missing ones take the defaults. With ``given_data``, the settings given only
            label the scenes (and are checked against them; ``None`` when none are given).
        teacher: a ``.keras`` path or ``keras.Model`` to distil from (the recipe's
            ``distillation_alpha`` and ``distillation_temperature``).
        mixed_precision: ``mixed_float16`` compute; default on with a GPU.
        jit_compile: XLA compilation; default ``True`` with a GPU; on a CPU ``"auto"``
            with JAX and ``False`` otherwise (TensorFlow's XLA is slower on CPU).
        time_budget_minutes: stop training before a batch that would end past this
            much training time (the started epoch is then validated and counted).
        schedule_clock: what moves the learning-rate schedule. ``"steps"`` (default):
            optimizer steps, over ``epochs`` epochs; the same seed repeats a run.
            ``"time"`` (needs ``time_budget_minutes``): training time, the budget standing
            for ``epochs`` epochs of the schedule, so a cosine ends when the budget does
            however fast the machine is; training goes on until the budget is spent, for
            at most ``TIME_CLOCK_EPOCH_CAP * epochs`` epochs. The rates then depend on the
            machine's speed, so such runs do not repeat exactly.
        torch_fast_paths: train with :mod:`vt_edu.torch_fast_paths` (PyTorch backend only;
            the same arithmetic as Keras' own code up to float rounding).
        distribution: ``None`` (one device) or ``"data-parallel"``: Keras' ``DataParallel``
            over all local devices (JAX only; see :mod:`vt_edu.training.distribution`);
            ``batch_size`` is the global batch.
        given_data: the caller hands :func:`train` the data (``data=...``) instead of
            the run loading ``dataset``; :func:`train` sets it from its ``data`` argument.

    Raises:
        TrainingError: a setting that cannot run (unknown model, recipe, data set, task,
            scene setting or model option; a count that is not a positive integer; a
            time clock without a budget; ...), with the message the CLI prints.
    """

    model: str
    dataset: str = "cifar10"
    recipe: Recipe | str = "seed"
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    width: float | None = None
    model_options: Mapping[str, Any] | None = None
    max_train_images: int | None = None
    max_test_images: int | None = None
    task: str | None = None
    scenes: Mapping[str, int] | None = None
    teacher: Any = None
    mixed_precision: bool | None = None
    jit_compile: Any = None
    time_budget_minutes: float | None = None
    schedule_clock: str = "steps"
    torch_fast_paths: bool = False
    distribution: str | None = None
    given_data: bool = False

    def __post_init__(self):
        def resolve(name, value):
            object.__setattr__(self, name, value)

        try:
            resolve("recipe", get_recipe(self.recipe))
        except RecipeError as error:
            raise TrainingError(str(error)) from None
        if not self.given_data and self.dataset not in DATASETS:
            raise TrainingError(f"unknown dataset {self.dataset!r}; choose one of: {', '.join(DATASETS)}.")
        resolve("dataset", str(self.dataset))  # with given data, a label for the arrays
        resolve("epochs", positive_int("epochs", self.recipe.epochs if self.epochs is None else self.epochs))
        resolve("batch_size",
                positive_int("batch_size", self.recipe.batch_size if self.batch_size is None else self.batch_size))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise TrainingError(f"seed must be a non-negative integer, got {self.seed!r}.")
        resolve("seed", int(self.seed))
        resolve("max_train_images", positive_int("max_train_images", self.max_train_images, allow_none=True))
        resolve("max_test_images", positive_int("max_test_images", self.max_test_images, allow_none=True))
        budget = self.time_budget_minutes
        if budget is not None and not (budget > 0):
            raise TrainingError(f"time budget must be > 0 minutes, got {budget!r}.")
        if self.schedule_clock not in SCHEDULE_CLOCKS:
            raise TrainingError(
                f"unknown schedule clock {self.schedule_clock!r}; choose one of: {', '.join(SCHEDULE_CLOCKS)}."
            )
        if self.schedule_clock == "time" and budget is None:
            raise TrainingError("schedule_clock='time' needs a time budget (time_budget_minutes / --minutes).")
        resolve("model_options", _read_only(self.model_options or {}))
        self._check_options()
        self._resolve_task(resolve)

    # -------------------------------------------------------------------- checks
    def _check_options(self):
        from vt_edu.models.registry import ModelConfigError, check_options

        options = self.options
        # A width of inf passes "> 0" but builds no model: refuse it here, before any file is written.
        value = options.get("width")
        if isinstance(value, (float, np.floating)) and not math.isfinite(value):
            raise TrainingError(f"model {self.model!r}: width={value!r} is invalid; expected a finite number > 0.")
        try:
            check_options(self.model, options)
        except ModelConfigError as error:
            raise TrainingError(str(error)) from None

    def _resolve_task(self, resolve):
        """The task (default the model's) and its scene settings (``None`` for classification)."""
        task = task_of(self.model) if self.task is None else self.task
        if task not in TASKS:
            raise TrainingError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}.")
        if task != task_of(self.model):
            raise TrainingError(
                f"model {self.model!r} learns {task_of(self.model)}, not {task}; "
                f"the segmentation models are: {', '.join(SEGMENTATION_MODELS)}."
            )
        resolve("task", task)
        if task == "classification":
            if self.scenes is not None:
                raise TrainingError("scene settings (scenes, --train-scenes, ...) apply to segmentation runs only.")
            return
        for name, flag, key in (("max_train_images", "--train-scenes", "num_train"),
                                ("max_test_images", "--test-scenes", "num_test")):
            if getattr(self, name) is not None:
                raise TrainingError(
                    f"{name} applies to classification; a segmentation run sets its number of scenes with "
                    f"scenes={{'{key}': N}} ({flag} N)."
                )
        from vt_edu.training.pipeline import SCENE_AUGMENTATIONS

        recipe = self.recipe
        if recipe.augment not in SCENE_AUGMENTATIONS:
            raise TrainingError(
                f"recipe {recipe.name!r} augments with {recipe.augment}, whose translations and cutouts would not "
                f"move the masks; segmentation takes augment {' or '.join(map(repr, SCENE_AUGMENTATIONS))} "
                f"(e.g. get_recipe({recipe.name!r}, augment='crop_flip'))."
            )
        if self.teacher is not None:
            raise TrainingError("distillation (teacher, --teacher) is implemented for classification only.")
        scenes = dict(self.scenes) if isinstance(self.scenes, Mapping) else self.scenes
        resolve("scenes", _read_only(check_scene_options(scenes, loading=not self.given_data)))
        if not self.given_data:
            self._check_canvas(self.scenes["canvas_size"])

    def _check_canvas(self, canvas_size: int):
        """Refuse a canvas the model's strides cannot divide now, before any scene is composed
        (the model itself would refuse it only after the data are loaded)."""
        from vt_edu.models.fpn import check_input_size
        from vt_edu.models.registry import model_options as defaults_of

        defaults = defaults_of(self.model)
        if "stem" not in defaults:
            return
        try:
            check_input_size((canvas_size, canvas_size), self.options.get("stem", defaults["stem"]), self.model)
        except ValueError as error:
            raise TrainingError(f"{error} (scene setting canvas_size, --canvas-size)") from None

    # ------------------------------------------------------------------ derived
    @property
    def options(self) -> dict:
        """The model's options: the recipe's regularisers where the model has them, then
        ``width``, then ``model_options`` (which win)."""
        from vt_edu.models.registry import ModelConfigError, model_options as defaults_of

        try:
            supported = defaults_of(self.model)
        except ModelConfigError as error:
            raise TrainingError(str(error)) from None
        options = {}
        if self.recipe.dropout is not None and "dropout" in supported:
            options["dropout"] = self.recipe.dropout
        if self.recipe.stochastic_depth is not None and "stochastic_depth" in supported:
            options["stochastic_depth"] = self.recipe.stochastic_depth
        if self.width is not None:
            options["width"] = self.width
        options.update(self.model_options)
        return options

    @property
    def segmentation(self) -> bool:
        return self.task == "segmentation"

    @property
    def learning_rate(self) -> float:
        """The recipe's base learning rate at this batch size."""
        return self.recipe.scaled_learning_rate(self.batch_size)

    @property
    def last_epoch(self) -> int:
        """The most epochs ``fit`` may run: ``epochs``, or with the time clock ``TIME_CLOCK_EPOCH_CAP`` times it."""
        return self.epochs if self.schedule_clock == "steps" else TIME_CLOCK_EPOCH_CAP * self.epochs

    @property
    def teacher_name(self) -> str | None:
        """How ``config.json`` names the teacher: its path, or a model's name."""
        if self.teacher is None:
            return None
        return self.teacher.name if _is_keras_model(self.teacher) else str(self.teacher)

    # ------------------------------------------------------------------- copies
    def replace(self, **changes) -> "RunConfig":
        """A copy with ``changes``, checked again. Fields not changed keep their resolved
        values (pass ``None`` to resolve one again, e.g. ``task=None`` with another model)."""
        return dataclasses.replace(self, **changes)

    def on_this_machine(self) -> "RunConfig":
        """This config with ``mixed_precision`` and ``jit_compile`` resolved for this machine
        (mixed precision and XLA with a GPU; see :func:`~vt_edu.training.optimizers.default_jit_compile`)."""
        from vt_edu.config import gpu_available
        from vt_edu.training.optimizers import default_jit_compile

        gpu = gpu_available()
        mixed = gpu if self.mixed_precision is None else bool(self.mixed_precision)
        jit = default_jit_compile(gpu) if self.jit_compile is None else self.jit_compile
        return self.replace(mixed_precision=mixed, jit_compile=jit)

    # ---------------------------------------------------------------- config.json
    def to_json(self, data_description: dict, backend: str, distribution_record: dict | None = None) -> dict:
        """The run folder's ``config.json``: these settings (resolved :meth:`on_this_machine`
        first), the description of the data the run trained on, the Keras backend and the
        distribution it ran in (:func:`~vt_edu.training.distribution.describe_distribution`).

        Keys that later versions added are written only when they differ from what their
        absence meant (``task``/``scenes`` for segmentation, a ``schedule_clock`` other than
        steps, ``torch_fast_paths`` on, a distribution), so older run folders still resume.
        """
        import json

        config = {
            "model": self.model,
            "model_options": self.options,
            "dataset": self.dataset,
            "data": data_description,
            "recipe": self.recipe.to_dict(),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "max_train_images": self.max_train_images,
            "max_test_images": self.max_test_images,
            "teacher": self.teacher_name,
            "time_budget_minutes": self.time_budget_minutes,
            "mixed_precision": self.mixed_precision,
            "jit_compile": self.jit_compile,
            "backend": backend,
        }
        if self.segmentation:
            config["task"] = self.task
            config["scenes"] = None if self.scenes is None else dict(self.scenes)
        if self.schedule_clock != "steps":
            config["schedule_clock"] = self.schedule_clock
        if self.torch_fast_paths:
            config["torch_fast_paths"] = True
        if distribution_record is not None:
            config["distribution"] = distribution_record
        return json.loads(json.dumps(config))  # normalise tuples etc. for comparison with a file's


def _is_keras_model(value) -> bool:
    import sys

    keras = sys.modules.get("keras")  # a keras.Model exists only once Keras is loaded
    return keras is not None and isinstance(value, keras.Model)
