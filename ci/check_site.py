"""Open every page of the built website in headless Chromium and check what a reader would see.

    python ci/check_site.py [_build/html] [--screenshots _build/screenshots]

Serves the site on 127.0.0.1, then opens it again from disk (file://), and blocks every
request that leaves the site (it must work offline, opened straight from _build/html). For each page: no JavaScript errors, no failed or external requests, every image
loaded, every formula typeset by MathJax, every internal link pointing at a file that exists.
On chapter pages: each explorer responds when its sliders move (picture or numbers change),
and the Colab link opens that chapter's notebook in the repository. Saves a screenshot of each
page. Exits 1 and lists the problems if any check fails; prints the number of checks run.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import http.server
import os
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
SKIP_PAGES = {"search.html", "genindex.html"}  # Sphinx's generated utility pages


def find_chromium() -> str | None:
    """A Chromium binary: $CHROMIUM, else Debian's chromium on the PATH."""
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


@contextlib.contextmanager
def serve(folder: Path):
    """Serve ``folder`` on a free loopback port for the duration of the block."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def repository_url() -> str:
    import yaml

    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")


class Report:
    """Counts of checks by kind, and the problems found."""

    def __init__(self) -> None:
        self.kinds: collections.Counter[str] = collections.Counter()
        self.problems: list[str] = []
        self.pages = 0

    @property
    def checks(self) -> int:
        return sum(self.kinds.values())

    def check(self, kind: str, ok: bool, problem: str) -> None:
        self.kinds[kind] += 1
        if not ok:
            self.problems.append(problem)


_IMAGES_JS = """() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))
                          .map(i => i.currentSrc || i.src || i.alt).map(s => s.slice(0, 80))"""
_MATH_JS = """() => Array.from(document.querySelectorAll('.math'))
                 .filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60))"""
_LINKS_JS = """() => Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"""
_EXPLORER_STATE_JS = """root => root.querySelector('img.convbook-frame').getAttribute('src') + '##' +
                        root.querySelector('.convbook-frame-numbers').textContent"""
_MOVE_JS = """(input) => { input.value = String((Number(input.value) + 1) % (Number(input.max) + 1));
                          input.dispatchEvent(new Event('input', {bubbles: true})); }"""


def check_page(page, base: str, relative: str, site: Path, report: Report, shots: Path) -> None:
    url = base + relative
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"JavaScript error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console error: {msg.text}")
            if msg.type == "error" else None)
    page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url[:100]}"))
    page.on("response", lambda res: errors.append(f"HTTP {res.status}: {res.url[:100]}")
            if res.status >= 400 else None)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    if page.locator(".math").count():
        with contextlib.suppress(Exception):
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=10_000)
            page.evaluate("() => MathJax.startup.promise")
    report.check("console and network", not errors, f"{relative}: " + "; ".join(errors[:5]))
    broken = page.evaluate(_IMAGES_JS)
    report.check("images", not broken, f"{relative}: images that did not load: {broken[:5]}")
    raw_math = page.evaluate(_MATH_JS)
    report.check("math", not raw_math, f"{relative}: formulas left untypeset: {raw_math[:3]}")
    for href in page.evaluate(_LINKS_JS):
        if href.startswith(("http:", "https:", "mailto:", "javascript:", "#")) or not href:
            continue
        target = urljoin(url, href).split("#")[0].split("?")[0]
        inside = target.startswith(base)
        exists = inside and (site / unquote(target[len(base):])).exists()
        report.check("links", exists, f"{relative}: broken link {href}")
    for index, root in enumerate(page.locator(".convbook-explorer").all()):
        for slider in root.locator("input[type=range]").all():
            before = root.evaluate(_EXPLORER_STATE_JS)
            slider.evaluate(_MOVE_JS)
            after = root.evaluate(_EXPLORER_STATE_JS)
            name = slider.get_attribute("data-param")
            report.check("explorers", after != before, f"{relative}: explorer {index} did not change when "
                                          f"'{name}' moved")
    if relative.startswith("chapters/") and page.locator(".convbook-explorer").count():
        stem = Path(relative).stem
        hrefs = [a.get_attribute("href") for a in page.locator("a[href*='colab.research']").all()]
        repo = repository_url().removeprefix("https://github.com/")
        expected = f"colab.research.google.com/github/{repo}/blob/main/chapters/{stem}.ipynb"
        report.check("colab", any(h and h.endswith(expected) for h in hrefs),
                     f"{relative}: no Colab link to {expected} (found {hrefs})")
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / (relative.replace("/", "_").removesuffix(".html") + ".png")),
                    full_page=True)


def check_site(site: Path, shots: Path, via: str = "http") -> Report:
    """Check every page, served on loopback (``via="http"``) or opened from disk (``"file"``)."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("No Chromium found: install Debian's 'chromium' (apt-get install "
                         "chromium) or set CHROMIUM to a Chromium binary.")
    if via not in ("http", "file"):
        raise ValueError(f"via must be 'http' or 'file', got {via!r}")
    pages = sorted(p for p in site.rglob("*.html")
                   if p.name not in SKIP_PAGES and "_static" not in p.parts)
    report = Report()
    server = serve(site) if via == "http" else contextlib.nullcontext(site.resolve().as_uri() + "/")
    with server as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        # Offline: anything not from the site itself is refused and reported.
        context.route("**/*", lambda route: route.continue_()
                      if route.request.url.startswith((base, "data:")) else route.abort())
        for path in pages:
            relative = path.relative_to(site).as_posix()
            if path.stat().st_size < 600 and "http-equiv" in path.read_text(errors="ignore"):
                continue  # a redirect stub (index.html)
            report.pages += 1
            page = context.new_page()
            check_page(page, base, relative, site, report, shots / via)
            page.close()
        browser.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--screenshots", type=Path, default=None)
    args = parser.parse_args(argv)
    shots = args.screenshots or args.site.parent / "screenshots"
    failed = False
    for via in ("http", "file"):
        report = check_site(args.site, shots, via)
        print(f"{via}: {report.checks} browser checks on {report.pages} pages "
              f"({', '.join(f'{k}: {n}' for k, n in sorted(report.kinds.items()))}); "
              f"screenshots in {shots / via}")
        for problem in report.problems:
            print("  FAIL", problem)
        failed = failed or bool(report.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
