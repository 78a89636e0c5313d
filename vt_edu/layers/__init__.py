"""Keras 3 layers of the Visual Transformer (Wu et al., ICCV 2021, Sec. 3).

Backend-agnostic (``keras.ops`` only), serializable under the ``vt_edu`` package, and
checked equation by equation against the NumPy oracle in :mod:`vt_edu.reference`.
Under a mixed-precision policy the attention logits and softmaxes are computed in
float32 and everything else in the compute dtype (see :mod:`vt_edu.layers.softmax`).

* :class:`FilterTokenizer` (Eq. 1), :class:`RecurrentTokenizer` (Eq. 2),
  :class:`PoolingTokenizer` (ablation baseline)
* :class:`TokenTransformer` (Eqs. 3-4)
* :class:`Projector` (Eq. 5)
* :class:`VTModule`: tokenizer → transformer → projector
"""

from vt_edu.layers.projector import Projector
from vt_edu.layers.softmax import softmax_float32
from vt_edu.layers.tokenizers import (
    FilterTokenizer,
    PoolingTokenizer,
    RecurrentTokenizer,
    pooling_attention,
)
from vt_edu.layers.transformer import LAYER_NORM_EPSILON, TokenTransformer
from vt_edu.layers.vt_module import VTModule

__all__ = [
    "FilterTokenizer",
    "LAYER_NORM_EPSILON",
    "PoolingTokenizer",
    "Projector",
    "RecurrentTokenizer",
    "TokenTransformer",
    "VTModule",
    "pooling_attention",
    "softmax_float32",
]
