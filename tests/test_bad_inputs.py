"""A table of bad inputs (the reliability review's, and their neighbours): each must raise a
clear error (our ``ValueError`` subclasses, with a message that names the problem) or return
the right number. Nothing may raise a raw library error or return a silently wrong value."""

import math

import numpy as np
import pytest
import torch
from convbook import blocks, measure, nets, receptive, train, zoo
from convbook.chapters import c01_groups as c01
from convbook.chapters import c02_kernels as c02
from convbook.chapters import c04_bottleneck as c04
from convbook.chapters import c06_separable as c06
from convbook.chapters import c07_shuffle as c07
from convbook.chapters import c08_excitation as c08
from convbook.explore import safe_view
from torch import nn


def _tiny():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10))


def _data(n=32):
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
            torch.randint(0, 10, (n,), generator=g))


def _fit(train_data=None, test=None, **changes):
    changes.setdefault("epochs", 1)
    return train.fit(_tiny(), train_data or _data(), test, progress=False, **changes)


X, Y = _data()

# (what is tried, a call, the phrase the error must contain)
ERRORS = [
    ("labels shorter than images", lambda: _fit((X, Y[:-1])), "pair one to one"),
    ("int32 labels", lambda: _fit((X, Y.int())), "1-D int64"),
    ("float labels", lambda: _fit((X, Y.float())), "1-D int64"),
    ("labels out of range", lambda: _fit((X, Y + 10)), "must lie in 0..9"),
    ("negative labels", lambda: _fit((X, Y - 20)), "must lie in 0..9"),
    ("float images", lambda: _fit((X.float(), Y)), "uint8"),
    ("HWC images", lambda: _fit((X.permute(0, 2, 3, 1), Y)), "3 channels first"),
    ("one-channel images", lambda: _fit((X[:, :1], Y)), "3 channels"),
    ("empty training set", lambda: _fit((X[:0], Y[:0])), "holds no images"),
    ("empty test set", lambda: _fit(test=(X[:0], Y[:0])), "holds no images"),
    ("float test images", lambda: _fit(test=(X.float(), Y)), "uint8"),
    ("test labels 10-19", lambda: _fit(test=(X, Y + 10)), "must lie in 0..9"),
    ("lr 0", lambda: _fit(lr=0.0), "lr must be a finite number > 0"),
    ("lr NaN", lambda: _fit(lr=math.nan), "lr must be a finite number > 0"),
    ("lr inf", lambda: _fit(lr=math.inf), "lr must be a finite number > 0"),
    ("warmup -1", lambda: _fit(warmup=-1), "warmup is a share"),
    ("warmup 5", lambda: _fit(warmup=5), "warmup is a share"),
    ("warmup 1.0", lambda: _fit(warmup=1.0), "warmup is a share"),
    ("weight decay -1", lambda: _fit(weight_decay=-1), "weight_decay must be >= 0"),
    ("label smoothing -0.1", lambda: _fit(label_smoothing=-0.1), "label_smoothing must be in"),
    ("Nesterov with momentum 0", lambda: _fit(momentum=0.0), "Nesterov momentum needs"),
    ("epochs 0", lambda: _fit(epochs=0), "epochs must be >= 1"),
    ("diverging lr", lambda: _fit(_data(256), lr=1e6, epochs=2), "diverged"),
    ("unknown device", lambda: train.pick_device("gpu0"), "not a device name"),
    ("even kernel, ConvBNAct", lambda: blocks.ConvBNAct(8, 8, 8), "kernel_size must be odd"),
    ("even kernel, BNActConv", lambda: blocks.BNActConv(8, 8, 4), "kernel_size must be odd"),
    ("even kernel, BottleneckConv", lambda: blocks.BottleneckConv(8, 4, kernel_size=4),
     "kernel_size must be odd"),
    ("Inception 5x5 of 4", lambda: blocks.Inception(16, 4, 4, 4, 4, 4, 4, kernel_size_5x5=4),
     "kernel_size must be odd"),
    ("padding -1", lambda: blocks.ConvBNAct(8, 8, 3, padding=-1), "padding must be"),
    ("ShuffleUnit groups 0", lambda: blocks.ShuffleUnit(16, 0), "groups must be >= 1"),
    ("channel_shuffle groups 0",
     lambda: blocks.channel_shuffle(torch.zeros(1, 4, 2, 2), 0), "groups must be >= 1"),
    ("activation instance", lambda: blocks.ConvBNAct(8, 8, 3, activation=nn.ReLU()),
     "not an instance"),
    ("ShuffleV2Block odd width", lambda: blocks.ShuffleV2Block(16, 33, 2), "must be even"),
    ("count_macs on a class", lambda: measure.count_macs(nn.Conv2d), "model instance"),
    ("count_macs on a string", lambda: measure.count_macs("resnet"), "model instance"),
    ("receptive_field of Conv1d", lambda: receptive.receptive_field(nn.Conv1d(1, 1, 3)),
     "2-D convolutions"),
    ("receptive_field of Conv3d", lambda: receptive.receptive_field(nn.Conv3d(1, 1, 3)),
     "2-D convolutions"),
    ("receptive_field of ConvTranspose2d",
     lambda: receptive.receptive_field(nn.ConvTranspose2d(1, 1, 3)), "transposed"),
    ("receptive_field of NaiveInception",
     lambda: receptive.receptive_field(blocks.NaiveInception(8, (4, 4, 4))), "not one"),
    ("receptive_field of a stride-2 BasicBlock",
     lambda: receptive.receptive_field(blocks.BasicBlock(8, 16, 2)), "not one"),
    ("central_mass even size", lambda: receptive.central_mass(torch.ones(5, 5), 4), "odd"),
    # round two: what the held-out probe found (ci/probe.py runs the whole probe)
    ("receptive_field of global pooling",
     lambda: receptive.receptive_field([nn.Conv2d(3, 3, 3), nn.AdaptiveAvgPool2d(1)]),
     "does not model AdaptiveAvgPool2d"),
    ("receptive_field of Upsample", lambda: receptive.receptive_field(nn.Upsample(scale_factor=2)),
     "does not model Upsample"),
    ("receptive_field of PixelUnshuffle", lambda: receptive.receptive_field(nn.PixelUnshuffle(2)),
     "does not model PixelUnshuffle"),
    ("receptive_field of LPPool2d", lambda: receptive.receptive_field(nn.LPPool2d(2, 2)),
     "does not model LPPool2d"),
    ("effective_size of a NaN map", lambda: receptive.effective_size(torch.full((5, 5), math.nan)),
     "NaN"),
    ("latency min_run_time NaN", lambda: measure.latency(nn.Conv2d(3, 3, 3), min_run_time=math.nan),
     "min_run_time"),
    ("latency min_run_time inf", lambda: measure.latency(nn.Conv2d(3, 3, 3), min_run_time=math.inf),
     "min_run_time"),
    ("deformable conv on a NaN pixel", lambda: blocks.DeformableConv2d(3, 4)(
        torch.randn(1, 3, 8, 8).index_put_((torch.tensor([0]),) * 4, torch.tensor(math.nan))),
     "NaN"),
    ("InvertedResidual expand_ratio 0", lambda: blocks.InvertedResidual(8, 8, 1, 0),
     "expand_ratio"),
    ("Bottleneck base_width 1", lambda: blocks.Bottleneck(16, 4, base_width=1), "base_width"),
    ("DenseLayer bn_size 0", lambda: blocks.DenseLayer(8, 4, bn_size=0), "bn_size"),
    ("Inception ch3x3 0", lambda: blocks.Inception(8, 4, 4, 0, 4, 4, 4), "ch3x3"),
    ("BNActConv on 5 channels", lambda: blocks.BNActConv(8, 8)(torch.zeros(2, 5, 4, 4)),
     "expects 8 channels"),
    ("ConvBNAct on one unbatched image", lambda: blocks.ConvBNAct(3, 8)(torch.zeros(3, 4, 4)),
     "x\\[None\\]"),
    ("CifarNet on uint8 images", lambda: nets.CifarNet(4)(torch.zeros(1, 3, 32, 32,
                                                                     dtype=torch.uint8)),
     "normalize"),
    ("CifarNet with 5 stages on 8x8 images", lambda: nets.CifarNet(4, stages=5)(
        torch.zeros(1, 3, 8, 8)), "too small"),
    ("CifarNet with 0 classes", lambda: nets.CifarNet(4, num_classes=0), "num_classes"),
    ("se_resnet50 reduction 0", lambda: zoo.se_resnet50(reduction=0), "reduction"),
]

# explorers: the error arrives as a View's message, never as a traceback
VIEW_ERRORS = [
    ("bottleneck kernel 0", lambda: safe_view(c04.bottleneck_cost, kernel_size=0), ">= 1"),
    ("separable size -5", lambda: safe_view(c06.separable_cost, size=-5), "size must be >= 1"),
    ("shuffle 0 channels", lambda: safe_view(c07.shuffle_connectivity, channels=0), ">= 1"),
    ("SE labels shorter than weights",
     lambda: safe_view(c08.se_weights, weights=[torch.rand(4, 3)], labels=torch.zeros(2).long()),
     "one class per image"),
    ("HWC image to receptive_stack",
     lambda: safe_view(c02.receptive_stack, image=torch.zeros(32, 32, 3, dtype=torch.uint8)),
     "channels first"),
]

# (what is tried, a call, the number it must return)
VALUES = [
    ("central_mass square larger than the map", lambda: receptive.central_mass(torch.ones(5, 5), 9),
     1.0),
    ("grouped_conv with an even kernel counts MACs on the map it names",
     lambda: [k for k in c01.grouped_conv(kernel_size=4).numbers if k.startswith("MACs")],
     ["MACs from a 32×32 input to a 33×33 output"]),
    ("SE block with fewer channels than r",
     lambda: measure.se_overhead([16], [32]).rows[0]["2Cs + s + C, s = max(C/r, 1) (formula)"],
     measure.count_params(blocks.SqueezeExcitation(16, 32))),
    ("one optimiser step", lambda: _fit(_data(32)).steps, 1),
    ("numpy option in an explorer", lambda: safe_view(c06.separable_cost,
                                                      channels=np.int64(64)).error, None),
]


@pytest.mark.parametrize("name, call, phrase", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_raises_a_clear_error(name, call, phrase):
    from convbook.errors import ConvbookError

    with pytest.raises((ValueError, ConvbookError), match=phrase):
        call()


@pytest.mark.parametrize("name, call, phrase", VIEW_ERRORS, ids=[e[0] for e in VIEW_ERRORS])
def test_bad_explorer_input_becomes_a_message(name, call, phrase):
    view = call()
    assert view.figure is None and view.error and phrase in view.error, view.error


@pytest.mark.parametrize("name, call, expected", VALUES, ids=[v[0] for v in VALUES])
def test_edge_input_returns_the_right_number(name, call, expected):
    assert call() == expected


def test_debug_shows_whole_tracebacks(monkeypatch):
    """A reader sees one line (IPython's _render_traceback_); CONVBOOK_DEBUG=1 hides that hook
    so IPython shows the frames behind it."""
    from convbook.errors import ConfigError

    error = ConfigError("groups=3 must divide 8")
    monkeypatch.delenv("CONVBOOK_DEBUG", raising=False)
    assert error._render_traceback_() == ["ConfigError: groups=3 must divide 8"]
    monkeypatch.setenv("CONVBOOK_DEBUG", "1")
    assert not hasattr(error, "_render_traceback_")


@pytest.mark.slow
def test_the_probe_finds_no_crash_no_silent_error_and_few_raw_errors():
    """ci/probe.py: 700 bad and edge inputs across the public API, each in a child process that
    may crash or hang without taking the test with it."""
    from conftest import load_ci_script

    probe = load_ci_script("probe")
    outcomes = probe.run()
    assert len(outcomes) >= 300
    assert probe.passed(outcomes), probe.report(outcomes)
