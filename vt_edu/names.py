"""The package's vocabularies, each defined once and importable without Keras.

``vt_edu.cli`` builds its ``--help`` from these names before any backend starts, so this
module must not import Keras (or anything that does).
"""

from __future__ import annotations

#: Data sets that ``train`` and ``load_dataset`` know by name.
DATASETS = ("cifar10", "cifar100")

#: Models of :func:`vt_edu.models.create_model` that classify images, in the order the book introduces them.
CLASSIFICATION_MODELS = ("cnn", "resnet18", "vt_resnet18", "vit", "tutorial_vit")

#: Models that label every pixel (the semantic FPN and the paper's VT-FPN).
SEGMENTATION_MODELS = ("fpn", "vt_fpn")

#: Models of :func:`vt_edu.models.create_model`, in the order the book introduces them.
MODEL_NAMES = CLASSIFICATION_MODELS + SEGMENTATION_MODELS

#: What a run learns: one label per image, or one label per pixel.
TASKS = ("classification", "segmentation")

#: Class 0 of a segmentation mask; CIFAR class ``c`` is mask value ``c + 1``.
SCENE_BACKGROUND = "background"

#: ``L``, visual tokens per VT module: 16 in the paper for VT-ResNet-18.
DEFAULT_NUM_TOKENS = 16


def check_num_tokens(value, where: str) -> int:
    """Return ``value`` if it is a valid ``num_tokens`` (a positive int), else raise.

    Args:
        value: the requested number of tokens ``L``.
        where: who asks, for the message (a layer or model name).

    Raises:
        ValueError: ``value`` is not an int >= 1 (``bool`` is refused).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: num_tokens must be a positive integer (L >= 1), got {value!r}.")
    return value


def task_of(model_name: str) -> str:
    """The task a model learns: ``"segmentation"`` for :data:`SEGMENTATION_MODELS`, else ``"classification"``."""
    return "segmentation" if model_name in SEGMENTATION_MODELS else "classification"
