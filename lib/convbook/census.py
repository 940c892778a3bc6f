"""An architecture census: where a network keeps its parameters and spends its MACs.

``count`` runs a model once on one image and sorts every ``nn.Conv2d`` and ``nn.Linear`` into a
kind (``KINDS``): dense k x k, 1x1 (pointwise, including a Linear applied at every position of
a feature map, as ConvNeXt does), grouped, depthwise, fully connected (a Linear on (N, C)
vectors) and "other" (norms, other layers, MACs the hooks did not see). MACs are measured by
forward hooks on those layers and checked against ``measure.count_macs``; channel shuffles are
counted in the same pass by watching for a transpose of the group and channel axes of a 5-D
tensor, whatever function does it.

``torchvision_census`` counts the landmark ImageNet networks of ``TORCHVISION_MODELS`` from
torchvision's definitions with random weights (nothing is downloaded); ``census_table`` shows
them side by side and ``recipe_ingredients`` says which of the efficient-CNN ingredients each
one uses.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from convbook.errors import ConfigError
from convbook.measure import _device_of, _eval_mode, count_macs, count_params
from convbook.tables import Table

KINDS = ("dense k×k", "1×1", "grouped", "depthwise", "fully connected", "other")

# (label, torchvision builder name, year of the paper on arXiv; AlexNet's was not on arXiv)
TORCHVISION_MODELS = (
    ("AlexNet", "alexnet", 2012),
    ("VGG-16", "vgg16", 2014),
    ("GoogLeNet", "googlenet", 2014),
    ("ResNet-50", "resnet50", 2015),
    ("ResNeXt-50 32×4d", "resnext50_32x4d", 2016),
    ("MobileNetV2", "mobilenet_v2", 2018),
    ("ShuffleNetV2 ×1.0", "shufflenet_v2_x1_0", 2018),
    ("MobileNetV3-Large", "mobilenet_v3_large", 2019),
    ("EfficientNet-B0", "efficientnet_b0", 2019),
    ("RegNetY-400MF", "regnet_y_400mf", 2020),
    ("ConvNeXt-T", "convnext_tiny", 2022),
)

# Builder arguments beyond weights=None: GoogLeNet's auxiliary heads only run in training, and
# its scipy-based initialisation is slow and irrelevant to counting.
_BUILD_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False}}


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"unknown layer kind {kind!r}; the kinds are {', '.join(KINDS)}")
    return kind


def _share(part: int, total: int) -> float:
    return part / total if total else 0.0


@dataclass
class Census:
    """Parameters and MACs per layer kind (``KINDS``, "other" included) of one model on one
    image of ``input_size``; ``narrowing_1x1_macs`` is the part of the 1×1 MACs in layers with
    fewer output than input channels; ``shuffles`` counts channel shuffles in one pass."""

    name: str
    year: int | None
    params: dict[str, int]
    macs: dict[str, int]
    narrowing_1x1_macs: int
    shuffles: int
    input_size: tuple[int, int, int] = (3, 224, 224)
    grouped_1x1_macs: int = 0  # the part of "grouped" in 1×1 layers (ShuffleNet's kind)

    @property
    def total_params(self) -> int:
        return sum(self.params.values())

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())

    def param_share(self, kind: str) -> float:
        """Fraction (0 to 1) of all parameters that are in layers of ``kind``."""
        return _share(self.params[_check_kind(kind)], self.total_params)

    def mac_share(self, kind: str) -> float:
        """Fraction (0 to 1) of all MACs that layers of ``kind`` do."""
        return _share(self.macs[_check_kind(kind)], self.total_macs)

    def uses(self, kind: str, min_mac_share: float = 0.0) -> bool:
        """Whether layers of ``kind`` do any MACs at all, and at least ``min_mac_share`` of
        them."""
        _check_fraction("min_mac_share", min_mac_share)
        return self.macs[_check_kind(kind)] > 0 and self.mac_share(kind) >= min_mac_share


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{name} must be a fraction from 0 to 1, got {value!r}; "
                          f"for 5% write 0.05")
    return value


def _image_shape(input_size) -> tuple[int, int, int]:
    try:
        shape = tuple(input_size)
    except TypeError:
        shape = ()
    if len(shape) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1
                              for s in shape):
        raise ConfigError(f"input_size must be (channels, height, width) with positive "
                          f"integers, got {input_size!r}; a census counts one image, "
                          f"e.g. (3, 224, 224) for ImageNet")
    return shape


def conv2d_kind(conv: nn.Conv2d) -> str:
    """Kind of a convolution: depthwise (groups == in_channels > 1), grouped (1 < groups <
    in_channels), 1×1 (dense pointwise) or dense k×k (any larger kernel, groups 1)."""
    if not isinstance(conv, nn.Conv2d):
        raise ConfigError(f"conv2d_kind takes an nn.Conv2d, got {type(conv).__name__}")
    if conv.groups > 1:
        return "depthwise" if conv.groups == conv.in_channels else "grouped"
    return "1×1" if tuple(conv.kernel_size) == (1, 1) else "dense k×k"


def linear_kind(output_dims: int) -> str:
    """Kind of a Linear layer from the number of dimensions of what it returns: on a feature
    map ((N, H, W, C), more than 2 dimensions) it is a 1×1 convolution at every position; on
    (N, C) vectors it is fully connected."""
    if isinstance(output_dims, bool) or not isinstance(output_dims, int) or output_dims < 2:
        raise ConfigError(f"output_dims is the number of dimensions of a Linear layer's output "
                          f"(2 for N x C, 4 on a feature map), got {output_dims!r}")
    return "1×1" if output_dims > 2 else "fully connected"


def _layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    """MACs of one call: one multiply-add per weight that touches each output element."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * (module.in_channels // module.groups) * kh * kw
    return output.numel() * module.in_features


def _narrowing(module: nn.Module) -> bool:
    if isinstance(module, nn.Conv2d):
        return module.out_channels < module.in_channels
    return module.out_features < module.in_features


class ShuffleCounter(TorchFunctionMode):
    """Counts channel shuffles while active: a transpose, swap or permutation of a 5-D tensor
    that exchanges two neighbouring axes among 1..4 and nothing else: the group and
    channel-per-group axes of (N, C, H, W) viewed as (N, g, C/g, H, W), or of channels_last's
    (N, H, W, g, C/g). Recognised by what the call does, not by the function's name."""

    _SWAPS = frozenset({torch.transpose, torch.Tensor.transpose, torch.swapaxes,
                        torch.Tensor.swapaxes, torch.swapdims, torch.Tensor.swapdims})
    _PERMUTES = frozenset({torch.permute, torch.Tensor.permute})

    def __init__(self) -> None:
        super().__init__()
        self.shuffles = 0

    @staticmethod
    def _swapped_axes(func, args, kwargs) -> tuple[int, ...] | None:
        if func in ShuffleCounter._SWAPS:
            return tuple(args[1:3]) or tuple(kwargs.get(k) for k in ("dim0", "dim1"))
        if func in ShuffleCounter._PERMUTES:
            dims = args[1:] or (kwargs.get("dims"),)
            if len(dims) == 1 and isinstance(dims[0], (tuple, list, torch.Size)):
                dims = tuple(dims[0])
            if len(dims) != 5 or any(not isinstance(d, int) for d in dims):
                return None
            dims = [d % 5 for d in dims]
            return tuple(i for i, d in enumerate(dims) if d != i)
        return None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensor = args[0] if args else kwargs.get("input")
        if isinstance(tensor, torch.Tensor) and tensor.dim() == 5:
            axes = self._swapped_axes(func, args, kwargs)
            if axes and len(axes) == 2 and all(isinstance(a, int) for a in axes):
                low, high = sorted(a % 5 for a in axes)
                if low >= 1 and high == low + 1:
                    self.shuffles += 1
        return func(*args, **kwargs)


def count(model: nn.Module, input_size: tuple[int, int, int] = (3, 224, 224), name: str = "",
          year: int | None = None) -> Census:
    """Census of ``model`` on one image of ``input_size`` (C, H, W): parameters and MACs per
    layer kind, narrowing 1×1 MACs and channel shuffles, from one forward pass (eval mode, no
    grad) with hooks on every Conv2d and Linear. MACs that ``measure.count_macs`` sees
    outside those layers are "other"; parameters outside them (norms, scales) are too.
    ``name`` defaults to the model's class name."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"count needs a model instance (an nn.Module), got {model!r}; for a "
                          f"torchvision model build it first: "
                          f"torchvision.models.get_model('resnet50', weights=None)")
    shape = _image_shape(input_size)
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise ConfigError(f"year must be a whole number such as 2015, or None, got {year!r}")

    kinds: dict[nn.Module, str] = {}  # each hooked layer's kind, as it was called
    macs = dict.fromkeys(KINDS, 0)
    narrowing = grouped_1x1 = 0

    def record(module, inputs, output):
        nonlocal narrowing, grouped_1x1
        kind = (conv2d_kind(module) if isinstance(module, nn.Conv2d)
                else linear_kind(output.dim()))
        kinds.setdefault(module, kind)
        n = _layer_macs(module, output)
        macs[kind] += n
        if kind == "1×1" and _narrowing(module):
            narrowing += n
        if kind == "grouped" and tuple(module.kernel_size) == (1, 1):
            grouped_1x1 += n

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    hooks = [m.register_forward_hook(record) for m in layers]
    counter = ShuffleCounter()
    x = torch.zeros((1, *shape), device=_device_of(model))
    try:
        with _eval_mode(model), counter:
            model(x)
    except RuntimeError as err:
        raise ConfigError(f"the model could not run on one image of size {shape}: {err}; "
                          f"pass the (channels, height, width) it expects") from err
    finally:
        for hook in hooks:
            hook.remove()

    params = dict.fromkeys(KINDS, 0)
    seen: set[int] = set()  # a weight shared by two layers counts once, like count_params
    for module in layers:
        # A layer the pass never called keeps its natural kind: a Linear is fully connected.
        kind = kinds.get(module) or (conv2d_kind(module) if isinstance(module, nn.Conv2d)
                                     else "fully connected")
        for p in module.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                params[kind] += p.numel()
    params["other"] = count_params(model) - sum(params.values())
    macs["other"] = max(0, count_macs(model, shape) - sum(macs.values()))
    return Census(name=name or type(model).__name__, year=year, params=params, macs=macs,
                  narrowing_1x1_macs=narrowing, shuffles=counter.shuffles, input_size=shape,
                  grouped_1x1_macs=grouped_1x1)


def _builder_names(names) -> list[str]:
    valid = [builder for _, builder, _ in TORCHVISION_MODELS]
    if names is None:
        return valid
    if isinstance(names, str):
        raise ConfigError(f"names must be a list of builder names, got the string {names!r}; "
                          f"write names=[{names!r}]")
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ConfigError(f"unknown model name(s) {', '.join(map(repr, unknown))}; "
                          f"the census knows {', '.join(valid)}")
    return list(names)


def torchvision_census(names: list[str] | None = None,
                       input_size: tuple[int, int, int] = (3, 224, 224)) -> list[Census]:
    """Census of each model of ``TORCHVISION_MODELS`` named by its builder name (all of them
    by default, in the order given), built by ``torchvision.models.get_model`` with random
    weights (``weights=None``: nothing is downloaded), one at a time, freed after counting."""
    import torchvision

    builders = _builder_names(names)
    shape = _image_shape(input_size)
    labels = {builder: (label, year) for label, builder, year in TORCHVISION_MODELS}
    censuses = []
    for builder in builders:
        label, year = labels[builder]
        model = torchvision.models.get_model(builder, weights=None,
                                             **_BUILD_KWARGS.get(builder, {}))
        model.eval()
        censuses.append(count(model, shape, name=label, year=year))
        del model
        gc.collect()
    return censuses


def _percent(share: float) -> str:
    return f"{100 * share:.1f}"


def _giga(n: int) -> str:
    """Three significant digits for the usual range, no exponent: 15.5, 4.09, 0.301."""
    value = n / 1e9
    return f"{value:.1f} G" if value >= 10 else f"{value:.2f} G" if value >= 1 else f"{value:.3f} G"


def census_table(censuses: list[Census]) -> Table:
    """One row per census: parameters (millions), MACs (billions), each kind's share of the
    MACs in %, the share in narrowing 1×1 layers and the number of channel shuffles."""
    censuses = list(censuses)
    if not censuses or not all(isinstance(c, Census) for c in censuses):
        raise ConfigError(f"census_table needs a non-empty list of Census results, got "
                          f"{censuses!r}; make them with torchvision_census() or count(model)")
    rows = []
    for c in censuses:
        row = {"model": c.name, "year": str(c.year) if c.year is not None else "",
               "parameters": f"{c.total_params / 1e6:.1f} M", "MACs": _giga(c.total_macs)}
        for kind in KINDS:
            row[f"{kind} % MACs"] = _percent(c.mac_share(kind))
        row["narrowing 1×1 % MACs"] = _percent(_share(c.narrowing_1x1_macs, c.total_macs))
        row["grouped 1×1 % MACs"] = _percent(_share(c.grouped_1x1_macs, c.total_macs))
        row["shuffles"] = c.shuffles
        rows.append(row)
    sizes = sorted({"×".join(map(str, c.input_size[1:])) for c in censuses})
    caption = (f"Counted from torchvision's module definitions with random weights at "
               f"{' or '.join(sizes)}, one image. MACs as papers count them (convolutions and "
               f"linear layers; element-wise work not counted). 1×1 includes linear layers "
               f"applied at every position; narrowing 1×1 layers have fewer output than input "
               f"channels (a bottleneck's way in, or an inverted bottleneck's way out); grouped "
               f"1×1 is the part of grouped that is 1×1.")
    return Table(rows, caption)


INGREDIENTS = ("narrowing 1×1 (bottleneck or inverted)", "grouped 1×1 convolution",
               "channel shuffle", "depthwise convolution")


def recipe_ingredients(c: Census, min_share: float = 0.05) -> dict[str, bool]:
    """Which of ShuffleNet's ingredients a model uses (``INGREDIENTS``): narrowing 1×1
    layers, grouped 1×1 and depthwise convolutions, each when it does at least ``min_share``
    of the MACs, and channel shuffle when the pass did any. A narrowing 1×1 is a bottleneck's
    way in or an inverted bottleneck's way out: the census cannot tell them apart."""
    if not isinstance(c, Census):
        raise ConfigError(f"recipe_ingredients needs a Census (from count or "
                          f"torchvision_census), got {c!r}")
    _check_fraction("min_share", min_share)

    def used(macs: int) -> bool:
        return macs > 0 and _share(macs, c.total_macs) >= min_share

    return dict(zip(INGREDIENTS, (used(c.narrowing_1x1_macs), used(c.grouped_1x1_macs),
                                  c.shuffles > 0, c.uses("depthwise", min_share))))
