"""The chapters' panels (vt_edu.widgets), driven headless: no browser, no kernel.

Training runs use the tutorial CNN on a tiny self-made CIFAR-10 (tests/conftest.py),
so the whole file takes well under a minute of CPU time.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from vt_edu.config import DATA_ENV
from vt_edu.training import WarmupExponentialSchedule, get_recipe, sample_lr
from vt_edu.training.scene_data import DEFAULT_SCENE_SEED, SCENE_DEFAULTS
from vt_edu.widgets import (
    TABLE_COLUMNS,
    ExperimentPanel,
    SchedulePanel,
    curves_figure,
    recipe_schedule,
    run_row,
    runs_table_html,
    table_columns,
)

# ------------------------------------------------------------------ SchedulePanel


def _at(x, y, epoch):
    index = int(np.flatnonzero(np.isclose(x, epoch))[0])
    return y[index]


def test_schedule_panel_plots_the_paper_advanced_schedule_at_batch_2048():
    panel = SchedulePanel()  # default preset: paper-advanced
    panel.set(batch_size=2048)
    assert panel.learning_rate.value == pytest.approx(0.16)  # 0.16 at the reference batch
    x, y = panel.plotted()
    # Warm-up endpoints 0.01 -> 0.16 over 5 epochs, then x0.9875 per epoch.
    assert _at(x, y, 0) == pytest.approx(0.01, rel=1e-6)
    assert _at(x, y, 3) == pytest.approx(0.01 + 0.15 * 3 / 5, rel=1e-6)
    assert _at(x, y, 5) == pytest.approx(0.16, rel=1e-6)
    for k in (1, 2, 10, 100, 395):
        assert _at(x, y, 5 + k) == pytest.approx(0.16 * 0.9875**k, rel=1e-5)
    # ... and the plotted line is the schedule class itself, sample for sample.
    reference = WarmupExponentialSchedule(0.16, steps_per_epoch=50_000 // 2048, warmup_epochs=5,
                                          start_learning_rate=0.01, decay=0.9875)
    _, expected = sample_lr(reference, x)
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_schedule_panel_defaults_scale_the_peak_to_batch_256():
    panel = SchedulePanel()
    assert panel.preset.value == "paper-advanced" and panel.batch_size.value == 256
    assert panel.decay.value == pytest.approx(0.9875)
    x, y = panel.plotted()
    assert x[-1] == 400
    assert _at(x, y, 5) == pytest.approx(0.16 * 256 / 2048, rel=1e-6)
    assert _at(x, y, 0) == pytest.approx(0.01, rel=1e-6)
    fig = panel.figure()
    assert fig.axes and fig.axes[0].get_yscale() == "log"


def test_schedule_panel_controls_override_the_preset():
    panel = SchedulePanel()
    panel.set(batch_size=2048, warmup_epochs=2, decay=0.95, epochs=20)
    x, y = panel.plotted()
    assert x[-1] == 20
    assert _at(x, y, 2) == pytest.approx(0.16, rel=1e-6)
    assert _at(x, y, 12) == pytest.approx(0.16 * 0.95**10, rel=1e-5)
    # Moving a single slider redraws too (the observers call redraw).
    panel.decay.value = 0.99
    x, y = panel.plotted()
    assert _at(x, y, 12) == pytest.approx(0.16 * 0.99**10, rel=1e-5)


@pytest.mark.parametrize("preset", ["seed", "paper-default", "paper-advanced", "fast"])
def test_schedule_panel_presets_plot_what_training_uses(preset):
    panel = SchedulePanel(preset=preset)
    recipe = get_recipe(preset)
    x, y = panel.plotted()
    _, expected = sample_lr(recipe_schedule(recipe), x)
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert x[-1] == recipe.epochs
    assert panel.warmup_epochs.disabled == (recipe.schedule not in ("warmup_exponential", "warmup_cosine"))


def test_schedule_panel_step_and_constant_presets():
    panel = SchedulePanel(preset="paper-default")
    x, y = panel.plotted()
    assert _at(x, y, 29) == pytest.approx(0.1) and _at(x, y, 30) == pytest.approx(0.01)
    assert _at(x, y, 60) == pytest.approx(0.001, rel=1e-5)
    panel.set(preset="seed")
    _, y = panel.plotted()
    assert np.allclose(y, 1e-3)


def test_schedule_panel_refuses_unknown_settings():
    panel = SchedulePanel()
    with pytest.raises(ValueError, match="no setting"):
        panel.set(momentum=0.5)
    with pytest.raises(ValueError, match="batch_size"):
        panel.set(batch_size=100)
    with pytest.raises(ValueError, match="preset"):
        panel.set(preset="nope")


# --------------------------------------------------------------- ExperimentPanel


@pytest.fixture
def tiny_source(tiny_cifar, monkeypatch):
    """VT_EDU_DATA -> a tiny CIFAR-10 folder (10 classes x 12 train / 4 test images); no downloads."""
    path, _ = tiny_cifar.image_folder(per_class=(12, 4))
    monkeypatch.setenv(DATA_ENV, str(path))

    def no_network(*args, **kwargs):
        raise Exception("no network in tests")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    return path


def _panel(tmp_path, **settings):
    values = dict(model="cnn", dataset="cifar10", recipe="seed", epochs=2, batch_size=32, width=0.25,
                  max_train_images=0, max_test_images=0)
    values.update(settings)
    return ExperimentPanel(run_root=tmp_path / "runs", jit_compile=False, **values)


def test_train_button_adds_a_run_to_the_table(tiny_source, tmp_path):
    panel = _panel(tmp_path)
    panel.train_button.click()
    assert len(panel.runs) == 1, panel.message
    row = panel.runs[0]
    assert row["model"] == "cnn" and row["dataset"] == "cifar10" and row["recipe"] == "seed"
    assert row["epochs"] == 2 and row["images"] == 120
    assert 0 <= row["top1"] <= row["top5"] <= 1
    assert row["params"] > 0 and row["macs"] > 0 and row["train_seconds"] > 0 and row["images_per_second"] > 0
    assert [h["epoch"] for h in row["history"]] == [1, 2]
    table = panel.table.value
    assert table == panel.table_html()
    assert "<td style='text-align:left;padding:2px 8px'>cnn</td>" in table
    assert f"{100 * row['top1']:.2f} %" in table
    assert "top-1" in panel.message and "⚠" not in panel.message_area.value
    assert panel.progress.value == panel.progress.max
    # The run folder is under run_root, not the working directory.
    run_dir = tmp_path / "runs" / row["run_dir"].split("/")[-1]
    assert json.loads((run_dir / "metrics.json").read_text())["top1"] == row["top1"]
    # The figure shows one accuracy curve per run.
    fig = panel.curves_figure()
    assert len(fig.axes[0].lines) == 2  # test (solid) + training (dotted)


def test_a_second_model_adds_a_second_row_and_same_settings_are_not_duplicated(tiny_source, tmp_path):
    panel = _panel(tmp_path, epochs=1)
    panel.train()
    panel.set(width=0.5)
    panel.train()
    assert [r["options"] for r in panel.runs] == ["width 0.25", "width 0.5"]
    panel.set(width=0.25)
    assert panel.train() is None
    assert len(panel.runs) == 2 and "already" in panel.message
    assert panel.table_html().count("<tr>") == 3  # heading + 2 runs


def test_zero_epochs_is_a_message_not_a_run(tiny_source, tmp_path):
    panel = _panel(tmp_path)
    panel.set(epochs=0)
    panel.train_button.click()
    assert panel.runs == []
    assert panel.message == "epochs must be a positive integer, got 0."
    assert "⚠" in panel.message_area.value
    assert not list((tmp_path / "runs").glob("*/config.json"))


@pytest.mark.parametrize("limit", [0, 60])
def test_batch_larger_than_the_data_is_a_message(tiny_source, tmp_path, limit):
    panel = _panel(tmp_path, batch_size=512, max_train_images=limit)
    panel.train()
    assert panel.runs == []
    assert "batch" in panel.message and "larger than the" in panel.message
    assert "\n" not in panel.message and "Traceback" not in panel.message


def test_learning_rate_follows_the_recipe_and_batch_but_can_be_overridden(tmp_path):
    panel = ExperimentPanel(run_root=tmp_path, recipe="paper-default", batch_size=256)
    assert panel.learning_rate.value == pytest.approx(0.1)
    panel.set(batch_size=128)
    assert panel.learning_rate.value == pytest.approx(0.05)
    panel.set(recipe="paper-advanced")
    assert panel.learning_rate.value == pytest.approx(0.16 * 128 / 2048)
    panel.set(recipe="seed", batch_size=64, learning_rate=3e-4)
    assert panel.learning_rate.value == pytest.approx(3e-4)
    panel.set(learning_rate=-1)
    assert panel.train() is None and "learning rate" in panel.message


def test_tokens_only_for_vt_resnet_and_impossible_tokens_are_messages(tiny_source, tmp_path):
    panel = _panel(tmp_path, model="cnn")
    assert panel.num_tokens.disabled and panel.tokenizer.disabled
    panel.set(model="vt_resnet18")
    assert not panel.num_tokens.disabled and not panel.tokenizer.disabled
    panel.set(num_tokens=0)
    panel.train()
    assert panel.runs == [] and "L=0" in panel.message
    # The pooling tokenizer needs a square grid that divides the 8x8 feature map:
    # the model refuses L=5 when it is built, and the panel says so in one line.
    panel.set(num_tokens=5, tokenizer="pooling", epochs=1, width=0.125)
    panel.train()
    assert panel.runs == []
    assert "5" in panel.message and "\n" not in panel.message, panel.message
    assert not any((tmp_path / "runs").glob("*")), "a failed build leaves no run folder"


def test_cifar100_unavailable_offline_is_a_message(tiny_source, tmp_path):
    panel = _panel(tmp_path, dataset="cifar100")
    panel.train()
    assert panel.runs == []
    assert panel.message.startswith("cifar100 is not available here")
    assert DATA_ENV in panel.message
    from vt_edu.data import DataError

    assert isinstance(panel.last_error, DataError)


def test_data_hook_and_unknown_settings(tmp_path):
    rng = np.random.default_rng(0)
    arrays = ((rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), np.arange(40) % 10),
              (rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), np.arange(20) % 10),
              [f"class{k}" for k in range(10)])
    panel = ExperimentPanel(run_root=tmp_path, data={"cifar10": arrays}, jit_compile=False, model="cnn", recipe="seed",
                            epochs=1, batch_size=20, width=0.25, max_train_images=0, max_test_images=0)
    row = panel.train()
    assert row is not None and row["images"] == 40 and row["test_images"] == 20
    panel.set(dataset="cifar100")
    assert panel.train() is None and "cifar100" in panel.message
    with pytest.raises(ValueError, match="no setting"):
        panel.set(colour="red")
    with pytest.raises(ValueError, match="model must be one of"):
        panel.set(model="alexnet")


class _FakeTraining:
    """Stands in for vt_edu.training.train: records the RunConfig it is given (``config``), the
    fields the panel gave that config (``given``) and train()'s other arguments, drives the
    panel's progress callback through two epochs, and returns a finished run of the config's task."""

    def __init__(self, fail=None):
        self.calls, self.fail, self.given = [], fail, []

    def run_config(self, *args, **fields):
        from vt_edu.training.run_config import RunConfig

        self.given.append(fields)
        return RunConfig(*args, **fields)

    def __call__(self, config, dataset=None, **kwargs):
        from vt_edu.training import RunResult
        from vt_edu.training.run_config import RunConfig  # vt_edu.training.RunConfig is run_config() here

        assert isinstance(config, RunConfig) and dataset is None  # the panel calls train(config, ...)
        self.calls.append({"config": config, "given": self.given[-1], **kwargs})
        if self.fail is not None:
            raise self.fail
        segmentation = config.segmentation
        history = []
        for callback in kwargs["callbacks"]:
            callback.set_params({"steps": 3, "epochs": 2})
            callback.on_train_begin()
            for epoch in range(2):
                callback.on_epoch_begin(epoch)
                for batch in range(3):
                    callback.on_train_batch_end(batch, {"loss": 1.0})
                logs = {"loss": 1.0 - 0.2 * epoch, "val_loss": 1.1 - 0.2 * epoch, "accuracy": 0.5, "val_accuracy": 0.6}
                logs.update({"mean_iou": 0.2, "val_mean_iou": 0.3 + 0.1 * epoch} if segmentation else {"top5": 0.9})
                callback.on_epoch_end(epoch, logs)
                history.append({"epoch": epoch + 1, **logs})
        scores = ({"task": "segmentation", "pixel_accuracy": 0.6, "mean_iou": 0.4} if segmentation
                  else {"top1": 0.6, "top5": 0.9})
        metrics = {"model": config.model, "dataset": config.dataset, "recipe": "seed", "epochs_completed": 2,
                   "train_images": 64, "test_images": 32, **scores}
        record = {"model": config.model, "model_options": {"width": config.width, **config.model_options}}
        run_dir = Path(kwargs["run_dir"])
        return RunResult(run_dir=run_dir, config=record, metrics=metrics, history=history, model=object())


@pytest.fixture
def fake_training(monkeypatch):
    import vt_edu.training

    fake = _FakeTraining()
    monkeypatch.setattr(vt_edu.training, "train", fake)
    monkeypatch.setattr(vt_edu.training, "RunConfig", fake.run_config)  # records the fields the panel gives
    return fake


def test_the_model_choice_offers_the_segmentation_models(tmp_path):
    from vt_edu.names import CLASSIFICATION_MODELS, SEGMENTATION_MODELS

    panel = ExperimentPanel(run_root=tmp_path, model="cnn")
    assert tuple(panel.model.options) == (*CLASSIFICATION_MODELS, *SEGMENTATION_MODELS)
    assert panel.train_scenes.disabled and panel.test_scenes.disabled and not panel.max_train_images.disabled
    panel.set(model="vt_fpn")
    assert not panel.train_scenes.disabled and panel.max_train_images.disabled and panel.max_test_images.disabled
    assert not panel.num_tokens.disabled and panel.tokenizer.disabled  # VT-FPN has L but no tokenizer choice
    panel.set(model="fpn")
    assert panel.num_tokens.disabled and panel.tokenizer.disabled


def test_a_segmentation_model_trains_on_scenes_and_reports_mean_iou(fake_training, tmp_path):
    panel = _panel(tmp_path, model="vt_fpn", num_tokens=8, train_scenes=64, test_scenes=0, max_train_images=100)
    row = panel.train()
    assert row is not None, panel.message
    (call,) = fake_training.calls
    config = call["config"]
    # The RunConfig takes the task from the model: the panel gives none.
    assert config.model == "vt_fpn" and config.task == "segmentation" and "task" not in call["given"]
    assert call["given"]["scenes"] == {"num_train": 64}  # 0 test scenes: the engine's default
    assert dict(config.scenes) == {**SCENE_DEFAULTS, "seed": DEFAULT_SCENE_SEED, "num_train": 64}
    assert config.max_train_images is None and config.max_test_images is None
    assert dict(config.model_options) == {"num_tokens": 8} and call["data"] is None and not config.given_data
    assert row["task"] == "segmentation" and row["mean_iou"] == 0.4 and row["options"] == "L=8, width 0.25"
    assert panel.message.startswith("vt_fpn on cifar10: mIoU 40.00 %, pixel accuracy 60.00 % after 2 epoch(s) on 64 scenes")
    heading = panel.table_html().split("</thead>")[0]
    assert "mIoU" in heading and "top-1" not in heading
    assert panel.progress.value == panel.progress.max and panel.progress.bar_style == "success"
    acc_ax = panel.curves_figure().axes[0]
    assert list(acc_ax.lines[0].get_ydata()) == pytest.approx([30, 40]) and acc_ax.get_ylabel() == "mIoU (%)"
    # The live curves of a segmentation run plot mIoU too.
    live = panel._live_history
    assert [h["val_mean_iou"] for h in live] == pytest.approx([0.3, 0.4])
    # A classification run next to it: both scores in one table, and train() gets no scene options.
    panel.set(model="cnn", max_train_images=0)
    row = panel.train()
    call = fake_training.calls[-1]
    assert row["task"] == "classification" and "scenes" not in call["given"] and call["config"].scenes is None
    assert "top-1 60.00 %" in panel.message
    heading = panel.table_html().split("</thead>")[0]
    assert all(name in heading for name in ("top-1", "mIoU", "pixel acc."))
    assert panel.curves_figure().axes[0].get_ylabel() == "top-1 / mIoU (%)"


def test_segmentation_settings_problems_are_messages(fake_training, tmp_path):
    panel = _panel(tmp_path, model="fpn", batch_size=64, train_scenes=32)
    assert panel.train() is None
    assert panel.message == ("batch size 64 is larger than the 32 training scenes; lower the batch size or use more "
                             "scenes (0: the default).")
    panel.set(train_scenes=-1)
    assert panel.train() is None and "numbers of scenes" in panel.message
    panel.set(model="vt_fpn", train_scenes=0, num_tokens=0)
    assert panel.train() is None and "L=0" in panel.message
    assert fake_training.calls == []
    # What train() refuses is one line in the panel, as for classification.
    from vt_edu.training import TrainingError

    fake_training.fail = TrainingError("recipe 'paper-advanced' augments with randaugment, which would not move masks.")
    panel.set(num_tokens=4)
    assert panel.train() is None and panel.runs == []
    assert panel.message.startswith("recipe 'paper-advanced'") and "⚠" in panel.message_area.value


def test_segmentation_run_folders_ignore_the_image_limits_and_the_cached_run_is_not_duplicated(fake_training,
                                                                                               tmp_path):
    panel = _panel(tmp_path, model="fpn", train_scenes=100)
    first = panel._run_dir(panel.settings())
    panel.set(max_train_images=500)  # a disabled control of the other task
    assert panel._run_dir(panel.settings()) == first
    panel.set(train_scenes=200)
    assert panel._run_dir(panel.settings()) != first
    panel.set(model="cnn")
    cnn = panel._run_dir(panel.settings())
    panel.set(train_scenes=300)
    assert panel._run_dir(panel.settings()) == cnn
    panel.set(model="fpn", train_scenes=100)
    panel.train()
    assert panel.train() is None and "already trained" in panel.message and len(panel.runs) == 1


def test_scene_data_hook_goes_to_train_for_segmentation_only(fake_training, tmp_path):
    scenes = object()  # a SceneData stand-in: the panel passes it on untouched
    panel = _panel(tmp_path, model="vt_fpn", scene_data={"cifar10": scenes}, train_scenes=0,
                   test_scenes=0)
    panel.train()
    call = fake_training.calls[-1]
    assert call["data"] is scenes and call["config"].scenes is None and call["config"].given_data
    panel.set(dataset="cifar100")
    assert panel.train() is None and "no cifar100 scenes" in panel.message
    panel.set(model="cnn", dataset="cifar10")
    panel.train()
    assert fake_training.calls[-1]["data"] is None


# ------------------------------------------------------------- rows and results


def test_run_rows_make_the_table_and_the_curves():
    metrics = {"model": "vt_resnet18", "dataset": "cifar10", "recipe": "fast", "epochs_completed": 2, "top1": 0.5,
               "top5": 0.9, "params": 790000, "macs": 37e6, "train_seconds": 12.5, "images_per_second": 80.0,
               "train_images": 500, "date": "2026-01-02T03:04:05+00:00",
               "hardware": {"cpu": "Some CPU", "cpu_cores": 2, "gpu": None}}
    history = [{"epoch": 1, "val_accuracy": 0.4, "val_loss": 1.7}, {"epoch": 2, "val_accuracy": 0.5, "val_loss": 1.5}]
    vt = run_row(metrics, {"model_options": {"num_tokens": 8, "width": 0.25}}, history)
    assert vt["options"] == "L=8, width 0.25" and vt["hardware"] == "Some CPU (2 cores)" and vt["date"] == "2026-01-02"
    assert [h["val_accuracy"] for h in vt["history"]] == [0.4, 0.5]
    rows = [vt, run_row({"model": "cnn", "top1": 0.3}), run_row({"model": "vit", "top1": 0.25, "params": 200000})]
    assert rows[2]["params"] == 200000
    html = runs_table_html(rows)
    assert html.count("<tr>") == 4 and "50.00 %" in html
    fig = curves_figure(rows, reference_lines={"students' CNN": 0.6937})
    assert len(fig.axes[0].lines) == 2  # one run with a history + one reference line


def test_run_row_formats_missing_values():
    row = run_row({"model": "cnn", "top1": 0.1})
    assert row["top5"] is None and row["history"] == []
    assert "–" in runs_table_html([row])
    assert "No runs" in runs_table_html([])


def _segmentation_row(model="vt_fpn", **metrics):
    values = {"model": model, "task": "segmentation", "dataset": "cifar10", "recipe": "seed", "epochs_completed": 2,
              "pixel_accuracy": 0.812, "mean_iou": 0.4567, "test_loss": 0.6, "train_images": 300, "params": 1e6}
    values.update(metrics)
    history = [{"epoch": 1, "val_accuracy": 0.7, "val_mean_iou": 0.3, "mean_iou": 0.25, "val_loss": 0.9, "loss": 1.0},
               {"epoch": 2, "val_accuracy": 0.812, "val_mean_iou": 0.4567, "mean_iou": 0.4, "val_loss": 0.6, "loss": 0.7}]
    return run_row(values, {"model_options": {"num_tokens": 8}}, history)


def _cells(table: str) -> list:
    """The table's rows as lists of cell texts (the heading first)."""
    import re

    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)]


def test_segmentation_rows_show_mean_iou_and_pixel_accuracy():
    row = _segmentation_row()
    assert row["task"] == "segmentation" and row["options"] == "L=8"
    assert (row["mean_iou"], row["pixel_accuracy"], row["top1"], row["top5"]) == (0.4567, 0.812, None, None)
    heading, cells = _cells(runs_table_html([row]))
    assert "mIoU" in heading and "pixel acc." in heading and "train scenes" in heading
    assert "top-1" not in heading and "top-5" not in heading
    assert cells[heading.index("mIoU")] == "45.67 %" and cells[heading.index("pixel acc.")] == "81.20 %"
    # A run folder without "task" (written before the option) is classified by its model.
    assert run_row({"model": "fpn", "mean_iou": 0.5})["task"] == "segmentation"
    assert run_row({"model": "cnn", "top1": 0.5})["task"] == "classification"


def test_a_table_mixing_tasks_leaves_scores_that_do_not_apply_empty():
    rows = [run_row({"model": "cnn", "top1": 0.61, "top5": 0.95, "train_images": 500}), _segmentation_row(),
            _segmentation_row("fpn", mean_iou=None)]
    table = _cells(runs_table_html(rows))
    heading = table[0]
    assert [heading.index(name) for name in ("top-1", "top-5", "mIoU", "pixel acc.")] == [6, 7, 8, 9]
    assert "train images" in heading and len(table) == 4
    cnn, vt_fpn, fpn = ({name: cells[heading.index(name)] for name in ("top-1", "top-5", "mIoU", "pixel acc.")}
                        for cells in table[1:])
    assert cnn == {"top-1": "61.00 %", "top-5": "95.00 %", "mIoU": "", "pixel acc.": ""}
    assert vt_fpn == {"top-1": "", "top-5": "", "mIoU": "45.67 %", "pixel acc.": "81.20 %"}
    assert fpn["mIoU"] == "–" and fpn["top-1"] == ""  # missing (–) differs from not applicable (empty)
    # Classification-only tables keep their columns.
    assert table_columns(rows[:1]) == table_columns([]) == TABLE_COLUMNS


def test_curves_plot_test_mean_iou_of_segmentation_runs():
    seg = _segmentation_row()
    fig = curves_figure([seg])
    acc_ax = fig.axes[0]
    solid, dotted = acc_ax.lines
    assert list(solid.get_ydata()) == pytest.approx([30.0, 45.67]) and list(dotted.get_ydata()) == pytest.approx([25, 40])
    assert acc_ax.get_ylabel() == "mIoU (%)"
    metrics = {"model": "cnn", "top1": 0.5}
    cnn = run_row(metrics, None, [{"epoch": 1, "val_accuracy": 0.4, "val_loss": 1.7},
                                  {"epoch": 2, "val_accuracy": 0.5, "val_loss": 1.5}])
    fig = curves_figure([cnn, seg])
    acc_ax = fig.axes[0]
    assert [list(line.get_ydata()) for line in acc_ax.lines] == [pytest.approx([40, 50]), pytest.approx([30, 45.67]),
                                                                   pytest.approx([25, 40])]
    assert acc_ax.get_ylabel() == "top-1 / mIoU (%)"
    labels = [text.get_text() for text in fig.legends[0].texts]
    assert any(label.endswith("(mIoU)") for label in labels) and any(label.endswith("(top-1)") for label in labels)


def test_run_folders_depend_on_settings_and_on_the_code(tmp_path, monkeypatch):
    import vt_edu.widgets.experiment_panel as module  # owns _code_fingerprint

    panel = ExperimentPanel(run_root=tmp_path, model="cnn")
    first = panel._run_dir(panel.settings())
    assert first.parent == tmp_path and first == panel._run_dir(panel.settings())
    panel.set(epochs=panel.epochs.value + 1)
    assert panel._run_dir(panel.settings()) != first
    panel.set(epochs=panel.epochs.value - 1)
    monkeypatch.setattr(module, "_code_fingerprint", lambda: "changed-code")
    assert panel._run_dir(panel.settings()) != first  # a cached run of older code is not reused
