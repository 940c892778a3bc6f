"""The built website in a real browser (headless Chromium through Playwright), offline."""

import os

import pytest
import yaml
from conftest import ROOT, load_ci_script

check_site = load_ci_script("check_site")
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


@pytest.fixture(scope="module", params=["http", "file"])
def site_report(built_book, request):
    """Served on loopback, and opened from disk as a reader without a server would."""
    if check_site.find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Chromium for the browser checks: apt-get install chromium")
        pytest.skip("no Chromium here: apt-get install chromium (or set CHROMIUM) to run these")
    return check_site.check_site(built_book / "html", ROOT / "_build" / "screenshots",
                                 via=request.param)


def test_every_page_passes_the_browser_checks(site_report):
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert site_report.pages == len(toc["chapters"]) + 1  # every page in the toc and the intro
    assert not site_report.problems, "\n".join(site_report.problems)


def test_every_kind_of_check_ran(site_report):
    kinds, pages = site_report.kinds, site_report.pages
    assert kinds["math"] == kinds["images"] == pages
    assert kinds["links"] > 10
    assert kinds["index"] == 1  # the redirect at the site's address has a title
    if site_report.via == "file":  # from disk: the load checks
        assert kinds["console and network"] == pages
        return
    assert kinds["console and network"] == 2 * pages  # desktop and phone
    assert kinds["explorers"] >= 4 * len(CHAPTERS)  # each explorer: 2+ controls, 2 checks each
    assert kinds["colab"] == len(CHAPTERS)
    assert kinds["contrast"] == 2 * pages  # light and dark
    assert kinds["page size"] == kinds["alt text"] == kinds["boilerplate"] == pages
    assert kinds["toggles"] >= 4 * pages  # primary button at both widths: present, opens, closes
    assert kinds["phone"] >= pages + len(CHAPTERS)  # overflow, and each explorer's text size
    assert kinds["badges"] >= 2 * len(CHAPTERS) + 2  # one-minute box and verdicts; intro
    # a phone's first visit: bytes; axe-core, following the system, in light and dark mode;
    # figures undimmed; the colour switch
    assert kinds["weight"] == kinds["scrolling"] == pages
    assert kinds["axe"] == 2 * pages
    assert kinds["colour mode"] == 4 * pages
    assert kinds["focus"] == 3 * pages  # rings, formulas, the header's buttons
    assert kinds["figures"] >= len(CHAPTERS)  # each figure: legible, or opens at full size
    assert kinds["print"] == kinds["downloads"] == len(CHAPTERS)
    assert kinds["search"] == 3


def test_phone_screenshots_show_the_intro_and_two_chapters(site_report):
    if site_report.via == "file":
        return
    shots = sorted(p.name for p in (ROOT / "_build" / "screenshots").glob("phone-*.png"))
    assert len(shots) == len(check_site._PHONE_SHOTS), shots


def test_without_npm_the_accessibility_checks_stop_with_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv("AXE_CORE", raising=False)
    monkeypatch.setattr(check_site, "TOOLS", tmp_path / "tools")
    monkeypatch.setattr(check_site.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match=r"axe-core .* npm is not installed.*AXE_CORE"):
        check_site.ensure_axe()
    monkeypatch.setenv("AXE_CORE", str(tmp_path / "nowhere.js"))
    with pytest.raises(SystemExit, match="not a file"):
        check_site.ensure_axe()


def test_figure_text_size_comes_from_the_png_and_the_book_style(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(2, 1))
    for dpi in (72, 150):
        figure.savefig(tmp_path / f"{dpi}.png", dpi=dpi)
        assert check_site.png_dpi(tmp_path / f"{dpi}.png") == pytest.approx(dpi, abs=0.5)
    plt.close(figure)
    assert check_site.png_dpi(tmp_path / "missing.png") == 100.0
    assert 6 <= check_site.figure_font_pt() <= 14


def test_raw_tex_in_search_snippets_is_recognised():
    assert check_site._RAW_TEX.search(r"a ResNet of \(6n+2\) layers")
    assert check_site._RAW_TEX.search(r"k^2 \cdot C")
    assert not check_site._RAW_TEX.search("a ResNet of 6n+2 layers, k² · C, print('a\\n')")
