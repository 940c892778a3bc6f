import pytest
import torch
from convbook import train
from torch import nn


def _colour_problem(n=256, seed=0):
    """Images whose class is their dominant colour channel: learnable in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=generator)
    images = torch.randint(0, 80, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    images[torch.arange(n), labels] += 150
    return images, labels


def _tiny_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def test_fit_lowers_the_loss_and_learns():
    torch.manual_seed(0)
    model = _tiny_net()
    result = train.fit(model, _colour_problem(), _colour_problem(seed=1), epochs=4,
                       batch_size=64, lr=0.1, progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.test_accuracy > 0.9
    assert result.train_seconds > 0 and len(result.history) == 4


def test_same_seed_same_numbers():
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = _tiny_net()
        result = train.fit(model, _colour_problem(), None, epochs=2, batch_size=64, seed=5,
                           progress=False)
        runs.append(([h["train_loss"] for h in result.history], model.state_dict()))
    assert runs[0][0] == runs[1][0]
    for key in runs[0][1]:
        assert torch.equal(runs[0][1][key], runs[1][1][key])


def test_augment_crops_and_flips_on_device():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).reshape(2, 3, 8, 8).to(torch.uint8)
    out = train.augment(images, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == images.shape and out.dtype == images.dtype
    # no padding: each output is the image or its mirror
    same = train.augment(images, torch.Generator().manual_seed(1), pad=0)
    for a, b in zip(same, images):
        assert torch.equal(a, b) or torch.equal(a, b.flip(2))


def test_evaluate_counts_correct_predictions():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.tensor([[1.0, 0.0]]).repeat(len(x), 1)

    images = torch.zeros(10, 3, 32, 32, dtype=torch.uint8)
    labels = torch.tensor([0] * 7 + [1] * 3)
    assert train.evaluate(Constant(), (images, labels)) == pytest.approx(0.7)


def test_fit_rejects_float_images():
    with pytest.raises(ValueError, match="uint8"):
        train.fit(_tiny_net(), (torch.zeros(4, 3, 32, 32), torch.zeros(4, dtype=torch.int64)))


def test_pick_device_prefers_what_is_given():
    assert train.pick_device("cpu").type == "cpu"


def test_fit_keeps_test_predictions_and_final_training_error():
    torch.manual_seed(0)
    test = _colour_problem(seed=1)
    result = train.fit(_tiny_net(), _colour_problem(), test, epochs=2, batch_size=64,
                       measure_train_error=True, progress=False)
    assert result.predictions.shape == (len(test[1]),)
    assert result.test_accuracy == pytest.approx((result.predictions.long() == test[1]).float()
                                                 .mean().item())
    assert 0 <= result.final_train_error <= 1
    assert result.steps == 2 * 4


def test_fit_with_bfloat16_autocast_on_the_cpu():
    torch.manual_seed(0)
    model = _tiny_net().to(memory_format=torch.channels_last)
    result = train.fit(model, _colour_problem(), _colour_problem(seed=1), epochs=3,
                       batch_size=64, lr=0.1, amp=True, device="cpu", progress=False)
    assert result.test_accuracy > 0.8
    # batch norm stays float32 under autocast
    assert model[1].weight.dtype == torch.float32 and model[1].running_mean.dtype == torch.float32


def test_one_step_runs_and_warmup_bounds_work():
    images, labels = _colour_problem(n=32)
    for warmup in (0.0, 0.5, 0.99):
        result = train.fit(_tiny_net(), (images, labels), None, epochs=1, batch_size=64,
                           warmup=warmup, progress=False)
        assert result.steps == 1 and len(result.history) == 1


def test_diverging_run_raises_instead_of_reporting():
    with pytest.raises(train.DivergedError, match="diverged.*smaller lr"):
        train.fit(_tiny_net(), _colour_problem(), _colour_problem(seed=1), epochs=2,
                  batch_size=64, lr=1e6, progress=False)


@pytest.mark.parametrize("changes, message", [
    ({"lr": 0.0}, "lr must be a finite number > 0"),
    ({"lr": float("nan")}, "lr must be a finite number > 0"),
    ({"lr": float("inf")}, "lr must be a finite number > 0"),
    ({"warmup": -1}, r"warmup is a share of the steps in \[0, 1\)"),
    ({"warmup": 1.0}, r"warmup is a share of the steps in \[0, 1\)"),
    ({"weight_decay": -1}, "weight_decay must be >= 0"),
    ({"label_smoothing": -0.1}, r"label_smoothing must be in \[0, 1\)"),
    ({"momentum": 0.0}, "Nesterov momentum needs momentum > 0"),
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"bogus": 1}, "unknown recipe field"),
])
def test_recipe_refuses_bad_settings(changes, message):
    with pytest.raises(ValueError, match=message):
        train.RECIPE.with_(**changes)


@pytest.mark.parametrize("make, message", [
    (lambda x, y: (x, y[:-1]), "must pair one to one"),
    (lambda x, y: (x, y.int()), "1-D int64"),
    (lambda x, y: (x, y + 10), r"labels must lie in 0..2"),
    (lambda x, y: (x[:, :1], y), "3 channels"),
    (lambda x, y: (x.permute(0, 2, 3, 1), y), "3 channels first"),
    (lambda x, y: (x[:0], y[:0]), "holds no images"),
])
def test_fit_refuses_bad_data(make, message):
    images, labels = _colour_problem(n=64)
    with pytest.raises(ValueError, match=message):
        train.fit(_tiny_net(), make(images, labels), None, epochs=1, progress=False)
    with pytest.raises(ValueError, match=message):
        train.fit(_tiny_net(), (images, labels), make(images, labels), epochs=1, progress=False)


def test_device_that_is_missing_is_refused():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no usable CUDA GPU"):
            train.pick_device("cuda")
    with pytest.raises(ValueError, match="not a device name"):
        train.pick_device("gpu0")


def test_normalize_builds_its_constants_once():
    x = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    train.normalize(x)
    constants = train._NORM_CONSTANTS[x.device]
    train.normalize(x)
    assert train._NORM_CONSTANTS[x.device] is constants


def test_early_epochs_can_train_on_smaller_images():
    """ci/bench_recipe.py's progressive-resizing candidates: the first epochs at low_res."""
    from convbook import nets, train

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (32,), generator=g)
    recipe = train.RECIPE.with_(epochs=2, batch_size=16, low_res_epochs=1, low_res=16)
    result = train.fit(nets.CifarNet(4), (images, labels), (images, labels), recipe,
                       progress=False)
    assert len(result.history) == 2 and 0 <= result.test_accuracy <= 1
    with pytest.raises(ValueError, match="low_res_epochs"):
        train.RECIPE.with_(epochs=2, low_res_epochs=2)


def test_whitened_stem_decorrelates_patches_and_stays_fixed():
    """ci/bench_recipe.py's whitening candidate: the stem's paired filters see uncorrelated,
    unit-variance responses on the training patches, and training does not move them."""
    from convbook import nets

    g = torch.Generator().manual_seed(0)
    # correlated pixels: a smooth random image plus a little noise
    base = torch.randint(0, 256, (64, 3, 8, 8), generator=g).float()
    images = torch.nn.functional.interpolate(base, size=32, mode="bilinear")
    images = (images + torch.randint(0, 8, images.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    model = nets.CifarNet(8)
    stem = train.whiten_stem(model, images)
    assert stem is train.first_image_conv(model) and stem.in_channels == 3
    assert not stem.weight.requires_grad
    w = stem.weight.detach().double()
    assert torch.allclose(w[0::2], -w[1::2])  # each filter beside its negative
    responses = torch.nn.functional.conv2d(train.normalize(images).double(), w[0::2])
    flat = responses.transpose(0, 1).reshape(4, -1)
    cov = torch.cov(flat)
    # whitened: near-identity covariance (eps keeps the smallest directions slightly below 1)
    assert torch.allclose(cov.diagonal(), torch.ones(4, dtype=torch.float64), atol=0.05)
    assert (cov - torch.diag(cov.diagonal())).abs().max() < 0.05

    labels = torch.randint(0, 10, (64,), generator=g)
    before = stem.weight.detach().clone()
    model = nets.CifarNet(8)
    train.fit(model, (images, labels), None, train.RECIPE.with_(epochs=1, batch_size=16,
                                                                whiten=True), progress=False)
    stem = train.first_image_conv(model)
    assert torch.equal(stem.weight.detach(), before)  # same data, same filters, never trained
    assert stem.weight.requires_grad  # an ordinary model again after the run


def test_alternating_flip_flips_each_image_every_other_epoch():
    """With alternate_flip, an image seen flipped in one epoch is seen unflipped in the next
    (crops aside): recorded through the augment function the loop calls."""
    seen = []
    original = train.augment

    def recording(images, generator, pad=4, flip=None):
        seen.append(flip.clone())
        return original(images, generator, pad=pad, flip=flip)

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (16,), generator=g)
    train.augment = recording
    try:
        train.fit(_tiny_net_10(), (images, labels), None,
                  train.RECIPE.with_(epochs=3, batch_size=16, alternate_flip=True),
                  progress=False)
    finally:
        train.augment = original
    assert len(seen) == 3
    # one batch per epoch holds every image, in a new order each epoch: compare as sets of counts
    assert 0 < int(seen[0].sum()) < 16
    assert int(seen[1].sum()) == 16 - int(seen[0].sum())
    assert int(seen[2].sum()) == int(seen[0].sum())
    with pytest.raises(ValueError, match="alternate_flip"):
        train.RECIPE.with_(alternate_flip="yes")


class _Views(nn.Module):
    """Records each view it is shown; its scores favour class 0 (weight 1) for the first
    ``plain`` views (the image, and its mirror) and class 1 (``shifted`` each) for the rest."""

    def __init__(self, shifted, plain=2):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.views, self.shifted, self.plain = [], shifted, plain

    def forward(self, x):
        self.views.append(x.detach().clone())
        unshifted = len(self.views) <= self.plain
        scores = torch.zeros(len(x), 2)
        scores[:, 0 if unshifted else 1] = 1.0 if unshifted else self.shifted
        return scores


def test_shift_tta_adds_one_pixel_shifts_at_half_weight():
    """shift_tta: the image and its mirror weigh one half, the four shifted views (up-left and
    down-right, edges reflected, each with its mirror) the other half."""
    image = torch.randint(0, 256, (1, 3, 6, 6), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    model = _Views(shifted=0.9)  # class 1 totals 4 x 0.9 / 2 = 1.8 < 2: class 0 wins
    assert train.predict(model, image, flip_tta=True, shift_tta=True, amp=False).item() == 0
    x = train.normalize(image)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    expected = [x, x.flip(3), padded[:, :, :-2, :-2], padded[:, :, :-2, :-2].flip(3),
                padded[:, :, 2:, 2:], padded[:, :, 2:, 2:].flip(3)]
    assert len(model.views) == 6
    for seen, want in zip(model.views, expected):
        assert torch.allclose(seen, want)
    model = _Views(shifted=1.1)  # 2.2 > 2: the shifted views now decide
    assert train.predict(model, image, flip_tta=True, shift_tta=True, amp=False).item() == 1
    model = _Views(shifted=5.0)  # without shift_tta the shifted views are never computed
    assert train.predict(model, image, flip_tta=True, amp=False).item() == 0
    assert len(model.views) == 2
    model = _Views(shifted=2.5, plain=1)  # shifts without mirrors: 1 for the image, 2 x 2.5 / 2 shifted
    assert train.predict(model, image, shift_tta=True, amp=False).item() == 1
    assert len(model.views) == 3 and torch.allclose(model.views[2], padded[:, :, 2:, 2:])


def _tiny_net_10():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def test_bench_marks_a_recipe_that_meets_the_target_and_one_that_does_not():
    """ci/bench_recipe.py's "target" column: today's accuracy in <= 60 % of the time, or 70 %."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "ci" / "bench_recipe.py"
    spec = importlib.util.spec_from_file_location("bench_recipe", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    today = {"recipe": "today", "accuracy": 66.3, "spread": 0.4, "seconds": 30.0}
    rows = [today,
            {"recipe": "fast", "accuracy": 66.4, "spread": 0.2, "seconds": 17.0},
            {"recipe": "fast, worse", "accuracy": 65.0, "spread": 0.2, "seconds": 15.0},
            {"recipe": "better", "accuracy": 70.2, "spread": 0.2, "seconds": 29.0},
            {"recipe": "slow", "accuracy": 66.5, "spread": 0.2, "seconds": 25.0}]
    marks = {line.split("  ")[0]: line.split()[-1] for line in bench.table(rows).splitlines()[1:]}
    assert marks == {"today": "-", "fast": "met", "fast, worse": "-", "better": "met", "slow": "-"}


def test_bench_warms_the_workers_up_before_it_times_a_row(monkeypatch):
    """The first row was timed while the workers were still starting: a warm-up comparison
    (unreported, other seeds) must run before the first measured one."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "ci" / "bench_recipe.py"
    spec = importlib.util.spec_from_file_location("bench_recipe_warm", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    calls = []

    class _Run:
        test_accuracy, result = 0.5, type("R", (), {"train_seconds": 1.0})()

    def compare(variants, data, profile, seeds, recipe, **options):
        calls.append((tuple(seeds), recipe.epochs, options["jobs"]))
        return {"baseline": type("C", (), {"runs": [_Run() for _ in seeds]})()}

    monkeypatch.setattr(bench.experiments, "compare", compare)
    monkeypatch.setattr(bench.data, "load", lambda *args: None)
    monkeypatch.setenv("CONVBOOK_CACHE", "unused")  # measure points it at a temporary folder
    rows = bench.measure({"today": bench.TODAY}, seeds=[0, 1], jobs=2)
    # the warm-up: one epoch, seeds no row uses, as many workers as the rows (the same pool)
    assert calls[0] == ((1_000, 1_001), 1, 2)
    assert calls[1] == ((0, 1), bench.TODAY.epochs, 2) and len(rows) == 1
