"""The matched experiment of chapter 10 (issue 18): CNN, ResNet, VT-ResNet and ViT on equal terms.

Every model of :data:`MATCHED` trains with the same recipe (``fast`` with gradient clipping at
global norm 5, see :data:`MATCHED_RECIPE`), batch, augmentation and number of epochs
(``--epochs``, 20) on all 50,000 CIFAR-10 training images, ``--seeds`` seeds each, and is
tested on all 10,000 test images: top-1 (plain, the number every comparison uses), top-1 with
horizontal-flip test-time augmentation beside it, top-5, parameters, MACs and training images/s.
The students' models of :data:`STUDENTS` train as the students ran them (the ``seed`` recipe,
10 epochs, batch 256) so that their reported numbers can be checked.

Runs are independent and can be recorded in several sessions: each finished run is written
into ``<out>/matched.json`` at once, with its own command line and provenance (hardware,
backend, versions, date, commit), next to the rows of earlier invocations (a row is replaced
only by a new run of the same model and seed). ``<out>/benchmark.md`` is rewritten from all
rows after every run; ``--report`` only rewrites it. Interrupted runs resume from their last
completed epoch (run folders under ``<out>/runs``).

Training speed is a ratio measured side by side (``--speed``): the models' training steps
timed in alternation in one process, so a slow or busy machine slows both alike.

Recorded (2-core CPU, PyTorch backend; see ``results/README.md``)::

    KERAS_BACKEND=torch VT_EDU_DATA=../shared/datasets/cifar10-jpeg.tar.gz \\
        .venv/bin/python benchmarks/matched_benchmark.py --models vt_resnet18,resnet18 --seeds 0

Smoke test (a minute)::

    .venv/bin/python benchmarks/matched_benchmark.py --quick --out /tmp/matched-smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vt_edu.recorded import MATCHED_SEEDS, STUDENTS as REPORTED_TOP1

#: name -> (registry model, options, what it is). Options that tell models apart are spelled
#: out, so a name keeps meaning the same model if a library default changes.
MATCHED = {
    "resnet18": ("resnet18", {}, "ResNet-18 (the CNN baseline of the paper)"),
    "vt_resnet18": ("vt_resnet18", {"cosine_attention": True},
                    "VT-ResNet-18: ResNet-18 with its last stage replaced by two VT modules"),
    "vit": ("vit", {}, "the book's ViT: patch tokens from the first layer on"),
}
#: The students' models, trained as their report describes: (registry model, options, what it is).
STUDENTS = {
    "students-cnn": ("cnn", {}, "the students' CNN (the TensorFlow tutorial's)"),
    "students-vit": ("tutorial_vit", {}, "the students' fallback ViT (the Keras tutorial's)"),
}
MODELS = {**MATCHED, **STUDENTS}
#: The matched recipe: ``fast`` with a looser gradient clip. The 60-minute VT-ResNet runs
#: (results/cpu-benchmark) reached 84.58 % in 21 epochs with clipping at 5 against 83.97 %
#: in 23 epochs at 1; every matched model trains with the same setting.
MATCHED_RECIPE = ("fast", {"clip_norm": 5.0})
STUDENTS_RECIPE = ("seed", {})
STUDENTS_EPOCHS = 10
#: Top-1 the students reported after 10 epochs (their CNN, their fallback ViT).
STUDENTS_REPORTED = {"students-cnn": REPORTED_TOP1["cnn"], "students-vit": REPORTED_TOP1["vit"]}
QUICK = {"train_images": 256, "test_images": 128, "epochs": 1, "batch_size": 32, "speed_rounds": 2, "speed_steps": 2}
SPEED_REFERENCE = "resnet18"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="See the module docstring for the recorded and smoke-test command lines.")
    p.add_argument("--out", default="results/matched", help="output folder (default: results/matched).")
    p.add_argument("--data", default=None, help="CIFAR-10 source; default: VT_EDU_DATA, else the download.")
    p.add_argument("--models", default=",".join(MODELS), help=f"which models (default: all of {','.join(MODELS)}).")
    p.add_argument("--seeds", default=",".join(map(str, MATCHED_SEEDS)),
                   help=f"seeds, comma-separated (default {','.join(map(str, MATCHED_SEEDS))}).")
    p.add_argument("--epochs", type=int, default=20, help="epochs of the matched models (default 20).")
    p.add_argument("--width", type=float, default=0.25, help="width of resnet18 and vt_resnet18 (default 0.25).")
    p.add_argument("--batch-size", type=int, default=None, help="batch size of every model (default: each recipe's).")
    p.add_argument("--train-images", type=int, default=None, help="training subset (smoke tests; default: all).")
    p.add_argument("--test-images", type=int, default=None, help="test subset (smoke tests; default: all).")
    p.add_argument("--no-torch-fast-paths", dest="torch_fast_paths", action="store_false",
                   help="on the PyTorch backend, train with Keras' own code only (default: vt_edu.torch_fast_paths).")
    p.add_argument("--speed", action="store_true",
                   help="time the training steps of the chosen matched models in alternation (ResNet-18 first, the "
                        "reference) instead of training; the ratios go into matched.json.")
    p.add_argument("--speed-rounds", type=int, default=10, help="rounds of the side-by-side timing (default 10).")
    p.add_argument("--speed-steps", type=int, default=10, help="steps per model and round (default 10).")
    p.add_argument("--report", action="store_true", help="only rewrite benchmark.md from matched.json.")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {', '.join(f'{k}={v}' for k, v in QUICK.items())}.")
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.model_list = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.model_list if m not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    return args


def recipe_of(name):
    """``(recipe name, changes)`` of model ``name``: the matched recipe, or the students'."""
    return MATCHED_RECIPE if name in MATCHED else STUDENTS_RECIPE


def run_config(name, seed, args, fast_paths):
    """The :class:`RunConfig` of model ``name`` and ``seed``: the matched recipe, or the students'."""
    from vt_edu.training import RunConfig
    from vt_edu.training.recipes import get_recipe

    model, options, _ = MODELS[name]
    matched = name in MATCHED
    recipe_name, changes = recipe_of(name)
    return RunConfig(model, "cifar10", recipe=get_recipe(recipe_name, **changes),
                     epochs=args.epochs if matched else STUDENTS_EPOCHS,
                     batch_size=args.batch_size, seed=seed,
                     width=args.width if model in ("resnet18", "vt_resnet18") else None,
                     model_options=options or None, max_train_images=args.train_images,
                     max_test_images=args.test_images, torch_fast_paths=fast_paths, given_data=True)


def run_model(name, seed, args, out, data, fast_paths) -> dict:
    """Train (or resume, or read back) one run; its row of ``matched.json``."""
    import keras

    import vt_edu.models  # noqa: F401 - registers the layers that model.keras names
    from vt_edu.data import channel_stats
    from vt_edu.training import flip_tta_accuracy, train
    from vt_edu.training.loop import prepare_data

    config = run_config(name, seed, args, fast_paths)
    run_dir = out / "runs" / f"{name}-s{seed}"
    result = train(config, data=data, run_dir=run_dir, verbose=2)
    m = result.metrics
    # The same subsets train() drew (the config's limits and seed), for the flip-TTA pass.
    train_set, test_set, _, _ = prepare_data("cifar10", data, None, config.max_train_images, config.max_test_images,
                                             config.seed, progress=False)
    model = result.model or keras.models.load_model(run_dir / "model.keras", compile=False)
    tta = flip_tta_accuracy(model, *test_set, *channel_stats(train_set[0]))
    recipe_name, changes = recipe_of(name)
    return {"model": name, "seed": seed, "registry_model": config.model, "options": dict(config.model_options or {}),
            "width": config.width, "recipe": recipe_name, "recipe_changes": changes, "epochs": config.epochs,
            "batch_size": config.batch_size, "matched": name in MATCHED,
            **{k: m.get(k) for k in ("top1", "top5", "best_top1", "best_epoch", "test_loss", "epochs_completed",
                                     "train_seconds", "images_per_second", "params", "macs", "train_images",
                                     "test_images", "torch_fast_paths")},
            "top1_flip_tta": tta["top1_flip_tta"], "students_reported_top1": STUDENTS_REPORTED.get(name),
            "run_dir": str(run_dir),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "trained_now": result.model is not None,  # False: a finished run read back (store_row keeps its command)
            # The training's own provenance (a finished run read back keeps the date and commit it trained with).
            "provenance": {k: m[k] for k in ("date", "backend", "hardware", "versions", "git_commit")}}


def load_twin_script():
    """``benchmarks/torch_twin.py`` (a script beside this one, not a package module)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("torch_twin", Path(__file__).with_name("torch_twin.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_side_by_side(args, data, fast_paths) -> dict:
    """:func:`vt_edu.training.speed.alternating_speed` of the chosen matched models (ResNet-18
    first, the reference) as they train here: compiled with the matched recipe, on normalised
    training images. On the PyTorch backend also, in the same rounds, Keras' own code (without
    the fast paths) and the plain-PyTorch twins of both ResNets (``benchmarks/torch_twin.py``):
    ``keras_to_twin`` is Keras' images/s over its twin's, per round."""
    import keras

    from vt_edu.data import channel_stats, normalize
    from vt_edu.models import create_model
    from vt_edu.torch_fast_paths import enabled as fast_paths_enabled
    from vt_edu.training.optimizers import compile_for_training
    from vt_edu.training.speed import alternating_speed, keras_steps, spread

    def with_fast_paths(step, on):
        def run(i):
            with fast_paths_enabled(on):  # only around this model's steps: the others run as they are
                step(i)
        return run

    names = [SPEED_REFERENCE] + [m for m in args.model_list if m in MATCHED and m != SPEED_REFERENCE]
    (x, y), _, class_names = data
    reference = run_config(SPEED_REFERENCE, 0, args, fast_paths)
    batch_size = reference.batch_size
    n = batch_size * min(args.speed_steps, 10)
    images = normalize(x[:n], *channel_stats(x))

    def keras_step(name, on):
        config = run_config(name, 0, args, on)
        model = create_model(config.model, num_classes=len(class_names), **config.options)
        compile_for_training(model, config.recipe, batch_size, len(x) // batch_size, config.epochs, len(class_names))
        return with_fast_paths(keras_steps(model, images, y[:n], batch_size), on)

    steps = {name: keras_step(name, fast_paths) for name in names}
    twins = keras.backend.backend() == "torch"
    if twins:
        twin = load_twin_script()
        recipe = reference.recipe
        for name in twin.MODELS:
            if fast_paths:
                steps[f"{name} (Keras, no fast paths)"] = keras_step(name, False)
            steps[f"{name} (PyTorch twin)"] = twin.twin_steps(
                twin.build_twin(name, num_classes=len(class_names), width=args.width), images, y[:n], batch_size,
                learning_rate=recipe.scaled_learning_rate(batch_size), momentum=recipe.momentum,
                weight_decay=recipe.weight_decay, label_smoothing=recipe.label_smoothing, clip_norm=recipe.clip_norm)
    speed = alternating_speed(steps, batch_size, args.speed_rounds, args.speed_steps)
    if twins:
        ips = {name: s["values"] for name, s in speed["images_per_second"].items()}
        per_round = lambda a, b: spread(p / q for p, q in zip(ips[a], ips[b]))  # noqa: E731
        speed["keras_to_twin"] = {name: per_round(name, f"{name} (PyTorch twin)") for name in twin.MODELS}
        if fast_paths:
            speed["keras_no_fast_paths_to_twin"] = {
                name: per_round(f"{name} (Keras, no fast paths)", f"{name} (PyTorch twin)") for name in twin.MODELS}
    return speed | {"reference": SPEED_REFERENCE, "torch_fast_paths": fast_paths}


def read_record(out) -> dict:
    path = out / "matched.json"
    return json.loads(path.read_text()) if path.exists() else {"part": "matched", "rows": []}


def store_row(out, row) -> dict:
    """Put ``row`` into ``<out>/matched.json`` (replacing the same model and seed) and return the record."""
    record = read_record(out)
    key = (row["model"], row["seed"])
    earlier = next((r for r in record["rows"] if (r["model"], r["seed"]) == key), None)
    row = dict(row)
    if not row.pop("trained_now", True) and earlier is not None:
        row["command"] = earlier["command"]  # the command that trained it, not the one that read it back
    rows = [r for r in record["rows"] if (r["model"], r["seed"]) != key] + [row]
    order = list(MODELS)
    record["rows"] = sorted(rows, key=lambda r: (order.index(r["model"]) if r["model"] in order else len(order),
                                                 r["seed"]))
    write_record(out, record)
    return record


def write_record(out, record) -> None:
    tmp = out / "matched.json.tmp"
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    tmp.replace(out / "matched.json")  # atomic: an interruption never leaves half a record


def speed_lines(speed) -> list:
    """The side-by-side timing as report lines (none if it was not run)."""
    if not speed:
        return []
    p = speed["provenance"]
    f = lambda s: f"{s['mean']:.3f} ({s['min']:.3f} to {s['max']:.3f})"  # noqa: E731
    lines = ["## Speed, side by side", "",
             f"_{p['date']}, {p['hardware']['cpu']} ({p['hardware']['cpu_cores']} cores), Keras backend {p['backend']}, "
             f"fast paths {'on' if speed['torch_fast_paths'] else 'off'}; {speed['rounds']} rounds of {speed['steps']} "
             f"steps, batch {speed['batch_size']}; `{speed['command']}`_", "",
             f"| model | images/s over {speed['reference']}'s (mean, min to max over the rounds) |", "|---|---:|"]
    lines += [f"| {name} | {f(ratio)} |" for name, ratio in speed["ratio_to_first"].items()]
    for key, what in (("keras_to_twin", "Keras (as trained) over its plain-PyTorch twin"),
                      ("keras_no_fast_paths_to_twin", "Keras without the fast paths over the twin")):
        if key in speed:
            lines += ["", f"{what}: " + "; ".join(f"{name} {f(r)}" for name, r in speed[key].items()) + "."]
    return lines + [""]


def readme_paragraph(record) -> str:
    """The README's performance sentence, from the record (a test keeps the README's copy equal)."""
    from vt_edu.recorded import MATCHED_TARGET_TOP1, matched_results

    results = matched_results(record)
    said = []
    for model in ("vt_resnet18", "resnet18"):
        if model in results:
            m = results[model]
            values = " and ".join(f"{100 * v:.2f} %" for v in m["top1"]["values"])
            seeds = " and ".join(map(str, m["seeds"]))
            said.append(f"{m['label']} {values} (seed{'s' * (len(m['seeds']) > 1)} {seeds})")
    if not said:
        return "The matched experiment is not recorded yet."
    vt = results.get("vt_resnet18")
    text = (f"After {vt['epochs'] if vt else 20} epochs at width 0.25, plain top-1: " + "; ".join(said) + ".")
    if vt:
        missed = [r["seed"] for r in vt["rows"] if r["top1"] < MATCHED_TARGET_TOP1]
        text += (f" The {100 * MATCHED_TARGET_TOP1:.0f} % target for VT-ResNet-18 is "
                 + (f"missed on seed{'s' * (len(missed) > 1)} {', '.join(map(str, missed))}." if missed
                    else "met on every recorded seed."))
    speed = record.get("speed")
    if speed and "vt_resnet18" in speed["ratio_to_first"]:
        t = [1 / v for v in speed["ratio_to_first"]["vt_resnet18"]["values"]]
        text += (f" Timed side by side, VT-ResNet-18 trains at {sum(t) / len(t):.2f} times ResNet-18's time per "
                 f"image ({min(t):.2f} to {max(t):.2f} over {len(t)} rounds)")
        if "keras_to_twin" in speed:
            k = speed["keras_to_twin"]
            text += (", and Keras on PyTorch with the fast paths at "
                     + " and ".join(f"{k[m]['mean']:.2f} ({k[m]['min']:.2f} to {k[m]['max']:.2f})" for m in ("vt_resnet18", "resnet18"))
                     + " times the speed of plain-PyTorch twins of VT-ResNet-18 and ResNet-18")
        text += "."
    return text


def write_markdown(out, record) -> None:
    from vt_edu.recorded import matched_summary, matched_table

    lines = ["# The matched experiment", "", "Written by `benchmarks/matched_benchmark.py` from `matched.json`.", "",
             matched_table(record), "", matched_summary(record), "", *speed_lines(record.get("speed")), "## Every run", "",
             "| model | seed | recipe | epochs | top-1 % | flip TTA % | top-5 % | params | MACs | images/s | backend, date |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in record["rows"]:
        p = r["provenance"]
        recipe = r["recipe"] + "".join(f", {k}={v:g}" for k, v in r["recipe_changes"].items())
        lines.append(f"| {r['model']} | {r['seed']} | {recipe} | {r['epochs_completed']} | {100 * r['top1']:.2f} | "
                     f"{100 * r['top1_flip_tta']:.2f} | {100 * r['top5']:.2f} | {r['params']:,} | {r['macs']:,} | "
                     f"{r['images_per_second']:.0f} | {p['backend']}, {p['date'][:10]} |")
    (out / "benchmark.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report:
        record = read_record(out)
        write_markdown(out, record)
        print(f"Written: {out / 'benchmark.md'}. The README's sentence:\n{readme_paragraph(record)}")
        return 0
    import keras

    from vt_edu.data import load_cifar

    from vt_edu.training.provenance import provenance

    fast_paths = args.torch_fast_paths and keras.backend.backend() == "torch"
    data = load_cifar("cifar10", source=args.data, progress=True)
    if args.speed:
        speed = time_side_by_side(args, data, fast_paths)
        record = read_record(out)
        record["speed"] = speed | {"command": " ".join([Path(sys.executable).name, *sys.argv]),
                                   "provenance": provenance()}
        write_record(out, record)
        write_markdown(out, record)
        for name, ratio in speed["ratio_to_first"].items():
            print(f"[speed] {name} / {SPEED_REFERENCE} images/s: {ratio['mean']:.3f} (rounds {ratio['min']:.3f} to "
                  f"{ratio['max']:.3f})", flush=True)
        for key in ("keras_to_twin", "keras_no_fast_paths_to_twin"):
            for name, ratio in speed.get(key, {}).items():
                print(f"[speed] {key} {name}: {ratio['mean']:.3f} (rounds {ratio['min']:.3f} to {ratio['max']:.3f})",
                      flush=True)
        return 0
    total = len(args.seed_list) * len(args.model_list)
    done = 0
    for seed in args.seed_list:
        for name in args.model_list:
            t0 = time.perf_counter()
            row = run_model(name, seed, args, out, data, fast_paths)
            record = store_row(out, row)
            write_markdown(out, record)
            done += 1
            print(f"[{done}/{total}] {name} seed {seed}: top-1 {100 * row['top1']:.2f} % (flip TTA "
                  f"{100 * row['top1_flip_tta']:.2f} %) after {row['epochs_completed']} epochs, "
                  f"{row['images_per_second']:.0f} images/s ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"Written: {out / 'matched.json'}, {out / 'benchmark.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
