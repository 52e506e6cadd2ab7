"""Run directory names say what makes a run another experiment, and failed starts leave none behind."""

from click.testing import CliRunner
from conftest import REPO

from swa_bench.cli import main
from swa_bench.config import load_config
from swa_bench.records import run_dir_of

DEMO = REPO / "configs/demo/digits.yaml"
VGG = REPO / "configs/cifar10/vgg16.yaml"


def _train(out, *extra):
    return CliRunner().invoke(
        main, ["train", "--config", str(DEMO), "--method", "sgd", "--out", str(out), "--quiet", *extra]
    )


def test_names_carry_the_budget_scale_and_the_subset():
    full = load_config(VGG, {"run.method": "swa", "run.seed": 2})
    assert run_dir_of("runs", full).as_posix() == "runs/cifar10/vgg16/swa/seed2"
    quick = load_config(VGG, {"run.method": "swa", "run.budget_scale": 0.02, "data.train_subset": 5000})
    assert run_dir_of("runs", quick).as_posix() == "runs/cifar10/vgg16/swa/seed0-scale0.02-subset5000"
    assert run_dir_of("runs", quick, "sgd").as_posix() == "runs/cifar10/vgg16/sgd/seed0-scale0.02-subset5000"


def test_quick_and_full_runs_of_a_row_live_side_by_side(tmp_path):
    for scale in ("0.05", "0.1", "0.05"):  # the third finds its run finished
        result = _train(tmp_path, "--budget-scale", scale)
        assert result.exit_code == 0, result.output
    runs = sorted(p.parent.name for p in tmp_path.rglob("summary.json"))
    assert runs == ["seed0-scale0.05-subset300", "seed0-scale0.1-subset300"]
    status = CliRunner().invoke(main, ["status", str(tmp_path)])
    assert status.exit_code == 0 and "2 done" in status.output, status.output


def test_a_start_that_fails_before_its_first_epoch_leaves_no_directory(tmp_path):
    out = tmp_path / "runs"
    result = _train(out, "--set", "data.train_subset=5000")  # more than the digits have: fails loading the data
    assert result.exit_code == 2 and "data.train_subset=5000 exceeds" in result.output
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))
    fixed = _train(out, "--set", "data.train_subset=200", "--budget-scale", "0.05")  # the corrected command
    assert fixed.exit_code == 0, fixed.output
    assert not any("subset5000" in p.name for p in out.rglob("*"))


def test_a_failed_start_keeps_a_directory_that_already_had_a_run(tmp_path):
    assert _train(tmp_path, "--budget-scale", "0.05").exit_code == 0
    run = next(tmp_path.rglob("summary.json")).parent
    (run / "summary.json").unlink()  # to be resumed; then a resume that fails
    result = _train(tmp_path, "--budget-scale", "0.05", "--device", "cuda")  # fails without a GPU (a runtime key)
    assert (run / "metrics.jsonl").exists() and (run / "config.yaml").exists(), result.output
