"""``pytest --nbmake book``: the chapters run with the kernel settings of the HTML build
(tools/book_kernels.py): the profile's per-cell timeout, unless --nbmake-timeout is
given, and kernels that import vt_edu first."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from book_kernels import cell_timeout, prepare_kernel_environment  # noqa: E402


def pytest_configure(config):
    prepare_kernel_environment()
    if not any(arg.startswith("--nbmake-timeout") for arg in config.invocation_params.args):
        config.option.nbmake_timeout = cell_timeout()
