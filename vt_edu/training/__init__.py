"""Training: recipes, schedules, a NumPy input pipeline, distillation and ``train()``.

>>> from vt_edu.training import train
>>> result = train("vt_resnet18", "cifar10", recipe="fast", epochs=5, width=0.25)
>>> result.metrics["top1"], result.run_dir

* :mod:`~vt_edu.training.recipes`: ``seed``, ``paper-default``, ``paper-advanced``, ``fast``.
* :mod:`~vt_edu.training.schedules`: per-epoch learning-rate schedules (Keras schedules).
* :mod:`~vt_edu.training.optimizers`: a recipe's schedule and optimizer, and a model compiled with them.
* :mod:`~vt_edu.training.pipeline`: :class:`ImageBatches`, a ``keras.utils.PyDataset``
  (and :class:`SceneBatches`: scenes with their masks, for segmentation).
* :mod:`~vt_edu.training.scene_data`: a segmentation run's scene settings and scenes.
* :mod:`~vt_edu.training.augment`: RandAugment-lite in NumPy.
* :mod:`~vt_edu.training.distillation`: the 0.8·KD + 0.2·CE loss and :class:`Distiller`.
* :mod:`~vt_edu.training.run_config`: :class:`RunConfig`, a run's settings as one checked value.
* :mod:`~vt_edu.training.loop`: :func:`train`.
* :mod:`~vt_edu.training.image_data`: a classification run's arrays, subsets and their description.
* :mod:`~vt_edu.training.run_folder`: run folders, atomic writes and one-unit checkpoints.
* :mod:`~vt_edu.training.callbacks`: the callbacks ``train()`` runs (budget, checkpoints, divergence).
* :mod:`~vt_edu.training.compare`: :func:`compare`, several models on the same data.
* :mod:`~vt_edu.training.evaluation`: top-1 with horizontal-flip test-time augmentation.
* :mod:`~vt_edu.training.speed`: training speed of several models as ratios, timed in alternation.

Names are imported lazily (PEP 562), so ``import vt_edu.training.recipes`` does not
load Keras: the command line picks the Keras backend after reading its options.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "compare": "compare",
    "write_report": "compare",
    "Distiller": "distillation",
    "SparseSmoothedCrossEntropy": "distillation",
    "distillation_loss": "distillation",
    "smoothed_cross_entropy": "distillation",
    "RunResult": "loop",
    "TrainingError": "loop",
    "compile_for_training": "optimizers",
    "default_run_dir": "loop",
    "prepare_data": "image_data",
    "RunConfig": "run_config",
    "train": "loop",
    "flip_tta_accuracy": "evaluation",
    "predict_probabilities": "evaluation",
    "ImageBatches": "pipeline",
    "SceneBatches": "pipeline",
    "make_optimizer": "optimizers",
    "make_schedule": "optimizers",
    "RECIPES": "recipes",
    "Recipe": "recipes",
    "RecipeError": "recipes",
    "get_recipe": "recipes",
    "list_recipes": "recipes",
    "ConstantSchedule": "schedules",
    "EpochSchedule": "schedules",
    "StepSchedule": "schedules",
    "WarmupCosineSchedule": "schedules",
    "WarmupExponentialSchedule": "schedules",
    "sample_lr": "schedules",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"vt_edu.training.{_EXPORTS[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vt_edu.training' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
