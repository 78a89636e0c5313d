"""load_cifar reads every source format, in the right order, from the right place, once."""

from __future__ import annotations

import os
import tarfile
import time

import keras
import numpy as np
import pytest
from PIL import Image

from vt_edu.config import DATA_ENV, cache_dir
from vt_edu.data import (
    CIFAR10_CLASSES,
    CIFAR100_COARSE_CLASSES,
    CIFAR100_FINE_CLASSES,
    CifarData,
    DownloadError,
    LayoutError,
    SourceNotFoundError,
    load_cifar,
)
from vt_edu.data import cache as data_cache
from vt_edu.data import image_folder, trees
from vt_edu.data.names import CIFAR100_FINE_TO_COARSE


def assert_same_examples(x, y, expected):
    """``(x, y)`` holds exactly the expected images, each with its label, in any order.

    Image-folder sources come back shuffled, so we match images by their bytes (the
    test images are random, hence distinct).
    """
    x_exp, y_exp = expected
    assert x.shape == x_exp.shape and x.dtype == np.uint8
    assert y.shape == (len(x_exp),) and y.dtype == np.int64
    label_of = {image.tobytes(): label for image, label in zip(x_exp, y_exp)}
    assert len(label_of) == len(x_exp)
    assert {image.tobytes(): label for image, label in zip(x, y)} == label_of


def assert_loaded(data, expected, class_names=CIFAR10_CLASSES):
    assert isinstance(data, CifarData)
    (x_train, y_train), (x_test, y_test), names = data
    assert names == list(class_names)
    assert_same_examples(x_train, y_train, expected["train"])
    assert_same_examples(x_test, y_test, expected["test"])


@pytest.fixture(autouse=True)
def _no_env_source(monkeypatch):
    """Tests set VT_EDU_DATA themselves; a value from the caller's shell must not leak in."""
    monkeypatch.delenv(DATA_ENV, raising=False)


# --- formats ---------------------------------------------------------------------


def test_png_image_folder_loads_exact_pixels_and_official_labels(tiny_cifar):
    path, expected = tiny_cifar.image_folder(per_class=(3, 2))
    data = load_cifar(source=path, progress=False)
    assert_loaded(data, expected)
    assert data.train[0].shape == (30, 32, 32, 3) and data.test[0].shape == (20, 32, 32, 3)


def test_image_folder_order_is_shuffled_but_fixed(tiny_cifar):
    path, _ = tiny_cifar.image_folder(per_class=(5, 1))
    (_, y_first), _, _ = load_cifar(source=path, progress=False)
    for entry in cache_dir().glob("*.npz"):
        entry.unlink()
    (_, y_again), _, _ = load_cifar(source=path, progress=False)
    # Sorted by class, the first 10 labels would all be 0: a quick-profile slice x[:n]
    # would then hold one class only.
    assert len(set(y_first[:10].tolist())) > 1
    np.testing.assert_array_equal(y_first, y_again)


@pytest.mark.parametrize("arcname", ["", "cifar10-png"], ids=["at-top", "under-one-folder"])
def test_image_folder_tar_gz(tiny_cifar, arcname):
    path, expected = tiny_cifar.image_folder(name="cifar10-png")
    archive = tiny_cifar.tar_gz(path, arcname=arcname)
    assert_loaded(load_cifar(source=archive, progress=False), expected)


def test_labels_follow_official_order_not_listing_order(tiny_cifar):
    path, expected = tiny_cifar.image_folder()
    archive = tiny_cifar.tar_gz(path, reverse=True)  # truck/ listed first
    assert_loaded(load_cifar(source=archive, progress=False), expected)


def test_jpeg_image_folder(tiny_cifar):
    path, expected = tiny_cifar.image_folder(fmt="jpg")
    (x_train, y_train), (x_test, y_test), _ = load_cifar(source=path, progress=False)
    assert x_train.shape == (20, 32, 32, 3) and x_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [2] * 10 and np.bincount(y_test).tolist() == [1] * 10
    # JPEG is lossy: compare with what Pillow decodes, not with the random source pixels.
    decoded = {np.asarray(Image.open(f)).tobytes(): CIFAR10_CLASSES.index(f.parent.name) for f in path.rglob("*.jpg")}
    assert all(decoded[image.tobytes()] == label for image, label in zip(x_train, y_train))


def test_grayscale_and_rgba_images_become_rgb(tiny_cifar):
    path, _ = tiny_cifar.image_folder()
    Image.new("L", (32, 32), 7).save(path / "train" / "cat" / "0000.png")
    Image.new("RGBA", (32, 32), (1, 2, 3, 4)).save(path / "train" / "dog" / "0000.png")
    (x_train, _), _, _ = load_cifar(source=path, progress=False)
    assert any((image == 7).all() for image in x_train)
    assert any((image == [1, 2, 3]).all() for image in x_train)


@pytest.mark.parametrize("where", ["parent", "official-folder-itself"])
def test_official_cifar10_folder_converts_channel_planar_rows_to_nhwc(tiny_cifar, where):
    path, expected = tiny_cifar.official_cifar10()
    source = path if where == "parent" else path / "cifar-10-batches-py"
    (x_train, y_train), (x_test, y_test), names = load_cifar(source=source, progress=False)
    # The official files are already in random order; we keep it, batch 1 to 5.
    np.testing.assert_array_equal(x_train, expected["train"][0])
    np.testing.assert_array_equal(y_train, expected["train"][1])
    np.testing.assert_array_equal(x_test, expected["test"][0])
    np.testing.assert_array_equal(y_test, expected["test"][1])
    assert x_train.shape == (15, 32, 32, 3) and y_train.dtype == np.int64 and y_train.shape == (15,)
    assert x_train.flags.c_contiguous
    assert names == list(CIFAR10_CLASSES)


def test_official_cifar10_tar_gz(tiny_cifar):
    path, expected = tiny_cifar.official_cifar10()
    archive = tiny_cifar.tar_gz(path, arcname="")  # like cifar-10-python.tar.gz
    (x_train, y_train), (x_test, y_test), _ = load_cifar(source=archive, progress=False)
    np.testing.assert_array_equal(x_train, expected["train"][0])
    np.testing.assert_array_equal(y_test, expected["test"][1])


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_official_pickles_of_every_protocol_load(tiny_cifar, protocol):
    path, expected = tiny_cifar.official_cifar10(protocol=protocol)
    (x_train, _), _, _ = load_cifar(source=path, progress=False)
    np.testing.assert_array_equal(x_train, expected["train"][0])


def test_pickles_written_by_numpy_1_load(tiny_cifar):
    # The original files reference numpy.core.multiarray (numpy 2 renamed it _core).
    path, expected = tiny_cifar.official_cifar10()
    for file in (path / "cifar-10-batches-py").iterdir():
        file.write_bytes(file.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert b"numpy.core.multiarray" in (path / "cifar-10-batches-py" / "test_batch").read_bytes()
    (_, _), (x_test, _), _ = load_cifar(source=path, progress=False)
    np.testing.assert_array_equal(x_test, expected["test"][0])


@pytest.mark.parametrize("label_mode", ["fine", "coarse"])
def test_official_cifar100(tiny_cifar, label_mode):
    path, fine, coarse = tiny_cifar.official_cifar100()
    expected = fine if label_mode == "fine" else coarse
    (x_train, y_train), (x_test, y_test), names = load_cifar("cifar100", source=path, label_mode=label_mode)
    np.testing.assert_array_equal(x_train, expected["train"][0])
    np.testing.assert_array_equal(y_train, expected["train"][1])
    np.testing.assert_array_equal(y_test, expected["test"][1])
    assert names == list(CIFAR100_FINE_CLASSES if label_mode == "fine" else CIFAR100_COARSE_CLASSES)


def test_cifar100_image_folder_fine_and_coarse(tiny_cifar):
    path, expected = tiny_cifar.image_folder(classes=CIFAR100_FINE_CLASSES, per_class=(1, 1))
    assert_loaded(load_cifar("cifar100", source=path, progress=False), expected, CIFAR100_FINE_CLASSES)
    (x_train, y_coarse), _, names = load_cifar("cifar100", source=path, label_mode="coarse", progress=False)
    assert names == list(CIFAR100_COARSE_CLASSES)
    fine_of = {image.tobytes(): label for image, label in zip(*expected["train"])}
    fine = np.array([fine_of[image.tobytes()] for image in x_train])
    assert [names[c] for c in y_coarse[fine == CIFAR100_FINE_CLASSES.index("apple")]] == ["fruit_and_vegetables"]
    np.testing.assert_array_equal(y_coarse, np.array(CIFAR100_FINE_TO_COARSE)[fine])


def test_every_cifar100_superclass_has_five_classes():
    assert np.bincount(CIFAR100_FINE_TO_COARSE).tolist() == [5] * 20


def test_cifar10_rejects_coarse_labels_and_unknown_names():
    with pytest.raises(ValueError, match="label_mode"):
        load_cifar("cifar10", label_mode="coarse")
    with pytest.raises(ValueError, match="name"):
        load_cifar("mnist")


# --- where data come from ----------------------------------------------------------


def test_vt_edu_data_is_honoured(tiny_cifar, monkeypatch):
    path, expected = tiny_cifar.image_folder()
    monkeypatch.setenv(DATA_ENV, str(path))
    assert_loaded(load_cifar(progress=False), expected)


def test_vt_edu_data_list_uses_the_first_entry_holding_the_data_set(tiny_cifar, monkeypatch):
    ten, expected10 = tiny_cifar.image_folder()
    hundred, expected100, _ = tiny_cifar.official_cifar100()
    other10, _ = tiny_cifar.image_folder(name="other")
    monkeypatch.setenv(DATA_ENV, os.pathsep.join([str(ten), str(hundred), str(other10)]))
    assert_loaded(load_cifar("cifar10", progress=False), expected10)
    (x_train, y_train), _, _ = load_cifar("cifar100")
    np.testing.assert_array_equal(x_train, expected100["train"][0])
    np.testing.assert_array_equal(y_train, expected100["train"][1])


def test_source_argument_wins_over_vt_edu_data(tiny_cifar, monkeypatch):
    env_path, _ = tiny_cifar.image_folder(name="env")
    arg_path, expected = tiny_cifar.image_folder(name="arg")
    monkeypatch.setenv(DATA_ENV, str(env_path))
    assert_loaded(load_cifar(source=str(arg_path), progress=False), expected)


def test_missing_vt_edu_data_entry_is_an_error_naming_it(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.tar.gz"
    monkeypatch.setenv(DATA_ENV, str(missing))
    with pytest.raises(SourceNotFoundError, match=DATA_ENV) as info:
        load_cifar()
    assert str(missing) in str(info.value)


def test_source_without_the_requested_data_set_is_an_error(tiny_cifar):
    path, _ = tiny_cifar.image_folder()
    with pytest.raises(LayoutError, match="holds CIFAR-10, not CIFAR-100") as info:
        load_cifar("cifar100", source=path)
    assert str(path) in str(info.value)


def _offline(*args, **kwargs):
    raise Exception("URL fetch failure on https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz: None -- [Errno -3]")


def test_offline_without_local_data_explains_vt_edu_data(monkeypatch):
    monkeypatch.setattr(keras.utils, "get_file", _offline)
    with pytest.raises(DownloadError) as info:
        load_cifar()
    message = str(info.value)
    assert "URL fetch failure" in message and "cifar-10-python.tar.gz" in message
    assert f"export {DATA_ENV}=" in message and f'os.environ["{DATA_ENV}"]' in message
    assert isinstance(info.value, OSError)


def test_offline_names_the_entries_that_lacked_the_data_set(tiny_cifar, monkeypatch):
    path, _ = tiny_cifar.image_folder()
    monkeypatch.setenv(DATA_ENV, str(path))
    monkeypatch.setattr(keras.utils, "get_file", _offline)
    with pytest.raises(DownloadError, match="holds CIFAR-100") as info:
        load_cifar("cifar100")
    assert str(path) in str(info.value)


def test_a_source_is_inspected_once_for_a_data_set_it_lacks(tiny_cifar, monkeypatch):
    path, _ = tiny_cifar.image_folder()
    monkeypatch.setenv(DATA_ENV, str(path))
    monkeypatch.setattr(keras.utils, "get_file", _offline)
    with pytest.raises(DownloadError):
        load_cifar("cifar100")

    def must_not_open(*args, **kwargs):
        raise AssertionError("read the source again")

    monkeypatch.setattr(trees, "open_tree", must_not_open)
    with pytest.raises(DownloadError):
        load_cifar("cifar100")


def test_download_goes_through_keras_get_file(tiny_cifar, monkeypatch):
    path, expected = tiny_cifar.official_cifar10()
    archive = tiny_cifar.tar_gz(path, arcname="")
    calls = []

    def fake_get_file(fname, origin, file_hash):
        calls.append((fname, origin, file_hash))
        return str(archive)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    (x_train, _), _, names = load_cifar()
    np.testing.assert_array_equal(x_train, expected["train"][0])
    assert names == list(CIFAR10_CLASSES)
    assert calls == [
        (
            "cifar-10-python.tar.gz",
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        )
    ]


# --- cache -----------------------------------------------------------------------


def test_second_load_comes_from_the_cache(tiny_cifar, monkeypatch):
    path, _ = tiny_cifar.image_folder(per_class=(40, 10), fmt="jpg")
    archive = tiny_cifar.tar_gz(path)
    start = time.perf_counter()
    first = load_cifar(source=archive, progress=False)
    first_seconds = time.perf_counter() - start

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(image_folder, "read_image_folder", must_not_decode)
    start = time.perf_counter()
    second = load_cifar(source=archive, progress=False)
    second_seconds = time.perf_counter() - start
    assert second_seconds < first_seconds
    for a, b in zip((*first.train, *first.test), (*second.train, *second.test)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    assert second.class_names == first.class_names
    assert len(list(cache_dir().glob("cifar10-fine-*.npz"))) == 1


def test_changed_folder_is_decoded_again(tiny_cifar):
    path, _ = tiny_cifar.image_folder()
    load_cifar(source=path, progress=False)
    replacement = np.full((32, 32, 3), 9, np.uint8)
    Image.fromarray(replacement).save(path / "test" / "cat" / "0000.png")
    _, (x_test, _), _ = load_cifar(source=path, progress=False)
    assert any((image == 9).all() for image in x_test)


def test_unreadable_cache_entry_is_rebuilt(tiny_cifar):
    path, expected = tiny_cifar.image_folder()
    load_cifar(source=path, progress=False)
    (entry,) = cache_dir().glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    assert_loaded(load_cifar(source=path, progress=False), expected)
    assert data_cache.load(entry) is not None


class _Interrupted(BaseException):
    """Stands for Ctrl-C or a killed process in the middle of writing the cache."""


def test_interrupted_cache_write_leaves_no_entry(tiny_cifar, monkeypatch):
    path, expected = tiny_cifar.image_folder()

    def savez_then_die(file, **arrays):
        file.write(b"PK\x03\x04 half an npz")
        raise _Interrupted

    with monkeypatch.context() as patch, pytest.raises(_Interrupted):
        patch.setattr(data_cache.np, "savez", savez_then_die)
        load_cifar(source=path, progress=False)
    assert list(cache_dir().glob("*.npz*")) == [] and list(cache_dir().glob(".*")) == []
    assert_loaded(load_cifar(source=path, progress=False), expected)


def test_cache_entries_cannot_run_code(tiny_cifar):
    path, _ = tiny_cifar.image_folder()
    load_cifar(source=path, progress=False)
    (entry,) = cache_dir().glob("*.npz")
    np.savez(entry, x_train=np.array([object()], dtype=object), y_train=[], x_test=[], y_test=[], class_names=[])
    # An object array is stored as a pickle; the cache reader refuses it, so the
    # entry counts as missing instead of being unpickled.
    assert data_cache.load(entry) is None


def _fewer_images(arrays):
    for key in ("x_train", "y_train"):
        arrays[key] = arrays[key][:3]


def _labels_out_of_range(arrays):
    arrays["y_test"] = arrays["y_test"] + 10


def _wrong_image_shape(arrays):
    arrays["x_train"] = arrays["x_train"][:, :16]


def _float_labels(arrays):
    arrays["y_train"] = arrays["y_train"].astype(np.float32)


def _other_class_names(arrays):
    arrays["class_names"] = arrays["class_names"][::-1]


def _cached_entry(tiny_cifar):
    path, expected = tiny_cifar.image_folder()
    load_cifar(source=path, progress=False)
    (entry,) = cache_dir().glob("*.npz")
    with np.load(entry) as stored:
        arrays = dict(stored)
    return path, expected, entry, arrays


@pytest.mark.parametrize(
    "tamper", [_fewer_images, _labels_out_of_range, _wrong_image_shape, _float_labels, _other_class_names]
)
def test_cache_entry_edited_into_another_valid_npz_is_rebuilt(tiny_cifar, tamper):
    """Edited by hand (the stored digest copied along): the digest no longer matches."""
    path, expected, entry, arrays = _cached_entry(tiny_cifar)
    tamper(arrays)
    np.savez(entry, **arrays)
    assert_loaded(load_cifar(source=path, progress=False), expected)
    assert data_cache.load(entry, list(CIFAR10_CLASSES)) is not None  # rewritten


@pytest.mark.parametrize("tamper", [_labels_out_of_range, _wrong_image_shape, _float_labels, _other_class_names])
def test_cache_entry_written_with_wrong_content_is_rebuilt(tiny_cifar, tamper):
    """Written with a matching digest: the checks of shapes, dtypes, labels and names catch it."""
    path, expected, entry, arrays = _cached_entry(tiny_cifar)
    tamper(arrays)
    train, test = (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    data_cache.save(entry, train, test, [str(n) for n in arrays["class_names"]])
    assert_loaded(load_cifar(source=path, progress=False), expected)
    assert data_cache.load(entry, list(CIFAR10_CLASSES)) is not None  # rewritten


# --- symbolic links ----------------------------------------------------------------


def _splits_as_links(real, folder):
    """``folder`` holding ``train`` and ``test`` as symbolic links to ``real``'s splits."""
    folder.mkdir()
    for split in ("train", "test"):
        (folder / split).symlink_to(real / split, target_is_directory=True)
    return folder


def test_split_folders_given_as_symbolic_links_are_followed(tiny_cifar, tmp_path):
    real, expected = tiny_cifar.image_folder(name="real")
    linked = _splits_as_links(real, tmp_path / "linked")
    assert_loaded(load_cifar(source=linked, progress=False), expected)


def test_a_symbolic_link_cycle_does_not_hang_the_listing(tiny_cifar):
    path, expected = tiny_cifar.image_folder()
    (path / "train" / "cat" / "loop").symlink_to(path / "train", target_is_directory=True)
    tree = trees.open_tree(path)
    assert "train/cat/loop" in tree.dirs and not any(f.startswith("train/cat/loop/") for f in tree.files)
    assert_loaded(load_cifar(source=path, progress=False), expected)


def test_links_inside_an_archive_are_named_not_followed(tiny_cifar, tmp_path):
    real, _ = tiny_cifar.image_folder(name="real")
    linked = _splits_as_links(real, tmp_path / "linked")
    archive = tmp_path / "linked.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(linked, arcname="")  # links stored as links, as tar does by default
    with pytest.raises(LayoutError) as info:
        load_cifar(source=archive, progress=False)
    message = str(info.value)
    assert str(archive) in message and "links, which are not followed" in message
    assert "test, train" in message and "--dereference" in message
