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
    assert len(data["frames"]) == 3 and len(data["images"]) == 2 == len(list(tmp_path.glob("*.png")))
    assert data["frames"]["0|0"]["img"] == data["frames"]["1|0"]["img"] != data["frames"]["2|0"]["img"]
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
