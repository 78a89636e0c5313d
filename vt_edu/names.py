"""The package's vocabularies, each defined once and importable without Keras.

``vt_edu.cli`` builds its ``--help`` from these names before any backend starts, so this
module must not import Keras (or anything that does).
"""

from __future__ import annotations

#: Data sets that ``train`` and ``load_dataset`` know by name.
DATASETS = ("cifar10", "cifar100")

#: Models of :func:`vt_edu.models.create_model`, in the order the book introduces them.
MODEL_NAMES = ("cnn", "resnet18", "vt_resnet18", "vit")

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
