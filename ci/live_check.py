"""Run chapters in a real JupyterLab, as a reader would, and check what the reader sees.

    python ci/live_check.py [--profile smoke] [--chapters 01 05 ...] [--shots DIR]

JupyterLab (the README's `jupyter lab chapters/`) serves a copy of the chapters on loopback;
headless Chromium (Debian's, through Playwright, as ci/check_site.py) opens each notebook,
sets its `profile` parameter, runs every cell (Run > Run All Cells) and waits for the kernel.
Then, for each chapter:

- no cell ended in an error and no cell is left unrun;
- no markdown cell shows MyST markup raw (``{glue``, ``:::{``, a fenced directive);
- the readings, verdicts and the "In one minute" box are rendered text in the outputs (the box
  filled, not waiting);
- its explorer responds in the live kernel: a slider moved with the keyboard (focus, then the
  right arrow) changes the explorer's figure and its numbers.

The kernels inherit this process's environment (CONVBOOK_DATA, CONVBOOK_CACHE), so a run cache
filled by the smoke build makes training instant. Prints one line per chapter; returns a report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ci"))
from check_site import CHROMIUM_FLAGS, find_chromium

PENDING_WORDS = "appears here once the chapter has run"  # book.PENDING, before the run
RAW_MARKUP = ("{glue", ":::{", "```{")


@dataclass
class ChapterReport:
    name: str
    seconds: float = 0.0
    code_cells: int = 0
    unrun: int = 0
    errors: list[str] = field(default_factory=list)
    raw_markup: list[str] = field(default_factory=list)
    readings: int = 0  # Markdown outputs: readings, verdicts, the one-minute box
    box_filled: bool = False
    explorer_moved: bool | None = None  # None: no slider to move
    explorer_note: str = ""

    @property
    def ok(self) -> bool:
        return (not self.errors and not self.unrun and not self.raw_markup and self.readings > 0
                and self.box_filled and self.explorer_moved is not False)

    def line(self) -> str:
        moved = {None: "no slider", True: "explorer moved", False: "explorer did NOT move"}
        status = "ok" if self.ok else "FAILED"
        return (f"{self.name}: {status} in {self.seconds:.0f} s; {self.code_cells} code cells, "
                f"{self.unrun} unrun, {len(self.errors)} errors, {self.readings} rendered "
                f"readings/verdicts, box {'filled' if self.box_filled else 'NOT filled'}, "
                f"{moved[self.explorer_moved]}{self.explorer_note}"
                + (f"; raw markup: {self.raw_markup[:2]}" if self.raw_markup else "")
                + (f"; errors: {self.errors[:1]}" if self.errors else ""))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(chapters: list[Path], folder: Path, profile: str) -> list[Path]:
    """Copy the chapters into ``folder`` with their ``profile`` parameter set, as a reader who
    edits the parameters cell would."""
    import nbformat

    out = []
    for path in chapters:
        book = nbformat.read(path, as_version=4)
        for cell in book.cells:
            if "parameters" in cell.metadata.get("tags", []):
                lines = cell.source.splitlines()
                cell.source = "\n".join(f'profile = "{profile}"' if line.startswith("profile =")
                                        else line for line in lines)
        target = folder / path.name
        nbformat.write(book, target)
        out.append(target)
    return out


@contextlib.contextmanager
def jupyterlab(folder: Path):
    """JupyterLab serving ``folder`` on a free loopback port; yields its base URL and token."""
    port, token = _free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
               "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={folder}", "--expose-app-in-browser",
               "--ServerApp.open_browser=False", "--ServerApp.allow_root=True",
               "--LabApp.news_url=",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(folder / "jupyterlab.log", "w")  # noqa: SIM115 (the server writes it until the end)
    config = folder / ".jupyter-config"
    # every cell in the page (JupyterLab 4 renders only the cells in view by default)
    settings = config / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config),
               JUPYTER_RUNTIME_DIR=str(folder / ".jupyter-runtime"))
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                              cwd=folder)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    raise RuntimeError("JupyterLab did not start; its log:\n"
                                       + (folder / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


_PANEL_JS = """(path) => {
  const app = window.jupyterapp;
  if (!app) return null;
  for (const widget of app.shell.widgets('main')) {
    if (widget.context && widget.context.path === path && widget.content
        && widget.content.model) return widget;
  }
  return null;
}"""

_PROGRESS_JS = """([PENDING, path]) => {
  const panel = (""" + _PANEL_JS + """)(path);
  if (!panel) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.model.cells;
  let code = 0, unrun = 0;
  const errors = [], markdown = [];
  let readings = 0, box = false, pending = false;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type === 'markdown') { markdown.push(cell.sharedModel.getSource()); continue; }
    if (cell.type !== 'code') continue;
    code++;
    if (cell.executionCount === null) unrun++;
    for (const out of cell.outputs.toJSON()) {
      if (out.output_type === 'error') errors.push(out.ename + ': ' + out.evalue);
      const md = out.data && out.data['text/markdown'];
      if (md) {
        const text = Array.isArray(md) ? md.join('') : md;
        readings++;
        if (text.includes('convbook-one-minute')) {
          box = true;
          pending = pending || text.includes(PENDING);
        }
      }
    }
  }
  return {status: kernel ? kernel.status : 'none', code, unrun, errors, markdown, readings,
          box: box && !pending};
}"""

# The first explorer's live widget (a VBox of controls above an Output area): how many
# controls it has, and what it shows now (the figure's data and the numbers' text).
_EXPLORER_JS = """() => {
  const controls = document.querySelector('.jp-OutputArea .widget-vbox .widget-hbox');
  if (!controls) return null;
  const box = controls.closest('.widget-vbox');
  const img = box.querySelector('img');
  const count = controls.querySelectorAll('.noUi-handle, .widget-toggle-buttons, '
      + 'input[type=checkbox]').length;
  return {controls: count, picture: img ? img.src.length + ':' + img.src.slice(-300) : '',
          numbers: box.innerText};
}"""


def _wait(predicate, timeout: float, poll: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(poll)


def run_chapter(page, base: str, token: str, notebook: Path, timeout: float) -> ChapterReport:
    report = ChapterReport(notebook.stem)
    start = time.monotonic()
    # a workspace of its own, reset: only this notebook open, nothing restored from the last
    page.goto(f"{base}/lab/workspaces/{notebook.stem}/tree/{notebook.name}?reset&token={token}")

    def progress() -> dict | None:
        return page.evaluate(_PROGRESS_JS, [PENDING_WORDS, notebook.name])

    ready = _wait(lambda: (progress() or {}).get("status") == "idle", 120)
    if not ready:
        report.errors.append("the notebook or its kernel did not open within 120 s")
        return report
    page.evaluate("""(path) => {
        const panel = (""" + _PANEL_JS + """)(path);
        window.jupyterapp.shell.activateById(panel.id);
        return window.jupyterapp.commands.execute('notebook:run-all-cells');
    }""", notebook.name)
    last = {"state": None, "since": time.monotonic()}

    def finished():
        """Done: the kernel idle with every cell run, or stopped at an error; or idle with
        nothing changing for 20 s (run-all stalled)."""
        state = progress()
        if state is None:
            return None
        if state != last["state"]:
            last["state"], last["since"] = state, time.monotonic()
        idle = state["status"] == "idle"
        if idle and (state["unrun"] == 0 or state["errors"]):
            return state
        if idle and time.monotonic() - last["since"] > 20:
            return state
        return None

    state = _wait(finished, timeout) or progress()
    report.seconds = time.monotonic() - start
    report.code_cells, report.unrun = state["code"], state["unrun"]
    report.errors = state["errors"]
    report.readings, report.box_filled = state["readings"], state["box"]
    report.raw_markup = [text[:80] for text in state["markdown"]
                         if any(markup in text for markup in RAW_MARKUP)]
    shown = page.evaluate("() => Array.from(document.querySelectorAll("
                          "'.jp-MarkdownCell .jp-RenderedMarkdown')).map(e => e.innerText)")
    report.raw_markup += [text[:80] for text in shown if "{glue" in text]
    try:
        check_explorer(page, report, notebook.name)
    except Exception as exc:  # noqa: BLE001 (an unreachable control fails the check)
        report.explorer_moved = False
        report.explorer_note = f" ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    return report


def _settled(page, path: str, timeout: float = 60) -> dict | None:
    """What the explorer shows once the kernel has handled the change: idle on two polls in a
    row half a second apart (a redraw clears its output first, so a state read mid-redraw would
    be a blank, not the new figure)."""
    deadline, idle_polls = time.monotonic() + timeout, 0
    time.sleep(0.5)
    while time.monotonic() < deadline:
        state = page.evaluate(_PROGRESS_JS, [PENDING_WORDS, path])
        idle_polls = idle_polls + 1 if state and state["status"] == "idle" else 0
        if idle_polls >= 2:
            return page.evaluate(_EXPLORER_JS)
        time.sleep(0.5)
    return None


def _operate(page, control) -> None:
    """One keyboard step on a control: a slider's right arrow, the next of a group of buttons
    (Tab to it, then Space), a check box's Space."""
    control.scroll_into_view_if_needed(timeout=10_000)
    if control.evaluate("e => e.classList.contains('widget-toggle-buttons')"):
        button = control.locator("button:not(.mod-active)").first
        button.focus()
        page.keyboard.press("Space")
        return
    control.focus()
    page.keyboard.press("Space" if control.evaluate("e => e.type === 'checkbox'")
                        else "ArrowRight")


def check_explorer(page, report: ChapterReport, path: str) -> None:
    """Operate each control of the chapter's explorer once with the keyboard: each must change
    the explorer's figure or its numbers (the live kernel redraws them), and together they must
    change both."""
    before = page.evaluate(_EXPLORER_JS)
    if before is None or not before["controls"]:
        report.explorer_moved = None
        return
    box = page.locator(".jp-OutputArea .widget-vbox").filter(
        has=page.locator(".widget-hbox")).first
    controls = box.locator(".widget-hbox").first.locator(
        ".noUi-handle, .widget-toggle-buttons, input[type=checkbox]")
    picture = numbers = False
    dead = []
    for i in range(controls.count()):
        current = page.evaluate(_EXPLORER_JS)
        _operate(page, controls.nth(i))
        after = _settled(page, path)
        if not after or after == current:
            dead.append(i + 1)
            continue
        picture |= after["picture"] != current["picture"]
        numbers |= after["numbers"] != current["numbers"]
    report.explorer_moved = not dead and picture and numbers
    report.explorer_note = f" ({controls.count()} controls" + (
        f"; control {dead} changed nothing" if dead else "") + (
        "" if picture else "; the figure never changed") + (
        "" if numbers else "; the numbers never changed") + ")"


def check_live(chapters: list[Path], profile: str = "smoke", timeout: float = 300,
               shots: Path | None = None) -> list[ChapterReport]:
    """Run ``chapters`` in JupyterLab under ``profile``; one report per chapter."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("no Chromium: apt-get install chromium (or set CHROMIUM)")
    reports = []
    with tempfile.TemporaryDirectory(prefix="convbook-live-") as tmp:
        folder = Path(tmp)
        notebooks = prepare(chapters, folder, profile)
        with jupyterlab(folder) as (base, token), sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            for notebook in notebooks:
                page = context.new_page()
                report = run_chapter(page, base, token, notebook, timeout)
                if shots is not None:
                    shots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(shots / f"live-{notebook.stem}.png"))
                page.evaluate("() => window.jupyterapp.commands.execute("
                              "'kernelmenu:shutdown')")
                page.close()
                print(report.line(), flush=True)
                reports.append(report)
            browser.close()
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", choices=["smoke", "book", "full", "auto"])
    parser.add_argument("--chapters", nargs="*", default=[],
                        help="chapter numbers or names (default: all)")
    parser.add_argument("--shots", type=Path, default=ROOT / "_build" / "screenshots")
    args = parser.parse_args(argv)
    chapters = sorted((ROOT / "chapters").glob("*.ipynb"))
    if args.chapters:
        chapters = [p for p in chapters if any(p.stem.startswith(c) for c in args.chapters)]
    reports = check_live(chapters, args.profile, shots=args.shots)
    failed = [r for r in reports if not r.ok]
    print(json.dumps({"chapters": len(reports), "failed": len(failed),
                      "explorers moved": sum(r.explorer_moved is True for r in reports),
                      "readings": sum(r.readings for r in reports)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
