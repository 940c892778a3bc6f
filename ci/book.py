"""Execute every chapter with papermill into a staging copy of the book, then build the website.

    python ci/book.py --profile auto          # what `make book` runs
    python ci/book.py --profile smoke         # what the tests run

Steps: copy the book's sources to _build/staging; run each chapter notebook there with
papermill (parameter ``profile``), with CONVBOOK_STATIC=1 (explorers render their frames) and
CONVBOOK_PROGRESS=0 (no progress bars in the pages), CONVBOOK_FRAMES (explorer frames stored
once each as files, served from the site's _static/frames) and
CONVBOOK_VERDICTS=_build/verdicts.json (every verdict with its numbers, profile, seeds and
device), CONVBOOK_RESULTS=_build/results.json (every trained network's accuracy and cost) and
CONVBOOK_CHAPTER (the notebook running), which the reflections chapter reads; hide papermill's
injected parameters cell; record each chapter's time in
_build/timings-<profile>.json, split into kernel start-up, training, cache loads, latency
timing, explorer frames and the other cells (figures, tables, readings), with each training
run listed (``convbook.timing`` adds them up inside the kernels); then ``jupyter-book build`` the staging copy with execution off
and warnings as errors, into _build/html.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK_FILES = ("_config.yml", "_toc.yml", "ci/site_ext.py")
BOOK_DIRS = ("chapters", "ci/site_static")  # the site's stylesheets, script, icons and template
FRAMES_DIR = "_explorer_frames"  # explorer frames, written while the chapters run


def stage(root: Path, staging: Path) -> list[Path]:
    """Copy the book's sources into ``staging``; return the chapter notebooks there."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for name in BOOK_FILES:
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, staging / name)
    for name in BOOK_DIRS:
        shutil.copytree(root / name, staging / name,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_build"))
    return sorted((staging / "chapters").glob("*.ipynb"))


@contextlib.contextmanager
def book_environment(cache: Path, verdicts: Path, results: Path, frames: Path, timings: Path):
    """Environment of the kernels papermill starts (they inherit ours); restored afterwards."""
    saved = dict(os.environ)
    os.environ["CONVBOOK_STATIC"] = "1"  # explorers render frames for the static page
    os.environ["CONVBOOK_FRAMES"] = str(frames.resolve())  # ... as files, served from _static
    os.environ["CONVBOOK_PROGRESS"] = "0"  # no progress bars in the pages
    os.environ["CONVBOOK_VERDICTS"] = str(verdicts)  # every verdict, machine-readable
    os.environ["CONVBOOK_RESULTS"] = str(results)  # every trained network, for chapter 11
    os.environ["CONVBOOK_TIMINGS"] = str(timings)  # seconds by kind, for the timings file
    os.environ.setdefault("CONVBOOK_CACHE", str(cache))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def execute(notebooks: list[Path], profile: str, parts: Path) -> dict[str, dict]:
    """Run each notebook in place with papermill; return where each chapter's time went."""
    import papermill

    timings = {}
    for notebook in notebooks:
        start = time.perf_counter()
        print(f"executing {notebook.name} (profile {profile})", flush=True)
        os.environ["CONVBOOK_CHAPTER"] = notebook.stem  # the kernel inherits it: tags records
        papermill.execute_notebook(
            str(notebook), str(notebook), parameters={"profile": profile},
            cwd=str(notebook.parent), kernel_name="python3", progress_bar=False,
        )
        wall = time.perf_counter() - start
        hide_injected_parameters(notebook)
        timings[notebook.stem] = breakdown(notebook, wall, parts)
        print(f"  {wall:.1f} s", flush=True)
    return timings


def breakdown(notebook: Path, wall: float, parts: Path) -> dict:
    """A chapter's wall time split: kernel start-up (and papermill's own work) is the wall
    time its cells did not use; the cells' time holds what the kernel measured by kind
    (training, cache loads, latency, explorer frames), and the rest is figures, tables and
    readings."""
    import nbformat
    from convbook import records, timing

    book = nbformat.read(notebook, as_version=4)
    cells = sum(cell.metadata.get("papermill", {}).get("duration") or 0.0 for cell in book.cells)
    measured = records.load(parts).get(notebook.stem, {})
    seconds = measured.get("seconds", {})
    out = {"seconds": round(wall, 1), "kernel start-up": round(wall - cells, 1)}
    for kind in timing.KINDS:
        out[kind] = round(seconds.get(kind, 0.0), 1)
    out["other cells (figures, tables, readings)"] = round(
        cells - sum(seconds.get(kind, 0.0) for kind in timing.KINDS), 1)
    out["runs"] = measured.get("runs", [])
    return out


def summary(timings: dict[str, dict]) -> str:
    """The timings as a table: one row per chapter, one column per part."""
    from convbook import timing

    columns = ["seconds", "kernel start-up", *timing.KINDS, "other cells (figures, tables, readings)"]
    short = ["total", "start-up", *timing.KINDS, "other cells"]
    lines = [f"{'chapter':<22}" + "".join(f"{c:>17}" for c in short)]
    for stem, row in timings.items():
        lines.append(f"{stem:<22}" + "".join(f"{row[c]:>17.1f}" for c in columns))
    lines.append(f"{'all':<22}" + "".join(f"{sum(r[c] for r in timings.values()):>17.1f}"
                                         for c in columns))
    return "\n".join(lines)


def hide_injected_parameters(notebook: Path) -> None:
    """Keep papermill's injected "# Parameters" cell off the page (it stays in the notebook)."""
    import nbformat

    book = nbformat.read(notebook, as_version=4)
    for cell in book.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(book, notebook)


def build(staging: Path, output: Path) -> None:
    """jupyter-book build with warnings as errors; the site lands in ``output``/_build/html."""
    command = ["jupyter-book", "build", str(staging), "--path-output", str(output),
               "-W", "-n", "--keep-going"]
    executable = Path(sys.executable).parent / "jupyter-book"
    if executable.exists():
        command[0] = str(executable)
    subprocess.run(command, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="auto", choices=["auto", "smoke", "book", "full"])
    parser.add_argument("--output", type=Path, default=ROOT,
                        help="folder that receives _build/ (default: the repository)")
    parser.add_argument("--no-build", action="store_true", help="execute only, skip the website")
    args = parser.parse_args(argv)

    build_dir = args.output / "_build"
    staging = build_dir / "staging"
    notebooks = stage(ROOT, staging)
    verdicts = build_dir / "verdicts.json"
    results = build_dir / "results.json"
    parts = build_dir / "timing-parts.json"  # what the kernels measured, by kind
    for record in (verdicts, results, parts):
        record.unlink(missing_ok=True)  # this build's records only
    frames = staging / FRAMES_DIR / "frames"  # site_ext serves FRAMES_DIR as _static
    with book_environment(cache=build_dir / "cache", verdicts=verdicts, results=results,
                          frames=frames, timings=parts):
        timings = execute(notebooks, args.profile, parts)
    (build_dir / f"timings-{args.profile}.json").write_text(json.dumps(timings, indent=2))
    print(f"where the time went (s), also in {build_dir / f'timings-{args.profile}.json'}:")
    print(summary(timings))
    if not args.no_build:
        build(staging, args.output)
        print(f"website: {build_dir / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
