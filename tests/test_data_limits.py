"""Untrusted sources cannot make load_cifar read or decode more than the data set.

Each test measures the Python heap with tracemalloc while loading: the archive
reader, gzip and Pillow allocate through it, so reading a large member or decoding
a large image would show up as a peak of its size.
"""

from __future__ import annotations

import io
import struct
import tarfile
import tracemalloc
import zlib
from contextlib import contextmanager

import pytest

from vt_edu.config import DATA_ENV
from vt_edu.data import ImageSizeError, load_cifar
from vt_edu.data.image_folder import MAX_IMAGE_FILE_BYTES

from test_data_sources import assert_loaded

MIB = 1 << 20
BIG_MEMBER = 64 * MIB
# What loading the tiny data set itself may allocate at once; far below BIG_MEMBER.
SMALL_PEAK = 16 * MIB


@pytest.fixture(autouse=True)
def _no_env_source(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)


@contextmanager
def peak_memory():
    """Yields a list that holds, after the block, the peak of traced allocations."""
    result = []
    tracemalloc.start()
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


class _Zeros(io.RawIOBase):
    """``size`` zero bytes as a file, without holding them."""

    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def archive_with_member(tiny_cifar, member_name, size=BIG_MEMBER):
    """The tiny image-folder tree as .tar.gz, plus ``size`` zero bytes as ``member_name``
    (compressed to a few hundred KiB, as a decompression bomb would be)."""
    path, expected = tiny_cifar.image_folder(name="imgs")
    archive = tiny_cifar.tar_gz(path)
    with tarfile.open(archive, "r:gz") as original:
        members = [(m, original.extractfile(m).read()) for m in original.getmembers()]
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data))
        big = tarfile.TarInfo(member_name)
        big.size = size
        tar.addfile(big, io.BufferedReader(_Zeros(size), 1 << 20))
    assert archive.stat().st_size < 2 * MIB
    return archive, expected


def test_archive_member_outside_the_layout_is_never_read(tiny_cifar):
    archive, expected = archive_with_member(tiny_cifar, "imgs/extras/huge.bin")
    with peak_memory() as peak:
        data = load_cifar(source=archive, progress=False)
    assert_loaded(data, expected)
    assert peak[0] < SMALL_PEAK, f"peak {peak[0] / MIB:.0f} MiB"


def test_oversized_image_file_in_the_layout_is_refused_before_reading(tiny_cifar):
    archive, _ = archive_with_member(tiny_cifar, "imgs/train/cat/huge.png")
    with peak_memory() as peak, pytest.raises(ImageSizeError) as info:
        load_cifar(source=archive, progress=False)
    message = str(info.value)
    assert "imgs/train/cat/huge.png" in message and str(archive) in message
    assert f"{BIG_MEMBER:,}-byte" in message and f"{MAX_IMAGE_FILE_BYTES:,}" in message
    assert peak[0] < SMALL_PEAK, f"peak {peak[0] / MIB:.0f} MiB"


def png_header_only(width, height):
    """A PNG declaring ``width`` x ``height`` RGB pixels, with one empty IDAT chunk.

    Pillow reads the size from the header alone; decoding it would need
    width * height * 3 bytes and then fail on the missing pixel data.
    """

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def test_huge_image_dimensions_are_refused_from_the_header(tiny_cifar):
    path, _ = tiny_cifar.image_folder()
    bomb = path / "train" / "ship" / "0000.png"
    bomb.write_bytes(png_header_only(9000, 9000))
    with peak_memory() as peak, pytest.raises(ImageSizeError) as info:
        load_cifar(source=path, progress=False)
    message = str(info.value)
    assert str(bomb) in message and "9000x9000" in message and "32x32" in message
    assert peak[0] < SMALL_PEAK, f"peak {peak[0] / MIB:.0f} MiB"
