"""The code paths that only a GPU (or many processes) takes, tested where a CPU can show them: RNG
states of a mid-epoch stop loaded from anywhere, weights files of host tensors, per-image seeding
that leaves the CUDA generators alone, compiled graphs under torch's recompile limit through a whole
SWA run, bf16 and channels-last end to end with a resume, and under DDP (gloo) a constant number of
stop checks per epoch, a stop still honoured within bounded steps, and one set of BN statistics."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import REPO, signal_when

from swa_bench.config import load_config
from swa_bench.distributed import World
from swa_bench.engine import rng_states, set_rng_states
from swa_bench.record_files import on_host
from swa_bench.records import RunRecords
from swa_bench.stopping import Preempted, StopPoll, StopSignals
from swa_bench.training import run as trainer_module
from swa_bench.training import train_run

pytestmark = pytest.mark.integration

DIGITS = REPO / "configs/demo/digits.yaml"


def digits(method="swa", **overrides):
    """The demo row, small: 100 images in batches of 32 (a smaller last batch), 6 epochs of SWA."""
    return load_config(
        DIGITS,
        {"run.method": method, "data.train_subset": 100, "optim.batch_size": 32, "run.budget_scale": 0.2, **overrides},
    )


def stop_then_resume(cfg, run_dir, monkeypatch, at=3):
    """Train until a stop signal within the second epoch, then resume with real signals."""
    monkeypatch.setattr(trainer_module, "StopSignals", signal_when(lambda reads: reads >= at))
    with pytest.raises(Preempted):
        train_run(cfg, run_dir, progress=False)
    monkeypatch.setattr(trainer_module, "StopSignals", StopSignals)
    assert RunRecords(run_dir).load_checkpoint("last")["partial"]["step"] >= 1
    return train_run(cfg, run_dir, progress=False)


def metrics_without_seconds(run_dir):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in RunRecords(run_dir).read_metrics()]


# --------------------------------------------------------------------------------------------------
# 1. RNG states of a mid-epoch stop, from any device


class OnAnotherDevice:
    """A tensor as a checkpoint loaded onto a GPU gives it: usable only after .cpu()."""

    def __init__(self, tensor):
        self.tensor = tensor

    def cpu(self):
        return self.tensor


def test_rng_states_loaded_onto_another_device_are_restored():
    saved = rng_states()
    expected = torch.rand(4)
    torch.rand(100)  # move on
    set_rng_states(
        {"cpu": OnAnotherDevice(saved["cpu"]), "cuda": [OnAnotherDevice(torch.zeros(16, dtype=torch.uint8))]}
    )
    assert torch.equal(torch.rand(4), expected)  # the CPU state came back; the CUDA one needs no device here


def test_mid_epoch_resume_reads_the_checkpoint_on_the_host(tmp_path, monkeypatch):
    loads, rng_devices = [], []
    load_checkpoint, set_rng_state = RunRecords.load_checkpoint, torch.set_rng_state

    def spy_load(self, name="last", map_location="cpu", **kwargs):
        loads.append(map_location)
        return load_checkpoint(self, name, map_location, **kwargs)

    def spy_set(state):
        rng_devices.append((state.device.type, state.dtype))
        return set_rng_state(state)

    monkeypatch.setattr(RunRecords, "load_checkpoint", spy_load)
    monkeypatch.setattr(torch, "set_rng_state", spy_set)
    outcome = stop_then_resume(digits(), tmp_path / "run", monkeypatch)
    assert outcome.summary["results"]
    assert loads and set(loads) == {"cpu"}  # never a device map_location: RNG states must stay host tensors
    assert ("cpu", torch.uint8) in rng_devices


# --------------------------------------------------------------------------------------------------
# 7. Weights files: host tensors, loadable anywhere


class CudaLike:
    is_cuda = True

    def __init__(self, tensor):
        self.tensor = tensor

    def cpu(self):
        return self

    def detach(self):
        return self.tensor  # the host copy


def test_on_host_moves_every_nested_tensor():
    state = {"model": {"w": CudaLike(torch.ones(2))}, "list": [CudaLike(torch.zeros(1)), 3], "epoch": 5}
    moved = on_host(state)
    assert isinstance(moved["model"]["w"], torch.Tensor) and isinstance(moved["list"][0], torch.Tensor)
    assert moved["epoch"] == 5 and moved["list"][1] == 3
    torch.load(io.BytesIO(_saved(moved)), weights_only=True)


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_weights_files_load_with_a_plain_torch_load(tmp_path, monkeypatch):
    saved = []
    save_weights = RunRecords.save_weights
    monkeypatch.setattr("swa_bench.records.checkpoints.torch_bytes", lambda obj: saved.append(obj) or _saved(obj))
    assert save_weights  # the real method, through the patched serialiser
    run = tmp_path / "run"
    train_run(digits(), run, progress=False)
    assert saved
    for path in (run / "checkpoints").glob("swa_*.pt"):
        state = torch.load(path, weights_only=True)  # no map_location
        assert all(t.device.type == "cpu" for t in state["model"].values())


# --------------------------------------------------------------------------------------------------
# 6. Per-image seeding leaves the CUDA generators alone


def test_per_image_seeding_in_the_main_process_never_seeds_cuda(monkeypatch):
    from swa_bench.data.datasets import ImageArrayDataset
    from swa_bench.data.loaders import make_loader
    from swa_bench.data.transforms import ImageTransform

    seeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: seeded.append(seed))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: seeded.append(seed))
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    dataset = ImageArrayDataset(
        images,
        np.zeros(10, dtype=np.int64),
        ImageTransform(("crop", "flip"), padding=2, mean=(0.5,) * 3, std=(0.5,) * 3),
    )
    generator = torch.Generator().manual_seed(0)
    loader = make_loader(dataset, 4, shuffle=True, workers=0, device=torch.device("cpu"), generator=generator)
    first = torch.cat([x for x, _ in loader])
    assert seeded == []  # the global CUDA generators (dropout, shake noise on a GPU) were not touched
    generator.manual_seed(0)
    assert torch.equal(torch.cat([x for x, _ in loader]), first)  # and each image's augmentation is its seed's


# --------------------------------------------------------------------------------------------------
# 3. Compilation: every graph of a whole SWA run under torch's default recompile limit


# Inductor compiles C++ for a minute on a CPU: with the real-data runs, in `make test-slow`.
@pytest.mark.parametrize("backend", ["eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_compiled_swa_run_stays_under_the_recompile_limit(tmp_path, monkeypatch, backend):
    import torch._dynamo
    from torch._dynamo.utils import counters

    import swa_bench.execution as execution

    graphs = []

    def counting(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    compile_ = torch.compile
    monkeypatch.setattr(
        torch,
        "compile",
        lambda model, mode=None: compile_(model, backend=counting if backend == "eager" else "inductor"),
    )
    monkeypatch.setattr(execution, "RECOMPILE_LIMIT", 8)  # torch's default, not the headroom the trainer adds
    torch._dynamo.reset()
    counters.clear()
    with torch._dynamo.config.patch(recompile_limit=8, fail_on_recompile_limit_hit=True):
        outcome = train_run(digits(**{"run.compile": "default"}), tmp_path / "run", progress=False)
    assert outcome.status == "trained" and len(outcome.summary["results"]) == 3
    made = len(graphs) if backend == "eager" else counters["stats"]["unique_graphs"]
    # train, eval and the BN pass, each at the full and the smaller last batch; the averaged model shares them
    assert 0 < made <= 6, made
    torch._dynamo.reset()


# --------------------------------------------------------------------------------------------------
# bf16 autocast and channels-last, end to end on the CPU


def test_bf16_channels_last_trains_averages_and_resumes_exactly(tmp_path, monkeypatch):
    fast = {"run.precision": "bf16", "run.channels_last": True}
    reference = tmp_path / "reference"
    train_run(digits(**fast), reference, progress=False)
    stopped = tmp_path / "stopped"
    stop_then_resume(digits(**fast), stopped, monkeypatch, at=5)
    assert metrics_without_seconds(stopped) == metrics_without_seconds(reference)
    rows = RunRecords(reference).read_metrics()
    assert any("swa_test_acc" in r for r in rows) and all(math.isfinite(r["train_loss"]) for r in rows)
    for name in ("swa_1", "swa_1.5"):
        a = torch.load(reference / "checkpoints" / f"{name}.pt", weights_only=True)["model"]
        b = torch.load(stopped / "checkpoints" / f"{name}.pt", weights_only=True)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a), name


# --------------------------------------------------------------------------------------------------
# 2, 4, 5. Many processes (gloo): stop checks per epoch, a stop on one process, BN statistics


class FakeWorld:
    """Two processes as StopPoll sees them: each collective returns the sum of identical values."""

    rank, size, distributed = 0, 2, True

    def __init__(self):
        self.collectives = 0

    def sum_floats(self, *values):
        self.collectives += 1
        return [2 * v for v in values]


def test_stop_poll_checks_a_few_times_per_pass_and_honours_a_stop_within_seconds():
    now = [0.0]
    signals, world = StopSignals(), FakeWorld()
    poll = StopPoll(signals, world, every_seconds=2.0, clock=lambda: now[0])
    per_pass = []
    for _ in range(3):  # passes of 1000 steps of 10 ms: 10 s each
        poll.start_pass()
        before = world.collectives
        for _ in range(1000):
            now[0] += 0.01
            assert not poll()
        per_pass.append(world.collectives - before)
    assert len(set(per_pass)) == 1 and per_pass[0] <= 8 + 10 // 2  # the ramp, then one per 2 s
    poll.start_pass()
    for step in range(1, 1001):
        now[0] += 0.01
        if step == 500:
            signals.requested = True
        if poll():
            break
    assert 500 <= step <= 500 + 2.0 / 0.01  # seen within the poll's 2 seconds


def _ddp_worker(rank, world_size, store, out):
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    world = World(rank, world_size, rank)
    torch.set_num_threads(1)
    report = {}

    # One set of BN statistics: their mean over the processes, in every process.
    bn = torch.nn.BatchNorm1d(3)
    bn.running_mean.fill_(float(rank))
    bn.running_var.fill_(1.0 + 2 * rank)
    world.average_buffers_(bn)
    report["bn"] = [bn.running_mean.tolist(), bn.running_var.tolist(), int(bn.num_batches_tracked)]

    # Stop checks: count the collectives of each training pass of a whole SWA run.
    checks, steps = [], []
    start_pass, call = StopPoll.start_pass, StopPoll.__call__

    def counting_start(self):
        checks.append(self.checks)
        steps.append(getattr(self, "steps", 0))
        start_pass(self)

    StopPoll.start_pass = counting_start
    cfg = load_config(
        DIGITS,
        {
            "run.method": "swa",
            "data.train_subset": 300,
            "optim.batch_size": 4,
            "run.budget_scale": 0.2,
            "run.checkpoint_every": None,
        },
    )
    outcome = train_run(cfg, Path(out) / "run", progress=False, world=world)
    StopPoll.start_pass = start_pass
    report["checks_per_pass"] = [b - a for a, b in zip(checks[1:], checks[2:])]
    report["steps_per_pass"] = steps[2:]
    report["status"] = outcome.status

    # A stop signal reaching one process only (rank 1, after its 10th step): every process stops at
    # the same step, the next check (the 15th: with fast steps, checks come at steps 1, 3, 7, 15... of a pass).
    taken = [0]

    def counting_call(self):
        taken[0] += 1
        return call(self)

    StopPoll.__call__ = counting_call

    trainer_module.StopSignals = signal_when(lambda reads: rank == 1 and taken[0] >= 10)
    try:
        train_run(cfg, Path(out) / "stopped", progress=False, world=world)
        report["stopped"] = False
    except Preempted:
        report["stopped"] = True
    trainer_module.StopSignals, StopPoll.__call__ = StopSignals, call
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


def test_ddp_checks_for_stops_a_few_times_per_epoch_and_stops_together(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for report in reports:
        assert report["bn"] == [[0.5] * 3, [2.0] * 3, 0]  # the mean of both processes' statistics
        assert report["status"] == "trained" and report["stopped"]
        steps = report["steps_per_pass"][0]
        assert steps >= 30
        # A handful per pass (the doubling ramp), not one per step.
        assert max(report["checks_per_pass"]) <= math.log2(steps) + 2, report
    state = RunRecords(tmp_path / "stopped").load_checkpoint("last")
    assert state["epoch"] == 0 and state["partial"]["step"] == 15 and len(state["partial"]["rng"]) == 2
    assert RunRecords(tmp_path / "run").is_finished()


def test_bn_recomputation_runs_through_a_compiled_model_of_any_class():
    """A compiled module's truth value asks the module for len(): only nn.Sequential answers."""
    from swa_bench.averaging import recompute_bn

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)

        def forward(self, x):
            return self.bn(self.conv(x))

    net = Net()
    compiled = torch.compile(net, backend="eager")
    batches = [(torch.randn(5, 3, 8, 8), torch.zeros(5)) for _ in range(3)]
    assert recompute_bn(net, batches, torch.device("cpu"), forward=compiled) == 15
    torch._dynamo.reset()
