"""The experiments beside the miniature's table (docs/PROTOCOL.md §10): SWA continuing the SGD run
from the state it kept before its end (the learning-rate schedule comparison), SWA from the finished
SGD run reported after given epochs (Table 2's shape), and a constant rate from scratch. Protocol
arithmetic on the shipped configs, then the continuations end to end on tiny data."""

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import REPO

from swa_bench.cli import main
from swa_bench.config import ConfigError, load_config
from swa_bench.protocol import resolve_protocol
from swa_bench.records import RunRecords
from swa_bench.tables import setting_label

EXPERIMENTS = REPO / "configs" / "mini-experiments"
MINI = REPO / "configs" / "mini" / "preresnet20_ratio0.5.yaml"


def protocol(name, method="swa", **overrides):
    return resolve_protocol(load_config(EXPERIMENTS / f"{name}.yaml", {"run.method": method, **overrides}))


def test_schedule_comparison_starts_from_the_kept_state():
    p = protocol("preresnet20_from_sgd")
    assert (p.first_epoch, p.first_collection, p.epochs) == (96, 97, 150)
    assert p.report_points == {"swa_1": 120, "swa_1.25": 150}  # budgets count the SGD epochs before it
    assert all(p.lr(e) == 0.05 for e in range(96, 150))
    # The SGD run it continues keeps exactly that state; the table's SGD runs are the same runs.
    sgd = protocol("preresnet20_from_sgd", "sgd")
    assert sgd.keep_states == (96,) and sgd == resolve_protocol(load_config(MINI, {"run.method": "sgd"}))


def test_finetune_reports_after_epochs_from_the_end_of_the_sgd_run():
    p = protocol("preresnet20_finetune")
    assert (p.first_epoch, p.first_collection, p.epochs) == (120, 121, 133)
    assert p.report_points == {"swa_7ep": 127, "swa_13ep": 133}
    lrs = [p.lr(120, s, 8) for s in range(8)]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(1e-5)  # one cycle per epoch, ends at alpha2


def test_constant_rate_from_scratch():
    p = protocol("preresnet20_constant_lr")
    assert p.first_collection == 84 and p.epochs == 180
    assert {p.lr(e) for e in range(180)} == {0.05}


def test_from_epoch_must_be_a_kept_state():
    with pytest.raises(ConfigError, match=r"swa.from_epoch: the SGD run has no state after 100 epochs: .* 96 epochs"):
        load_config(EXPERIMENTS / "preresnet20_from_sgd.yaml", {"swa.from_epoch": 100})
    with pytest.raises(ConfigError, match="swa.from_epoch: only when continuing the SGD run"):
        load_config(MINI, {"swa.from_epoch": 96})
    with pytest.raises(ConfigError, match="swa.report_epochs: only for runs from pretrained weights or the SGD run"):
        load_config(MINI, {"swa.report_epochs": [5]})


def test_a_named_variant_set_on_the_command_line_is_its_row_not_a_setting():
    summary = {
        "data": {"format": "imagefolder"},
        "budget_scale": 1,
        "train_subset": 1000,
        "overrides": {"swa.variant": "x", "swa.lr": 0.1, "optim.weight_decay": 0.001},
    }
    assert setting_label(summary) == "ImageFolder copy; 1000 train images; optim.weight_decay=0.001"
    del summary["overrides"]["swa.variant"]
    assert "swa.lr=0.1" in setting_label(summary)


def test_an_evaluation_cadence_is_not_a_setting():
    """Seed 0 of the miniature is evaluated every 10 epochs, the others every 30: one row."""
    summary = {
        "data": {"format": "imagefolder"},
        "budget_scale": 1,
        "train_subset": 1000,
        "overrides": {"schedule.eval_every": 10},
    }
    assert setting_label(summary) == "ImageFolder copy; 1000 train images"


# --------------------------------------------------------------------------------------------------
# End to end on tiny data: 100 CIFAR-10 images, B = 6 (budget scale 0.05), PreResNet-20.

SCALE = [
    "--budget-scale",
    "0.05",
    "--device",
    "cpu",
    "--quiet",
    "--set",
    "data.train_subset=null",
    "--set",
    "data.verify_checksums=false",
    "--set",
    "data.loader=torch",
]


def train(config, method, data, out, *extra):
    args = [
        "train",
        "--config",
        str(config),
        "--method",
        method,
        "--data-path",
        str(data),
        "--out",
        str(out),
        *SCALE,
        *extra,
    ]
    return CliRunner().invoke(main, args)


def test_continuations_of_one_sgd_run(tmp_path, tiny_cifar10):
    out = tmp_path / "runs"
    assert train(MINI, "sgd", tiny_cifar10, out).exit_code == 0
    sgd_dir = out / "cifar10" / "preresnet20" / "sgd" / "seed0-scale0.05"
    kept = torch.load(sgd_dir / "checkpoints" / "state_epoch5.pt", map_location="cpu")

    # The schedule comparison: from the state after 5 of 6 epochs (0.8 B), a cyclical variant named on
    # the command line.
    result = train(
        EXPERIMENTS / "preresnet20_from_sgd.yaml",
        "swa",
        tiny_cifar10,
        out,
        "--set",
        "swa.variant=cyc",
        "--set",
        "swa.lr_schedule=cyclical",
        "--set",
        "swa.alpha1=0.1",
        "--set",
        "swa.alpha2=0.001",
    )
    assert result.exit_code == 0, result.output
    run = out / "cifar10" / "preresnet20" / "swa-cyc" / "seed0-scale0.05"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["start_point"] == {"run": str(sgd_dir), "epoch": 5}
    assert list(summary["results"]) == ["swa_1", "swa_1.25"]
    rows = RunRecords(run).read_metrics()
    assert [r["epoch"] for r in rows] == [6, 7, 8] and rows[0]["swa_count"] == 1

    # Table 2's shape: from the end of the SGD run, its point included in the average.
    result = train(EXPERIMENTS / "preresnet20_finetune.yaml", "swa", tiny_cifar10, out)
    assert result.exit_code == 0, result.output
    run = out / "cifar10" / "preresnet20" / "swa-finetune-cyclical" / "seed0-scale0.05"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["start_point"]["epoch"] == 6 and list(summary["results"]) == ["swa_7ep", "swa_13ep"]
    # At this scale both report points fall after the first extra epoch: the start point and one model.
    assert [r["swa_count"] for r in RunRecords(run).read_metrics()] == [2]

    # Both rows are paired with the SGD run in the table.
    table = CliRunner().invoke(main, ["table", str(out), "--format", "csv"])
    assert table.exit_code == 0, table.output
    assert "cyc,swa_1.25" in table.output and "finetune-cyclical,swa_13ep" in table.output
    assert kept["epoch"] == 5
