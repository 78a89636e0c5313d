"""How the book's chapters are executed, in both builds: ``jupyter-book build`` (this
module is a local Sphinx extension, named in _config.yml) and ``pytest --nbmake book``
(book/conftest.py applies the same settings).

Both settings reach the kernels through the build process, which starts them:

* **A per-cell timeout sized by the profile** (:data:`CELL_TIMEOUT`). In the quick
  profile the longest cell (chapter 10's four training runs) takes about 4 minutes on
  a busy 2-core CPU; full-profile training cells take many minutes on a GPU. A cell
  that does not finish in time (a kernel that stopped answering included) fails its
  chapter with nbclient's ``CellTimeoutError`` naming the cell, and the build fails:
  ``execute.raise_on_error`` in _config.yml, a failed test with nbmake.
* **``PYTHONSTARTUP`` = tools/kernel_startup.py**, which IPython kernels run before the
  first cell: it imports vt_edu, whose import filters TensorFlow's C++ start-up lines
  (:mod:`vt_edu.tf_log`), so that they reach no page even in a chapter that imports
  Keras before vt_edu. A ``PYTHONSTARTUP`` of the user's own is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Seconds one cell may run, per profile (``vt_edu.config.profile()``).
CELL_TIMEOUT = {"quick": 600, "full": 1800}
KERNEL_STARTUP = Path(__file__).resolve().with_name("kernel_startup.py")


def cell_timeout() -> int:
    """The per-cell timeout of the active profile."""
    from vt_edu.config import profile

    return CELL_TIMEOUT[profile()]


def prepare_kernel_environment() -> None:
    """Make every kernel this process starts run :data:`KERNEL_STARTUP` first."""
    os.environ.setdefault("PYTHONSTARTUP", str(KERNEL_STARTUP))


def apply_cell_timeout(app, config) -> None:
    """Sphinx ``config-inited`` handler: the profile's per-cell timeout for myst-nb."""
    config.nb_execution_timeout = cell_timeout()


def setup(app):
    """Sphinx entry point (jupyter-book's ``sphinx.local_extensions``)."""
    prepare_kernel_environment()
    app.connect("config-inited", apply_cell_timeout)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
