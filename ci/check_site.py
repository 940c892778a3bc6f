"""Open every page of the built website in headless Chromium and check what a reader would see.

    python ci/check_site.py [_build/html] [--screenshots _build/screenshots]
                            [--via http|file] [--page chapters/intro.html ...]

Serves the site on 127.0.0.1, then opens it again from disk (file://), and blocks every
request that leaves the site (it must work offline, opened straight from _build/html). For
each page: no JavaScript errors, no failed or external requests, every image loaded, every
formula typeset by MathJax, every internal link pointing at a file that exists; index.html has
a title. Served, it also does what a reader does, at 1280 px and at 390 px: clicks the sidebar
and contents buttons (each panel must open and close, and its button say so in aria-expanded;
one header, one search box), tabs through each explorer (each control must change the frame),
reads every text's contrast in light and dark mode (WCAG AA), and checks alt texts, verdict
badges, page weight (1 MB of HTML at most), printing (no explorer controls) and the
downloadable notebook (its parameters say profile "auto"). At 390 px: a first visit transfers
at most 2 MB; nothing is cut off (wider content scrolls in a box one can Tab to; an explorer's
picture in a labelled region with a cue at its edge); each figure's smallest text is 8 px or a
tap opens it at full size; every Tab stop shows a focus ring and no formula is one (unless it
must scroll); the page follows the system's colour setting, and axe-core (from the npm
registry, see ensure_axe) finds no serious violation in light or dark mode; figures are not
dimmed in dark mode; the colour switch says what it does and its state. The search page's
snippets read formulas as text. Saves a screenshot of each page, and phone screenshots of the
intro and two chapters in the screenshots folder. Exits 1 and lists the problems if any check
fails; prints the number of checks run and, per page, what it measured.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import struct
import subprocess
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
        self.measures: dict[str, dict] = collections.defaultdict(dict)  # page -> name -> value

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
       'article figcaption, article label, article output, article pre, article .convbook-verdict, article a')) {
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
  for (const e of document.querySelectorAll('article table, article figcaption, article img, article .convbook-verdict')) {
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
MAX_FIRST_VISIT_BYTES = 2_000_000  # everything a first visit transfers, page and assets
MIN_FIGURE_TEXT_PX = 8  # a figure's smallest text on a phone, else a full-size view
MAX_TAB_STOPS = 600
AXE_VERSION = "4.14.1"  # axe-core, from the npm registry (ensure_axe)
TOOLS = ROOT / "_build" / "tools"
SERIOUS = ("serious", "critical")

# The figures on the page, as a phone shows them: size shown, size drawn, and whether a tap
# opens them at full size.
_FIGURES_JS = """() => Array.from(document.querySelectorAll('article img'))
  .filter(i => !i.closest('.convbook-explorer, .btn, .convbook-zoom-dialog') && i.naturalWidth > 0)
  .map(i => ({src: i.currentSrc, shown: i.getBoundingClientRect().width, natural: i.naturalWidth,
              zoom: Array.from(document.querySelectorAll('button.convbook-zoom')).indexOf(i.closest('button.convbook-zoom')),
              alt: (i.alt || '').slice(0, 40)}))"""
_ZOOMED_JS = """() => { const d = document.querySelector('dialog.convbook-zoom-dialog');
  if (!d || !d.open) return null; const i = d.querySelector('img');
  return {shown: i.getBoundingClientRect().width, natural: i.naturalWidth, complete: i.complete,
          focus: !!d.contains(document.activeElement)}; }"""
# Content wider than the box that clips it: the box must scroll and be reachable by Tab; an
# explorer's picture's box must also be a labelled region that shows there is more to the side.
_CLIPPED_JS = """() => { const out = [], frames = [];
  const clipper = e => { for (let n = e.parentElement; n && n !== document.body; n = n.parentElement)
      if (getComputedStyle(n).overflowX !== 'visible') return n; return null; };
  for (const e of document.querySelectorAll('article img, article table, article pre, article .cell_output .output > *, article mjx-container > mjx-math')) {
    const r = e.getBoundingClientRect(); if (!r.width || !convbookVisible(e)) continue;
    const box = clipper(e), frame = e.matches('img.convbook-frame');
    const limit = box ? box.getBoundingClientRect().right : innerWidth;
    const hidden = Math.round(r.right - limit);
    if (frame) frames.push(hidden);
    if (hidden <= 1) continue;
    const what = `${e.tagName.toLowerCase()}${frame ? ' (explorer picture)' : ''} "${(e.alt || e.textContent || '').trim().slice(0, 30)}"`;
    if (!box) { out.push(`${what}: ${hidden}px beyond the page`); continue; }
    const s = getComputedStyle(box), scrolls = ['auto', 'scroll'].includes(s.overflowX);
    const focusable = box.tabIndex >= 0 && box.getAttribute('tabindex') !== null;
    const labelled = box.getAttribute('role') === 'region' && !!(box.getAttribute('aria-label') || '').trim();
    const shade = side => { const p = getComputedStyle(box, side);  // a shadow at an edge
      return p.content !== 'none' && p.backgroundImage.includes('gradient') && Number(p.opacity) > 0; };
    const cue = s.backgroundImage.includes('gradient') || shade('::before') || shade('::after');
    const missing = [scrolls ? '' : 'does not scroll', focusable ? '' : 'is no Tab stop',
                     !frame || labelled ? '' : 'is no labelled region (role=region, aria-label)',
                     !frame || cue ? '' : 'shows no cue that there is more'].filter(Boolean);
    if (missing.length) out.push(`${what}: ${hidden}px hidden in a ${box.tagName.toLowerCase()}.${box.className} that ${missing.join(', ')}`);
  }
  return {problems: out, frames}; }"""
# The element that has the keyboard focus, and whether it shows that it has it.
_FOCUS_JS = """() => { const e = document.activeElement; if (!e || e === document.body) return null;
  const s = getComputedStyle(e), clear = c => /rgba\\(.*,\\s*0\\)$/.test(c) || c === 'transparent';
  const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 && !clear(s.outlineColor)) ||
               (s.boxShadow !== 'none' && !clear(s.boxShadow.split(') ')[0] + ')'));
  const name = (e.getAttribute('aria-label') || e.title || e.textContent || e.tagName).trim().slice(0, 30);
  if (!e.dataset.convbookStop) e.dataset.convbookStop = String(window.convbookStops = (window.convbookStops || 0) + 1);
  return {id: e.dataset.convbookStop, ring, name: `${e.tagName.toLowerCase()}${e.className ? '.' + String(e.className).split(' ')[0] : ''} "${name}"`,
          formula: !!e.closest('mjx-container') && !(['auto', 'scroll'].includes(s.overflowX) &&
                                                     e.scrollWidth > e.clientWidth + 1),
          header: !!e.closest('.bd-header-article')}; }"""
_SWITCH_JS = """() => { const b = Array.from(document.querySelectorAll('.theme-switch-button')).find(convbookVisible);
  const h = document.documentElement;
  return b ? {label: b.getAttribute('aria-label') || '', pressed: b.getAttribute('aria-pressed'),
              title: b.title || '', theme: h.dataset.theme, mode: h.dataset.mode} : null; }"""
# Figures in dark mode: not darkened, on a light panel.
_DIMMED_JS = """() => Array.from(document.querySelectorAll('article img')).filter(convbookVisible).filter(i => {
    const s = getComputedStyle(i), bg = (s.backgroundColor.match(/[\\d.]+/g) || []).map(Number);
    const grey = bg.length >= 3 && (bg[3] === undefined || bg[3] > 0) && Math.min(bg[0], bg[1], bg[2]) < 235;
    return s.filter !== 'none' || Number(s.opacity) < 1 || grey; })
  .map(i => `"${(i.alt || '').slice(0, 30)}" (filter ${getComputedStyle(i).filter}, background ${getComputedStyle(i).backgroundColor})`)"""
_AXE_JS = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
  .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length,
              example: (v.nodes[0] && v.nodes[0].target.join(' ').slice(0, 90)) || ''}))"""
_RAW_TEX = re.compile(r"\\[()\[\]]|\\(frac|text|cdot|times|mathrm)\b")


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
    if page.locator(".math").count():  # formulas typeset, as a reader sees them
        with contextlib.suppress(Exception):
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=10_000)
            page.evaluate("() => MathJax.startup.promise")
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
        said = [buttons[0].get_attribute("aria-expanded")]
        buttons[0].click()
        page.wait_for_timeout(400)
        opened = page.evaluate(_THEME_JS)[side]
        said.append(buttons[0].get_attribute("aria-expanded"))
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
        said.append(buttons[0].get_attribute("aria-expanded"))
        truth = [str(before).lower(), str(opened).lower(), str(before).lower()]
        report.check("toggles", said == truth, f"{relative} at {width}px: the {side} sidebar "
                                               f"button's aria-expanded said {said} as the panel "
                                               f"went {truth}")


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


def ensure_axe() -> str:
    """axe-core's browser script: the file $AXE_CORE names, else axe-core AXE_VERSION installed
    once with npm from the npm registry into _build/tools."""
    if os.environ.get("AXE_CORE"):
        path = Path(os.environ["AXE_CORE"])
        if not path.is_file():
            raise SystemExit(f"AXE_CORE names {path}, which is not a file (it should be axe.min.js)")
        return path.read_text(encoding="utf8")
    package = TOOLS / "node_modules" / "axe-core"
    installed = package / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != AXE_VERSION:
        npm = shutil.which("npm")
        why = "npm is not installed" if npm is None else ""
        if npm:
            done = subprocess.run([npm, "install", "--prefix", str(TOOLS), "--no-save", "--no-audit",
                                   "--no-fund", "--loglevel=error", f"axe-core@{AXE_VERSION}"],
                                  check=False, capture_output=True, text=True,
                                  timeout=300)
            why = "" if done.returncode == 0 else f"npm failed: {done.stderr.strip()[-400:]}"
        if why or not (package / "axe.min.js").exists():
            raise SystemExit(f"The accessibility checks need axe-core {AXE_VERSION} from the npm "
                             f"registry, and {why or 'npm installed no axe.min.js'}. Install "
                             f"npm (apt-get install npm) with access to the registry, or set "
                             f"AXE_CORE to a copy of axe.min.js.")
    return (package / "axe.min.js").read_text(encoding="utf8")


def png_dpi(path: Path) -> float:
    """The resolution a PNG was drawn at (its pHYs chunk; matplotlib writes it), else 100."""
    with contextlib.suppress(OSError):
        data = path.read_bytes()[:4096]
        at = data.find(b"pHYs")
        if at > 0:
            per_metre, _, unit = struct.unpack(">IIB", data[at + 4:at + 13])
            if unit == 1 and per_metre:
                return per_metre * 0.0254
    return 100.0


@functools.lru_cache(maxsize=1)
def figure_font_pt() -> float:
    """The smallest text size of the book's figure style, in points (axis labels, ticks, legends,
    titles as convbook.viz.style sets them)."""
    import matplotlib
    from convbook.viz import style
    from matplotlib.font_manager import FontProperties

    with matplotlib.rc_context():
        style.apply_style()
        keys = ("font.size", "axes.labelsize", "axes.titlesize", "xtick.labelsize",
                "ytick.labelsize", "legend.fontsize")
        return min(FontProperties(size=matplotlib.rcParams[k]).get_size_in_points() for k in keys)


def _local_file(site: Path, base: str, url: str) -> Path:
    return site / unquote(url[len(base):].split("?")[0].split("#")[0])


def check_weight(browser, base: str, relative: str, report: Report) -> None:
    """A first visit on a phone (nothing cached): everything transferred until the network is
    quiet, at most MAX_FIRST_VISIT_BYTES."""
    context = browser.new_context(viewport=PHONE)
    context.route("**/*", lambda route: route.continue_()
                  if route.request.url.startswith((base, "data:")) else route.abort())
    page = context.new_page()
    finished = []
    page.on("requestfinished", lambda request: finished.append(request))
    _open(page, base + relative)
    total = 0
    for request in finished:
        sizes = request.sizes()
        total += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    context.close()
    report.measures[relative]["first visit bytes"] = total
    report.measures[relative]["first visit requests"] = len(finished)
    report.check("weight", total <= MAX_FIRST_VISIT_BYTES,
                 f"{relative}: a first visit transfers {total / 1e6:.2f} MB in {len(finished)} "
                 f"requests (at most {MAX_FIRST_VISIT_BYTES / 1e6:.0f} MB)")


def check_figures(page, base: str, relative: str, site: Path, report: Report) -> None:
    """At 390 px: each figure's smallest text is MIN_FIGURE_TEXT_PX tall, or a tap opens the
    figure at full size (where it is), and Escape closes it again."""
    smallest, zoomed = None, None
    for figure in page.evaluate(_FIGURES_JS):
        if not figure["src"].startswith(base):
            continue
        pixels_per_point = png_dpi(_local_file(site, base, figure["src"])) / 72
        text = figure_font_pt() * pixels_per_point * figure["shown"] / figure["natural"]
        smallest = text if smallest is None else min(smallest, text)
        name = f"{relative} at 390px: figure \"{figure['alt']}\" (text {text:.1f} px)"
        report.check("figures", text >= MIN_FIGURE_TEXT_PX or figure["zoom"] >= 0,
                     f"{name} has no full-size view")
        if text >= MIN_FIGURE_TEXT_PX or figure["zoom"] < 0:
            continue
        page.locator("button.convbook-zoom").nth(figure["zoom"]).click()
        page.wait_for_timeout(150)
        view = page.evaluate(_ZOOMED_JS)
        full = view and view["complete"] and \
            figure_font_pt() * pixels_per_point * view["shown"] / view["natural"]
        zoomed = full if zoomed is None or not full else min(zoomed, full)
        report.check("figures", bool(full) and full >= MIN_FIGURE_TEXT_PX and view["focus"],
                     f"{name}: a tap opened {view}, not the figure at full size with the focus in it")
        page.keyboard.press("Escape")
        page.wait_for_timeout(100)
        closed = page.evaluate("() => !document.querySelector('dialog.convbook-zoom-dialog[open]') && "
                               "!!document.activeElement.closest('button.convbook-zoom')")
        report.check("figures", closed, f"{name}: Escape did not close the full-size view "
                                        f"and return to the figure")
    if smallest is not None:
        report.measures[relative]["figure text px"] = round(smallest, 1)
    if zoomed is not None:
        report.measures[relative]["full-size text px"] = round(zoomed, 1)


def check_scrolling(page, relative: str, report: Report) -> None:
    """At 390 px nothing is cut off: content wider than its box scrolls inside it, the box is
    a Tab stop, and an explorer's picture's box is a labelled region with a cue at its edge."""
    found = page.evaluate(_CLIPPED_JS)
    report.check("scrolling", not found["problems"],
                 f"{relative} at 390px: content cut off: {found['problems'][:3]}")
    if found["frames"]:
        report.measures[relative]["explorer px beyond box"] = max(found["frames"])


def check_focus(page, relative: str, report: Report) -> None:
    """Tab through the page at 390 px: every stop shows a focus ring; no formula is a stop; the
    header's buttons are all reached."""
    seen, bare, formulas, header = set(), [], 0, 0
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    for _ in range(MAX_TAB_STOPS):
        page.keyboard.press("Tab")
        stop = page.evaluate(_FOCUS_JS)
        if stop is None or stop["id"] in seen:
            break
        seen.add(stop["id"])
        formulas += stop["formula"]
        header += stop["header"]
        if not stop["ring"]:
            bare.append(stop["name"])
    report.measures[relative]["tab stops"] = len(seen)
    report.check("focus", not bare, f"{relative} at 390px: {len(bare)} of {len(seen)} Tab stops "
                                    f"show no focus ring: {bare[:4]}")
    report.check("focus", formulas == 0, f"{relative} at 390px: {formulas} formulas that fit "
                                         f"the screen are Tab stops")
    report.check("focus", header >= 5, f"{relative} at 390px: Tab reached {header} header "
                                       f"controls (5 or more expected)")


def check_axe(page, relative: str, mode: str, axe: str, report: Report) -> None:
    """axe-core on the page as it stands: no serious or critical violation."""
    page.add_script_tag(content=axe)
    found = page.evaluate(_AXE_JS)
    serious = [f"{v['id']} ({v['impact']}, {v['nodes']}x, e.g. {v['example']})"
               for v in found if v["impact"] in SERIOUS]
    report.measures[relative][f"axe {mode}"] = sorted(f"{v['id']}:{v['impact']}" for v in found)
    report.check("axe", not serious, f"{relative} at 390px in {mode} mode: axe-core reports "
                                     f"{serious[:3]}")


def check_colour_modes(page, base: str, relative: str, axe: str, report: Report) -> None:
    """The page follows the system's setting, light and dark (axe-core in each); the switch
    says what it does and its state, and two taps come back to following the system; figures
    stay undimmed in dark mode."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.evaluate("() => localStorage.clear()")
        _open(page, base + relative)
        shown = page.evaluate("() => [document.documentElement.dataset.theme, document.documentElement.dataset.mode]")
        report.check("colour mode", shown == [scheme, "auto"],
                     f"{relative}: with the system set to {scheme}, the page shows theme/mode {shown}")
        page.evaluate(f"() => {{ document.documentElement.dataset.theme = '{scheme}'; }}")  # even so
        check_axe(page, relative, scheme, axe, report)
    dimmed = page.evaluate(_DIMMED_JS)
    report.check("colour mode", not dimmed, f"{relative} in dark mode: figures dimmed or on grey: "
                                            f"{dimmed[:3]}")
    states = [page.evaluate(_SWITCH_JS)]
    for _ in range(2):
        if states[-1] is None:
            break
        next(b for b in page.locator(".theme-switch-button").all() if b.is_visible()).click()
        page.wait_for_timeout(100)
        states.append(page.evaluate(_SWITCH_JS))
    expected = [("dark", "auto", "true", "light"), ("light", "light", "false", "dark"),
                ("dark", "auto", "true", "light")]
    got = [s and (s["theme"], s["mode"], s["pressed"], s["label"], s["title"]) for s in states]
    said = all(s and s[3] and f"switch to {e[3]}" in s[4].lower() for s, e in zip(got, expected))
    report.check("colour mode", len(got) == 3 and said and
                 [s[:3] for s in got] == [e[:3] for e in expected],
                 f"{relative}: the colour switch (system dark) went {got}; expected theme, mode, "
                 f"aria-pressed {[e[:3] for e in expected]}, each with a label and a title "
                 f"saying 'switch to' the other mode")
    page.evaluate("() => localStorage.clear()")
    page.emulate_media(color_scheme="light")


def check_print(page, relative: str, report: Report) -> None:
    """Printed, a page shows its content, not its explorers' controls."""
    if not page.locator(".convbook-explorer").count():
        return
    page.emulate_media(media="print")
    shown = page.evaluate("() => Array.from(document.querySelectorAll('.convbook-explorer input, "
                          ".convbook-explorer .convbook-controls')).filter(e => e.getClientRects().length > 0).length")
    page.emulate_media(media="screen")
    report.check("print", shown == 0, f"{relative}: {shown} explorer controls are printed")


def check_downloads(page, base: str, relative: str, site: Path, report: Report) -> None:
    """The notebook the page offers for download runs with the chapter's own parameters
    (profile "auto"), not the profile the website was built with."""
    links = [a for a in page.evaluate("() => Array.from(document.querySelectorAll('a[href$=\".ipynb\"]')).map(a => a.href)")
             if a.startswith(base)]
    if not links:
        return
    book = json.loads(_local_file(site, base, links[0]).read_text(encoding="utf8"))
    tags = [cell.get("metadata", {}).get("tags", []) for cell in book["cells"]]
    injected = sum("injected-parameters" in t for t in tags)
    parameters = ["".join(c["source"]) for c, t in zip(book["cells"], tags) if "parameters" in t]
    auto = bool(parameters) and re.search(r'^profile\s*=\s*"auto"', parameters[0],
                                          re.MULTILINE) is not None
    report.check("downloads", injected == 0 and auto,
                 f"{relative}: the downloadable notebook has {injected} injected parameter cells "
                 f"and parameters {parameters[:1]!r} (profile \"auto\" expected)")


def check_index(site: Path, report: Report) -> None:
    """index.html, the address the site is opened at: a redirect with a title."""
    text = (site / "index.html").read_text(encoding="utf8", errors="ignore")
    title = re.search(r"<title>\s*([^<]+?)\s*</title>", text)
    report.check("index", bool(title) and "http-equiv" in text.lower(),
                 f"index.html: {'no title' if not title else 'no redirect'}")


def check_search(page, base: str, site: Path, report: Report) -> None:
    """The search page finds a word, and its snippets read formulas as text, not raw TeX
    (both on the results shown and on a page that holds formulas)."""
    _open(page, base + "search.html?q=convolution")
    with contextlib.suppress(Exception):
        page.wait_for_function("() => document.querySelectorAll('#search-results li').length > 0 && "
                               "!document.querySelector('#search-results li .context:empty')",
                               timeout=10_000)
    snippets = page.evaluate("() => Array.from(document.querySelectorAll('#search-results li')).map(l => l.textContent)")
    report.check("search", bool(snippets), "search.html: searching 'convolution' found nothing")
    raw = [s[:80] for s in snippets if _RAW_TEX.search(s)]
    report.check("search", not raw, f"search.html: snippets with raw TeX: {raw[:2]}")
    with_math = next((p for p in sorted(site.rglob("*.html")) if 'class="math' in p.read_text(errors="ignore")), None)
    if with_math is not None:
        text = page.evaluate("async url => Search.htmlToText(await (await fetch(url)).text())",
                             base + with_math.relative_to(site).as_posix())
        found = _RAW_TEX.search(text)
        report.check("search", found is None, f"search.html: the snippet text of "
                     f"{with_math.name} holds raw TeX: "
                     f"{text[max(0, found.start() - 30):found.end() + 30] if found else ''!r}")


def check_page(page, base: str, relative: str, site: Path, report: Report, shots: Path,
               full: bool) -> None:
    """Load checks on every page; with ``full``, everything a reader does at 1280 px in both
    colour modes."""
    url = base + relative
    errors = _listen(page)
    _open(page, url)
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
        check_print(page, relative, report)
        check_downloads(page, base, relative, site, report)
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


def check_phone(page, base: str, relative: str, site: Path, axe: str, report: Report,
                shots: Path) -> None:
    """At 390 px: no sideways scrolling, nothing cut off, verdicts in view, figures legible or
    opening at full size, a focus ring at every Tab stop, sidebars that open and say so,
    explorer text legible, both colour modes (axe-core in each)."""
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
    check_focus(page, relative, report)  # first: Tab starts from the top of a fresh page
    check_scrolling(page, relative, report)
    check_figures(page, base, relative, site, report)
    check_toggles(page, relative, PHONE["width"], report)
    check_colour_modes(page, base, relative, axe, report)
    report.check("console and network", not errors, f"{relative} at 390px: " + "; ".join(errors[:5]))
    if relative in _PHONE_SHOTS:
        _open(page, base + relative)
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / ("phone-" + relative.replace("/", "_")
                                          .removesuffix(".html") + ".png")), full_page=True)


def check_site(site: Path, shots: Path, via: str = "http", only: list[str] | None = None) -> Report:
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
                   if p.name not in SKIP_PAGES and "_static" not in p.parts
                   and (not only or p.relative_to(site).as_posix() in only))
    report = Report(via)
    axe = ensure_axe() if via == "http" else ""
    check_index(site, report)
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
                check_weight(browser, base, relative, report)
                page = contexts["phone"].new_page()
                check_phone(page, base, relative, site, axe, report, shots)
                page.close()
        if via == "http":
            page = contexts["desktop"].new_page()
            check_search(page, base, site, report)
            page.close()
        browser.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--screenshots", type=Path, default=None)
    parser.add_argument("--via", choices=["http", "file"], action="append",
                        help="served or from disk (default: both)")
    parser.add_argument("--page", action="append", help="only these pages (e.g. chapters/intro.html)")
    args = parser.parse_args(argv)
    shots = args.screenshots or args.site.parent / "screenshots"
    failed = False
    for via in args.via or ("http", "file"):
        report = check_site(args.site, shots, via, only=args.page)
        print(f"{via}: {report.checks} browser checks on {report.pages} pages "
              f"({', '.join(f'{k}: {n}' for k, n in sorted(report.kinds.items()))}); "
              f"screenshots in {shots / via}")
        for page, measures in sorted(report.measures.items()):
            print(f"  {page}: " + "; ".join(f"{k} {v}" for k, v in measures.items()))
        for problem in report.problems:
            print("  FAIL", problem)
        failed = failed or bool(report.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
