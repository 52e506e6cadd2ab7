import json

import torch.nn as nn
from click.testing import CliRunner

import pytest

from swa_bench.bench import BenchSettings, render_bench, run_bench
from swa_bench.cli import main
from swa_bench.models import count_parameters, create_model, registry

from conftest import REPO


def _bench_tiny(num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))


@pytest.fixture(autouse=True)
def bench_tiny(monkeypatch):
    """A tiny BN convnet, registered for these tests only (the catalog is left as it was)."""
    entry = registry.ModelEntry("bench_tiny", _bench_tiny, "a tiny BN convnet for the bench test")
    monkeypatch.setitem(registry._REGISTRY, "bench_tiny", entry)


def test_bench_measures_every_figure(tmp_path):
    config_dir = tmp_path / "configs"
    (config_dir / "cifar10").mkdir(parents=True)
    text = (REPO / "configs/cifar10/preresnet164.yaml").read_text().replace("name: preresnet164", "name: bench_tiny")
    (config_dir / "cifar10/bench_tiny.yaml").write_text(text)
    results = run_bench(BenchSettings("bench_tiny", batch_size=16, steps=2, warmup=1, rounds=2, device="cpu", workers=0,
                                      scratch=str(tmp_path / "scratch"), epoch_seconds=1.5), config_dir)
    assert results["bn_img_s"] > 0  # the tiny net has BN
    for key in ["input_pil_img_s", "input_device_img_s", "train_img_s", "eval_img_s",
                "reference_train_img_s", "reference_eval_img_s", "average_fused_ms", "average_plain_loop_ms",
                "average_torch_averagedmodel_ms"]:
        assert results[key] > 0, key
    # Checkpoints: the loop is held for the host copy only; min <= median; nothing left behind.
    for key in ["checkpoint_blocked_s", "checkpoint_direct_s", "checkpoint_write_s"]:
        low, median = results[key]
        assert 0 < low <= median, key
    # The checkpoint holds the model, its momentum buffers and the average: three copies of the weights.
    weight_mb = 4 * count_parameters(create_model("bench_tiny", 10)) / 1e6
    assert 3 * weight_mb <= results["checkpoint_mb"] < 3 * weight_mb + 0.05  # plus a little pickling overhead
    assert not any((tmp_path / "scratch").iterdir())
    outside = results["outside_steps"]
    # PreResNet-164's SWA run: 225 epochs; evaluated after epoch 1, every 5th and the budget points
    # (188 is one), and the average at those from epoch 126 on; checkpoints at 3 points + the end at least.
    assert outside["epochs"] == 225 and outside["bn_passes"] == 21 and outside["evaluations"] == 47 + 21
    assert outside["checkpoints"] >= 4 and outside["share_pct"] > 0 and outside["projected_share_pct"] > 0
    json.dumps(results)  # JSON-ready
    text = render_bench(results)
    assert "training step (img/s)" in text and "speed-up" in text and "bench_tiny" in text
    speedup = results["train_img_s"] / results["reference_train_img_s"]
    line = next(line for line in text.splitlines() if line.startswith("training step"))
    assert line.split()[-1] == f"{speedup:.2f}"  # the printed speed-up is the ratio of the two rates
    assert "checkpoint: loop held" in text and "outside the steps" in text and "projected to 1.5 s/epoch" in text


def test_bench_cli_rejects_unknown_model():
    result = CliRunner().invoke(main, ["bench", "--model", "resnet9000"])
    assert result.exit_code == 2 and "resnet9000" in result.output and "Traceback" not in result.output
