"""Explorers: pure functions from parameters to a ``View`` (a figure and its numbers).

``show`` puts one on screen. In a live notebook (Jupyter, Colab) ipywidgets drive it. When the
book is built (the pipeline sets CONVBOOK_STATIC=1), ``show`` renders every combination of the
main parameters once and writes a small HTML control that switches among those frames, so the
explorer still responds on the static website, with no kernel behind it.
"""

from __future__ import annotations

import base64
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

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from convbook.errors import ConfigError

MAX_STATIC_FRAMES = 64


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


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


_FRAMES_SCRIPT = """
(function () {
  var root = document.getElementById("%(id)s");
  var data = JSON.parse(root.querySelector("script.convbook-frames").textContent);
  var inputs = root.querySelectorAll("input[data-param]");
  var img = root.querySelector("img.convbook-frame");
  var numbers = root.querySelector("div.convbook-frame-numbers");
  function update() {
    var key = [];
    inputs.forEach(function (input) {
      var value = data.options[input.dataset.param][Number(input.value)];
      input.parentNode.querySelector("output").textContent = String(value);
      key.push(input.value);
    });
    var frame = data.frames[key.join("|")];
    img.style.display = frame.img ? "" : "none";
    if (frame.img) { img.src = "data:image/png;base64," + frame.img; }
    numbers.innerHTML = frame.numbers;
    root.dataset.state = key.join("|");
  }
  inputs.forEach(function (input) { input.addEventListener("input", update); });
  update();
})();
"""


def static_html(explorer: Callable[..., View], controls: dict[str, Sequence],
                caption: str = "", **fixed) -> str:
    """Every combination of ``controls`` rendered once, with sliders that switch among them."""
    controls = _plain_controls(controls)
    names = list(controls)
    count = math.prod(len(controls[n]) for n in names)
    if count > MAX_STATIC_FRAMES:
        raise ConfigError(
            f"{count} combinations is too many frames for a static page; keep it to "
            f"{MAX_STATIC_FRAMES} or fewer by offering fewer values per control"
        )
    frames = {}  # keyed by the options' positions, which the page's sliders hold
    for positions in itertools.product(*(range(len(controls[n])) for n in names)):
        combo = [controls[n][i] for n, i in zip(names, positions)]
        view = safe_view(explorer, **dict(zip(names, combo)), **fixed)
        frames["|".join(map(str, positions))] = {
            "img": _png(view.figure) if view.figure is not None else None,
            "numbers": view.numbers_html(),
        }
    defaults = _defaults(explorer, controls)
    element_id = f"convbook-explorer-{uuid.uuid4().hex[:8]}"
    sliders = "".join(
        f'<label>{html.escape(n)} <input type="range" min="0" max="{len(controls[n]) - 1}" '
        f'step="1" value="{list(controls[n]).index(defaults[n])}" data-param="{html.escape(n)}">'
        f"<output></output></label>"
        for n in names
    )
    payload = json.dumps({"options": {n: list(controls[n]) for n in names}, "frames": frames})
    payload = payload.replace("</", "<\\/")
    return (
        f'<div class="convbook-explorer" id="{element_id}">'
        f'<div class="convbook-controls">{sliders}</div>'
        f'<img class="convbook-frame" alt="explorer figure">'
        f'<div class="convbook-frame-numbers"></div>'
        + (f'<p class="convbook-caption">{html.escape(caption)}</p>' if caption else "") +
        f'<script type="application/json" class="convbook-frames">{payload}</script>'
        f"<script>{_FRAMES_SCRIPT % {'id': element_id}}</script></div>"
    )


def live_widget(explorer: Callable[..., View], controls: dict[str, Sequence], **fixed):
    """ipywidgets sliders over ``controls``; each change redraws the explorer's View."""
    import ipywidgets as widgets
    from IPython.display import HTML, display

    controls = _plain_controls(controls)
    defaults = _defaults(explorer, controls)
    sliders = {
        name: widgets.SelectionSlider(options=list(options), value=defaults[name],
                                      description=name, continuous_update=False)
        for name, options in controls.items()
    }
    output = widgets.Output()

    def redraw(_change=None) -> None:
        view = safe_view(explorer, **{n: s.value for n, s in sliders.items()}, **fixed)
        with output:
            output.clear_output(wait=True)
            if view.figure is not None:
                display(view.figure)
                plt.close(view.figure)
            display(HTML(view.numbers_html()))

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox(list(sliders.values()),
                                      layout=widgets.Layout(flex_flow="row wrap")), output])


def show(explorer: Callable[..., View], controls: dict[str, Sequence], caption: str = "",
         **fixed) -> None:
    """Display an explorer: live sliders in a notebook, precomputed frames in the built book.

    ``controls`` maps each parameter to the values a reader can choose; ``caption`` says what
    the picture shows; ``fixed`` passes the rest (an image, say). One line per chapter: ``explore.show(c01.grouped_conv, {...})``.
    """
    from IPython.display import HTML, display

    for name, options in controls.items():
        if not options:
            raise ConfigError(f"control {name!r} needs at least one value")
    controls = _plain_controls(controls)
    if static_mode():
        display(HTML(static_html(explorer, controls, caption, **fixed)))
    else:
        display(live_widget(explorer, controls, **fixed))
        if caption:
            display(HTML(f"<p><em>{html.escape(caption)}</em></p>"))
