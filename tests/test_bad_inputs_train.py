"""Bad inputs at the public boundary of training and data (train, segmentation, data,
synthetic), in the style of test_bad_inputs.py: each must raise a clear error (our
``ValueError`` subclasses, naming the argument, its value and what would work) or return the
right number. Nothing may raise a raw torch error or return a silently wrong value."""

import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT
from convbook import data, segmentation, synthetic, train
from torch import nn

BAD_WHOLE = (0, -1, 2.5, "64", True)  # not a whole number >= 1


def _tiny():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10))


def _pooled_norm():
    """Batch norm after pooling to 1x1: one value per channel when a batch holds one image."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1),
                         nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 10))


def _data(n=16):
    g = torch.Generator().manual_seed(n)
    labels = torch.arange(n) % 10  # every class up to 9 is there once n >= 10
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), labels


def _fit(train_data=None, test=None, model=None, **changes):
    changes.setdefault("epochs", 1)
    changes.setdefault("batch_size", 8)
    train_data = _data() if train_data is None else train_data
    return train.fit(model or _tiny(), train_data, test, progress=False, **changes)


def _nan_weights():
    model = _tiny()
    with torch.no_grad():
        model[0].weight[0, 0, 0, 0] = math.nan
    return model


class _NaNForward(nn.Module):
    """Finite weights, finite data, a forward pass that overflows: no lr is to blame."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 10)

    def forward(self, x):
        return self.linear(x.mean((2, 3))) * math.inf


class _NoWeights(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10]


_RINGS = synthetic.rings(8, size=16, seed=3)


def _dense_net(out=3):
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, out, 1))


def _fit_dense(train_data=None, test=None, classes=3, model=None, recipe=None, **options):
    recipe = recipe or segmentation.DENSE_RECIPE.with_(epochs=1, batch_size=4)
    train_data = _RINGS if train_data is None else train_data
    test = _RINGS if test is None else test
    return segmentation.fit_dense(model or _dense_net(), train_data, test, classes, recipe,
                                  **options)


def _with(labels, at, value):
    labels = labels.clone()
    labels.view(-1)[at] = value
    return labels


def _folder(count):
    """An ImageFolder tree with ``count`` training files (empty: describe_source only counts)."""
    root = Path(tempfile.mkdtemp(prefix="convbook-test-"))
    for split in data.SPLITS:
        for k, name in enumerate(data.CLASSES):
            (root / split / name).mkdir(parents=True)
            if split == "train":
                for i in range(count // 10 + (k < count % 10)):
                    (root / split / name / f"{i}.png").touch()
    return root


X, Y = _data()
RX, RY = _RINGS
T = torch.randint(0, 3, (2, 8, 8), generator=torch.Generator().manual_seed(1))

# (what is tried, a call, the phrase the error must contain)
ERRORS = [
    # Recipe: every field typed, finite and in range
    ("Recipe augment 'no'", lambda: train.Recipe(augment="no"), "augment must be True"),
    ("Recipe augment 1", lambda: train.Recipe(augment=1), "augment must be True"),
    ("Recipe flip_tta 'yes'", lambda: train.Recipe(flip_tta="yes"), "flip_tta must be True"),
    ("Recipe shift_tta 1", lambda: train.Recipe(shift_tta=1), "shift_tta must be True"),
    ("Recipe nesterov None", lambda: train.Recipe(nesterov=None), "nesterov must be True"),
    ("Recipe weight_decay inf", lambda: train.Recipe(weight_decay=math.inf),
     "weight_decay must be >= 0 and finite"),
    ("Recipe weight_decay NaN", lambda: train.Recipe(weight_decay=math.nan),
     "weight_decay must be >= 0"),
    ("Recipe weight_decay -0.1", lambda: train.Recipe(weight_decay=-0.1),
     "weight_decay must be >= 0"),
    ("Recipe lr '0.1'", lambda: train.Recipe(lr="0.1"), "lr must be a finite number > 0"),
    ("Recipe lr True", lambda: train.Recipe(lr=True), "lr must be a finite number > 0"),
    ("Recipe momentum 1.5", lambda: train.Recipe(momentum=1.5), r"momentum must be in \[0, 1\)"),
    ("Recipe momentum NaN", lambda: train.Recipe(momentum=math.nan), "momentum must be in"),
    ("Recipe momentum '0.9'", lambda: train.Recipe(momentum="0.9"), "momentum must be in"),
    ("Recipe label_smoothing 1.0", lambda: train.Recipe(label_smoothing=1.0),
     "label_smoothing must be in"),
    ("Recipe label_smoothing NaN", lambda: train.Recipe(label_smoothing=math.nan),
     "label_smoothing must be in"),
    ("Recipe warmup inf", lambda: train.Recipe(warmup=math.inf), "warmup is a share"),
    ("Recipe epochs 2.5", lambda: train.Recipe(epochs=2.5), "epochs must be a whole number"),
    ("Recipe epochs True", lambda: train.Recipe(epochs=True), "epochs must be a whole number"),
    *[(f"Recipe batch_size {bad!r}", lambda bad=bad: train.Recipe(batch_size=bad), "batch_size")
      for bad in BAD_WHOLE],
    ("RECIPE.with_ augment 'no'", lambda: train.RECIPE.with_(augment="no"), "augment"),
    ("DENSE_RECIPE.with_ weight_decay inf",
     lambda: segmentation.DENSE_RECIPE.with_(weight_decay=math.inf), "weight_decay"),
    # fit, evaluate, predict: arguments
    *[(f"evaluate batch_size {bad!r}", lambda bad=bad: train.evaluate(_tiny(), (X, Y), bad),
       "batch_size") for bad in BAD_WHOLE],
    *[(f"predict batch_size {bad!r}", lambda bad=bad: train.predict(_tiny(), X, bad),
       "batch_size") for bad in BAD_WHOLE],
    *[(f"fit batch_size {bad!r}", lambda bad=bad: _fit(batch_size=bad), "batch_size")
      for bad in BAD_WHOLE],
    ("fit recipe a dict", lambda: train.fit(_tiny(), (X, Y), recipe={"epochs": 1}),
     r"recipe must be a train.Recipe.*with_\(\*\*settings\)"),
    ("fit recipe in the test set's place", lambda: train.fit(_tiny(), (X, Y), train.RECIPE),
     "pass the recipe by name"),
    ("sgd_schedule recipe a dict", lambda: train.sgd_schedule(_tiny(), {"lr": 0.1}, 10),
     "recipe must be a train.Recipe"),
    ("sgd_schedule total_steps 0", lambda: train.sgd_schedule(_tiny(), train.RECIPE, 0),
     "total_steps must be >= 1"),
    ("fit a model class", lambda: _fit(model=nn.Linear), "call it to build one"),
    ("fit a model name", lambda: train.fit("resnet", (X, Y)), "nn.Module instance"),
    ("predict with a parameterless model", lambda: train.predict(_NoWeights(), X),
     "has no parameters"),
    ("fit seed 2.5", lambda: _fit(seed=2.5), "seed must be a whole number"),
    ("fit seed '0'", lambda: _fit(seed="0"), "seed must be a whole number"),
    ("seed_everything 2.5", lambda: train.seed_everything(2.5), "seed must be a whole number"),
    ("fit amp 'yes'", lambda: _fit(amp="yes"), "amp must be True or False or None"),
    ("fit progress 'no'", lambda: train.fit(_tiny(), (X, Y), progress="no"),
     "progress must be True or False"),
    ("fit measure_train_error 1", lambda: _fit(measure_train_error=1),
     "measure_train_error must be True or False"),
    ("predict flip_tta 'yes'", lambda: train.predict(_tiny(), X, flip_tta="yes"),
     "flip_tta must be True or False"),
    ("predict shift_tta None", lambda: train.predict(_tiny(), X, shift_tta=None),
     "shift_tta must be True or False"),
    # fit, evaluate, predict: data
    ("fit one unbatched image", lambda: _fit((X[0], Y[:1])), r"N x 3 x H x W.*images\[None\]"),
    ("predict one unbatched image", lambda: train.predict(_tiny(), X[0]), "add the batch dimension"),
    ("predict an empty batch", lambda: train.predict(_tiny(), X[:0]), "holds no images"),
    ("predict [0, 1] float images", lambda: train.predict(_tiny(), X.float() / 255),
     r"uint8.*\(x \* 255\)\.round\(\)\.to\(torch\.uint8\)"),
    ("predict NaN float images", lambda: train.predict(_tiny(), torch.full((2, 3, 32, 32), math.nan)),
     "uint8"),
    ("evaluate 0-255 float images", lambda: train.evaluate(_tiny(), (X.float(), Y)),
     r"x\.round\(\)\.to\(torch\.uint8\)"),
    ("fit a list of (image, label) samples", lambda: _fit(list(zip(X, Y))), "needs stacking"),
    ("fit a CifarData as the training pair", lambda: _fit(data.CifarData((X, Y), (X, Y), "x")),
     r"pass its \.train"),
    ("fit images alone", lambda: _fit(X), "must be a tuple"),
    ("fit one-hot labels", lambda: _fit((X, nn.functional.one_hot(Y, 10))), "1-D int64"),
    ("fit a model with no classification head",
     lambda: _fit(model=nn.Sequential(nn.Conv2d(3, 4, 3))), "N x classes scores .N x 10"),
    ("fit a 3-class model on labels 0..9",
     lambda: _fit(model=nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 3))),
     "labels up to 9 need 10 outputs"),
    ("fit test labels beyond the model", lambda: _fit(test=(X, Y + 1)), r"test labels must lie"),
    ("fit batch of one under pooled batch norm", lambda: _fit(model=_pooled_norm(), batch_size=1),
     "batch_size >= 2"),
    ("fit NaN initial weights", lambda: _fit(model=_nan_weights()), "not finite before training"),
    ("fit a forward pass that overflows", lambda: _fit(model=_NaNForward()),
     "first step, before any update.*lr is not the cause"),
    ("fit a diverging lr", lambda: _fit(_data(64), lr=1e6, epochs=2, batch_size=16),
     "diverged.*smaller lr"),
    # segmentation
    *[(f"fit_dense classes {bad!r}", lambda bad=bad: _fit_dense(classes=bad), "classes")
      for bad in (0, -1, 2.5)],
    ("fit_dense a training label 5 of 3 classes", lambda: _fit_dense((RX, _with(RY, 7, 5))),
     r"train labels holds label 5 .*0\.\.2"),
    ("fit_dense a test label -1", lambda: _fit_dense(test=(RX, _with(RY, 7, -1))),
     r"test labels holds label -1 .*0\.\.2"),
    ("fit_dense float labels", lambda: _fit_dense((RX, RY.float())), "int64"),
    ("fit_dense uint8 images", lambda: _fit_dense(((RX * 255).clamp(0, 255).to(torch.uint8), RY)),
     r"float N x C x H x W.*x\.float\(\) / 255"),
    ("fit_dense NaN images", lambda: _fit_dense((RX * math.nan, RY)), "NaN or infinite pixels"),
    ("fit_dense images alone", lambda: _fit_dense(RX), "must be a pair"),
    ("fit_dense recipe a dict", lambda: _fit_dense(recipe={"epochs": 1}),
     r"recipe must be a train.Recipe \(e.g. segmentation.DENSE_RECIPE\)"),
    ("fit_dense a 2-class model for 3 classes", lambda: _fit_dense(model=_dense_net(2)),
     "N x classes x H x W"),
    ("fit_dense NaN initial weights",
     lambda: _fit_dense(model=_dense_net().apply(lambda m: nn.init.constant_(m.weight, math.nan)
                                                 if isinstance(m, nn.Conv2d) else None)),
     "not finite before training"),
    ("fit_dense seed '0'", lambda: _fit_dense(seed="0"), "seed must be a whole number"),
    ("fit_dense amp 'no'", lambda: _fit_dense(amp="no"), "amp must be"),
    ("fit_dense device 'gpu0'", lambda: _fit_dense(device="gpu0"), "not a device name"),
    ("predict_labels batch_size 0", lambda: segmentation.predict_labels(_dense_net(), RX, 0),
     "batch_size"),
    ("iou_per_image target label 3 of 3", lambda: segmentation.iou_per_image(T, T + 1, 3),
     r"target holds label 3 .*0\.\.2"),
    ("iou_per_image negative target", lambda: segmentation.iou_per_image(T, T - 1, 3),
     r"target holds label -1"),
    ("iou_per_image predicted label 3", lambda: segmentation.iou_per_image(T + 1, T, 3),
     r"predicted holds label 3"),
    ("iou_per_image float target", lambda: segmentation.iou_per_image(T, T.float(), 3), "int64"),
    ("iou_per_image lists", lambda: segmentation.iou_per_image([0], [0], 3), "label maps"),
    # data
    ("CifarData float images", lambda: data.CifarData((X.float(), Y), (X, Y), "x"), "uint8"),
    ("CifarData [0, 1] test images", lambda: data.CifarData((X, Y), (X.float() / 255, Y), "x"),
     r"\(x \* 255\)\.round\(\)"),
    ("CifarData HWC images", lambda: data.CifarData((X.permute(0, 2, 3, 1), Y), (X, Y), "x"),
     "3 channels first"),
    ("CifarData short labels", lambda: data.CifarData((X, Y[:-1]), (X, Y), "x"),
     "pair one to one"),
    *[(f"load train_size {bad!r}", lambda bad=bad: data.load(bad, 10, root="/nonexistent"),
       "train_size must be a positive whole number") for bad in BAD_WHOLE],
    ("load test_size '10'", lambda: data.load(10, "10", root="/nonexistent"), "test_size"),
    ("cifar10 n 0", lambda: data.cifar10("train", "/nonexistent", n=0), "n must be"),
    ("cifar10 seed 1.5", lambda: data.cifar10("train", "/nonexistent", seed=1.5), "seed"),
    ("cifar10 device 'gpu0'", lambda: data.cifar10("train", "/nonexistent", device="gpu0"),
     "not a device name"),
    # synthetic
    ("rings noise -1", lambda: synthetic.rings(4, noise=-1.0), "noise must be a finite number"),
    ("rings noise NaN", lambda: synthetic.rings(4, noise=math.nan), "noise must be"),
    ("rings thickness 0", lambda: synthetic.rings(4, thickness=0), "thickness must be"),
    ("rings size '32'", lambda: synthetic.rings(4, size="32"), "size must be a whole number"),
    ("digits noise inf", lambda: synthetic.digits(2, (1.0, 1.0), noise=math.inf), "noise"),
    ("digits scales one number", lambda: synthetic.digits(2, 1.0), "scales must be a pair"),
    ("digit_data test_per_scale 0", lambda: synthetic.digit_data(2, 0), "test_per_scale"),
    ("digit_data no test scales", lambda: synthetic.digit_data(2, 2, test_scales=()),
     "test_scales"),
    ("as_images 0-255 floats", lambda: synthetic.as_images(torch.full((1, 1, 4, 4), 200.0)),
     "0-255 pixels"),
    ("as_images uint8", lambda: synthetic.as_images(torch.zeros(1, 1, 4, 4, dtype=torch.uint8)),
     "converted already"),
    ("as_images 3 channels", lambda: synthetic.as_images(torch.rand(1, 3, 4, 4)),
     "N x 1 x H x W"),
    ("as_images NaN", lambda: synthetic.as_images(torch.full((1, 1, 4, 4), math.nan)), "NaN"),
]

# (what is tried, a call, a check the result must pass)
VALUES = [
    ("fit without a test set has no test accuracy", lambda: _fit(),
     lambda r: r.test_accuracy is None and r.predictions is None),
    ("fit without a test set says so", lambda: _fit().describe(),
     lambda text: text.startswith("no test set")),
    ("fit with a test set scores it", lambda: _fit(test=(X, Y)),
     lambda r: 0 <= r.test_accuracy <= 1 and "% test accuracy" in r.describe()),
    ("a final batch of one image under batch norm is dropped",
     lambda: _fit(_data(17), model=_pooled_norm()), lambda r: r.steps == 2),
    ("a final batch of two images is kept", lambda: _fit(_data(18), model=_pooled_norm()),
     lambda r: r.steps == 3),
    ("a single training image without batch norm trains", lambda: _fit(_data(1)),
     lambda r: r.steps == 1),
    ("batch_size 1 keeps every image", lambda: _fit(_data(3), batch_size=1),
     lambda r: r.steps == 3),
    ("a list pair trains as a tuple does", lambda: _fit([X, Y]), lambda r: r.steps == 2),
    ("Recipe augment False", lambda: train.Recipe(augment=False).augment, lambda a: a is False),
    ("Recipe lr as a numpy float", lambda: train.Recipe(lr=np.float64(0.1)).lr,
     lambda lr: lr == 0.1),
    ("Recipe weight_decay 0", lambda: train.Recipe(weight_decay=0).weight_decay,
     lambda wd: wd == 0),
    ("batch_count keeps incomplete batches but a last single image",
     lambda: [train.batch_count(n, 8) for n in (1, 7, 8, 9, 10, 17)],
     lambda counts: counts == [1, 1, 1, 1, 2, 2]),
    ("count_text under 1,000", lambda: data.count_text(600), lambda t: t == "600-image"),
    ("count_text of whole thousands", lambda: data.count_text(10_000), lambda t: t == "10k"),
    ("count_text of 1,500", lambda: data.count_text(1500), lambda t: t == "1,500-image"),
    ("describe_source of a 60-image folder", lambda: data.describe_source(_folder(60)),
     lambda t: "60-image training subset" in t and "0k" not in t),
    ("as_images of [0, 1] floats", lambda: synthetic.as_images(torch.full((1, 1, 2, 2), 0.5)),
     lambda x: x.dtype == torch.uint8 and x.shape == (1, 3, 2, 2) and bool((x == 128).all())),
    ("as_images clips noisy digits", lambda: synthetic.as_images(torch.tensor(
        [[[[-0.2, 1.3]]]])), lambda x: x[0, 0, 0].tolist() == [0, 255]),
    ("iou_per_image of a perfect prediction", lambda: segmentation.iou_per_image(T, T, 3),
     lambda iou: bool((iou[~iou.isnan()] == 1).all())),
    ("fit_dense trains and scores", lambda: _fit_dense(),
     lambda r: r.ious.shape == (8, 3) and math.isfinite(r.miou)),
]


@pytest.mark.parametrize("name, call, phrase", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_raises_a_clear_error(name, call, phrase):
    with pytest.raises(ValueError, match=phrase):
        call()


@pytest.mark.parametrize("name, call, check", VALUES, ids=[v[0] for v in VALUES])
def test_edge_input_is_accepted_and_right(name, call, check):
    assert check(call())


def test_divergence_advice_blames_the_lr_only_when_it_can():
    nan_batch = torch.full((2, 3, 4, 4), math.nan)
    on_data = train.diverged("the loss became nan", 1, 5, 0.1, first_step=False, batch=nan_batch)
    assert isinstance(on_data, train.DivergedError) and "fix the data" in str(on_data)
    assert "smaller lr" not in str(on_data)
    at_start = train.diverged("the loss became nan", 1, 1, 0.1, first_step=True)
    assert "lr is not the cause" in str(at_start) and "smaller lr" not in str(at_start)
    later = train.diverged("the loss became inf", 2, 9, 0.4, first_step=False,
                           batch=torch.zeros(2, 3, 4, 4))
    assert "epoch 2 (by step 9)" in str(later) and "smaller lr (e.g. 0.1)" in str(later)


DEFORMABLE_SCRIPT = """
import torch
from torch import nn
from convbook import segmentation, synthetic, train
from convbook.blocks import DeformableConv2d

torch.manual_seed(0)
g = torch.Generator().manual_seed(0)
x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=g)
y = torch.randint(0, 10, (64,), generator=g)
net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), DeformableConv2d(4, 4),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
try:
    train.fit(net, (x, y), epochs=3, batch_size=16, lr=1e6, progress=False, device="cpu",
              amp=False)
except train.DivergedError as exc:
    print("fit:", exc)
rx, ry = synthetic.rings(16, size=16, seed=1)
dense = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), DeformableConv2d(4, 4), nn.Conv2d(4, 3, 1))
recipe = segmentation.DENSE_RECIPE.with_(epochs=3, batch_size=4, lr=1e6)
try:
    segmentation.fit_dense(dense, (rx, ry), (rx[:4], ry[:4]), 3, recipe, device="cpu", amp=False)
except train.DivergedError as exc:
    print("fit_dense:", exc)
"""


def test_deformable_net_at_an_absurd_lr_raises_diverged_in_both_loops():
    """In a child process: were torchvision's kernel to crash on a NaN offset, pytest lives."""
    result = subprocess.run([sys.executable, "-c", DEFORMABLE_SCRIPT], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    for loop in ("fit:", "fit_dense:"):
        line = next((line for line in lines if line.startswith(loop)), "")
        assert "diverged" in line and "epoch" in line and "step" in line, result.stdout
