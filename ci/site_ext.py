"""Sphinx hooks for the book's website (loaded through _config.yml's local_extensions).

- The book's stylesheets and script (ci/site_static: convbook.css for tables, explorers,
  messages, verdict badges, focus rings, full-size figures and both colour modes; icons.css for
  the header's icons; convbook.js for the colour switch, the sidebar buttons' state, full-size
  figures, scrolling regions and search snippets) are added to every page; the explorers'
  frames (_explorer_frames/frames, written while the chapters run) are served as _static/frames.
- The page head (ci/site_static/templates/layout.html) loads no Font Awesome (a 1.5 MB script
  that blocks rendering, its stylesheet and three fonts; icons.css draws the icons the site
  shows) and settles "auto" colour mode on the reader's system setting before the first paint.
- MathJax loads only on pages that hold a formula, as its components (TeX in, HTML out, hidden
  MathML for screen readers) without the context menu, which is 0.4 MB and makes every formula
  a Tab stop.
- Every page gets each inline script once: with jupyter-book 1.0.4, sphinx-thebe's
  configuration script lands twice in each page, and the second copy throws
  "Identifier 'THEBE_JS_URL' has already been declared" in the browser.
- index.html (a redirect to the first page) gets a title and a link; the downloadable
  notebooks (_sources) lose papermill's injected parameters cell, so that their parameters say
  what the chapter's own cell says ("auto"), not the profile the website was built with.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

STATIC = Path(__file__).parent / "site_static"
TEMPLATES = STATIC / "templates"
MATHJAX_COMPONENTS = ["input/tex", "output/chtml", "a11y/assistive-mml"]


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
    """myst-nb asks for every asset on every page; MathJax is kept only where there is a
    formula to typeset. Runs after Sphinx's own MathJax handler."""
    scripts = context.get("script_files")
    if scripts and doctree is not None and not _has_math(doctree):
        scripts[:] = [s for s in scripts
                      if "mathjax" not in str(getattr(s, "filename", s) or "").lower()]


def _has_math(doctree) -> bool:
    from docutils import nodes

    return any(True for _ in doctree.findall(lambda n: isinstance(n, (nodes.math, nodes.math_block))))


def _configure(app, config) -> None:
    """The page template, and MathJax as components without its menu."""
    config.templates_path.append(str(TEMPLATES))
    config.mathjax_path = "mathjax/startup.js"  # sphinx-mathjax-offline ships the components
    mathjax = dict(config.mathjax3_config or {})
    mathjax["loader"] = {"load": list(MATHJAX_COMPONENTS)}
    config.mathjax3_config = mathjax


def _add_static(app) -> None:
    # file by file: the templates folder is not for the site
    app.config.html_static_path.extend(str(p) for p in sorted(STATIC.iterdir()) if p.is_file())
    frames = Path(app.srcdir) / "_explorer_frames"  # written by the chapters' explorers
    if frames.is_dir():
        app.config.html_static_path.append(str(frames))


def _write_index(app, exception) -> None:
    """A titled redirect to the first page (sphinx-external-toc writes a bare one only when
    index.html is missing, after this handler)."""
    if exception is not None or app.builder.format != "html":
        return
    first = app.config.master_doc
    title = html.escape(app.config.html_title or app.config.project)
    (Path(app.outdir) / "index.html").write_text(
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n"
        f'<meta http-equiv="Refresh" content="0; url={first}.html">\n'
        f'<link rel="canonical" href="{first}.html">\n</head>\n'
        f'<body><p><a href="{first}.html">{title}</a></p></body>\n</html>\n', encoding="utf8")


def _downloads_say_auto(app, exception) -> None:
    """The notebooks a reader downloads run with the chapter's own parameters (profile "auto"):
    papermill's injected cell, which names the profile this website was built with, is dropped."""
    if exception is not None or app.builder.format != "html":
        return
    for notebook in (Path(app.outdir) / "_sources").rglob("*.ipynb"):
        book = json.loads(notebook.read_text(encoding="utf8"))
        cells = [c for c in book.get("cells", [])
                 if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
        if len(cells) != len(book.get("cells", [])):
            book["cells"] = cells
            notebook.write_text(json.dumps(book, indent=1, ensure_ascii=False) + "\n",
                                encoding="utf8")


def setup(app):
    app.connect("config-inited", _configure)
    app.connect("builder-inited", _add_static)
    app.add_css_file("icons.css")
    app.add_css_file("convbook.css")
    app.add_js_file("convbook.js", loading_method="defer")
    # early: Sphinx stops calling html-page-context handlers at the first that returns a value
    app.connect("html-page-context", _drop_duplicate_scripts, priority=100)
    app.connect("html-page-context", _drop_mathjax_without_math, priority=900)
    app.connect("build-finished", _write_index, priority=400)  # before sphinx-external-toc's
    app.connect("build-finished", _downloads_say_auto)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
