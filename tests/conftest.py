"""Shared fixtures. Tests never read the real data sets: they build tiny ones here."""

from __future__ import annotations

import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vt_edu.config import CACHE_ENV
from vt_edu.data.names import CIFAR10_CLASSES, CIFAR100_COARSE_CLASSES, CIFAR100_FINE_CLASSES, CIFAR100_FINE_TO_COARSE

# The cache a user (or CI) configured, before the autouse fixture below replaces it.
_USER_CACHE = os.environ.get(CACHE_ENV)


@pytest.fixture(autouse=True)
def _isolated_data_cache(tmp_path_factory, monkeypatch):
    """Every test gets an empty data cache of its own, so tests cannot see each other's entries."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("vt_edu_cache")))


@pytest.fixture
def user_data_cache(monkeypatch):
    """Use the user's data cache after all: for tests on the real data set, which is
    worth decoding only once (the chapters then find it cached too)."""
    if _USER_CACHE is None:
        monkeypatch.delenv(CACHE_ENV, raising=False)
    else:
        monkeypatch.setenv(CACHE_ENV, _USER_CACHE)


class TinyCifar:
    """Writers of tiny CIFAR-like sources under one folder.

    Each writer returns ``(path, expected)`` where ``expected`` maps ``"train"`` and
    ``"test"`` to ``(x, y)``: the images (N, 32, 32, 3) uint8 and labels (N,) int64
    that were written, in writing order.
    """

    def __init__(self, root: Path, seed: int = 0):
        self.root = root
        self.rng = np.random.default_rng(seed)

    def images(self, n: int) -> np.ndarray:
        """``n`` random 32x32 RGB images (distinct, so tests can match them by bytes)."""
        return self.rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)

    def image_folder(self, name="images", classes=CIFAR10_CLASSES, per_class=(2, 1), fmt="png"):
        """``name/train/<class>/NNNN.<fmt>`` and ``name/test/...``; ``per_class`` = (train, test)."""
        path = self.root / name
        expected = {}
        for split, count in zip(("train", "test"), per_class):
            xs, ys = [], []
            for label, cls in enumerate(classes):
                folder = path / split / cls
                folder.mkdir(parents=True)
                for i, image in enumerate(self.images(count)):
                    Image.fromarray(image).save(folder / f"{i:04d}.{fmt}")
                    xs.append(image)
                    ys.append(label)
            expected[split] = (np.stack(xs), np.array(ys, dtype=np.int64))
        return path, expected

    @staticmethod
    def _pickle(path: Path, obj, protocol: int = 2) -> None:
        path.write_bytes(pickle.dumps(obj, protocol=protocol))

    @staticmethod
    def _rows(x: np.ndarray) -> np.ndarray:
        """NHWC images as official rows: (N, 3072), channel-planar, row-major."""
        return x.transpose(0, 3, 1, 2).reshape(len(x), 3072)

    def official_cifar10(self, name="official10", per_batch=3, n_test=4, protocol=2):
        """``name/cifar-10-batches-py/`` with bytes-keyed dicts, like the originals."""
        folder = self.root / name / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        xs, ys = [], []
        for i in range(1, 6):
            x, y = self.images(per_batch), self.rng.integers(0, 10, per_batch)
            self._pickle(
                folder / f"data_batch_{i}",
                {b"batch_label": f"training batch {i} of 5".encode(), b"labels": y.tolist(), b"data": self._rows(x)},
                protocol,
            )
            xs.append(x)
            ys.append(y)
        x_test, y_test = self.images(n_test), self.rng.integers(0, 10, n_test)
        self._pickle(
            folder / "test_batch",
            {b"batch_label": b"testing batch 1 of 1", b"labels": y_test.tolist(), b"data": self._rows(x_test)},
            protocol,
        )
        self._pickle(
            folder / "batches.meta",
            {b"num_cases_per_batch": per_batch, b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072},
            protocol,
        )
        expected = {"train": (np.concatenate(xs), np.concatenate(ys).astype(np.int64)), "test": (x_test, y_test)}
        return self.root / name, expected

    def official_cifar100(self, name="official100", n_train=6, n_test=4):
        """``name/cifar-100-python/``; ``expected`` holds fine labels, ``coarse`` the coarse ones."""
        folder = self.root / name / "cifar-100-python"
        folder.mkdir(parents=True)
        expected, coarse = {}, {}
        to_coarse = np.array(CIFAR100_FINE_TO_COARSE)
        for split, n in (("train", n_train), ("test", n_test)):
            x, fine = self.images(n), self.rng.integers(0, 100, n)
            self._pickle(
                folder / split,
                {
                    b"filenames": [f"{i}.png".encode() for i in range(n)],
                    b"batch_label": split.encode(),
                    b"fine_labels": fine.tolist(),
                    b"coarse_labels": to_coarse[fine].tolist(),
                    b"data": self._rows(x),
                },
            )
            expected[split] = (x, fine.astype(np.int64))
            coarse[split] = (x, to_coarse[fine].astype(np.int64))
        self._pickle(
            folder / "meta",
            {
                b"fine_label_names": [c.encode() for c in CIFAR100_FINE_CLASSES],
                b"coarse_label_names": [c.encode() for c in CIFAR100_COARSE_CLASSES],
            },
        )
        return self.root / name, expected, coarse

    def tar_gz(self, folder: Path, arcname: str | None = None, reverse: bool = False) -> Path:
        """``folder`` packed as ``<folder>.tar.gz``. Its content sits under ``arcname``:
        by default the folder's name, as most archives wrap their content; ``""``: at
        the top. ``reverse`` adds files in reverse path order, as an archive written by
        another tool may list them."""
        archive = folder.with_name(folder.name + ".tar.gz")
        arcname = folder.name if arcname is None else arcname
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        with tarfile.open(archive, "w:gz") as tar:
            for file in reversed(files) if reverse else files:
                rel = file.relative_to(folder).as_posix()
                tar.add(file, arcname=f"{arcname}/{rel}" if arcname else rel)
        return archive


@pytest.fixture
def tiny_cifar(tmp_path) -> TinyCifar:
    """A :class:`TinyCifar` writing under this test's tmp_path."""
    return TinyCifar(tmp_path)
