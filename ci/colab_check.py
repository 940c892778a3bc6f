"""Run every chapter as Colab would: no book-building packages, convbook from a wheel.

    python ci/colab_check.py [--profile smoke] [--chapters 01 05 ...]

Colab has torch, torchvision, numpy, matplotlib, ipywidgets, ipykernel and tqdm, but none of
myst-nb, papermill, jupyter-book or Sphinx; a chapter's setup cell installs convbook with
``--no-deps``. This script builds a wheel of the checkout, installs it with ``--no-deps`` into
a private folder, and executes each chapter (nbclient) in a kernel whose ``sys.path`` puts that
folder first and which refuses to import the book-building packages (a ``sitecustomize`` that
raises ImportError for them), so any dependence of a chapter on them fails here. A last cell
added to each chapter checks that convbook came from the wheel and that none of those packages
is loaded. Each chapter must run without an error and show its readings, its verdicts and a
filled "In one minute" box. The kernels inherit CONVBOOK_DATA and CONVBOOK_CACHE.

This is not a fresh interpreter (the kernel's other packages are this environment's): it checks
what a Colab reader lacks, not what Colab has in addition.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ci"))
from live_check import PENDING_WORDS, prepare

ABSENT_ON_COLAB = ("myst_nb", "myst_parser", "papermill", "jupyter_book", "sphinx",
                   "jupyter_cache", "jupyterlab", "playwright", "pytest")

_BLOCKER = '''"""Refuse the packages Colab does not have (ci/colab_check.py)."""
import importlib.abc
import sys

ABSENT = %r


class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ImportError(f"No module named {name!r} (not on Colab)", name=name)
        return None


sys.meta_path.insert(0, _Absent())
'''

_CHECK_CELL = '''import sys
import convbook
assert convbook.__file__.startswith(%r), convbook.__file__
loaded = [name for name in %r if name in sys.modules]
assert not loaded, loaded
print("convbook from the wheel; none of the book-building packages loaded")'''


def install_wheel(folder: Path) -> Path:
    """Build a wheel of the checkout and install it with --no-deps into ``folder``/site. The
    package's sources are copied first, so the build leaves nothing in the checkout."""
    wheels, site, source = folder / "wheels", folder / "site", folder / "source"
    for name in ("pyproject.toml", "README.md"):
        source.mkdir(exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "lib", source / "lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(source)], check=True)
    wheel = next(wheels.glob("convbook-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-compile", "--target", str(site), str(wheel)], check=True)
    return site


def summarise(path: Path) -> dict:
    """What an executed chapter shows: errors, Markdown outputs (readings, verdicts, the
    one-minute box, filled or not), and the text of its Markdown and HTML outputs."""
    import nbformat

    book = nbformat.read(path, as_version=4)
    errors, readings, box, shown = [], 0, False, []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                errors.append(f"{output.ename}: {output.evalue}")
            data = output.get("data", {})
            shown += [data[kind] for kind in ("text/markdown", "text/html") if kind in data]
            text = data.get("text/markdown")
            if text:
                readings += 1
                if "convbook-one-minute" in text and PENDING_WORDS not in text:
                    box = True
    return {"errors": errors, "readings": readings, "box": box, "shown": "\n".join(shown)}


def edit(book, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in the one code cell that holds it, as a reader would."""
    cells = [cell for cell in book.cells if cell.cell_type == "code" and old in cell.source]
    if len(cells) != 1:
        raise ValueError(f"{old!r} is in {len(cells)} code cells, not one")
    cells[0].source = cells[0].source.replace(old, new)


def check_colab(chapters: list[Path], profile: str = "smoke", timeout: int = 600,
                edits: dict[str, tuple[str, str]] | None = None) -> dict:
    """Execute ``chapters`` as above; one summary per chapter. ``edits`` (chapter name ->
    (old, new)) changes a visible value of a chapter first, as a reader would."""
    import copy

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    out = {}
    with tempfile.TemporaryDirectory(prefix="convbook-colab-") as tmp:
        folder = Path(tmp)
        site = install_wheel(folder)
        blocker = folder / "blocker"
        blocker.mkdir()
        (blocker / "sitecustomize.py").write_text(_BLOCKER % (ABSENT_ON_COLAB,))
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join([str(blocker), str(site)])
        try:
            for path in prepare(chapters, folder, profile):
                source = nbformat.read(path, as_version=4)
                start = time.monotonic()
                for attempt in (1, 2):
                    book = copy.deepcopy(source)
                    if edits and path.stem in edits:
                        edit(book, *edits[path.stem])
                    book.cells.append(nbformat.v4.new_code_cell(
                        _CHECK_CELL % (str(site), ABSENT_ON_COLAB)))
                    client = NotebookClient(book, timeout=timeout, kernel_name="python3",
                                            allow_errors=True,
                                            resources={"metadata": {"path": str(folder)}})
                    try:
                        client.execute()
                        break
                    except (CellTimeoutError, DeadKernelError) as exc:
                        # Seen in one of three full runs on 2026-12-05 (chapter 1): kernel
                        # and client idle, the cell's reply never arriving (not a slow cell).
                        # Said, and run again in a fresh kernel once; a second hang fails.
                        if attempt == 2:
                            raise
                        print(f"{path.stem}: {type(exc).__name__}: {str(exc)[:300]}; running "
                              f"the chapter once more in a fresh kernel", flush=True)
                nbformat.write(book, path)
                summary = summarise(path)
                summary["seconds"] = round(time.monotonic() - start, 1)
                out[path.stem] = summary
                print(f"{path.stem}: " + json.dumps({k: v for k, v in summary.items()
                                                     if k != "shown"}), flush=True)
        finally:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", choices=["smoke", "book", "full", "auto"])
    parser.add_argument("--chapters", nargs="*", default=[])
    args = parser.parse_args(argv)
    chapters = sorted((ROOT / "chapters").glob("*.ipynb"))
    if args.chapters:
        chapters = [p for p in chapters if any(p.stem.startswith(c) for c in args.chapters)]
    results = check_colab(chapters, args.profile)
    bad = [name for name, s in results.items() if s["errors"] or not s["readings"] or not s["box"]]
    print(json.dumps({"chapters": len(results), "failed": bad}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
