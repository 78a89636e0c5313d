"""The browser check of the built book catches what a reader would notice."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import check_book_html  # noqa: E402

pytestmark = [
    pytest.mark.skipif(check_book_html.find_chromium() is None, reason="needs Debian's chromium (.ci/run installs it)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="needs playwright (requirements.txt)"),
]

PAGE = """<!doctype html><html><head><title>{title}</title></head>
<body><main><article>{body}</article></main></body></html>"""


def png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def site(tmp_path):
    html = tmp_path / "_build" / "html"
    (html / "book").mkdir(parents=True)
    (html / "index.html").write_text(PAGE.format(title="index", body="<a href='book/good.html'>start</a>"))
    (html / "book" / "fig.png").write_bytes(png_bytes())
    (html / "book" / "good.html").write_text(PAGE.format(
        title="good",
        body="<h2 id='part'>Part</h2><div class='cell_output'><img src='fig.png'></div>"
             "<a href='bad.html'>next</a> <a href='#part'>here</a> <a href='https://example.org/x'>away</a>"))
    (html / "book" / "bad.html").write_text(PAGE.format(
        title="bad",
        body="<script type='application/vnd.jupyter.widget-view+json'>{}</script><span class='math'>\\(x^2\\)</span><img src='missing.png'><a href='nowhere.html'>lost</a><a href='good.html#nope'>anchor</a>"))
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "bad.ipynb").write_text("{}")  # a notebook chapter must show a figure
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: book/good\nchapters:\n  - file: book/bad\n")
    return html, toc, tmp_path / "shots"


def test_good_page_passes_and_bad_page_is_reported(site, monkeypatch):
    html, toc, shots = site
    monkeypatch.setattr(check_book_html, "MATHJAX_TIMEOUT_MS", 1000)  # this site loads no MathJax at all
    monkeypatch.setattr(check_book_html, "WIDGET_TIMEOUT_MS", 1000)  # nor a widget manager
    reports = {r.name: r for r in check_book_html.check_book(html, toc, shots, check_book_html.find_chromium())}

    good = reports["book/good"]
    assert good.ok, good.problems
    assert good.images == 1 and good.links == 2

    bad = reports["book/bad"]
    problems = "\n".join(bad.problems)
    assert "image did not load or is empty: missing.png" in problems
    assert "broken link 'nowhere.html'" in problems
    assert "broken anchor 'good.html#nope'" in problems
    assert "chapter shows no figure" in problems
    assert "local asset: 404 /book/missing.png" in problems
    assert "1 saved widget views but none rendered" in problems
    assert "MathJax did not start" in problems and "page has maths but MathJax rendered none" in problems

    assert (shots / "book__good.png").stat().st_size > 0


def test_main_refuses_a_folder_without_a_built_book(tmp_path, capsys):
    assert check_book_html.main(["--html", str(tmp_path)]) == 2
    assert "run `make book` first" in capsys.readouterr().err
