"""Open every page of the built website in headless Chromium and check what a reader would see.

    python ci/check_site.py [_build/html] [--screenshots _build/screenshots]

Serves the site on 127.0.0.1, then opens it again from disk (file://), and blocks every
request that leaves the site (it must work offline, opened straight from _build/html). For each page: no JavaScript errors, no failed or external requests, every image
loaded, every formula typeset by MathJax, every internal link pointing at a file that exists.
Served, it also does what a reader does, at 1280 px and at 390 px: clicks the sidebar and
contents buttons (each panel must open and close; one header, one search box), tabs through
each explorer (each control must change the frame), reads every text's contrast in light and
dark mode (WCAG AA), and checks alt texts, verdict badges, page weight (1 MB of HTML at most),
sideways overflow on a phone and the size of explorer text there. Saves a screenshot of each
page, and phone screenshots of the intro and two chapters in the screenshots folder. Exits 1 and lists the problems if any check fails; prints the number of checks run.
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

    def __init__(self, via: str = "http") -> None:
        self.via = via
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
# What a reader sees of the theme: visible headers, search boxes and the two sidebars' contents.
_VISIBLE_JS = """() => { window.convbookVisible = e => {
  const r = e.getBoundingClientRect(), s = getComputedStyle(e);
  return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && r.right > 0 &&
         r.left < innerWidth; }; }"""
_THEME_JS = """() => { const q = s => Array.from(document.querySelectorAll(s)).filter(convbookVisible);
  return {headers: q('header, .bd-header-article').length,
          search: q('.search-button, .search-button-field, .bd-search').length,
          primary: q('.bd-docs-nav').length > 0, secondary: q('.bd-toc-nav, .page-toc').length > 0}; }"""
_ALT_JS = """() => Array.from(document.querySelectorAll('article img')).map(i => i.getAttribute('alt') || '')
    .filter(a => a.trim().length < 12 || /\\.(png|svg|jpe?g)$/i.test(a) || a.includes('/') ||
                 a === 'explorer figure').map(a => JSON.stringify(a))"""
# Text the reader cannot read: WCAG contrast of each text element against its effective
# background (ancestors' colours composed), below 4.5:1 (3:1 for large text).
_CONTRAST_JS = """() => {
  const parse = c => { const m = c.match(/[\\d.]+/g) || [0, 0, 0, 0]; return m.map(Number).concat([1]).slice(0, 4); };
  const lum = ([r, g, b]) => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const over = (top, bottom) => { const a = top[3]; return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]); };
  const background = e => { const layers = [];
    for (let n = e; n; n = n.parentElement) { const c = parse(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
    let colour = [255, 255, 255, 1]; for (const l of layers.reverse()) colour = over(l, colour); return colour; };
  const bad = [];
  for (const e of document.querySelectorAll('article p, article li, article td, article th, article caption, ' +
       'article figcaption, article label, article output, article pre, article .convbook-badge, article a')) {
    if (!convbookVisible(e) || !e.textContent.trim() || e.closest('.MathJax, mjx-container')) continue;
    const s = getComputedStyle(e), bg = background(e), fg = over(parse(s.color), bg);
    const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a), ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(s.fontSize), large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push(`${e.tagName.toLowerCase()} "${e.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1`);
  }
  return bad; }"""
# Elements wider than the phone's screen that no scrolling box holds.
_OVERFLOW_JS = """() => { const out = [];
  if (document.documentElement.scrollWidth > innerWidth + 1)
    out.push(`page is ${document.documentElement.scrollWidth}px wide`);
  for (const e of document.querySelectorAll('article table, article figcaption, article img, article .convbook-badge')) {
    const r = e.getBoundingClientRect(); if (!r.width) continue;
    const box = e.parentElement.closest('.convbook-table-scroll, .convbook-figure-area, .table-wrapper, .pst-scrollable-table-container');
    const limit = box ? box.getBoundingClientRect().right : innerWidth;
    if (r.right > limit + 1 && !(box && getComputedStyle(box).overflowX === 'auto'))
      out.push(`${e.tagName.toLowerCase()}.${e.className} ends at ${Math.round(r.right)}px`); }
  return out; }"""
_EXPLORER_STATE_JS = """root => root.dataset.state + '##' +
    root.querySelector('.convbook-frame-numbers').textContent"""
# The smallest text in an explorer frame as the reader sees it: the frame records its smallest
# font in image pixels; the image is scaled to the page's width.
_FRAME_TEXT_JS = """root => { const i = root.querySelector('img.convbook-frame');
  return i.naturalWidth ? Number(i.dataset.minFont) * i.clientWidth / i.naturalWidth : null; }"""
_PHONE_SHOTS = ("chapters/intro.html", "chapters/01-group-convolution.html", "chapters/05-residual.html")
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
MAX_PAGE_BYTES = 1_000_000


def _font_on_disk(text: str) -> bool:
    """Chromium refuses web fonts to pages opened from disk (file:// has no origin); the
    theme's icons are drawn as SVG by its script and only decorative glyphs fall back."""
    return text.startswith("file:") and ".woff" in text or "Access to font at 'file:" in text


def _listen(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"JavaScript error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console error: {msg.text}")
            if msg.type == "error" and not _font_on_disk(msg.text)
            and not _font_on_disk(msg.location.get("url", "")) else None)
    page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url[:100]}")
            if not _font_on_disk(req.url) else None)
    page.on("response", lambda res: errors.append(f"HTTP {res.status}: {res.url[:100]}")
            if res.status >= 400 else None)
    return errors


def _open(page, url: str) -> None:
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    page.evaluate(_VISIBLE_JS)


def check_toggles(page, relative: str, width: int, report: Report) -> None:
    """Click each visible sidebar button like a reader: its panel must open, then close."""
    theme = page.evaluate(_THEME_JS)
    report.check("theme", theme["headers"] <= 1 and theme["search"] <= 1,
                 f"{relative} at {width}px: {theme['headers']} headers and {theme['search']} "
                 f"search boxes visible (one of each expected)")
    for side in ("primary", "secondary"):
        buttons = [b for b in page.locator(f".{side}-toggle").all() if b.is_visible()]
        if side == "primary" or width < 1200:  # the contents panel is always open on desktop
            report.check("toggles", bool(buttons), f"{relative} at {width}px: no visible "
                                                   f"{side} sidebar button")
        if not buttons:
            continue
        before = page.evaluate(_THEME_JS)[side]
        buttons[0].click()
        page.wait_for_timeout(400)
        opened = page.evaluate(_THEME_JS)[side]
        report.check("toggles", opened != before, f"{relative} at {width}px: the {side} "
                                                  f"sidebar button did nothing")
        for close in ("Escape", f".{side}-toggle", f"label.overlay-{side}"):
            if page.evaluate(_THEME_JS)[side] == before:
                break
            if close == "Escape":
                page.keyboard.press("Escape")
            else:
                visible = [b for b in page.locator(close).all() if b.is_visible()]
                if visible:
                    visible[0].click(force=True)
            page.wait_for_timeout(400)
        report.check("toggles", page.evaluate(_THEME_JS)[side] == before,
                     f"{relative} at {width}px: the {side} sidebar would not close again")


def check_explorers(page, relative: str, report: Report) -> None:
    """Drive each explorer from the keyboard: Tab reaches every control, and each one changes
    the frame (arrow keys on sliders and button groups, space on check boxes)."""
    for index, root in enumerate(page.locator(".convbook-explorer").all()):
        names = root.evaluate("""r => [...new Set(Array.from(r.querySelectorAll('[data-param]'))
                                                  .map(c => c.dataset.param))]""")
        for position, name in enumerate(names):
            if position == 0:  # the focusable member: a radio group's checked button
                root.locator(f'[data-param="{name}"]:not([type=radio]), '
                             f'[data-param="{name}"][type=radio]:checked').first.focus()
            else:
                page.keyboard.press("Tab")
            focused = page.evaluate("() => document.activeElement && document.activeElement.dataset.param")
            report.check("explorers", focused == name, f"{relative}: Tab reached {focused!r}, "
                                                       f"not explorer {index}'s control '{name}'")
            before = root.evaluate(_EXPLORER_STATE_JS)
            kind = page.evaluate("() => document.activeElement.type")
            page.keyboard.press("Space" if kind == "checkbox" else "ArrowRight")
            if root.evaluate(_EXPLORER_STATE_JS) == before:  # at the last value: go back one
                page.keyboard.press("ArrowLeft")
            report.check("explorers", root.evaluate(_EXPLORER_STATE_JS) != before,
                         f"{relative}: explorer {index} did not change when '{name}' moved")
            if kind == "range":
                text = page.evaluate("() => document.activeElement.getAttribute('aria-valuetext')")
                report.check("explorers", bool((text or "").strip()),
                             f"{relative}: explorer {index}'s slider '{name}' has no aria-valuetext")


def check_page(page, base: str, relative: str, site: Path, report: Report, shots: Path,
               full: bool) -> None:
    """Load checks on every page; with ``full``, everything a reader does at 1280 px in both
    colour modes."""
    url = base + relative
    errors = _listen(page)
    _open(page, url)
    if page.locator(".math").count():
        with contextlib.suppress(Exception):
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=10_000)
            page.evaluate("() => MathJax.startup.promise")
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
    if full:
        size = (site / relative).stat().st_size
        report.check("page size", size <= MAX_PAGE_BYTES,
                     f"{relative}: {size / 1e6:.2f} MB of HTML (at most 1 MB)")
        alts = page.evaluate(_ALT_JS)
        report.check("alt text", not alts, f"{relative}: images whose alt text says nothing: "
                                           f"{alts[:4]}")
        boilerplate = page.locator(".tag_injected-parameters, .tag_parameters").count()
        quoted = page.evaluate("""() => Array.from(document.querySelectorAll('article .output pre'))
                                      .map(p => p.textContent.trim()).filter(t => /^['"]/.test(t)).length""")
        report.check("boilerplate", boilerplate == 0 and quoted == 0,
                     f"{relative}: {boilerplate} parameter cells and {quoted} raw strings shown")
        if relative.startswith("chapters/") and page.locator(".convbook-explorer").count():
            check_explorers(page, relative, report)
            stem = Path(relative).stem
            hrefs = [a.get_attribute("href") for a in page.locator("a[href*='colab.research']").all()]
            repo = repository_url().removeprefix("https://github.com/")
            expected = f"colab.research.google.com/github/{repo}/blob/main/chapters/{stem}.ipynb"
            report.check("colab", any(h and h.endswith(expected) for h in hrefs),
                         f"{relative}: no Colab link to {expected} (found {hrefs})")
        if page.locator("section#verdicts").count() or relative.endswith("intro.html"):
            check_badges(page, relative, report)
        for mode in ("light", "dark"):
            page.evaluate(f"() => {{ document.documentElement.dataset.theme = '{mode}'; "
                          f"document.documentElement.dataset.mode = '{mode}'; }}")
            page.wait_for_timeout(100)
            bad = page.evaluate(_CONTRAST_JS)
            report.check("contrast", not bad, f"{relative} in {mode} mode: text below WCAG AA "
                                              f"contrast: {bad[:4]}")
        page.evaluate("() => { document.documentElement.dataset.theme = 'light'; }")
        check_toggles(page, relative, DESKTOP["width"], report)
    report.check("console and network", not errors, f"{relative}: " + "; ".join(errors[:5]))
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / (relative.replace("/", "_").removesuffix(".html") + ".png")),
                    full_page=True)


def check_badges(page, relative: str, report: Report) -> None:
    """Verdicts as badges with colour and text: in the intro's table, the "In one minute" box
    and the Verdicts section of a chapter."""
    intro = relative.endswith("intro.html")
    places = ["table"] if intro else [".convbook-one-minute", "#verdicts"]
    for place in places:
        count = page.locator(f"article {place} .convbook-verdict").count()
        report.check("badges", count > 0, f"{relative}: no verdict badge in {place}")
    if intro:
        report.check("badges", page.locator("article .convbook-legend .convbook-verdict").count() >= 4,
                     "intro.html: no legend of the verdict labels")


def check_phone(page, base: str, relative: str, report: Report, shots: Path) -> None:
    """At 390 px: no sideways scrolling, verdicts in view, sidebars that open, explorer text
    legible."""
    errors = _listen(page)
    _open(page, base + relative)
    overflow = page.evaluate(_OVERFLOW_JS)
    report.check("phone", not overflow, f"{relative} at 390px: {overflow[:3]}")
    if relative.endswith("intro.html"):
        hidden = page.evaluate("""() => Array.from(document.querySelectorAll('article table .convbook-verdict'))
            .filter(b => b.getBoundingClientRect().right > innerWidth).length""")
        report.check("phone", hidden == 0, f"intro.html at 390px: {hidden} verdict badges off-screen")
    for index, root in enumerate(page.locator(".convbook-explorer").all()):
        smallest = root.evaluate(_FRAME_TEXT_JS)
        report.check("phone", smallest is not None and smallest >= 9,
                     f"{relative} at 390px: explorer {index}'s smallest text is "
                     f"{smallest if smallest is None else round(smallest, 1)} px (9 px at least)")
    check_toggles(page, relative, PHONE["width"], report)
    report.check("console and network", not errors, f"{relative} at 390px: " + "; ".join(errors[:5]))
    if relative in _PHONE_SHOTS:
        _open(page, base + relative)
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / ("phone-" + relative.replace("/", "_")
                                          .removesuffix(".html") + ".png")), full_page=True)


def check_site(site: Path, shots: Path, via: str = "http") -> Report:
    """Check every page, served on loopback (``via="http"``) or opened from disk (``"file"``).
    Served, every check runs at desktop and phone widths; from disk, the load checks."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("No Chromium found: install Debian's 'chromium' (apt-get install "
                         "chromium) or set CHROMIUM to a Chromium binary.")
    if via not in ("http", "file"):
        raise ValueError(f"via must be 'http' or 'file', got {via!r}")
    pages = sorted(p for p in site.rglob("*.html")
                   if p.name not in SKIP_PAGES and "_static" not in p.parts)
    report = Report(via)
    server = serve(site) if via == "http" else contextlib.nullcontext(site.resolve().as_uri() + "/")
    with server as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        contexts = {name: browser.new_context(viewport=size, reduced_motion="reduce")
                    for name, size in (("desktop", DESKTOP), ("phone", PHONE))}
        for context in contexts.values():
            # Offline: anything not from the site itself is refused and reported.
            context.route("**/*", lambda route: route.continue_()
                          if route.request.url.startswith((base, "data:")) else route.abort())
        for path in pages:
            relative = path.relative_to(site).as_posix()
            if path.stat().st_size < 600 and "http-equiv" in path.read_text(errors="ignore"):
                continue  # a redirect stub (index.html)
            report.pages += 1
            page = contexts["desktop"].new_page()
            check_page(page, base, relative, site, report, shots / via, full=via == "http")
            page.close()
            if via == "http":
                page = contexts["phone"].new_page()
                check_phone(page, base, relative, report, shots)
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
