"""A run folder: the files one :func:`~vt_edu.training.train` run writes, written so that a
kill at any instant leaves a folder that resumes to a consistent state.

Layout::

    config.json        every setting of the run (what identifies it); written first
    history.csv        one row per completed epoch (derived from the newest checkpoint)
    best.weights.h5    weights of the epoch with the best test top-1, or for segmentation the best
                       test mean IoU (from the newest checkpoint)
    model.keras        the final model
    metrics.json       the final results; written last, it marks the run finished
    backup/epoch-K/    the newest checkpoint while the run is unfinished (see below)

Every file is written atomically: into a temporary name in the same folder (``.tmp-``
prefix), flushed to disk, then renamed over the target, so a reader sees the old file
or the new one, never a part. A checkpoint is ONE unit: the model's variables (weights,
BatchNorm statistics, dropout seed states), the optimizer's (iteration count, moments,
EMA), the epoch count and the history rows so far are written into
``backup/epoch-K.tmp/`` and committed by renaming that folder to ``backup/epoch-K``
(older checkpoints are deleted afterwards). A run resumes from the newest committed
checkpoint; ``history.csv`` and ``best.weights.h5`` are then re-derived from it, so they
always agree with the weights.

A folder is classified (:meth:`RunFolder.status`) as ``new`` (absent, empty, or holding
only a ``config.json`` that nothing was trained with), ``resumable``/``finished`` (a
run of the same settings), ``different`` (a run of other settings), or refused with a
:class:`TrainingError` as foreign (files that are not a run's, or a ``config.json``
that is not a run's). Clearing (``overwrite``) removes only the names listed in
:data:`RUN_FILES` and the run's temporary files, never other files.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vt_edu.training.errors import TrainingError

__all__ = ["ALL_HISTORY_FIELDS", "HISTORY_FIELDS", "RUN_FILES", "SEGMENTATION_HISTORY_FIELDS", "Checkpoint", "RunFolder", "read_history"]

HISTORY_FIELDS = (
    "epoch",
    "lr",
    "loss",
    "accuracy",
    "top5",
    "val_loss",
    "val_accuracy",
    "val_top5",
    "train_seconds",
    "epoch_seconds",
    "images_per_second",
)
#: The columns of a segmentation run's ``history.csv``: pixel accuracy and mean IoU, no top-5.
SEGMENTATION_HISTORY_FIELDS = (
    "epoch",
    "lr",
    "loss",
    "accuracy",
    "mean_iou",
    "val_loss",
    "val_accuracy",
    "val_mean_iou",
    "train_seconds",
    "epoch_seconds",
    "images_per_second",
)
#: Every column a history row may have.
ALL_HISTORY_FIELDS = tuple(dict.fromkeys(HISTORY_FIELDS + SEGMENTATION_HISTORY_FIELDS))
CONFIG, HISTORY, METRICS, BEST_WEIGHTS, MODEL, BACKUP = (
    "config.json", "history.csv", "metrics.json", "best.weights.h5", "model.keras", "backup",
)
#: Every name a run writes into its folder (besides temporary ``.tmp-*`` files).
RUN_FILES = (CONFIG, HISTORY, METRICS, BEST_WEIGHTS, MODEL, BACKUP)
TMP_PREFIX = ".tmp-"
# Keys every run's config.json has: a config.json without them is someone else's file.
RUN_CONFIG_KEYS = ("model", "dataset", "recipe", "epochs", "seed", "backend")
# Files of a checkpoint folder.
VARIABLES, STATE, PUBLISHED_WEIGHTS = "variables.npz", "state.json", "published.weights.h5"

NEW, RESUMABLE, FINISHED, DIFFERENT = "new", "resumable", "finished", "different"


# ----------------------------------------------------------------------- durable files
def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace(tmp: Path, target: Path) -> None:
    """Flush ``tmp`` and rename it over ``target``, durably."""
    _fsync_file(tmp)
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a kill leaves the old content or the new, never a part."""
    path = Path(path)
    tmp = path.with_name(TMP_PREFIX + path.name)
    tmp.write_text(text)
    _replace(tmp, path)


def atomic_save(save, path: Path) -> None:
    """``save(tmp_path)`` (e.g. ``model.save_weights``), then rename the file to ``path``.
    The temporary name keeps ``path``'s suffix, which Keras' savers check."""
    path = Path(path)
    tmp = path.with_name(TMP_PREFIX + path.name)
    save(tmp)
    _replace(tmp, path)


def atomic_copy(source: Path, target: Path) -> None:
    atomic_save(lambda tmp: shutil.copyfile(source, tmp), target)


# ---------------------------------------------------------------------------- history
def history_fields(rows: list) -> tuple:
    """The columns of a ``history.csv`` of ``rows``: :data:`SEGMENTATION_HISTORY_FIELDS` when
    the rows hold a mean IoU (a segmentation run), else :data:`HISTORY_FIELDS`."""
    if any("val_mean_iou" in row or "mean_iou" in row for row in rows):
        return SEGMENTATION_HISTORY_FIELDS
    return HISTORY_FIELDS


def history_csv(rows: list) -> str:
    """``rows`` (dicts with :func:`history_fields` keys) as the text of a ``history.csv``."""
    fields = history_fields(rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in fields})
    return out.getvalue()


def read_history(path: Path) -> list:
    """The rows of a run folder's ``history.csv`` (``epoch`` as int, the rest as floats); ``[]`` if absent.

    Raises:
        TrainingError: the file is not a run's history (other columns or values).
    """
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        fields = reader.fieldnames or []
    try:
        if "epoch" not in fields or not set(fields) <= set(ALL_HISTORY_FIELDS):
            raise ValueError
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v not in (None, "")}
                for row in rows]
    except (TypeError, ValueError):
        raise TrainingError(
            f"{str(path)!r} is not a run's history (columns {', '.join(fields) or 'none'}; expected "
            f"{', '.join(HISTORY_FIELDS)}, or for segmentation {', '.join(SEGMENTATION_HISTORY_FIELDS)}); "
            "move it away or choose another run folder."
        ) from None


# -------------------------------------------------------------------------- checkpoints
@dataclass
class Checkpoint:
    """A committed checkpoint folder ``backup/epoch-K`` and its ``state.json``.

    ``state`` holds ``epoch`` (epochs completed), ``history`` (their rows),
    ``training_done`` (no further epoch is to be trained: the last epoch or the time
    budget was reached), ``stopped_by_budget`` and the variable paths of ``variables.npz``.
    """

    path: Path
    state: dict

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"])

    @property
    def history(self) -> list:
        return list(self.state["history"])

    def restore(self, model) -> None:
        """Assign the saved model and optimizer variables to ``model`` (compiled, with
        its optimizer built)."""
        with np.load(self.path / VARIABLES) as saved:
            for group, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
                names = self.state["variables"][group]
                if len(names) != len(variables):
                    raise TrainingError(
                        f"the checkpoint {str(self.path)!r} holds {len(names)} {group} variables, the model "
                        f"{len(variables)}; use another run folder or overwrite=True (--overwrite)."
                    )
                for i, variable in enumerate(variables):
                    value = saved[f"{group}/{i}"]
                    if tuple(value.shape) != tuple(variable.shape):
                        raise TrainingError(
                            f"the checkpoint {str(self.path)!r} does not fit the model ({names[i]}: "
                            f"{value.shape} vs {tuple(variable.shape)}); use another run folder or overwrite=True."
                        )
                    variable.assign(value)


def save_variables(model, folder: Path) -> dict:
    """Write ``model``'s and its optimizer's variables to ``folder/variables.npz``.

    Returns:
        ``{"model": [paths], "optimizer": [paths]}`` for the checkpoint's state.
    """
    import keras

    arrays, names = {}, {}
    for group, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
        names[group] = [v.path for v in variables]
        for i, variable in enumerate(variables):
            arrays[f"{group}/{i}"] = keras.ops.convert_to_numpy(variable.value)
    with open(folder / VARIABLES, "wb") as f:
        np.savez(f, **arrays)
    return names


# ----------------------------------------------------------------------------- folders
class RunFolder:
    """The folder of one run: what it holds, and atomic writes of its files.

    Args:
        path: the run folder.
    """

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def backup(self) -> Path:
        return self.path / BACKUP

    # -- classification
    def read_config(self) -> dict | None:
        """The run's ``config.json``; ``None`` if absent.

        Raises:
            TrainingError: ``config.json`` is not a run's.
        """
        path = self.file(CONFIG)
        if not path.exists():
            return None
        try:
            config = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError):
            config = None
        if not isinstance(config, dict) or not all(k in config for k in RUN_CONFIG_KEYS):
            raise TrainingError(
                f"{str(path)!r} is not a vt_edu run's config.json (a JSON object with "
                f"{', '.join(RUN_CONFIG_KEYS)} expected), so {str(self.path)!r} is not a run folder; "
                "choose another run folder (--run-dir)."
            )
        return config

    def untrained_model(self):
        """The run's model as training built it, before any step: the model and options of
        ``config.json``, built after ``keras.utils.set_random_seed(seed)`` as training does
        (the same initial weights on the same backend, in float32). The baseline that tells
        what training changed.

        Raises:
            TrainingError: the folder holds no run (no ``config.json``) or not a run's.
        """
        import keras

        from vt_edu.models import create_model

        config = self.read_config()
        if config is None:
            raise TrainingError(f"{str(self.path)!r} holds no run (no {CONFIG}).")
        keras.utils.set_random_seed(config["seed"])
        return create_model(config["model"], num_classes=config["data"]["num_classes"],
                            input_shape=tuple(config["data"]["image_shape"]), **config["model_options"])

    def _entries(self) -> list:
        return sorted(p.name for p in self.path.iterdir() if not p.name.startswith(TMP_PREFIX))

    def status(self, config: dict) -> str:
        """``"new"``, ``"resumable"``, ``"finished"`` or ``"different"`` for a run of ``config``.

        Raises:
            TrainingError: the folder is a file, or holds files but no run (its
                ``config.json`` missing or someone else's).
        """
        if not self.path.exists():
            return NEW
        if not self.path.is_dir():
            raise TrainingError(f"run folder {str(self.path)!r} is a file; choose a folder (--run-dir).")
        entries = self._entries()
        old = self.read_config()
        if old is None:
            if entries:
                shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
                raise TrainingError(
                    f"run folder {str(self.path)!r} holds files but no run (no config.json; it holds {shown}); "
                    "choose a new or empty folder (--run-dir)."
                )
            return NEW
        if old == config:
            return FINISHED if self.file(METRICS).exists() else RESUMABLE
        if entries == [CONFIG]:  # nothing was trained with the old settings: nothing to lose
            return NEW
        return DIFFERENT

    @staticmethod
    def differences(old: dict, new: dict) -> list:
        """The settings in which two configs differ."""
        return [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]

    # -- changes
    def clear(self) -> None:
        """Delete what a run writes (:data:`RUN_FILES` and temporary files), nothing else."""
        if not self.path.is_dir():
            return
        for entry in self.path.iterdir():
            if entry.name in RUN_FILES or entry.name.startswith(TMP_PREFIX):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        _fsync_dir(self.path)

    def remove_temporary_files(self) -> None:
        """Delete what a killed writer left: ``.tmp-*`` files and uncommitted checkpoints."""
        for entry in list(self.path.glob(TMP_PREFIX + "*")) + list(self.backup.glob("*.tmp")):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    def write_config(self, config: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.file(CONFIG), json.dumps(config, indent=2) + "\n")

    def write_metrics(self, metrics: dict) -> None:
        atomic_write_text(self.file(METRICS), json.dumps(metrics, indent=2) + "\n")

    def read_metrics(self) -> dict:
        return json.loads(self.file(METRICS).read_text())

    def history(self) -> list:
        return read_history(self.file(HISTORY))

    def save_model(self, model) -> None:
        atomic_save(model.save, self.file(MODEL))

    # -- checkpoints
    def checkpoints(self) -> list:
        """Committed checkpoint folders, oldest first."""
        if not self.backup.is_dir():
            return []
        found = [p for p in self.backup.glob("epoch-*") if p.is_dir() and p.name[6:].isdigit()]
        return sorted(found, key=lambda p: int(p.name[6:]))

    def latest_checkpoint(self) -> Checkpoint | None:
        """The newest committed checkpoint; ``None`` before the first epoch's commit."""
        for path in reversed(self.checkpoints()):
            try:
                return Checkpoint(path, json.loads((path / STATE).read_text()))
            except (OSError, ValueError):  # not from this version's train(): look further back
                continue
        return None

    def begin_checkpoint(self, epoch: int) -> Path:
        """An empty ``backup/epoch-K.tmp`` folder to write epoch ``K``'s checkpoint into."""
        staging = self.backup / f"epoch-{epoch:04d}.tmp"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        return staging

    def commit_checkpoint(self, staging: Path, state: dict) -> Checkpoint:
        """Write ``state.json`` into ``staging``, flush it all, and rename it to
        ``backup/epoch-K`` (the commit); then derive ``history.csv`` and
        ``best.weights.h5`` from it and delete older checkpoints."""
        (staging / STATE).write_text(json.dumps(state, indent=1) + "\n")
        for entry in staging.iterdir():
            _fsync_file(entry)
        _fsync_dir(staging)
        final = staging.with_name(staging.name[: -len(".tmp")])
        if final.exists():  # the same epoch committed by an earlier session
            shutil.rmtree(final)
        os.replace(staging, final)
        _fsync_dir(self.backup)
        checkpoint = Checkpoint(final, state)
        self.publish(checkpoint)
        for older in self.checkpoints():
            if older != final:
                shutil.rmtree(older)
        return checkpoint

    def publish(self, checkpoint: Checkpoint) -> None:
        """Make ``history.csv`` and ``best.weights.h5`` those of ``checkpoint``."""
        atomic_write_text(self.file(HISTORY), history_csv(checkpoint.history))
        if (checkpoint.path / BEST_WEIGHTS).exists():
            atomic_copy(checkpoint.path / BEST_WEIGHTS, self.file(BEST_WEIGHTS))

    def remove_checkpoints(self) -> None:
        shutil.rmtree(self.backup, ignore_errors=True)
