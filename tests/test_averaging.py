import copy

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from swa_bench.averaging import WeightAverage, has_batchnorm, recompute_bn
from swa_bench.models import create_model


def small_bn_net():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 5),
        nn.BatchNorm1d(5),
    )


def test_average_equals_mean_of_collected_weights():
    torch.manual_seed(0)
    model = small_bn_net()
    average = WeightAverage(model)
    snapshots = []
    for _ in range(7):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        snapshots.append([p.detach().clone() for p in model.parameters()])
        average.update(model)
    assert average.count == 7
    for i, p in enumerate(average.module.parameters()):
        expected = torch.stack([snap[i] for snap in snapshots]).mean(0)
        torch.testing.assert_close(p, expected, rtol=1e-5, atol=1e-6)
        assert p.grad is None  # never part of a backward pass


def test_first_collection_copies_not_the_starting_point():
    model = small_bn_net()
    average = WeightAverage(model)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3.0)
    average.update(model)
    assert all(torch.all(p == 3.0) for p in average.module.parameters())


def test_average_state_round_trip():
    model = small_bn_net()
    a = WeightAverage(model)
    a.update(model)
    a.update(model)
    b = WeightAverage(small_bn_net())
    b.load_state_dict(a.state_dict())
    assert b.count == 2
    for p, q in zip(a.module.parameters(), b.module.parameters()):
        assert torch.equal(p, q)


def test_recomputed_bn_statistics_equal_direct_statistics():
    torch.manual_seed(1)
    model = small_bn_net()
    data = torch.randn(50, 3, 6, 6) * 2 + 0.5
    # batch 16 over 50 samples: batches 16, 16, 16, 2 -- the last partial batch is where an
    # equal-weight average (torch's update_bn) would differ.
    loader = DataLoader(TensorDataset(data, torch.zeros(50)), batch_size=16, shuffle=False)
    with torch.no_grad():  # stale statistics that must be forgotten
        model[1].running_mean.fill_(9.0)
        model[1].running_var.fill_(9.0)
    model.eval()
    seen = recompute_bn(model, loader, torch.device("cpu"))
    assert seen == 50 and not model.training

    # Direct computation: BN input = conv output; mean over all samples and positions; the
    # variance as the per-sample-weighted average of per-batch unbiased variances (docs/PROTOCOL.md §2).
    with torch.no_grad():
        features = model[0](data)
    expected_mean = features.mean(dim=(0, 2, 3))
    torch.testing.assert_close(model[1].running_mean, expected_mean, rtol=1e-5, atol=1e-6)
    batch_vars, weights = [], []
    for chunk in features.split(16):
        batch_vars.append(chunk.transpose(0, 1).reshape(4, -1).var(dim=1, unbiased=True))
        weights.append(chunk.size(0))
    w = torch.tensor(weights, dtype=torch.float32) / 50
    expected_var = (torch.stack(batch_vars) * w[:, None]).sum(0)
    torch.testing.assert_close(model[1].running_var, expected_var, rtol=1e-5, atol=1e-6)
    assert model[1].momentum == 0.1 and model[5].momentum == 0.1  # restored


def test_recompute_bn_equals_the_reference_cumulative_momentum_pass():
    """The reference's bn_update sets momentum b / (n + b) per batch; the sync-free pass must agree."""
    torch.manual_seed(2)
    model = small_bn_net()
    loader = DataLoader(TensorDataset(torch.randn(45, 3, 6, 6), torch.zeros(45)), batch_size=8)
    reference = copy.deepcopy(model)
    layers = [m for m in reference.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in layers:
        m.reset_running_stats()
    reference.train()
    seen = 0
    with torch.no_grad():
        for inputs, _ in loader:
            for m in layers:
                m.momentum = inputs.size(0) / (seen + inputs.size(0))
            reference(inputs)
            seen += inputs.size(0)
    recompute_bn(model, loader, torch.device("cpu"))
    for (name, got), expected in zip(model.state_dict().items(), reference.state_dict().values()):
        if "running" in name:
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_recompute_bn_keeps_custom_momentum_and_skips_models_without_bn():
    model = create_model("wrn28x10", 10)
    assert model.head[0].momentum == 0.9
    loader = DataLoader(TensorDataset(torch.randn(2, 3, 32, 32), torch.zeros(2)), batch_size=2)
    recompute_bn(model, loader, torch.device("cpu"))
    assert model.head[0].momentum == 0.9
    vgg = create_model("vgg16", 10)
    before = copy.deepcopy(vgg.state_dict())
    assert not has_batchnorm(vgg)
    assert recompute_bn(vgg, loader, torch.device("cpu")) == 0
    assert all(torch.equal(before[k], v) for k, v in vgg.state_dict().items())
