"""Many processes (gloo on CPU): identical averages and BN statistics equal to one process's pass,
and torchrun writing one set of records and resuming after a kill."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torchvision
from conftest import IMAGENET_CONFIG, SMALL, imagenet_run_dir, kill_process_tree, without_seconds

from swa_bench.averaging import WeightAverage, recompute_bn
from swa_bench.distributed import World
from swa_bench.records import RunRecords

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
    args = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "swa_bench",
        "train",
        "--config",
        str(IMAGENET_CONFIG),
        "--method",
        "swa",
        "--data-path",
        str(data),
        "--weights",
        str(weights),
        "--out",
        str(out),
        *SMALL,
        "--budget-scale",
        "0.3",
        *extra,
    ]
    return args, env


def test_torchrun_two_processes_write_one_record_and_resume(tmp_path, tiny_imagenet, weights_file):
    args, env = _torchrun(tmp_path / "reference", tiny_imagenet, weights_file)
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reference = imagenet_run_dir(tmp_path / "reference", "swa")
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
    assert without_seconds(RunRecords(imagenet_run_dir(tmp_path / "killed", "swa")).read_metrics()) == without_seconds(
        rows
    )
