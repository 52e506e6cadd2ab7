import math

import pytest
from conftest import REPO

from swa_bench.config import load_config
from swa_bench.protocol import resolve_protocol, scale_epochs
from swa_bench.schedules import piecewise_linear_lr

ROWS = [
    "cifar10/vgg16",
    "cifar100/vgg16",
    "cifar10/preresnet164",
    "cifar100/preresnet164",
    "cifar10/wrn28x10",
    "cifar100/wrn28x10",
]


def spec_lr(e, lr_init, D, r):
    """docs/PROTOCOL.md §2, transcribed: t = e / D; f = 1 | 1 - (1 - r)(t - 0.5)/0.4 | r."""
    t = e / D
    if t <= 0.5:
        f = 1.0
    elif t <= 0.9:
        f = 1 - (1 - r) * (t - 0.5) / 0.4
    else:
        f = r
    return lr_init * f


def boundary_epochs(D, total):
    half, ninety = D * 0.5, D * 0.9
    picks = {0, math.floor(half), math.floor(half) + 1, math.ceil(ninety) - 1, math.ceil(ninety), total - 1}
    return sorted(e for e in picks if 0 <= e < total)


@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("method", ["sgd", "swa"])
def test_schedule_matches_spec_at_boundaries(row, method):
    cfg = load_config(REPO / "configs" / f"{row}.yaml", {"run.method": method})
    proto = resolve_protocol(cfg)
    if method == "sgd":
        D, r = cfg.schedule.budget, 0.01
    else:
        D, r = cfg.swa.start, cfg.swa.lr / cfg.optim.lr_init
    for e in boundary_epochs(D, proto.epochs):
        assert proto.lr(e) == pytest.approx(spec_lr(e, cfg.optim.lr_init, D, r), rel=1e-12), (row, method, e)


def test_schedule_literal_values():
    # VGG-16 SGD: flat 0.05 through epoch 100 (t = 0.5), 0.0005 from t = 0.9 on.
    assert piecewise_linear_lr(100, 0.05, 200, 0.01) == pytest.approx(0.05)
    assert piecewise_linear_lr(101, 0.05, 200, 0.01) == pytest.approx(0.04938125)
    assert piecewise_linear_lr(180, 0.05, 200, 0.01) == pytest.approx(0.0005)
    # PreResNet-164 CIFAR-10 SWA: D = 126, swa_lr 0.01 reached at epoch 114 (t = 0.905).
    assert piecewise_linear_lr(113, 0.1, 126, 0.1) == pytest.approx(0.1 * (1 - 0.9 * (113 / 126 - 0.5) / 0.4))
    assert piecewise_linear_lr(114, 0.1, 126, 0.1) == pytest.approx(0.01)
    assert piecewise_linear_lr(224, 0.1, 126, 0.1) == pytest.approx(0.01)


@pytest.mark.parametrize(
    "row,points,start",
    [
        ("cifar10/vgg16", (200, 250, 300), 161),
        ("cifar100/preresnet164", (150, 188, 225), 126),
        ("cifar10/wrn28x10", (200, 250, 300), 161),
    ],
)
def test_swa_budget_points(row, points, start):
    proto = resolve_protocol(load_config(REPO / "configs" / f"{row}.yaml", {"run.method": "swa"}))
    assert tuple(proto.report_points.values()) == points
    assert list(proto.report_points) == ["swa_1", "swa_1.25", "swa_1.5"]
    assert proto.epochs == points[-1] and proto.first_collection == start and proto.schedule.length == start


def test_sgd_protocol():
    proto = resolve_protocol(load_config(REPO / "configs/cifar10/vgg16.yaml", {"run.method": "sgd"}))
    assert proto.epochs == 200 and proto.report_points == {"sgd": 200} and proto.first_collection is None
    assert not any(proto.collects_after(e) for e in range(200))


def test_collection_epochs_follow_reference():
    proto = resolve_protocol(load_config(REPO / "configs/cifar10/vgg16.yaml", {"run.method": "swa"}))
    collected = [e for e in range(proto.epochs) if proto.collects_after(e)]
    assert collected[0] == 160 and collected == list(range(160, 300))  # after epoch 161 (1-based) on
    every2 = resolve_protocol(
        load_config(REPO / "configs/cifar10/vgg16.yaml", {"run.method": "swa", "swa.c_epochs": 2})
    )
    assert [e + 1 for e in range(300) if every2.collects_after(e)][:3] == [161, 163, 165]


def test_evaluation_cadence():
    proto = resolve_protocol(load_config(REPO / "configs/cifar100/preresnet164.yaml", {"run.method": "swa"}))
    evaluated = [e + 1 for e in range(proto.epochs) if proto.evaluates_after(e)]
    assert evaluated[:4] == [1, 5, 10, 15]
    assert {150, 188, 225} <= set(evaluated)  # every report point, 188 off the 5-epoch grid


def test_budget_scale_applies_to_every_epoch_count():
    assert scale_epochs(187.5, 1) == 188 and scale_epochs(0.2, 1) == 1
    proto = resolve_protocol(
        load_config(REPO / "configs/cifar10/vgg16.yaml", {"run.method": "swa", "run.budget_scale": 0.02})
    )
    assert proto.report_points == {"swa_1": 4, "swa_1.25": 5, "swa_1.5": 6}
    assert proto.first_collection == 3 and proto.eval_every == 1 and proto.epochs == 6


# --------------------------------------------------------------------------------------------------
# The recipes of the PyramidNet and Shake-Shake rows, and the cyclical SWA rate (docs/PROTOCOL.md §2)


def spec_cyclical(i, alpha1, alpha2, c):
    """docs/PROTOCOL.md §2, transcribed: t(i) = (((i - 1) mod c) + 1) / c; lr = (1 - t) alpha1 + t alpha2."""
    t = (((i - 1) % c) + 1) / c
    return (1 - t) * alpha1 + t * alpha2


def _proto(row, **overrides):
    return resolve_protocol(load_config(REPO / "configs" / f"{row}.yaml", overrides))


def test_step_decay_of_the_pyramidnet_recipe():
    proto = _proto("cifar100/pyramidnet272", **{"run.method": "sgd"})
    assert proto.epochs == 300 and not proto.schedule.per_iteration
    assert [proto.lr(e) for e in (0, 149, 150, 224, 225, 299)] == pytest.approx([0.5, 0.5, 0.05, 0.05, 0.005, 0.005])


def test_per_iteration_cosine_of_the_shake_shake_recipe():
    proto = _proto("cifar10/shakeshake26_2x64d", **{"run.method": "sgd"})
    steps = 391  # 50,000 images in batches of 128
    assert proto.schedule.per_iteration and proto.epochs == 1800
    assert proto.lr(0, 0, steps) == pytest.approx(0.2)
    assert proto.lr(900, 0, steps) == pytest.approx(0.1)  # half way
    assert proto.lr(1799, steps - 1, steps) == pytest.approx(0.1 * (1 + math.cos(math.pi * (1 - 1 / (1800 * steps)))))
    assert proto.lr(0, 1, steps) < proto.lr(0, 0, steps)  # changes within an epoch
    floor = _proto("cifar10/shakeshake26_2x64d", **{"run.method": "sgd", "schedule.final_lr": 0.002})
    assert floor.lr(900, 0, steps) == pytest.approx(0.101)


@pytest.mark.parametrize("row", ["cifar100/pyramidnet272", "cifar10/shakeshake26_2x64d"])
@pytest.mark.parametrize("c_epochs", [1, 3])
def test_cyclical_rate_matches_spec_at_cycle_starts_and_ends(row, c_epochs):
    proto = _proto(row, **{"run.method": "swa", "swa.c_epochs": c_epochs})
    cfg = load_config(REPO / "configs" / f"{row}.yaml")
    a1, a2, B = cfg.swa.alpha1, cfg.swa.alpha2, cfg.schedule.budget
    steps = 391
    c = c_epochs * steps
    assert proto.first_epoch == B and proto.schedule.per_iteration
    for cycle in range(3):
        first_epoch = B + cycle * c_epochs
        last_epoch = first_epoch + c_epochs - 1
        i_start, i_end = cycle * c + 1, (cycle + 1) * c
        assert proto.lr(first_epoch, 0, steps) == pytest.approx(spec_cyclical(i_start, a1, a2, c), rel=1e-12)
        assert proto.lr(last_epoch, steps - 1, steps) == pytest.approx(spec_cyclical(i_end, a1, a2, c), rel=1e-12)
        assert proto.lr(last_epoch, steps - 1, steps) == pytest.approx(a2)  # the low point, where it collects
        assert proto.lr(first_epoch, 0, steps) == pytest.approx(a1 - (a1 - a2) / c)
    # In the middle of a cycle, too.
    assert proto.lr(B, 100, steps) == pytest.approx(spec_cyclical(101, a1, a2, c), rel=1e-12)


@pytest.mark.parametrize("c_epochs", [1, 2, 5])
def test_collections_happen_exactly_at_cycle_ends(c_epochs):
    proto = _proto("cifar100/pyramidnet272", **{"run.method": "swa", "swa.c_epochs": c_epochs})
    steps = 7
    collected = [e for e in range(proto.first_epoch, proto.epochs) if proto.collects_after(e)]
    cycle_ends = [
        e
        for e in range(proto.first_epoch, proto.epochs)
        if ((e + 1 - proto.first_epoch) * steps) % (c_epochs * steps) == 0
    ]
    assert collected == cycle_ends and collected[0] == 300 + c_epochs - 1  # SGD's own point is not collected
    assert all(proto.lr(e, steps - 1, steps) == pytest.approx(proto.schedule.alpha2) for e in collected)
    assert proto.report_points == {"swa_1.25": 375, "swa_1.5": 450} and proto.epochs == 450


def test_shake_shake_cycles_replay_the_sgd_rates_of_epochs_1600_to_1700():
    """The SWA paper (arXiv v1): 100-epoch cycles replaying the SGD cosine between epochs 1600 and 1700.
    swa-bench's cycle falls linearly between the same end rates (the config says so), above the cosine inside."""
    sgd = _proto("cifar10/shakeshake26_2x64d", **{"run.method": "sgd"})
    swa = _proto("cifar10/shakeshake26_2x64d", **{"run.method": "swa"})
    steps = 391
    assert swa.collect_every == 100 and swa.report_points == {"swa_1.25": 2250, "swa_1.5": 2700}
    for cycle_start in (1800, 1900, 2600):
        assert swa.lr(cycle_start, 0, steps) == pytest.approx(sgd.lr(1600, 0, steps), rel=1e-4)
        assert swa.lr(cycle_start + 99, steps - 1, steps) == pytest.approx(sgd.lr(1699, steps - 1, steps), rel=1e-4)
        assert swa.lr(cycle_start + 50, 0, steps) > sgd.lr(1650, 0, steps)
    assert [e + 1 for e in range(1800, 2700) if swa.collects_after(e)][:4] == [1900, 2000, 2100, 2200]


def test_continuation_budget_points_at_small_scale():
    # Each point is B plus its own scaled extra epochs, so none falls inside the SGD run.
    proto = _proto("cifar10/shakeshake26_2x64d", **{"run.method": "swa", "run.budget_scale": 0.002})
    assert proto.first_epoch == 4 and proto.report_points == {"swa_1.25": 5, "swa_1.5": 6}


def test_cyclical_schedule_from_scratch_is_available_to_any_config():
    # A reference row with a cyclical SWA phase: the reference schedule (D = swa_start) down to alpha1,
    # then cycles of c epochs, the first ending at swa_start.
    proto = _proto(
        "cifar10/vgg16",
        **{
            "run.method": "swa",
            "swa.lr_schedule": "cyclical",
            "swa.alpha1": 0.01,
            "swa.alpha2": 0.001,
            "swa.c_epochs": 4,
        },
    )
    steps = 10
    assert proto.first_epoch == 0 and proto.first_collection == 161
    assert proto.lr(0) == pytest.approx(0.05)
    assert proto.lr(156, 0, steps) == pytest.approx(piecewise_linear_lr(156, 0.05, 161, 0.2))
    assert proto.lr(157, 0, steps) == pytest.approx(spec_cyclical(1, 0.01, 0.001, 40))  # cycle 1: epochs 158..161
    assert proto.lr(160, steps - 1, steps) == pytest.approx(0.001)
    assert [e + 1 for e in range(170) if proto.collects_after(e)] == [161, 165, 169]
