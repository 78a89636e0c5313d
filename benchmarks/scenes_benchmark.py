"""Benchmark of issue 14: where visual tokens pay off, on CIFAR scenes (a script, not a test).

Three parts; each writes ``<out>/<part>.json`` (its settings, result and provenance:
hardware, Keras backend, library versions, date, git commit, as
``benchmarks/cpu_benchmark.py`` does), and every invocation rewrites ``<out>/benchmark.md``
from all part files present.

1. ``segmentation``: ``fpn`` vs ``vt_fpn`` at the same ``--width``, recipe and epochs on
   scenes of :func:`vt_edu.data.load_scenes` (``--train-scenes``/``--test-scenes``), one
   run per model and seed, the seeds interleaved (fpn s0, vt_fpn s0, fpn s1, vt_fpn s1) so
   that each pair trains side by side on the machine of that moment: mean IoU, pixel
   accuracy, total and FPN-module MACs (:func:`vt_edu.flops.fpn_module_macs`), images/s.
2. ``classification``: ``resnet18`` vs ``vt_resnet18`` classifying the same 64x64 scenes
   (label: the class covering the most pixels). The VT modules then read a 16x16 map (256
   positions for 16 tokens, as on ImageNet's 14x14, unlike CIFAR's 4x4): accuracy, MACs,
   training time per image.
3. ``tokens``: the tokenizer attention of each trained ``vt_fpn`` (every seed) on the test
   scenes against their object masks (:mod:`vt_edu.analysis`): the share of attention on
   object pixels against a uniform token's, effective pixels per token, and whether tokens
   move with an object (the same test image placed at ``--shift-positions`` places by
   :func:`vt_edu.data.make_scenes`: the slope of each token's attention centroid against
   the object's centre, 1 = moves with it, 0 = stays). The same numbers for a fresh
   (untrained) VT-FPN of each run's options and seed are the baseline: random tokenizer
   filters already favour objects, so a ratio above 1 alone does not show what training did.

Speed is a ratio measured side by side: besides the images/s of every run, parts 1 and 2
time training steps of both models in alternation (A B, B A, ... for ``--speed-rounds``
rounds of ``--speed-steps`` steps on the same batches; :mod:`vt_edu.training.speed`), so
both see the same machine; the per-round ratios give their spread. Every difference in a summary comes with the value
of each seed (and its min/max).

Interrupted benchmarks resume: run folders under ``<out>/runs`` continue from their last
completed epoch, and finished ones are read back, when the same command is run again.

Smoke test (seconds to a minute)::

    .venv/bin/python benchmarks/scenes_benchmark.py --quick --out /tmp/scenes-smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vt_edu.recorded import spread
from vt_edu.training.speed import alternating_speed, keras_steps

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("segmentation", "classification", "tokens")
PAIRS = {"segmentation": ("fpn", "vt_fpn"), "classification": ("resnet18", "vt_resnet18")}
# A run of seconds that still goes through every step (scenes, training, files, token statistics).
QUICK = {"train_scenes": 64, "test_scenes": 32, "epochs": 1, "batch_size": 16, "speed_rounds": 2, "speed_steps": 2,
         "token_scenes": 16, "shift_objects": 2, "shift_positions": 4}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="See the module docstring for the smoke-test command line.")
    p.add_argument("--out", default="results/scenes", help="output folder (default: results/scenes).")
    p.add_argument("--data", default=None, help="CIFAR-10 source; default: VT_EDU_DATA, else the download.")
    p.add_argument("--parts", default=",".join(PARTS), help=f"which parts: any of {','.join(PARTS)} (default: all).")
    p.add_argument("--width", type=float, default=0.25, help="width of every model (default 0.25).")
    p.add_argument("--recipe", default="fast", help="training recipe of every run (default: fast).")
    p.add_argument("--epochs", type=int, default=10, help="epochs of every run (default 10).")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: the recipe's).")
    p.add_argument("--train-scenes", type=int, default=5000, help="training scenes (default 5000).")
    p.add_argument("--test-scenes", type=int, default=1000, help="test scenes (default 1000).")
    p.add_argument("--canvas-size", type=int, default=64, help="scene size in pixels (default 64).")
    p.add_argument("--max-objects", type=int, default=3, help="objects per scene at most (default 3).")
    p.add_argument("--seeds", default="0,1", help="seeds, comma-separated (default 0,1).")
    p.add_argument("--speed-rounds", type=int, default=6, help="rounds of the alternating speed probe (default 6).")
    p.add_argument("--speed-steps", type=int, default=5, help="training steps per model and round (default 5).")
    p.add_argument("--token-scenes", type=int, default=500, help="test scenes for the token statistics (default 500).")
    p.add_argument("--shift-objects", type=int, default=8, help="test images moved around in the tracking test (default 8).")
    p.add_argument("--shift-positions", type=int, default=9, help="places per moved image (default 9).")
    p.add_argument("--shift-object-size", type=int, default=32, help="size of the moved image in pixels (default 32).")
    p.add_argument("--quick", action="store_true",
                   help=f"a seconds-long smoke run: {', '.join(f'{k}={v}' for k, v in QUICK.items())} "
                        "(unless given).")
    args = p.parse_args(argv)
    if args.quick:  # the quick sizes replace the defaults; options given explicitly still win
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)
    try:
        args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        p.error(f"--seeds must be integers separated by commas, got {args.seeds!r}.")
    if not args.seed_list:
        p.error("--seeds names no seed.")
    for name in ("epochs", "train_scenes", "test_scenes", "speed_rounds", "speed_steps", "token_scenes",
                 "shift_objects", "shift_positions"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}.")
    if args.shift_positions < 2:
        p.error("--shift-positions must be at least 2 (an object that does not move says nothing about tracking).")
    return args


def scene_options(args) -> dict:
    """The :func:`vt_edu.data.load_scenes` options of every part (the ``scenes=`` of ``train``)."""
    return {"num_train": args.train_scenes, "num_test": args.test_scenes, "canvas_size": args.canvas_size,
            "max_objects": args.max_objects}


def load_scene_data(args):
    from vt_edu.data import load_scenes

    return load_scenes("cifar10", source=args.data, **scene_options(args))


# ------------------------------------------------------------------------- numbers
def difference(rows_a, rows_b, key) -> dict:
    """``b - a`` for ``key``: per seed (the rows are pairs of the same seed) with min/max,
    and each model's values, so that a difference is never read without the seed spread."""
    return {"a": spread(r[key] for r in rows_a), "b": spread(r[key] for r in rows_b),
            "difference": spread(b[key] - a[key] for a, b in zip(rows_a, rows_b))}


def ratio(rows_a, rows_b, key) -> dict:
    """``b / a`` for ``key`` per seed pair, with min/max."""
    return spread(b[key] / a[key] for a, b in zip(rows_a, rows_b))


def compiled(model_name, args, num_classes, input_shape, steps_per_epoch, task):
    """A fresh model compiled as ``train()`` compiles it (for the speed probe)."""
    import inspect

    from vt_edu.models import create_model
    from vt_edu.training.loop import compile_for_training
    from vt_edu.training.recipes import get_recipe

    recipe = get_recipe(args.recipe)
    model = create_model(model_name, num_classes=num_classes, input_shape=input_shape, width=args.width)
    # train() compiles per task; pass the task where compile_for_training takes one.
    extra = {"task": task} if "task" in inspect.signature(compile_for_training).parameters else {}
    compile_for_training(model, recipe, args.batch_size or recipe.batch_size, steps_per_epoch, args.epochs,
                         num_classes, **extra)
    return model


# ----------------------------------------------------------------------------- parts
SEGMENTATION_FIELDS = ("model", "mean_iou", "pixel_accuracy", "epochs_completed", "epochs_requested", "train_seconds",
                       "images_per_second", "params", "macs", "batch_size", "train_images", "test_images")
CLASSIFICATION_FIELDS = ("model", "top1", "top5", "epochs_completed", "epochs_requested", "train_seconds",
                         "images_per_second", "params", "macs", "batch_size", "train_images", "test_images")


def train_pairs(part, args, out, fields, *, scenes=None, data=None):
    """Train both models of ``part`` for every seed, interleaved (A s0, B s0, A s1, B s1, ...):
    one :class:`~vt_edu.training.RunConfig` per run (``scenes``: the segmentation runs' scene
    settings), trained on ``data`` when given (else the run loads its data from ``args.data``)."""
    from vt_edu.training import RunConfig, train

    a_name, b_name = PAIRS[part]
    rows = {a_name: [], b_name: []}
    total = 2 * len(args.seed_list)
    for seed in args.seed_list:
        for name in (a_name, b_name):
            run_dir = out / "runs" / part / f"{name}-s{seed}"
            t0 = time.perf_counter()
            config = RunConfig(name, "cifar10", recipe=args.recipe, epochs=args.epochs, batch_size=args.batch_size,
                               seed=seed, width=args.width, scenes=scenes, given_data=data is not None)
            result = train(config, data=data, source=args.data, run_dir=run_dir, verbose=0)
            m = result.metrics
            row = {k: m.get(k) for k in fields} | {"seed": seed, "run_dir": str(run_dir)}
            rows[name].append(row)
            quality = (f"mIoU {100 * m['mean_iou']:.2f} %, pixel accuracy {100 * m['pixel_accuracy']:.2f} %"
                       if part == "segmentation" else f"top-1 {100 * m['top1']:.2f} %")
            print(f"[{part} {sum(map(len, rows.values()))}/{total}] {name} seed {seed}: {quality}, "
                  f"{m['epochs_completed']} epochs, {m['images_per_second']:.0f} img/s, "
                  f"{m['macs'] / 1e6:.1f} M MACs ({time.perf_counter() - t0:.0f} s)", flush=True)
    return rows


def probe(part, args, x, y, num_classes):
    """:func:`vt_edu.training.speed.alternating_speed` of the part's two models on the first training images."""
    from vt_edu.data import channel_stats, normalize
    from vt_edu.training.recipes import get_recipe

    batch_size = args.batch_size or get_recipe(args.recipe).batch_size
    n = min(len(x), batch_size * max(2, args.speed_steps))
    images = normalize(x[:n], *channel_stats(x))
    models = {name: compiled(name, args, num_classes, tuple(x.shape[1:]), len(x) // batch_size, part)
              for name in PAIRS[part]}
    a, b = PAIRS[part]
    speed = alternating_speed({name: keras_steps(model, images, y[:n], batch_size) for name, model in models.items()},
                              batch_size, args.speed_rounds, args.speed_steps)
    speed["ratio_b_to_a"] = speed.pop("ratio_to_first")[b]
    r = speed["ratio_b_to_a"]
    print(f"[{part}] alternating probe: {b} / {a} images/s = {r['mean']:.3f} (rounds {r['min']:.3f} to "
          f"{r['max']:.3f})", flush=True)
    return speed


def run_segmentation(args, scenes, out):
    from vt_edu.flops import count_macs, fpn_module_macs
    from vt_edu.models import create_model

    rows = train_pairs("segmentation", args, out, SEGMENTATION_FIELDS, scenes=scene_options(args))
    num_classes = len(scenes.class_names) + 1  # + background
    shape = (args.canvas_size, args.canvas_size, 3)
    macs = {}
    for name in PAIRS["segmentation"]:
        model = create_model(name, num_classes=num_classes, input_shape=shape, width=args.width)
        module = fpn_module_macs(model)
        macs[name] = {"total": int(count_macs(model).total_macs),
                      "fpn_module": int(getattr(module, "total_macs", module))}
    a, b = PAIRS["segmentation"]
    speed = probe("segmentation", args, scenes.train.scenes, scenes.train.masks.astype("int64"), num_classes)
    return {"rows": rows, "macs": macs,
            "vt_fpn_to_fpn_macs": {k: macs[b][k] / macs[a][k] for k in ("total", "fpn_module")},
            "differences": {k: difference(rows[a], rows[b], k) for k in ("mean_iou", "pixel_accuracy")},
            "images_per_second_ratio_runs": ratio(rows[a], rows[b], "images_per_second"),
            "alternating_speed": speed, "width": args.width, "epochs": args.epochs, "seeds": args.seed_list,
            "scenes": scene_options(args)}


def run_classification(args, scenes, out):
    train_set, test_set = scenes.train, scenes.test
    data = ((train_set.scenes, train_set.labels), (test_set.scenes, test_set.labels), list(scenes.class_names))
    rows = train_pairs("classification", args, out, CLASSIFICATION_FIELDS, data=data)
    a, b = PAIRS["classification"]
    speed = probe("classification", args, train_set.scenes, train_set.labels, len(scenes.class_names))
    runs_ratio = ratio(rows[a], rows[b], "images_per_second")
    return {"rows": rows, "macs": {name: int(rows[name][0]["macs"]) for name in (a, b)},
            "vt_to_resnet_macs": rows[b][0]["macs"] / rows[a][0]["macs"],
            "differences": {"top1": difference(rows[a], rows[b], "top1")},
            "images_per_second_ratio_runs": runs_ratio,
            # training time per image is the inverse of images/s
            "vt_to_resnet_seconds_per_image_runs": spread(1 / v for v in runs_ratio["values"]),
            "vt_to_resnet_seconds_per_image_alternating": spread(1 / v for v in speed["ratio_b_to_a"]["values"]),
            "alternating_speed": speed, "width": args.width, "epochs": args.epochs, "seeds": args.seed_list,
            "scenes": scene_options(args)}


def tokenizer_levels(attention: dict) -> dict:
    """``{level: tokenizer attention (B, HW, L)}`` from :func:`vt_edu.models.vt_fpn_attention`'s dict."""
    levels = {str(name): level["tokenizer"] for name, level in attention["levels"].items()}
    if not levels:
        raise ValueError("the attention dict holds no levels.")
    return levels


def level_statistics(tokenizer_attention, masks, canvas_size) -> dict:
    """Foreground share (every :data:`vt_edu.analysis.MASK_RULES`) and effective pixels of one level."""
    import math

    from vt_edu.analysis import MASK_RULES, effective_pixels_per_token, foreground_attention_share, mask_fraction

    hw = tokenizer_attention.shape[1]
    side = math.isqrt(hw)
    stride = canvas_size // side
    shares = {}
    for rule in MASK_RULES:
        s = foreground_attention_share(tokenizer_attention, mask_fraction(masks, side, side, rule))
        shares[rule] = {"share": s.share, "uniform_share": s.uniform_share, "ratio": s.ratio,
                        "per_token": s.per_token.tolist()}
    cells = effective_pixels_per_token(tokenizer_attention)
    return {"size": [side, side], "stride": stride, "tokens": int(tokenizer_attention.shape[2]),
            "foreground": shares,
            "effective_cells_per_token": float(cells.mean()),
            "effective_cells_per_token_by_token": cells.mean(axis=0).tolist(),
            "effective_input_pixels_per_token": float(cells.mean() * stride ** 2),
            "effective_share_of_map": float(cells.mean() / hw)}


def shifted_scenes(args, num_classes):
    """``--shift-objects`` CIFAR test images (drawn with seed 0), each alone in
    ``--shift-positions`` scenes of :func:`vt_edu.data.make_scenes` at its places."""
    import numpy as np

    from vt_edu.data import load_cifar, make_scenes

    _, (x_test, y_test), _ = load_cifar("cifar10", source=args.data, progress=False)
    y_test = np.asarray(y_test).reshape(-1)
    picked = np.random.default_rng(0).choice(len(x_test), args.shift_objects, replace=False)
    return [make_scenes(x_test[i:i + 1], y_test[i:i + 1], args.shift_positions, canvas_size=args.canvas_size,
                        max_objects=1, min_object_size=args.shift_object_size, max_object_size=args.shift_object_size,
                        num_classes=num_classes, seed=k)
            for k, i in enumerate(picked)]


def tracking_statistics(model, sets, mean, std, canvas_size) -> dict:
    """Per level: each token's centroid-tracking slope and its correlation with the moved object's mask."""
    import math
    import warnings

    import numpy as np

    from vt_edu.analysis import attention_centroids, centroid_tracking, mask_fraction, token_mask_correlation
    from vt_edu.data import normalize
    from vt_edu.models import vt_fpn_attention

    slopes, correlations = {}, {}
    for scene_set in sets:
        levels = tokenizer_levels(vt_fpn_attention(model, normalize(scene_set.scenes, mean, std)))
        box = scene_set.boxes[:, 0].astype(np.float64)  # (top, left, bottom, right), exclusive
        centres_px = np.stack([(box[:, 0] + box[:, 2] - 1) / 2, (box[:, 1] + box[:, 3] - 1) / 2], axis=1)
        for level, attention in levels.items():
            side = math.isqrt(attention.shape[1])
            stride = canvas_size // side
            # cell i covers pixels i*stride .. i*stride+stride-1: pixel y is at cell (y - (stride-1)/2)/stride;
            # the offset cancels in the slope (displacements from the mean), the scale does not.
            centroids = attention_centroids(attention, side, side)
            slopes.setdefault(level, []).append(centroid_tracking(centroids, centres_px / stride))
            objects = mask_fraction(scene_set.masks, side, side)
            with warnings.catch_warnings():  # a token with constant attention has no correlation (NaN)
                warnings.simplefilter("ignore", RuntimeWarning)
                correlations.setdefault(level, []).append(
                    np.nanmean(token_mask_correlation(attention, objects), axis=0))
    result = {}
    for level in slopes:
        per_token = np.mean(slopes[level], axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            corr = np.nanmean(correlations[level], axis=0)
            corr_mean = float(np.nanmean(corr))
        result[level] = {"slope_by_token": per_token.tolist(), "slope_mean": float(per_token.mean()),
                         "tokens_following": int((per_token > 0.5).sum()),
                         "mask_correlation_by_token": corr.tolist(), "mask_correlation_mean": corr_mean}
    return result


def token_statistics(model, images, masks, sets, mean, std, canvas_size) -> dict:
    """``{level: statistics}`` of one VT-FPN: :func:`level_statistics` on ``images`` against
    ``masks``, with the :func:`tracking_statistics` on ``sets`` under ``"tracking"``."""
    from vt_edu.data import normalize
    from vt_edu.models import vt_fpn_attention

    levels = tokenizer_levels(vt_fpn_attention(model, normalize(images, mean, std)))
    stats = {level: level_statistics(attention, masks, canvas_size) for level, attention in levels.items()}
    tracking = tracking_statistics(model, sets, mean, std, canvas_size)
    for level in stats:
        stats[level]["tracking"] = tracking[level]
    return stats


def level_summary(per_seed, level, which) -> dict:
    """The spreads over seeds of one level's headline numbers, of the ``"trained"`` or ``"fresh"`` model."""
    rows = [s["levels"][level][which] for s in per_seed]
    return {"foreground_ratio": spread(r["foreground"]["fraction"]["ratio"] for r in rows),
            "foreground_share": spread(r["foreground"]["fraction"]["share"] for r in rows),
            "uniform_share": spread(r["foreground"]["fraction"]["uniform_share"] for r in rows),
            "effective_input_pixels_per_token": spread(r["effective_input_pixels_per_token"] for r in rows),
            "tracking_slope": spread(r["tracking"]["slope_mean"] for r in rows)}


def run_tokens(args, scenes, out):
    import keras

    import vt_edu.models  # noqa: F401 - registers the layers that model.keras names
    from vt_edu.data import channel_stats
    from vt_edu.training.run_folder import RunFolder

    sets = shifted_scenes(args, len(scenes.class_names))
    mean, std = channel_stats(scenes.train.scenes)
    n = min(args.token_scenes, len(scenes.test.scenes))
    images, masks = scenes.test.scenes[:n], scenes.test.masks[:n]
    per_seed = []
    for seed in args.seed_list:
        run_dir = out / "runs" / "segmentation" / f"vt_fpn-s{seed}"
        if not (run_dir / "metrics.json").is_file():
            raise FileNotFoundError(f"{run_dir} holds no finished run: run part segmentation first (same options).")
        # The fresh model is the baseline: random tokenizer filters already favour objects (a
        # ratio above 1), so only the distance from it is what training did.
        models = {"trained": keras.models.load_model(run_dir / "model.keras", compile=False),
                  "fresh": RunFolder(run_dir).untrained_model()}
        stats = {which: token_statistics(model, images, masks, sets, mean, std, args.canvas_size)
                 for which, model in models.items()}
        for level in stats["trained"]:
            line = []
            for which in models:
                s = stats[which][level]
                f = s["foreground"]["fraction"]
                line.append(f"{which} {f['ratio']:.3f} x the uniform share on objects ({100 * f['share']:.1f} % vs "
                            f"{100 * f['uniform_share']:.1f} %), {s['effective_input_pixels_per_token']:.0f} input "
                            f"pixels per token, tracking slope {s['tracking']['slope_mean']:.2f}")
            print(f"[tokens] seed {seed} level {level}: " + "; ".join(line), flush=True)
        per_seed.append({"seed": seed, "run_dir": str(run_dir),
                         "levels": {level: {which: stats[which][level] for which in models}
                                    for level in stats["trained"]}})
    levels = list(per_seed[0]["levels"])
    summary = {}
    for level in levels:
        summary[level] = level_summary(per_seed, level, "trained")
        summary[level]["fresh"] = level_summary(per_seed, level, "fresh")
        summary[level]["ratio_trained_to_fresh"] = spread(
            s["levels"][level]["trained"]["foreground"]["fraction"]["ratio"]
            / s["levels"][level]["fresh"]["foreground"]["fraction"]["ratio"] for s in per_seed)
    return {"seeds": per_seed, "summary": summary, "paper_foreground_ratio": 1.283, "test_scenes": n,
            "shift": {"objects": args.shift_objects, "positions": args.shift_positions,
                      "object_size": args.shift_object_size}}


RUNNERS = {"segmentation": run_segmentation, "classification": run_classification, "tokens": run_tokens}


# ---------------------------------------------------------------------------- report
def _pm(s, scale=100.0, digits=2) -> str:
    """``mean (min to max)`` of a :func:`spread`."""
    return f"{scale * s['mean']:.{digits}f} ({scale * s['min']:.{digits}f} to {scale * s['max']:.{digits}f})"


def _provenance_line(part):
    p = part["provenance"]
    hw = p["hardware"]
    return (f"_{p['date']}, {hw['cpu']} ({hw['cpu_cores']} cores{', GPU ' + hw['gpu'] if hw.get('gpu') else ''}), "
            f"Keras backend {p['backend']}, commit {p['git_commit']}; `{part['command']}`_")


def write_markdown(out):
    parts = {name: json.loads((out / f"{name}.json").read_text()) for name in PARTS if (out / f"{name}.json").exists()}
    lines = ["# Scenes benchmark", "",
             "Written by `benchmarks/scenes_benchmark.py` from the part files beside this one. Values are "
             "mean (min to max) over the seeds; differences are per seed pair.", ""]
    for part in ("segmentation", "classification"):
        if part not in parts:
            continue
        r = parts[part]["result"]
        a, b = PAIRS[part]
        metric = ("mean_iou", "pixel_accuracy") if part == "segmentation" else ("top1",)
        lines += [f"## {part.capitalize()}: {a} vs {b} (width {r['width']:g}, {r['epochs']} epochs, seeds "
                  f"{', '.join(map(str, r['seeds']))})", "", _provenance_line(parts[part]), "",
                  f"| model | {' | '.join(metric)} | images/s (runs) | MACs |", "|---|" + "---:|" * (len(metric) + 2)]
        for name in (a, b):
            rows = r["rows"][name]
            lines.append(f"| {name} | " + " | ".join(_pm(spread(x[k] for x in rows)) + " %" for k in metric)
                         + f" | {_pm(spread(x['images_per_second'] for x in rows), 1, 0)} | "
                         f"{rows[0]['macs'] / 1e6:.1f} M |")
        lines += ["", "; ".join(f"{b} - {a} {k}: {_pm(d['difference'])} points" for k, d in r["differences"].items())
                  + ".", f"{b} / {a} images/s: {_pm(r['images_per_second_ratio_runs'], 1, 3)} in the runs, "
                  f"{_pm(r['alternating_speed']['ratio_b_to_a'], 1, 3)} in the alternating probe.", ""]
        if part == "segmentation":
            lines += [f"FPN-module MACs: {a} {r['macs'][a]['fpn_module'] / 1e6:.1f} M, {b} "
                      f"{r['macs'][b]['fpn_module'] / 1e6:.1f} M ({b} / {a}: "
                      f"{r['vt_fpn_to_fpn_macs']['fpn_module']:.3f}; "
                      f"total {r['vt_fpn_to_fpn_macs']['total']:.3f}).", ""]
    if "tokens" in parts:
        t = parts["tokens"]["result"]
        lines += ["## Tokens of the trained VT-FPN", "", _provenance_line(parts["tokens"]), "",
                  "| level | attention on objects | uniform token | ratio | ratio, fresh model | "
                  "input pixels per token | tracking slope | tracking slope, fresh model |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for level, s in t["summary"].items():
            lines.append(f"| {level} | {_pm(s['foreground_share'])} % | {_pm(s['uniform_share'])} % | "
                         f"{_pm(s['foreground_ratio'], 1, 3)} | {_pm(s['fresh']['foreground_ratio'], 1, 3)} | "
                         f"{_pm(s['effective_input_pixels_per_token'], 1, 0)} | "
                         f"{_pm(s['tracking_slope'], 1, 2)} | {_pm(s['fresh']['tracking_slope'], 1, 2)} |")
        lines += ["", f"The paper reports {100 * (t['paper_foreground_ratio'] - 1):.1f} % more attention on the "
                  "foreground (ratio 1.283). The fresh model is the same VT-FPN untrained (its run's options and "
                  "seed): its random tokenizer filters give the ratio that training starts from. Tracking: the same "
                  "test image at several places; slope 1 = a token's attention centroid moves with the object, "
                  "0 = it stays.", ""]
    (out / "benchmark.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    args = parse_args(argv)
    requested = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = sorted(requested - set(PARTS))
    if unknown:
        print(f"error: unknown part(s) {', '.join(unknown)}; use any of {', '.join(PARTS)}.", file=sys.stderr)
        return 2
    parts = [p for p in PARTS if p in requested]  # tokens analyses the models that segmentation trains
    from vt_edu.data import check_scene_settings
    from vt_edu.training.recipes import RecipeError, get_recipe

    try:
        get_recipe(args.recipe)
        check_scene_settings(args.canvas_size, args.max_objects, 20, 40)
        if "tokens" in parts:
            check_scene_settings(args.canvas_size, 1, args.shift_object_size, args.shift_object_size)
    except (RecipeError, ValueError) as error:  # before any data are loaded or files written
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from vt_edu.training.provenance import provenance

    t0 = time.perf_counter()
    scenes = load_scene_data(args)
    print(f"[data] {len(scenes.train.scenes)} training / {len(scenes.test.scenes)} test scenes "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    for part in parts:
        result = RUNNERS[part](args, scenes, out)
        settings = {k: v for k, v in vars(args).items() if k != "seed_list"}
        record = {"part": part, "command": " ".join([Path(sys.executable).name, *sys.argv]), "settings": settings,
                  "provenance": provenance(), "result": result}
        (out / f"{part}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        write_markdown(out)
        print(f"Written: {out / (part + '.json')}, {out / 'benchmark.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
