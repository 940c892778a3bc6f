"""The chapters as readers run them: in JupyterLab, on Colab's packages alone, and edited.

Each test reuses the run cache of the smoke build (``built_book``), so training is mostly
loaded, not repeated.
"""

import os

import nbformat
import pytest
from conftest import ROOT, load_ci_script

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
live_check = load_ci_script("live_check")
colab_check = load_ci_script("colab_check")
check_site = load_ci_script("check_site")


@pytest.fixture
def book_cache(built_book, monkeypatch):
    """The smoke build's run cache and CI's data, for kernels started by these tests."""
    monkeypatch.setenv("CONVBOOK_CACHE", str(built_book / "cache"))
    return built_book / "cache"


def test_markdown_cells_hold_no_markup_a_live_notebook_shows_raw():
    """JupyterLab and Colab render Markdown, not MyST: no glue roles or directives."""
    for path in CHAPTERS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                for markup in live_check.RAW_MARKUP:
                    assert markup not in cell.source, f"{path.name}: {cell.source[:80]!r}"


def test_every_chapter_runs_in_jupyterlab_with_readings_and_a_live_explorer(book_cache):
    """All eleven chapters, opened in JupyterLab in headless Chromium and run top to bottom in
    smoke: no error, no raw markup, readings and the filled one-minute box shown, and the
    explorer's figure and numbers change when a slider is moved with the keyboard."""
    if check_site.find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Chromium for the JupyterLab checks: apt-get install chromium")
        pytest.skip("no Chromium here: apt-get install chromium (or set CHROMIUM)")
    reports = live_check.check_live(CHAPTERS, "smoke", shots=ROOT / "_build" / "screenshots")
    assert len(reports) == len(CHAPTERS)
    assert all(r.ok for r in reports), "\n".join(r.line() for r in reports if not r.ok)
    # every chapter's explorer has a slider (chapter 11's census explorer included)
    assert sum(r.explorer_moved is True for r in reports) >= 10, [r.line() for r in reports]


def test_every_chapter_runs_with_only_the_packages_colab_has(book_cache):
    results = colab_check.check_colab(CHAPTERS, "smoke")
    assert set(results) == {p.stem for p in CHAPTERS}
    for name, summary in results.items():
        assert not summary["errors"], f"{name}: {summary['errors']}"
        assert summary["readings"] >= 3 and summary["box"], f"{name}: {summary}"


# A visible value of each experiment, edited as a reader would, and what must follow it: in
# the readings and verdicts shown (Markdown outputs), the new value's words.
EDITS = {
    "05-residual": ("depths = setup.pick(smoke=(8, 14), book=(8, 20), full=(8, 20, 32, 56))",
                    "depths = (8, 20)",
                    ["from 8 to 20 layers", "20-layer plain minus 8-layer plain"]),
    "01-group-convolution": ("g = 4  #", "g = 2  #",
                             ["In 2 groups at the same width", "every later unit in 2 groups"]),
    "07-shuffle": ("deciding = 4  #", "deciding = 2  #",
                   ["Test accuracy at g = 2, with shuffle minus without"]),
}


@pytest.mark.parametrize("chapter", list(EDITS))
def test_an_edited_experiment_gives_results_readings_and_verdicts_that_follow(
        chapter, book_cache, tmp_path):
    from nbclient import NotebookClient

    old, new, expected = EDITS[chapter]
    path, = live_check.prepare([ROOT / "chapters" / f"{chapter}.ipynb"], tmp_path, "smoke")
    book = nbformat.read(path, as_version=4)
    edited = [cell for cell in book.cells if cell.cell_type == "code" and old in cell.source]
    assert len(edited) == 1, f"{chapter}: the visible value {old!r} is gone"
    edited[0].source = edited[0].source.replace(old, new)
    NotebookClient(book, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = "\n".join(output["data"]["text/markdown"] for cell in book.cells
                      for output in cell.get("outputs", [])
                      if "text/markdown" in output.get("data", {}))
    for words in expected:
        assert words in shown, f"{chapter}: {words!r} not in what the edited chapter shows"
