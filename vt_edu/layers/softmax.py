"""A softmax that is computed in float32 whatever the layer's compute dtype.

Every attention map in the Visual Transformer is a softmax: over the ``H*W`` pixels
in the tokenizers, over the ``L`` tokens in the transformer and the projector. Under a
mixed-precision policy (``"mixed_float16"``, ``"mixed_bfloat16"``) the logits arrive
in a 16-bit dtype. ``exp`` of a float16 number overflows above ~11, and a bfloat16
sum over thousands of pixels loses the small weights, so rows stop summing to 1. We
therefore cast the logits up, normalise in float32, and cast the probabilities back to
the caller's dtype, so the matmul that follows still runs in 16 bits.
"""

from __future__ import annotations

from keras import ops


def softmax_float32(logits, axis: int = -1):
    """Softmax of ``logits`` along ``axis``, computed in float32.

    Args:
        logits: tensor of any floating dtype.
        axis: the axis that the probabilities sum to 1 over.

    Returns:
        A tensor with the shape and dtype of ``logits``.
    """
    dtype = logits.dtype
    # ops.softmax subtracts the row maximum before exp, so float32 cannot overflow.
    probabilities = ops.softmax(ops.cast(logits, "float32"), axis=axis)
    return ops.cast(probabilities, dtype)
