"""Training speed as a ratio measured side by side: models timed in alternation in one process.

A machine shared with other work, or another machine of the same name, trains the same model
at very different speeds on different days; a ratio of two models timed in turns, each round
on the machine's state of the moment, is what carries over. The benchmarks report speed this
way (``benchmarks/matched_benchmark.py``, ``benchmarks/scenes_benchmark.py``).

>>> steps = {name: keras_steps(model, x, y, 128) for name, model in models.items()}
>>> speed = alternating_speed(steps, batch_size=128, rounds=6, steps=5)
>>> speed["ratio_to_first"]["vt_resnet18"]["mean"]     # its images/s over the first model's

Any training step can take part (a plain-PyTorch twin of a Keras model, say): a step is a
function of the step number.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping

__all__ = ["alternating_speed", "keras_steps", "spread"]


def spread(values) -> dict:
    """Values (one per seed, or per round of a timing) as the benchmarks record them.

    Returns:
        ``{"values": [...], "mean": m, "min": lo, "max": hi}`` (floats).
    """
    values = [float(v) for v in values]
    return {"values": values, "mean": sum(values) / len(values), "min": min(values), "max": max(values)}


def keras_steps(model, x, y, batch_size: int) -> Callable[[int], None]:
    """Step ``i`` of a compiled Keras model on batch ``i`` of ``x, y`` (cycling): the step ``fit`` takes.

    On the PyTorch backend that is the model's train function on batches converted to tensors
    once: ``train_on_batch`` would also, on every call, check that the model is built,
    register every variable with PyTorch again and reset the metrics, work that ``fit`` does
    once per run (1.1 to 1.3 ms per step for ResNet-18 at width 0.25, measured on a 2-core CPU).
    Other backends: ``train_on_batch`` (their train functions take iterators or state).

    Raises:
        ValueError: fewer than ``batch_size`` images.
    """
    batches = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x) - batch_size + 1, batch_size)]
    if not batches:
        raise ValueError(f"at least {batch_size} images are needed for one batch, got {len(x)}.")
    import keras

    if keras.backend.backend() != "torch" or not hasattr(model, "make_train_function"):
        return lambda i: model.train_on_batch(*batches[i % len(batches)])
    model.train_on_batch(*batches[0])  # builds the model, its optimizer and metrics, as fit() does first
    train_function = model.make_train_function()
    tensors = [(keras.ops.convert_to_tensor(a), keras.ops.convert_to_tensor(b), None) for a, b in batches]
    return lambda i: train_function([tensors[i % len(tensors)]])


def alternating_speed(trainers: Mapping[str, Callable[[int], None]], batch_size: int, rounds: int, steps: int,
                      warmup: int = 2) -> dict:
    """Training images/s of several models, timed in turns.

    Every model first runs ``warmup`` untimed steps (compilation, allocation). Round ``r``
    then times ``steps`` steps of each model in turn, in the given order in even rounds and
    in reverse order in odd ones (A B C, C B A, ...), so no model always runs right after
    another's warm caches. Each round's ratio is a side-by-side measurement; their spread
    says how steady the machine was.

    Args:
        trainers: ``{name: step}``, ``step(i)`` runs training step ``i`` of one batch
            (:func:`keras_steps`); two or more, the first being the reference.
        batch_size: images per step.
        rounds, steps: rounds, and steps per model and round.

    Returns:
        ``{"images_per_second": {name: spread}, "ratio_to_first": {name: spread}, "rounds",
        "steps", "batch_size"}``; ``ratio_to_first[name]`` is name's images/s over the first
        model's, per round (:func:`spread`: values, mean, min, max).

    Raises:
        ValueError: fewer than two models, or a count below 1.
    """
    names = list(trainers)
    if len(names) < 2:
        raise ValueError(f"a side-by-side timing needs two or more models, got {names}.")
    for label, value in (("rounds", rounds), ("steps", steps), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"{label} must be at least 1, got {value}.")
    for step in trainers.values():
        for i in range(warmup):
            step(i)
    speeds = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            for i in range(steps):
                trainers[name](warmup + i)
            speeds[name].append(batch_size * steps / (time.perf_counter() - t0))
    first = names[0]
    return {"images_per_second": {name: spread(v) for name, v in speeds.items()},
            "ratio_to_first": {name: spread(s / f for f, s in zip(speeds[first], speeds[name])) for name in names[1:]},
            "rounds": rounds, "steps": steps, "batch_size": batch_size}
