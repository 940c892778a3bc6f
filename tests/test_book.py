"""The book as a whole: notebook hygiene, then every chapter executed by papermill in the
``smoke`` profile and the website built with warnings as errors (ci/book.py, as `make book`)."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _notebook(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_chapter_is_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = {entry["file"] for entry in toc["chapters"]}
    assert listed == {f"chapters/{p.stem}" for p in CHAPTERS}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_parameterised(path):
    nb = _notebook(path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        "commit notebooks without outputs"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "profile" in "".join(tagged[0]["source"])
    assert any("convbook" in "".join(c["source"]) for c in code)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_setup_cell_installs_from_the_books_repository(path):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    setup = "".join(_notebook(path)["cells"][1]["source"])
    assert "import convbook" in setup and f"git+{url}" in setup
    assert "--no-deps" in setup  # never replaces Colab's torch


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_code_cells_stay_short(path):
    for cell in _notebook(path)["cells"]:
        if cell["cell_type"] == "code":
            assert len("".join(cell["source"]).splitlines()) <= 30


def test_chapters_execute_cleanly(built_book):
    timings = json.loads((built_book / "timings-smoke.json").read_text())
    assert set(timings) == {p.stem for p in CHAPTERS}
    for path in (built_book / "staging" / "chapters").glob("*.ipynb"):
        for cell in _notebook(path)["cells"]:
            for output in cell.get("outputs", []):
                assert output["output_type"] != "error", f"{path.name}: {output}"
                if output["output_type"] == "stream":
                    assert output["name"] != "stderr", f"{path.name}: {''.join(output['text'])}"


def test_site_has_every_page_with_figures_and_verdicts(built_book):
    html_dir = built_book / "html"
    assert (html_dir / "index.html").exists()
    assert (html_dir / "chapters" / "intro.html").exists()
    for path in CHAPTERS:
        page = (html_dir / "chapters" / f"{path.stem}.html").read_text(encoding="utf-8")
        assert page.count("<img") >= 3, f"{path.stem}: figures missing"
        assert "convbook-explorer" in page, f"{path.stem}: explorer missing"
        claims = re.findall(r"<strong>(C\d+\.\d+): (confirmed|nuanced|refuted)\.</strong>", page)
        assert len(claims) >= 2, f"{path.stem}: verdicts not pasted"
        assert "In one minute" in page
        assert "colab.research.google.com" in page


def test_every_figure_has_a_caption(built_book):
    """A code cell whose output is a picture carries a myst-nb figure caption."""
    for path in (built_book / "staging" / "chapters").glob("*.ipynb"):
        for cell in _notebook(path)["cells"]:
            pictures = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
            if pictures:
                caption = cell["metadata"].get("mystnb", {}).get("figure", {}).get("caption")
                assert caption, f"{path.name}: a figure without a caption: {cell['source'][:80]}"


def test_no_cell_shows_the_same_figure_twice(built_book):
    """A cell ending in a Figure without ';' shows it twice (inline backend and the result)."""
    for path in (built_book / "staging" / "chapters").glob("*.ipynb"):
        for cell in _notebook(path)["cells"]:
            pngs = [o["data"]["image/png"] for o in cell.get("outputs", [])
                    if "image/png" in o.get("data", {})]
            assert len(pngs) == len(set(map(str, pngs))), f"{path.name}: {cell['source'][:60]}"
