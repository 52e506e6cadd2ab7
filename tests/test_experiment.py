"""Experiments described by files (swa_bench/experiment.py; `make reproduce-mini`, `make reproduce-cpu`):
the files load and every wrong key is one line; every part of the miniature on tiny data at a fifth of
the budget, its records, tables, figures and wall times in the results folder, and a second pass that
trains nothing; the full-size experiment's parts likewise. The real things take hours; these check
that the parts fit together."""

import csv
import json
import re

import pytest

from swa_bench import experiment
from swa_bench.experiment import Experiment, ExperimentError, load_design, run_parts

TINY = ("data.train_subset=null", "data.verify_checksums=false", "run.device=cpu")


def test_argument_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        experiment.main(["mini", "--part", "everything"])
    assert e.value.code == 2 and "invalid choice: 'everything'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        experiment.main(["mini", "--jobs", "0"])
    assert "--jobs: at least 1" in capsys.readouterr().err
    assert experiment.main(["nothing-like-it"]) == 2
    assert "no shipped experiment has that name (shipped: cpu, mini)" in capsys.readouterr().err


def test_a_part_the_experiment_lacks_is_one_line(tmp_path, capsys):
    status = experiment.main(["cpu", "--part", "figures", "--data", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err == [
        "error: --part figures: the cpu experiment has no such part (its parts: table, schedules, finetune, picture)"
    ]


def test_the_shipped_experiments_load():
    mini, cpu = load_design("mini"), load_design("cpu")
    assert mini.parts == ("table", "figures", "schedules", "finetune", "picture")
    assert cpu.parts == ("table", "schedules", "finetune", "picture")
    assert [len(g.seeds) for g in cpu.table] == [3, 3] and cpu.seed_curves


@pytest.mark.parametrize(
    "text,message",
    [
        ("title: t\nout: o\nresults: r\nzoom_from: 5\ntabel: {}\n", "tabel: unknown key"),
        ("title: t\nout: o\nresults: r\nzoom_from: 0\n", "zoom_from: must be a positive epoch"),
        ("title: t\nresults: r\nzoom_from: 5\n", "out: missing or not a string"),
        (
            "title: t\nout: o\nresults: r\nzoom_from: 5\ntable: "
            "{runs: [{configs: [cpu/none], methods: [sgd], seeds: [0]}]}\n",
            "table.runs[0].configs: cpu/none: config file not found",
        ),
        (
            "title: t\nout: o\nresults: r\nzoom_from: 5\ntable: "
            "{runs: [{configs: [cpu/preresnet20_ratio0.5], methods: [swag], "
            "seeds: [0]}]}\n",
            "table.runs[0].methods: needs configs and methods among sgd, fge, swa, ema; got 'swag'",
        ),
        (
            "title: t\nout: o\nresults: r\nzoom_from: 5\nfinetune: {runs: [{configs: [cpu/preresnet20_ratio0.5], "
            "methods: [sgd], seeds: [-1]}]}\n",
            "finetune.runs[0].seeds: must be a non-empty list of seeds",
        ),
        ("title: [t\n", "not valid YAML"),
    ],
)
def test_a_wrong_experiment_file_is_one_line_naming_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ExperimentError, match=re.escape(message)) as e:
        load_design(str(path))
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)


@pytest.mark.slow
def test_every_part_on_tiny_data_then_nothing_to_redo(tmp_path, tiny_cifar10):
    lines = []
    x = Experiment(
        load_design("mini"),
        data=str(tiny_cifar10),
        out=str(tmp_path / "runs"),
        results=str(tmp_path / "results"),
        jobs=2,
        say=lines.append,
        budget_scale=0.2,
        sets=TINY,
        test_images=None,
    )
    run_parts(x, list(x.design.parts))
    results = tmp_path / "results"
    row = results / "cifar10" / "preresnet20"
    assert len(list((row / "sgd").glob("seed*"))) == 5 and len(list((row / "swa-finetune-cyclical").glob("seed*"))) == 5
    assert not list(results.rglob("*.pt"))  # records only, never checkpoints
    table = (results / "table.md").read_text()
    assert "finetune-cyclical" in table and "SWA 7 epochs" in table and "FGE 1 B" in table
    seed0 = (results / "seed0" / "table.md").read_text()
    assert "from96-cyclical-0.1-0.001" in seed0 and "constant-0.05" in seed0
    for name in ("curves", "curves_seed0", "rays", "line", "plane", "schedules", "constant_lr", "table_vs_sgd"):
        assert (results / "figures" / f"{name}.png").stat().st_size > 0, name
    assert (results / "figures" / "rays_width.csv").exists()
    assert not list((results / "figures").glob("*.points.*"))  # the point caches stay with the runs
    plane = json.loads((results / "figures" / "plane.json").read_text())
    assert plane["points"][-1]["name"].startswith("average of ")
    with open(results / "wall_times.csv") as f:
        trained = {r["part"]: int(r["runs_trained"]) for r in csv.DictReader(f)}
    assert list(trained) == list(x.design.parts)
    assert trained["figures"] == 0  # drawn from the table's seed-0 runs, not runs of their own

    lines.clear()
    run_parts(x, ["table", "schedules", "finetune"])
    started = [line for line in lines if line.endswith(": started")]
    assert started == [], started  # every run finished: nothing trained again


@pytest.mark.slow
def test_the_full_size_experiment_on_tiny_data(tmp_path, tiny_cifar10):
    """Its parts for seed 0 only, at half the budget, one image a step (so that an epoch holds the
    cycles in steps, also halved): FGE and the continuations collect within epochs."""
    import dataclasses

    design = load_design("cpu")
    one_seed = lambda groups: tuple(dataclasses.replace(g, seeds=(0,)) for g in groups)  # noqa: E731
    design = dataclasses.replace(
        design,
        table=one_seed(design.table),
        finetune=one_seed(design.finetune),
        schedules=dataclasses.replace(
            design.schedules, variants={k: v for k, v in design.schedules.variants.items() if "cyclical-0.1" in k}
        ),
    )
    x = Experiment(
        design,
        data=str(tiny_cifar10),
        out=str(tmp_path / "runs"),
        results=str(tmp_path / "results"),
        jobs=2,
        say=[].append,
        budget_scale=0.5,
        sets=TINY + ("optim.batch_size=1",),
    )
    run_parts(x, list(x.design.parts))
    results = tmp_path / "results"
    table = (results / "table.md").read_text()
    assert "FGE 1 B" in table and "lr-ratio-0.1" in table and "finetune-cyclical" in table
    assert "from8-cyclical-0.1-0.001" in (results / "seed0" / "table.md").read_text()
    for name in ("curves", "curves_seed0", "schedules", "table_vs_sgd"):
        assert (results / "figures" / f"{name}.png").stat().st_size > 0, name
    fge = json.loads((results / "cifar10" / "preresnet20" / "fge" / "seed0" / "summary.json").read_text())
    # 100 steps an epoch, a cycle of 20 steps from epoch 4 to 5: models after steps 10, 30, ..., 90
    assert [m["step"] for m in fge["fge_members"]] == [10, 30, 50, 70, 90]


def test_a_failed_download_is_one_line(tmp_path, monkeypatch, capsys):
    """`make reproduce-mini DOWNLOAD=1` where torchvision's files cannot be fetched (no network)."""
    import torchvision

    def offline(self):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", offline)
    status = experiment.main(
        ["mini", "--download", "--data", str(tmp_path / "cifar"), "--results", str(tmp_path / "r"), "--part", "picture"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "downloading cifar10 failed" in err[0] and "network unreachable" in err[0]


def test_missing_data_is_one_line_before_any_run(tmp_path, capsys):
    status = experiment.main(
        ["mini", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "runs"), "--part", "table"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "no such folder" in err[0]
    assert not (tmp_path / "runs").exists()  # nothing started
