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

# The detectors of text problems are plain functions; only the tests that open pages need a browser.
needs_browser = [
    pytest.mark.skipif(check_book_html.find_chromium() is None, reason="needs Debian's chromium (.ci/run installs it)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="needs playwright (requirements.txt)"),
]


def browser_test(function):
    for mark in needs_browser:
        function = mark(function)
    return function

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


@browser_test
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
    assert (shots / "book__good-phone.png").stat().st_size > 0


def test_main_refuses_a_folder_without_a_built_book(tmp_path, capsys):
    assert check_book_html.main(["--html", str(tmp_path)]) == 2
    assert "run `make book` first" in capsys.readouterr().err


# What today's chapters showed (issue 19), as the detectors see it.
def test_raw_markdown_table_text_is_caught_and_a_rendered_one_is_not():
    raw = "| model | recipe, budget | epochs |\n|---|---|---:|\n| CNN | seed | 10 |"
    assert check_book_html.raw_table_problems([raw])
    assert check_book_html.raw_table_problems(["|:--|--:|"])
    assert check_book_html.raw_table_problems(["| model | top-1 |\n|—|—:|"])  # after smart quotes
    assert not check_book_html.raw_table_problems(["model recipe epochs", "a | b, not a table", "x --- y"])


def test_tensorflow_log_lines_in_outputs_are_caught():
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1733150000.123456   12345 cuda_executor.cc:1015] successful NUMA node read",
        "E0000 00:00:1733150000.1 1 cuda_dnn.cc:8310] Unable to register cuDNN factory",
        "2026-12-02 17:00:00: I tensorflow/core/util/port.cc:153] oneDNN custom operations are on.",
    ]
    for line in lines:
        assert check_book_html.log_line_problems(["loaded in 1.2 s\n" + line]), line
    assert not check_book_html.log_line_problems(["epoch 1: loss 2.30, accuracy 0.10\nI0 is a name"])


def test_machine_paths_in_outputs_are_caught():
    for path in ["/work/shared/datasets/cifar10-jpeg.tar.gz", "/home/me/x", "/root/.keras", "/tmp/vt_edu_ch02_x/cnn",
                 "/usr/lib/python3/site-packages/keras/src/x.py"]:
        assert check_book_html.machine_path_problems([f"source: {path}"]), path
    assert not check_book_html.machine_path_problems(["source: cifar10-jpeg.tar.gz (VT_EDU_DATA)", "a/b 3/4"])


def test_unrendered_dollar_maths_is_caught_but_prices_are_not():
    chapter_8 = "ResNet's stage 4 costs ; a VT module costs $O(HW L C + L^2 C_T + L C_T^2"
    assert check_book_html.unrendered_maths_problems([chapter_8])
    assert check_book_html.unrendered_maths_problems(["with $\\alpha = 0.1"])
    assert not check_book_html.unrendered_maths_problems(["it costs $5 a month", "a US$ price", "keras.ops"])


def test_prose_typeset_as_maths_is_caught():
    assert check_book_html.prose_as_maths_problems(["HW C^2). Tokens save computation when L \\ll HW"])
    fine = ["T = A^\\top X", "\\mathrm{softmax}_L\\big((T_{in} K)(T_{in} Q)^\\top\\big)",
            "\\text{for every token and every pixel}", "O(HW L C + L^2 C_T)"]
    assert not check_book_html.prose_as_maths_problems(fine)


def test_an_answer_written_beside_code_that_never_ran_is_caught():
    chapter_9 = "x, y = panel.plotted()\nprint(panel.learning_rate.value, x[np.argmax(y < 0.01)])   # 0.32 281.0\n"
    assert check_book_html.never_run_answer_problems([chapter_9])
    assert check_book_html.never_run_answer_problems(["print(rates / rates[1])   # [0, 1, 0.5, 0]"])
    assert check_book_html.never_run_answer_problems(["q = f(3)\n# 0.500\n"])
    assert not check_book_html.never_run_answer_problems(["for recipe in ('seed', 'fast'):\n    panel.train()  # 3 epochs each"])


def test_clipped_blocks_fail_and_scrolling_ones_are_counted():
    def block(wide, scrollable):
        return {"kind": "equation", "text": "T = A", "width": 900, "column": 700, "wide": wide, "scrollable": scrollable}

    assert check_book_html.layout_problems([block(False, False)] * 5, 0, "desktop") == []
    assert "cut off" in check_book_html.layout_problems([block(True, False)], 9, "desktop")[0]
    scrolling = [block(True, True)] * 3
    assert check_book_html.layout_problems(scrolling, 3, "desktop") == []
    assert "3 blocks scroll sideways (at most 2)" in check_book_html.layout_problems(scrolling, 2, "desktop")[0]
    assert check_book_html.layout_problems(scrolling, None, "phone") == []
    printed = dict(block(True, True), kind="output")  # printed text must wrap, even where it could scroll
    assert "runs past the column" in check_book_html.layout_problems([printed], 5, "desktop")[0]


READER_PAGE = """<!doctype html><html><head><title>reader</title><style>
  article {{ width: 600px; }}  .cell_output {{ overflow: hidden; }}  .scroll {{ overflow-x: auto; }}
  .hidden {{ display: none; }}
</style></head><body><main><article>{body}</article></main></body></html>"""


@browser_test
def test_the_reader_probe_finds_what_a_reader_sees(tmp_path):
    from playwright.sync_api import sync_playwright

    long_line = "radii trained " + "x" * 300
    body = (
        "<div class='cell'><pre>%pip install vt-edu</pre></div><h1>Title</h1>"
        "<p>| model | top-1 |\n|---|---:|</p>"
        "<p>a VT module costs $O(HW L C</p>"
        "<div class='cell'><div class='cell_output'><pre>" + long_line + "</pre></div></div>"
        "<div class='cell'><div class='cell_output'><pre>source: /work/shared/x.tar.gz\n"
        "I0000 00:00:1.0 1 cuda_executor.cc:1] numa</pre></div></div>"
        "<div class='cell'><div class='cell_output'><pre class='scroll'>" + "y" * 300 + "</pre></div></div>"
        "<div class='admonition'><p class='admonition-title'>Solution</p><p>the answer is 4</p></div>"
        "<div class='admonition'><p class='admonition-title'>Solution</p><p class='hidden'>hidden answer 5</p></div>"
        "<section id='exercises'><h2>Exercises</h2><div class='cell'><div class='cell_output'><pre>42</pre></div></div>"
        "<div class='cell'><details><summary>Show code cell output</summary>"
        "<div class='cell_output'><pre>folded 43</pre></div></details></div>"
        "<div class='highlight-python'><pre>print(f(2))   # 0.32 281.0</pre></div></section>"
    )
    (tmp_path / "index.html").write_text(READER_PAGE.format(body=body))
    server, base_url = check_book_html.serve(tmp_path)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=check_book_html.find_chromium(),
                                                 args=check_book_html.CHROMIUM_ARGS)
            page = browser.new_page(viewport=check_book_html.DESKTOP)
            page.goto(base_url + "index.html")
            probe = page.evaluate(check_book_html.READER_PROBE)
            browser.close()
    finally:
        server.shutdown()
    problems = "\n".join(check_book_html.reader_problems(probe, "desktop", 0))
    assert "raw Markdown table text" in problems
    assert "unrendered $ maths in the text: 'a VT module costs $O(HW L C'" in problems
    assert "output 'radii trained xxx" in problems and "cut off" in problems
    assert "machine path in an output: 'source: /work/shared/x.tar.gz'" in problems
    assert "TensorFlow/absl log line in an output: 'I0000" in problems
    assert "output 'yyyyyy" in problems and "runs past the column (it only scrolls sideways)" in problems
    assert "exercise solution visible without a click: 'Solutionthe answer is 4'" in problems
    assert "hidden answer 5" not in problems
    assert "folded 43" not in problems  # an output folded in a closed <details> (hide-output) is hidden
    assert "exercise solution visible without a click: '42'" in problems
    assert "the answer of code that never ran" in problems
    assert "a code cell comes before the page's title" in problems
