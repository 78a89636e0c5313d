"""The book's structure: chapters are listed, stripped, and installable in Colab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))


def _config():
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []))
            for part in entry.get("chapters", []):
                walk([part])

    walk(toc.get("chapters", []))
    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return files


def colab_install_source(repository_url: str) -> str:
    """The first cell every chapter must start with."""
    return (
        "# In Colab, install the book's package; elsewhere this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install -q "vt-edu @ git+{repository_url}@main"'
    )


def test_there_are_chapters():
    assert NOTEBOOKS, "book/ holds no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [
        i
        for i, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them (the book executes chapters)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_installs_the_package_in_colab(path):
    nb = json.loads(path.read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    expected = colab_install_source(_config()["repository"]["url"])
    assert "".join(first["source"]).strip() == expected


def test_every_chapter_is_in_the_table_of_contents():
    listed = {str(Path(f).with_suffix("")) for f in _toc_files()}
    for path in NOTEBOOKS:
        assert str(path.relative_to(ROOT).with_suffix("")) in listed, f"{path.name} is not in _toc.yml"
    for entry in listed:
        assert any((ROOT / (entry + ext)).exists() for ext in (".ipynb", ".md")), f"_toc.yml lists missing {entry}"


def test_colab_launch_buttons_point_at_the_repository():
    config = _config()
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["repository"]["url"].startswith("https://github.com/")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_imports_vt_edu_before_keras(path):
    """Importing vt_edu first keeps TensorFlow's C++ start-up lines out of the outputs
    wherever a chapter runs (Colab included, where the book build's kernel settings do not apply)."""
    import re

    nb = json.loads(path.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    first = re.search(r"^\s*(?:import|from)\s+(vt_edu|keras|tensorflow)\b", code, flags=re.MULTILINE)
    assert first is None or first.group(1) == "vt_edu", f"{path.name} imports {first.group(1)} before vt_edu"
