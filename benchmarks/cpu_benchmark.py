"""CPU benchmark of the book's models on CIFAR-10 (a script, not a test).

Five parts; each writes ``<out>/<part>.json`` (its settings, result and provenance:
hardware, Keras backend, library versions, date, git commit), and every invocation
rewrites ``<out>/benchmark.md`` from all part files present, so parts can be run
separately (each on the backend that suits it) and the report stays whole.

1. ``cnn``: the students' CNN with the ``seed`` recipe (Adam 1e-3, batch 256, no
   augmentation) for ``--cnn-epochs`` epochs (10) on the full training set: test
   top-1/top-5, time, images/s. The students reported 69.37 %.
2. ``vt``: ``vt_resnet18`` vs ``resnet18`` at the same ``--width``, with the same
   ``--recipe``, epochs and training-time budget (``--minutes`` each), via
   :func:`vt_edu.training.compare` (same images, seed, batch size), and the patch-token
   ``vit`` (its default size) with the same recipe and budget: a table, ``curves.png``
   and one run folder per model.
3. ``target``: one ``vt_resnet18`` run with a ``--target-minutes`` budget (60): can a
   VT-ResNet reach 85 % CIFAR-10 test accuracy in an hour on this CPU? Judged on plain
   top-1; top-1 with horizontal-flip test-time augmentation is recorded beside it.
   A probe of training speed before the run records the machine's speed with Keras' own
   code, and with ``--target-torch-fast-paths`` (PyTorch backend) also with
   :mod:`vt_edu.torch_fast_paths`, which the run then trains with.
4. ``ablations``: the paper's ablations (tokenizer type, number of tokens, projector
   on/off, recurrent or not) on a class-balanced ``--ablation-train-images`` subset,
   each with the same ``--ablation-minutes`` budget, plus the baseline again with a
   second seed so that seed noise can be read off the same table.
5. ``backends``: training and inference images/s of ``cnn``, ``resnet18`` and
   ``vt_resnet18`` (at ``--width``) on every installed Keras backend (tensorflow, jax,
   torch), each in its own subprocess with ``KERAS_BACKEND`` set, on synthetic 32x32
   batches (throughput does not depend on pixel values), after one warm-up epoch.

Epochs: a cosine schedule must end when the budget does, so with ``--epochs auto``
(the default) each budgeted part first times a few real training steps of its models
and lays the schedule over the epochs that fit in 92 % of the budget; the budget
itself still stops training if the machine slows down.

Recipe: ``--recipe`` (``fast``) names the recipe of the vt, target and ablation parts;
``--recipe-set KEY=VALUE`` changes one of its settings (e.g. ``clip_norm=5``), and the
target part's report names the changes.

Data: ``--data`` or ``VT_EDU_DATA`` (a folder or .tar.gz in image-folder or official
CIFAR layout, see :func:`vt_edu.data.load_cifar`). If the data are the JPEG copy of
CIFAR-10, accuracies are close to but not identical with the official test set.

The recorded runs (``results/cpu-benchmark``, on the 2-core CPU) and their
exact command lines are listed in ``results/README.md``.

Smoke test (a minute or two)::

    .venv/bin/python benchmarks/cpu_benchmark.py --out /tmp/bench-smoke --max-train-images 512 \\
        --max-test-images 200 --cnn-epochs 1 --epochs 1 --minutes 0.5 --target-epochs 1 \\
        --target-minutes 0.5 --ablation-train-images 512 --ablation-minutes 0.2 --throughput-steps 3

Interrupted runs resume: the run folders under ``<out>/runs`` continue from their last
completed epoch when the same command is run again, and finished ones are read back.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("cnn", "vt", "target", "ablations", "backends")
BACKENDS = ("tensorflow", "jax", "torch")
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
THROUGHPUT_MODELS = ("cnn", "resnet18", "vt_resnet18")
STUDENTS_CNN_TOP1 = 0.6937  # the students' 10-epoch result
TARGET_TOP1 = 0.85
# The paper's ablations, as vt_resnet18 options (the first row is the paper's model).
ABLATIONS = {
    "paper": ("filter then recurrent tokenizer, L=16, projector", {}),
    "filter-only": ("filter tokenizer in both modules (not recurrent)", {"tokenizer": "filter"}),
    "pooling": ("pooling tokenizer (no spatial attention)", {"tokenizer": "pooling"}),
    "tokens-4": ("L=4 tokens", {"num_tokens": 4}),
    "tokens-64": ("L=64 tokens", {"num_tokens": 64}),
    "no-projector": ("no projector between the modules", {"use_projector": False}),
}
BUDGET_FILL = 0.92  # share of a budget that the auto epoch count plans to use


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="See the module docstring for the recorded and smoke-test command lines.")
    p.add_argument("--out", default="results/cpu-benchmark", help="output folder (default: results/cpu-benchmark).")
    p.add_argument("--data", default=None, help="CIFAR-10 source; default: VT_EDU_DATA, else the download.")
    p.add_argument("--parts", default=",".join(PARTS), help=f"which parts: any of {','.join(PARTS)} (default: all).")
    p.add_argument("--cnn-epochs", type=int, default=10, help="epochs of the students' CNN (default 10).")
    p.add_argument("--width", type=float, default=0.25, help="width of resnet18/vt_resnet18 (default 0.25).")
    p.add_argument("--recipe", default="fast", help="recipe of the vt, target and ablation parts (default: fast).")
    p.add_argument("--recipe-set", action="append", default=[], metavar="KEY=VALUE",
                   help="change one setting of --recipe (repeatable; VALUE as JSON, e.g. clip_norm=5 or "
                        "clip_norm=null): the vt, target and ablation parts train with the changed recipe.")
    p.add_argument("--minutes", type=float, default=10.0, help="training-time budget per model in part vt (default 10).")
    p.add_argument("--epochs", default="auto", help="epochs in part vt: a number, or auto (what fits the budget).")
    p.add_argument("--target-minutes", type=float, default=60.0, help="budget of part target (default 60).")
    p.add_argument("--target-epochs", default="auto", help="epochs of part target: a number, or auto.")
    from vt_edu.training.loop import SCHEDULE_CLOCKS  # no Keras import: --help stays fast

    p.add_argument("--target-schedule-clock", choices=SCHEDULE_CLOCKS, default="steps",
                   help="what moves the target run's learning-rate schedule (see vt_edu.training.train): steps "
                        "(default), or time: the budget stands for --target-epochs epochs, so the cosine ends "
                        "with the budget.")
    p.add_argument("--target-torch-fast-paths", action="store_true",
                   help="train the target run with vt_edu.torch_fast_paths (PyTorch backend; fused BatchNorm, "
                        "no convolution input copies; Keras' arithmetic up to float rounding). Its probe is then "
                        "recorded too.")
    p.add_argument("--ablation-minutes", type=float, default=3.0, help="budget per ablation run (default 3).")
    p.add_argument("--ablation-train-images", type=int, default=10000, help="training subset of the ablations (default 10000).")
    p.add_argument("--ablation-test-images", type=int, default=5000, help="test subset of the ablations (default 5000).")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: the recipe's).")
    p.add_argument("--max-train-images", type=int, default=None, help="training subset of cnn/vt/target (smoke tests).")
    p.add_argument("--max-test-images", type=int, default=None, help="test subset of cnn/vt/target (smoke tests).")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backends", default=",".join(BACKENDS), help="backends of part backends (default: all installed).")
    p.add_argument("--throughput-steps", type=int, default=20, help="timed training steps per model in part backends.")
    p.add_argument("--throughput-batch", type=int, default=128, help="batch size in part backends (default 128).")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: part backends in a subprocess
    args = p.parse_args(argv)
    for name in ("epochs", "target_epochs"):
        value = getattr(args, name)
        if value != "auto" and not (value.isdigit() and int(value) > 0):
            p.error(f"--{name.replace('_', '-')} must be a positive number or auto, got {value!r}.")
    return args


# ------------------------------------------------------------------ epochs from a probe
def probe_images_per_second(model_name, width, model_options, recipe, batch_size, x, y, steps=12):
    """Training images/s of one model on real augmented batches (after 2 warm-up steps), compiled
    as ``train()`` compiles it (the recipe's optimizer, clipping, loss and metrics)."""
    from vt_edu.data import channel_stats
    from vt_edu.models import create_model
    from vt_edu.training.loop import compile_for_training
    from vt_edu.training.pipeline import ImageBatches

    n = batch_size * (steps + 2)
    mean, std = channel_stats(x)
    batches = ImageBatches(x[:n], y[:n], batch_size, mean, std, augment=recipe.augment, shuffle=True)
    model = create_model(model_name, width=width, **model_options)
    compile_for_training(model, recipe, batch_size, len(batches), 1, model.output_shape[-1])
    # A training set smaller than the probe repeats its batches (an index past the end would be empty).
    for i in range(2):  # compile / warm up
        model.train_on_batch(*batches[i % len(batches)])
    t0 = time.perf_counter()
    for i in range(2, steps + 2):
        model.train_on_batch(*batches[i % len(batches)])
    return batch_size * steps / (time.perf_counter() - t0)


def recipe_of(args):
    """``--recipe`` with the ``--recipe-set`` changes applied (raises RecipeError on a bad key)."""
    from vt_edu.training.recipes import get_recipe

    overrides = {}
    for item in args.recipe_set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--recipe-set expects KEY=VALUE, got {item!r}.")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value  # a plain word, e.g. augment=randaugment
    return get_recipe(args.recipe, **overrides)


def epochs_for_budget(models, width, recipe, batch_size, minutes, train_set, options_per_model=None):
    """The epochs the slowest of ``models`` completes in ``BUDGET_FILL`` of ``minutes``."""
    from vt_edu.training.recipes import get_recipe

    recipe = get_recipe(recipe)
    batch_size = batch_size or recipe.batch_size
    x, y = train_set
    speeds = {m: probe_images_per_second(m, width, (options_per_model or {}).get(m, {}), recipe, batch_size, x, y)
              for m in models}
    slowest = min(speeds.values())
    epochs = max(1, math.floor(BUDGET_FILL * 60 * minutes * slowest / len(x)))
    print(f"[epochs] probe {', '.join(f'{m} {s:.0f} img/s' for m, s in speeds.items())}: {epochs} epochs of "
          f"{len(x)} images fit {BUDGET_FILL:.0%} of {minutes:g} min", flush=True)
    return epochs, {m: round(s, 1) for m, s in speeds.items()}


def resolve_epochs(value, *budget_args, **budget_kwargs):
    if value != "auto":
        return int(value), None
    return epochs_for_budget(*budget_args, **budget_kwargs)


# ----------------------------------------------------------------------------- parts
RUN_FIELDS = ("model", "top1", "top5", "best_top1", "epochs_completed", "epochs_requested", "stopped_early",
              "train_seconds", "images_per_second", "params", "macs", "batch_size", "train_images", "test_images")


def _row(result, **extra):
    return {k: result.metrics.get(k) for k in RUN_FIELDS} | {"run_dir": str(result.run_dir)} | extra


def run_cnn(args, data, out):
    from vt_edu.training import RunConfig, train

    config = RunConfig("cnn", "cifar10", recipe="seed", epochs=args.cnn_epochs, seed=args.seed,
                       max_train_images=args.max_train_images, max_test_images=args.max_test_images,
                       given_data=data is not None)
    result = train(config, data=data, run_dir=out / "runs" / "cnn-seed", verbose=2)
    m = result.metrics
    print(f"[cnn] seed recipe, {m['epochs_completed']} epochs: top-1 {100 * m['top1']:.2f} % (students: "
          f"{100 * STUDENTS_CNN_TOP1:.2f} %), {m['train_seconds'] / 60:.1f} min, {m['images_per_second']:.0f} img/s",
          flush=True)
    return _row(result, students_top1=STUDENTS_CNN_TOP1,
                difference_to_students=round(m["top1"] - STUDENTS_CNN_TOP1, 4))


def run_vt(args, data, out):
    from vt_edu.training import RunConfig, compare, train
    from vt_edu.training.compare import write_report
    from vt_edu.training.loop import prepare_data

    models = ["resnet18", "vt_resnet18"]
    train_set, test_set, names, _ = prepare_data("cifar10", data, None, args.max_train_images, args.max_test_images,
                                                 args.seed)
    folder = out / "runs" / "vt-vs-resnet"
    epochs, probe = resolve_epochs(args.epochs, models, args.width, recipe_of(args), args.batch_size, args.minutes, train_set)
    results = compare(models, "cifar10", recipe=recipe_of(args), out_dir=folder, epochs=epochs,
                      seed=args.seed, data=(train_set, test_set, names), verbose=2, width=args.width,
                      batch_size=args.batch_size, time_budget_minutes=args.minutes)
    # The patch-token ViT (the students' fallback) with the same recipe and budget; it is
    # slower per image, so it gets its own epoch count (a cosine that ends with the budget).
    vit_epochs, vit_probe = resolve_epochs(args.epochs, ["vit"], 1.0, recipe_of(args), args.batch_size, args.minutes,
                                           train_set)
    vit = RunConfig("vit", "cifar10", recipe=recipe_of(args), epochs=vit_epochs, seed=args.seed,
                    batch_size=args.batch_size, time_budget_minutes=args.minutes, given_data=True)
    results.append(train(vit, data=(train_set, test_set, names), run_dir=folder / "vit", verbose=2))
    write_report(results, folder)
    rows = [_row(r) for r in results]
    for r in rows:
        print(f"[vt] {r['model']:<12}: top-1 {100 * r['top1']:.2f} % after {r['epochs_completed']} "
              f"epochs in {r['train_seconds'] / 60:.1f} min ({r['images_per_second']:.0f} img/s), "
              f"{r['params'] / 1e6:.2f} M params, {r['macs'] / 1e6:.1f} M MACs", flush=True)
    resnet, vt = rows[:2]
    return {"rows": rows, "epochs_probe": {**(probe or {}), **(vit_probe or {})}, "minutes": args.minutes,
            "width": args.width,
            "vt_to_resnet_seconds_per_image": round(resnet["images_per_second"] / vt["images_per_second"], 3),
            "vt_to_resnet_macs": round(vt["macs"] / resnet["macs"], 3),
            "report": str(folder / "compare.md")}


def run_target(args, data, out):
    import keras

    from vt_edu.data import channel_stats
    from vt_edu.torch_fast_paths import enabled as fast_paths_enabled
    from vt_edu.training import RunConfig, flip_tta_accuracy, train
    from vt_edu.training.loop import prepare_data

    fast_paths = args.target_torch_fast_paths  # main() has checked the backend
    train_set, test_set, names, _ = prepare_data("cifar10", data, None, args.max_train_images, args.max_test_images,
                                                 args.seed)
    recipe = recipe_of(args)
    run_dir = out / "runs" / f"vt-target-{args.target_minutes:g}min"
    if (run_dir / "config.json").exists() and args.target_epochs == "auto":
        epochs, probe = json.loads((run_dir / "config.json").read_text())["epochs"], None  # resume with the planned schedule
    else:
        with fast_paths_enabled(fast_paths):  # plan with the speed the run will have
            epochs, probe = resolve_epochs(args.target_epochs, ["vt_resnet18"], args.width, recipe, args.batch_size,
                                           args.target_minutes, train_set)

    def probe_speed():
        return round(probe_images_per_second("vt_resnet18", args.width, {}, recipe,
                                             args.batch_size or recipe.batch_size, *train_set), 1)

    # Machines of the same name and core count have trained this model at 150 to 380 images/s
    # on different days; the probe, taken before training with Keras' own code, says which kind
    # of day a run had (the epoch planner's probe serves when it ran that code).
    host_speed = (None if fast_paths else (probe or {}).get("vt_resnet18")) or probe_speed()
    print(f"[target] host speed before training: {host_speed:.0f} images/s", flush=True)
    speeds = {"host_images_per_second": host_speed}
    if fast_paths:
        with fast_paths_enabled():
            speeds["host_images_per_second_fast_paths"] = probe_speed()
        print(f"[target] with the PyTorch fast paths: {speeds['host_images_per_second_fast_paths']:.0f} images/s",
              flush=True)
    config = RunConfig("vt_resnet18", "cifar10", recipe=recipe, epochs=epochs, seed=args.seed, width=args.width,
                       batch_size=args.batch_size, time_budget_minutes=args.target_minutes,
                       schedule_clock=args.target_schedule_clock, torch_fast_paths=fast_paths, given_data=True)
    result = train(config, data=(train_set, test_set, names), run_dir=run_dir, verbose=2)
    m = result.metrics
    in_time = m["train_seconds"] <= 60 * args.target_minutes
    reached = m["top1"] >= TARGET_TOP1 and in_time
    # Flip test-time augmentation is a second, labelled number: the target is judged on plain top-1.
    # A finished run folder returns no model: reload its final one.
    model = result.model or keras.models.load_model(result.run_dir / "model.keras", compile=False)
    tta = flip_tta_accuracy(model, *test_set, *channel_stats(train_set[0]))
    print(f"[target] vt_resnet18 width {args.width}: top-1 {100 * m['top1']:.2f} % in {m['train_seconds'] / 60:.1f} min "
          f"({'reached' if reached else 'missed'} {100 * TARGET_TOP1:.0f} % in {args.target_minutes:g} min); "
          f"with flip test-time augmentation {100 * tta['top1_flip_tta']:.2f} %", flush=True)
    return _row(result, recipe=args.recipe, recipe_changes=args.recipe_set,
                schedule_clock=args.target_schedule_clock, target_top1=TARGET_TOP1,
                target_minutes=args.target_minutes, reached=bool(reached),
                top1_flip_tta=tta["top1_flip_tta"],
                reached_with_flip_tta=bool(tta["top1_flip_tta"] >= TARGET_TOP1 and in_time), epochs_probe=probe,
                **speeds)


def run_ablations(args, data, out):
    from vt_edu.training import RunConfig, train
    from vt_edu.training.loop import prepare_data

    train_set, test_set, names, _ = prepare_data("cifar10", data, None, args.ablation_train_images,
                                                 args.ablation_test_images, args.seed)
    variants = [(key, *ABLATIONS[key], args.seed) for key in ABLATIONS]
    variants.append(("paper-seed1", ABLATIONS["paper"][0] + ", seed + 1", {}, args.seed + 1))
    rows = []
    for key, label, options, seed in variants:
        epochs, probe = resolve_epochs(args.epochs, ["vt_resnet18"], args.width, recipe_of(args), args.batch_size,
                                       args.ablation_minutes, train_set, {"vt_resnet18": options})
        config = RunConfig("vt_resnet18", "cifar10", recipe=recipe_of(args), epochs=epochs, seed=seed,
                           width=args.width, batch_size=args.batch_size, model_options=options,
                           time_budget_minutes=args.ablation_minutes, given_data=True)
        result = train(config, data=(train_set, test_set, names), run_dir=out / "runs" / "ablations" / key,
                       verbose=2)
        row = _row(result, variant=key, label=label, options=options, seed=seed)
        print(f"[ablations] {key:<13} top-1 {100 * row['top1']:.2f} %  ({row['epochs_completed']} epochs, "
              f"{row['params'] / 1e6:.3f} M params, {row['macs'] / 1e6:.1f} M MACs)", flush=True)
        rows.append(row)
    return {"rows": rows, "minutes": args.ablation_minutes, "train_images": len(train_set[0]),
            "test_images": len(test_set[0]),
            "seed_noise_top1": round(abs(rows[0]["top1"] - rows[-1]["top1"]), 4)}


def throughput_worker(models, width, steps, batch):
    """Runs in a subprocess with KERAS_BACKEND set; prints one JSON line per model."""
    import keras
    import numpy as np

    from vt_edu.flops import count_macs
    from vt_edu.models import create_model

    backend = keras.backend.backend()
    jit = "auto" if backend == "jax" else False  # the CPU defaults of vt_edu.training.train
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=batch * steps)
    for name in models:
        options = {} if name == "cnn" else {"width": width}
        keras.utils.set_random_seed(0)
        model = create_model(name, **options)
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
        t0 = time.perf_counter()
        model.fit(x[: 2 * batch], y[: 2 * batch], batch_size=batch, epochs=1, verbose=0)
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        train_ips = len(x) / (time.perf_counter() - t0)
        model.predict(x[:batch], batch_size=batch, verbose=0)  # compile inference
        t0 = time.perf_counter()
        model.predict(x, batch_size=batch, verbose=0)
        infer_ips = len(x) / (time.perf_counter() - t0)
        print(json.dumps({
            "backend": backend, "model": name, "options": options, "batch_size": batch, "steps": steps,
            "jit_compile": jit, "first_epoch_seconds": round(compile_s, 2),
            "train_images_per_second": round(train_ips, 1), "inference_images_per_second": round(infer_ips, 1),
            "macs": count_macs(model).total_macs, "params": model.count_params(),
        }), flush=True)


def run_backends(args, data, out):
    from importlib.util import find_spec

    results, skipped = [], {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend not in BACKENDS:
            skipped[backend] = "unknown backend"
            continue
        if find_spec(BACKEND_PACKAGES[backend]) is None:
            skipped[backend] = f"{BACKEND_PACKAGES[backend]} is not installed"
            print(f"[backends] {backend}: skipped ({skipped[backend]})", flush=True)
            continue
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, __file__, "--worker", ",".join(THROUGHPUT_MODELS), "--width", str(args.width),
               "--throughput-steps", str(args.throughput_steps), "--throughput-batch", str(args.throughput_batch)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0:
            skipped[backend] = f"failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
        for row in lines:
            print(f"[backends] {backend:<10} {row['model']:<12} train {row['train_images_per_second']:8.1f} img/s  "
                  f"inference {row['inference_images_per_second']:8.1f} img/s  (first epoch {row['first_epoch_seconds']} s)",
                  flush=True)
        results.extend(lines)
    return {"rows": results, "skipped": skipped}


RUNNERS = {"cnn": run_cnn, "vt": run_vt, "target": run_target, "ablations": run_ablations, "backends": run_backends}


# ---------------------------------------------------------------------------- report
def _provenance_line(part):
    p = part["provenance"]
    hw = p["hardware"]
    return (f"_{p['date']}, {hw['cpu']} ({hw['cpu_cores']} cores{', GPU ' + hw['gpu'] if hw.get('gpu') else ''}), "
            f"Keras backend {p['backend']}, commit {p['git_commit']}; `{part['command']}`_")


def _run_table(rows, first="model"):
    lines = [f"| {first} | top-1 | top-5 | epochs | train min | images/s | params | MACs |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.get(first)} | {100 * r['top1']:.2f} % | {100 * r['top5']:.2f} % | {r['epochs_completed']}"
                     f"/{r['epochs_requested']} | {r['train_seconds'] / 60:.1f} | {r['images_per_second']:.0f} | "
                     f"{r['params'] / 1e6:.3f} M | {r['macs'] / 1e6:.1f} M |")
    return lines


def _ablation_epochs_sentence(rows):
    completed = {r["epochs_completed"] for r in rows}
    if len(completed) == 1 and all(r["epochs_completed"] == r["epochs_requested"] for r in rows):
        return f"Every variant trains the same {completed.pop()} epochs (the budget only caps the time)."
    return ("Each variant trains the whole epochs that fit its budget (planned from its own timing), so epochs "
            "differ; at this scale one epoch is worth several points.")


def _target_sentence(t):
    late = not t["reached"] and t["top1"] >= t["target_top1"]  # accurate enough, but after the budget
    took = (f"{t['train_seconds']:.2f} s of training, past the {t['target_minutes']:g}-minute budget" if late
            else f"{t['train_seconds'] / 60:.1f} minutes of training")
    recipe = ""
    if "recipe" in t:  # older part files name no recipe
        changes = f" with {', '.join(t['recipe_changes'])}" if t["recipe_changes"] else ""
        recipe = f" (recipe `{t['recipe']}`{changes})"
    text = f"Target {'reached' if t['reached'] else 'missed'}: top-1 {100 * t['top1']:.2f} % after {took}{recipe}."
    if t.get("schedule_clock") == "time":
        text += " The learning-rate schedule ran on the training clock (`--target-schedule-clock time`): " + (
            f"{t['epochs_completed']} epochs fitted the budget, the cosine ending with it." if t["stopped_early"]
            else f"the run reached its cap of {t['epochs_completed']} epochs before the budget ran out.")
    if "host_images_per_second" in t:  # older part files have no probe
        text += f" The machine trained this model at {t['host_images_per_second']:.0f} images/s in a probe before the run."
    if "host_images_per_second_fast_paths" in t:
        text += (f" The run trained with `--target-torch-fast-paths` (`vt_edu.torch_fast_paths`), "
                 f"{t['host_images_per_second_fast_paths']:.0f} images/s in the same probe.")
    if "top1_flip_tta" in t:
        text += (" With horizontal-flip test-time augmentation (each test image and its mirror image, softmax "
                 f"probabilities averaged: two forward passes, no extra training) {100 * t['top1_flip_tta']:.2f} %.")
    return text


def write_markdown(out):
    parts = {name: json.loads((out / f"{name}.json").read_text()) for name in PARTS if (out / f"{name}.json").exists()}
    lines = ["# CPU benchmark", "",
             "Written by `benchmarks/cpu_benchmark.py` from the part files beside this one. Test accuracy is on the "
             "test images of the data used (all 10,000 unless a part says otherwise; the JPEG copy of CIFAR-10 here: "
             "close to, not identical with, the official test set). Train minutes exclude the per-epoch evaluation; "
             "epochs are completed/planned.", ""]
    if "cnn" in parts:
        c = parts["cnn"]["result"]
        lines += ["## 1. The students' CNN, seed recipe", "", _provenance_line(parts["cnn"]), "", *_run_table([c]), "",
                  f"The students reported {100 * c['students_top1']:.2f} % after 10 epochs; this run is "
                  f"{100 * c['difference_to_students']:+.2f} points from it.", ""]
    if "vt" in parts:
        v = parts["vt"]["result"]
        lines += [f"## 2. VT-ResNet-18 vs ResNet-18 (width {v['width']:g}, same epochs) and ViT: same recipe and "
                  f"{v['minutes']:g}-minute budget", "",
                  _provenance_line(parts["vt"]), "", *_run_table(v["rows"]), "",
                  f"VT-ResNet / ResNet: training time per image x{v['vt_to_resnet_seconds_per_image']:.2f}, "
                  f"MACs x{v['vt_to_resnet_macs']:.2f}.", ""]
    if "target" in parts:
        t = parts["target"]["result"]
        lines += [f"## 3. Target: {100 * t['target_top1']:.0f} % in {t['target_minutes']:g} minutes", "",
                  _provenance_line(parts["target"]), "", *_run_table([t]), "",
                  _target_sentence(t), ""]
    if "ablations" in parts:
        a = parts["ablations"]["result"]
        lines += [f"## 4. Ablations ({a['train_images']} training / {a['test_images']} test images, "
                  f"{a['minutes']:g} min each)", "", _provenance_line(parts["ablations"]), "",
                  *_run_table(a["rows"], first="variant"), "",
                  "Variants: " + "; ".join(f"`{r['variant']}` = {r['label']}" for r in a["rows"]) + ".",
                  f"The same model with two seeds differs by {100 * a['seed_noise_top1']:.2f} points "
                  f"({a['rows'][0]['epochs_completed']} and {a['rows'][-1]['epochs_completed']} epochs): differences "
                  "smaller than that are noise. " + _ablation_epochs_sentence(a["rows"]), ""]
    if "backends" in parts:
        b = parts["backends"]["result"]
        lines += ["## 5. Images/s per Keras backend (synthetic 32x32 batches, batch 128)", "",
                  _provenance_line(parts["backends"]), "",
                  "| backend | model | train img/s | inference img/s | first epoch s |", "|---|---|---:|---:|---:|"]
        for r in b["rows"]:
            lines.append(f"| {r['backend']} | {r['model']} | {r['train_images_per_second']:.1f} | "
                         f"{r['inference_images_per_second']:.1f} | {r['first_epoch_seconds']} |")
        lines += [f"\n{backend}: skipped ({why})." for backend, why in b["skipped"].items()]
        lines.append("")
    (out / "benchmark.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        throughput_worker(args.worker.split(","), args.width, args.throughput_steps, args.throughput_batch)
        return 0
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        print(f"error: unknown part(s) {', '.join(unknown)}; use any of {', '.join(PARTS)}.", file=sys.stderr)
        return 2
    try:
        recipe_of(args)  # a bad --recipe or --recipe-set fails here, before any data are loaded
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.target_torch_fast_paths and "target" in parts:
        import keras

        if keras.backend.backend() != "torch":
            print(f"error: --target-torch-fast-paths needs KERAS_BACKEND=torch, not {keras.backend.backend()!r}.",
                  file=sys.stderr)
            return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from vt_edu.training.provenance import provenance

    data = None
    if set(parts) - {"backends"}:
        from vt_edu.data import load_cifar

        t0 = time.perf_counter()
        data = load_cifar("cifar10", source=args.data, progress=True)
        print(f"[data] {len(data[0][0])} training / {len(data[1][0])} test images ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    for part in parts:
        result = RUNNERS[part](args, data, out)
        record = {"part": part, "command": " ".join([Path(sys.executable).name, *sys.argv]), "settings": vars(args),
                  "provenance": provenance(), "result": result}
        (out / f"{part}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        write_markdown(out)
        print(f"Written: {out / (part + '.json')}, {out / 'benchmark.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
