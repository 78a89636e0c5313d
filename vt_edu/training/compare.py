"""``compare()``: train several models on the same data with the same recipe, then tabulate and plot.

Writes into ``out_dir``::

    <model>/            one run folder per model (see vt_edu.training.loop)
    compare.csv         one row per model: params, MACs, top-1/top-5, time, images/s
    compare.md          the same as a Markdown table, with the settings and provenance
    compare.json        everything above, machine-readable
    curves.png          training loss and test top-1 per epoch, and test top-1 over time

Every model sees the same images (one class-balanced subset drawn once), the same
recipe, batch size, seed and, with ``time_budget_minutes``, the same training time.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from vt_edu.names import task_of
from vt_edu.training.image_data import prepare_data
from vt_edu.training.loop import TrainingError, train
from vt_edu.training.run_config import RunConfig

__all__ = ["compare", "write_report"]

# The keywords of compare() that go to train() itself; the others are RunConfig fields.
RUNTIME_ARGUMENTS = ("overwrite", "callbacks", "workers")

COLUMNS = (
    "model",
    "params",
    "macs",
    "top1",
    "top5",
    "best_top1",
    "epochs_completed",
    "train_seconds",
    "images_per_second",
)


def compare(
    models,
    dataset: str = "cifar10",
    recipe="seed",
    out_dir=None,
    epochs: int | None = None,
    max_train_images: int | None = None,
    max_test_images: int | None = None,
    seed: int = 0,
    data=None,
    source=None,
    model_options: dict | None = None,
    verbose="auto",
    **train_kwargs,
) -> list:
    """Train each of ``models`` with :func:`train` on the same data; write the report.

    Args:
        models: model names (a list, or a comma-separated string).
        model_options: options per model name, e.g. ``{"vt_resnet18": {"num_tokens": 8}}``;
            options that a model does not have are an error.
        out_dir: default ``runs/compare-<dataset>-<recipe>-s<seed>``.
        **train_kwargs: further :class:`RunConfig` fields of every model's run (``width``,
            ``batch_size``, ``time_budget_minutes``, ``mixed_precision``, ...), and
            :func:`train`'s ``overwrite``, ``callbacks`` and ``workers``.

    Returns:
        The :class:`RunResult` of every model, in order.
    """
    from vt_edu.models import list_models
    from vt_edu.training.recipes import RecipeError, get_recipe

    names = [m.strip() for m in models.split(",")] if isinstance(models, str) else list(models)
    names = [n for n in names if n]
    if not names:
        raise TrainingError("no models to compare; pass e.g. cnn,resnet18,vt_resnet18.")
    unknown = [n for n in names if n not in list_models()]
    if unknown:
        raise TrainingError(f"unknown model(s) {', '.join(unknown)}; choose from: {', '.join(list_models())}.")
    if len(set(names)) != len(names):
        raise TrainingError(f"a model is listed twice in {', '.join(names)}.")
    segmenting = [n for n in names if task_of(n) != "classification"]
    if segmenting:
        raise TrainingError(
            f"compare() tabulates classification models; train the segmentation model(s) "
            f"{', '.join(segmenting)} with train() (python -m vt_edu train) one by one."
        )
    try:
        recipe_name = get_recipe(recipe).name
    except RecipeError as error:
        raise TrainingError(str(error)) from None
    model_options = model_options or {}
    out_dir = Path(out_dir) if out_dir is not None else Path("runs") / f"compare-{dataset}-{recipe_name}-s{seed}"

    runtime = {k: train_kwargs.pop(k) for k in RUNTIME_ARGUMENTS if k in train_kwargs}
    # Each model's settings, checked before any data are loaded.
    configs = [
        RunConfig(name, dataset=dataset, recipe=recipe, epochs=epochs, seed=seed, max_train_images=max_train_images,
                  max_test_images=max_test_images, model_options=model_options.get(name), given_data=data is not None,
                  **train_kwargs)
        for name in names
    ]
    train_set, test_set, class_names, _ = prepare_data(
        dataset, data, source, max_train_images, max_test_images, seed, progress=verbose != 0
    )
    results = [
        train(config, data=(train_set, test_set, class_names), run_dir=out_dir / config.model, verbose=verbose,
              **runtime)
        for config in configs
    ]
    write_report(results, out_dir)
    return results


def write_report(results, out_dir) -> dict:
    """Write compare.csv, compare.md, compare.json and curves.png for finished runs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [{k: r.metrics.get(k) for k in COLUMNS} for r in results]
    with (out_dir / "compare.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)

    first = results[0].metrics
    settings = {
        "dataset": first.get("dataset"),
        "recipe": first.get("recipe"),
        "train_images": first.get("train_images"),
        "test_images": first.get("test_images"),
        "batch_size": first.get("batch_size"),
        "epochs_requested": first.get("epochs_requested"),
    }
    provenance = {k: first.get(k) for k in ("date", "backend", "hardware", "versions", "git_commit")}
    lines = [
        "| model | params | MACs | top-1 | top-5 | best top-1 | epochs | train min | images/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params'] / 1e6:.2f} M | {r['macs'] / 1e6:.1f} M | {100 * r['top1']:.2f} % "
            f"| {100 * r['top5']:.2f} % | {100 * r['best_top1']:.2f} % | {r['epochs_completed']} "
            f"| {r['train_seconds'] / 60:.1f} | {r['images_per_second']:.0f} |"
        )
    hw = provenance.get("hardware") or {}
    lines += [
        "",
        f"Settings: {', '.join(f'{k}={v}' for k, v in settings.items())}.",
        f"Measured {provenance.get('date')} on {hw.get('cpu')} ({hw.get('cpu_cores')} cores"
        f"{', GPU ' + hw['gpu'] if hw.get('gpu') else ''}), Keras backend {provenance.get('backend')}, "
        f"versions {provenance.get('versions')}, commit {provenance.get('git_commit')}.",
        "MACs are per image (vt_edu.flops); top-1 is the final model on the test images; "
        "'best top-1' is selected on the same test images and is optimistic.",
    ]
    (out_dir / "compare.md").write_text("\n".join(lines) + "\n")
    report = {"settings": settings, "provenance": provenance, "rows": rows,
              "runs": {r.metrics["model"]: str(r.run_dir) for r in results}}
    (out_dir / "compare.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_curves(results, out_dir / "curves.png")
    return report


def plot_curves(results, path) -> None:
    """Training loss and test top-1 per epoch, and test top-1 over training time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.8), constrained_layout=True)
    FigureCanvasAgg(fig)
    loss_ax, acc_ax, time_ax = fig.subplots(1, 3)
    for r in results:
        history = r.history
        epochs = [h["epoch"] for h in history]
        name = r.metrics["model"]
        loss_ax.plot(epochs, [h.get("loss") for h in history], marker="o", label=name)
        acc_ax.plot(epochs, [100 * h.get("val_accuracy", float("nan")) for h in history], marker="o", label=name)
        elapsed, total = [], 0.0
        for h in history:
            total += h.get("train_seconds", 0.0)
            elapsed.append(total / 60)
        time_ax.plot(elapsed, [100 * h.get("val_accuracy", float("nan")) for h in history], marker="o", label=name)
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="training loss")
    acc_ax.set(xlabel="epoch", ylabel="test top-1 (%)", title="test accuracy per epoch")
    time_ax.set(xlabel="training time (min)", ylabel="test top-1 (%)", title="test accuracy over time")
    for ax in (loss_ax, acc_ax, time_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.savefig(path, dpi=110)
