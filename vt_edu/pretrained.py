"""A trained VT-ResNet for the chapters' pictures: load it if present, else train it.

Attention maps of a randomly initialised model are noise, so the chapters that show
what tokens look at use :func:`load_demo_model`, which takes the first of:

1. weights committed with the package (``vt_edu/weights/``), trained by this module's
   command line (``python -m vt_edu.pretrained``) on the full CIFAR-10;
2. weights an earlier chapter already trained on this machine (``vt_edu.config.cache_dir()``);
3. a training run now, sized by the profile (quick: a few minutes on a CPU), whose
   weights are cached for the next chapter.

Cached weights that cannot be used (truncated, corrupt, or saved by an older model
definition) are trained again; committed ones raise :class:`DemoWeightsError`, one line
naming the file and how to restore it.

Training goes through :func:`vt_edu.training.train`, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vt_edu.config import by_profile, cache_dir
from vt_edu.names import DEFAULT_NUM_TOKENS

NAME = "demo_vt_resnet18_w025_cifar10"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# The paper's VT-ResNet-18 (L=16, 2 modules, filter then recurrent tokenizer), at a
# quarter of the channels so that it trains on a CPU. Its token transformer is the paper's
# Eq. 3 (plain dot-product logits), which chapters 5-7 and 11 check line by line against
# NumPy; vt_edu's default is cosine attention since results/token-attention.
MODEL_OPTIONS = {"width": 0.25, "num_tokens": DEFAULT_NUM_TOKENS, "cosine_attention": False}


class DemoModel(NamedTuple):
    """A trained demo model and what is needed to feed it.

    Attributes:
        model: the trained ``vt_resnet18`` Keras model (logits out).
        mean, std: per-channel statistics for :func:`vt_edu.data.normalize`.
        class_names: CIFAR-10 class names in label order.
        test_accuracy: top-1 on the CIFAR-10 test images it was evaluated on.
        origin: where the weights came from, in words.
    """

    model: object
    mean: np.ndarray
    std: np.ndarray
    class_names: list
    test_accuracy: float
    origin: str


def _files(folder: Path) -> tuple[Path, Path]:
    return folder / f"{NAME}.weights.h5", folder / f"{NAME}.json"


class DemoWeightsError(ValueError):
    """Demo weights that cannot be used: damaged files or weights of another model definition."""


def _load(folder: Path, origin: str, stale_ok: bool = False) -> DemoModel | None:
    """The demo model saved in ``folder``, or None if there is none.

    With ``stale_ok`` (the cache), files that cannot be used, whether damaged (a
    truncated or corrupt ``.weights.h5`` or ``.json``) or saved by an older model
    definition (the weights no longer fit), count as none, so they are retrained;
    otherwise (the committed weights) that is a :class:`DemoWeightsError` naming the file.
    """
    weights, meta_path = _files(folder)
    if not (weights.is_file() and meta_path.is_file()):
        return None
    from vt_edu.models import create_model

    try:
        meta = json.loads(meta_path.read_text())
        trained = meta["trained"]
        origin = (f"{origin}: {trained['train_images']} training images, {trained['epochs']} epochs, "
                  f"{trained['recipe']} recipe, on {trained['hardware']}")
        mean, std = np.asarray(meta["mean"], np.float32), np.asarray(meta["std"], np.float32)
        class_names, test_accuracy = list(meta["class_names"]), float(meta["test_accuracy"])
        model = create_model("vt_resnet18", num_classes=len(class_names), **meta["model_options"])
    except (OSError, ValueError, KeyError, TypeError) as error:  # JSONDecodeError, ModelConfigError: ValueErrors
        problem = DemoWeightsError(f"{meta_path} is not a readable demo model description ({_reason(error)})")
        return _unusable(problem, folder, stale_ok)
    # A damaged data block still opens as HDF5 and loads as other numbers: only the
    # checksum recorded when the weights were written tells (files before it have none).
    expected = meta.get("weights_sha256")
    if expected is not None and _sha256(weights) != expected:
        return _unusable(DemoWeightsError(f"{weights} is damaged (its SHA-256 is not the one recorded in "
                                          f"{meta_path.name})"), folder, stale_ok)
    try:
        model.load_weights(weights)
    except ValueError as error:  # the file reads, but its weights do not fit this model
        problem = DemoWeightsError(f"{weights} was saved by an older vt_resnet18 ({_reason(error)})")
        return _unusable(problem, folder, stale_ok)
    except OSError as error:  # h5py: truncated, or not an HDF5 file at all
        return _unusable(DemoWeightsError(f"{weights} is damaged ({_reason(error)})"), folder, stale_ok)
    return DemoModel(model, mean, std, class_names, test_accuracy, origin)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {_first_line(error)}"


def _unusable(problem: DemoWeightsError, folder: Path, stale_ok: bool) -> None:
    """Cached weights that cannot be used are retrained; committed ones are an error to fix."""
    if not stale_ok:
        raise DemoWeightsError(
            f"{problem}. Restore the committed files ({folder}: `git checkout -- vt_edu/weights` in a clone, "
            "else reinstall vt_edu) or train new ones with `python -m vt_edu.pretrained`."
        )
    print(f"{problem}; retraining the demo model.")
    return None


def train_demo_model(folder: Path, epochs: int, max_train_images: int | None, max_test_images: int | None,
                     batch_size: int | None = None, verbose="auto") -> None:
    """Train the demo model and write ``<NAME>.weights.h5`` and ``<NAME>.json`` into ``folder``.

    The run folder (resumable) lives in the cache; only the two small files are written
    to ``folder``, atomically, so an interruption never leaves half a model behind.
    """
    from vt_edu.training import train
    from vt_edu.training.loop import prepare_data

    data = prepare_data("cifar10", max_train_images=max_train_images, max_test_images=max_test_images)
    run = train(
        "vt_resnet18",
        "cifar10",
        recipe="fast",
        epochs=epochs,
        batch_size=batch_size,
        run_dir=cache_dir() / "runs" / f"{NAME}-e{epochs}-n{max_train_images or 'all'}",
        data=data[:3],
        width=MODEL_OPTIONS["width"],
        model_options={k: v for k, v in MODEL_OPTIONS.items() if k != "width"},
        verbose=verbose,
        overwrite=True,  # a run folder left by an older configuration is stale, not resumable
    )
    model = run.model
    if model is None:  # the run had finished before: take its final model from the run folder
        import keras

        model = keras.models.load_model(run.run_dir / "model.keras")
    _write_demo(folder, model, run.config, run.metrics, data[0][0], data[2])


def export_run(run_dir, folder: Path = WEIGHTS_DIR) -> DemoModel:
    """Make a finished ``vt_edu.training.train`` run of the demo configuration the demo model.

    Reads the run's final ``model.keras`` and its ``config.json``/``metrics.json``,
    reloads the training images the run used (from ``VT_EDU_DATA`` or the download) to
    record the normalisation statistics it trained with, and checks that the data are
    the run's (same fingerprint).

    Raises:
        ValueError: the run is unfinished, of another model or configuration, or the
            data found now are not the ones it was trained on.
    """
    from vt_edu.models import create_model
    from vt_edu.training.loop import prepare_data
    from vt_edu.training.run_folder import RunFolder

    run_dir = Path(run_dir)
    config_path, metrics_path = run_dir / "config.json", run_dir / "metrics.json"
    if not (config_path.is_file() and metrics_path.is_file() and (run_dir / "model.keras").is_file()):
        raise ValueError(f"{run_dir} is not a finished run folder (config.json, metrics.json and model.keras expected).")
    config = RunFolder(run_dir).read_config()  # a run's config.json, or a clear error
    metrics = json.loads(metrics_path.read_text())
    options = {"num_tokens": DEFAULT_NUM_TOKENS, **config["model_options"]}
    if config["model"] != "vt_resnet18" or options != MODEL_OPTIONS or config["dataset"] != "cifar10":
        raise ValueError(f"{run_dir} trained {config['model']} {config['model_options']} on {config['dataset']}; "
                         f"the demo model is vt_resnet18 {MODEL_OPTIONS} on cifar10.")
    data = prepare_data("cifar10", max_train_images=config["max_train_images"],
                        max_test_images=config["max_test_images"], seed=config["seed"])
    if data[3]["fingerprint"] != config["data"]["fingerprint"]:
        raise ValueError(f"the CIFAR-10 found now is not the data {run_dir} was trained on (fingerprints differ).")
    # The run's final weights, read into the demo architecture (an architecture that does
    # not match raises here rather than when a chapter loads the weights).
    model = create_model("vt_resnet18", num_classes=len(data[2]), **MODEL_OPTIONS)
    model.load_weights(run_dir / "model.keras")
    _write_demo(folder, model, config, metrics, data[0][0], data[2])
    return _load(folder, f"weights exported from {run_dir}")


def _write_demo(folder: Path, model, config: dict, metrics: dict, x_train, class_names) -> None:
    """Write the weights and the JSON description of a trained demo model, atomically."""
    from vt_edu.data import channel_stats

    mean, std = channel_stats(x_train)  # the statistics train() normalises with
    hardware = metrics.get("hardware") or {}
    meta = {
        "model": "vt_resnet18",
        "model_options": MODEL_OPTIONS,
        "class_names": list(class_names),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "test_accuracy": metrics["top1"],  # the final weights' (the ones saved here), not the best epoch's
        "trained": {
            "recipe": config["recipe"]["name"],
            "epochs": metrics["epochs_completed"],
            "train_images": int(len(x_train)),
            "test_images": metrics["test_images"],
            "train_seconds": metrics["train_seconds"],
            "hardware": hardware.get("gpu") or f"{hardware.get('cpu', 'a CPU')} ({hardware.get('cpu_cores', '?')} cores)",
            "backend": metrics.get("backend"),
            "date": metrics.get("date"),
            "git_commit": metrics.get("git_commit"),
            "data": "CIFAR-10 as loaded by vt_edu.data.load_cifar (VT_EDU_DATA or keras.datasets)",
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    weights, meta_path = _files(folder)
    partial = folder / f"{NAME}.partial.weights.h5"  # Keras insists on the .weights.h5 suffix
    model.save_weights(partial)
    meta["weights_sha256"] = _sha256(partial)
    partial.replace(weights)
    partial = meta_path.with_name(meta_path.name + ".partial")
    partial.write_text(json.dumps(meta, indent=2) + "\n")
    partial.replace(meta_path)


def load_demo_model(train_if_missing: bool = True) -> DemoModel:
    """The trained demo VT-ResNet-18: committed weights, else cached, else trained now.

    Args:
        train_if_missing: train (and cache) when no weights are found; with ``False``
            a missing model raises ``FileNotFoundError``.

    Returns:
        :class:`DemoModel`.
    """
    demo = _load(WEIGHTS_DIR, "weights committed with vt_edu") or _load(
        cache_dir() / "demo", "weights trained earlier on this machine", stale_ok=True
    )
    if demo is not None:
        return demo
    if not train_if_missing:
        raise FileNotFoundError(f"no demo weights in {WEIGHTS_DIR} or {cache_dir() / 'demo'}")
    print("No trained demo model yet: training one now (once; later chapters reuse it).")
    train_demo_model(
        cache_dir() / "demo",
        epochs=by_profile(quick=2, full=30),
        max_train_images=by_profile(quick=10_000, full=None),
        max_test_images=by_profile(quick=2_000, full=None),
        verbose=2,
    )
    return _load(cache_dir() / "demo", "weights trained just now on this machine")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vt_edu.pretrained",
        description="Train the chapters' demo VT-ResNet-18 on CIFAR-10 and write its weights.",
    )
    parser.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    parser.add_argument("--max-train-images", type=int, default=None, help="class-balanced subset (default: all)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help=f"output folder (default {WEIGHTS_DIR})")
    parser.add_argument("--from-run", type=Path, default=None, metavar="RUN_DIR",
                        help="instead of training, export a finished `python -m vt_edu train` run of the demo "
                             f"configuration (vt_resnet18, {MODEL_OPTIONS})")
    args = parser.parse_args(argv)
    try:
        if args.from_run is not None:
            export_run(args.from_run, args.out)
        else:
            train_demo_model(args.out, args.epochs, args.max_train_images, None, verbose=2)
    except (ValueError, RuntimeError, OSError) as error:  # a wrong run folder, data, option or output folder: one line
        print(f"error: {_first_line(error)}", file=sys.stderr)
        return 2
    print(json.dumps(json.loads(_files(args.out)[1].read_text()), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
