"""Command line: ``python -m vt_edu {train,compare,flops,list} ...`` (also installed as ``vt-edu``).

Examples::

    python -m vt_edu train --model vt_resnet18 --recipe fast --epochs 15 --width 0.25
    python -m vt_edu train --model vt_fpn --recipe fast --epochs 10 --width 0.25 --train-scenes 2000
    python -m vt_edu compare --models cnn,resnet18,vt_resnet18 --recipe seed --epochs 10 --width 0.25
    python -m vt_edu flops --model vt_resnet18 --input-size 224 --classes 1000
    python -m vt_edu list

Errors (bad options, missing data, a NaN loss) print one readable line and exit
with status 2 (set ``VT_EDU_DEBUG=1`` for the traceback); an interrupted run exits
with 130 and continues when the same command is run again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

# vt_edu.names is Keras-free, so ``--help`` works before ``--backend`` is applied.
from vt_edu.names import MODEL_NAMES, SEGMENTATION_MODELS, TASKS

BACKENDS = ("tensorflow", "jax", "torch")
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """An error to report as one line with exit status 2."""


def _recipe_names():
    from vt_edu.training.recipes import RECIPES

    return list(RECIPES)


def _recipe_help():
    from vt_edu.training.recipes import RECIPES

    return "; ".join(f"{r.name}: {r.description}" for r in RECIPES.values())


def _option(text: str):
    """``KEY=VALUE`` with VALUE parsed as JSON when possible (``8``, ``true``, ``null``), else a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip(), parsed


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:  # also nan
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _add_model_options(p):
    p.add_argument("--width", type=_positive_float, default=None,
                   help="channel multiplier of the model (1.0 = paper widths; 0.25 is CPU-sized). Default: the model's (1.0).")
    p.add_argument("--tokens", type=_int, default=None,
                   help="number of visual tokens L per VT module (vt_resnet18 only; paper: 16).")
    p.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="any other model option, repeatable, e.g. --option num_modules=3 --option tokenizer=pooling "
                        "(see `python -m vt_edu list`).")


def _add_training_options(p, several=False):
    p.add_argument("--dataset", choices=("cifar10", "cifar100"), default="cifar10",
                   help="data set (read from --data, else VT_EDU_DATA, else downloaded). Default: cifar10.")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="folder or .tar.gz with the data (image-folder or official CIFAR layout); overrides VT_EDU_DATA.")
    p.add_argument("--recipe", default="seed", metavar="NAME",
                   help=f"training recipe (default: seed). {_recipe_help()}.")
    p.add_argument("--epochs", type=_int, default=None, help="epochs to train (default: the recipe's).")
    p.add_argument("--batch-size", type=_int, default=None,
                   help="batch size (default: the recipe's); learning rates scale linearly with it.")
    _add_model_options(p)
    p.add_argument("--max-train-images", type=_int, default=None,
                   help="train on a class-balanced random subset of this many images (quick runs).")
    p.add_argument("--max-test-images", type=_int, default=None,
                   help="evaluate on a class-balanced random subset of this many test images.")
    p.add_argument("--seed", type=_int, default=0,
                   help="seed of weights, data order, augmentation and dropout (default: 0).")
    p.add_argument("--minutes", type=_positive_float, default=None,
                   help=("training-time budget " + ("per model " if several else "") +
                         "in minutes: stop before a batch that would end past it (the epoch is then validated)."))
    from vt_edu.training.run_config import SCHEDULE_CLOCKS, TIME_CLOCK_EPOCH_CAP

    p.add_argument("--schedule-clock", choices=SCHEDULE_CLOCKS, default="steps",
                   help=("what moves the learning-rate schedule: steps (default; the same seed repeats a run) or "
                         "time (needs --minutes): the budget stands for --epochs "
                         "epochs of the schedule, so a cosine ends when the budget does however fast the machine "
                         "is, and training goes on until the budget is spent (at most "
                         f"{TIME_CLOCK_EPOCH_CAP} x --epochs)."))
    p.add_argument("--teacher", default=None, metavar="MODEL.keras",
                   help="distil from this trained model (loss 0.8 KD + 0.2 CE; see vt_edu.training.distillation).")
    p.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                   help="float16 compute with float32 weights (default: on with a GPU, off on a CPU).")
    p.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None,
                   help="XLA-compile the train step (default: on with a GPU; on a CPU only with JAX, since "
                        "TensorFlow's XLA is slower there).")
    p.add_argument("--torch-fast-paths", action="store_true",
                   help="PyTorch backend only: fused BatchNorm and convolutions without input copies "
                        "(vt_edu.torch_fast_paths: the same arithmetic as Keras up to float rounding; about 1.3x faster "
                        "training on a 2-core CPU).")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run folder that holds a run with different settings (default: refuse).")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Keras backend for this run; the same as setting KERAS_BACKEND (default: "
                        "KERAS_BACKEND, else tensorflow). Results record the backend used.")
    p.add_argument("--verbose", type=_int, choices=(0, 1, 2), default=1,
                   help="0: silent, 1: a progress bar per epoch, 2: one line per epoch (for log files).")


def _add_scene_options(p):
    from vt_edu.training.scene_data import DEFAULT_SCENE_SEED, SCENE_DEFAULTS

    group = p.add_argument_group(
        "segmentation",
        f"Segmentation runs ({', '.join(SEGMENTATION_MODELS)}) train on scenes of CIFAR objects on a canvas, "
        f"one class per pixel (background + the data set's classes), drawn with scene seed {DEFAULT_SCENE_SEED} "
        "whatever --seed is, so every model sees the same scenes. They report mean IoU and pixel accuracy; "
        "--max-train-images/--max-test-images do not apply (use --train-scenes/--test-scenes).",
    )
    group.add_argument("--task", choices=TASKS, default=None,
                       help="what the model learns (default: the model's; segmentation for "
                            f"{', '.join(SEGMENTATION_MODELS)}). A task the model does not learn is an error.")
    for flag, key, what in (
        ("--train-scenes", "num_train", "training scenes"),
        ("--test-scenes", "num_test", "test scenes"),
        ("--canvas-size", "canvas_size", "side of a scene in pixels"),
        ("--max-objects", "max_objects", "most objects per scene"),
        ("--min-object-size", "min_object_size", "smallest side of a pasted object in pixels"),
        ("--max-object-size", "max_object_size", "largest side of a pasted object in pixels"),
    ):
        group.add_argument(flag, type=_int, default=None, dest=key,
                           metavar="N", help=f"{what} (default: {SCENE_DEFAULTS[key]}).")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is ONE line (the command, the error, where to look), exit 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m vt_edu",
        description="Train and measure the book's models: CNN, ResNet-18, VT-ResNet-18 and a ViT on CIFAR.",
        epilog="Run folders resume: re-running an interrupted command continues from the last completed epoch.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "train", help="train one model and write a run folder",
        description="Train one model with a recipe. Writes config.json, history.csv, metrics.json, "
                    "best.weights.h5 and model.keras into the run folder; re-running the same command "
                    "after an interruption continues from the last completed epoch.",
    )
    p.add_argument("--model", required=True, metavar="NAME",
                   help=f"one of: {', '.join(MODEL_NAMES)}; segmentation: {', '.join(SEGMENTATION_MODELS)}.")
    _add_training_options(p)
    _add_scene_options(p)
    from vt_edu.training.distribution import DISTRIBUTIONS

    p.add_argument("--distribution", choices=DISTRIBUTIONS, default=None,
                   help="data-parallel: train on all local devices (a TPU's cores, several GPUs) with Keras' "
                        "DataParallel; --batch-size is the global batch, split evenly. JAX backend only. "
                        "Default: one device.")
    p.add_argument("--run-dir", default=None, metavar="DIR",
                   help="run folder (default: runs/<model>[-w<width>]-<dataset>-<recipe>-e<epochs>-s<seed>).")

    p = sub.add_parser(
        "compare", help="train several models on the same data and compare them",
        description="Train each model on the same images with the same recipe (and time budget), then "
                    "write compare.csv, compare.md, compare.json and curves.png.",
    )
    p.add_argument("--models", required=True, metavar="A,B,...",
                   help=f"comma-separated model names, e.g. cnn,resnet18,vt_resnet18 (from: {', '.join(MODEL_NAMES)}).")
    _add_training_options(p, several=True)
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: runs/compare-<dataset>-<recipe>-s<seed>); one run folder per model inside.")

    p = sub.add_parser(
        "flops", help="print the multiply-accumulate (MAC) and parameter table of a model",
        description="Analytic MACs per image (1 MAC = 1 multiply-add; the papers' 'FLOPs') and parameters, "
                    "per stage or per layer. The paper's setting is --input-size 224 --classes 1000.",
    )
    p.add_argument("--model", required=True, metavar="NAME", help=f"one of: {', '.join(MODEL_NAMES)}.")
    p.add_argument("--input-size", type=_int, default=None,
                   help="image side in pixels (default: the model's, 32; 64 for fpn and vt_fpn; the paper: 224).")
    p.add_argument("--classes", type=_int, default=10, help="number of classes (default 10; ImageNet: 1000).")
    p.add_argument("--stem", choices=("cifar", "imagenet"), default=None,
                   help="ResNet stem (default: imagenet for inputs of 128 pixels or more, else cifar; "
                        "imagenet for fpn and vt_fpn).")
    _add_model_options(p)
    p.add_argument("--per-layer", action="store_true", help="one line per layer instead of per stage.")
    p.add_argument("--json", action="store_true", help="print the table as JSON.")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="Keras backend (counts do not depend on it).")

    sub.add_parser("list", help="list models (with options) and recipes")
    return parser


def _select_backend(backend):
    if backend is None:
        return
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise CLIError(
                f"Keras is already loaded with the {keras.backend.backend()} backend; "
                f"set KERAS_BACKEND={backend} before starting Python instead."
            )
        return
    os.environ["KERAS_BACKEND"] = backend


def _model_options(args):
    options = dict(args.option)
    if args.tokens is not None:
        options["num_tokens"] = args.tokens
    return options


def _scene_options(args):
    """The scene settings given on the command line (``None`` if none)."""
    from vt_edu.training.scene_data import SCENE_DEFAULTS

    given = {key: getattr(args, key) for key in SCENE_DEFAULTS if getattr(args, key, None) is not None}
    return given or None


# Options whose RunConfig field has another name; every other RunConfig field is the option of its own name.
FIELD_OF_OPTION = {"minutes": "time_budget_minutes", "jit": "jit_compile"}


def run_settings(args) -> dict:
    """The :class:`~vt_edu.training.RunConfig` fields that ``args`` give (a command without an
    option, e.g. ``compare`` without ``--task``, leaves its field to the default)."""
    from dataclasses import fields

    from vt_edu.training.run_config import RunConfig

    given = {FIELD_OF_OPTION.get(option, option): value for option, value in vars(args).items()}
    settings = {f.name: given[f.name] for f in fields(RunConfig) if f.name in given}
    settings["model_options"] = _model_options(args)
    scenes = _scene_options(args)
    if scenes is not None:
        settings["scenes"] = scenes
    return settings


def _cmd_train(args):
    from vt_edu.training import RunConfig, train

    config = RunConfig(**run_settings(args))
    result = train(config, source=args.data, run_dir=args.run_dir, overwrite=args.overwrite, verbose=args.verbose)
    m = result.metrics
    if m.get("task") == "segmentation":
        scores = f"test mIoU {100 * m['mean_iou']:.2f} %, pixel accuracy {100 * m['pixel_accuracy']:.2f} %"
        speed = f"{m['images_per_second']:.0f} scenes/s"
    else:
        scores = f"test top-1 {100 * m['top1']:.2f} %, top-5 {100 * m['top5']:.2f} %"
        speed = f"{m['images_per_second']:.0f} images/s"
    print(
        f"{m['model']}: {scores} after {m['epochs_completed']} epochs ({m['train_seconds'] / 60:.1f} min, {speed}); "
        f"{m['params'] / 1e6:.2f} M params, {m['macs'] / 1e6:.1f} M MACs. Run folder: {result.run_dir}"
    )
    return 0


def _cmd_compare(args):
    from vt_edu.training import compare

    settings = run_settings(args)
    options = settings.pop("model_options")
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    per_model = {}
    if options:
        from vt_edu.models import model_options

        for name in names:
            try:
                supported = model_options(name)
            except ValueError:
                continue  # compare() reports unknown names
            per_model[name] = {k: v for k, v in options.items() if k in supported}
    results = compare(names, out_dir=args.out, source=args.data, model_options=per_model, verbose=args.verbose,
                      overwrite=args.overwrite, **settings)
    out = results[0].run_dir.parent
    print((out / "compare.md").read_text())
    print(f"Written: {out / 'compare.csv'}, {out / 'compare.md'}, {out / 'curves.png'}")
    return 0


def _cmd_flops(args):
    from vt_edu.flops import check_table_settings, count_macs, format_table
    from vt_edu.models import MODELS, create_model

    if args.input_size is None:  # an unknown model gets 32 here and its own error from create_model
        args.input_size = MODELS[args.model].input_shape[0] if args.model in MODELS else 32
    check_table_settings(args.input_size, args.classes, args.width)  # before building: weights grow with each
    options = _model_options(args)
    if args.width is not None:
        options["width"] = args.width
    if args.model in ("resnet18", "vt_resnet18"):
        options.setdefault("stem", args.stem or ("imagenet" if args.input_size >= 128 else "cifar"))
    elif args.model in SEGMENTATION_MODELS and args.stem is not None:
        options["stem"] = args.stem  # their default, imagenet, suits every size they take
    elif args.stem is not None:
        raise CLIError(f"--stem applies to resnet18, vt_resnet18, fpn and vt_fpn, not {args.model}.")
    model = create_model(args.model, num_classes=args.classes, input_shape=(args.input_size, args.input_size, 3), **options)
    table = count_macs(model)
    if args.json:
        print(json.dumps({**table.summary(), "layers": table.to_dicts()}, indent=2, default=list))
    else:
        print(format_table(table, per_layer=args.per_layer))
    return 0


def _cmd_list(args):
    from vt_edu.models import MODELS
    from vt_edu.training.recipes import RECIPES

    print("Models (python -m vt_edu train --model NAME [--width W] [--option KEY=VALUE]):")
    for spec in MODELS.values():
        print(f"  {spec.name}: {spec.description}")
        for option, default in spec.defaults.items():
            print(f"      {option}={default!r}: {spec.option_help.get(option, '')}")
    print("Recipes (--recipe NAME):")
    for recipe in RECIPES.values():
        print(f"  {recipe.name}: {recipe.description} (batch {recipe.batch_size}, {recipe.epochs} epochs)")
    return 0


COMMANDS = {"train": _cmd_train, "compare": _cmd_compare, "flops": _cmd_flops, "list": _cmd_list}


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors exit 2 with argparse's message
    try:
        _select_backend(getattr(args, "backend", None))
        if getattr(args, "recipe", None) is not None and args.recipe not in _recipe_names():
            raise CLIError(f"unknown recipe {args.recipe!r}; choose one of: {', '.join(_recipe_names())}.")
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to continue from the last completed epoch.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CLIError, ValueError, RuntimeError, OSError) as error:
        # TrainingError, ModelConfigError, RecipeError, DataError subclasses and file errors.
        if os.environ.get("VT_EDU_DEBUG"):
            raise
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 - data errors that are not ValueError/OSError
        from vt_edu.data import DataError

        if isinstance(error, DataError):
            print(f"error: {_one_line(error)}", file=sys.stderr)
            return EXIT_USAGE
        raise
