"""Reports of training runs shared by panels and chapters: table rows, the HTML table, the curves.

:func:`run_row` turns a run folder's ``metrics.json`` (and ``config.json``,
``history.csv``) into one row; :func:`runs_table_html` and :func:`curves_figure` show
a list of rows.
"""

from __future__ import annotations

import html
import math

from matplotlib.figure import Figure

from vt_edu.names import DEFAULT_NUM_TOKENS
from vt_edu.widgets.panel import new_figure

__all__ = ["TABLE_COLUMNS", "curves_figure", "run_row", "runs_table_html"]


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
