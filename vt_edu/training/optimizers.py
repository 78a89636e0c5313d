"""A recipe's learning-rate schedule and optimizer, and a model compiled with them, built in one
place for ``train()``, the speed probe and the schedule panel, so that what a panel plots is
what a run uses and what a probe times is the step a run takes."""

from __future__ import annotations

from vt_edu.training.errors import TrainingError
from vt_edu.training.recipes import Recipe

__all__ = ["compile_for_training", "default_jit_compile", "make_optimizer", "make_schedule"]


def make_schedule(recipe: Recipe, batch_size: int, steps_per_epoch: int, epochs: int):
    """The recipe's learning-rate schedule, its peak scaled to ``batch_size``.

    Args:
        recipe: the :class:`~vt_edu.training.Recipe`.
        batch_size: images per optimizer step (the linear scaling rule's batch).
        steps_per_epoch: optimizer steps per epoch (the schedules count epochs in steps).
        epochs: the run's epochs (a cosine ends at the last one).

    Returns:
        A :class:`~vt_edu.training.schedules.EpochSchedule`.

    Raises:
        TrainingError: the recipe names a schedule this function does not know.
    """
    from vt_edu.training import schedules

    lr = recipe.scaled_learning_rate(batch_size)
    opts = recipe.schedule_options
    if recipe.schedule == "constant":
        return schedules.ConstantSchedule(lr, steps_per_epoch)
    if recipe.schedule == "step":
        return schedules.StepSchedule(lr, steps_per_epoch, **opts)
    if recipe.schedule == "warmup_exponential":
        opts = dict(opts)
        # The warm-up never starts above its peak (small batches scale the peak down).
        opts["start_learning_rate"] = min(opts.get("start_learning_rate", 0.01), lr)
        return schedules.WarmupExponentialSchedule(lr, steps_per_epoch, **opts)
    if recipe.schedule == "warmup_cosine":
        return schedules.WarmupCosineSchedule(lr, steps_per_epoch, total_epochs=epochs, **opts)
    raise TrainingError(f"recipe {recipe.name!r}: unknown schedule {recipe.schedule!r}.")


#: Variables the recipes' weight decay leaves alone. A logit scale is stored as its
#: logarithm: decaying it would pull every cosine attention towards scale 1, a sharpness
#: nothing in the data asks for (Swin Transformer V2 does not decay it either).
NO_WEIGHT_DECAY = ("log_logit_scale",)


def make_optimizer(recipe: Recipe, batch_size: int, steps_per_epoch: int, epochs: int, schedule_clock="steps"):
    """The recipe's optimizer and its schedule.

    Args:
        recipe, batch_size, steps_per_epoch, epochs: as for :func:`make_schedule`.
        schedule_clock: ``"steps"``: the optimizer follows the schedule by its step count.
            ``"time"``: it gets a plain rate (a variable) that ``ClockSchedule`` sets from
            the schedule before each batch.

    Returns:
        ``(optimizer, schedule)``: a Keras optimizer with the recipe's weight decay,
        global-norm clipping and EMA, and the schedule of :func:`make_schedule`.

    Raises:
        TrainingError: the recipe names an optimizer or schedule that is not known.
    """
    import keras

    from vt_edu.training.schedules import sample_lr

    schedule = make_schedule(recipe, batch_size, steps_per_epoch, epochs)
    rate = schedule if schedule_clock == "steps" else float(sample_lr(schedule, [0.0])[1][0])
    extra = {"global_clipnorm": recipe.clip_norm}
    if recipe.ema_momentum:
        extra.update(use_ema=True, ema_momentum=recipe.ema_momentum)
    if recipe.optimizer == "adam":
        optimizer = keras.optimizers.Adam(rate, weight_decay=recipe.keras_weight_decay(), **extra)
    elif recipe.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(
            rate, momentum=recipe.momentum, nesterov=recipe.nesterov,
            weight_decay=recipe.keras_weight_decay(), **extra,
        )
    else:
        raise TrainingError(f"recipe {recipe.name!r}: unknown optimizer {recipe.optimizer!r}.")
    if recipe.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    return optimizer, schedule


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
    ``jit_compile`` is given; never for a model with a layer XLA cannot compile
    (``layer.supports_jit``). Speed probes use it too, so they time the step that training runs.

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
    if jit_compile and not all(layer.supports_jit for layer in model.layers):
        # Some Keras layers cannot be compiled with XLA (RandomRotation, in the tutorial ViT); Keras
        # would fall back with a warning; leaving it off here, train() records what compiled (jit_compile False).
        jit_compile = False
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
