"""The learning-rate schedule panel (chapter 9): :class:`SchedulePanel` and :func:`recipe_schedule`.

>>> panel = SchedulePanel()                       # the paper's advanced recipe at batch 256
>>> panel.set(batch_size=2048)                    # lr follows the linear scaling rule
>>> epochs, rates = panel.plotted()               # what the plot shows: 0.01 -> 0.16, then x0.9875

The schedule is the one training uses: :func:`recipe_schedule` builds it with
:mod:`vt_edu.training.optimizers` from a :class:`~vt_edu.training.Recipe`, and the panel
samples it with :func:`vt_edu.training.schedules.sample_lr`.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from vt_edu.widgets.panel import LIVE_NOTE, Panel, new_figure

__all__ = ["BATCH_SIZES", "CIFAR_TRAIN_IMAGES", "SchedulePanel", "recipe_schedule"]

BATCH_SIZES = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
CIFAR_TRAIN_IMAGES = 50_000


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
