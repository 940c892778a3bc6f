"""Explorers: pure functions from parameters to a ``View`` (a figure and its numbers).

``show`` puts one on screen. In a live notebook (Jupyter, Colab) ipywidgets drive it. When the
book is built (the pipeline sets CONVBOOK_STATIC=1), ``show`` renders every combination of the
main parameters once and writes a small HTML control that switches among those frames, so the
explorer still responds on the static website, with no kernel behind it. A frame too wide to
stay legible on a phone gets a phone version too (``viz.style.narrow_layout``: panels in one
column, legends underneath), which the page shows where its box is narrow; whatever is still
wider than its box scrolls sideways inside a labelled region. The same output, opened in
Jupyter (the website's .ipynb download), says how to get the live explorer instead of showing
pictures that stayed on the website.
"""

from __future__ import annotations

import base64
import hashlib
import html
import inspect
import io
import itertools
import json
import logging
import math
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import AutoLocator, LogLocator, MaxNLocator

from convbook import timing
from convbook.errors import ConfigError
from convbook.viz.style import LEGIBLE_PX, LegibleLogLocator, narrow_layout

MAX_STATIC_FRAMES = 64
FRAME_DPI = 100
PHONE_BOX_PX = 320  # the picture's box on a 390-px-wide phone (324 px in the book's theme)
OFFLINE_NOTE = ("This explorer is live when the notebook runs: run the chapter's cells down to "
                "this one (in Jupyter, or in Colab through the rocket button on the book's "
                "website) and it draws its picture again for every setting you choose. The "
                "pictures saved here were drawn for the website and stay there.")


@dataclass
class View:
    """What an explorer shows: a figure and named numbers, or an error message instead."""

    figure: Figure | None = None
    numbers: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def numbers_html(self) -> str:
        if self.error:
            return f'<p class="convbook-error">&#9888; {html.escape(self.error)}</p>'
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in self.numbers.items())
        return f'<table class="convbook-numbers">{rows}</table>'


def _plain_option(value):
    """numpy scalars (from np.arange, say) as the Python numbers explorers and JSON expect."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value


def _plain_controls(controls: dict[str, Sequence]) -> dict[str, list]:
    return {name: [_plain_option(v) for v in options] for name, options in controls.items()}


def safe_view(explorer: Callable[..., View], **params) -> View:
    """Call the explorer; whatever goes wrong becomes a View holding a message, never a
    traceback on the page: a bad combination says what would work (ConfigError/ValueError),
    anything else is logged for the developer and shown as one line. Figures the failed call
    left open are closed, so none leaks into the cell's output."""
    before = set(plt.get_fignums())
    try:
        return explorer(**{k: _plain_option(v) for k, v in params.items()})
    except (ConfigError, ValueError) as exc:
        message = str(exc)
    except Exception as exc:
        logging.getLogger("convbook.explore").exception("explorer %s failed with %s",
                                                         getattr(explorer, "__name__", explorer),
                                                         params)
        message = (f"these settings cannot be drawn ({type(exc).__name__}: {exc}); try "
                   f"other values")
    for number in set(plt.get_fignums()) - before:
        plt.close(number)
    return View(error=message)


def static_mode() -> bool:
    """True while the book is being built (no kernel will be there to drive widgets)."""
    return os.environ.get("CONVBOOK_STATIC") == "1"


def _defaults(explorer: Callable, controls: dict[str, Sequence]) -> dict:
    signature = inspect.signature(explorer)
    values = {}
    for name, options in controls.items():
        default = signature.parameters[name].default if name in signature.parameters else None
        values[name] = default if default in options else options[0]
    return values


def labels(**words: str):
    """Name an explorer's controls in words: ``@labels(width_3x3="width of the 3×3 branch")``.
    Controls without a word show their parameter name with underscores as spaces."""
    def attach(explorer):
        explorer.control_labels = dict(words)
        return explorer
    return attach


def _label(explorer: Callable, name: str, given: dict[str, str] | None = None) -> str:
    words = {**getattr(explorer, "control_labels", {}), **(given or {})}
    return words.get(name, name.replace("_", " "))


def _kind(options: list) -> str:
    """The control that fits a set of values: a check box for a boolean, a group of buttons for
    a few values or words, a slider for a range of numbers."""
    if sorted(options, key=str) == [False, True] and all(isinstance(v, bool) for v in options):
        return "checkbox"
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in options)
    return "range" if numeric and len(options) >= 4 else "buttons"


def _text(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def frames_folder() -> Path | None:
    """Where the build stores explorer frames as files ($CONVBOOK_FRAMES; the website serves
    them from ``_static/frames``). None: frames are inlined in the page."""
    folder = os.environ.get("CONVBOOK_FRAMES")
    return Path(folder) if folder else None


def _png(figure: Figure) -> tuple[bytes, float, int]:
    """The figure as PNG bytes, its smallest text's height and its width, in image pixels."""
    sizes = [t.get_fontsize() for t in figure.findobj(Text) if t.get_visible() and t.get_text()]
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FRAME_DPI)
    image = buffer.getvalue()
    width = int.from_bytes(image[16:20], "big")  # the PNG header's IHDR chunk
    return image, min(sizes, default=12) * FRAME_DPI / 72, width


def legible_width(font: float, width: int) -> int:
    """The narrowest a frame can be shown with its smallest text still LEGIBLE_PX tall."""
    return round(width * min(1.0, LEGIBLE_PX / font))


def _frame_images(figure: Figure, images: dict[str, str], phones: dict[str, dict]) -> dict:
    """The frame's picture (stored once) with its smallest text and the width below which
    that text gets too small; and, when that width is wider than a phone's box, a phone
    version of it ("narrow"), drawn once per distinct picture (``phones``, by the picture's
    key). Closes the figure."""
    image, font, width = _png(figure)
    key = _store(image, images)
    frame = {"img": key, "font": round(font, 1), "fit": legible_width(font, width)}
    if frame["fit"] > PHONE_BOX_PX and key not in phones:
        narrow_layout(figure, PHONE_BOX_PX, dpi=FRAME_DPI)
        image, font, width = _png(figure)
        phones[key] = ({"img": _store(image, images), "font": round(font, 1)}
                       if legible_width(font, width) < frame["fit"] else {})
    if phones.get(key):
        frame["narrow"] = phones[key]
    plt.close(figure)
    return frame


def _store(image: bytes, images: dict[str, str]) -> str:
    """Keep each distinct image once: a file in the frames folder (the website) or a data URL;
    return its key."""
    key = hashlib.sha256(image).hexdigest()[:16]
    if key not in images:
        folder = frames_folder()
        if folder is None:
            images[key] = "data:image/png;base64," + base64.b64encode(image).decode("ascii")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{key}.png").write_bytes(image)
            images[key] = f"_static/frames/{key}.png"  # from the site's root
    return key


_FRAMES_SCRIPT = """
(function () {
  var root = document.getElementById("%(id)s");
  var data = JSON.parse(root.querySelector("script.convbook-frames").textContent);
  var body = root.querySelector(".convbook-explorer-body");
  var note = root.querySelector(".convbook-explorer-note");
  var area = root.querySelector(".convbook-figure-area");
  var img = root.querySelector("img.convbook-frame");
  var numbers = root.querySelector("div.convbook-frame-numbers");
  var site = document.documentElement.dataset.content_root;  /* undefined outside the book */
  body.hidden = false;
  note.hidden = true;
  function position(name) {
    var inputs = root.querySelectorAll('input[data-param="' + name + '"]');
    if (inputs[0].type === "checkbox") { return data.options[name].indexOf(inputs[0].checked); }
    if (inputs[0].type === "range") { return Number(inputs[0].value); }
    for (var i = 0; i < inputs.length; i++) { if (inputs[i].checked) { return i; } }
    return 0;
  }
  function picture(frame) {
    /* the phone version where the box is too narrow for the frame's text to stay legible */
    var box = area.clientWidth;
    return frame.narrow && box > 0 && box < frame.fit ? frame.narrow : frame;
  }
  function update() {
    var key = data.names.map(position).join("|");
    var frame = data.frames[key];
    data.names.forEach(function (name, n) {
      var slider = root.querySelector('input[type=range][data-param="' + name + '"]');
      if (slider) {
        var text = String(data.options[name][position(name)]);
        slider.setAttribute("aria-valuetext", data.labels[n] + ": " + text);
        slider.parentNode.querySelector("output").textContent = text;
      }
    });
    if (frame.img) {
      var shown = picture(frame);
      var src = data.images[shown.img];
      src = src.indexOf("data:") === 0 ? src : (site || "") + src;
      if (img.getAttribute("src") !== src) { img.src = src; }
      img.alt = frame.alt;
      img.dataset.minFont = shown.font;
      img.style.display = "";
    } else {
      img.style.display = "none";  /* the area keeps its height: the message sits in it */
    }
    numbers.innerHTML = frame.numbers;
    root.dataset.state = key;
  }
  function mark() {
    area.dataset.overflow = area.scrollWidth > area.clientWidth + 1 ? "yes" : "no";
  }
  img.addEventListener("load", function () {
    /* legible on a phone: never narrower than keeps the smallest text 9.5 px tall */
    img.style.minWidth = Math.min(img.naturalWidth, img.naturalWidth * %(legible)s / Number(img.dataset.minFont)) + "px";
    area.style.minHeight = img.offsetHeight + "px";
    mark();
  });
  img.addEventListener("error", function () {
    if (site === undefined) {  /* a notebook (Jupyter, Colab): the frames stayed on the website */
      body.hidden = true;
      note.hidden = false;
    }
  });
  root.querySelectorAll("input[data-param]").forEach(function (input) {
    input.addEventListener("input", update);
    input.addEventListener("change", update);
  });
  if (window.ResizeObserver) {
    new ResizeObserver(function () { update(); mark(); }).observe(area);
  } else {
    window.addEventListener("resize", function () { update(); mark(); });
  }
  update();
})();
"""


def share_y_axes(figures: list[Figure]) -> None:
    """One y range for the i-th axes of every frame, so that frames compare at a glance (the
    x axis stays: its categories or counts may differ between frames), and one choice of
    ticks for that range that fits every frame's axis: labels never overprint, and flipping
    between frames moves no tick."""
    if not figures or len({len(f.axes) for f in figures}) != 1:
        return
    for index in range(len(figures[0].axes)):
        axes = [f.axes[index] for f in figures]
        if len({a.get_yscale() for a in axes}) != 1 or any(a.images for a in axes):
            continue
        low = min(min(a.get_ylim()) for a in axes)
        high = max(max(a.get_ylim()) for a in axes)
        for a in axes:
            a.set_ylim((high, low) if a.yaxis_inverted() else (low, high))
        _share_ticks(axes)


def _share_ticks(axes: list) -> None:
    """The same tick locator on every one of ``axes``, sized for the shortest of them; only
    where the frames chose ticks automatically (fixed ticks, categories, stay as they are)."""
    room = int(np.clip(min(a.yaxis.get_tick_space() for a in axes), 2, 9))
    locators = [a.yaxis.get_major_locator() for a in axes]
    if all(isinstance(loc, LogLocator) for loc in locators) and axes[0].get_yscale() == "log":
        for a in axes:
            a.yaxis.set_major_locator(LegibleLogLocator(space=room))
    elif all(type(loc) in (AutoLocator, MaxNLocator) for loc in locators):
        integer = any(getattr(loc, "_integer", False) for loc in locators)
        for a in axes:
            a.yaxis.set_major_locator(MaxNLocator(nbins=room, integer=integer,
                                                  steps=[1, 2, 2.5, 5, 10]))


def _control_html(name: str, label: str, options: list, default) -> str:
    """One control: a check box, a group of radio buttons, or a slider over the values."""
    kind = _kind(options)
    index = options.index(default)
    attr = f'data-param="{html.escape(name)}"'
    if kind == "checkbox":
        checked = " checked" if default else ""
        return f'<label class="convbook-check"><input type="checkbox" {attr}{checked}> {html.escape(label)}</label>'
    if kind == "buttons":
        group = f"{name}-{uuid.uuid4().hex[:6]}"
        buttons = "".join(
            f'<label><input type="radio" name="{group}" value="{i}" {attr}'
            f'{" checked" if i == index else ""}> {html.escape(_text(v))}</label>'
            for i, v in enumerate(options))
        return (f'<fieldset class="convbook-buttons"><legend>{html.escape(label)}</legend>'
                f"{buttons}</fieldset>")
    return (f'<label class="convbook-slider">{html.escape(label)} <input type="range" min="0" '
            f'max="{len(options) - 1}" step="1" value="{index}" {attr} '
            f'aria-valuetext="{html.escape(label)}: {html.escape(_text(default))}">'
            f"<output>{html.escape(_text(default))}</output></label>")


def static_html(explorer: Callable[..., View], controls: dict[str, Sequence],
                caption: str = "", words: dict[str, str] | None = None, **fixed) -> str:
    """Every combination of ``controls`` rendered once, with controls that switch among them.
    Identical pictures are stored once; on the website they are files loaded on demand."""
    with timing.timed(timing.FRAMES, explorer=getattr(explorer, "__name__", explorer)):
        return _static_html(explorer, controls, caption, words, **fixed)


def _static_html(explorer: Callable[..., View], controls: dict[str, Sequence],
                 caption: str, words: dict[str, str] | None, **fixed) -> str:
    controls = _plain_controls(controls)
    names = list(controls)
    count = math.prod(len(controls[n]) for n in names)
    if count > MAX_STATIC_FRAMES:
        raise ConfigError(
            f"{count} combinations is too many frames for a static page; keep it to "
            f"{MAX_STATIC_FRAMES} or fewer by offering fewer values per control"
        )
    names_in_words = [_label(explorer, n, words) for n in names]
    title = caption.split(". ")[0].rstrip(".") if caption else "Explorer"
    images: dict[str, str] = {}
    phones: dict[str, dict] = {}  # each distinct picture's phone version
    frames = {}  # keyed by the options' positions, which the page's controls hold
    views = {}
    # every frame stays open until the y ranges are shared; say nothing of it. (Only this key is
    # set and restored: rc_context would also restore the backend and stop inline figures.)
    warn_at = matplotlib.rcParams["figure.max_open_warning"]
    matplotlib.rcParams["figure.max_open_warning"] = 0
    try:
        for positions in itertools.product(*(range(len(controls[n])) for n in names)):
            combo = [controls[n][i] for n, i in zip(names, positions)]
            views[positions] = combo, safe_view(explorer, **dict(zip(names, combo)), **fixed)
    finally:
        matplotlib.rcParams["figure.max_open_warning"] = warn_at
    share_y_axes([view.figure for _, view in views.values() if view.figure is not None])
    for positions, (combo, view) in views.items():
        frame = {"img": None, "numbers": view.numbers_html()}
        if view.figure is not None:
            settings = ", ".join(f"{w} = {_text(v)}" for w, v in zip(names_in_words, combo))
            frame.update(_frame_images(view.figure, images, phones), alt=f"{title}, for {settings}")
        frames["|".join(map(str, positions))] = frame
    defaults = _defaults(explorer, controls)
    element_id = f"convbook-explorer-{uuid.uuid4().hex[:8]}"
    inputs = "".join(_control_html(n, w, controls[n], defaults[n])
                     for n, w in zip(names, names_in_words))
    payload = json.dumps({"names": names, "labels": names_in_words, "images": images, "frames": frames,
                          "options": {n: list(controls[n]) for n in names}})
    payload = payload.replace("</", "<\\/")
    script = _FRAMES_SCRIPT % {"id": element_id, "legible": LEGIBLE_PX}
    region = html.escape(f"{title}, scrolls sideways")
    return (
        f'<div class="convbook-explorer" id="{element_id}">'
        f'<p class="convbook-explorer-note">{html.escape(OFFLINE_NOTE)}</p>'
        f'<div class="convbook-explorer-body" hidden="hidden">'
        f'<div class="convbook-controls">{inputs}</div>'
        f'<div class="convbook-figure-area convbook-scroll" role="region" tabindex="0" '
        f'aria-label="{region}" style="overflow-x:auto">'
        f'<img class="convbook-frame" alt="{html.escape(title)}"></div>'
        f'<div class="convbook-frame-numbers"></div>'
        + (f'<p class="convbook-caption">{html.escape(caption)}</p>' if caption else "") +
        "</div>"
        f'<script type="application/json" class="convbook-frames">{payload}</script>'
        f"<script>{script}</script></div>"
    )


def live_widget(explorer: Callable[..., View], controls: dict[str, Sequence],
                words: dict[str, str] | None = None, **fixed):
    """ipywidgets over ``controls`` (check boxes, button groups or sliders, as the values
    suit); each change redraws the explorer's View."""
    import ipywidgets as widgets
    from IPython.display import HTML, display

    controls = _plain_controls(controls)
    defaults = _defaults(explorer, controls)
    style = {"description_width": "initial"}
    inputs = {}
    for name, options in controls.items():
        label = _label(explorer, name, words)
        kind = _kind(options)
        if kind == "checkbox":
            inputs[name] = widgets.Checkbox(value=defaults[name], description=label, style=style)
        elif kind == "buttons":
            inputs[name] = widgets.ToggleButtons(options=[(_text(v), v) for v in options],
                                                 value=defaults[name], description=label,
                                                 style=style)
        else:
            inputs[name] = widgets.SelectionSlider(options=list(options), value=defaults[name],
                                                   description=label, continuous_update=False,
                                                   style=style)
    output = widgets.Output()

    def redraw(_change=None) -> None:
        view = safe_view(explorer, **{n: w.value for n, w in inputs.items()}, **fixed)
        with output:
            output.clear_output(wait=True)
            if view.figure is not None:
                display(view.figure)
                plt.close(view.figure)
            display(HTML(view.numbers_html()))

    for widget in inputs.values():
        widget.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox(list(inputs.values()),
                                      layout=widgets.Layout(flex_flow="row wrap")), output])


def show(explorer: Callable[..., View], controls: dict[str, Sequence], caption: str = "",
         words: dict[str, str] | None = None, **fixed) -> None:
    """Display an explorer: live sliders in a notebook, precomputed frames in the built book.

    ``controls`` maps each parameter to the values a reader can choose; ``caption`` says what
    the picture shows (its first sentence, with the settings, is each frame's alt text);
    ``words`` names controls in words (see also ``@labels``); ``fixed`` passes the rest (an
    image, say). One line per chapter: ``explore.show(c01.grouped_conv, {...})``.
    """
    from IPython.display import HTML, display

    for name, options in controls.items():
        if not options:
            raise ConfigError(f"control {name!r} needs at least one value")
    controls = _plain_controls(controls)
    if static_mode():
        # text/plain: what a notebook front end without HTML, or a reader of the .ipynb, sees
        display({"text/html": static_html(explorer, controls, caption, words, **fixed),
                 "text/plain": OFFLINE_NOTE}, raw=True)
    else:
        display(live_widget(explorer, controls, words, **fixed))
        if caption:
            display(HTML(f"<p><em>{html.escape(caption)}</em></p>"))
