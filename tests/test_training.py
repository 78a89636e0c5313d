"""vt_edu.training: schedules, recipes, distillation, pipeline, and train() run folders.

Runs use tiny arrays (40 training images of 32x32) and tiny models so that the whole
file takes well under a minute on a 2-core CPU.
"""

from __future__ import annotations

import json
import math
import time

import keras
import numpy as np
import pytest

from vt_edu.training import (
    ImageBatches,
    RecipeError,
    SparseSmoothedCrossEntropy,
    StepSchedule,
    TrainingError,
    WarmupCosineSchedule,
    WarmupExponentialSchedule,
    distillation_loss,
    get_recipe,
    sample_lr,
    smoothed_cross_entropy,
    train,
)
from vt_edu.training.augment import rand_augment
from training_helpers import assert_compiled_with

CLASSES = [f"c{i}" for i in range(10)]


def _arrays(n_train=40, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    y_train, y_test = np.arange(n_train) % 10, np.arange(n_test) % 10
    # Class-dependent brightness so that there is something to learn.
    x_train = np.clip(rng.normal(20 * y_train[:, None, None, None] + 30, 30, (n_train, 32, 32, 3)), 0, 255).astype(np.uint8)
    x_test = np.clip(rng.normal(20 * y_test[:, None, None, None] + 30, 30, (n_test, 32, 32, 3)), 0, 255).astype(np.uint8)
    return (x_train, y_train), (x_test, y_test), CLASSES


DATA = _arrays()
TINY = dict(model_name="cnn", width=0.25, batch_size=10, data=DATA, verbose=0)


# --------------------------------------------------------------------------- schedules
def test_paper_advanced_warmup_endpoints_and_decay():
    steps = 8
    peak = 0.16 * 2048 / 2048
    schedule = WarmupExponentialSchedule(peak, steps, warmup_epochs=5, start_learning_rate=0.01, decay=0.9875)
    epochs, lr = sample_lr(schedule, [0, 2.5, 5, 5.5, 6, 10, 25])
    np.testing.assert_allclose(lr, [0.01, 0.085, 0.16, 0.16, 0.16 * 0.9875, 0.16 * 0.9875**5, 0.16 * 0.9875**20], rtol=1e-6)
    # Stepped per iteration: half-way through the warm-up in iterations is half-way in lr.
    assert float(schedule(int(2.5 * steps))) == pytest.approx(0.085, rel=1e-6)
    assert float(schedule(6 * steps)) == pytest.approx(0.16 * 0.9875, rel=1e-6)


def test_paper_advanced_recipe_scales_the_peak_with_the_batch():
    recipe = get_recipe("paper-advanced")
    assert recipe.scaled_learning_rate(2048) == pytest.approx(0.16)
    assert recipe.scaled_learning_rate(256) == pytest.approx(0.02)
    assert (recipe.label_smoothing, recipe.stochastic_depth, recipe.dropout) == (0.1, 0.9, 0.2)
    assert recipe.ema_momentum and recipe.augment == "randaugment"


def test_step_schedule_divides_by_ten_every_30_epochs():
    schedule = StepSchedule(0.1, steps_per_epoch=5, step_epochs=30, factor=0.1)
    _, lr = sample_lr(schedule, [0, 29.9, 30, 59, 60, 89])
    np.testing.assert_allclose(lr, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-5)
    assert get_recipe("paper-default").scaled_learning_rate(256) == pytest.approx(0.1)


def test_warmup_cosine_endpoints():
    schedule = WarmupCosineSchedule(0.1, steps_per_epoch=4, total_epochs=11, warmup_epochs=1)
    _, lr = sample_lr(schedule, [0, 0.5, 1, 6, 11, 12])
    np.testing.assert_allclose(lr, [0.0, 0.05, 0.1, 0.05, 0.0, 0.0], atol=1e-7)


def test_schedules_serialize():
    for schedule in (
        StepSchedule(0.1, 3),
        WarmupExponentialSchedule(0.16, 3),
        WarmupCosineSchedule(0.1, 3, total_epochs=4),
    ):
        config = keras.saving.serialize_keras_object(schedule)
        clone = keras.saving.deserialize_keras_object(config)
        assert type(clone) is type(schedule) and clone.get_config() == schedule.get_config()
        assert float(clone(5)) == pytest.approx(float(schedule(5)))


def test_recipes_registry_and_weight_decay_conversion():
    assert set(get_recipe(n).name for n in ("seed", "paper-default", "paper-advanced", "fast")) == {
        "seed", "paper-default", "paper-advanced", "fast"}
    seed = get_recipe("seed")
    assert (seed.optimizer, seed.learning_rate, seed.batch_size, seed.augment) == ("adam", 1e-3, 256, "none")
    assert seed.scaled_learning_rate(64) == 1e-3  # Adam is not rescaled
    assert get_recipe("paper-default").keras_weight_decay() == pytest.approx(4e-4)  # 4e-5 / (1 - 0.9)
    with pytest.raises(RecipeError, match="choose one of: seed, paper-default, paper-advanced, fast"):
        get_recipe("sota")
    with pytest.raises(RecipeError, match="no setting"):
        get_recipe("seed", lr=0.1)


# ------------------------------------------------------------------------ distillation
def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_distillation_loss_is_the_documented_mix():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(6, 5)) * 2, rng.normal(size=(6, 5)) * 2
    labels = rng.integers(0, 5, size=6)
    t = 2.0
    p_t = np.exp(_log_softmax(teacher / t))
    kl = (p_t * (_log_softmax(teacher / t) - _log_softmax(student / t))).sum(-1) * t * t
    ce = -_log_softmax(student)[np.arange(6), labels]
    expected = 0.8 * kl + 0.2 * ce
    got = np.asarray(distillation_loss(labels, student.astype("float32"), teacher.astype("float32"), 0.8, t))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # A student equal to its teacher pays only the hard-label part.
    same = np.asarray(distillation_loss(labels, student.astype("float32"), student.astype("float32")))
    np.testing.assert_allclose(same, 0.2 * ce, rtol=1e-5)


def test_label_smoothing_cross_entropy():
    rng = np.random.default_rng(1)
    logits, labels = rng.normal(size=(4, 10)).astype("float32"), np.array([1, 2, 3, 4])
    target = np.full((4, 10), 0.1 / 10) + 0.9 * np.eye(10)[labels]
    expected = -(target * _log_softmax(logits)).sum(-1)
    np.testing.assert_allclose(np.asarray(smoothed_cross_entropy(labels, logits, 0.1)), expected, rtol=1e-5)
    loss = SparseSmoothedCrossEntropy(0.1)
    assert float(loss(labels, logits)) == pytest.approx(expected.mean(), rel=1e-5)
    assert SparseSmoothedCrossEntropy.from_config(loss.get_config()).label_smoothing == 0.1


# ---------------------------------------------------------------------------- pipeline
def test_image_batches_are_normalised_seeded_and_reshuffled():
    (x, y), _, _ = DATA
    kwargs = dict(mean=[0.5] * 3, std=[0.25] * 3, augment="crop_flip", shuffle=True, seed=3)
    a, b = ImageBatches(x, y, 16, **kwargs), ImageBatches(x, y, 16, **kwargs)
    xb, yb = a[0]
    assert xb.dtype == np.float32 and xb.shape == (16, 32, 32, 3) and yb.shape == (16,)
    np.testing.assert_array_equal(a[1][0], b[1][0])  # same seed → same batch
    a.set_epoch(1)
    assert not np.array_equal(a[0][1], b[0][1])  # new epoch → new order
    assert len(ImageBatches(x, y, 16, drop_remainder=True, **kwargs)) == 2
    plain = ImageBatches(x, y, 40, mean=[0.5] * 3, std=[0.25] * 3)
    np.testing.assert_allclose(plain[0][0], (x / 255 - 0.5) / 0.25, rtol=1e-5, atol=1e-5)


def test_rand_augment_is_deterministic_uint8():
    (x, _), _, _ = DATA
    out1, out2 = rand_augment(x, 7), rand_augment(x, 7)
    assert out1.dtype == np.uint8 and out1.shape == x.shape
    np.testing.assert_array_equal(out1, out2)
    assert not np.array_equal(out1, x)


# -------------------------------------------------------------------------- train runs
def test_train_writes_a_complete_run_folder(tmp_path):
    result = train(recipe="fast", epochs=2, run_dir=tmp_path / "run", **TINY)
    run = tmp_path / "run"
    for name in ("config.json", "history.csv", "metrics.json", "best.weights.h5", "model.keras"):
        assert (run / name).exists(), name
    assert not (run / "backup").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("top1", "top5", "train_seconds", "images_per_second", "params", "macs", "hardware",
                "backend", "versions", "git_commit", "date"):
        assert key in metrics, key
    assert metrics["params"] == result.model.count_params() and metrics["epochs_completed"] == 2
    assert [row["epoch"] for row in result.history] == [1, 2]
    reloaded = keras.models.load_model(run / "model.keras")
    np.testing.assert_allclose(reloaded.predict(DATA[1][0], verbose=0), result.model.predict(DATA[1][0], verbose=0),
                               rtol=1e-5, atol=1e-6)
    # A finished run is not trained again.
    again = train(recipe="fast", epochs=2, run_dir=run, **TINY)
    assert again.model is None and again.metrics == metrics
    # A different configuration in the same folder is refused.
    with pytest.raises(TrainingError, match="different settings.*epochs"):
        train(recipe="fast", epochs=3, run_dir=run, **TINY)


def test_train_compiles_with_the_recipes_optimizer_clipping_and_loss(tmp_path):
    recipe = get_recipe("fast", clip_norm=5.0, label_smoothing=0.2)
    result = train(recipe=recipe, epochs=1, run_dir=tmp_path / "run", **TINY)
    assert_compiled_with(result.model, recipe, TINY["batch_size"])


class _Interrupt(Exception):
    pass


class _InterruptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise _Interrupt("simulated crash after epoch 1")


class _Probe(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append((epoch, int(np.asarray(self.model.optimizer.iterations))))


def test_interrupted_run_resumes_at_epoch_2_with_the_optimizer_state(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(_Interrupt):
        train(recipe="fast", epochs=3, run_dir=run, callbacks=[_InterruptAfterFirstEpoch()], **TINY)
    assert (run / "backup").exists() and not (run / "metrics.json").exists()
    probe = _Probe()
    result = train(recipe="fast", epochs=3, run_dir=run, callbacks=[probe], **TINY)
    steps_per_epoch = 40 // 10
    assert probe.seen[0] == (1, steps_per_epoch)  # epoch index 1 = "epoch 2", 4 iterations done
    assert [e for e, _ in probe.seen] == [1, 2]
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert result.metrics["epochs_completed"] == 3


_REPEATED = ("epoch", "lr", "loss", "accuracy", "top5", "val_loss", "val_accuracy", "val_top5")


def test_a_resumed_run_repeats_the_uninterrupted_run(tmp_path):
    # RandAugment, dropout, EMA and the batch order must all continue as if nothing
    # had happened (Keras' own batch shuffling restarted its sequence on resume).
    recipe = get_recipe("paper-advanced", reference_batch=10)
    whole = train(recipe=recipe, epochs=3, run_dir=tmp_path / "whole", **TINY)
    with pytest.raises(_Interrupt):
        train(recipe=recipe, epochs=3, run_dir=tmp_path / "resumed", callbacks=[_InterruptAfterFirstEpoch()], **TINY)
    resumed = train(recipe=recipe, epochs=3, run_dir=tmp_path / "resumed", **TINY)
    for a, b in zip(whole.history, resumed.history, strict=True):
        assert {k: b[k] for k in _REPEATED} == pytest.approx({k: a[k] for k in _REPEATED}, rel=1e-5, abs=1e-6)
    for a, b in zip(whole.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert resumed.metrics["top1"] == pytest.approx(whole.metrics["top1"])


def test_same_seed_gives_the_same_first_epoch_loss(tmp_path):
    a = train(recipe="seed", epochs=1, run_dir=tmp_path / "a", seed=5, **TINY)
    b = train(recipe="seed", epochs=1, run_dir=tmp_path / "b", seed=5, **TINY)
    c = train(recipe="seed", epochs=1, run_dir=tmp_path / "c", seed=6, **TINY)
    assert a.history[0]["loss"] == pytest.approx(b.history[0]["loss"], rel=1e-6)
    assert a.history[0]["loss"] != pytest.approx(c.history[0]["loss"], rel=1e-6)


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    recipe = get_recipe("fast", learning_rate=1e12, schedule="constant", label_smoothing=0.0)
    with pytest.raises(TrainingError, match="loss became nan.*epoch 1"):
        train(recipe=recipe, epochs=2, run_dir=tmp_path / "nan", **TINY)
    assert not (tmp_path / "nan" / "metrics.json").exists()


def test_a_diverging_loss_is_a_failure_naming_the_learning_rate(tmp_path):
    # Adam at 1e12 blows the logits up to ~1e12 without (yet) a NaN: once reported as
    # a finished run at 10 % top-1 with a training loss of 1e12.
    recipe = get_recipe("seed", learning_rate=1e12)
    with pytest.raises(TrainingError, match=r"training loss reached .* over 230 .*diverged.*learning rate.*1e\+12"):
        train(recipe=recipe, epochs=2, run_dir=tmp_path / "r", **TINY)
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_the_divergence_bound_is_far_above_any_learning_loss():
    from vt_edu.training.callbacks import divergence_bound

    assert divergence_bound(10) == pytest.approx(100 * math.log(10))  # a uniform guess scores ln(10) = 2.3
    assert divergence_bound(100) == pytest.approx(100 * math.log(100))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(model_name="resnet50"), "unknown model 'resnet50'"),
        (dict(recipe="sota"), "unknown recipe 'sota'"),
        (dict(epochs=0), "epochs must be a positive integer"),
        (dict(epochs=-3), "epochs must be a positive integer"),
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(dataset="mnist"), "unknown dataset 'mnist'"),
        (dict(model_options={"num_tokens": 8}), "has no option 'num_tokens'"),
        (dict(width=-1.0), "width=-1.0 is invalid"),
        (dict(width=float("inf")), "width=inf is invalid; expected a finite number > 0"),
        (dict(model_options={"width": float("inf")}), "width=inf is invalid"),
        (dict(schedule_clock="wall"), "unknown schedule clock 'wall'"),
        (dict(schedule_clock="time"), "schedule_clock='time' needs a time budget"),
        (dict(torch_fast_paths=True), "needs the PyTorch backend; this is 'tensorflow'"),
    ],
)
def test_bad_options_fail_before_loading_data(kwargs, message, tmp_path, monkeypatch):
    # No data and no data source: validation must fail before any loading is attempted.
    monkeypatch.setenv("VT_EDU_DATA", str(tmp_path / "missing"))
    args = dict(model_name="cnn", epochs=1, run_dir=tmp_path / "r", verbose=0)
    args.update(kwargs)
    with pytest.raises(TrainingError, match=message):
        train(**args)
    assert not (tmp_path / "r").exists()


def test_batch_larger_than_the_data_fails_before_training(tmp_path):
    with pytest.raises(TrainingError, match="batch_size=64 is larger than the 40 training images"):
        train(**{**TINY, "batch_size": 64}, epochs=1, run_dir=tmp_path / "r")


def test_time_budget_stops_training(tmp_path):
    result = train(recipe="seed", epochs=5, run_dir=tmp_path / "r", time_budget_minutes=1e-6, **TINY)
    assert result.metrics["stopped_early"] == "time budget"
    assert result.metrics["epochs_completed"] == 1


class _SlowBatches(keras.callbacks.Callback):
    """Makes every training batch take at least ``seconds`` (the sleep is inside the batch's time)."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_begin(self, batch, logs=None):
        time.sleep(self.seconds)


def test_time_budget_is_never_exceeded(tmp_path):
    # 8 epochs of 4 batches of >= 0.5 s would take over 16 s; the budget is 12 s. The run
    # must stop before the batch that would cross it, not after (which ended 0.07 s past
    # the hour in a recorded 60-minute run). Only the first batch cannot be stopped before:
    # its graph trace (2 s here, more on a busy host) must stay well inside the budget.
    budget = 12.0
    result = train(recipe="seed", epochs=8, run_dir=tmp_path / "r", time_budget_minutes=budget / 60,
                   callbacks=[_SlowBatches(0.5)], **TINY)
    assert result.metrics["stopped_early"] == "time budget"
    assert result.metrics["train_seconds"] <= budget
    # It used the budget (the first batch, which traces the graph, is part of it).
    assert result.metrics["train_seconds"] >= budget / 2


def test_budget_stop_rule_does_not_predict_from_the_tracing_batch(tmp_path, monkeypatch):
    # The stop rule on a fake clock, the logger driven directly.
    from vt_edu.training import callbacks
    from vt_edu.training.callbacks import RunLogger

    clock = [0.0]
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: clock[0])
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    def run_until_stop(first, budget=12.0):
        """A first batch of ``first`` seconds (graph tracing on a slow host), then ordinary
        0.3 s batches: the batches run and the training seconds when the rule stopped."""
        logger = RunLogger(train_images=10, budget_seconds=budget)
        logger.set_model(model)
        model.stop_training = False
        logger.on_train_begin()
        logger.on_epoch_begin(0)
        for batch, seconds in enumerate([first] + [0.3] * 100):
            clock[0] += seconds
            logger.on_train_batch_end(batch)
            if model.stop_training:
                return batch + 1, logger.elapsed()
        raise AssertionError("the budget never stopped the run")

    # Ordinary batches predict the next one (times the safety factor): the run goes on to
    # within 1.5 batches of 12 s, stopping at 11.6 s, where 11.6 s + 1.5 x 0.3 s would
    # cross it (had the 5 s batch predicted the next 20, it would have stopped near 7 s).
    batches, seconds = run_until_stop(first=5.0)
    assert seconds == pytest.approx(11.6) and 12.0 - 1.5 * 0.3 <= seconds <= 12.0, (batches, seconds)
    # With only the first batch known, it is the prediction (no factor: it already traced the
    # graph): 7 s + 7 s would cross 12 s.
    assert run_until_stop(first=7.0) == (1, pytest.approx(7.0))


def test_time_clock_schedule_follows_the_training_time(tmp_path):
    # The budget stands for 2 epochs of the cosine; batches take >= 0.3 s, 4 per epoch,
    # so the 20 s budget outlasts the cap of 4 epochs (about 5 s, plus the first batch's
    # graph trace: 2 s here, more on a busy host): training goes past the planned 2
    # epochs and the rate follows the clock, not the step count (by steps, the rate
    # would be 0 from the end of epoch 2 on).
    budget, planned = 20.0, 2
    recipe = get_recipe("fast", clip_norm=None)
    result = train(recipe=recipe, epochs=planned, run_dir=tmp_path / "t", time_budget_minutes=budget / 60,
                   schedule_clock="time", callbacks=[_SlowBatches(0.3)], **TINY)
    assert result.metrics["schedule_clock"] == "time"
    assert result.config["schedule_clock"] == "time"
    assert planned < result.metrics["epochs_completed"] <= 2 * planned
    peak = recipe.scaled_learning_rate(TINY["batch_size"])
    schedule = WarmupCosineSchedule(peak, 4, total_epochs=planned, warmup_epochs=1)
    spent = 0.0
    for row in result.history:
        # The rate of an epoch's last batch was set at its start: one batch (<= 1.5 s
        # here, with the sleep) before the end of the epoch's training time.
        spent += row["train_seconds"]
        start, end = (planned * min(t / budget, 1.0) for t in (max(spent - 1.5, 0.0), spent))
        rates = sample_lr(schedule, np.linspace(start, end, 50))[1]
        assert rates.min() - 1e-6 <= row["lr"] <= rates.max() + 1e-6, (row, start, end)


def test_time_clock_epoch_cap_and_position(tmp_path):
    from vt_edu.training.callbacks import ClockSchedule

    class FakeLogger:
        budget_seconds = 60.0

        def __init__(self, elapsed):
            self.seconds = elapsed

        def elapsed(self):
            return self.seconds

    schedule = WarmupCosineSchedule(0.1, 5, total_epochs=10, warmup_epochs=1)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.5), "mse")
    for elapsed, expected in [(3.0, 0.05), (30.0, 0.05 * (1 + math.cos(math.pi * 4 / 9))), (60.0, 0.0), (90.0, 0.0)]:
        callback = ClockSchedule(schedule, 10, FakeLogger(elapsed))
        callback.set_model(model)
        callback.on_train_batch_begin(0)
        assert float(model.optimizer.learning_rate) == pytest.approx(expected, abs=1e-6), elapsed


def test_advanced_recipe_with_ema_randaugment_and_distillation(tmp_path):
    teacher = train(recipe="seed", epochs=1, run_dir=tmp_path / "teacher", **TINY)
    student = train(
        recipe="paper-advanced", epochs=2, run_dir=tmp_path / "student",
        teacher=tmp_path / "teacher" / "model.keras", **{**TINY, "model_name": "resnet18", "width": 0.125},
    )
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["model_options"] == {"dropout": 0.2, "stochastic_depth": 0.9, "width": 0.125}
    assert student.metrics["distilled_from"].endswith("model.keras")
    assert all(math.isfinite(row["loss"]) for row in student.history)
    # At batch 10 the scaled peak (0.16 * 10 / 2048) is below the warm-up start 0.01,
    # so the start is capped at the peak and the warm-up is flat.
    peak = 0.16 * 10 / 2048
    assert student.history[0]["lr"] == pytest.approx(peak, rel=1e-5)
    assert teacher.metrics["recipe"] == "seed"


def test_mixed_precision_option_keeps_float32_logits(tmp_path):
    default = json.loads(json.dumps(train(recipe="seed", epochs=1, run_dir=tmp_path / "fp32", **TINY).config))
    assert default["mixed_precision"] is False and default["jit_compile"] in (False, "auto")  # CPU defaults
    result = train(recipe="seed", epochs=1, run_dir=tmp_path / "mp", mixed_precision=True, **TINY)
    assert result.model.get_layer("block1_conv").compute_dtype == "float16"
    assert result.model.output.dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    assert math.isfinite(result.history[0]["loss"])


@pytest.mark.parametrize("recipe", ["fast", "paper-advanced"])
def test_weight_decay_leaves_the_logit_scale_alone(recipe):
    """Steps with zero gradients are pure weight decay: they shrink K but not log_logit_scale."""
    from vt_edu.layers import TokenTransformer
    from vt_edu.training.optimizers import make_optimizer
    from vt_edu.training.recipes import get_recipe

    layer = TokenTransformer(cosine_attention=True)
    layer(np.ones((1, 4, 8), "float32"))
    optimizer, _ = make_optimizer(get_recipe(recipe), 128, 10, 2)
    before = {v.path: keras.ops.convert_to_numpy(v).copy() for v in layer.trainable_variables}
    for _ in range(3):  # the warm-up's first rate is 0
        optimizer.apply([keras.ops.zeros_like(v) for v in layer.trainable_variables], layer.trainable_variables)
    after = {v.path: keras.ops.convert_to_numpy(v) for v in layer.trainable_variables}
    scale = next(p for p in before if p.endswith("log_logit_scale"))
    k = next(p for p in before if p.endswith("/k"))
    np.testing.assert_array_equal(after[scale], before[scale])
    assert np.abs(after[k]).sum() < np.abs(before[k]).sum()
