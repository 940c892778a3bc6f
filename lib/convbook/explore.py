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
import math
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from convbook import measure
from convbook.blocks import BottleneckConv, Inception, NaiveInception
from convbook.blocks.validate import check_groups, check_positive
from convbook.errors import ConfigError
from convbook.receptive import Layer, receptive_fields, sampled_offsets
from convbook.viz.connectivity import connectivity, plot_connectivity, plot_wiring
from convbook.viz.receptive import plot_fields_on_image

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


def safe_view(explorer: Callable[..., View], **params) -> View:
    """Call the explorer; a bad combination becomes a View holding the message, not a traceback."""
    try:
        return explorer(**params)
    except (ConfigError, ValueError) as exc:
        return View(error=str(exc))


# ---------------------------------------------------------------- the explorers


def grouped_conv(in_channels: int = 16, out_channels: int = 16, groups: int = 4,
                 kernel_size: int = 3, size: int = 32) -> View:
    """Chapter 1: a k x k convolution split into ``groups`` -> its wiring, parameters and MACs."""
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("size", size)):
        check_positive(name, value)
    check_groups(in_channels, out_channels, groups)
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                     groups=groups, bias=False)
    matrix = connectivity(conv, in_channels)
    params = measure.count_params(conv)
    macs = measure.count_macs(conv, (in_channels, size, size))
    dense = measure.conv2d_params(in_channels, out_channels, kernel_size)
    figure, (left, right) = plt.subplots(1, 2, figsize=(7, 3.4))
    plot_wiring(matrix, groups, ax=left)
    left.set_title(f"groups = {groups}")
    plot_connectivity(matrix, ax=right, title="which inputs each output sees")
    figure.tight_layout()
    numbers = {
        "parameters (counted on the module)": f"{params:,}",
        "parameters (k²·C_in/g·C_out)": f"{measure.conv2d_params(in_channels, out_channels, kernel_size, groups):,}",
        f"MACs on a {size}×{size} map": f"{macs:,}",
        "saving against groups = 1": f"{dense / params:.2f}×",
        "input channels each output sees": f"{int(matrix[0].sum())} of {in_channels}",
    }
    return View(figure, numbers)


def receptive_stack(kernel_size: int = 3, depth: int = 2, dilation: int = 1, stride: int = 1,
                    image: torch.Tensor | None = None) -> View:
    """Chapter 2: ``depth`` conv layers of one kernel size -> their receptive field on an image."""
    check_positive("depth", depth)
    layer = Layer(kernel_size, stride=stride, dilation=dilation)
    fields = receptive_fields([layer] * depth)
    final = fields[-1]
    offsets = sampled_offsets([layer] * depth)
    if image is None:
        image = torch.full((3, 32, 32), 200, dtype=torch.uint8)
    centre = offsets[-1] // 2
    taps = [(dy - centre, dx - centre) for dy in offsets for dx in offsets]
    figure, ax = plt.subplots(figsize=(4.2, 4.4))
    shown = [("layer 1", fields[0].size)] + ([(f"layer {depth}", final.size)] if depth > 1 else [])
    plot_fields_on_image(image, shown, taps=taps, ax=ax)
    read = len(offsets) ** 2
    numbers = {
        "receptive field": f"{final.size}×{final.size} pixels",
        "pixels actually read": f"{read:,} of {final.size**2:,} ({100 * read / final.size**2:.0f}%)",
        "step between output units (jump)": f"{final.jump} px",
        "weights per input-output channel pair": f"{depth}·{kernel_size}² = {depth * kernel_size**2}",
    }
    return View(figure, numbers)


def inception_cost(width_3x3: int = 128, width_5x5: int = 32, reduce: bool = False,
                   in_channels: int = 192, width_1x1: int = 64, pool_proj: int = 32,
                   size: int = 28) -> View:
    """Chapter 3: an Inception module's branches -> parameters, MACs and output channels,
    beside one 3x3 convolution of the same output width. ``reduce`` adds GoogLeNet's 1x1
    reductions (to 96 and 16 channels, and ``pool_proj`` after the pool)."""
    for name, value in (("width_3x3", width_3x3), ("width_5x5", width_5x5),
                        ("in_channels", in_channels), ("width_1x1", width_1x1)):
        check_positive(name, value)
    if reduce:
        module = Inception(in_channels, width_1x1, 96, width_3x3, 16, width_5x5, pool_proj,
                           kernel_size_5x5=5)
        labels = ["1x1", "1x1 -> 3x3", "1x1 -> 5x5", "pool -> 1x1"]
    else:
        module = NaiveInception(in_channels, (width_1x1, width_3x3, width_5x5), (1, 3, 5))
        labels = ["1x1", "3x3", "5x5", "pool"]
    branches = list(module.children())
    params = [measure.count_params(b) for b in branches]
    single = nn.Conv2d(in_channels, module.out_channels, 3, padding=1, bias=False)
    figure, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.bar(labels, params, color="#3b6ea5")
    ax.axhline(measure.count_params(single), color="#e07b39", linestyle="--",
               label=f"one 3x3 conv, {in_channels} -> {module.out_channels}")
    ax.set_ylabel("parameters")
    ax.set_title("reduced Inception module" if reduce else "naive Inception module")
    ax.legend(fontsize=9)
    figure.tight_layout()
    numbers = {
        "output channels": f"{module.out_channels}",
        "parameters": f"{sum(params):,}",
        f"MACs on a {size}×{size} map": f"{measure.count_macs(module, (in_channels, size, size)):,}",
        "one 3×3 conv of the same width": f"{measure.count_params(single):,} parameters",
    }
    return View(figure, numbers)


def bottleneck_cost(reduction: int = 4, kernel_size: int = 3, channels: int = 256,
                    size: int = 56) -> View:
    """Chapter 4: a 1x1 -> k x k -> 1x1 bottleneck at ``channels / reduction`` inside against
    one k x k convolution -> weights per layer, totals and MACs."""
    check_positive("reduction", reduction)
    mid = channels // reduction
    if mid < 1:
        raise ConfigError(f"reduction={reduction} leaves no channels of {channels}; "
                          f"use at most {channels}")
    direct = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, bias=False)
    stack = BottleneckConv(channels, mid, channels, kernel_size, norm=False)
    per_layer = [measure.count_params(layer) for layer in stack]
    figure, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.bar([f"1x1 {channels}->{mid}", f"{kernel_size}x{kernel_size} {mid}->{mid}",
            f"1x1 {mid}->{channels}"], per_layer, color="#3b6ea5", label="bottleneck layers")
    ax.axhline(measure.count_params(direct), color="#e07b39", linestyle="--",
               label=f"one {kernel_size}x{kernel_size}, {channels}->{channels}")
    ax.set_yscale("log")
    ax.set_ylabel("weights (log scale)")
    ax.legend(fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    figure.tight_layout()
    total, full = sum(per_layer), measure.count_params(direct)
    numbers = {
        "bottleneck weights": f"{total:,}",
        f"one {kernel_size}×{kernel_size} layer": f"{full:,}",
        "ratio": f"{full / total:.2f}× fewer" if total < full else f"{total / full:.2f}× more",
        f"MACs on a {size}×{size} map": f"{measure.count_macs(stack, (channels, size, size)):,} "
                                      f"against {measure.count_macs(direct, (channels, size, size)):,}",
    }
    return View(figure, numbers)


def gradient_depth(depth: int = 20, norm: bool = True, width: int = 8, seed: int = 0) -> View:
    """Chapter 5: plain against residual CIFAR networks of ``depth`` at initialisation ->
    the RMS gradient reaching each conv layer on one batch of random images."""
    from convbook.gradients import first_to_last_ratio, layer_gradient_norms
    from convbook.nets import CifarResNet
    from convbook.viz.curves import plot_layer_norms

    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (64,), generator=generator)
    series = {}
    for name, skip in (("plain", False), ("residual", True)):
        torch.manual_seed(seed)
        model = CifarResNet(depth, width, skip=skip, norm=norm)
        series[name] = layer_gradient_norms(model, (images, labels), batches=1)
    figure, ax = plt.subplots(figsize=(5.2, 3.3))
    plot_layer_norms(series, ax=ax)
    ax.set_title(f"depth {depth}, {'with' if norm else 'without'} batch norm, at initialisation")
    figure.tight_layout()
    numbers = {f"first / last layer, {name}": f"{first_to_last_ratio(values):.2g}"
               for name, values in series.items()}
    return View(figure, numbers)


def separable_cost(channels: int = 64, kernel_size: int = 3, size: int = 32) -> View:
    """Chapter 6: a standard k x k convolution (C -> C) against depthwise + pointwise."""
    from convbook.blocks.separable import DepthwiseSeparable

    check_positive("channels", channels)
    check_positive("kernel_size", kernel_size)
    standard = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, bias=False)
    depthwise, pointwise = (unit[0] for unit in DepthwiseSeparable(channels, channels, kernel_size))
    counts = [measure.count_params(m) for m in (standard, depthwise, pointwise)]
    figure, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.bar(["standard", "depthwise", "pointwise"], counts, color=["#e07b39", "#3b6ea5", "#3b6ea5"])
    ax.set_yscale("log")
    ax.set_ylabel("weights (log scale)")
    ax.set_title(f"{kernel_size}x{kernel_size}, {channels} -> {channels} channels")
    figure.tight_layout()
    separable = counts[1] + counts[2]
    numbers = {
        "standard weights": f"{counts[0]:,}",
        "separable weights (depthwise + pointwise)": f"{counts[1]:,} + {counts[2]:,} = {separable:,}",
        "ratio (measured)": f"{separable / counts[0]:.4f}",
        "1/C + 1/k² (formula)": f"{float(Fraction(1, channels) + Fraction(1, kernel_size**2)):.4f}",
        f"MACs on {size}×{size}": f"{separable * size * size:,} against {counts[0] * size * size:,}",
    }
    return View(figure, numbers)


def shuffle_connectivity(groups: int = 4, shuffle: bool = True, layers: int = 2,
                         channels: int = 16) -> View:
    """Chapter 7: ``layers`` grouped 1x1 convolutions, with or without a channel shuffle between
    them -> which input channels each final output channel depends on."""
    from convbook.blocks.shuffle import ChannelShuffle
    from convbook.viz.connectivity import connectivity, plot_connectivity

    check_groups(channels, channels, groups)
    check_positive("layers", layers)
    stack: list[nn.Module] = []
    for i in range(layers):
        stack.append(nn.Conv2d(channels, channels, 1, groups=groups, bias=False))
        if shuffle and i < layers - 1:
            stack.append(ChannelShuffle(groups))
    matrix = connectivity(nn.Sequential(*stack), channels)
    figure, ax = plt.subplots(figsize=(3.8, 3.8))
    plot_connectivity(matrix, ax=ax, title=f"{layers} grouped layers, "
                                           f"{'with' if shuffle else 'no'} shuffle")
    figure.tight_layout()
    seen = matrix.sum(dim=1)
    numbers = {
        "input channels each output sees": f"{int(seen.min())}–{int(seen.max())} of {channels}"
        if seen.min() != seen.max() else f"{int(seen[0])} of {channels}",
        "groups": str(groups),
    }
    return View(figure, numbers)


def se_weights(image: int = 0, block: int = 1, weights: list[torch.Tensor] | None = None,
               labels: torch.Tensor | None = None, classes: tuple[str, ...] = ()) -> View:
    """Chapter 8: the channel weights SE block ``block`` gives test image ``image``, beside the
    mean weights of that image's class and of all images (``weights`` from
    ``convbook.excitation.collect``)."""
    if weights is None or labels is None:
        raise ConfigError("se_weights needs the weights collected from a trained SE network "
                          "(convbook.excitation.collect) and the images' labels")
    if not 1 <= block <= len(weights):
        raise ConfigError(f"block must be between 1 and {len(weights)}, got {block}")
    w = weights[block - 1]
    if not 0 <= image < len(w):
        raise ConfigError(f"image must be between 0 and {len(w) - 1}, got {image}")
    label = int(labels[image])
    same_class = w[labels.cpu() == label].mean(dim=0)
    figure, ax = plt.subplots(figsize=(6, 3.1))
    xs = range(w.shape[1])
    ax.bar(xs, w[image].numpy(), color="#3b6ea5", label="this image")
    ax.plot(xs, same_class.numpy(), color="#e07b39", marker=".", label="its class, mean")
    ax.plot(xs, w.mean(dim=0).numpy(), color="#555555", linestyle="--", label="all images, mean")
    ax.set_ylim(0, 1)
    ax.set_xlabel("channel")
    ax.set_ylabel("SE weight")
    name = classes[label] if label < len(classes) else str(label)
    ax.set_title(f"block {block}, test image {image} ({name})")
    ax.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    distance = float((w[image] - same_class).abs().mean())
    numbers = {"class": name, "channels": str(w.shape[1]),
               "mean |weight − class mean|": f"{distance:.3f}",
               "mean |class mean − overall mean|": f"{float((same_class - w.mean(dim=0)).abs().mean()):.3f}"}
    return View(figure, numbers)


# ---------------------------------------------------------------- showing them


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
    the picture shows; ``fixed`` passes the rest (an image, say). One line per chapter: ``explore.show(explore.grouped_conv, {...})``.
    """
    from IPython.display import HTML, display

    for name, options in controls.items():
        if not options:
            raise ConfigError(f"control {name!r} needs at least one value")
    if static_mode():
        display(HTML(static_html(explorer, controls, caption, **fixed)))
    else:
        display(live_widget(explorer, controls, **fixed))
        if caption:
            display(HTML(f"<p><em>{html.escape(caption)}</em></p>"))
