"""CPU benchmark of the book's models on CIFAR-10 (a script, not a test).

Three measurements, each written with its provenance (hardware, library versions,
date, git commit) to ``<out>/benchmark.json`` and ``<out>/benchmark.md``:

1. ``cnn``: the students' CNN with the ``seed`` recipe (Adam 1e-3, batch 256, no
   augmentation) for ``--cnn-epochs`` epochs (10) on the full training set: test
   top-1/top-5, time, images/s. This is the baseline the students reported.
2. ``vt``: ``vt_resnet18`` vs ``resnet18`` at the same ``--width`` with the same
   ``--recipe`` and the same training-time budget (``--minutes`` each), via
   :func:`vt_edu.training.compare` (same images, seed, batch size): a table,
   ``curves.png`` and one run folder per model.
3. ``backends``: training and inference images/s of the benchmark models (``cnn``,
   ``resnet18``, ``vt_resnet18`` at ``--width``) on every installed Keras backend
   (tensorflow, jax, torch). Each backend runs in its own subprocess with
   ``KERAS_BACKEND`` set, on synthetic normalised 32x32 batches (throughput does not
   depend on pixel values), after one warm-up (compilation) epoch.

Data: ``--data`` or ``VT_EDU_DATA`` (a folder or .tar.gz in image-folder or official
CIFAR layout, see :func:`vt_edu.data.load_cifar`). If the data are the JPEG copy of
CIFAR-10, accuracies are close to but not identical with the official test set.

Full run (about 1-1.5 hours on a 2-core CPU with the defaults)::

    VT_EDU_DATA=/path/to/cifar10 .venv/bin/python benchmarks/cpu_benchmark.py \\
        --out results/cpu-benchmark --width 0.25 --recipe fast --minutes 20

Smoke test (a minute or two)::

    .venv/bin/python benchmarks/cpu_benchmark.py --out /tmp/bench-smoke --max-train-images 512 \\
        --max-test-images 200 --cnn-epochs 1 --epochs 1 --minutes 0.5 --throughput-steps 3

Interrupted runs resume: the run folders under ``<out>/runs`` continue from their last
completed epoch when the same command is run again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
THROUGHPUT_MODELS = ("cnn", "resnet18", "vt_resnet18")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="See the module docstring for the full and smoke-test command lines.")
    p.add_argument("--out", default="results/cpu-benchmark", help="output folder (default: results/cpu-benchmark).")
    p.add_argument("--data", default=None, help="CIFAR-10 source; default: VT_EDU_DATA, else the download.")
    p.add_argument("--parts", default="cnn,vt,backends", help="which measurements: any of cnn,vt,backends (default: all).")
    p.add_argument("--cnn-epochs", type=int, default=10, help="epochs of the students' CNN (default 10).")
    p.add_argument("--width", type=float, default=0.25, help="width of resnet18/vt_resnet18 (default 0.25).")
    p.add_argument("--recipe", default="fast", help="recipe of part 2 (default: fast).")
    p.add_argument("--minutes", type=float, default=20.0, help="training-time budget per model in part 2 (default 20).")
    p.add_argument("--epochs", type=int, default=200,
                   help="epoch cap in part 2; the schedule is laid out over it (default 200: the budget binds).")
    p.add_argument("--batch-size", type=int, default=None, help="batch size of part 2 (default: the recipe's).")
    p.add_argument("--max-train-images", type=int, default=None, help="training subset (smoke tests).")
    p.add_argument("--max-test-images", type=int, default=None, help="test subset (smoke tests).")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backends", default=",".join(BACKENDS), help="backends of part 3 (default: all installed).")
    p.add_argument("--throughput-steps", type=int, default=20, help="timed training steps per model in part 3.")
    p.add_argument("--throughput-batch", type=int, default=128, help="batch size in part 3 (default 128).")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: part 3 in a subprocess
    return p.parse_args(argv)


# ------------------------------------------------------------------- part 3 (worker)
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


def measure_backends(args):
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


# ---------------------------------------------------------------------- parts 1 and 2
def run_cnn(args, data, out):
    from vt_edu.training import train

    result = train("cnn", "cifar10", recipe="seed", epochs=args.cnn_epochs, run_dir=out / "runs" / "cnn-seed",
                   seed=args.seed, data=data, max_train_images=args.max_train_images,
                   max_test_images=args.max_test_images, verbose=2)
    m = result.metrics
    print(f"[cnn] seed recipe, {m['epochs_completed']} epochs: top-1 {100 * m['top1']:.2f} %, top-5 "
          f"{100 * m['top5']:.2f} %, {m['train_seconds'] / 60:.1f} min, {m['images_per_second']:.0f} img/s", flush=True)
    return {k: m[k] for k in ("top1", "top5", "best_top1", "epochs_completed", "train_seconds", "images_per_second",
                              "train_images", "test_images", "params", "macs")} | {"run_dir": str(result.run_dir)}


def run_vt(args, data, out):
    from vt_edu.training import compare

    results = compare(["resnet18", "vt_resnet18"], "cifar10", recipe=args.recipe, out_dir=out / "runs" / "vt-vs-resnet",
                      epochs=args.epochs, max_train_images=args.max_train_images, max_test_images=args.max_test_images,
                      seed=args.seed, data=data, verbose=2, width=args.width, batch_size=args.batch_size,
                      time_budget_minutes=args.minutes)
    rows = []
    for r in results:
        m = r.metrics
        print(f"[vt] {m['model']:<12} width {args.width}: top-1 {100 * m['top1']:.2f} % after {m['epochs_completed']} "
              f"epochs in {m['train_seconds'] / 60:.1f} min ({m['images_per_second']:.0f} img/s), "
              f"{m['params'] / 1e6:.2f} M params, {m['macs'] / 1e6:.1f} M MACs", flush=True)
        rows.append({k: m[k] for k in ("model", "top1", "top5", "best_top1", "epochs_completed", "stopped_early",
                                        "train_seconds", "images_per_second", "params", "macs", "batch_size")})
    return {"rows": rows, "report": str(out / "runs" / "vt-vs-resnet" / "compare.md")}


def write_markdown(report, path):
    lines = [f"# CPU benchmark ({report['provenance']['date']})", ""]
    hw = report["provenance"]["hardware"]
    lines += [f"Hardware: {hw['cpu']}, {hw['cpu_cores']} cores{', GPU ' + hw['gpu'] if hw.get('gpu') else ''}; "
              f"versions {report['provenance']['versions']}; commit {report['provenance']['git_commit']}.",
              f"Command: `{report['command']}`", ""]
    if "cnn" in report:
        c = report["cnn"]
        lines += ["## 1. Students' CNN, seed recipe", "",
                  f"top-1 {100 * c['top1']:.2f} %, top-5 {100 * c['top5']:.2f} % after {c['epochs_completed']} epochs, "
                  f"{c['train_seconds'] / 60:.1f} min, {c['images_per_second']:.0f} images/s "
                  f"({c['train_images']} training / {c['test_images']} test images).", ""]
    if "vt" in report:
        lines += ["## 2. VT-ResNet-18 vs ResNet-18, same width, recipe and time budget", "",
                  "| model | top-1 | top-5 | epochs | train min | images/s | params | MACs |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in report["vt"]["rows"]:
            lines.append(f"| {r['model']} | {100 * r['top1']:.2f} % | {100 * r['top5']:.2f} % | {r['epochs_completed']} | "
                         f"{r['train_seconds'] / 60:.1f} | {r['images_per_second']:.0f} | {r['params'] / 1e6:.2f} M | "
                         f"{r['macs'] / 1e6:.1f} M |")
        lines.append("")
    if "backends" in report:
        lines += ["## 3. Images/s per Keras backend (synthetic 32x32 batches)", "",
                  "| backend | model | train img/s | inference img/s | first epoch s |", "|---|---|---:|---:|---:|"]
        for r in report["backends"]["rows"]:
            lines.append(f"| {r['backend']} | {r['model']} | {r['train_images_per_second']:.1f} | "
                         f"{r['inference_images_per_second']:.1f} | {r['first_epoch_seconds']} |")
        for backend, why in report["backends"]["skipped"].items():
            lines.append(f"\n{backend}: skipped ({why}).")
        lines.append("")
    Path(path).write_text("\n".join(lines) + "\n")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        throughput_worker(args.worker.split(","), args.width, args.throughput_steps, args.throughput_batch)
        return 0
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"cnn", "vt", "backends"}
    if unknown:
        print(f"error: unknown part(s) {', '.join(sorted(unknown))}; use cnn, vt, backends.", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from vt_edu.training.provenance import provenance

    report = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "settings": vars(args),
              "provenance": provenance()}
    data = None
    if parts & {"cnn", "vt"}:
        from vt_edu.data import load_cifar

        t0 = time.perf_counter()
        data = load_cifar("cifar10", source=args.data, progress=True)
        print(f"[data] {len(data[0][0])} training / {len(data[1][0])} test images ({time.perf_counter() - t0:.0f} s)", flush=True)
    if "cnn" in parts:
        report["cnn"] = run_cnn(args, data, out)
    if "vt" in parts:
        report["vt"] = run_vt(args, data, out)
    if "backends" in parts:
        report["backends"] = measure_backends(args)
    (out / "benchmark.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    write_markdown(report, out / "benchmark.md")
    print(f"Written: {out / 'benchmark.json'}, {out / 'benchmark.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
