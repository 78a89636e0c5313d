"""The experiment panel (chapter 10): :class:`ExperimentPanel` trains and compares runs.

>>> panel = ExperimentPanel(run_root="/tmp/runs")
>>> panel.set(model="cnn", epochs=1, max_train_images=500)
>>> panel.train()                                 # same as clicking Train
>>> panel.runs[-1]["top1"], panel.message
>>> panel.set(model="vt_fpn", train_scenes=500)  # a segmentation model: CIFAR scenes, scored by mIoU
>>> panel.train()
>>> panel.runs[-1]["mean_iou"]

It builds a :class:`~vt_edu.training.RunConfig` from its controls (:meth:`ExperimentPanel.run_config`),
calls :func:`vt_edu.training.train` with it and reads its run folder; the rows, table and
curves come from :mod:`vt_edu.widgets.reports`.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import math
import shutil
import time
from pathlib import Path

import ipywidgets as widgets
from matplotlib.figure import Figure

from vt_edu.config import DATA_ENV, by_profile, cache_dir
from vt_edu.names import CLASSIFICATION_MODELS, DATASETS, DEFAULT_NUM_TOKENS, SEGMENTATION_MODELS, task_of
from vt_edu.widgets.panel import LIVE_NOTE, Panel
from vt_edu.widgets.reports import curves_figure, run_row, runs_table_html

__all__ = ["MODELS", "ExperimentPanel"]

#: The model choice: classification models, then segmentation models (which train on scenes).
MODELS = (*CLASSIFICATION_MODELS, *SEGMENTATION_MODELS)
# Models with a number of visual tokens L (the "tokens L" control), and the one whose tokenizer is a choice.
_TOKEN_MODELS = ("vt_resnet18", "vt_fpn")
_TOKENIZER_MODELS = ("vt_resnet18",)
# The controls that only one task uses.
_TASK_SETTINGS = {"classification": ("max_train_images", "max_test_images"),
                  "segmentation": ("train_scenes", "test_scenes")}


def _one_line(error, limit: int = 300) -> str:
    """An exception's message on one line, cut after a sentence when it is long."""
    text = " ".join(str(error).split()) or type(error).__name__
    if len(text) <= limit:
        return text
    cut = text.rfind(". ", 0, limit)
    return text[: cut + 1] if cut > 40 else text[: limit - 1] + "…"


@functools.cache
def _code_fingerprint() -> str:
    """A digest of the package's source, so that a cached run of an older model or
    training code is not mistaken for a run of the current one."""
    digest = hashlib.sha1()
    package = Path(__file__).resolve().parents[1]  # all of vt_edu, not only the panels
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:.2f} %"


def _describe(**values) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _progress_callback(panel: "ExperimentPanel"):
    import keras

    class PanelProgress(keras.callbacks.Callback):
        """Moves the panel's progress bar per batch and redraws its curves per epoch."""

        def on_train_begin(self, logs=None):
            self.steps = int(self.params.get("steps") or 1)
            self.epochs = int(self.params.get("epochs") or 1)
            self.every = max(1, self.steps // 25)
            self.epoch = 0
            panel.progress.max = self.steps * self.epochs

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            panel.progress.value = epoch * self.steps
            panel.status.value = f"epoch {epoch + 1}/{self.epochs}"

        def on_train_batch_end(self, batch, logs=None):
            if (batch + 1) % self.every and batch + 1 != self.steps:
                return
            panel.progress.value = self.epoch * self.steps + batch + 1
            loss = (logs or {}).get("loss")
            loss_text = f", loss {float(loss):.3f}" if loss is not None else ""
            panel.status.value = f"epoch {self.epoch + 1}/{self.epochs}, batch {batch + 1}/{self.steps}{loss_text}"

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            panel._live_history.append(row)
            panel._show_live()

    return PanelProgress()


class ExperimentPanel(Panel):
    """Choose a model, data and recipe; train; compare the runs in a table.

    Args:
        run_root: folder for the run folders (default ``<cache>/runs/experiment_panel``,
            see :func:`vt_edu.config.cache_dir`). A run with the same settings (and
            the same vt_edu source code) is not trained twice:
            :func:`~vt_edu.training.train` returns the finished run.
        data: instead of loading CIFAR, a dict ``{dataset: arrays}`` or a callable
            ``dataset -> arrays`` giving ``((x_train, y_train), (x_test, y_test), names)``.
        scene_data: for the segmentation models, instead of making scenes with
            :func:`vt_edu.data.load_scenes`, a dict ``{dataset: SceneData}`` or a callable
            ``dataset -> SceneData``.
        seed: the runs' seed.
        jit_compile: passed to :func:`~vt_edu.training.train` (``None``: its default).
        distribution: passed to :func:`~vt_edu.training.train`: ``"data-parallel"``
            trains on all local devices (JAX backend only; e.g. a Colab TPU).
        reference_lines: ``{label: top-1}`` drawn on the accuracy curves.
        **settings: initial control values (see :meth:`set`); unset ones come from
            :meth:`default_settings`, which depend on the profile.

    A model of :data:`vt_edu.names.SEGMENTATION_MODELS` trains on CIFAR scenes (its task
    follows from the model): ``train_scenes``/``test_scenes`` set how many (0: the
    engine's default) and the image limits do not apply; its runs are scored by test
    mean IoU and pixel accuracy.

    Attributes:
        runs: list of :func:`run_row` dicts, one per finished run, in order.
        train_button: the Train button (``train_button.click()`` trains).
        widget: the whole panel (a ``VBox``).
    """

    SETTINGS = ("model", "dataset", "recipe", "batch_size", "learning_rate", "epochs", "num_tokens", "tokenizer",
                "width", "max_train_images", "max_test_images", "train_scenes", "test_scenes")

    def __init__(self, run_root=None, data=None, seed: int = 0, jit_compile=None, reference_lines=None,
                 distribution=None, scene_data=None, **settings):
        from vt_edu.models.vt_resnet import TOKENIZER_CHOICES
        from vt_edu.training import list_recipes

        self.run_root = Path(run_root) if run_root is not None else cache_dir() / "runs" / "experiment_panel"
        self.data = data
        self.scene_data = scene_data
        self.seed = int(seed)
        self.jit_compile = jit_compile
        self.distribution = distribution
        self.reference_lines = dict(reference_lines or {})
        self.runs: list = []
        self.last_error: BaseException | None = None
        self._message = ""
        self._live_history: list = []
        self._live_title = ""
        self._busy = False
        self._holding = False

        values = self.default_settings()
        unknown = sorted(set(settings) - set(self.SETTINGS))
        if unknown:
            raise ValueError(f"ExperimentPanel has no setting {', '.join(unknown)}; settings: {', '.join(self.SETTINGS)}.")
        style = {"description_width": "initial"}
        small = widgets.Layout(width="180px")
        self.model = widgets.Dropdown(options=MODELS, value=values["model"], description="model", style=style)
        self.dataset = widgets.Dropdown(options=DATASETS, value=values["dataset"], description="data", style=style)
        self.recipe = widgets.Dropdown(options=list_recipes(), value=values["recipe"], description="recipe", style=style)
        self.epochs = widgets.IntText(value=values["epochs"], description="epochs", style=style, layout=small)
        self.batch_size = widgets.IntText(value=values["batch_size"], description="batch size", style=style, layout=small)
        self.learning_rate = widgets.FloatText(value=0.1, description="peak lr", style=style, layout=small)
        self.num_tokens = widgets.IntText(value=values["num_tokens"], description="tokens L", style=style, layout=small)
        self.tokenizer = widgets.Dropdown(options=TOKENIZER_CHOICES, value=values["tokenizer"], description="tokenizer",
                                          style=style)
        self.width = widgets.FloatText(value=values["width"], description="width", style=style, layout=small)
        self.max_train_images = widgets.IntText(value=values["max_train_images"] or 0, description="train images (0: all)",
                                                style=style, layout=widgets.Layout(width="240px"))
        self.max_test_images = widgets.IntText(value=values["max_test_images"] or 0, description="test images (0: all)",
                                               style=style, layout=widgets.Layout(width="240px"))
        self.train_scenes = widgets.IntText(value=values["train_scenes"] or 0, description="train scenes (0: default)",
                                            style=style, layout=widgets.Layout(width="240px"))
        self.test_scenes = widgets.IntText(value=values["test_scenes"] or 0, description="test scenes (0: default)",
                                           style=style, layout=widgets.Layout(width="240px"))
        self.train_button = widgets.Button(description="Train", button_style="primary", icon="play")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="", layout=widgets.Layout(width="300px"))
        self.status = widgets.Label(value="")
        self.message_area = widgets.HTML(value="")
        self.output = widgets.Output()
        self.table = widgets.HTML(value=runs_table_html([]))
        self.widget = widgets.VBox([
            widgets.HBox([self.model, self.dataset, self.recipe]),
            widgets.HBox([self.epochs, self.batch_size, self.learning_rate]),
            widgets.HBox([self.num_tokens, self.tokenizer, self.width]),
            widgets.HBox([self.max_train_images, self.max_test_images]),
            widgets.HBox([self.train_scenes, self.test_scenes]),
            widgets.HBox([self.train_button, self.progress, self.status]),
            self.message_area,
            self.output,
            self.table,
            widgets.HTML(f"<small>{LIVE_NOTE}</small>"),
        ])
        self._sync_model_controls()
        self._reset_learning_rate()
        self.model.observe(lambda change: self._sync_model_controls(), names="value")
        self.recipe.observe(self._on_recipe_or_batch, names="value")
        self.batch_size.observe(self._on_recipe_or_batch, names="value")
        self.train_button.on_click(self._on_click)
        if values.get("learning_rate") is not None:
            self.learning_rate.value = values["learning_rate"]
        if settings:
            self.set(**settings)

    # -- settings
    @staticmethod
    def default_settings() -> dict:
        """Defaults by profile: quick (a CPU) trains small and briefly; full (a GPU) at full scale."""
        return {
            "model": "vt_resnet18",
            "dataset": "cifar10",
            "recipe": by_profile(quick="seed", full="fast"),
            "epochs": by_profile(quick=3, full=15),
            "batch_size": by_profile(quick=128, full=128),
            "learning_rate": None,  # the recipe's, scaled to the batch size
            "num_tokens": DEFAULT_NUM_TOKENS,
            "tokenizer": "recurrent",
            "width": by_profile(quick=0.25, full=1.0),
            "max_train_images": by_profile(quick=5000, full=None),
            "max_test_images": by_profile(quick=1000, full=None),
            "train_scenes": by_profile(quick=1000, full=None),  # None: the engine's default
            "test_scenes": by_profile(quick=200, full=None),
        }

    def _sync_model_controls(self) -> None:
        model = self.model.value
        self.num_tokens.disabled = model not in _TOKEN_MODELS
        self.tokenizer.disabled = model not in _TOKENIZER_MODELS
        for task, names in _TASK_SETTINGS.items():
            for name in names:
                getattr(self, name).disabled = task != task_of(model)

    def _reset_learning_rate(self) -> None:
        from vt_edu.training import get_recipe

        batch = self.batch_size.value
        if isinstance(batch, int) and batch > 0:
            self.learning_rate.value = float(get_recipe(self.recipe.value).scaled_learning_rate(batch))

    def _on_recipe_or_batch(self, change) -> None:
        if not self._holding:
            self._reset_learning_rate()

    def set(self, **values) -> None:
        """Set controls by name (see ``SETTINGS``). ``recipe`` and ``batch_size`` reset
        ``learning_rate`` to the recipe's rate for that batch size unless
        ``learning_rate`` is given too. ``None`` for an image limit means all images,
        for a number of scenes the default.

        Raises:
            ValueError: an unknown setting or a choice a dropdown does not offer.
        """
        unknown = sorted(set(values) - set(self.SETTINGS))
        if unknown:
            raise ValueError(f"ExperimentPanel has no setting {', '.join(unknown)}; settings: {', '.join(self.SETTINGS)}.")
        for name in self.SETTINGS:
            if name not in values:
                continue
            control, value = getattr(self, name), values[name]
            if name in (*_TASK_SETTINGS["classification"], *_TASK_SETTINGS["segmentation"]) and value is None:
                value = 0
            if isinstance(control, widgets.Dropdown) and value not in control.options:
                raise ValueError(f"{name} must be one of {', '.join(map(str, control.options))}; got {value!r}.")
            if name == "learning_rate" and value is None:
                self._reset_learning_rate()
                continue
            control.value = value

    def settings(self) -> dict:
        """The current control values."""
        return {name: getattr(self, name).value for name in self.SETTINGS}

    # -- messages
    @property
    def message(self) -> str:
        """The text of the panel's message area (the last result or problem)."""
        return self._message

    def _say(self, text: str, problem: bool = False) -> None:
        self._message = text
        color = "#b00020" if problem else "#1b5e20"
        prefix = "⚠ " if problem else ""
        self.message_area.value = f"<span style='color:{color}'>{prefix}{html.escape(text)}</span>"

    # -- training
    def _run_dir(self, settings: dict) -> Path:
        task = task_of(settings["model"])
        # A control of the other task is disabled: its value does not make another run.
        unused = {name for other, names in _TASK_SETTINGS.items() if other != task for name in names}
        used = {name: value for name, value in settings.items() if name not in unused}
        hook = self.data if task == "classification" else self.scene_data
        key = json.dumps({**used, "seed": self.seed, "data_hook": hook is not None,
                          "code": _code_fingerprint()}, sort_keys=True)
        digest = hashlib.sha1(key.encode()).hexdigest()[:8]
        s = settings
        return self.run_root / f"{s['model']}-{s['dataset']}-{s['recipe']}-e{s['epochs']}-b{s['batch_size']}-{digest}"

    def _given_data(self, dataset: str, task: str):
        """The data the panel was given for ``dataset`` and ``task`` (``None``: train loads them)."""
        hook, what = (self.data, "arrays") if task == "classification" else (self.scene_data, "scenes")
        if hook is None:
            return None
        if callable(hook):
            return hook(dataset)
        if dataset not in hook:
            from vt_edu.data import SourceNotFoundError

            raise SourceNotFoundError(f"this panel was given no {dataset} {what} (only {', '.join(hook)}).")
        return hook[dataset]

    def _check(self, s: dict) -> str | None:
        """A problem with the settings that :func:`train` would not phrase for a panel, or None."""
        lr = s["learning_rate"]
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            return f"the learning rate must be a number > 0, got {lr!r}."
        if s["model"] in _TOKEN_MODELS and s["num_tokens"] < 1:
            return f"{s['model']} needs at least one token: L={s['num_tokens']} is impossible."
        if task_of(s["model"]) == "segmentation":
            limit, what, zero = s["train_scenes"], "scenes", "the default"
            if s["train_scenes"] < 0 or s["test_scenes"] < 0:
                return "numbers of scenes must be 0 (the default) or a positive number."
        else:
            limit, what, zero = s["max_train_images"], "images", "all images"
            if s["max_train_images"] < 0 or s["max_test_images"] < 0:
                return "image limits must be 0 (all images) or a positive number."
        if 0 < limit < s["batch_size"]:
            return (f"batch size {s['batch_size']} is larger than the {limit} training {what}; "
                    f"lower the batch size or use more {what} (0: {zero}).")
        return None

    def run_config(self, settings: dict | None = None, given_data: bool = False):
        """The :class:`~vt_edu.training.RunConfig` of the controls (or of ``settings``, a
        :meth:`settings` dict): what Train runs, with this panel's seed, XLA and distribution.

        The task is the model's; a segmentation run counts scenes (the image limits do not
        apply; 0 scenes: the engine's default), a classification run images (0: all).
        A peak learning rate other than the recipe's for the batch size replaces the recipe's.

        Args:
            settings: control values (default the current ones).
            given_data: whether :func:`~vt_edu.training.train` is handed the data (the
                panel's ``data``/``scene_data``) instead of loading them.

        Raises:
            TrainingError: a setting the run cannot take (see :class:`RunConfig`).
        """
        from vt_edu.training import RunConfig, get_recipe

        s = self.settings() if settings is None else settings
        options = {"num_tokens": s["num_tokens"]} if s["model"] in _TOKEN_MODELS else {}
        if s["model"] in _TOKENIZER_MODELS:
            options["tokenizer"] = s["tokenizer"]
        if task_of(s["model"]) == "segmentation":
            counts = {"num_train": s["train_scenes"], "num_test": s["test_scenes"]}
            limits = {"scenes": {key: value for key, value in counts.items() if value} or None}
        else:
            limits = {"max_train_images": s["max_train_images"] or None, "max_test_images": s["max_test_images"] or None}
        recipe = get_recipe(s["recipe"])
        if not math.isclose(s["learning_rate"], recipe.scaled_learning_rate(s["batch_size"]), rel_tol=1e-9):
            recipe = get_recipe(recipe, learning_rate=float(s["learning_rate"]), reference_batch=None)
        return RunConfig(s["model"], s["dataset"], recipe=recipe, epochs=s["epochs"], batch_size=s["batch_size"],
                         seed=self.seed, width=s["width"], model_options=options, jit_compile=self.jit_compile,
                         distribution=self.distribution, given_data=given_data, **limits)

    def train(self):
        """Train with the current settings (what the Train button does).

        Appends a :func:`run_row` to :attr:`runs` and updates the table and curves; a
        problem (bad setting, data not available, NaN loss) is shown as one line in
        the message area instead, and nothing is added.

        Returns:
            The new row, or ``None`` when nothing was trained.
        """
        from vt_edu.data import DataError, DownloadError
        from vt_edu.models.registry import ModelConfigError
        from vt_edu.training import RecipeError, TrainingError, train

        if self._busy:
            self._say("a run is in progress; wait for it to finish.", problem=True)
            return None
        s = self.settings()
        problem = self._check(s)
        if problem:
            self._say(problem, problem=True)
            return None
        run_dir = self._run_dir(s)
        segmentation = task_of(s["model"]) == "segmentation"
        self._busy = True
        self.train_button.disabled = True
        self.last_error = None
        self._live_history = []
        on = f"{s['dataset']} scenes" if segmentation else s["dataset"]
        self._live_title = f"{s['model']} on {on}, {s['recipe']}: training…"
        self.progress.value = 0
        self.progress.bar_style = ""
        self._say(f"training {s['model']} on {on} ({_describe(epochs=s['epochs'], batch=s['batch_size'])})…")
        self.status.value = "loading data"
        started = time.perf_counter()
        try:
            # The settings are checked before any data are made or loaded.
            hook = self.scene_data if segmentation else self.data
            config = self.run_config(s, given_data=hook is not None)
            data = self._given_data(s["dataset"], config.task)
            result = train(
                config,
                data=data,
                run_dir=run_dir,
                overwrite=True,  # a folder named for these settings holding others is stale
                verbose=0,
                callbacks=[_progress_callback(self)],
            )
        except DownloadError as error:
            self._fail(error, run_dir, f"{s['dataset']} is not available here: it cannot be downloaded and "
                                       f"{DATA_ENV} holds no copy of it. Point {DATA_ENV} at a local copy (chapter 1).")
            return None
        except DataError as error:
            self._fail(error, run_dir, f"cannot load {s['dataset']}: {_one_line(error)}")
            return None
        except (TrainingError, ModelConfigError, RecipeError, ValueError) as error:
            self._fail(error, run_dir, _one_line(error))
            return None
        except KeyboardInterrupt as error:
            self._fail(error, run_dir, "interrupted; press Train again with the same settings to continue the run.")
            raise
        except Exception as error:  # noqa: BLE001 - a panel shows every failure as a message
            self._fail(error, run_dir, f"training failed ({type(error).__name__}): {_one_line(error)}")
            return None
        finally:
            self._busy = False
            self.train_button.disabled = False

        row = run_row(result.metrics, result.config, result.history, run_dir=str(result.run_dir), settings=s)
        cached = result.model is None
        if any(r.get("run_dir") == row["run_dir"] for r in self.runs):
            self._say(f"these settings were already trained; see the table (run folder {row['run_dir']}).")
            self._after_run(done=True)
            return None
        self.runs.append(row)
        self.progress.max = max(1, self.progress.max)
        self.progress.value = self.progress.max
        self.progress.bar_style = "success"
        origin = "read from an earlier identical run" if cached else f"{time.perf_counter() - started:.0f} s"
        if row["task"] == "segmentation":
            scores, what = f"mIoU {_percent(row['mean_iou'])}, pixel accuracy {_percent(row['pixel_accuracy'])}", "scenes"
        else:
            scores, what = f"top-1 {_percent(row['top1'])}, top-5 {_percent(row['top5'])}", "images"
        self._say(f"{row['model']} on {row['dataset']}: {scores} after {row['epochs']} epoch(s) on "
                  f"{row['images']:,} {what} ({origin}).")
        self._after_run(done=True)
        return row

    def _fail(self, error, run_dir: Path, text: str) -> None:
        self.last_error = error
        self.progress.bar_style = "danger"
        self.status.value = ""
        self._say(text, problem=True)
        # A run folder without a finished epoch (e.g. the model could not be built) holds nothing to resume.
        if run_dir.is_dir() and not (run_dir / "history.csv").exists():
            shutil.rmtree(run_dir, ignore_errors=True)

    def _after_run(self, done: bool) -> None:
        self.status.value = "done" if done else ""
        self.table.value = self.table_html()
        self.show_figure(self.curves_figure())

    def _show_live(self) -> None:
        row = {"model": self.model.value, "task": task_of(self.model.value), "recipe": self.recipe.value, "options": "",
               "history": self._live_history}
        self.show_figure(curves_figure([*self.runs, row], self.reference_lines, title=self._live_title))

    # -- results
    def table_html(self) -> str:
        """The comparison table of :attr:`runs` as HTML."""
        return runs_table_html(self.runs, empty="No runs yet: press Train.")

    def curves_figure(self, title: str | None = None) -> Figure:
        """Test/training score (top-1 or mIoU) and loss per epoch of every run in :attr:`runs`."""
        return curves_figure(self.runs, self.reference_lines, title=title)

    def _on_click(self, button) -> None:
        try:
            self.train()
        except KeyboardInterrupt:
            pass
