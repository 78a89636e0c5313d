"""Helpers shared by the training and benchmark tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from vt_edu.training import SparseSmoothedCrossEntropy


def assert_compiled_with(model, recipe, batch_size):
    """``model`` is compiled as train() compiles it for an SGD ``recipe``."""
    opt = model.optimizer
    assert isinstance(opt, keras.optimizers.SGD) and opt.nesterov == recipe.nesterov
    # The recipe clips the *global* norm; Keras' clipnorm would clip each variable on its own.
    assert opt.global_clipnorm == recipe.clip_norm and opt.clipnorm is None
    assert float(opt.momentum) == recipe.momentum
    assert opt.weight_decay == pytest.approx(recipe.keras_weight_decay())
    assert float(np.asarray(opt.learning_rate)) <= recipe.scaled_learning_rate(batch_size)
    assert isinstance(model.loss, SparseSmoothedCrossEntropy)
    assert model.loss.label_smoothing == recipe.label_smoothing
