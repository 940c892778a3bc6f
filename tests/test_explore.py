import json
import re

import pytest

from convbook import explore


def test_grouped_conv_view_numbers():
    view = explore.grouped_conv(in_channels=16, out_channels=16, groups=4, kernel_size=3)
    assert view.figure is not None and view.error is None
    assert view.numbers["parameters (counted on the module)"] == f"{3 * 3 * 4 * 16:,}"
    assert view.numbers["input channels each output sees"] == "4 of 16"
    assert view.numbers["saving against groups = 1"] == "4.00×"


def test_invalid_choice_becomes_a_message_not_a_traceback():
    view = explore.safe_view(explore.grouped_conv, groups=3)
    assert view.figure is None
    assert "groups=3" in view.error and "values that work" in view.error
    assert "convbook-error" in view.numbers_html()


def test_receptive_stack_view():
    view = explore.receptive_stack(kernel_size=3, depth=2, dilation=2)
    assert view.numbers["receptive field"] == "9×9 pixels"
    assert view.numbers["pixels actually read"].startswith("25 of 81")


def test_static_frames_cover_every_combination():
    controls = {"groups": [1, 2, 3], "kernel_size": [1, 3]}
    page = explore.static_html(explore.grouped_conv, controls)
    payload = re.search(r'<script type="application/json" class="convbook-frames">(.*?)</script>',
                        page, re.S).group(1)
    frames = json.loads(payload.replace("<\\/", "</"))["frames"]
    assert set(frames) == {f"{g}|{k}" for g in (1, 2, 3) for k in (1, 3)}
    assert frames["3|1"]["img"] is None and "values that work" in frames["3|1"]["numbers"]
    assert frames["2|3"]["img"] and "1,152" in frames["2|3"]["numbers"]  # 3*3*8*16
    assert frames["1|1"]["numbers"] != frames["2|1"]["numbers"]
    assert page.count('type="range"') == 2


def test_static_frames_have_a_ceiling():
    with pytest.raises(ValueError, match="too many frames"):
        explore.static_html(explore.grouped_conv, {"groups": [1] * 9, "kernel_size": [1] * 9})


def test_live_widget_survives_invalid_choices():
    box = explore.live_widget(explore.grouped_conv, {"groups": [1, 3, 4]})
    slider = box.children[0].children[0]
    slider.value = 3  # invalid for 16 channels: shows a message, raises nothing
    slider.value = 4
    assert slider.value == 4
