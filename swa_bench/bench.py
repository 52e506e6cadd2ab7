"""`swa-bench bench`: throughput of swa-bench's training path against a reference-style loop.

Both run in one process on the same model, batch size and images, so the ratios compare like with
like. The images are synthetic uint8 arrays of CIFAR's shape (throughput does not depend on pixel
values); augmentation, normalisation and model come from the row's config.

What is compared. The reference-style loop (PIL DataLoader, eager, contiguous memory, `.item()` every
step) runs twice when the chosen precision is not plain fp32:
- at the SAME precision as swa-bench's path (the same autocast, the same process-wide backend
  switches): train_img_s / reference_train_img_s is what the pipeline gains (input path, sync-free
  tallies, compilation, memory format), precision aside;
- in strict fp32 (TF32 off), as the paper's code ran: train_img_s / reference_fp32_train_img_s is the
  whole gain, precision included (reference_fp32_*: None when the precision is fp32, or tf32 on a
  CPU, where it would be the same measurement).

Measured:
- input: images/s of the per-image PIL path (DataLoader) and of the batched device path, no model;
- train: steady-state images/s of a training step, swa-bench's path (device loader, chosen
  precision/compile/memory format) vs the reference-style loop, at the same precision and in fp32;
- eval: images/s of evaluation, both paths, likewise;
- bn: images/s of the BN recomputation pass;
- average: milliseconds per SWA update: the fused update, a plain per-tensor in-place loop, and
  torch.optim.swa_utils.AveragedModel;
- checkpoint: the state a run holds (model, momentum, average): how long the loop is held per rolling
  checkpoint with the background writer (the host copy) against a direct blocking write (the old
  way), and how long the whole background write takes;
- outside the steps: what an SWA run of the row at the paper's evaluation cadence spends besides
  its training steps (evaluations, BN recomputations, checkpoints at the default cadence), as a
  share of its step time, from the rates above; with `epoch_seconds`, the same projected to a device
  whose training steps take that long per epoch (compute shares kept, checkpoint copies as measured).
"""

from __future__ import annotations

import contextlib
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tabulate import tabulate
from torch.utils.data import DataLoader

from swa_bench.averaging import WeightAverage, has_batchnorm, recompute_bn
from swa_bench.checkpointing import CheckpointWriter
from swa_bench.config import DATASETS, load_config
from swa_bench.data.datasets import ImageArrayDataset
from swa_bench.data.device_loader import DeviceImageLoader
from swa_bench.data.transforms import transforms_for
from swa_bench.engine import evaluate, resolve_device, train_one_epoch
from swa_bench.execution import Execution
from swa_bench.models import create_model
from swa_bench.protocol import resolve_protocol
from swa_bench.provenance import environment
from swa_bench.records import RunRecords


@dataclass(frozen=True)
class BenchSettings:
    model: str
    dataset: str = "cifar10"
    batch_size: int = 128
    steps: int = 20  # timed steps of each measurement, after `warmup` untimed ones
    warmup: int = 3
    rounds: int = 3  # interleaved rounds of every measurement; the best is kept
    device: str = "auto"
    precision: str = "fp32"
    compile: str = "none"
    channels_last: bool = False
    workers: int = 4  # DataLoader workers of the reference-style path (the reference's default)
    scratch: str = "runs/bench"  # where the checkpoint measurements write (the disk runs would use)
    epoch_seconds: float | None = None  # project the non-step share to epochs of this many step seconds


class _NoBar:
    """Stands in for train_one_epoch's progress bar."""

    def update(self, k: int) -> None:
        pass


def _limited(loader, steps: int):
    """The first `steps` batches of `loader`, cycling if it is shorter."""
    done = 0
    while done < steps:
        for batch in loader:
            yield batch
            done += 1
            if done == steps:
                return


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(fn, images: int, device: torch.device) -> float:
    """images / second of `fn()`, which processes `images` images."""
    _sync(device)
    began = time.perf_counter()
    fn()
    _sync(device)
    return images / (time.perf_counter() - began)


def _ms_per_call(fn, device: torch.device, calls: int = 20, rounds: int = 3) -> float:
    """Milliseconds per `fn(n)` call (n = 1, 2, ...), the best of `rounds` rounds."""
    best = float("inf")
    for _ in range(rounds):
        _sync(device)
        began = time.perf_counter()
        for n in range(1, calls + 1):
            fn(n)
        _sync(device)
        best = min(best, (time.perf_counter() - began) / calls)
    return 1000 * best


# --------------------------------------------------------------------------------------------------
# The reference-style loop: the paper's code, per step (utils.train_epoch / utils.eval there)


# `autocast` is the precision under test (a null context for fp32): the loop is otherwise the
# reference's, so that only the pipeline differs from swa-bench's path at the same precision.


def _reference_train(model, loader, optimizer, device, autocast=contextlib.nullcontext) -> None:
    model.train()
    loss_sum, correct = 0.0, 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        with autocast():
            output = model(inputs)
            loss = F.cross_entropy(output, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * inputs.size(0)  # syncs every step, as the reference does
        correct += output.argmax(1).eq(targets).sum().item()


@torch.no_grad()
def _reference_eval(model, loader, device, autocast=contextlib.nullcontext) -> None:
    model.eval()
    loss_sum, correct = 0.0, 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        with autocast():
            output = model(inputs)
        loss_sum += F.cross_entropy(output, targets, reduction="sum").item()
        correct += output.argmax(1).eq(targets).sum().item()


def _strict_fp32(fn, execution: Execution):
    """`fn` run with the process-wide switches of plain fp32 (TF32 off on CUDA), then those of
    `execution` again: the switches are global, and the fast path's measurements come in between."""

    def run(n):
        Execution(execution.device).configure_backends()
        try:
            fn(n)
        finally:
            execution.configure_backends()

    return run


def fp32_differs(precision: str, device: torch.device) -> bool:
    """Whether a strict fp32 reference measures anything the same-precision one does not (tf32 only
    changes CUDA kernels)."""
    return precision == "bf16" or (precision == "tf32" and device.type == "cuda")


def _plain_average_update(averaged, current, n: int) -> None:
    for a, c in zip(averaged, current):
        a.mul_(n / (n + 1)).add_(c, alpha=1 / (n + 1))


# --------------------------------------------------------------------------------------------------


def run_bench(settings: BenchSettings, config_dir: Path) -> dict:
    s = settings
    cfg = load_config(config_dir / s.dataset / f"{s.model}.yaml")
    device = resolve_device(s.device)
    execution = Execution(device, s.precision, s.channels_last, s.compile)
    execution.configure_backends()
    train_spec, test_spec = transforms_for(cfg.data)
    n_images = max(2048, (s.steps + s.warmup) * s.batch_size)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_images, 32, 32, 3), dtype=np.uint8)
    targets = rng.integers(0, DATASETS[s.dataset].classes, n_images)

    gen = torch.Generator(device=device).manual_seed(0)
    fast_train = DeviceImageLoader(
        images, targets, train_spec, s.batch_size, shuffle=True, device=device, generator=gen
    )
    fast_test = DeviceImageLoader(images, targets, test_spec, s.batch_size, shuffle=False, device=device)
    pil_train = DataLoader(
        ImageArrayDataset(images, targets, train_spec),
        batch_size=s.batch_size,
        shuffle=True,
        num_workers=s.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=s.workers > 0,
    )
    pil_test = DataLoader(
        ImageArrayDataset(images, targets, test_spec),
        batch_size=s.batch_size,
        num_workers=s.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=s.workers > 0,
    )

    def drain(loader, steps):
        for inputs, _ in _limited(loader, steps):
            inputs.to(device, non_blocking=True)

    results = {"settings": asdict(s), "input": "synthetic uint8 images of CIFAR's shape", **environment(device)}
    torch.manual_seed(0)
    model = execution.place(create_model(s.model, DATASETS[s.dataset].classes))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    run_model = execution.compiled(model)

    # Averaging: the fused update, a plain per-tensor loop and torch's AveragedModel, each the best of
    # `rounds` rounds of 20 updates (one update is short enough for the machine's noise to matter).
    average = WeightAverage(model)
    average.update(model)
    averaged = [p.detach().clone() for p in model.parameters()]
    current = [p.detach() for p in model.parameters()]
    torch_average = torch.optim.swa_utils.AveragedModel(model)
    results["average_fused_ms"] = _ms_per_call(lambda n: average.update(model), device, rounds=s.rounds)
    results["average_plain_loop_ms"] = _ms_per_call(
        lambda n: _plain_average_update(averaged, current, n), device, rounds=s.rounds
    )
    results["average_torch_averagedmodel_ms"] = _ms_per_call(
        lambda n: torch_average.update_parameters(model), device, rounds=s.rounds
    )

    # The reference-style loop runs a fresh eager model of the same architecture (fp32 weights, as
    # swa-bench's): at the chosen precision's autocast, and, where that is not plain fp32, in strict fp32.
    torch.manual_seed(0)
    ref_model = create_model(s.model, DATASETS[s.dataset].classes).to(device)
    ref_optimizer = torch.optim.SGD(ref_model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def bn_pass(steps):
        with execution.autocast():
            recompute_bn(model, execution.batches(_limited(fast_train, steps)), device, forward=run_model)

    # name -> work of `steps` batches. Each is warmed up, then the measurements are interleaved for
    # `rounds` rounds and the best round kept, so that a noisy machine slows both sides alike.
    work = {
        "input_pil_img_s": lambda n: drain(pil_train, n),
        "input_device_img_s": lambda n: drain(fast_train, n),
        "train_img_s": lambda n: train_one_epoch(
            run_model, _limited(fast_train, n), optimizer, execution, _NoBar(), lambda step: 0.01
        ),
        "reference_train_img_s": lambda n: _reference_train(
            ref_model, _limited(pil_train, n), ref_optimizer, device, execution.autocast
        ),
        "eval_img_s": lambda n: evaluate(run_model, _limited(fast_test, n), execution),
        "reference_eval_img_s": lambda n: _reference_eval(ref_model, _limited(pil_test, n), device, execution.autocast),
    }
    results["reference_fp32_train_img_s"] = results["reference_fp32_eval_img_s"] = None
    if fp32_differs(s.precision, device):
        work["reference_fp32_train_img_s"] = _strict_fp32(
            lambda n: _reference_train(ref_model, _limited(pil_train, n), ref_optimizer, device), execution
        )
        work["reference_fp32_eval_img_s"] = _strict_fp32(
            lambda n: _reference_eval(ref_model, _limited(pil_test, n), device), execution
        )
    if has_batchnorm(model):  # VGG-16 has no BN: nothing to recompute
        work["bn_img_s"] = bn_pass
    results["bn_img_s"] = None
    for fn in work.values():
        fn(s.warmup)
    for name in work:
        results[name] = 0.0
    # Input alone is fast: time at least 50 batches of it, or it drowns in per-call overhead.
    input_steps = max(s.steps, 50)
    for _ in range(s.rounds):
        for name, fn in work.items():
            steps = input_steps if name.startswith("input") else s.steps
            results[name] = max(results[name], _rate(lambda: fn(steps), steps * s.batch_size, device))
    results.update(_checkpoint_costs(model, optimizer, average, Path(s.scratch), s.rounds))
    results.update(_outside_steps(cfg, results, s.epoch_seconds))
    return results


def _checkpoint_costs(model, optimizer, average, scratch: Path, rounds: int) -> dict:
    """Seconds the loop is held per checkpoint, background writer against a direct write (min and
    median of `rounds` tries each), and seconds of the whole background write."""
    state = {
        "epoch": 1,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "average": average.state_dict(),
        "start_point": None,
        "partial": None,
    }
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="checkpoint-") as folder:
        records = RunRecords(folder)
        direct = []
        for _ in range(rounds):
            began = time.perf_counter()
            records.save_checkpoint(state)
            direct.append(time.perf_counter() - began)
        writer = CheckpointWriter(records)
        for _ in range(rounds + 1):  # the first fills the reusable buffers: not counted
            writer.save(state)
            writer.wait()  # measured one at a time: each hand-over finds no write in flight
        blocked, written = writer.blocked_seconds[1:], writer.write_seconds[1:]
        size = records.checkpoint_path("last").stat().st_size  # what one checkpoint holds on disk
    return {
        "checkpoint_mb": size / 1e6,
        "checkpoint_direct_s": [min(direct), statistics.median(direct)],
        "checkpoint_blocked_s": [min(blocked), statistics.median(blocked)],
        "checkpoint_write_s": [min(written), statistics.median(written)],
    }


def _outside_steps(cfg, r: dict, epoch_seconds: float | None) -> dict:
    """The share of an SWA run's step time spent outside the steps at the paper's cadence, on the
    full dataset (50,000 training, 10,000 test images), from the measured rates."""
    import dataclasses

    proto = resolve_protocol(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, method="swa")))
    facts = DATASETS[cfg.data.dataset]
    train_images, test_images = facts.train_images, facts.test_images
    evaluated = [e for e in range(proto.first_epoch, proto.epochs) if proto.evaluates_after(e)]
    averaged = [e for e in evaluated if proto.first_collection is not None and e + 1 >= proto.first_collection]
    steps = (proto.epochs - proto.first_epoch) * train_images / r["train_img_s"]
    evaluation = (len(evaluated) + len(averaged)) * test_images / r["eval_img_s"]
    averaged_bn = averaged if r.get("bn_img_s") else []  # no BatchNorm (VGG-16): nothing to recompute
    bn = len(averaged_bn) * train_images / r["bn_img_s"] if averaged_bn else 0.0
    # Checkpoints at the default cadence: budget points and the end, plus one per 10 minutes.
    minutes = cfg.run.checkpoint_minutes
    writes = len(proto.report_points) + 1 + (int(steps / (60 * minutes)) if minutes else 0)
    checkpoint = writes * r["checkpoint_blocked_s"][1]
    out = {
        "outside_steps": {
            "epochs": proto.epochs - proto.first_epoch,
            "evaluations": len(evaluated) + len(averaged),
            "bn_passes": len(averaged_bn),
            "checkpoints": writes,
            "step_s": steps,
            "share_pct": 100 * (evaluation + bn + checkpoint) / steps,
        }
    }
    if epoch_seconds:
        projected_steps = (proto.epochs - proto.first_epoch) * epoch_seconds
        projected_writes = len(proto.report_points) + 1 + (int(projected_steps / (60 * minutes)) if minutes else 0)
        compute = (evaluation + bn) / steps * projected_steps
        out["outside_steps"]["projected_share_pct"] = (
            100 * (compute + projected_writes * r["checkpoint_blocked_s"][1]) / projected_steps
        )
        out["outside_steps"]["projected_epoch_s"] = epoch_seconds
    return out


def render_bench(r: dict) -> str:
    s = r["settings"]
    # Training and evaluation against the reference at the same precision (the pipeline's gain), then,
    # when measured, against the strict fp32 reference (the whole gain, precision included).
    fp32 = r.get("reference_fp32_train_img_s") is not None
    compared = [("pipeline, same precision", "reference_{}_img_s")] + (
        [("vs fp32 reference", "reference_fp32_{}_img_s")] if fp32 else []
    )
    rows = [
        [
            "input pipeline (img/s)",
            r["input_device_img_s"],
            r["input_pil_img_s"],
            r["input_device_img_s"] / r["input_pil_img_s"],
        ]
    ]
    for measure, ours in (("training step", "train"), ("evaluation", "eval")):
        for label, key in compared:
            theirs = r[key.format(ours)]
            rows.append([f"{measure} (img/s), {label}", r[f"{ours}_img_s"], theirs, r[f"{ours}_img_s"] / theirs])
    rows += [
        ["BN recomputation (img/s)", r["bn_img_s"], None, None],
        [
            "SWA update (ms), vs plain loop",
            r["average_fused_ms"],
            r["average_plain_loop_ms"],
            r["average_plain_loop_ms"] / r["average_fused_ms"],
        ],
        [
            "SWA update (ms), vs AveragedModel",
            r["average_fused_ms"],
            r["average_torch_averagedmodel_ms"],
            r["average_torch_averagedmodel_ms"] / r["average_fused_ms"],
        ],
    ]
    ckpt = r.get("checkpoint_blocked_s")
    if ckpt:
        rows += [
            [
                "checkpoint: loop held (s, min / median)",
                _pair(ckpt),
                _pair(r["checkpoint_direct_s"]),
                r["checkpoint_direct_s"][1] / max(ckpt[1], 1e-9),
            ],
            ["checkpoint: whole write (s), background", _pair(r["checkpoint_write_s"]), None, None],
        ]
    outside = r.get("outside_steps")
    if outside:
        rows.append(["outside the steps, SWA run (% of step time)", f"{outside['share_pct']:.2f}", None, None])
        if "projected_share_pct" in outside:
            rows.append(
                [
                    f"  projected to {outside['projected_epoch_s']:g} s/epoch of steps (%)",
                    f"{outside['projected_share_pct']:.2f}",
                    None,
                    None,
                ]
            )
    head = (
        f"{s['model']} on {r['device']}, batch {s['batch_size']}, best of {s['rounds']} rounds of {s['steps']} steps, "
        f"precision {s['precision']}, compile {s['compile']}, channels_last {s['channels_last']}; "
        f"reference-style loop at {s['precision']}" + (" and in strict fp32" if fp32 else "")
    )
    cells = [[f"{v:.2f}" if isinstance(v, float) else v for v in row] for row in rows]  # mixed with text cells
    table = tabulate(
        cells, headers=["measure", "swa-bench", "reference-style", "speed-up"], missingval="–", disable_numparse=True
    )
    notes = ""
    if ckpt:
        notes = (
            f"checkpoint state {r['checkpoint_mb']:.0f} MB (model, momentum, average); reference-style = a "
            "direct blocking write"
        )
    if outside:
        notes += (
            f"\noutside the steps: {outside['evaluations']} evaluations, {outside['bn_passes']} BN passes and "
            f"{outside['checkpoints']} checkpoints over {outside['epochs']} epochs on the full dataset"
        )
    return f"{head}\n{table}\n{notes}\n" if notes else f"{head}\n{table}\n"


def _pair(values) -> str:
    return " / ".join(f"{v:.3f}" for v in values)


def write_bench(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
