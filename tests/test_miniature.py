"""`make reproduce-mini` (swa_bench/miniature.py): every part on tiny data at a fifth of the budget,
its records, tables, figures and wall times in the results folder, and a second pass that trains
nothing. The real thing takes hours; this checks that the parts fit together."""

import csv
import json

import pytest

from swa_bench import miniature
from swa_bench.miniature import Miniature, run_parts

TINY = ("data.train_subset=null", "data.verify_checksums=false", "run.device=cpu")


def test_argument_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        miniature.main(["--part", "everything"])
    assert e.value.code == 2 and "invalid choice: 'everything'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        miniature.main(["--jobs", "0"])
    assert "--jobs: at least 1" in capsys.readouterr().err


@pytest.mark.slow
def test_every_part_on_tiny_data_then_nothing_to_redo(tmp_path, tiny_cifar10):
    lines = []
    m = Miniature(data=str(tiny_cifar10), out=str(tmp_path / "runs"),
                  results=str(tmp_path / "results"), jobs=2, say=lines.append, budget_scale=0.2, sets=TINY,
                  test_images=None)
    run_parts(m, list(miniature.PARTS))
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
    assert list(trained) == list(miniature.PARTS)
    assert trained["figures"] == 0  # drawn from the table's seed-0 runs, not runs of their own

    lines.clear()
    run_parts(m, ["table", "schedules", "finetune"])
    started = [line for line in lines if line.endswith(": started")]
    assert started == [], started  # every run finished: nothing trained again


def test_a_failed_download_is_one_line(tmp_path, monkeypatch, capsys):
    """`make reproduce-mini MINI_DOWNLOAD=1` where torchvision's files cannot be fetched (no network)."""
    import torchvision

    def offline(self):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", offline)
    status = miniature.main(["--download", "--data", str(tmp_path / "cifar"), "--results", str(tmp_path / "r"),
                             "--part", "picture"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "downloading cifar10 failed" in err[0] and "network unreachable" in err[0]


def test_missing_data_is_one_line_before_any_run(tmp_path, capsys):
    status = miniature.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "runs"), "--part", "table"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "no such folder" in err[0]
    assert not (tmp_path / "runs").exists()  # nothing started
