"""Where data come from: the paths to try, what each one holds, the Keras download.

Resolution order (see :func:`vt_edu.data.load_cifar`): an explicit ``source``; else
the entries of ``VT_EDU_DATA`` (one path, or several joined with ``os.pathsep``);
else the official archive, downloaded once by Keras into its own cache
(``~/.keras/datasets``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras

from vt_edu.config import DATA_ENV
from vt_edu.data import image_folder
from vt_edu.data.cifar_pickle import OFFICIAL_DIRS
from vt_edu.data.errors import DownloadError, LayoutError, SourceNotFoundError
from vt_edu.data.names import DISPLAY_NAMES
from vt_edu.data.trees import FileTree


# The archives keras.datasets downloads, with the sha256 Keras checks them against.
# We fetch them through keras.utils.get_file but read them ourselves: that gives the
# class names from the files' meta data and channels-last arrays whatever
# keras.config.image_data_format() says.
KERAS_ARCHIVES = {
    "cifar10": (
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    ),
    "cifar100": (
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    ),
}

FORMATS_HELP = (
    "an image-folder tree train/<class>/*.png|jpg + test/<class>/*.png|jpg (class folders "
    "named as the official classes), or the official cifar-10-batches-py/ or "
    "cifar-100-python/ folder; either as a folder or a .tar.gz of one"
)


@dataclass(frozen=True)
class Layout:
    """One data set found in a source.

    Attributes:
        kind: ``"image_folder"`` or ``"official"``.
        root: relative path of the folder holding ``train/``+``test/``, or of the
            official ``cifar-10-batches-py``/``cifar-100-python`` folder.
    """

    kind: str
    root: str


def candidates(source) -> tuple[list[Path], str]:
    """The paths to try, in order, and what they came from (for messages).

    Args:
        source: the ``source`` argument of ``load_cifar``, or None.

    Returns:
        ``(paths, origin)``; ``paths`` is empty when neither ``source`` nor
        ``VT_EDU_DATA`` is set.
    """
    if source is not None:
        return [Path(source).expanduser()], "the source argument"
    value = os.environ.get(DATA_ENV, "")
    paths = [Path(p.strip()).expanduser() for p in value.split(os.pathsep) if p.strip()]
    return paths, DATA_ENV


def check_exists(path: Path, origin: str) -> None:
    """Raise :class:`SourceNotFoundError` if ``path`` does not exist."""
    if not path.exists():
        raise SourceNotFoundError(
            f"{path} (from {origin}) does not exist. Point {origin} at an existing folder "
            f"or archive holding {FORMATS_HELP}."
        )


def _layouts_at(tree: FileTree, prefix: str) -> dict[str, Layout]:
    found: dict[str, Layout] = {}
    for name, dirname in OFFICIAL_DIRS.items():
        root = "/".join(p for p in (prefix, dirname) if p)
        if root in tree.dirs or (not prefix and tree.root_name == dirname):
            found[name] = Layout("official", root if root in tree.dirs else "")
    subdirs, _ = tree.listdir(prefix)
    if "train" in subdirs or "test" in subdirs:
        found.setdefault(image_folder.dataset_of(tree, prefix), Layout("image_folder", prefix))
    return found


def find_layouts(tree: FileTree) -> dict[str, Layout]:
    """The data sets a source holds, by name (``"cifar10"``, ``"cifar100"``).

    Layouts are looked for at the top of the tree and, only if there is none there,
    inside each top-level folder (archives often wrap their content in one). Looking
    deeper when the top already holds a layout would misread ``test/train/``, the
    test folder of CIFAR-100's class "train", as a split. A folder named like the
    official one (``cifar-10-batches-py``) is recognised when given itself.

    Raises:
        LayoutError: if no layout is found, or an image-folder tree is malformed
            (see :func:`vt_edu.data.image_folder.dataset_of`).
    """
    found = _layouts_at(tree, "")
    top_dirs, top_files = tree.listdir("")
    if not found:
        for top in top_dirs:
            for name, layout in _layouts_at(tree, top).items():
                found.setdefault(name, layout)
    if not found:
        listing = ", ".join([f"{d}/" for d in top_dirs] + top_files[:10]) or "nothing"
        raise LayoutError(
            f"{tree.location} holds no recognised data set layout (at its top: {listing}). "
            f"Expected {FORMATS_HELP}.{tree.links_note()}"
        )
    return found


def download(name: str, searched: list[Path]) -> tuple[Path, str]:
    """Fetch the official archive of ``name`` through Keras' download cache.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        searched: the ``VT_EDU_DATA`` entries tried before, for the error message.

    Returns:
        ``(archive path, sha256)``; the hash was checked by Keras.

    Raises:
        DownloadError: if the download fails (typically: no network).
    """
    url, sha256 = KERAS_ARCHIVES[name]
    try:
        path = keras.utils.get_file(fname=url.rsplit("/", 1)[1], origin=url, file_hash=sha256)
    # get_file raises a bare Exception for network failures and ValueError for a bad
    # hash; either way the data are not there, which is what the message explains.
    except Exception as error:
        tried = (
            f"None of the {DATA_ENV} entries ({', '.join(map(str, searched))}) holds {DISPLAY_NAMES[name]}. "
            if searched
            else f"{DATA_ENV} is not set. "
        )
        raise DownloadError(
            f"Could not download {DISPLAY_NAMES[name]} from {url} into Keras' cache "
            f"({type(error).__name__}: {error}). {tried}"
            f"For local or offline data, set {DATA_ENV} to a folder or .tar.gz holding {FORMATS_HELP}, "
            f"for example in a shell:\n"
            f"    export {DATA_ENV}=/data/cifar10-jpeg.tar.gz\n"
            f"or in a notebook, before loading:\n"
            f'    os.environ["{DATA_ENV}"] = "/data/cifar10-jpeg.tar.gz"\n'
            f"Several paths may be joined with {os.pathsep!r}; the first that holds the data set is used."
        ) from error
    return Path(path), sha256
