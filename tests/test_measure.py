import pytest
from convbook import measure
from convbook.errors import ConfigError
from torch import nn


@pytest.mark.parametrize("groups", [1, 2, 4, 8, 32])
@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_conv_formulas_match_real_modules(groups, kernel_size):
    conv = nn.Conv2d(32, 64, kernel_size, padding=kernel_size // 2, groups=groups, bias=False)
    assert measure.count_params(conv) == measure.conv2d_params(32, 64, kernel_size, groups)
    assert measure.count_macs(conv, (32, 14, 14)) == measure.conv2d_macs(32, 64, kernel_size, 14, 14, groups)


def test_groups_divide_params_and_macs_exactly():
    table = measure.group_sweep(256, 256, 3, size=56, groups=[1, 2, 4, 8, 256])
    dense = table.rows[0]
    for row in table.rows:
        assert row["parameters (measured)"] * row["groups"] == dense["parameters (measured)"]
        assert row["MACs (measured)"] * row["groups"] == dense["MACs (measured)"]
        assert row["parameters (measured)"] == row["parameters (formula)"]
        assert row["MACs (measured)"] == row["MACs (formula)"]
    assert dense["parameters (measured)"] == 589_824  # the article's 256*3*3*256


def test_macs_count_linear_and_batch():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    assert measure.count_macs(model, (3, 2, 2)) == 60
    assert measure.count_macs(model, (4, 3, 2, 2)) == 240


def test_count_macs_restores_training_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    model.train()
    measure.count_macs(model)
    assert model.training


def test_latency_is_positive_seconds():
    assert 0 < measure.latency(nn.Conv2d(3, 8, 3), (3, 16, 16), min_run_time=0.05) < 1


@pytest.mark.parametrize("bad", [(3, 32), (0, 3, 32, 32), "3x32x32"])
def test_bad_input_size_says_what_works(bad):
    with pytest.raises(ValueError, match=r"\(3, 32, 32\)"):
        measure.count_macs(nn.Conv2d(3, 3, 1), bad)


def test_formula_rejects_groups_that_do_not_divide():
    with pytest.raises(ConfigError, match="values that work: 1, 2, 4"):
        measure.conv2d_params(12, 8, 3, groups=3)


class _TwoParts(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 4, 1)  # 16 parameters
        self.classifier = nn.Linear(4, 4)  # 20 parameters

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def test_compare_models_shares():
    table = measure.compare_models({"m": _TwoParts()}, (3, 8, 8), parts=("features", "classifier"))
    row = table.rows[0]
    assert row["parameters"] == 36
    assert row["MACs"] == 3 * 4 * 64 + 16
    assert row["share in features"] == f"{100 * 16 / 36:.1f}%"


def test_stacked_naive_inception_widens_by_the_conv_outputs():
    table = measure.stacked_inception_cost(192, (64, 128, 32), modules=3, size=8)
    assert table.column("input channels") == [192, 416, 640]
    params = table.column("parameters")
    assert params[0] < params[1] < params[2]


def test_compare_models_takes_per_model_input_sizes():
    table = measure.compare_models({"a": nn.Conv2d(3, 4, 1), "b": nn.Conv2d(8, 4, 1)},
                                   (3, 2, 2), input_sizes={"b": (8, 2, 2)})
    assert table.column("MACs") == [3 * 4 * 4, 8 * 4 * 4]


def test_separable_ratio_matches_formula():
    table = measure.separable_sweep([32, 128], [3, 5])
    for row in table.rows:
        assert row["ratio (measured)"] == row["1/C + 1/k² (formula)"]
        assert row["standard"] == row["kernel k"] ** 2 * row["channels C"] ** 2


def test_se_overhead_formula():
    for row in measure.se_overhead([16, 64, 256], [4, 16, 32]).rows:
        assert row["parameters (measured)"] == row["2Cs + s + C, s = max(C/r, 1) (formula)"]


def test_grouped_layers_at_equal_macs():
    table = measure.grouped_latency_at_equal_macs(64, [1, 4], size=8, batch=1)
    macs = table.column("MACs")
    assert abs(macs[1] - macs[0]) / macs[0] < 0.05
    assert all(t > 0 for t in table.column("latency (ms)"))
