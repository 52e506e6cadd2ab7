"""`--method ema`: an exponential moving average of the SGD run's weights (beyond the paper)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import REPO
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from swa_bench.averaging import WeightAverage
from swa_bench.cli import main
from swa_bench.config import ConfigError, load_config
from swa_bench.outcomes import EXIT_PREEMPTED
from swa_bench.protocol import resolve_protocol
from swa_bench.records import RunRecords

DEMO = REPO / "configs/demo/digits.yaml"


def _states(n: int):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    for _ in range(n):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        yield model


@pytest.mark.parametrize("decay", [None, 0.9, 0.999])
def test_average_matches_torch_averaged_model(decay):
    """The fused update is torch's: AveragedModel's equal average, or its EMA with the same decay."""
    ours, theirs = None, None
    for model in _states(7):
        if ours is None:
            ours = WeightAverage(model, decay=decay)
            theirs = AveragedModel(model, multi_avg_fn=None if decay is None else get_ema_multi_avg_fn(decay))
        ours.update(model)
        theirs.update_parameters(model)
    for a, b in zip(ours.module.parameters(), theirs.module.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_ema_protocol_is_the_sgd_schedule_reported_at_the_budget():
    sgd = resolve_protocol(load_config(DEMO, {"run.method": "sgd"}))
    ema = resolve_protocol(load_config(DEMO, {"run.method": "ema"}))
    assert ema.schedule == sgd.schedule and ema.epochs == sgd.epochs
    assert ema.report_points == {"ema_1": sgd.epochs} and ema.first_collection is None


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("ema.decay", 1.0, "must be in (0, 1)"),
        ("ema.decay", 0, "must be in (0, 1)"),
        ("ema.every", 0, "must be positive"),
    ],
)
def test_bad_ema_keys_are_one_line(key, value, message):
    with pytest.raises(ConfigError, match=rf"{key}: .*{message.replace('(', '[(]').replace(')', '[)]')}"):
        load_config(DEMO, {key: value})


def test_ema_needs_a_row_trained_from_scratch():
    with pytest.raises(ConfigError, match="run.method: ema trains from scratch"):
        load_config(REPO / "configs/imagenet/resnet50.yaml", {"run.method": "ema"})


def test_method_is_required():
    result = CliRunner().invoke(main, ["train", "--config", str(DEMO), "--out", "unused"])
    assert (
        result.exit_code == 2
        and result.output == "error: --method: missing; give sgd (the baseline), swa, ema (beyond the paper) or fge\n"
    )
    assert not Path("unused").exists()


def _train(out, method, *extra):
    args = [
        "train",
        "--config",
        str(DEMO),
        "--method",
        method,
        "--out",
        str(out),
        "--budget-scale",
        "0.5",
        "--quiet",
        *extra,
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out / "digits/digits_cnn" / method / "seed0-scale0.5-subset300"


def test_ema_run_follows_the_sgd_run_and_reports_its_average(tmp_path):
    sgd = RunRecords(_train(tmp_path, "sgd"))
    ema = RunRecords(_train(tmp_path, "ema", "--set", "ema.every=2"))
    iterate = ("epoch", "lr", "train_loss", "train_acc", "test_acc", "test_loss")
    # The same seed and schedule: the SGD iterate of the EMA run is the SGD run's, step for step.
    assert [{k: r.get(k) for k in iterate} for r in ema.read_metrics()] == [
        {k: r.get(k) for k in iterate} for r in sgd.read_metrics()
    ]
    summary = ema.read_summary()
    last = ema.read_metrics()[-1]
    assert summary["method"] == "ema" and summary["results"] == {"ema_1": last["ema_test_acc"]}
    steps = -(-300 // 64) * last["epoch"]
    assert last["ema_count"] == steps // 2  # every second step
    assert (ema.dir / "checkpoints" / "ema_1.pt").exists()
    # The stored config keeps swa.* and ema.* apart: an SGD run is shared whatever ema.decay is.
    _train(tmp_path, "sgd", "--set", "ema.decay=0.5")


def test_stopped_ema_run_resumes_to_the_uninterrupted_result(tmp_path):
    def command(out):
        return [
            sys.executable,
            "-m",
            "swa_bench",
            "train",
            "--config",
            str(DEMO),
            "--method",
            "ema",
            "--out",
            str(out),
            "--quiet",
            "--budget-scale",
            "0.5",
            "--set",
            "ema.decay=0.9",
            "--set",
            "data.loader=torch",
        ]  # the slower loader: stopped mid-run

    subprocess.run(command(tmp_path / "whole"), check=True, capture_output=True)
    proc = subprocess.Popen(command(tmp_path / "stopped"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    metrics = tmp_path / "stopped/digits/digits_cnn/ema/seed0-scale0.5-subset300/metrics.jsonl"
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and not (metrics.exists() and metrics.read_text()):
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PREEMPTED
    subprocess.run(command(tmp_path / "stopped"), check=True, capture_output=True)

    def rows(run):
        return [
            {k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (tmp_path / run / "digits/digits_cnn/ema/seed0-scale0.5-subset300/metrics.jsonl")
            .read_text()
            .splitlines()
        ]

    assert rows("stopped") == rows("whole")
