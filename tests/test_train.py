"""End-to-end training through the CLI on tiny data in the real formats."""

import json

import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import REPO, digits_args

from swa_bench.cli import main
from swa_bench.records import RunRecords

TINY = [
    "--budget-scale",
    "0.02",
    "--device",
    "cpu",
    "--quiet",
    "--set",
    "data.verify_checksums=false",
    "--set",
    "data.workers=0",
]


def train(config, method, data_path, out, *extra):
    args = [
        "train",
        "--config",
        str(REPO / "configs" / config),
        "--method",
        method,
        "--data-path",
        str(data_path),
        "--out",
        str(out),
        *TINY,
        *extra,
    ]
    return CliRunner().invoke(main, args)


def metrics_without_time(run_dir):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in RunRecords(run_dir).read_metrics()]


@pytest.mark.parametrize(
    "config,method,epochs,columns",
    [
        ("cifar10/vgg16.yaml", "sgd", 4, ["sgd"]),
        ("cifar10/vgg16.yaml", "swa", 6, ["swa_1", "swa_1.25", "swa_1.5"]),
        ("cifar100/preresnet164.yaml", "swa", 5, ["swa_1", "swa_1.25", "swa_1.5"]),
    ],
)
def test_train_writes_complete_run_records(tmp_path, request, config, method, epochs, columns):
    dataset, model = config.removesuffix(".yaml").split("/")
    data_path = request.getfixturevalue(f"tiny_{dataset}")
    result = train(config, method, data_path, tmp_path / "runs")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / dataset / model / method / "seed0-scale0.02"

    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["config"]["run"]["budget_scale"] == 0.02
    assert resolved["protocol"]["epochs"] == epochs

    rows = RunRecords(run_dir).read_metrics()
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))
    assert {"lr", "train_loss", "train_acc", "seconds"} <= set(rows[0])
    assert all("test_acc" in r for r in rows)  # eval_every scales to 1 at this budget
    if method == "swa":
        first = resolved["protocol"]["swa_start"]
        assert [r.get("swa_count") for r in rows] == [None] * (first - 1) + list(range(1, epochs - first + 2))

    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(summary["results"]) == columns
    assert summary["data"]["format"] == "torchvision" and summary["budget_scale"] == 0.02
    assert summary["versions"]["torch"] == torch.__version__
    for col in columns:
        reported = next(r for r in rows if col in r.get("report", []))
        key = "test_acc" if col == "sgd" else "swa_test_acc"
        assert summary["results"][col] == reported[key]
        assert (run_dir / "checkpoints" / f"{col}.pt").exists()
    assert (run_dir / "checkpoints" / "last.pt").exists()


def test_swa_with_bn_model_on_imagefolder(tmp_path, tiny_imagefolder):
    result = train("cifar10/preresnet164.yaml", "swa", tiny_imagefolder, tmp_path / "runs")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs/cifar10/preresnet164/swa/seed0-scale0.02"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["data"]["format"] == "imagefolder"
    assert list(summary["results"]) == ["swa_1", "swa_1.25", "swa_1.5"]
    # The averaged checkpoint carries BN statistics recomputed for the averaged weights.
    state = torch.load(run_dir / "checkpoints" / "swa_1.5.pt", weights_only=True)["model"]
    assert any(k.endswith("running_mean") and v.abs().sum() > 0 for k, v in state.items())


def test_finished_run_is_reported_not_retrained(tmp_path, tiny_cifar10):
    assert train("cifar10/vgg16.yaml", "sgd", tiny_cifar10, tmp_path / "runs").exit_code == 0
    run_dir = tmp_path / "runs/cifar10/vgg16/sgd/seed0-scale0.02"
    before = (run_dir / "metrics.jsonl").read_text()
    # Runtime-only keys (here: workers, progress) may differ between invocations.
    again = train("cifar10/vgg16.yaml", "sgd", tiny_cifar10, tmp_path / "runs", "--set", "data.workers=2")
    assert again.exit_code == 0 and "already finished" in again.output
    assert (run_dir / "metrics.jsonl").read_text() == before


# (Another budget scale or subset is another directory: tests/test_run_dirs.py.)
@pytest.mark.parametrize("change", [["--set", "optim.weight_decay=1e-3"], ["--set", "optim.lr_init=0.1"]])
def test_run_directory_refuses_a_different_config(tmp_path, tiny_cifar10, change):
    out = tmp_path / "runs"
    first = train("cifar10/vgg16.yaml", "sgd", tiny_cifar10, out, "--budget-scale", "0.01")
    assert first.exit_code == 0, first.output
    second = train("cifar10/vgg16.yaml", "sgd", tiny_cifar10, out, "--budget-scale", "0.01", *change)
    assert second.exit_code == 2
    line = second.output.strip()
    assert line.startswith("error: ") and "\n" not in line and "Traceback" not in line
    assert any(key in line for key in ("optim.weight_decay", "optim.lr_init"))


def test_missing_cuda_is_a_clear_error(tmp_path, tiny_cifar10):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    result = train("cifar10/vgg16.yaml", "sgd", tiny_cifar10, tmp_path / "runs", "--device", "cuda")
    assert result.exit_code == 2 and "cuda" in result.output and "Traceback" not in result.output


def test_missing_dataset_is_a_clear_error(tmp_path):
    result = train("cifar10/vgg16.yaml", "sgd", tmp_path / "nowhere", tmp_path / "runs")
    assert result.exit_code == 2
    assert "cifar-10-batches-py" in result.output and "--download" in result.output


def _digits(out, *extra):
    args = digits_args(out, "swa", *extra)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out / "digits/digits_cnn/swa/seed0-scale0.25-subset300"


@pytest.mark.parametrize(
    "fast",
    [
        ["--set", "data.loader=device"],
        ["--set", "data.loader=device", "--set", "run.precision=bf16", "--set", "run.channels_last=true"],
        ["--set", "run.compile=default"],  # compiles train step, evaluation and BN recomputation
    ],
    ids=["device-loader", "bf16-channels-last", "compile"],
)
def test_fast_paths_train_deterministically(tmp_path, fast):
    first = _digits(tmp_path / "a", *fast)
    summary = json.loads((first / "summary.json").read_text())
    assert list(summary["results"]) == ["swa_1", "swa_1.25", "swa_1.5"]
    assert all(acc > 50 for acc in summary["results"].values())  # chance is 10%
    if "run.compile=default" not in fast:  # compiling twice would double the slowest test
        assert metrics_without_time(_digits(tmp_path / "b", *fast)) == metrics_without_time(first)


def test_precision_is_part_of_the_run_but_the_loader_is_not(tmp_path):
    run = _digits(tmp_path, "--set", "data.loader=device")
    (run / "summary.json").unlink()
    for rolling in ("last.pt", "previous.pt"):
        (run / "checkpoints" / rolling).unlink()
    _digits(tmp_path, "--set", "data.loader=torch")  # runtime key: accepted
    result = CliRunner().invoke(
        main,
        digits_args(tmp_path, "swa", "--set", "run.precision=bf16"),
    )
    assert result.exit_code == 2 and "run.precision" in result.output
