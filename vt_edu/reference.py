"""Plain NumPy versions of the VT equations: the oracle the Keras layers are tested against.

Every function is a direct transcription of one equation of Wu et al. (ICCV 2021,
Sec. 3), written for reading. They work on one example (``X`` of shape ``(H*W, C)``,
``T`` of shape ``(L, C)``) or on a batch (any leading axes, e.g. ``(B, H*W, C)``):
matrix products use ``@`` and transposes swap only the last two axes.

Conventions (the same as :mod:`vt_edu.layers`): pixels are flattened row-major
(pixel ``y * W + x``); ``A`` of a tokenizer is ``(H*W, L)`` with columns summing to 1;
the attention of the transformer is ``(L, L)`` and of the projector ``(H*W, L)``,
both with rows summing to 1.
"""

from __future__ import annotations

import math

import numpy as np

#: Same value as :data:`vt_edu.layers.LAYER_NORM_EPSILON`.
LAYER_NORM_EPSILON = 1e-5


def _t(m):
    """Transpose of the last two axes (``Mᵀ`` for a matrix or a batch of matrices)."""
    return np.swapaxes(m, -1, -2)


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis`` (the max is subtracted first, for stability)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def filter_tokenizer(X, W_A, W_V=None):
    """Eq. 1: ``A = softmax_HW(X W_A)``, ``T = Aᵀ X`` (``Aᵀ X W_V`` with a value projection).

    Args:
        X: ``(..., H*W, C)``. W_A: ``(C, L)``. W_V: optional ``(C, C_T)``.

    Returns:
        ``(T, A)``: ``(..., L, C_T)`` and ``(..., H*W, L)``.
    """
    A = softmax(X @ W_A, axis=-2)  # over the H*W pixels
    T = _t(A) @ X
    if W_V is not None:
        T = T @ W_V
    return T, A


def recurrent_tokenizer(X, T_in, W_TR, W_V=None):
    """Eq. 2: ``W_R = T_in W_{T→R}``, ``A = softmax_HW(X W_Rᵀ)``, ``T = Aᵀ X [W_V]``.

    The paper prints ``X W_R``; the shapes (``X``: ``(H*W, C)``, ``W_R``: ``(L, C)``)
    need the transpose.

    Args:
        X: ``(..., H*W, C)``. T_in: ``(..., L, C_T_in)``. W_TR: ``(C_T_in, C)``.
        W_V: optional ``(C, C_T)``.

    Returns:
        ``(T, A)``: ``(..., L, C_T)`` and ``(..., H*W, L)``.
    """
    W_R = T_in @ W_TR
    return filter_tokenizer(X, _t(W_R), W_V)  # X W_Rᵀ is Eq. 1 with W_A = W_Rᵀ


def pooling_matrix(height, width, num_tokens):
    """``A`` of average pooling to a ``√L x √L`` grid: ``(H*W, L)``, ``1/cell_area`` per cell."""
    grid = math.isqrt(num_tokens)
    if grid * grid != num_tokens or height % grid or width % grid:
        raise ValueError(
            f"cannot pool a {height}x{width} map into {num_tokens} tokens "
            "(L must be a square and H, W divisible by √L)"
        )
    ch, cw = height // grid, width // grid
    A = np.zeros((height * width, num_tokens))
    for y in range(height):
        for x in range(width):
            A[y * width + x, (y // ch) * grid + x // cw] = 1.0 / (ch * cw)
    return A


def pooling_tokenizer(X, height, width, num_tokens):
    """Average pooling to a ``√L x √L`` grid written as ``T = Aᵀ X``.

    Args:
        X: ``(..., H*W, C)`` (row-major pixels of an ``height x width`` map).

    Returns:
        ``(T, A)``: ``(..., L, C)`` and ``A`` of shape ``(H*W, L)`` (the same for
        every example).
    """
    A = pooling_matrix(height, width, num_tokens)
    return _t(A) @ X, A


def layer_norm(x, gamma=None, beta=None, eps=LAYER_NORM_EPSILON):
    """LayerNorm over the last axis: ``(x - mean) / sqrt(var + eps) * gamma + beta``."""
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y


def self_attention(T, K, Q, W_V=None, num_heads=1, scale=False, logit_scale=None):
    """``softmax_L((T K)(T Q)ᵀ) T [W_V]``, the attention term of Eq. 3.

    With ``num_heads = h`` the columns of ``T K``, ``T Q`` and the values are split
    into ``h`` slices of width ``d = C_T / h``; each slice attends on its own and the
    results are concatenated. ``scale`` divides the logits by ``√d``. ``logit_scale``
    (one number per head) makes cosine attention: the logits of head ``j`` are
    ``logit_scale[j]`` times the cosine of each row of ``T K`` with each row of ``T Q``.

    Returns:
        ``(mixed, attention)``: ``(..., L, C_T)`` and ``(..., L, L)`` for one head,
        ``(..., h, L, L)`` for several.
    """
    C_T = T.shape[-1]
    d = C_T // num_heads
    V = T if W_V is None else T @ W_V
    TK, TQ = T @ K, T @ Q
    outputs, maps = [], []
    for j in range(num_heads):
        cols = slice(j * d, (j + 1) * d)
        rows_j, cols_j = TK[..., cols], TQ[..., cols]
        if logit_scale is not None:
            rows_j = rows_j / np.linalg.norm(rows_j, axis=-1, keepdims=True)
            cols_j = cols_j / np.linalg.norm(cols_j, axis=-1, keepdims=True)
        logits = rows_j @ _t(cols_j)
        if logit_scale is not None:
            logits = logits * logit_scale[j]
        if scale:
            logits = logits / math.sqrt(d)
        A = softmax(logits, axis=-1)  # over the L keys
        maps.append(A)
        outputs.append(A @ V[..., cols])
    mixed = np.concatenate(outputs, axis=-1)
    attention = maps[0] if num_heads == 1 else np.stack(maps, axis=-3)
    return mixed, attention


def transformer(
    T, K, Q, F1, F2, W_V=None, num_heads=1, scale=False, norm=None, norm1=None, norm2=None,
    logit_scale=None,
):
    """Eqs. 3-4: ``T' = T + softmax_L((T K)(T Q)ᵀ) T``; ``T_out = T' + relu(T' F1) F2``.

    Args:
        T: ``(..., L, C_T)``. K, Q, F1, F2, W_V: ``(C_T, C_T)``.
        num_heads, scale, logit_scale: see :func:`self_attention`.
        norm: ``None``, ``"pre"`` (``T' = T + Attn(LN1(T))``, ``T_out = T' +
            FFN(LN2(T'))``) or ``"post"`` (``T' = LN1(T + Attn(T))``,
            ``T_out = LN2(T' + FFN(T'))``).
        norm1, norm2: ``(gamma, beta)`` of the two LayerNorms (default: 1 and 0).

    Returns:
        ``(T_out, attention)``; see :func:`self_attention` for the attention shape.
    """
    ln1 = lambda x: layer_norm(x, *(norm1 or (None, None)))  # noqa: E731
    ln2 = lambda x: layer_norm(x, *(norm2 or (None, None)))  # noqa: E731
    mixed, attention = self_attention(
        ln1(T) if norm == "pre" else T, K, Q, W_V, num_heads, scale, logit_scale
    )
    T_mid = T + mixed  # Eq. 3
    if norm == "post":
        T_mid = ln1(T_mid)
    ffn_in = ln2(T_mid) if norm == "pre" else T_mid
    T_out = T_mid + np.maximum(ffn_in @ F1, 0) @ F2  # Eq. 4
    if norm == "post":
        T_out = ln2(T_out)
    return T_out, attention


def projector(X, T, W_Q, W_K, W_V=None):
    """Eq. 5: ``X_out = X + softmax_L((X W_Q)(T W_K)ᵀ) T`` (``... T W_V`` with ``W_V``).

    Args:
        X: ``(..., H*W, C)``. T: ``(..., L, C_T)``. W_Q: ``(C, C)``. W_K: ``(C_T, C)``.
        W_V: optional ``(C_T, C)``.

    Returns:
        ``(X_out, attention)``: ``(..., H*W, C)`` and ``(..., H*W, L)``.
    """
    attention = softmax((X @ W_Q) @ _t(T @ W_K), axis=-1)  # over the L tokens
    V = T if W_V is None else T @ W_V
    return X + attention @ V, attention
