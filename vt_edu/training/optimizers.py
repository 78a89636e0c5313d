"""A recipe's learning-rate schedule and optimizer, built in one place for ``train()``, the
speed probe and the schedule panel, so that what a panel plots is what a run uses."""

from __future__ import annotations

from vt_edu.training.errors import TrainingError
from vt_edu.training.recipes import Recipe

__all__ = ["make_optimizer", "make_schedule"]


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
        return keras.optimizers.Adam(rate, weight_decay=recipe.keras_weight_decay(), **extra), schedule
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(
            rate, momentum=recipe.momentum, nesterov=recipe.nesterov,
            weight_decay=recipe.keras_weight_decay(), **extra,
        ), schedule
    raise TrainingError(f"recipe {recipe.name!r}: unknown optimizer {recipe.optimizer!r}.")
