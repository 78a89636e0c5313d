"""The Keras callbacks :func:`~vt_edu.training.train` runs with.

In the order ``train()`` lists them (Keras calls them in list order):

* :class:`EpochSetter`: tells the training batches the epoch (data order and augmentation).
* :class:`DivergenceGuard`: stops a run whose loss is NaN or has diverged, with a clear error.
* :class:`RunLogger`: times epochs, makes the history rows, stops on the time budget.
* :class:`StageCheckpoint`: writes the raw training state of a completed epoch (before
  ``SwapEMAWeights`` puts the EMA weights into the model).
* ``keras.callbacks.SwapEMAWeights`` and :class:`UnshareEMAWeights` (with EMA only).
* :class:`CommitCheckpoint`: adds the published (EMA) and best weights and commits the
  checkpoint as one unit (see :mod:`vt_edu.training.run_folder`).
* :class:`ClockSchedule` (``schedule_clock="time"`` only): the learning rate from the clock.

This module imports Keras: import it after the backend is chosen.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np

from vt_edu.training.errors import TrainingError
from vt_edu.training.run_folder import ALL_HISTORY_FIELDS, BEST_WEIGHTS, PUBLISHED_WEIGHTS, save_variables
from vt_edu.training.schedules import sample_lr

__all__ = [
    "BUDGET_LOOKBACK", "BUDGET_SAFETY", "DIVERGENCE_FACTOR", "ClockSchedule", "CommitCheckpoint", "DivergenceGuard", "EpochSetter",
    "RunLogger", "StageCheckpoint", "UnshareEMAWeights", "divergence_bound",
]

# Batches whose slowest duration predicts the next one for the budget's stop rule: a
# shared 2-core machine varies by tens of percent from batch to batch.
BUDGET_LOOKBACK = 20
# ... times this factor: one batch slower than all of the last 20 (a CI run saw 12.04 s of a
# 12 s budget with the slowest alone) must not carry the run past its budget. It costs at
# most half a batch of the budget.
BUDGET_SAFETY = 1.5
# A training loss this many times ln(classes) means the run diverged (see divergence_bound).
DIVERGENCE_FACTOR = 100


def divergence_bound(num_classes: int) -> float:
    """The training loss above which a run counts as diverged: ``100 * ln(num_classes)``.

    A classifier that guesses uniformly scores ``ln(num_classes)`` (2.3 on CIFAR-10); a
    fresh network starts near it and learning only lowers it. A batch-averaged loss 100
    times that (230 on CIFAR-10) needs logits hundreds apart on the wrong class for the
    average image: weights that a too-large learning rate blew up, never a run that learns.
    """
    return DIVERGENCE_FACTOR * math.log(max(int(num_classes), 2))


class EpochSetter(keras.callbacks.Callback):
    """Tell the training batches which epoch is starting (order and augmentation)."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.set_epoch(epoch)


class DivergenceGuard(keras.callbacks.Callback):
    """Raise a clear :class:`TrainingError` as soon as the training loss is NaN/inf or
    above :func:`divergence_bound`, so that such weights never reach a checkpoint.

    Args:
        num_classes: classes of the data set (sets the bound).
        learning_rate: the run's peak learning rate, named in the error.
    """

    def __init__(self, num_classes: int, learning_rate: float):
        super().__init__()
        self.bound = divergence_bound(num_classes)
        self.learning_rate = learning_rate
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        where = f"at epoch {self.epoch + 1}, batch {batch + 1}"
        advice = (f"Lower the learning rate (this run's peak: {self.learning_rate:g}) or use a recipe with warm-up; "
                  "re-running continues from the last completed epoch.")
        if not math.isfinite(loss):
            raise TrainingError(f"the loss became {loss} {where}; training stopped. {advice}")
        if loss > self.bound:
            raise TrainingError(
                f"the training loss reached {loss:.3g} {where}, over {self.bound:.0f} ({DIVERGENCE_FACTOR} x a "
                f"uniform guess's loss): training diverged and stopped. {advice}"
            )


class RunLogger(keras.callbacks.Callback):
    """Times epochs, makes the rows of ``history.csv``, and stops on the time budget.

    Args:
        train_images: images per training epoch (for images/s).
        budget_seconds: training seconds allowed for the whole run; ``None``: no budget.
        history: the rows of the epochs completed before (a resumed run).

    Attributes:
        rows: the history rows so far (the checkpoint commits them).
        stopped_by_budget: whether the budget stopped the run.
    """

    def __init__(self, train_images: int, budget_seconds: float | None = None, history=()):
        super().__init__()
        self.train_images = train_images
        self.budget_seconds = budget_seconds
        self.rows = list(history)
        self.stopped_by_budget = False
        self.spent = sum(r.get("train_seconds", 0.0) for r in self.rows)
        self.t0 = time.perf_counter()

    def on_train_begin(self, logs=None):
        self.batch_seconds = []  # the last BUDGET_LOOKBACK batch durations, across epochs
        # This session's first batch also traces the graph and warms the input pipeline
        # (seconds, several ordinary batches): it predicts the next batch only until
        # an ordinary one is known, or a short budget would end early.
        self.first_batch_seconds = None

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()
        self.train_seconds = None
        self.batch_end = self.t0

    def on_test_begin(self, logs=None):
        if getattr(self, "train_seconds", 0) is None:
            self.train_seconds = time.perf_counter() - self.t0

    def elapsed(self) -> float:
        """Training seconds of the run so far (earlier sessions' epochs included)."""
        return self.spent + (time.perf_counter() - self.t0)

    def on_train_batch_end(self, batch, logs=None):
        if self.budget_seconds is None:
            return
        now = time.perf_counter()
        if self.first_batch_seconds is None:
            self.first_batch_seconds = now - self.batch_end
        else:
            self.batch_seconds = (self.batch_seconds + [now - self.batch_end])[-BUDGET_LOOKBACK:]
        self.batch_end = now
        # The first batch alone (it also traced the graph) already overestimates an ordinary one.
        next_batch = BUDGET_SAFETY * max(self.batch_seconds) if self.batch_seconds else self.first_batch_seconds
        # Stop before a batch that would end past the budget, not after one that did.
        if self.elapsed() + next_batch >= self.budget_seconds:
            self.model.stop_training = True
            self.stopped_by_budget = True

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        total = time.perf_counter() - self.t0
        train_seconds = self.train_seconds if self.train_seconds is not None else total
        self.spent += train_seconds
        row = {
            "epoch": epoch + 1,
            "lr": float(np.asarray(self.model.optimizer.learning_rate)),
            **{k: float(v) for k, v in logs.items() if k in ALL_HISTORY_FIELDS},
            "train_seconds": round(train_seconds, 3),
            "epoch_seconds": round(total, 3),
            "images_per_second": round(self.train_images / max(train_seconds, 1e-9), 1),
        }
        self.rows = [r for r in self.rows if r["epoch"] < epoch + 1] + [row]


class StageCheckpoint(keras.callbacks.Callback):
    """At the end of an epoch, write the model's and the optimizer's variables (raw
    weights, moments, EMA, iteration count, dropout seed states) into a new checkpoint
    folder; :class:`CommitCheckpoint` completes and commits it.

    Args:
        run_folder: the :class:`~vt_edu.training.run_folder.RunFolder`.
    """

    def __init__(self, run_folder):
        super().__init__()
        self.run_folder = run_folder
        self.staging = None
        self.variable_names = None

    def on_epoch_end(self, epoch, logs=None):
        self.staging = self.run_folder.begin_checkpoint(epoch + 1)
        self.variable_names = save_variables(self.model, self.staging)


class UnshareEMAWeights(keras.callbacks.Callback):
    """After training with ``SwapEMAWeights(swap_on_epoch=True)``, give the optimizer's EMA
    variables arrays of their own.

    Its last step copies the weights into the EMA variables by assignment, so on JAX both
    hold the same array; ``evaluate()`` then donates (deletes) the weights' arrays and the
    EMA variables point at deleted memory (saving the model failed with "Array has been
    deleted").
    """

    def on_train_end(self, logs=None):
        for variable in self.model.optimizer.variables:
            variable.assign(keras.ops.convert_to_numpy(variable.value))


class CommitCheckpoint(keras.callbacks.Callback):
    """Complete the staged checkpoint and commit it: the student's weights as published
    (the EMA weights with EMA), the best epoch's weights, the history rows and whether
    training is done; then ``history.csv`` and ``best.weights.h5`` follow it.

    Args:
        stage: the :class:`StageCheckpoint` of this run.
        student: the model whose weights are published (the student when distilling).
        logger: the :class:`RunLogger` (its rows and budget stop).
        last_epoch: the number of epochs ``fit`` runs at most.
        previous: the checkpoint the run resumed from (its best weights carry over), or ``None``.
        monitor: the validation metric whose highest value marks the best epoch
            (``"val_accuracy"``; ``"val_mean_iou"`` for segmentation).
    """

    def __init__(self, stage, student, logger, last_epoch, previous=None, monitor="val_accuracy"):
        super().__init__()
        self.stage, self.student, self.logger, self.last_epoch = stage, student, logger, last_epoch
        self.previous = previous
        self.monitor = monitor
        history = [] if previous is None else previous.history
        self.best = max((r.get(monitor, -math.inf) for r in history), default=-math.inf)

    def on_epoch_end(self, epoch, logs=None):
        import shutil

        staging = self.stage.staging
        self.student.save_weights(staging / PUBLISHED_WEIGHTS)
        score = (logs or {}).get(self.monitor)
        if score is not None and float(score) > self.best:
            self.best = float(score)
            shutil.copyfile(staging / PUBLISHED_WEIGHTS, staging / BEST_WEIGHTS)
        elif self.previous is not None and (self.previous.path / BEST_WEIGHTS).exists():
            shutil.copyfile(self.previous.path / BEST_WEIGHTS, staging / BEST_WEIGHTS)
        state = {
            "epoch": epoch + 1,
            "history": self.logger.rows,
            "training_done": bool(self.logger.stopped_by_budget or epoch + 1 >= self.last_epoch),
            "stopped_by_budget": bool(self.logger.stopped_by_budget),
            "variables": self.stage.variable_names,
        }
        self.previous = self.stage.run_folder.commit_checkpoint(staging, state)


class ClockSchedule(keras.callbacks.Callback):
    """Sets the learning rate before every batch from the training clock: the
    budget stands for ``epochs`` epochs of ``schedule``, so schedule epoch ``e`` is
    reached after ``e / epochs`` of the budget."""

    def __init__(self, schedule, epochs, logger):
        super().__init__()
        self.schedule, self.epochs, self.logger = schedule, epochs, logger

    def position(self) -> float:
        """The schedule's (fractional) epoch for the training time spent so far."""
        return self.epochs * min(self.logger.elapsed() / self.logger.budget_seconds, 1.0)

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = float(sample_lr(self.schedule, [self.position()])[1][0])
