"""The real CIFAR-10, when VT_EDU_DATA points at a copy (CI sets it; unit tests never need it)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vt_edu.config import DATA_ENV
from vt_edu.data import CIFAR10_CLASSES, load_cifar

_SOURCE = os.environ.get(DATA_ENV, "")
_EXISTING = [p for p in _SOURCE.split(os.pathsep) if p.strip() and Path(p.strip()).expanduser().exists()]


@pytest.mark.skipif(
    not _EXISTING,
    reason=f"{DATA_ENV} is not set to an existing path; set it to a CIFAR-10 copy "
    f"(e.g. {DATA_ENV}=/path/to/cifar10-jpeg.tar.gz) to check the full data set",
)
def test_full_cifar10(user_data_cache):
    # The user's cache: the full set is decoded once, here or by a chapter, not per run.
    (x_train, y_train), (x_test, y_test), class_names = load_cifar("cifar10", progress=False)
    assert x_train.shape == (50000, 32, 32, 3) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 32, 32, 3) and x_test.dtype == np.uint8
    assert y_train.shape == (50000,) and y_test.shape == (10000,) and y_train.dtype == np.int64
    assert np.bincount(y_train, minlength=10).tolist() == [5000] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [1000] * 10
    assert class_names == list(CIFAR10_CLASSES)
    assert 0 < x_train.mean() < 255 and len(np.unique(x_train[:100])) > 200
