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

Modules, one idea each:

- :mod:`~vt_edu.widgets.panel`: the :class:`Panel` base, :func:`new_figure` and how
  panels show figures (also used by :mod:`vt_edu.explorer`);
- :mod:`~vt_edu.widgets.schedule_panel`: :class:`SchedulePanel`, :func:`recipe_schedule`;
- :mod:`~vt_edu.widgets.reports`: rows, tables and curves of training runs
  of either task (:func:`run_row`, :func:`runs_table_html`, :func:`curves_figure`),
  shared by panels and chapters;
- :mod:`~vt_edu.widgets.experiment_panel`: :class:`ExperimentPanel`.
"""

from vt_edu.widgets.experiment_panel import MODELS, ExperimentPanel
from vt_edu.widgets.panel import LIVE_NOTE, Panel, new_figure
from vt_edu.widgets.reports import (
    SCORE_COLUMNS,
    SCORE_CURVES,
    TABLE_COLUMNS,
    curves_figure,
    run_row,
    runs_table_html,
    table_columns,
)
from vt_edu.widgets.schedule_panel import BATCH_SIZES, CIFAR_TRAIN_IMAGES, SchedulePanel, recipe_schedule

__all__ = [
    "BATCH_SIZES",
    "CIFAR_TRAIN_IMAGES",
    "LIVE_NOTE",
    "MODELS",
    "SCORE_COLUMNS",
    "SCORE_CURVES",
    "TABLE_COLUMNS",
    "ExperimentPanel",
    "Panel",
    "SchedulePanel",
    "curves_figure",
    "new_figure",
    "recipe_schedule",
    "run_row",
    "runs_table_html",
    "table_columns",
]
