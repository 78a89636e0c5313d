"""vt_edu.torch_fast_paths computes what stock Keras computes, on the PyTorch backend.

The backend is fixed when keras is first imported, so the comparison runs in a fresh
``KERAS_BACKEND=torch`` subprocess (the ``__main__`` part of this file): for every
registry model it trains one step from the same weights with Keras' own code and with
the fast paths, and compares outputs (training and inference), the loss, the updated
weights and the BatchNorm moving statistics. Skipped where PyTorch is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPORT_PREFIX = "VT_EDU_FAST_PATHS_REPORT "


def test_enable_is_a_no_op_on_other_backends():
    import keras

    import vt_edu.torch_fast_paths as fast

    assert keras.backend.backend() != "torch"
    assert fast.enable() is False
    assert not fast.is_enabled()


def _batch_norm_like(**changes):
    """The attributes of a built Keras BatchNormalization of 3.8 to 3.13 (no renorm)."""
    attributes = dict(axis=-1, epsilon=1e-3, momentum=0.99, center=True, scale=True, synchronized=False,
                      trainable=True, compute_dtype="float32", gamma=1, beta=0, moving_mean=0, moving_variance=1)
    attributes.update(changes)

    class BatchNormalization:
        def call(self, inputs, training=None, mask=None):
            raise AssertionError("not called")

    layer = BatchNormalization()
    for name, value in attributes.items():
        if value is not None:
            setattr(layer, name, value)
    return layer


def test_batch_norm_without_renorm_takes_the_fused_path():
    import vt_edu.torch_fast_paths as fast

    old_style = _batch_norm_like()  # Keras < 3.14: no renorm attribute at all
    assert not fast.needs_keras_code(old_style, ndim=4, is_float32=True)
    assert fast.needs_keras_code(_batch_norm_like(renorm=True), ndim=4, is_float32=True)
    assert not fast.needs_keras_code(_batch_norm_like(renorm=False), ndim=2, is_float32=True)
    assert fast.needs_keras_code(old_style, ndim=3, is_float32=True)
    assert fast.needs_keras_code(old_style, ndim=4, is_float32=False)
    assert fast.needs_keras_code(old_style, ndim=4, is_float32=True, mask=object())


def test_enable_names_every_missing_keras_internal():
    from types import SimpleNamespace

    import vt_edu.torch_fast_paths as fast

    torch_nn = SimpleNamespace(_transpose_spatial_inputs=lambda inputs: inputs)
    assert fast.missing_keras_internals(_batch_norm_like(), torch_nn) == []
    assert fast.missing_keras_internals(_batch_norm_like(synchronized=None, moving_variance=None), SimpleNamespace()) == [
        "keras.src.backend.torch.nn._transpose_spatial_inputs",
        "BatchNormalization.synchronized",
        "BatchNormalization.moving_variance",
    ]

    class NewCall:  # a call whose arguments changed
        def call(self, inputs, mask=None, training=None):
            pass

    missing = fast.missing_keras_internals(NewCall(), torch_nn)
    assert missing[0] == "BatchNormalization.call(inputs, training, mask)" and "BatchNormalization.axis" in missing


def test_enable_checks_the_functional_and_optimizer_functions_it_replaces():
    from types import SimpleNamespace

    import vt_edu.torch_fast_paths as fast

    torch_nn = SimpleNamespace(_transpose_spatial_inputs=lambda inputs: inputs)

    def operation_fn_3_15(operation, **call_context_args):
        pass

    def operation_fn_3_8(operation, training):
        pass

    def clip_by_global_norm(value_list, clip_norm):
        pass

    optimizer = SimpleNamespace(clip_by_global_norm=clip_by_global_norm)
    for operation_fn in (operation_fn_3_15, operation_fn_3_8):
        functional = SimpleNamespace(operation_fn=operation_fn)
        assert fast.missing_keras_internals(_batch_norm_like(), torch_nn, functional, optimizer) == []

    def renamed(op, **context):
        pass

    def other_clip(values, norm, epsilon):
        pass

    assert fast.missing_keras_internals(_batch_norm_like(), torch_nn, SimpleNamespace(operation_fn=renamed),
                                        SimpleNamespace(clip_by_global_norm=other_clip)) == [
        "keras.src.models.functional.operation_fn(operation, training)",
        "keras.src.optimizers.base_optimizer.clip_by_global_norm(value_list, clip_norm)",
    ]
    assert fast.missing_keras_internals(_batch_norm_like(), torch_nn, SimpleNamespace(), SimpleNamespace()) == [
        "keras.src.models.functional.operation_fn(operation, training)",
        "keras.src.optimizers.base_optimizer.clip_by_global_norm(value_list, clip_norm)",
    ]


def test_stock_keras_has_the_functions_the_fast_paths_replace():
    import keras
    from keras.src.models import functional
    from keras.src.optimizers import base_optimizer

    import vt_edu.torch_fast_paths as fast

    layer = keras.layers.BatchNormalization()
    layer.build((None, 4))
    torch_nn = type("torch_nn", (), {fast.TRANSPOSE_HELPER: staticmethod(lambda inputs: inputs)})
    assert fast.missing_keras_internals(layer, torch_nn, functional, base_optimizer) == []
    assert hasattr(layer, "_call_has_training_arg")
    for name in fast.DIRECT_CALL_LAYERS:
        assert hasattr(keras.layers, name), name


def test_stock_batch_norm_has_what_the_fast_paths_read():
    import keras

    import vt_edu.torch_fast_paths as fast

    layer = keras.layers.BatchNormalization()
    layer.build((None, 4))
    assert [name for name in fast.BATCH_NORM_ATTRIBUTES if not hasattr(layer, name)] == []
    assert not fast.needs_keras_code(layer, ndim=4, is_float32=True)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_fast_paths_match_stock_keras_on_torch():
    env = dict(os.environ, KERAS_BACKEND="torch", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())], env=env, capture_output=True, text=True, timeout=300
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(REPORT_PREFIX)]
    assert lines, f"no report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    report = json.loads(lines[-1][len(REPORT_PREFIX) :])
    failed = {name: result for name, result in report.items() if result != "ok"}
    assert not failed, json.dumps(failed, indent=2)
    # 13 layer checks, 4 checks per model of test_models.TINY (every classifier), 1 bookkeeping check.
    from test_models import TINY

    assert len(report) == 13 + 4 * len(TINY) + 1 and proc.returncode == 0


# --------------------------------------------------------------------------- subprocess


def _run_checks():
    import traceback

    import keras
    import numpy as np
    import torch

    import vt_edu.torch_fast_paths as fast
    from vt_edu.models import create_model

    from test_models import TINY  # tests/ is on the path when this file runs as a script

    report = {}

    def record(name, fn):
        try:
            fn()
            report[name] = "ok"
        except Exception:  # noqa: BLE001 - every failure goes into the report
            report[name] = traceback.format_exc(limit=3)

    rng = np.random.default_rng(0)
    tight = dict(rtol=1e-4, atol=1e-5)

    def layer_pass(make_layer, x, training):
        """A layer's output and the gradients of a fixed random projection of it."""
        keras.utils.set_random_seed(0)
        layer = make_layer()
        layer.build(x.shape)
        values = np.random.default_rng(2)
        for w in layer.weights:  # not the initial ones / zeros: every term matters
            w.assign(values.normal(size=w.shape).astype("float32") * 0.5 + (1.0 if "variance" in w.path else 0.0))
        xt = torch.tensor(x, requires_grad=True)
        out = layer(xt, training=training)
        probe = torch.tensor(np.random.default_rng(1).normal(size=tuple(out.shape)).astype("float32"))
        (out * probe).sum().backward()
        grads = [xt.grad.numpy()] + [w.value.grad.numpy() for w in layer.trainable_weights]
        state = [keras.ops.convert_to_numpy(w) for w in layer.non_trainable_weights]
        return out.detach().numpy(), grads, state

    def same_list(a, b, **tol):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, **tol)

    def compare_layer(make_layer, x, training):
        fast.disable()
        stock = layer_pass(make_layer, x, training)
        fast.enable()
        patched = layer_pass(make_layer, x, training)
        fast.disable()
        np.testing.assert_allclose(patched[0], stock[0], **tight)
        same_list(patched[1], stock[1], **tight)
        same_list(patched[2], stock[2], **tight)

    x4 = (rng.normal(size=(8, 6, 5, 4)) * 3 + 1).astype("float32")
    x2 = (rng.normal(size=(8, 4)) * 3 + 1).astype("float32")
    bn = keras.layers.BatchNormalization
    for training in (True, False):
        t = "training" if training else "inference"
        record(f"batch_norm_4d_{t}", lambda: compare_layer(lambda: bn(momentum=0.9), x4, training))
        record(f"batch_norm_2d_{t}", lambda: compare_layer(lambda: bn(momentum=0.9), x2, training))
        record(f"batch_norm_no_affine_{t}",
               lambda: compare_layer(lambda: bn(center=False, scale=False), x4, training))
    def fast_path_is_taken():
        # Equal results would also come from silently falling back to Keras' code: count the
        # fused kernels that the fast path calls.
        calls = []
        native, functional = torch.native_batch_norm, torch.nn.functional.batch_norm
        torch.native_batch_norm = lambda *a, **k: calls.append("train") or native(*a, **k)
        torch.nn.functional.batch_norm = lambda *a, **k: calls.append("infer") or functional(*a, **k)
        try:
            fast.enable()
            for x in (x4, x2):
                layer = bn()
                layer(torch.tensor(x), training=True)
                layer(torch.tensor(x), training=False)
        finally:
            torch.native_batch_norm, torch.nn.functional.batch_norm = native, functional
            fast.disable()
        assert calls == ["train", "infer"] * 2, calls

    record("batch_norm_fast_path_is_taken", fast_path_is_taken)

    def direct_calls_are_taken():
        # Inside a functional model the plain layers skip Layer.__call__; a mask, a bfloat16 layer or
        # a PyTorch hook sends a layer back through it.
        from keras.src.layers.layer import Layer

        inputs = keras.Input((6, 5, 4))
        hidden = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs))
        outputs = keras.layers.Add(name="add")([keras.layers.ReLU(name="relu")(hidden), inputs])
        model = keras.Model(inputs, outputs)
        called, keras_call = [], Layer.__call__

        def spy(self, *args, **kwargs):
            called.append(self.name)
            return keras_call(self, *args, **kwargs)

        Layer.__call__ = spy
        try:
            fast.enable()
            x = torch.tensor(x4)
            model(x, training=True)
            assert called == [model.name], called
            called.clear()
            model.get_layer("relu").register_forward_hook(lambda *args: None)
            model(x, training=False)
            assert called == [model.name, "relu"], called
        finally:
            Layer.__call__ = keras_call
            fast.disable()
        assert not fast.needs_layer_call(model.get_layer("bn"), [x], {"training": True, "mask": None})
        assert fast.needs_layer_call(model.get_layer("bn"), [x], {"mask": torch.ones(8, 6, 5, dtype=torch.bool)})
        assert fast.needs_layer_call(model.get_layer("bn"), [x.double()], {})
        masked = x.clone()
        masked._keras_mask = torch.ones(8, 6, 5, dtype=torch.bool)
        assert fast.needs_layer_call(model.get_layer("bn"), [masked], {})
        assert fast.needs_layer_call(keras.layers.Dense(3), [x], {})  # not built
        assert fast.needs_layer_call(model, [x], {})  # not a plain layer

    record("layer_calls_skip_keras_call_machinery", direct_calls_are_taken)

    def clipping_matches_keras():
        from keras.src.optimizers import base_optimizer

        grads = [torch.tensor(np.random.default_rng(k).normal(size=shape).astype("float32") * 3)
                 for k, shape in enumerate([(3, 3, 4, 8), (8,), (10, 2)])]
        for clip_norm in (0.5, 1e3):  # clipped, and left alone
            stock = base_optimizer.clip_by_global_norm([grads[0], None, *grads[1:]], clip_norm)
            fast.enable()
            try:
                clipped = base_optimizer.clip_by_global_norm([grads[0], None, *grads[1:]], clip_norm)
            finally:
                fast.disable()
            assert clipped[1] is None and stock[1] is None
            same_list([c.numpy() for c in clipped if c is not None], [c.numpy() for c in stock if c is not None],
                      rtol=1e-6, atol=1e-7)
        fast.enable()
        try:
            inf = base_optimizer.clip_by_global_norm([grads[0], torch.full((2,), float("inf"))], 1.0)
            called = base_optimizer.clip_by_global_norm.__module__
        finally:
            fast.disable()
        assert called == "vt_edu.torch_fast_paths"
        assert all(torch.isnan(t).all() for t in inf)  # Keras' rule: a non-finite norm makes every gradient NaN

    record("global_norm_clipping_matches_keras", clipping_matches_keras)
    record("batch_norm_frozen_layer_uses_moving_statistics",
           lambda: compare_layer(lambda: _frozen(bn()), x4, True))
    for strides, padding in ((1, "same"), (2, "same"), (2, "valid")):
        record(f"conv2d_stride{strides}_{padding}", lambda: compare_layer(
            lambda: keras.layers.Conv2D(3, 3, strides=strides, padding=padding), x4, True))

    # Whole models: one SGD step from the same weights.
    x = rng.normal(size=(16, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=16)

    def one_step(name):
        keras.utils.set_random_seed(0)
        model = create_model(name, num_classes=10, **TINY[name])
        model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
        outputs = [keras.ops.convert_to_numpy(model(x, training=t)) for t in (True, False)]
        loss = model.train_on_batch(x, y)
        updates = [keras.ops.convert_to_numpy(w) - b for w, b in zip(model.trainable_weights, before)]
        state = [keras.ops.convert_to_numpy(w) for w in model.non_trainable_weights]
        return outputs, loss, updates, state

    def relative_norms(a, b):
        return max(np.linalg.norm(u - v) / max(np.linalg.norm(v), 1e-12) for u, v in zip(a, b))

    # The tiny VT-ResNet is ill-conditioned at initialisation (no normalisation in its VT
    # modules; gradient norm ~20): with stock Keras alone, a 1e-6 relative change of the
    # input moves some weight updates by 0.3 %. Rounding differences therefore show up at
    # that scale; a wrong formula (say, no gradient through the batch mean) moves them by
    # far more than 5 %.
    update_tol = {"cnn": 1e-3, "resnet18": 1e-3, "vt_resnet18": 5e-2, "vit": 1e-3, "tutorial_vit": 1e-3}
    for name in TINY:
        fast.disable()
        s_outputs, s_loss, s_updates, s_state = one_step(name)
        fast.enable()
        p_outputs, p_loss, p_updates, p_state = one_step(name)
        fast.disable()
        record(f"{name}_outputs", lambda: same_list(p_outputs, s_outputs, rtol=2e-4, atol=2e-5))
        record(f"{name}_loss", lambda: np.testing.assert_allclose(p_loss, s_loss, rtol=1e-5))
        record(f"{name}_moving_statistics", lambda: same_list(p_state, s_state, rtol=2e-4, atol=2e-5))

        def updates_agree():
            worst = relative_norms(p_updates, s_updates)
            assert worst < update_tol[name], f"a weight update differs by {worst:.2%} (norm)"

        record(f"{name}_weight_updates", updates_agree)

    def bookkeeping():
        from keras.src.backend.torch import nn as torch_nn
        from keras.src.layers.normalization.batch_normalization import BatchNormalization

        assert fast.enable() is True and fast.is_enabled()
        assert fast.enable() is True  # idempotent
        assert BatchNormalization.call.__module__ == "vt_edu.torch_fast_paths"
        from keras.src.models import functional
        from keras.src.optimizers import base_optimizer

        assert functional.operation_fn.__module__ == "vt_edu.torch_fast_paths"
        assert base_optimizer.clip_by_global_norm.__module__ == "vt_edu.torch_fast_paths"
        image = torch.zeros(2, 3, 4, 5)
        assert torch_nn._transpose_spatial_inputs(image).data_ptr() == image.data_ptr()  # a view, no copy
        fast.disable()
        assert torch_nn._transpose_spatial_inputs(image).data_ptr() != image.data_ptr()  # Keras copies
        assert not fast.is_enabled()
        assert BatchNormalization.call.__module__.startswith("keras.")
        assert torch_nn._transpose_spatial_inputs.__module__.startswith("keras.")
        assert functional.operation_fn.__module__.startswith("keras.")
        assert base_optimizer.clip_by_global_norm.__module__.startswith("keras.")

    record("enable_disable_restore_keras", bookkeeping)
    print(REPORT_PREFIX + json.dumps(report))


def _frozen(layer):
    layer.trainable = False
    return layer


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    _run_checks()
