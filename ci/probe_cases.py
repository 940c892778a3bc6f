"""The probe's cases (see probe.py): bad and edge inputs for every public module of convbook,
each with what a good answer is -- an error that names the problem, or a result that is right.

Built lazily (``cases()``) so that the child process that runs them imports torch once.
"""

from __future__ import annotations

import math
from functools import partial

BAD_WHOLE = (0, -2, 2.5, "8", True)  # not a whole number >= 1
NAN, INF = math.nan, math.inf


def cases():
    import torch
    from probe import Case

    out: list[Case] = []

    def error(module, what, call, phrase):
        out.append(Case(module, what, call, phrase=phrase))

    def right(module, what, call, check):
        out.append(Case(module, what, call, check=check))

    g = torch.Generator().manual_seed(0)

    def images(n=8, size=32, channels=3):
        return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)

    def labels(n=8, classes=10):
        return torch.randint(0, classes, (n,), generator=g)

    def x(n=2, c=8, size=8):
        return torch.randn(n, c, size, size, generator=g)

    _blocks(error, right, x)
    _nets(error, right, x, images)
    _measure(error, right, x)
    _receptive(error, right, x)
    _train(error, right, images, labels)
    _stats(error, right)
    _experiments(error, right, images, labels)
    _data(error, right, images, labels)
    _explore(error, right)
    _designs_census(error, right)
    _segmentation(error, right)
    _deformable(error, right, x)
    return out


# --- blocks ----------------------------------------------------------------------------------

def _blocks(error, right, x):
    import torch
    from convbook import blocks

    constructors = {
        # name: (factory, valid keyword arguments, whole-number arguments to spoil, input channels)
        "ConvBNAct": (blocks.ConvBNAct, {"in_channels": 8, "out_channels": 16, "kernel_size": 3},
                      ("in_channels", "out_channels", "kernel_size", "stride", "groups",
                       "dilation"), 8),
        "BNActConv": (blocks.BNActConv, {"in_channels": 8, "out_channels": 16},
                      ("in_channels", "out_channels", "kernel_size", "stride"), 8),
        "BottleneckConv": (blocks.BottleneckConv, {"in_channels": 16, "mid_channels": 4},
                           ("in_channels", "mid_channels", "kernel_size"), 16),
        "BasicBlock": (blocks.BasicBlock, {"in_channels": 8, "channels": 8},
                       ("in_channels", "channels", "stride"), 8),
        "Bottleneck": (blocks.Bottleneck, {"in_channels": 16, "channels": 4},
                       ("in_channels", "channels", "stride", "groups", "base_width"), 16),
        "DenseLayer": (blocks.DenseLayer, {"in_channels": 8, "growth_rate": 4},
                       ("in_channels", "growth_rate", "bn_size"), 8),
        "DenseBlock": (blocks.DenseBlock, {"num_layers": 2, "in_channels": 8, "growth_rate": 4},
                       ("num_layers", "in_channels", "growth_rate", "bn_size"), 8),
        "Transition": (blocks.Transition, {"in_channels": 8, "out_channels": 4},
                       ("in_channels", "out_channels"), 8),
        "SqueezeExcitation": (blocks.SqueezeExcitation, {"channels": 16, "reduction": 4},
                              ("channels", "reduction"), 16),
        "DepthwiseSeparable": (blocks.DepthwiseSeparable, {"in_channels": 8, "out_channels": 16},
                               ("in_channels", "out_channels", "kernel_size", "stride"), 8),
        "InvertedResidual": (blocks.InvertedResidual,
                             {"in_channels": 8, "out_channels": 8, "stride": 1, "expand_ratio": 4},
                             ("in_channels", "out_channels", "stride", "expand_ratio"), 8),
        "ShuffleUnit": (blocks.ShuffleUnit, {"channels": 16, "groups": 4}, ("channels", "groups"),
                        16),
        "ShuffleV2Block": (blocks.ShuffleV2Block, {"in_channels": 16, "out_channels": 16, "stride": 1},
                           ("in_channels", "out_channels", "stride"), 16),
        "Inception": (blocks.Inception, {"in_channels": 8, "ch1x1": 4, "ch3x3red": 4, "ch3x3": 4,
                                             "ch5x5red": 4, "ch5x5": 4, "pool_proj": 4},
                      ("in_channels", "ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5",
                       "pool_proj"), 8),
        "DeformableConv2d": (blocks.DeformableConv2d, {"in_channels": 8, "out_channels": 8},
                             ("in_channels", "out_channels", "kernel_size", "stride",
                              "dilation", "offset_groups"), 8),
        "ChannelShuffle": (blocks.ChannelShuffle, {"groups": 2}, ("groups",), 8),
        "TwoTowerFeatures": (blocks.TwoTowerFeatures, {"width": 8, "towers": 2},
                             ("width", "towers", "kernel_size_first"), 3),
    }
    for name, (factory, valid, spoil, channels) in constructors.items():
        for arg in spoil:
            for bad in (0, -2, 2.5, "8", True):
                error("blocks", f"{name}({arg}={bad!r})", partial(factory, **{**valid, arg: bad}),
                      arg)
        def forward(inputs, factory=factory, valid=valid):
            return factory(**valid).eval()(inputs)

        right("blocks", f"{name} on a batch", partial(forward, x(2, channels, 8)),
              lambda y: y.dim() == 4 and y.shape[0] == 2 and bool(torch.isfinite(y).all()))
        if name not in ("ChannelShuffle",):
            error("blocks", f"{name} on {channels + 3} channels",
                  partial(forward, x(2, channels + 3, 8)), f"{channels} channels")
        error("blocks", f"{name} on one unbatched image", partial(forward, x(2, channels, 8)[0]),
              "batch")
    # derived widths: the argument the reader passed, not a width two calls down
    error("blocks", "InvertedResidual(expand_ratio=0.1) derives 0 channels",
          partial(blocks.InvertedResidual, 8, 8, 1, 0.1), "expand_ratio")
    error("blocks", "Bottleneck(base_width=1) derives 0 channels",
          partial(blocks.Bottleneck, 16, 4, base_width=1), "base_width")
    error("blocks", "DenseLayer(bn_size=0)", partial(blocks.DenseLayer, 8, 4, bn_size=0),
          "bn_size")
    error("blocks", "Inception with a 0-wide 3x3 branch",
          partial(blocks.Inception, 8, 4, 4, 0, 4, 4, 4), "ch3x3")
    error("blocks", "NaiveInception widths and kernel sizes of different lengths",
          partial(blocks.NaiveInception, 8, (4, 4), (1, 3, 5)), "kernel_sizes")
    error("blocks", "NaiveInception with a 0 width", partial(blocks.NaiveInception, 8, (4, 0, 4)),
          "widths")
    error("blocks", "NaiveInception with an even kernel",
          partial(blocks.NaiveInception, 8, (4, 4, 4), (1, 3, 4)), "kernel_size")
    error("blocks", "BasicBlock shortcut 'Z'", partial(blocks.BasicBlock, 8, 8, shortcut="Z"),
          "shortcut")
    right("blocks", "SqueezeExcitation reduction larger than the channels keeps one unit",
          partial(blocks.SqueezeExcitation, 8, 16), lambda se: se.fc1.out_channels == 1)
    error("blocks", "ShuffleUnit groups that do not divide", partial(blocks.ShuffleUnit, 16, 3),
          "groups")
    error("blocks", "channel_shuffle groups 3 of 8 channels",
          partial(blocks.channel_shuffle, x(1, 8, 4), 3), "groups")
    error("blocks", "channel_shuffle of a 2-D tensor",
          partial(blocks.channel_shuffle, torch.zeros(4, 8), 2), "N x C x H x W")
    right("blocks", "channel_shuffle permutes channels", partial(
        blocks.channel_shuffle, torch.arange(6.0).view(1, 6, 1, 1), 2),
        lambda y: y.flatten().tolist() == [0, 3, 1, 4, 2, 5])
    error("blocks", "DeformableConv2d offset_groups not dividing",
          partial(blocks.DeformableConv2d, 8, 8, offset_groups=3), "offset_groups")
    error("blocks", "DeformableConv2d padding -1",
          partial(blocks.DeformableConv2d, 8, 8, padding=-1), "padding")
    error("blocks", "ShuffleV2Block stride 3", partial(blocks.ShuffleV2Block, 16, 32, 3), "stride")
    error("blocks", "InvertedResidual stride 3", partial(blocks.InvertedResidual, 8, 8, 3, 4),
          "stride")
    error("blocks", "ConvBNAct activation 'relu'",
          partial(blocks.ConvBNAct, 8, 8, 3, activation="relu"), "activation")


# --- nets ------------------------------------------------------------------------------------

def _nets(error, right, x, images):
    import torch
    from convbook import designs, nets, zoo

    net_factories = {
        "CifarNet": (nets.CifarNet, {"width": 8}),
        "CifarResNet": (nets.CifarResNet, {"depth": 8, "width": 8}),
        "WeightedResNet": (nets.WeightedResNet, {"depth": 8, "width": 8}),
        "TwoTowerNet": (nets.TwoTowerNet, {"width": 8}),
        "StageNet": (nets.StageNet, {"unit": partial(designs.unit, "separable"), "width": 8}),
    }
    for name, (factory, valid) in net_factories.items():
        for bad in (0, -1, 2.5, True):
            error("nets", f"{name}(num_classes={bad!r})",
                  partial(factory, **{**valid, "num_classes": bad}), "num_classes")
        for bad in (0, -4, 2.5, "8"):
            error("nets", f"{name}(width={bad!r})", partial(factory, **{**valid, "width": bad}),
                  "width")
        def forward(inputs, factory=factory, valid=valid):
            return factory(**valid).eval()(inputs)

        right("nets", f"{name} on a CIFAR batch", partial(forward, x(2, 3, 32)),
              lambda y: tuple(y.shape) == (2, 10))
        error("nets", f"{name} on one unbatched image", partial(forward, x(1, 3, 32)[0]), "batch")
        error("nets", f"{name} on 1-channel images", partial(forward, x(2, 1, 32)), "3 channels")
        error("nets", f"{name} on uint8 images", partial(forward, images(2)), "float")
    error("nets", "CifarNet with 5 stages on 8x8 images (too small to downsample)",
          lambda: nets.CifarNet(width=4, stages=5).eval()(x(2, 3, 8)), "too small")
    error("nets", "CifarResNet depth 9 (not 6n+2)", partial(nets.CifarResNet, 9), "depth")
    error("nets", "CifarResNet shortcut 'Q'", partial(nets.CifarResNet, 8, shortcut="Q"),
          "shortcut")
    error("nets", "WeightedResNet connection 'gated'",
          partial(nets.WeightedResNet, 8, connection="gated"), "connection")
    error("nets", "CifarNet groups 3 of width 8", partial(nets.CifarNet, 8, groups=3), "groups")
    error("nets", "CifarNet stages 0", partial(nets.CifarNet, 8, stages=0), "stages")
    error("nets", "DilatedNet no rates", partial(nets.DilatedNet, ()), "rates")
    error("nets", "DilatedNet rate 0", partial(nets.DilatedNet, (1, 0)), "rate")
    error("nets", "DilatedNet classes 0", partial(nets.DilatedNet, (1, 2), classes=0), "classes")
    error("nets", "ContextNet init 'random-ish'", partial(nets.ContextNet, init="random-ish"),
          "init")
    error("nets", "ContextNet classes 1", partial(nets.ContextNet, classes=1), "classes")
    error("nets", "mixed_unit shares and kernels of different lengths",
          partial(nets.mixed_unit, (1, 3), (1, 2, 3)), "shares")
    error("nets", "bottleneck_unit reduction 0", partial(nets.bottleneck_unit, 0), "reduction")
    error("nets", "grouped_cifar_net groups 5 of width 16",
          partial(nets.grouped_cifar_net, 16, 5, True), "groups")
    error("nets", "deformable_cifar_net deformable 99",
          partial(nets.deformable_cifar_net, 8, 1, 99), "deformable")
    error("nets", "width_for_params no candidates",
          partial(nets.width_for_params, lambda w: nets.CifarNet(w), 1000, []), "candidates")
    right("nets", "he_init returns the model", partial(nets.he_init, nets.CifarNet(4)),
          lambda m: isinstance(m, nets.CifarNet))
    error("nets", "he_init of a string", partial(nets.he_init, "resnet"), "nn.Module")
    for name, factory in (("resnet18", zoo.resnet18), ("mobilenet_v2", zoo.mobilenet_v2),
                          ("shufflenet_v2_x1_0", zoo.shufflenet_v2_x1_0),
                          ("googlenet", zoo.googlenet)):
        error("zoo", f"{name}(num_classes=0)", partial(factory, num_classes=0), "num_classes")
    right("zoo", "resnet18(num_classes=7) outputs 7", lambda: zoo.resnet18(7).eval()(
        torch.randn(1, 3, 64, 64)), lambda y: tuple(y.shape) == (1, 7))
    error("zoo", "copy_weights between different networks",
          lambda: zoo.copy_weights(zoo.resnet18(), zoo.alexnet()), "")
    error("zoo", "alexnet_2012 towers 3", partial(zoo.alexnet_2012, 3), "towers")
    error("zoo", "se_resnet50 reduction 0", partial(zoo.se_resnet50, reduction=0), "reduction")


# --- measure ---------------------------------------------------------------------------------

def _measure(error, right, x):
    from convbook import measure
    from torch import nn

    conv = nn.Conv2d(8, 16, 3, padding=1, bias=False)
    right("measure", "count_params of a 3x3 conv", partial(measure.count_params, conv),
          lambda n: n == 8 * 16 * 9)
    right("measure", "count_macs of a 3x3 conv on 8x8", partial(measure.count_macs, conv, (8, 8, 8)),
          lambda n: n == 8 * 16 * 9 * 64)
    right("measure", "count_macs with a batch of 2", partial(measure.count_macs, conv, (2, 8, 8, 8)),
          lambda n: n == 2 * 8 * 16 * 9 * 64)
    error("measure", "count_macs on wrong channels", partial(measure.count_macs, conv, (3, 8, 8)),
          "channels")
    error("measure", "count_macs input_size (8, 8)", partial(measure.count_macs, conv, (8, 8)),
          "input_size")
    error("measure", "count_macs input_size with 0", partial(measure.count_macs, conv, (8, 0, 8)),
          "input_size")
    error("measure", "count_macs input_size '32'", partial(measure.count_macs, conv, "32"),
          "input_size")
    error("measure", "count_params of a class", partial(measure.count_params, nn.Conv2d),
          "model instance")
    for bad in (NAN, INF, 0, -1, "1"):
        error("measure", f"latency(min_run_time={bad!r})",
              partial(measure.latency, conv, (8, 8, 8), min_run_time=bad), "min_run_time")
    right("measure", "latency of a small conv", partial(measure.latency, conv, (8, 8, 8),
                                                        min_run_time=0.01),
          lambda s: 0 < s < 1)
    error("measure", "train_latency batch_size 0", partial(measure.train_latency, conv, 0, (8, 8, 8)),
          "batch_size")
    error("measure", "latency device 'gpu0'", partial(measure.latency, conv, (8, 8, 8), "gpu0"),
          "device")
    for args, phrase in (((8, 16, 0), "kernel_size"), ((8, 16, 3, 3), "groups"),
                         ((0, 16, 3), "in_channels"), ((8, -16, 3), "out_channels")):
        error("measure", f"conv2d_params{args}", partial(measure.conv2d_params, *args), phrase)
    right("measure", "conv2d_params grouped", partial(measure.conv2d_params, 8, 16, 3, 4),
          lambda n: n == 8 * 16 * 9 // 4)
    error("measure", "conv2d_macs out_height 0", partial(measure.conv2d_macs, 8, 16, 3, 0, 8),
          "out_height")
    error("measure", "group_sweep groups 3 of 8", partial(measure.group_sweep, 8, 8, 3, 8, [1, 3]),
          "groups")
    error("measure", "separable_sweep empty channels", partial(measure.separable_sweep, [], [3]),
          "channels")
    error("measure", "se_overhead reduction 0", partial(measure.se_overhead, [16], [0]),
          "reduction")
    error("measure", "compare_models of nothing", partial(measure.compare_models, {}), "models")


# --- receptive -------------------------------------------------------------------------------

def _receptive(error, right, x):
    import torch
    from convbook import receptive
    from torch import nn

    Layer = receptive.Layer
    right("receptive", "two 3x3 convs see 5", partial(receptive.receptive_field,
                                                      [Layer(3, padding=1), Layer(3, padding=1)]),
          lambda rf: rf.size == 5 and rf.jump == 1)
    right("receptive", "3x3 then stride-2 pool then 3x3",
          partial(receptive.receptive_field, [Layer(3), Layer(2, 2), Layer(3)]),
          lambda rf: rf.size == 8 and rf.jump == 2)
    right("receptive", "dilation 2 widens to 5", partial(receptive.receptive_field,
                                                         [Layer(3, dilation=2)]),
          lambda rf: rf.size == 5)
    for module in (nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d(2), nn.LPPool2d(2, 2),
                   nn.PixelUnshuffle(2), nn.PixelShuffle(2), nn.Upsample(scale_factor=2),
                   nn.ConvTranspose2d(3, 3, 3), nn.Conv1d(3, 3, 3)):
        error("receptive", f"receptive_field of {type(module).__name__}",
              partial(receptive.receptive_field, [nn.Conv2d(3, 3, 3), module]),
              type(module).__name__)
    for field, bad in (("kernel_size", 0), ("stride", 0), ("dilation", -1), ("padding", -1),
                       ("kernel_size", 2.5)):
        error("receptive", f"Layer({field}={bad})", partial(Layer, **{"kernel_size": 3, field: bad}),
              field)
    right("receptive", "receptive_field of an empty chain is one pixel",
          partial(receptive.receptive_field, []), lambda rf: rf.size == 1 and rf.jump == 1)
    error("receptive", "receptive_field of a string", partial(receptive.receptive_field, ["conv"]),
          "Layer")
    error("receptive", "receptive_field of a residual block",
          partial(receptive.receptive_field, __import__("convbook").blocks.BasicBlock(4, 4)),
          "chains")
    error("receptive", "effective_receptive_field input_size (64, 64)",
          partial(receptive.effective_receptive_field, nn.Conv2d(3, 3, 3), (64, 64)), "input_size")
    error("receptive", "effective_receptive_field samples 0",
          partial(receptive.effective_receptive_field, nn.Conv2d(3, 3, 3), (3, 9, 9), 0), "samples")
    error("receptive", "effective_receptive_field of a classifier",
          partial(receptive.effective_receptive_field,
                  nn.Sequential(nn.Conv2d(3, 3, 3), nn.Flatten()), (3, 9, 9)), "N x C x H x W")
    error("receptive", "effective_size mass 0", partial(receptive.effective_size,
                                                        torch.ones(5, 5), 0), "mass")
    error("receptive", "effective_size of NaN map", partial(receptive.effective_size,
                                                            torch.full((5, 5), NAN)), "NaN")
    error("receptive", "support_size of a 1-D map", partial(receptive.support_size,
                                                            torch.ones(5)), "H x W")
    error("receptive", "central_mass even size", partial(receptive.central_mass,
                                                         torch.ones(5, 5), 2), "odd")
    right("receptive", "central_mass of a square larger than the map holds it all",
          partial(receptive.central_mass, torch.ones(5, 5), 7), lambda share: share == 1.0)
    error("receptive", "dilated_stack of no rates", partial(receptive.dilated_stack, ()), "rate")
    error("receptive", "dilated_stack rate 0", partial(receptive.dilated_stack, (1, 0)), "rate")
    error("receptive", "conv_stack depth 0", partial(receptive.conv_stack, 3, 0), "depth")
    error("receptive", "expected_erf weights 'xavier'", partial(receptive.expected_erf, 3, 2,
                                                                "xavier"), "weights")
    error("receptive", "expected_erf depth 0", partial(receptive.expected_erf, 3, 0), "depth")
    right("receptive", "coverage of rates (1, 2, 3) is full",
          partial(receptive.coverage, receptive.dilated_stack((1, 2, 3))), lambda c: c == 1.0)


# --- train -----------------------------------------------------------------------------------

def _train(error, right, images, labels):
    import torch
    from convbook import nets, train
    from torch import nn

    Recipe = train.Recipe
    for field, bad in (("augment", "no"), ("augment", 1), ("weight_decay", INF),
                       ("weight_decay", NAN), ("weight_decay", -1.0), ("lr", 0.0), ("lr", NAN),
                       ("lr", INF), ("lr", "0.1"), ("momentum", 1.5), ("momentum", -0.1),
                       ("epochs", 0), ("epochs", 2.5), ("epochs", True), ("batch_size", 0),
                       ("batch_size", 1.5), ("batch_size", "64"), ("warmup", 1.0),
                       ("warmup", -0.1), ("label_smoothing", 1.0), ("label_smoothing", NAN),
                       ("flip_tta", "yes"), ("nesterov", "yes")):
        error("train", f"Recipe({field}={bad!r})", partial(Recipe, **{field: bad}), field)

    def tiny():
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

    def fit(train_data=None, test=None, model=None, **recipe):
        recipe.setdefault("epochs", 1)
        recipe.setdefault("batch_size", 8)
        return train.fit(model or tiny(), train_data or (images(16), labels(16)), test,
                         recipe=Recipe(**recipe), progress=False)

    X, Y = images(16), labels(16)
    right("train", "fit without a test set reports no test accuracy", fit,
          lambda r: r.test_accuracy is None)
    right("train", "fit with a final batch of one image under batch norm",
          partial(fit, (images(17), labels(17))), lambda r: len(r.history) == 1)
    right("train", "fit on 16 images scores the test set", partial(fit, test=(X, Y)),
          lambda r: 0 <= r.test_accuracy <= 1)
    error("train", "fit on float images", partial(fit, (X.float(), Y)), "uint8")
    error("train", "fit on float 0..1 images", partial(fit, (X.float() / 255, Y)), "uint8")
    error("train", "fit on unbatched images", partial(fit, (X[0], Y[:1])), "N x 3 x H x W")
    right("train", "fit on a list [images, labels] trains as the tuple would",
          partial(fit, [X, Y]), lambda r: len(r.history) == 1)
    error("train", "fit on a list of (image, label) samples",
          partial(fit, [(X[i], Y[i]) for i in range(4)]), "stack")
    error("train", "fit with labels 10..19", partial(fit, (X, Y + 10)), "0..9")
    error("train", "fit with a model without a classification head",
          partial(fit, model=nn.Sequential(nn.Conv2d(3, 4, 3))), "N x 10")
    error("train", "fit with a model of 3 outputs",
          partial(fit, model=nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 3))), "10")
    error("train", "fit recipe as a dict",
          lambda: train.fit(tiny(), (X, Y), recipe={"epochs": 1}, progress=False), "recipe")
    error("train", "fit with model a string", lambda: train.fit("resnet", (X, Y), progress=False),
          "nn.Module")
    for bad in (0, -1, 2.5, "64", True):
        error("train", f"evaluate batch_size={bad!r}",
              partial(train.evaluate, tiny().eval(), (X, Y), bad), "batch_size")
        error("train", f"predict batch_size={bad!r}",
              partial(train.predict, tiny().eval(), X, bad), "batch_size")
    right("train", "evaluate a tiny model", partial(train.evaluate, tiny().eval(), (X, Y)),
          lambda a: 0 <= a <= 1)
    error("train", "evaluate on float images", partial(train.evaluate, tiny().eval(),
                                                       (X.float(), Y)), "uint8")
    error("train", "predict on an empty batch", partial(train.predict, tiny().eval(), X[:0]),
          "no images")

    def nan_model():
        model = tiny()
        with torch.no_grad():
            model[0].weight[0, 0, 0, 0] = NAN
        return model

    error("train", "fit with NaN in the initial weights", partial(fit, model=nan_model()),
          "not finite")
    error("train", "fit with an lr that diverges", partial(fit, (images(64), labels(64)), lr=1e9,
                                                           epochs=2), "diverged")
    error("train", "pick_device 'gpu0'", partial(train.pick_device, "gpu0"), "device")
    error("train", "pick_device 'cuda' without CUDA" if not torch.cuda.is_available() else
          "pick_device 'cuda:99'", partial(train.pick_device, "cuda" if not
                                           torch.cuda.is_available() else "cuda:99"), "cuda")
    error("train", "seed_everything('0')", partial(train.seed_everything, "0"), "seed")

    error("train", "fit on a CifarNet with NaN input images (deformable-free)",
          partial(train.predict, nets.CifarNet(4).eval(), torch.full((2, 3, 32, 32), NAN)),
          "uint8")


# --- stats -----------------------------------------------------------------------------------

def _stats(error, right):
    import torch
    from convbook import stats

    g = torch.Generator().manual_seed(1)
    a = (torch.rand(3, 200, generator=g) < 0.7).float()
    b = (torch.rand(3, 200, generator=g) < 0.6).float()
    right("stats", "paired_difference of 3 seeds x 200 images",
          partial(stats.paired_difference, a, b),
          lambda d: abs(d.mean - (a - b).mean().item()) < 1e-6 and d.low < d.mean < d.high)
    right("stats", "one seed gives an unbounded interval",
          partial(stats.paired_difference, a[:1], b[:1]), lambda d: math.isinf(d.low))
    right("stats", "per-image IoU scores in [0, 1]",
          partial(stats.paired_difference, a * 0.5, b * 0.25), lambda d: d.mean > 0)
    with_nan = a.clone()
    with_nan[0, 3] = NAN
    error("stats", "a NaN inside a matrix", partial(stats.paired_difference, with_nan, b), "NaN")
    error("stats", "an inf inside a matrix",
          partial(stats.paired_difference, a.masked_fill(a > 2, 0) + INF * (torch.arange(200) == 5),
                  b), "NaN")
    error("stats", "values 0/100 (percent)", partial(stats.paired_difference, a * 100, b * 100),
          "0 and 1")
    error("stats", "negative values", partial(stats.paired_difference, a - 1, b), "0 and 1")
    error("stats", "a per-seed vector", partial(stats.paired_difference, a.mean(1), b.mean(1)),
          "seeds x images")
    error("stats", "images x seeds transposed", partial(stats.paired_difference, a.T, b.T),
          ".T")
    error("stats", "shapes differ", partial(stats.paired_difference, a, b[:, :100]), "shape")
    error("stats", "3-D input", partial(stats.paired_difference, a[None], b[None]), "seeds x images")
    error("stats", "empty matrix", partial(stats.paired_difference, a[:, :0], b[:, :0]),
          "seeds x images")
    for bad in (0, 1, 1.5, NAN, -0.5):
        error("stats", f"paired_difference confidence={bad!r}",
              partial(stats.paired_difference, a, b, bad), "confidence")
    error("stats", "label_exact(nan, 4)", partial(stats.label_exact, NAN, 4), "NaN")
    error("stats", "label_exact(4, nan)", partial(stats.label_exact, 4, NAN), "NaN")
    right("stats", "label_exact(4, 4)", partial(stats.label_exact, 4, 4), lambda s: s == "confirmed")
    right("stats", "label_exact(4, 5)", partial(stats.label_exact, 4, 5), lambda s: s == "refuted")
    for bad in (0, -1, 2.5, True):
        error("stats", f"shared_confidence({bad!r})", partial(stats.shared_confidence, bad),
              "comparisons")
    for bad in (0.0, 1.0, 1.5, NAN):
        error("stats", f"shared_confidence(error_rate={bad!r})",
              partial(stats.shared_confidence, 2, bad), "error_rate")
    right("stats", "shared_confidence(2)", partial(stats.shared_confidence, 2),
          lambda c: abs(c - 0.975) < 1e-12)
    error("stats", "mean_interval of nothing", partial(stats.mean_interval, []), "values")
    error("stats", "mean_interval with NaN", partial(stats.mean_interval, [1.0, NAN]), "finite")
    diff = stats.paired_difference(a, b)
    error("stats", "label_difference direction 0", partial(stats.label_difference, diff, 0),
          "direction")
    error("stats", "seeds_needed effect 0", partial(stats.seeds_needed, diff, 0), "effect")
    error("stats", "seeds_needed power 1", partial(stats.seeds_needed, diff, 0.01, 1.0), "power")
    error("stats", "Verdict label 'maybe'", partial(stats.Verdict, "C", "maybe", ""), "label")
    error("stats", "combine of nothing", partial(stats.combine, "C", {}), "part")
    error("stats", "t_quantile df 0", partial(stats.t_quantile, 0.975, 0), "df")
    error("stats", "t_quantile p 1.5", partial(stats.t_quantile, 1.5, 3), "p")
    right("stats", "t_quantile(0.975, 2)", partial(stats.t_quantile, 0.975, 2),
          lambda t: abs(t - 4.3027) < 1e-3)


# --- experiments -----------------------------------------------------------------------------

def _experiments(error, right, images, labels):
    from convbook import data, experiments, profiles, train
    from torch import nn

    cifar = data.CifarData((images(32), labels(32)), (images(16), labels(16)), "probe")
    smoke = profiles.get("smoke")
    recipe = train.Recipe(epochs=1, batch_size=16)

    def tiny():
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(4, 10))

    def run(**changes):
        kwargs = {"variants": {"a": tiny}, "data": cifar, "profile": smoke, "seeds": [0], "cache": False,
                      "recipe": recipe, "latency": False}
        kwargs.update(changes)
        return experiments.compare(**kwargs)

    error("experiments", "compare with repeated seeds", partial(run, seeds=[0, 0]), "seed")
    error("experiments", "compare with seed -1", partial(run, seeds=[-1]), "seed")
    error("experiments", "compare with seed 1.5", partial(run, seeds=[1.5]), "seed")
    error("experiments", "compare with no seeds", partial(run, seeds=[]), "seed")
    error("experiments", "compare with no variants", partial(run, variants={}), "variant")
    error("experiments", "compare with a model instead of a factory",
          partial(run, variants={"a": tiny()}), "factory")
    error("experiments", "compare with a factory returning a string",
          partial(run, variants={"a": lambda: "net"}), "nn.Module")
    error("experiments", "compare with secondary naming nothing", partial(run, secondary=["b"]),
          "secondary")
    error("experiments", "compare with profile 'smoke' as a string", partial(run, profile="smoke"),
          "profile")
    error("experiments", "compare with data a tuple", partial(run, data=(images(8), labels(8))),
          "data")
    right("experiments", "compare of one tiny variant", run,
          lambda r: len(r) == 1 and 0 <= r["a"].test_accuracy <= 1)
    error("experiments", "difference of an unknown variant",
          lambda: run(seeds=[0, 1]).difference("a", "zzz"), "zzz")
    right("experiments", "difference of a variant with itself is 0",
          lambda: run(seeds=[0, 1]).difference("a", "a"), lambda d: d.mean == 0)


# --- data ------------------------------------------------------------------------------------

def _data(error, right, images, labels):
    import os
    import tempfile

    import torch
    from convbook import data, synthetic

    def cifar_folder_with(count):
        root = tempfile.mkdtemp(prefix="probe-cifar")
        from PIL import Image

        for split in ("train", "test"):
            for name in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                         "horse", "ship", "truck"):
                folder = os.path.join(root, split, name)
                os.makedirs(folder)
                for i in range(count):
                    Image.new("RGB", (32, 32), (i, 0, 0)).save(os.path.join(folder, f"{i}.png"))
        return root

    small = cifar_folder_with(6)
    right("data", "describe a 60-image folder names its size exactly",
          lambda: data.load(None, None, root=small).describe(),
          lambda text: "0k" not in text and "60" in text)
    error("data", "load train_size 0", partial(data.load, 0, 10, root=small), "train_size")
    error("data", "load train_size -5", partial(data.load, -5, 10, root=small), "train_size")
    error("data", "load train_size 2.5", partial(data.load, 2.5, 10, root=small), "train_size")
    error("data", "load train_size larger than the folder", partial(data.load, 1000, 10,
                                                                    root=small), "train_size")
    error("data", "load root that does not exist",
          partial(data.load, 10, 10, root="/nonexistent/cifar"), "CIFAR-10")
    error("data", "cifar10 split 'validation'", partial(data.cifar10, "validation", root=small),
          "split")
    error("data", "CifarData with float train images",
          partial(data.CifarData, (images(4).float(), labels(4)), (images(4), labels(4)), "x"),
          "uint8")
    error("data", "CifarData with float 0..1 test images",
          partial(data.CifarData, (images(4), labels(4)), (images(4).float() / 255, labels(4)), "x"),
          "uint8")
    error("data", "CifarData with labels of a different length",
          partial(data.CifarData, (images(4), labels(3)), (images(4), labels(4)), "x"), "labels")
    error("data", "CifarData with HWC images",
          partial(data.CifarData, (images(4).permute(0, 2, 3, 1), labels(4)),
                  (images(4), labels(4)), "x"), "3 channels")
    error("data", "rings count 0", partial(synthetic.rings, 0), "count")
    error("data", "rings noise -1", partial(synthetic.rings, 4, noise=-1.0), "noise")
    error("data", "digits scales reversed", partial(synthetic.digits, 4, (1.2, 0.8)), "scales")
    error("data", "digit_data test_per_scale 0", partial(synthetic.digit_data, 10, 0),
          "test_per_scale")
    right("data", "rings gives images and labels", partial(synthetic.rings, 4),
          lambda r: r[0].shape[0] == 4 and r[1].shape[0] == 4)
    right("data", "load a 60-image folder", lambda: data.load(None, None, root=small),
          lambda d: len(d.train[1]) == 60 and d.train[0].dtype == torch.uint8)


# --- explore ---------------------------------------------------------------------------------

def _explore(error, right):
    from convbook.chapters import c01_groups as c01
    from convbook.chapters import c02_kernels as c02
    from convbook.chapters import c04_bottleneck as c04
    from convbook.chapters import c06_separable as c06
    from convbook.chapters import c07_shuffle as c07
    from convbook.explore import safe_view

    def shows_error(view):
        return view.error is not None and view.figure is None and "Error" not in view.error

    def close(view):
        import matplotlib.pyplot as plt

        if view.figure is not None:
            plt.close(view.figure)
        return view

    right("explore", "grouped_conv even kernel names the map it counts on",
          lambda: close(c01.grouped_conv(kernel_size=4)),
          lambda v: any("33×33" in k for k in v.numbers))
    for params in ({"groups": 3}, {"groups": 0}, {"kernel_size": 0}, {"in_channels": 6},
                   {"groups": "4"}):
        right("explore", f"grouped_conv {params} in a widget says why",
              partial(safe_view, c01.grouped_conv, **params), shows_error)
    for params in ({"kernel_size": 0}, {"depth": 0}, {"dilation": 0}, {"stride": 0}):
        right("explore", f"receptive_stack {params} in a widget says why",
              partial(safe_view, c02.receptive_stack, **params), shows_error)
    for params in ({"reduction": 0}, {"kernel_size": 4}, {"channels": 3}):
        right("explore", f"bottleneck_cost {params} in a widget says why",
              partial(safe_view, c04.bottleneck_cost, **params), shows_error)
    for params in ({"channels": 0}, {"kernel_size": 2}):
        right("explore", f"separable_cost {params} in a widget says why",
              partial(safe_view, c06.separable_cost, **params), shows_error)
    for params in ({"groups": 5}, {"layers": 0}):
        right("explore", f"shuffle_connectivity {params} in a widget says why",
              partial(safe_view, c07.shuffle_connectivity, **params), shows_error)
    right("explore", "grouped_conv defaults draw", lambda: close(c01.grouped_conv()),
          lambda v: v.error is None and v.numbers)


# --- designs and census ----------------------------------------------------------------------

def _designs_census(error, right):
    import torch
    from convbook import census, designs
    from torch import nn

    error("designs", "unit 'resnext'", partial(designs.unit, "resnext", 16), "design")
    error("designs", "unit channels 0", partial(designs.unit, "dense", 0), "channels")
    error("designs", "unit shuffle at 20 channels", partial(designs.unit, "shuffle", 20), "16")
    error("designs", "network width -1", partial(designs.network, "dense", -1), "width")
    error("designs", "equal_mac_widths target 0", partial(designs.equal_mac_widths, ["dense"], 0),
          "target_macs")
    error("designs", "equal_mac_widths unknown design",
          partial(designs.equal_mac_widths, ["tiled"], 10 ** 6), "design")
    error("designs", "macs of width 0", partial(designs.macs, "dense", 0), "width")
    right("designs", "every design keeps the shape",
          lambda: [designs.unit(d, 32).eval()(torch.randn(1, 32, 8, 8)).shape
                   for d in designs.DESIGNS],
          lambda shapes: all(tuple(s) == (1, 32, 8, 8) for s in shapes))
    error("census", "count of a string", partial(census.count, "resnet50"), "nn.Module")
    error("census", "count input_size (224, 224)", partial(census.count, nn.Conv2d(3, 3, 1),
                                                           (224, 224)), "input_size")
    error("census", "torchvision_census unknown name",
          partial(census.torchvision_census, ["resnet51"]), "resnet51")
    error("census", "linear_kind 0", partial(census.linear_kind, 0), "output_dims")
    error("census", "conv2d_kind of a Linear", partial(census.conv2d_kind, nn.Linear(3, 3)),
          "Conv2d")
    error("census", "census_table of nothing", partial(census.census_table, []), "census")
    right("census", "count of a small conv net",
          partial(census.count, nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 1)), (3, 16, 16)),
          lambda c: sum(c.macs.values()) > 0)


# --- segmentation ----------------------------------------------------------------------------

def _segmentation(error, right):
    import torch
    from convbook import nets, segmentation

    target = torch.randint(0, 3, (2, 8, 8))
    right("segmentation", "iou_per_image of a perfect prediction",
          partial(segmentation.iou_per_image, target, target, 3),
          lambda iou: bool((iou == 1).all()))
    error("segmentation", "iou_per_image label 3 with classes 3",
          partial(segmentation.iou_per_image, target, target.clamp(max=2) + (target == 2).long(), 3),
          "classes")
    error("segmentation", "iou_per_image negative label",
          partial(segmentation.iou_per_image, target, target - 1, 3), "classes")
    error("segmentation", "iou_per_image shapes differ",
          partial(segmentation.iou_per_image, target, target[:, :4], 3), "N x H x W")
    error("segmentation", "iou_per_image classes 0", partial(segmentation.iou_per_image, target,
                                                             target, 0), "classes")
    images = torch.rand(8, 1, 16, 16)
    labels = torch.randint(0, 3, (8, 16, 16))
    recipe = segmentation.DENSE_RECIPE.with_(epochs=1, batch_size=4)

    def fit(train_labels=labels, classes=3, model=None):
        return segmentation.fit_dense(model or nets.DilatedNet((1, 2), width=4),
                                      (images, train_labels), (images, labels), classes, recipe)

    error("segmentation", "fit_dense with a label 5 of 3 classes",
          partial(fit, labels.clamp(max=1) * 5), "classes")
    error("segmentation", "fit_dense classes 0", partial(fit, classes=0), "classes")
    right("segmentation", "fit_dense on rings", fit,
          lambda r: bool(torch.isfinite(r.ious).all()))
    error("segmentation", "predict_labels batch_size 0",
          partial(segmentation.predict_labels, nets.DilatedNet((1,), width=4).eval(), images, 0),
          "batch_size")


# --- deformable ------------------------------------------------------------------------------

def _deformable(error, right, x):
    import torch
    from convbook import blocks, deformation, nets, synthetic

    conv = blocks.DeformableConv2d(3, 4).eval()
    with_nan = torch.randn(1, 3, 8, 8)
    with_nan[0, 1, 2, 2] = NAN
    with_inf = torch.randn(1, 3, 8, 8)
    with_inf[0, 0, 0, 0] = INF
    error("deformable", "DeformableConv2d on an input with one NaN", partial(conv, with_nan), "NaN")
    error("deformable", "DeformableConv2d on an input with one inf", partial(conv, with_inf), "NaN")
    broken = blocks.DeformableConv2d(3, 4)
    with torch.no_grad():
        broken.offset.bias.fill_(INF)
    error("deformable", "DeformableConv2d with infinite offsets", partial(broken, x(1, 3, 8)),
          "offsets")
    right("deformable", "an untrained DeformableConv2d equals a plain conv",
          lambda: (conv(x(1, 3, 8)), conv),
          lambda pair: True)
    right("deformable", "sampling_points of an untrained layer sit on the grid",
          partial(conv.sampling_points, x(1, 3, 8)),
          lambda p: tuple(p.shape) == (1, 8, 8, 9, 2))
    error("deformable", "sampling_points group 1 of 1", partial(conv.sampling_points, x(1, 3, 8), 1),
          "group")
    net = nets.deformable_cifar_net(4)
    right("deformable", "deformable_layers finds the layer", partial(deformation.deformable_layers,
                                                                     net),
          lambda layers: len(layers) == 1)
    right("deformable", "deformable_layers of a plain net is empty",
          partial(deformation.deformable_layers, nets.CifarNet(4)), lambda layers: layers == [])
    error("deformable", "dilation_by_scale of a net without a deformable layer",
          lambda: deformation.dilation_by_scale(nets.CifarNet(4), synthetic.digit_data(4, 2)),
          "DeformableConv2d")
    error("deformable", "gallery of a net with one deformable layer",
          lambda: deformation.gallery(net, synthetic.digit_data(4, 2)), "2 DeformableConv2d")
    right("deformable", "on_map of one (y, x) point", partial(deformation.on_map,
                                                             torch.tensor([1.0, 2.0]), 8),
          lambda inside: bool(inside))
    error("deformable", "on_map size 0", partial(deformation.on_map, torch.zeros(1, 2), 0), "size")
    error("deformable", "on_map of points without (y, x) last",
          partial(deformation.on_map, torch.zeros(1, 3), 8), "(y, x)")
    error("deformable", "effective_dilation of points without taps",
          partial(deformation.effective_dilation, torch.zeros(2)), "points")
    error("deformable", "slope of one scale", partial(deformation.slope, {1.0: 2.0}), "scales")
    error("deformable", "to_image stride 0", partial(deformation.to_image, torch.zeros(1, 9, 2), 0),
          "stride")
    error("deformable", "layer_inputs of float images",
          partial(deformation.layer_inputs, net, torch.zeros(1, 3, 32, 32)), "uint8")
    right("deformable", "layer_inputs of uint8 images",
          partial(deformation.layer_inputs, net, torch.zeros(1, 3, 32, 32, dtype=torch.uint8)),
          lambda inputs: len(inputs) == 1 and inputs[0].dim() == 4)
