"""Interactive panels for the training chapters: :class:`SchedulePanel` and :class:`ExperimentPanel`.

Both panels are plain Python objects that own ipywidgets controls (ipywidgets 7.7, which
Colab ships, or 8). Every action is
an ordinary method (``set``, ``redraw``, ``train``), so the panels can be driven
without a browser: by tests, and by chapters that run a few experiments headless so
that their HTML pages show real results. Show a panel with ``display(panel)`` or as
the last expression of a cell.

In Jupyter and Colab the controls are live. In the rendered HTML book the saved
widget views show the panel's last state but do not respond (there is no kernel),
which is why each panel can also draw a static figure (:meth:`SchedulePanel.figure`,
:meth:`ExperimentPanel.curves_figure`) or table (:meth:`ExperimentPanel.table_html`).

>>> panel = SchedulePanel()                       # the paper's advanced recipe at batch 256
>>> panel.set(batch_size=2048)                    # lr follows the linear scaling rule
>>> epochs, rates = panel.plotted()               # what the plot shows: 0.01 -> 0.16, then x0.9875

>>> panel = ExperimentPanel(run_root="/tmp/runs")
>>> panel.set(model="cnn", epochs=1, max_train_images=500)
>>> panel.train()                                 # same as clicking Train
>>> panel.runs[-1]["top1"], panel.message

Learning rates are taken from the same code that trains: the schedule of
:class:`SchedulePanel` is built by :mod:`vt_edu.training.loop` from a
:class:`~vt_edu.training.Recipe` and sampled with
:func:`vt_edu.training.schedules.sample_lr`; :class:`ExperimentPanel` calls
:func:`vt_edu.training.train` and reads its run folder. Nothing here re-implements a
formula.
"""

from __future__ import annotations

import functools
import hashlib
import html
import io
import json
import math
import shutil
import time
from pathlib import Path

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from vt_edu.config import DATA_ENV, by_profile, cache_dir
from vt_edu.names import DATASETS, DEFAULT_NUM_TOKENS

__all__ = [
    "ExperimentPanel",
    "Panel",
    "SchedulePanel",
    "curves_figure",
    "recipe_schedule",
    "run_row",
    "runs_table_html",
]

MODELS = ("cnn", "resnet18", "vt_resnet18", "vit")
BATCH_SIZES = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
CIFAR_TRAIN_IMAGES = 50_000
LIVE_NOTE = "The controls are live in Jupyter or Colab; on a web page they show their last state."


# --------------------------------------------------------------------------- helpers
def _in_kernel() -> bool:
    """Whether we run inside a Jupyter kernel (where widget outputs can be shown)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _show(output: widgets.Output, fig: Figure) -> None:
    """Replace what ``output`` shows by ``fig`` (as a PNG, whatever the matplotlib backend)."""
    if not _in_kernel():
        return
    from IPython.display import Image, display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    output.clear_output(wait=True)
    with output:
        display(Image(data=buffer.getvalue(), format="png"))


def new_figure(figsize) -> Figure:
    """A figure that displays as an image in a notebook (``display(fig)`` or a cell's last
    value) but is not drawn again when the cell ends: created through pyplot, which
    activates the notebook's matplotlib backend and its display hook, then closed
    in pyplot, which only forgets it."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=figsize, layout="constrained")
    plt.close(fig)
    return fig


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
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _describe(**values) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


# ---------------------------------------------------------------------------- panels
class Panel:
    """Base of the panels: a plain object whose :attr:`widget` (a ``VBox``) is what
    ``display(panel)``, or a panel as the last expression of a cell, shows.

    Attributes:
        widget: the whole panel, set by the subclass.
        output: the ``Output`` widget that shows the panel's figure, set by the subclass.
    """

    widget: widgets.Widget
    output: widgets.Output

    def show_figure(self, fig: Figure) -> None:
        """Replace what the panel's :attr:`output` shows by ``fig`` (in a kernel only)."""
        _show(self.output, fig)

    def _ipython_display_(self, **kwargs):
        # IPython calls this for display(panel) and for a cell's last value. Passing the
        # widget on to display() lets it show itself as its ipywidgets version does:
        # ipywidgets 8 through _repr_mimebundle_, ipywidgets 7 (Colab's 7.7) through its
        # own _ipython_display_ (a widget there has no _repr_mimebundle_).
        from IPython.display import display

        display(self.widget)


# ------------------------------------------------------------------------ schedules
def recipe_schedule(recipe, batch_size: int | None = None, epochs: int | None = None,
                    train_images: int = CIFAR_TRAIN_IMAGES):
    """The learning-rate schedule :func:`vt_edu.training.train` would use.

    Args:
        recipe: a recipe name or :class:`~vt_edu.training.Recipe`.
        batch_size: default the recipe's; the peak rate scales with it (linear rule).
        epochs: default the recipe's (the cosine of ``fast`` ends at the last epoch).
        train_images: images per epoch, for the optimizer steps per epoch.

    Returns:
        A :class:`~vt_edu.training.schedules.EpochSchedule`.
    """
    from vt_edu.training import get_recipe
    from vt_edu.training.optimizers import make_schedule  # the schedule train() uses

    recipe = get_recipe(recipe)
    batch_size = recipe.batch_size if batch_size is None else int(batch_size)
    epochs = recipe.epochs if epochs is None else int(epochs)
    steps_per_epoch = max(1, int(train_images) // batch_size)
    return make_schedule(recipe, batch_size, steps_per_epoch, epochs)


class SchedulePanel(Panel):
    """Controls for a learning-rate schedule and its per-epoch plot.

    The recipe dropdown loads a preset (:data:`vt_edu.training.RECIPES`): its epochs,
    batch size, peak rate (scaled to the batch size), warm-up and decay. Changing the
    batch size rescales the peak rate by the linear scaling rule; the other controls
    then override single settings. Controls that the preset's schedule does not have
    (warm-up for ``seed``, decay for everything but ``paper-advanced``) are disabled.

    Attributes:
        preset, epochs, batch_size, learning_rate, warmup_epochs, decay, log_scale:
            the controls (ipywidgets).
        output: the ``Output`` widget holding the plot.
        widget: the whole panel (a ``VBox``).
    """

    def __init__(self, preset: str = "paper-advanced", train_images: int = CIFAR_TRAIN_IMAGES, **settings):
        from vt_edu.training import list_recipes

        self.train_images = int(train_images)
        style = {"description_width": "initial"}
        self.preset = widgets.Dropdown(options=list_recipes(), value=preset, description="recipe", style=style)
        self.epochs = widgets.IntSlider(value=1, min=1, max=500, description="epochs", continuous_update=False, style=style)
        self.batch_size = widgets.SelectionSlider(
            options=BATCH_SIZES, value=256, description="batch size", continuous_update=False, style=style
        )
        self.learning_rate = widgets.FloatLogSlider(
            value=0.1, base=10, min=-4, max=0.5, step=0.01, description="peak lr",
            readout_format=".4g", continuous_update=False, style=style,
        )
        self.warmup_epochs = widgets.FloatSlider(
            value=0, min=0, max=20, step=0.5, description="warm-up epochs", continuous_update=False, style=style
        )
        self.decay = widgets.FloatSlider(
            value=0.9875, min=0.95, max=1.0, step=0.0005, description="decay per epoch",
            readout_format=".4f", continuous_update=False, style=style,
        )
        self.log_scale = widgets.Checkbox(value=True, description="log scale", indent=False)
        self.info = widgets.HTML()
        self.output = widgets.Output()
        self.widget = widgets.VBox([
            widgets.HBox([self.preset, self.epochs, self.batch_size]),
            widgets.HBox([self.learning_rate, self.warmup_epochs, self.decay, self.log_scale]),
            self.info,
            self.output,
            widgets.HTML(f"<small>{LIVE_NOTE}</small>"),
        ])
        self._holding = False
        self._figure = None
        self._line = None
        self._load_preset(preset)
        self.preset.observe(self._on_preset, names="value")
        self.batch_size.observe(self._on_batch, names="value")
        for control in (self.epochs, self.learning_rate, self.warmup_epochs, self.decay, self.log_scale):
            control.observe(self._on_change, names="value")
        if settings:
            self.set(**settings)
        else:
            self.redraw()

    # -- state
    def _base(self):
        from vt_edu.training import get_recipe

        return get_recipe(self.preset.value)

    def _load_preset(self, name: str) -> None:
        base = self._base()
        options = base.schedule_options
        previous, self._holding = self._holding, True
        try:
            self.epochs.value = min(base.epochs, self.epochs.max)
            self.batch_size.value = base.batch_size
            self.learning_rate.value = base.scaled_learning_rate(base.batch_size)
            self.warmup_epochs.value = float(options.get("warmup_epochs", 0))
            self.decay.value = float(options.get("decay", 0.9875))
            has_warmup = base.schedule in ("warmup_exponential", "warmup_cosine")
            self.warmup_epochs.disabled = not has_warmup
            self.decay.disabled = base.schedule != "warmup_exponential"
        finally:
            self._holding = previous

    def _on_preset(self, change) -> None:
        if not self._holding:
            self._load_preset(change["new"])
            self.redraw()

    def _on_batch(self, change) -> None:
        if self._holding:
            return
        self._holding = True
        try:
            self.learning_rate.value = self._base().scaled_learning_rate(change["new"])
        finally:
            self._holding = False
        self.redraw()

    def _on_change(self, change) -> None:
        if not self._holding:
            self.redraw()

    def set(self, **values) -> None:
        """Set controls by name and redraw once.

        Order: ``preset`` first (it loads all settings), then ``batch_size`` (it
        rescales ``learning_rate``), then the rest, so ``set(preset=..., batch_size=...,
        learning_rate=...)`` ends with the values given.
        """
        names = ("preset", "batch_size", "epochs", "learning_rate", "warmup_epochs", "decay", "log_scale")
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"SchedulePanel has no setting {', '.join(unknown)}; settings: {', '.join(names)}.")
        if "preset" in values and values["preset"] not in self.preset.options:
            raise ValueError(f"preset must be one of {', '.join(self.preset.options)}, got {values['preset']!r}.")
        if "batch_size" in values and values["batch_size"] not in BATCH_SIZES:
            raise ValueError(f"batch_size must be one of {BATCH_SIZES}, got {values['batch_size']!r}.")
        self._holding = True
        try:
            for name in names:
                if name not in values:
                    continue
                if name == "preset":
                    self.preset.value = values[name]
                    self._load_preset(values[name])
                elif name == "batch_size":
                    self.batch_size.value = values[name]
                    self.learning_rate.value = self._base().scaled_learning_rate(values[name])
                else:
                    getattr(self, name).value = values[name]
        finally:
            self._holding = False
        self.redraw()

    def recipe(self):
        """The preset with this panel's settings (the peak rate as given, not rescaled)."""
        from vt_edu.training import get_recipe

        base = self._base()
        options = dict(base.schedule_options)
        if not self.warmup_epochs.disabled:
            options["warmup_epochs"] = float(self.warmup_epochs.value)
        if not self.decay.disabled:
            options["decay"] = float(self.decay.value)
        return get_recipe(
            base,
            learning_rate=float(self.learning_rate.value),
            reference_batch=None,  # the peak rate is already the one for this batch size
            schedule_options=options,
            epochs=int(self.epochs.value),
            batch_size=int(self.batch_size.value),
        )

    def schedule(self):
        """The schedule :func:`vt_edu.training.train` would build for :meth:`recipe`."""
        recipe = self.recipe()
        return recipe_schedule(recipe, recipe.batch_size, recipe.epochs, self.train_images)

    def curve(self):
        """``(epochs, learning_rates)`` sampled per epoch (finer on short schedules)."""
        from vt_edu.training import sample_lr

        epochs = int(self.epochs.value)
        points = max(1, min(20, 2000 // epochs))
        return sample_lr(self.schedule(), epochs, points_per_epoch=points)

    # -- drawing
    def figure(self) -> Figure:
        """The plot for the current settings (on a new panel: the defaults) as a Figure."""
        recipe = self.recipe()
        x, y = self.curve()
        fig = new_figure((8, 3.4))
        ax = fig.subplots()
        (self._line,) = ax.plot(x, y, color="C0", linewidth=1.8, label=f"{self.preset.value} (as set)")
        options = recipe.schedule_options
        warm = float(options.get("warmup_epochs", 0)) if recipe.schedule.startswith("warmup") else 0.0
        if warm > 0 and warm <= x[-1]:
            at = np.searchsorted(x, [0.0, warm])
            ax.plot(x[at], y[at], "o", color="C3", zorder=3)
            ax.annotate(f"start {y[at[0]]:.3g}", (x[at[0]], y[at[0]]), textcoords="offset points", xytext=(6, -12))
            ax.annotate(f"peak {y[at[1]]:.3g} at epoch {warm:g}", (x[at[1]], y[at[1]]), textcoords="offset points",
                        xytext=(6, 4))
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate")
        if self.log_scale.value and np.all(y > 0):
            ax.set_yscale("log")
            ax.set_ylim(y.min() / 1.5, y.max() * 2)
        else:
            ax.set_ylim(0, y.max() * 1.15)
        ax.set_xlim(0, x[-1])
        ax.grid(alpha=0.3)
        ax.set_title(f"{self.preset.value} at batch {recipe.batch_size}: lr per epoch ({recipe.schedule.replace('_', ' ')})")
        self._figure = fig
        return fig

    def describe(self) -> str:
        """One sentence on the current schedule, with its numbers."""
        base, recipe = self._base(), self.recipe()
        x, y = self.curve()
        if base.reference_batch is None:
            scaling = "not scaled with the batch"
        else:
            scaling = (f"{base.learning_rate:g} × {recipe.batch_size}/{base.reference_batch} = "
                       f"{base.scaled_learning_rate(recipe.batch_size):.4g} by the linear scaling rule")
        return (f"{recipe.optimizer.upper()}, peak lr {recipe.learning_rate:.4g} at batch {recipe.batch_size} "
                f"(recipe: {scaling}); lr at the last epoch ({x[-1]:g}): {y[-1]:.3g}.")

    def redraw(self) -> None:
        """Recompute the curve and show it (in a kernel)."""
        fig = self.figure()
        self.info.value = f"<small>{html.escape(self.describe())}</small>"
        self.show_figure(fig)

    def plotted(self):
        """``(x, y)`` of the line currently plotted (the epochs and learning rates)."""
        if self._line is None:
            self.redraw()
        return np.asarray(self._line.get_xdata(), float), np.asarray(self._line.get_ydata(), float)


# ------------------------------------------------------------------------- run rows
def _options_label(model: str, options: dict) -> str:
    parts = []
    if model == "vt_resnet18":
        parts.append(f"L={options.get('num_tokens', DEFAULT_NUM_TOKENS)}")
        if options.get("tokenizer", "recurrent") != "recurrent":
            parts.append(f"{options['tokenizer']} tokenizer")
        if options.get("use_projector") is False:
            parts.append("no projector")
    if options.get("width", 1.0) != 1.0:
        parts.append(f"width {options['width']:g}")
    return ", ".join(parts)


def _hardware_label(metrics: dict) -> str:
    hw = metrics.get("hardware") or {}
    if not isinstance(hw, dict):
        return str(hw)
    if hw.get("gpu"):
        return str(hw["gpu"])
    if hw.get("cpu"):
        cores = f" ({hw['cpu_cores']} cores)" if hw.get("cpu_cores") else ""
        return f"{hw['cpu']}{cores}"
    return ""


def run_row(metrics: dict, config: dict | None = None, history=None, **extra) -> dict:
    """One comparison-table row from a run's ``metrics.json`` (and ``config.json``, ``history.csv``).

    Returns:
        A dict with ``model``, ``options`` (label), ``dataset``, ``recipe``, ``epochs``
        (completed), ``batch_size``, ``learning_rate``, ``images``, ``test_images``,
        ``top1``, ``top5``, ``params``, ``macs``, ``train_seconds``,
        ``images_per_second``, ``date``, ``hardware``, ``history`` (a list of per-epoch
        dicts) and whatever ``extra`` adds.
    """
    config = config or {}
    model = metrics.get("model", config.get("model", "?"))
    options = dict(config.get("model_options") or metrics.get("model_options") or {})
    row = {
        "model": model,
        "options": _options_label(model, options),
        "model_options": options,
        "dataset": metrics.get("dataset", config.get("dataset", "?")),
        "recipe": metrics.get("recipe", (config.get("recipe") or {}).get("name", "?")),
        "epochs": metrics.get("epochs_completed", metrics.get("epochs", config.get("epochs"))),
        "batch_size": metrics.get("batch_size", config.get("batch_size")),
        "learning_rate": config.get("learning_rate", metrics.get("learning_rate")),
        "images": metrics.get("train_images"),
        "test_images": metrics.get("test_images"),
        "top1": metrics.get("top1"),
        "top5": metrics.get("top5"),
        "params": metrics.get("params"),
        "macs": metrics.get("macs"),
        "train_seconds": metrics.get("train_seconds"),
        "images_per_second": metrics.get("images_per_second"),
        "date": str(metrics.get("date", ""))[:10],
        "hardware": _hardware_label(metrics),
        "history": list(history or []),
    }
    row.update(extra)
    return row


def _fmt(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "percent":
        return f"{100 * float(value):.2f} %"
    if kind == "millions":
        return f"{float(value) / 1e6:.2f} M"
    if kind == "seconds":
        return f"{float(value):.1f}"
    if kind == "rate":
        return f"{float(value):,.0f}"
    if kind == "int":
        return f"{int(value):,}"
    return html.escape(str(value))


TABLE_COLUMNS = (
    ("model", "model", "text"),
    ("options", "options", "text"),
    ("dataset", "dataset", "text"),
    ("recipe", "recipe", "text"),
    ("epochs", "epochs", "int"),
    ("images", "train images", "int"),
    ("top1", "top-1", "percent"),
    ("top5", "top-5", "percent"),
    ("params", "params", "millions"),
    ("macs", "MACs", "millions"),
    ("train_seconds", "train s", "seconds"),
    ("images_per_second", "images/s", "rate"),
)


def runs_table_html(rows, columns=TABLE_COLUMNS, empty: str = "No runs yet.") -> str:
    """The rows as an HTML table (``columns``: ``(key, heading, format)`` triples)."""
    if not rows:
        return f"<p><em>{html.escape(empty)}</em></p>"
    head = "".join(f"<th style='text-align:right;padding:2px 8px'>{html.escape(title)}</th>" for _, title, _ in columns)
    body = []
    for row in rows:
        cells = "".join(
            f"<td style='text-align:{'left' if kind == 'text' else 'right'};padding:2px 8px'>{_fmt(row.get(key), kind)}</td>"
            for key, _, kind in columns
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        "<table class='vt-edu-runs' style='border-collapse:collapse;font-size:90%'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _label(row: dict) -> str:
    extra = f" ({row['options']})" if row.get("options") else ""
    return f"{row['model']}{extra}, {row.get('recipe', '')}"


def curves_figure(rows, reference_lines: dict | None = None, title: str | None = None) -> Figure:
    """Test top-1 and test loss per epoch of each row with a history.

    Args:
        rows: :func:`run_row` dicts.
        reference_lines: ``{label: top-1 in [0, 1]}`` drawn as dashed horizontal lines.
    """
    fig = new_figure((10, 4.2))
    acc_ax, loss_ax = fig.subplots(1, 2)
    drawn = 0
    for k, row in enumerate(rows):
        history = [h for h in row.get("history") or [] if "val_accuracy" in h]
        if not history:
            continue
        epochs = [h["epoch"] for h in history]
        color = f"C{k % 10}"
        acc_ax.plot(epochs, [100 * h["val_accuracy"] for h in history], "o-", color=color, label=_label(row))
        loss_ax.plot(epochs, [h["val_loss"] for h in history], "o-", color=color, label=_label(row))
        if "accuracy" in history[0]:
            acc_ax.plot(epochs, [100 * h["accuracy"] for h in history], ":", color=color, alpha=0.7)
        if "loss" in history[0]:
            loss_ax.plot(epochs, [h["loss"] for h in history], ":", color=color, alpha=0.7)
        drawn += 1
    for k, (label, value) in enumerate((reference_lines or {}).items()):
        acc_ax.axhline(100 * value, color="0.4", linestyle=("--", "-.", ":")[k % 3], linewidth=1, label=label)
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("top-1 (%)")
    acc_ax.set_title("accuracy (solid: test, dotted: training)")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    loss_ax.set_title("loss (solid: test, dotted: training)")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if drawn or reference_lines:
        handles, labels = acc_ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=8, frameon=False)
    if not drawn:
        acc_ax.text(0.5, 0.5, "no runs yet", transform=acc_ax.transAxes, ha="center", color="0.5")
    if title:
        fig.suptitle(title)
    return fig


# ------------------------------------------------------------------ recorded results
# ------------------------------------------------------------------------- training
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
        seed: the runs' seed.
        jit_compile: passed to :func:`~vt_edu.training.train` (``None``: its default).
        distribution: passed to :func:`~vt_edu.training.train`: ``"data-parallel"``
            trains on all local devices (JAX backend only; e.g. a Colab TPU).
        reference_lines: ``{label: top-1}`` drawn on the accuracy curves.
        **settings: initial control values (see :meth:`set`); unset ones come from
            :meth:`default_settings`, which depend on the profile.

    Attributes:
        runs: list of :func:`run_row` dicts, one per finished run, in order.
        train_button: the Train button (``train_button.click()`` trains).
        widget: the whole panel (a ``VBox``).
    """

    SETTINGS = ("model", "dataset", "recipe", "batch_size", "learning_rate", "epochs", "num_tokens", "tokenizer",
                "width", "max_train_images", "max_test_images")

    def __init__(self, run_root=None, data=None, seed: int = 0, jit_compile=None, reference_lines=None,
                 distribution=None, **settings):
        from vt_edu.models.vt_resnet import TOKENIZER_CHOICES
        from vt_edu.training import list_recipes

        self.run_root = Path(run_root) if run_root is not None else cache_dir() / "runs" / "experiment_panel"
        self.data = data
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
        }

    def _sync_model_controls(self) -> None:
        is_vt = self.model.value == "vt_resnet18"
        self.num_tokens.disabled = not is_vt
        self.tokenizer.disabled = not is_vt

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
        ``learning_rate`` is given too. ``None`` for an image limit means all images.

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
            if name.startswith("max_") and value is None:
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
        key = json.dumps({**settings, "seed": self.seed, "data_hook": self.data is not None,
                          "code": _code_fingerprint()}, sort_keys=True)
        digest = hashlib.sha1(key.encode()).hexdigest()[:8]
        s = settings
        return self.run_root / f"{s['model']}-{s['dataset']}-{s['recipe']}-e{s['epochs']}-b{s['batch_size']}-{digest}"

    def _arrays(self, dataset: str):
        if self.data is None:
            return None
        if callable(self.data):
            return self.data(dataset)
        if dataset not in self.data:
            from vt_edu.data import SourceNotFoundError

            raise SourceNotFoundError(f"this panel was given no {dataset} arrays (only {', '.join(self.data)}).")
        return self.data[dataset]

    def _check(self, s: dict) -> str | None:
        """A problem with the settings that :func:`train` would not phrase for a panel, or None."""
        lr = s["learning_rate"]
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            return f"the learning rate must be a number > 0, got {lr!r}."
        if s["max_train_images"] < 0 or s["max_test_images"] < 0:
            return "image limits must be 0 (all images) or a positive number."
        if s["model"] == "vt_resnet18" and s["num_tokens"] < 1:
            return f"VT-ResNet needs at least one token: L={s['num_tokens']} is impossible."
        if 0 < s["max_train_images"] < s["batch_size"]:
            return (f"batch size {s['batch_size']} is larger than the {s['max_train_images']} training images; "
                    "lower the batch size or use more images.")
        return None

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
        from vt_edu.training import RecipeError, TrainingError, get_recipe, train

        if self._busy:
            self._say("a run is in progress; wait for it to finish.", problem=True)
            return None
        s = self.settings()
        problem = self._check(s)
        if problem:
            self._say(problem, problem=True)
            return None
        run_dir = self._run_dir(s)
        options = {"num_tokens": s["num_tokens"], "tokenizer": s["tokenizer"]} if s["model"] == "vt_resnet18" else {}
        self._busy = True
        self.train_button.disabled = True
        self.last_error = None
        self._live_history = []
        self._live_title = f"{s['model']} on {s['dataset']}, {s['recipe']}: training…"
        self.progress.value = 0
        self.progress.bar_style = ""
        self._say(f"training {s['model']} on {s['dataset']} ({_describe(epochs=s['epochs'], batch=s['batch_size'])})…")
        self.status.value = "loading data"
        started = time.perf_counter()
        try:
            recipe = get_recipe(s["recipe"])
            if not math.isclose(s["learning_rate"], recipe.scaled_learning_rate(s["batch_size"]), rel_tol=1e-9):
                recipe = get_recipe(recipe, learning_rate=float(s["learning_rate"]), reference_batch=None)
            result = train(
                s["model"],
                s["dataset"],
                recipe=recipe,
                epochs=s["epochs"],
                batch_size=s["batch_size"],
                run_dir=run_dir,
                seed=self.seed,
                width=s["width"],
                max_train_images=s["max_train_images"] or None,
                max_test_images=s["max_test_images"] or None,
                model_options=options,
                data=self._arrays(s["dataset"]),
                jit_compile=self.jit_compile,
                distribution=self.distribution,
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
        self._say(
            f"{row['model']} on {row['dataset']}: top-1 {100 * row['top1']:.2f} %, top-5 {100 * row['top5']:.2f} % "
            f"after {row['epochs']} epoch(s) on {row['images']:,} images ({origin})."
        )
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
        row = {"model": self.model.value, "recipe": self.recipe.value, "options": "", "history": self._live_history}
        self.show_figure(curves_figure([*self.runs, row], self.reference_lines, title=self._live_title))

    # -- results
    def table_html(self) -> str:
        """The comparison table of :attr:`runs` as HTML."""
        return runs_table_html(self.runs, empty="No runs yet: press Train.")

    def curves_figure(self, title: str | None = None) -> Figure:
        """Test/training accuracy and loss per epoch of every run in :attr:`runs`."""
        return curves_figure(self.runs, self.reference_lines, title=title)

    def _on_click(self, button) -> None:
        try:
            self.train()
        except KeyboardInterrupt:
            pass
