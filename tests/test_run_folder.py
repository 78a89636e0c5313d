"""Run folders: what overwrite may delete, folders that are not a run's, and crashes at
the worst moments of a checkpoint (simulated by exceptions where a kill could land;
tests/test_kill_resume.py sends real SIGKILLs).
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from vt_edu.training import TrainingError, train
from vt_edu.training.run_folder import RunFolder, atomic_write_text, read_history

CLASSES = [f"c{i}" for i in range(10)]


def _arrays(n_train=40, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    y_train, y_test = np.arange(n_train) % 10, np.arange(n_test) % 10
    x_train = np.clip(rng.normal(20 * y_train[:, None, None, None] + 30, 30, (n_train, 32, 32, 3)), 0, 255)
    x_test = np.clip(rng.normal(20 * y_test[:, None, None, None] + 30, 30, (n_test, 32, 32, 3)), 0, 255)
    return (x_train.astype(np.uint8), y_train), (x_test.astype(np.uint8), y_test), CLASSES


TINY = dict(model_name="cnn", width=0.25, batch_size=10, data=_arrays(), verbose=0, recipe="fast")
REPEATED = ("epoch", "lr", "loss", "accuracy", "top5", "val_loss", "val_accuracy", "val_top5")


class _Crash(Exception):
    pass


def _same_history(a, b):
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for ra, rb in zip(a, b):
        assert {k: rb[k] for k in REPEATED} == pytest.approx({k: ra[k] for k in REPEATED}, rel=1e-5, abs=1e-6)


# ------------------------------------------------------------------ what is a run folder
def test_overwrite_deletes_only_what_a_run_writes(tmp_path):
    run = tmp_path / "thesis"
    train(epochs=1, run_dir=run, **TINY)
    (run / "thesis.tex").write_text("\\chapter{Results}")
    (run / "src").mkdir()
    (run / "src" / "main.py").write_text("print('mine')")
    result = train(epochs=2, run_dir=run, overwrite=True, **TINY)
    assert (run / "thesis.tex").read_text() == "\\chapter{Results}"
    assert (run / "src" / "main.py").read_text() == "print('mine')"
    assert result.metrics["epochs_completed"] == 2 and json.loads((run / "config.json").read_text())["epochs"] == 2


@pytest.mark.parametrize("content", ["[1, 2, 3]", "not json at all", '{"name": "my project"}'])
def test_a_config_json_that_is_not_a_runs_is_refused_even_with_overwrite(tmp_path, content):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.json").write_text(content)
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(TrainingError, match="config.json' is not a vt_edu run's config.json"):
        train(epochs=1, run_dir=folder, overwrite=True, **TINY)
    assert (folder / "config.json").read_text() == content and (folder / "notes.txt").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "notes.txt"]


def test_a_folder_with_files_but_no_run_is_refused(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "history.csv").write_text("date,price\n2020-01-01,3.5\n")
    for overwrite in (False, True):
        with pytest.raises(TrainingError, match="holds files but no run.*history.csv"):
            train(epochs=1, run_dir=folder, overwrite=overwrite, **TINY)
    assert sorted(p.name for p in folder.iterdir()) == ["history.csv"]


def test_a_foreign_history_csv_gives_a_clear_error(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("date,price\n2020-01-01,3.5\n")
    with pytest.raises(TrainingError, match="is not a run's history.*date, price"):
        read_history(path)


def test_a_failed_start_leaves_no_folder_that_blocks_the_next_run(tmp_path):
    # width=inf passes "> 0"; it must fail before anything is written.
    with pytest.raises(TrainingError, match="width=inf is invalid; expected a finite number"):
        train(epochs=1, run_dir=tmp_path / "r", **{**TINY, "width": float("inf")})
    assert not (tmp_path / "r").exists()
    # A folder holding only a config.json (nothing trained) is taken over by other settings.
    RunFolder(tmp_path / "r").write_config({"model": "cnn", "dataset": "x", "recipe": {}, "epochs": 9, "seed": 0,
                                            "backend": "tensorflow"})
    assert train(epochs=1, run_dir=tmp_path / "r", **TINY).metrics["epochs_completed"] == 1


def test_atomic_writes_leave_the_old_file_when_the_writer_dies(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    atomic_write_text(path, "old")

    def dying_replace(src, dst):
        raise _Crash("killed before the rename")

    monkeypatch.setattr("vt_edu.training.run_folder.os.replace", dying_replace)
    with pytest.raises(_Crash):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"


# ------------------------------------------------------------------ crashes in a checkpoint
def test_a_crash_before_the_commit_retrains_that_epoch_once(tmp_path, monkeypatch):
    # Epoch 2's weights and optimizer state are written, but the checkpoint is not
    # committed: the rerun must train epoch 2 from epoch 1's state, not on top of it.
    whole = train(epochs=3, run_dir=tmp_path / "whole", **TINY)
    real_commit = RunFolder.commit_checkpoint

    def commit_but_die_at_epoch_2(self, staging, state):
        if state["epoch"] == 2:
            raise _Crash("killed between the weights and the metadata")
        return real_commit(self, staging, state)

    monkeypatch.setattr(RunFolder, "commit_checkpoint", commit_but_die_at_epoch_2)
    with pytest.raises(_Crash):
        train(epochs=3, run_dir=tmp_path / "run", **TINY)
    monkeypatch.setattr(RunFolder, "commit_checkpoint", real_commit)
    assert [r["epoch"] for r in read_history(tmp_path / "run" / "history.csv")] == [1]

    seen = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append((epoch, int(np.asarray(self.model.optimizer.iterations))))

    resumed = train(epochs=3, run_dir=tmp_path / "run", callbacks=[Probe()], **TINY)
    assert seen == [(1, 4), (2, 8)]
    assert int(np.asarray(resumed.model.optimizer.iterations)) == 12
    _same_history(whole.history, resumed.history)


def test_a_crash_after_the_commit_loses_no_history_row(tmp_path, monkeypatch):
    # Killed after epoch 2's commit, before history.csv followed it: the rerun starts at
    # epoch 3 and history.csv has epoch 2's row again.
    whole = train(epochs=3, run_dir=tmp_path / "whole", **TINY)
    real_publish = RunFolder.publish

    def die_publishing_epoch_2(self, checkpoint):
        if checkpoint.epoch == 2:
            raise _Crash("killed before history.csv was written")
        return real_publish(self, checkpoint)

    monkeypatch.setattr(RunFolder, "publish", die_publishing_epoch_2)
    with pytest.raises(_Crash):
        train(epochs=3, run_dir=tmp_path / "run", **TINY)
    monkeypatch.setattr(RunFolder, "publish", real_publish)
    assert [r["epoch"] for r in read_history(tmp_path / "run" / "history.csv")] == [1]
    resumed = train(epochs=3, run_dir=tmp_path / "run", **TINY)
    _same_history(whole.history, resumed.history)
    _same_history(whole.history, read_history(tmp_path / "run" / "history.csv"))


def test_leftovers_of_a_killed_writer_are_ignored(tmp_path):
    # What a kill in the middle of writing leaves: a partial checkpoint folder with an
    # empty state.json, and half-written temporary files. The run resumes from the
    # committed checkpoint.
    whole = train(epochs=2, run_dir=tmp_path / "whole", **TINY)

    class StopAfterEpoch1(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise _Crash("stop")

    run = tmp_path / "run"
    with pytest.raises(_Crash):
        train(epochs=2, run_dir=run, callbacks=[StopAfterEpoch1()], **TINY)
    partial = run / "backup" / "epoch-0002.tmp"
    partial.mkdir()
    (partial / "state.json").write_text("")
    (partial / "variables.npz").write_bytes(b"\0" * 10)
    (run / ".tmp-history.csv").write_text("")
    (run / ".tmp-metrics.json").write_text("{")
    resumed = train(epochs=2, run_dir=run, **TINY)
    _same_history(whole.history, resumed.history)
    assert sorted(p.name for p in run.iterdir()) == [
        "best.weights.h5", "config.json", "history.csv", "metrics.json", "model.keras"]


def test_the_untrained_model_of_a_run_has_the_weights_training_started_from(tmp_path):
    # A VT-ResNet (its options in config.json) whose initial weights a callback records.
    start = {}

    class Initial(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            start.update({w.path: np.array(w.numpy()) for w in self.model.weights})

    settings = dict(TINY, model_name="vt_resnet18", width=0.125, model_options={"num_tokens": 4})
    train(epochs=1, run_dir=tmp_path / "run", callbacks=[Initial()], **settings)
    untrained = RunFolder(tmp_path / "run").untrained_model()
    trained = keras.models.load_model(tmp_path / "run" / "model.keras", compile=False)
    assert untrained.get_layer("vt_m1_tokenizer").num_tokens == 4
    assert {w.path for w in untrained.weights} == set(start)
    assert all(np.array_equal(w.numpy(), start[w.path]) for w in untrained.weights)
    assert not all(np.array_equal(w.numpy(), start[w.path]) for w in trained.weights)  # training moved them
    with pytest.raises(TrainingError, match="holds no run"):
        RunFolder(tmp_path / "empty").untrained_model()
