"""An architecture census: where a network keeps its parameters and spends its MACs.

``count`` runs a model once on one image and sorts every ``nn.Conv2d`` and ``nn.Linear`` into a
kind (``KINDS``): dense k x k, 1x1 (pointwise, including a Linear applied at every position of
a feature map, as ConvNeXt does), grouped, depthwise, fully connected (a Linear on (N, C)
vectors) and "other" (norms, other layers, MACs the hooks did not see). MACs are measured by
forward hooks on those layers and checked against ``measure.count_macs``; channel shuffles are
counted in the same pass by watching for a transpose of the group and channel axes of a 5-D
tensor, whatever function does it.

**Bottleneck or inverted bottleneck.** Every pointwise layer (1×1, dense or grouped, or a
per-position Linear) that narrows, from ``a`` to ``b < a`` channels, on a map larger than 1×1,
is sorted by the block it belongs to: the smallest module around it that also runs a spatial
convolution (a kernel larger than 1×1), whose width ``w`` is what its first layer reads.

- *bottleneck*: the layer narrows below the block's width (``b < w``) and a later spatial
  convolution of the block reads those ``b`` channels: the spatial work runs at fewer channels
  than the block carries (ResNet-50, ResNeXt, DenseNet-BC, GoogLeNet's reductions, ShuffleNet);
- *inverted*: the layer narrows from more channels than the block reads (``a > w``), which an
  earlier layer of the block widened to: the block is widest inside (MobileNetV2's and
  EfficientNet's MBConv, ConvNeXt's 4× MLP, whose depthwise convolution sits before it at the
  block's width);
- anything else narrowing (a projection without expansion, a transition between stages, a
  squeeze-and-excitation layer on a pooled 1×1 map) is neither.

``torchvision_census`` counts the ImageNet networks of ``TORCHVISION_MODELS`` (families from
2012 to 2022) from torchvision's definitions, built on PyTorch's ``meta`` device where they
allow it (shapes without memory: nothing is allocated, nothing downloaded), else on the CPU with
random weights; ``census_table`` shows them side by side, ``recipe_ingredients`` says which of
the 2018 efficient-CNN recipe's ingredients each one uses.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from convbook.errors import ConfigError
from convbook.measure import _device_of, _eval_mode, count_params
from convbook.tables import Table

KINDS = ("dense k×k", "1×1", "grouped", "depthwise", "fully connected", "other")

# (label, torchvision builder name, year of the paper's first arXiv version; AlexNet's was not
# on arXiv). Every convolutional family torchvision has, at its smallest size and, where the
# family spans a wide range, a larger one; the transformers (ViT, Swin) have no convolution in
# their blocks to count.
TORCHVISION_MODELS = (
    ("AlexNet", "alexnet", 2012),
    ("VGG-16", "vgg16", 2014),
    ("GoogLeNet", "googlenet", 2014),
    ("ResNet-50", "resnet50", 2015),
    ("Inception-v3", "inception_v3", 2015),
    ("SqueezeNet 1.1", "squeezenet1_1", 2016),
    ("Wide ResNet-50-2", "wide_resnet50_2", 2016),
    ("DenseNet-121", "densenet121", 2016),
    ("ResNeXt-50 32×4d", "resnext50_32x4d", 2016),
    ("MobileNetV2", "mobilenet_v2", 2018),
    ("ShuffleNetV2 ×1.0", "shufflenet_v2_x1_0", 2018),
    ("MnasNet 1.0", "mnasnet1_0", 2018),
    ("MobileNetV3-Small", "mobilenet_v3_small", 2019),
    ("MobileNetV3-Large", "mobilenet_v3_large", 2019),
    ("EfficientNet-B0", "efficientnet_b0", 2019),
    ("EfficientNet-B7", "efficientnet_b7", 2019),
    ("RegNetX-400MF", "regnet_x_400mf", 2020),
    ("RegNetY-400MF", "regnet_y_400mf", 2020),
    ("RegNetX-3.2GF", "regnet_x_3_2gf", 2020),
    ("RegNetY-3.2GF", "regnet_y_3_2gf", 2020),
    ("EfficientNetV2-S", "efficientnet_v2_s", 2021),
    ("EfficientNetV2-L", "efficientnet_v2_l", 2021),
    ("ConvNeXt-T", "convnext_tiny", 2022),
    ("ConvNeXt-L", "convnext_large", 2022),
    ("MaxViT-T", "maxvit_t", 2022),
)

# builder name -> family (one design, several sizes; a family counts once in a verdict)
FAMILIES = {
    "alexnet": "AlexNet", "vgg16": "VGG", "googlenet": "GoogLeNet", "resnet50": "ResNet",
    "inception_v3": "Inception-v3",
    "squeezenet1_1": "SqueezeNet", "wide_resnet50_2": "Wide ResNet", "densenet121": "DenseNet",
    "resnext50_32x4d": "ResNeXt", "mobilenet_v2": "MobileNetV2",
    "shufflenet_v2_x1_0": "ShuffleNet V2", "mnasnet1_0": "MnasNet",
    "mobilenet_v3_small": "MobileNetV3", "mobilenet_v3_large": "MobileNetV3",
    "efficientnet_b0": "EfficientNet", "efficientnet_b7": "EfficientNet",
    "regnet_x_400mf": "RegNet", "regnet_y_400mf": "RegNet", "regnet_x_3_2gf": "RegNet",
    "regnet_y_3_2gf": "RegNet", "efficientnet_v2_s": "EfficientNetV2",
    "efficientnet_v2_l": "EfficientNetV2", "convnext_tiny": "ConvNeXt",
    "convnext_large": "ConvNeXt", "maxvit_t": "MaxViT",
}

# Builder arguments beyond weights=None: GoogLeNet's auxiliary heads only run in training, and
# its scipy-based initialisation is slow and irrelevant to counting.
_BUILD_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False},
                 "inception_v3": {"aux_logits": False, "init_weights": False}}


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
    fewer output than input channels; ``shuffles`` counts channel shuffles in one pass;
    ``bottleneck_1x1_macs`` and ``inverted_1x1_macs`` are the MACs of the narrowing pointwise
    layers (dense or grouped 1×1, per-position Linear) that lead into a bottleneck or out of an
    inverted one (the module's docstring says how they are told apart)."""

    name: str
    year: int | None
    params: dict[str, int]
    macs: dict[str, int]
    narrowing_1x1_macs: int
    shuffles: int
    input_size: tuple[int, int, int] = (3, 224, 224)
    grouped_1x1_macs: int = 0  # the part of "grouped" in 1×1 layers (ShuffleNet's kind)
    bottleneck_1x1_macs: int = 0  # narrowing pointwise layers into a bottleneck (module doc)
    inverted_1x1_macs: int = 0  # narrowing pointwise layers out of an inverted bottleneck
    family: str = ""  # the design family (FAMILIES), "" when not given

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


@dataclass
class _Call:
    """One call of a hooked layer, as the block classification needs it."""

    name: str  # the module's name in the model ("" for the model itself)
    macs: int
    reads: int  # channels in
    writes: int  # channels out
    pointwise: bool  # a 1×1 convolution (dense or grouped) or a per-position Linear
    spatial: bool  # a convolution with a kernel larger than 1×1
    on_map: bool  # the output has more than one position (not a pooled 1×1 map)


def _call(name: str, module: nn.Module, kind: str, output: torch.Tensor, macs: int) -> _Call:
    if isinstance(module, nn.Conv2d):
        positions = output.shape[-2] * output.shape[-1] if output.dim() >= 2 else 1
        one_by_one = tuple(module.kernel_size) == (1, 1)
        return _Call(name, macs, module.in_channels, module.out_channels,
                     one_by_one and kind != "depthwise", not one_by_one, positions > 1)
    positions = output[..., 0].numel() // output.shape[0] if output.dim() > 2 else 1
    return _Call(name, macs, module.in_features, module.out_features, kind == "1×1", False,
                 positions > 1)


def _inside(name: str, block: str) -> bool:
    return block == "" or name == block or name.startswith(block + ".")


def _ancestors(name: str) -> list[str]:
    """The names of the modules around ``name``, innermost first, the model itself ("") last."""
    parts = name.split(".") if name else []
    return [".".join(parts[:i]) for i in range(len(parts) - 1, -1, -1)]


def block_role(calls: list[_Call], index: int) -> str:
    """"bottleneck", "inverted" or "neither" for the narrowing pointwise layer ``calls[index]``
    (calls in the order the forward pass made them), by the rule of the module's docstring."""
    layer = calls[index]
    for block in _ancestors(layer.name):
        members = [i for i, c in enumerate(calls) if _inside(c.name, block)]
        if any(calls[i].spatial and calls[i].on_map for i in members):
            break
    else:
        return "neither"
    width = calls[members[0]].reads
    before = [calls[i] for i in members if i < index]
    after = [calls[i] for i in members if i > index]
    if layer.reads > width and any(c.writes == layer.reads and c.reads < c.writes
                                   for c in before):
        return "inverted"
    if layer.writes < width and any(c.spatial and c.on_map and c.reads == layer.writes
                                    for c in after):
        return "bottleneck"
    return "neither"


class ShuffleCounter(TorchFunctionMode):
    """Counts channel shuffles while active: a transpose, swap or permutation of a 5-D tensor
    that exchanges the group and channel-per-group axes and nothing else: axes 1 and 2 of
    (N, C, H, W) viewed as (N, g, C/g, H, W), or 3 and 4 of channels_last's (N, H, W, g, C/g).
    Recognised by what the call does, not by the function's name. Attention's swap of the
    token and head axes of (N, groups, tokens, heads, dims), axes 2 and 3 (MaxViT), is not a
    shuffle."""

    _CHANNEL_AXES = frozenset({(1, 2), (3, 4)})

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
            if (axes and len(axes) == 2 and all(isinstance(a, int) for a in axes)
                    and tuple(sorted(a % 5 for a in axes)) in self._CHANNEL_AXES):
                self.shuffles += 1
        return func(*args, **kwargs)


def count(model: nn.Module, input_size: tuple[int, int, int] = (3, 224, 224), name: str = "",
          year: int | None = None, family: str = "") -> Census:
    """Census of ``model`` on one image of ``input_size`` (C, H, W): parameters and MACs per
    layer kind, narrowing 1×1 MACs and channel shuffles, from one forward pass (eval mode, no
    grad) with hooks on every Conv2d and Linear. MACs that ``measure.count_macs`` sees
    outside those layers are "other"; parameters outside them (norms, scales) are too.
    ``name`` defaults to the model's class name. Narrowing pointwise layers are sorted into
    bottlenecks and inverted bottlenecks (``block_role``). The model may live on the ``meta``
    device (shapes only): the count is the same."""
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
    names = {module: name for name, module in model.named_modules()}
    calls: list[_Call] = []

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
        if kind != "fully connected":
            calls.append(_call(names.get(module, ""), module, kind, output, n))

    extra = []  # what FlopCounterMode cannot see, as count_macs adds it (deformable layers)

    def add_extra(module, inputs, output):
        extra.append(module.extra_macs(inputs[0], output))

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    hooks = [m.register_forward_hook(record) for m in layers]
    hooks += [m.register_forward_hook(add_extra) for m in model.modules()
              if callable(getattr(m, "extra_macs", None))]
    counter = ShuffleCounter()
    x = torch.zeros((1, *shape), device=_device_of(model))
    try:  # one pass: the hooks, the shuffle counter and count_macs's counter together
        with _eval_mode(model), counter, FlopCounterMode(display=False) as flops:
            model(x)
    except RuntimeError as err:
        raise ConfigError(f"the model could not run on one image of size {shape}: {err}; "
                          f"pass the (channels, height, width) it expects") from err
    finally:
        for hook in hooks:
            hook.remove()

    roles = {"bottleneck": 0, "inverted": 0, "neither": 0}
    for i, c in enumerate(calls):
        if c.pointwise and c.on_map and c.writes < c.reads:
            roles[block_role(calls, i)] += c.macs

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
    seen_by_counter = flops.get_total_flops() // 2 + sum(extra)  # as measure.count_macs
    macs["other"] = max(0, seen_by_counter - sum(macs.values()))
    return Census(name=name or type(model).__name__, year=year, params=params, macs=macs,
                  narrowing_1x1_macs=narrowing, shuffles=counter.shuffles, input_size=shape,
                  grouped_1x1_macs=grouped_1x1, bottleneck_1x1_macs=roles["bottleneck"],
                  inverted_1x1_macs=roles["inverted"], family=family)


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


def build_torchvision(builder: str) -> nn.Module:
    """torchvision's model ``builder`` with ``weights=None`` (nothing downloaded), in eval mode,
    on the ``meta`` device (shapes without memory or initialisation): built there where its
    constructor allows it, else built on the CPU and moved there (RegNet's constructor computes
    its widths with tensors, which ``meta`` cannot read back)."""
    import torchvision

    kwargs = _BUILD_KWARGS.get(builder, {})
    try:
        with torch.device("meta"):
            model = torchvision.models.get_model(builder, weights=None, **kwargs)
    except (NotImplementedError, RuntimeError):
        model = torchvision.models.get_model(builder, weights=None, **kwargs).to("meta")
    return model.eval()


def torchvision_census(names: list[str] | None = None,
                       input_size: tuple[int, int, int] = (3, 224, 224)) -> list[Census]:
    """Census of each model of ``TORCHVISION_MODELS`` named by its builder name (all of them
    by default, in the order given), built by ``build_torchvision`` (nothing is downloaded),
    one at a time, freed after counting."""
    builders = _builder_names(names)
    shape = _image_shape(input_size)
    labels = {builder: (label, year) for label, builder, year in TORCHVISION_MODELS}
    censuses = []
    for builder in builders:
        label, year = labels[builder]
        model = build_torchvision(builder)
        censuses.append(count(model, shape, name=label, year=year,
                              family=FAMILIES.get(builder, "")))
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
    MACs in %, the shares in bottleneck and inverted-bottleneck 1×1 layers and in grouped 1×1
    layers, and the number of channel shuffles."""
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
        row["bottleneck 1×1 % MACs"] = _percent(_share(c.bottleneck_1x1_macs, c.total_macs))
        row["inverted 1×1 % MACs"] = _percent(_share(c.inverted_1x1_macs, c.total_macs))
        row["grouped 1×1 % MACs"] = _percent(_share(c.grouped_1x1_macs, c.total_macs))
        row["shuffles"] = c.shuffles
        rows.append(row)
    sizes = sorted({"×".join(map(str, c.input_size[1:])) for c in censuses})
    caption = (f"Counted from torchvision's module definitions (shapes only: no weights, "
               f"nothing downloaded) at {' or '.join(sizes)}, one image. MACs as papers count them (convolutions and "
               f"linear layers; element-wise work not counted). 1×1 includes linear layers "
               f"applied at every position; bottleneck 1×1: the narrowing pointwise layers "
               f"(fewer output than input channels; dense or grouped) "
               f"into a block whose spatial convolution runs at fewer channels than the block "
               f"carries; inverted 1×1: those out of a block that is wider inside than at its "
               f"ends; grouped 1×1 is the part of grouped that is 1×1.")
    return Table(rows, caption)


INGREDIENTS = ("bottleneck", "grouped 1×1 convolution", "channel shuffle",
               "depthwise convolution")


def recipe_ingredients(c: Census, min_share: float = 0.05) -> dict[str, bool]:
    """Which of ShuffleNet's ingredients a model uses (``INGREDIENTS``): a bottleneck (narrowing
    pointwise layers into a block whose spatial convolution runs at fewer channels, module
    docstring), grouped 1×1 and depthwise convolutions, each when it does at least
    ``min_share`` of the MACs, and channel shuffle when the pass did any. An inverted bottleneck
    is not ShuffleNet's bottleneck: it is counted apart (``Census.inverted_1x1_macs``)."""
    if not isinstance(c, Census):
        raise ConfigError(f"recipe_ingredients needs a Census (from count or "
                          f"torchvision_census), got {c!r}")
    _check_fraction("min_share", min_share)

    def used(macs: int) -> bool:
        return macs > 0 and _share(macs, c.total_macs) >= min_share

    return dict(zip(INGREDIENTS, (used(c.bottleneck_1x1_macs), used(c.grouped_1x1_macs),
                                  c.shuffles > 0, c.uses("depthwise", min_share))))
