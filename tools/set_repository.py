"""Write the repository of ``_config.yml`` into every chapter's install cell.

The cell is also tagged ``remove-cell``: it stays in the notebook (Colab runs it) but
not in the HTML book, whose pages start with their title.

The repository's URL and branch are set in one place, ``_config.yml``
(``repository.url``, ``repository.branch``). Jupyter Book makes the launch buttons
from it; the first code cell of each chapter has to name it literally (Colab runs the
notebook alone), so after changing it (in a fork, say) run::

    python tools/set_repository.py           # rewrite the install cells
    python tools/set_repository.py --check   # exit 1 if a cell differs (what the tests check)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "_config.yml"
BOOK = ROOT / "book"
COLAB_MARKER = 'if "google.colab" in sys.modules:'
# The install cell is for Colab: the HTML book leaves it out, so a page starts with its title.
INSTALL_CELL_TAGS = ("remove-cell",)


def repository(config_path=None) -> tuple:
    """``(url, branch)`` of ``_config.yml``'s ``repository`` (branch default ``main``)."""
    settings = yaml.safe_load(Path(config_path or CONFIG).read_text())["repository"]
    return settings["url"].rstrip("/"), settings.get("branch", "main")


def install_cell_source(url: str, branch: str) -> str:
    """The first code cell of every chapter: installs the package in Colab only."""
    return (
        "# In Colab, install the book's package; elsewhere this cell does nothing.\n"
        "import sys\n"
        "\n"
        f"{COLAB_MARKER}\n"
        f'    %pip install -q "vt-edu @ git+{url}@{branch}"'
    )


def colab_link(colab_url: str, url: str, branch: str, notebook: str) -> str:
    """The Colab launch link Jupyter Book makes for ``notebook`` (a path in the repository)."""
    owner_and_name = url.removeprefix("https://github.com/")
    return f"{colab_url.rstrip('/')}/github/{owner_and_name}/blob/{branch}/{notebook}"


def first_code_cell(notebook: dict) -> dict:
    return next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")


def is_up_to_date(cell: dict, expected: str) -> bool:
    """The cell holds ``expected`` and carries every tag of ``INSTALL_CELL_TAGS``."""
    tags = cell.get("metadata", {}).get("tags", [])
    return "".join(cell["source"]).strip() == expected and all(tag in tags for tag in INSTALL_CELL_TAGS)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report chapters whose install cell differs")
    args = parser.parse_args(argv)
    expected = install_cell_source(*repository())
    differing = []
    for path in sorted(BOOK.glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        cell = first_code_cell(notebook)
        if is_up_to_date(cell, expected):
            continue
        differing.append(path.name)
        if not args.check:
            if COLAB_MARKER not in "".join(cell["source"]):
                print(f"{path.name}: the first code cell is not an install cell; add one first.", file=sys.stderr)
                return 2
            cell["source"] = expected.splitlines(keepends=True)
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            tags.extend(tag for tag in INSTALL_CELL_TAGS if tag not in tags)
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    verb = "differ from" if args.check else "rewritten for"
    print(f"{len(differing)} install cells {verb} {repository()[0]}@{repository()[1]}: {', '.join(differing) or '-'}")
    return 1 if args.check and differing else 0


if __name__ == "__main__":
    sys.exit(main())
