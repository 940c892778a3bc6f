"""Sphinx hooks for the book's website (loaded through _config.yml's local_extensions).

- The book's stylesheet (ci/site_static/convbook.css: tables, explorers, messages) is added
  to every page.
- Every page gets each inline script once: with jupyter-book 1.0.4, sphinx-thebe's
  configuration script lands twice in each page, and the second copy throws
  "Identifier 'THEBE_JS_URL' has already been declared" in the browser.
"""

from __future__ import annotations

from pathlib import Path


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # the copies differ only in filename None against '': compare what the page gets
        attributes = getattr(script, "attributes", {})
        key = (getattr(script, "filename", script) or "", tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: later handlers (MathJax) still append to this list


def _add_static(app) -> None:
    app.config.html_static_path.append(str(Path(__file__).parent / "site_static"))


def setup(app):
    app.connect("builder-inited", _add_static)
    app.add_css_file("convbook.css")
    # early: Sphinx stops calling html-page-context handlers at the first that returns a value
    app.connect("html-page-context", _drop_duplicate_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
