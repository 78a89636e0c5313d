"""Knowledge distillation (Hinton et al., 2015) as in the paper's advanced recipe.

The student is trained on a mix of the teacher's soft predictions and the labels::

    loss = alpha * T² * KL(softmax(z_t / T) || softmax(z_s / T))
         + (1 - alpha) * CE(y, softmax(z_s))                        alpha = 0.8

``z_s``/``z_t`` are the student's/teacher's logits and ``T`` the temperature (1 by
default; ``T²`` keeps the gradient scale independent of ``T``). The KL divergence
equals the soft cross-entropy ``-Σ p_t log p_s`` minus the teacher's entropy, which
does not depend on the student: the two give the same gradients; we report KL, which
is 0 when the student matches the teacher. The hard-label term may use label
smoothing ``ε``: ``(1-ε)·CE(y) + ε·mean_k(-log p_s[k])``.

:class:`Distiller` wraps a student and a frozen teacher in one ``keras.Model`` whose
``compute_loss`` adds the teacher's term; it trains with ``fit`` on every backend.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import ops

from vt_edu.training.errors import TrainingError

__all__ = ["Distiller", "SparseSmoothedCrossEntropy", "distillation_loss", "load_teacher", "smoothed_cross_entropy"]


def smoothed_cross_entropy(labels, logits, label_smoothing: float = 0.0):
    """Per-example cross-entropy with integer labels and optional label smoothing.

    ``(1 - ε) * -log p[y] + ε * mean_k(-log p[k])``, i.e. the cross-entropy against
    the target ``(1 - ε) * onehot(y) + ε / K``.

    Args:
        labels: integer labels ``(B,)`` (or ``(B, 1)``); for segmentation ``(B, H, W)``.
        logits: ``(B, K)``; for segmentation ``(B, H, W, K)`` (any float dtype).
        label_smoothing: ``ε``.

    Returns:
        float32 losses of the labels' shape: ``(B,)``, or ``(B, H, W)`` per pixel.
    """
    logits = ops.cast(logits, "float32")
    log_probs = ops.log_softmax(logits, axis=-1)
    labels = ops.cast(labels, "int32")
    if len(labels.shape) == len(logits.shape):  # e.g. (B, 1) labels of (B, K) logits
        labels = ops.squeeze(labels, axis=-1)
    onehot = ops.one_hot(labels, ops.shape(logits)[-1], dtype="float32")
    nll = -ops.sum(onehot * log_probs, axis=-1)
    if not label_smoothing:
        return nll
    uniform = -ops.mean(log_probs, axis=-1)
    return (1.0 - label_smoothing) * nll + label_smoothing * uniform


def distillation_loss(labels, student_logits, teacher_logits, alpha: float = 0.8, temperature: float = 1.0,
                      label_smoothing: float = 0.0):
    """Per-example ``alpha * T² * KL(teacher_T || student_T) + (1 - alpha) * CE(labels, student)``.

    Args:
        labels: integer labels ``(B,)``.
        student_logits, teacher_logits: ``(B, K)``.
        alpha: weight of the distillation term (0.8 in the paper's recipe).
        temperature: softmax temperature ``T`` of both distributions in the KL term.
        label_smoothing: ``ε`` of the hard-label term.

    Returns:
        ``(B,)`` float32 losses.
    """
    t = float(temperature)
    student = ops.log_softmax(ops.cast(student_logits, "float32") / t, axis=-1)
    teacher = ops.log_softmax(ops.cast(teacher_logits, "float32") / t, axis=-1)
    kl = ops.sum(ops.exp(teacher) * (teacher - student), axis=-1) * (t * t)
    hard = smoothed_cross_entropy(labels, student_logits, label_smoothing)
    return alpha * kl + (1.0 - alpha) * hard


@keras.saving.register_keras_serializable(package="vt_edu")
class SparseSmoothedCrossEntropy(keras.losses.Loss):
    """Cross-entropy on logits with integer labels and label smoothing.

    Keras' ``SparseCategoricalCrossentropy`` has no ``label_smoothing``; this loss
    avoids one-hot labels (and so keeps the sparse accuracy metrics). With ``(B, H, W)``
    labels and ``(B, H, W, K)`` logits it is the mean per-pixel cross-entropy.
    """

    def __init__(self, label_smoothing: float = 0.0, name="sparse_smoothed_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        return smoothed_cross_entropy(y_true, y_pred, self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class Distiller(keras.Model):
    """A student trained against a frozen teacher; ``call`` returns the student's logits.

    The compiled ``loss`` is used for evaluation (validation loss is the plain
    hard-label loss); in training, :func:`distillation_loss` replaces it.

    Args:
        student: the model being trained.
        teacher: a trained model with the same number of outputs; frozen here.
        alpha, temperature, label_smoothing: see :func:`distillation_loss`.
    """

    def __init__(self, student, teacher, alpha: float = 0.8, temperature: float = 1.0,
                 label_smoothing: float = 0.0, **kwargs):
        super().__init__(name=kwargs.pop("name", f"distill_{student.name}"), **kwargs)
        if teacher.output_shape[-1] != student.output_shape[-1]:
            raise ValueError(
                f"teacher has {teacher.output_shape[-1]} outputs but the student has "
                f"{student.output_shape[-1]}; they must predict the same classes."
            )
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.label_smoothing = float(label_smoothing)

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not training:
            return super().compute_loss(x, y, y_pred, sample_weight, training=training)
        teacher_logits = ops.stop_gradient(self.teacher(x, training=False))
        losses = distillation_loss(
            y, y_pred, teacher_logits, self.alpha, self.temperature, self.label_smoothing
        )
        loss = ops.mean(losses)
        for extra in self.losses:  # e.g. regularisers of the student
            loss = loss + ops.cast(extra, loss.dtype)
        return loss


def load_teacher(teacher):
    """A teacher for :class:`Distiller`: a ``keras.Model`` as it is, a ``.keras`` path loaded
    (uncompiled); ``None`` stays ``None``.

    Raises:
        TrainingError: the path does not exist.
    """
    if teacher is None or isinstance(teacher, keras.Model):
        return teacher
    path = Path(teacher)
    if not path.exists():
        raise TrainingError(f"teacher model {str(path)!r} does not exist (a .keras file is expected).")
    return keras.models.load_model(path, compile=False)
