import pytest
import torch
import torchvision
from convbook import census, measure
from convbook.blocks import Bottleneck
from convbook.blocks.convnext import ConvNeXtBlock
from convbook.blocks.separable import InvertedResidual
from convbook.blocks.shuffle import ChannelShuffle, ShuffleUnit, channel_shuffle
from convbook.errors import ConfigError
from torch import nn

# Counted on a few ImageNet models, once for the whole file (about 5 s on two cores).
SAMPLE = ("resnet50", "mobilenet_v2", "shufflenet_v2_x1_0", "efficientnet_b0",
          "regnet_y_400mf", "convnext_tiny")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run this file's forward passes on one thread: as fast as two on an idle two-core
    machine, and ten times faster than two when another process holds a core (OpenMP's
    threads then wait for each other at every one of these models' many small layers)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sample(one_thread):
    return {c.name: c for c in census.torchvision_census(list(SAMPLE))}


class Tiny(nn.Module):
    """One layer of each kind, on a 10x10 map (100 positions)."""

    def __init__(self):
        super().__init__()
        self.dense = nn.Conv2d(3, 16, 3, padding=1, bias=False)  # 432 weights, 100*16*27 MACs
        self.bn = nn.BatchNorm2d(16)  # 32 parameters: "other"
        self.reduce = nn.Conv2d(16, 8, 1)  # 128 + 8, 100*8*16 = 12,800 MACs, narrowing
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)  # 144, 100*8*2*9
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)  # 72, 100*8*9
        self.pointwise = nn.Linear(8, 32)  # on (N, H, W, C): 256 + 32, 100*32*8 = 25,600
        self.head = nn.Linear(32, 10)  # on (N, C): 320 + 10, 320 MACs

    def forward(self, x):
        x = self.depthwise(self.grouped(self.reduce(self.bn(self.dense(x)))))
        x = self.pointwise(x.permute(0, 2, 3, 1))
        return self.head(x.mean((1, 2)))


def test_each_kind_of_hand_built_layer_is_counted_exactly():
    c = census.count(Tiny(), (3, 10, 10), name="tiny", year=2024)
    assert c.params == {"dense k×k": 432, "1×1": 136 + 288, "grouped": 144, "depthwise": 72,
                        "fully connected": 330, "other": 32}
    assert c.macs == {"dense k×k": 43_200, "1×1": 12_800 + 25_600, "grouped": 14_400,
                      "depthwise": 7_200, "fully connected": 320, "other": 0}
    assert c.narrowing_1x1_macs == 12_800
    assert c.shuffles == 0
    assert c.total_params == measure.count_params(Tiny())
    assert c.total_macs == measure.count_macs(Tiny(), (3, 10, 10))
    assert (c.name, c.year) == ("tiny", 2024)


def test_shares_are_fractions_that_sum_to_one():
    c = census.count(Tiny(), (3, 10, 10))
    assert c.name == "Tiny"  # the class name when none is given
    assert sum(c.param_share(k) for k in census.KINDS) == pytest.approx(1)
    assert sum(c.mac_share(k) for k in census.KINDS) == pytest.approx(1)
    assert c.mac_share("depthwise") == pytest.approx(7_200 / c.total_macs)
    assert c.uses("grouped") and not c.uses("other")
    assert not c.uses("fully connected", min_mac_share=0.01)


@pytest.mark.parametrize("layer, narrowing", [
    (nn.Conv2d(16, 8, 1), True),
    (nn.Conv2d(8, 16, 1), False),
    (nn.Conv2d(16, 16, 1), False),
    (nn.Conv2d(16, 8, 1, groups=2), False),  # grouped, not 1×1
    (nn.Conv2d(16, 8, 3, padding=1), False),  # dense k×k, not 1×1
])
def test_narrowing_1x1_convolutions_only_when_fewer_outputs(layer, narrowing):
    c = census.count(layer, (layer.in_channels, 4, 4))
    assert c.narrowing_1x1_macs == (c.total_macs if narrowing else 0)


class PerPosition(nn.Module):
    def __init__(self, linear):
        super().__init__()
        self.linear = linear

    def forward(self, x):  # (N, C, H, W) -> (N, H, W, C) -> linear -> back
        return self.linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def test_linear_on_a_feature_map_is_1x1_and_on_vectors_fully_connected():
    narrowing = census.count(PerPosition(nn.Linear(16, 4)), (16, 5, 5))
    assert narrowing.macs["1×1"] == 25 * 4 * 16 == narrowing.narrowing_1x1_macs
    widening = census.count(PerPosition(nn.Linear(4, 16)), (4, 5, 5))
    assert widening.macs["1×1"] == 25 * 16 * 4 and widening.narrowing_1x1_macs == 0
    head = census.count(nn.Sequential(nn.Flatten(), nn.Linear(100, 10)), (4, 5, 5))
    assert head.macs["fully connected"] == 1_000 and head.params["fully connected"] == 1_010
    assert head.narrowing_1x1_macs == 0


class Gram(nn.Module):
    """A 1×1 convolution, then a matrix product outside any Conv2d or Linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1, bias=False)

    def forward(self, x):
        f = self.conv(x).flatten(2)  # (N, 4, 25)
        return f @ f.transpose(1, 2)  # (N, 4, 4): 4 * 4 * 25 MACs


def test_macs_outside_hooked_layers_are_other():
    c = census.count(Gram(), (3, 5, 5))
    assert c.macs["1×1"] == 25 * 4 * 3
    assert c.macs["other"] == 4 * 4 * 25
    assert c.total_macs == measure.count_macs(Gram(), (3, 5, 5))


@pytest.mark.parametrize("name", ["shufflenet_v2_x1_0", "mobilenet_v3_small"])
def test_hooked_macs_equal_count_macs_on_torchvision_models(name):
    model = torchvision.models.get_model(name, weights=None)
    c = census.count(model)
    hooked = sum(c.macs[k] for k in census.KINDS if k != "other")
    assert hooked == measure.count_macs(model, (3, 224, 224)) and c.macs["other"] == 0


def test_shared_layers_count_their_weights_once_and_their_macs_per_call():
    conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
    tied = nn.Conv2d(4, 4, 3, padding=1, bias=False)
    tied.weight = conv.weight  # two modules, one weight
    for model in (nn.Sequential(conv, conv), nn.Sequential(conv, tied)):
        c = census.count(model, (4, 6, 6))
        assert c.params["dense k×k"] == 144 == c.total_params == measure.count_params(model)
        assert c.macs["dense k×k"] == 2 * 36 * 4 * 36


def test_convbook_channel_shuffle_is_detected_in_either_memory_format():
    assert census.count(ChannelShuffle(4), (8, 5, 5)).shuffles == 1
    x = torch.randn(2, 8, 5, 5).contiguous(memory_format=torch.channels_last)
    with census.ShuffleCounter() as counter:
        channel_shuffle(x, 4)
    assert counter.shuffles == 1


@pytest.mark.parametrize("op, counted", [
    (lambda x: x.transpose(1, 2), True),
    (lambda x: torch.transpose(x, 2, 1), True),
    (lambda x: x.transpose(-2, -1), True),  # axes 3 and 4: channels_last's groups
    (lambda x: torch.swapaxes(x, 1, 2), True),
    (lambda x: x.permute(0, 2, 1, 3, 4), True),
    (lambda x: torch.permute(x, (0, 1, 2, 4, 3)), True),
    (lambda x: x.transpose(0, 1), False),  # batch axis
    (lambda x: x.transpose(1, 3), False),  # not neighbours
    (lambda x: x.permute(0, 2, 3, 1, 4), False),  # a rotation, not a swap
    (lambda x: x.permute(0, 1, 2, 3, 4), False),
    (lambda x: x.permute(0, 1, 3, 2, 4), False),  # attention's tokens and heads (MaxViT)
    (lambda x: x.flatten(1, 2).transpose(1, 2), False),  # 4-D: attention's transposes
])
def test_shuffle_counter_sees_swaps_of_neighbouring_axes_of_5d_tensors(op, counted):
    with census.ShuffleCounter() as counter:
        op(torch.randn(1, 2, 3, 4, 5))
    assert counter.shuffles == int(counted)


def test_only_shufflenet_shuffles_and_hooks_see_every_mac(sample):
    shufflenet = sample["ShuffleNetV2 ×1.0"]
    assert shufflenet.shuffles == 16  # 4 + 8 + 4 units, one shuffle each
    for c in sample.values():
        print(c.name, c.shuffles, c.macs)
        assert c.shuffles == (16 if c is shufflenet else 0)
        assert c.macs["other"] == 0  # hooks on Conv2d and Linear found all of count_macs
        assert sum(c.mac_share(k) for k in census.KINDS) == pytest.approx(1)
        assert sum(c.param_share(k) for k in census.KINDS) == pytest.approx(1)


def test_resnet50_spends_half_its_macs_in_1x1_convolutions(sample):
    resnet = sample["ResNet-50"]
    print("ResNet-50 1×1 share", resnet.mac_share("1×1"))  # 0.5183
    assert 0.515 < resnet.mac_share("1×1") < 0.522
    assert 0.478 < resnet.mac_share("dense k×k") < 0.485
    assert resnet.total_params == 25_557_032  # the paper's 25.6 M
    assert resnet.total_macs == 4_089_184_256  # the usual "4.1 GFLOPs"
    assert 0.22 < resnet.narrowing_1x1_macs / resnet.total_macs < 0.23


def test_convnext_spends_nearly_all_its_macs_in_per_position_linear_layers(sample):
    convnext = sample["ConvNeXt-T"]
    print("ConvNeXt-T 1×1 share", convnext.mac_share("1×1"))  # 0.9341
    assert 0.92 < convnext.mac_share("1×1") < 0.95
    assert 0.02 < convnext.mac_share("depthwise") < 0.03  # the 7×7 depthwise is cheap


def test_grouped_1x1_is_told_apart_from_grouped_3x3():
    model = nn.Sequential(nn.Conv2d(8, 8, 1, groups=4), nn.Conv2d(8, 8, 3, padding=1, groups=2))
    c = census.count(model, (8, 5, 5))
    assert c.grouped_1x1_macs == 25 * 8 * 2
    assert c.macs["grouped"] == 25 * 8 * 2 + 25 * 8 * 4 * 9
    assert census.recipe_ingredients(c)["grouped 1×1 convolution"]


def test_recipe_ingredients_of_sample_models(sample):
    resnet = census.recipe_ingredients(sample["ResNet-50"])
    assert resnet == {"bottleneck": True,
                      "grouped 1×1 convolution": False, "channel shuffle": False,
                      "depthwise convolution": False}
    regnet = sample["RegNetY-400MF"]  # grouped 3×3 only: grouped, but no grouped 1×1
    assert regnet.mac_share("grouped") > 0.1 and regnet.grouped_1x1_macs == 0
    assert not census.recipe_ingredients(regnet)["grouped 1×1 convolution"]
    assert census.recipe_ingredients(sample["MobileNetV2"])["depthwise convolution"]
    assert not census.recipe_ingredients(sample["MobileNetV2"])["bottleneck"]  # inverted
    shufflenet = sample["ShuffleNetV2 ×1.0"]
    assert census.recipe_ingredients(shufflenet)["channel shuffle"]
    # ShuffleNet V2's depthwise convolutions do under 5% of its MACs, but not under 1%
    assert not census.recipe_ingredients(shufflenet)["depthwise convolution"]
    assert census.recipe_ingredients(shufflenet, min_share=0.01)["depthwise convolution"]


def test_census_table_has_one_formatted_row_per_model(sample):
    table = census.census_table(list(sample.values()))
    print(table)
    assert table.column("model") == list(sample)
    resnet = table.rows[0]
    assert (resnet["year"], resnet["parameters"], resnet["MACs"]) == ("2015", "25.6 M", "4.09 G")
    assert resnet["1×1 % MACs"] == "51.8" and resnet["shuffles"] == 0
    assert [f"{k} % MACs" for k in census.KINDS] == list(resnet)[4:10]
    assert resnet["bottleneck 1×1 % MACs"] == "22.6" and resnet["inverted 1×1 % MACs"] == "0.0"
    assert "nothing downloaded) at 224×224, one image" in table.caption
    assert "element-wise work not counted" in table.caption


def test_torchvision_models_list_names_real_builders_and_paper_years():
    assert len(census.TORCHVISION_MODELS) == 25
    builders = [b for _, b, _ in census.TORCHVISION_MODELS]
    assert set(builders) <= set(torchvision.models.list_models())
    assert set(census.FAMILIES) == set(builders)
    later = {census.FAMILIES[b] for _, b, y in census.TORCHVISION_MODELS if y > 2018}
    assert later == {"MobileNetV3", "EfficientNet", "RegNet", "EfficientNetV2", "ConvNeXt",
                     "MaxViT"}
    years = [y for _, _, y in census.TORCHVISION_MODELS]
    assert years == sorted(years) and years[0] == 2012 and years[-1] == 2022


def test_torchvision_census_in_the_order_asked():
    censuses = census.torchvision_census(["regnet_y_400mf", "alexnet"], input_size=(3, 64, 64))
    assert [(c.name, c.year) for c in censuses] == [("RegNetY-400MF", 2020), ("AlexNet", 2012)]
    assert [c.family for c in censuses] == ["RegNet", "AlexNet"]
    alexnet = censuses[1]  # at 64×64 its convolutions shrink, its classifier does not
    assert alexnet.uses("fully connected", 0.5) and not alexnet.uses("1×1")
    assert "64×64" in census.census_table(censuses).caption


@pytest.mark.parametrize("call, words", [
    (lambda: census.count(nn.Conv2d), "instance"),
    (lambda: census.count("resnet50"), "nn.Module"),
    (lambda: census.count(Tiny(), (10, 10)), "(channels, height, width)"),
    (lambda: census.count(Tiny(), (1, 3, 10, 10)), "one image"),
    (lambda: census.count(Tiny(), (3, 0, 10)), "positive"),
    (lambda: census.count(Tiny(), (3, 10.0, 10)), "integers"),
    (lambda: census.count(Tiny(), 224), "(channels, height, width)"),
    (lambda: census.count(Tiny(), (1, 10, 10)), "could not run"),
    (lambda: census.count(Tiny(), (3, 10, 10), year="2015"), "year"),
    (lambda: census.torchvision_census(["resnet5"]), "resnet50"),
    (lambda: census.torchvision_census("resnet50"), "names=['resnet50']"),
    (lambda: census.torchvision_census(["alexnet"], input_size=(224, 224)), "(channels"),
    (lambda: census.census_table([]), "non-empty"),
    (lambda: census.recipe_ingredients("resnet50"), "Census"),
])
def test_bad_inputs_raise_config_error(call, words):
    with pytest.raises(ConfigError) as info:
        call()
    assert words in str(info.value)


def test_bad_kinds_and_shares_raise_config_error():
    c = census.count(Tiny(), (3, 10, 10))
    with pytest.raises(ConfigError, match="the kinds are"):
        c.mac_share("3x3")
    with pytest.raises(ConfigError, match="the kinds are"):
        c.param_share("1x1")
    with pytest.raises(ConfigError, match="fraction"):
        c.uses("1×1", min_mac_share=5)
    with pytest.raises(ConfigError, match="fraction"):
        census.recipe_ingredients(c, min_share=-0.1)


def test_models_are_built_without_weights_on_the_meta_device():
    resnet = census.build_torchvision("resnet50")  # built there directly
    regnet = census.build_torchvision("regnet_y_400mf")  # built on the CPU, then moved
    for model in (resnet, regnet):
        assert {p.device.type for p in model.parameters()} == {"meta"} and not model.training
    assert census.count(resnet).total_macs == 4_089_184_256  # the same count as with weights


def test_bottlenecks_and_inverted_bottlenecks_are_told_apart_in_blocks():
    bottleneck = census.count(Bottleneck(64, 16), (64, 8, 8))  # 64 -> 16, 3x3 at 16, -> 64
    assert bottleneck.bottleneck_1x1_macs == 64 * 16 * 64 and bottleneck.inverted_1x1_macs == 0
    shuffle = census.count(ShuffleUnit(32, 4), (32, 8, 8))  # grouped 1x1 down to a quarter
    assert shuffle.bottleneck_1x1_macs == 64 * 8 * 8 and shuffle.inverted_1x1_macs == 0
    inverted = census.count(InvertedResidual(16, 16, 1, 6), (16, 8, 8))  # 16 -> 96 -> 16
    assert inverted.inverted_1x1_macs == 64 * 16 * 96 and inverted.bottleneck_1x1_macs == 0
    convnext = census.count(ConvNeXtBlock(16), (16, 8, 8))  # depthwise at 16, 1x1 64 -> 16
    assert convnext.inverted_1x1_macs == 64 * 16 * 64 and convnext.bottleneck_1x1_macs == 0
    projection = census.count(InvertedResidual(32, 16, 1, 1), (32, 8, 8))  # no expansion
    assert projection.narrowing_1x1_macs > 0
    assert projection.bottleneck_1x1_macs == projection.inverted_1x1_macs == 0


class Transition(nn.Module):
    """DenseNet's way: a layer's output concatenated to its input, then a narrowing 1x1 with
    no spatial convolution after it (no layer widened to what it narrows from)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layer = nn.Conv2d(8, 8, 3, padding=1)
        self.transition = nn.Sequential(nn.Conv2d(16, 8, 1), nn.AvgPool2d(2))

    def forward(self, x):
        x = self.stem(x)
        return self.transition(torch.cat((x, self.layer(x)), 1))


def test_a_narrowing_after_a_widening_spatial_convolution_is_inverted():
    """3x3 from 8 to 32, then 1x1 back to 8: EfficientNetV2's fused MBConv."""
    fused = nn.Sequential(nn.Conv2d(8, 32, 3, padding=1), nn.Conv2d(32, 8, 1))
    assert census.count(fused, (8, 4, 4)).inverted_1x1_macs == 16 * 8 * 32


class Squeeze(nn.Module):
    """A 3x3 convolution and squeeze-and-excitation's narrowing 1x1 on a pooled 1x1 map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(16, 16, 3, padding=1)
        self.squeeze = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        x = self.conv(x)
        return x * self.squeeze(x.mean((2, 3), keepdim=True)).mean(1, keepdim=True)


@pytest.mark.parametrize("model, shape", [(Transition(), (3, 8, 8)), (Squeeze(), (16, 8, 8))])
def test_transitions_and_squeezes_are_neither(model, shape):
    c = census.count(model, shape)
    assert c.narrowing_1x1_macs > 0
    assert c.bottleneck_1x1_macs == c.inverted_1x1_macs == 0


def test_sample_models_have_the_roles_their_papers_give_them(sample):
    def share(c, field):
        return getattr(c, field) / c.total_macs

    resnet, mobilenet = sample["ResNet-50"], sample["MobileNetV2"]
    assert share(resnet, "bottleneck_1x1_macs") == pytest.approx(
        resnet.narrowing_1x1_macs / resnet.total_macs)  # every narrowing 1x1 leads in
    assert resnet.inverted_1x1_macs == 0
    assert share(mobilenet, "inverted_1x1_macs") > 0.35 and mobilenet.bottleneck_1x1_macs == 0
    for name in ("EfficientNet-B0", "ConvNeXt-T"):
        assert share(sample[name], "inverted_1x1_macs") > 0.3
        assert sample[name].bottleneck_1x1_macs == 0
    regnet = sample["RegNetY-400MF"]  # bottleneck ratio 1: neither
    assert regnet.bottleneck_1x1_macs == regnet.inverted_1x1_macs == 0
