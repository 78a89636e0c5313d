"""vt_edu.layers on other Keras backends: JAX (required here) and PyTorch (if installed).

The Keras backend is fixed when keras is first imported, so each backend runs in a
fresh subprocess: ``KERAS_BACKEND=<name> python tests/test_backends.py <name>``. That
process (the ``__main__`` part of this file) builds every layer, compares it with the
NumPy reference, takes gradients with the backend's own autodiff, runs a functional
model, a mixed-precision call and a ``.keras`` round trip, and prints one JSON report.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPORT_PREFIX = "VT_EDU_BACKEND_REPORT "


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_layers_on_backend(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed, so the {backend} backend cannot be checked")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    # JAX compiles every eager op with XLA; on a small CPU the compiles dominate the run,
    # and these tiny shapes gain nothing from LLVM's optimisation passes.
    env.setdefault(
        "XLA_FLAGS",
        "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
    )
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), backend],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(REPORT_PREFIX)]
    assert lines, f"no report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    report = json.loads(lines[-1][len(REPORT_PREFIX) :])
    assert report["backend"] == backend
    failed = {name: result for name, result in report["checks"].items() if result != "ok"}
    assert not failed, json.dumps(failed, indent=2)
    assert len(report["checks"]) >= 10 and proc.returncode == 0


# --------------------------------------------------------------------------- subprocess


def _run_checks(expected_backend):  # noqa: C901 (a flat list of checks reads best)
    import traceback

    import keras
    import numpy as np

    from vt_edu import reference as ref
    from vt_edu.layers import (
        FilterTokenizer,
        PoolingTokenizer,
        Projector,
        RecurrentTokenizer,
        TokenTransformer,
        VTModule,
    )

    # Run as `python tests/test_backends.py`, so tests/ is on the path.
    from layer_helpers import TOL, assert_distribution, flat, randn, randomize, reference_transformer, to_np, w
    checks = {}

    def check(fn):
        try:
            fn()
            checks[fn.__name__] = "ok"
        except Exception:  # report every failure, not just the first
            checks[fn.__name__] = traceback.format_exc(limit=6)
        return fn

    def built(layer, *inputs):
        layer(*inputs)
        randomize(layer)
        return layer

    def close(actual, expected):
        np.testing.assert_allclose(to_np(actual), expected, **TOL)

    def grads(layer, *inputs):
        """Backend autodiff of <outputs, R> with respect to every trainable weight."""
        outs = keras.tree.flatten(layer(*inputs))
        # Backend tensors, not NumPy arrays: `torch_tensor * ndarray` would turn the tensor
        # into NumPy (and fail on one that requires grad).
        targets = [keras.ops.convert_to_tensor(np.random.default_rng(7).normal(size=o.shape).astype("float32"))
                   for o in outs]

        def loss_of(o):
            return sum(keras.ops.sum(a * r) for a, r in zip(keras.tree.flatten(o), targets))

        weights = layer.trainable_weights
        if keras.backend.backend() == "jax":
            import jax

            def loss_fn(values):
                nt = [v.value for v in layer.non_trainable_weights]
                return loss_of(layer.stateless_call(values, nt, *inputs)[0])

            # jit: one XLA compile is much faster than JAX's op-by-op eager dispatch.
            g = jax.jit(jax.grad(loss_fn))([v.value for v in weights])
        elif keras.backend.backend() == "torch":
            loss_of(layer(*inputs)).backward()
            g = [v.value.grad for v in weights]
        else:
            import tensorflow as tf

            with tf.GradientTape() as tape:
                loss = loss_of(layer(*inputs))
            g = tape.gradient(loss, weights)
        for v, gv in zip(weights, g):
            assert gv is not None and np.abs(to_np(gv)).max() > 1e-6, f"zero grad {v.path}"
        assert weights

    x = randn(2, 4, 8, 6)  # non-square map
    t_in = randn(2, 4, 6, seed=2)

    @check
    def backend_is_active():
        assert keras.backend.backend() == expected_backend, keras.backend.backend()

    @check
    def filter_tokenizer():
        for layer in (FilterTokenizer(4), FilterTokenizer(4, 10, use_value_projection=True)):
            built(layer, x)
            tokens, attention = layer(x, return_attention=True)
            T, A = ref.filter_tokenizer(flat(x), w(layer.w_a), w(layer.w_v))
            close(tokens, T)
            close(attention, A)
            assert_distribution(attention, 1)
            grads(layer, x)

    @check
    def recurrent_tokenizer():
        layer = built(RecurrentTokenizer(), x, t_in)
        tokens, attention = layer(x, t_in, return_attention=True)
        T, A = ref.recurrent_tokenizer(flat(x), t_in, w(layer.w_tr))
        close(tokens, T)
        close(attention, A)
        assert_distribution(attention, 1)
        grads(layer, x, t_in)

    @check
    def pooling_tokenizer():
        tokens, attention = PoolingTokenizer(4)(x, return_attention=True)
        T, A = ref.pooling_tokenizer(flat(x), 4, 8, 4)
        close(tokens, T)
        close(attention, np.broadcast_to(A, (2, 32, 4)))

    @check
    def token_transformer():
        variants = [{}, dict(num_heads=2, scale_attention=True, use_value_projection=True,
                             norm="pre"), dict(num_heads=3, norm="post")]  # fmt: skip
        for options in variants:
            layer = built(TokenTransformer(**options), t_in)
            out, attention = layer(t_in, return_attention=True)
            T_out, A = reference_transformer(layer, t_in)
            close(out, T_out)
            close(attention, A)
            assert_distribution(attention, -1)
            grads(layer, t_in)

    @check
    def projector():
        wide = randn(2, 4, 10, seed=3)
        for layer, tokens in ((Projector(), t_in), (Projector(use_value_projection=True), wide)):
            built(layer, x, tokens)
            out, attention = layer(x, tokens, return_attention=True)
            X_out, A = ref.projector(flat(x), tokens, w(layer.w_q), w(layer.w_k), w(layer.w_v))
            close(out, X_out.reshape(x.shape))
            close(attention, A)
            assert_distribution(attention, -1)
            grads(layer, x, tokens)

    @check
    def vt_module_chain():
        first = built(VTModule(4), x)
        x1, t1 = first(x)
        second = built(VTModule(4, "recurrent", num_heads=2, norm="pre"), x1, t1)
        x1, t1 = first(x)
        x2, t2 = second(x1, t1)
        T, _ = ref.filter_tokenizer(flat(x), w(first.tokenizer.w_a))
        T, _ = reference_transformer(first.transformer, T)
        X1, _ = ref.projector(flat(x), T, w(first.projector.w_q), w(first.projector.w_k))
        T2, _ = ref.recurrent_tokenizer(X1, T, w(second.tokenizer.w_tr))
        T2, _ = reference_transformer(second.transformer, T2)
        X2, _ = ref.projector(X1, T2, w(second.projector.w_q), w(second.projector.w_k))
        close(t2, T2)
        close(x2, X2.reshape(x.shape))

    def model():
        inputs = keras.Input(shape=(4, 8, 6))
        h, t = VTModule(4, name="vt1")(inputs)
        h, t = VTModule(4, "recurrent", num_heads=2, norm="post", name="vt2")(h, t)
        return keras.Model(inputs, [h, t])

    @check
    def functional_model_batch_free_with_gradients():
        m = model()
        for batch in (1, 3):
            outs = m.predict(randn(batch, 4, 8, 6), verbose=0)
            assert outs[0].shape == (batch, 4, 8, 6) and outs[1].shape == (batch, 4, 6)
        grads(m, x)  # training itself is Keras' business; gradients are ours

    @check
    def keras_file_round_trip():
        m = model()
        randomize(m)
        before = m(x)  # eager calls: the ops are compiled already, predict would recompile
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "vt.keras")
            m.save(path)
            loaded = keras.saving.load_model(path, safe_mode=True)
        for a, b in zip(before, loaded(x)):
            np.testing.assert_array_equal(to_np(a), to_np(b))

    @check
    def mixed_precision():
        module = VTModule(4, num_heads=2, norm="pre", dtype="mixed_bfloat16")
        x_out, tokens, attention = module(x, return_attention=True)
        assert keras.backend.standardize_dtype(tokens.dtype) == "bfloat16"
        for value in (x_out, tokens, *attention.values()):
            assert np.isfinite(to_np(value)).all()
        np.testing.assert_allclose(to_np(attention["tokenizer"]).sum(1), 1.0, atol=3e-2)
        np.testing.assert_allclose(to_np(attention["projector"]).sum(-1), 1.0, atol=3e-2)

    return checks


if __name__ == "__main__":
    results = _run_checks(sys.argv[1])
    import keras

    print(REPORT_PREFIX + json.dumps({"backend": keras.backend.backend(), "checks": results}))
    sys.exit(0 if all(v == "ok" for v in results.values()) else 1)
