"""A folder or a tar archive, seen as one tree of files.

The layout readers (:mod:`.image_folder`, :mod:`.cifar_pickle`) work on relative
POSIX paths and bytes, so they need not care whether a source was unpacked or not.
Archives are never extracted: nothing is written to disk, and member names like
``../x`` cannot escape anywhere. They are read in streaming passes that hold one
member at a time: a first pass lists names and sizes from the headers, and
:meth:`FileTree.read_files` then reads only the members a reader asks for, so a
member outside the data set's layout (however large) is skipped, never read into
memory. Readers check :meth:`FileTree.size` before reading, so an oversized member
inside the layout is refused before it is read.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from vt_edu.data.errors import ArchiveError, CorruptFileError


class FileTree:
    """Files of a source by relative POSIX path (``"train/cat/0001.png"``).

    Attributes:
        location: the folder or archive, for messages.
        root_name: the folder's own name (``"cifar-10-batches-py"`` when a user points
            at the official folder itself); ``""`` for archives.
        files: sorted relative paths of the regular files.
        dirs: relative paths of every folder, including ones only implied by a file.
        links: relative paths of symbolic and hard links in an archive, which are not
            followed (in a folder, links to folders are followed, see :func:`_walk`).
    """

    def __init__(self, location: Path, root_name: str, files: list[str]):
        self.location = location
        self.root_name = root_name
        self.files = sorted(files)
        self.links: list[str] = []
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

    def size(self, relpath: str) -> int:
        """The size of one file in bytes, known without reading it."""
        raise NotImplementedError

    def read_files(self, relpaths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """``(relpath, bytes)`` of each file asked for, one at a time.

        The order is the cheapest for the tree (an archive's member order), not
        necessarily that of ``relpaths``; callers place each file by its path.

        Raises:
            ArchiveError: if an archive cannot be read.
            CorruptFileError: if a file on disk cannot be read.
        """
        raise NotImplementedError

    def read(self, relpath: str) -> bytes:
        """The bytes of one file (a whole pass over an archive: prefer :meth:`read_files`)."""
        for _, data in self.read_files([relpath]):
            return data
        raise KeyError(relpath)

    def describe(self, relpath: str) -> str:
        """How to name one file in a message."""
        return str(self.location / relpath)

    def links_note(self) -> str:
        """A sentence for a layout error when the archive holds links, else ``""``."""
        if not self.links:
            return ""
        more = f" and {len(self.links) - 5} more" if len(self.links) > 5 else ""
        return (
            f" It holds links, which are not followed inside an archive ({', '.join(self.links[:5])}{more}); "
            "pack the folders they point to instead (tar --dereference)."
        )

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
        for dirpath, dirnames, filenames in _walk(root):
            rel = Path(dirpath).relative_to(root)
            dirs.extend((rel / d).as_posix() for d in dirnames)
            files.extend((rel / f).as_posix() for f in filenames)
        super().__init__(root, root.name, files)
        # An empty folder is implied by no file, but an empty class folder must be seen.
        self._add_dirs(dirs)

    def size(self, relpath: str) -> int:
        try:
            return (self.location / relpath).stat().st_size
        except OSError as error:
            raise self._unreadable(relpath, error) from error

    def read_files(self, relpaths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        for relpath in relpaths:
            try:
                data = (self.location / relpath).read_bytes()
            except OSError as error:
                raise self._unreadable(relpath, error) from error
            yield relpath, data

    def _unreadable(self, relpath: str, error: OSError) -> CorruptFileError:
        # A broken symbolic link or a file without read permission.
        return CorruptFileError(
            f"{self.describe(relpath)} cannot be read ({error.strerror or error}). "
            "Fix its permissions or link, or remove it."
        )


class ArchiveTree(FileTree):
    """A tar archive (gzip-compressed or not), read in streaming passes.

    A name stored twice in an archive is read from its first copy.
    """

    def __init__(self, path: Path):
        self._sizes: dict[str, int] = {}
        explicit_dirs, links = [], []
        # Stream mode skips a member's data without keeping it: listing the headers
        # holds one block at a time, whatever the members' sizes.
        with self._members(path) as (_, members):
            for name, member in members:
                if member.isdir():
                    explicit_dirs.append(name)
                elif member.isfile():
                    self._sizes.setdefault(name, member.size)
                elif member.issym() or member.islnk():
                    # Never followed: a link could point anywhere on the reader's disk.
                    links.append(name)
        super().__init__(path, "", list(self._sizes))
        self._add_dirs(explicit_dirs)
        self.links = links

    @staticmethod
    @contextmanager
    def _members(path: Path):
        """The ``(clean name, TarInfo)`` of every member, in one streaming pass.

        Streaming mode (``"r|*"``) reads the archive front to back exactly once; the
        random-access mode would decompress again from the start for every seek.
        """
        try:
            with tarfile.open(path, mode="r|*") as archive:
                yield archive, (
                    (name, member)
                    for member in archive
                    if (name := _safe_name(member.name)) is not None
                )
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            raise ArchiveError(
                f"{path} is not a readable gzip-compressed tar archive ({error}). "
                "Give a .tar.gz/.tgz of the data set, or the unpacked folder; "
                "if the file was downloaded, download it again."
            ) from error

    def size(self, relpath: str) -> int:
        return self._sizes[relpath]

    def read_files(self, relpaths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        wanted = set(relpaths)
        if not wanted:
            return
        with self._members(self.location) as (archive, members):
            for name, member in members:
                if name in wanted and member.isfile():
                    wanted.discard(name)
                    yield name, archive.extractfile(member).read()
                    if not wanted:
                        return
        raise ArchiveError(
            f"{self.location} changed while it was read: {sorted(wanted)[:3]} are gone. "
            "Load it again once nothing writes to it."
        )

    def describe(self, relpath: str) -> str:
        return f"{relpath} in {self.location}"


def _safe_name(name: str) -> str | None:
    """A member name as a clean relative path, or None for names we do not read."""
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if not parts or name.startswith("/") or ".." in parts:
        return None
    return "/".join(parts)


def _walk(root: Path):
    """``os.walk(root)`` that follows symbolic links to folders, each real folder once.

    Split or class folders linked in from elsewhere (``train -> /data/cifar/train``)
    are common, so links are followed; a folder whose real path was seen already (a
    link cycle, or two links to one folder) is not entered again, so the walk ends.
    """
    seen = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        yield dirpath, dirnames, filenames


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
        for dirpath, dirnames, filenames in _walk(path):
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
