import pytest
import torch
from convbook import excitation, measure, nets
from convbook.blocks.se import ChannelGate, LocalChannelGate, SqueezeExcitation, eca_kernel_size
from convbook.errors import ConfigError


def test_collect_records_every_se_block():
    torch.manual_seed(0)
    model = nets.CifarResNet(14, 4, se_reduction=2)
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    weights = excitation.collect(model, images, batch_size=4)
    assert [w.shape for w in weights] == [(10, 4)] * 2 + [(10, 8)] * 2 + [(10, 16)] * 2
    assert all(((w > 0) & (w < 1)).all() for w in weights)


def test_collect_needs_se_blocks():
    with pytest.raises(ValueError, match="SqueezeExcitation"):
        excitation.collect(nets.CifarResNet(8, 4), torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_class_specificity_extremes():
    labels = torch.tensor([0, 0, 1, 1])
    by_class = torch.tensor([[0.1, 0.9], [0.1, 0.9], [0.8, 0.2], [0.8, 0.2]])
    assert excitation.class_specificity(by_class, labels) == pytest.approx(1.0)
    same = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.1, 0.9], [0.8, 0.2]])
    assert excitation.class_specificity(same, labels) == pytest.approx(0.0)


def test_block_measures_of_every_block():
    torch.manual_seed(0)
    model = nets.CifarResNet(8, 4, se_reduction=2)
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(20) % 2
    squeezed = excitation.collect(model, images, what="squeeze")
    assert [z.shape for z in squeezed] == [(20, 4), (20, 8), (20, 16)]
    measures = excitation.block_measures(model, images, labels)
    assert len(measures) == 3
    for m in measures:
        assert 0 <= m.specificity <= 1 and 0 <= m.squeeze_specificity <= 1
        assert 0 < m.spread < 0.5 and 0 <= m.class_shift < 0.5 and 0 < m.level < 1
    with pytest.raises(ValueError, match="'weights' or 'squeeze'"):
        excitation.collect(model, images, what="gates")


def test_recalibrate_batch_norm_sets_running_statistics_from_images():
    from convbook import nets
    from convbook.excitation import recalibrate_batch_norm
    from convbook.train import normalize
    torch.manual_seed(0)
    model = nets.CifarNet(4)
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8)
    first = model.features[0][1]  # the stem's batch norm
    assert torch.equal(first.running_mean, torch.zeros(4))
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k
               and "num_batches" not in k}
    recalibrate_batch_norm(model, images, batch_size=20)  # equal batches: their mean is the mean
    with torch.no_grad():
        stem = model.features[0][0](normalize(images))
    assert torch.allclose(first.running_mean, stem.mean(dim=(0, 2, 3)), atol=1e-4)
    assert first.momentum == 0.1  # restored
    for k, v in model.state_dict().items():
        if k in weights:
            assert torch.equal(v, weights[k])  # only the statistics moved


# --- the three channel gates (blocks.se) and chapter 8's gated networks -----------------------

GATE_BUILDERS = [lambda c: SqueezeExcitation(c, 4), ChannelGate, LocalChannelGate]


@pytest.mark.parametrize("build", GATE_BUILDERS)
def test_every_gate_keeps_the_shape_and_weighs_in_zero_one(build):
    torch.manual_seed(0)
    gate = build(16)
    x = torch.randn(3, 16, 5, 7)
    w = gate.weights(x)
    assert w.shape == (3, 16, 1, 1) and ((w > 0) & (w < 1)).all()
    torch.testing.assert_close(gate(x), x * w)


def test_parameter_counts_of_the_three_gates():
    assert measure.count_params(SqueezeExcitation(32, 4)) == 2 * 32 * 8 + 8 + 32
    assert measure.count_params(ChannelGate(32)) == 2 * 32  # a slope and an offset each
    assert measure.count_params(LocalChannelGate(32)) == 3  # one shared kernel, no bias
    assert measure.count_params(LocalChannelGate(32, kernel_size=5)) == 5


@pytest.mark.parametrize("channels, k", [(1, 1), (4, 1), (8, 3), (32, 3), (127, 3), (128, 5),
                                         (2047, 5), (2048, 7)])
def test_eca_kernel_size_follows_wang_et_al(channels, k):
    assert eca_kernel_size(channels) == k


def _moved_weights(gate, channel):
    """Which channels' weights change when only ``channel`` of the input changes."""
    torch.manual_seed(1)
    x = torch.randn(1, 8, 4, 4)
    y = x.clone()
    y[:, channel] += 1.0
    return (gate.weights(x) - gate.weights(y)).abs().flatten().gt(1e-7).nonzero().flatten().tolist()


def test_which_channels_each_gate_lets_a_weight_depend_on():
    torch.manual_seed(0)
    assert _moved_weights(ChannelGate(8), 3) == [3]  # its own channel only
    assert _moved_weights(LocalChannelGate(8, kernel_size=3), 3) == [2, 3, 4]  # neighbours
    assert _moved_weights(SqueezeExcitation(8, 2), 3) == list(range(8))  # every channel


def test_the_gate_starts_as_the_plain_sigmoid_of_the_channel_mean():
    x = torch.randn(2, 6, 3, 3)
    torch.testing.assert_close(ChannelGate(6).weights(x), torch.sigmoid(x.mean(dim=(2, 3),
                                                                               keepdim=True)))


@pytest.mark.parametrize("make, message", [
    (lambda: ChannelGate(0), "channels must be >= 1"),
    (lambda: LocalChannelGate(16, kernel_size=4), "kernel_size must be odd"),
    (lambda: LocalChannelGate(-2), "channels must be >= 1"),
    (lambda: eca_kernel_size(16, gamma=0), "gamma must be >= 1"),
    (lambda: eca_kernel_size(16, b=-1), "b must be a whole number >= 0"),
    (lambda: ChannelGate(8)(torch.randn(1, 4, 3, 3)), "expects 8 channels"),
    (lambda: LocalChannelGate(8)(torch.randn(8, 3, 3)), "unbatched"),
])
def test_gates_refuse_bad_arguments_and_inputs_clearly(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_gated_networks_put_a_gate_where_se_goes_on_the_same_initial_weights():
    from convbook.chapters import c08_excitation as c08

    torch.manual_seed(0)
    plain = nets.CifarResNet(14, 4)
    for name, kind in c08.GATES.items():
        torch.manual_seed(0)
        gated = c08.gated_resnet(14, 4, name)
        gates = [m for m in gated.modules() if isinstance(m, kind)]
        assert len(gates) == 6 and [g.scale_activation for g in gates]
        state = gated.state_dict()
        assert all(torch.equal(state[k], v) for k, v in plain.state_dict().items())
        images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
        weights = excitation.collect(gated, images)  # collect reads every kind of gate
        assert [w.shape[1] for w in weights] == [4, 4, 8, 8, 16, 16]
    with pytest.raises(ConfigError, match="gate must be one of"):
        c08.gated_resnet(14, 4, "ECA")


def test_last_block_specificity_reads_se_and_both_gates_over_every_seed():
    from convbook import experiments, profiles
    from convbook.chapters import c08_excitation as c08
    from convbook.data import CifarData

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (30, 3, 32, 32), dtype=torch.uint8, generator=g)
    data = CifarData((images, torch.arange(30) % 3), (images, torch.arange(30) % 3), "random")
    builds = {c08.SE: lambda: nets.CifarResNet(8, 4, se_reduction=2),
              **{name: (lambda name=name: c08.gated_resnet(8, 4, name)) for name in c08.GATES}}
    variants = []
    for name, build in builds.items():
        runs = []
        for seed in (0, 1):
            torch.manual_seed(seed)
            runs.append(experiments.Run(seed, 0.5, torch.ones(30), [], None, build().eval()))
        variants.append(experiments.Variant(name, 1, 1, runs))
    profile = profiles.get("smoke")
    results = experiments.Results(variants, profile, profile.recipe, "random", "cpu", (0, 1))
    last = c08.last_block_specificity(results, data)
    assert set(last) == {c08.SE, *c08.GATES} and all(0 <= v <= 1 for v in last.values())
    expected = sum(excitation.block_measures(r.model, images, data.test[1])[-1].specificity
                   for r in results[c08.LOCAL].runs) / 2
    assert last[c08.LOCAL] == pytest.approx(expected)
