"""Open every chapter of the built book in headless Chromium and check it as a reader would.

For each page listed in ``_toc.yml`` it checks that:

* the page loads (HTTP 200 from a local server over ``_build/html``);
* every image in the article has loaded and is non-empty (``naturalWidth > 0``), and
  chapters made from notebooks show at least one figure;
* maths renders: where the page holds maths, MathJax has produced ``mjx-container`` output;
* saved widget views render (the vendored widget manager ran);
* no local link is broken (the target file exists and, for ``#anchors``, the id exists) and
  no local asset (script, stylesheet, image, font) failed to load.

Requests to other hosts are blocked and listed, not fatal: the book must read offline.
A full-page screenshot of each page is saved for people to look at.

Usage::

    python tools/check_book_html.py [--html _build/html] [--screenshots _build/screenshots]

Exit status 0 when every page passes, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import functools
import http.server
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
        page.screenshot(path=str(shot_dir / (name.replace("/", "__") + ".png")), full_page=True)
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
            page = browser.new_page(viewport={"width": 1280, "height": 900})
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
