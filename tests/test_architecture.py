"""The README's architecture table holds: imports inside vt_edu go only downwards through its
rows (faces, engine, models, layers, data, base), and no module imports another's private name."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vt_edu"
# Top-level module or subpackage of vt_edu -> its row (0 = top). Kept equal to README.md's table.
# A subpackage is one unit (widgets/ holds panel, schedule_panel, reports, experiment_panel).
ROWS = {
    **dict.fromkeys(["cli", "__main__", "widgets", "explorer", "scene_explorer", "recorded", "pretrained", "plots"], 0),
    "training": 1,
    **dict.fromkeys(["models", "flops"], 2),
    **dict.fromkeys(["layers", "reference", "analysis"], 3),
    "data": 4,
    **dict.fromkeys(["names", "config", "tf_log", "torch_fast_paths", "__init__"], 5),
}


def _unit(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(path: Path):
    """(imported vt_edu unit, imported names) for each `from vt_edu... import ...` in ``path``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vt_edu":
            parts = node.module.split(".")
            if len(parts) > 1:
                yield parts[1], node.module, [alias.name for alias in node.names]
            else:  # `from vt_edu import x`: x is the unit
                for alias in node.names:
                    yield alias.name, f"vt_edu.{alias.name}", []


def test_every_module_has_a_row():
    units = {_unit(p) for p in PACKAGE.rglob("*.py")}
    assert units <= set(ROWS), f"modules without a row in the README's table: {sorted(units - set(ROWS))}"


def test_imports_go_only_downwards_and_never_take_private_names():
    upward, private = [], []
    for path in PACKAGE.rglob("*.py"):
        unit = _unit(path)
        for target, module, names in _imports(path):
            if target in ROWS and ROWS[target] < ROWS[unit]:
                upward.append(f"{path.relative_to(PACKAGE)} imports {module}")
            if target != unit:
                private += [f"{path.relative_to(PACKAGE)}: {module}.{n}" for n in names if n.startswith("_")]
    assert not upward, "imports against the README's rows:\n" + "\n".join(upward)
    assert not private, "private names imported across modules:\n" + "\n".join(private)
