"""Open every chapter of the built book in headless Chromium and check it as a reader would.

For each page listed in ``_toc.yml`` it checks that:

* the page loads (HTTP 200 from a local server over ``_build/html``);
* every image in the article has loaded and is non-empty (``naturalWidth > 0``), and
  chapters made from notebooks show at least one figure;
* maths renders: where the page holds maths, MathJax has produced ``mjx-container`` output;
* saved widget views render (the vendored widget manager ran);
* no local link is broken (the target file exists and, for ``#anchors``, the id exists) and
  no local asset (script, stylesheet, image, font) failed to load.

It then reads the page as a reader does, and fails it on:

* a code cell above the page's title (the Colab install cell belongs to the notebook only);
* raw Markdown table text (a ``|---|`` row shown as text instead of a table);
* TensorFlow/absl log lines in an output (``absl::InitializeLog``, ``oneDNN custom
  operations``, ``I0000``/``W0000`` glog prefixes, ``cuda_*.cc`` sources);
* a machine path in an output (``/work/``, ``/home/``, ``/root/``, ``/tmp/``, ``site-packages``);
* maths left as text (an unrendered ``$...``) or prose typeset as maths (words run
  together in italics);
* an exercise solution visible without a click (a "Solution" box that is open, a visible
  output under "Exercises") or a solution that shows the answer of code that never ran
  (``print(...)  # 0.32``);
* an output block, equation, table, widget or image wider than the content column and
  clipped, or printed output that fits only by scrolling sideways (it must wrap); at
  desktop width (1280 px) more than ``MAX_SCROLLABLE_BLOCKS`` equations, tables or widgets
  that scroll sideways also fail;
* at phone width (400 px): a page wider than the screen, or a clipped block.

Requests to other hosts are blocked and listed, not fatal: the book must read offline.
A full-page screenshot of each page is saved at both widths for people to look at
(``<page>.png`` and ``<page>-phone.png``).

Usage::

    python tools/check_book_html.py [--html _build/html] [--screenshots _build/screenshots]

Exit status 0 when every page passes, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    # This machine's network is closed: without these Chromium retries Google's hosts.
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
MATHJAX_TIMEOUT_MS = 20_000
WIDGET_TIMEOUT_MS = 20_000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 400, "height": 860}
# A wide equation, table or widget may scroll sideways inside the column instead of being
# cut off; a page full of them still reads badly, so at desktop width only this many are allowed.
MAX_SCROLLABLE_BLOCKS = 2
# Layout tolerance in CSS pixels (sub-pixel rounding, borders).
SLACK_PX = 2

# A table's separator row (|---|:--:|) shown as text: the Markdown was not rendered as a table.
# Sphinx's smart quotes turn the "---" of such text into an em dash.
RAW_TABLE_ROW = re.compile(r"^\s*\|(?:\s*:?[-–—]+:?\s*\|)+", re.MULTILINE)
LOG_LINE = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|^\s*[IWEF]\d{4} \d\d:\d\d:\d\d|\bcuda_\w+\.cc\b|^\s*cuda_",
    re.MULTILINE,
)
MACHINE_PATH = re.compile(r"/work/|/home/|/root/|/tmp/|/Users/|site-packages")
# A dollar that opens maths but was left as text: "$O(HW", "$\\alpha", "$x^2".
UNRENDERED_MATHS = re.compile(r"(?<![\\$\w])\$(?=[A-Za-z\\{(^_])")
# TeX commands whose argument is text, then any other command: what remains of real maths
# is symbols and single letters, never three words in a row.
TEX_TEXT = re.compile(r"\\(?:text\w*|mathrm|operatorname|mbox|mathit|mathbf|mathsf|mathtt)\s*\{[^{}]*\}")
TEX_COMMAND = re.compile(r"\\[A-Za-z]+")
PROSE_WORDS = re.compile(r"[A-Za-z]{3,}(?:\s+[a-z]{3,}){2,}")
# An answer written as a comment beside code that was never run: print(x)  # 0.32
NEVER_RUN_ANSWER = re.compile(r"print\(.*#\s*(?:about|~|≈)?\s*[-\[(]?\d|^\s*#\s*[-\[(]?\d[\d.,\s\[\]()%e+-]*$", re.MULTILINE)


def clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def raw_table_problems(texts: list[str]) -> list[str]:
    return [f"raw Markdown table text (not rendered as a table): {clip(t)!r}" for t in texts if RAW_TABLE_ROW.search(t)]


def log_line_problems(outputs: list[str]) -> list[str]:
    problems = []
    for text in outputs:
        for line in text.splitlines():
            if LOG_LINE.search(line):
                problems.append(f"TensorFlow/absl log line in an output: {clip(line)!r}")
    return problems


def machine_path_problems(outputs: list[str]) -> list[str]:
    problems = []
    for text in outputs:
        for line in text.splitlines():
            if MACHINE_PATH.search(line):
                problems.append(f"machine path in an output: {clip(line)!r}")
    return problems


def unrendered_maths_problems(prose: list[str]) -> list[str]:
    return [f"unrendered $ maths in the text: {clip(t)!r}" for t in prose if UNRENDERED_MATHS.search(t)]


def prose_as_maths_problems(tex_sources: list[str]) -> list[str]:
    problems = []
    for tex in tex_sources:
        symbols = TEX_COMMAND.sub(" ", TEX_TEXT.sub(" ", tex))
        if PROSE_WORDS.search(symbols):
            problems.append(f"prose typeset as maths (mismatched $): {clip(tex)!r}")
    return problems


def never_run_answer_problems(static_code: list[str]) -> list[str]:
    return [f"a solution shows the answer of code that never ran: {clip(m.group(0))!r}"
            for code in static_code for m in [NEVER_RUN_ANSWER.search(code)] if m]


def layout_problems(blocks: list[dict], max_scrollable: int | None, width_name: str) -> list[str]:
    """Blocks measured by ``READER_PROBE``: clipped ones always fail, scrolling ones past ``max_scrollable``."""
    problems = []
    scrolling = []
    for block in blocks:
        if not block["wide"]:
            continue
        what = f"{block['kind']} {clip(block['text'], 50)!r} ({block['width']} px in a {block['column']} px column)"
        if block["kind"] == "output" and block["scrollable"]:
            # Printed text should wrap: a reader sees it cut at the column's edge, the scroll bar hidden.
            problems.append(f"{width_name}: {what} runs past the column (it only scrolls sideways)")
        elif block["scrollable"]:
            scrolling.append(what)
        else:
            problems.append(f"{width_name}: {what} is wider than the column and cut off")
    if max_scrollable is not None and len(scrolling) > max_scrollable:
        problems.append(f"{width_name}: {len(scrolling)} blocks scroll sideways (at most {max_scrollable}): "
                        + "; ".join(scrolling))
    return problems


def solution_problems(probe: dict) -> list[str]:
    problems = [f"exercise solution visible without a click: {clip(t)!r}" for t in probe["visible_solutions"]]
    problems += never_run_answer_problems(probe["static_code"])
    return problems


# Runs in the page; returns the text and measurements the detectors above read.
READER_PROBE = r"""() => {
  const column = document.querySelector('article.bd-article') || document.querySelector('main article')
      || document.querySelector('article') || document.querySelector('main') || document.body;
  const columnRect = column.getBoundingClientRect();
  const columnWidth = column.clientWidth;
  const shown = el => {
    if (!el.getClientRects().length) return false;
    for (let p = el; p; p = p.parentElement) {
      // Chromium still lays out a closed <details>' content (content-visibility), so ask it directly.
      if (p.tagName === 'DETAILS' && !p.open && p !== el && !el.closest('summary')) return false;
      const style = getComputedStyle(p);
      if (style.visibility === 'hidden' || style.display === 'none' || style.opacity === '0') return false;
    }
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const skipProse = 'script, style, pre, code, mjx-container, textarea, .cell_input, .MathJax, .math';
  const prose = [];
  const walker = document.createTreeWalker(column, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest(skipProse) || !node.textContent.trim()) continue;
    prose.push(node.textContent);
  }
  const outputs = Array.from(column.querySelectorAll('.cell_output')).map(o => o.textContent);
  const tex = [];
  try {
    for (const item of MathJax.startup.document.math) tex.push(item.math);
  } catch (e) { /* no MathJax on this page */ }

  const visibleSolutions = [];
  for (const title of column.querySelectorAll('.admonition-title, summary, .admonition > p:first-child, h1, h2, h3, h4, h5, h6, p > strong:first-child')) {
    if (!/^\s*solution\b/i.test(title.textContent)) continue;
    const box = title.closest('.admonition, details') || title.parentElement;
    const body = Array.from(box.children).filter(c => c !== title && !c.contains(title) && !c.classList.contains('toggle-button'));
    const bodyShown = title.tagName === 'STRONG' ? shown(box) : body.some(shown);
    if (bodyShown) visibleSolutions.push(box.textContent);
  }
  for (const section of column.querySelectorAll('section')) {
    const heading = section.querySelector(':scope > h1, :scope > h2, :scope > h3');
    if (!heading || !/^\s*exercises\b/i.test(heading.textContent)) continue;
    for (const out of section.querySelectorAll('.cell_output')) {
      if (shown(out) && (out.textContent.trim() || out.querySelector('img'))) visibleSolutions.push(out.textContent || '(a figure)');
    }
  }
  const staticCode = Array.from(column.querySelectorAll('div[class*="highlight-"]'))
      .filter(div => !div.closest('.cell')).map(div => div.textContent);

  const scrolls = el => {
    for (let p = el; p && p !== column.parentElement; p = p.parentElement) {
      const ox = getComputedStyle(p).overflowX;
      if ((ox === 'auto' || ox === 'scroll') && p.clientWidth <= columnWidth + 2) return true;
    }
    return false;
  };
  const blocks = [];
  const measure = (kind, selector) => {
    for (const el of column.querySelectorAll(selector)) {
      if (!shown(el)) continue;
      const r = el.getBoundingClientRect();
      const width = Math.max(el.scrollWidth, Math.round(r.width));
      const wide = width > columnWidth + 2 || r.right > columnRect.right + 2 || r.left < columnRect.left - 2;
      blocks.push({kind, text: el.textContent || el.getAttribute('src') || '', width, column: columnWidth,
                   wide, scrollable: wide && scrolls(el)});
    }
  };
  measure('output', '.cell_output pre, .cell_output .output');
  measure('equation', 'mjx-container[display="true"], div.math');
  measure('table', 'table');
  measure('widget', '.cell_output .jupyter-widgets');
  measure('image', 'img');
  const title = column.querySelector('h1'), firstCell = column.querySelector('.cell');
  const cellBeforeTitle = !!(title && firstCell && (firstCell.compareDocumentPosition(title) & Node.DOCUMENT_POSITION_FOLLOWING));
  return {prose, outputs, tex, visible_solutions: visibleSolutions, static_code: staticCode, blocks,
          cell_before_title: cellBeforeTitle,
          page_width: document.documentElement.scrollWidth, viewport: window.innerWidth};
}"""


def reader_problems(probe: dict, width_name: str, max_scrollable: int | None) -> list[str]:
    """Everything the reader probe found wrong on one page at one width."""
    problems = []
    if width_name == "desktop":  # text problems do not depend on the width: report them once
        problems += raw_table_problems(probe["prose"] + probe["outputs"])
        problems += log_line_problems(probe["outputs"])
        problems += machine_path_problems(probe["outputs"])
        problems += unrendered_maths_problems(probe["prose"])
        problems += prose_as_maths_problems(probe["tex"])
        problems += solution_problems(probe)
        if probe["cell_before_title"]:
            problems.append("a code cell comes before the page's title (tag the install cell remove-cell)")
    if probe["page_width"] > probe["viewport"] + SLACK_PX:
        problems.append(f"{width_name}: the page is {probe['page_width']} px wide on a {probe['viewport']} px screen")
    problems += layout_problems(probe["blocks"], max_scrollable, width_name)
    return list(dict.fromkeys(problems))  # text found both as prose and as output is reported once


@dataclass
class PageReport:
    name: str
    problems: list[str] = field(default_factory=list)
    images: int = 0
    maths: int = 0
    widgets: int = 0
    links: int = 0
    blocked_external: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.problems


def toc_pages(toc_path: Path) -> list[str]:
    """Source files named in ``_toc.yml`` (without suffix), root first."""
    toc = yaml.safe_load(toc_path.read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return [str(Path(p).with_suffix("")) for p in pages]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per asset would drown the report
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def local_target_problem(html_root: Path, page_file: Path, href: str) -> str | None:
    """Why a relative link from ``page_file`` is broken, or None if it is fine."""
    url, fragment = urldefrag(href)
    target = page_file if not url else (page_file.parent / unquote(urlparse(url).path)).resolve()
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return f"broken link {href!r}: {target.relative_to(html_root.resolve()) if target.is_relative_to(html_root.resolve()) else target} does not exist"
    if fragment and target.suffix == ".html":
        text = target.read_text(errors="replace")
        if f'id="{fragment}"' not in text and f"id='{fragment}'" not in text:
            return f"broken anchor {href!r}: no id {fragment!r} in {target.name}"
    return None


def check_page(page, base_url: str, html_root: Path, name: str, is_notebook: bool, shot_dir: Path) -> PageReport:
    report = PageReport(name)
    failed_local: list[str] = []
    host = urlparse(base_url).netloc

    def on_route(route):
        if urlparse(route.request.url).netloc == host or route.request.url.startswith("data:"):
            route.continue_()
        else:
            report.blocked_external.add(urlparse(route.request.url).netloc)
            route.abort()

    def on_response(response):
        if urlparse(response.url).netloc == host and response.status >= 400:
            failed_local.append(f"{response.status} {urlparse(response.url).path}")

    def on_failed(request):
        if urlparse(request.url).netloc == host:
            failed_local.append(f"failed {urlparse(request.url).path}")

    page.route("**/*", on_route)
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    try:
        response = page.goto(base_url + name + ".html", wait_until="load", timeout=60_000)
        if response is None or response.status != 200:
            report.problems.append(f"page did not load (status {response.status if response else 'none'})")
            return report

        has_maths = page.evaluate("document.querySelectorAll('.math, .MathJax, script[type^=\"math\"]').length") > 0
        if has_maths:
            try:
                page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=MATHJAX_TIMEOUT_MS)
                page.evaluate("MathJax.startup.promise")
            except Exception as error:  # noqa: BLE001 - reported, not raised
                report.problems.append(f"MathJax did not start: {error.__class__.__name__}")
            report.maths = page.evaluate("document.querySelectorAll('mjx-container').length")
            if report.maths == 0:
                report.problems.append("page has maths but MathJax rendered none")

        views = page.evaluate("document.querySelectorAll('script[type=\"application/vnd.jupyter.widget-view+json\"]').length")
        if views:
            try:  # the manager renders saved widget views asynchronously after load
                page.wait_for_function("document.querySelectorAll('.jupyter-widgets').length > 0", timeout=WIDGET_TIMEOUT_MS)
            except Exception:  # noqa: BLE001 - reported below
                pass
            report.widgets = page.evaluate("document.querySelectorAll('.jupyter-widgets').length")
            if report.widgets == 0:
                report.problems.append(f"{views} saved widget views but none rendered")

        images = page.evaluate(
            """() => Array.from(document.querySelectorAll('article img, main img'))
                 .filter(img => !img.closest('.navbar-brand, .logo'))
                 .map(img => ({src: img.getAttribute('src'), ok: img.complete && img.naturalWidth > 0,
                               w: img.naturalWidth, h: img.naturalHeight}))"""
        )
        report.images = len(images)
        for image in images:
            if not image["ok"]:
                report.problems.append(f"image did not load or is empty: {image['src']}")
        figures = page.evaluate("document.querySelectorAll('.cell_output img, .output img').length")
        if is_notebook and figures == 0:
            report.problems.append("chapter shows no figure in its outputs")

        page_file = html_root / (name + ".html")
        hrefs = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))")
        for href in hrefs:
            parsed = urlparse(href)
            if parsed.scheme or href.startswith("//") or href.startswith("mailto:"):
                continue
            report.links += 1
            problem = local_target_problem(html_root, page_file, href)
            if problem:
                report.problems.append(problem)

        shot_dir.mkdir(parents=True, exist_ok=True)
        shot = shot_dir / name.replace("/", "__")
        report.problems.extend(reader_problems(page.evaluate(READER_PROBE), "desktop", MAX_SCROLLABLE_BLOCKS))
        page.screenshot(path=f"{shot}.png", full_page=True)
        page.set_viewport_size(PHONE)
        try:
            page.wait_for_timeout(300)  # let the theme's responsive layout settle
            report.problems.extend(reader_problems(page.evaluate(READER_PROBE), "phone", None))
            page.screenshot(path=f"{shot}-phone.png", full_page=True)
        finally:
            page.set_viewport_size(DESKTOP)
    finally:
        page.unroute("**/*")
    report.problems.extend(f"local asset: {item}" for item in sorted(set(failed_local)))
    return report


def check_book(html_root: Path, toc_path: Path, shot_dir: Path, chromium: str) -> list[PageReport]:
    from playwright.sync_api import sync_playwright

    server, base_url = serve(html_root)
    reports = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=DESKTOP)
            for name in toc_pages(toc_path):
                is_notebook = (toc_path.parent / (name + ".ipynb")).exists()
                reports.append(check_page(page, base_url, html_root, name, is_notebook, shot_dir))
            browser.close()
    finally:
        server.shutdown()
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="built HTML folder")
    parser.add_argument("--toc", type=Path, default=ROOT / "_toc.yml", help="table of contents listing the pages")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots",
                        help="where the screenshot of each page is written")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").is_file():
        print(f"error: {args.html} holds no built book (no index.html); run `make book` first", file=sys.stderr)
        return 2
    chromium = find_chromium()
    if chromium is None:
        print("error: no Chromium found; install Debian's `chromium` package", file=sys.stderr)
        return 2

    reports = check_book(args.html, args.toc, args.screenshots, chromium)
    for report in reports:
        status = "PASS" if report.ok else "FAIL"
        print(f"{status}  {report.name:<32} images={report.images:<3} maths={report.maths:<4} widgets={report.widgets:<3} local-links={report.links}")
        for problem in report.problems:
            print(f"      - {problem}")
    external = sorted(set().union(*(r.blocked_external for r in reports)))
    if external:
        print(f"note: requests to other hosts were blocked (the book must read offline): {', '.join(external)}")
    failed = sum(not r.ok for r in reports)
    print(f"{len(reports) - failed} passed, {failed} failed")
    print(f"screenshots: {args.screenshots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
