"""Attention maps computed in float32 whatever the layer's compute dtype.

Every attention map in the Visual Transformer is a softmax of logits that are
products of activations: over the ``H*W`` pixels in the tokenizers, over the ``L``
tokens in the transformer and the projector. Under a mixed-precision policy
(``"mixed_float16"``, ``"mixed_bfloat16"``) two things go wrong in 16 bits:

* the logits themselves: float16 ends at 65504, and a logit such as
  ``(T K)(T Q)ᵀ`` sums ``C`` products of two activations, so activations of standard
  deviation ~100 (reached in training) overflow to ``inf`` before any softmax sees
  them, and ``inf - inf`` makes the whole map NaN;
* the softmax: ``exp`` of a float16 number overflows above ~11, and a bfloat16 sum
  over thousands of pixels loses the small weights, so rows stop summing to 1.

The layers therefore compute the logits from float32 copies of their inputs and
keep the weights that make logits out of Keras' autocasting
(``add_weight(..., autocast=False)``): the logits are then those of the float32
layer on the same inputs. :func:`softmax_float32` normalises in float32 and casts
the probabilities to the compute dtype, so the larger matmuls that follow (``Aᵀ X``,
``A T``) still run in 16 bits.
"""

from __future__ import annotations

from keras import ops


def float32_matmul(a, b):
    """``a @ b`` computed in float32: how the layers make attention logits.

    Args:
        a, b: tensors of any floating dtype that ``ops.matmul`` can multiply.

    Returns:
        ``ops.matmul(a, b)`` as float32.
    """
    return ops.matmul(ops.cast(a, "float32"), ops.cast(b, "float32"))


def softmax_float32(logits, axis: int = -1, dtype=None):
    """Softmax of ``logits`` along ``axis``, computed in float32.

    Args:
        logits: tensor of any floating dtype.
        axis: the axis that the probabilities sum to 1 over.
        dtype: dtype of the result; ``None`` means that of ``logits``.

    Returns:
        A tensor with the shape of ``logits``, of ``dtype``.
    """
    dtype = logits.dtype if dtype is None else dtype
    # ops.softmax subtracts the row maximum before exp, so float32 cannot overflow.
    probabilities = ops.softmax(ops.cast(logits, "float32"), axis=axis)
    return ops.cast(probabilities, dtype)
