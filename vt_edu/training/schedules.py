"""Learning-rate schedules defined per epoch, stepped per iteration.

Papers give schedules in epochs ("divide by 10 every 30 epochs", "5 warm-up
epochs"); Keras optimizers call a schedule with the iteration count. Every schedule
here is a ``keras.optimizers.schedules.LearningRateSchedule`` that converts the
iteration to a fractional epoch, ``epoch = step / steps_per_epoch``, and evaluates a
per-epoch formula with ``keras.ops`` (so it runs inside compiled train steps on
every backend). Continuous parts (linear warm-up, cosine) move every iteration;
stepped parts (the /10 steps, the x0.9875 decay) change at epoch boundaries, as in
the paper's recipes.

All schedules are registered for serialization (``get_config``/``from_config``), so
an optimizer that uses one saves and reloads with a ``.keras`` model.

:func:`sample_lr` evaluates any schedule at chosen epochs for plotting and testing.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

__all__ = [
    "ConstantSchedule",
    "EpochSchedule",
    "StepSchedule",
    "WarmupCosineSchedule",
    "WarmupExponentialSchedule",
    "sample_lr",
]


class EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Base class: ``__call__(step)`` evaluates :meth:`lr_at` at ``step / steps_per_epoch``.

    Subclasses implement ``lr_at(epoch)`` with ``keras.ops`` on a float32 scalar tensor
    and extend :meth:`get_config`.

    Args:
        steps_per_epoch: optimizer iterations per epoch (batches per epoch).
    """

    def __init__(self, steps_per_epoch: int):
        if int(steps_per_epoch) < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch!r}.")
        self.steps_per_epoch = int(steps_per_epoch)

    def __call__(self, step):
        epoch = ops.cast(step, "float32") / float(self.steps_per_epoch)
        return ops.cast(self.lr_at(epoch), "float32")

    def lr_at(self, epoch):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self):
        return {"steps_per_epoch": self.steps_per_epoch}


@keras.saving.register_keras_serializable(package="vt_edu")
class ConstantSchedule(EpochSchedule):
    """``lr(epoch) = learning_rate`` (the students' Adam 1e-3)."""

    def __init__(self, learning_rate: float, steps_per_epoch: int = 1):
        super().__init__(steps_per_epoch)
        self.learning_rate = float(learning_rate)

    def lr_at(self, epoch):
        return ops.zeros_like(epoch) + self.learning_rate

    def get_config(self):
        return {**super().get_config(), "learning_rate": self.learning_rate}


@keras.saving.register_keras_serializable(package="vt_edu")
class StepSchedule(EpochSchedule):
    """``lr(epoch) = initial * factor ** floor(epoch / step_epochs)`` (paper default:
    0.1, divided by 10 every 30 epochs)."""

    def __init__(self, initial_learning_rate: float, steps_per_epoch: int, step_epochs: int = 30, factor: float = 0.1):
        super().__init__(steps_per_epoch)
        self.initial_learning_rate = float(initial_learning_rate)
        self.step_epochs = int(step_epochs)
        self.factor = float(factor)

    def lr_at(self, epoch):
        drops = ops.floor(epoch / self.step_epochs)
        return self.initial_learning_rate * ops.power(self.factor, drops)

    def get_config(self):
        return {
            **super().get_config(),
            "initial_learning_rate": self.initial_learning_rate,
            "step_epochs": self.step_epochs,
            "factor": self.factor,
        }


def _linear_warmup(epoch, start, peak, warmup_epochs):
    """``start`` → ``peak`` linearly over ``warmup_epochs`` (``peak`` when there is no warm-up)."""
    if warmup_epochs <= 0:
        return ops.zeros_like(epoch) + peak
    return start + (peak - start) * ops.minimum(epoch / warmup_epochs, 1.0)


@keras.saving.register_keras_serializable(package="vt_edu")
class WarmupExponentialSchedule(EpochSchedule):
    """Linear warm-up, then an exponential decay applied once per epoch (paper's
    advanced recipe: 0.01 → 0.16 over 5 epochs at batch 2048, then x0.9875 per epoch).

    ::

        lr(e) = start + (peak - start) * e / warmup_epochs        for e < warmup_epochs
        lr(e) = peak * decay ** floor(e - warmup_epochs)           afterwards

    so ``lr(0) = start``, ``lr(warmup_epochs) = peak`` and
    ``lr(warmup_epochs + k) = peak * decay**k``.
    """

    def __init__(
        self,
        peak_learning_rate: float,
        steps_per_epoch: int,
        warmup_epochs: float = 5,
        start_learning_rate: float = 0.01,
        decay: float = 0.9875,
    ):
        super().__init__(steps_per_epoch)
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_epochs = float(warmup_epochs)
        self.start_learning_rate = float(start_learning_rate)
        self.decay = float(decay)

    def lr_at(self, epoch):
        warm = _linear_warmup(epoch, self.start_learning_rate, self.peak_learning_rate, self.warmup_epochs)
        decayed = self.peak_learning_rate * ops.power(
            self.decay, ops.floor(ops.maximum(epoch - self.warmup_epochs, 0.0))
        )
        return ops.where(epoch < self.warmup_epochs, warm, decayed)

    def get_config(self):
        return {
            **super().get_config(),
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_epochs": self.warmup_epochs,
            "start_learning_rate": self.start_learning_rate,
            "decay": self.decay,
        }


@keras.saving.register_keras_serializable(package="vt_edu")
class WarmupCosineSchedule(EpochSchedule):
    """Linear warm-up from ``start`` to ``peak``, then half a cosine down to ``final``
    at ``total_epochs`` (the ``fast`` recipe).

    ::

        lr(e) = start + (peak - start) * e / warmup_epochs                 e < warmup
        lr(e) = final + (peak - final) * (1 + cos(pi * p)) / 2,  p = (e - warmup) / (total - warmup)
    """

    def __init__(
        self,
        peak_learning_rate: float,
        steps_per_epoch: int,
        total_epochs: float,
        warmup_epochs: float = 1,
        start_learning_rate: float = 0.0,
        final_learning_rate: float = 0.0,
    ):
        super().__init__(steps_per_epoch)
        if total_epochs <= 0:
            raise ValueError(f"total_epochs must be > 0, got {total_epochs!r}.")
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_epochs = float(total_epochs)
        self.warmup_epochs = float(min(warmup_epochs, total_epochs))
        self.start_learning_rate = float(start_learning_rate)
        self.final_learning_rate = float(final_learning_rate)

    def lr_at(self, epoch):
        peak, final = self.peak_learning_rate, self.final_learning_rate
        warm = _linear_warmup(epoch, self.start_learning_rate, peak, self.warmup_epochs)
        span = max(self.total_epochs - self.warmup_epochs, 1e-9)
        progress = ops.clip((epoch - self.warmup_epochs) / span, 0.0, 1.0)
        cosine = final + (peak - final) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(epoch < self.warmup_epochs, warm, cosine)

    def get_config(self):
        return {
            **super().get_config(),
            "peak_learning_rate": self.peak_learning_rate,
            "total_epochs": self.total_epochs,
            "warmup_epochs": self.warmup_epochs,
            "start_learning_rate": self.start_learning_rate,
            "final_learning_rate": self.final_learning_rate,
        }


def sample_lr(schedule, epochs, points_per_epoch: int = 1):
    """Evaluate a schedule at epochs, for plots and tests.

    Args:
        schedule: an :class:`EpochSchedule` (or a float for a constant rate).
        epochs: an int ``n`` (samples epochs ``0 .. n``) or a sequence of
            (fractional) epochs.
        points_per_epoch: with an int ``epochs``, samples per epoch (e.g. 10 to see
            the warm-up ramp inside an epoch).

    Returns:
        ``(epochs, learning_rates)``: two float NumPy arrays.
    """
    if isinstance(epochs, (int, np.integer)):
        grid = np.arange(int(epochs) * points_per_epoch + 1) / points_per_epoch
    else:
        grid = np.asarray(epochs, dtype=float)
    if not isinstance(schedule, EpochSchedule):
        return grid, np.full(grid.shape, float(schedule))
    rates = ops.convert_to_numpy(schedule.lr_at(ops.convert_to_tensor(grid.astype("float32"))))
    return grid, np.asarray(rates, dtype=float)
