"""The NumPy oracle (vt_edu.reference) against hand-written, loop-by-loop versions.

The layer tests trust vt_edu.reference, so here each function is checked against an
independent derivation: explicit sums over pixels/tokens, reshape-and-mean pooling,
algebraic identities (W_V = I, scaling folded into K, ...).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vt_edu import reference as ref

RNG = np.random.default_rng(0)


def randn(*shape, scale=1.0):
    return RNG.normal(scale=scale, size=shape)


def test_softmax_is_a_stable_distribution():
    x = randn(3, 5, 7)
    for axis in (0, 1, -1):
        p = ref.softmax(x, axis=axis)
        assert (p >= 0).all()
        np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-12)
        np.testing.assert_allclose(p, np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True))
    # Shift-invariant, and no overflow for huge logits.
    np.testing.assert_allclose(ref.softmax(x + 1000.0), ref.softmax(x), rtol=1e-12)
    assert np.isfinite(ref.softmax(np.array([1e4, 0.0]))).all()


def loop_filter_tokenizer(X, W_A):
    """Eq. 1 pixel by pixel: token l = sum_p a[p, l] x_p with a[:, l] a softmax over p."""
    HW, _ = X.shape
    L = W_A.shape[1]
    A = np.zeros((HW, L))
    for l in range(L):
        scores = np.array([X[p] @ W_A[:, l] for p in range(HW)])
        A[:, l] = np.exp(scores) / np.exp(scores).sum()
    T = np.stack([sum(A[p, l] * X[p] for p in range(HW)) for l in range(L)])
    return T, A


def test_filter_tokenizer_matches_loops_and_batches():
    X, W_A = randn(12, 5), randn(5, 3)
    T, A = ref.filter_tokenizer(X, W_A)
    T_loop, A_loop = loop_filter_tokenizer(X, W_A)
    np.testing.assert_allclose(T, T_loop, rtol=1e-12)
    np.testing.assert_allclose(A, A_loop, rtol=1e-12)
    assert T.shape == (3, 5) and A.shape == (12, 3)
    np.testing.assert_allclose(A.sum(axis=0), 1.0)  # columns: distributions over H*W
    # A batch is the stack of single examples.
    Xb = randn(4, 12, 5)
    Tb, Ab = ref.filter_tokenizer(Xb, W_A)
    for b in range(4):
        Ts, As = ref.filter_tokenizer(Xb[b], W_A)
        np.testing.assert_allclose(Tb[b], Ts)
        np.testing.assert_allclose(Ab[b], As)


def test_filter_tokenizer_tokens_are_convex_combinations_of_pixels():
    X = randn(20, 4)
    T, _ = ref.filter_tokenizer(X, randn(4, 6))
    assert (T <= X.max(axis=0) + 1e-12).all() and (T >= X.min(axis=0) - 1e-12).all()


def test_value_projection_identity_and_order():
    X, W_A = randn(12, 5), randn(5, 3)
    T, A = ref.filter_tokenizer(X, W_A)
    T_id, _ = ref.filter_tokenizer(X, W_A, W_V=np.eye(5))
    np.testing.assert_allclose(T_id, T)
    W_V = randn(5, 7)
    T_v, _ = ref.filter_tokenizer(X, W_A, W_V)
    np.testing.assert_allclose(T_v, A.T @ (X @ W_V))  # Aᵀ (X W_V) = (Aᵀ X) W_V
    assert T_v.shape == (3, 7)


def test_recurrent_tokenizer_matches_loops():
    X, T_in, W_TR = randn(10, 4), randn(3, 6), randn(6, 4)
    T, A = ref.recurrent_tokenizer(X, T_in, W_TR)
    # Token l's filter is w_l = T_in[l] W_TR (a vector over C); score of pixel p: x_p · w_l.
    A_loop = np.zeros((10, 3))
    for l in range(3):
        w_l = T_in[l] @ W_TR
        scores = np.array([X[p] @ w_l for p in range(10)])
        A_loop[:, l] = np.exp(scores) / np.exp(scores).sum()
    np.testing.assert_allclose(A, A_loop, rtol=1e-12)
    np.testing.assert_allclose(T, A_loop.T @ X, rtol=1e-12)
    W_V = randn(4, 2)
    T_v, _ = ref.recurrent_tokenizer(X, T_in, W_TR, W_V)
    np.testing.assert_allclose(T_v, A_loop.T @ X @ W_V, rtol=1e-12)


@pytest.mark.parametrize("H, W, L", [(4, 4, 4), (4, 8, 4), (6, 3, 9), (8, 8, 16), (5, 7, 1)])
def test_pooling_tokenizer_is_average_pooling(H, W, L):
    C = 3
    grid = math.isqrt(L)
    fmap = randn(H, W, C)
    T, A = ref.pooling_tokenizer(fmap.reshape(H * W, C), H, W, L)
    pooled = fmap.reshape(grid, H // grid, grid, W // grid, C).mean(axis=(1, 3))
    np.testing.assert_allclose(T, pooled.reshape(L, C))
    np.testing.assert_allclose(A.sum(axis=0), 1.0)
    assert ((A == 0) | np.isclose(A, grid * grid / (H * W))).all()


def loop_self_attention(T, K, Q):
    """Eq. 3's attention term token by token."""
    L = T.shape[0]
    out, A = np.zeros_like(T), np.zeros((L, L))
    for i in range(L):
        scores = np.array([(T[i] @ K) @ (T[j] @ Q) for j in range(L)])
        A[i] = np.exp(scores) / np.exp(scores).sum()
        out[i] = sum(A[i, j] * T[j] for j in range(L))
    return out, A


def test_transformer_matches_loops():
    C, L = 6, 5
    T = randn(L, C)
    K, Q, F1, F2 = (randn(C, C, scale=0.4) for _ in range(4))
    T_out, A = ref.transformer(T, K, Q, F1, F2)
    mixed, A_loop = loop_self_attention(T, K, Q)
    T_mid = T + mixed
    expected = T_mid + np.array([np.maximum(t @ F1, 0) @ F2 for t in T_mid])
    np.testing.assert_allclose(A, A_loop, rtol=1e-12)
    np.testing.assert_allclose(T_out, expected, rtol=1e-12)
    np.testing.assert_allclose(A.sum(axis=-1), 1.0)


def test_transformer_variants_by_identities():
    C, L = 8, 4
    T = randn(2, L, C)
    K, Q, F1, F2 = (randn(C, C, scale=0.4) for _ in range(4))
    base, A = ref.transformer(T, K, Q, F1, F2)
    # W_V = I is no value projection; one head is the default.
    np.testing.assert_allclose(ref.transformer(T, K, Q, F1, F2, W_V=np.eye(C))[0], base)
    np.testing.assert_allclose(ref.transformer(T, K, Q, F1, F2, num_heads=1)[0], base)
    # Scaling by 1/sqrt(d) is the same as scaling K.
    scaled, _ = ref.transformer(T, K, Q, F1, F2, scale=True)
    np.testing.assert_allclose(scaled, ref.transformer(T, K / math.sqrt(C), Q, F1, F2)[0])
    # Two heads: each head is single-head attention on its slice of T K, T Q and T.
    mixed, A2 = ref.self_attention(T, K, Q, num_heads=2, scale=True)
    assert A2.shape == (2, 2, L, L)
    for j, cols in enumerate((slice(0, 4), slice(4, 8))):
        logits = (T @ K)[..., cols] @ np.swapaxes((T @ Q)[..., cols], -1, -2) / 2.0
        A_j = ref.softmax(logits, axis=-1)
        np.testing.assert_allclose(A2[:, j], A_j)
        np.testing.assert_allclose(mixed[..., cols], A_j @ T[..., cols])


def test_transformer_norm_variants():
    C, L = 6, 5
    T = randn(L, C)
    K, Q, F1, F2 = (randn(C, C, scale=0.4) for _ in range(4))

    def ln(x):
        return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)

    def ffn(x):
        return np.maximum(x @ F1, 0) @ F2

    def attn(x):
        return ref.self_attention(x, K, Q)[0]

    pre, _ = ref.transformer(T, K, Q, F1, F2, norm="pre")
    mid = T + attn(ln(T))
    np.testing.assert_allclose(pre, mid + ffn(ln(mid)))
    post, _ = ref.transformer(T, K, Q, F1, F2, norm="post")
    mid = ln(T + attn(T))
    np.testing.assert_allclose(post, ln(mid + ffn(mid)))
    y = ref.layer_norm(randn(3, C), gamma=np.full(C, 2.0), beta=np.ones(C))
    np.testing.assert_allclose(y.mean(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(y.std(-1), 2.0, rtol=1e-4)


def test_transformer_is_permutation_equivariant():
    C, L = 6, 7
    T = randn(L, C)
    K, Q, F1, F2 = (randn(C, C, scale=0.4) for _ in range(4))
    perm = RNG.permutation(L)
    out, A = ref.transformer(T, K, Q, F1, F2)
    out_p, A_p = ref.transformer(T[perm], K, Q, F1, F2)
    np.testing.assert_allclose(out_p, out[perm])
    np.testing.assert_allclose(A_p, A[perm][:, perm])


def test_projector_matches_loops():
    HW, C, C_T, L = 9, 4, 4, 3
    X, T = randn(HW, C), randn(L, C_T)
    W_Q, W_K = randn(C, C), randn(C_T, C)
    X_out, A = ref.projector(X, T, W_Q, W_K)
    for p in range(HW):
        scores = np.array([(X[p] @ W_Q) @ (T[l] @ W_K) for l in range(L)])
        a = np.exp(scores) / np.exp(scores).sum()
        np.testing.assert_allclose(A[p], a, rtol=1e-12)
        np.testing.assert_allclose(X_out[p], X[p] + a @ T, rtol=1e-12)
    np.testing.assert_allclose(A.sum(-1), 1.0)
    # Value projection to another token width.
    T5, W_K5, W_V = randn(L, 5), randn(5, C), randn(5, C)
    X_v, A_v = ref.projector(X, T5, W_Q, W_K5, W_V)
    np.testing.assert_allclose(X_v, X + A_v @ (T5 @ W_V))


def test_projector_with_zero_query_adds_the_token_mean():
    X, T = randn(2, 9, 4), randn(2, 3, 4)
    for W_Q, W_K in ((np.zeros((4, 4)), randn(4, 4)), (randn(4, 4), np.zeros((4, 4)))):
        X_out, A = ref.projector(X, T, W_Q, W_K)
        np.testing.assert_allclose(A, 1 / 3)
        np.testing.assert_allclose(X_out, X + T.mean(axis=-2, keepdims=True))
