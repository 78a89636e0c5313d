"""Every link to the repository comes from _config.yml's ``repository`` (url, branch).

The install cells of the chapters name it literally (``tools/set_repository.py`` writes
them); Jupyter Book makes the Colab launch buttons from it. A fork changes the one
setting, runs the tool, and these tests check that nothing else still names the old one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from script_loader import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
# CI sets VT_EDU_BUILT_HTML after building the book: then the built pages must be there.
BUILT_HTML_ENV = os.environ.get("VT_EDU_BUILT_HTML")
BUILT_HTML = Path(BUILT_HTML_ENV or ROOT / "_build" / "html")

set_repository = load_script("tools/set_repository.py")


def _config():
    return yaml.safe_load((ROOT / "_config.yml").read_text())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_install_cell_names_the_configured_repository_and_branch(path):
    url, branch = set_repository.repository()
    assert (url, branch) == (_config()["repository"]["url"], _config()["repository"]["branch"])
    cell = set_repository.first_code_cell(json.loads(path.read_text()))
    assert "".join(cell["source"]).strip() == set_repository.install_cell_source(url, branch), (
        "run `python tools/set_repository.py`"
    )


def test_no_other_file_names_a_repository_url():
    """Outside _config.yml only the install cells (checked above) may spell the URL out."""
    url = _config()["repository"]["url"]
    pattern = re.compile(r"git\+https://|colab\.research\.google\.com/github/|" + re.escape(url))
    allowed = {ROOT / "_config.yml"}
    offenders = []
    for folder in ("book", "vt_edu", "README.md", "_toc.yml"):
        paths = [ROOT / folder] if (ROOT / folder).is_file() else (ROOT / folder).rglob("*")
        for path in paths:
            if path.suffix not in (".md", ".py", ".yml", ".ipynb") or path in allowed:
                continue
            text = path.read_text()
            if path.suffix == ".ipynb":  # the install cell is checked above
                notebook = json.loads(text)
                cells = notebook["cells"]
                first = set_repository.first_code_cell(notebook)
                text = "\n".join("".join(c["source"]) for c in cells if c is not first)
            if pattern.search(text):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders


def test_a_fork_sets_its_repository_in_one_place(tmp_path, monkeypatch):
    book = tmp_path / "book"
    book.mkdir()
    for path in NOTEBOOKS[:2]:
        shutil.copy(path, book)
    config = _config()
    config["repository"] = {"url": "https://github.com/someone/vt-edu-fork", "branch": "teaching"}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    monkeypatch.setattr(set_repository, "BOOK", book)
    monkeypatch.setattr(set_repository, "CONFIG", tmp_path / "_config.yml")
    assert set_repository.main(["--check"]) == 1
    assert set_repository.main([]) == 0
    assert set_repository.main(["--check"]) == 0
    for path in sorted(book.glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        source = "".join(set_repository.first_code_cell(notebook)["source"])
        assert '%pip install -q "vt-edu @ git+https://github.com/someone/vt-edu-fork@teaching"' in source
        original = json.loads((ROOT / "book" / path.name).read_text())
        assert notebook["cells"][1:] == original["cells"][1:]  # nothing else changed


@pytest.mark.skipif(BUILT_HTML_ENV is None and not BUILT_HTML.is_dir(),
                    reason="the book is not built (make book); CI checks after building")
def test_colab_launch_buttons_of_the_built_book_open_the_configured_repository():
    config = _config()
    url, branch = set_repository.repository()
    colab = config["launch_buttons"]["colab_url"]
    for path in NOTEBOOKS:
        page = (BUILT_HTML / "book" / path.with_suffix(".html").name).read_text()
        links = set(re.findall(r'href="(' + re.escape(colab) + r'[^"]*)"', page))
        assert links == {set_repository.colab_link(colab, url, branch, f"book/{path.name}")}, path.name


def test_install_cells_stay_out_of_the_html_book(tmp_path, monkeypatch):
    """The install cell is for Colab: tagged remove-cell, so a page starts with its title (issue 19)."""
    for path in NOTEBOOKS:
        cell = set_repository.first_code_cell(json.loads(path.read_text()))
        assert "remove-cell" in cell["metadata"].get("tags", []), f"{path.name}: run `python tools/set_repository.py`"
    book = tmp_path / "book"
    book.mkdir()
    notebook = json.loads(NOTEBOOKS[0].read_text())
    set_repository.first_code_cell(notebook)["metadata"] = {}  # an install cell without its tag
    (book / NOTEBOOKS[0].name).write_text(json.dumps(notebook))
    monkeypatch.setattr(set_repository, "BOOK", book)
    assert set_repository.main(["--check"]) == 1
    assert set_repository.main([]) == 0
    fixed = json.loads((book / NOTEBOOKS[0].name).read_text())
    assert set_repository.first_code_cell(fixed)["metadata"]["tags"] == ["remove-cell"]
