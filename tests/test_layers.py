"""vt_edu.layers against the NumPy oracle, plus shapes, invariances and mixed precision.

Every layer is compared with vt_edu.reference on random inputs and random weights
(float32, rtol/atol 1e-5), in the ICCV form and in each variant, and every attention
map is checked to be a distribution over its documented axis.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import keras
import numpy as np
import pytest

from vt_edu import reference as ref
from vt_edu.layers import (
    FilterTokenizer,
    PoolingTokenizer,
    Projector,
    RecurrentTokenizer,
    TokenTransformer,
    VTModule,
)

from layer_helpers import TOL, assert_distribution, flat, randn, randomize, reference_transformer, to_np, w


# --------------------------------------------------------------------------- tokenizers


@pytest.mark.parametrize(
    "H, W, C, L, token_channels, value",
    [
        (4, 8, 6, 4, None, False),  # ICCV, non-square map
        (5, 5, 8, 3, None, True),  # value projection, same width
        (6, 4, 4, 16, 12, True),  # value projection to C_T != C, L > H*W/2
    ],
)
def test_filter_tokenizer_matches_reference(H, W, C, L, token_channels, value):
    x = randn(2, H, W, C)
    layer = FilterTokenizer(L, token_channels, use_value_projection=value)
    layer(x)
    randomize(layer)
    tokens, attention = layer(x, return_attention=True)
    T, A = ref.filter_tokenizer(flat(x), w(layer.w_a), w(layer.w_v))
    assert tuple(layer.w_a.shape) == (C, L)
    assert tokens.shape == (2, L, token_channels or C) and attention.shape == (2, H * W, L)
    np.testing.assert_allclose(to_np(tokens), T, **TOL)
    np.testing.assert_allclose(to_np(attention), A, **TOL)
    assert_distribution(attention, axis=1)  # over H*W
    np.testing.assert_allclose(to_np(layer(x)), T, **TOL)  # same result without attention


@pytest.mark.parametrize(
    "C, C_in, token_channels, value",
    [(6, 6, None, False), (6, 10, None, False), (6, 10, 10, True), (6, 6, None, True)],
)
def test_recurrent_tokenizer_matches_reference(C, C_in, token_channels, value):
    x, t_in = randn(3, 4, 8, C), randn(3, 5, C_in, seed=2)
    layer = RecurrentTokenizer(token_channels, use_value_projection=value)
    layer(x, t_in)
    randomize(layer)
    tokens, attention = layer(x, t_in, return_attention=True)
    assert tuple(layer.w_tr.shape) == (C_in, C)
    T, A = ref.recurrent_tokenizer(flat(x), t_in, w(layer.w_tr), w(layer.w_v))
    assert tokens.shape == (3, 5, token_channels or C) and attention.shape == (3, 32, 5)
    np.testing.assert_allclose(to_np(tokens), T, **TOL)
    np.testing.assert_allclose(to_np(attention), A, **TOL)
    assert_distribution(attention, axis=1)


@pytest.mark.parametrize("H, W, L", [(4, 8, 4), (6, 6, 9), (8, 8, 16), (3, 5, 1)])
def test_pooling_tokenizer_matches_reference(H, W, L):
    x = randn(2, H, W, 3)
    tokens, attention = PoolingTokenizer(L)(x, return_attention=True)
    T, A = ref.pooling_tokenizer(flat(x), H, W, L)
    np.testing.assert_allclose(to_np(tokens), T, **TOL)
    np.testing.assert_allclose(to_np(attention), np.broadcast_to(A, (2, H * W, L)), **TOL)
    assert_distribution(attention, axis=1)
    g = math.isqrt(L)  # and it is plain average pooling
    pooled = x.reshape(2, g, H // g, g, W // g, 3).mean(axis=(2, 4)).reshape(2, L, 3)
    np.testing.assert_allclose(to_np(tokens), pooled, **TOL)


# --------------------------------------------------------------------------- transformer

TRANSFORMER_VARIANTS = [
    dict(),  # ICCV
    dict(num_heads=2),
    dict(num_heads=4, scale_attention=True),
    dict(scale_attention=True),
    dict(use_value_projection=True),
    dict(norm="pre"),
    dict(norm="post"),
    dict(num_heads=2, scale_attention=True, use_value_projection=True, norm="pre"),
    dict(cosine_attention=True),
    dict(num_heads=2, cosine_attention=True, norm="pre"),
]


@pytest.mark.parametrize("options", TRANSFORMER_VARIANTS, ids=str)
def test_transformer_matches_reference(options):
    tokens = randn(3, 6, 8)
    layer = TokenTransformer(**options)
    layer(tokens)
    randomize(layer)
    out, attention = layer(tokens, return_attention=True)
    T_out, A = reference_transformer(layer, tokens)
    heads = options.get("num_heads", 1)
    expected_shape = (3, 6, 6) if heads == 1 else (3, heads, 6, 6)
    assert out.shape == (3, 6, 8) and attention.shape == expected_shape
    for name in ("k", "q", "f1", "f2"):
        assert tuple(getattr(layer, name).shape) == (8, 8)
    np.testing.assert_allclose(to_np(out), T_out, **TOL)
    np.testing.assert_allclose(to_np(attention), A, **TOL)
    assert_distribution(attention, axis=-1)  # over the L keys


@pytest.mark.parametrize("options", TRANSFORMER_VARIANTS, ids=str)
def test_transformer_is_permutation_equivariant(options):
    tokens = randn(2, 7, 8)
    perm = np.random.default_rng(3).permutation(7)
    layer = TokenTransformer(**options)
    layer(tokens)
    randomize(layer)
    out, attention = (to_np(a) for a in layer(tokens, return_attention=True))
    out_p, attention_p = (to_np(a) for a in layer(tokens[:, perm], return_attention=True))
    np.testing.assert_allclose(out_p, out[:, perm], **TOL)
    np.testing.assert_allclose(attention_p, attention[..., perm, :][..., perm], **TOL)


def test_cosine_attention_does_not_depend_on_the_size_of_k_and_q():
    """Why cosine attention can learn where 0.1 x K and Q cannot: shrinking K and Q leaves
    cosine logits as they were, while plain logits shrink by 0.1 x 0.1 towards uniform."""
    tokens = randn(2, 6, 8, seed=4)
    for cosine, changes in ((True, False), (False, True)):
        layer = TokenTransformer(cosine_attention=cosine)
        layer(tokens)
        randomize(layer, seed=2, scale=1.0)
        before = to_np(layer(tokens, return_attention=True)[1])
        for matrix in (layer.k, layer.q):
            matrix.assign(matrix * 0.1)
        after = to_np(layer(tokens, return_attention=True)[1])
        assert np.allclose(before, after, atol=1e-5) != changes, cosine


def test_cosine_attention_logit_scale_starts_at_ten_and_is_capped():
    from vt_edu.layers.transformer import INITIAL_LOGIT_SCALE, MAX_LOGIT_SCALE

    layer = TokenTransformer(num_heads=2, cosine_attention=True)
    layer(randn(1, 4, 8))
    np.testing.assert_allclose(to_np(layer.logit_scale()), [INITIAL_LOGIT_SCALE] * 2, rtol=1e-6)
    layer.log_logit_scale.assign([math.log(1e4), math.log(3.0)])
    np.testing.assert_allclose(to_np(layer.logit_scale()), [MAX_LOGIT_SCALE, 3.0], rtol=1e-6)
    assert TokenTransformer().logit_scale() is None
    with pytest.raises(ValueError, match="cannot be combined"):
        TokenTransformer(scale_attention=True, cosine_attention=True)


# --------------------------------------------------------------------------- projector


@pytest.mark.parametrize("C, C_T, value", [(6, 6, False), (6, 6, True), (6, 10, True)])
def test_projector_matches_reference(C, C_T, value):
    x, tokens = randn(2, 4, 8, C), randn(2, 5, C_T, seed=4)
    layer = Projector(use_value_projection=value)
    layer(x, tokens)
    randomize(layer)
    out, attention = layer(x, tokens, return_attention=True)
    assert tuple(layer.w_q.shape) == (C, C) and tuple(layer.w_k.shape) == (C_T, C)
    X_out, A = ref.projector(flat(x), tokens, w(layer.w_q), w(layer.w_k), w(layer.w_v))
    assert out.shape == x.shape and attention.shape == (2, 32, 5)
    np.testing.assert_allclose(to_np(out), X_out.reshape(x.shape), **TOL)
    np.testing.assert_allclose(to_np(attention), A, **TOL)
    assert_distribution(attention, axis=-1)  # over the L tokens


@pytest.mark.parametrize("zero", ["w_q", "w_k"])
def test_projector_with_zero_weight_adds_token_mean(zero):
    x, tokens = randn(2, 3, 5, 4), randn(2, 6, 4, seed=5)
    layer = Projector()
    layer(x, tokens)
    randomize(layer)
    getattr(layer, zero).assign(np.zeros((4, 4), "float32"))
    out, attention = layer(x, tokens, return_attention=True)
    np.testing.assert_allclose(to_np(attention), 1 / 6, **TOL)
    expected = x + tokens.mean(axis=1)[:, None, None, :]  # the same mean at every pixel
    np.testing.assert_allclose(to_np(out), expected, **TOL)


# --------------------------------------------------------------------------- VT module


def test_vt_module_chain_matches_reference():
    """Filter module then recurrent module, composed from the reference equations."""
    x = randn(2, 4, 8, 6)
    first = VTModule(4, tokenizer="filter")
    second = VTModule(4, tokenizer="recurrent", num_heads=2, scale_attention=True, norm="post")
    x1, t1 = first(x)
    second(x1, t1)
    randomize(first, seed=6)
    randomize(second, seed=7)
    x1, t1, att1 = first(x, return_attention=True)
    x2, t2, att2 = second(x1, t1, return_attention=True)

    X = flat(x)
    T, A_tok = ref.filter_tokenizer(X, w(first.tokenizer.w_a))
    T, A_tr = reference_transformer(first.transformer, T)
    X1, A_proj = ref.projector(X, T, w(first.projector.w_q), w(first.projector.w_k))
    for key, value in dict(tokenizer=A_tok, transformer=A_tr, projector=A_proj).items():
        np.testing.assert_allclose(to_np(att1[key]), value, **TOL)
    np.testing.assert_allclose(to_np(t1), T, **TOL)
    np.testing.assert_allclose(to_np(x1), X1.reshape(x.shape), **TOL)

    T2, A_tok2 = ref.recurrent_tokenizer(X1, T, w(second.tokenizer.w_tr))
    T2, A_tr2 = reference_transformer(second.transformer, T2)
    X2, _ = ref.projector(X1, T2, w(second.projector.w_q), w(second.projector.w_k))
    np.testing.assert_allclose(to_np(att2["tokenizer"]), A_tok2, **TOL)
    np.testing.assert_allclose(to_np(att2["transformer"]), A_tr2, **TOL)
    np.testing.assert_allclose(to_np(t2), T2, **TOL)
    np.testing.assert_allclose(to_np(x2), X2.reshape(x.shape), **TOL)


@pytest.mark.parametrize("value", [False, True])
def test_vt_module_value_projection_to_other_width(value):
    x = randn(2, 4, 4, 6)
    module = VTModule(4, token_channels=6 if not value else 10, use_value_projection=value)
    x_out, tokens = module(x)
    assert x_out.shape == x.shape and tokens.shape == (2, 4, 6 if not value else 10)
    assert (module.tokenizer.w_v is not None) == value
    assert (module.transformer.w_v is not None) == value
    assert (module.projector.w_v is not None) == value


def test_vt_module_without_projector_passes_the_feature_map_through():
    x = randn(2, 4, 8, 6)
    module = VTModule(4, use_projector=False)
    x_out, tokens, attention = module(x, return_attention=True)
    np.testing.assert_array_equal(to_np(x_out), x)
    assert module.projector is None and set(attention) == {"tokenizer", "transformer"}
    assert tokens.shape == (2, 4, 6)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    "H, W, C, L, tokenizer",
    [
        (4, 8, 6, 4, "filter"),
        (8, 4, 6, 4, "pooling"),
        (7, 3, 5, 3, "filter"),
        (6, 9, 8, 9, "pooling"),
        (16, 16, 4, 16, "filter"),
        (2, 10, 3, 4, "recurrent"),
    ],
)
def test_vt_module_output_shapes(H, W, C, L, tokenizer):
    x = randn(2, H, W, C)
    tokens = randn(2, L, C, seed=8) if tokenizer == "recurrent" else None
    module = VTModule(L, tokenizer=tokenizer, num_heads=1 if C % 2 else 2)
    x_out, t_out, attention = module(x, tokens, return_attention=True)
    assert x_out.shape == (2, H, W, C) and t_out.shape == (2, L, C)
    assert attention["tokenizer"].shape == (2, H * W, L)
    assert attention["transformer"].shape[-2:] == (L, L)
    assert attention["projector"].shape == (2, H * W, L)
    assert_distribution(attention["tokenizer"], axis=1)
    assert_distribution(attention["transformer"], axis=-1)
    assert_distribution(attention["projector"], axis=-1)


LAYER_CASES = {
    "filter": (lambda: FilterTokenizer(4), False),
    "recurrent": (lambda: RecurrentTokenizer(), True),
    "pooling": (lambda: PoolingTokenizer(4), False),
    "projector": (lambda: Projector(), True),
    "vt_filter": (lambda: VTModule(4), False),
    "vt_recurrent": (lambda: VTModule(4, tokenizer="recurrent"), True),
}


def _inputs(batch, needs_tokens, H=4, W=8, C=6):
    x = randn(batch, H, W, C, seed=batch)
    return (x, randn(batch, 4, C, seed=batch + 10)) if needs_tokens else (x,)


@pytest.mark.parametrize("name", LAYER_CASES)
def test_batch_and_size_are_not_baked_in(name):
    make, needs_tokens = LAYER_CASES[name]
    layer = make()
    one = layer(*_inputs(1, needs_tokens))
    three = layer(*_inputs(3, needs_tokens))
    first = lambda out: out[0] if isinstance(out, tuple) else out  # noqa: E731
    assert first(one).shape[0] == 1 and first(three).shape[0] == 3
    # Example 0 of the batch of 3 does not depend on the others.
    solo = layer(*(a[:1] for a in _inputs(3, needs_tokens)))
    np.testing.assert_allclose(to_np(first(solo)), to_np(first(three))[:1], **TOL)
    # Another map size with the same weights (pooling: still divisible by its grid).
    other = first(layer(*_inputs(2, needs_tokens, H=6, W=2)))
    assert other.shape[:3] in ((2, 6, 2), (2, 4, 6))


@pytest.mark.parametrize("name", LAYER_CASES)
def test_functional_model(name):
    make, needs_tokens = LAYER_CASES[name]
    inputs = [keras.Input(shape=(4, 8, 6))]
    if needs_tokens:
        inputs.append(keras.Input(shape=(4, 6)))
    model = keras.Model(inputs, make()(*inputs))
    for batch in (1, 3):
        data = _inputs(batch, needs_tokens)
        outputs = keras.tree.flatten(model.predict(list(data), verbose=0))
        assert all(o.shape[0] == batch and np.isfinite(o).all() for o in outputs)


def test_functional_model_with_unknown_spatial_size():
    """Input(shape=(None, None, C)): H and W are only known when data arrives."""
    inputs = keras.Input(shape=(None, None, 6))
    x, t = VTModule(4, name="vt1")(inputs)
    x, t = VTModule(4, "recurrent", num_heads=2, name="vt2")(x, t)
    model = keras.Model(inputs, [x, t])
    for shape in ((1, 4, 8, 6), (3, 5, 3, 6)):
        x_out, t_out = model.predict(randn(*shape), verbose=0)
        assert x_out.shape == shape and t_out.shape == (shape[0], 4, 6)
    # The pooling matrix needs H and W: a clear error instead of a wrong grid.
    with pytest.raises(ValueError, match="PoolingTokenizer"):
        keras.Model(inputs, PoolingTokenizer(4)(inputs)).predict(randn(1, 4, 4, 6), verbose=0)


def test_transformer_attention_shape_with_heads():
    tokens = randn(2, 5, 12)
    for heads, shape in ((1, (2, 5, 5)), (3, (2, 3, 5, 5)), (12, (2, 12, 5, 5))):
        _, attention = TokenTransformer(heads)(tokens, return_attention=True)
        assert attention.shape == shape


# --------------------------------------------------------------------------- mixed precision


@pytest.mark.parametrize("policy, tol", [("mixed_float16", 5e-3), ("mixed_bfloat16", 3e-2)])
def test_mixed_precision(policy, tol):
    x = randn(2, 4, 8, 8)
    reference_module = VTModule(4, num_heads=2, norm="pre")
    reference_module(x)
    randomize(reference_module, scale=0.2)
    module = VTModule(4, num_heads=2, norm="pre", dtype=policy)
    module(x)
    module.set_weights(reference_module.get_weights())
    x_out, tokens, attention = module(x, return_attention=True)
    compute = policy.split("_")[1]
    assert keras.backend.standardize_dtype(x_out.dtype) == compute
    assert all(v.dtype == "float32" for v in module.weights)  # variables stay float32
    for value in (x_out, tokens, *attention.values()):
        assert np.isfinite(to_np(value)).all()
    for key, axis in (("tokenizer", 1), ("transformer", -1), ("projector", -1)):
        a = to_np(attention[key])
        assert (a >= 0).all()
        np.testing.assert_allclose(a.sum(axis=axis), 1.0, atol=tol)
    x_ref, t_ref = reference_module(x)
    np.testing.assert_allclose(to_np(tokens), to_np(t_ref), atol=20 * tol, rtol=20 * tol)
    np.testing.assert_allclose(to_np(x_out), to_np(x_ref), atol=20 * tol, rtol=20 * tol)


# Activations of std ~100 (reached in training) make float16 attention logits overflow
# (float16 ends at 65504): the products below are ~C * 100 * 100.
LARGE_ACTIVATIONS = 100.0


def float16_exact(x):
    """``x`` rounded to float16 values but kept float32: the mixed layer casts its inputs
    to float16, so the float32 layer gets the same numbers and the two can be compared."""
    return x.astype("float16").astype("float32")


def large_inputs(kind, C, seed):
    """Inputs of std LARGE_ACTIVATIONS for one layer kind, as float16-exact float32."""
    x = float16_exact(randn(2, 4, 4, C, seed=seed, scale=LARGE_ACTIVATIONS))
    tokens = float16_exact(randn(2, 4, C, seed=seed + 1, scale=LARGE_ACTIVATIONS))
    return {
        "filter": (x,), "pooling": (x,), "recurrent": (x, tokens), "transformer": (tokens,), "transformer_variant": (tokens,),
        "transformer_cosine": (tokens,),
        "projector": (x, tokens), "vt_module": (x,), "vt_module_recurrent": (x, tokens),
    }[kind]  # fmt: skip


def make_layer(kind, dtype):
    return {
        "filter": lambda: FilterTokenizer(4, dtype=dtype),
        "pooling": lambda: PoolingTokenizer(4, dtype=dtype),
        "recurrent": lambda: RecurrentTokenizer(dtype=dtype),
        "transformer": lambda: TokenTransformer(dtype=dtype),
        "transformer_variant": lambda: TokenTransformer(
            num_heads=2, scale_attention=True, use_value_projection=True, norm="post", dtype=dtype
        ),
        "transformer_cosine": lambda: TokenTransformer(num_heads=2, cosine_attention=True, dtype=dtype),
        "projector": lambda: Projector(dtype=dtype),
        "vt_module": lambda: VTModule(4, dtype=dtype),
        "vt_module_recurrent": lambda: VTModule(4, "recurrent", dtype=dtype),
    }[kind]()


@pytest.mark.parametrize("C", [16, 256])
@pytest.mark.parametrize(
    "kind",
    ["filter", "pooling", "recurrent", "transformer", "transformer_variant", "transformer_cosine", "projector",
     "vt_module", "vt_module_recurrent"],
)  # fmt: skip
def test_mixed_float16_with_large_activations(kind, C):
    """Under mixed_float16 the outputs stay finite and close to the float32 layer's.

    A single layer gets the same (float16-exact) inputs in both precisions, so with
    float32 logits even its attention map matches. In a VTModule the float16 tokens
    that the tokenizer hands to the transformer differ from the float32 ones in the
    last bits; with logits this large the softmax is nearly one-hot, and in a row
    whose two largest logits nearly tie such a difference moves weight between two
    tokens. So there the attention maps are only checked to be distributions, and the
    module's outputs are compared.
    """
    inputs = large_inputs(kind, C, seed=C)
    reference_layer = make_layer(kind, "float32")
    reference_layer(*inputs)
    # Weights at the scale of a Glorot init (std 1/sqrt(C)), so only the activations are large.
    randomize(reference_layer, seed=C, scale=1 / math.sqrt(C))
    layer = make_layer(kind, "mixed_float16")
    layer(*inputs)
    layer.set_weights(reference_layer.get_weights())
    outputs = layer(*inputs, return_attention=True)
    expected = reference_layer(*inputs, return_attention=True)
    assert keras.backend.standardize_dtype(outputs[0].dtype) == "float16"
    for actual in keras.tree.flatten(outputs):
        actual = to_np(actual)
        assert np.isfinite(actual).all(), f"{kind}: {np.isnan(actual).mean():.0%} NaN"
    if kind.startswith("vt_module"):
        for key, axis in (("tokenizer", 1), ("transformer", -1), ("projector", -1)):
            a = to_np(outputs[-1][key])
            assert (a >= 0).all()
            np.testing.assert_allclose(a.sum(axis=axis), 1.0, atol=5e-3)
        outputs, expected = outputs[:-1], expected[:-1]
    for actual, wanted in zip(keras.tree.flatten(outputs), keras.tree.flatten(expected)):
        actual, wanted = to_np(actual), to_np(wanted)
        # float16 keeps 11 significant bits (relative spacing 1e-3); measured here:
        # at most 1e-3 of the output's scale. 5e-3 leaves room for other backends.
        np.testing.assert_allclose(actual, wanted, atol=5e-3 * np.abs(wanted).max(), rtol=0)


def test_global_mixed_precision_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        module = VTModule(4, tokenizer="pooling")
        x_out, tokens, attention = module(randn(2, 4, 4, 4), return_attention=True)
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.backend.standardize_dtype(tokens.dtype) == "bfloat16"
    assert np.isfinite(to_np(x_out)).all()
    np.testing.assert_allclose(to_np(attention["projector"]).sum(-1), 1.0, atol=3e-2)


# --------------------------------------------------------------------------- errors


def test_clear_errors_for_inconsistent_options():
    x = randn(1, 4, 4, 6)
    with pytest.raises(ValueError, match="use_value_projection=True"):
        FilterTokenizer(4, token_channels=8)(x)
    with pytest.raises(ValueError, match="use_value_projection=True"):
        RecurrentTokenizer(token_channels=8)(x, randn(1, 4, 6))
    with pytest.raises(ValueError, match="use_value_projection=True"):
        Projector()(x, randn(1, 4, 8))
    with pytest.raises(ValueError, match="use_value_projection=True"):
        VTModule(4, token_channels=8)(x)
    with pytest.raises(ValueError, match="perfect square"):
        PoolingTokenizer(5)
    with pytest.raises(ValueError, match="divisible"):
        PoolingTokenizer(9)(x)
    with pytest.raises(ValueError, match="token_channels"):
        VTModule(4, tokenizer="pooling", token_channels=8, use_value_projection=True)(x)
    with pytest.raises(ValueError, match="does not divide"):
        TokenTransformer(num_heads=4)(randn(1, 4, 6))
    with pytest.raises(ValueError, match="needs the previous module's tokens"):
        VTModule(4, tokenizer="recurrent")(x)
    with pytest.raises(ValueError, match="does not take `tokens`"):
        VTModule(4)(x, randn(1, 4, 6))
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        VTModule(4, tokenizer="conv")
    with pytest.raises(ValueError, match="norm must be one of"):
        TokenTransformer(norm="batch")
    with pytest.raises(ValueError, match="num_tokens"):
        FilterTokenizer(0)
    with pytest.raises(ValueError, match="rank 4"):
        FilterTokenizer(4)(randn(1, 16, 6))


# --------------------------------------------------------------------------- source rules

LAYER_SOURCES = sorted((Path(__file__).parents[1] / "vt_edu" / "layers").glob("*.py"))


@pytest.mark.parametrize("path", LAYER_SOURCES, ids=lambda p: p.name)
def test_layers_use_keras_ops_only(path):
    """No backend imports: the same code must run on TensorFlow, JAX and PyTorch."""
    source = path.read_text()
    assert not re.search(r"^\s*(import|from)\s+(tensorflow|jax|torch)\b", source, re.M)
    assert not re.search(r"\b(tf|jnp|torch)\.", source)


@pytest.mark.parametrize(
    "cls",
    [FilterTokenizer, RecurrentTokenizer, PoolingTokenizer, TokenTransformer, Projector, VTModule],
)
def test_docstrings_follow_keras_style(cls):
    doc = cls.__doc__
    for section in ("Args:", "Call arguments:", "Returns:", "(B, "):
        assert section in doc, f"{cls.__name__} docstring lacks {section!r}"


@pytest.mark.parametrize("seed", [None, 7])
def test_weights_of_one_layer_start_independent(seed):
    """One shared Keras initializer instance would start K = Q = F1 = F2 and W_K = W_V."""
    init = keras.initializers.GlorotUniform(seed=seed)
    transformer = TokenTransformer(kernel_initializer=init, use_value_projection=True)
    transformer.build((None, 16, 32))
    projector = Projector(use_value_projection=True, kernel_initializer=init)
    projector.build((None, 4, 4, 32), (None, 16, 32))
    tokenizer = FilterTokenizer(16, token_channels=32, use_value_projection=True, kernel_initializer=init)
    tokenizer.build((None, 4, 4, 32))
    layers = [
        [transformer.k, transformer.q, transformer.f1, transformer.f2, transformer.w_v],
        [projector.w_q, projector.w_k, projector.w_v],
        [tokenizer.w_a[:, :16], tokenizer.w_v[:, :16]],
    ]
    for weights in layers:  # within one layer, no two weights start equal
        arrays = [keras.ops.convert_to_numpy(w) for w in weights]
        for i in range(len(arrays)):
            for j in range(i + 1, len(arrays)):
                assert not np.allclose(arrays[i], arrays[j]), (i, j)
    if seed is not None:  # seeded layers stay reproducible
        again = TokenTransformer(kernel_initializer=keras.initializers.GlorotUniform(seed=seed))
        again.build((None, 16, 32))
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(again.k), keras.ops.convert_to_numpy(transformer.k))


# --------------------------------------------------------------------------- one VT module wiring


def test_vt_module_pooling_value_projection_changes_the_token_width():
    x = randn(2, 4, 8, 6)
    module = VTModule(4, tokenizer="pooling", token_channels=10, tokenizer_value_projection=True, use_projector=False)
    module(x)
    randomize(module, seed=3)
    found = module.forward_features(x, return_attention=True)
    pooled, _ = ref.pooling_tokenizer(flat(x), 4, 8, 4)
    np.testing.assert_allclose(to_np(found["tokens"]), pooled @ w(module.value.kernel), **TOL)
    assert module.value.kernel.shape == (6, 10) and found["tokens_out"].shape == (2, 4, 10)
    # use_value_projection alone leaves pooling without W_V (the tokenizer has none).
    assert VTModule(4, tokenizer="pooling", use_value_projection=True).tokenizer_value_projection is False


def test_vt_module_value_projections_are_set_per_part():
    module = VTModule(4, token_channels=10, use_value_projection=True, transformer_value_projection=False)
    x_out, tokens = module(randn(2, 4, 4, 6))
    assert x_out.shape == (2, 4, 4, 6) and tokens.shape == (2, 4, 10)
    assert module.tokenizer.w_v is not None and module.projector.w_v is not None
    assert module.transformer.w_v is None


def test_vt_module_forward_features_is_what_call_returns():
    x = randn(2, 4, 8, 6)
    module = VTModule(4, num_heads=2)
    x_out, t_out, attention = module(x, return_attention=True)
    found = module.forward_features(x, return_attention=True)
    np.testing.assert_allclose(to_np(found["feature_map_out"]), to_np(x_out), **TOL)
    np.testing.assert_allclose(to_np(found["tokens_out"]), to_np(t_out), **TOL)
    for key in attention:
        np.testing.assert_allclose(to_np(found[key]), to_np(attention[key]), **TOL)
    # "tokens" is the tokenizer's output, before the transformer.
    tokens, _ = module.tokenizer(x, return_attention=True)
    np.testing.assert_allclose(to_np(found["tokens"]), to_np(tokens), **TOL)
    assert module.tokenizer.name == f"{module.name}_tokenizer"


@pytest.mark.parametrize(
    "options",
    [
        dict(tokenizer="pooling", token_channels=10, tokenizer_value_projection=True, use_projector=False),
        dict(token_channels=8, use_value_projection=True, transformer_value_projection=False, num_heads=2),
        dict(cosine_attention=True, num_heads=2),
    ],
    ids=["pooling-value", "value-but-not-in-transformer", "cosine"],
)
def test_vt_module_config_and_keras_file_round_trip(options, tmp_path):
    module = VTModule(4, name="m1", **options)
    clone = VTModule.from_config(module.get_config())
    assert clone.get_config() == module.get_config()
    inputs = keras.Input((4, 8, 6))
    first = VTModule(4, name="m1", **options)
    x, t = first(inputs)
    x, t = VTModule(4, tokenizer="recurrent", num_heads=2, name="m2")(x, t)
    model = keras.Model(inputs, [x, t])
    data = randn(2, 4, 8, 6, seed=5)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    for a, b in zip(model.predict(data, verbose=0), reloaded.predict(data, verbose=0)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert reloaded.get_layer("m1").get_config() == first.get_config()


def test_vt_module_from_parts_shares_the_layers():
    x = randn(2, 4, 8, 6)
    module = VTModule(4)
    module(x)
    again = VTModule.from_parts(module.tokenizer, module.transformer, module.projector)
    assert again.tokenizer is module.tokenizer and again.projector is module.projector
    np.testing.assert_allclose(to_np(again(x)[1]), to_np(module(x)[1]), **TOL)
    with pytest.raises(ValueError, match="from_parts"):
        VTModule.from_parts(module.transformer, module.tokenizer)


def test_vt_module_config_does_not_draw_random_numbers():
    """Saving a model must not change what a seeded program draws next."""
    import random

    module = VTModule(4)
    random.seed(0)
    module.get_config()
    after_config = random.random()
    random.seed(0)
    assert random.random() == after_config
