import pytest
import torch
from convbook import excitation, nets


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
