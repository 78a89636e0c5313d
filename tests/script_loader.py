"""Load a script of the repository (benchmarks/, tools/, .ci/, book/) as a module, so a test
can call its functions: scripts are not in a package, so they cannot be imported by name."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative_path: str, name: str | None = None):
    """Execute ``ROOT / relative_path`` as a fresh module and return it.

    Args:
        relative_path: the script's path from the repository root, e.g. ``"tools/set_repository.py"``.
        name: the module's name (default: the file's stem).
    """
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
