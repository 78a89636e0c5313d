"""Bad inputs raise the documented error class, with a message naming the path."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import tarfile
from contextlib import contextmanager

import pytest
from PIL import Image

from vt_edu.config import DATA_ENV
from vt_edu.data import (
    ArchiveError,
    ClassMismatchError,
    CorruptFileError,
    DataError,
    EmptyClassError,
    ImageSizeError,
    LayoutError,
    SourceNotFoundError,
    UnsafePickleError,
    load_cifar,
)
from vt_edu.data.cifar_pickle import load_pickle


@pytest.fixture(autouse=True)
def _no_env_source(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)


@contextmanager
def raises(error_class, path, *fragments):
    """``pytest.raises`` that also checks the message names ``path`` and each fragment."""
    with pytest.raises(error_class) as info:
        yield info
    message = str(info.value)
    assert isinstance(info.value, DataError)
    assert str(path) in message, f"{path} not in: {message}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


def test_missing_path(tmp_path):
    missing = tmp_path / "no-such-folder"
    with raises(SourceNotFoundError, missing, "does not exist"):
        load_cifar(source=missing)
    assert issubclass(SourceNotFoundError, FileNotFoundError)


def test_file_that_is_not_an_archive(tmp_path):
    bogus = tmp_path / "cifar.tar.gz"
    bogus.write_text("not an archive")
    with raises(ArchiveError, bogus, "tar archive"):
        load_cifar(source=bogus)


def test_gzip_that_is_not_a_tar(tmp_path):
    bogus = tmp_path / "cifar.tgz"
    bogus.write_bytes(gzip.compress(b"plain text, gzip-compressed"))
    with raises(ArchiveError, bogus):
        load_cifar(source=bogus)


def test_truncated_archive(tiny_cifar):
    path, _ = tiny_cifar.image_folder()
    archive = tiny_cifar.tar_gz(path)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with raises(ArchiveError, archive):
        load_cifar(source=archive)


def test_class_folders_differ_between_train_and_test(tiny_cifar):
    path, _ = tiny_cifar.image_folder()
    shutil.rmtree(path / "test" / "frog")
    with raises(ClassMismatchError, path, "only in train/: ['frog']"):
        load_cifar(source=path)


def test_missing_test_split(tiny_cifar):
    path, _ = tiny_cifar.image_folder()
    shutil.rmtree(path / "test")
    with raises(LayoutError, path, "test/"):
        load_cifar(source=path)


def test_corrupt_image_is_named(tiny_cifar):
    path, _ = tiny_cifar.image_folder()
    broken = path / "train" / "horse" / "0001.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with raises(CorruptFileError, broken, "cannot be decoded"):
        load_cifar(source=path, progress=False)


def test_corrupt_image_inside_an_archive_is_named(tiny_cifar):
    path, _ = tiny_cifar.image_folder(name="imgs")
    (path / "test" / "ship" / "0000.png").write_bytes(b"nope")
    archive = tiny_cifar.tar_gz(path)
    with raises(CorruptFileError, archive, "imgs/test/ship/0000.png"):
        load_cifar(source=archive, progress=False)


def test_mixed_image_sizes_name_the_file_and_both_sizes(tiny_cifar):
    path, _ = tiny_cifar.image_folder()
    odd = path / "test" / "deer" / "0000.png"
    Image.new("RGB", (30, 28)).save(odd)
    with raises(ImageSizeError, odd, "30x28", "32x32", str(path / "train" / "airplane" / "0000.png")):
        load_cifar(source=path, progress=False)


def test_images_that_are_not_32x32(tiny_cifar):
    path, _ = tiny_cifar.image_folder()
    first = path / "train" / "airplane" / "0000.png"
    Image.new("RGB", (64, 64)).save(first)
    with raises(ImageSizeError, first, "64x64", "32x32"):
        load_cifar(source=path, progress=False)


def test_empty_class_folder(tiny_cifar):
    path, _ = tiny_cifar.image_folder()
    for image in (path / "train" / "bird").iterdir():
        image.unlink()
    with raises(EmptyClassError, path / "train" / "bird", "holds no image"):
        load_cifar(source=path)


def test_empty_class_folder_in_an_archive(tiny_cifar):
    path, _ = tiny_cifar.image_folder(name="imgs")
    for image in (path / "test" / "bird").iterdir():
        image.unlink()
    # An empty folder exists in an archive only as a member of its own, so this one
    # is packed with its folders (tiny_cifar.tar_gz adds files only).
    archive = path.with_name("imgs.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(path, arcname="imgs")
    with raises(EmptyClassError, archive, "imgs/test/bird"):
        load_cifar(source=archive)


def test_class_names_that_are_not_cifar(tiny_cifar):
    path, _ = tiny_cifar.image_folder(classes=[f"class{i}" for i in range(10)])
    with raises(LayoutError, path, "not the official CIFAR-10 classes", "unexpected: ['class0'"):
        load_cifar(source=path)


def test_no_recognised_layout(tmp_path):
    folder = tmp_path / "photos"
    (folder / "holiday").mkdir(parents=True)
    (folder / "notes.txt").write_text("hello")
    with raises(LayoutError, folder, "no recognised data set layout", "holiday/", "notes.txt"):
        load_cifar(source=folder)


def test_official_layout_with_a_missing_file(tiny_cifar):
    path, _ = tiny_cifar.official_cifar10()
    (path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with raises(LayoutError, path, "data_batch_3"):
        load_cifar(source=path)


def test_pickle_that_is_not_a_cifar_batch(tiny_cifar):
    path, _ = tiny_cifar.official_cifar10()
    batch = path / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({b"labels": [1, 2]}, protocol=2))
    with raises(CorruptFileError, batch, "'data'"):
        load_cifar(source=path)


def test_pickle_with_labels_out_of_range(tiny_cifar):
    path, _ = tiny_cifar.official_cifar10(n_test=2)
    batch = path / "cifar-10-batches-py" / "test_batch"
    rows = tiny_cifar.images(2).transpose(0, 3, 1, 2).reshape(2, 3072)
    batch.write_bytes(pickle.dumps({b"data": rows, b"labels": [3, 10]}, protocol=2))
    with raises(CorruptFileError, batch, "labels in [0, 10)"):
        load_cifar(source=path)


def test_truncated_pickle(tiny_cifar):
    path, _ = tiny_cifar.official_cifar10()
    batch = path / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:50])
    with raises(CorruptFileError, batch, "not a readable CIFAR pickle"):
        load_cifar(source=path)


class _Exploit:
    """What an attacker would put in a batch file: unpickling runs a shell command."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_malicious_pickle_is_refused_and_never_executed(tiny_cifar, tmp_path):
    path, _ = tiny_cifar.official_cifar10()
    marker = tmp_path / "MARKER"
    batch = path / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(pickle.dumps({b"data": _Exploit(f"touch {marker}"), b"labels": []}, protocol=2))
    with raises(UnsafePickleError, batch, "system", "nothing from it was executed"):
        load_cifar(source=path)
    assert not marker.exists()
    assert isinstance(UnsafePickleError("x"), pickle.UnpicklingError)


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_restricted_unpickler_refuses_any_other_global(tmp_path, protocol):
    marker = tmp_path / "MARKER"
    payloads = [_Exploit(f"touch {marker}"), {"x": print}, [eval]]
    for payload in payloads:
        with raises(UnsafePickleError, "evil.pkl"):
            load_pickle(pickle.dumps(payload, protocol=protocol), "evil.pkl")
    assert not marker.exists()


def test_malicious_pickle_inside_an_archive(tiny_cifar, tmp_path):
    path, _ = tiny_cifar.official_cifar10()
    marker = tmp_path / "MARKER"
    meta = path / "cifar-10-batches-py" / "batches.meta"
    meta.write_bytes(pickle.dumps(_Exploit(f"touch {marker}")))
    archive = tiny_cifar.tar_gz(path, arcname="")
    with raises(UnsafePickleError, archive, "cifar-10-batches-py/batches.meta"):
        load_cifar(source=archive)
    assert not marker.exists()


def test_official_class_names_in_another_order_are_refused(tiny_cifar):
    """Labels index batches.meta's names: reversed names would mislabel every class."""
    from vt_edu.data.names import CIFAR10_CLASSES

    path, _ = tiny_cifar.official_cifar10()
    meta = path / "cifar-10-batches-py" / "batches.meta"
    names = [c.encode() for c in reversed(CIFAR10_CLASSES)]
    meta.write_bytes(pickle.dumps({b"label_names": names, b"num_vis": 3072}, protocol=2))
    with raises(CorruptFileError, meta, "'label_names'", "official order", "label 0 is 'truck'", "'airplane'"):
        load_cifar(source=path)


def test_float_labels_are_refused_not_truncated(tiny_cifar):
    path, _ = tiny_cifar.official_cifar10(n_test=2)
    batch = path / "cifar-10-batches-py" / "test_batch"
    rows = tiny_cifar.images(2).transpose(0, 3, 1, 2).reshape(2, 3072)
    batch.write_bytes(pickle.dumps({b"data": rows, b"labels": [3.7, 1.0]}, protocol=2))
    with raises(CorruptFileError, batch, "'labels'", "integer labels", "3.7"):
        load_cifar(source=path)


def test_cache_folder_under_a_regular_file(tiny_cifar, tmp_path, monkeypatch):
    from vt_edu.data import CacheError

    path, _ = tiny_cifar.image_folder()
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("VT_EDU_CACHE", str(tmp_path / "a-file" / "cache"))
    with raises(CacheError, tmp_path / "a-file", "VT_EDU_CACHE=", "cannot be created", "a folder you can write to"):
        load_cifar(source=path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_cache_folder_in_a_folder_without_write_permission(tiny_cifar, tmp_path, monkeypatch):
    from vt_edu.data import CacheError

    path, _ = tiny_cifar.image_folder()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    monkeypatch.setenv("VT_EDU_CACHE", str(locked / "cache"))
    try:
        with raises(CacheError, locked / "cache", "VT_EDU_CACHE=", "Permission denied"):
            load_cifar(source=path)
    finally:
        locked.chmod(0o700)


def test_an_extra_class_folder_is_named_without_assuming_cifar100(tiny_cifar):
    from vt_edu.data.names import CIFAR10_CLASSES

    path, _ = tiny_cifar.image_folder(classes=[*CIFAR10_CLASSES, "zebra"])
    with raises(LayoutError, path / "train", "11 class folders", "neither CIFAR-10's 10 nor CIFAR-100's 100",
                "unexpected: ['zebra']", "missing: none") as info:  # fmt: skip
        load_cifar(source=path)
    assert "apple" not in str(info.value)  # no list of CIFAR-100's missing classes


def test_a_long_list_of_missing_classes_is_cut(tiny_cifar):
    from vt_edu.data.names import CIFAR100_FINE_CLASSES

    path, _ = tiny_cifar.image_folder(classes=CIFAR100_FINE_CLASSES[:50], per_class=(1, 1))
    with raises(LayoutError, path / "train", "50 class folders", "compared with CIFAR-100", "and 40 more"):
        load_cifar(source=path)


def test_error_messages_are_one_line(tiny_cifar):
    from vt_edu.data.names import CIFAR10_CLASSES

    path, _ = tiny_cifar.image_folder(classes=[*CIFAR10_CLASSES, "zebra"])
    with pytest.raises(DataError) as info:
        load_cifar(source=path)
    assert "\n" not in str(info.value)


def test_cache_folder_that_is_a_regular_file(tiny_cifar, tmp_path, monkeypatch):
    from vt_edu.data import CacheError

    path, _ = tiny_cifar.image_folder()
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("VT_EDU_CACHE", str(tmp_path / "a-file"))
    with raises(CacheError, tmp_path / "a-file", "VT_EDU_CACHE=", "a file of that name is in the way"):
        load_cifar(source=path)
