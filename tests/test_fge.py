"""FGE (--method fge): the triangular rate against the formula at every iteration of a cycle, the
collection epochs, the ensemble against a hand-computed mean of its saved models' softmax outputs,
a resume inside the FGE phase bit-identical on CPU, the refusals, the grid's order and the table's
columns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from conftest import REPO, signal_when

from swa_bench.cli import main
from swa_bench.config import ConfigError, load_config
from swa_bench.continuation import StartPointError
from swa_bench.protocol import resolve_protocol
from swa_bench.records import RunRecords
from swa_bench.schedules import Triangular, triangular_lr
from swa_bench.stopping import Preempted, StopSignals
from swa_bench.training import run as trainer_module
from swa_bench.training import train_run

DIGITS = REPO / "configs/demo/digits.yaml"


def digits(method, **overrides):
    """The demo row, small: B = 14 epochs of 4 steps; FGE from epoch 11, models after epochs 12 and 14."""
    return load_config(
        DIGITS,
        {"run.method": method, "data.train_subset": 100, "optim.batch_size": 32, "run.budget_scale": 0.7, **overrides},
    )


# --------------------------------------------------------------------------------------------------
# The schedule and the collection epochs (no training)


def test_triangular_rate_at_every_iteration_of_a_cycle():
    alpha1, alpha2, cycle, steps = 0.05, 0.01, 2, 7
    schedule = Triangular(alpha1, alpha2, cycle, first_epoch=96)
    for e in range(4):  # two cycles
        for i in range(steps):
            t = ((e % cycle) + i / steps) / cycle  # the FGE code's position in the cycle
            expected = (
                (1 - 2 * t) * alpha1 + 2 * t * alpha2 if t <= 0.5 else (2 - 2 * t) * alpha2 + (2 * t - 1) * alpha1
            )
            assert schedule.lr(96 + e, i, steps) == pytest.approx(expected, abs=1e-15)
    assert schedule.lr(96, 0, steps) == pytest.approx(alpha1)  # a cycle starts at alpha1
    assert schedule.lr(97, 0, steps) == pytest.approx(alpha2)  # mid-cycle: alpha2, where models are collected
    assert triangular_lr(0.75, alpha1, alpha2) == pytest.approx((alpha1 + alpha2) / 2)  # and back up


def test_fge_protocol_collects_at_mid_cycle_and_reports_the_ensemble_at_the_budget():
    cfg = load_config(REPO / "configs/mini/preresnet20_ratio0.5.yaml", {"run.method": "fge"})
    proto = resolve_protocol(cfg)
    assert (proto.first_epoch, proto.epochs) == (96, 120)  # from 0.8 B to B
    collected = [e + 1 for e in range(proto.first_epoch, proto.epochs) if proto.collects_after(e)]
    assert collected == list(range(97, 121, 2)) and len(collected) == 12  # the end of each cycle's first epoch
    assert proto.report_points == {"fge_1": 120}
    assert proto.schedule.per_iteration
    sgd = resolve_protocol(load_config(REPO / "configs/mini/preresnet20_ratio0.5.yaml", {"run.method": "sgd"}))
    assert sgd.keep_states == (96,)  # the SGD run keeps what FGE continues from
    cycle4 = resolve_protocol(
        load_config(REPO / "configs/cifar100/preresnet164.yaml", {"run.method": "fge", "fge.cycle": 4})
    )
    assert [e + 1 for e in range(120, 130) if cycle4.collects_after(e)] == [122, 126, 130]  # epoch c/2 of each cycle


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("fge.cycle", 3, "must be an even number"),
        ("fge.start", 1.0, "fraction of the budget"),
        ("fge.alpha2", -0.1, "must be positive"),
        ("fge.keep_models", 0, "must be positive"),
    ],
)
def test_bad_fge_settings_are_one_line(key, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(DIGITS, {"run.method": "fge", key: value})


def test_a_row_without_fge_settings_refuses_fge():
    with pytest.raises(ConfigError, match="fge.alpha1: missing value: this row has no FGE settings"):
        load_config(REPO / "configs/cifar10/pyramidnet272.yaml", {"run.method": "fge"})


def test_shipped_fge_rows():
    with_fge = {
        p.relative_to(REPO / "configs").as_posix()
        for p in (REPO / "configs").glob("*/*.yaml")
        if load_config(p).fge.alpha1 is not None
    }
    assert with_fge == {
        f"{d}/{m}.yaml" for d in ("cifar10", "cifar100") for m in ("vgg16", "preresnet164", "wrn28x10")
    } | {
        "demo/digits.yaml",
        "demo/digits_mlp.yaml",
        "mini/preresnet20_ratio0.1.yaml",
        "mini/preresnet20_ratio0.5.yaml",
        # the continuations of the miniature's SGD runs name where those runs keep their state
        "mini-experiments/preresnet20_from_sgd.yaml",
        "mini-experiments/preresnet20_finetune.yaml",
        "cpu/preresnet20_ratio0.1.yaml",
        "cpu/preresnet20_ratio0.5.yaml",
        "cpu-experiments/preresnet20_from_sgd.yaml",
        "cpu-experiments/preresnet20_finetune.yaml",
    }


# --------------------------------------------------------------------------------------------------
# Runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An SGD run and its FGE run, uninterrupted."""
    out = tmp_path_factory.mktemp("fge")
    sgd = train_run(digits("sgd"), out / "sgd", progress=False)
    fge = train_run(digits("fge"), out / "fge", progress=False, sgd_run_dir=out / "sgd")
    return out, sgd, fge


@pytest.mark.integration
def test_fge_run_reports_the_mean_of_its_members_softmax_outputs(runs):
    out, sgd, fge = runs
    cfg = digits("fge")
    summary = fge.summary
    assert summary["method"] == "fge" and list(summary["results"]) == ["fge_1"]
    assert summary["start_point"] == {"run": str(out / "sgd"), "epoch": 11}
    members = summary["fge_members"]
    assert [m["epoch"] for m in members] == [12, 14]  # cycle 2 from epoch 11: mid-cycle after 12 and 14
    assert (out / "sgd" / "checkpoints" / "state_epoch11.pt").is_file()

    # By hand: every saved member on the test set, softmax, mean.
    from swa_bench.data import build_datasets
    from swa_bench.models import create_model

    data = build_datasets(cfg.data, progress=False)
    images = torch.stack([data.test[i][0] for i in range(len(data.test))])
    targets = torch.tensor([data.test[i][1] for i in range(len(data.test))])
    probabilities = []
    for i in range(1, len(members) + 1):
        model = create_model(cfg.model.name, data.num_classes, **cfg.model.options)
        model.load_state_dict(torch.load(out / "fge" / "checkpoints" / f"fge_member{i}.pt", weights_only=True)["model"])
        model.eval()
        with torch.no_grad():
            probabilities.append(F.softmax(model(images), dim=1).double())
    mean = torch.stack(probabilities).mean(0)
    acc = (mean.argmax(1) == targets).double().mean().item() * 100
    nll = -mean.gather(1, targets.view(-1, 1)).log().mean().item()
    assert summary["results"]["fge_1"] == pytest.approx(acc, abs=1e-9)
    assert summary["results_nll"]["fge_1"] == pytest.approx(nll, rel=1e-5)
    cell = torch.load(out / "fge" / "checkpoints" / "fge_1.pt", weights_only=True)
    assert cell["members"] == ["fge_member1", "fge_member2"] and cell["ensembled"] == 2


@pytest.mark.integration
def test_fge_resumed_inside_its_phase_is_bit_identical(runs, tmp_path, monkeypatch):
    out, _, fge = runs

    # A stop in the second FGE epoch, 13 (4 steps per epoch)
    monkeypatch.setattr(trainer_module, "StopSignals", signal_when(lambda reads: reads >= 6))
    with pytest.raises(Preempted):
        train_run(digits("fge"), tmp_path / "fge", progress=False, sgd_run_dir=out / "sgd")
    state = RunRecords(tmp_path / "fge").load_checkpoint("last")
    assert state["epoch"] == 12 and state["partial"]["step"] == 2 and state["ensemble"]["count"] == 1
    monkeypatch.setattr(trainer_module, "StopSignals", StopSignals)
    again = train_run(digits("fge"), tmp_path / "fge", progress=False, sgd_run_dir=out / "sgd")
    assert again.summary["results"] == fge.summary["results"]
    assert again.summary["results_nll"] == fge.summary["results_nll"]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(RunRecords(tmp_path / "fge").read_metrics()) == strip(RunRecords(out / "fge").read_metrics())


@pytest.mark.integration
def test_fge_refuses_a_missing_unfinished_or_different_sgd_run(runs, tmp_path):
    out, _, _ = runs
    with pytest.raises(StartPointError, match="no SGD run to continue from; train it first"):
        train_run(digits("fge"), tmp_path / "a", progress=False, sgd_run_dir=tmp_path / "missing")
    with pytest.raises(StartPointError, match="the SGD run was made with optim.lr_init=0.05, not 0.07"):
        train_run(digits("fge", **{"optim.lr_init": 0.07}), tmp_path / "b", progress=False, sgd_run_dir=out / "sgd")
    # An SGD run without the kept state (as one trained before its row had fge settings).
    old = tmp_path / "old-sgd"
    train_run(digits("sgd", **{"fge.alpha1": None}), old, progress=False)
    with pytest.raises(StartPointError, match=r"kept no state after epoch 11 \(state_epoch11.pt\)"):
        train_run(digits("fge"), tmp_path / "c", progress=False, sgd_run_dir=old)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()  # no half-made directories


@pytest.mark.integration
def test_fge_through_the_cli_grid_and_table(tmp_path):
    out = tmp_path / "runs"
    args = [
        "--config",
        str(DIGITS),
        "--seed",
        "0",
        "--out",
        str(out),
        "--budget-scale",
        "0.7",
        "--quiet",
        "--set",
        "data.train_subset=100",
    ]
    first = CliRunner().invoke(main, ["train", "--method", "fge", *args])
    assert first.exit_code == 2 and "train it first (same config, --method sgd --seed 0, same --out)" in first.output
    plan = CliRunner().invoke(
        main,
        [
            "grid",
            "--table",
            "demo",
            "--seeds",
            "1",
            "--rows",
            "digits",
            "--out",
            str(out),
            "--budget-scale",
            "0.7",
            "--set",
            "data.train_subset=100",
            "--dry-run",
        ],
    )
    assert plan.exit_code == 0, plan.output
    lines = [line for line in plan.output.splitlines() if "/seed0" in line]
    methods = [line.split("/")[2] for line in lines]
    assert methods[-1] == "fge" and "its SGD run" in lines[-1]  # after the runs it waits for
    for method in ("sgd", "fge", "swa"):
        done = CliRunner().invoke(main, ["train", "--method", method, *args])
        assert done.exit_code == 0, done.output
    table = CliRunner().invoke(main, ["table", str(out), "--detail"])
    header = table.output.splitlines()[2]
    assert header.index("SGD") < header.index("FGE 1 B") < header.index("SWA 1 B")
    assert "vs SGD" in table.output.splitlines()[4].split("|")[4]  # FGE − SGD, paired by seed
    csv = CliRunner().invoke(main, ["table", str(out), "--format", "csv"]).output
    assert "fge_1" in csv
    status = CliRunner().invoke(main, ["status", str(out)])
    assert "fge" in status.output
    runs = sorted(str(p) for p in (out / "digits/digits_cnn").glob("*/seed*"))
    curves = CliRunner().invoke(main, ["plot", "curves", *runs, "--out", str(tmp_path / "figures")])
    assert curves.exit_code == 0, curves.output
    drawn = (tmp_path / "figures" / "curves.csv").read_text()
    assert "fge," in drawn and "fge_member," in drawn  # the ensemble and each collected model


def test_table_shows_the_papers_own_fge_numbers_before_the_readmes(tmp_path):
    """The SWA paper's FGE column (arXiv v1) is the paper's: unmarked, and it wins over the FGE code README's
    number for the same cell, which is marked with its source only where the paper has none."""
    import shutil

    from swa_bench.shipped import PAPER_DIR
    from swa_bench.tables import aggregate, load_paper, render

    summary = {
        "dataset": "cifar100",
        "model": "preresnet164",
        "method": "fge",
        "seed": 0,
        "budget": 150,
        "budget_scale": 1.0,
        "results": {"fge_1": 80.0},
        "results_nll": {"fge_1": 0.7},
        "status": "finished",
        "data": {"format": "torchvision", "description": "CIFAR-100"},
        "overrides": {},
    }
    table = aggregate([summary], load_paper())
    assert len(table) == 1 and table.paper_mean.iloc[0] == 79.84 and table.paper_source.iloc[0] == ""
    text = render(table)
    cells = [cell.strip() for cell in text.splitlines()[-1].strip("|").split("|")]
    assert cells[2:] == ["80.00 (n=1)", "79.84", "+0.16"] and "80.30" not in text and "†" not in text

    readme_only = tmp_path / "paper"
    readme_only.mkdir()
    for name in ("cifar.csv", "fge_readme.csv"):
        shutil.copy(PAPER_DIR / name, readme_only / name)
    text = render(aggregate([summary], load_paper(readme_only)))
    assert "80.30 ± 0.20 †" in text and "† not from the paper: FGE code README" in text and "200-epoch budget" in text


def test_every_shipped_config_is_found_by_its_listed_name():
    """Names with a dot in them (mini/preresnet20_ratio0.5) included."""
    from swa_bench.shipped import find_config, shipped_config_names

    for name in shipped_config_names():
        assert find_config(name).name == Path(name).name + ".yaml"
