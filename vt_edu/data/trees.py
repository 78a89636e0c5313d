"""A folder or a tar archive, seen as one tree of files.

The layout readers (:mod:`.image_folder`, :mod:`.cifar_pickle`) work on relative
POSIX paths and bytes, so they need not care whether a source was unpacked or not.
Archives are read in one streaming pass and never extracted: nothing is written to
disk, and member names like ``../x`` cannot escape anywhere.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zlib
from collections import defaultdict
from pathlib import Path, PurePosixPath

from vt_edu.data.errors import ArchiveError


class FileTree:
    """Files of a source by relative POSIX path (``"train/cat/0001.png"``).

    Attributes:
        location: the folder or archive, for messages.
        root_name: the folder's own name (``"cifar-10-batches-py"`` when a user points
            at the official folder itself); ``""`` for archives.
        files: sorted relative paths of the regular files.
        dirs: relative paths of every folder, including ones only implied by a file.
    """

    def __init__(self, location: Path, root_name: str, files: list[str]):
        self.location = location
        self.root_name = root_name
        self.files = sorted(files)
        self.dirs: set[str] = set()
        self._index: dict[str, tuple[list[str], list[str]]] | None = None
        for f in self.files:
            self._add_dir_of(f)

    def _add_dir_of(self, relpath: str) -> None:
        for parent in PurePosixPath(relpath).parents:
            if str(parent) != ".":
                self.dirs.add(str(parent))

    def _add_dirs(self, relpaths: list[str]) -> None:
        for d in relpaths:
            self.dirs.add(d)
            self._add_dir_of(d)

    def read(self, relpath: str) -> bytes:
        """The bytes of one file."""
        raise NotImplementedError

    def describe(self, relpath: str) -> str:
        """How to name one file in a message."""
        return str(self.location / relpath)

    def listdir(self, relpath: str = "") -> tuple[list[str], list[str]]:
        """The (sub-folder names, file names) directly under ``relpath``, sorted."""
        if self._index is None:
            self._index = defaultdict(lambda: ([], []))
            for d in sorted(self.dirs):
                parent, _, name = d.rpartition("/")
                self._index[parent][0].append(name)
            for f in self.files:
                parent, _, name = f.rpartition("/")
                self._index[parent][1].append(name)
        subdirs, files = self._index.get(relpath, ([], []))
        return list(subdirs), list(files)


class FolderTree(FileTree):
    """A folder on disk; files are read when asked for."""

    def __init__(self, root: Path):
        files, dirs = [], []
        for dirpath, dirnames, filenames in os.walk(root):
            rel = Path(dirpath).relative_to(root)
            dirs.extend((rel / d).as_posix() for d in dirnames)
            files.extend((rel / f).as_posix() for f in filenames)
        super().__init__(root, root.name, files)
        # An empty folder is implied by no file, but an empty class folder must be seen.
        self._add_dirs(dirs)

    def read(self, relpath: str) -> bytes:
        return (self.location / relpath).read_bytes()


class ArchiveTree(FileTree):
    """A tar archive (gzip-compressed or not), read into memory in one pass."""

    def __init__(self, path: Path):
        self._contents: dict[str, bytes] = {}
        explicit_dirs = []
        try:
            # Streaming mode ("r|*") reads the archive front to back exactly once; the
            # random-access mode would re-decompress from the start for every seek.
            with tarfile.open(path, mode="r|*") as archive:
                for member in archive:
                    name = _safe_name(member.name)
                    if name is None:
                        continue
                    if member.isdir():
                        explicit_dirs.append(name)
                    elif member.isfile():
                        self._contents[name] = archive.extractfile(member).read()
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            raise ArchiveError(
                f"{path} is not a readable gzip-compressed tar archive ({error}). "
                "Give a .tar.gz/.tgz of the data set, or the unpacked folder; "
                "if the file was downloaded, download it again."
            ) from error
        super().__init__(path, "", list(self._contents))
        self._add_dirs(explicit_dirs)

    def read(self, relpath: str) -> bytes:
        return self._contents[relpath]

    def describe(self, relpath: str) -> str:
        return f"{relpath} in {self.location}"


def _safe_name(name: str) -> str | None:
    """A member name as a clean relative path, or None for names we do not read."""
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if not parts or name.startswith("/") or ".." in parts:
        return None
    return "/".join(parts)


def open_tree(path: Path) -> FileTree:
    """A :class:`FileTree` for a folder or an archive file.

    Raises:
        ArchiveError: if ``path`` is a file but not a readable tar archive.
    """
    return FolderTree(path) if path.is_dir() else ArchiveTree(path)


def identity(path: Path) -> str:
    """A hex digest that changes whenever the source's content may have changed.

    Archives: the sha256 of their bytes (a 19 MB archive hashes in well under a
    second). Folders: a hash of every file's relative path, size and modification
    time, which is cheap to compute and changes when a file is replaced or edited.
    """
    digest = hashlib.sha256()
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(filenames):
                full = Path(dirpath) / name
                stat = full.stat()
                digest.update(f"{full.relative_to(path).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    else:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
