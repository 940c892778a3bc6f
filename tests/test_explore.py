import itertools
import json
import re

import pytest
from convbook import explore
from convbook.chapters import c01_groups as c01
from convbook.chapters import c02_kernels as c02
from convbook.chapters import c03_inception as c03
from convbook.chapters import c04_bottleneck as c04
from convbook.chapters import c05_residual as c05
from convbook.chapters import c06_separable as c06
from convbook.chapters import c07_shuffle as c07
from convbook.chapters import c08_excitation as c08


def test_grouped_conv_view_numbers():
    view = c01.grouped_conv(in_channels=16, out_channels=16, groups=4, kernel_size=3)
    assert view.figure is not None and view.error is None
    assert view.numbers["parameters (counted on the module)"] == f"{3 * 3 * 4 * 16:,}"
    assert view.numbers["input channels each output sees"] == "4 of 16"
    assert view.numbers["saving against groups = 1"] == "4.00×"


def test_invalid_choice_becomes_a_message_not_a_traceback():
    view = explore.safe_view(c01.grouped_conv, groups=3)
    assert view.figure is None
    assert "groups=3" in view.error and "values that work" in view.error
    assert "convbook-error" in view.numbers_html()


def test_receptive_stack_view():
    view = c02.receptive_stack(kernel_size=3, depth=2, dilation=2)
    assert view.numbers["receptive field"] == "9×9 pixels"
    assert view.numbers["pixels actually read"].startswith("25 of 81")


def test_static_frames_cover_every_combination():
    controls = {"groups": [1, 2, 3], "kernel_size": [1, 3]}
    page = explore.static_html(c01.grouped_conv, controls)
    payload = re.search(r'<script type="application/json" class="convbook-frames">(.*?)</script>',
                        page, re.DOTALL).group(1)
    frames = json.loads(payload.replace("<\\/", "</"))["frames"]
    # keys are the positions of the chosen values in each control's list
    assert set(frames) == {f"{g}|{k}" for g in range(3) for k in range(2)}
    assert frames["2|0"]["img"] is None and "values that work" in frames["2|0"]["numbers"]  # g=3
    assert frames["1|1"]["img"] and "1,152" in frames["1|1"]["numbers"]  # g=2, k=3: 3*3*8*16
    assert frames["0|0"]["numbers"] != frames["1|0"]["numbers"]
    assert page.count('type="radio"') == 5  # three and two values: groups of buttons
    assert frames["1|1"]["alt"].endswith("for groups (g) = 2, kernel size (k) = 3")


def test_controls_fit_their_values_and_speak_in_words():
    page = explore.static_html(c01.grouped_conv, {"groups": [1, 2, 4, 8], "kernel_size": [1, 3]},
                               words={"kernel_size": "kernel size (k)"})
    assert page.count('type="range"') == 1 and 'aria-valuetext="groups (g): 4"' in page
    assert "<legend>kernel size (k)</legend>" in page
    check = explore.static_html(c03.inception_cost, {"reduce": [False, True]})
    assert 'type="checkbox"' in check and 'type="range"' not in check


def test_identical_frames_are_stored_once_as_files(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVBOOK_FRAMES", str(tmp_path))
    page = explore.static_html(c01.grouped_conv, {"groups": [2, 2, 4], "kernel_size": [3]})
    data = json.loads(re.search(r'class="convbook-frames">(.*?)</script>', page,
                                re.DOTALL).group(1).replace("<\\/", "</"))
    # two distinct pictures, each with its phone version (two panels side by side: too wide)
    assert len(data["frames"]) == 3 and len(data["images"]) == 4 == len(list(tmp_path.glob("*.png")))
    assert data["frames"]["0|0"]["img"] == data["frames"]["1|0"]["img"] != data["frames"]["2|0"]["img"]
    assert data["frames"]["0|0"]["narrow"]["img"] == data["frames"]["1|0"]["narrow"]["img"]
    assert all(src.startswith("_static/frames/") for src in data["images"].values())
    assert "base64" not in page
    assert all(frame["font"] > 5 for frame in data["frames"].values())


def test_static_frames_have_a_ceiling():
    with pytest.raises(ValueError, match="too many frames"):
        explore.static_html(c01.grouped_conv, {"groups": [1] * 9, "kernel_size": [1] * 9})


def test_static_frames_take_booleans():
    page = explore.static_html(c03.inception_cost, {"reduce": [False, True]})
    payload = re.search(r'class="convbook-frames">(.*?)</script>', page, re.DOTALL).group(1)
    data = json.loads(payload.replace("<\\/", "</"))
    assert data["options"]["reduce"] == [False, True] and set(data["frames"]) == {"0", "1"}


def test_live_widget_survives_invalid_choices():
    box = explore.live_widget(c01.grouped_conv, {"groups": [1, 3, 4]})
    slider = box.children[0].children[0]
    slider.value = 3  # invalid for 16 channels: shows a message, raises nothing
    slider.value = 4
    assert slider.value == 4


def test_chapter_3_to_5_explorers():
    naive = c03.inception_cost()
    reduced = c03.inception_cost(reduce=True)
    assert naive.numbers["output channels"] == "416" and reduced.numbers["output channels"] == "256"
    bottleneck = c04.bottleneck_cost(reduction=4)
    assert bottleneck.numbers["bottleneck weights"] == "69,632"
    assert bottleneck.numbers["ratio"] == "8.47× fewer"
    assert "reduction" in explore.safe_view(c04.bottleneck_cost, reduction=512).error
    depth = c05.gradient_depth(depth=14, norm=False)
    assert set(depth.numbers) == {"first / last layer, plain", "first / last layer, residual"}


def test_chapter_6_to_8_explorers():
    sep = c06.separable_cost(channels=64, kernel_size=3)
    assert sep.numbers["ratio (measured)"] == sep.numbers["1/C + 1/k² (formula)"] == "0.1267"
    walled = c07.shuffle_connectivity(groups=4, shuffle=False)
    mixed = c07.shuffle_connectivity(groups=4, shuffle=True)
    assert walled.numbers["input channels each output sees"] == "4 of 16"
    assert mixed.numbers["input channels each output sees"] == "16 of 16"
    import torch

    weights = [torch.rand(6, 4), torch.rand(6, 8)]
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    view = c08.se_weights(image_class="b", block=2, weights=weights, labels=labels,
                          classes=("a", "b", "c"))
    assert view.numbers["class"] == "b" and view.numbers["channels"] == "8"
    assert "test image 1 (b)" in view.figure.axes[0].get_title()  # the first image of class b
    assert "between 1 and 2" in explore.safe_view(c08.se_weights, block=3, weights=weights,
                                                  labels=labels).error
    assert "one of a, b, c" in explore.safe_view(c08.se_weights, image_class="z", weights=weights,
                                                 labels=labels, classes=("a", "b", "c")).error


def test_any_failure_becomes_a_message_and_leaks_no_figure():
    import matplotlib.pyplot as plt

    def broken(size=1):
        plt.figure()
        return 1 / (size - 1)

    before = len(plt.get_fignums())
    view = explore.safe_view(broken, size=1)
    assert view.error and "ZeroDivisionError" in view.error and view.figure is None
    assert len(plt.get_fignums()) == before


def test_numpy_options_are_accepted():
    import numpy as np

    page = explore.static_html(c01.grouped_conv, {"groups": np.array([1, 2])})
    assert "convbook-explorer" in page


def test_an_explorer_may_take_a_labels_argument_of_its_own(monkeypatch):
    """``labels`` passes through to the explorer (chapter 8's class labels), never taken as
    the controls' names."""
    import torch

    monkeypatch.setenv("CONVBOOK_STATIC", "1")
    weights = [torch.rand(6, 4)]
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    page = explore.static_html(c08.se_weights, {"image_class": ["a", "b"], "block": [1]},
                               weights=weights, labels=labels, classes=("a", "b", "c"))
    assert "test image of class" in page and "convbook-error" not in page


def test_static_frames_leave_inline_figures_working(monkeypatch):
    """Rendering the frames must not reset matplotlib's backend (rc_context would), or every
    figure after an explorer silently vanishes from the page."""
    import matplotlib

    before = matplotlib.rcParams["backend"]
    explore.static_html(c01.grouped_conv, {"groups": [1, 2]})
    assert matplotlib.rcParams["backend"] == before
    assert matplotlib.rcParams["figure.max_open_warning"] != 0


# ---------------------------------------------------------------- phones, ticks, downloads

def _payload(page: str) -> dict:
    found = re.search(r'class="convbook-frames">(.*?)</script>', page, re.DOTALL).group(1)
    return json.loads(found.replace("<\\/", "</"))


def _drawn_tick_labels(axis) -> list:
    low, high = sorted(axis.get_view_interval())
    return [tick.label1 for tick, loc in zip(axis.get_major_ticks(), axis.get_majorticklocs())
            if low * (1 - 1e-9) <= loc <= high * (1 + 1e-9) and tick.label1.get_text()]


def _overprinted(figure) -> list[str]:
    """Pairs of tick labels of one axis whose boxes overlap in the rendered figure."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    clashes = []
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in _drawn_tick_labels(axis)]
            clashes += [f"{a}/{b}" for (a, box_a), (b, box_b) in itertools.pairwise(boxes)
                        if box_a.overlaps(box_b)]
    return clashes


def _gradient_like(span: float):
    """A chapter-5-like frame: one value per layer, on the book's log axis, ``span`` decades."""
    import matplotlib.pyplot as plt
    from convbook.viz.style import log_ticks

    figure, ax = plt.subplots(figsize=(5.2, 3.3))
    layers = range(1, 8)
    ax.plot(layers, [10 ** (-2 - span * (k - 1) / 6) for k in layers], marker="o")
    log_ticks(ax)
    figure.tight_layout()
    return figure


def test_tick_labels_never_overprint_when_frames_share_a_range():
    """Chapter 5's case: a frame whose own data span one decade, sharing its range with a frame
    spanning six, printed "1e-05/5e-06" on top of each other (1, 2 and 5 of every decade)."""
    import matplotlib.pyplot as plt

    narrow, wide = _gradient_like(0.8), _gradient_like(6.0)
    assert not _overprinted(narrow)
    labels = [t.get_text() for t in _drawn_tick_labels(narrow.axes[0].yaxis)]
    assert "0.002" in labels and "0.005" in labels  # a narrow range alone keeps 1, 2 and 5
    explore.share_y_axes([narrow, wide])
    assert narrow.axes[0].get_ylim() == wide.axes[0].get_ylim()
    assert not _overprinted(narrow) and not _overprinted(wide)
    assert ([t.get_text() for t in _drawn_tick_labels(narrow.axes[0].yaxis)]
            == [t.get_text() for t in _drawn_tick_labels(wide.axes[0].yaxis)])
    plt.close("all")


def test_linear_frames_share_one_set_of_ticks():
    import matplotlib.pyplot as plt

    figures = []
    for top in (1.0, 800.0):
        figure, ax = plt.subplots(figsize=(4, 1.6))  # short: few labels fit
        ax.plot([0, 1], [0, top])
        figures.append(figure)
    explore.share_y_axes(figures)
    ticks = [list(f.axes[0].get_yticks()) for f in figures]
    assert ticks[0] == ticks[1] and not any(_overprinted(f) for f in figures)
    plt.close("all")


def test_a_frame_too_wide_for_a_phone_gets_a_phone_version():
    """Chapter 1's two panels side by side (about 690 px) cannot shrink to a phone's box with
    legible text: the phone version stacks them and fits, text still at least 9.5 px."""
    data = _payload(explore.static_html(c01.grouped_conv, {"groups": [4]}))
    frame = data["frames"]["0"]
    assert frame["fit"] > explore.PHONE_BOX_PX
    phone = frame["narrow"]
    image = _decoded(data["images"][phone["img"]])
    width, height = image.size
    assert explore.legible_width(phone["font"], width) <= explore.PHONE_BOX_PX
    assert height > width  # the panels went into one column
    assert phone["font"] >= 9 * explore.FRAME_DPI / 72


def _decoded(src: str):
    import base64
    import io

    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))


def test_a_frame_that_fits_a_phone_has_no_phone_version():
    page = explore.static_html(c07.shuffle_connectivity, {"groups": [4], "shuffle": [True]})
    assert all("narrow" not in frame for frame in _payload(page)["frames"].values())


def test_the_phone_version_puts_a_legend_under_its_axes():
    """Chapter 8's legend sat to the right of the axes; on a phone it read "its c / all i /
    this". Under the axes, the whole legend is inside the picture, below the x axis."""
    import matplotlib.pyplot as plt
    import torch
    from convbook.viz.style import narrow_layout, natural_width

    weights = [torch.rand(6, 32)]
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    figure = c08.se_weights(image_class="b", block=1, weights=weights, labels=labels,
                            classes=("a", "b", "c")).figure
    narrow_layout(figure, explore.PHONE_BOX_PX, dpi=explore.FRAME_DPI)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    ax = figure.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    axis = ax.xaxis.get_tightbbox(renderer)
    picture = figure.get_tightbbox(renderer).transformed(figure.dpi_scale_trans)
    assert legend.y1 <= axis.y0  # under the x axis's labels
    assert picture.x0 - 1 <= legend.x0 and legend.x1 <= picture.x1 + 1
    assert natural_width(figure, explore.FRAME_DPI) <= 1.01 * explore.PHONE_BOX_PX * 13.9 / 9.5
    plt.close(figure)


def test_the_picture_scrolls_inside_a_labelled_focusable_region():
    page = explore.static_html(c01.grouped_conv, {"groups": [1, 2]},
                               caption="Wires and matrix. Computed from a module.")
    region = re.search(r'<div class="convbook-figure-area convbook-scroll"([^>]*)>\s*'
                       r'<img class="convbook-frame"', page)
    assert region, "the frame is not inside the scrolling region"
    attributes = region.group(1)
    assert 'role="region"' in attributes and 'tabindex="0"' in attributes
    assert 'aria-label="Wires and matrix, scrolls sideways"' in attributes
    assert "overflow-x:auto" in attributes


def test_a_downloaded_notebook_says_how_to_run_its_explorer(monkeypatch):
    """The website's .ipynb holds this output, whose pictures stay on the website and whose
    script Jupyter does not run for an untrusted notebook: without the script, only the note
    shows (the controls are hidden); the script swaps them on the website, and back if the
    pictures cannot load outside it. A front end without HTML gets the note as text."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: shown.append((a, k)))
    monkeypatch.setenv("CONVBOOK_STATIC", "1")
    explore.show(c01.grouped_conv, {"groups": [1, 2]})
    (bundle,), options = shown[0]
    assert options == {"raw": True} and bundle["text/plain"] == explore.OFFLINE_NOTE
    page = bundle["text/html"]
    assert re.search(r'<p class="convbook-explorer-note">[^<]*live when the notebook runs', page)
    # a value: JupyterLab's sanitizer drops attributes left empty (a bare ``hidden``)
    assert '<div class="convbook-explorer-body" hidden="hidden">' in page
    body = page.index("convbook-explorer-body")
    assert all(page.index(part) > body for part in ('class="convbook-controls"',
                                                     'class="convbook-figure-area',
                                                     'class="convbook-frame-numbers"'))
    script = page[page.rindex("<script>"):]
    assert "body.hidden = false" in script and "note.hidden = true" in script
    assert 'addEventListener("error"' in script and "note.hidden = false" in script


def test_the_kernel_size_changes_the_connectivity_picture():
    """Chapter 1's slider over k used to change only the numbers: each connection is now drawn
    as its k x k weights."""
    import io

    import matplotlib.pyplot as plt
    import torch
    from convbook.viz.connectivity import plot_connectivity

    matrix = torch.eye(4, dtype=torch.bool)
    pictures = []
    for k in (1, 3, 7):
        figure = plot_connectivity(matrix, kernel_size=k)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        pictures.append(buffer.getvalue())
        assert f"{k}×{k} weights" in figure.axes[0].get_xlabel()
        plt.close(figure)
    assert len(set(pictures)) == 3
