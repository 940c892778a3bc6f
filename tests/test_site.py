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


def test_phone_screenshots_show_the_intro_and_two_chapters(site_report):
    if site_report.via == "file":
        return
    shots = sorted(p.name for p in (ROOT / "_build" / "screenshots").glob("phone-*.png"))
    assert len(shots) == len(check_site._PHONE_SHOTS), shots
