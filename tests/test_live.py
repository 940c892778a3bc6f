"""The chapters as readers run them: in JupyterLab, and on Colab's packages alone with one
visible value of each experiment edited.

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


def _ratio(a, b, digits: int) -> str:
    from convbook import measure

    return f"{measure.count_params(a) / measure.count_params(b):.{digits}f}×"


def _expect_ch02():
    from convbook import nets

    pair, five = nets.CifarNet(4, blocks_per_stage=2, widen_first=True), nets.CifarNet(4, kernel_size=5)
    return [f"{_ratio(pair, five, 2)} the parameters"]


def _expect_ch04():
    from convbook import nets

    bottleneck, basic = nets.CifarResNet(11, 8, block="bottleneck"), nets.CifarResNet(8, 8)
    return [f"With {_ratio(bottleneck, basic, 2)} the parameters"]


def _expect_ch06():
    from convbook.chapters import c06_separable as c06

    w = c06.widths(12)
    return [f"{w[c06.XCEPTION] / w[c06.STANDARD]:.1f}× as wide as the standard one"]


def _expect_ch08():
    from convbook import measure, nets

    added = (measure.count_params(nets.CifarResNet(14, 6, se_reduction=2))
             - measure.count_params(nets.CifarResNet(14, 6)))
    return [f"The SE blocks add {added:,} parameters"]


# A visible value of each chapter's experiment, edited as a reader would, and what must follow
# it in what the chapter then shows (its Markdown and HTML outputs: readings, verdicts, tables).
EDITS = {
    "01-group-convolution": ("g = 4  #", "g = 2  #", lambda: [
        "In 2 groups at the same width", "every later unit in 2 groups"]),
    "02-small-kernels": ("width = setup.profile.width\nkernel_variants",
                         "width = 4\nkernel_variants", _expect_ch02),
    "03-inception": ("split = (4, 2, 2)", "split = (6, 1, 1)", lambda: ["6/8", "1/8"]),
    "04-bottleneck": ("inner = max(setup.profile.width // 2, 4)", "inner = 8", _expect_ch04),
    "05-residual": ("depths = setup.pick(smoke=(8, 14), book=(8, 20), full=(8, 20, 32, 56))",
                    "depths = (8, 20)",
                    lambda: ["from 8 to 20 layers", "20-layer plain minus 8-layer plain"]),
    "06-separable": ("w = c06.widths(setup.profile.width)", "w = c06.widths(12)", _expect_ch06),
    "07-shuffle": ("deciding = 4  #", "deciding = 2  #",
                   lambda: ["Test accuracy at g = 2, with shuffle minus without"]),
    "08-squeeze-excitation": ("se_width = max(setup.profile.width // 2, 4)", "se_width = 6",
                              _expect_ch08),
    "09-dilated": ('"exponential": (1, 2, 4, 8, 1, 1)', '"exponential": (1, 2, 4, 1, 1, 1)',
                   lambda: ["exponential (field 21)"]),
    "10-deformable": ("smoke=dict(train=256, test_per_scale=32, epochs=1, width=8)",
                      "smoke=dict(train=256, test_per_scale=32, epochs=2, width=8)",
                      lambda: ["; 2 epochs (recipe"]),
    "11-reflections": ("smoke=dict(depth=14, width=4,", "smoke=dict(depth=14, width=6,",
                       lambda: ["14-layer networks at base width 6"]),
}


def test_every_chapter_has_an_edit_test():
    assert set(EDITS) == {p.stem for p in CHAPTERS}


def test_every_chapter_runs_on_colabs_packages_and_follows_an_edit(book_cache):
    """All eleven chapters, each with one visible value of its experiment edited, executed
    with only the packages Colab has and convbook from a wheel: no error, the readings,
    verdicts and the filled one-minute box shown, and the edit's consequence in them."""
    edits = {name: (old, new) for name, (old, new, _) in EDITS.items()}
    results = colab_check.check_colab(CHAPTERS, "smoke", edits=edits)
    assert set(results) == {p.stem for p in CHAPTERS}
    for name, summary in results.items():
        assert not summary["errors"], f"{name}: {summary['errors']}"
        assert summary["readings"] >= 3 and summary["box"], f"{name}: {summary}"
        for words in EDITS[name][2]():
            assert words in summary["shown"], f"{name}: {words!r} not shown after the edit"
