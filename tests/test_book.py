"""The book as a whole: notebook hygiene, then every chapter executed by papermill in the
``smoke`` profile and the website built with warnings as errors (ci/book.py, as `make book`)."""

import json
import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _notebook(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_chapter_is_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = {entry["file"] for entry in toc["chapters"]}
    notebooks = {f"chapters/{p.stem}" for p in CHAPTERS}
    assert notebooks <= listed
    for page in listed - notebooks:
        assert (ROOT / f"{page}.md").exists(), f"{page} is in the table of contents but missing"


def test_label_definitions_are_the_engines():
    """The intro and the recipe page define the labels exactly as convbook.stats does."""
    from convbook import stats

    for page in ("intro.md", "recipe.md"):
        text = " ".join((ROOT / "chapters" / page).read_text(encoding="utf-8").split())
        for label, meaning in stats.LABEL_MEANINGS.items():
            badge = re.escape(f'<span class="convbook-verdict convbook-verdict-{label}"') + \
                r'[^>]*>' + re.escape(f"{label}</span>: {meaning}")
            assert (f"**{label}**: {meaning}" in text or re.search(badge, text)), \
                f"{page}: definition of {label!r}"


def test_recipe_page_states_the_recipe_in_force():
    from convbook import profiles

    text = (ROOT / "chapters" / "recipe.md").read_text(encoding="utf-8")
    book, full = profiles.get("book"), profiles.get("full")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()
            if line.startswith("| ") and line.count("|") >= 5}
    assert f"| {book.batch_size}, {book.epochs} | {full.batch_size}, {full.epochs} |" in \
        rows["batch, epochs"]
    assert f"| {book.recipe.lr}, linear warm-up over the first {book.recipe.warmup:.0%}" in \
        rows["learning rate"].replace(" %", "%")
    assert f"| {full.recipe.lr}, same shape" in rows["learning rate"]
    assert f"| {book.recipe.label_smoothing} |" in rows["label smoothing"]
    assert f"| {book.width} | {full.width} |" in rows["base width"]
    assert f"| {book.seeds} for every comparison" in rows["seeds"]
    assert book.recipe.weight_decay == 5e-4 and "5·10⁻⁴" in rows["weight decay"]


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
    import convbook
    import tomllib

    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert convbook.__version__ == version
    setup = "".join(_notebook(path)["cells"][1]["source"])
    # pinned to the release tag, so a reader gets the library the chapter was written for
    assert "import convbook" in setup and f"git+{url}@v{version}" in setup
    assert "--no-deps" in setup  # never replaces Colab's torch
    # a failed install stops here with one message, not a NameError three cells later
    assert "raise RuntimeError" in setup and "run this cell again" in setup


def test_papermill_reads_every_parameter(tmp_path):
    """papermill finds each name of the parameters cell (no "unknown parameter" warning)."""
    from papermill.inspection import inspect_notebook

    for path in CHAPTERS:
        names = set(inspect_notebook(str(path)))
        assert {"profile", "seed", "seeds", "data_root", "device", "amp"} <= names, path.name


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_code_cells_stay_short(path):
    for cell in _notebook(path)["cells"]:
        if cell["cell_type"] == "code":
            assert len("".join(cell["source"]).splitlines()) <= 30


def test_chapters_execute_cleanly(built_book):
    timings = json.loads((built_book / "timings-smoke.json").read_text())
    assert set(timings) == {p.stem for p in CHAPTERS}
    for stem, parts in timings.items():  # where the time went, adding up to the wall time
        pieces = ["kernel start-up", "training", "cache loads", "latency", "explorer frames",
                  "other cells (figures, tables, readings)"]
        assert abs(sum(parts[p] for p in pieces) - parts["seconds"]) < 0.5, (stem, parts)
        assert parts["kernel start-up"] > 0 and parts["other cells (figures, tables, readings)"] >= 0
    assert any(parts["training"] > 0 and parts["runs"] for parts in timings.values())
    assert any(parts["explorer frames"] > 0 for parts in timings.values())
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
        claims = re.findall(r'<strong>(C\d+\.\d+|Q\d)</strong> <span class="convbook-verdict '
                            r'convbook-verdict-(confirmed|refuted|inconclusive|nuanced)"', page)
        assert len(claims) >= 2, f"{path.stem}: verdicts not pasted"
        assert "In one minute" in page and "convbook-one-minute" in page
        assert "appears here once the chapter has run" not in page, f"{path.stem}: box not filled"
        assert "colab.research.google.com" in page


def test_every_verdict_lands_in_the_verdicts_file(built_book):
    verdicts = json.loads((built_book / "verdicts.json").read_text())
    chapters = {v["chapter"] for v in verdicts.values()}
    assert chapters == {p.stem for p in CHAPTERS}
    for key, v in verdicts.items():
        assert v["label"] in ("confirmed", "refuted", "inconclusive", "nuanced"), key
        assert v["profile"] == "smoke" and v["seeds"] and v["device"] and v["text"], key
        assert v["precision"].endswith(f"on {v['device']}"), key  # e.g. "bfloat16 autocast on cpu"
        assert set(v["versions"]) == {"torch", "torchvision", "convbook"}, key


def test_trained_networks_land_in_the_results_file(built_book):
    """Every chapter that trains through experiments.compare records its networks, and the
    reflections chapter (run last) draws them instead of saying the records are missing."""
    results = json.loads((built_book / "results.json").read_text())
    chapters = {e["chapter"] for e in results.values()}
    assert {"01-group-convolution", "05-residual", "11-reflections"} <= chapters
    for key, entry in results.items():
        assert entry["macs"] > 0 and entry["params"] > 0, key
        assert 0 <= entry["test_accuracy"] <= 1 and entry["profile"] == "smoke", key
        assert entry["precision"] and entry["versions"]["torchvision"], key
    page = (built_book / "html" / "chapters" / "11-reflections.html").read_text()
    assert "reads the records of a whole-book build" not in page
    assert page.count('class="convbook-verdict ') > 40  # the table of every verdict


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


def test_every_figure_on_the_website_has_alt_text(built_book):
    """Each figure a chapter draws carries alt text in its cell (mystnb.image.alt)."""
    total = 0
    for path in sorted((built_book / "staging" / "chapters").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        figures = 0
        for cell in notebook.cells:
            images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
            if images and "remove-cell" not in cell.metadata.get("tags", []):
                figures += 1
                alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
                assert len(alt) > 20, f"{path.name}: a figure without alt text: {cell.source[:80]}"
        assert figures >= 1, f"{path.name}: no figure drawn (inline figures lost?)"
        total += figures
    assert total >= 2 * len(CHAPTERS), f"{total} figures in the whole book"
