"""Kill a small training run with SIGKILL at random instants and check that it resumes
to the uninterrupted run: the same history (losses, accuracies, learning rates) and the
same final and best weights, up to float rounding.

    python tools/kill_resume_check.py --repeats 20            # 20 trials, one report line each
    python tools/kill_resume_check.py --repeats 5 --kills 3   # 3 kills per trial before it may finish
    python tools/kill_resume_check.py --after-first-checkpoint # kills in epochs 2-3 and the final files

Each trial starts a fresh run folder, and ``--kills`` times starts ``train()`` in a new
process and sends it SIGKILL at an instant drawn uniformly from the uninterrupted run's
training time (counted from the moment fit() starts, so the kill lands in training,
checkpoint writing or the final files, not in importing Keras; a trial whose run ended
before its kill starts again with new instants); then it runs the same call to
completion and compares. The run: ``cnn`` (width 0.25, dropout 0.2) with the
``paper-advanced`` recipe (RandAugment, EMA weights, label smoothing; learning rate
scaled for its batch of 20), 3 epochs of 200 synthetic 32x32 images. The test
``tests/test_kill_resume.py`` runs one short trial of it.

Exit status: 0 when every trial resumed to the uninterrupted run, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "KILL-RESUME-CHECK: fit started"
EPOCHS, BATCH, TRAIN_IMAGES, TEST_IMAGES = 3, 20, 200, 60
COMPARED = ("epoch", "lr", "loss", "accuracy", "top5", "val_loss", "val_accuracy", "val_top5")
RTOL, ATOL = 1e-5, 1e-6


def synthetic_data(seed=0):
    """200 training and 60 test images of 10 classes, brightness depending on the class."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def split(n):
        y = np.arange(n) % 10
        x = np.clip(rng.normal(20 * y[:, None, None, None] + 30, 40, (n, 32, 32, 3)), 0, 255).astype(np.uint8)
        return x, y

    return split(TRAIN_IMAGES), split(TEST_IMAGES), [f"c{i}" for i in range(10)]


def child(run_dir: str) -> None:
    """Train the check's run in ``run_dir`` (resuming it when it was interrupted)."""
    import keras

    from vt_edu.training import get_recipe, train

    class Marker(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            print(MARKER, flush=True)

    recipe = get_recipe("paper-advanced", reference_batch=BATCH)
    train("cnn", recipe=recipe, epochs=EPOCHS, batch_size=BATCH, width=0.25, data=synthetic_data(), seed=3,
          run_dir=run_dir, verbose=0, callbacks=[Marker()])


def _command(run_dir: Path) -> list:
    return [sys.executable, str(Path(__file__).resolve()), "--child", str(run_dir)]


def _environment() -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def run_to_completion(run_dir: Path) -> float:
    """Run the check's training in a new process until it ends; the seconds from fit()'s start to the end."""
    process = subprocess.Popen(_command(run_dir), env=_environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    started = None
    for line in process.stdout:
        if MARKER in line and started is None:
            started = time.perf_counter()
    process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"training in {run_dir} failed ({process.returncode}): {process.stderr.read()[-3000:]}")
    return time.perf_counter() - (started or time.perf_counter())


def run_and_kill(run_dir: Path, after_seconds: float, after_first_checkpoint: bool = False) -> bool:
    """Start the training and SIGKILL it ``after_seconds`` after fit() starts (or, with
    ``after_first_checkpoint``, after the first epoch's checkpoint is committed); ``True``
    if the kill landed (``False``: the run finished first, or ended before fit() started)."""
    process = subprocess.Popen(_command(run_dir), env=_environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if MARKER in line:
            break
    else:  # ended without starting fit(): finished (a completed run returns at once) or failed
        process.wait()
        return False
    if after_first_checkpoint:
        while not (run_dir / "backup").is_dir() or not any((run_dir / "backup").glob("epoch-*[0-9]")):
            if process.poll() is not None:
                return False
            time.sleep(0.01)
    try:
        process.wait(timeout=after_seconds)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True


def differences(reference: Path, resumed: Path) -> list:
    """What differs between two finished run folders of the check: history values and
    final/best weights beyond float rounding. ``[]`` when they agree."""
    import keras
    import numpy as np

    from vt_edu.training.loop import read_history

    found = []
    for folder in (reference, resumed):
        if not (folder / "metrics.json").exists():
            return [f"{folder} is not finished"]
    a, b = read_history(reference / "history.csv"), read_history(resumed / "history.csv")
    if [r["epoch"] for r in a] != [r["epoch"] for r in b]:
        return [f"epochs {[r['epoch'] for r in a]} vs {[r['epoch'] for r in b]}"]
    for ra, rb in zip(a, b):
        for key in COMPARED:
            if not np.isclose(ra[key], rb[key], rtol=RTOL, atol=ATOL):
                found.append(f"epoch {ra['epoch']} {key}: {ra[key]!r} vs {rb[key]!r}")
    ma = keras.models.load_model(reference / "model.keras", compile=False)
    mb = keras.models.load_model(resumed / "model.keras", compile=False)
    for name, model_b in (("model.keras", mb), ("best.weights.h5", None)):
        if model_b is None:
            ma.load_weights(reference / "best.weights.h5")
            model_b = keras.models.clone_model(ma)
            model_b.load_weights(resumed / "best.weights.h5")
        worst = max(float(np.max(np.abs(np.asarray(va) - np.asarray(vb)) / (ATOL + RTOL * np.abs(np.asarray(va)))))
                    for va, vb in zip(ma.get_weights(), model_b.get_weights()))
        if worst > 1:
            found.append(f"{name}: weights differ by {worst:.3g} x the tolerance")
    ia = json.loads((reference / "metrics.json").read_text())
    ib = json.loads((resumed / "metrics.json").read_text())
    for key in ("top1", "top5", "test_loss", "epochs_completed"):
        if not np.isclose(ia[key], ib[key], rtol=RTOL, atol=ATOL):
            found.append(f"metrics {key}: {ia[key]!r} vs {ib[key]!r}")
    return found


def trial(run_dir: Path, reference: Path, training_seconds: float, kills: int, rng: random.Random,
          after_first_checkpoint: bool = False, attempts: int = 5) -> dict:
    """``kills`` runs killed at random instants in ``run_dir`` (drawn uniformly from
    ``[0, training_seconds]`` after fit() starts or after the first checkpoint), then one
    to completion, compared with ``reference``. A run that ends before its kill (faster
    than the uninterrupted one was) is no kill: the trial then starts again in a fresh
    folder with new instants, up to ``attempts`` times."""
    for attempt in range(1, attempts + 1):
        shutil.rmtree(run_dir, ignore_errors=True)
        instants, landed, left = [], 0, []
        for _ in range(kills):
            instant = rng.uniform(0.0, training_seconds)
            instants.append(round(instant, 2))
            killed = run_and_kill(run_dir, instant, after_first_checkpoint)
            landed += killed
            if killed:
                left.append(what_a_kill_left(run_dir))
        if landed == kills:
            break
    run_to_completion(run_dir)
    return {"kill_instants_s": instants, "kills_landed": landed, "attempts": attempt, "left": left,
            "differences": differences(reference, run_dir)}


def what_a_kill_left(run_dir: Path) -> str:
    """The state a kill left, in words: committed epochs, an uncommitted checkpoint, temporary files."""
    if (run_dir / "metrics.json").exists():
        return "the finished run (killed while the process ended)"
    backup = run_dir / "backup"
    committed = sorted(p.name for p in backup.glob("epoch-*") if not p.name.endswith(".tmp")) if backup.is_dir() else []
    parts = [f"committed {committed[-1]}" if committed else "no checkpoint"]
    if backup.is_dir() and any(backup.glob("*.tmp")):
        parts.append("a partial checkpoint")
    if run_dir.is_dir() and any(run_dir.glob(".tmp-*")):
        parts.append("a partial file")
    if (run_dir / "model.keras").exists():
        parts.append("model.keras written")
    return ", ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="trials (default 20)")
    parser.add_argument("--kills", type=int, default=1, help="SIGKILLs per trial before it runs to the end (default 1)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for the run folders (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill instants")
    parser.add_argument("--after-first-checkpoint", action="store_true",
                        help="count the instants from the first committed checkpoint instead of fit()'s start "
                             "(kills then land in later epochs, checkpoint commits and the final files)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child)
        return 0
    import tempfile

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kill-resume-"))
    rng = random.Random(args.seed)
    reference = workdir / "uninterrupted"
    seconds = run_to_completion(reference)
    print(f"uninterrupted run: {seconds:.1f} s from fit() to the end ({reference})", flush=True)
    failures = 0
    for i in range(args.repeats):
        result = trial(workdir / f"trial-{i:02d}", reference, seconds, args.kills, rng, args.after_first_checkpoint)
        ok = not result["differences"]
        failures += not ok
        since = "the first checkpoint" if args.after_first_checkpoint else "fit() started"
        print(f"trial {i + 1:2d}: SIGKILL at {result['kill_instants_s']} s after {since} "
              f"({result['kills_landed']} of {args.kills} landed; attempt {result['attempts']}; left: "
              f"{'; '.join(result['left'])}): "
              + ("resumed to the uninterrupted run" if ok else "DIFFERS: " + "; ".join(result["differences"][:5])),
              flush=True)
    print(f"{args.repeats - failures} of {args.repeats} trials resumed to the uninterrupted run.")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
