"""Global gradient norms of a model on real training batches (a measurement script, not a test).

Gradient clipping to a global norm ``c`` is a guard against blow-ups only while typical
norms stay below ``c``; where they are above it, clipping rescales every step and the
recipe's learning rate is not the one that acts. This script prints the norms the clip
sees: of a freshly initialised model (``--model``) and/or of the final model of run
folders (``--run``), each on the same augmented training batches, with the recipe's loss
(label smoothing included) and BatchNorm in training mode, as in a training step.

PyTorch backend only (the gradients come from ``torch.autograd``)::

    KERAS_BACKEND=torch .venv/bin/python benchmarks/gradient_norms.py --model vt_resnet18 --width 0.25 \\
        --run results/cpu-benchmark/runs/vt-target-60min-23ep
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", default=[], help="a registry model, freshly initialised (repeatable).")
    p.add_argument("--width", type=float, default=0.25, help="width of --model (default 0.25).")
    p.add_argument("--run", action="append", default=[], help="a run folder: its final model.keras (repeatable).")
    p.add_argument("--recipe", default="fast", help="loss and augmentation of this recipe (default: fast).")
    p.add_argument("--batches", type=int, default=10, help="batches measured per model (default 10).")
    p.add_argument("--data", default=None, help="CIFAR-10 source; default: VT_EDU_DATA, else the download.")
    return p.parse_args(argv)


def global_gradient_norms(model, batches, loss_fn, count):
    """The global L2 norm of the loss gradient over all trainable weights, per batch."""
    import torch

    norms = []
    for i in range(count):
        x, y = batches[i % len(batches)]
        loss = loss_fn(y, model(x, training=True))
        grads = torch.autograd.grad(loss, [v.value for v in model.trainable_variables])
        norms.append(float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads))))
    return np.array(norms)


def main(argv=None):
    args = parse_args(argv)
    import keras

    if keras.backend.backend() != "torch":
        print("error: this script needs the PyTorch backend (KERAS_BACKEND=torch).", file=sys.stderr)
        return 2
    if not args.model and not args.run:
        print("error: give at least one --model or --run.", file=sys.stderr)
        return 2

    from vt_edu.data import channel_stats, load_cifar
    from vt_edu.models import create_model
    from vt_edu.training import get_recipe
    from vt_edu.training.distillation import SparseSmoothedCrossEntropy
    from vt_edu.training.pipeline import ImageBatches

    recipe = get_recipe(args.recipe)
    (x, y), _, _ = load_cifar("cifar10", source=args.data, progress=False)
    mean, std = channel_stats(x)  # the statistics training normalises with
    n = recipe.batch_size * args.batches
    batches = ImageBatches(x[:n], y[:n], recipe.batch_size, mean, std, augment=recipe.augment, shuffle=True)
    loss_fn = SparseSmoothedCrossEntropy(recipe.label_smoothing)

    models = [(f"{name} (width {args.width:g}), initialised", lambda name=name: create_model(name, width=args.width))
              for name in args.model]
    models += [(f"{run}/model.keras", lambda run=run: keras.models.load_model(f"{run}/model.keras", compile=False))
               for run in args.run]
    clip = recipe.clip_norm
    print(f"recipe {recipe.name}: loss with label smoothing {recipe.label_smoothing}, clip_norm {clip}; "
          f"{args.batches} batches of {recipe.batch_size}")
    for label, build in models:
        norms = global_gradient_norms(build(), batches, loss_fn, args.batches)
        above = "" if clip is None else f", above {clip:g} in {np.mean(norms > clip):.0%} of batches"
        print(f"{label}: global gradient norm median {np.median(norms):.2f} "
              f"(min {norms.min():.2f}, max {norms.max():.2f}){above}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
