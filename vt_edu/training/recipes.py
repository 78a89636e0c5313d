"""Training recipes: named, documented settings that :func:`vt_edu.training.train` runs.

=================  =====================================================================
``seed``           the students' setup: Adam 1e-3, constant, batch 256, no augmentation,
                   plain cross-entropy. What the TensorFlow tutorial does.
``paper-default``  the paper's default ImageNet recipe: SGD momentum 0.9, lr 0.1 at
                   batch 256 (scaled linearly with the batch), divided by 10 every 30
                   epochs, weight decay 4e-5, 90 epochs, pad-crop-flip.
``paper-advanced`` the paper's advanced recipe: 5 warm-up epochs from 0.01 to 0.16 at
                   batch 2048 (scaled linearly), then x0.9875 per epoch, label smoothing
                   0.1, RandAugment-lite (instead of AutoAugment, see
                   :mod:`vt_edu.training.augment`), stochastic depth (survival 0.9),
                   dropout 0.2, weight EMA, optional distillation (0.8 KD + 0.2 CE).
``fast``           our choice for the most accuracy per CPU-minute on CIFAR: SGD
                   Nesterov 0.9, batch 128, peak lr 0.05 at batch 128 (0.1 at 256) after
                   1 warm-up epoch, then a cosine to 0 at the last epoch, label
                   smoothing 0.1, weight decay 5e-4,
                   pad-crop-flip. A cosine that ends exactly at the last epoch gets the
                   most out of a fixed budget of epochs; warm-up keeps BN networks stable
                   at the high initial rate; light smoothing helps short runs.
                   Gradients are clipped to global norm 1 (as ViT's recipe does): the
                   paper's VT modules have no normalisation, so without a bound
                   VT-ResNet's head can feed back on itself and diverge early.
=================  =====================================================================

In ``fast``, clipping is more than a guard against blow-ups: VT-ResNet's global gradient
norm on CIFAR stays above 1 for a whole run (``benchmarks/gradient_norms.py`` measures
it), so every step is scaled down. A looser bound is a recipe override
(``get_recipe("fast", clip_norm=5.0)``); ``results/README.md`` records how the settings
compared.

Learning rates scale with the batch (``lr = base_lr * batch / reference_batch``, the
linear scaling rule of Goyal et al., 2017) so ``--batch-size`` can change without
re-tuning; ``seed`` and Adam are not scaled.

Weight decay is given as the papers give it: an L2 coefficient in PyTorch's sense
(``grad += wd * w``, then momentum). Keras' ``weight_decay`` is decoupled
(``w -= lr * wd' * w`` after the step); with momentum ``m`` the coupled form decays
weights ``1 / (1 - m)`` times more in steady state, so SGD gets
``wd' = wd / (1 - m)`` (4e-5 → 4e-4 at m = 0.9). Decay applies to all weights,
BN and biases included, as in the PyTorch reference code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

__all__ = ["RECIPES", "Recipe", "RecipeError", "get_recipe", "list_recipes"]


class RecipeError(ValueError):
    """An unknown recipe or an invalid recipe setting."""


@dataclass(frozen=True)
class Recipe:
    """One training recipe (all learning rates are at ``reference_batch``)."""

    name: str
    description: str
    optimizer: str = "sgd"  # "sgd" | "adam"
    learning_rate: float = 0.1  # base (peak) lr at reference_batch
    reference_batch: int | None = 256  # None: do not scale the lr with the batch
    schedule: str = "constant"  # "constant" | "step" | "warmup_exponential" | "warmup_cosine"
    schedule_options: dict = field(default_factory=dict)
    batch_size: int = 256
    epochs: int = 10
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0  # L2 coefficient, PyTorch semantics (see module doc)
    label_smoothing: float = 0.0
    augment: str = "none"  # "none" | "crop_flip" | "randaugment"
    randaugment_ops: int = 2
    randaugment_magnitude: float = 9
    dropout: float | None = None  # model option, where the model has it
    stochastic_depth: float | None = None  # survival probability, where the model has it
    ema_momentum: float | None = None  # per-step EMA of the weights; None: off
    clip_norm: float | None = None  # clip the global gradient norm to this; None: off
    distillation_alpha: float = 0.8  # used only when a teacher is given
    distillation_temperature: float = 1.0

    def scaled_learning_rate(self, batch_size: int) -> float:
        """The base learning rate for ``batch_size`` (linear scaling rule)."""
        if self.reference_batch is None:
            return self.learning_rate
        return self.learning_rate * batch_size / self.reference_batch

    def keras_weight_decay(self) -> float | None:
        """The decoupled Keras ``weight_decay`` equivalent to the recipe's L2 coefficient."""
        if not self.weight_decay:
            return None
        if self.optimizer == "sgd":
            return self.weight_decay / (1.0 - self.momentum)
        return self.weight_decay

    def to_dict(self) -> dict:
        return asdict(self)


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            name="seed",
            description="students' setup: Adam 1e-3 constant, batch 256, no augmentation",
            optimizer="adam",
            learning_rate=1e-3,
            reference_batch=None,
            schedule="constant",
            batch_size=256,
            epochs=10,
        ),
        Recipe(
            name="paper-default",
            description="SGD m=0.9, lr 0.1 @256 /10 every 30 epochs, wd 4e-5, crop+flip",
            optimizer="sgd",
            learning_rate=0.1,
            reference_batch=256,
            schedule="step",
            schedule_options={"step_epochs": 30, "factor": 0.1},
            batch_size=256,
            epochs=90,
            momentum=0.9,
            weight_decay=4e-5,
            augment="crop_flip",
        ),
        Recipe(
            name="paper-advanced",
            description=(
                "warm-up 0.01→0.16 @2048 over 5 epochs then x0.9875/epoch, label smoothing 0.1, "
                "RandAugment-lite, stochastic depth 0.9, dropout 0.2, EMA, optional KD"
            ),
            optimizer="sgd",
            learning_rate=0.16,
            reference_batch=2048,
            schedule="warmup_exponential",
            schedule_options={"warmup_epochs": 5, "start_learning_rate": 0.01, "decay": 0.9875},
            batch_size=256,
            epochs=400,
            momentum=0.9,
            weight_decay=4e-5,
            label_smoothing=0.1,
            augment="randaugment",
            dropout=0.2,
            stochastic_depth=0.9,
            ema_momentum=0.999,
        ),
        Recipe(
            name="fast",
            description="SGD Nesterov, batch 128, lr 0.05 @128 after 1 warm-up epoch, cosine to 0, smoothing 0.1, wd 5e-4, crop+flip",
            optimizer="sgd",
            learning_rate=0.05,
            reference_batch=128,
            schedule="warmup_cosine",
            schedule_options={"warmup_epochs": 1},
            batch_size=128,
            epochs=15,
            momentum=0.9,
            nesterov=True,
            weight_decay=5e-4,
            label_smoothing=0.1,
            augment="crop_flip",
            clip_norm=1.0,
        ),
    )
}


def list_recipes() -> list[str]:
    return list(RECIPES)


def get_recipe(name, **overrides) -> Recipe:
    """The recipe ``name`` (or a :class:`Recipe` itself), with fields replaced by ``overrides``.

    Raises:
        RecipeError: unknown name or field.
    """
    if isinstance(name, Recipe):
        recipe = name
    elif name in RECIPES:
        recipe = RECIPES[name]
    else:
        raise RecipeError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}.")
    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise RecipeError(f"recipes have no setting {', '.join(unknown)}; settings: {', '.join(sorted(known))}.")
    return replace(recipe, **overrides) if overrides else recipe
