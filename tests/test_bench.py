import json

import pytest
import torch.nn as nn
from click.testing import CliRunner
from conftest import REPO

from swa_bench.bench import BenchSettings, render_bench, run_bench
from swa_bench.cli import main
from swa_bench.models import count_parameters, create_model, registry


def _bench_tiny(num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, num_classes),
    )


@pytest.fixture(autouse=True)
def bench_tiny(monkeypatch):
    """A tiny BN convnet, registered for these tests only (the catalog is left as it was)."""
    entry = registry.ModelEntry("bench_tiny", _bench_tiny, "a tiny BN convnet for the bench test")
    monkeypatch.setitem(registry._REGISTRY, "bench_tiny", entry)


def _tiny_config_dir(tmp_path):
    """A config folder whose cifar10/bench_tiny.yaml is the PreResNet-164 row with the tiny net."""
    config_dir = tmp_path / "configs"
    (config_dir / "cifar10").mkdir(parents=True)
    text = (REPO / "configs/cifar10/preresnet164.yaml").read_text().replace("name: preresnet164", "name: bench_tiny")
    (config_dir / "cifar10/bench_tiny.yaml").write_text(text)
    return config_dir


def _ratio_cell(text: str, label: str) -> str:
    """The speed-up printed on the row that starts with `label`."""
    return next(line for line in text.splitlines() if line.startswith(label)).split()[-1]


def test_bench_measures_every_figure(tmp_path):
    results = run_bench(
        BenchSettings(
            "bench_tiny",
            batch_size=16,
            steps=2,
            warmup=1,
            rounds=2,
            device="cpu",
            workers=0,
            scratch=str(tmp_path / "scratch"),
            epoch_seconds=1.5,
        ),
        _tiny_config_dir(tmp_path),
    )
    assert results["bn_img_s"] > 0  # the tiny net has BN
    for key in [
        "input_pil_img_s",
        "input_device_img_s",
        "train_img_s",
        "eval_img_s",
        "reference_train_img_s",
        "reference_eval_img_s",
        "average_fused_ms",
        "average_plain_loop_ms",
        "average_torch_averagedmodel_ms",
    ]:
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
    # fp32 on a CPU: the reference at the same precision is the fp32 one; nothing else is measured.
    assert results["reference_fp32_train_img_s"] is None and results["reference_fp32_eval_img_s"] is None
    text = render_bench(results)
    assert "training step (img/s), pipeline, same precision" in text and "speed-up" in text and "bench_tiny" in text
    assert "vs fp32 reference" not in text
    speedup = results["train_img_s"] / results["reference_train_img_s"]
    assert _ratio_cell(text, "training step") == f"{speedup:.2f}"  # the printed speed-up is the ratio of the two rates
    assert "checkpoint: loop held" in text and "outside the steps" in text and "projected to 1.5 s/epoch" in text


def test_bench_bf16_compares_same_precision_and_fp32(tmp_path):
    """bf16: the reference-style loop runs under the same autocast (the pipeline's gain) and in strict
    fp32 (the whole gain); both ratios are printed, each the ratio of its two rates."""
    results = run_bench(
        BenchSettings(
            "bench_tiny",
            batch_size=16,
            steps=1,
            warmup=1,
            rounds=1,
            device="cpu",
            workers=0,
            precision="bf16",
            scratch=str(tmp_path / "scratch"),
        ),
        _tiny_config_dir(tmp_path),
    )
    for key in [
        "train_img_s",
        "eval_img_s",
        "reference_train_img_s",
        "reference_eval_img_s",
        "reference_fp32_train_img_s",
        "reference_fp32_eval_img_s",
    ]:
        assert results[key] > 0, key
    json.dumps(results)
    text = render_bench(results)
    assert "reference-style loop at bf16 and in strict fp32" in text
    for measure, ours in (("training step", "train"), ("evaluation", "eval")):
        same = results[f"{ours}_img_s"] / results[f"reference_{ours}_img_s"]
        total = results[f"{ours}_img_s"] / results[f"reference_fp32_{ours}_img_s"]
        assert _ratio_cell(text, f"{measure} (img/s), pipeline, same precision") == f"{same:.2f}"
        assert _ratio_cell(text, f"{measure} (img/s), vs fp32 reference") == f"{total:.2f}"


def test_bench_reference_runs_under_the_chosen_autocast(monkeypatch):
    """The same-precision reference computes in bf16 under bf16 autocast; the strict one in fp32."""
    import contextlib

    import torch

    from swa_bench import bench
    from swa_bench.execution import Execution

    seen = []
    model = nn.Linear(3 * 32 * 32, 10)
    model.register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    flat = nn.Sequential(nn.Flatten(), model)
    loader = [(torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,)))]
    optimizer = torch.optim.SGD(flat.parameters(), lr=0.1)
    cpu = torch.device("cpu")
    bench._reference_train(flat, loader, optimizer, cpu, Execution(cpu, "bf16").autocast)
    bench._reference_eval(flat, loader, cpu, Execution(cpu, "bf16").autocast)
    bench._reference_train(flat, loader, optimizer, cpu, contextlib.nullcontext)
    assert seen == [torch.bfloat16, torch.bfloat16, torch.float32]
    assert not bench.fp32_differs("fp32", torch.device("cuda")) and not bench.fp32_differs("tf32", cpu)
    assert bench.fp32_differs("bf16", cpu) and bench.fp32_differs("tf32", torch.device("cuda"))


def test_bench_cli_rejects_unknown_model():
    result = CliRunner().invoke(main, ["bench", "--model", "resnet9000"])
    assert result.exit_code == 2 and "resnet9000" in result.output and "Traceback" not in result.output


def test_strict_fp32_turns_tf32_off_only_while_it_runs():
    """The switches are process-wide: the fp32 reference turns TF32 off for its own measurement and
    gives the fast path its switches back (no CUDA device is needed to set them)."""
    import torch

    from swa_bench import bench
    from swa_bench.execution import Execution

    flags = lambda: (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)  # noqa: E731
    saved = flags(), torch.backends.cudnn.benchmark
    try:
        execution = Execution(torch.device("cuda"), "tf32")
        execution.configure_backends()
        during = []
        bench._strict_fp32(lambda n: during.append(flags()), execution)(1)
        assert during == [(False, False)] and flags() == (True, True)
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32), torch.backends.cudnn.benchmark = saved
