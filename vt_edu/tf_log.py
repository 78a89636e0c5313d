"""Keep TensorFlow's C++ start-up lines out of terminals and notebook outputs.

While its native library loads, TensorFlow (2.21 here) writes lines such as::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796229047.539482    8195 port.cc:153] oneDNN custom operations are on. ...

straight to file descriptor 2, before its logging is initialised, so that
``TF_CPP_MIN_LOG_LEVEL`` does not silence them. In a notebook, ipykernel forwards
whatever reaches fd 2 into the running cell's output, and the lines would land in
the rendered pages.

:func:`install` makes the first ``import tensorflow`` (whoever asks for it: Keras,
``tf.data``, a chapter) run with fd 2 sent to a temporary file. Afterwards everything
is written back to fd 2 except the absl lines that ``TF_CPP_MIN_LOG_LEVEL`` asks to
silence (severity letters I, W, E, F against levels 0 to 3) and absl's notice about
logging before initialisation.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

#: absl's prefix: severity letter, MMDD, time, thread id, ``file:line]``.
ABSL_LINE = re.compile(r"^([IWEF])\d{4} \S+\s+\d+ \S+:\d+\] ")
PREINIT_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
SEVERITIES = "IWEF"  # index = the TF_CPP_MIN_LOG_LEVEL that still shows the letter


def min_log_level() -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as an int (0, TensorFlow's default, when unset or not a number)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def filter_startup_lines(text: str, level: int) -> str:
    """``text`` without the absl lines below ``level`` (and the pre-initialisation notice when ``level`` > 0)."""
    kept = []
    for line in text.splitlines(keepends=True):
        if level > 0 and line.strip() == PREINIT_NOTICE:
            continue
        match = ABSL_LINE.match(line)
        if match and SEVERITIES.index(match.group(1)) < level:
            continue
        kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def filtered_stderr_fd():
    """Send fd 2 to a temporary file for the block, then write back what the filter keeps."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no fd 2 (e.g. a GUI process): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()  # Python's own writes during the block, in order
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = filter_startup_lines(capture.read().decode(errors="replace"), min_log_level())
            if kept:
                os.write(2, kept.encode())


class _FilteredLoader(importlib.abc.Loader):
    """Runs the real loader of ``tensorflow`` inside :func:`filtered_stderr_fd`."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # TensorFlow sees its own loader
        with filtered_stderr_fd():
            self.loader.exec_module(module)


class _FirstTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, through the regular path finder, with a filtering loader."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        uninstall()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader)
        return spec


def install() -> None:
    """Filter the start-up lines of the first ``import tensorflow`` (no-op once it is imported)."""
    if "tensorflow" in sys.modules or any(isinstance(f, _FirstTensorFlowImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _FirstTensorFlowImport())


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _FirstTensorFlowImport)]
