"""The book's models behind one registry: ``create_model(name, num_classes, input_shape, **options)``.

See :mod:`vt_edu.models.registry` for the names and options, and the modules
:mod:`~vt_edu.models.cnn`, :mod:`~vt_edu.models.resnet`,
:mod:`~vt_edu.models.vt_resnet`, :mod:`~vt_edu.models.vit` and :mod:`~vt_edu.models.fpn`
(``fpn`` and ``vt_fpn``, per-pixel logits) for each architecture, and
:mod:`~vt_edu.models.attention` for the VT models' attention maps.
"""

# A saved vt_resnet18 names the VT layers (vt_edu.models.vt_resnet imports them too):
# importing them here registers them, so `import vt_edu.models` is all
# keras.models.load_model needs, even before any model is built.
import vt_edu.layers  # noqa: F401
from vt_edu.models.attention import vt_fpn_attention
from vt_edu.models.blocks import ClassToken, PositionEmbedding, StochasticDepth, TokenPool, TokenRange
from vt_edu.models.registry import (
    MODELS,
    ModelConfigError,
    ModelSpec,
    create_model,
    list_models,
    model_options,
)

__all__ = [
    "MODELS",
    "ClassToken",
    "ModelConfigError",
    "ModelSpec",
    "PositionEmbedding",
    "StochasticDepth",
    "TokenPool",
    "TokenRange",
    "create_model",
    "list_models",
    "model_options",
    "vt_fpn_attention",
]
