"""Sphinx hooks for the book's website (loaded through _config.yml's local_extensions).

- The book's stylesheet (ci/site_static/convbook.css: tables, explorers, messages, verdict
  badges, dark mode) is added to every page; the explorers' frames (_explorer_frames/frames,
  written while the chapters run) are served as _static/frames.
- MathJax loads only on pages that hold a formula.
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


def _drop_mathjax_without_math(app, pagename, templatename, context, doctree) -> None:
    """myst-nb asks for every asset on every page; MathJax (about 1 MB) is kept only where
    there is a formula to typeset. Runs after Sphinx's own MathJax handler."""
    scripts = context.get("script_files")
    if scripts and doctree is not None and not _has_math(doctree):
        scripts[:] = [s for s in scripts
                      if "mathjax" not in str(getattr(s, "filename", s) or "").lower()]


def _has_math(doctree) -> bool:
    from docutils import nodes

    return any(True for _ in doctree.findall(lambda n: isinstance(n, (nodes.math, nodes.math_block))))


def _add_static(app) -> None:
    app.config.html_static_path.append(str(Path(__file__).parent / "site_static"))
    frames = Path(app.srcdir) / "_explorer_frames"  # written by the chapters' explorers
    if frames.is_dir():
        app.config.html_static_path.append(str(frames))


def setup(app):
    app.connect("builder-inited", _add_static)
    app.add_css_file("convbook.css")
    # early: Sphinx stops calling html-page-context handlers at the first that returns a value
    app.connect("html-page-context", _drop_duplicate_scripts, priority=100)
    app.connect("html-page-context", _drop_mathjax_without_math, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
