"""Reports of training runs shared by panels and chapters: table rows, the HTML table, the curves.

:func:`run_row` turns a run folder's ``metrics.json`` (and ``config.json``,
``history.csv``) into one row; :func:`runs_table_html` and :func:`curves_figure` show
a list of rows.

Rows are of either task (:data:`vt_edu.names.TASKS`): a classification run is scored by
test top-1/top-5, a segmentation run by test mean IoU and pixel accuracy. A table shows
the score columns of the tasks its rows have (a mixed table shows all four, with empty
cells where a score does not apply); the curves plot top-1 or mIoU.
"""

from __future__ import annotations

import html
import math

from matplotlib.figure import Figure

from vt_edu.names import DEFAULT_NUM_TOKENS, task_of
from vt_edu.widgets.panel import new_figure

__all__ = ["SCORE_COLUMNS", "SCORE_CURVES", "TABLE_COLUMNS", "curves_figure", "run_row", "runs_table_html", "table_columns"]


def _options_label(model: str, options: dict) -> str:
    parts = []
    if model in ("vt_resnet18", "vt_fpn"):  # the models with visual tokens
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
        ``task``, ``top1``, ``top5`` (classification), ``mean_iou``,
        ``pixel_accuracy`` (segmentation; ``images`` then counts scenes), ``params``,
        ``macs``, ``train_seconds``, ``images_per_second``, ``date``, ``hardware``,
        ``history`` (a list of per-epoch dicts) and whatever ``extra`` adds. Scores a
        run does not have are ``None``. ``task`` is the run's recorded task, else the
        model's (:func:`vt_edu.names.task_of`).
    """
    config = config or {}
    model = metrics.get("model", config.get("model", "?"))
    options = dict(config.get("model_options") or metrics.get("model_options") or {})
    row = {
        "model": model,
        "task": metrics.get("task") or config.get("task") or task_of(model),
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
        "mean_iou": metrics.get("mean_iou"),
        "pixel_accuracy": metrics.get("pixel_accuracy"),
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

#: Each task's score columns: a row of another task leaves these cells empty.
SCORE_COLUMNS = {
    "classification": (("top1", "top-1", "percent"), ("top5", "top-5", "percent")),
    "segmentation": (("mean_iou", "mIoU", "percent"), ("pixel_accuracy", "pixel acc.", "percent")),
}


def _task(row: dict) -> str:
    return row.get("task") or task_of(row.get("model", ""))


def table_columns(rows) -> tuple:
    """:data:`TABLE_COLUMNS` with the score columns of the tasks of ``rows`` in place of top-1/top-5
    (classification's when there are no rows); a table of segmentation runs only counts "train scenes"."""
    tasks = {_task(row) for row in rows} or {"classification"}
    scores = tuple(column for task, columns in SCORE_COLUMNS.items() if task in tasks for column in columns)
    scored = {key for columns in SCORE_COLUMNS.values() for key, _, _ in columns}
    columns = []
    for column in TABLE_COLUMNS:
        if column[0] == "top1":
            columns += scores
        elif column[0] == "images" and tasks == {"segmentation"}:
            columns.append(("images", "train scenes", "int"))
        elif column[0] not in scored:
            columns.append(column)
    return tuple(columns)


def _cell(row: dict, key: str, kind: str) -> str:
    applies = all(_task(row) == task for task, columns in SCORE_COLUMNS.items() if key in {k for k, _, _ in columns})
    return _fmt(row.get(key), kind) if applies else ""


def runs_table_html(rows, columns=None, empty: str = "No runs yet.") -> str:
    """The rows as an HTML table.

    Args:
        rows: :func:`run_row` dicts.
        columns: ``(key, heading, format)`` triples; default :func:`table_columns` of the rows.
            A score of another task than the row's (:data:`SCORE_COLUMNS`) is an empty cell;
            a missing value is "–".
        empty: the text shown when there are no rows.
    """
    if not rows:
        return f"<p><em>{html.escape(empty)}</em></p>"
    if columns is None:
        columns = table_columns(rows)
    head = "".join(f"<th style='text-align:right;padding:2px 8px'>{html.escape(title)}</th>" for _, title, _ in columns)
    body = []
    for row in rows:
        cells = "".join(
            f"<td style='text-align:{'left' if kind == 'text' else 'right'};padding:2px 8px'>{_cell(row, key, kind)}</td>"
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


#: Each task's curve: the history key of its score (``val_`` + key for the test set) and its name.
SCORE_CURVES = {"classification": ("accuracy", "top-1"), "segmentation": ("mean_iou", "mIoU")}


def curves_figure(rows, reference_lines: dict | None = None, title: str | None = None) -> Figure:
    """Test score and test loss per epoch of each row with a history: top-1 for a
    classification run, mean IoU for a segmentation run (:data:`SCORE_CURVES`).

    Args:
        rows: :func:`run_row` dicts.
        reference_lines: ``{label: score in [0, 1]}`` drawn as dashed horizontal lines.
        title: the figure's title.
    """
    fig = new_figure((10, 4.2))
    acc_ax, loss_ax = fig.subplots(1, 2)
    curves = []
    for k, row in enumerate(rows):
        key, name = SCORE_CURVES[_task(row)]
        history = [h for h in row.get("history") or [] if f"val_{key}" in h]
        if history:
            curves.append((f"C{k % 10}", row, key, name, history))
    drawn = {name for *_, name, _ in curves}
    names = [name for _, name in SCORE_CURVES.values() if name in drawn] or [SCORE_CURVES["classification"][1]]
    for color, row, key, name, history in curves:
        epochs = [h["epoch"] for h in history]
        label = _label(row) + (f" ({name})" if len(names) > 1 else "")
        acc_ax.plot(epochs, [100 * h[f"val_{key}"] for h in history], "o-", color=color, label=label)
        loss_ax.plot(epochs, [h["val_loss"] for h in history], "o-", color=color, label=label)
        if key in history[0]:
            acc_ax.plot(epochs, [100 * h[key] for h in history], ":", color=color, alpha=0.7)
        if "loss" in history[0]:
            loss_ax.plot(epochs, [h["loss"] for h in history], ":", color=color, alpha=0.7)
    for k, (label, value) in enumerate((reference_lines or {}).items()):
        acc_ax.axhline(100 * value, color="0.4", linestyle=("--", "-.", ":")[k % 3], linewidth=1, label=label)
    scores = " / ".join(names)
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel(f"{scores} (%)")
    acc_ax.set_title(f"{'accuracy' if names == ['top-1'] else scores} (solid: test, dotted: training)")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    loss_ax.set_title("loss (solid: test, dotted: training)")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if curves or reference_lines:
        handles, labels = acc_ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=8, frameon=False)
    if not curves:
        acc_ax.text(0.5, 0.5, "no runs yet", transform=acc_ax.transAxes, ha="center", color="0.5")
    if title:
        fig.suptitle(title)
    return fig
