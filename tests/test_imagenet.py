"""Table 2's protocol on a tiny ImageNet-layout tree: pretrained weights, evaluation-only baseline,
cyclical SWA from the pretrained point, bad images, and many processes (gloo, CPU)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torchvision
from click.testing import CliRunner

from swa_bench.averaging import WeightAverage, recompute_bn
from swa_bench.cli import main
from swa_bench.config import ModelConfig, load_config
from swa_bench.distributed import World
from swa_bench.models.pretrained import WeightsError, load_pretrained
from swa_bench.protocol import resolve_protocol
from swa_bench.records import RunRecords

from conftest import REPO, kill_process_tree

CONFIG = REPO / "configs/imagenet/resnet50.yaml"
# A small stand-in of the same family: ResNet-18 at 32x32 over a 4-class tree.
SMALL = ["--set", "model.name=resnet18", "--set", "data.num_classes=4", "--set", "data.image_size=32",
         "--set", "data.test_resize=36", "--set", "data.workers=0", "--set", "optim.batch_size=8",
         "--set", "model.verify_weights=false", "--device", "cpu", "--quiet"]


@pytest.fixture
def weights_file(tmp_path) -> Path:
    torch.manual_seed(1)
    path = tmp_path / "resnet18-local.pth"
    torch.save(torchvision.models.resnet18(num_classes=4).state_dict(), path)
    return path


def cli(data, weights, out, method, *extra):
    args = ["train", "--config", str(CONFIG), "--method", method, "--data-path", str(data), "--weights", str(weights),
            "--out", str(out), *SMALL, *extra]
    return CliRunner().invoke(main, args)


def run_dir(out, method):
    """The seed-0 run of `method` (its folder name also carries the budget scale the test gave)."""
    (found,) = (Path(out) / "imagenet/resnet18" / method).glob("seed0*")
    return found


def without_seconds(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


# --------------------------------------------------------------------------------------------------
# The protocol


def test_imagenet_configs_follow_spec():
    for name in ("resnet50", "resnet152", "densenet161"):
        cfg = load_config(REPO / f"configs/imagenet/{name}.yaml")
        assert cfg.model.weights == "IMAGENET1K_V1" and cfg.swa.include_start
        assert (cfg.swa.alpha1, cfg.swa.alpha2, cfg.swa.c_epochs) == (1e-3, 1e-5, 1)
        assert (cfg.optim.batch_size, cfg.optim.weight_decay, cfg.optim.momentum) == (256, 1e-4, 0.9)
        assert cfg.data.augment == ("resized_crop", "flip") and (cfg.data.image_size, cfg.data.test_resize) == (224, 256)
        swa = resolve_protocol(load_config(REPO / f"configs/imagenet/{name}.yaml", {"run.method": "swa"}))
        assert swa.epochs == 10 and swa.report_points == {"swa_5ep": 5, "swa_10ep": 10}
        sgd = resolve_protocol(load_config(REPO / f"configs/imagenet/{name}.yaml", {"run.method": "sgd"}))
        assert sgd.epochs == 0 and sgd.report_points == {"sgd": 0}


def test_cyclical_rate_per_iteration_with_one_epoch_cycles():
    proto = resolve_protocol(load_config(CONFIG, {"run.method": "swa"}))
    steps = 5005  # 1,281,167 images in batches of 256
    for epoch in (0, 4, 9):
        assert proto.lr(epoch, 0, steps) == pytest.approx(1e-3 - (1e-3 - 1e-5) / steps)
        assert proto.lr(epoch, steps // 2 - 1, steps) == pytest.approx(1e-3 + (1e-5 - 1e-3) * (steps // 2) / steps)
        assert proto.lr(epoch, steps - 1, steps) == pytest.approx(1e-5)
    assert [e for e in range(10) if proto.collects_after(e)] == list(range(10))


def test_average_includes_the_start_point_when_asked():
    start, later = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    average = WeightAverage(start)
    average.update(start)  # include_start: the pretrained point is the first member
    average.update(later)
    for a, s, w in zip(average.module.parameters(), start.parameters(), later.parameters()):
        torch.testing.assert_close(a, (s + w) / 2)


# --------------------------------------------------------------------------------------------------
# Weights


def test_weights_load_from_a_local_path(weights_file):
    model = torchvision.models.resnet18(num_classes=4)
    record = load_pretrained(model, ModelConfig("resnet18", weights="IMAGENET1K_V1", weights_path=str(weights_file),
                                                verify_weights=False))
    saved = torch.load(weights_file, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert record["verified"] is False and record["documented_acc1"] is None  # not torchvision's file


def test_a_file_that_is_not_torchvisions_is_refused(weights_file):
    with pytest.raises(WeightsError, match="sha256 starts .*, not f37072fd.*verify_weights=false"):
        load_pretrained(torchvision.models.resnet18(num_classes=4),
                        ModelConfig("resnet18", weights="IMAGENET1K_V1", weights_path=str(weights_file)))


def test_missing_weights_say_how_to_provide_them(tmp_path, tiny_imagenet, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    result = CliRunner().invoke(main, ["train", "--config", str(CONFIG), "--method", "sgd", "--data-path",
                                       str(tiny_imagenet), "--out", str(tmp_path / "runs"), "--device", "cpu",
                                       "--set", "data.num_classes=4"])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "resnet50-0676ba61.pth" in line and "--weights PATH" in line and "--download" in line


def test_old_densenet_checkpoint_keys_are_renamed(tmp_path):
    torch.manual_seed(0)
    source = torchvision.models.densenet121(num_classes=4)
    old_style = {k.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): v for k, v in source.state_dict().items()}
    assert any("norm.1." in k for k in old_style)
    path = tmp_path / "densenet-old.pth"
    torch.save(old_style, path)
    target = torchvision.models.densenet121(num_classes=4)
    # densenet121 shares DenseNet161's checkpoint format; the registry's name only selects the URL.
    load_pretrained(target, ModelConfig("densenet161", weights="IMAGENET1K_V1", weights_path=str(path),
                                        verify_weights=False))
    assert all(torch.equal(source.state_dict()[k], v) for k, v in target.state_dict().items())


# --------------------------------------------------------------------------------------------------
# One process, end to end through the CLI


def test_pretrained_baseline_and_swa_end_to_end(tmp_path, tiny_imagenet, weights_file):
    out = tmp_path / "runs"
    sgd = cli(tiny_imagenet, weights_file, out, "sgd")
    assert sgd.exit_code == 0, sgd.output
    rows = RunRecords(run_dir(out, "sgd")).read_metrics()
    assert len(rows) == 1 and rows[0]["epoch"] == 0 and rows[0]["report"] == ["sgd"]  # evaluation only

    swa = cli(tiny_imagenet, weights_file, out, "swa", "--budget-scale", "0.2")
    assert swa.exit_code == 0, swa.output
    rows = RunRecords(run_dir(out, "swa")).read_metrics()
    assert [r["swa_count"] for r in rows] == [2, 3]  # the pretrained point, then one per epoch
    summary = json.loads((run_dir(out, "swa") / "summary.json").read_text())
    assert list(summary["results"]) == ["swa_5ep", "swa_10ep"]
    assert summary["start_point"]["weights"] == "IMAGENET1K_V1" and summary["processes"] == 1

    table = CliRunner().invoke(main, ["table", str(out)])
    assert table.exit_code == 0, table.output
    assert "## ImageNet" in table.output
    header = next(line for line in table.output.splitlines() if line.startswith("| model"))
    assert [c.strip() for c in header.strip("|").split("|")][2:] == ["SGD (pretrained)", "SWA 5 epochs", "SWA 10 epochs"]
    assert "weights file sha256" in table.output  # unverified weights are labelled


@pytest.mark.parametrize("workers", [0, 1])
def test_unreadable_image_is_named_or_skipped_and_counted(tmp_path, tiny_imagenet, weights_file, workers):
    bad = tiny_imagenet / "train" / "n01443537" / "0002.JPEG"
    bad.write_bytes(b"not a jpeg at all")
    common = ["--set", f"data.workers={workers}", "--budget-scale", "0.1"]
    stopped = cli(tiny_imagenet, weights_file, tmp_path / "a", "swa", *common)
    assert stopped.exit_code == 2
    errors = [line for line in stopped.output.splitlines() if line.startswith("error")]
    assert errors == [f"error: {bad}: unreadable image (UnidentifiedImageError); "
                      "--set data.skip_bad_images=true skips and counts such files"]
    assert "Traceback" not in stopped.output
    skipped = cli(tiny_imagenet, weights_file, tmp_path / "b", "swa", *common, "--set", "data.skip_bad_images=true")
    assert skipped.exit_code == 0, skipped.output
    rows = RunRecords(run_dir(tmp_path / "b", "swa")).read_metrics()
    assert rows[0]["skipped_images"] == 1


def test_image_of_wrong_class_count_is_a_clear_error(tmp_path, tiny_imagenet, weights_file):
    result = cli(tiny_imagenet, weights_file, tmp_path / "runs", "sgd", "--set", "data.num_classes=5")
    assert result.exit_code == 2 and "4 class folders, but imagenet has 5 classes" in result.output


# --------------------------------------------------------------------------------------------------
# Many processes: gloo on CPU


def _bn_and_average_worker(rank, world_size, store_path, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=world_size)
    world = World(rank, world_size, rank)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=4)
    # Fixed batches of different sizes; rank r takes every world-th one.
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(n, 3, 32, 32, generator=gen), torch.zeros(n, dtype=torch.long)) for n in (8, 5, 8, 3, 6)]

    ddp = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    average = WeightAverage(model)
    for step in range(2):
        inputs, targets = batches[step * world_size + rank]
        torch.nn.functional.cross_entropy(ddp(inputs), targets).backward()
        optimizer.step()
        optimizer.zero_grad()
        average.update(model)
    recompute_bn(average.module, batches[rank::world_size], torch.device("cpu"), world=world)
    torch.save({"average": average.module.state_dict(), "batches": batches}, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_ddp_average_is_identical_and_bn_equals_one_process_pass(tmp_path):
    mp.spawn(_bn_and_average_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for key, value in rank0["average"].items():
        assert torch.equal(value, rank1["average"][key]), key  # the same average in every process

    # One process over all the batches, with the same averaged weights.
    single = torchvision.models.resnet18(num_classes=4)
    single.load_state_dict(rank0["average"])
    recompute_bn(single, rank0["batches"], torch.device("cpu"))
    checked = 0
    for key, value in single.state_dict().items():
        if key.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(rank0["average"][key], value, rtol=1e-5, atol=1e-6)
            checked += 1
    assert checked == 2 * 20  # every BN layer of ResNet-18


def _torchrun(out, data, weights, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "swa_bench",
            "train", "--config", str(CONFIG), "--method", "swa", "--data-path", str(data), "--weights", str(weights),
            "--out", str(out), *SMALL, "--budget-scale", "0.3", *extra]
    return args, env


def test_torchrun_two_processes_write_one_record_and_resume(tmp_path, tiny_imagenet, weights_file):
    args, env = _torchrun(tmp_path / "reference", tiny_imagenet, weights_file)
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reference = run_dir(tmp_path / "reference", "swa")
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["processes"] == 2 and list(summary["results"]) == ["swa_5ep", "swa_10ep"]
    rows = RunRecords(reference).read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2, 3]  # one row per epoch: only the main process writes
    visible = sorted(p.name for p in reference.iterdir() if not p.name.startswith("."))
    assert visible == ["checkpoints", "config.yaml", "metrics.jsonl", "summary.json"]

    # Killed once its first checkpoint exists, then run again: the metrics of the uninterrupted run.
    args, env = _torchrun(tmp_path / "killed", tiny_imagenet, weights_file)
    checkpoint = tmp_path / "killed" / reference.relative_to(tmp_path / "reference") / "checkpoints" / "last.pt"
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not checkpoint.exists():
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    kill_process_tree(proc.pid)  # torchrun and its workers, as a lost node would
    proc.wait()
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming after epoch" in again.stderr + again.stdout
    assert without_seconds(RunRecords(run_dir(tmp_path / "killed", "swa")).read_metrics()) == without_seconds(rows)
